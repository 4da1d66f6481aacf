"""connexion handlers for contracts/documents.yaml: parse, call the domain, shape the answer.

Uploads are read from the WSGI input stream a chunk at a time: no handler takes a ``body`` argument,
so connexion never buffers the request (``request.get_data()`` is only called for a declared body
argument), and the octet-stream body has no validator in connexion's request validation.
Downloads are werkzeug responses over a generator of GridFS chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Response, request

from chassis import subject_access
from chassis.subject_access import Source
from chassis.web import caller, resource

from .content import content_disposition
from .domain import Documents, sees_audience_details
from .domain import can_see as can_see_document
from .schemas import shown_document

JSON = {"Content-Type": "application/json"}  # operations also declare problem+json answers


def _documents() -> Documents:
    return resource("documents")


def _body_reader():
    return request.environ["wsgi.input"].read


def _shown(document: dict[str, Any], viewer, with_versions: bool = True) -> dict[str, Any]:
    return shown_document(document, with_versions, sees_audience_details(document, viewer))


def list_documents(case_id: str, limit: int = 20, cursor: str | None = None, include_deleted: bool = False):
    items, next_cursor, viewer = _documents().list_documents(caller(), case_id, limit, cursor, include_deleted)
    return {"items": [_shown(d, viewer, False) for d in items], "next_cursor": next_cursor}, 200, JSON


def upload_document(case_id: str, filename: str | None = None, audience: str = "case",
                    people: list[str] | None = None, exclude: list[str] | None = None):
    document, viewer = _documents().upload(caller(), case_id, _body_reader(), filename,
                                           {"kind": audience, "people": people, "exclude": exclude},
                                           request.content_length)
    return _shown(document, viewer), 201, JSON


def get_document(case_id: str, document_id: str):
    document, viewer = _documents().get_document(caller(), case_id, document_id)
    return _shown(document, viewer), 200, JSON


def add_version(case_id: str, document_id: str, filename: str | None = None):
    document, viewer = _documents().add_version(caller(), case_id, document_id, _body_reader(), filename,
                                                request.content_length)
    return _shown(document, viewer), 201, JSON


def delete_document(case_id: str, document_id: str):
    _documents().delete(caller(), case_id, document_id)
    response = Response(status=204)
    del response.headers["Content-Type"]  # no body, so no content type
    return response


def restore_document(case_id: str, document_id: str):
    document, viewer = _documents().restore(caller(), case_id, document_id)
    return _shown(document, viewer), 200, JSON


def download_latest(case_id: str, document_id: str):
    return _file_response(*_documents().open_content(caller(), case_id, document_id))


def download_version(case_id: str, document_id: str, version: int):
    return _file_response(*_documents().open_content(caller(), case_id, document_id, version))


def _file_response(version: dict[str, Any], chunks: Iterator[bytes]) -> Response:
    response = Response(chunks, status=200, mimetype=version["media_type"], direct_passthrough=True)
    response.headers["Content-Length"] = str(version["size"])
    response.headers["Content-Disposition"] = content_disposition(version["label"])
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Content-SHA256"] = version["sha256"]
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# --- subject access (chassis.subject_access): what this tool holds about one person ---------------
def _export_sources() -> list[Source]:
    return [
        Source("documents", "document", "document_id", "created_at", can_see=can_see_document,
               author_fields=("uploaded_by.person_id",)),
    ]


def export_person(person_id: str):
    return subject_access.export_person(person_id, _export_sources())
