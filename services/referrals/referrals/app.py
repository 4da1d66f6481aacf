"""The referrals web process: ``gunicorn ... 'referrals.app:create_app()'``."""

from __future__ import annotations

import connexion

from chassis.audit import AuditTrail
from chassis.config import Settings
from chassis.logs import configure_logging
from chassis.mongo import connect
from chassis.web import create_service_app

from .conversation import Conversations
from .domain import Referrals
from .store import MongoReferralStore

# a conversation script of 50 questions with their choices and synonyms stays well under this
DEFAULT_SCRIPT_BODY_BYTES = 262144


def create_app(settings: Settings | None = None) -> connexion.FlaskApp:
    """The composition root of the web process: client, store, audit trail, use cases, app."""
    if settings is None:
        settings = Settings.from_env("referrals")
        configure_logging(settings.log_level, settings.service_name)
    client = connect(settings.mongo_uri, f"{settings.service_name}-web")
    db = client[settings.mongo_db]
    store = MongoReferralStore(client, db)
    store.ensure_indexes()
    audit = AuditTrail(db, "referrals")
    audit.ensure_indexes()
    referrals = Referrals(store, audit)
    script_limit = int(settings.get("REFERRALS_SCRIPT_MAX_BODY_BYTES", str(DEFAULT_SCRIPT_BODY_BYTES)))
    return create_service_app(
        settings,
        "referrals.yaml",
        resources={"db": db, "store": store, "audit": audit, "referrals": referrals,
                   "conversations": Conversations(referrals)},
        body_limit_overrides={"/settings/conversation-script": script_limit},
    )
