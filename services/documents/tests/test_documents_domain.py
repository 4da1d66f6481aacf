"""The documents tool's rules with fakes, no servers: types, names, limits, scanning, visibility, roles."""

from __future__ import annotations

import hashlib
import io
import itertools

import documents_samples as s
import pytest
from documents_fakes import FakeAudit, FakeBlobStore, FakeDocumentStore, FakeScanner

from chassis.identity import Identity
from chassis.problems import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
)
from documents.content import (
    MAX_LABEL_CHARS,
    TYPES,
    UnsupportedMediaType,
    check_container,
    content_disposition,
    label_for,
    sanitise_label,
    sniff,
)
from documents.domain import (
    Documents,
    ScannerUnavailable,
    can_see,
    normalise_audience,
    story_for,
)

CASE = "case-1"
ROLES = {"sw": "social_worker", "mgr": "manager", "mum": "parent", "dad": "parent", "gran": "carer",
         "kid": "child", "yp": "young_person"}


def who(person_id: str, council: str = "council-a", cases: dict | None = None) -> Identity:
    return Identity(subject=person_id, actor="person", council_id=council,
                    cases={CASE: ROLES[person_id]} if cases is None else cases)


def reader(data: bytes):
    return io.BytesIO(data).read


@pytest.fixture
def tool():
    return Documents(FakeDocumentStore(), FakeBlobStore(), FakeAudit(), max_bytes=1_000_000)


def upload(tool, person="sw", data=s.PDF, name="report.pdf", audience=None, declared=None):
    return tool.upload(who(person), CASE, reader(data), name, audience, declared)[0]


class TestSniff:
    @pytest.mark.parametrize("data,key", [
        (s.PDF, "pdf"), (s.PNG, "png"), (s.JPEG, "jpeg"), (s.HEIC, "heic"), (s.TEXT, "text"),
        (s.docx(), "docx"), (s.odt(), "odt"),
    ])
    def test_allowed_types_are_known_by_their_bytes(self, data, key):
        assert sniff(data).key == key

    @pytest.mark.parametrize("data", [s.HTML, s.SVG, s.SVG_BARE, s.EXE, s.ELF, s.SCRIPT, s.BINARY,
                                      b"\x1f\x8b\x08\x00gzip", b"Rar!\x1a\x07\x00"])
    def test_html_svg_programs_scripts_and_binaries_are_unsupported(self, data):
        with pytest.raises(UnsupportedMediaType):
            sniff(data)

    @pytest.mark.parametrize("data", [s.PDF_POLYGLOT, s.TEXT_POLYGLOT, s.PNG_POLYGLOT])
    def test_polyglots_with_markup_in_the_first_kilobyte_are_refused(self, data):
        with pytest.raises(Unprocessable):
            sniff(data)

    def test_markup_after_the_first_kilobyte_is_not_the_polyglot_rule(self):
        assert sniff(b"%PDF-1.7\n" + b"0" * 2000 + b"<script>").key == "pdf"

    def test_empty_file_is_refused(self):
        with pytest.raises(Unprocessable):
            sniff(b"")

    def test_docx_with_macros_or_a_plain_zip_is_refused(self):
        with pytest.raises(UnsupportedMediaType):
            check_container(TYPES["docx"], io.BytesIO(s.docm()))
        with pytest.raises(UnsupportedMediaType):
            check_container(TYPES["docx"], io.BytesIO(s.plain_zip()))
        with pytest.raises(Unprocessable):
            check_container(TYPES["docx"], io.BytesIO(b"PK\x03\x04broken"))
        check_container(TYPES["docx"], io.BytesIO(s.docx()))
        check_container(TYPES["odt"], io.BytesIO(s.odt()))


class TestNames:
    @pytest.mark.parametrize("raw,expected", [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\evil.pdf", "evil.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("a\x00b.pdf", "ab.pdf"),
        ("line\nbreak\r.pdf", "line break .pdf"),
        ("zero\u200bwidth.pdf", "zerowidth.pdf"),
        ("...hidden.pdf", "hidden.pdf"),
        ("", "document"),
        (None, "document"),
        ("../..", "document"),
        ('quote"semi;colon.pdf', "quote_semi_colon.pdf"),
        ("Café Résumé.pdf", "Café Résumé.pdf"),
    ])
    def test_labels_are_sanitised(self, raw, expected):
        assert sanitise_label(raw) == expected

    def test_long_names_are_bounded_and_keep_their_extension(self):
        label = sanitise_label("x" * 5000 + ".pdf")
        assert len(label) == MAX_LABEL_CHARS and label.endswith(".pdf")

    def test_name_of_another_type_is_a_mismatch(self):
        with pytest.raises(Unprocessable):
            label_for("report.pdf", TYPES["png"])
        with pytest.raises(Unprocessable):
            label_for("page.html", TYPES["text"])
        with pytest.raises(Unprocessable):
            label_for("run.exe", TYPES["pdf"])

    def test_missing_or_meaningless_extension_gets_the_types_own(self):
        assert label_for("passwd", TYPES["text"]) == "passwd.txt"
        assert label_for("scan 2024.final", TYPES["pdf"]) == "scan 2024.final.pdf"
        assert label_for("photo.JPEG", TYPES["jpeg"]) == "photo.JPEG"

    def test_content_disposition_is_an_attachment_with_rfc5987_name(self):
        header = content_disposition('Café "x";.pdf')
        assert header.startswith('attachment; filename="Caf_ _x__.pdf"; ')
        assert header.endswith("filename*=UTF-8''Caf%C3%A9%20%22x%22%3B.pdf")


class TestUpload:
    @pytest.mark.parametrize("data,name", [(s.PDF, "a.pdf"), (s.PNG, "a.png"), (s.JPEG, "a.jpg"),
                                           (s.HEIC, "a.heic"), (s.TEXT, "a.txt"), (s.docx(), "a.docx"),
                                           (s.odt(), "a.odt")])
    def test_allowed_file_is_stored_with_its_hash_and_event(self, tool, data, name):
        document = upload(tool, data=data, name=name)
        version = document["versions"][0]
        assert version["sha256"] == hashlib.sha256(data).hexdigest() and version["size"] == len(data)
        assert tool.blobs.files[version["file_id"]] == data
        assert version["scan_status"] == "not_scanned"
        assert version["stored_name"] != name and name not in version["stored_name"]
        event_type, data_out, story = tool.store.events[-1]
        assert event_type == "document_added" and data_out["sha256"] == version["sha256"]
        assert story["title"] == f"The social worker shared a document: {name}"

    @pytest.mark.parametrize("data,name,error", [
        (s.HTML, "report.pdf", UnsupportedMediaType), (s.SVG, "logo.svg", UnsupportedMediaType),
        (s.EXE, "setup.pdf", UnsupportedMediaType), (s.PDF_POLYGLOT, "x.pdf", Unprocessable),
        (s.PNG, "report.pdf", Unprocessable), (s.docm(), "x.docx", UnsupportedMediaType),
        (b"", "empty.txt", Unprocessable), (s.TEXT + b"\x00\x01" + s.TEXT, "x.txt", UnsupportedMediaType),
        (s.TEXT * 200 + b"\xff\xfe", "late-binary.txt", UnsupportedMediaType),
    ])
    def test_refused_file_leaves_nothing_stored(self, tool, data, name, error):
        with pytest.raises(error):
            upload(tool, data=data, name=name)
        assert tool.blobs.files == {} and tool.store.documents == {} and tool.store.events == []
        assert tool.blobs.open_writers == 0
        assert tool.audit.records[-1]["outcome"] == error.slug

    def test_declared_length_over_the_limit_is_refused_before_reading(self, tool):
        def never(n):
            raise AssertionError("read")

        with pytest.raises(PayloadTooLarge):
            tool.upload(who("sw"), CASE, never, "a.pdf", None, 1_000_001)
        assert tool.blobs.aborted == 0 and tool.blobs.files == {}

    def test_streamed_body_over_the_limit_is_aborted_and_nothing_kept(self, tool):
        chunks = itertools.chain([s.PDF], itertools.repeat(b"0" * 65536))
        with pytest.raises(PayloadTooLarge):
            tool.upload(who("sw"), CASE, lambda n: next(chunks), "big.pdf")
        assert tool.blobs.aborted == 1 and tool.blobs.files == {} and tool.store.documents == {}

    def test_exactly_the_limit_is_accepted(self, tool):
        data = s.PDF + b"0" * (1_000_000 - len(s.PDF))
        assert upload(tool, data=data)["versions"][0]["size"] == 1_000_000

    def test_family_shares_with_case_or_named_never_staff_only(self, tool):
        with pytest.raises(Unprocessable):
            upload(tool, person="mum", audience={"kind": "staff"})
        doc = upload(tool, person="mum", audience={"kind": "named", "people": ["sw"], "exclude": []})
        assert doc["audience"] == {"kind": "named", "people": ["sw", "mum"], "exclude": []}
        assert tool.store.events[-1][2]["title"] == "A parent shared a document: report.pdf"
        assert tool.store.events[-1][2]["audience"] == doc["audience"]

    def test_uploader_is_never_excluded_from_what_they_share(self, tool):
        doc = upload(tool, person="mum", audience={"kind": "case", "people": [], "exclude": ["mum", "dad"]})
        assert doc["audience"]["exclude"] == ["dad"]

    @pytest.mark.parametrize("identity", [
        Identity(subject="x", actor="person", council_id="council-a", cases={}),
        Identity(subject="m", actor="machine", council_id="council-a", cases={CASE: "social_worker"}),
        Identity(subject="op", actor="person", council_id=None, cases={CASE: "social_worker"}),
    ])
    def test_nobody_without_a_role_on_the_case_can_upload(self, tool, identity):
        with pytest.raises(NotFound):
            tool.upload(identity, CASE, reader(s.PDF), "a.pdf")


class TestScanning:
    def test_clean_upload_is_marked_clean(self):
        tool = Documents(FakeDocumentStore(), FakeBlobStore(), FakeAudit(), scanner=FakeScanner())
        assert upload(tool)["versions"][0]["scan_status"] == "clean"

    def test_infected_upload_is_refused_and_deleted(self):
        tool = Documents(FakeDocumentStore(), FakeBlobStore(), FakeAudit(), scanner=(scanner := FakeScanner()))
        with pytest.raises(Unprocessable):
            upload(tool, data=s.EICAR, name="eicar.txt")
        assert tool.blobs.files == {} and tool.store.documents == {} and scanner.closed == 1

    @pytest.mark.parametrize("scanner", [FakeScanner(reachable=False), FakeScanner(fail_mid_stream=True)])
    def test_unreachable_scanner_fails_closed(self, scanner):
        tool = Documents(FakeDocumentStore(), FakeBlobStore(), FakeAudit(), scanner=scanner)
        with pytest.raises(ScannerUnavailable) as caught:
            upload(tool)
        assert caught.value.status == 503
        assert tool.blobs.files == {} and tool.store.documents == {} and tool.store.events == []


class TestVersionsAndDeletion:
    def test_new_version_keeps_history_and_audience(self, tool):
        doc = upload(tool, person="mum", audience={"kind": "case", "people": [], "exclude": ["dad"]})
        doc2, _ = tool.add_version(who("mum"), CASE, doc["document_id"], reader(s.PNG), "photo.png")
        assert [v["version"] for v in doc2["versions"]] == [1, 2]
        assert doc2["versions"][0]["sha256"] == hashlib.sha256(s.PDF).hexdigest()
        event_type, _, story = tool.store.events[-1]
        assert event_type == "document_version_added"
        assert story["audience"]["exclude"] == ["dad"] and "new version" in story["title"]

    def test_family_member_who_did_not_share_it_cannot_add_a_version(self, tool):
        doc = upload(tool, person="sw")
        with pytest.raises(Forbidden):
            tool.add_version(who("mum"), CASE, doc["document_id"], reader(s.PDF), "a.pdf")

    def test_only_staff_delete_and_restore(self, tool):
        doc = upload(tool, person="mum")
        with pytest.raises(Forbidden):
            tool.delete(who("mum"), CASE, doc["document_id"])
        tool.delete(who("sw"), CASE, doc["document_id"])
        with pytest.raises(NotFound):
            tool.get_document(who("mum"), CASE, doc["document_id"])
        with pytest.raises(NotFound):
            tool.restore(who("mum"), CASE, doc["document_id"])
        with pytest.raises(Conflict):
            tool.delete(who("mgr"), CASE, doc["document_id"])
        assert tool.get_document(who("sw"), CASE, doc["document_id"])[0]["deleted"]["by"] == "sw"
        tool.restore(who("mgr"), CASE, doc["document_id"])
        assert tool.get_document(who("mum"), CASE, doc["document_id"])[0]["deleted"] is None
        actions = [(r["action"], r["who"], r["outcome"]) for r in tool.audit.records]
        assert ("documents.delete", "mum", "forbidden") in actions
        assert ("documents.delete", "sw", "ok") in actions and ("documents.restore", "mgr", "ok") in actions

    def test_family_cannot_list_deleted(self, tool):
        with pytest.raises(Forbidden):
            tool.list_documents(who("mum"), CASE, include_deleted=True)


AUDIENCES = [
    {"kind": "case", "people": [], "exclude": []},
    {"kind": "case", "people": [], "exclude": ["dad", "sw"]},
    {"kind": "staff", "people": [], "exclude": []},
    {"kind": "staff", "people": [], "exclude": ["mgr"]},
    {"kind": "named", "people": ["kid", "gran"], "exclude": []},
    {"kind": "named", "people": ["kid", "gran"], "exclude": ["gran"]},
]


class TestVisibility:
    @pytest.mark.parametrize("audience", AUDIENCES)
    @pytest.mark.parametrize("person", sorted(ROLES))
    def test_rule(self, audience, person):
        doc = {"audience": audience, "uploaded_by": {"person_id": "author"}, "deleted": None}
        role = ROLES[person]
        expected = (role in ("social_worker", "manager") and person not in audience["exclude"]) or (
            role not in ("social_worker", "manager") and person not in audience["exclude"] and (
                audience["kind"] == "case" or (audience["kind"] == "named" and person in audience["people"])))
        assert can_see(doc, person, role) is expected

    def test_uploader_always_sees_theirs_and_deleted_is_for_staff_who_ask(self):
        doc = {"audience": {"kind": "staff", "people": [], "exclude": ["mum"]},
               "uploaded_by": {"person_id": "mum"}, "deleted": None}
        assert can_see(doc, "mum", "parent")
        doc["deleted"] = {"at": None, "by": "sw"}
        assert not can_see(doc, "mum", "parent") and not can_see(doc, "sw", "social_worker")
        assert can_see(doc, "sw", "social_worker", include_deleted=True)
        assert not can_see(doc, "mum", "parent", include_deleted=True)

    def test_no_role_sees_nothing(self):
        assert not can_see({"audience": AUDIENCES[0], "uploaded_by": {}, "deleted": None}, "x", None)

    def test_audience_normalised(self):
        assert normalise_audience(None, None, ["a", "a"]) == {"kind": "case", "people": [], "exclude": ["a"]}
        with pytest.raises(InvalidInput):
            normalise_audience("named", [], [])
        with pytest.raises(InvalidInput):
            normalise_audience("case", ["x"], [])

    def test_story_title_is_bounded(self):
        from datetime import UTC, datetime

        doc = {"case_id": CASE, "audience": AUDIENCES[1]}
        version = {"uploaded_by": {"role": "manager"}, "label": "x" * 120, "uploaded_at": datetime.now(UTC)}
        assert len(story_for(doc, version, True)["title"]) <= 200
