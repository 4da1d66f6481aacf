"""Through the gateway, as the people who use it: a council switches referrals on, a social worker makes
a referral by form and in the guided conversation (they come out the same), the receiving team moves it
on, each person sees exactly what they may, and the story reaches the timeline once, for staff only."""

from __future__ import annotations

import time
from typing import ClassVar

import pytest

pytestmark = pytest.mark.e2e

TOOL = "/api/tools/referrals"
TIMELINE = "/api/tools/timeline/cases/case-1/entries"
PROBLEM = "application/problem+json"
ALL = ["families", "young_people", "staff"]

FORM = {"subject_person_id": "yan", "service": "CAMHS", "reasons": "Low mood for several months.",
        "concerns": "Not sleeping; missing school.", "urgency": "soon", "parents_informed": True,
        "parents_consented": False, "no_consent_reason": "Pat is worried about stigma.",
        "attachments": ["doc-1", "doc-2"]}
CHAT = ["yan", "2", "s", "Low mood for several months.", "Not sleeping; missing school.", "yes", "n",
        "Pat is worried about stigma.", "doc-1, doc-2"]


def referrals_path(case: str = "case-1") -> str:
    return f"{TOOL}/cases/{case}/referrals"


def tool_ids(session) -> set[str]:
    return {t["tool_id"] for t in session.ok("GET", "/api/tools").json()["items"]}


def wait_for(predicate, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)  # polling interval of a deadline-bound check
    raise AssertionError(f"not true within {timeout}s")


def comparable(referral: dict) -> dict:
    out = {k: v for k, v in referral.items() if k not in ("referral_id", "created_at", "updated_at")}
    out["history"] = [{k: v for k, v in h.items() if k != "at"} for h in referral["history"]]
    return out


def say(session, view: dict, answer: str) -> dict:
    return session.ok("POST", f"{TOOL}/conversations/{view['conversation_id']}/answers",
                      json={"answer": answer, "step": view["step"]}).json()


def is_problem(resp, status: int) -> bool:
    return resp.status_code == status and resp.headers["content-type"].startswith(PROBLEM)


@pytest.fixture(scope="module")
def referrals_on(sessions):
    admin = sessions("admin.a")
    for tool, scopes in (("timeline", ["timeline:read"]), ("referrals", ["referrals:read", "referrals:write"])):
        admin.ok("PUT", f"/api/catalogue/councils/council-a/tools/{tool}", json={"audiences": ALL, "scopes": scopes})
    wait_for(lambda: {"referrals", "timeline"} <= tool_ids(sessions("worker.a")), 5)
    # the case directory's memberships reach the referrals service as events
    wait_for(lambda: sessions("worker.a").post(referrals_path(), json=FORM).status_code == 201, 30)


@pytest.fixture(scope="module")
def by_form(referrals_on, sessions):
    return sessions("worker.a").ok("POST", referrals_path(), json=FORM).json()


class TestFormAndConversationAgree:
    def test_conversation_with_back_and_a_dropped_connection_makes_the_forms_referral(self, by_form, client):
        phone = client.sign_in("worker.a")
        view = phone.ok("POST", f"{TOOL}/cases/case-1/conversations").json()
        assert view["question"]["id"] == "subject"
        for answer in CHAT[:4]:
            view = say(phone, view, answer)
        view = phone.ok("POST", f"{TOOL}/conversations/{view['conversation_id']}/back",
                        json={"step": view["step"]}).json()
        assert view["question"]["id"] == "reasons"
        view = say(phone, view, CHAT[3])
        # the phone loses its connection; a new client signs in and resumes where it stopped
        tablet = client.sign_in("worker.a")
        view = tablet.ok("GET", f"{TOOL}/conversations/{view['conversation_id']}").json()
        assert view["question"]["id"] == "concerns"
        for answer in [*CHAT[4:], "yes"]:
            view = say(tablet, view, answer)
        assert view["status"] == "completed"
        made = tablet.ok("GET", f"{referrals_path()}/{view['referral_id']}").json()
        assert comparable(made) == comparable(by_form)

    def test_an_invalid_answer_is_explained_and_asked_again(self, referrals_on, sessions):
        sw = sessions("worker.a")
        view = sw.ok("POST", f"{TOOL}/cases/case-1/conversations").json()
        again = say(sw, view, "the neighbour's dog")
        assert again["question"]["id"] == "subject" and again["step"] == view["step"]
        assert "did not understand" in again["explanation"]

    def test_a_councils_changed_script_changes_the_questions(self, referrals_on, sessions):
        admin, sw = sessions("admin.a"), sessions("worker.a")
        script = admin.ok("GET", f"{TOOL}/settings/conversation-script").json()
        original = {q["id"]: q["prompt"] for q in script["questions"]}
        for q in script["questions"]:
            if q["id"] == "subject":
                q["prompt"] = "Which child or family member is it about?"
        admin.ok("PUT", f"{TOOL}/settings/conversation-script", json=script)
        view = sw.ok("POST", f"{TOOL}/cases/case-1/conversations").json()
        assert view["question"]["prompt"] == "Which child or family member is it about?"
        assert original["subject"] != view["question"]["prompt"]
        assert is_problem(sw.put(f"{TOOL}/settings/conversation-script", json=script), 403)


class TestLifecycle:
    def test_submit_accept_close_with_history_and_409_on_an_invalid_move(self, by_form, sessions):
        sw, mgr = sessions("worker.a"), sessions("manager.a")
        path = f"{referrals_path()}/{by_form['referral_id']}"
        sw.ok("POST", f"{path}/submit")
        assert is_problem(sw.post(f"{path}/accept"), 403)
        mgr.ok("POST", f"{path}/request-info", json={"question": "Is there a GP letter?"})
        sw.ok("POST", f"{path}/answer-info", json={"answer": "Yes: doc-2."})
        mgr.ok("POST", f"{path}/accept")
        assert is_problem(mgr.post(f"{path}/accept"), 409)
        assert is_problem(mgr.post(f"{path}/submit"), 409)
        done = mgr.ok("POST", f"{path}/close").json()
        assert [(h["action"], h["by"]["person_id"]) for h in done["history"]] == [
            ("create", "sw1"), ("submit", "sw1"), ("request_info", "mgr"), ("answer_info", "sw1"),
            ("accept", "mgr"), ("close", "mgr")]

    def test_events_reach_the_timeline_exactly_once_for_staff_only(self, by_form, sessions):
        def referral_titles(login):
            items = sessions(login).ok("GET", TIMELINE, params={"limit": 100}).json()["items"]
            return [e["title"] for e in items if e["kind"] == "referral"]

        expected = ["Referral to CAMHS closed", "Referral to CAMHS accepted",
                    "More information given for the referral to CAMHS",
                    "More information asked for the referral to CAMHS", "Referral to CAMHS submitted (soon)"]
        wait_for(lambda: len(referral_titles("worker.a")) >= len(expected), 20)
        time.sleep(0.5)  # a duplicate, if there were one, would arrive within this window
        assert sorted(referral_titles("worker.a")) == sorted(expected)
        assert sorted(referral_titles("manager.a")) == sorted(expected)
        for login in ("parent1.a", "parent2.a", "carer.a", "young.a"):
            assert referral_titles(login) == []


class TestWhoSeesWhat:
    @pytest.fixture(scope="class")
    def shared(self, referrals_on, sessions):
        sw = sessions("worker.a")
        staff_only = sw.ok("POST", referrals_path(), json={**FORM, "service": "Housing"}).json()
        shared = sw.ok("POST", referrals_path(), json={**FORM, "service": "Early Help"}).json()
        sw.ok("PUT", f"{referrals_path()}/{shared['referral_id']}/audience",
              json={"kind": "case", "exclude": ["alex"]})
        return {"staff_only": staff_only["referral_id"], "shared": shared["referral_id"]}

    SEES: ClassVar = {"parent1.a": {"shared"}, "parent2.a": set(), "carer.a": {"shared"}, "young.a": {"shared"},
            "worker.a": {"shared", "staff_only"}, "manager.a": {"shared", "staff_only"}}

    @pytest.mark.parametrize("login", sorted(SEES))
    def test_case_members(self, login, shared, sessions):
        session = sessions(login)
        listed = {r["referral_id"] for r in session.ok("GET", referrals_path()).json()["items"]}
        assert listed & set(shared.values()) == {shared[k] for k in self.SEES[login]}
        for key, referral_id in shared.items():
            resp = session.get(f"{referrals_path()}/{referral_id}")
            assert resp.status_code == (200 if key in self.SEES[login] else 404)
        if login not in ("worker.a", "manager.a"):
            assert is_problem(session.post(referrals_path(), json=FORM), 403)
            assert is_problem(session.post(f"{TOOL}/cases/case-1/conversations"), 403)

    @pytest.mark.parametrize("login", ["otherworker.a", "otherparent.a", "parent.b", "worker.b"])
    def test_outsiders_and_other_council(self, login, shared, sessions):
        session = sessions(login)
        for referral_id in shared.values():
            resp = session.get(f"{referrals_path()}/{referral_id}")
            assert is_problem(resp, 404) and "Low mood" not in resp.text
            assert is_problem(session.post(f"{referrals_path()}/{referral_id}/submit"), 404)
        listing = session.get(referrals_path())
        if login.endswith(".b"):
            # council B's own case-1: none of council A's referrals
            assert listing.status_code == 200
            assert not {r["referral_id"] for r in listing.json()["items"]} & set(shared.values())
        else:
            assert is_problem(listing, 404)

    def test_bad_input_is_a_problem_and_changes_nothing(self, shared, sessions):
        sw = sessions("worker.a")
        before = sw.ok("GET", referrals_path()).json()["items"]
        for kwargs in ({"content": b'{"service": ', "headers": {"Content-Type": "application/json"}},
                       {"json": {**FORM, "secret": 1}}, {"json": {**FORM, "urgency": 3}},
                       {"json": {**FORM, "no_consent_reason": None}},
                       {"content": b'{"reasons": "' + b"x" * (1024 * 1024) + b'"}',
                        "headers": {"Content-Type": "application/json"}}):
            resp = sw.post(referrals_path(), **kwargs)
            assert 400 <= resp.status_code < 500 and resp.headers["content-type"].startswith(PROBLEM)
        assert sw.ok("GET", referrals_path()).json()["items"] == before


class TestSwitchingOff:
    """Last in the module: it switches referrals off for council A."""

    def test_off_for_council_a_is_404_while_council_b_keeps_working(self, by_form, sessions):
        admin, sw = sessions("admin.a"), sessions("worker.a")
        assert admin.delete("/api/catalogue/councils/council-a/tools/referrals").status_code == 204
        # the catalogue's tool_disabled event invalidates the gateway's cache: live within a second
        elapsed = wait_for(lambda: sw.get(referrals_path()).status_code == 404, 5)
        assert elapsed <= 1.0, f"switch-off took {elapsed:.2f}s at the gateway"
        assert is_problem(sw.get(f"{referrals_path()}/{by_form['referral_id']}"), 404)
        assert is_problem(sw.post(f"{TOOL}/cases/case-1/conversations"), 404)
        b = sessions("worker.b")
        made = b.post(referrals_path(), json={**FORM, "subject_person_id": "pat"})
        assert made.status_code == 201, made.text
        assert b.ok("GET", f"{referrals_path()}/{made.json()['referral_id']}").json()["service"] == "CAMHS"
