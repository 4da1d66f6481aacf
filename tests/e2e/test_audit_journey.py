"""Through the gateway: every read of case data leaves one audit record, staff with the right role ask
"who viewed this" in one call, nobody can change the trail, and a subject access export holds what the
person may see and lists what they may not only as withheld."""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest

pytestmark = pytest.mark.e2e

ENTRIES = "/api/tools/timeline/cases/case-1/entries"
SECRET = "ZQX-SECRET-7781"  # only in the entry alex is excluded from
STAFF_SECRET = "QQV-STAFFONLY-4410"
ALEX_OWN = "Alex's own words about the weekend"
PROBLEM = "application/problem+json"


def wait_for(predicate, timeout: float) -> None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return
        time.sleep(0.05)  # polling interval of a deadline-bound check
    raise AssertionError(f"not true within {timeout}s")


@pytest.fixture(scope="module")
def entries(sessions):
    admin = sessions("admin.a")
    admin.ok("PUT", "/api/catalogue/councils/council-a/tools/timeline",
             json={"audiences": ["families", "young_people", "staff"], "scopes": ["timeline:read"]})
    wait_for(lambda: sessions("parent2.a").get(ENTRIES).status_code == 200, 5)
    worker = sessions("worker.a")
    made = {}
    for key, who, body in [
        ("open", worker, {"kind": "visit", "title": "Home visit went well", "occurred_at": "2026-11-01T10:00:00+00:00"}),
        ("excluded", worker, {"kind": "decision", "title": f"Placement address decided {SECRET}",
                              "body": f"The new address is {SECRET}.", "occurred_at": "2026-11-02T10:00:00+00:00",
                              "audience": {"kind": "case", "people": [], "exclude": ["alex"]}}),
        ("staff_only", worker, {"kind": "note", "title": f"Supervision note {STAFF_SECRET}",
                                "occurred_at": "2026-11-03T10:00:00+00:00",
                                "audience": {"kind": "staff", "people": [], "exclude": []}}),
        ("alex_own", sessions("parent2.a"), {"kind": "family_note", "title": ALEX_OWN,
                                             "occurred_at": "2026-11-04T10:00:00+00:00"}),
    ]:
        made[key] = who.ok("POST", ENTRIES, json=body).json()["entry_id"]
    return made


def trail(session, **params) -> dict:
    resp = session.get("/api/audit", params={"limit": 500, **params})
    assert resp.status_code == 200, resp.text
    return resp.json()


def of_case_data(items: list[dict]) -> list[dict]:
    """The records of case data, without the looks at the trail itself."""
    return [i for i in items if i["action"] != "audit.read"]


class TestEveryReadIsAudited:
    def test_a_scripted_session_of_n_reads_makes_exactly_n_records(self, entries, sessions):
        admin, alex = sessions("admin.a"), sessions("parent2.a")
        before = of_case_data(trail(admin, actor="alex")["items"])
        reads = [
            ("GET", ENTRIES),
            ("GET", f"{ENTRIES}/{entries['open']}"),
            ("GET", f"{ENTRIES}/{entries['alex_own']}"),
            ("GET", f"{ENTRIES}/{entries['excluded']}"),  # refused (404): still one record
            ("GET", "/api/cases/cases/case-1"),
            ("GET", ENTRIES),
        ]
        for method, path in reads:
            alex.request(method, path)
        after = of_case_data(trail(admin, actor="alex")["items"])
        assert len(after) - len(before) == len(reads)
        new = after[: len(reads)]
        assert all(r["actor"] == "alex" and r["council_id"] == "council-a" and r["at"] for r in new)
        assert {r["service"] for r in new} == {"timeline", "cases"}
        assert [r["outcome"] for r in new if r["record_id"] == entries["excluded"]] == ["not-found"]
        assert [r["at"] for r in after] == sorted((r["at"] for r in after), reverse=True)

    def test_who_viewed_this_record_in_one_call(self, entries, sessions):
        sessions("parent1.a").ok("GET", f"{ENTRIES}/{entries['excluded']}")
        sessions("parent2.a").get(f"{ENTRIES}/{entries['excluded']}")
        answer = trail(sessions("manager.a"), record_id=entries["excluded"])
        views = {(r["actor"], r["outcome"]) for r in answer["items"] if r["action"] == "timeline.entry.read"}
        assert ("pat", "ok") in views and ("alex", "not-found") in views
        assert "timeline" in answer["services"] and "cases" in answer["services"]

    def test_who_viewed_this_case_in_one_call(self, entries, sessions):
        sessions("carer.a").ok("GET", "/api/cases/cases/case-1")
        sessions("young.a").ok("GET", ENTRIES)
        items = trail(sessions("manager.a"), case_id="case-1")["items"]
        actors = {(r["service"], r["actor"]) for r in items}
        assert ("cases", "cam") in actors and ("timeline", "yan") in actors
        assert all(r["case_id"] == "case-1" and r["council_id"] == "council-a" for r in items)


class TestTheTrailCannotBeChanged:
    PATHS = ["/api/audit", "/api/tools/timeline/audit", "/api/cases/audit"]

    @pytest.mark.parametrize("path", PATHS)
    @pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
    @pytest.mark.parametrize("login", ["admin.a", "manager.a"])
    def test_writes_on_audit_paths_fail_and_change_nothing(self, entries, sessions, login, method, path):
        admin = sessions("admin.a")
        before = of_case_data(trail(admin, record_id=entries["open"])["items"])
        resp = sessions(login).request(method, path, params={"case_id": "case-1"}, json={"outcome": "ok"})
        assert 400 <= resp.status_code < 500, (method, path, resp.status_code)
        assert of_case_data(trail(admin, record_id=entries["open"])["items"]) == before


class TestOnlyTheRightRolesReadTheTrail:
    @pytest.mark.parametrize("login", ["parent1.a", "parent2.a", "young.a", "worker.a", "otherworker.a",
                                       "otherparent.a"])
    def test_others_get_404(self, entries, sessions, login):
        session = sessions(login)
        for params in ({"case_id": "case-1"}, {"record_id": entries["open"]}):
            resp = session.get("/api/audit", params=params)
            assert resp.status_code == 404, (login, resp.text)
            assert resp.headers["content-type"].startswith(PROBLEM)
        direct = session.get("/api/tools/timeline/audit", params={"case_id": "case-1"})
        assert direct.status_code == 404

    def test_another_councils_admin_sees_nothing_of_this_council(self, entries, sessions):
        items = trail(sessions("admin.b"), case_id="case-1")["items"]
        assert all(r["council_id"] == "council-b" for r in items)
        assert not [r for r in items if r["record_id"] in entries.values()]

    def test_anonymous_gets_401(self, entries, client):
        assert client.anonymous().get("/api/audit", params={"case_id": "case-1"}).status_code == 401


def export_for(session, person_id: str = "alex", council: str = "council-a"):
    return session.post(f"/api/councils/{council}/subject-access/{person_id}")


@pytest.fixture(scope="module")
def archive(entries, sessions):
    """alex's subject access export, as the council's administrator receives it: {file name: text}."""
    resp = export_for(sessions("admin.a"))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(resp.content))
    return {name: zf.read(name).decode("utf-8") for name in zf.namelist()}


class TestSubjectAccessExport:
    def test_the_zip_has_a_summary_a_file_per_tool_and_a_withheld_list(self, archive):
        assert {"summary.txt", "withheld.json", "cases.json", "timeline.json"} <= set(archive)
        assert {"documents.json", "messaging.json", "referrals.json", "plans.json"} <= set(archive)
        summary = archive["summary.txt"]
        assert "Subject access export for Alex Parent" in summary
        assert "FOR THE STAFF REVIEWER" in summary and "{" not in summary

    def test_it_holds_alexs_own_records(self, archive, entries):
        timeline = json.loads(archive["timeline.json"])
        shown = {i["id"] for i in timeline["items"]}
        assert {entries["alex_own"], entries["open"]} <= shown
        assert ALEX_OWN in archive["timeline.json"] and ALEX_OWN in archive["summary.txt"]
        cases = json.loads(archive["cases.json"])
        assert {i["kind"] for i in cases["items"]} >= {"person", "case membership"}

    def test_excluded_and_staff_only_records_appear_only_as_withheld(self, archive, entries):
        for name, text in archive.items():
            assert SECRET not in text, name
            assert STAFF_SECRET not in text, name
            if name != "withheld.json":
                assert entries["excluded"] not in text and entries["staff_only"] not in text, name
        withheld = json.loads(archive["withheld.json"])["items"]
        by_id = {w["id"]: w for w in withheld}
        assert by_id[entries["excluded"]]["reason"] == "excluded"
        assert by_id[entries["staff_only"]]["reason"] == "staff only"
        assert all(set(w) == {"id", "kind", "date", "reason", "service"} for w in withheld)

    def test_the_export_is_audited(self, archive, sessions):
        items = trail(sessions("admin.a"), record_id="alex")["items"]
        exports = {r["service"] for r in items if r["action"] == "subject_access.export" and r["actor"] == "adm-a"}
        assert {"cases", "timeline", "documents", "messaging", "referrals", "plans"} <= exports

    @pytest.mark.parametrize("login,council", [("manager.a", "council-a"), ("worker.a", "council-a"),
                                               ("parent2.a", "council-a"), ("admin.b", "council-a"),
                                               ("admin.a", "council-b")])
    def test_only_the_councils_admin_may_export(self, entries, sessions, login, council):
        resp = export_for(sessions(login), council=council)
        assert resp.status_code == 404, (login, resp.status_code)
        assert SECRET not in resp.text

    def test_an_unknown_person_is_404(self, entries, sessions):
        assert export_for(sessions("admin.a"), person_id="nobody-here").status_code == 404
