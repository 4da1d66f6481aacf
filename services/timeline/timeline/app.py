"""The timeline web process: ``gunicorn ... 'timeline.app:create_app()'``."""

from __future__ import annotations

import connexion

from chassis.audit import AuditTrail
from chassis.config import Settings
from chassis.mongo import connect
from chassis.web import create_service_app

from .domain import Timeline
from .store import MongoEntryStore

# an entry body may be 20,000 characters; JSON-escaped non-ASCII text takes up to 12 bytes a character
DEFAULT_MAX_BODY_BYTES = 262144


def create_app(settings: Settings | None = None) -> connexion.FlaskApp:
    """The composition root of the web process: client, store, audit trail, app."""
    settings = settings or Settings.from_env("timeline")
    client = connect(settings.mongo_uri, f"{settings.service_name}-web")
    db = client[settings.mongo_db]
    store = MongoEntryStore(client, db)
    store.ensure_indexes()
    audit = AuditTrail(db, "timeline")
    audit.ensure_indexes()
    body_limit = int(settings.get("TIMELINE_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES)))
    return create_service_app(
        settings,
        "timeline.yaml",
        resources={"db": db, "store": store, "audit": audit, "timeline": Timeline(store, audit)},
        body_limit_overrides={"/cases/": body_limit},
    )
