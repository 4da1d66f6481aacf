"""Through the gateway, as the people who use it: a council switches documents on, a social worker and a
parent share documents, each person sees and downloads exactly what they may, a 40 MB file survives the
round trip byte for byte, unsafe files are refused, and the shares reach the timeline once, for the same
audience."""

from __future__ import annotations

import hashlib
import socket
import time
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.e2e


DOCS = "/api/tools/documents/cases/{case}/documents"
TIMELINE = "/api/tools/timeline/cases/{case}/entries"
PROBLEM = "application/problem+json"
OCTETS = {"Content-Type": "application/octet-stream"}
MB = 1024 * 1024
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
TEXT = b"Notes from the core group meeting.\n" * 10


def docs_path(case: str = "case-1") -> str:
    return DOCS.format(case=case)


def tool_ids(session) -> set[str]:
    return {t["tool_id"] for t in session.ok("GET", "/api/tools").json()["items"]}


def wait_for(predicate, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)  # polling interval of a deadline-bound check
    raise AssertionError(f"not true within {timeout}s")


def upload(session, data, filename: str, case: str = "case-1", **params):
    return session.post(docs_path(case), params={"filename": filename, **params}, content=data, headers=OCTETS)


def listed(session, case: str = "case-1") -> set[str]:
    resp = session.get(docs_path(case), params={"limit": 100})
    assert resp.status_code == 200, resp.text
    return {d["document_id"] for d in resp.json()["items"]}


def is_problem(resp, status: int) -> None:
    assert resp.status_code == status, resp.text[:300]
    assert resp.headers["content-type"].startswith(PROBLEM)


@pytest.fixture(scope="module")
def documents_on(sessions):
    admin = sessions("admin.a")
    for tool in ("documents", "timeline"):
        admin.ok("PUT", f"/api/catalogue/councils/council-a/tools/{tool}",
                 json={"audiences": ["families", "young_people", "staff"], "scopes": [f"{tool}:read"]})
    wait_for(lambda: {"documents", "timeline"} <= tool_ids(sessions("parent1.a")), 5)


@pytest.fixture(scope="module")
def shared(documents_on, sessions):
    worker, parent = sessions("worker.a"), sessions("parent1.a")
    made = {}
    for key, (session, data, name, params) in {
        "for_case_not_alex": (worker, PDF, "Child protection plan.pdf", {"audience": "case", "exclude": ["alex"]}),
        "staff_only": (worker, TEXT, "Supervision notes.txt", {"audience": "staff"}),
        "parent_to_worker": (parent, PNG, "school report photo.png", {"audience": "named", "people": ["sw1"]}),
    }.items():
        resp = upload(session, data, name, **params)
        assert resp.status_code == 201, resp.text
        made[key] = resp.json()
    return made


VISIBLE = {
    "parent1.a": {"for_case_not_alex", "parent_to_worker"},
    "parent2.a": set(),
    "carer.a": {"for_case_not_alex"},
    "young.a": {"for_case_not_alex"},
    "worker.a": {"for_case_not_alex", "staff_only", "parent_to_worker"},
    "manager.a": {"for_case_not_alex", "staff_only", "parent_to_worker"},
}
OUTSIDERS = ["otherparent.a", "otherworker.a", "parent.b", "worker.b", "admin.a"]


class TestWhoSeesWhat:
    @pytest.mark.parametrize("login", sorted(VISIBLE))
    def test_case_members_list_and_download_exactly_their_documents(self, login, shared, sessions):
        session = sessions(login)
        ids = {k: d["document_id"] for k, d in shared.items()}
        assert listed(session) & set(ids.values()) == {ids[k] for k in VISIBLE[login]}
        for key, document in shared.items():
            resp = session.get(f"{docs_path()}/{document['document_id']}/content")
            if key in VISIBLE[login]:
                assert resp.status_code == 200
                assert hashlib.sha256(resp.content).hexdigest() == document["sha256"]
                assert resp.headers["x-content-type-options"] == "nosniff"
                assert resp.headers["content-disposition"].startswith("attachment; filename=")
                assert "filename*=UTF-8''" in resp.headers["content-disposition"]
            else:
                is_problem(resp, 404)

    @pytest.mark.parametrize("login", OUTSIDERS)
    def test_outsiders_get_404_and_nothing_of_case_one(self, login, shared, sessions):
        session = sessions(login)
        listing = session.get(docs_path())
        if login in ("parent.b", "worker.b"):
            # council B has its own case-1 and its own "pat": none of council A's documents are there
            assert listing.status_code == 200
            assert not {d["document_id"] for d in listing.json()["items"]} & {
                d["document_id"] for d in shared.values()}
        else:
            is_problem(listing, 404)
        for document in shared.values():
            is_problem(session.get(f"{docs_path()}/{document['document_id']}/content"), 404)

    def test_who_is_excluded_is_shown_only_to_staff_and_the_uploader(self, shared, sessions):
        path = f"{docs_path()}/{shared['for_case_not_alex']['document_id']}"
        assert sessions("parent1.a").ok("GET", path).json()["audience"] == {"kind": "case"}
        assert sessions("manager.a").ok("GET", path).json()["audience"]["exclude"] == ["alex"]


class TestSharing:
    def test_young_person_shares_with_the_case_but_not_staff_only(self, documents_on, sessions):
        young = sessions("young.a")
        is_problem(upload(young, TEXT, "private.txt", audience="staff"), 422)
        resp = upload(young, TEXT, "my wishes.txt")
        assert resp.status_code == 201, resp.text
        assert resp.json()["uploaded_by"] == {"person_id": "yan", "role": "child"}
        assert resp.json()["document_id"] in listed(sessions("parent2.a"))

    def test_forty_megabytes_round_trip_through_the_gateway_byte_identical(self, documents_on, sessions):
        worker = sessions("worker.a")
        digest = hashlib.sha256()
        block = hashlib.sha256(b"e2e").digest() * 2048

        def body():
            head = b"%PDF-1.7\n"
            digest.update(head)
            yield head
            sent = len(head)
            while sent < 40 * MB:
                chunk = block[: min(len(block), 40 * MB - sent)]
                digest.update(chunk)
                sent += len(chunk)
                yield chunk

        resp = worker.post(docs_path(), params={"filename": "court bundle.pdf", "audience": "staff"},
                           content=body(), headers=OCTETS)
        assert resp.status_code == 201, resp.text
        assert resp.json()["sha256"] == digest.hexdigest() and resp.json()["size"] == 40 * MB
        got = hashlib.sha256()
        size = 0
        with worker.http.stream("GET", f"{docs_path()}/{resp.json()['document_id']}/content",
                                headers=worker._headers()) as download:
            assert download.status_code == 200
            for chunk in download.iter_bytes():
                got.update(chunk)
                size += len(chunk)
        assert size == 40 * MB and got.hexdigest() == digest.hexdigest()

    @pytest.mark.parametrize("data,name,status", [
        (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "invoice.pdf", 415),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "logo.svg", 415),
        (b"%PDF-1.4\n<html><script>alert(1)</script></html>", "polyglot.pdf", 422),
        (b"MZ\x90\x00" + b"\x00" * 100, "setup.pdf", 415),
    ])
    def test_unsafe_files_are_refused(self, documents_on, sessions, data, name, status):
        worker = sessions("worker.a")
        before = listed(worker)
        is_problem(upload(worker, data, name), status)
        assert listed(worker) == before

    def test_hostile_names_become_safe_labels(self, documents_on, sessions):
        resp = upload(sessions("worker.a"), TEXT, "../../etc/pass\u202ewd\x00" + "x" * 300)
        assert resp.status_code == 201, resp.text
        label = resp.json()["label"]
        assert "/" not in label and "\u202e" not in label and "\x00" not in label and len(label) <= 120

    def test_hundred_megabytes_declared_is_413(self, documents_on, sessions, platform):
        worker = sessions("worker.a")
        before = listed(worker)
        url = urlparse(platform.gateway_url)
        head = (f"POST {docs_path()}?filename=huge.pdf HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"Authorization: Bearer {worker.token}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {100 * MB}\r\n\r\n%PDF-1.7\n").encode()
        with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
            sock.sendall(head)
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
        assert listed(worker) == before

    def test_new_version_keeps_history_and_staff_delete_and_restore(self, shared, sessions):
        parent, worker = sessions("parent1.a"), sessions("worker.a")
        path = f"{docs_path()}/{shared['parent_to_worker']['document_id']}"
        resp = parent.post(path + "/versions", params={"filename": "school report.pdf"}, content=PDF,
                           headers=OCTETS)
        assert resp.status_code == 201, resp.text
        assert [v["version"] for v in resp.json()["versions"]] == [1, 2]
        assert worker.ok("GET", path + "/versions/1/content").content == PNG
        assert worker.ok("GET", path + "/content").content == PDF
        is_problem(parent.delete(path), 403)
        assert worker.delete(path).status_code == 204
        is_problem(parent.get(path), 404)
        assert worker.ok("GET", path).json()["deleted"]["by"] == "sw1"
        worker.ok("POST", path + "/restore")
        assert parent.ok("GET", path + "/content").content == PDF


def timeline_titles(session) -> list[str]:
    items, cursor = [], None
    while True:
        page = session.ok("GET", TIMELINE.format(case="case-1"),
                          params={"limit": 100, **({"cursor": cursor} if cursor else {})}).json()
        items += [e["title"] for e in page["items"] if e["kind"] == "document"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


class TestOnTheTimeline:
    def test_each_share_is_on_the_timeline_once_for_the_documents_audience(self, shared, sessions):
        added = "The social worker shared a document: Child protection plan.pdf"
        staff = "The social worker shared a document: Supervision notes.txt"
        named = "A parent shared a document: school report photo.png"
        wait_for(lambda: {added, staff, named} <= set(timeline_titles(sessions("manager.a"))), 20)
        expected = {
            "parent1.a": {added, named}, "parent2.a": set(), "carer.a": {added}, "young.a": {added},
            "worker.a": {added, staff, named}, "manager.a": {added, staff, named},
        }
        for login, titles in expected.items():
            seen = timeline_titles(sessions(login))
            for title in (added, staff, named):
                assert seen.count(title) == (1 if title in titles else 0), (login, title)


class TestSwitchingTheToolOff:
    """Last in the module: it switches the tool off for council A."""

    def test_off_gives_404_in_council_a_while_council_b_keeps_working(self, shared, sessions):
        admin, parent = sessions("admin.a"), sessions("parent1.a")
        assert admin.delete("/api/catalogue/councils/council-a/tools/documents").status_code == 204
        wait_for(lambda: parent.get(docs_path()).status_code == 404, 3)
        is_problem(sessions("worker.a").get(f"{docs_path()}/{shared['for_case_not_alex']['document_id']}/content"),
                   404)
        worker_b = sessions("worker.b")
        resp = upload(worker_b, PDF, "council b letter.pdf")
        assert resp.status_code == 201, resp.text
        assert resp.json()["document_id"] in listed(sessions("parent.b"))
