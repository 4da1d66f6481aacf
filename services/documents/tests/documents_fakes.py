"""In-memory fakes of the documents tool's ports, subclassing the same abstract bases."""

from __future__ import annotations

import copy
import io
import itertools
from typing import Any

from chassis.problems import Conflict, NotFound
from documents.domain import (
    NOT_FOUND,
    AbstractBlobStore,
    AbstractDocumentStore,
    ScannerUnavailable,
    Viewer,
    can_see,
)


class FakeDocumentStore(AbstractDocumentStore):
    def __init__(self):
        self.documents: dict[str, dict[str, Any]] = {}
        self.events: list[tuple[str, dict, dict]] = []

    def _visible(self, viewer, case_id, document_id, include_deleted=False):
        doc = self.documents.get(document_id)
        if doc and doc["council_id"] == viewer.council_id and doc["case_id"] == case_id and \
                can_see(doc, viewer.person_id, viewer.role, include_deleted):
            return doc
        return None

    def add_document(self, document, event):
        self.documents[document["document_id"]] = copy.deepcopy(document)
        self.events.append(event)

    def add_version(self, viewer, case_id, document_id, expected_count, version, event):
        doc = self._visible(viewer, case_id, document_id)
        if doc is None or len(doc["versions"]) != expected_count:
            raise Conflict("changed")
        doc["versions"].append(copy.deepcopy(version))
        doc["updated_at"] = version["uploaded_at"]
        self.events.append(event)
        return copy.deepcopy(doc)

    def visible_page(self, viewer, case_id, limit, cursor, include_deleted):
        docs = [d for d in self.documents.values() if self._visible(viewer, case_id, d["document_id"], include_deleted)]
        docs.sort(key=lambda d: (d["created_at"], d["document_id"]), reverse=True)
        return copy.deepcopy(docs[:limit]), None

    def visible_document(self, viewer, case_id, document_id, include_deleted=False):
        return copy.deepcopy(self._visible(viewer, case_id, document_id, include_deleted))

    def set_deleted(self, viewer, case_id, document_id, deleted):
        doc = self._visible(viewer, case_id, document_id, True)
        if doc is None:
            raise NotFound(NOT_FOUND)
        if bool(doc["deleted"]) == bool(deleted):
            raise Conflict("no change")
        doc["deleted"] = deleted
        return copy.deepcopy(doc)


class _Writer:
    def __init__(self, store, file_id):
        self.store, self.file_id = store, file_id
        self.parts: list[bytes] = []
        store.open_writers += 1

    def write(self, data):
        self.parts.append(bytes(data))

    def close(self):
        self.store.files[self.file_id] = b"".join(self.parts)
        self.store.open_writers -= 1

    def abort(self):
        self.store.aborted += 1
        self.store.open_writers -= 1


class FakeBlobStore(AbstractBlobStore):
    def __init__(self):
        self.files: dict[Any, bytes] = {}
        self.ids = itertools.count(1)
        self.aborted = 0
        self.open_writers = 0
        self.councils: dict[Any, str] = {}

    def open_upload(self, stored_name, metadata):
        writer = _Writer(self, next(self.ids))
        self.councils[writer.file_id] = metadata["council_id"]
        return writer

    def open_readable(self, file_id):
        return io.BytesIO(self.files[file_id])

    def chunks(self, council_id, file_id):
        if file_id not in self.files or self.councils.get(file_id) != council_id:
            return None
        data = self.files[file_id]
        return iter([data[i:i + 1000] for i in range(0, len(data), 1000)])

    def delete(self, file_id):
        self.files.pop(file_id, None)


class FakeAudit:
    def __init__(self):
        self.records: list[dict[str, Any]] = []

    def record(self, who, action, *, case_id=None, record_id=None, outcome="ok"):
        self.records.append({"who": who.subject, "action": action, "case_id": case_id,
                             "record_id": record_id, "outcome": outcome})


class FakeScanSession:
    def __init__(self, scanner):
        self.scanner = scanner
        self.data = bytearray()

    def feed(self, chunk):
        if self.scanner.fail_mid_stream:
            raise ScannerUnavailable("gone")
        self.data += chunk

    def verdict(self):
        return "Eicar-Test-Signature" if b"EICAR" in self.data else None

    def close(self):
        self.scanner.closed += 1


class FakeScanner:
    def __init__(self, reachable=True, fail_mid_stream=False):
        self.reachable, self.fail_mid_stream = reachable, fail_mid_stream
        self.closed = 0

    def start(self):
        if not self.reachable:
            raise ScannerUnavailable("unreachable")
        return FakeScanSession(self)


def viewer(person_id="sw", role="social_worker", council="council-a") -> Viewer:
    return Viewer(person_id=person_id, council_id=council, role=role)
