"""Sessions in a real MongoDB-wire server and cache invalidation by real broker events."""

import asyncio
import threading

import pytest
from gateway_fakes import make_person
from gateway_testkit import KC
from kombu import Connection, Producer
from pymongo import AsyncMongoClient
from starlette.testclient import TestClient

from chassis.outbox import event_exchange, make_envelope
from chassis.testing import unique_db
from gateway.sessions import MongoSessionStore, Sessions, token_digest

pytestmark = pytest.mark.integration


def test_mongo_sessions_keep_only_the_digest_and_revoke(mongo_uri):
    async def scenario():
        client = AsyncMongoClient(mongo_uri, tz_aware=True)
        try:
            db = client[unique_db("gateway")]
            store = MongoSessionStore(db)
            await store.ensure_indexes()
            sessions = Sessions(store, ttl_seconds=3600, cache_seconds=5)
            token, _ = await sessions.open(make_person())
            doc = await db["sessions"].find_one({})
            assert doc["_id"] == token_digest(token) and token not in str(doc)
            assert (await sessions.principal(token)).person_id == "p-sam"
            await sessions.revoke(token)
            assert await sessions.principal(token) is None
            assert await db["sessions"].count_documents({}) == 0
            indexes = await db["sessions"].index_information()
            assert any(ix.get("expireAfterSeconds") == 0 for ix in indexes.values())
            assert await store.ping()
        finally:
            await client.close()

    asyncio.run(scenario())


def test_gateway_with_mongo_sessions_signs_in_and_out(gateway_settings, catalogue, cases, mongo_uri):
    from gateway.app import create_app

    app = create_app(gateway_settings(mongo_uri=mongo_uri, mongo_db=unique_db("gateway")),
                     catalogue=catalogue, cases=cases, listen_to_events=False)
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        token = client.post("/api/session", json={"login": "sam.parent.kc"}).json()["token"]
        headers = {"Authorization": "Bearer " + token}
        assert client.get("/api/me", headers=headers).json()["person_id"] == "p-sam"
        assert client.delete("/api/session", headers=headers).status_code == 204
        assert client.get("/api/me", headers=headers).status_code == 401


def test_tool_disabled_event_reaches_the_gateway_cache(gateway_settings, catalogue, cases, amqp_uri, mongo_uri):
    from gateway.app import create_app

    app = create_app(gateway_settings(amqp_uri=amqp_uri, mongo_uri=mongo_uri, mongo_db=unique_db("gateway")),
                     catalogue=catalogue, cases=cases, listen_to_events=True)
    with TestClient(app) as client:
        gateway = app.gateway
        assert gateway.listener.connected.wait(10)
        headers = {"Authorization": "Bearer " + client.post("/api/session", json={"login": "sam.parent.kc"})
                   .json()["token"]}
        assert [t["tool_id"] for t in client.get("/api/tools", headers=headers).json()["items"]] == ["timeline"]
        catalogue.tools[KC] = []
        seen = threading.Event()
        original = gateway.access.on_event
        gateway.access.on_event = lambda event: (original(event), seen.set())
        with Connection(amqp_uri) as conn:
            Producer(conn.default_channel).publish(
                make_envelope("catalogue", "tool_disabled", KC, {"tool_id": "timeline"}),
                exchange=event_exchange("catalogue"), routing_key="tool_disabled", serializer="json",
                declare=[event_exchange("catalogue")])
        assert seen.wait(10)
        assert client.get("/api/tools", headers=headers).json()["items"] == []


def test_sign_out_reaches_the_session_cache_of_another_gateway_process(gateway_settings, catalogue, cases,
                                                                       amqp_uri):
    from gateway_fakes import MemorySessionStore

    from chassis.devservers import wait_until
    from gateway.app import create_app

    shared = MemorySessionStore()  # both processes see the same session store, as with MongoDB
    apps = [create_app(gateway_settings(amqp_uri=amqp_uri), session_store=shared, catalogue=catalogue,
                       cases=cases, listen_to_events=True) for _ in range(2)]
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        for app in apps:
            assert app.gateway.listener.connected.wait(10)
        token = one.post("/api/session", json={"login": "sam.parent.kc"}).json()["token"]
        headers = {"Authorization": "Bearer " + token}
        assert two.get("/api/tools/timeline/x", headers=headers).status_code != 401  # now cached in two
        assert token_digest(token) in apps[1].gateway.sessions._cache
        assert one.delete("/api/session", headers=headers).status_code == 204
        wait_until(lambda: token_digest(token) not in apps[1].gateway.sessions._cache, 5, "revocation broadcast")
        assert two.get("/api/tools/timeline/x", headers=headers).status_code == 401


def test_disabling_a_person_reaches_the_session_cache_of_another_gateway_process(gateway_settings, catalogue,
                                                                                   cases, amqp_uri):
    from gateway_fakes import MemorySessionStore, make_person

    from chassis.devservers import wait_until
    from gateway.app import create_app
    from gateway.identity import DemoIdentityProvider
    from gateway.signin_store import MemorySignInStore

    sam = make_person()
    admin = make_person(person_id="p-ada", login="ada.admin.kc", display_name="Ada", kind="staff",
                        roles=("council_admin",))
    shared, accounts = MemorySessionStore(), MemorySignInStore()  # as with one MongoDB
    apps = [create_app(gateway_settings(amqp_uri=amqp_uri), session_store=shared, catalogue=catalogue, cases=cases,
                       identity_provider=DemoIdentityProvider([sam, admin]), listen_to_events=True,
                       signin_store=accounts) for _ in range(2)]
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        for app in apps:
            assert app.gateway.listener.connected.wait(10)
        token = one.post("/api/session", json={"login": sam.login}).json()["token"]
        admin_token = one.post("/api/session", json={"login": admin.login}).json()["token"]
        headers = {"Authorization": "Bearer " + token}
        assert two.get("/api/tools/timeline/x", headers=headers).status_code != 401  # now cached in two
        assert token_digest(token) in apps[1].gateway.sessions._cache
        disabled = one.put(f"/api/admin/people/{sam.person_id}/status", json={"disabled": True},
                           headers={"Authorization": "Bearer " + admin_token})
        assert disabled.status_code == 200, disabled.text
        wait_until(lambda: token_digest(token) not in apps[1].gateway.sessions._cache, 5, "person broadcast")
        assert two.get("/api/tools/timeline/x", headers=headers).status_code == 401
        assert two.post("/api/session", json={"login": sam.login}).status_code == 401  # demo sign-in too
