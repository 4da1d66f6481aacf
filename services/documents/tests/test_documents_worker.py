"""The documents worker relays the outbox to RabbitMQ: an upload's event arrives once, valid, with its story."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import documents_samples as s
import pytest
from kombu import Connection, Queue

from chassis.config import Settings
from chassis.devservers import Proc, wait_until
from chassis.identity import Identity
from chassis.outbox import event_exchange, validate_event
from chassis.testing import unique_db
from documents.app import create_app

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def test_uploads_reach_the_broker_with_their_story(mongo_uri, amqp_uri, jwks_path, minter, run_dir):
    db_name = unique_db("documents_worker")
    queue = Queue(f"test-documents-{uuid.uuid4().hex[:6]}", exchange=event_exchange("documents"),
                  routing_key="#", durable=False, auto_delete=False)
    with Connection(amqp_uri) as conn:
        queue(conn.default_channel).declare()
    env = dict(os.environ, SERVICE_NAME="documents", MONGO_URI=mongo_uri, MONGO_DB=db_name, AMQP_URI=amqp_uri,
               PYTHONUNBUFFERED="1")
    worker = Proc("documents-worker", [sys.executable, "-m", "chassis.runworker", "documents.worker:DocumentsWorker"],
                  env, run_dir / "logs" / f"{db_name}-worker.log", cwd=ROOT).start()
    try:
        wait_until(lambda: "worker documents started" in worker.tail(200), 60, "documents worker", alive=worker.alive)
        app = create_app(Settings(service_name="documents", mongo_uri=mongo_uri, mongo_db=db_name,
                                  internal_jwks=jwks_path, validate_responses=True))
        who = Identity(subject="sw", actor="person", council_id="council-a", audience="staff",
                       cases={"case-1": "social_worker"})
        with app.test_client() as http:
            def call(method, path, **kw):
                headers = {"Authorization": "Bearer " + minter.mint("documents", who.to_claims()),
                           "Content-Type": "application/octet-stream"}
                return http.request(method, path, headers=headers, **kw)

            doc = call("POST", "/cases/case-1/documents", params={"filename": "plan.pdf", "audience": "staff"},
                       content=s.PDF).json()
            call("POST", f"/cases/case-1/documents/{doc['document_id']}/versions", content=s.PDF)
        received: list[dict] = []
        with Connection(amqp_uri) as conn:
            bound = queue(conn.default_channel)

            def drain() -> bool:
                while (message := bound.get(no_ack=True)) is not None:
                    received.append(message.decode())
                return len(received) >= 2

            wait_until(drain, 30, "both events relayed")
        assert [e["type"] for e in received] == ["document_added", "document_version_added"]
        for envelope in received:
            validate_event(envelope)
            assert envelope["story"]["audience"] == {"kind": "staff", "people": [], "exclude": []}
            assert envelope["data"]["document_id"] == doc["document_id"]
        assert received[0]["story"]["title"] == "The social worker shared a document: plan.pdf"
    finally:
        worker.stop()
        with Connection(amqp_uri) as conn:
            queue(conn.default_channel).delete()
