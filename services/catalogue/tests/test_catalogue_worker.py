"""The catalogue worker relays tool_enabled / tool_disabled from the outbox to RabbitMQ."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from catalogue_testkit import ADMIN_A, OPERATOR, A, manifest
from kombu import Connection, Queue

from catalogue.app import create_app
from chassis.config import Settings
from chassis.devservers import Proc, wait_until
from chassis.outbox import event_exchange
from chassis.testing import unique_db

pytestmark = pytest.mark.integration
SERVICE_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def platform(mongo_uri, amqp_uri, jwks_path, minter, run_dir):
    db_name = unique_db("catalogue_worker")
    app = create_app(Settings(service_name="catalogue", mongo_uri=mongo_uri, mongo_db=db_name,
                              internal_jwks=jwks_path, validate_responses=True))
    client = app.test_client()

    def call(method, path, who, json=None):
        token = minter.mint("catalogue", who.to_claims())
        return client.request(method, path, json=json, headers={"Authorization": "Bearer " + token})

    env = dict(os.environ, MONGO_URI=mongo_uri, MONGO_DB=db_name, AMQP_URI=amqp_uri, SERVICE_NAME="catalogue")
    worker = Proc("catalogue-worker", [sys.executable, "-m", "chassis.runworker", "catalogue.worker:CatalogueWorker"],
                  env, run_dir / "logs" / f"{db_name}-worker.log", cwd=SERVICE_ROOT)
    yield call, app.app.extensions["family_story"]["db"], worker
    worker.stop()


def test_enable_and_disable_reach_the_broker_in_order_and_are_marked_sent(platform, amqp_uri):
    call, db, worker = platform
    queue = Queue(f"test-{db.name}", exchange=event_exchange("catalogue"), routing_key="#",
                  durable=False, auto_delete=False)
    with Connection(amqp_uri) as conn:
        queue(conn.default_channel).declare()
        try:
            assert call("PUT", f"/councils/{A}", OPERATOR, {"name": "Council A"}).status_code == 201
            assert call("PUT", "/tools/timeline", OPERATOR, manifest()).status_code == 201
            assert call("PUT", f"/councils/{A}/tools/timeline", ADMIN_A,
                        {"audiences": ["families"], "scopes": []}).status_code == 200
            assert call("DELETE", f"/councils/{A}/tools/timeline", ADMIN_A).status_code == 204
            # written while the broker is not yet being relayed to: the events wait in the outbox
            assert db["outbox"].count_documents({"sent_at": None}) == 2

            worker.start()
            wait_until(lambda: db["outbox"].count_documents({"sent_at": None}) == 0, 60, "outbox relayed",
                       alive=worker.alive)
            simple = conn.SimpleQueue(queue)
            received = [simple.get(timeout=10) for _ in range(2)]
            for message in received:
                message.ack()
            envelopes = [m.payload for m in received]
            assert [e["type"] for e in envelopes] == ["tool_enabled", "tool_disabled"], worker.tail()
            assert all(e["council_id"] == A and e["data"]["tool_id"] == "timeline" for e in envelopes)
            assert received[0].headers["event_id"] == envelopes[0]["id"]
        finally:
            queue(conn.default_channel).delete()
