"""The referrals' rules with a fake store: visibility, validation, lifecycle, history, events, settings."""

from __future__ import annotations

import itertools
from typing import ClassVar

import pytest
from referrals_fakes import (
    CASE,
    COUNCIL,
    OTHER_COUNCIL,
    ROLES,
    Clock,
    FakeAudit,
    FakeStore,
    form,
    identity,
)

from chassis.problems import Conflict, Forbidden, InvalidInput, NotFound, Unprocessable
from referrals.domain import DEFAULT_SERVICES, TRANSITIONS, Referrals, can_see


@pytest.fixture
def store():
    s = FakeStore()
    s.people[(COUNCIL, CASE)] = dict(ROLES)
    return s


@pytest.fixture
def audit():
    return FakeAudit()


@pytest.fixture
def referrals(store, audit):
    return Referrals(store, audit, clock=Clock())


def make(referrals, who="sw", **overrides):
    referral, _ = referrals.create_referral(identity(who), CASE, form(**overrides))
    return referral


def walk(referrals, referral_id, *steps):
    """Apply (person, action, body) steps in order; returns the last referral."""
    out = None
    for person, action, body in steps:
        out, _ = referrals.move(identity(person), CASE, referral_id, action, body)
    return out


class TestCanSee:
    AUDIENCES: ClassVar = [{"kind": "staff", "people": [], "exclude": []}, {"kind": "case", "people": [], "exclude": []},
                 {"kind": "named", "people": ["mum"], "exclude": []},
                 {"kind": "case", "people": [], "exclude": ["dad", "mgr"]}]

    @pytest.mark.parametrize("audience,person", list(itertools.product(range(4), sorted(ROLES))))
    def test_matrix(self, audience, person):
        referral = {"referrer": {"person_id": "sw", "role": "social_worker"}, "audience": self.AUDIENCES[audience]}
        role = ROLES[person]
        seen = can_see(referral, person, role)
        a = self.AUDIENCES[audience]
        if person == "sw":
            expected = True
        elif person in a["exclude"]:
            expected = False
        elif role in ("social_worker", "manager"):
            expected = True
        else:
            expected = a["kind"] == "case" or (a["kind"] == "named" and person in a["people"])
        assert seen is expected

    def test_nobody_without_a_role_sees_anything(self):
        assert not can_see({"referrer": {"person_id": "sw"}, "audience": self.AUDIENCES[1]}, "x", None)


class TestCreateReferral:
    def test_staff_make_a_draft_for_staff_only_with_history(self, referrals, audit):
        referral = make(referrals)
        assert referral["status"] == "draft" and referral["audience"]["kind"] == "staff"
        assert referral["referrer"] == {"person_id": "sw", "role": "social_worker"}
        assert [h["action"] for h in referral["history"]] == ["create"]
        assert audit.records[-1]["action"] == "referrals.referral.create" and audit.records[-1]["outcome"] == "ok"

    @pytest.mark.parametrize("person", ["mum", "gran", "kid", "yp"])
    def test_family_cannot_make_one(self, referrals, person):
        with pytest.raises(Forbidden):
            make(referrals, who=person)

    def test_not_on_the_case_is_404(self, referrals, store):
        with pytest.raises(NotFound):
            referrals.create_referral(identity("sw", cases={"case-2": "social_worker"}), CASE, form())
        with pytest.raises(NotFound):
            referrals.create_referral(identity("sw", council=OTHER_COUNCIL, cases={}), CASE, form())
        assert store.referrals == {}

    @pytest.mark.parametrize("overrides,error", [
        ({"parents_consented": False, "no_consent_reason": None}, Unprocessable),
        ({"parents_consented": False, "no_consent_reason": "   "}, Unprocessable),
        ({"parents_informed": False, "parents_consented": True}, Unprocessable),
        ({"subject_person_id": "stranger"}, Unprocessable),
        ({"subject_person_id": "sw"}, Unprocessable),  # staff are not who a referral is about
        ({"service": "Astrology"}, Unprocessable),
        ({"urgency": "whenever"}, InvalidInput),
        ({"reasons": "  "}, Unprocessable),
        ({"attachments": ["not an id!"]}, InvalidInput),
        ({"secret": "x"}, InvalidInput),
    ])
    def test_refused_input_stores_nothing(self, referrals, store, overrides, error):
        with pytest.raises(error):
            make(referrals, **overrides)
        assert store.referrals == {}

    def test_consent_given_drops_any_reason(self, referrals):
        referral = make(referrals, parents_consented=True, no_consent_reason="stale")
        assert referral["no_consent_reason"] is None

    def test_services_follow_the_councils_list(self, referrals, store):
        admin = identity("adm", cases={}, roles=("council_admin",))
        referrals.put_services(admin, ["Family Hub", "  CAMHS "])
        assert referrals.get_services(identity("sw")) == ["Family Hub", "CAMHS"]
        assert make(referrals, service="Family Hub")["service"] == "Family Hub"
        with pytest.raises(Unprocessable):
            make(referrals, service="Early Help")


class TestSettings:
    def test_default_services(self, referrals):
        assert referrals.get_services(identity("sw")) == list(DEFAULT_SERVICES)

    @pytest.mark.parametrize("who", ["sw", "mgr", "mum"])
    def test_only_a_council_admin_changes_the_list(self, referrals, who):
        with pytest.raises(Forbidden):
            referrals.put_services(identity(who), ["X"])

    def test_family_cannot_read_settings(self, referrals):
        with pytest.raises(Forbidden):
            referrals.get_services(identity("mum"))

    @pytest.mark.parametrize("services", [[], ["A", "a"], [""], ["x" * 101], ["s"] * 51])
    def test_bad_lists_are_refused(self, referrals, services):
        with pytest.raises(InvalidInput):
            referrals.put_services(identity("adm", cases={}, roles=("council_admin",)), services)

    def test_each_council_has_its_own_list(self, referrals):
        referrals.put_services(identity("adm", cases={}, roles=("council_admin",)), ["Only A"])
        assert referrals.get_services(identity("swb", council=OTHER_COUNCIL, cases={"case-1": "social_worker"})) \
            == list(DEFAULT_SERVICES)


class TestLifecycle:
    def test_submit_accept_close_with_history_and_events(self, referrals, store):
        referral = make(referrals)
        done = walk(referrals, referral["referral_id"], ("sw", "submit", {}), ("mgr", "accept", {"note": "ok"}),
                    ("mgr", "close", {}))
        assert done["status"] == "closed"
        assert [(h["action"], h["from_status"], h["to_status"], h["by"]["person_id"]) for h in done["history"]] == [
            ("create", None, "draft", "sw"), ("submit", "draft", "submitted", "sw"),
            ("accept", "submitted", "accepted", "mgr"), ("close", "accepted", "closed", "mgr")]
        assert all(a["at"] < b["at"] for a, b in zip(done["history"], done["history"][1:]))
        assert [(e[1], e[2]["status"]) for e in store.events] == [
            ("referral_submitted", "submitted"), ("referral_status_changed", "accepted"),
            ("referral_status_changed", "closed")]
        for _, _, data, story in store.events:
            assert story["kind"] == "referral" and story["audience"]["kind"] == "staff"
            assert story["case_id"] == CASE and "CAMHS" in story["title"]
            assert "Low mood" not in str(data) + str(story)  # the reasons stay on the referral

    def test_request_info_then_answer_goes_back_to_submitted(self, referrals):
        referral = make(referrals)
        out = walk(referrals, referral["referral_id"], ("sw", "submit", {}),
                   ("mgr", "request_info", {"question": "Is there a GP letter?"}),
                   ("sw", "answer_info", {"answer": "Yes, doc-3."}), ("mgr", "decline", {"reason": "Not met"}))
        assert out["status"] == "declined" and out["decision"]["reason"] == "Not met"
        assert out["info_requests"][0]["question"] == "Is there a GP letter?"
        assert out["info_requests"][0]["answer"] == "Yes, doc-3."
        assert [h["to_status"] for h in out["history"]] == ["draft", "submitted", "info_requested", "submitted",
                                                            "declined"]

    def test_decline_story_carries_the_reason(self, referrals, store):
        referral = make(referrals)
        walk(referrals, referral["referral_id"], ("sw", "submit", {}), ("mgr", "decline", {"reason": "Threshold not met"}))
        assert store.events[-1][3]["body"] == "Threshold not met"

    # every (from status, action) pair that is not allowed answers 409 and changes nothing
    PATHS: ClassVar = {
        "draft": [],
        "submitted": [("sw", "submit", {})],
        "info_requested": [("sw", "submit", {}), ("mgr", "request_info", {"question": "q"})],
        "accepted": [("sw", "submit", {}), ("mgr", "accept", {})],
        "declined": [("sw", "submit", {}), ("mgr", "decline", {"reason": "r"})],
        "closed": [("sw", "submit", {}), ("mgr", "accept", {}), ("mgr", "close", {})],
    }
    BODIES: ClassVar = {"decline": {"reason": "r"}, "request_info": {"question": "q"}, "answer_info": {"answer": "a"}}

    @pytest.mark.parametrize("status,action", list(itertools.product(PATHS, TRANSITIONS)))
    def test_transition_matrix(self, referrals, store, status, action):
        referral = make(referrals)
        walk(referrals, referral["referral_id"], *self.PATHS[status])
        before = store.referrals[referral["referral_id"]]
        person = "sw" if action in ("submit", "answer_info") else "mgr"
        if status in TRANSITIONS[action].sources:
            after, _ = referrals.move(identity(person), CASE, referral["referral_id"], action,
                                      self.BODIES.get(action, {}))
            assert after["status"] == TRANSITIONS[action].target
            assert len(after["history"]) == len(before["history"]) + 1
        else:
            events = len(store.events)
            with pytest.raises(Conflict):
                referrals.move(identity(person), CASE, referral["referral_id"], action, self.BODIES.get(action, {}))
            assert store.referrals[referral["referral_id"]] == before and len(store.events) == events

    @pytest.mark.parametrize("action", ["accept", "decline", "request_info"])
    def test_a_social_worker_is_not_the_receiving_team(self, referrals, action):
        referral = make(referrals)
        walk(referrals, referral["referral_id"], ("sw", "submit", {}))
        with pytest.raises(Forbidden):
            referrals.move(identity("sw"), CASE, referral["referral_id"], action, self.BODIES.get(action, {}))

    def test_staff_with_council_role_manager_is_the_receiving_team(self, referrals):
        referral = make(referrals)
        walk(referrals, referral["referral_id"], ("sw", "submit", {}))
        lead = identity("lead", cases={CASE: "social_worker"}, roles=("manager",))
        out, _ = referrals.move(lead, CASE, referral["referral_id"], "accept", {})
        assert out["status"] == "accepted"

    def test_only_the_referrer_answers_a_request(self, referrals):
        referral = make(referrals)
        walk(referrals, referral["referral_id"], ("sw", "submit", {}), ("mgr", "request_info", {"question": "q"}))
        with pytest.raises(Forbidden):
            referrals.move(identity("mgr"), CASE, referral["referral_id"], "answer_info", {"answer": "a"})

    def test_decline_needs_a_reason(self, referrals):
        referral = make(referrals)
        walk(referrals, referral["referral_id"], ("sw", "submit", {}))
        with pytest.raises(Unprocessable):
            referrals.move(identity("mgr"), CASE, referral["referral_id"], "decline", {"reason": " "})

    def test_family_members_cannot_see_or_move_an_unshared_referral(self, referrals):
        referral = make(referrals)
        for person in ("mum", "dad", "gran", "kid", "yp"):
            with pytest.raises(NotFound):
                referrals.get_referral(identity(person), CASE, referral["referral_id"])
            with pytest.raises(NotFound):
                referrals.move(identity(person), CASE, referral["referral_id"], "submit", {})


class TestSharing:
    def test_staff_share_with_the_case_excluding_a_parent(self, referrals):
        referral = make(referrals)
        referrals.share(identity("sw"), CASE, referral["referral_id"],
                        {"kind": "case", "people": [], "exclude": ["dad"]})
        assert referrals.get_referral(identity("mum"), CASE, referral["referral_id"])[0]["service"] == "CAMHS"
        with pytest.raises(NotFound):
            referrals.get_referral(identity("dad"), CASE, referral["referral_id"])
        assert [r["referral_id"] for r in referrals.list_referrals(identity("kid"), CASE)[0]] == [referral["referral_id"]]

    def test_family_cannot_share(self, referrals):
        referral = make(referrals)
        referrals.share(identity("sw"), CASE, referral["referral_id"], {"kind": "case"})
        with pytest.raises(Forbidden):
            referrals.share(identity("mum"), CASE, referral["referral_id"], {"kind": "case"})

    def test_referrer_cannot_be_excluded(self, referrals):
        referral = make(referrals)
        with pytest.raises(Unprocessable):
            referrals.share(identity("mgr"), CASE, referral["referral_id"], {"kind": "staff", "exclude": ["sw"]})


class TestEditDraft:
    def test_a_draft_changes_and_a_submitted_one_does_not(self, referrals):
        referral = make(referrals)
        edited, _ = referrals.edit_draft(identity("sw"), CASE, referral["referral_id"], {"urgency": "urgent"})
        assert edited["urgency"] == "urgent" and edited["history"][-1]["action"] == "edit"
        walk(referrals, referral["referral_id"], ("sw", "submit", {}))
        with pytest.raises(Conflict):
            referrals.edit_draft(identity("sw"), CASE, referral["referral_id"], {"urgency": "routine"})
