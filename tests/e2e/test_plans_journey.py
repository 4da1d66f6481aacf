"""Through the gateway, as the people who use it: a council switches plans on, a social worker writes
Yan's pathway plan, Yan comments and disagrees, the plan is reviewed and published again; each person
sees exactly what they may, and the plan's events reach the timeline once, with the plan's audience."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e

PLANS = "/api/tools/plans/cases/{case}/plans"
TIMELINE = "/api/tools/timeline/cases/{case}/entries"
PROBLEM = "application/problem+json"
ALL_AUDIENCES = ["families", "young_people", "staff"]
YANS_PLAN = "Yan's pathway plan (e2e)"
CASE_PLAN = "Family support plan (e2e)"


def plans_path(case: str = "case-1") -> str:
    return PLANS.format(case=case)


def tool_ids(session) -> set[str]:
    return {t["tool_id"] for t in session.ok("GET", "/api/tools").json()["items"]}


def wait_for(predicate, timeout: float) -> float:
    """Seconds until predicate() held; fails past timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)  # polling interval of a deadline-bound check
    raise AssertionError(f"not true within {timeout}s")


def timeline(session, case: str = "case-1") -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = session.ok("GET", TIMELINE.format(case=case), params=params).json()
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def plan_entries(session, title: str) -> list[dict]:
    return [e for e in timeline(session) if (e.get("source") or {}).get("service") == "plans" and title in e["title"]]


@pytest.fixture(scope="module")
def plans_on(sessions):
    admin = sessions("admin.a")
    for tool, scopes in (("timeline", ["timeline:read"]), ("plans", ["cases:read", "plans:read", "plans:write"])):
        admin.ok("PUT", f"/api/catalogue/councils/council-a/tools/{tool}",
                 json={"audiences": ALL_AUDIENCES, "scopes": scopes})
    for login in ("worker.a", "young.a", "parent1.a"):
        session = sessions(login)
        wait_for(lambda s=session: {"plans", "timeline"} <= tool_ids(s), 5)


@pytest.fixture(scope="module")
def journey(plans_on, sessions):
    """Publish, comment, disagree, review, publish again: Yan's plan; and a plan for the case without Alex."""
    worker, yan = sessions("worker.a"), sessions("young.a")
    plan = worker.ok("POST", plans_path(), json={
        "kind": "pathway", "title": YANS_PLAN, "subject_person_id": "yan", "review_due": "2026-09-01",
        "sections": [{"area": "accommodation", "goals": [{
            "title": "Move to supported lodgings", "description": "Close to college",
            "actions": [{"what": "Visit two lodgings", "who": {"role": "Personal adviser"}, "by_when": "2026-05-01"},
                        {"what": "Pack", "who": {"person_id": "yan"}, "by_when": "2026-06-01"}]}]}]}).json()
    path = f"{plans_path()}/{plan['plan_id']}"
    v1 = worker.ok("POST", f"{path}/publish").json()
    goal_id = v1["published"]["sections"][0]["goals"][0]["goal_id"]
    yan.ok("POST", f"{path}/goals/{goal_id}/comments", json={"body": "Can they be near my sister?"})
    missing_reason = yan.post(f"{path}/versions/1/agreements", json={"agreed": False})
    assert missing_reason.status_code == 400 and missing_reason.headers["content-type"].startswith(PROBLEM)
    yan.ok("POST", f"{path}/versions/1/agreements", json={"agreed": False, "reason": "I want to be near my sister."})
    worker.ok("POST", f"{path}/reviews", json={"outcome_notes": "Lodgings near Yan's sister to be found.",
                                               "reviewed_on": "2026-08-30", "next_review_due": "2027-02-28"})
    draft = worker.ok("GET", path).json()["draft"]
    draft["sections"][0]["goals"][0]["title"] = "Move to supported lodgings near my sister"
    draft["sections"].append({"area": "money", "goals": [{"title": "Open a bank account", "actions": []}]})
    worker.ok("PUT", f"{path}/draft", json={"review_due": draft["review_due"], "sections": draft["sections"]})
    worker.ok("POST", f"{path}/publish")
    yan.ok("POST", f"{path}/versions/2/agreements", json={"agreed": True})

    case_plan = worker.ok("POST", plans_path(), json={
        "kind": "child_in_need", "title": CASE_PLAN, "review_due": "2026-10-01",
        "audience": {"kind": "case", "people": [], "exclude": ["alex"]},
        "sections": [{"area": "health", "goals": [{"title": "Register with a dentist", "actions": []}]}]}).json()
    worker.ok("POST", f"{plans_path()}/{case_plan['plan_id']}/publish")
    return {"yan": plan["plan_id"], "case": case_plan["plan_id"], "goal": goal_id}


class TestTheJourney:
    def test_history_of_versions_and_what_changed(self, journey, sessions):
        yan, worker = sessions("young.a"), sessions("worker.a")
        path = f"{plans_path()}/{journey['yan']}"
        assert [v["number"] for v in yan.ok("GET", f"{path}/versions").json()["items"]] == [1, 2]
        assert yan.ok("GET", f"{path}/versions/1").json()["sections"][0]["goals"][0]["title"] == \
            "Move to supported lodgings"
        diff = yan.ok("GET", f"{path}/versions/1/diff/2").json()
        assert [g["title"] for g in diff["goals"]["added"]] == ["Open a bank account"]
        assert diff["goals"]["changed"][0]["changes"] == [{"field": "title", "before": "Move to supported lodgings",
                                                           "after": "Move to supported lodgings near my sister"}]
        assert diff["review_due"] == {"before": "2026-09-01", "after": "2027-02-28"}
        plan = yan.ok("GET", path).json()
        assert plan["current_version"] == 2 and plan["status"] == "published" and "draft" not in plan
        reviews = worker.ok("GET", f"{path}/reviews").json()["items"]
        assert [(r["version"], r["reviewed_on"]) for r in reviews] == [(1, "2026-08-30")]

    def test_staff_see_the_young_persons_disagreement_and_comment(self, journey, sessions):
        worker = sessions("worker.a")
        path = f"{plans_path()}/{journey['yan']}"
        answers = worker.ok("GET", f"{path}/versions/1/agreements").json()["items"]
        assert [(a["person_id"], a["agreed"], a["reason"]) for a in answers] == [
            ("yan", False, "I want to be near my sister.")]
        assert [a["agreed"] for a in worker.ok("GET", f"{path}/versions/2/agreements").json()["items"]] == [True]
        comments = worker.ok("GET", f"{path}/goals/{journey['goal']}/comments").json()["items"]
        assert [(c["author"]["person_id"], c["body"]) for c in comments] == [("yan", "Can they be near my sister?")]

    def test_events_reach_the_timeline_exactly_once_with_the_plan_audience(self, journey, sessions):
        worker = sessions("worker.a")
        expected = {("plan_published", "published (version 1)"), ("plan_agreed", "Not agreed"),
                    ("plan_reviewed", "reviewed (version 1)"), ("plan_published", "published (version 2)"),
                    ("plan_agreed", "Agreed")}
        wait_for(lambda: len(plan_entries(worker, YANS_PLAN)) >= len(expected), 60)
        time.sleep(1)  # a duplicate would arrive right behind the original: give it the chance to
        entries = plan_entries(worker, YANS_PLAN)
        assert len(entries) == len(expected)
        assert len({e["source"]["event_id"] for e in entries}) == len(expected)
        assert {(e["source"]["event_type"], next(w for t, w in expected if t == e["source"]["event_type"]
                                                 and w in e["title"])) for e in entries} == expected
        for entry in entries:
            assert entry["kind"] == "plan"
            assert entry["audience"] == {"kind": "named", "people": ["yan"], "exclude": []}
        assert "sister" not in " ".join(e["title"] + e["body"] for e in entries if e["source"]["event_type"] ==
                                        "plan_agreed")
        yans_view = plan_entries(sessions("young.a"), YANS_PLAN)
        assert {e["entry_id"] for e in yans_view} == {e["entry_id"] for e in entries}

    @pytest.mark.parametrize("login", ["parent1.a", "parent2.a", "carer.a"])
    def test_the_family_sees_none_of_yans_plan_on_the_timeline(self, journey, sessions, login):
        wait_for(lambda: len(plan_entries(sessions("worker.a"), YANS_PLAN)) >= 5, 60)
        assert plan_entries(sessions(login), YANS_PLAN) == []

    def test_the_case_plan_reaches_the_timeline_for_the_case_but_not_alex(self, journey, sessions):
        wait_for(lambda: len(plan_entries(sessions("parent1.a"), CASE_PLAN)) == 1, 60)
        assert plan_entries(sessions("parent2.a"), CASE_PLAN) == []
        [entry] = plan_entries(sessions("worker.a"), CASE_PLAN)
        assert entry["audience"] == {"kind": "case", "people": [], "exclude": ["alex"]}


# login -> which of the two plans they see
VISIBLE = {
    "parent1.a": {"case"},          # a parent: not Yan's plan
    "parent2.a": set(),             # the parent excluded from the case plan
    "carer.a": {"case"},
    "young.a": {"yan", "case"},     # the young person the plan is for
    "worker.a": {"yan", "case"},
    "manager.a": {"yan", "case"},
}
OUTSIDERS = ["otherparent.a", "otherworker.a", "admin.a", "parent.b", "worker.b"]


class TestWhoSeesWhat:
    @pytest.mark.parametrize("login", sorted(VISIBLE))
    def test_lists_and_single_reads_match_the_audience(self, login, journey, sessions):
        session = sessions(login)
        listed = {p["plan_id"] for p in session.ok("GET", plans_path()).json()["items"]}
        mine = {journey[k] for k in VISIBLE[login]}
        assert listed & {journey["yan"], journey["case"]} == mine
        for key in ("yan", "case"):
            for suffix in ("", "/versions", "/versions/1", "/reviews", f"/goals/{journey['goal']}/comments"):
                resp = session.get(f"{plans_path()}/{journey[key]}{suffix}")
                if key in VISIBLE[login]:
                    assert resp.status_code == 200, (key, suffix, resp.text)
                else:
                    assert resp.status_code == 404 and resp.headers["content-type"].startswith(PROBLEM)
                    assert "sister" not in resp.text and "lodgings" not in resp.text

    @pytest.mark.parametrize("login", OUTSIDERS)
    def test_outsiders_get_404_or_their_own_councils_case(self, login, journey, sessions):
        session = sessions(login)
        listing = session.get(plans_path())
        if login in ("parent.b", "worker.b"):
            # council B has its own case-1 (and its own "pat"): none of council A's plans
            assert listing.status_code == 200
            assert not {p["plan_id"] for p in listing.json()["items"]} & {journey["yan"], journey["case"]}
        else:
            assert listing.status_code == 404 and listing.headers["content-type"].startswith(PROBLEM)
        for plan_id in (journey["yan"], journey["case"]):
            resp = session.get(f"{plans_path()}/{plan_id}")
            assert resp.status_code == 404 and "lodgings" not in resp.text

    def test_a_parent_cannot_write_or_agree_for_yan(self, journey, sessions):
        parent = sessions("parent1.a")
        assert parent.post(plans_path(), json={"kind": "pathway", "title": "mine"}).status_code == 403
        path = f"{plans_path()}/{journey['yan']}"
        assert parent.post(f"{path}/versions/2/agreements", json={"agreed": True}).status_code == 404
        assert parent.post(f"{path}/goals/{journey['goal']}/comments", json={"body": "hi"}).status_code == 404

    def test_bad_input_is_a_problem_and_changes_nothing(self, journey, sessions):
        worker = sessions("worker.a")
        before = worker.ok("GET", plans_path()).json()
        for kwargs in ({"content": b'{"kind": ', "headers": {"Content-Type": "application/json"}},
                       {"json": {"kind": "pathway", "title": "t", "secret": 1}},
                       {"json": {"kind": "pathway", "title": 42}},
                       {"content": b'{"title": "' + b"x" * (10 * 1024 * 1024) + b'"}',
                        "headers": {"Content-Type": "application/json"}}):
            resp = worker.post(plans_path(), **kwargs)
            assert 400 <= resp.status_code < 500 and resp.headers["content-type"].startswith(PROBLEM)
        assert worker.post(plans_path("case-2"), json={"kind": "pathway", "title": "t"}).status_code == 404
        assert worker.ok("GET", plans_path()).json() == before


class TestSwitchingPlansOff:
    """Last in the module: council A switches plans off; council B keeps working."""

    def test_off_for_council_a_is_404_and_council_b_keeps_working(self, journey, sessions):
        admin, yan = sessions("admin.a"), sessions("young.a")
        resp = admin.delete("/api/catalogue/councils/council-a/tools/plans")
        assert resp.status_code == 204
        # the gateway learns of the switch from the catalogue's event (its cache expires in 30 s at the latest)
        last: list[int] = []
        try:
            wait_for(lambda: last.append(yan.get(plans_path()).status_code) or last[-1] == 404, 15)
        except AssertionError as exc:
            raise AssertionError(f"still {last[-1]} for the young person after switching plans off") from exc
        off = yan.get(f"{plans_path()}/{journey['yan']}")
        assert off.status_code == 404 and off.headers["content-type"].startswith(PROBLEM)
        assert "plans" not in tool_ids(yan)
        worker_b = sessions("worker.b")
        made = worker_b.post(plans_path(), json={"kind": "child_in_need", "title": "Council B plan"})
        assert made.status_code == 201, made.text
        assert sessions("parent.b").get(plans_path()).status_code == 200
        admin.ok("PUT", "/api/catalogue/councils/council-a/tools/plans",
                 json={"audiences": ALL_AUDIENCES, "scopes": ["cases:read", "plans:read", "plans:write"]})
        wait_for(lambda: yan.get(f"{plans_path()}/{journey['yan']}").status_code == 200, 15)
