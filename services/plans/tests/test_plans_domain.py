"""The plans' rules with a fake store: visibility, lifecycle, versions and diffs, the young person's say."""

from __future__ import annotations

import jsonschema
import pytest
from plans_fakes import FakeAudit, FakePlanStore, TickingClock, counter_ids

from chassis.identity import Identity
from chassis.outbox import make_envelope, validate_event
from chassis.problems import Conflict, Forbidden, InvalidInput, NotFound, Unprocessable
from plans.domain import (
    AREAS,
    Plans,
    Viewer,
    can_see,
    default_audience,
    diff_contents,
    normalise_audience,
    normalise_content,
    sees_audience_details,
)

COUNCIL, CASE = "council-a", "case-1"
ROLES = {"sw": "social_worker", "mgr": "manager", "mum": "parent", "dad": "parent", "gran": "carer",
         "yan": "child", "yp": "young_person"}


def who(person_id: str, cases: dict[str, str] | None = None, council: str = COUNCIL) -> Identity:
    return Identity(subject=person_id, actor="person", council_id=council,
                    cases={CASE: ROLES[person_id]} if cases is None else cases)


def action(**overrides):
    out = {"what": "Visit two colleges", "who": {"role": "Personal adviser"}, "by_when": "2026-05-01"}
    out.update(overrides)
    return out


def goal(**overrides):
    out = {"title": "Start a course in September", "description": "Catering or motor mechanics",
           "actions": [action()]}
    out.update(overrides)
    return out


def new_plan(**overrides):
    out = {"kind": "pathway", "title": "Yan's pathway plan", "subject_person_id": "yan", "review_due": "2026-09-01",
           "sections": [{"area": "education_training_employment", "goals": [goal()]}]}
    out.update(overrides)
    return out


@pytest.fixture
def env():
    store, audit = FakePlanStore(), FakeAudit()
    return Plans(store, audit, clock=TickingClock(), make_id=counter_ids()), store, audit


def published_plan(plans: Plans, **overrides) -> dict:
    plan, _ = plans.create_plan(who("sw"), CASE, new_plan(**overrides))
    plan, _ = plans.publish(who("sw"), CASE, plan["plan_id"])
    return plan


AUDIENCES = [{"kind": "case", "people": [], "exclude": []},
             {"kind": "staff", "people": [], "exclude": []},
             {"kind": "named", "people": ["yan"], "exclude": []},
             {"kind": "case", "people": [], "exclude": ["dad", "mgr"]},
             {"kind": "named", "people": ["yan", "mum"], "exclude": ["mum"]}]


class TestVisibilityRule:
    @pytest.mark.parametrize("person_id", sorted(ROLES))
    @pytest.mark.parametrize("audience_n", range(5))
    @pytest.mark.parametrize("version", [0, 1])
    def test_family_sees_only_published_plans_in_their_audience_staff_all_but_excluded(
            self, person_id, audience_n, version):
        audience = AUDIENCES[audience_n]
        plan = {"audience": audience, "current_version": version, "created_by": {"person_id": "sw2"}}
        role = ROLES[person_id]
        excluded = person_id in audience["exclude"]
        if role in ("social_worker", "manager"):
            expected = not excluded
        else:
            expected = version >= 1 and not excluded and (
                audience["kind"] == "case" or (audience["kind"] == "named" and person_id in audience["people"]))
        assert can_see(plan, person_id, role) is expected

    def test_the_author_always_sees_their_plan_and_nobody_without_a_role_does(self):
        plan = {"audience": {"kind": "named", "people": ["yan"], "exclude": ["sw"]}, "current_version": 0,
                "created_by": {"person_id": "sw"}}
        assert can_see(plan, "sw", "social_worker")
        assert not can_see(plan, "yan", None)

    def test_default_audience_is_the_young_person_not_parents(self):
        assert default_audience("yan") == {"kind": "named", "people": ["yan"], "exclude": []}
        assert default_audience(None) == {"kind": "staff", "people": [], "exclude": []}
        plan = {"audience": default_audience("yan"), "current_version": 1, "created_by": {"person_id": "sw"}}
        assert [p for p in ROLES if can_see(plan, p, ROLES[p])] == ["sw", "mgr", "yan"]

    def test_only_staff_and_the_author_see_who_is_named(self):
        plan = {"created_by": {"person_id": "sw"}}
        assert sees_audience_details(plan, Viewer("mgr", COUNCIL, "manager"))
        assert not sees_audience_details(plan, Viewer("yan", COUNCIL, "child"))

    @pytest.mark.parametrize("raw", [{"kind": "named"}, {"kind": "case", "people": ["x"]}, {"kind": "everyone"}])
    def test_bad_audiences_are_refused(self, raw):
        with pytest.raises(InvalidInput):
            normalise_audience(raw)


class TestContent:
    def test_ids_are_given_to_new_goals_and_actions_and_kept_for_known_ones(self):
        content = normalise_content({"sections": [
            {"area": "health", "goals": [goal(goal_id="g-known", actions=[action(action_id="a-known"), action()])]},
            {"area": "accommodation", "goals": [goal()]}]}, counter_ids("n"))
        assert [s["area"] for s in content["sections"]] == ["accommodation", "health"]  # the order of AREAS
        health = content["sections"][1]["goals"][0]
        assert health["goal_id"] == "g-known"
        assert [a["action_id"] for a in health["actions"]] == ["a-known", "n0001"]
        assert health["actions"][1]["status"] == "not_started"
        assert content["review_due"] is None

    @pytest.mark.parametrize("raw", [
        {"sections": [{"area": "health"}, {"area": "health"}]},
        {"sections": [{"area": "hobbies"}]},
        {"sections": [{"area": "health", "goals": [goal(goal_id="g"), goal(goal_id="g")]}]},
        {"sections": [{"area": "health", "goals": [goal(actions=[action(action_id="a")])]},
                      {"area": "money", "goals": [goal(actions=[action(action_id="a")])]}]},
        {"sections": [{"area": "health", "goals": [goal(actions=[action(who={})])]}]},
        {"sections": [{"area": "health", "goals": [goal(actions=[action(who={"role": "  "})])]}]},
        {"sections": [{"area": "health", "goals": [goal(actions=[action(by_when="2026-02-30")])]}]},
        {"sections": [{"area": "health", "goals": [goal(actions=[action(status="maybe")])]}]},
        {"review_due": "next week", "sections": []},
    ])
    def test_bad_content_is_refused(self, raw):
        with pytest.raises(InvalidInput):
            normalise_content(raw)

    def test_every_area_of_the_issue_is_known(self):
        assert AREAS == ("accommodation", "education_training_employment", "health", "money",
                         "relationships_family", "identity", "practical_skills")


class TestCreateAndPublish:
    def test_social_worker_starts_a_draft_for_the_young_person(self, env):
        plans, store, audit = env
        plan, _ = plans.create_plan(who("sw"), CASE, new_plan())
        assert plan["current_version"] == 0 and plan["draft"]["review_due"] == "2026-09-01"
        assert plan["audience"] == {"kind": "named", "people": ["yan"], "exclude": []}
        assert plan["created_by"] == {"person_id": "sw", "role": "social_worker"}
        # a draft is for staff: the young person does not see it yet
        with pytest.raises(NotFound):
            plans.get_plan(who("yan"), CASE, plan["plan_id"])
        assert [p["plan_id"] for p in plans.list_plans(who("yan"), CASE)[0]] == []
        assert audit.records[0]["action"] == "plans.plan.create" and audit.records[0]["outcome"] == "ok"
        assert store.events == []

    @pytest.mark.parametrize("person_id,cases,council,error", [
        ("mum", None, COUNCIL, Forbidden),
        ("yan", None, COUNCIL, Forbidden),
        ("sw", {"other-case": "social_worker"}, COUNCIL, NotFound),
        ("sw", {CASE: "social_worker"}, None, NotFound),
    ])
    def test_only_staff_on_the_case_create_plans(self, env, person_id, cases, council, error):
        plans, store, audit = env
        with pytest.raises(error):
            plans.create_plan(who(person_id, cases, council), CASE, new_plan())
        assert store.plans == {}
        assert audit.records[-1]["outcome"] == error.slug

    def test_publishing_makes_version_one_and_tells_the_timeline_with_the_plan_audience(self, env):
        plans, store, _ = env
        plan = published_plan(plans)
        assert plan["current_version"] == 1 and plan["draft"] is None
        assert plan["published"]["number"] == 1 and plan["review_due"] == "2026-09-01"
        [event] = store.events
        assert event["type"] == "plan_published"
        assert event["data"]["version"] == 1 and event["data"]["subject_person_id"] == "yan"
        assert event["story"]["kind"] == "plan" and event["story"]["case_id"] == CASE
        assert event["story"]["audience"] == {"kind": "named", "people": ["yan"], "exclude": []}
        assert "published (version 1)" in event["story"]["title"]
        assert plans.get_plan(who("yan"), CASE, plan["plan_id"])[0]["published"]["number"] == 1
        with pytest.raises(NotFound):
            plans.get_plan(who("mum"), CASE, plan["plan_id"])

    @pytest.mark.parametrize("overrides,error", [
        ({"review_due": None}, Unprocessable),
        ({"sections": []}, Unprocessable),
    ])
    def test_a_plan_without_a_review_date_or_goals_is_not_published(self, env, overrides, error):
        plans, store, _ = env
        data = new_plan(**overrides)
        data = {k: v for k, v in data.items() if v is not None}
        plan, _ = plans.create_plan(who("sw"), CASE, data)
        with pytest.raises(error):
            plans.publish(who("sw"), CASE, plan["plan_id"])
        assert store.stored["version"] == [] and store.events == []

    def test_publishing_twice_without_a_draft_is_a_conflict(self, env):
        plans, store, _ = env
        plan = published_plan(plans)
        with pytest.raises(Conflict):
            plans.publish(who("sw"), CASE, plan["plan_id"])
        assert len(store.events) == 1

    def test_family_cannot_publish_or_edit_what_they_see_and_get_404_for_what_they_dont(self, env):
        plans, _, _ = env
        plan = published_plan(plans)
        with pytest.raises(Forbidden):
            plans.save_draft(who("yan"), CASE, plan["plan_id"], {"sections": []})
        with pytest.raises(NotFound):
            plans.publish(who("mum"), CASE, plan["plan_id"])
        with pytest.raises(NotFound):
            plans.change_plan(who("dad"), CASE, plan["plan_id"], {"title": "x"})

    def test_staff_open_the_plan_to_the_case_with_an_exclusion(self, env):
        plans, _, _ = env
        plan = published_plan(plans)
        plans.change_plan(who("sw"), CASE, plan["plan_id"],
                          {"audience": {"kind": "case", "exclude": ["dad"]}})
        assert plans.get_plan(who("mum"), CASE, plan["plan_id"])[0]["plan_id"] == plan["plan_id"]
        with pytest.raises(NotFound):
            plans.get_plan(who("dad"), CASE, plan["plan_id"])

    def test_excluded_staff_do_not_see_the_plan(self, env):
        plans, _, _ = env
        plan = published_plan(plans, audience={"kind": "named", "people": ["yan"], "exclude": ["mgr"]})
        with pytest.raises(NotFound):
            plans.get_plan(who("mgr"), CASE, plan["plan_id"])

    def test_another_council_never_sees_the_plan(self, env):
        plans, _, _ = env
        plan = published_plan(plans)
        with pytest.raises(NotFound):
            plans.get_plan(who("sw", council="council-b"), CASE, plan["plan_id"])


class TestVersionsAndDiff:
    def test_second_version_keeps_the_first_and_the_diff_shows_field_changes(self, env):
        plans, _, _ = env
        plan = published_plan(plans)
        first = plan["published"]["sections"]
        kept_goal = first[0]["goals"][0]
        kept_action = kept_goal["actions"][0]
        plans.save_draft(who("sw"), CASE, plan["plan_id"], {"review_due": "2026-12-01", "sections": [
            {"area": "education_training_employment", "goals": [{
                "goal_id": kept_goal["goal_id"], "title": kept_goal["title"], "description": "Catering",
                "actions": [{**kept_action, "status": "done"}, action(what="Apply for a bursary")]}]},
            {"area": "money", "goals": [goal(title="Open a bank account", actions=[])]},
        ]})
        # the young person still sees version 1 while the draft is open
        seen, _ = plans.get_plan(who("yan"), CASE, plan["plan_id"])
        assert seen["published"]["number"] == 1 and seen["published"]["sections"] == first
        plans.publish(who("sw"), CASE, plan["plan_id"])
        versions = plans.list_versions(who("yan"), CASE, plan["plan_id"])
        assert [v["number"] for v in versions] == [1, 2]
        assert plans.get_version(who("yan"), CASE, plan["plan_id"], 1)["sections"] == first
        diff = plans.diff(who("yan"), CASE, plan["plan_id"], 1, 2)
        assert [g["title"] for g in diff["goals"]["added"]] == ["Open a bank account"]
        assert diff["goals"]["removed"] == []
        assert diff["goals"]["changed"] == [{
            "goal_id": kept_goal["goal_id"], "area": "education_training_employment", "title": kept_goal["title"],
            "changes": [{"field": "description", "before": "Catering or motor mechanics", "after": "Catering"}]}]
        assert [a["what"] for a in diff["actions"]["added"]] == ["Apply for a bursary"]
        assert diff["actions"]["changed"][0]["changes"] == [
            {"field": "status", "before": "not_started", "after": "done"}]
        assert diff["review_due"] == {"before": "2026-09-01", "after": "2026-12-01"}
        back = plans.diff(who("sw"), CASE, plan["plan_id"], 2, 1)
        assert [g["title"] for g in back["goals"]["removed"]] == ["Open a bank account"]
        with pytest.raises(NotFound):
            plans.get_version(who("yan"), CASE, plan["plan_id"], 3)
        with pytest.raises(NotFound):
            plans.diff(who("mum"), CASE, plan["plan_id"], 1, 2)

    def test_diff_of_moved_and_reassigned_action(self):
        old = normalise_content({"sections": [{"area": "health", "goals": [
            goal(goal_id="g1", actions=[action(action_id="a1")]), goal(goal_id="g2", actions=[])]}]})
        new = normalise_content({"sections": [{"area": "identity", "goals": [
            goal(goal_id="g1", actions=[]),
            goal(goal_id="g2", actions=[action(action_id="a1", who={"person_id": "sw"})])]}]})
        diff = diff_contents(old, new)
        assert {c["field"] for g in diff["goals"]["changed"] for c in g["changes"]} == {"area"}
        [changed] = diff["actions"]["changed"]
        assert changed["changes"] == [{"field": "goal_id", "before": "g1", "after": "g2"},
                                      {"field": "who", "before": {"role": "Personal adviser"},
                                       "after": {"person_id": "sw"}}]
        assert diff_contents(old, old) == {"goals": {"added": [], "removed": [], "changed": []},
                                           "actions": {"added": [], "removed": [], "changed": []},
                                           "review_due": None}


class TestReview:
    def test_review_records_the_outcome_and_opens_the_next_draft_from_the_published_content(self, env):
        plans, store, _ = env
        plan = published_plan(plans)
        review = plans.review(who("sw"), CASE, plan["plan_id"], {
            "outcome_notes": "Going well; college place confirmed.", "reviewed_on": "2026-08-30",
            "next_review_due": "2027-02-28"})
        assert review["version"] == 1 and review["review_due"] == "2026-09-01"
        now, _ = plans.get_plan(who("sw"), CASE, plan["plan_id"])
        assert now["draft"]["sections"] == now["published"]["sections"]
        assert now["draft"]["review_due"] == "2027-02-28"
        assert now["last_review"] == {"review_id": review["review_id"], "version": 1, "reviewed_on": "2026-08-30"}
        event = store.events[-1]
        assert event["type"] == "plan_reviewed" and event["story"]["body"] == "Going well; college place confirmed."
        assert event["story"]["audience"] == plan["audience"]
        assert [r["review_id"] for r in plans.list_reviews(who("yan"), CASE, plan["plan_id"])] == [review["review_id"]]
        # the next draft is open: a second review waits until it is published
        with pytest.raises(Conflict):
            plans.review(who("sw"), CASE, plan["plan_id"], {"outcome_notes": "again"})
        plans.publish(who("sw"), CASE, plan["plan_id"])
        assert [v["number"] for v in plans.list_versions(who("sw"), CASE, plan["plan_id"])] == [1, 2]

    def test_a_draft_never_published_is_not_reviewed_and_family_cannot_review(self, env):
        plans, _, _ = env
        draft, _ = plans.create_plan(who("sw"), CASE, new_plan())
        with pytest.raises(Conflict):
            plans.review(who("sw"), CASE, draft["plan_id"], {"outcome_notes": "n"})
        plan = published_plan(plans)
        with pytest.raises(Forbidden):
            plans.review(who("yan"), CASE, plan["plan_id"], {"outcome_notes": "n"})


class TestTheYoungPersonsSay:
    def test_agree_and_disagree_with_reasons_are_dated_per_version_and_staff_see_them(self, env):
        plans, store, _ = env
        plan = published_plan(plans)
        agreed = plans.record_agreement(who("yan"), CASE, plan["plan_id"], 1, {"agreed": True})
        assert agreed["agreed"] is True and agreed["recorded_on"] == "2026-03-01"
        with pytest.raises(InvalidInput):
            plans.record_agreement(who("yan"), CASE, plan["plan_id"], 1, {"agreed": False, "reason": "  "})
        disagreed = plans.record_agreement(who("yan"), CASE, plan["plan_id"], 1,
                                           {"agreed": False, "reason": "I want to stay near my sister."})
        assert [e["data"]["agreed"] for e in store.events if e["type"] == "plan_agreed"] == [True, False]
        assert store.events[-1]["story"]["title"].startswith("Not agreed:")
        assert "sister" not in store.events[-1]["story"]["title"] + store.events[-1]["story"]["body"]
        staff_view = plans.list_agreements(who("sw"), CASE, plan["plan_id"], 1)
        assert [a["agreement_id"] for a in staff_view] == [agreed["agreement_id"], disagreed["agreement_id"]]
        assert staff_view[1]["reason"] == "I want to stay near my sister."

    def test_staff_do_not_agree_for_the_young_person_and_old_versions_are_closed(self, env):
        plans, _, _ = env
        plan = published_plan(plans)
        with pytest.raises(Forbidden):
            plans.record_agreement(who("sw"), CASE, plan["plan_id"], 1, {"agreed": True})
        with pytest.raises(NotFound):
            plans.record_agreement(who("mum"), CASE, plan["plan_id"], 1, {"agreed": True})
        with pytest.raises(NotFound):
            plans.record_agreement(who("yan"), CASE, plan["plan_id"], 2, {"agreed": True})
        plans.save_draft(who("sw"), CASE, plan["plan_id"], {"review_due": "2026-10-01", "sections": [
            {"area": "health", "goals": [goal()]}]})
        plans.publish(who("sw"), CASE, plan["plan_id"])
        with pytest.raises(Conflict):
            plans.record_agreement(who("yan"), CASE, plan["plan_id"], 1, {"agreed": True})

    def test_family_members_see_only_their_own_answers(self, env):
        plans, _, _ = env
        plan = published_plan(plans, audience={"kind": "case"})
        plans.record_agreement(who("yan"), CASE, plan["plan_id"], 1, {"agreed": False, "reason": "private"})
        plans.record_agreement(who("mum"), CASE, plan["plan_id"], 1, {"agreed": True})
        assert [a["person_id"] for a in plans.list_agreements(who("mum"), CASE, plan["plan_id"], 1)] == ["mum"]
        assert len(plans.list_agreements(who("mgr"), CASE, plan["plan_id"], 1)) == 2

    def test_comments_on_goals_of_the_published_plan(self, env):
        plans, store, _ = env
        plan = published_plan(plans)
        goal_id = plan["published"]["sections"][0]["goals"][0]["goal_id"]
        plans.add_comment(who("yan"), CASE, plan["plan_id"], goal_id, "Can it be motor mechanics?")
        plans.add_comment(who("sw"), CASE, plan["plan_id"], goal_id, "Yes, let's look at both.")
        comments = plans.list_comments(who("sw"), CASE, plan["plan_id"], goal_id)
        assert [(c["author"]["person_id"], c["version"]) for c in comments] == [("yan", 1), ("sw", 1)]
        with pytest.raises(NotFound):
            plans.add_comment(who("yan"), CASE, plan["plan_id"], "no-such-goal", "hello")
        with pytest.raises(NotFound):
            plans.add_comment(who("mum"), CASE, plan["plan_id"], goal_id, "hello")
        with pytest.raises(NotFound):
            plans.list_comments(who("dad"), CASE, plan["plan_id"], goal_id)
        assert len(store.stored["comment"]) == 2 and all(e["type"] == "plan_published" for e in store.events)


def test_every_operation_is_audited_allowed_or_not(env):
    plans, _, audit = env
    plan = published_plan(plans)
    with pytest.raises(NotFound):
        plans.get_plan(who("mum"), CASE, plan["plan_id"])
    actions = [(r["action"], r["outcome"]) for r in audit.records]
    assert actions == [("plans.plan.create", "ok"), ("plans.plan.publish", "ok"), ("plans.plan.read", "not-found")]
    assert all(r["council_id"] == COUNCIL and r["case_id"] == CASE for r in audit.records)


def test_every_event_the_domain_makes_keeps_its_contract(env):
    plans, store, _ = env
    plan = published_plan(plans)
    plans.record_agreement(who("yan"), CASE, plan["plan_id"], 1, {"agreed": False, "reason": "Too soon"})
    plans.review(who("sw"), CASE, plan["plan_id"], {"outcome_notes": "Reviewed"})
    draftless = published_plan(plans, subject_person_id=None, audience={"kind": "case", "exclude": ["dad"]})
    plans.review(who("sw"), CASE, draftless["plan_id"], {"outcome_notes": "x" * 10000, "next_review_due": "2027-01-01"})
    assert [e["type"] for e in store.events] == ["plan_published", "plan_agreed", "plan_reviewed", "plan_published",
                                                 "plan_reviewed"]
    for event in store.events:
        validate_event(make_envelope("plans", event["type"], event["council_id"], event["data"], event["story"]))
    broken = store.events[0]
    with pytest.raises(jsonschema.ValidationError):
        validate_event(make_envelope("plans", broken["type"], COUNCIL, {**broken["data"], "name": "Yan"},
                                     broken["story"]))
