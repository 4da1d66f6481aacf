"""The cases worker relays the outbox to RabbitMQ (real SecantusDB, real broker, real worker process)."""

from __future__ import annotations

import os
import sys

import pytest
from cases_identities import machine
from kombu import Connection, Queue
from pymongo import MongoClient

from cases.app import create_app
from chassis.config import Settings
from chassis.devservers import Proc, wait_until
from chassis.outbox import event_exchange, validate_event
from chassis.testing import unique_db

pytestmark = pytest.mark.integration


def test_worker_publishes_case_opened_and_member_added(mongo_uri, amqp_uri, jwks_path, minter, run_dir):
    db_name = unique_db("cases_worker")
    app = create_app(Settings(service_name="cases", mongo_uri=mongo_uri, mongo_db=db_name, internal_jwks=jwks_path,
                              validate_responses=True))
    client = app.test_client()
    headers = {"Authorization": "Bearer " + minter.mint("cases", machine().to_claims())}
    queue = Queue(f"test-cases-{db_name}", exchange=event_exchange("cases"), routing_key="#", durable=False,
                  auto_delete=False)
    with Connection(amqp_uri) as conn:
        queue(conn.default_channel).declare()
    assert client.put("/people/p1", json={"display_name": "Alex", "kind": "family"}, headers=headers).status_code == 201
    assert client.put("/cases/c1", json={"reference": "R", "title": "T"}, headers=headers).status_code == 201
    assert client.put("/cases/c1/members/p1", json={"role": "parent"}, headers=headers).status_code == 201

    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DB": db_name, "AMQP_URI": amqp_uri}
    worker = Proc("cases-worker", [sys.executable, "-m", "chassis.runworker", "cases.worker:CasesWorker"], env,
                  run_dir / "logs" / "cases-worker.log").start()
    mongo = MongoClient(mongo_uri)
    try:
        outbox = mongo[db_name]["outbox"]
        wait_until(lambda: outbox.count_documents({"sent_at": None}) == 0, 60, "outbox relayed", alive=worker.alive)
        received = []
        with Connection(amqp_uri) as conn:
            simple = conn.SimpleQueue(queue)
            for _ in range(2):
                message = simple.get(timeout=10)
                received.append(message.payload)
                message.ack()
            simple.close()
        for envelope in received:
            validate_event(envelope)
        assert [(e["type"], e["data"]) for e in received] == [
            ("case_opened", {"case_id": "c1"}),
            ("member_added", {"case_id": "c1", "person_id": "p1", "role": "parent"}),
        ]
    finally:
        worker.stop()
        mongo.close()
        with Connection(amqp_uri) as conn:
            queue(conn.default_channel).delete()
