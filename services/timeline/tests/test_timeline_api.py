"""The timeline's HTTP API in-process, against a real SecantusDB; responses validated against the contract."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import MongoClient

from chassis.config import Settings
from chassis.identity import Identity
from chassis.testing import caller_for, unique_db
from timeline.app import create_app
from timeline.domain import can_see, new_id

pytestmark = pytest.mark.integration

COUNCIL, OTHER_COUNCIL, CASE = "council-a", "council-b", "case-1"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
MATRIX_CASE = "matrix-case"
ROLES = {"sw": "social_worker", "mgr": "manager", "mum": "parent", "dad": "parent", "gran": "carer",
         "kid": "child", "yp": "young_person"}


@pytest.fixture(scope="module")
def env(mongo_uri, jwks_path, minter):
    db_name = unique_db("timeline_api")
    app = create_app(Settings(service_name="timeline", mongo_uri=mongo_uri, mongo_db=db_name,
                              internal_jwks=jwks_path, validate_responses=True))
    client = MongoClient(mongo_uri, tz_aware=True)
    with app.test_client() as http:
        yield http, client[db_name], minter
    client.close()


def identity(person_id: str, cases: dict[str, str] | None = None, council: str = COUNCIL) -> Identity:
    cases = {CASE: ROLES[person_id]} if cases is None else cases
    staff = any(r in ("social_worker", "manager") for r in cases.values())
    return Identity(subject=person_id, actor="person", council_id=council,
                    audience="staff" if staff else "families", cases=cases, client_ip="10.0.0.9")


class Caller(caller_for("timeline")):
    """Calls the in-process timeline app as one identity."""


@pytest.fixture(scope="module")
def as_(env):
    http, _, minter = env
    return lambda person_id, **kw: Caller(http, minter, identity(person_id, **kw))


def entries_path(case_id: str = CASE) -> str:
    return f"/cases/{case_id}/entries"


def note(**overrides):
    body = {"kind": "note", "title": "A note", "body": "Words", "occurred_at": T0.isoformat()}
    body.update(overrides)
    return body


def all_pages(call, case_id: str = CASE, limit: int = 7) -> list[dict]:
    seen, cursor = [], None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        resp = call("GET", entries_path(case_id), params=params)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert len(page["items"]) <= limit
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def assert_problem(resp, status: int):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    problem = resp.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]


def snapshot(db) -> tuple:
    return (sorted(map(repr, db["entries"].find().sort("_id"))), sorted(map(repr, db["comments"].find())))


class TestHealthAndTokens:
    def test_health_needs_no_token(self, env):
        http, _, _ = env
        assert http.get("/health").json() == {"status": "ok", "service": "timeline"}

    def test_no_token_is_401_problem(self, env):
        http, _, _ = env
        assert_problem(http.get(entries_path()), 401)

    def test_token_for_another_service_is_refused(self, env):
        http, _, minter = env
        token = minter.mint("cases", identity("sw").to_claims())
        assert_problem(http.get(entries_path(), headers={"Authorization": "Bearer " + token}), 401)


@pytest.fixture(scope="module")
def matrix(env):
    _, db, _ = env
    audiences = [{"kind": "case", "people": [], "exclude": []}, {"kind": "staff", "people": [], "exclude": []}]
    audiences += [{"kind": "named", "people": list(c), "exclude": []} for c in
                  [("mum",), ("dad", "kid"), ("sw",), ("yp", "gran", "mum")]]
    excludes = [[], ["dad"], ["mum", "sw"], ["kid", "yp", "gran", "mgr"]]
    authors = [None, ("sw", "social_worker"), ("mgr", "manager"), ("mum", "parent"), ("kid", "child")]
    docs = []
    for n, (audience, exclude, author) in enumerate(itertools.product(audiences, excludes, authors)):
        doc = {"_id": f"m{n:04d}", "council_id": COUNCIL, "case_id": MATRIX_CASE, "kind": "note",
               "title": f"entry {n}", "body": "", "occurred_at": T0 + timedelta(hours=n % 9),
               "recorded_at": T0, "edited_at": None, "comment_count": 0,
               "audience": {**audience, "exclude": exclude}}
        if author:
            doc["author"] = {"person_id": author[0], "role": author[1]}
        else:
            doc["kind"] = "membership"
            doc["source"] = {"service": "cases", "event_type": "member_added", "event_id": f"ev{n}"}
        docs.append(doc)
    # the same case id in another council must never leak
    docs.append({**docs[1], "_id": "foreign", "council_id": OTHER_COUNCIL})
    db["entries"].insert_many(docs)
    return docs



class TestVisibilityQuery:
    """The Mongo query returns exactly what domain.can_see allows, over a generated matrix."""

    @pytest.mark.parametrize("person_id", list(ROLES))
    def test_list_returns_exactly_what_the_rule_allows(self, matrix, as_, person_id):
        call = as_(person_id, cases={MATRIX_CASE: ROLES[person_id]})
        expected = {d["_id"] for d in matrix if d["council_id"] == COUNCIL and can_see(d, person_id, ROLES[person_id])}
        seen = all_pages(call, MATRIX_CASE, limit=9)
        ids = [e["entry_id"] for e in seen]
        assert len(ids) == len(set(ids)), "an entry appeared on two pages"
        assert set(ids) == expected
        keys = [(e["occurred_at"], e["entry_id"]) for e in seen]
        assert keys == sorted(keys, reverse=True)
        assert 0 < len(expected) < len(matrix) - 1 or person_id in ("sw", "mgr")

    @pytest.mark.parametrize("person_id", ["mum", "dad", "sw"])
    def test_single_entry_answers_follow_the_same_rule(self, matrix, as_, person_id):
        call = as_(person_id, cases={MATRIX_CASE: ROLES[person_id]})
        for doc in matrix[:-1:3]:
            resp = call("GET", f"{entries_path(MATRIX_CASE)}/{doc['_id']}")
            assert resp.status_code == (200 if can_see(doc, person_id, ROLES[person_id]) else 404), doc

    def test_family_members_do_not_see_who_else_is_named_or_excluded(self, matrix, as_):
        call = as_("mum", cases={MATRIX_CASE: "parent"})
        for entry in all_pages(call, MATRIX_CASE, limit=100):
            if entry.get("author", {}).get("person_id") != "mum":
                assert entry["audience"] == {"kind": entry["audience"]["kind"]}

    def test_other_council_caller_sees_nothing_of_this_council(self, matrix, as_):
        call = as_("sw", cases={MATRIX_CASE: "social_worker"}, council=OTHER_COUNCIL)
        assert [e["entry_id"] for e in all_pages(call, MATRIX_CASE)] == ["foreign"]
        assert_problem(call("GET", f"{entries_path(MATRIX_CASE)}/{matrix[0]['_id']}"), 404)


class TestListEntries:
    def test_pagination_covers_every_visible_entry_exactly_once(self, env, as_):
        sw = as_("sw", cases={"paging": "social_worker"})
        made = set()
        for i in range(31):  # many share an occurred_at: the entry id breaks the tie
            resp = sw("POST", entries_path("paging"), json=note(occurred_at=(T0 + timedelta(days=i % 4)).isoformat()))
            assert resp.status_code == 201, resp.text
            made.add(resp.json()["entry_id"])
        for limit in (1, 5, 30, 100):
            ids = [e["entry_id"] for e in all_pages(sw, "paging", limit)]
            assert len(ids) == len(set(ids)) and set(ids) == made

    def test_default_page_is_twenty(self, as_):
        page = as_("sw", cases={"paging": "social_worker"})("GET", entries_path("paging")).json()
        assert len(page["items"]) == 20 and page["next_cursor"]

    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "@@"},
                                        {"cursor": "bm90LWEtY3Vyc29y"}])
    def test_bad_paging_is_400(self, as_, params):
        assert_problem(as_("sw")("GET", entries_path(), params=params), 400)

    def test_non_member_gets_404(self, as_):
        assert_problem(as_("sw", cases={"other-case": "social_worker"})("GET", entries_path()), 404)

    def test_reads_are_audited(self, env, as_):
        _, db, _ = env
        as_("mum")("GET", entries_path())
        record = db["audit"].find_one({"actor": "mum", "action": "timeline.entries.list"})
        assert record and record["council_id"] == COUNCIL and record["from"] == "10.0.0.9"


class TestCreateEntry:
    def test_social_worker_records_a_visit_for_the_case(self, as_, env):
        resp = as_("sw")("POST", entries_path(), json=note(kind="visit", title="Home visit"))
        assert resp.status_code == 201, resp.text
        entry = resp.json()
        assert entry["author"] == {"person_id": "sw", "role": "social_worker"}
        assert entry["audience"] == {"kind": "case", "people": [], "exclude": []}
        assert entry["comment_count"] == 0
        assert as_("mum")("GET", f"{entries_path()}/{entry['entry_id']}").json()["title"] == "Home visit"
        _, db, _ = env
        assert db["audit"].find_one({"action": "timeline.entry.create", "record_id": entry["entry_id"]})

    def test_parent_adds_a_family_note_named_to_the_social_worker(self, as_):
        resp = as_("mum")("POST", entries_path(), json=note(kind="family_note",
                                                             audience={"kind": "named", "people": ["sw"]}))
        assert resp.status_code == 201, resp.text
        entry_id = resp.json()["entry_id"]
        assert as_("sw")("GET", f"{entries_path()}/{entry_id}").status_code == 200
        assert_problem(as_("dad")("GET", f"{entries_path()}/{entry_id}"), 404)

    @pytest.mark.parametrize("person_id,body,status", [
        ("mum", note(kind="visit"), 403),
        ("kid", note(kind="court_outcome"), 403),
        ("sw", note(kind="family_note"), 403),
        ("mum", note(kind="family_note", audience={"kind": "staff"}), 422),
        ("mum", note(kind="family_note", audience={"kind": "named"}), 400),
        ("sw", note(kind="membership"), 400),
        ("sw", note(occurred_at="2026-03-01T09:00:00"), 400),
    ])
    def test_who_may_write_which_kind(self, env, as_, person_id, body, status):
        _, db, _ = env
        before = snapshot(db)
        assert_problem(as_(person_id)("POST", entries_path(), json=body), status)
        assert snapshot(db) == before


BAD_BODIES = [
    ("malformed", {"content": b'{"kind": "note", "title": ', "headers": {"Content-Type": "application/json"}}, 400),
    ("unknown field", {"json": {"colour": "red"}}, 400),
    ("wrong type", {"json": {"title": 42}}, 400),
    ("not json", {"content": b"title=x", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, None),
    ("10 MB", {"content": b'{"title": "' + b"x" * 10_000_000 + b'"}',
               "headers": {"Content-Type": "application/json"}}, 413),
]


@pytest.fixture(scope="module")
def target(as_):
    """A family note the bad writes aim at."""
    return as_("mum")("POST", entries_path(), json=note(kind="family_note")).json()["entry_id"]


class TestBadInputChangesNothing:
    def writes(self, target):
        return [("POST", entries_path(), note()), ("PATCH", f"{entries_path()}/{target}", {"title": "New"}),
                ("POST", f"{entries_path()}/{target}/comments", {"body": "A comment"})]

    @pytest.mark.parametrize("write", [0, 1, 2])
    @pytest.mark.parametrize("name,kwargs,status", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
    def test_bad_body(self, env, as_, target, write, name, kwargs, status):
        _, db, _ = env
        method, path, good = self.writes(target)[write]
        if name == "unknown field":
            kwargs = {"json": {**good, "colour": "red"}}
        elif name == "wrong type":
            kwargs = {"json": {k: 42 for k in good}}
        before = snapshot(db)
        resp = as_("mum")(method, path, **kwargs)
        assert_problem(resp, status or resp.status_code)
        assert 400 <= resp.status_code < 500
        assert snapshot(db) == before

    @pytest.mark.parametrize("write", [0, 1, 2])
    @pytest.mark.parametrize("who", ["no role", "foreign council", "unknown case"])
    def test_write_without_a_role_is_404(self, env, as_, target, write, who):
        _, db, _ = env
        method, path, good = self.writes(target)[write]
        if who == "unknown case":
            path = path.replace(CASE, "no-such-case")
            call = as_("sw")
        elif who == "foreign council":
            call = as_("sw", cases={"b-case": "social_worker"}, council=OTHER_COUNCIL)
        else:
            call = as_("sw", cases={"another": "social_worker"})
        before = snapshot(db)
        assert_problem(call(method, path, json=good), 404)
        assert snapshot(db) == before

    @pytest.mark.parametrize("path", ["/cases/-bad/entries", "/cases/" + "x" * 65 + "/entries", "/cases/a%20b/entries"])
    def test_bad_case_id_is_refused(self, env, as_, path):
        _, db, _ = env
        before = snapshot(db)
        resp = as_("sw")("POST", path, json=note())
        assert_problem(resp, resp.status_code)
        assert resp.status_code in (400, 404)
        assert snapshot(db) == before

    def test_a_long_body_within_the_contract_is_accepted(self, as_):
        resp = as_("sw")("POST", entries_path(), json=note(body="é" * 20000))
        assert resp.status_code == 201, resp.text


class TestEditEntry:
    def test_author_edits_their_entry(self, as_):
        entry = as_("sw")("POST", entries_path(), json=note()).json()
        resp = as_("sw")("PATCH", f"{entries_path()}/{entry['entry_id']}", json={"title": "Better title"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["title"] == "Better title" and resp.json()["body"] == "Words"
        assert "edited_at" in resp.json()

    def test_staff_cannot_edit_what_a_family_wrote(self, env, as_):
        _, db, _ = env
        entry = as_("mum")("POST", entries_path(), json=note(kind="family_note")).json()
        before = snapshot(db)
        for staff in ("sw", "mgr"):
            resp = as_(staff)("PATCH", f"{entries_path()}/{entry['entry_id']}", json={"body": "Corrected"})
            assert_problem(resp, 403)
            assert "Staff cannot edit what a family wrote" in resp.json()["detail"]
        assert_problem(as_("dad")("PATCH", f"{entries_path()}/{entry['entry_id']}", json={"body": "x"}), 403)
        assert snapshot(db) == before

    def test_event_made_entry_is_not_editable(self, env, as_):
        _, db, _ = env
        db["entries"].insert_one({"_id": "from-event", "council_id": COUNCIL, "case_id": CASE, "kind": "membership",
                                  "title": "Grace joined", "body": "", "occurred_at": T0, "recorded_at": T0,
                                  "edited_at": None, "comment_count": 0,
                                  "source": {"service": "cases", "event_type": "member_added", "event_id": new_id()},
                                  "audience": {"kind": "case", "people": [], "exclude": []}})
        assert_problem(as_("sw")("PATCH", f"{entries_path()}/from-event", json={"title": "x"}), 409)
        assert db["entries"].find_one({"_id": "from-event"})["title"] == "Grace joined"

    def test_empty_change_is_400(self, as_):
        entry = as_("sw")("POST", entries_path(), json=note()).json()
        assert_problem(as_("sw")("PATCH", f"{entries_path()}/{entry['entry_id']}", json={}), 400)

    def test_invisible_entry_is_404_not_403(self, as_):
        entry = as_("sw")("POST", entries_path(), json=note(audience={"kind": "staff"})).json()
        assert_problem(as_("mum")("PATCH", f"{entries_path()}/{entry['entry_id']}", json={"title": "x"}), 404)


class TestComments:
    def test_family_comments_on_a_recommendation_and_everyone_reads_them_oldest_first(self, as_):
        entry = as_("sw")("POST", entries_path(), json=note(kind="recommendation")).json()
        path = f"{entries_path()}/{entry['entry_id']}/comments"
        for who, text in [("mum", "We agree"), ("sw", "Thank you"), ("kid", "Me too")]:
            resp = as_(who)("POST", path, json={"body": text})
            assert resp.status_code == 201, resp.text
            assert resp.json()["author"]["person_id"] == who
        items = as_("dad")("GET", path).json()["items"]
        assert [c["body"] for c in items] == ["We agree", "Thank you", "Me too"]
        assert as_("sw")("GET", f"{entries_path()}/{entry['entry_id']}").json()["comment_count"] == 3

    def test_no_comment_on_what_the_caller_cannot_see(self, env, as_):
        _, db, _ = env
        entry = as_("sw")("POST", entries_path(), json=note(audience={"kind": "case", "exclude": ["dad"]})).json()
        path = f"{entries_path()}/{entry['entry_id']}/comments"
        before = snapshot(db)
        assert_problem(as_("dad")("POST", path, json={"body": "Hello"}), 404)
        assert_problem(as_("dad")("GET", path), 404)
        assert snapshot(db) == before
