"""The documents API in-process against a real SecantusDB (GridFS included); responses validated against
the contract."""

from __future__ import annotations

import hashlib
import itertools
from urllib.parse import quote

import documents_samples as s
import pytest
from documents_clamd import FakeClamd, dead_address
from pymongo import MongoClient

from chassis.config import Settings
from chassis.identity import Identity
from chassis.outbox import validate_event
from chassis.testing import caller_for, unique_db
from documents.app import create_app
from documents.domain import can_see
from documents.store import visibility_filter

pytestmark = pytest.mark.integration

COUNCIL, OTHER_COUNCIL, CASE = "council-a", "council-b", "case-1"
ROLES = {"sw": "social_worker", "mgr": "manager", "mum": "parent", "dad": "parent", "gran": "carer",
         "kid": "child", "yp": "young_person"}
PROBLEM = "application/problem+json"
MAX_BYTES = 2_000_000
OCTETS = {"Content-Type": "application/octet-stream"}


def identity(person_id: str, cases: dict[str, str] | None = None, council: str = COUNCIL) -> Identity:
    cases = {CASE: ROLES[person_id]} if cases is None else cases
    staff = any(r in ("social_worker", "manager") for r in cases.values())
    return Identity(subject=person_id, actor="person", council_id=council,
                    audience="staff" if staff else "families", cases=cases, client_ip="10.0.0.9")


class Caller(caller_for("documents")):
    """Calls the in-process documents app as one identity."""

    def upload(self, data: bytes, filename: str | None = "report.pdf", case_id: str = CASE, **params):
        if filename is not None:
            params["filename"] = filename
        return self("POST", f"/cases/{case_id}/documents", params=params, content=data, headers=OCTETS)


def make_env(mongo_uri, jwks_path, **extra):
    db_name = unique_db("documents_api")
    app = create_app(Settings(service_name="documents", mongo_uri=mongo_uri, mongo_db=db_name,
                              internal_jwks=jwks_path, validate_responses=True,
                              extra={"DOCUMENTS_MAX_BYTES": str(MAX_BYTES), **extra}))
    return app, db_name


@pytest.fixture(scope="module")
def env(mongo_uri, jwks_path, minter):
    app, db_name = make_env(mongo_uri, jwks_path)
    client = MongoClient(mongo_uri, tz_aware=True)
    with app.test_client() as http:
        yield http, client[db_name], minter
    client.close()


@pytest.fixture(scope="module")
def as_(env):
    http, _, minter = env
    return lambda person_id, **kw: Caller(http, minter, identity(person_id, **kw))


def stored_counts(db) -> tuple[int, int, int, int]:
    return (db["documents"].count_documents({}), db["content.files"].count_documents({}),
            db["content.chunks"].count_documents({}), db["outbox"].count_documents({}))


def is_problem(resp, status: int) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    assert set(resp.json()) >= {"type", "title", "status", "detail"} and resp.json()["status"] == status


class TestUploadAndDownload:
    def test_round_trip_is_byte_identical_with_safe_headers(self, as_, env):
        data = s.PDF + bytes(range(256)) * 4000  # ~1 MB across several GridFS chunks
        resp = as_("sw").upload(data, filename="Café report.pdf")
        assert resp.status_code == 201, resp.text
        doc = resp.json()
        assert doc["sha256"] == hashlib.sha256(data).hexdigest() and doc["size"] == len(data)
        assert doc["media_type"] == "application/pdf" and doc["scan_status"] == "not_scanned"
        assert doc["label"] == "Café report.pdf" and doc["version"] == 1
        got = as_("mum")("GET", f"/cases/{CASE}/documents/{doc['document_id']}/content")
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["content-type"] == "application/pdf"
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["x-content-sha256"] == doc["sha256"]
        assert got.headers["content-disposition"] == (
            "attachment; filename=\"Caf_ report.pdf\"; filename*=UTF-8''" + quote("Café report.pdf", safe=""))
        _, db, _ = env
        stored = db["content.files"].find_one({"_id": db["documents"].find_one(
            {"_id": doc["document_id"]})["versions"][0]["file_id"]})
        assert "Café" not in stored["filename"] and stored["metadata"]["council_id"] == COUNCIL

    def test_event_carries_a_story_with_the_documents_audience(self, as_, env):
        resp = as_("mum").upload(s.TEXT, filename="letter.txt", audience="named", people=["sw", "gran"],
                                 exclude=["dad"])
        assert resp.status_code == 201, resp.text
        doc = resp.json()
        _, db, _ = env
        record = db["outbox"].find_one({"envelope.data.document_id": doc["document_id"]})
        envelope = record["envelope"]
        validate_event(envelope)
        assert envelope["type"] == "document_added" and envelope["council_id"] == COUNCIL
        assert envelope["story"]["title"] == "A parent shared a document: letter.txt"
        # the uploader is written into a named audience, so the timeline entry reaches them too
        assert envelope["story"]["audience"] == {"kind": "named", "people": ["sw", "gran", "mum"], "exclude": ["dad"]}
        assert envelope["story"]["kind"] == "document"

    def test_versions_keep_history_and_each_is_downloadable(self, as_, env):
        first = as_("mum").upload(s.PDF, filename="plan.pdf").json()
        path = f"/cases/{CASE}/documents/{first['document_id']}"
        resp = as_("mum")("POST", path + "/versions", content=s.PNG, headers=OCTETS,
                          params={"filename": "plan-photo.png"})
        assert resp.status_code == 201, resp.text
        doc = resp.json()
        assert doc["version"] == 2 and [v["version"] for v in doc["versions"]] == [1, 2]
        assert doc["label"] == "plan-photo.png" and doc["media_type"] == "image/png"
        assert as_("sw")("GET", path + "/versions/1/content").content == s.PDF
        assert as_("sw")("GET", path + "/versions/2/content").content == s.PNG
        assert as_("sw")("GET", path + "/content").content == s.PNG
        is_problem(as_("sw")("GET", path + "/versions/3/content"), 404)
        again = as_("sw")("POST", path + "/versions", content=s.PDF, headers=OCTETS)
        assert again.status_code == 201 and again.json()["label"] == "plan-photo.pdf"
        _, db, _ = env
        events = [r["envelope"] for r in db["outbox"].find({"envelope.data.document_id": first["document_id"]})]
        for e in events:
            validate_event(e)
        assert sorted(e["type"] for e in events) == ["document_added", "document_version_added",
                                                      "document_version_added"]
        is_problem(as_("dad")("POST", path + "/versions", content=s.PDF, headers=OCTETS), 403)

    def test_list_pages_newest_first(self, as_):
        case = "paging-case"
        sw = as_("sw", cases={case: "social_worker"})
        made = [sw.upload(s.TEXT, filename=f"n{i}.txt", case_id=case).json()["document_id"] for i in range(5)]
        seen, cursor = [], None
        while True:
            resp = sw("GET", f"/cases/{case}/documents", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
            assert resp.status_code == 200, resp.text
            seen += [d["document_id"] for d in resp.json()["items"]]
            assert all("versions" not in d for d in resp.json()["items"])
            cursor = resp.json()["next_cursor"]
            if not cursor:
                break
        assert seen == list(reversed(made))


class TestRefusals:
    @pytest.mark.parametrize("data,name,status", [
        (s.HTML, "innocent.pdf", 415),
        (s.SVG, "logo.svg", 415),
        (s.SVG_BARE, "logo.png", 415),
        (s.EXE, "setup.exe", 415),
        (s.SCRIPT, "run.txt", 415),
        (s.BINARY, "data.bin", 415),
        (s.docm(), "macro.docx", 415),
        (s.plain_zip(), "archive.docx", 415),
        (s.PDF_POLYGLOT, "poly.pdf", 422),
        (s.TEXT_POLYGLOT, "poly.txt", 422),
        (s.PNG_POLYGLOT, "poly.png", 422),
        (s.PNG, "looks-like.pdf", 422),
        (s.TEXT, "page.html", 422),
        (b"", "empty.pdf", 422),
    ])
    def test_unsafe_or_mismatched_content_is_refused_and_nothing_stored(self, as_, env, data, name, status):
        _, db, _ = env
        before = stored_counts(db)
        is_problem(as_("sw").upload(data, filename=name), status)
        assert stored_counts(db) == before

    @pytest.mark.parametrize("raw,label", [
        ("../../etc/passwd", "passwd.txt"),
        ("..%2F..%2Fetc%2Fpasswd", "%2F..%2Fetc%2Fpasswd.txt"),  # literal, never decoded to a path
        ("evil\u202etxt.exe", None),  # ends .exe: a name of a refused type
        ("nul\x00byte.txt", "nulbyte.txt"),
        ("tab\tand\nnewline.txt", "tab and newline.txt"),
        ("x" * 900 + ".txt", "x" * 116 + ".txt"),
    ])
    def test_hostile_filenames_are_neutralised_or_refused(self, as_, raw, label):
        resp = as_("sw").upload(s.TEXT, filename=raw)
        if label is None:
            is_problem(resp, 422)
            return
        assert resp.status_code == 201, resp.text
        assert resp.json()["label"] == label
        got = as_("sw")("GET", f"/cases/{CASE}/documents/{resp.json()['document_id']}/content")
        disposition = got.headers["content-disposition"]
        assert "/" not in disposition.split("filename*=")[0] and "\u202e" not in disposition

    def test_name_longer_than_the_contract_allows_is_400(self, as_):
        is_problem(as_("sw").upload(s.TEXT, filename="y" * 1001), 400)

    def test_declared_body_over_the_limit_is_413_and_nothing_stored(self, as_, env):
        _, db, _ = env
        before = stored_counts(db)
        is_problem(as_("sw").upload(s.PDF + b"0" * MAX_BYTES), 413)
        assert stored_counts(db) == before

    def test_streamed_body_over_the_limit_is_413_and_the_partial_file_deleted(self, as_, env):
        _, db, _ = env
        before = stored_counts(db)

        def body():
            yield s.PDF
            for _ in range(MAX_BYTES // 65536 + 2):
                yield b"0" * 65536

        resp = as_("sw")("POST", f"/cases/{CASE}/documents", params={"filename": "big.pdf"},
                         content=body(), headers=OCTETS)
        is_problem(resp, 413)
        assert stored_counts(db) == before

    def test_a_json_or_multipart_body_is_refused(self, as_, env):
        _, db, _ = env
        before = stored_counts(db)
        is_problem(as_("sw")("POST", f"/cases/{CASE}/documents", json={"file": "x"}), 415)
        is_problem(as_("sw")("POST", f"/cases/{CASE}/documents", files={"f": ("a.pdf", s.PDF)}), 415)
        assert stored_counts(db) == before

    @pytest.mark.parametrize("params", [
        {"audience": "everyone"}, {"audience": "named"}, {"audience": "case", "people": ["x"]},
        {"people": ["bad id!"]}, {"unknown": "1"}, {"exclude": [f"p{i}" for i in range(101)]},
    ])
    def test_bad_parameters_are_400_and_nothing_stored(self, as_, env, params):
        _, db, _ = env
        before = stored_counts(db)
        is_problem(as_("sw").upload(s.PDF, **params), 400)
        assert stored_counts(db) == before

    def test_family_cannot_share_for_staff_only(self, as_, env):
        _, db, _ = env
        before = stored_counts(db)
        is_problem(as_("mum").upload(s.PDF, audience="staff"), 422)
        assert stored_counts(db) == before

    @pytest.mark.parametrize("who", [
        identity("sw", cases={}), identity("sw", council=OTHER_COUNCIL, cases={}),
        identity("mum", cases={"case-2": "parent"}),
    ])
    def test_unknown_case_or_foreign_council_is_404_and_nothing_stored(self, env, minter, who):
        http, db, _ = env
        before = stored_counts(db)
        resp = Caller(http, minter, who).upload(s.PDF)
        is_problem(resp, 404)
        assert stored_counts(db) == before

    def test_without_a_token_it_is_401(self, env):
        http, _, _ = env
        is_problem(http.post(f"/cases/{CASE}/documents", content=s.PDF, headers=OCTETS), 401)


class TestScanner:
    def test_scanner_clean_infected_and_unreachable(self, mongo_uri, jwks_path, minter):
        with FakeClamd() as clamd:
            app, db_name = make_env(mongo_uri, jwks_path, CLAMD_ADDRESS=clamd.address)
            client = MongoClient(mongo_uri, tz_aware=True)
            db = client[db_name]
            with app.test_client() as http:
                sw = Caller(http, minter, identity("sw"))
                ok = sw.upload(s.PDF)
                assert ok.status_code == 201 and ok.json()["scan_status"] == "clean"
                before = stored_counts(db)
                is_problem(sw.upload(s.EICAR, filename="eicar.txt"), 422)
                assert stored_counts(db) == before
        app, db_name = make_env(mongo_uri, jwks_path, CLAMD_ADDRESS=dead_address(), CLAMD_TIMEOUT="2")
        db = client[db_name]
        with app.test_client() as http:
            resp = Caller(http, minter, identity("sw")).upload(s.PDF)
            is_problem(resp, 503)
            assert stored_counts(db) == (0, 0, 0, 0)
            listing = Caller(http, minter, identity("sw"))("GET", f"/cases/{CASE}/documents")
            assert listing.json()["items"] == []
        client.close()


class TestDeletion:
    def test_staff_soft_delete_and_restore_audited(self, as_, env):
        _, db, _ = env
        doc = as_("mum").upload(s.PDF, filename="to-delete.pdf").json()
        path = f"/cases/{CASE}/documents/{doc['document_id']}"
        is_problem(as_("mum")("DELETE", path), 403)
        resp = as_("sw")("DELETE", path)
        assert resp.status_code == 204 and not resp.content
        for person in ("mum", "dad", "kid"):
            is_problem(as_(person)("GET", path), 404)
            is_problem(as_(person)("GET", path + "/content"), 404)
            assert doc["document_id"] not in {d["document_id"] for d in
                                              as_(person)("GET", f"/cases/{CASE}/documents").json()["items"]}
        is_problem(as_("mum")("GET", f"/cases/{CASE}/documents", params={"include_deleted": "true"}), 403)
        is_problem(as_("sw")("GET", path + "/content"), 404)
        listed = as_("mgr")("GET", f"/cases/{CASE}/documents", params={"include_deleted": "true", "limit": 100})
        assert doc["document_id"] in {d["document_id"] for d in listed.json()["items"]}
        assert as_("mgr")("GET", path).json()["deleted"]["by"] == "sw"
        is_problem(as_("mgr")("DELETE", path), 409)
        is_problem(as_("mum")("POST", path + "/restore"), 404)
        restored = as_("mgr")("POST", path + "/restore")
        assert restored.status_code == 200 and restored.json()["deleted"] is None
        assert as_("mum")("GET", path + "/content").content == s.PDF
        is_problem(as_("mgr")("POST", path + "/restore"), 409)
        actions = {(a["action"], a["actor"], a["outcome"]) for a in db["audit"].find({"record_id": doc["document_id"]})}
        assert {("documents.delete", "mum", "forbidden"), ("documents.delete", "sw", "ok"),
                ("documents.restore", "mgr", "ok"), ("documents.download", "mum", "ok")} <= actions
        assert db["documents"].count_documents({"_id": doc["document_id"]}) == 1


AUDIENCES = [
    {"audience": "case"},
    {"audience": "case", "exclude": ["dad", "sw"]},
    {"audience": "staff"},
    {"audience": "staff", "exclude": ["mgr"]},
    {"audience": "named", "people": ["kid", "gran"]},
    {"audience": "named", "people": ["kid", "gran"], "exclude": ["gran"]},
]


class TestVisibilityMatrix:
    @pytest.fixture(scope="class")
    def made(self, as_):
        case = "matrix-case"
        out = []
        for uploader, params in itertools.product(("sw", "mum"), AUDIENCES):
            if uploader == "mum" and params["audience"] == "staff":
                continue
            caller = as_(uploader, cases={case: ROLES[uploader]})
            resp = caller.upload(s.PDF, case_id=case, **params)
            assert resp.status_code == 201, resp.text
            out.append(resp.json())
        return case, out

    @pytest.mark.parametrize("person", sorted(ROLES))
    def test_store_query_and_rule_agree_and_reads_follow(self, person, made, as_, env):
        case, docs = made
        _, db, _ = env
        caller = as_(person, cases={case: ROLES[person]})
        listed = {d["document_id"] for d in caller("GET", f"/cases/{case}/documents", params={"limit": 100}).json()["items"]}
        stored = list(db["documents"].find({"case_id": case}))
        by_rule = {d["_id"] for d in stored if can_see(d, person, ROLES[person])}
        by_query = {d["_id"] for d in db["documents"].find({"case_id": case, "council_id": COUNCIL,
                                                             **visibility_filter(person, ROLES[person])})}
        assert listed == by_rule == by_query
        for doc in docs:
            single = caller("GET", f"/cases/{case}/documents/{doc['document_id']}")
            content = caller("GET", f"/cases/{case}/documents/{doc['document_id']}/content")
            if doc["document_id"] in by_rule:
                assert single.status_code == 200 and content.status_code == 200
                details = "people" in single.json()["audience"] or "exclude" in single.json()["audience"]
                assert details == (ROLES[person] in ("social_worker", "manager")
                                   or doc["uploaded_by"]["person_id"] == person)
            else:
                is_problem(single, 404)
                is_problem(content, 404)

    @pytest.mark.parametrize("who", [identity("sw", cases={}), identity("sw", council=OTHER_COUNCIL,
                                                                        cases={"matrix-case": "social_worker"})])
    def test_non_member_and_other_council_see_nothing(self, made, env, minter, who):
        case, docs = made
        http, _, _ = env
        caller = Caller(http, minter, who)
        listing = caller("GET", f"/cases/{case}/documents")
        if who.council_id == COUNCIL:
            is_problem(listing, 404)
        else:
            assert listing.status_code == 200 and listing.json()["items"] == []
        for doc in docs:
            is_problem(caller("GET", f"/cases/{case}/documents/{doc['document_id']}/content"), 404)
