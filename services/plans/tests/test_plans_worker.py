"""The plans worker against real SecantusDB and RabbitMQ: each plan event leaves the outbox once, on plans.events."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from kombu import Connection, Queue
from pymongo import MongoClient

from chassis.config import Settings
from chassis.devservers import Proc, wait_until
from chassis.identity import Identity
from chassis.outbox import event_exchange, validate_event
from chassis.testing import unique_db
from plans.app import create_app

pytestmark = pytest.mark.integration

COUNCIL, CASE = "council-a", "case-1"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
EVENTS = ("plan_published", "plan_agreed", "plan_reviewed")


@pytest.fixture(scope="module")
def world(mongo_uri, amqp_uri, run_dir, jwks_path, minter):
    db_name = unique_db("plans_worker")
    env = dict(os.environ)
    env.update(SERVICE_NAME="plans", MONGO_URI=mongo_uri, MONGO_DB=db_name, AMQP_URI=amqp_uri,
               PYTHONPATH=os.pathsep.join([str(PACKAGE_DIR), env.get("PYTHONPATH", "")]))
    # a consumer's queue, declared before anything is published (as deployment declares the timeline's)
    queue = Queue(f"test-plans-{db_name}", durable=True, auto_delete=False)
    with Connection(amqp_uri) as conn:
        channel = conn.default_channel
        event_exchange("plans")(channel).declare()
        bound = queue(channel)
        bound.declare()
        for event_type in EVENTS:
            bound.bind_to(exchange=event_exchange("plans").name, routing_key=event_type)
    worker = Proc("plans-worker", [sys.executable, "-m", "chassis.runworker", "plans.worker:PlansWorker"], env,
                  run_dir / "logs" / "plans-worker.log").start()
    client = MongoClient(mongo_uri, tz_aware=True)
    app = create_app(Settings(service_name="plans", mongo_uri=mongo_uri, mongo_db=db_name,
                              internal_jwks=jwks_path, validate_responses=True))
    try:
        wait_until(lambda: "worker plans started" in worker.tail(200), 60, "plans worker", alive=worker.alive)
        with app.test_client() as http:
            yield {"worker": worker, "db": client[db_name], "http": http, "minter": minter, "queue": queue.name}
    finally:
        worker.stop()
        with Connection(amqp_uri) as conn:
            conn.default_channel.queue_delete(queue.name)
        client.close()


def call(world, person_id: str, role: str, method: str, path: str, **kwargs):
    who = Identity(subject=person_id, actor="person", council_id=COUNCIL, cases={CASE: role})
    token = world["minter"].mint("plans", who.to_claims())
    resp = world["http"].request(method, path, headers={"Authorization": "Bearer " + token}, **kwargs)
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def drain(amqp_uri: str, queue: str, want: int, timeout: float = 30) -> list[dict]:
    got: list[dict] = []
    with Connection(amqp_uri) as conn:
        simple = conn.SimpleQueue(queue)

        def more() -> bool:
            try:
                message = simple.get(timeout=0.5)
            except simple.Empty:
                return len(got) >= want
            got.append(message.payload)
            message.ack()
            return False

        wait_until(more, timeout, f"{want} plan events")
        simple.close()
    return got


def test_publish_agree_review_reach_the_broker_exactly_once_with_the_plan_audience(world, amqp_uri):
    body = {"kind": "leaving_care", "title": "Leaving care", "subject_person_id": "yan", "review_due": "2026-09-01",
            "sections": [{"area": "money", "goals": [{"title": "Budget", "actions": []}]}]}
    plan = call(world, "sw", "social_worker", "POST", f"/cases/{CASE}/plans", json=body)
    path = f"/cases/{CASE}/plans/{plan['plan_id']}"
    call(world, "sw", "social_worker", "POST", f"{path}/publish")
    call(world, "yan", "child", "POST", f"{path}/versions/1/agreements", json={"agreed": False, "reason": "Too soon"})
    call(world, "sw", "social_worker", "POST", f"{path}/reviews", json={"outcome_notes": "Moved the date."})
    events = drain(amqp_uri, world["queue"], 3)
    assert [e["type"] for e in events] == list(EVENTS)
    assert len({e["id"] for e in events}) == 3
    for event in events:
        validate_event(event)
        assert event["source"] == "plans" and event["council_id"] == COUNCIL
        assert event["story"]["audience"] == {"kind": "named", "people": ["yan"], "exclude": []}
    assert events[1]["data"]["agreed"] is False
    wait_until(lambda: world["db"]["outbox"].count_documents({"sent_at": None}) == 0, 30, "outbox sent")
    assert world["db"]["outbox"].count_documents({}) == 3
