"""The catalogue's HTTP API in-process, against a real SecantusDB, responses validated against the contract."""

from __future__ import annotations

import json

import pytest
from catalogue_testkit import (
    ADMIN_A,
    ADMIN_B,
    GATEWAY,
    MACHINE_A,
    OPERATOR,
    PARENT_A,
    PARENT_B,
    WORKER_A,
    YOUNG_A,
    A,
    B,
    manifest,
)
from pymongo import MongoClient

from catalogue.app import create_app
from chassis.config import Settings
from chassis.identity import Identity
from chassis.outbox import validate_event
from chassis.testing import unique_db

pytestmark = pytest.mark.integration

PROBLEM_FIELDS = {"type", "title", "status", "detail"}
PLANS = manifest(id="plans", name="Plans", summary="Pathway plans.", audiences=["young_people", "staff"],
                 scopes=["plans:read", "plans:write"], runs_at={"url": "https://plans.vendor.example"})


@pytest.fixture(scope="module")
def db_name():
    return unique_db("catalogue_api")


@pytest.fixture(scope="module")
def app(mongo_uri, jwks_path, db_name):
    return create_app(Settings(service_name="catalogue", mongo_uri=mongo_uri, mongo_db=db_name,
                               internal_jwks=jwks_path, validate_responses=True))


@pytest.fixture(scope="module")
def db(mongo_uri, db_name):
    client = MongoClient(mongo_uri, tz_aware=True)
    yield client[db_name]
    client.close()


class Api:
    def __init__(self, client, minter):
        self.client = client
        self.minter = minter

    def __call__(self, method: str, path: str, who: Identity | None = None, json=None, content=None,
                 headers: dict | None = None):
        h = dict(headers or {})
        if who is not None:
            h["Authorization"] = "Bearer " + self.minter.mint("catalogue", who.to_claims())
        if content is not None:
            h.setdefault("Content-Type", "application/json")
        return self.client.request(method, path, json=json, content=content, headers=h)


@pytest.fixture
def api(app, minter, db):
    for name in db.list_collection_names():
        db[name].delete_many({})
    return Api(app.test_client(), minter)


@pytest.fixture
def seeded(api):
    """Councils A and B, tools timeline and plans."""
    for council, name in ((A, "Council A"), (B, "Council B")):
        assert api("PUT", f"/councils/{council}", OPERATOR, json={"name": name}).status_code == 201
    assert api("PUT", "/tools/timeline", OPERATOR, json=manifest()).status_code == 201
    assert api("PUT", "/tools/plans", OPERATOR, json=PLANS).status_code == 201
    return api


def enable(api, who=ADMIN_A, council=A, tool="timeline", audiences=("families",), scopes=("cases:read",)):
    return api("PUT", f"/councils/{council}/tools/{tool}", who,
               json={"audiences": list(audiences), "scopes": list(scopes)})


def snapshot(db) -> dict:
    """Everything stored, to compare before and after a refused request."""
    return {name: sorted(db[name].find({}), key=lambda d: str(d["_id"])) for name in db.list_collection_names()}


def counts(db) -> dict:
    return {name: db[name].count_documents({}) for name in db.list_collection_names()}


def assert_problem(response, status: int):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert set(body) >= PROBLEM_FIELDS and body["status"] == status
    return body


class TestHealthAndAuthentication:
    def test_health_needs_no_token(self, api):
        response = api("GET", "/health")
        assert response.status_code == 200 and response.json() == {"status": "ok", "service": "catalogue"}

    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}])
    def test_no_valid_token_is_401(self, api, headers):
        assert_problem(api("GET", "/tools", headers=headers), 401)

    def test_token_minted_for_another_service_is_401(self, api, minter):
        token = minter.mint("cases", OPERATOR.to_claims())
        assert_problem(api("GET", "/tools", headers={"Authorization": "Bearer " + token}), 401)


class TestPublishTool:
    def test_operator_publishes_a_tool_then_a_new_version(self, api, db):
        created = api("PUT", "/tools/timeline", OPERATOR, json=manifest())
        assert created.status_code == 201
        assert created.json()["version"] == "1.0.0" and created.json()["manifest"] == manifest()
        updated = api("PUT", "/tools/timeline", OPERATOR, json=manifest(version="1.1.0", name="Timeline 2"))
        assert updated.status_code == 200
        body = api("GET", "/tools/timeline", PARENT_A).json()
        assert body["version"] == "1.1.0" and body["name"] == "Timeline 2"
        assert [v["version"] for v in body["versions"]] == ["1.1.0", "1.0.0"]
        assert all(v["published_by"] == OPERATOR.subject for v in body["versions"])
        assert db["tool_versions"].count_documents({"tool_id": "timeline"}) == 2

    def test_tool_list_shows_each_tool_at_its_latest_version_to_any_caller(self, seeded):
        seeded("PUT", "/tools/timeline", OPERATOR, json=manifest(version="2.0.0"))
        for who in (PARENT_B, GATEWAY, MACHINE_A, OPERATOR):
            items = seeded("GET", "/tools", who).json()["items"]
            assert [(t["tool_id"], t["version"]) for t in items] == [("plans", "1.0.0"), ("timeline", "2.0.0")]

    def test_unknown_tool_is_404(self, seeded):
        assert_problem(seeded("GET", "/tools/nope", PARENT_A), 404)

    @pytest.mark.parametrize("overrides, field", [
        ({"version": "one"}, "version"),
        ({"audiences": ["aliens"]}, "audiences[0]"),
        ({"scopes": ["everything"]}, "scopes[0]"),
        ({"vendor": {"id": "X", "name": "X"}}, "vendor.id"),
        ({"runs_at": {"url": "http://plain.example"}}, "runs_at.url"),
    ])
    def test_schema_invalid_manifest_is_400_naming_the_field(self, seeded, db, overrides, field):
        before = snapshot(db)
        body = assert_problem(seeded("PUT", "/tools/timeline", OPERATOR, json=manifest(**{"version": "3.0.0", **overrides})),
                              400)
        assert field in body["detail"]
        assert snapshot(db) == before

    @pytest.mark.parametrize("version", ["1.0.0", "0.9.0", "1.0.0-rc.1", "1.0.0+build.2"])
    def test_version_not_greater_than_current_is_409(self, seeded, db, version):
        before = snapshot(db)
        assert_problem(seeded("PUT", "/tools/timeline", OPERATOR, json=manifest(version=version)), 409)
        assert snapshot(db) == before

    def test_id_other_than_the_path_is_400(self, seeded, db):
        before = snapshot(db)
        body = assert_problem(seeded("PUT", "/tools/documents", OPERATOR, json=manifest(version="5.0.0")), 400)
        assert "id" in body["detail"]
        assert snapshot(db) == before

    @pytest.mark.parametrize("who", [ADMIN_A, WORKER_A, PARENT_A, GATEWAY, MACHINE_A])
    def test_anyone_but_an_operator_is_403(self, seeded, db, who):
        before = snapshot(db)
        assert_problem(seeded("PUT", "/tools/timeline", who, json=manifest(version="9.0.0")), 403)
        assert snapshot(db) == before


class TestCouncils:
    def test_operator_creates_then_renames(self, api):
        assert api("PUT", f"/councils/{A}", OPERATOR, json={"name": "Council A"}).status_code == 201
        renamed = api("PUT", f"/councils/{A}", OPERATOR, json={"name": "Council A North"})
        assert renamed.status_code == 200 and renamed.json()["name"] == "Council A North"
        assert api("GET", f"/councils/{A}", ADMIN_A).json()["name"] == "Council A North"

    @pytest.mark.parametrize("who", [ADMIN_A, PARENT_A, GATEWAY, MACHINE_A])
    def test_anyone_but_an_operator_cannot_create_or_rename(self, seeded, db, who):
        before = snapshot(db)
        assert_problem(seeded("PUT", f"/councils/{A}", who, json={"name": "Taken over"}), 403)
        assert_problem(seeded("PUT", "/councils/council-c", who, json={"name": "New"}), 403)
        assert snapshot(db) == before

    @pytest.mark.parametrize("who, expected", [(OPERATOR, [A, B]), (ADMIN_A, [A]), (PARENT_B, [B]), (GATEWAY, [])])
    def test_list_shows_an_operator_all_and_anyone_else_their_own(self, seeded, who, expected):
        assert [c["council_id"] for c in seeded("GET", "/councils", who).json()["items"]] == expected

    @pytest.mark.parametrize("who, council, status", [
        (OPERATOR, B, 200), (ADMIN_A, A, 200), (PARENT_A, A, 200), (ADMIN_A, B, 404), (PARENT_B, A, 404),
        (GATEWAY, A, 404), (OPERATOR, "council-z", 404),
    ])
    def test_a_council_is_visible_to_an_operator_and_its_own_callers(self, seeded, who, council, status):
        response = seeded("GET", f"/councils/{council}", who)
        if status == 200:
            assert response.status_code == 200 and response.json()["council_id"] == council
        else:
            assert_problem(response, status)


class TestEnableTool:
    def test_council_admin_enables_with_state_history_and_one_outbox_event(self, seeded, db):
        unsent_before = db["outbox"].count_documents({"sent_at": None})
        response = enable(seeded, audiences=["staff", "families"], scopes=["timeline:write", "cases:read"])
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["enabled"] is True and body["council_id"] == A and body["tool_id"] == "timeline"
        assert body["audiences"] == ["families", "staff"] and body["scopes"] == ["cases:read", "timeline:write"]
        assert body["changed_by"] == ADMIN_A.subject

        records = list(db["outbox"].find({"sent_at": None}))
        assert len(records) == unsent_before + 1 == 1
        envelope = records[0]["envelope"]
        validate_event(envelope)
        assert envelope["type"] == "tool_enabled" and envelope["source"] == "catalogue"
        assert envelope["council_id"] == A and "story" not in envelope
        assert envelope["data"] == {"tool_id": "timeline", "audiences": ["families", "staff"],
                                    "scopes": ["cases:read", "timeline:write"], "by": ADMIN_A.subject}

        history = seeded("GET", f"/councils/{A}/tools/timeline/history", ADMIN_A).json()["items"]
        assert [(h["action"], h["audiences"], h["by"]) for h in history] == [
            ("enabled", ["families", "staff"], ADMIN_A.subject)]

    def test_council_tools_show_the_councils_state(self, seeded):
        enable(seeded)
        items = {t["tool_id"]: t for t in seeded("GET", f"/councils/{A}/tools", ADMIN_A).json()["items"]}
        assert items["timeline"]["enabled"] is True and items["timeline"]["audiences"] == ["families"]
        assert items["timeline"]["manifest_audiences"] == ["families", "young_people", "staff"]
        assert items["plans"]["enabled"] is False and items["plans"]["changed_at"] is None
        other = {t["tool_id"]: t["enabled"] for t in seeded("GET", f"/councils/{B}/tools", OPERATOR).json()["items"]}
        assert other == {"plans": False, "timeline": False}

    def test_putting_the_same_state_again_publishes_nothing(self, seeded, db):
        enable(seeded)
        before = counts(db)
        assert enable(seeded).status_code == 200
        assert counts(db) == before

    def test_changing_audiences_is_recorded_and_published(self, seeded, db):
        enable(seeded)
        response = enable(seeded, audiences=["families", "young_people"], scopes=[])
        assert response.json()["audiences"] == ["families", "young_people"] and response.json()["scopes"] == []
        assert db["outbox"].count_documents({"envelope.type": "tool_enabled"}) == 2
        assert len(seeded("GET", f"/councils/{A}/tools/timeline/history", OPERATOR).json()["items"]) == 2

    @pytest.mark.parametrize("who", [ADMIN_B, PARENT_B, GATEWAY])
    def test_caller_of_another_council_gets_404_and_changes_nothing(self, seeded, db, who):
        enable(seeded)
        before = snapshot(db)
        assert_problem(enable(seeded, who=who, audiences=["staff"]), 404)
        assert_problem(seeded("DELETE", f"/councils/{A}/tools/timeline", who), 404)
        assert_problem(seeded("GET", f"/councils/{A}/tools/timeline/history", who), 404)
        assert_problem(seeded("GET", f"/councils/{A}/tools", who), 404)
        assert snapshot(db) == before

    @pytest.mark.parametrize("who", [WORKER_A, PARENT_A, MACHINE_A, OPERATOR])
    def test_caller_who_is_not_its_council_admin_gets_403(self, seeded, db, who):
        before = snapshot(db)
        assert_problem(enable(seeded, who=who), 403)
        assert_problem(seeded("DELETE", f"/councils/{A}/tools/timeline", who), 403)
        assert snapshot(db) == before


class TestDisableTool:
    def test_disabling_records_history_and_one_event_and_keeps_the_data(self, seeded, db):
        enable(seeded)
        response = seeded("DELETE", f"/councils/{A}/tools/timeline", ADMIN_A)
        assert response.status_code == 204 and response.content == b""
        disabled = [r["envelope"] for r in db["outbox"].find({"envelope.type": "tool_disabled"})]
        assert len(disabled) == 1
        validate_event(disabled[0])
        assert disabled[0]["data"] == {"tool_id": "timeline", "by": ADMIN_A.subject}
        assert disabled[0]["council_id"] == A
        state = db["enablements"].find_one({"council_id": A, "tool_id": "timeline"})
        assert state is not None and state["enabled"] is False
        history = seeded("GET", f"/councils/{A}/tools/timeline/history", ADMIN_A).json()["items"]
        assert [h["action"] for h in history] == ["disabled", "enabled"]
        assert history[0]["audiences"] == ["families"] and history[0]["by"] == ADMIN_A.subject

    @pytest.mark.parametrize("was_on_before", [False, True])
    def test_disabling_a_tool_that_is_not_on_is_204_and_publishes_nothing(self, seeded, db, was_on_before):
        if was_on_before:
            enable(seeded)
            seeded("DELETE", f"/councils/{A}/tools/timeline", ADMIN_A)
        before = snapshot(db)
        assert seeded("DELETE", f"/councils/{A}/tools/timeline", ADMIN_A).status_code == 204
        assert snapshot(db) == before

    def test_history_is_newest_first_across_changes(self, seeded):
        enable(seeded, audiences=["families"])
        enable(seeded, audiences=["staff"])
        seeded("DELETE", f"/councils/{A}/tools/timeline", ADMIN_A)
        enable(seeded, audiences=["young_people"])
        history = seeded("GET", f"/councils/{A}/tools/timeline/history", ADMIN_A).json()["items"]
        assert [(h["action"], h["audiences"]) for h in history] == [
            ("enabled", ["young_people"]), ("disabled", ["staff"]), ("enabled", ["staff"]),
            ("enabled", ["families"])]
        assert [h["at"] for h in history] == sorted((h["at"] for h in history), reverse=True)


class TestEnabledTools:
    @pytest.fixture
    def on(self, seeded):
        assert enable(seeded, tool="timeline", audiences=["families", "staff"]).status_code == 200
        assert enable(seeded, tool="plans", audiences=["young_people"], scopes=["plans:read"]).status_code == 200
        return seeded

    @pytest.mark.parametrize("who, query, expected", [
        (GATEWAY, "", ["plans", "timeline"]),
        (GATEWAY, "?audience=families", ["timeline"]),
        (GATEWAY, "?audience=young_people", ["plans"]),
        (PARENT_A, "", ["timeline"]),
        (PARENT_A, "?audience=young_people", ["timeline"]),
        (YOUNG_A, "?audience=staff", ["plans"]),
        (WORKER_A, "", ["timeline"]),
    ])
    def test_who_sees_which_tools(self, on, who, query, expected):
        response = on("GET", f"/councils/{A}/enabled-tools{query}", who)
        assert response.status_code == 200, response.text
        assert [t["tool_id"] for t in response.json()["items"]] == expected

    def test_an_enabled_tool_says_where_it_runs_and_what_it_was_granted(self, on):
        items = on("GET", f"/councils/{A}/enabled-tools?audience=young_people", GATEWAY).json()["items"]
        assert items == [{"tool_id": "plans", "name": "Plans", "summary": "Pathway plans.", "version": "1.0.0",
                          "audiences": ["young_people"], "scopes": ["plans:read"],
                          "runs_at": {"url": "https://plans.vendor.example"}}]

    @pytest.mark.parametrize("who, council", [
        (PARENT_B, A), (ADMIN_B, A), (MACHINE_A, A), (OPERATOR, A), (GATEWAY, "council-z")])
    def test_everyone_else_gets_404(self, on, who, council):
        assert_problem(on("GET", f"/councils/{council}/enabled-tools", who), 404)

    def test_unknown_audience_is_400(self, on):
        assert_problem(on("GET", f"/councils/{A}/enabled-tools?audience=vendors", GATEWAY), 400)

    def test_disabled_tool_disappears(self, on):
        on("DELETE", f"/councils/{A}/tools/plans", ADMIN_A)
        items = on("GET", f"/councils/{A}/enabled-tools", GATEWAY).json()["items"]
        assert [t["tool_id"] for t in items] == ["timeline"]


TEN_MB = b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}'

# (method, path, who, body as JSON, or raw bytes) -> status; every write of the API
BAD_WRITES = [
    # malformed JSON
    ("PUT", "/tools/timeline", OPERATOR, b'{"id": "timeline",', 400),
    ("PUT", f"/councils/{A}", OPERATOR, b'{"name": ', 400),
    ("PUT", f"/councils/{A}/tools/timeline", ADMIN_A, b'{"audiences": [', 400),
    ("PUT", f"/councils/{A}/tools/timeline", ADMIN_A, b"not json at all", 400),
    ("PUT", f"/councils/{A}/tools/timeline", ADMIN_A, b'{"audiences": ["\xff\xfe"], "scopes": []}', 400),
    # unknown field
    ("PUT", "/tools/timeline", OPERATOR, manifest(version="2.0.0", homepage="https://x.example"), 400),
    ("PUT", f"/councils/{A}", OPERATOR, {"name": "A", "region": "north"}, 400),
    ("PUT", f"/councils/{A}/tools/timeline", ADMIN_A, {"audiences": ["staff"], "scopes": [], "force": True}, 400),
    # wrong type / missing field
    ("PUT", "/tools/timeline", OPERATOR, manifest(version=2), 400),
    ("PUT", "/tools/timeline", OPERATOR, [manifest(version="2.0.0")], 400),
    ("PUT", f"/councils/{A}", OPERATOR, {"name": 42}, 400),
    ("PUT", f"/councils/{A}", OPERATOR, {}, 400),
    ("PUT", f"/councils/{A}/tools/timeline", ADMIN_A, {"audiences": "staff", "scopes": []}, 400),
    ("PUT", f"/councils/{A}/tools/timeline", ADMIN_A, {"audiences": ["staff"]}, 400),
    ("PUT", f"/councils/{A}/tools/timeline", ADMIN_A, {"audiences": ["staff", "staff"], "scopes": []}, 400),
    # too large
    ("PUT", "/tools/timeline", OPERATOR, TEN_MB, 413),
    ("PUT", f"/councils/{A}", OPERATOR, TEN_MB, 413),
    ("PUT", f"/councils/{A}/tools/timeline", ADMIN_A, TEN_MB, 413),
    # not what the tool asks for
    ("PUT", f"/councils/{A}/tools/timeline", ADMIN_A, {"audiences": [], "scopes": []}, 422),
    ("PUT", f"/councils/{A}/tools/plans", ADMIN_A, {"audiences": ["families"], "scopes": []}, 422),
    ("PUT", f"/councils/{A}/tools/timeline", ADMIN_A, {"audiences": ["staff"], "scopes": ["cases:write"]}, 422),
    # unknown tool / unknown or foreign council
    ("PUT", f"/councils/{A}/tools/nope", ADMIN_A, {"audiences": ["staff"], "scopes": []}, 404),
    ("DELETE", f"/councils/{A}/tools/nope", ADMIN_A, None, 404),
    ("PUT", "/councils/council-z/tools/timeline", ADMIN_A, {"audiences": ["staff"], "scopes": []}, 404),
    ("DELETE", "/councils/council-z/tools/timeline", ADMIN_A, None, 404),
    ("PUT", f"/councils/{B}/tools/timeline", ADMIN_A, {"audiences": ["staff"], "scopes": []}, 404),
    ("DELETE", f"/councils/{B}/tools/timeline", ADMIN_A, None, 404),
    # ids the contract does not allow
    ("PUT", "/tools/Not_An_Id", OPERATOR, manifest(id="Not_An_Id"), 400),
    ("PUT", "/councils/bad%20id", OPERATOR, {"name": "Bad"}, 400),
]


class TestBadInputChangesNothing:
    @pytest.mark.parametrize("method, path, who, body, status", BAD_WRITES,
                             ids=[f"{m} {p} -> {s} #{i}" for i, (m, p, _, _, s) in enumerate(BAD_WRITES)])
    def test_refused_write_is_problem_json_and_stores_nothing(self, seeded, db, method, path, who, body, status):
        enable(seeded, council=B, who=ADMIN_B)  # something on in B that must stay as it is
        before = snapshot(db)
        if isinstance(body, bytes):
            response = seeded(method, path, who, content=body)
        else:
            response = seeded(method, path, who, json=body)
        assert_problem(response, status)
        assert snapshot(db) == before

    def test_wrong_content_type_is_refused(self, seeded, db):
        before = snapshot(db)
        response = seeded("PUT", f"/councils/{A}", OPERATOR, content=json.dumps({"name": "A"}).encode(),
                          headers={"Content-Type": "text/plain"})
        assert 400 <= response.status_code < 500
        assert response.headers["content-type"].startswith("application/problem+json")
        assert snapshot(db) == before


class TestOneTransaction:
    @pytest.mark.parametrize("action", ["enable", "disable"])
    def test_when_the_event_cannot_be_recorded_the_change_is_not_stored_either(self, seeded, app, db, monkeypatch,
                                                                                action):
        if action == "disable":
            enable(seeded)
        store = app.app.extensions["family_story"]["store"]

        def broken_add(*args, **kwargs):
            raise RuntimeError("the outbox write fails after the state and history were written")

        monkeypatch.setattr(store.outbox, "add", broken_add)
        before = snapshot(db)
        if action == "enable":
            response = enable(seeded, audiences=["staff"])
        else:
            response = seeded("DELETE", f"/councils/{A}/tools/timeline", ADMIN_A)
        body = assert_problem(response, 500)
        assert "Traceback" not in body["detail"] and "outbox" not in body["detail"]
        assert snapshot(db) == before
