"""The plans HTTP API in-process, against a real SecantusDB; responses validated against the contract."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import MongoClient

from chassis.config import Settings
from chassis.identity import Identity
from chassis.outbox import validate_event
from chassis.testing import caller_for, unique_db
from plans.app import create_app
from plans.domain import can_see

pytestmark = pytest.mark.integration

COUNCIL, OTHER_COUNCIL, CASE = "council-a", "council-b", "case-1"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ROLES = {"sw": "social_worker", "mgr": "manager", "mum": "parent", "dad": "parent", "gran": "carer",
         "yan": "child", "yp": "young_person"}
COLLECTIONS = ("plans", "versions", "reviews", "agreements", "comments", "outbox")


@pytest.fixture(scope="module")
def env(mongo_uri, jwks_path, minter):
    db_name = unique_db("plans_api")
    app = create_app(Settings(service_name="plans", mongo_uri=mongo_uri, mongo_db=db_name,
                              internal_jwks=jwks_path, validate_responses=True))
    client = MongoClient(mongo_uri, tz_aware=True)
    with app.test_client() as http:
        yield http, client[db_name], minter
    client.close()


def identity(person_id: str, cases: dict[str, str] | None = None, council: str = COUNCIL) -> Identity:
    cases = {CASE: ROLES[person_id]} if cases is None else cases
    staff = any(r in ("social_worker", "manager") for r in cases.values())
    return Identity(subject=person_id, actor="person", council_id=council,
                    audience="staff" if staff else "young_people", cases=cases, client_ip="10.0.0.9")


class Caller(caller_for("plans")):
    """Calls the in-process plans app as one identity."""


@pytest.fixture(scope="module")
def as_(env):
    http, _, minter = env
    return lambda person_id, **kw: Caller(http, minter, identity(person_id, **kw))


def plans_path(case_id: str = CASE) -> str:
    return f"/cases/{case_id}/plans"


def new_plan(**overrides):
    body = {"kind": "pathway", "title": "Yan's pathway plan", "subject_person_id": "yan",
            "review_due": "2026-09-01",
            "sections": [{"area": "accommodation", "goals": [{
                "title": "Move to supported lodgings", "description": "Near college",
                "actions": [{"what": "Visit two lodgings", "who": {"role": "Personal adviser"},
                             "by_when": "2026-05-01"},
                            {"what": "Pack", "who": {"person_id": "yan"}, "by_when": "2026-06-01",
                             "status": "in_progress"}]}]}]}
    body.update(overrides)
    return body


def assert_problem(resp, status: int):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]


def snapshot(db) -> tuple:
    return tuple(sorted(map(repr, db[c].find().sort("_id"))) for c in COLLECTIONS)


def published(as_, **overrides) -> dict:
    plan = as_("sw")("POST", plans_path(), json=new_plan(**overrides))
    assert plan.status_code == 201, plan.text
    resp = as_("sw")("POST", f"{plans_path()}/{plan.json()['plan_id']}/publish")
    assert resp.status_code == 200, resp.text
    return resp.json()


class TestHealthAndTokens:
    def test_health_needs_no_token(self, env):
        http, _, _ = env
        assert http.get("/health").json() == {"status": "ok", "service": "plans"}

    def test_no_token_is_401_problem(self, env):
        http, _, _ = env
        assert_problem(http.get(plans_path()), 401)

    def test_token_for_another_service_is_refused(self, env):
        http, _, minter = env
        token = minter.mint("timeline", identity("sw").to_claims())
        assert_problem(http.get(plans_path(), headers={"Authorization": "Bearer " + token}), 401)


class TestVisibilityQuery:
    """The Mongo query returns exactly what domain.can_see allows, over a generated matrix."""

    CASE_ID = "matrix-case"

    @pytest.fixture(scope="class")
    @classmethod
    def matrix(cls, env):
        _, db, _ = env
        audiences = [{"kind": "case", "people": []}, {"kind": "staff", "people": []}]
        audiences += [{"kind": "named", "people": list(c)} for c in [("yan",), ("dad", "yp"), ("mum", "gran", "sw")]]
        excludes = [[], ["dad"], ["mum", "sw"], ["yan", "yp", "gran", "mgr"]]
        authors = [("sw", "social_worker"), ("mgr", "manager"), ("sw9", "social_worker")]
        docs = []
        for n, (audience, exclude, author, version) in enumerate(
                itertools.product(audiences, excludes, authors, [0, 1, 3])):
            docs.append({"_id": f"m{n:04d}", "council_id": COUNCIL, "case_id": cls.CASE_ID, "kind": "pathway",
                         "title": f"plan {n}", "subject_person_id": None,
                         "audience": {**audience, "exclude": exclude},
                         "created_by": {"person_id": author[0], "role": author[1]},
                         "created_at": T0 + timedelta(minutes=n), "updated_at": T0,
                         "draft": None if version else {"review_due": None, "sections": [], "updated_at": T0,
                                                        "updated_by": author[0]},
                         "current_version": version,
                         "published": {"number": version, "review_due": "2026-09-01", "sections": [],
                                       "published_at": T0, "published_by": "sw"} if version else None,
                         "review_due": "2026-09-01" if version else None, "last_review": None})
        docs.append({**docs[0], "_id": "foreign", "council_id": OTHER_COUNCIL})
        db["plans"].insert_many(docs)
        return docs

    @pytest.mark.parametrize("person_id", list(ROLES))
    def test_list_returns_exactly_what_the_rule_allows(self, matrix, as_, person_id):
        resp = as_(person_id, cases={self.CASE_ID: ROLES[person_id]})("GET", plans_path(self.CASE_ID))
        assert resp.status_code == 200, resp.text
        expected = {d["_id"] for d in matrix if d["council_id"] == COUNCIL and can_see(d, person_id, ROLES[person_id])}
        ids = [p["plan_id"] for p in resp.json()["items"]]
        assert len(ids) == len(set(ids)) and set(ids) == expected
        assert 0 < len(expected) < len(matrix) - 1

    @pytest.mark.parametrize("person_id", ["mum", "yan", "sw"])
    def test_single_plan_answers_follow_the_same_rule(self, matrix, as_, person_id):
        call = as_(person_id, cases={self.CASE_ID: ROLES[person_id]})
        for doc in matrix[:-1:5]:
            resp = call("GET", f"{plans_path(self.CASE_ID)}/{doc['_id']}")
            assert resp.status_code == (200 if can_see(doc, person_id, ROLES[person_id]) else 404), doc

    def test_family_sees_neither_the_draft_nor_who_else_is_named(self, matrix, as_):
        items = as_("mum", cases={self.CASE_ID: "parent"})("GET", plans_path(self.CASE_ID)).json()["items"]
        assert items and all("draft" not in p and p["audience"] == {"kind": p["audience"]["kind"]} for p in items)
        staff = as_("sw", cases={self.CASE_ID: "social_worker"})("GET", plans_path(self.CASE_ID)).json()["items"]
        assert any(p.get("draft") for p in staff) and all("exclude" in p["audience"] for p in staff)

    def test_other_council_caller_sees_only_its_own(self, matrix, as_):
        call = as_("sw", cases={self.CASE_ID: "social_worker"}, council=OTHER_COUNCIL)
        assert [p["plan_id"] for p in call("GET", plans_path(self.CASE_ID)).json()["items"]] == ["foreign"]
        assert_problem(call("GET", f"{plans_path(self.CASE_ID)}/{matrix[0]['_id']}"), 404)


class TestJourney:
    def test_publish_comment_disagree_review_and_the_history(self, env, as_):
        _, db, _ = env
        sw, yan, mum = as_("sw"), as_("yan"), as_("mum")
        created = sw("POST", plans_path(), json=new_plan())
        assert created.status_code == 201, created.text
        plan = created.json()
        plan_id, path = plan["plan_id"], f"{plans_path()}/{plan['plan_id']}"
        assert plan["status"] == "draft" and plan["audience"] == {"kind": "named", "people": ["yan"], "exclude": []}
        assert_problem(yan("GET", path), 404)

        v1 = sw("POST", f"{path}/publish").json()
        assert v1["status"] == "published" and v1["current_version"] == 1
        goal = v1["published"]["sections"][0]["goals"][0]
        assert yan("GET", path).json()["published"]["sections"][0]["goals"][0]["title"] == goal["title"]
        assert_problem(mum("GET", path), 404)
        assert plan_id not in {p["plan_id"] for p in mum("GET", plans_path()).json()["items"]}

        comment = yan("POST", f"{path}/goals/{goal['goal_id']}/comments", json={"body": "Can I see them first?"})
        assert comment.status_code == 201, comment.text
        no = yan("POST", f"{path}/versions/1/agreements", json={"agreed": False})
        assert_problem(no, 400)
        disagree = yan("POST", f"{path}/versions/1/agreements",
                       json={"agreed": False, "reason": "I want to live nearer my sister."})
        assert disagree.status_code == 201, disagree.text
        assert disagree.json()["agreed"] is False
        answers = sw("GET", f"{path}/versions/1/agreements").json()["items"]
        assert [(a["person_id"], a["agreed"], a["reason"]) for a in answers] == [
            ("yan", False, "I want to live nearer my sister.")]
        assert [c["body"] for c in sw("GET", f"{path}/goals/{goal['goal_id']}/comments").json()["items"]] == [
            "Can I see them first?"]

        review = sw("POST", f"{path}/reviews", json={"outcome_notes": "Lodgings near her sister agreed.",
                                                      "reviewed_on": "2026-08-28", "next_review_due": "2027-02-28"})
        assert review.status_code == 201, review.text
        draft = sw("GET", path).json()
        assert draft["status"] == "draft" and draft["draft"]["sections"] == draft["published"]["sections"]
        assert yan("GET", path).json()["status"] == "published"
        sections = draft["draft"]["sections"]
        sections[0]["goals"][0]["title"] = "Move to supported lodgings near my sister"
        sections[0]["goals"][0]["actions"][1]["status"] = "done"
        sections.append({"area": "money", "goals": [{"title": "Open a bank account", "actions": []}]})
        saved = sw("PUT", f"{path}/draft", json={"review_due": "2027-02-28", "sections": sections})
        assert saved.status_code == 200, saved.text
        assert sw("POST", f"{path}/publish").status_code == 200

        versions = yan("GET", f"{path}/versions").json()["items"]
        assert [(v["number"], v["goal_count"]) for v in versions] == [(1, 1), (2, 2)]
        assert yan("GET", f"{path}/versions/1").json()["sections"][0]["goals"][0]["title"] == goal["title"]
        diff = yan("GET", f"{path}/versions/1/diff/2").json()
        assert [g["title"] for g in diff["goals"]["added"]] == ["Open a bank account"]
        assert diff["goals"]["changed"][0]["changes"] == [
            {"field": "title", "before": "Move to supported lodgings",
             "after": "Move to supported lodgings near my sister"}]
        assert diff["actions"]["changed"][0]["changes"] == [
            {"field": "status", "before": "in_progress", "after": "done"}]
        assert diff["review_due"] == {"before": "2026-09-01", "after": "2027-02-28"}
        assert_problem(yan("GET", f"{path}/versions/3"), 404)
        assert_problem(yan("POST", f"{path}/versions/1/agreements", json={"agreed": True}), 409)
        assert yan("POST", f"{path}/versions/2/agreements", json={"agreed": True}).status_code == 201

        events = [r["envelope"] for r in db["outbox"].find({"envelope.data.plan_id": plan_id}).sort("created_at")]
        assert [(e["type"], e["data"].get("agreed")) for e in events] == [
            ("plan_published", None), ("plan_agreed", False), ("plan_reviewed", None), ("plan_published", None),
            ("plan_agreed", True)]
        for event in events:
            validate_event(event)
            assert event["story"]["audience"] == {"kind": "named", "people": ["yan"], "exclude": []}
            assert event["council_id"] == COUNCIL
        assert db["audit"].find_one({"actor": "yan", "action": "plans.agreement.create", "record_id": plan_id,
                                     "from": "10.0.0.9"})

    def test_staff_open_a_plan_to_the_case_but_not_to_an_excluded_parent(self, as_):
        plan = published(as_)
        path = f"{plans_path()}/{plan['plan_id']}"
        changed = as_("sw")("PATCH", path, json={"audience": {"kind": "case", "exclude": ["dad"]}})
        assert changed.status_code == 200, changed.text
        assert as_("mum")("GET", path).status_code == 200
        assert_problem(as_("dad")("GET", path), 404)
        assert_problem(as_("mum")("PATCH", path, json={"title": "mine now"}), 403)

    @pytest.mark.parametrize("person_id,status", [("mum", 403), ("yan", 403), ("gran", 403)])
    def test_family_cannot_create_plans(self, env, as_, person_id, status):
        _, db, _ = env
        before = snapshot(db)
        assert_problem(as_(person_id)("POST", plans_path(), json=new_plan()), status)
        assert snapshot(db) == before

    def test_publishing_an_incomplete_plan_is_422_and_changes_nothing(self, env, as_):
        _, db, _ = env
        plan = as_("sw")("POST", plans_path(), json=new_plan(sections=[])).json()
        before = snapshot(db)
        assert_problem(as_("sw")("POST", f"{plans_path()}/{plan['plan_id']}/publish"), 422)
        assert snapshot(db) == before


BAD_BODIES = [
    ("malformed", {"content": b'{"title": ', "headers": {"Content-Type": "application/json"}}, 400),
    ("unknown field", None, 400),
    ("wrong type", None, 400),
    ("not json", {"content": b"title=x", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, None),
    ("10 MB", {"content": b'{"title": "' + b"x" * 10_000_000 + b'"}',
               "headers": {"Content-Type": "application/json"}}, 413),
]


class TestBadInputChangesNothing:
    @pytest.fixture(scope="class")
    @classmethod
    def target(cls, as_):
        plan = published(as_, audience={"kind": "case"})
        return plan["plan_id"], plan["published"]["sections"][0]["goals"][0]["goal_id"]

    def writes(self, target):
        plan_id, goal_id = target
        path = f"{plans_path()}/{plan_id}"
        return [("sw", "POST", plans_path(), new_plan()),
                ("sw", "PATCH", path, {"title": "New"}),
                ("sw", "PUT", f"{path}/draft", {"sections": []}),
                ("sw", "POST", f"{path}/reviews", {"outcome_notes": "Fine"}),
                ("yan", "POST", f"{path}/versions/1/agreements", {"agreed": True}),
                ("yan", "POST", f"{path}/goals/{goal_id}/comments", {"body": "A comment"})]

    @pytest.mark.parametrize("write", range(6))
    @pytest.mark.parametrize("name,kwargs,status", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
    def test_bad_body(self, env, as_, target, write, name, kwargs, status):
        _, db, _ = env
        person_id, method, path, good = self.writes(target)[write]
        if name == "unknown field":
            kwargs = {"json": {**good, "colour": "red"}}
        elif name == "wrong type":
            kwargs = {"json": {k: 42 for k in good}}
        before = snapshot(db)
        resp = as_(person_id)(method, path, **kwargs)
        assert_problem(resp, status or resp.status_code)
        assert 400 <= resp.status_code < 500
        assert snapshot(db) == before

    # creating a plan on council B's own case-1 is a legitimate write there, so that pair is not listed
    @pytest.mark.parametrize("write,how", [(w, h) for w in range(6) for h in ("no role", "foreign council",
                                                                              "unknown case")
                                           if (w, h) != (0, "foreign council")])
    def test_write_without_a_role_is_404(self, env, as_, target, write, how):
        _, db, _ = env
        person_id, method, path, good = self.writes(target)[write]
        if how == "unknown case":
            path = path.replace(CASE, "no-such-case")
            call = as_(person_id)
        elif how == "foreign council":
            call = as_(person_id, cases={CASE: ROLES[person_id]}, council=OTHER_COUNCIL)
        else:
            call = as_(person_id, cases={"another": ROLES[person_id]})
        before = snapshot(db)
        assert_problem(call(method, path, json=good), 404)
        assert snapshot(db) == before

    @pytest.mark.parametrize("path", ["/cases/-bad/plans", "/cases/" + "x" * 65 + "/plans", "/cases/a%20b/plans"])
    def test_bad_case_id_is_refused(self, env, as_, path):
        _, db, _ = env
        before = snapshot(db)
        resp = as_("sw")("POST", path, json=new_plan())
        assert resp.status_code in (400, 404)
        assert_problem(resp, resp.status_code)
        assert snapshot(db) == before

    @pytest.mark.parametrize("body", [
        new_plan(kind="adoption"),
        new_plan(sections=[{"area": "health"}, {"area": "health"}]),
        new_plan(sections=[{"area": "health", "goals": [{"title": "t", "actions": [
            {"what": "w", "who": {"person_id": "sw", "role": "PA"}, "by_when": "2026-01-01"}]}]}]),
        new_plan(sections=[{"area": "health", "goals": [{"title": "t", "actions": [
            {"what": "w", "who": {"role": "PA"}, "by_when": "2026-02-30"}]}]}]),
        new_plan(audience={"kind": "named"}),
        new_plan(sections=[{"area": "health", "goals": [{"title": "t"}] * 21}]),
    ])
    def test_invalid_plans_are_400(self, env, as_, body):
        _, db, _ = env
        before = snapshot(db)
        assert_problem(as_("sw")("POST", plans_path(), json=body), 400)
        assert snapshot(db) == before

    def test_a_large_plan_within_the_contract_is_accepted(self, as_):
        goals = [{"title": "é" * 200, "description": "é" * 5000, "actions": [
            {"what": "é" * 1000, "who": {"role": "Personal adviser"}, "by_when": "2026-07-01"}] * 5}] * 5
        body = new_plan(sections=[{"area": a, "goals": goals} for a in ("health", "money", "identity")])
        resp = as_("sw")("POST", plans_path(), json=body)
        assert resp.status_code == 201, resp.text
        assert sum(len(s["goals"]) for s in resp.json()["draft"]["sections"]) == 15
