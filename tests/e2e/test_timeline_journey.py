"""Through the gateway, as the people who use it: a council switches the timeline on,
a social worker records what happened, and each person sees exactly what they may."""

from __future__ import annotations

import time

import pytest

from chassis.testing import report

pytestmark = pytest.mark.e2e

TIMELINE = "/api/tools/timeline/cases/{case}/entries"
PROBLEM = "application/problem+json"


def entries_path(case: str = "case-1") -> str:
    return TIMELINE.format(case=case)


def tool_ids(session) -> set[str]:
    resp = session.ok("GET", "/api/tools")
    return {t["tool_id"] for t in resp.json()["items"]}


def wait_for(predicate, timeout: float) -> float:
    """Seconds until predicate() held; fails past timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)  # polling interval of a deadline-bound check
    raise AssertionError(f"not true within {timeout}s")


def all_visible(session, case: str = "case-1") -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"limit": 50, **({"cursor": cursor} if cursor else {})}
        page = session.ok("GET", entries_path(case), params=params).json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


@pytest.fixture(scope="module")
def timeline_on(sessions):
    admin = sessions("admin.a")
    admin.ok("PUT", "/api/catalogue/councils/council-a/tools/timeline",
             json={"audiences": ["families", "young_people", "staff"], "scopes": ["timeline:read"]})
    wait_for(lambda: "timeline" in tool_ids(sessions("parent1.a")), 5)


@pytest.fixture(scope="module")
def entries(timeline_on, sessions):
    worker = sessions("worker.a")
    made = {}
    for key, body in {
        "court": {"kind": "court_outcome", "title": "Interim supervision order made",
                  "body": "The court made an interim supervision order for six months.",
                  "occurred_at": "2026-10-01T10:00:00+00:00"},
        "staff_only": {"kind": "note", "title": "Risk discussion in supervision",
                       "occurred_at": "2026-10-02T10:00:00+00:00",
                       "audience": {"kind": "staff", "people": [], "exclude": []}},
        "excluding_alex": {"kind": "decision", "title": "Yan's new address agreed",
                           "body": "Yan now lives at the new address on file.",
                           "occurred_at": "2026-10-03T10:00:00+00:00",
                           "audience": {"kind": "case", "people": [], "exclude": ["alex"]}},
    }.items():
        resp = worker.post(entries_path(), json=body)
        assert resp.status_code == 201, resp.text
        made[key] = resp.json()["entry_id"]
    return made


VISIBLE = {
    "parent1.a": {"court", "excluding_alex"},
    "parent2.a": {"court"},
    "carer.a": {"court", "excluding_alex"},
    "young.a": {"court", "excluding_alex"},
    "worker.a": {"court", "staff_only", "excluding_alex"},
    "manager.a": {"court", "staff_only", "excluding_alex"},
}
OUTSIDERS = ["otherparent.a", "otherworker.a", "parent.b", "worker.b", "admin.a"]


class TestWhoSeesWhat:
    @pytest.mark.parametrize("login", sorted(VISIBLE))
    def test_case_members_see_exactly_their_entries(self, login, entries, sessions):
        seen = {e["entry_id"] for e in all_visible(sessions(login))}
        mine = {entries[k] for k in VISIBLE[login]}
        assert seen & set(entries.values()) == mine

    @pytest.mark.parametrize("login", sorted(VISIBLE))
    @pytest.mark.parametrize("key", ["court", "staff_only", "excluding_alex"])
    def test_single_entry_reads_match_the_list(self, login, key, entries, sessions):
        resp = sessions(login).get(f"{entries_path()}/{entries[key]}")
        if key in VISIBLE[login]:
            assert resp.status_code == 200 and resp.json()["entry_id"] == entries[key]
        else:
            assert resp.status_code == 404 and resp.headers["content-type"].startswith(PROBLEM)

    @pytest.mark.parametrize("login", OUTSIDERS)
    def test_outsiders_get_404_and_nothing_of_case_one(self, login, entries, sessions):
        session = sessions(login)
        listing = session.get(entries_path())
        if login.endswith(".b"):
            # council B has its own case-1 (and its own "pat"): it must see none of council A's entries
            assert listing.status_code == 200
            assert not {e["entry_id"] for e in listing.json()["items"]} & set(entries.values())
        else:
            assert listing.status_code == 404, listing.text
            assert listing.headers["content-type"].startswith(PROBLEM)
        for entry_id in entries.values():
            resp = session.get(f"{entries_path()}/{entry_id}")
            assert resp.status_code == 404
            assert "Interim" not in resp.text and "address" not in resp.text

    def test_anonymous_caller_gets_401_problem(self, entries, client):
        anon = client.anonymous()
        for path in (entries_path(), f"{entries_path()}/{entries['court']}", "/api/tools"):
            resp = anon.get(path)
            assert resp.status_code == 401 and resp.headers["content-type"].startswith(PROBLEM)
            assert "Interim" not in resp.text

    def test_membership_events_appear_on_the_timeline(self, entries, sessions):
        titles = {e["title"] for e in all_visible(sessions("worker.a"))}
        assert "Pat Parent joined the case as a parent" in titles


class TestFamilyVoice:
    def test_parent_adds_a_family_note_and_comments_and_staff_cannot_edit_it(self, entries, sessions):
        parent, worker = sessions("parent1.a"), sessions("worker.a")
        note = parent.ok("POST", entries_path(), json={
            "kind": "family_note", "title": "What we want the panel to know",
            "body": "We have been to every session.", "occurred_at": "2026-10-05T18:00:00+00:00"}).json()
        parent.ok("POST", f"{entries_path()}/{entries['court']}/comments", json={"body": "We understand."})
        assert worker.get(f"{entries_path()}/{note['entry_id']}").status_code == 200
        edit = worker.patch(f"{entries_path()}/{note['entry_id']}", json={"body": "changed by staff"})
        assert edit.status_code == 403 and edit.headers["content-type"].startswith(PROBLEM)
        assert parent.ok("GET", f"{entries_path()}/{note['entry_id']}").json()["body"] == "We have been to every session."
        comments = worker.ok("GET", f"{entries_path()}/{entries['court']}/comments").json()["items"]
        assert [c["body"] for c in comments] == ["We understand."]


BAD_WRITES = [
    ("malformed JSON", {"content": b'{"kind": "note", "title": ', "headers": {"Content-Type": "application/json"}}),
    ("unknown field", {"json": {"kind": "note", "title": "t", "occurred_at": "2026-10-01T10:00:00+00:00",
                                "secret": "x"}}),
    ("wrong type", {"json": {"kind": "note", "title": 42, "occurred_at": "2026-10-01T10:00:00+00:00"}}),
    ("10 MB body", {"content": b'{"kind": "note", "title": "' + b"x" * (10 * 1024 * 1024) + b'"}',
                    "headers": {"Content-Type": "application/json"}}),
]


class TestBadInputChangesNothing:
    @pytest.mark.parametrize("name,request_kwargs", BAD_WRITES, ids=[b[0] for b in BAD_WRITES])
    def test_bad_entry_write_gets_4xx_problem(self, name, request_kwargs, entries, sessions):
        worker = sessions("worker.a")
        before = all_visible(worker)
        resp = worker.post(entries_path(), **request_kwargs)
        assert 400 <= resp.status_code < 500, (name, resp.status_code)
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert {"type", "title", "status", "detail"} <= set(resp.json())
        assert all_visible(worker) == before

    @pytest.mark.parametrize("case", ["no-such-case", "case-2"])
    def test_writing_to_a_case_not_yours_is_404(self, case, entries, sessions):
        before = all_visible(sessions("otherworker.a"), "case-2")
        resp = sessions("worker.a").post(entries_path(case), json={
            "kind": "note", "title": "t", "occurred_at": "2026-10-01T10:00:00+00:00"})
        assert resp.status_code == 404 and resp.headers["content-type"].startswith(PROBLEM)
        assert all_visible(sessions("otherworker.a"), "case-2") == before

    def test_foreign_councils_case_is_404_even_with_the_same_id(self, entries, sessions):
        before = all_visible(sessions("worker.b"))
        resp = sessions("parent.b").post(entries_path(), json={
            "kind": "note", "title": "t", "occurred_at": "2026-10-01T10:00:00+00:00"})
        assert resp.status_code in (403, 404)
        assert all_visible(sessions("worker.b")) == before


class TestSwitchingTheToolOffAndOn:
    """Last in the module: it switches the tool off and on again."""

    def test_off_within_a_second_then_on_again_with_every_entry_back(self, entries, sessions):
        admin, parent = sessions("admin.a"), sessions("parent1.a")
        before = {e["entry_id"] for e in all_visible(parent)}
        assert entries["court"] in before

        resp = admin.delete("/api/catalogue/councils/council-a/tools/timeline")
        assert resp.status_code == 204
        elapsed = wait_for(lambda: parent.get(entries_path()).status_code == 404, 3)
        assert elapsed <= 1.0, f"switch-off took {elapsed:.2f}s at the gateway"
        report(f"timeline switched off by a council admin: families get 404 after {elapsed * 1000:.0f} ms")
        assert "timeline" not in tool_ids(parent)
        off = parent.get(entries_path())
        assert off.headers["content-type"].startswith(PROBLEM)
        # council B's timeline is untouched
        assert sessions("parent.b").get(entries_path()).status_code == 200

        admin.ok("PUT", "/api/catalogue/councils/council-a/tools/timeline",
                 json={"audiences": ["families", "young_people", "staff"], "scopes": ["timeline:read"]})
        wait_for(lambda: parent.get(entries_path()).status_code == 200, 3)
        assert "timeline" in tool_ids(parent)
        assert {e["entry_id"] for e in all_visible(parent)} == before
        history = admin.ok("GET", "/api/catalogue/councils/council-a/tools/timeline/history").json()["items"]
        assert [h["action"] for h in history][:3] == ["enabled", "disabled", "enabled"]
