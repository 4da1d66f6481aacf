"""The documents web process: ``gunicorn ... 'documents.app:create_app()'``."""

from __future__ import annotations

import connexion

from chassis.audit import AuditTrail
from chassis.config import Settings
from chassis.mongo import connect
from chassis.web import create_service_app

from .domain import DEFAULT_MAX_BYTES, Documents
from .scanner import ClamdScanner
from .store import GridFSBlobStore, MongoDocumentStore


def create_app(settings: Settings | None = None) -> connexion.FlaskApp:
    """The composition root of the web process: client, stores, scanner, audit trail, app."""
    settings = settings or Settings.from_env("documents")
    client = connect(settings.mongo_uri, f"{settings.service_name}-web")
    db = client[settings.mongo_db]
    store = MongoDocumentStore(client, db)
    store.ensure_indexes()
    blobs = GridFSBlobStore(db)
    blobs.ensure_indexes()
    audit = AuditTrail(db, "documents")
    audit.ensure_indexes()
    max_bytes = int(settings.get("DOCUMENTS_MAX_BYTES", str(DEFAULT_MAX_BYTES)))
    clamd = settings.get("CLAMD_ADDRESS", "").strip()
    scanner = ClamdScanner(clamd, float(settings.get("CLAMD_TIMEOUT", "30"))) if clamd else None
    documents = Documents(store, blobs, audit, scanner=scanner, max_bytes=max_bytes)
    # only the two upload paths take a body larger than the chassis' 64 KB: the file, up to the limit
    return create_service_app(
        settings,
        "documents.yaml",
        resources={"db": db, "store": store, "blobs": blobs, "audit": audit, "documents": documents},
        body_limit_overrides={"/documents": max_bytes, "/versions": max_bytes},
    )
