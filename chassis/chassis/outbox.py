"""The transactional outbox: a state change and its event are written together.

A service calls ``Outbox.add`` inside the same MongoDB transaction as the
change it describes. The worker's ``OutboxRelay`` publishes unsent records to
RabbitMQ (the nameko event exchange ``<service>.events``, routing key = event
type) with publisher confirms, and only then marks them sent. A crash between
the confirm and the mark publishes a record twice; consumers are idempotent.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from kombu import Connection, Exchange, Producer
from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.database import Database

log = logging.getLogger(__name__)

EVENTS_DIR = Path(__file__).resolve().parents[2] / "contracts" / "events"


def event_exchange(service: str) -> Exchange:
    """The same exchange nameko's EventDispatcher/EventHandler use for ``service``."""
    return Exchange(f"{service}.events", type="topic", durable=True, delivery_mode=2, auto_delete=False)


@cache
def _validator(source: str, event_type: str) -> jsonschema.protocols.Validator:
    path = EVENTS_DIR / f"{source}.{event_type}.json"
    if not path.exists():
        raise LookupError(f"no event schema {path.name} in contracts/events")
    schema = json.loads(path.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def validate_event(envelope: dict) -> None:
    """Raise ``jsonschema.ValidationError`` when an event breaks its contract."""
    _validator(envelope["source"], envelope["type"]).validate(envelope)


def make_envelope(source: str, event_type: str, council_id: str, data: dict[str, Any],
                  story: dict[str, Any] | None = None, event_id: str | None = None) -> dict:
    envelope: dict[str, Any] = {
        "id": event_id or uuid.uuid4().hex,
        "type": event_type,
        "source": source,
        "council_id": council_id,
        "occurred_at": datetime.now(timezone.utc).isoformat(),
        "data": data,
    }
    if story is not None:
        envelope["story"] = story
    return envelope


class Outbox:
    def __init__(self, db: Database, source: str):
        self.collection = db["outbox"]
        self.source = source

    def ensure_indexes(self) -> None:
        self.collection.create_index([("sent_at", ASCENDING), ("created_at", ASCENDING)])

    def add(self, session: ClientSession, event_type: str, council_id: str, data: dict[str, Any],
            story: dict[str, Any] | None = None) -> dict:
        """Record an event in the caller's transaction; returns the envelope."""
        envelope = make_envelope(self.source, event_type, council_id, data, story)
        validate_event(envelope)
        self.collection.insert_one(
            {"_id": envelope["id"], "envelope": envelope, "created_at": datetime.now(timezone.utc), "sent_at": None},
            session=session,
        )
        return envelope

    def pending(self, limit: int) -> list[dict]:
        return list(self.collection.find({"sent_at": None}).sort([("created_at", 1), ("_id", 1)]).limit(limit))

    def mark_sent(self, ids: list[str]) -> None:
        if ids:
            self.collection.update_many({"_id": {"$in": ids}}, {"$set": {"sent_at": datetime.now(timezone.utc)}})

    def unsent_count(self) -> int:
        return self.collection.count_documents({"sent_at": None})


class OutboxRelay:
    """Publishes the outbox to RabbitMQ with publisher confirms."""

    def __init__(self, outbox: Outbox, amqp_uri: str):
        self.outbox = outbox
        self.amqp_uri = amqp_uri
        self.exchange = event_exchange(outbox.source)
        self._connection: Connection | None = None
        self._producer: Producer | None = None

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            conn = Connection(self.amqp_uri, transport_options={"confirm_publish": True}, connect_timeout=5)
            conn.connect()
            channel = conn.channel()
            self.exchange(channel).declare()
            self._connection, self._producer = conn, Producer(channel, exchange=self.exchange)
        return self._producer

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:
                pass
        self._connection = self._producer = None

    def relay_batch(self, limit: int = 200) -> int:
        """Publish up to ``limit`` unsent records; returns how many were confirmed.

        Raises the broker's error after marking what was confirmed before it,
        so the caller can back off and reconnect.
        """
        records = self.outbox.pending(limit)
        if not records:
            return 0
        confirmed: list[str] = []
        try:
            producer = self._ensure_producer()
            for record in records:
                envelope = record["envelope"]
                producer.publish(
                    envelope,
                    routing_key=envelope["type"],
                    serializer="json",
                    delivery_mode=2,
                    headers={"event_id": envelope["id"]},
                    retry=False,
                )
                confirmed.append(record["_id"])
        except Exception:
            self.close()
            raise
        finally:
            self.outbox.mark_sent(confirmed)
        return len(confirmed)
