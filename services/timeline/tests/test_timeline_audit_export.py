"""The shared audit and subject-access operations (chassis.audit_api, chassis.subject_access) on the
timeline, in-process against a real SecantusDB; responses validated against the contract."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pymongo import MongoClient

from chassis.config import Settings
from chassis.identity import Identity
from chassis.testing import unique_db
from timeline.app import create_app

pytestmark = pytest.mark.integration

COUNCIL, CASE, OTHER_CASE = "council-a", "case-1", "case-2"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC).isoformat()


@pytest.fixture(scope="module")
def env(mongo_uri, jwks_path, minter):
    db_name = unique_db("timeline_audit")
    app = create_app(Settings(service_name="timeline", mongo_uri=mongo_uri, mongo_db=db_name,
                              internal_jwks=jwks_path, validate_responses=True))
    client = MongoClient(mongo_uri, tz_aware=True)
    with app.test_client() as http:
        yield http, client[db_name], minter
    client.close()


def person(pid: str, cases: dict[str, str], roles: tuple[str, ...] = (), council: str = COUNCIL) -> Identity:
    staff = roles or any(r in ("social_worker", "manager") for r in cases.values())
    return Identity(subject=pid, actor="person", council_id=council, audience="staff" if staff else "families",
                    roles=frozenset(roles), cases=cases, client_ip="10.0.0.7")


SW = person("sw", {CASE: "social_worker"})
MGR = person("mgr", {CASE: "manager"}, ("manager",))
MUM = person("mum", {CASE: "parent"})
DAD = person("dad", {CASE: "parent"})
ADMIN = person("adm", {}, ("council_admin",))
OTHER_ADMIN = person("adm-b", {}, ("council_admin",), council="council-b")


@pytest.fixture(scope="module")
def call(env):
    http, _, minter = env

    def call(who: Identity, method: str, path: str, extra_claims: dict | None = None, **kw):
        token = minter.mint("timeline", {**who.to_claims(), **(extra_claims or {})})
        return http.request(method, path, headers={"Authorization": "Bearer " + token}, **kw)

    return call


@pytest.fixture(scope="module")
def entries(call):
    made = {}
    for key, who, body in [
        ("open", SW, {"kind": "visit", "title": "Home visit", "occurred_at": T0}),
        ("hidden_from_dad", SW, {"kind": "decision", "title": "Secret address decided", "occurred_at": T0,
                                 "body": "The address is 1 Hidden Lane.",
                                 "audience": {"kind": "case", "people": [], "exclude": ["dad"]}}),
        ("staff_only", SW, {"kind": "note", "title": "Risk note", "occurred_at": T0,
                            "audience": {"kind": "staff", "people": [], "exclude": []}}),
        ("dads_note", DAD, {"kind": "family_note", "title": "My view", "occurred_at": T0}),
    ]:
        resp = call(who, "POST", f"/cases/{CASE}/entries", json=body)
        assert resp.status_code == 201, resp.text
        made[key] = resp.json()["entry_id"]
    return made


class TestAuditTrailReads:
    def test_manager_sees_who_read_an_entry(self, call, entries):
        assert call(MUM, "GET", f"/cases/{CASE}/entries/{entries['open']}").status_code == 200
        assert call(DAD, "GET", f"/cases/{CASE}/entries/{entries['hidden_from_dad']}").status_code == 404
        resp = call(MGR, "GET", "/audit", params={"record_id": entries["hidden_from_dad"]})
        assert resp.status_code == 200, resp.text
        items = resp.json()["items"]
        assert [(i["actor"], i["action"], i["outcome"]) for i in items][:1] == [
            ("dad", "timeline.entry.read", "not-found")]
        assert all(i["council_id"] == COUNCIL and i["from"] == "10.0.0.7" for i in items)
        who_read_open = call(MGR, "GET", "/audit", params={"record_id": entries["open"]}).json()["items"]
        assert ("mum", "timeline.entry.read") in {(i["actor"], i["action"]) for i in who_read_open}

    def test_n_reads_make_n_records_newest_first(self, call, entries):
        def count():
            return len(call(ADMIN, "GET", "/audit", params={"actor": "mum", "limit": 500}).json()["items"])

        before = count()
        for _ in range(3):
            call(MUM, "GET", f"/cases/{CASE}/entries")
        call(MUM, "GET", f"/cases/{CASE}/entries/{entries['open']}")
        assert count() - before == 4
        items = call(ADMIN, "GET", "/audit", params={"actor": "mum"}).json()["items"]
        assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)

    @pytest.mark.parametrize("who", [SW, MUM, DAD, person("mgr2", {OTHER_CASE: "manager"}, ("manager",)),
                                     OTHER_ADMIN], ids=["social_worker", "parent", "excluded_parent",
                                                        "manager_of_another_case", "other_council_admin"])
    def test_others_get_404_or_nothing(self, call, entries, who):
        resp = call(who, "GET", "/audit", params={"case_id": CASE})
        if who is OTHER_ADMIN:
            assert resp.status_code == 200 and resp.json()["items"] == []
        else:
            assert resp.status_code == 404 and resp.headers["content-type"].startswith("application/problem+json")

    def test_manager_of_another_case_sees_nothing_of_this_one_by_record(self, call, entries):
        resp = call(person("mgr2", {OTHER_CASE: "manager"}), "GET", "/audit", params={"record_id": entries["open"]})
        assert resp.status_code == 200 and resp.json()["items"] == []

    @pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
    def test_the_trail_cannot_be_changed(self, call, env, entries, method):
        _, db, _ = env
        before = db["audit"].count_documents({})
        resp = call(ADMIN, method, "/audit", params={"case_id": CASE}, json={"outcome": "ok"})
        assert 400 <= resp.status_code < 500
        assert db["audit"].count_documents({}) == before


class TestSubjectAccessExport:
    def claims(self, pid: str, cases: dict[str, str]) -> dict:
        return {"subject_access": {"person_id": pid, "cases": cases}}

    def test_excluded_entry_is_only_listed_as_withheld(self, call, entries, env):
        resp = call(ADMIN, "GET", "/export/people/dad", self.claims("dad", {CASE: "parent"}))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        shown = {i["id"] for i in body["items"]}
        assert entries["open"] in shown and entries["dads_note"] in shown
        assert entries["hidden_from_dad"] not in shown and entries["staff_only"] not in shown
        withheld = {w["id"]: w["reason"] for w in body["withheld"]}
        assert withheld[entries["hidden_from_dad"]] == "excluded"
        assert withheld[entries["staff_only"]] == "staff only"
        assert "Hidden Lane" not in resp.text and "Risk note" not in resp.text
        assert all(set(w) == {"id", "kind", "date", "reason"} for w in body["withheld"])
        assert all(set(i["record"]["audience"]) == {"kind"} for i in body["items"])
        _, db, _ = env
        assert db["audit"].find_one({"actor": "adm", "action": "subject_access.export", "record_id": "dad"})

    @pytest.mark.parametrize("who,claims", [
        (SW, {"subject_access": {"person_id": "dad", "cases": {CASE: "parent"}}}),
        (MGR, {"subject_access": {"person_id": "dad", "cases": {CASE: "parent"}}}),
        (ADMIN, {}),
        (ADMIN, {"subject_access": {"person_id": "mum", "cases": {CASE: "parent"}}}),
    ], ids=["social_worker", "manager", "admin_without_claim", "claim_for_someone_else"])
    def test_only_a_council_admin_with_the_gateways_claim_exports(self, call, entries, who, claims):
        resp = call(who, "GET", "/export/people/dad", claims)
        assert resp.status_code == 404
        assert "Hidden Lane" not in resp.text
