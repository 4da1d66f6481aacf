"""The timeline worker against real SecantusDB and RabbitMQ: events with a story become entries, once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from urllib.parse import unquote, urlparse

import pytest
from kombu import Connection
from pymongo import MongoClient

from chassis.config import Settings
from chassis.devservers import Proc, wait_until
from chassis.identity import Identity
from chassis.outbox import Outbox, OutboxRelay, event_exchange, make_envelope
from chassis.testing import report, unique_db
from timeline.app import create_app

pytestmark = pytest.mark.integration

COUNCIL = "council-a"
SOURCES = "cases.member_added,cases.member_removed,vendor-demo.visit_logged"
WORKER = "timeline.worker:build_worker"
DEAD = "evt-cases-member_added--timeline.handle_cases_member_added.dead"


def story(case_id: str, n: int = 0, **overrides) -> dict:
    out = {"case_id": case_id, "kind": "membership", "title": f"Person {n} joined the case as carer",
           "occurred_at": datetime.now(UTC).isoformat(),
           "audience": {"kind": "case", "people": [], "exclude": []}}
    out.update(overrides)
    return out


def put_in_outbox(db, envelopes: list[dict]) -> list[str]:
    db["outbox"].insert_many([{"_id": e["id"], "envelope": e, "created_at": datetime.now(UTC),
                               "sent_at": None} for e in envelopes])
    return [e["id"] for e in envelopes]


def queue_depth(amqp_uri: str, name: str) -> int:
    with Connection(amqp_uri) as conn:
        _, count, _ = conn.default_channel.queue_declare(name, passive=True)
        return count


def close_broker_connections(amqp_uri: str) -> None:
    vhost = unquote(urlparse(amqp_uri).path.lstrip("/"))
    subprocess.run(["rabbitmqctl", "-q", "close_all_connections", "-p", vhost, "test: broker connections cut"],
                   check=True, capture_output=True, timeout=60)


class RelayThread:
    """Drives a chassis OutboxRelay for the publisher, as its worker would, reconnecting after failures.

    It keeps at most ``ahead`` events in flight beyond what the timeline has made, so the relay is still
    publishing when the test cuts the broker's connections.
    """

    def __init__(self, outbox: Outbox, amqp_uri: str, in_flight, ahead: int = 150):
        self.relay = OutboxRelay(outbox, amqp_uri)
        self.outbox, self.in_flight, self.ahead = outbox, in_flight, ahead
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-relay", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.in_flight() >= self.ahead:
                self._stop.wait(0.02)
                continue
            try:
                sent = self.relay.relay_batch(25)
            except Exception:
                self.failures += 1
                self._stop.wait(0.2)
                continue
            if sent == 0:
                self._stop.wait(0.05)
        self.relay.close()


@pytest.fixture(scope="module")
def world(mongo_uri, amqp_uri, run_dir, jwks_path, minter):
    """A timeline worker (configured with a vendor source) and the databases of a publisher and the timeline."""
    timeline_db, publisher_db = unique_db("timeline_worker"), unique_db("cases_publisher")
    env = dict(os.environ)
    env.update(SERVICE_NAME="timeline", MONGO_URI=mongo_uri, MONGO_DB=timeline_db, AMQP_URI=amqp_uri,
               TIMELINE_STORY_SOURCES=SOURCES, TIMELINE_MAX_ATTEMPTS="3", TIMELINE_RETRY_DELAY_MS="100")
    subprocess.run([sys.executable, "-m", "chassis.runworker", WORKER, "declare"], env=env, check=True,
                   capture_output=True, timeout=60)
    worker = Proc("timeline-worker", [sys.executable, "-m", "chassis.runworker", WORKER], env,
                  run_dir / "logs" / "timeline-worker.log").start()
    client = MongoClient(mongo_uri, tz_aware=True)
    app = create_app(Settings(service_name="timeline", mongo_uri=mongo_uri, mongo_db=timeline_db,
                              internal_jwks=jwks_path, validate_responses=True))
    try:
        with app.test_client() as http:
            yield {"worker": worker, "db": client[timeline_db], "publisher": client[publisher_db], "http": http,
                   "minter": minter}
    finally:
        worker.stop()
        client.close()


def api_get(world, path: str, person_id: str, cases: dict[str, str], **params):
    who = Identity(subject=person_id, actor="person", council_id=COUNCIL, cases=cases)
    token = world["minter"].mint("timeline", who.to_claims())
    return world["http"].get(path, params=params, headers={"Authorization": "Bearer " + token})


class TestStoriesFromEvents:
    def test_thousand_member_added_events_make_exactly_a_thousand_entries_despite_cut_connections(
            self, world, amqp_uri):
        db, worker = world["db"], world["worker"]
        envelopes = [make_envelope("cases", "member_added", COUNCIL, {"case_id": f"bulk-{n % 10}", "n": n},
                                   story(f"bulk-{n % 10}", n)) for n in range(1000)]
        ids = put_in_outbox(world["publisher"], envelopes)
        outbox = Outbox(world["publisher"], "cases")

        def made() -> int:
            return db["entries"].count_documents({"source.event_id": {"$in": ids}})

        with RelayThread(outbox, amqp_uri, in_flight=lambda: 1000 - outbox.unsent_count() - made()) as relay:
            wait_until(lambda: made() >= 250, 120, "first 250 entries", alive=worker.alive)
            close_broker_connections(amqp_uri)
            wait_until(lambda: made() >= 550, 120, "entries after the first cut", alive=worker.alive)
            close_broker_connections(amqp_uri)
            wait_until(lambda: outbox.unsent_count() == 0 and made() >= 1000, 240, "all 1000 entries",
                       alive=worker.alive)
        assert relay.failures >= 1, "the cuts should have hit the publisher's relay too"
        queue = "evt-cases-member_added--timeline.handle_cases_member_added"
        wait_until(lambda: queue_depth(amqp_uri, queue) == 0 and queue_depth(amqp_uri, queue + ".retry") == 0,
                   60, "handler queue drained", alive=worker.alive)
        entries = list(db["entries"].find({"source.event_id": {"$in": ids}}, {"source": 1, "title": 1}))
        assert len(entries) == 1000, worker.tail()
        assert {e["source"]["event_id"] for e in entries} == set(ids)
        assert db["processed_events"].count_documents({"_id": {"$in": ids}}) == 1000
        report(f"1,000 events with the broker's connections cut twice: {len(entries)} timeline entries, "
               f"{len(entries) - len({e['source']['event_id'] for e in entries})} duplicated, "
               f"{1000 - len({e['source']['event_id'] for e in entries})} lost; relay reconnected "
               f"{relay.failures} time(s)")
        # and the family sees them through the API
        page = api_get(world, "/cases/bulk-3/entries", "mum", {"bulk-3": "parent"}, limit=100).json()
        assert len(page["items"]) == 100 and page["items"][0]["source"]["service"] == "cases"

    def test_invalid_story_ends_in_the_dead_letter_queue_and_makes_nothing(self, world, amqp_uri):
        db, worker = world["db"], world["worker"]
        before = queue_depth(amqp_uri, DEAD)
        bad = make_envelope("cases", "member_added", COUNCIL, {"n": "bad"}, story("dl-case", title="x" * 201))
        quiet = make_envelope("cases", "member_added", COUNCIL, {"n": "no story"})  # nothing for the timeline
        good = make_envelope("cases", "member_added", COUNCIL, {"n": "good"}, story("dl-case"))
        put_in_outbox(world["publisher"], [bad, quiet, good])
        relay = OutboxRelay(Outbox(world["publisher"], "cases"), amqp_uri)
        try:
            wait_until(lambda: relay.relay_batch(50) >= 0 and Outbox(world["publisher"], "cases").unsent_count() == 0,
                       30, "relayed")
        finally:
            relay.close()
        wait_until(lambda: queue_depth(amqp_uri, DEAD) == before + 1, 60, "bad story dead-lettered",
                   alive=worker.alive)
        wait_until(lambda: db["entries"].count_documents({"source.event_id": good["id"]}) == 1, 60,
                   "good story applied", alive=worker.alive)
        assert db["entries"].count_documents({"source.event_id": {"$in": [bad["id"], quiet["id"]]}}) == 0
        with Connection(amqp_uri) as conn:
            message = conn.SimpleQueue(DEAD).get(timeout=5)
            assert message.payload["id"] == bad["id"]
            assert message.headers["x-failed-attempts"] == 3
            assert message.headers["x-last-error"] == "ValidationError"
            message.ack()

    def test_a_new_publisher_needs_only_configuration(self, world, amqp_uri):
        """vendor-demo is no part of the timeline's code: TIMELINE_STORY_SOURCES names it, and that is all."""
        db, worker = world["db"], world["worker"]
        case = "vendor-case"
        envelope = make_envelope("vendor-demo", "visit_logged", COUNCIL, {"visit": "v-1"}, story(
            case, kind="visit", title="Family support worker visited", body="We played a board game.",
            audience={"kind": "named", "people": ["mum", "sw-named"], "exclude": ["sw-excluded"]}))
        with Connection(amqp_uri) as conn:
            conn.Producer().publish(envelope, exchange=event_exchange("vendor-demo"), routing_key="visit_logged",
                                    serializer="json", delivery_mode=2, declare=[event_exchange("vendor-demo")])
        wait_until(lambda: db["entries"].count_documents({"source.event_id": envelope["id"]}) == 1, 60,
                   "vendor story on the timeline", alive=worker.alive)
        path = f"/cases/{case}/entries"
        seen = {}
        for person_id, role in [("mum", "parent"), ("dad", "parent"), ("sw", "social_worker"),
                                ("sw-excluded", "social_worker")]:
            resp = api_get(world, path, person_id, {case: role})
            assert resp.status_code == 200, resp.text
            seen[person_id] = [e["title"] for e in resp.json()["items"]]
        assert seen == {"mum": ["Family support worker visited"], "dad": [],
                        "sw": ["Family support worker visited"], "sw-excluded": []}
        entry = api_get(world, path, "sw", {case: "social_worker"}).json()["items"][0]
        assert entry["source"] == {"service": "vendor-demo", "event_type": "visit_logged", "event_id": envelope["id"]}
        assert entry["kind"] == "visit" and "author" not in entry
        assert entry["audience"] == {"kind": "named", "people": ["mum", "sw-named"], "exclude": ["sw-excluded"]}
