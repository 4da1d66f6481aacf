"""Messaging's HTTP API in-process, against a real SecantusDB; responses validated against the contract."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import MongoClient

from chassis.config import Settings
from chassis.identity import Identity
from chassis.outbox import validate_event
from chassis.testing import caller_for, unique_db
from messaging.app import create_app
from messaging.domain import can_see_thread

pytestmark = pytest.mark.integration

COUNCIL, OTHER_COUNCIL, CASE = "council-a", "council-b", "case-1"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ROLES = {"sw": "social_worker", "mgr": "manager", "mum": "parent", "dad": "parent", "gran": "carer",
         "kid": "child", "yp": "young_person"}
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def env(mongo_uri, jwks_path, minter):
    db_name = unique_db("messaging_api")
    app = create_app(Settings(service_name="messaging", mongo_uri=mongo_uri, mongo_db=db_name,
                              internal_jwks=jwks_path, validate_responses=True))
    client = MongoClient(mongo_uri, tz_aware=True)
    db = client[db_name]
    db["people"].insert_many([{"council_id": COUNCIL, "person_id": "mum", "display_name": "Mo Mum"},
                              {"council_id": COUNCIL, "person_id": "sw", "display_name": "Sam Okafor"}])
    with app.test_client() as http:
        yield http, db, minter
    client.close()


def identity(person_id: str, cases: dict[str, str] | None = None, council: str = COUNCIL) -> Identity:
    cases = {CASE: ROLES[person_id]} if cases is None else cases
    staff = any(r in ("social_worker", "manager") for r in cases.values())
    return Identity(subject=person_id, actor="person", council_id=council,
                    audience="staff" if staff else "families", cases=cases, client_ip="10.0.0.9")


class Caller(caller_for("messaging")):
    """Calls the in-process messaging app as one identity."""


@pytest.fixture(scope="module")
def as_(env):
    http, _, minter = env
    return lambda person_id, **kw: Caller(http, minter, identity(person_id, **kw))


def threads_path(case_id: str = CASE) -> str:
    return f"/cases/{case_id}/threads"


def new_thread(**overrides) -> dict:
    body = {"subject": "Contact on Saturday", "participants": ["sw"], "body": "Is Saturday still on?"}
    body.update(overrides)
    return body


def assert_problem(resp, status: int):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    problem = resp.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]


def snapshot(db) -> tuple:
    return tuple(sorted(map(repr, db[c].find().sort("_id"))) for c in ("threads", "messages", "outbox"))


def all_pages(call, path: str, limit: int = 7, **params) -> list[dict]:
    seen, cursor = [], None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        resp = call("GET", path, params=query)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert len(page["items"]) <= limit
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


@pytest.fixture(scope="module")
def conversation(as_):
    resp = as_("mum")("POST", threads_path(), json=new_thread())
    assert resp.status_code == 201, resp.text
    return resp.json()


class TestHealthAndTokens:
    def test_health_needs_no_token(self, env):
        http, _, _ = env
        assert http.get("/health").json() == {"status": "ok", "service": "messaging"}

    def test_no_token_is_401_problem(self, env):
        http, _, _ = env
        assert_problem(http.get(threads_path()), 401)
        assert_problem(http.get("/me/unread"), 401)

    def test_token_for_another_service_is_refused(self, env):
        http, _, minter = env
        token = minter.mint("timeline", identity("sw").to_claims())
        assert_problem(http.get(threads_path(), headers={"Authorization": "Bearer " + token}), 401)


class TestConversation:
    def test_parent_starts_and_the_worker_replies_and_the_parent_reads_it(self, env, as_, conversation):
        _, db, _ = env
        tid = conversation["thread_id"]
        assert conversation["participants"] == ["mum", "sw"] and conversation["unread"] == 0
        assert conversation["share_on_timeline"] == {"agreed": [], "shared": False}
        assert "awaiting_reply" not in conversation
        worker_view = as_("sw")("GET", f"{threads_path()}/{tid}").json()
        assert worker_view["unread"] == 1 and worker_view["awaiting_reply"] is False
        reply = as_("sw")("POST", f"{threads_path()}/{tid}/messages",
                          json={"body": "Yes, 10am at the centre", "attachments": ["doc-1", "doc-2"]})
        assert reply.status_code == 201, reply.text
        assert reply.json()["attachments"] == ["doc-1", "doc-2"] and reply.json()["read_by"] == []
        page = as_("mum")("GET", f"{threads_path()}/{tid}/messages").json()
        assert [m["body"] for m in page["items"]] == ["Yes, 10am at the centre", "Is Saturday still on?"]
        assert page["items"][0]["read"] is False and "needs_reply" not in page["items"][0]
        # the parent's own message: has the worker read it? not yet
        assert page["items"][1]["read_by"] == []
        assert as_("sw")("POST", f"{threads_path()}/{tid}/read", json={}).json() == {"thread_id": tid, "marked": 1,
                                                                              "unread": 0}
        mine = as_("mum")("GET", f"{threads_path()}/{tid}/messages").json()["items"][1]
        assert [r["person_id"] for r in mine["read_by"]] == ["sw"]
        # the events: no body anywhere, valid against their contracts, names in the titles
        events = [r["envelope"] for r in db["outbox"].find({"envelope.data.thread_id": tid}).sort("created_at")]
        for event in events:
            validate_event(event)
        assert "Saturday" not in repr(events) and "10am" not in repr(events)
        assert [e["type"] for e in events] == ["thread_started", "message_sent", "message_sent"]
        assert events[0]["story"]["title"] == "Mo Mum started a conversation with Sam Okafor"
        assert events[2]["story"]["title"] == "Sam Okafor sent a message to Mo Mum"
        assert events[2]["story"]["audience"] == {"kind": "named", "people": ["mum", "sw"], "exclude": []}

    def test_exchange_of_fifty_messages_gives_exact_unread_counts(self, as_):
        mum, sw = as_("mum", cases={"fifty": "parent"}), as_("sw", cases={"fifty": "social_worker"})
        tid = mum("POST", threads_path("fifty"), json=new_thread()).json()["thread_id"]
        path = f"{threads_path('fifty')}/{tid}"

        def counts():
            return mum("GET", path).json()["unread"], sw("GET", path).json()["unread"]

        for n in range(1, 50):
            resp = (sw if n % 4 == 0 else mum)("POST", f"{path}/messages", json={"body": f"message {n}"})
            assert resp.status_code == 201, resp.text
            if n == 20:
                assert counts() == (5, 16)
                assert sw("POST", f"{path}/read", json={}).json()["marked"] == 16
        # sw sent 12 (n = 4..48), mum 38 (the first message and 37 replies); sw read 16 at n = 20
        assert counts() == (12, 22)
        assert mum("GET", "/me/unread").json() == {"total": 12, "items": [
            {"case_id": "fifty", "thread_id": tid, "unread": 12}]}
        messages = all_pages(mum, f"{path}/messages", limit=9)
        assert [m["body"] for m in messages] == [f"message {n}" for n in range(49, 0, -1)] + ["Is Saturday still on?"]
        sixth_from_sw = [m for m in reversed(messages) if m["sender"]["person_id"] == "sw"][5]
        assert mum("POST", f"{path}/read", json={"up_to": sixth_from_sw["message_id"]}).json()["unread"] == 6
        assert counts() == (6, 22)
        assert sw("GET", "/me/unread").json()["total"] == 22
        assert sw("POST", f"{path}/read", json={}).json() == {"thread_id": tid, "marked": 22, "unread": 0}
        assert counts() == (6, 0)

    def test_awaiting_reply_is_cleared_by_a_staff_reply(self, as_):
        mum, sw = as_("mum", cases={"await": "parent"}), as_("sw", cases={"await": "social_worker"})
        thread = mum("POST", threads_path("await"), json=new_thread()).json()
        path = f"{threads_path('await')}/{thread['thread_id']}"
        first = sw("GET", f"{path}/messages").json()["items"][0]
        marked = sw("PUT", f"{path}/messages/{first['message_id']}/needs-reply")
        assert marked.status_code == 200 and marked.json()["needs_reply"] is True
        listed = sw("GET", threads_path("await"), params={"awaiting_reply": "true"}).json()["items"]
        assert [t["thread_id"] for t in listed] == [thread["thread_id"]] and listed[0]["awaiting_reply"]
        assert [t["thread_id"] for t in sw("GET", "/me/awaiting-reply").json()["items"]] == [thread["thread_id"]]
        assert_problem(mum("GET", "/me/awaiting-reply"), 403)
        assert_problem(mum("GET", threads_path("await"), params={"awaiting_reply": "true"}), 403)
        assert_problem(mum("PUT", f"{path}/messages/{first['message_id']}/needs-reply"), 403)
        sw("POST", f"{path}/messages", json={"body": "On it"})
        assert sw("GET", threads_path("await"), params={"awaiting_reply": "true"}).json()["items"] == []
        assert sw("GET", "/me/awaiting-reply").json()["items"] == []

    def test_sharing_needs_every_participant(self, env, as_, conversation):
        _, db, _ = env
        tid = conversation["thread_id"]
        path = f"{threads_path()}/{tid}"
        assert as_("mum")("PUT", f"{path}/share-on-timeline", json={"agree": True}).json()["share_on_timeline"] == {
            "agreed": ["mum"], "shared": False}
        assert_problem(as_("mgr")("PUT", f"{path}/share-on-timeline", json={"agree": True}), 403)
        assert as_("sw")("PUT", f"{path}/share-on-timeline", json={"agree": True}).json()["share_on_timeline"][
            "shared"] is True
        sent = as_("mum")("POST", f"{path}/messages", json={"body": "Thanks, see you then"}).json()
        event = db["outbox"].find_one({"envelope.data.message_id": sent["message_id"]})["envelope"]
        assert event["story"]["body"] == "Thanks, see you then" and "body" not in event["data"]


class TestVisibilityQuery:
    """The Mongo query returns exactly what domain.can_see_thread allows, over a generated matrix."""

    CASE_ID = "matrix-case"

    @pytest.fixture(scope="class")
    def matrix(self, env):
        _, db, _ = env
        people = [["mum", "sw"], ["dad", "kid"], ["gran", "mgr", "yp"], ["sw", "mgr"], ["kid", "mum", "dad", "sw"]]
        excludes = [[], ["dad"], ["mum", "sw"]]
        starters = [("mum", "parent"), ("sw", "social_worker"), ("kid", "child")]
        docs = []
        for n, (group, exclude, starter) in enumerate(itertools.product(people, excludes, starters)):
            docs.append({"_id": f"t{n:03d}", "council_id": COUNCIL, "case_id": self.CASE_ID, "subject": f"s{n}",
                         "started_by": {"person_id": starter[0], "role": starter[1]},
                         "started_at": T0, "last_message_at": T0 + timedelta(minutes=n % 5), "message_count": 1,
                         "audience": {"kind": "named", "people": group, "exclude": exclude},
                         "share_agreed": [], "awaiting_reply": [], "awaiting_since": None})
        docs.append({**docs[0], "_id": "foreign", "council_id": OTHER_COUNCIL})
        db["threads"].insert_many(docs)
        return docs

    @pytest.mark.parametrize("person_id", list(ROLES))
    def test_list_returns_exactly_what_the_rule_allows(self, matrix, as_, person_id):
        call = as_(person_id, cases={self.CASE_ID: ROLES[person_id]})
        expected = {d["_id"] for d in matrix if d["council_id"] == COUNCIL
                    and can_see_thread({**d, "thread_id": d["_id"]}, person_id, ROLES[person_id])}
        seen = all_pages(call, threads_path(self.CASE_ID), limit=8)
        ids = [t["thread_id"] for t in seen]
        assert len(ids) == len(set(ids)) and set(ids) == expected
        assert 0 < len(expected) < len(matrix) - 1 or person_id == "mgr"

    @pytest.mark.parametrize("person_id", ["mum", "dad", "sw"])
    def test_single_thread_answers_follow_the_same_rule(self, matrix, as_, person_id):
        call = as_(person_id, cases={self.CASE_ID: ROLES[person_id]})
        for doc in matrix[:-1:4]:
            resp = call("GET", f"{threads_path(self.CASE_ID)}/{doc['_id']}")
            assert resp.status_code == (200 if can_see_thread(doc, person_id, ROLES[person_id]) else 404), doc

    def test_other_council_caller_sees_nothing_of_this_council(self, matrix, as_):
        call = as_("sw", cases={self.CASE_ID: "social_worker"}, council=OTHER_COUNCIL)
        assert [t["thread_id"] for t in all_pages(call, threads_path(self.CASE_ID))] == ["foreign"]
        assert_problem(call("GET", f"{threads_path(self.CASE_ID)}/{matrix[1]['_id']}"), 404)


ROLE_MATRIX = [
    # login, cases claim, council, sees the thread, may write
    ("parent participant", "mum", {CASE: "parent"}, COUNCIL, 200, 201),
    ("excluded parent", "dad", {CASE: "parent"}, COUNCIL, 404, 404),
    ("carer", "gran", {CASE: "carer"}, COUNCIL, 404, 404),
    ("child participant", "kid", {CASE: "child"}, COUNCIL, 200, 201),
    ("young person", "yp", {CASE: "young_person"}, COUNCIL, 404, 404),
    ("social worker", "sw", {CASE: "social_worker"}, COUNCIL, 200, 201),
    ("manager", "mgr", {CASE: "manager"}, COUNCIL, 200, 201),
    ("non-member", "sw2", {"case-9": "social_worker"}, COUNCIL, 404, 404),
    ("other council", "sw", {CASE: "social_worker"}, OTHER_COUNCIL, 404, 404),
]


class TestRoleMatrix:
    @pytest.fixture(scope="class")
    def family_thread(self, as_):
        resp = as_("mum")("POST", threads_path(), json=new_thread(participants=["sw", "kid"]))
        assert resp.status_code == 201
        return resp.json()["thread_id"]

    @pytest.mark.parametrize("name,person,cases,council,sees,writes", ROLE_MATRIX, ids=[r[0] for r in ROLE_MATRIX])
    def test_who_sees_and_writes(self, env, family_thread, name, person, cases, council, sees, writes):
        http, _, minter = env
        call = Caller(http, minter, Identity(subject=person, actor="person", council_id=council, cases=cases))
        path = f"{threads_path()}/{family_thread}"
        assert call("GET", path).status_code == sees
        listing = call("GET", threads_path())
        listed = listing.status_code == 200 and family_thread in {t["thread_id"] for t in listing.json()["items"]}
        assert listed is (sees == 200)
        resp = call("POST", f"{path}/messages", json={"body": f"from {name}"})
        assert resp.status_code == writes, resp.text
        if writes != 201:
            assert resp.headers["content-type"].startswith(PROBLEM)
            assert "Saturday" not in resp.text


class TestListing:
    def test_threads_page_newest_activity_first(self, as_):
        sw = as_("sw", cases={"paging": "social_worker"})
        made = [sw("POST", threads_path("paging"), json=new_thread(participants=["mum"])).json()["thread_id"]
                for _ in range(9)]
        sw("POST", f"{threads_path('paging')}/{made[0]}/messages", json={"body": "bump"})
        seen = [t["thread_id"] for t in all_pages(sw, threads_path("paging"), limit=4)]
        assert seen[0] == made[0] and sorted(seen) == sorted(made) and len(seen) == 9

    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "@@"},
                                        {"cursor": "bm90LWEtY3Vyc29y"}, {"awaiting_reply": "maybe"}])
    def test_bad_paging_is_400(self, as_, params):
        assert_problem(as_("sw")("GET", threads_path(), params=params), 400)

    def test_reads_are_audited(self, env, as_):
        _, db, _ = env
        as_("mum")("GET", threads_path())
        record = db["audit"].find_one({"actor": "mum", "action": "messaging.threads.list"})
        assert record and record["council_id"] == COUNCIL and record["from"] == "10.0.0.9"


BAD_BODIES = [
    ("malformed", {"content": b'{"body": "x', "headers": {"Content-Type": "application/json"}}, 400),
    ("unknown field", None, 400),
    ("wrong type", None, 400),
    ("not json", {"content": b"body=x", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, None),
    ("10 MB", {"content": b'{"body": "' + b"x" * 10_000_000 + b'"}', "headers": {"Content-Type": "application/json"}},
     413),
    ("body too long", None, 400),
    ("eleven attachments", None, 400),
    ("bad attachment id", None, 400),
]


class TestBadInputChangesNothing:
    def writes(self, tid):
        path = f"{threads_path()}/{tid}"
        return [("POST", threads_path(), new_thread()), ("POST", f"{path}/messages", {"body": "Hello"}),
                ("PUT", f"{path}/share-on-timeline", {"agree": True}), ("POST", f"{path}/read", {})]

    # body and attachment checks apply only to the writes that carry a body (thread start, message)
    @pytest.mark.parametrize("write,name,kwargs,status", [
        pytest.param(w, *b, id=f"{b[0]}-{w}") for w in (0, 1, 2, 3) for b in BAD_BODIES
        if w in (0, 1) or b[0] not in ("body too long", "eleven attachments", "bad attachment id")])
    def test_bad_body(self, env, as_, conversation, write, name, kwargs, status):
        _, db, _ = env
        method, path, good = self.writes(conversation["thread_id"])[write]
        if name == "unknown field":
            kwargs = {"json": {**good, "colour": "red"}}
        elif name == "wrong type":
            kwargs = {"json": {k: 42 for k in good} or {"up_to": 42}}
        elif name == "body too long":
            kwargs = {"json": {**good, "body": "x" * 10001}}
        elif name in ("eleven attachments", "bad attachment id"):
            ids = [f"d{n}" for n in range(11)] if name == "eleven attachments" else ["../etc/passwd"]
            kwargs = {"json": {**good, "attachments": ids}}
        before = snapshot(db)
        resp = as_("mum")(method, path, **kwargs)
        assert_problem(resp, status or resp.status_code)
        assert 400 <= resp.status_code < 500
        assert snapshot(db) == before

    # starting a thread on council B's own case-1 is legitimate there; the thread-scoped writes test it
    @pytest.mark.parametrize("write,who", [(w, h) for w in (0, 1, 2, 3) for h in ("no role", "foreign council",
                                                                                  "unknown case")
                                           if (w, h) != (0, "foreign council")])
    def test_write_without_a_role_is_404(self, env, as_, conversation, write, who):
        _, db, _ = env
        method, path, good = self.writes(conversation["thread_id"])[write]
        if who == "unknown case":
            path = path.replace(CASE, "no-such-case")
            call = as_("sw", cases={"no-such-case": "social_worker"}) if write else as_("sw", cases={})
        elif who == "foreign council":
            call = as_("sw", cases={CASE: "social_worker"}, council=OTHER_COUNCIL)
        else:
            call = as_("sw", cases={"another": "social_worker"})
        before = snapshot(db)
        assert_problem(call(method, path, json=good), 404)
        assert snapshot(db) == before

    def test_a_long_body_within_the_contract_is_accepted(self, as_, conversation):
        resp = as_("mum")("POST", f"{threads_path()}/{conversation['thread_id']}/messages", json={"body": "é" * 10000})
        assert resp.status_code == 201, resp.text

    def test_reading_up_to_a_message_of_another_thread_is_404(self, as_, conversation):
        other = as_("mum")("POST", threads_path(), json=new_thread()).json()
        first = as_("sw")("GET", f"{threads_path()}/{other['thread_id']}/messages").json()["items"][0]
        resp = as_("sw")("POST", f"{threads_path()}/{conversation['thread_id']}/read", json={"up_to": first["message_id"]})
        assert_problem(resp, 404)
