"""The repositories: the only module that speaks to MongoDB.

``MongoDocumentStore`` keeps document metadata (every version embedded) and writes each change with its
event in one transaction through the outbox. Every query carries the viewer's council, the case and the
visibility rule (``visibility_filter``, the database form of ``domain.can_see``).

``GridFSBlobStore`` keeps the bytes in GridFS (bucket ``content``), written and read one chunk at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

from bson import Binary, ObjectId
from gridfs import GridFSBucket
from gridfs.errors import CorruptGridFile as CorruptFile
from gridfs.errors import NoFile
from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.database import Database

from chassis.audience import NOBODY, audience_filter
from chassis.identity import FAMILY_CASE_ROLES, STAFF_CASE_ROLES
from chassis.mongo import in_transaction
from chassis.outbox import Outbox
from chassis.paging import encode_cursor, newest_first_filter
from chassis.problems import Conflict, NotFound

from .domain import (
    NOT_FOUND,
    AbstractBlobStore,
    AbstractDocumentStore,
    BlobWriter,
    Viewer,
)

BUCKET = "content"
CHUNK_SIZE = 255 * 1024
READ_BATCH = 4  # chunks a download cursor fetches at a time (~1 MB)


def visibility_filter(person_id: str, role: str | None, include_deleted: bool = False) -> dict[str, Any]:
    """The Mongo condition for "``person_id`` with ``role`` on the case may see this document"."""
    seen = audience_filter(person_id, role, author_field="uploaded_by.person_id")
    live = {"deleted": None}
    if role in STAFF_CASE_ROLES:
        return seen if include_deleted else {"$and": [live, seen]}
    if role in FAMILY_CASE_ROLES:
        return {"$and": [live, seen]}
    return NOBODY


def _to_document(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k != "_id"}
    out["document_id"] = doc["_id"]
    return out


def _to_doc(document: dict[str, Any]) -> dict[str, Any]:
    doc = {k: v for k, v in document.items() if k != "document_id"}
    doc["_id"] = document["document_id"]
    return doc


class MongoDocumentStore(AbstractDocumentStore):
    def __init__(self, client: MongoClient, db: Database):
        self.client = client
        self.db = db
        self.documents = db["documents"]
        self.outbox = Outbox(db, "documents")

    def ensure_indexes(self) -> None:
        self.documents.create_index([("council_id", ASCENDING), ("case_id", ASCENDING),
                                     ("created_at", DESCENDING), ("_id", DESCENDING)])
        self.outbox.ensure_indexes()

    def _scope(self, viewer: Viewer, case_id: str, include_deleted: bool = False) -> dict[str, Any]:
        return {"council_id": viewer.council_id, "case_id": case_id,
                **visibility_filter(viewer.person_id, viewer.role, include_deleted)}

    def add_document(self, document: dict[str, Any], event: tuple[str, dict, dict]) -> None:
        event_type, data, story = event

        def write(session: ClientSession) -> None:
            self.documents.insert_one(_to_doc(document), session=session)
            self.outbox.add(session, event_type, document["council_id"], data, story)

        in_transaction(self.client, write)

    def add_version(self, viewer: Viewer, case_id: str, document_id: str, expected_count: int,
                    version: dict[str, Any], event: tuple[str, dict, dict]) -> dict[str, Any]:
        event_type, data, story = event

        def write(session: ClientSession) -> dict[str, Any]:
            doc = self.documents.find_one_and_update(
                {"_id": document_id, **self._scope(viewer, case_id), "versions": {"$size": expected_count}},
                {"$push": {"versions": version}, "$set": {"updated_at": version["uploaded_at"]}},
                return_document=ReturnDocument.AFTER, session=session,
            )
            if doc is None:
                raise Conflict("The document changed while this version was uploaded; try again.")
            self.outbox.add(session, event_type, viewer.council_id, data, story)
            return _to_document(doc)

        return in_transaction(self.client, write)

    def visible_page(self, viewer: Viewer, case_id: str, limit: int, cursor: str | None,
                     include_deleted: bool) -> tuple[list[dict[str, Any]], str | None]:
        query = self._scope(viewer, case_id, include_deleted)
        after = newest_first_filter(cursor, "created_at")
        if after:
            query = {"$and": [query, after]}
        docs = list(self.documents.find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)])
                    .limit(limit + 1))
        next_cursor = None
        if len(docs) > limit:
            docs = docs[:limit]
            next_cursor = encode_cursor(docs[-1]["created_at"], docs[-1]["_id"])
        return [_to_document(d) for d in docs], next_cursor

    def visible_document(self, viewer: Viewer, case_id: str, document_id: str,
                         include_deleted: bool = False) -> dict[str, Any] | None:
        doc = self.documents.find_one({"_id": document_id, **self._scope(viewer, case_id, include_deleted)})
        return _to_document(doc) if doc else None

    def set_deleted(self, viewer: Viewer, case_id: str, document_id: str,
                    deleted: dict[str, Any] | None) -> dict[str, Any]:
        # staff only (the domain checked it; the scope holds it too: a family viewer matches no deleted one)
        state = {"deleted": None} if deleted is not None else {"deleted": {"$ne": None}}
        doc = self.documents.find_one_and_update(
            {"_id": document_id, **self._scope(viewer, case_id, include_deleted=True), **state},
            {"$set": {"deleted": deleted}}, return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            if self.visible_document(viewer, case_id, document_id, include_deleted=True) is None:
                raise NotFound(NOT_FOUND)
            raise Conflict("The document is already deleted." if deleted else "The document is not deleted.")
        return _to_document(doc)


class _ChunkWriter:
    """Writes a GridFS-spec file one chunk document at a time.

    pymongo's own ``GridIn`` batches chunk inserts until up to 48 MB are buffered, which would hold
    most of an upload in memory; this writer holds at most one chunk. The ``files`` document is
    written last, so a half-written file is never listed; ``abort`` deletes the chunks written so far.
    """

    def __init__(self, db: Database, stored_name: str, metadata: dict[str, Any], chunk_size: int):
        self.db, self.stored_name, self.metadata, self.chunk_size = db, stored_name, metadata, chunk_size
        self.file_id = ObjectId()
        self._buffer = bytearray()
        self._n = 0
        self._length = 0

    def _flush(self, data: bytes) -> None:
        self.db[f"{BUCKET}.chunks"].insert_one({"files_id": self.file_id, "n": self._n, "data": Binary(data)})
        self._n += 1

    def write(self, data: bytes) -> None:
        self._length += len(data)
        self._buffer += data
        while len(self._buffer) >= self.chunk_size:
            self._flush(bytes(self._buffer[: self.chunk_size]))
            del self._buffer[: self.chunk_size]

    def close(self) -> None:
        if self._buffer:
            self._flush(bytes(self._buffer))
            self._buffer.clear()
        self.db[f"{BUCKET}.files"].insert_one({
            "_id": self.file_id, "length": self._length, "chunkSize": self.chunk_size,
            "uploadDate": datetime.now(UTC), "filename": self.stored_name, "metadata": self.metadata,
        })

    def abort(self) -> None:
        self._buffer.clear()
        self.db[f"{BUCKET}.chunks"].delete_many({"files_id": self.file_id})


class GridFSBlobStore(AbstractBlobStore):
    def __init__(self, db: Database, chunk_size: int = CHUNK_SIZE):
        self.db = db
        self.chunk_size = chunk_size
        self.bucket = GridFSBucket(db, bucket_name=BUCKET, chunk_size_bytes=chunk_size)
        self.files = db[f"{BUCKET}.files"]
        self.chunk_docs = db[f"{BUCKET}.chunks"]

    def ensure_indexes(self) -> None:
        self.files.create_index([("metadata.council_id", ASCENDING), ("_id", ASCENDING)])
        self.chunk_docs.create_index([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)

    def open_upload(self, stored_name: str, metadata: dict[str, Any]) -> BlobWriter:
        return _ChunkWriter(self.db, stored_name, metadata, self.chunk_size)

    def open_readable(self, file_id: Any) -> IO[bytes]:
        return self.bucket.open_download_stream(file_id)

    def chunks(self, council_id: str, file_id: Any) -> Iterator[bytes] | None:
        meta = self.files.find_one({"_id": file_id, "metadata.council_id": council_id}, {"length": 1})
        if meta is None:
            return None
        # small batches: a cursor's default batch can carry 16 MB of chunks at once
        cursor = self.chunk_docs.find({"files_id": file_id}, {"data": 1, "n": 1},
                                      batch_size=READ_BATCH).sort("n", ASCENDING)

        def stream() -> Iterator[bytes]:
            sent = 0
            try:
                for expected, doc in enumerate(cursor):
                    if doc["n"] != expected:
                        raise CorruptFile(f"chunk {expected} of a stored file is missing")
                    sent += len(doc["data"])
                    yield bytes(doc["data"])
                if sent != meta["length"]:
                    raise CorruptFile("a stored file is shorter than recorded")
            finally:
                cursor.close()

        return stream()

    def delete(self, file_id: Any) -> None:
        try:
            self.bucket.delete(file_id)
        except NoFile:
            pass

    def count(self) -> int:
        """How many files are stored (tests: nothing left behind by a refused upload)."""
        return self.files.count_documents({})

