"""The messaging web process: ``gunicorn ... 'messaging.app:create_app()'``."""

from __future__ import annotations

import connexion

from chassis.audit import AuditTrail
from chassis.config import Settings
from chassis.logs import configure_logging
from chassis.mongo import connect
from chassis.web import create_service_app

from .domain import Messaging
from .store import MongoMessageStore

# a message may be 10,000 characters; JSON-escaped non-ASCII text takes up to 12 bytes a character
DEFAULT_MAX_BODY_BYTES = 131072


def create_app(settings: Settings | None = None) -> connexion.FlaskApp:
    """The composition root of the web process: client, store, audit trail, app."""
    if settings is None:
        settings = Settings.from_env("messaging")
        configure_logging(settings.log_level, settings.service_name)
    client = connect(settings.mongo_uri, f"{settings.service_name}-web")
    db = client[settings.mongo_db]
    store = MongoMessageStore(client, db)
    store.ensure_indexes()
    audit = AuditTrail(db, "messaging")
    audit.ensure_indexes()
    body_limit = int(settings.get("MESSAGING_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES)))
    return create_service_app(
        settings,
        "messaging.yaml",
        resources={"db": db, "store": store, "audit": audit, "messaging": Messaging(store, audit)},
        body_limit_overrides={"/cases/": body_limit},
    )
