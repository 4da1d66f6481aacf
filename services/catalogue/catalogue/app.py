"""The catalogue's web process: ``create_app()`` is its composition root.

Run: ``gunicorn -c deploy/gunicorn.conf.py --bind 127.0.0.1:PORT 'catalogue.app:create_app()'``
"""

from __future__ import annotations

import connexion

from chassis.config import Settings
from chassis.mongo import connect
from chassis.web import create_service_app

from .store import build_store

SERVICE = "catalogue"


def create_app(settings: Settings | None = None) -> connexion.FlaskApp:
    """The connexion app serving contracts/catalogue.yaml, with its store; indexes ensured."""
    settings = settings or Settings.from_env(SERVICE)
    client = connect(settings.mongo_uri, settings.service_name)
    db = client[settings.mongo_db or f"family_story_{settings.service_name}"]
    store = build_store(client, db)
    store.ensure_indexes()
    return create_service_app(settings, "catalogue.yaml",
                              resources={"db": db, "store": store, "audit": store.audit, "mongo_client": client})
