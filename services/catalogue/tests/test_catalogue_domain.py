"""Unit tests of the catalogue's rules, with an in-memory store (no servers)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from catalogue_testkit import (
    ADMIN_A,
    ADMIN_B,
    GATEWAY,
    MACHINE_A,
    MANAGER_A,
    OPERATOR,
    OPERATOR_MACHINE,
    PARENT_A,
    PARENT_B,
    WORKER_A,
    YOUNG_A,
    A,
    B,
    manifest,
)

from catalogue import domain
from catalogue.domain import (
    CatalogueStore,
    Change,
    Council,
    Enablement,
    HistoryRecord,
    Tool,
    ToolVersion,
)
from chassis.identity import Identity
from chassis.problems import Conflict, Forbidden, InvalidInput, NotFound, Unprocessable


class FakeStore(CatalogueStore):
    def __init__(self) -> None:
        self.councils: dict[str, Council] = {}
        self.tools: dict[str, Tool] = {}
        self.versions: dict[str, list[ToolVersion]] = {}
        self.states: dict[tuple[str, str], Enablement] = {}
        self.records: dict[tuple[str, str], list[HistoryRecord]] = {}
        self.events: list[tuple[str, str, dict]] = []

    def get_council(self, council_id):
        return self.councils.get(council_id)

    def list_councils(self):
        return list(self.councils.values())

    def put_council(self, council_id, name, who, at):
        old = self.councils.get(council_id)
        council = Council(council_id, name, old.created_at if old else at, at)
        self.councils[council_id] = council
        return council, old is None

    def get_tool(self, tool_id):
        return self.tools.get(tool_id)

    def list_tools(self):
        return list(self.tools.values())

    def list_versions(self, tool_id):
        return list(reversed(self.versions.get(tool_id, [])))

    def publish(self, manifest: dict[str, Any], who: Identity, at: datetime, expected_current):
        current = self.tools.get(manifest["id"])
        if (current.version if current else None) != expected_current:
            raise Conflict("raced")
        tool = Tool(manifest["id"], manifest, at)
        self.tools[tool.tool_id] = tool
        self.versions.setdefault(tool.tool_id, []).append(ToolVersion(tool.version, at, who.subject))
        return tool

    def get_enablement(self, council_id, tool_id):
        return self.states.get((council_id, tool_id))

    def list_enablements(self, council_id):
        return [e for (c, _), e in self.states.items() if c == council_id]

    def apply_change(self, change: Change, who):
        key = (change.council_id, change.tool_id)
        current = self.states.get(key)
        if (current.revision if current else 0) != change.expected_revision:
            raise Conflict("raced")
        on = change.action == domain.ENABLED
        state = Enablement(change.council_id, change.tool_id, on, change.audiences if on else [],
                           change.scopes if on else [], change.at, change.by, change.expected_revision + 1)
        self.states[key] = state
        self.records.setdefault(key, []).insert(
            0, HistoryRecord(change.action, change.audiences, change.scopes, change.by, change.at))
        self.events.append(("tool_enabled" if on else "tool_disabled", change.council_id, {"tool_id": change.tool_id}))
        return state

    def history(self, council_id, tool_id):
        return list(self.records.get((council_id, tool_id), []))

    def get_sign_in(self, council_id):
        return getattr(self, "sign_in", {}).get(council_id)

    def put_sign_in(self, settings, who):
        self.sign_in = {**getattr(self, "sign_in", {}), settings.council_id: settings}
        return settings


@pytest.fixture
def store() -> FakeStore:
    s = FakeStore()
    domain.put_council(s, OPERATOR, A, "Council A")
    domain.put_council(s, OPERATOR, B, "Council B")
    domain.publish_tool(s, OPERATOR, "timeline", manifest())
    domain.publish_tool(s, OPERATOR, "plans", manifest(id="plans", name="Plans", audiences=["young_people", "staff"],
                                                       scopes=["plans:read", "plans:write"]))
    return s


def enable(store, who=ADMIN_A, council=A, tool="timeline", audiences=("families",), scopes=("cases:read",)):
    return domain.enable_tool(store, who, council, tool, list(audiences), list(scopes))


# --- semver -----------------------------------------------------------------------------------


class TestSemverOrder:
    @pytest.mark.parametrize("lower, higher", [
        ("1.0.0", "1.0.1"),
        ("1.0.9", "1.1.0"),
        ("1.9.0", "1.10.0"),
        ("0.9.9", "1.0.0"),
        ("1.99.99", "2.0.0"),
        ("1.0.0-alpha", "1.0.0"),
        ("1.0.0-alpha", "1.0.0-alpha.1"),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
        ("1.0.0-alpha.beta", "1.0.0-beta"),
        ("1.0.0-beta.2", "1.0.0-beta.11"),
        ("1.0.0-rc.1", "1.0.0"),
        ("1.0.0", "1.0.1-rc.1"),
    ])
    def test_precedence_follows_semver(self, lower, higher):
        assert domain.semver_key(lower) < domain.semver_key(higher)

    def test_build_metadata_does_not_count(self):
        assert domain.semver_key("1.2.3+build.7") == domain.semver_key("1.2.3")

    @pytest.mark.parametrize("new, existing", [
        ("1.0.0", ["1.0.0"]),
        ("1.0.0+other", ["1.0.0"]),
        ("0.9.0", ["1.0.0"]),
        ("1.0.0-rc.1", ["1.0.0"]),
        ("1.1.0", ["1.0.0", "1.2.0"]),
    ])
    def test_version_not_greater_than_every_published_one_conflicts(self, new, existing):
        with pytest.raises(Conflict):
            domain.check_new_version(new, existing)

    @pytest.mark.parametrize("new, existing", [("1.0.0", []), ("1.0.1", ["1.0.0"]), ("2.0.0-rc.1", ["1.5.0"])])
    def test_greater_version_is_accepted(self, new, existing):
        domain.check_new_version(new, existing)

    def test_a_version_that_is_not_semver_is_invalid_input(self):
        with pytest.raises(InvalidInput):
            domain.semver_key("1.0")


# --- manifests and publishing --------------------------------------------------------------------


class TestPublishTool:
    @pytest.mark.parametrize("overrides, field", [
        ({"version": "1.0"}, "version"),
        ({"id": "Timeline"}, "id"),
        ({"audiences": ["aliens"]}, "audiences[0]"),
        ({"audiences": []}, "audiences"),
        ({"scopes": ["cases-read"]}, "scopes[0]"),
        ({"vendor": {"id": "x", "name": "X"}}, "vendor.id"),
        ({"runs_at": {"url": "http://insecure.example"}}, "runs_at.url"),
        ({"runs_at": {"service": "timeline", "url": "https://x.example"}}, "runs_at"),
        ({"events": {"publishes": []}}, "events"),
        ({"extra": 1}, "(manifest)"),
    ])
    def test_schema_invalid_manifest_names_the_failing_field(self, store, overrides, field):
        with pytest.raises(InvalidInput) as err:
            domain.publish_tool(store, OPERATOR, overrides.get("id", "timeline"), manifest(**overrides))
        assert err.value.detail.startswith(field + ":")

    def test_manifest_missing_a_field_is_invalid(self, store):
        body = manifest()
        del body["runs_at"]
        with pytest.raises(InvalidInput, match="runs_at"):
            domain.publish_tool(store, OPERATOR, "timeline", body)

    @pytest.mark.parametrize("who", [ADMIN_A, WORKER_A, PARENT_A, GATEWAY, MACHINE_A, OPERATOR_MACHINE])
    def test_only_a_person_platform_operator_publishes(self, store, who):
        with pytest.raises(Forbidden):
            domain.publish_tool(store, who, "timeline", manifest(version="9.0.0"))
        assert store.get_tool("timeline").version == "1.0.0"

    def test_id_must_equal_the_path(self, store):
        with pytest.raises(InvalidInput, match="id"):
            domain.publish_tool(store, OPERATOR, "documents", manifest(version="2.0.0"))

    def test_new_tool_is_created_then_versions_are_added(self):
        s = FakeStore()
        detail, created = domain.publish_tool(s, OPERATOR, "timeline", manifest())
        assert created and detail.tool.version == "1.0.0"
        detail, created = domain.publish_tool(s, OPERATOR, "timeline", manifest(version="1.1.0"))
        assert not created
        assert [v.version for v in detail.versions] == ["1.1.0", "1.0.0"]

    @pytest.mark.parametrize("version", ["1.0.0", "0.1.0", "1.0.0-rc.1"])
    def test_version_not_greater_than_current_conflicts(self, store, version):
        with pytest.raises(Conflict):
            domain.publish_tool(store, OPERATOR, "timeline", manifest(version=version))


# --- councils ------------------------------------------------------------------------------------


class TestCouncils:
    @pytest.mark.parametrize("who", [ADMIN_A, WORKER_A, PARENT_A, GATEWAY, MACHINE_A, OPERATOR_MACHINE])
    def test_only_an_operator_creates_or_renames(self, store, who):
        with pytest.raises(Forbidden):
            domain.put_council(store, who, A, "Renamed")
        assert store.get_council(A).name == "Council A"

    @pytest.mark.parametrize("who, expected", [
        (OPERATOR, [A, B]), (ADMIN_A, [A]), (PARENT_B, [B]), (GATEWAY, []), (MACHINE_A, [A]),
    ])
    def test_list_shows_an_operator_all_and_anyone_else_their_own(self, store, who, expected):
        assert [c.council_id for c in domain.list_councils(store, who)] == expected

    @pytest.mark.parametrize("who, council, visible", [
        (OPERATOR, A, True), (ADMIN_A, A, True), (PARENT_A, A, True), (ADMIN_A, B, False), (PARENT_B, A, False),
        (GATEWAY, A, False),
    ])
    def test_a_council_is_visible_to_an_operator_and_its_own_callers_only(self, store, who, council, visible):
        if visible:
            assert domain.get_council(store, who, council).council_id == council
        else:
            with pytest.raises(NotFound):
                domain.get_council(store, who, council)

    def test_rename_keeps_the_creation_time(self, store):
        created_at = store.get_council(A).created_at
        council, created = domain.put_council(store, OPERATOR, A, "  Council A (North)  ")
        assert not created and council.name == "Council A (North)" and council.created_at == created_at


# --- enabling and disabling ----------------------------------------------------------------------


class TestEnableTool:
    @pytest.mark.parametrize("who, error", [
        (ADMIN_A, None),
        (ADMIN_B, NotFound),
        (PARENT_B, NotFound),
        (GATEWAY, NotFound),
        (WORKER_A, Forbidden),
        (MANAGER_A, Forbidden),
        (PARENT_A, Forbidden),
        (MACHINE_A, Forbidden),
        (OPERATOR, Forbidden),
    ])
    def test_only_the_council_admin_of_that_council_enables(self, store, who, error):
        if error is None:
            assert enable(store, who).enabled
        else:
            with pytest.raises(error):
                enable(store, who)
            assert store.get_enablement(A, "timeline") is None and store.events == []

    @pytest.mark.parametrize("audiences, scopes", [
        ([], []),
        (["aliens"], []),
        (["families"], ["messages:write"]),
        (["families", "staff"], ["cases:read", "cases:write"]),
    ])
    def test_audiences_and_scopes_must_be_what_the_tool_asks_for(self, store, audiences, scopes):
        with pytest.raises(Unprocessable):
            enable(store, audiences=audiences, scopes=scopes)
        assert store.events == []

    def test_audience_the_manifest_does_not_offer_is_refused(self, store):
        with pytest.raises(Unprocessable, match="families"):
            enable(store, tool="plans", audiences=["families"], scopes=[])

    def test_enabling_records_state_history_and_event_in_manifest_order(self, store):
        state = enable(store, audiences=["staff", "families"], scopes=["timeline:write", "cases:read"])
        assert state.audiences == ["families", "staff"] and state.scopes == ["cases:read", "timeline:write"]
        assert state.changed_by == ADMIN_A.subject and state.revision == 1
        assert [h.action for h in store.history(A, "timeline")] == ["enabled"]
        assert [e[0] for e in store.events] == ["tool_enabled"]

    def test_enabling_the_same_state_again_changes_nothing(self, store):
        first = enable(store)
        again = enable(store)
        assert again == first and len(store.events) == 1 and len(store.history(A, "timeline")) == 1

    def test_changing_the_audiences_is_a_new_enable(self, store):
        enable(store)
        state = enable(store, audiences=["families", "young_people"])
        assert state.revision == 2 and state.audiences == ["families", "young_people"]
        assert len(store.events) == 2

    @pytest.mark.parametrize("council, tool", [(A, "nope"), ("council-z", "timeline")])
    def test_unknown_tool_or_council_is_not_found(self, store, council, tool):
        who = replace(ADMIN_A, council_id=council)
        with pytest.raises(NotFound):
            enable(store, who=who, council=council, tool=tool)


class TestDisableTool:
    def test_disabling_keeps_the_data_and_records_what_was_switched_off(self, store):
        enable(store, audiences=["families"], scopes=["cases:read"])
        assert domain.disable_tool(store, ADMIN_A, A, "timeline") is True
        state = store.get_enablement(A, "timeline")
        assert not state.enabled and state.revision == 2
        latest, first = store.history(A, "timeline")
        assert (latest.action, latest.audiences, latest.scopes) == ("disabled", ["families"], ["cases:read"])
        assert first.action == "enabled"
        assert [e[0] for e in store.events] == ["tool_enabled", "tool_disabled"]

    @pytest.mark.parametrize("enable_first", [False, True])
    def test_disabling_a_tool_that_is_not_on_records_nothing(self, store, enable_first):
        if enable_first:
            enable(store)
            domain.disable_tool(store, ADMIN_A, A, "timeline")
        events = len(store.events)
        assert domain.disable_tool(store, ADMIN_A, A, "timeline") is False
        assert len(store.events) == events

    @pytest.mark.parametrize("who, error", [
        (ADMIN_B, NotFound), (WORKER_A, Forbidden), (OPERATOR, Forbidden), (GATEWAY, NotFound),
    ])
    def test_only_the_council_admin_of_that_council_disables(self, store, who, error):
        enable(store)
        with pytest.raises(error):
            domain.disable_tool(store, who, A, "timeline")
        assert store.get_enablement(A, "timeline").enabled


class TestReadingACouncilsTools:
    @pytest.mark.parametrize("who, error", [
        (OPERATOR, None), (ADMIN_A, None), (ADMIN_B, NotFound), (PARENT_B, NotFound), (GATEWAY, NotFound),
        (WORKER_A, Forbidden), (PARENT_A, Forbidden), (MACHINE_A, Forbidden),
    ])
    def test_council_tools_and_history_for_its_admin_or_an_operator(self, store, who, error):
        enable(store)
        if error is None:
            tools = domain.council_tools(store, who, A)
            assert {t.tool.tool_id: t.enabled for t in tools} == {"plans": False, "timeline": True}
            assert [h.action for h in domain.tool_history(store, who, A, "timeline")] == ["enabled"]
        else:
            with pytest.raises(error):
                domain.council_tools(store, who, A)
            with pytest.raises(error):
                domain.tool_history(store, who, A, "timeline")


class TestEnabledTools:
    @pytest.fixture
    def on(self, store):
        enable(store, tool="timeline", audiences=["families", "staff"], scopes=["cases:read"])
        enable(store, tool="plans", audiences=["young_people"], scopes=["plans:read"])
        return store

    @pytest.mark.parametrize("who, asked, expected", [
        (GATEWAY, None, ["plans", "timeline"]),
        (GATEWAY, "families", ["timeline"]),
        (GATEWAY, "young_people", ["plans"]),
        (PARENT_A, None, ["timeline"]),
        (PARENT_A, "young_people", ["timeline"]),  # a person always gets their own audience's
        (YOUNG_A, "families", ["plans"]),
        (WORKER_A, None, ["timeline"]),
    ])
    def test_who_sees_which_tools(self, on, who, asked, expected):
        assert [t.tool.tool_id for t in domain.enabled_tools(on, who, A, asked)] == expected

    @pytest.mark.parametrize("who", [PARENT_B, ADMIN_B, MACHINE_A, OPERATOR])
    def test_everyone_else_gets_not_found(self, on, who):
        with pytest.raises(NotFound):
            domain.enabled_tools(on, who, A, None)

    def test_unknown_council_is_not_found_even_for_the_gateway(self, on):
        with pytest.raises(NotFound):
            domain.enabled_tools(on, GATEWAY, "council-z", None)

    def test_disabled_tool_is_not_listed(self, on):
        domain.disable_tool(on, ADMIN_A, A, "plans")
        assert [t.tool.tool_id for t in domain.enabled_tools(on, GATEWAY, A, None)] == ["timeline"]

    def test_a_new_version_that_drops_a_scope_is_never_granted_it(self, on):
        domain.publish_tool(on, OPERATOR, "timeline", manifest(version="2.0.0", scopes=["timeline:write"],
                                                               audiences=["families"]))
        (tool,) = [t for t in domain.enabled_tools(on, GATEWAY, A, None) if t.tool.tool_id == "timeline"]
        assert tool.scopes == [] and tool.audiences == ["families"] and tool.tool.version == "2.0.0"
