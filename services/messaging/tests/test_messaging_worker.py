"""The messaging worker against real SecantusDB and RabbitMQ: the outbox is relayed, names are learned."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from kombu import Connection, Queue
from pymongo import MongoClient

from chassis.config import Settings
from chassis.devservers import Proc, wait_until
from chassis.identity import Identity
from chassis.outbox import event_exchange, make_envelope
from chassis.testing import unique_db
from messaging.app import create_app

pytestmark = pytest.mark.integration

COUNCIL = "council-a"
WORKER = "messaging.worker:MessagingWorker"


@pytest.fixture(scope="module")
def world(mongo_uri, amqp_uri, run_dir, jwks_path, minter):
    db_name = unique_db("messaging_worker")
    env = dict(os.environ)
    env.update(SERVICE_NAME="messaging", MONGO_URI=mongo_uri, MONGO_DB=db_name, AMQP_URI=amqp_uri,
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                           env.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-m", "chassis.runworker", WORKER, "declare"], env=env, check=True,
                   capture_output=True, timeout=60)
    # a listener of our own, bound before anything is published, stands for the timeline
    listen = Queue("test-messaging-listener", exchange=event_exchange("messaging"), routing_key="#", durable=False,
                   auto_delete=False)
    with Connection(amqp_uri) as conn:
        listen(conn.default_channel).declare()
    worker = Proc("messaging-worker", [sys.executable, "-m", "chassis.runworker", WORKER], env,
                  run_dir / "logs" / "messaging-worker.log").start()
    wait_until(lambda: "worker messaging started" in worker.tail(200), 60, "messaging worker", alive=worker.alive)
    client = MongoClient(mongo_uri, tz_aware=True)
    app = create_app(Settings(service_name="messaging", mongo_uri=mongo_uri, mongo_db=db_name,
                              internal_jwks=jwks_path, validate_responses=True))
    try:
        with app.test_client() as http:
            yield {"db": client[db_name], "http": http, "minter": minter, "worker": worker, "listen": listen}
    finally:
        worker.stop()
        client.close()


def call(world, method, path, person_id, role, **kw):
    who = Identity(subject=person_id, actor="person", council_id=COUNCIL, cases={"case-w": role})
    token = world["minter"].mint("messaging", who.to_claims())
    return world["http"].request(method, path, headers={"Authorization": "Bearer " + token}, **kw)


def drain(amqp_uri: str, queue: Queue, want: int, timeout: float = 30) -> list[dict]:
    got: list[dict] = []
    with Connection(amqp_uri) as conn:
        simple = conn.SimpleQueue(queue)

        def more() -> bool:
            try:
                message = simple.get(timeout=0.2)
            except simple.Empty:
                return len(got) >= want
            got.append(message.payload)
            message.ack()
            return len(got) >= want

        wait_until(more, timeout, f"{want} messaging events")
        simple.close()
    return got


def test_names_from_the_case_directory_then_events_relayed_once_with_them(world, amqp_uri):
    db, worker = world["db"], world["worker"]
    for person_id, name, role in [("pp", "Priya Shah", "parent"), ("so", "Sam Okafor", "social_worker")]:
        event = make_envelope("cases", "member_added", COUNCIL, {"case_id": "case-w", "person_id": person_id,
                                                                 "role": role},
                              {"case_id": "case-w", "kind": "membership", "title": f"{name} joined the case as x",
                               "occurred_at": "2026-05-01T09:00:00+00:00",
                               "audience": {"kind": "case", "people": [], "exclude": []}})
        with Connection(amqp_uri) as conn:
            for _ in range(2):  # redelivered: still once
                conn.Producer().publish(event, exchange=event_exchange("cases"), routing_key="member_added",
                                        serializer="json", delivery_mode=2, declare=[event_exchange("cases")])
    wait_until(lambda: db["people"].count_documents({"council_id": COUNCIL}) == 2, 60, "names learned",
               alive=worker.alive)
    assert db["processed_events"].count_documents({"type": "member_added"}) == 2

    resp = call(world, "POST", "/cases/case-w/threads", "so", "social_worker",
                json={"subject": "Review", "participants": ["pp"], "body": "Private words"})
    assert resp.status_code == 201, resp.text
    tid = resp.json()["thread_id"]
    reply = call(world, "POST", f"/cases/case-w/threads/{tid}/messages", "pp", "parent", json={"body": "More words"})
    assert reply.status_code == 201, reply.text

    events = drain(amqp_uri, world["listen"], 3)
    assert [e["type"] for e in events] == ["thread_started", "message_sent", "message_sent"]
    assert events[0]["story"]["title"] == "Sam Okafor started a conversation with Priya Shah"
    assert events[2]["story"]["title"] == "Priya Shah sent a message to Sam Okafor"
    assert "story" not in events[1]
    assert "words" not in repr(events)
    wait_until(lambda: db["outbox"].count_documents({"sent_at": None}) == 0, 30, "outbox relayed")
