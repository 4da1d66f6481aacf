"""MongoDB access shared by every store: one client per process, transactions."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pymongo import MongoClient
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

T = TypeVar("T")


def connect(uri: str, app_name: str) -> MongoClient:
    """A client for the service's own MongoDB; no I/O until first use."""
    return MongoClient(
        uri,
        appname=app_name,
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=3000,
        retryWrites=True,
        uuidRepresentation="standard",
    )


def in_transaction(client: MongoClient, fn: Callable[[ClientSession], T]) -> T:
    """Run ``fn(session)`` in one multi-document transaction, retrying transient errors."""
    with client.start_session() as session:
        return session.with_transaction(
            fn,
            read_concern=ReadConcern("snapshot"),
            write_concern=WriteConcern("majority"),
        )


def ping(db: Database) -> bool:
    try:
        db.command("ping")
        return True
    except Exception:
        return False
