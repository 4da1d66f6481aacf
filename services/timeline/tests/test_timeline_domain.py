"""Unit tests of the timeline's rules, with a fake store (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from marshmallow import ValidationError

from chassis.identity import Identity
from chassis.paging import decode_cursor, encode_cursor
from chassis.problems import Conflict, Forbidden, InvalidInput, NotFound, Unprocessable
from timeline.domain import (
    EVENT_KINDS,
    STAFF_KINDS,
    AbstractEntryStore,
    Timeline,
    Viewer,
    can_see,
    check_may_create,
    check_may_edit,
    entry_from_story,
    normalise_audience,
    parse_time,
)
from timeline.schemas import load_envelope
from timeline.worker import build_worker, handler_name, story_sources

FAMILY_ROLES = ["parent", "carer", "child", "young_person"]
STAFF_ROLES = ["social_worker", "manager"]
ROLES = FAMILY_ROLES + STAFF_ROLES
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeStore(AbstractEntryStore):
    """The repository contract over a dict, applying the domain's own rule."""

    def __init__(self):
        self.entries: dict[str, dict[str, Any]] = {}
        self.comment_list: list[dict[str, Any]] = []

    def _visible(self, viewer: Viewer, case_id: str):
        return [e for e in self.entries.values()
                if e["council_id"] == viewer.council_id and e["case_id"] == case_id
                and can_see(e, viewer.person_id, viewer.role)]

    def add_entry(self, entry):
        self.entries[entry["entry_id"]] = dict(entry)

    def visible_page(self, viewer, case_id, limit, cursor):
        items = sorted(self._visible(viewer, case_id), key=lambda e: (e["occurred_at"], e["entry_id"]), reverse=True)
        if cursor:
            when, last = decode_cursor(cursor)
            items = [e for e in items if (e["occurred_at"], e["entry_id"]) < (when, last)]
        page = items[:limit]
        more = len(items) > limit
        return page, encode_cursor(page[-1]["occurred_at"], page[-1]["entry_id"]) if more else None

    def visible_entry(self, viewer, case_id, entry_id):
        return next((e for e in self._visible(viewer, case_id) if e["entry_id"] == entry_id), None)

    def update_entry(self, viewer, case_id, entry_id, changes):
        self.entries[entry_id].update(changes)
        return self.entries[entry_id]

    def add_comment(self, viewer, case_id, entry_id, comment):
        self.entries[entry_id]["comment_count"] += 1
        self.comment_list.append(comment)

    def comments(self, viewer, case_id, entry_id, limit):
        return [c for c in self.comment_list if c["entry_id"] == entry_id][:limit]


class FakeAudit:
    def __init__(self):
        self.records: list[dict[str, Any]] = []

    def record(self, who, action, *, case_id=None, record_id=None, outcome="ok"):
        self.records.append({"actor": who.subject, "action": action, "case_id": case_id,
                             "record_id": record_id, "outcome": outcome})


def person(person_id: str, cases: dict[str, str], council: str = "council-a") -> Identity:
    staff = any(r in STAFF_ROLES for r in cases.values())
    return Identity(subject=person_id, actor="person", council_id=council,
                    audience="staff" if staff else "families", cases=cases)


def make_entry(**overrides) -> dict[str, Any]:
    entry = {"entry_id": "e1", "council_id": "council-a", "case_id": "case-1", "kind": "note", "title": "t",
             "body": "", "occurred_at": T0, "recorded_at": T0, "edited_at": None,
             "author": {"person_id": "author-1", "role": "social_worker"},
             "audience": {"kind": "case", "people": [], "exclude": []}, "comment_count": 0}
    entry.update(overrides)
    return entry


@pytest.fixture
def timeline():
    return Timeline(FakeStore(), FakeAudit(), clock=lambda: T0)


# --- visibility ------------------------------------------------------------------------------------
def expected_visibility(role: str | None, audience_kind: str, listed: bool, excluded: bool) -> bool:
    table = {  # role side -> audience kind -> sees (when not excluded)
        "staff": {"case": True, "staff": True, "named": True},
        "family": {"case": True, "staff": False, "named": listed},
    }
    if role is None or excluded:
        return False
    return table["staff" if role in STAFF_ROLES else "family"][audience_kind]


class TestVisibilityRule:
    @pytest.mark.parametrize("role", ROLES + [None])
    @pytest.mark.parametrize("audience_kind", ["case", "staff", "named"])
    @pytest.mark.parametrize("listed", [True, False])
    @pytest.mark.parametrize("excluded", [True, False])
    def test_matrix(self, role, audience_kind, listed, excluded):
        people = ["viewer"] if listed and audience_kind == "named" else (["someone"] if audience_kind == "named" else [])
        entry = make_entry(audience={"kind": audience_kind, "people": people,
                                     "exclude": ["viewer"] if excluded else ["other"]})
        assert can_see(entry, "viewer", role) is expected_visibility(role, audience_kind, listed and audience_kind == "named", excluded)

    @pytest.mark.parametrize("role", ROLES)
    @pytest.mark.parametrize("audience_kind", ["case", "staff", "named"])
    def test_author_always_sees_what_they_wrote_even_when_excluded(self, role, audience_kind):
        entry = make_entry(author={"person_id": "viewer", "role": role},
                           audience={"kind": audience_kind, "people": ["x"] if audience_kind == "named" else [],
                                     "exclude": ["viewer"]})
        assert can_see(entry, "viewer", role)

    def test_event_made_entry_has_no_author_and_follows_the_audience(self):
        entry = make_entry(author=None, source={"service": "cases", "event_type": "member_added", "event_id": "x"},
                           audience={"kind": "staff", "people": [], "exclude": []})
        entry.pop("author")
        assert can_see(entry, "sw", "social_worker")
        assert not can_see(entry, "mum", "parent")

    def test_parent_excluded_from_entry_cannot_read_it(self, timeline):
        sw = person("sw", {"case-1": "social_worker"})
        entry, _ = timeline.create_entry(sw, "case-1", {"kind": "decision", "title": "New address",
                                                        "occurred_at": "2026-01-01T10:00:00Z",
                                                        "audience": {"kind": "case", "exclude": ["dad"]}})
        with pytest.raises(NotFound):
            timeline.get_entry(person("dad", {"case-1": "parent"}), "case-1", entry["entry_id"])
        seen, _ = timeline.get_entry(person("mum", {"case-1": "parent"}), "case-1", entry["entry_id"])
        assert seen["title"] == "New address"


# --- who may write what ------------------------------------------------------------------------------------
def expected_create(role: str, kind: str, audience_kind: str):
    if kind in EVENT_KINDS:
        return Unprocessable
    if role in STAFF_ROLES:
        return None if kind in STAFF_KINDS else Forbidden
    if kind != "family_note":
        return Forbidden
    return Unprocessable if audience_kind == "staff" else None


class TestWhoMayCreate:
    @pytest.mark.parametrize("role", ROLES)
    @pytest.mark.parametrize("kind", sorted(STAFF_KINDS | EVENT_KINDS | {"family_note"}))
    @pytest.mark.parametrize("audience_kind", ["case", "staff", "named"])
    def test_matrix(self, role, kind, audience_kind):
        viewer = Viewer("p", "council-a", role)
        expected = expected_create(role, kind, audience_kind)
        if expected is None:
            check_may_create(viewer, kind, audience_kind)
        else:
            with pytest.raises(expected):
                check_may_create(viewer, kind, audience_kind)

    def test_default_audience_is_everyone_on_the_case(self, timeline):
        entry, _ = timeline.create_entry(person("mum", {"case-1": "parent"}), "case-1",
                                         {"kind": "family_note", "title": "Our side", "occurred_at": "2026-01-02T09:00:00+01:00"})
        assert entry["audience"] == {"kind": "case", "people": [], "exclude": []}
        assert entry["author"] == {"person_id": "mum", "role": "parent"}
        assert entry["occurred_at"] == datetime(2026, 1, 2, 8, tzinfo=UTC)

    def test_caller_without_a_role_on_the_case_gets_not_found_and_is_audited(self, timeline):
        with pytest.raises(NotFound):
            timeline.create_entry(person("sw", {"case-2": "social_worker"}), "case-1",
                                  {"kind": "note", "title": "x", "occurred_at": "2026-01-01T00:00:00Z"})
        assert timeline.store.entries == {}
        assert timeline.audit.records[-1]["outcome"] == "not-found"

    @pytest.mark.parametrize("audience,error", [
        ({"kind": "named"}, InvalidInput),
        ({"kind": "case", "people": ["a"]}, InvalidInput),
        ({"kind": "everyone"}, InvalidInput),
    ])
    def test_inconsistent_audience_is_refused(self, audience, error):
        with pytest.raises(error):
            normalise_audience(audience)

    @pytest.mark.parametrize("value", ["2026-01-01T10:00:00", "yesterday"])
    def test_occurred_at_needs_a_zoned_iso_time(self, value):
        with pytest.raises(InvalidInput):
            parse_time(value)


# --- editing -----------------------------------------------------------------------------------------------
class TestEditing:
    def test_author_may_edit(self):
        check_may_edit(make_entry(author={"person_id": "sw", "role": "social_worker"}),
                       Viewer("sw", "council-a", "social_worker"))

    @pytest.mark.parametrize("staff_role", STAFF_ROLES)
    @pytest.mark.parametrize("family_role", FAMILY_ROLES)
    def test_staff_can_never_edit_what_a_family_wrote(self, staff_role, family_role):
        entry = make_entry(kind="family_note", author={"person_id": "mum", "role": family_role})
        with pytest.raises(Forbidden, match="Staff cannot edit what a family wrote"):
            check_may_edit(entry, Viewer("sw", "council-a", staff_role))

    @pytest.mark.parametrize("role", ROLES)
    def test_nobody_but_the_author_edits(self, role):
        with pytest.raises(Forbidden):
            check_may_edit(make_entry(author={"person_id": "other", "role": "social_worker"}),
                           Viewer("me", "council-a", role))

    @pytest.mark.parametrize("role", ROLES)
    def test_event_made_entries_are_not_editable(self, role):
        entry = make_entry(source={"service": "cases", "event_type": "member_added", "event_id": "e"})
        entry.pop("author")
        with pytest.raises(Conflict):
            check_may_edit(entry, Viewer("me", "council-a", role))

    def test_edit_changes_title_and_body_and_marks_it_edited(self, timeline):
        mum = person("mum", {"case-1": "parent"})
        entry, _ = timeline.create_entry(mum, "case-1", {"kind": "family_note", "title": "a",
                                                         "occurred_at": "2026-01-01T00:00:00Z"})
        edited, _ = timeline.edit_entry(mum, "case-1", entry["entry_id"], {"body": "b"})
        assert (edited["title"], edited["body"], edited["edited_at"]) == ("a", "b", T0)

    def test_edit_of_an_entry_the_caller_cannot_see_is_not_found(self, timeline):
        sw = person("sw", {"case-1": "social_worker"})
        entry, _ = timeline.create_entry(sw, "case-1", {"kind": "note", "title": "a", "occurred_at": "2026-01-01T00:00:00Z",
                                                        "audience": {"kind": "staff"}})
        with pytest.raises(NotFound):
            timeline.edit_entry(person("mum", {"case-1": "parent"}), "case-1", entry["entry_id"], {"title": "x"})


class TestCommentsAndPaging:
    def test_anyone_who_sees_the_entry_may_comment(self, timeline):
        sw = person("sw", {"case-1": "social_worker"})
        entry, _ = timeline.create_entry(sw, "case-1", {"kind": "visit", "title": "Visit", "occurred_at": "2026-01-01T00:00:00Z"})
        timeline.add_comment(person("mum", {"case-1": "parent"}), "case-1", entry["entry_id"], "Thanks")
        assert [c["body"] for c in timeline.list_comments(sw, "case-1", entry["entry_id"])] == ["Thanks"]
        assert timeline.store.entries[entry["entry_id"]]["comment_count"] == 1

    def test_pages_cover_every_visible_entry_once_newest_first(self, timeline):
        sw = person("sw", {"case-1": "social_worker"})
        for i in range(23):
            timeline.create_entry(sw, "case-1", {"kind": "note", "title": f"n{i}",
                                                 "occurred_at": (T0 + timedelta(days=i % 5)).isoformat()})
        seen, cursor = [], None
        while True:
            items, cursor, _ = timeline.list_entries(sw, "case-1", 4, cursor)
            seen.extend(items)
            if cursor is None:
                break
        assert len(seen) == 23 == len({e["entry_id"] for e in seen})
        keys = [(e["occurred_at"], e["entry_id"]) for e in seen]
        assert keys == sorted(keys, reverse=True)


# --- events --------------------------------------------------------------------------------------------------
def envelope(**story_overrides) -> dict[str, Any]:
    story = {"case_id": "case-1", "kind": "membership", "title": "Grace joined the case as carer",
             "occurred_at": "2026-01-01T10:00:00+00:00", "audience": {"kind": "case", "people": [], "exclude": []}}
    story.update(story_overrides)
    return {"id": "abc", "type": "member_added", "source": "cases", "council_id": "council-a",
            "occurred_at": "2026-01-01T10:00:01+00:00", "data": {}, "story": story}


class TestStories:
    def test_story_becomes_an_entry_with_its_source(self):
        event = load_envelope(envelope())
        entry = entry_from_story(event, event["story"], T0)
        assert entry["source"] == {"service": "cases", "event_type": "member_added", "event_id": "abc"}
        assert entry["council_id"] == "council-a" and "author" not in entry
        assert entry["audience"]["kind"] == "case"

    def test_event_without_story_is_recognised(self):
        raw = envelope()
        raw.pop("story")
        assert load_envelope(raw)["story"] is None

    @pytest.mark.parametrize("overrides", [
        {"title": "x" * 201}, {"title": ""}, {"kind": "family_note"}, {"kind": "gossip"}, {"case_id": "../x"},
        {"audience": {"kind": "named", "people": [], "exclude": []}}, {"audience": {"kind": "all"}},
        {"colour": "red"}, {"occurred_at": "2026-01-01T10:00:00"}, {"body": "x" * 20001},
    ])
    def test_invalid_story_is_refused(self, overrides):
        with pytest.raises(ValidationError):
            load_envelope(envelope(**overrides))

    def test_missing_council_is_refused(self):
        raw = envelope()
        raw.pop("council_id")
        with pytest.raises(ValidationError):
            load_envelope(raw)


class TestWorkerConfiguration:
    def test_sources_parse(self):
        assert story_sources(" cases.member_added, vendor-demo.visit_logged,,cases.member_added") == [
            ("cases", "member_added"), ("vendor-demo", "visit_logged")]

    @pytest.mark.parametrize("raw", ["cases", "cases.", ".x", "Cases.x", "cases.member-added"])
    def test_bad_source_is_refused(self, raw):
        with pytest.raises(ValueError):
            story_sources(raw)

    def test_worker_has_one_reliable_handler_per_configured_source(self):
        from chassis.config import Settings
        from chassis.events import worker_topologies

        settings = Settings(service_name="timeline",
                            extra={"TIMELINE_STORY_SOURCES": "cases.member_added,vendor-demo.visit_logged"})
        worker = build_worker(settings)
        assert worker.name == "timeline"
        queues = sorted(t.queue.name for t in worker_topologies(worker))
        assert queues == ["evt-cases-member_added--timeline.handle_cases_member_added",
                          "evt-vendor-demo-visit_logged--timeline.handle_vendor_demo_visit_logged"]
        assert handler_name("vendor-demo", "visit_logged") == "handle_vendor_demo_visit_logged"

    def test_default_sources_are_the_cases_membership_events(self):
        from chassis.config import Settings
        from chassis.events import worker_topologies

        worker = build_worker(Settings(service_name="timeline"))
        assert {t.queue.routing_key for t in worker_topologies(worker)} == {"member_added", "member_removed"}
