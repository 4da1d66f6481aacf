"""The cases HTTP API in-process, against a real SecantusDB, responses validated against the contract."""

from __future__ import annotations

import json

import pytest
from cases_identities import COUNCIL_A, COUNCIL_B, admin, gateway, machine, person
from pymongo import MongoClient

from cases.app import create_app
from chassis.config import Settings
from chassis.outbox import validate_event
from chassis.testing import unique_db

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
STORED = ("people", "cases", "memberships", "outbox")


class Api:
    """A test client that speaks as a given identity."""

    def __init__(self, client, minter, db):
        self.client, self.minter, self.db = client, minter, db

    def call(self, who, method, path, body=None, **kwargs):
        headers = dict(kwargs.pop("headers", {}))
        if who is not None:
            headers["Authorization"] = "Bearer " + self.minter.mint("cases", who.to_claims())
        if body is not None:
            kwargs["json"] = body
        return self.client.request(method, path, headers=headers, **kwargs)

    def counts(self):
        return {name: self.db[name].count_documents({}) for name in STORED}

    def outbox(self, event_type=None):
        query = {} if event_type is None else {"envelope.type": event_type}
        return [d["envelope"] for d in self.db["outbox"].find(query).sort([("created_at", 1), ("_id", 1)])]


def build_api(mongo_uri, jwks_path, minter, prefix):
    settings = Settings(service_name="cases", mongo_uri=mongo_uri, mongo_db=unique_db(prefix),
                        internal_jwks=jwks_path, validate_responses=True)
    app = create_app(settings)
    mongo = MongoClient(mongo_uri)
    return Api(app.test_client(), minter, mongo[settings.mongo_db]), mongo


def seed(api):
    """Council A: case c1 with parent p1 and manager m1; p2 (family), sw1 (staff) off it.
    Council B: its own person pb on its own case cb."""
    system_a, system_b = machine(COUNCIL_A), machine(COUNCIL_B)
    for who, pid, name, kind in [(system_a, "p1", "Alex Parent", "family"), (system_a, "p2", "Sam Other", "family"),
                                 (system_a, "m1", "Morgan Manager", "staff"), (system_a, "sw1", "Jo Worker", "staff"),
                                 (system_b, "pb", "Bea Bee", "family")]:
        assert api.call(who, "PUT", f"/people/{pid}", {"display_name": name, "kind": kind}).status_code == 201
    assert api.call(system_a, "PUT", "/cases/c1", {"reference": "REF-A1", "title": "The Parent family"}).status_code == 201
    assert api.call(system_b, "PUT", "/cases/cb", {"reference": "REF-B1", "title": "Bee family"}).status_code == 201
    for who, case, pid, role in [(system_a, "c1", "p1", "parent"), (system_a, "c1", "m1", "manager"),
                                 (system_b, "cb", "pb", "parent")]:
        assert api.call(who, "PUT", f"/cases/{case}/members/{pid}", {"role": role}).status_code == 201


@pytest.fixture
def api(mongo_uri, jwks_path, minter):
    """A fresh, empty database per test."""
    api, mongo = build_api(mongo_uri, jwks_path, minter, "cases_api")
    yield api
    mongo.close()


@pytest.fixture(scope="module")
def seeded(mongo_uri, jwks_path, minter):
    """One seeded database for the read-only matrix (every call in it must leave it unchanged)."""
    api, mongo = build_api(mongo_uri, jwks_path, minter, "cases_matrix")
    seed(api)
    yield api
    mongo.close()


def assert_problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and set(body) == {"type", "title", "status", "detail"}


class TestHealth:
    def test_health_needs_no_token(self, api):
        response = api.call(None, "GET", "/health")
        assert response.status_code == 200 and response.json() == {"status": "ok", "service": "cases"}


class TestDirectoryFlow:
    def test_back_office_pushes_people_case_and_members_and_each_change_publishes_once(self, api):
        system = machine()
        seed(api)
        assert [e["data"] for e in api.outbox("case_opened")] == [{"case_id": "c1"}, {"case_id": "cb"}]
        added = [e for e in api.outbox("member_added") if e["council_id"] == COUNCIL_A]
        assert [e["data"] for e in added] == [{"case_id": "c1", "person_id": "p1", "role": "parent"},
                                              {"case_id": "c1", "person_id": "m1", "role": "manager"}]
        story = added[0]["story"]
        assert story["title"] == "Alex Parent joined the case as a parent"
        assert (story["case_id"], story["kind"]) == ("c1", "membership")
        assert story["audience"] == {"kind": "case", "people": [], "exclude": []}
        for envelope in api.outbox():
            validate_event(envelope)

        # idempotent re-puts change nothing and publish nothing
        before = api.counts()
        assert api.call(system, "PUT", "/people/p1", {"display_name": "Alex Parent", "kind": "family"}).status_code == 200
        assert api.call(system, "PUT", "/cases/c1", {"reference": "REF-A1", "title": "The Parent family"}).status_code == 200
        response = api.call(system, "PUT", "/cases/c1/members/p1", {"role": "parent"})
        assert response.status_code == 200 and response.json() == {"case_id": "c1", "person_id": "p1", "role": "parent"}
        assert api.counts() == before

        # a role change is one more member_added
        assert api.call(system, "PUT", "/cases/c1/members/p1", {"role": "carer"}).status_code == 200
        assert api.counts()["outbox"] == before["outbox"] + 1
        assert api.outbox("member_added")[-1]["story"]["title"] == "Alex Parent joined the case as a carer"

    def test_parent_sees_case_members_and_own_cases(self, api):
        seed(api)
        parent = person("p1", cases={"c1": "parent"})
        response = api.call(parent, "GET", "/cases/c1")
        assert response.status_code == 200
        body = response.json()
        assert (body["case_id"], body["reference"], body["title"]) == ("c1", "REF-A1", "The Parent family")
        assert body["members"] == [{"person_id": "m1", "display_name": "Morgan Manager", "role": "manager"},
                                   {"person_id": "p1", "display_name": "Alex Parent", "role": "parent"}]
        response = api.call(parent, "GET", "/me/cases")
        assert response.json() == {"items": [{"case_id": "c1", "reference": "REF-A1", "title": "The Parent family",
                                              "role": "parent"}]}

    def test_memberships_answer_the_gateway_for_its_council_only(self, api):
        seed(api)
        response = api.call(gateway(COUNCIL_A), "GET", "/people/p1/memberships")
        assert response.status_code == 200 and response.json() == {"items": [{"case_id": "c1", "role": "parent"}]}
        assert api.call(gateway(COUNCIL_B), "GET", "/people/p1/memberships").json() == {"items": []}
        for who in (person("p1"), admin(), machine(scopes=("cases:read", "cases:write"))):
            assert_problem(api.call(who, "GET", "/people/p1/memberships"), 404)

    def test_manager_on_the_case_adds_and_removes_members(self, api):
        seed(api)
        manager = person("m1", audience="staff", cases={"c1": "manager"})
        assert api.call(manager, "PUT", "/cases/c1/members/sw1", {"role": "social_worker"}).status_code == 201
        assert api.call(manager, "DELETE", "/cases/c1/members/sw1").status_code == 204
        removed = api.outbox("member_removed")
        assert [e["data"] for e in removed] == [{"case_id": "c1", "person_id": "sw1", "role": "social_worker"}]
        assert removed[0]["story"]["title"] == "Jo Worker is no longer on the case"
        assert removed[0]["story"]["audience"] == {"kind": "staff", "people": [], "exclude": []}
        assert_problem(api.call(manager, "DELETE", "/cases/c1/members/sw1"), 404)

    def test_kind_change_against_held_roles_is_a_conflict(self, api):
        seed(api)
        before = api.counts()
        assert_problem(api.call(machine(), "PUT", "/people/p1", {"display_name": "Alex", "kind": "staff"}), 409)
        assert api.counts() == before
        assert api.db["people"].find_one({"council_id": COUNCIL_A, "person_id": "p1"})["kind"] == "family"

    def test_same_ids_in_another_council_are_separate_records(self, api):
        seed(api)
        admin_b = admin(COUNCIL_B)
        assert api.call(admin_b, "PUT", "/people/p1", {"display_name": "Other Alex", "kind": "staff"}).status_code == 201
        assert api.call(admin_b, "PUT", "/cases/c1", {"reference": "B-REF", "title": "B title"}).status_code == 201
        assert api.call(admin_b, "PUT", "/cases/c1/members/p1", {"role": "manager"}).status_code == 201
        a_person = api.call(machine(COUNCIL_A, scopes=("cases:read",)), "GET", "/people/p1").json()
        assert a_person == {"person_id": "p1", "display_name": "Alex Parent", "kind": "family"}
        a_case = api.call(person("p1", cases={"c1": "parent"}), "GET", "/cases/c1").json()
        assert a_case["reference"] == "REF-A1" and {m["role"] for m in a_case["members"]} == {"parent", "manager"}
        assert api.db["people"].count_documents({"person_id": "p1"}) == 2

    def test_every_read_and_write_is_audited(self, api):
        seed(api)
        api.call(person("p1"), "GET", "/cases/c1")
        api.call(person("p2"), "GET", "/cases/c1")
        records = api.db["audit"].find({"action": "case.read"}).sort([("at", 1)])
        assert [(r["actor"], r["council_id"], r["case_id"], r["outcome"]) for r in records] == [
            ("p1", COUNCIL_A, "c1", "ok"), ("p2", COUNCIL_A, "c1", "not-found")]
        assert api.db["audit"].count_documents({"action": "member.put", "case_id": "c1", "outcome": "created"}) == 2


# --- the tenancy and permission matrix ------------------------------------------------------

CALLERS = {
    "same_council_member": person("p1", audience="families", cases={"c1": "parent"}),
    # the token claims the case: the directory, not the token, decides
    "same_council_non_member": person("p2", audience="families", cases={"c1": "parent"}),
    # same ids, other council, staff who claim to manage c1
    "other_council": person("p1", council=COUNCIL_B, audience="staff", roles=("social_worker",),
                            cases={"c1": "manager"}),
    "machine_without_scope": machine(COUNCIL_A, scopes=("timeline:read",)),
}

ENDPOINTS = {
    "get_person": ("GET", "/people/p1", None),
    "put_person": ("PUT", "/people/p1", {"display_name": "Changed", "kind": "family"}),
    "get_memberships": ("GET", "/people/p1/memberships", None),
    "get_case": ("GET", "/cases/c1", None),
    "put_case": ("PUT", "/cases/c1", {"reference": "X", "title": "Changed"}),
    "put_member": ("PUT", "/cases/c1/members/p2", {"role": "parent"}),
    "remove_member": ("DELETE", "/cases/c1/members/p1", None),
    "my_cases": ("GET", "/me/cases", None),
}

#                    member  non-member  other council  machine without scope
EXPECTED = {
    "get_person":      (200, 404, 404, 404),
    "put_person":      (403, 403, 403, 403),
    "get_memberships": (404, 404, 404, 404),
    "get_case":        (200, 404, 404, 404),
    "put_case":        (403, 403, 403, 403),
    "put_member":      (403, 404, 404, 403),
    "remove_member":   (403, 404, 404, 403),
    "my_cases":        (200, 200, 200, 404),
}

MATRIX = [
    pytest.param(endpoint, caller, EXPECTED[endpoint][i], id=f"{endpoint}-{caller}")
    for endpoint in ENDPOINTS
    for i, caller in enumerate(CALLERS)
]

COUNCIL_A_SECRETS = ("Alex Parent", "REF-A1", "The Parent family", "Morgan Manager", "m1")


@pytest.mark.parametrize("endpoint, caller, status", MATRIX)
def test_endpoint_by_caller(seeded, endpoint, caller, status):
    method, path, body = ENDPOINTS[endpoint]
    before = seeded.counts()
    docs_before = {name: list(seeded.db[name].find({}, {"_id": 0, "updated_at": 0})) for name in STORED[:3]}
    response = seeded.call(CALLERS[caller], method, path, body)
    if status >= 400:
        assert_problem(response, status)
        assert not any(secret in response.text for secret in COUNCIL_A_SECRETS)
    else:
        assert response.status_code == status, response.text
    assert seeded.counts() == before
    assert {name: list(seeded.db[name].find({}, {"_id": 0, "updated_at": 0})) for name in STORED[:3]} == docs_before
    if caller == "other_council" and status == 200:
        assert response.json() == {"items": []}  # /me/cases: nothing of council A


def test_my_cases_by_caller_shows_only_directory_memberships(seeded):
    assert [c["case_id"] for c in seeded.call(CALLERS["same_council_member"], "GET", "/me/cases").json()["items"]] == ["c1"]
    assert seeded.call(CALLERS["same_council_non_member"], "GET", "/me/cases").json() == {"items": []}


# --- bad input to every write: a problem, and nothing stored changes ------------------------

JSON_HEADERS = {"content-type": "application/json"}
TEN_MB = b'{"display_name": "' + b"x" * (10 * 1024 * 1024) + b'"}'

BAD_WRITES = [
    # (id, who, method, path, request kwargs, status)
    ("person-malformed-json", machine(), "PUT", "/people/p9", {"content": b'{"display_name": ', "headers": JSON_HEADERS}, 400),
    ("person-unknown-field", machine(), "PUT", "/people/p9", {"json": {"display_name": "A", "kind": "family", "dob": "2001-01-01"}}, 400),
    ("person-wrong-type", machine(), "PUT", "/people/p9", {"json": {"display_name": 7, "kind": "family"}}, 400),
    ("person-unknown-kind", machine(), "PUT", "/people/p9", {"json": {"display_name": "A", "kind": "robot"}}, 400),
    ("person-missing-field", machine(), "PUT", "/people/p9", {"json": {"display_name": "A"}}, 400),
    ("person-empty-name", machine(), "PUT", "/people/p9", {"json": {"display_name": "", "kind": "family"}}, 400),
    ("person-name-too-long", machine(), "PUT", "/people/p9", {"json": {"display_name": "x" * 121, "kind": "family"}}, 400),
    ("person-bad-id", machine(), "PUT", "/people/-p9", {"json": {"display_name": "A", "kind": "family"}}, 400),
    ("person-id-too-long", machine(), "PUT", "/people/" + "p" * 65, {"json": {"display_name": "A", "kind": "family"}}, 400),
    ("person-not-json", machine(), "PUT", "/people/p9", {"content": b"display_name=A", "headers": {"content-type": "application/x-www-form-urlencoded"}}, 415),
    ("person-10mb", machine(), "PUT", "/people/p9", {"content": TEN_MB, "headers": JSON_HEADERS}, 413),
    ("case-malformed-json", machine(), "PUT", "/cases/c9", {"content": b"[1, 2", "headers": JSON_HEADERS}, 400),
    ("case-unknown-field", machine(), "PUT", "/cases/c9", {"json": {"reference": "R", "title": "T", "opened_at": "2020-01-01"}}, 400),
    ("case-wrong-type", machine(), "PUT", "/cases/c9", {"json": {"reference": ["R"], "title": "T"}}, 400),
    ("case-array-body", machine(), "PUT", "/cases/c9", {"json": [{"reference": "R", "title": "T"}]}, 400),
    ("case-10mb", machine(), "PUT", "/cases/c9", {"content": TEN_MB, "headers": JSON_HEADERS}, 413),
    ("member-malformed-json", machine(), "PUT", "/cases/c1/members/p2", {"content": b"{role: parent}", "headers": JSON_HEADERS}, 400),
    ("member-unknown-field", machine(), "PUT", "/cases/c1/members/p2", {"json": {"role": "parent", "admin": True}}, 400),
    ("member-wrong-type", machine(), "PUT", "/cases/c1/members/p2", {"json": {"role": 1}}, 400),
    ("member-unknown-role", machine(), "PUT", "/cases/c1/members/p2", {"json": {"role": "owner"}}, 400),
    ("member-10mb", machine(), "PUT", "/cases/c1/members/p2", {"content": TEN_MB, "headers": JSON_HEADERS}, 413),
    ("member-unknown-case", machine(), "PUT", "/cases/nope/members/p2", {"json": {"role": "parent"}}, 404),
    ("member-unknown-person", machine(), "PUT", "/cases/c1/members/nobody", {"json": {"role": "parent"}}, 404),
    ("member-foreign-case", machine(), "PUT", "/cases/cb/members/p2", {"json": {"role": "parent"}}, 404),
    ("member-foreign-person", machine(), "PUT", "/cases/c1/members/pb", {"json": {"role": "parent"}}, 404),
    ("member-foreign-case-by-its-admin-elsewhere", admin(COUNCIL_B), "PUT", "/cases/c1/members/p1", {"json": {"role": "carer"}}, 404),
    ("member-role-unsuited-to-kind", machine(), "PUT", "/cases/c1/members/sw1", {"json": {"role": "parent"}}, 422),
    ("member-family-as-staff", machine(), "PUT", "/cases/c1/members/p2", {"json": {"role": "social_worker"}}, 422),
    ("remove-unknown-case", machine(), "DELETE", "/cases/nope/members/p1", {}, 404),
    ("remove-not-a-member", machine(), "DELETE", "/cases/c1/members/p2", {}, 404),
    ("remove-foreign-case", machine(), "DELETE", "/cases/cb/members/pb", {}, 404),
    ("remove-foreign-case-by-its-admin-elsewhere", admin(COUNCIL_B), "DELETE", "/cases/c1/members/p1", {}, 404),
    ("remove-bad-id", machine(), "DELETE", "/cases/c1/members/p%201", {}, 400),
]


@pytest.mark.parametrize("who, method, path, kwargs, status",
                         [pytest.param(*case[1:], id=case[0]) for case in BAD_WRITES])
def test_bad_write_is_a_problem_and_changes_nothing(seeded, who, method, path, kwargs, status):
    before = seeded.counts()
    docs_before = {name: list(seeded.db[name].find({}, {"_id": 0, "updated_at": 0})) for name in STORED[:3]}
    response = seeded.call(who, method, path, **kwargs)
    assert_problem(response, status)
    assert seeded.counts() == before
    assert {name: list(seeded.db[name].find({}, {"_id": 0, "updated_at": 0})) for name in STORED[:3]} == docs_before


def test_problem_detail_never_carries_a_stack_trace(seeded):
    response = seeded.call(machine(), "PUT", "/people/p9", content=b"\xff\xfe", headers=JSON_HEADERS)
    assert response.status_code == 400
    assert "Traceback" not in response.text and json.loads(response.text)["status"] == 400
