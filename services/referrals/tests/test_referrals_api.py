"""The referrals' HTTP API in-process, against a real SecantusDB; responses validated against the contract."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from pymongo import MongoClient
from referrals_fakes import (
    CASE,
    COUNCIL,
    OTHER_COUNCIL,
    ROLES,
    comparable,
    form,
    identity,
)

from chassis.config import Settings
from chassis.outbox import make_envelope, validate_event
from chassis.testing import caller_for, unique_db
from referrals.app import create_app
from referrals.domain import can_see
from referrals.store import MongoReferralStore

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


def member_event(council, case_id, person_id, role, kind="member_added"):
    return make_envelope("cases", kind, council, {"case_id": case_id, "person_id": person_id, "role": role})


@pytest.fixture(scope="module")
def env(mongo_uri, jwks_path, minter):
    db_name = unique_db("referrals_api")
    app = create_app(Settings(service_name="referrals", mongo_uri=mongo_uri, mongo_db=db_name,
                              internal_jwks=jwks_path, validate_responses=True))
    client = MongoClient(mongo_uri, tz_aware=True)
    store = MongoReferralStore(client, client[db_name])
    for person, role in ROLES.items():
        store.apply_membership(member_event(COUNCIL, CASE, person, role))
        store.apply_membership(member_event(COUNCIL, "matrix-case", person, role))
    store.apply_membership(member_event(OTHER_COUNCIL, CASE, "kid", "child"))
    with app.test_client() as http:
        yield http, client[db_name], minter, store
    client.close()


class Caller(caller_for("referrals")):
    """Calls the in-process referrals app as one identity."""


@pytest.fixture(scope="module")
def as_(env):
    http, _, minter, _ = env
    return lambda person_id, **kw: Caller(http, minter, identity(person_id, **kw))


def assert_problem(resp, status):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    assert {"type", "title", "status", "detail"} <= set(resp.json())


def snapshot(db):
    return tuple(sorted(map(repr, db[c].find().sort("_id"))) for c in
                 ("referrals", "outbox", "council_settings", "conversations"))


def new_referral(as_, **overrides):
    resp = as_("sw")("POST", f"/cases/{CASE}/referrals", json=form(**overrides))
    assert resp.status_code == 201, resp.text
    return resp.json()


class TestHealthAndTokens:
    def test_health_needs_no_token(self, env):
        assert env[0].get("/health").json() == {"status": "ok", "service": "referrals"}

    def test_no_token_is_401(self, env):
        assert_problem(env[0].get(f"/cases/{CASE}/referrals"), 401)

    def test_a_token_for_another_service_is_refused(self, env):
        token = env[2].mint("timeline", identity("sw").to_claims())
        assert_problem(env[0].get(f"/cases/{CASE}/referrals", headers={"Authorization": "Bearer " + token}), 401)


class TestVisibilityQuery:
    """The Mongo query returns exactly what domain.can_see allows, over a generated matrix."""

    def test_query_matches_the_rule(self, env, as_):
        _, db, _, _ = env
        audiences = [{"kind": "staff", "people": [], "exclude": []}, {"kind": "case", "people": [], "exclude": []},
                     {"kind": "named", "people": ["mum"], "exclude": []},
                     {"kind": "named", "people": ["dad", "kid"], "exclude": ["kid"]}]
        excludes = [[], ["dad"], ["mum", "sw"], ["yp", "mgr"]]
        referrers = [("sw", "social_worker"), ("mgr", "manager")]
        made = []
        for n, (a, ex, (ref, role)) in enumerate(itertools.product(audiences, excludes, referrers)):
            audience = {**a, "exclude": sorted(set(a["exclude"]) | set(ex))}
            doc = {"_id": f"m{n:03d}", "council_id": COUNCIL, "case_id": "matrix-case", "audience": audience,
                   "referrer": {"person_id": ref, "role": role}, "created_at": datetime(2026, 1, 1, tzinfo=UTC),
                   "status": "draft"}
            made.append(doc)
        db["matrix"].drop()
        db["referrals"].insert_many(made)
        from referrals.domain import Viewer
        store = env[3]
        for person, role in ROLES.items():
            viewer = Viewer(person, COUNCIL, role)
            seen = {r["referral_id"] for r in store.visible_referrals(viewer, "matrix-case", 1000)}
            expected = {d["_id"] for d in made if can_see({**d, "referral_id": d["_id"]}, person, role)}
            assert seen == expected, person
            assert seen or person in ("mum", "dad", "gran", "kid", "yp")
        db["referrals"].delete_many({"case_id": "matrix-case"})


class TestFormAndLifecycle:
    def test_create_submit_request_answer_accept_close(self, env, as_):
        _, db, _, _ = env
        referral = new_referral(as_)
        path = f"/cases/{CASE}/referrals/{referral['referral_id']}"
        assert referral["status"] == "draft" and referral["audience"] == {"kind": "staff", "people": [], "exclude": []}
        steps = [("sw", "submit", None), ("mgr", "request-info", {"question": "GP letter?"}),
                 ("sw", "answer-info", {"answer": "Attached as doc-2."}), ("mgr", "accept", None),
                 ("sw", "close", None)]
        for person, action, body in steps:
            resp = as_(person)("POST", f"{path}/{action}", **({"json": body} if body is not None else {}))
            assert resp.status_code == 200, resp.text
        final = as_("mgr")("GET", path).json()
        assert final["status"] == "closed"
        assert [h["to_status"] for h in final["history"]] == ["draft", "submitted", "info_requested", "submitted",
                                                              "accepted", "closed"]
        events = [r["envelope"] for r in db["outbox"].find({"envelope.data.referral_id": referral["referral_id"]})
                  .sort("created_at", 1)]
        assert [(e["type"], e["data"]["status"]) for e in events] == [
            ("referral_submitted", "submitted"), ("referral_status_changed", "info_requested"),
            ("referral_status_changed", "submitted"), ("referral_status_changed", "accepted"),
            ("referral_status_changed", "closed")]
        for e in events:
            validate_event(e)
            assert e["story"]["audience"]["kind"] == "staff" and e["council_id"] == COUNCIL

    @pytest.mark.parametrize("action,body", [("accept", None), ("decline", {"reason": "r"}),
                                             ("request-info", {"question": "q"}), ("answer-info", {"answer": "a"}),
                                             ("close", None)])
    def test_invalid_transitions_from_draft_are_409_and_change_nothing(self, env, as_, action, body):
        referral = new_referral(as_)
        path = f"/cases/{CASE}/referrals/{referral['referral_id']}"
        before = snapshot(env[1])
        person = "sw" if action == "answer-info" else "mgr"
        resp = as_(person)("POST", f"{path}/{action}", **({"json": body} if body else {}))
        assert_problem(resp, 409)
        assert snapshot(env[1]) == before

    def test_a_social_worker_cannot_accept(self, env, as_):
        referral = new_referral(as_)
        path = f"/cases/{CASE}/referrals/{referral['referral_id']}"
        as_("sw")("POST", f"{path}/submit")
        assert_problem(as_("sw")("POST", f"{path}/accept"), 403)

    def test_consent_reason_is_required_when_consent_is_false(self, env, as_):
        before = snapshot(env[1])
        resp = as_("sw")("POST", f"/cases/{CASE}/referrals", json=form(no_consent_reason=None))
        assert_problem(resp, 422)
        assert "consent" in resp.json()["detail"].lower() or "Why parents" in resp.json()["detail"]
        assert snapshot(env[1]) == before

    def test_services_setting_round_trip_and_admin_only(self, env, as_):
        admin = as_("adm", cases={}, roles=("council_admin",))
        assert admin("GET", "/settings/services").json()["services"][:2] == ["Early Help", "CAMHS"]
        assert_problem(as_("mgr")("PUT", "/settings/services", json={"services": ["X"]}), 403)
        assert_problem(as_("mum")("GET", "/settings/services"), 403)
        new = ["Early Help", "CAMHS", "Housing", "Domestic abuse support", "SEND", "Youth services", "Family Hub"]
        assert admin("PUT", "/settings/services", json={"services": new}).json() == {"services": new}
        assert new_referral(as_, service="Family Hub")["service"] == "Family Hub"
        other = as_("adm", cases={}, roles=("council_admin",), council=OTHER_COUNCIL)
        assert "Family Hub" not in other("GET", "/settings/services").json()["services"]


WHO = {"sw": 201, "mgr": 201, "mum": 403, "dad": 403, "gran": 403, "kid": 403, "yp": 403}


class TestRoleMatrix:
    @pytest.mark.parametrize("person", sorted(WHO))
    def test_who_makes_and_who_sees_an_unshared_then_shared_referral(self, env, as_, person):
        resp = as_(person)("POST", f"/cases/{CASE}/referrals", json=form())
        assert resp.status_code == WHO[person], resp.text
        referral = new_referral(as_)
        path = f"/cases/{CASE}/referrals/{referral['referral_id']}"
        staff = ROLES[person] in ("social_worker", "manager")
        assert as_(person)("GET", path).status_code == (200 if staff else 404)
        assert as_("sw")("PUT", f"{path}/audience", json={"kind": "case", "exclude": ["dad"]}).status_code == 200
        shared = as_(person)("GET", path)
        assert shared.status_code == (404 if person == "dad" else 200)
        if shared.status_code == 200 and not staff:
            assert "history" not in shared.json() and shared.json()["audience"] == {"kind": "case"}
        listed = {r["referral_id"] for r in as_(person)("GET", f"/cases/{CASE}/referrals").json()["items"]}
        assert (referral["referral_id"] in listed) is (person != "dad")

    @pytest.mark.parametrize("who", [
        {"person_id": "stranger", "cases": {}},
        {"person_id": "sw", "cases": {"case-2": "social_worker"}},
        {"person_id": "sw", "cases": {CASE: "social_worker"}, "council": OTHER_COUNCIL},
    ], ids=["non-member", "other-case", "other-council"])
    def test_outsiders_get_404_everywhere(self, env, as_, who):
        referral = new_referral(as_)
        person = who.pop("person_id")
        call = as_(person, **who)
        path = f"/cases/{CASE}/referrals/{referral['referral_id']}"
        before = snapshot(env[1])
        for method, p, body in [("GET", path, None), ("POST", f"{path}/submit", None),
                                ("PUT", f"{path}/audience", {"kind": "case"}), ("PATCH", path, {"urgency": "urgent"})]:
            resp = call(method, p, **({"json": body} if body else {}))
            assert_problem(resp, 404)
            assert "Low mood" not in resp.text
        assert snapshot(env[1]) == before


BAD = [
    ("malformed JSON", {"content": b'{"service": ', "headers": {"Content-Type": "application/json"}}),
    ("unknown field", {"json": {**form(), "secret": "x"}}),
    ("wrong type", {"json": {**form(), "parents_informed": "yes"}}),
    ("oversize", {"content": b'{"reasons": "' + b"x" * 300_000 + b'"}', "headers": {"Content-Type": "application/json"}}),
    ("not json", {"content": b"hello", "headers": {"Content-Type": "text/plain"}}),
]


class TestBadInputChangesNothing:
    @pytest.mark.parametrize("target", ["create", "patch", "decline", "audience", "services", "script", "answer",
                                        "back"])
    @pytest.mark.parametrize("name,kwargs", BAD, ids=[b[0] for b in BAD])
    def test_bad_writes(self, env, as_, target, name, kwargs):
        referral = new_referral(as_)
        rpath = f"/cases/{CASE}/referrals/{referral['referral_id']}"
        conversation = as_("sw")("POST", f"/cases/{CASE}/conversations").json()["conversation_id"]
        method, path, who = {
            "create": ("POST", f"/cases/{CASE}/referrals", "sw"),
            "patch": ("PATCH", rpath, "sw"),
            "decline": ("POST", f"{rpath}/decline", "mgr"),
            "audience": ("PUT", f"{rpath}/audience", "sw"),
            "services": ("PUT", "/settings/services", "adm"),
            "script": ("PUT", "/settings/conversation-script", "adm"),
            "answer": ("POST", f"/conversations/{conversation}/answers", "sw"),
            "back": ("POST", f"/conversations/{conversation}/back", "sw"),
        }[target]
        call = as_(who, cases={}, roles=("council_admin",)) if who == "adm" else as_(who)
        kwargs = dict(kwargs)
        if name == "oversize" and target == "script":
            kwargs["content"] = b'{"name": "' + b"x" * 300_000 + b'"}'
        before = snapshot(env[1])
        resp = call(method, path, **kwargs)
        assert 400 <= resp.status_code < 500, (target, name, resp.status_code, resp.text)
        if name == "oversize":
            assert resp.status_code == 413
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert snapshot(env[1]) == before

    @pytest.mark.parametrize("case_id,council", [("no-such-case", COUNCIL), ("case-2", COUNCIL), (CASE, OTHER_COUNCIL)])
    def test_writing_to_a_case_not_yours_is_404(self, env, as_, case_id, council):
        before = snapshot(env[1])
        call = as_("sw", cases={CASE: "social_worker"} if council == COUNCIL else {}, council=council)
        assert_problem(call("POST", f"/cases/{case_id}/referrals", json=form()), 404)
        assert_problem(call("POST", f"/cases/{case_id}/conversations"), 404)
        assert snapshot(env[1]) == before

    def test_a_broken_script_is_400_and_the_old_one_stays(self, env, as_):
        admin = as_("adm", cases={}, roles=("council_admin",))
        script = admin("GET", "/settings/conversation-script").json()
        script["questions"][0]["next"] = "nowhere"
        before = snapshot(env[1])
        assert_problem(admin("PUT", "/settings/conversation-script", json=script), 400)
        assert snapshot(env[1]) == before


class TestConversationOverHttp:
    ANSWERS: ClassVar = ["3", "CAMHS", "s", "Low mood for several months.", "Not sleeping; missing school.", "y", "no",
               "Mum is worried about stigma.", "doc-1, doc-2"]

    def test_conversation_with_back_and_resume_equals_the_form(self, env, as_):
        sw = as_("sw")
        view = sw("POST", f"/cases/{CASE}/conversations").json()
        cid = view["conversation_id"]
        for answer in self.ANSWERS[:3]:
            view = sw("POST", f"/conversations/{cid}/answers", json={"answer": answer, "step": view["step"]}).json()
        bad = sw("POST", f"/conversations/{cid}/answers", json={"answer": "hi", "step": view["step"]}).json()
        assert bad["question"]["id"] == "reasons" and bad["explanation"]
        view = sw("POST", f"/conversations/{cid}/back", json={"step": view["step"]}).json()
        assert view["question"]["id"] == "urgency" and view["question"]["previous_answer"] == "s"
        view = sw("POST", f"/conversations/{cid}/answers", json={"answer": "soon", "step": view["step"]}).json()
        # the connection drops after a sent answer: the client retries it, then a new client resumes
        sent = {"answer": self.ANSWERS[3], "step": view["step"]}
        first = sw("POST", f"/conversations/{cid}/answers", json=sent)
        retry = sw("POST", f"/conversations/{cid}/answers", json=sent)
        assert retry.status_code == 200 and retry.json() == first.json()
        view = sw("GET", f"/conversations/{cid}").json()
        assert view["question"]["id"] == "concerns"
        for answer in [*self.ANSWERS[4:], "yes"]:
            view = sw("POST", f"/conversations/{cid}/answers", json={"answer": answer, "step": view["step"]}).json()
        assert view["status"] == "completed"
        by_chat = sw("GET", f"/cases/{CASE}/referrals/{view['referral_id']}").json()
        by_form = new_referral(as_)
        assert comparable(by_chat) == comparable(by_form)

    def test_a_stale_step_is_409(self, env, as_):
        sw = as_("sw")
        view = sw("POST", f"/cases/{CASE}/conversations").json()
        sw("POST", f"/conversations/{view['conversation_id']}/answers", json={"answer": "kid", "step": 0})
        assert_problem(sw("POST", f"/conversations/{view['conversation_id']}/answers",
                          json={"answer": "mum", "step": 0}), 409)

    def test_a_councils_script_changes_the_questions(self, env, as_):
        admin = as_("adm", cases={}, roles=("council_admin",), council=OTHER_COUNCIL)
        script = admin("GET", "/settings/conversation-script").json()
        for q in script["questions"]:
            if q["id"] == "subject":
                q["prompt"] = "Wie is het kind?"
        resp = admin("PUT", "/settings/conversation-script", json=script)
        assert resp.status_code == 200, resp.text
        swb = as_("swb", cases={CASE: "social_worker"}, council=OTHER_COUNCIL)
        assert swb("POST", f"/cases/{CASE}/conversations").json()["question"]["prompt"] == "Wie is het kind?"
        assert as_("sw")("POST", f"/cases/{CASE}/conversations").json()["question"]["prompt"] == \
            "Who is this referral about?"

    @pytest.mark.parametrize("person", ["mum", "kid", "yp"])
    def test_family_cannot_start_a_conversation(self, env, as_, person):
        assert_problem(as_(person)("POST", f"/cases/{CASE}/conversations"), 403)

    def test_another_persons_conversation_is_404(self, env, as_):
        cid = as_("sw")("POST", f"/cases/{CASE}/conversations").json()["conversation_id"]
        assert_problem(as_("mgr")("GET", f"/conversations/{cid}"), 404)
        assert_problem(as_("mgr")("POST", f"/conversations/{cid}/back", json={"step": 0}), 404)


def test_every_write_is_audited(env, as_):
    _, db, _, _ = env
    referral = new_referral(as_)
    as_("mum")("GET", f"/cases/{CASE}/referrals/{referral['referral_id']}")
    trail = list(db["audit"].find({"record_id": referral["referral_id"]}).sort("at", 1))
    assert [(r["action"], r["actor"], r["outcome"]) for r in trail][-2:] == [
        ("referrals.referral.create", "sw", "ok"), ("referrals.referral.read", "mum", "not-found")]
    assert "Low mood" not in json.dumps([{k: v for k, v in r.items() if k not in ("_id", "at")} for r in trail])
