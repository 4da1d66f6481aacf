"""Unit tests of messaging's rules, with a fake store (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from messaging_fakes import FakeAudit, FakeStore

from chassis.events import worker_topologies
from chassis.identity import Identity
from chassis.problems import Forbidden, InvalidInput, NotFound, Unprocessable
from messaging.domain import (
    MAX_PARTICIPANTS,
    Messaging,
    can_see_thread,
    name_from_member_added,
    names_in_words,
    unread_for,
)
from messaging.schemas import message_view, thread_view
from messaging.worker import MessagingWorker

COUNCIL, OTHER = "council-a", "council-b"
CASE = "case-1"
ROLES = {"pat": "parent", "alex": "parent", "cam": "carer", "yan": "child", "sw1": "social_worker",
         "mgr": "manager"}
NAMES = {"pat": "Pat Parent", "alex": "Alex Parent", "sw1": "Sasha Worker", "mgr": "Morgan Manager",
         "yan": "Yan Young"}
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def who(person_id: str, cases: dict[str, str] | None = None, council: str = COUNCIL) -> Identity:
    cases = {CASE: ROLES[person_id]} if cases is None else cases
    return Identity(subject=person_id, actor="person", council_id=council, cases=cases)


class Clock:
    """A clock that stands still unless moved: messages sent in the same instant must still be ordered."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world():
    store = FakeStore({(COUNCIL, p): n for p, n in NAMES.items()})
    audit = FakeAudit()
    return Messaging(store, audit, clock=Clock()), store, audit


def start(app: Messaging, by: str = "pat", people=("sw1",), **extra) -> dict:
    thread, _ = app.start_thread(who(by), CASE, {"subject": "School run", "participants": list(people),
                                                  "body": "Can we talk about Tuesday?", **extra})
    return thread


def send(app: Messaging, by: str, thread: dict, body: str = "Hello", **kw) -> dict:
    message, _ = app.send_message(who(by, **kw), CASE, thread["thread_id"], {"body": body})
    return message


class TestVisibilityRule:
    @pytest.mark.parametrize("person_id,role,expected", [
        ("pat", "parent", True), ("sw1", "social_worker", True), ("mgr", "manager", True),
        ("alex", "parent", False), ("yan", "child", False), ("cam", "carer", False),
        ("pat", None, False), ("sw2", "social_worker", True),
    ])
    def test_staff_see_every_thread_family_only_their_own(self, person_id, role, expected):
        thread = {"started_by": {"person_id": "pat", "role": "parent"},
                  "audience": {"kind": "named", "people": ["pat", "sw1"], "exclude": []}}
        assert can_see_thread(thread, person_id, role) is expected

    def test_excluded_staff_do_not_see_it_but_the_starter_always_does(self):
        thread = {"started_by": {"person_id": "pat", "role": "parent"},
                  "audience": {"kind": "named", "people": ["sw1"], "exclude": ["pat", "mgr"]}}
        assert can_see_thread(thread, "pat", "parent")
        assert not can_see_thread(thread, "mgr", "manager")


class TestStartThread:
    def test_parent_starts_a_thread_with_the_worker(self, world):
        app, store, audit = world
        thread = start(app)
        assert thread["audience"]["people"] == ["pat", "sw1"]
        assert thread["message_count"] == 1 and thread["unread"] == 0
        assert [e.event_type for e in store.events] == ["thread_started", "message_sent"]
        started, first = store.events
        assert started.story["title"] == "Pat Parent started a conversation with Sasha Worker"
        assert started.story["audience"] == {"kind": "named", "people": ["pat", "sw1"], "exclude": []}
        assert first.story is None, "the thread_started story stands for the first message"
        assert "Tuesday" not in repr(store.events)
        assert audit.records[-1]["action"] == "messaging.thread.start" and audit.records[-1]["outcome"] == "ok"

    def test_the_caller_is_added_once_and_needs_someone_else(self, world):
        app, _, _ = world
        assert start(app, people=("sw1", "pat", "sw1"))["audience"]["people"] == ["pat", "sw1"]
        with pytest.raises(Unprocessable):
            start(app, people=("pat",))

    def test_too_many_people_or_attachments_is_invalid(self, world):
        app, store, _ = world
        with pytest.raises(InvalidInput):
            start(app, people=[f"p{n}" for n in range(MAX_PARTICIPANTS)])
        with pytest.raises(InvalidInput):
            start(app, attachments=[f"doc{n}" for n in range(11)])
        with pytest.raises(InvalidInput):
            start(app, body="   ")
        assert store.threads == {}

    @pytest.mark.parametrize("identity", [
        who("pat", cases={"case-2": "parent"}), who("sw1", cases={}), who("pat", council=OTHER, cases={}),
        Identity(subject="m", actor="machine", council_id=COUNCIL, cases={CASE: "social_worker"}),
    ])
    def test_no_role_on_the_case_is_404_and_audited(self, world, identity):
        app, store, audit = world
        with pytest.raises(NotFound):
            app.start_thread(identity, CASE, {"subject": "s", "participants": ["sw1"], "body": "b"})
        assert store.threads == {} and audit.records[-1]["outcome"] == "not-found"

    def test_unknown_names_read_as_someone_on_the_case(self, world):
        app, store, _ = world
        start(app, people=("sw1", "stranger"))
        assert store.events[0].story["title"] == "Pat Parent started a conversation with Sasha Worker and someone on the case"


class TestSending:
    def test_worker_reply_reaches_the_parent_and_the_story_tells_no_content(self, world):
        app, store, _ = world
        thread = start(app)
        reply = send(app, "sw1", thread, "Yes, call me at 3")
        event = store.events[-1]
        assert event.event_type == "message_sent"
        assert event.data == {"thread_id": thread["thread_id"], "message_id": reply["message_id"], "case_id": CASE,
                              "sender": {"person_id": "sw1", "role": "social_worker"},
                              "participants": ["pat", "sw1"], "attachment_count": 0}
        assert event.story["title"] == "Sasha Worker sent a message to Pat Parent"
        assert "body" not in event.story and "call me" not in repr(event)
        items, _, _ = app.list_messages(who("pat"), CASE, thread["thread_id"])
        assert [m["body"] for m in items] == ["Yes, call me at 3", "Can we talk about Tuesday?"]

    def test_messages_in_the_same_instant_keep_their_order(self, world):
        app, _, _ = world
        thread = start(app)
        sent = [send(app, "pat" if n % 2 else "sw1", thread, f"m{n}") for n in range(10)]
        times = [m["sent_at"] for m in sent]
        assert times == sorted(times) and len(set(times)) == 10
        items, _, _ = app.list_messages(who("sw1"), CASE, thread["thread_id"], limit=100)
        assert [m["body"] for m in items][:10] == [f"m{n}" for n in reversed(range(10))]

    def test_a_non_participant_family_member_can_neither_see_nor_write(self, world):
        app, store, _ = world
        thread = start(app)
        with pytest.raises(NotFound):
            send(app, "alex", thread)
        with pytest.raises(NotFound):
            app.get_thread(who("alex"), CASE, thread["thread_id"])
        assert len(store.messages) == 1

    def test_staff_on_the_case_join_a_thread_by_writing(self, world):
        app, store, _ = world
        thread = start(app)
        send(app, "mgr", thread, "Covering for Sasha")
        assert store.threads[thread["thread_id"]]["audience"]["people"] == ["pat", "sw1", "mgr"]
        assert store.events[-1].story["title"] == "Morgan Manager sent a message to Pat Parent and Sasha Worker"

    def test_body_goes_on_the_timeline_only_when_every_participant_agreed(self, world):
        app, store, _ = world
        thread = start(app, share_on_timeline=True)
        send(app, "sw1", thread, "first")
        assert "body" not in store.events[-1].story
        shared, _ = app.set_sharing(who("sw1"), CASE, thread["thread_id"], True)
        assert shared["share_agreed"] == ["pat", "sw1"]
        send(app, "sw1", thread, "second")
        assert store.events[-1].story["body"] == "second"
        app.set_sharing(who("pat"), CASE, thread["thread_id"], False)
        send(app, "sw1", thread, "third")
        assert "body" not in store.events[-1].story

    def test_only_participants_decide_about_sharing(self, world):
        app, _, _ = world
        thread = start(app)
        with pytest.raises(Forbidden):
            app.set_sharing(who("mgr"), CASE, thread["thread_id"], True)
        with pytest.raises(NotFound):
            app.set_sharing(who("alex"), CASE, thread["thread_id"], True)


class TestReadReceiptsAndUnread:
    def test_scripted_exchange_gives_exact_counts(self, world):
        app, _, _ = world
        thread = start(app)  # pat -> sw1: 1 unread for sw1
        tid = thread["thread_id"]

        def unread(person):
            return app.get_thread(who(person), CASE, tid)[0]["unread"]

        assert (unread("pat"), unread("sw1")) == (0, 1)
        for n in range(1, 50):
            send(app, "sw1" if n % 5 == 0 else "pat", thread, f"m{n}")
        # 50 messages: sw1 sent 9 (n = 5, 10, ..., 45), pat sent 41
        assert (unread("pat"), unread("sw1")) == (9, 41)
        assert app.mark_read(who("sw1"), CASE, tid)["unread"] == 0
        assert unread("pat") == 9
        assert app.my_unread(who("pat")) == {"total": 9, "items": [{"case_id": CASE, "thread_id": tid, "unread": 9}]}
        items, _, _ = app.list_messages(who("pat"), CASE, tid, limit=100)
        oldest_sw = [m for m in items if m["sender"]["person_id"] == "sw1"][-1]
        result = app.mark_read(who("pat"), CASE, tid, oldest_sw["message_id"])
        assert result == {"thread_id": tid, "marked": 1, "unread": 8}
        assert app.mark_read(who("pat"), CASE, tid, oldest_sw["message_id"])["marked"] == 0
        assert app.my_unread(who("sw1")) == {"total": 0, "items": []}
        # who read what: the sender sees it; another family member sees only whether they read it
        pat_message = next(m for m in items if m["sender"]["person_id"] == "pat")
        assert [r["person_id"] for r in pat_message["read_by"]] == ["sw1"]

    def test_read_receipts_are_shown_to_the_sender_and_staff_only(self, world):
        app, store, _ = world
        thread = start(app, people=("sw1", "cam"))
        app.mark_read(who("sw1"), CASE, thread["thread_id"])
        message = next(iter(store.messages.values()))
        viewer = lambda p: app.get_thread(who(p), CASE, thread["thread_id"])[1]
        assert message_view(message, viewer("pat"))["read_by"][0]["person_id"] == "sw1"
        assert "read_by" not in message_view(message, viewer("cam"))
        assert message_view(message, viewer("cam"))["read"] is False
        assert "needs_reply" in message_view(message, viewer("mgr"))

    def test_non_participants_keep_no_receipts(self, world):
        app, _, _ = world
        thread = start(app)
        with pytest.raises(Forbidden):
            app.mark_read(who("mgr"), CASE, thread["thread_id"])
        assert app.get_thread(who("mgr"), CASE, thread["thread_id"])[0]["unread"] == 0

    def test_unread_for_counts_what_others_sent_and_i_did_not_read(self):
        messages = [{"sender": {"person_id": s}, "read_by": [{"person_id": r} for r in rs]}
                    for s, rs in [("a", []), ("b", []), ("b", ["a"]), ("c", ["b"])]]
        assert (unread_for(messages, "a"), unread_for(messages, "b"), unread_for(messages, "z")) == (2, 1, 4)


class TestAwaitingReply:
    def test_staff_mark_a_family_message_and_a_staff_reply_clears_it(self, world):
        app, store, _ = world
        thread = start(app)
        first = next(iter(store.messages))
        message, _ = app.set_needs_reply(who("sw1"), CASE, thread["thread_id"], first, True)
        assert message["needs_reply"] is True
        listed, _, _ = app.list_threads(who("mgr"), CASE, awaiting_reply=True)
        assert [t["thread_id"] for t in listed] == [thread["thread_id"]]
        assert [t["thread_id"] for t in app.my_awaiting_reply(who("sw1"))] == [thread["thread_id"]]
        send(app, "pat", thread, "Any news?")
        assert app.my_awaiting_reply(who("sw1")), "a family message does not answer it"
        send(app, "sw1", thread, "Yes")
        assert app.my_awaiting_reply(who("sw1")) == []
        assert store.messages[first]["needs_reply"] is False

    def test_who_may_mark(self, world):
        app, store, _ = world
        thread = start(app)
        first = next(iter(store.messages))
        with pytest.raises(Forbidden):
            app.set_needs_reply(who("pat"), CASE, thread["thread_id"], first, True)
        staff_message = send(app, "sw1", thread)
        with pytest.raises(Unprocessable):
            app.set_needs_reply(who("mgr"), CASE, thread["thread_id"], staff_message["message_id"], True)
        with pytest.raises(NotFound):
            app.set_needs_reply(who("sw1"), CASE, thread["thread_id"], "nope", True)

    def test_families_cannot_filter_by_awaiting_reply_and_do_not_see_the_flag(self, world):
        app, _, _ = world
        thread = start(app)
        with pytest.raises(Forbidden):
            app.list_threads(who("pat"), CASE, awaiting_reply=True)
        with pytest.raises(Forbidden):
            app.my_awaiting_reply(who("pat"))
        shown, viewer = app.get_thread(who("pat"), CASE, thread["thread_id"])
        assert "awaiting_reply" not in thread_view(shown, viewer)


class TestListing:
    def test_pages_cover_every_visible_thread_once(self, world):
        app, _, _ = world
        clock = app.clock
        made = set()
        for n in range(13):
            clock.now = T0 + timedelta(minutes=n % 4)
            made.add(start(app, people=("sw1",) if n % 3 else ("sw1", "alex"))["thread_id"])
        for person in ("sw1", "alex", "yan"):
            seen, cursor = [], None
            while True:
                items, cursor, _ = app.list_threads(who(person), CASE, 4, cursor)
                seen += [t["thread_id"] for t in items]
                if cursor is None:
                    break
            assert len(seen) == len(set(seen))
            expected = {"sw1": 13, "alex": 5, "yan": 0}[person]
            assert len(seen) == expected


class TestWords:
    @pytest.mark.parametrize("ids,words", [
        (["pat"], "Pat Parent"), (["pat", "sw1"], "Pat Parent and Sasha Worker"),
        (["pat", "sw1", "x"], "Pat Parent, Sasha Worker and someone on the case"),
        (["pat", "sw1", "mgr", "alex", "yan"], "Pat Parent, Sasha Worker and 3 others"), ([], "someone on the case"),
    ])
    def test_names_in_words(self, ids, words):
        assert names_in_words(ids, NAMES) == words

    def test_name_from_member_added(self):
        event = {"council_id": COUNCIL, "data": {"case_id": CASE, "person_id": "pat", "role": "parent"},
                 "story": {"title": "Pat Parent joined the case as parent"}}
        assert name_from_member_added(event) == (COUNCIL, "pat", "Pat Parent")
        assert name_from_member_added({**event, "data": {**event["data"], "display_name": "P. P."}})[2] == "P. P."
        assert name_from_member_added({**event, "story": {"title": "Something else"}}) is None
        assert name_from_member_added({"data": {}}) is None


class TestWorkerShape:
    def test_worker_relays_and_consumes_member_added(self):
        queues = [t.queue.name for t in worker_topologies(MessagingWorker)]
        assert queues == ["evt-cases-member_added--messaging.handle_member_added"]
        assert MessagingWorker.name == "messaging"


def test_every_operation_is_audited(world):
    app, _, audit = world
    thread = start(app)
    for fn in (lambda: app.get_thread(who("sw1"), CASE, thread["thread_id"]),
               lambda: app.list_messages(who("sw1"), CASE, thread["thread_id"]),
               lambda: app.my_unread(who("sw1"))):
        fn()
    with pytest.raises(NotFound):
        app.get_thread(who("alex"), CASE, thread["thread_id"])
    actions = [(r["action"], r["outcome"]) for r in audit.records]
    assert actions == [("messaging.thread.start", "ok"), ("messaging.thread.read", "ok"),
                       ("messaging.messages.list", "ok"), ("messaging.me.unread", "ok"),
                       ("messaging.thread.read", "not-found")]


