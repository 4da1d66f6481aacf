"""The documents tool's rules in plain Python: who sees a document, who may share, version and delete it,
and how an upload is received (streamed, sniffed, hashed, scanned, limited) before it becomes visible.

No pymongo, nameko or flask here. The metadata store (``AbstractDocumentStore``) applies ``can_see`` as a
database query; the integration tests hold the two to the same answers. File bytes go through an
``AbstractBlobStore`` (GridFS in production) a chunk at a time: no upload or download is ever held whole.
"""

from __future__ import annotations

import hashlib
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import IO, Any, Protocol, TypeVar

from chassis.audience import Viewer
from chassis.audience import can_see as audience_can_see
from chassis.audience import viewer_on as audience_viewer_on
from chassis.audited import audited
from chassis.identity import STAFF_CASE_ROLES, Identity
from chassis.problems import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unprocessable,
)

from .content import (
    HEAD_BYTES,
    FileType,
    TextChecker,
    check_container,
    label_for,
    sanitise_label,
    sniff,
    without_type_extension,
)

AUDIENCE_KINDS = ("case", "staff", "named")
DEFAULT_MAX_BYTES = 52428800  # 50 MB
CHUNK_BYTES = 64 * 1024
MAX_VERSIONS = 100
NOT_FOUND = "There is no such case or document, or it is not yours to see."

ROLE_WORDS = {
    "parent": "A parent",
    "carer": "A carer",
    "child": "The child",
    "young_person": "The young person",
    "social_worker": "The social worker",
    "manager": "The manager",
}

T = TypeVar("T")


class ScannerUnavailable(ServiceUnavailable):
    """The malware scanner is configured but cannot answer: nothing is stored (fail closed)."""


def viewer_on(who: Identity, case_id: str) -> Viewer:
    """The caller as a viewer of ``case_id``; 404 when they hold no role on it (never reveal it exists)."""
    return audience_viewer_on(who, case_id, NOT_FOUND)


# --- the visibility rule ------------------------------------------------------------------------------
def can_see(document: dict[str, Any], person_id: str, role: str | None, include_deleted: bool = False) -> bool:
    """Whether a person with ``role`` on the document's case sees it.

    The uploader always sees what they shared; staff on the case see everything except where excluded;
    the family side sees audience "case" unless excluded, "named" only when listed and not excluded,
    never "staff". A deleted document is seen by nobody, except staff who ask for deleted ones.
    """
    if document.get("deleted") and not (include_deleted and role in STAFF_CASE_ROLES):
        return False
    return audience_can_see(document["audience"], person_id, role, (document.get("uploaded_by") or {}).get("person_id"))


def sees_audience_details(document: dict[str, Any], viewer: Viewer) -> bool:
    """Who is named or excluded is itself sensitive: only staff and the uploader see it."""
    return viewer.is_staff or (document.get("uploaded_by") or {}).get("person_id") == viewer.person_id


def normalise_audience(kind: str | None = None, people: list[str] | None = None,
                       exclude: list[str] | None = None) -> dict[str, Any]:
    """The audience as stored: a kind and two de-duplicated id lists; people only for "named"."""
    kind = kind or "case"
    if kind not in AUDIENCE_KINDS:
        raise InvalidInput("The audience must be case, staff or named.")
    people = list(dict.fromkeys(people or []))
    exclude = list(dict.fromkeys(exclude or []))
    if kind == "named" and not people:
        raise InvalidInput("A named audience needs at least one person.")
    if kind != "named" and people:
        raise InvalidInput("Only a named audience lists people.")
    return {"kind": kind, "people": people, "exclude": exclude}


def with_uploader(audience: dict[str, Any], person_id: str) -> dict[str, Any]:
    """The uploader is always in the audience of what they share: named among the people, never excluded.

    The document's rule lets its uploader see it anyway; writing it into the audience makes the timeline
    entry (which has no author, it comes from an event) reach the same people as the document.
    """
    people = list(audience["people"])
    if audience["kind"] == "named" and person_id not in people:
        people.append(person_id)
    return {**audience, "people": people, "exclude": [p for p in audience["exclude"] if p != person_id]}


def check_may_upload(viewer: Viewer, audience: dict[str, Any]) -> None:
    """Staff share with any audience; the family side with everyone on the case or named people."""
    if not viewer.is_staff and audience["kind"] == "staff":
        raise Unprocessable("A family member shares with everyone on the case or with named people, "
                            "not with staff only.")


def check_may_add_version(document: dict[str, Any], viewer: Viewer) -> None:
    if viewer.is_staff or document["uploaded_by"]["person_id"] == viewer.person_id:
        return
    raise Forbidden("Only staff on the case or the person who shared a document can add a new version.")


def story_for(document: dict[str, Any], version: dict[str, Any], new_version: bool) -> dict[str, Any]:
    """The timeline entry of a shared document or version: same audience as the document."""
    who = ROLE_WORDS.get(version["uploaded_by"]["role"], "Someone")
    what = "a new version of a document" if new_version else "a document"
    return {
        "case_id": document["case_id"],
        "kind": "document",
        "title": f"{who} shared {what}: {version['label']}"[:200],
        "occurred_at": version["uploaded_at"].isoformat(),
        "audience": {k: list(document["audience"][k]) if k != "kind" else document["audience"][k]
                     for k in ("kind", "people", "exclude")},
    }


def event_data(document: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    return {
        "document_id": document["document_id"],
        "case_id": document["case_id"],
        "version": version["version"],
        "label": version["label"],
        "media_type": version["media_type"],
        "size": version["size"],
        "sha256": version["sha256"],
        "scan_status": version["scan_status"],
        "uploaded_by": dict(version["uploaded_by"]),
    }


def utcnow() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def new_id() -> str:
    return uuid.uuid4().hex


# --- ports ----------------------------------------------------------------------------------------------
class BlobWriter(Protocol):
    file_id: Any

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class AbstractBlobStore(ABC):
    """Where file bytes live (GridFS): written and read a chunk at a time."""

    @abstractmethod
    def open_upload(self, stored_name: str, metadata: dict[str, Any]) -> BlobWriter: ...

    @abstractmethod
    def open_readable(self, file_id: Any) -> IO[bytes]:
        """A seekable reader (for a container's central directory), not the file in memory."""

    @abstractmethod
    def chunks(self, council_id: str, file_id: Any) -> Iterator[bytes] | None:
        """The stored chunks in order, or None when the council holds no such file."""

    @abstractmethod
    def delete(self, file_id: Any) -> None: ...


class AbstractDocumentStore(ABC):
    """The repository. Every read is scoped by the viewer's council, the case and the visibility rule."""

    @abstractmethod
    def add_document(self, document: dict[str, Any], event: tuple[str, dict, dict]) -> None:
        """Store the document and its event together (one transaction with the outbox)."""

    @abstractmethod
    def add_version(self, viewer: Viewer, case_id: str, document_id: str, expected_count: int,
                    version: dict[str, Any], event: tuple[str, dict, dict]) -> dict[str, Any]:
        """Append ``version`` when the document still has ``expected_count`` versions; 409 otherwise."""

    @abstractmethod
    def visible_page(self, viewer: Viewer, case_id: str, limit: int, cursor: str | None,
                     include_deleted: bool) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``limit`` documents newest first by (created_at, document_id), and the next cursor."""

    @abstractmethod
    def visible_document(self, viewer: Viewer, case_id: str, document_id: str,
                         include_deleted: bool = False) -> dict[str, Any] | None: ...

    @abstractmethod
    def set_deleted(self, viewer: Viewer, case_id: str, document_id: str,
                    deleted: dict[str, Any] | None) -> dict[str, Any]:
        """Mark (or, with None, unmark) a document deleted; 409 when it already is (or is not)."""


class ScanSession(Protocol):
    def feed(self, chunk: bytes) -> None: ...

    def verdict(self) -> str | None:
        """None when clean, the signature's name when infected; raises ScannerUnavailable otherwise."""

    def close(self) -> None: ...


class Scanner(Protocol):
    def start(self) -> ScanSession:
        """A scan of one stream; raises ScannerUnavailable when the scanner cannot be reached."""


class Audit(Protocol):
    def record(self, who: Identity, action: str, *, case_id: str | None = None,
               record_id: str | None = None, outcome: str = "ok") -> Any: ...


# --- the use cases ----------------------------------------------------------------------------------------
class Documents:
    """The documents tool's operations; every one of them, allowed or not, leaves an audit record."""

    def __init__(self, store: AbstractDocumentStore, blobs: AbstractBlobStore, audit: Audit,
                 scanner: Scanner | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                 clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.blobs = blobs
        self.audit = audit
        self.scanner = scanner
        self.max_bytes = max_bytes
        self.clock = clock

    def _audited(self, who: Identity, action: str, case_id: str, record_id: str | None,
                 fn: Callable[[], T]) -> T:
        return audited(self.audit, who, action, case_id, record_id, fn, "document_id")

    def _visible(self, viewer: Viewer, case_id: str, document_id: str,
                 include_deleted: bool = False) -> dict[str, Any]:
        document = self.store.visible_document(viewer, case_id, document_id, include_deleted)
        if document is None:
            raise NotFound(NOT_FOUND)
        return document

    # --- reads ------------------------------------------------------------------------------------------
    def list_documents(self, who: Identity, case_id: str, limit: int = 20, cursor: str | None = None,
                       include_deleted: bool = False) -> tuple[list[dict[str, Any]], str | None, Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            if include_deleted and not viewer.is_staff:
                raise Forbidden("Only staff on the case can list deleted documents.")
            items, next_cursor = self.store.visible_page(viewer, case_id, limit, cursor, include_deleted)
            return items, next_cursor, viewer

        return self._audited(who, "documents.list", case_id, None, run)

    def get_document(self, who: Identity, case_id: str, document_id: str) -> tuple[dict[str, Any], Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            return self._visible(viewer, case_id, document_id, include_deleted=viewer.is_staff), viewer

        return self._audited(who, "documents.read", case_id, document_id, run)

    def open_content(self, who: Identity, case_id: str, document_id: str,
                     version: int | None = None) -> tuple[dict[str, Any], Iterator[bytes]]:
        """The version to send (latest by default) and its chunks, streamed from the blob store."""

        def run():
            viewer = viewer_on(who, case_id)
            document = self._visible(viewer, case_id, document_id)
            versions = document["versions"]
            chosen = versions[-1] if version is None else next(
                (v for v in versions if v["version"] == version), None)
            if chosen is None:
                raise NotFound("There is no such version of this document.")
            chunks = self.blobs.chunks(viewer.council_id, chosen["file_id"])
            if chunks is None:
                raise NotFound(NOT_FOUND)
            return chosen, chunks

        return self._audited(who, "documents.download", case_id, document_id, run)

    # --- writes ----------------------------------------------------------------------------------------
    def upload(self, who: Identity, case_id: str, read: Callable[[int], bytes], filename: str | None,
               audience: dict[str, Any] | None = None,
               declared_length: int | None = None) -> tuple[dict[str, Any], Viewer]:
        """Receive a new document; it becomes visible (with its event) only once stored, checked and scanned."""

        def run():
            viewer = viewer_on(who, case_id)
            shared_with = with_uploader(normalise_audience(**(audience or {})), viewer.person_id)
            check_may_upload(viewer, shared_with)
            document_id = new_id()
            version = self._receive(viewer, case_id, document_id, 1, read, filename, declared_length)
            document = {
                "document_id": document_id,
                "council_id": viewer.council_id,
                "case_id": case_id,
                "audience": shared_with,
                "uploaded_by": dict(version["uploaded_by"]),
                "created_at": version["uploaded_at"],
                "updated_at": version["uploaded_at"],
                "versions": [version],
                "deleted": None,
            }
            event = ("document_added", event_data(document, version), story_for(document, version, False))
            self._keep_or_discard(version, lambda: self.store.add_document(document, event))
            return document, viewer

        return self._audited(who, "documents.upload", case_id, None, run)

    def add_version(self, who: Identity, case_id: str, document_id: str, read: Callable[[int], bytes],
                    filename: str | None, declared_length: int | None = None) -> tuple[dict[str, Any], Viewer]:
        """A new version of a document; earlier versions are kept and stay downloadable."""

        def run():
            viewer = viewer_on(who, case_id)
            document = self._visible(viewer, case_id, document_id)
            check_may_add_version(document, viewer)
            count = len(document["versions"])
            if count >= MAX_VERSIONS:
                raise Conflict(f"A document keeps at most {MAX_VERSIONS} versions.")
            label = filename or without_type_extension(document["versions"][-1]["label"])
            version = self._receive(viewer, case_id, document_id, count + 1, read, label, declared_length)
            event = ("document_version_added", event_data(document, version), story_for(document, version, True))
            return self._keep_or_discard(version, lambda: self.store.add_version(
                viewer, case_id, document_id, count, version, event)), viewer

        return self._audited(who, "documents.version.add", case_id, document_id, run)

    def delete(self, who: Identity, case_id: str, document_id: str) -> dict[str, Any]:
        """Staff only; soft: the document is hidden, every version kept, and staff can restore it."""

        def run():
            viewer = viewer_on(who, case_id)
            self._visible(viewer, case_id, document_id, include_deleted=viewer.is_staff)
            if not viewer.is_staff:
                raise Forbidden("Only staff on the case can delete a document.")
            return self.store.set_deleted(viewer, case_id, document_id,
                                          {"at": self.clock(), "by": viewer.person_id})

        return self._audited(who, "documents.delete", case_id, document_id, run)

    def restore(self, who: Identity, case_id: str, document_id: str) -> tuple[dict[str, Any], Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            if not viewer.is_staff:
                raise NotFound(NOT_FOUND)  # the family never sees deleted documents
            self._visible(viewer, case_id, document_id, include_deleted=True)
            return self.store.set_deleted(viewer, case_id, document_id, None), viewer

        return self._audited(who, "documents.restore", case_id, document_id, run)

    # --- receiving bytes --------------------------------------------------------------------------------
    def _keep_or_discard(self, version: dict[str, Any], keep: Callable[[], T]) -> T:
        try:
            return keep()
        except BaseException:
            self.blobs.delete(version["file_id"])
            raise

    def _receive(self, viewer: Viewer, case_id: str, document_id: str, number: int,
                 read: Callable[[int], bytes], filename: str | None,
                 declared_length: int | None) -> dict[str, Any]:
        """Stream the body into the blob store, a chunk at a time, and return the version record.

        Refused before a byte is read: a declared length over the limit (413), an unreachable scanner
        (503). Refused while reading: more bytes than the limit (413), a type off the allow-list (415),
        a polyglot or a name that lies (422). Refused after: an infected file (422). Whatever is refused
        leaves nothing stored.
        """
        if declared_length is not None and declared_length > self.max_bytes:
            raise PayloadTooLarge(f"A document can be at most {self.max_bytes} bytes.")
        label = sanitise_label(filename)
        scan = self.scanner.start() if self.scanner is not None else None
        stored_name = f"{document_id}.v{number}.{new_id()[:8]}"  # server-made; the user's name is only a label
        try:
            writer = self.blobs.open_upload(stored_name, {"council_id": viewer.council_id, "case_id": case_id,
                                                         "document_id": document_id, "version": number})
        except BaseException:
            if scan is not None:
                scan.close()
            raise
        digest = hashlib.sha256()
        size = 0
        undecided = bytearray()
        file_type: FileType | None = None
        text: TextChecker | None = None
        try:
            while True:
                chunk = read(CHUNK_BYTES)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_bytes:
                    raise PayloadTooLarge(f"A document can be at most {self.max_bytes} bytes.")
                if file_type is None:
                    undecided += chunk
                    if len(undecided) >= HEAD_BYTES:
                        file_type, label, text = self._decide(bytes(undecided), label)
                        undecided.clear()
                elif text is not None:
                    text.feed(chunk)
                digest.update(chunk)
                writer.write(chunk)
                if scan is not None:
                    scan.feed(chunk)
            if file_type is None:
                file_type, label, text = self._decide(bytes(undecided), label)
            if text is not None:
                text.feed(b"", final=True)
            writer.close()
        except BaseException:
            writer.abort()
            if scan is not None:
                scan.close()
            raise
        try:
            check_container(file_type, self.blobs.open_readable(writer.file_id))
            signature = scan.verdict() if scan is not None else None
            if signature is not None:
                raise Unprocessable("The file was refused: the malware scanner found something in it.")
        except BaseException:
            self.blobs.delete(writer.file_id)
            raise
        finally:
            if scan is not None:
                scan.close()
        return {
            "version": number,
            "file_id": writer.file_id,
            "stored_name": stored_name,
            "label": label,
            "media_type": file_type.media_type,
            "size": size,
            "sha256": digest.hexdigest(),
            "scan_status": "clean" if scan is not None else "not_scanned",
            "uploaded_by": {"person_id": viewer.person_id, "role": viewer.role},
            "uploaded_at": self.clock(),
        }

    @staticmethod
    def _decide(head: bytes, label: str) -> tuple[FileType, str, TextChecker | None]:
        file_type = sniff(head[:HEAD_BYTES])
        label = label_for(label, file_type)
        if file_type.key != "text":
            return file_type, label, None
        text = TextChecker()
        text.feed(head)
        return file_type, label, text
