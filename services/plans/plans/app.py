"""The plans web process: ``gunicorn ... 'plans.app:create_app()'``."""

from __future__ import annotations

import connexion

from chassis.audit import AuditTrail
from chassis.config import Settings
from chassis.mongo import connect
from chassis.web import create_service_app

from .domain import Plans
from .store import MongoPlanStore

# a whole plan travels in one request: 7 areas x 20 goals x 20 actions of escaped text
DEFAULT_MAX_BODY_BYTES = 1048576


def create_app(settings: Settings | None = None) -> connexion.FlaskApp:
    """The composition root of the web process: client, store, audit trail, app."""
    settings = settings or Settings.from_env("plans")
    client = connect(settings.mongo_uri, f"{settings.service_name}-web")
    db = client[settings.mongo_db]
    store = MongoPlanStore(client, db)
    store.ensure_indexes()
    audit = AuditTrail(db, "plans")
    audit.ensure_indexes()
    body_limit = int(settings.get("PLANS_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES)))
    return create_service_app(
        settings,
        "plans.yaml",
        resources={"db": db, "store": store, "audit": audit, "plans": Plans(store, audit)},
        # only plan content is large: creating a plan and replacing its draft
        body_limit_overrides={"/draft": body_limit, "/plans": body_limit},
    )
