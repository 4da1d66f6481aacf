"""The guided conversation with a fake store: questions from the script, short answers, going back,
resuming, idempotent steps, and the referral it makes equal to the form's."""

from __future__ import annotations

import copy

import pytest
from referrals_fakes import (
    CASE,
    COUNCIL,
    ROLES,
    Clock,
    FakeAudit,
    FakeStore,
    comparable,
    form,
    identity,
)

from chassis.problems import Conflict, Forbidden, InvalidInput, NotFound
from referrals.conversation import Conversations, check_script, default_script
from referrals.domain import Referrals

SW = identity("sw")
ADMIN = identity("adm", cases={}, roles=("council_admin",))


@pytest.fixture
def store():
    s = FakeStore()
    s.people[(COUNCIL, CASE)] = dict(ROLES)
    return s


@pytest.fixture
def referrals(store):
    return Referrals(store, FakeAudit(), clock=Clock())


@pytest.fixture
def chat(referrals):
    return Conversations(referrals)


def say(chat, view, answer, who=SW):
    return chat.answer(who, view["conversation_id"], view["step"], answer)


# the people of case-1 listed for "who is it about", sorted: dad, gran, kid, mum, yp -> kid is 3
FORM_ANSWERS = ["3", "CAMHS", "s", "Low mood for several months.", "Not sleeping; missing school.", "y", "no",
                "Mum is worried about stigma.", "doc-1, doc-2", "yes"]


class TestTheScriptedConversation:
    def test_first_question_lists_the_case_family_and_comes_from_the_script(self, chat):
        view = chat.start(SW, CASE)
        assert view["question"]["id"] == "subject" and view["step"] == 0
        assert [c["label"] for c in view["question"]["choices"]] == [
            "dad (parent)", "gran (carer)", "kid (child)", "mum (parent)", "yp (young_person)"]

    def test_with_back_and_a_resume_it_makes_the_referral_the_form_makes(self, chat, referrals, store):
        view = chat.start(SW, CASE)
        for answer in FORM_ANSWERS[:4]:
            view = say(chat, view, answer)
        assert view["question"]["id"] == "concerns"
        view = chat.back(SW, view["conversation_id"], view["step"])  # back to reasons
        assert view["question"]["id"] == "reasons"
        assert view["question"]["previous_answer"] == "Low mood for several months."
        view = say(chat, view, "back")  # a back word works as an answer too: now at urgency
        assert view["question"]["id"] == "urgency"
        view = say(chat, view, "2")
        view = say(chat, view, "Low mood for several months.")
        # the phone drops the connection: a new client resumes from the stored state
        view = chat.get(SW, view["conversation_id"])
        assert view["question"]["id"] == "concerns"
        for answer in FORM_ANSWERS[4:9]:
            view = say(chat, view, answer)
        assert view["question"]["id"] == "confirm"
        assert {s["field"]: s["answer"] for s in view["summary"]}["service"] == "CAMHS"
        view = say(chat, view, "yes")
        assert view["status"] == "completed" and view["question"] is None
        made = store.referrals[view["referral_id"]]
        by_form, _ = referrals.create_referral(SW, CASE, form())
        assert comparable(made) == comparable(by_form)

    def test_an_invalid_answer_is_explained_and_asked_again(self, chat):
        view = chat.start(SW, CASE)
        again = say(chat, view, "the neighbour")
        assert again["question"]["id"] == "subject" and again["step"] == view["step"]
        assert "did not understand" in again["explanation"] and "number or the person id" in again["explanation"]
        for answer in FORM_ANSWERS[:3]:
            view = say(chat, view, answer)
        short = say(chat, view, "sad")
        assert short["question"]["id"] == "reasons" and "at least 10 characters" in short["explanation"]

    @pytest.mark.parametrize("answer,value", [("urgent", "urgent"), ("ASAP", "urgent"), ("3", "urgent"),
                                              ("Routine.", "routine"), ("1", "routine"), ("this week", "soon")])
    def test_short_answers_and_synonyms(self, chat, store, answer, value):
        view = chat.start(SW, CASE)
        for a in ["kid", "2"]:
            view = say(chat, view, a)
        view = say(chat, view, answer)
        assert view["question"]["id"] == "reasons"
        assert store.conversations[view["conversation_id"]]["path"][-1]["value"] == value

    def test_parents_not_informed_skips_the_consent_question(self, chat, store):
        view = chat.start(SW, CASE)
        for a in ["kid", "1", "urgent", "Worrying bruises seen at school.", "none", "no"]:
            view = say(chat, view, a)
        assert view["question"]["id"] == "no_consent_reason"
        for a in ["Telling them may put the child at risk.", "none", "y"]:
            view = say(chat, view, a)
        made = store.referrals[view["referral_id"]]
        assert (made["parents_informed"], made["parents_consented"], made["concerns"], made["attachments"]) == \
            (False, False, "", [])


class TestSteps:
    def test_the_same_answer_sent_again_is_not_applied_twice(self, chat, store):
        view = chat.start(SW, CASE)
        first = say(chat, view, "kid")
        replay = chat.answer(SW, view["conversation_id"], view["step"], "kid")
        assert replay == first and len(store.conversations[view["conversation_id"]]["path"]) == 1

    def test_a_stale_step_with_another_answer_is_409(self, chat):
        view = chat.start(SW, CASE)
        say(chat, view, "kid")
        with pytest.raises(Conflict):
            chat.answer(SW, view["conversation_id"], view["step"], "mum")

    def test_confirming_twice_makes_one_referral(self, chat, store):
        view = chat.start(SW, CASE)
        for answer in FORM_ANSWERS[:-1]:
            view = say(chat, view, answer)
        done = say(chat, view, "yes")
        assert chat.answer(SW, view["conversation_id"], view["step"], "yes") == done
        assert len(store.referrals) == 1
        with pytest.raises(Conflict):
            chat.answer(SW, view["conversation_id"], done["step"], "yes")

    def test_back_on_the_first_question_explains(self, chat):
        view = chat.start(SW, CASE)
        again = chat.back(SW, view["conversation_id"], 0)
        assert again["question"]["id"] == "subject" and "first question" in again["explanation"]


class TestWhoTalks:
    @pytest.mark.parametrize("person", ["mum", "kid", "yp"])
    def test_family_cannot_start(self, chat, person):
        with pytest.raises(Forbidden):
            chat.start(identity(person), CASE)

    def test_a_conversation_is_its_starters_only(self, chat):
        view = chat.start(SW, CASE)
        for other in (identity("mgr"), identity("sw", council="council-b", cases={CASE: "social_worker"}),
                      identity("sw", cases={})):
            with pytest.raises(NotFound):
                chat.get(other, view["conversation_id"])


def changed_script() -> dict:
    """A council's own script: urgency first, its own wording and synonyms, no concerns question."""
    script = default_script()
    script["name"] = "Council A quick referral"
    questions = {q["id"]: q for q in script["questions"]}
    questions["urgency"]["prompt"] = "First things first: how soon must they act?"
    questions["urgency"]["choices"][2]["synonyms"].append("blue lights")
    questions["urgency"]["next"] = "subject"
    questions["service"]["next"] = "reasons"
    questions["reasons"]["next"] = "parents_informed"
    script["start"] = "urgency"
    script["questions"] = [q for q in script["questions"] if q["id"] != "concerns"]
    return script


class TestCouncilScripts:
    def test_a_changed_script_changes_the_questions(self, chat, store):
        chat.put_script(ADMIN, changed_script())
        view = chat.start(SW, CASE)
        assert view["question"]["prompt"] == "First things first: how soon must they act?"
        asked = [view["question"]["id"]]
        for answer in ["blue lights", "kid", "CAMHS", "Low mood for several months.", "yes", "yes", "none"]:
            view = say(chat, view, answer)
            asked.append(view["question"]["id"])
        assert asked == ["urgency", "subject", "service", "reasons", "parents_informed", "parents_consented",
                         "attachments", "confirm"]
        view = say(chat, view, "yes")
        assert store.referrals[view["referral_id"]]["urgency"] == "urgent"

    def test_a_running_conversation_keeps_its_script(self, chat):
        view = chat.start(SW, CASE)
        chat.put_script(ADMIN, changed_script())
        assert say(chat, view, "kid")["question"]["id"] == "service"

    def test_only_admins_change_it_and_staff_read_it(self, chat):
        with pytest.raises(Forbidden):
            chat.put_script(SW, default_script())
        assert chat.get_script(SW)["name"] == default_script()["name"]

    def bad(mutate):
        script = default_script()
        mutate(script)
        return script

    @pytest.mark.parametrize("script", [
        bad(lambda s: s.update(start="nowhere")),
        bad(lambda s: s["questions"][0].update(next="nowhere")),
        bad(lambda s: s["questions"][3].update(next="subject")),  # a loop
        bad(lambda s: s["questions"].pop(1)),  # nobody asks for the service
        bad(lambda s: s["questions"][2].update(type="text")),  # urgency as free text
        bad(lambda s: s["questions"][0].update(choices=[{"value": "x", "label": "X"}])),  # two choice sources
        bad(lambda s: s["questions"].append(copy.deepcopy(s["questions"][0]))),  # duplicate id
        bad(lambda s: s["questions"][0].update(colour="red")),
        bad(lambda s: s["questions"][5].update(next=[{"when": {"equals": True}, "goto": "parents_consented"}])),
        {"name": "empty", "start": "a", "questions": []},
        "not a script",
    ])
    def test_broken_scripts_are_refused(self, chat, script):
        with pytest.raises(InvalidInput):
            check_script(script)
        with pytest.raises(InvalidInput):
            chat.put_script(ADMIN, script)
