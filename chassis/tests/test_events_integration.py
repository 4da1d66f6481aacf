"""The outbox, relay and reliable handlers against a real SecantusDB and RabbitMQ."""

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from kombu import Connection
from pymongo import MongoClient

from chassis.devservers import Proc, wait_until
from chassis.outbox import event_exchange, make_envelope
from chassis.testing import unique_db

pytestmark = pytest.mark.integration
HERE = Path(__file__).parent


def worker_env(mongo_uri, amqp_uri, db):
    env = dict(os.environ)
    env.update(MONGO_URI=mongo_uri, MONGO_DB=db, AMQP_URI=amqp_uri,
               PYTHONPATH=f"{HERE}{os.pathsep}{env.get('PYTHONPATH', '')}")
    return env


def declare(env):
    subprocess.run([sys.executable, "-m", "chassis.runworker", "probe_worker:ProbeWorker", "declare"],
                   env=env, check=True, capture_output=True, timeout=60)


def start_worker(env, log):
    return Proc("probe-worker", [sys.executable, "-m", "chassis.runworker", "probe_worker:ProbeWorker"], env,
                log).start()


def put_in_outbox(db, count, **data):
    docs = []
    for n in range(count):
        env = make_envelope("probe", "thing_happened", "council-a", {"n": n, **data})
        docs.append({"_id": env["id"], "envelope": env, "created_at": datetime.now(timezone.utc), "sent_at": None})
    db["outbox"].insert_many(docs)
    return [d["_id"] for d in docs]


def queue_depth(amqp_uri, name):
    with Connection(amqp_uri) as conn:
        _, count, _ = conn.default_channel.queue_declare(name, passive=True)
        return count


def close_broker_connections(amqp_uri):
    vhost = unquote(urlparse(amqp_uri).path.lstrip("/"))
    subprocess.run(["rabbitmqctl", "-q", "close_all_connections", "-p", vhost, "test: broker connections cut"],
                   check=True, capture_output=True, timeout=60)


@pytest.fixture
def probe(mongo_uri, amqp_uri, run_dir):
    db_name = unique_db("probe")
    env = worker_env(mongo_uri, amqp_uri, db_name)
    declare(env)
    client = MongoClient(mongo_uri)
    procs = []
    yield env, client[db_name], procs
    for p in procs:
        p.stop()
    client.close()


class TestOutboxRelay:
    def test_thousand_events_survive_cut_connections_with_none_lost_or_doubled(self, probe, amqp_uri, run_dir):
        env, db, procs = probe
        ids = put_in_outbox(db, 1000)
        worker = start_worker(env, run_dir / "logs" / "probe-cut.log")
        procs.append(worker)
        wait_until(lambda: db["effects"].count_documents({}) >= 200, 120, "first 200 effects", alive=worker.alive)
        close_broker_connections(amqp_uri)
        wait_until(lambda: db["effects"].count_documents({}) >= 400, 120, "effects after first cut",
                   alive=worker.alive)
        close_broker_connections(amqp_uri)
        wait_until(lambda: db["outbox"].count_documents({"sent_at": None}) == 0
                   and db["effects"].count_documents({}) >= 1000, 180, "all 1000 effects", alive=worker.alive)
        effects = list(db["effects"].find({}, {"event_id": 1}))
        assert len(effects) == 1000, worker.tail()
        assert {e["event_id"] for e in effects} == set(ids)

    def test_event_published_before_the_consumer_first_started_still_arrives(self, probe, amqp_uri, run_dir):
        env, db, procs = probe
        envelope = make_envelope("probe", "thing_happened", "council-a", {"n": 7})
        with Connection(amqp_uri) as conn:
            conn.Producer().publish(envelope, exchange=event_exchange("probe"), routing_key="thing_happened",
                                    serializer="json", delivery_mode=2)
        worker = start_worker(env, run_dir / "logs" / "probe-early.log")
        procs.append(worker)
        wait_until(lambda: db["effects"].count_documents({"event_id": envelope["id"]}) == 1, 60,
                   "early event applied", alive=worker.alive)


class TestReliableHandler:
    def test_handler_that_keeps_raising_ends_in_dead_letter_queue(self, probe, amqp_uri, run_dir):
        env, db, procs = probe
        dead = "evt-probe-thing_happened--probe.handle_thing_happened.dead"
        before = queue_depth(amqp_uri, dead)
        put_in_outbox(db, 1, fail=True)
        ok_ids = put_in_outbox(db, 3)
        worker = start_worker(env, run_dir / "logs" / "probe-dead.log")
        procs.append(worker)
        wait_until(lambda: queue_depth(amqp_uri, dead) == before + 1, 60, "failing event dead-lettered",
                   alive=worker.alive)
        wait_until(lambda: db["effects"].count_documents({"event_id": {"$in": ok_ids}}) == 3, 60,
                   "other events applied", alive=worker.alive)
        with Connection(amqp_uri) as conn:
            message = conn.SimpleQueue(dead).get(timeout=5)
            assert message.headers["x-failed-attempts"] == 3
            assert message.payload["data"]["fail"] is True
            message.ack()

    def test_duplicate_delivery_takes_effect_once(self, probe, amqp_uri, run_dir):
        env, db, procs = probe
        envelope = make_envelope("probe", "thing_happened", "council-a", {"n": 1})
        worker = start_worker(env, run_dir / "logs" / "probe-dup.log")
        procs.append(worker)
        with Connection(amqp_uri) as conn:
            producer = conn.Producer()
            for _ in range(3):
                producer.publish(envelope, exchange=event_exchange("probe"), routing_key="thing_happened",
                                 serializer="json", delivery_mode=2)
        marker = make_envelope("probe", "thing_happened", "council-a", {"n": 2})
        with Connection(amqp_uri) as conn:
            conn.Producer().publish(marker, exchange=event_exchange("probe"), routing_key="thing_happened",
                                    serializer="json", delivery_mode=2)
        wait_until(lambda: db["effects"].count_documents({"event_id": marker["id"]}) == 1, 60, "marker applied",
                   alive=worker.alive)
        assert db["effects"].count_documents({"event_id": envelope["id"]}) == 1
