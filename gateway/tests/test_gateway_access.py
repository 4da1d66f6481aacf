"""Decision logic: which tools a caller reaches, cache invalidation, internal tokens, sessions."""

import asyncio
import json
from datetime import timedelta

import pytest
from gateway_fakes import (
    Clock,
    FakeCases,
    FakeCatalogue,
    MemorySessionStore,
    make_person,
    make_tool,
)

from chassis.problems import NotFound
from chassis.tokens import TokenMinter, TokenVerifier, generate_key, load_signing_keys
from gateway.access import Access, InternalTokens, identity_for
from gateway.directory import EnabledTool, gateway_claims
from gateway.identity import DemoIdentityProvider, Principal, audience_for
from gateway.sessions import Sessions, token_digest

KC, OTHER = "kensington-chelsea", "hammersmith"


def run(coro):
    return asyncio.run(coro)


def access_with(tools=None, memberships=None, ttl=30.0, clock=None):
    catalogue = FakeCatalogue(tools or {})
    cases = FakeCases(memberships or {})
    return Access(catalogue, cases, ttl, clock=clock or Clock()), catalogue, cases


class TestAudienceOfKind:
    @pytest.mark.parametrize("kind,audience", [("family", "families"), ("young_person", "young_people"),
                                               ("staff", "staff"), ("operator", None), ("machine", None)])
    def test_kind_maps_to_audience(self, kind, audience):
        assert audience_for(kind) == audience


class TestToolReach:
    @pytest.mark.parametrize("kind,audiences,reachable", [
        ("family", {"families"}, True),
        ("family", {"staff", "young_people"}, False),
        ("young_person", {"young_people"}, True),
        ("young_person", {"families"}, False),
        ("staff", {"staff"}, True),
        ("staff", {"families", "young_people"}, False),
        ("machine", {"staff"}, True),
        ("operator", {"families", "young_people", "staff"}, False),
    ])
    def test_tool_reachable_only_for_its_audience(self, kind, audiences, reachable):
        access, _, _ = access_with({KC: [make_tool(audiences=audiences)]})
        caller = make_person(kind=kind, council_id=None if kind == "operator" else KC)
        if reachable:
            assert run(access.tool(caller, "timeline")).tool_id == "timeline"
        else:
            with pytest.raises(NotFound):
                run(access.tool(caller, "timeline"))

    def test_tool_off_answers_exactly_like_unknown_tool(self):
        access, _, _ = access_with({KC: [make_tool(audiences={"staff"})]})
        family = make_person(kind="family")
        with pytest.raises(NotFound) as off:
            run(access.tool(family, "timeline"))
        with pytest.raises(NotFound) as unknown:
            run(access.tool(family, "no-such-tool"))
        assert off.value.detail == unknown.value.detail

    def test_tool_on_in_another_council_is_not_reachable(self):
        access, _, _ = access_with({OTHER: [make_tool()]})
        with pytest.raises(NotFound):
            run(access.tool(make_person(council_id=KC), "timeline"))

    def test_home_screen_lists_only_tools_for_my_audience(self):
        access, _, _ = access_with({KC: [make_tool(), make_tool(tool_id="plans", name="Plans",
                                                                 audiences={"young_people"})]})
        family = [t.tool_id for t in run(access.tools_for(make_person(kind="family")))]
        young = [t.tool_id for t in run(access.tools_for(make_person(kind="young_person")))]
        assert family == ["timeline"]
        assert young == ["plans", "timeline"]

    def test_operator_without_council_has_no_tools(self):
        access, catalogue, _ = access_with({KC: [make_tool()]})
        assert run(access.tools_for(make_person(kind="operator", council_id=None))) == []
        assert catalogue.calls == []


class TestCaches:
    def test_enabled_tools_are_asked_once_per_council(self):
        access, catalogue, _ = access_with({KC: [make_tool()]})
        for _ in range(3):
            run(access.tool(make_person(), "timeline"))
        assert catalogue.calls == [KC]

    def test_tool_disabled_event_takes_effect_at_once(self):
        access, catalogue, _ = access_with({KC: [make_tool()]})
        run(access.tool(make_person(), "timeline"))
        catalogue.tools[KC] = []
        access.on_event({"source": "catalogue", "type": "tool_disabled", "council_id": KC,
                         "data": {"tool_id": "timeline"}})
        with pytest.raises(NotFound):
            run(access.tool(make_person(), "timeline"))

    def test_tool_enabled_event_of_another_council_keeps_my_cache(self):
        access, catalogue, _ = access_with({KC: [make_tool()]})
        run(access.enabled_tools(KC))
        access.on_event({"source": "catalogue", "type": "tool_enabled", "council_id": OTHER, "data": {}})
        run(access.enabled_tools(KC))
        assert catalogue.calls == [KC]

    def test_member_added_event_refreshes_that_persons_memberships_only(self):
        access, _, cases = access_with(memberships={(KC, "p-sam"): {"case-1": "parent"},
                                                    (KC, "p-kim"): {"case-1": "carer"}})
        sam, kim = make_person(), make_person(person_id="p-kim")
        assert run(access.memberships(sam)) == {"case-1": "parent"}
        run(access.memberships(kim))
        cases.memberships_by_person[(KC, "p-sam")]["case-2"] = "parent"
        access.on_event({"source": "cases", "type": "member_added", "council_id": KC,
                         "data": {"person_id": "p-sam", "case_id": "case-2", "role": "parent"}})
        assert run(access.memberships(sam)) == {"case-1": "parent", "case-2": "parent"}
        run(access.memberships(kim))
        assert cases.calls.count((KC, "p-kim")) == 1

    def test_member_removed_event_drops_the_case(self):
        access, _, cases = access_with(memberships={(KC, "p-sam"): {"case-1": "parent"}})
        run(access.memberships(make_person()))
        cases.memberships_by_person[(KC, "p-sam")] = {}
        access.on_event({"source": "cases", "type": "member_removed", "council_id": KC,
                         "data": {"person_id": "p-sam", "case_id": "case-1"}})
        assert run(access.memberships(make_person())) == {}

    def test_caches_expire_after_ttl_without_events(self):
        clock = Clock()
        access, catalogue, _ = access_with({KC: [make_tool()]}, ttl=30, clock=clock)
        run(access.enabled_tools(KC))
        clock.advance(29)
        run(access.enabled_tools(KC))
        clock.advance(2)
        run(access.enabled_tools(KC))
        assert catalogue.calls == [KC, KC]

    def test_flush_on_reconnect_drops_everything(self):
        access, catalogue, cases = access_with({KC: [make_tool()]}, {(KC, "p-sam"): {"c": "parent"}})
        run(access.enabled_tools(KC))
        run(access.memberships(make_person()))
        access.flush()
        run(access.enabled_tools(KC))
        run(access.memberships(make_person()))
        assert len(catalogue.calls) == 2 and len(cases.calls) == 2

    def test_answer_outdated_while_loading_is_not_kept(self):
        access, catalogue, _ = access_with({KC: [make_tool()]})

        async def scenario():
            catalogue.gate = asyncio.Event()
            loading = asyncio.create_task(access.enabled_tools(KC))
            await asyncio.sleep(0)
            access.on_event({"source": "catalogue", "type": "tool_disabled", "council_id": KC, "data": {}})
            catalogue.gate.set()
            await loading
            catalogue.gate = None
            catalogue.tools[KC] = []
            return await access.enabled_tools(KC)

        assert run(scenario()) == {}

    def test_concurrent_misses_share_one_load(self):
        access, catalogue, _ = access_with({KC: [make_tool()]})

        async def scenario():
            catalogue.gate = asyncio.Event()
            waiting = [asyncio.create_task(access.enabled_tools(KC)) for _ in range(5)]
            await asyncio.sleep(0)
            catalogue.gate.set()
            return await asyncio.gather(*waiting)

        results = run(scenario())
        assert catalogue.calls == [KC] and all("timeline" in r for r in results)

    def test_machines_and_operators_have_no_memberships_lookup(self):
        access, _, cases = access_with()
        assert run(access.memberships(make_person(kind="machine", person_id="m-1"))) == {}
        assert run(access.memberships(make_person(kind="operator", council_id=None))) == {}
        assert cases.calls == []


@pytest.fixture
def keys(tmp_path):
    generate_key(tmp_path / "keys", "kid-1")
    keys = load_signing_keys(tmp_path / "keys")
    jwks = tmp_path / "jwks.json"
    minter = TokenMinter(keys, issuer="family-story-gateway", lifetime=30)
    jwks.write_text(json.dumps(minter.jwks()))
    return minter, str(jwks)


class TestInternalToken:
    def test_person_token_carries_council_audience_roles_cases_and_ip(self, keys):
        minter, jwks = keys
        staff = make_person(person_id="p-alex", kind="staff", roles=("social_worker",))
        identity = identity_for(staff, {"case-1": "social_worker"}, "10.0.0.7")
        token = InternalTokens(minter).mint("timeline", identity.to_claims())
        claims = TokenVerifier(jwks, audience="timeline", issuer="family-story-gateway").verify(token)
        assert claims["sub"] == "p-alex" and claims["actor"] == "person"
        assert claims["council"] == KC and claims["audience"] == "staff"
        assert claims["roles"] == ["social_worker"] and claims["cases"] == {"case-1": "social_worker"}
        assert claims["ip"] == "10.0.0.7" and claims["aud"] == "timeline"
        assert 0 < claims["exp"] - claims["iat"] <= 60

    def test_token_for_one_service_is_refused_by_another(self, keys):
        minter, jwks = keys
        token = InternalTokens(minter).mint("timeline", identity_for(make_person(), {}, None).to_claims())
        from chassis.tokens import InvalidToken

        with pytest.raises(InvalidToken):
            TokenVerifier(jwks, audience="documents", issuer="family-story-gateway").verify(token)

    def test_token_header_names_the_key(self, keys):
        import jwt

        minter, _ = keys
        token = InternalTokens(minter).mint("cases", gateway_claims(KC))
        assert jwt.get_unverified_header(token)["kid"] == "kid-1"

    def test_machine_token_carries_scopes_and_actor_machine(self, keys):
        minter, jwks = keys
        machine = make_person(person_id="m-mosaic", kind="machine", scopes=("cases:write",))
        token = InternalTokens(minter).mint("cases", identity_for(machine, {}, None).to_claims())
        claims = TokenVerifier(jwks, audience="cases", issuer="family-story-gateway").verify(token)
        assert claims["actor"] == "machine" and claims["scopes"] == ["cases:write"] and "audience" not in claims

    def test_gateway_actor_claims_for_directory_calls(self):
        assert gateway_claims(KC) == {"sub": "gateway", "actor": "gateway", "council": KC}

    def test_same_claims_reuse_a_fresh_token_until_half_its_life(self, keys):
        minter, _ = keys
        clock = Clock()
        tokens = InternalTokens(minter, clock=clock)
        claims = gateway_claims(KC)
        first = tokens.mint("cases", claims)
        assert tokens.mint("cases", claims) == first
        assert tokens.mint("catalogue", claims) != first
        clock.advance(16)
        assert tokens.mint("cases", claims) != first


def run_sessions(**kwargs):
    store = MemorySessionStore()
    revoked = []

    async def on_revoke(digest):
        revoked.append(digest)

    clock = kwargs.pop("clock", Clock())
    return Sessions(store, kwargs.pop("ttl", 3600), kwargs.pop("cache", 5), on_revoke=on_revoke, clock=clock), \
        store, revoked, clock


class TestSessions:
    def test_open_session_stores_only_the_token_digest(self):
        sessions, store, _, _ = run_sessions()
        token, _ = run(sessions.open(make_person()))
        assert list(store.records) == [token_digest(token)]
        assert token not in json.dumps({k: v.principal.to_doc() for k, v in store.records.items()})
        assert run(sessions.principal(token)) == make_person()

    def test_revoked_session_stops_working_at_once_even_when_cached(self):
        sessions, _, revoked, _ = run_sessions()
        token, _ = run(sessions.open(make_person()))
        assert run(sessions.principal(token, use_cache=True)) is not None
        run(sessions.revoke(token))
        assert run(sessions.principal(token, use_cache=True)) is None
        assert run(sessions.principal(token)) is None
        assert revoked == [token_digest(token)]

    def test_revocation_broadcast_from_another_process_drops_the_cache(self):
        sessions, store, _, _ = run_sessions()
        token, _ = run(sessions.open(make_person()))
        run(sessions.principal(token, use_cache=True))
        store.records.clear()  # deleted by another gateway process
        sessions.forget(token_digest(token))
        assert run(sessions.principal(token, use_cache=True)) is None

    def test_expired_session_is_refused(self):
        sessions, _, _, clock = run_sessions(ttl=60)
        token, _ = run(sessions.open(make_person()))
        assert run(sessions.principal(token, use_cache=True)) is not None
        clock.advance(61)
        assert run(sessions.principal(token, use_cache=True)) is None
        assert run(sessions.principal(token)) is None

    @pytest.mark.parametrize("token", ["", "not-a-session", "x" * 500])
    def test_unknown_token_is_refused(self, token):
        sessions, _, _, _ = run_sessions()
        assert run(sessions.principal(token)) is None

    def test_session_lifetime_comes_from_settings(self):
        sessions, store, _, clock = run_sessions(ttl=43200)
        token, expires_at = run(sessions.open(make_person()))
        assert expires_at.timestamp() == pytest.approx(clock.now + 43200)
        assert store.records[token_digest(token)].expires_at == expires_at


class TestDemoIdentityProvider:
    def test_known_login_gives_its_principal(self, people_file):
        provider = DemoIdentityProvider.from_file(people_file)
        principal = run(provider.authenticate({"login": "alex.sw.kc"}))
        assert principal.person_id == "p-alex" and principal.audience == "staff"
        assert principal.roles == ("social_worker",)

    @pytest.mark.parametrize("credentials", [{"login": "nobody"}, {"login": None}, {}])
    def test_unknown_login_gives_nobody(self, people_file, credentials):
        assert run(DemoIdentityProvider.from_file(people_file).authenticate(credentials)) is None

    def test_principal_round_trips_through_its_stored_form(self):
        person = make_person(roles=("manager", "social_worker"), kind="staff")
        assert Principal.from_doc(person.to_doc()) == person

    def test_enabled_tool_reads_the_catalogue_shape(self):
        tool = EnabledTool.from_doc({"tool_id": "x-tool", "name": "X", "summary": "s", "version": "1.2.3",
                                     "audiences": ["staff"], "scopes": ["cases:read"],
                                     "runs_at": {"url": "https://vendor.example/x/"}})
        assert tool.url == "https://vendor.example/x" and tool.service is None
        assert tool.audiences == frozenset({"staff"})


def test_expiry_arithmetic_uses_aware_datetimes():
    sessions, *_ = run_sessions(ttl=10)
    _, expires_at = run(sessions.open(make_person()))
    assert expires_at.utcoffset() == timedelta(0)
