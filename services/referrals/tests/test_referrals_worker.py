"""The referrals worker against real SecantusDB and RabbitMQ: it relays the outbox and projects case memberships."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from kombu import Connection, Queue
from pymongo import MongoClient
from referrals_fakes import CASE, COUNCIL, form, identity

from chassis.config import Settings
from chassis.devservers import Proc, wait_until
from chassis.outbox import event_exchange, make_envelope, validate_event
from chassis.testing import unique_db
from referrals.app import create_app

pytestmark = pytest.mark.integration

WORKER = "referrals.worker:ReferralsWorker"


def test_memberships_arrive_and_status_changes_leave_once(mongo_uri, amqp_uri, jwks_path, minter, run_dir):
    db_name = unique_db("referrals_worker")
    env = {**os.environ, "SERVICE_NAME": "referrals", "MONGO_URI": mongo_uri, "MONGO_DB": db_name,
           "AMQP_URI": amqp_uri}
    subprocess.run([sys.executable, "-m", "chassis.runworker", WORKER, "declare"], env=env, check=True,
                   capture_output=True, timeout=60)
    listen = Queue(f"test-referrals-{db_name}", exchange=event_exchange("referrals"), routing_key="#",
                   durable=False, auto_delete=False)
    with Connection(amqp_uri) as conn:
        listen(conn.default_channel).declare()
        producer = conn.Producer()
        # the case directory says who is on case-1, and that someone left again
        events = [make_envelope("cases", "member_added", COUNCIL, {"case_id": CASE, "person_id": p, "role": r})
                  for p, r in [("kid", "child"), ("mum", "parent"), ("sw", "social_worker"), ("gone", "child")]]
        removed = make_envelope("cases", "member_removed", COUNCIL,
                                {"case_id": CASE, "person_id": "gone", "role": "child"})
        # added and removed travel on different queues: the later fact must win whatever arrives first
        removed["occurred_at"] = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        events.append(removed)
        for e in [*events, events[0]]:  # one delivered twice
            producer.publish(e, exchange=event_exchange("cases"), routing_key=e["type"], serializer="json",
                             delivery_mode=2, declare=[event_exchange("cases")])
    worker = Proc("referrals-worker", [sys.executable, "-m", "chassis.runworker", WORKER], env,
                  run_dir / "logs" / "referrals-worker.log").start()
    mongo = MongoClient(mongo_uri, tz_aware=True)
    db = mongo[db_name]
    app = create_app(Settings(service_name="referrals", mongo_uri=mongo_uri, mongo_db=db_name,
                              internal_jwks=jwks_path, validate_responses=True))
    try:
        wait_until(lambda: db["processed_events"].count_documents({}) == 5, 60, "memberships projected",
                   alive=worker.alive)
        people = {d["person_id"]: d["present"] for d in db["case_members"].find()}
        assert people == {"kid": True, "mum": True, "sw": True, "gone": False}
        http = app.test_client()

        def call(person, method, path, **kw):
            token = minter.mint("referrals", identity(person).to_claims())
            return http.request(method, path, headers={"Authorization": "Bearer " + token}, **kw)

        assert call("sw", "POST", f"/cases/{CASE}/referrals", json=form(subject_person_id="gone")).status_code == 422
        made = call("sw", "POST", f"/cases/{CASE}/referrals", json=form())
        assert made.status_code == 201, made.text
        path = f"/cases/{CASE}/referrals/{made.json()['referral_id']}"
        assert call("sw", "POST", f"{path}/submit").status_code == 200
        assert call("mgr", "POST", f"{path}/decline", json={"reason": "Threshold not met"}).status_code == 200
        wait_until(lambda: db["outbox"].count_documents({"sent_at": None}) == 0, 60, "outbox relayed",
                   alive=worker.alive)
        received = []
        with Connection(amqp_uri) as conn:
            simple = conn.SimpleQueue(listen)
            for _ in range(2):
                message = simple.get(timeout=10)
                received.append(message.payload)
                message.ack()
            simple.close()
        for envelope in received:
            validate_event(envelope)
        assert [(e["type"], e["data"]["status"], e["story"]["audience"]["kind"]) for e in received] == [
            ("referral_submitted", "submitted", "staff"), ("referral_status_changed", "declined", "staff")]
        assert received[1]["story"]["body"] == "Threshold not met"
    finally:
        worker.stop()
        mongo.close()
        with Connection(amqp_uri) as conn:
            listen(conn.default_channel).delete()
