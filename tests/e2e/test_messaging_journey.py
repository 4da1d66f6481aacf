"""Through the gateway, as the people who use it: a council switches messaging on, a parent and
their social worker talk, read receipts and unread counts stay exact, the timeline shows that a
conversation happened (not what was said) to exactly its participants."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e

BASE = "/api/tools/messaging"
THREADS = BASE + "/cases/{case}/threads"
TIMELINE = "/api/tools/timeline/cases/{case}/entries"
PROBLEM = "application/problem+json"
ALL_AUDIENCES = ["families", "young_people", "staff"]


def threads_path(case: str = "case-1") -> str:
    return THREADS.format(case=case)


def tool_ids(session) -> set[str]:
    return {t["tool_id"] for t in session.ok("GET", "/api/tools").json()["items"]}


def wait_for(predicate, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)  # polling interval of a deadline-bound check
    raise AssertionError(f"not true within {timeout}s")


def message_entries(session, case: str = "case-1") -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = session.ok("GET", TIMELINE.format(case=case), params=params).json()
        items += [e for e in page["items"] if e["kind"] == "message"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


@pytest.fixture(scope="module")
def messaging_on(sessions):
    admin = sessions("admin.a")
    for tool, scopes in (("timeline", ["timeline:read"]), ("messaging", ["messaging:read", "messaging:write"])):
        admin.ok("PUT", f"/api/catalogue/councils/council-a/tools/{tool}", json={"audiences": ALL_AUDIENCES,
                                                                                 "scopes": scopes})
    wait_for(lambda: {"timeline", "messaging"} <= tool_ids(sessions("parent1.a")), 5)
    return {"stories": 0}  # how many message stories this module has made on council A's case-1


def start(session, participants: list[str], body: str = "Hello", subject: str = "About Saturday") -> dict:
    resp = session.post(threads_path(), json={"subject": subject, "participants": participants, "body": body})
    assert resp.status_code == 201, resp.text
    return resp.json()


def send(session, thread_id: str, body: str) -> dict:
    resp = session.post(f"{threads_path()}/{thread_id}/messages", json={"body": body})
    assert resp.status_code == 201, resp.text
    return resp.json()


@pytest.fixture(scope="module")
def worker_thread(messaging_on, sessions):
    """Sasha (the social worker) writes to Pat; Pat replies."""
    thread = start(sessions("worker.a"), ["pat"], "Can we meet on Saturday at 10?")
    reply = send(sessions("parent1.a"), thread["thread_id"], "Yes, Saturday works for us")
    messaging_on["stories"] += 2
    return {"thread": thread, "reply": reply}


@pytest.fixture(scope="module")
def young_thread(messaging_on, sessions):
    thread = start(sessions("young.a"), ["sw1"], "Can I talk about my plan?", subject="My pathway plan")
    messaging_on["stories"] += 1
    return thread


class TestConversation:
    def test_a_parents_reply_reaches_the_worker(self, worker_thread, sessions):
        worker = sessions("worker.a")
        tid = worker_thread["thread"]["thread_id"]
        page = worker.ok("GET", f"{threads_path()}/{tid}/messages").json()
        assert [m["body"] for m in page["items"]] == ["Yes, Saturday works for us", "Can we meet on Saturday at 10?"]
        assert page["items"][0]["sender"] == {"person_id": "pat", "role": "parent"}
        listed = {t["thread_id"]: t for t in worker.ok("GET", threads_path()).json()["items"]}
        assert listed[tid]["unread"] == 1
        assert worker.ok("POST", f"{threads_path()}/{tid}/read", json={}).json()["unread"] == 0
        # Pat sees that the worker read the reply
        mine = sessions("parent1.a").ok("GET", f"{threads_path()}/{tid}/messages").json()["items"][0]
        assert [r["person_id"] for r in mine["read_by"]] == ["sw1"]

    def test_fifty_messages_give_exact_read_receipts_and_unread_counts(self, messaging_on, sessions):
        parent, worker = sessions("parent1.a"), sessions("worker.a")
        thread = start(parent, ["sw1"], "message 1")
        tid = thread["thread_id"]
        path = f"{threads_path()}/{tid}"

        def counts():
            return parent.ok("GET", path).json()["unread"], worker.ok("GET", path).json()["unread"]

        assert counts() == (0, 1)
        for n in range(2, 51):
            send(worker if n % 3 == 0 else parent, tid, f"message {n}")
            if n == 10:
                assert counts() == (3, 7)
                assert worker.ok("POST", f"{path}/read", json={}).json() == {"thread_id": tid, "marked": 7,
                                                                             "unread": 0}
            if n == 30:
                assert counts() == (10, 13)
        # the worker sent messages 3, 6, ..., 48 (16 of them); the parent the other 34
        assert counts() == (16, 27)
        unread = parent.ok("GET", BASE + "/me/unread").json()
        assert {"case_id": "case-1", "thread_id": tid, "unread": 16} in unread["items"]
        page = parent.ok("GET", f"{path}/messages", params={"limit": 5}).json()
        assert [m["body"] for m in page["items"]] == [f"message {n}" for n in range(50, 45, -1)]
        worker_48 = next(m for m in page["items"] if m["body"] == "message 48")
        assert parent.ok("POST", f"{path}/read", json={"up_to": worker_48["message_id"]}).json()["unread"] == 0
        assert counts() == (0, 27)
        # receipts: the parent's own newest message was read by nobody yet, then by the worker
        assert page["items"][0]["read_by"] == []
        worker.ok("POST", f"{path}/read", json={})
        assert [r["person_id"] for r in parent.ok("GET", f"{path}/messages", params={"limit": 1}).json()[
            "items"][0]["read_by"]] == ["sw1"]
        assert counts() == (0, 0)
        messaging_on["stories"] += 1 + 49

    def test_staff_see_what_awaits_their_reply_and_a_reply_clears_it(self, messaging_on, worker_thread, sessions):
        worker, manager = sessions("worker.a"), sessions("manager.a")
        tid = worker_thread["thread"]["thread_id"]
        marked = manager.put(f"{threads_path()}/{tid}/messages/{worker_thread['reply']['message_id']}/needs-reply")
        assert marked.status_code == 200 and marked.json()["needs_reply"] is True
        assert tid in {t["thread_id"] for t in worker.ok("GET", BASE + "/me/awaiting-reply").json()["items"]}
        assert sessions("parent1.a").get(BASE + "/me/awaiting-reply").status_code == 403
        send(worker, tid, "See you then")
        messaging_on["stories"] += 1
        assert tid not in {t["thread_id"] for t in worker.ok(
            "GET", threads_path(), params={"awaiting_reply": "true"}).json()["items"]}


class TestWhoSeesWhat:
    @pytest.mark.parametrize("login,sees_worker_thread,sees_young_thread", [
        ("parent1.a", True, False),   # parent, participant
        ("parent2.a", False, False),  # parent, not a participant
        ("carer.a", False, False),
        ("young.a", False, True),     # young person
        ("worker.a", True, True),     # social worker on the case
        ("manager.a", True, True),
    ])
    def test_case_members(self, login, sees_worker_thread, sees_young_thread, worker_thread, young_thread,
                          sessions):
        session = sessions(login)
        listed = {t["thread_id"] for t in session.ok("GET", threads_path(), params={"limit": 100}).json()["items"]}
        for thread, sees in ((worker_thread["thread"], sees_worker_thread), (young_thread, sees_young_thread)):
            assert (thread["thread_id"] in listed) is sees
            resp = session.get(f"{threads_path()}/{thread['thread_id']}/messages")
            assert resp.status_code == (200 if sees else 404)
            if not sees:
                assert resp.headers["content-type"].startswith(PROBLEM) and "Saturday" not in resp.text
        if not sees_young_thread:
            write = session.post(f"{threads_path()}/{young_thread['thread_id']}/messages", json={"body": "x"})
            assert write.status_code == 404 and write.headers["content-type"].startswith(PROBLEM)

    @pytest.mark.parametrize("login", ["otherparent.a", "otherworker.a", "parent.b", "worker.b"])
    def test_outsiders_and_the_other_council_get_404(self, login, worker_thread, sessions):
        session = sessions(login)
        tid = worker_thread["thread"]["thread_id"]
        for method, path, body in (("GET", f"{threads_path()}/{tid}", None),
                                   ("GET", f"{threads_path()}/{tid}/messages", None),
                                   ("POST", f"{threads_path()}/{tid}/messages", {"body": "hi"})):
            resp = session.request(method, path, json=body) if body else session.request(method, path)
            assert resp.status_code == 404, (login, path, resp.text)
            assert resp.headers["content-type"].startswith(PROBLEM) and "Saturday" not in resp.text
        listing = session.get(threads_path())
        if login in ("parent.b", "worker.b"):
            # council B has its own case-1 and its own "pat"
            assert listing.status_code == 200 and tid not in {t["thread_id"] for t in listing.json()["items"]}
        else:
            assert listing.status_code == 404

    def test_bad_writes_get_problems_and_change_nothing(self, worker_thread, sessions):
        worker = sessions("worker.a")
        tid = worker_thread["thread"]["thread_id"]
        path = f"{threads_path()}/{tid}/messages"
        before = worker.ok("GET", path, params={"limit": 100}).json()["items"]
        for kwargs in ({"content": b'{"body": ', "headers": {"Content-Type": "application/json"}},
                       {"json": {"body": "x", "secret": 1}}, {"json": {"body": 42}},
                       {"json": {"body": "x" * 10001}}, {"json": {"body": "x", "attachments": ["a"] * 11}},
                       {"content": b'{"body": "' + b"x" * (2 * 1024 * 1024) + b'"}',
                        "headers": {"Content-Type": "application/json"}}):
            resp = worker.post(path, **kwargs)
            assert 400 <= resp.status_code < 500 and resp.headers["content-type"].startswith(PROBLEM)
        assert worker.ok("GET", path, params={"limit": 100}).json()["items"] == before


class TestTimeline:
    def test_conversations_reach_the_timeline_exactly_once_for_their_participants(
            self, messaging_on, worker_thread, young_thread, sessions):
        manager = sessions("manager.a")
        expected = messaging_on["stories"]
        wait_for(lambda: len(message_entries(manager)) >= expected, 60)
        time.sleep(1.0)  # anything duplicated would arrive within this second
        entries = message_entries(manager)
        assert len(entries) == expected
        assert len({e["source"]["event_id"] for e in entries}) == expected
        titles = [e["title"] for e in entries]
        assert titles.count("Sasha Worker started a conversation with Pat Parent") == 1
        assert titles.count("Yan Young started a conversation with Sasha Worker") == 1
        assert "Pat Parent sent a message to Sasha Worker" in titles
        for entry in entries:
            assert entry["body"] == "" and "Saturday" not in entry["title"]
        # who sees them: the participants and staff; never a non-participant parent
        assert {e["title"] for e in message_entries(sessions("parent2.a"))} == set()
        assert {e["title"] for e in message_entries(sessions("carer.a"))} == set()
        assert {e["title"] for e in message_entries(sessions("young.a"))} == {
            "Yan Young started a conversation with Sasha Worker"}
        assert "Yan Young started a conversation with Sasha Worker" not in {
            e["title"] for e in message_entries(sessions("parent1.a"))}


class TestSwitchingOff:
    """Last in the module: it switches messaging off for council A."""

    def test_off_for_council_a_is_404_there_and_council_b_keeps_working(self, worker_thread, sessions):
        admin, parent = sessions("admin.a"), sessions("parent1.a")
        assert admin.delete("/api/catalogue/councils/council-a/tools/messaging").status_code == 204
        elapsed = wait_for(lambda: parent.get(threads_path()).status_code == 404, 40)
        off = parent.get(BASE + "/me/unread")
        assert off.status_code == 404 and off.headers["content-type"].startswith(PROBLEM)
        assert "messaging" not in tool_ids(parent)
        parent_b, worker_b = sessions("parent.b"), sessions("worker.b")
        thread = start(parent_b, ["swb"], "Hello from council B")
        assert worker_b.ok("GET", f"{threads_path()}/{thread['thread_id']}").json()["unread"] == 1
        assert send(worker_b, thread["thread_id"], "Hello back")["sender"]["person_id"] == "swb"
        assert parent_b.ok("GET", BASE + "/me/unread").json()["total"] == 1
        # last, so that everything above is checked even when the gateway is slow to hear of the switch
        assert elapsed <= 3.0, f"switch-off took {elapsed:.2f}s at the gateway"
