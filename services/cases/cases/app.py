"""The cases web process: ``create_app()`` is its composition root.

Started by ``gunicorn -c deploy/gunicorn.conf.py --bind 127.0.0.1:PORT 'cases.app:create_app()'``.
"""

from __future__ import annotations

import connexion

from chassis.config import Settings
from chassis.logs import configure_logging
from chassis.mongo import connect
from chassis.web import create_service_app

from .domain import CaseDirectory
from .store import MongoCaseStore

SERVICE = "cases"


def create_app(settings: Settings | None = None) -> connexion.FlaskApp:
    """The connexion app serving contracts/cases.yaml against the service's own database."""
    if settings is None:
        settings = Settings.from_env(SERVICE)
        configure_logging(settings.log_level, settings.service_name)
    client = connect(settings.mongo_uri, settings.service_name)
    db = client[settings.mongo_db]
    store = MongoCaseStore(client, db)
    store.ensure_indexes()
    resources = {"db": db, "store": store, "audit": store.trail, "directory": CaseDirectory(store)}
    app = create_service_app(settings, "cases.yaml", resources=resources)
    return app

