"""While RabbitMQ is unreachable the cases API keeps working and its events wait in
the outbox; when the broker is back they all go out, each once."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse

import pytest
from cases_identities import machine
from kombu import Connection, Queue
from pymongo import MongoClient

from cases.app import create_app
from chassis.config import Settings
from chassis.devservers import CuttableTcpProxy, Proc, wait_until
from chassis.outbox import event_exchange
from chassis.testing import unique_db

pytestmark = pytest.mark.integration
PEOPLE = 25


def test_api_works_while_the_broker_is_down_and_the_outbox_drains_after(mongo_uri, amqp_uri, jwks_path, minter,
                                                                       run_dir):
    db_name = unique_db("cases_outage")
    broker = urlparse(amqp_uri)
    proxy = CuttableTcpProxy(broker.hostname, broker.port or 5672).start()
    via_proxy = broker._replace(netloc=f"{broker.username}:{broker.password}@127.0.0.1:{proxy.port}").geturl()
    queue = Queue(f"test-outage-{db_name}", exchange=event_exchange("cases"), routing_key="#", durable=True,
                  auto_delete=False)
    with Connection(amqp_uri) as conn:
        queue(conn.default_channel).declare()
    app = create_app(Settings(service_name="cases", mongo_uri=mongo_uri, mongo_db=db_name, internal_jwks=jwks_path))
    api = app.test_client()
    headers = {"Authorization": "Bearer " + minter.mint("cases", machine().to_claims())}
    env = {**os.environ, "MONGO_URI": mongo_uri, "MONGO_DB": db_name, "AMQP_URI": via_proxy}
    worker = Proc("cases-worker", [sys.executable, "-m", "chassis.runworker", "cases.worker:CasesWorker"], env,
                  run_dir / "logs" / "cases-outage-worker.log").start()
    mongo = MongoClient(mongo_uri)
    outbox = mongo[db_name]["outbox"]
    try:
        wait_until(lambda: "worker cases started" in worker.tail(50), 60, "worker started", alive=worker.alive)
        proxy.cut()  # RabbitMQ is now unreachable for the worker

        assert api.put("/cases/c1", json={"reference": "R1", "title": "Family"}, headers=headers).status_code == 201
        for n in range(PEOPLE):
            assert api.put(f"/people/p{n}", json={"display_name": f"Person {n}", "kind": "family"},
                           headers=headers).status_code == 201
            assert api.put(f"/cases/c1/members/p{n}", json={"role": "parent"}, headers=headers).status_code == 201
        wait_until(lambda: "broker or store unavailable" in worker.tail(200), 30, "relay noticing the outage",
                   alive=worker.alive)
        expected = {d["_id"] for d in outbox.find({}, {"_id": 1})}
        assert len(expected) == PEOPLE + 1
        assert outbox.count_documents({"sent_at": None}) == PEOPLE + 1  # nothing went out while it was down

        proxy.restore()
        wait_until(lambda: outbox.count_documents({"sent_at": None}) == 0, 60, "outbox drained", alive=worker.alive)
        received = []
        with Connection(amqp_uri) as conn:
            simple = conn.SimpleQueue(queue)
            while len(received) < len(expected):
                message = simple.get(timeout=10)
                received.append(message.payload["id"])
                message.ack()
            simple.close()
        assert sorted(received) == sorted(expected)  # every event, each once
    finally:
        worker.stop()
        proxy.close()
        mongo.close()
        with Connection(amqp_uri) as conn:
            queue(conn.default_channel).delete()
