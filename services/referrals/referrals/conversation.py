"""The guided referral conversation: a rule-driven chat whose questions come from a script in data.

The script (``default_script.json``, or the council's own, stored per council
and checked against ``conversation_script.schema.json`` plus the checks in
``check_script``) says which questions are asked, in which order, how answers
branch and what a valid answer is. Nothing about the questions is in code:
the engine only knows four answer types (choice, yes_no, text, ids).

A conversation keeps its state server-side after every step; each request
carries the step number the client last saw, so a retried request after a
dropped connection is answered from the stored state instead of applied twice.
On confirmation it calls ``Referrals.create_referral`` — the form's function.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from chassis.identity import Identity
from chassis.problems import Conflict, DomainError, InvalidInput, NotFound

from .domain import (
    FIELD_LABELS,
    ID_PATTERN,
    REQUIRED_FIELDS,
    Referrals,
    council_admin_of,
    council_staff_of,
    family_side,
    new_id,
    staff_on,
    viewer_on,
)

HERE = Path(__file__).resolve().parent
CONFIRM = "confirm"
NOT_FOUND = "There is no such conversation, or it is not yours."
YES_WORDS = ("yes", "y", "yeah", "yep", "true")
NO_WORDS = ("no", "n", "nope", "false")
FIELD_TYPES = {
    "subject_person_id": {"choice", "text"},
    "service": {"choice", "text"},
    "urgency": {"choice"},
    "reasons": {"text"},
    "concerns": {"text"},
    "no_consent_reason": {"text"},
    "parents_informed": {"yes_no"},
    "parents_consented": {"yes_no"},
    "attachments": {"ids"},
}


@lru_cache(maxsize=1)
def script_schema() -> dict[str, Any]:
    return json.loads((HERE / "conversation_script.schema.json").read_text())


@lru_cache(maxsize=1)
def _default_script_text() -> str:
    return (HERE / "default_script.json").read_text()


def default_script() -> dict[str, Any]:
    return json.loads(_default_script_text())


def check_script(script: Any) -> dict[str, Any]:
    """The script when it is one the engine can run; InvalidInput saying what is wrong otherwise."""
    validator = jsonschema.Draft202012Validator(script_schema())
    errors = sorted(validator.iter_errors(script), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(the script)"
        raise InvalidInput(f"The conversation script is not valid at {where}: {errors[0].message[:300]}")
    questions = {q["id"]: q for q in script["questions"]}
    if len(questions) != len(script["questions"]):
        raise InvalidInput("Two questions of the script have the same id.")
    if CONFIRM in questions:
        raise InvalidInput("'confirm' is the summary step, not a question id.")
    if script["start"] not in questions:
        raise InvalidInput(f"The script starts at {script['start']!r}, which is not one of its questions.")
    covered: set[str] = set()
    for q in script["questions"]:
        if q["type"] not in FIELD_TYPES[q["field"]]:
            raise InvalidInput(f"Question {q['id']!r}: {q['field']} cannot be asked as {q['type']}.")
        covered.add(q["field"])
        for rule in _rules(q):
            if rule["goto"] != CONFIRM and rule["goto"] not in questions:
                raise InvalidInput(f"Question {q['id']!r} goes to {rule['goto']!r}, which is not a question.")
            covered.update(rule.get("set") or {})
        if isinstance(q["next"], list) and "when" in q["next"][-1]:
            raise InvalidInput(f"Question {q['id']!r}: the last rule of next needs no 'when' (the otherwise).")
    missing = [f for f in REQUIRED_FIELDS if f not in covered]
    if missing:
        raise InvalidInput("The script never asks for: " + ", ".join(missing) + ".")
    _check_acyclic(script["start"], questions)
    return script


def _rules(question: dict[str, Any]) -> list[dict[str, Any]]:
    nxt = question["next"]
    return [{"goto": nxt}] if isinstance(nxt, str) else nxt


def _check_acyclic(start: str, questions: dict[str, dict[str, Any]]) -> None:
    """A path through the script must end at the summary: no question may lead back to itself."""
    state: dict[str, int] = {}

    def visit(qid: str) -> None:
        if qid == CONFIRM:
            return
        if state.get(qid) == 1:
            raise InvalidInput(f"The script loops back to {qid!r}; every path must end at confirm.")
        if state.get(qid) == 2:
            return
        state[qid] = 1
        for rule in _rules(questions[qid]):
            visit(rule["goto"])
        state[qid] = 2

    visit(start)


# --- understanding an answer ----------------------------------------------------------------------
def normalise(text: str) -> str:
    return " ".join(text.strip().lower().rstrip(".!").split())


class Invalid(Exception):
    """An answer the question does not accept; the message explains why."""


def choices_for(question: dict[str, Any], conversation: dict[str, Any]) -> list[dict[str, Any]]:
    if question["type"] == "yes_no":
        extra = question.get("synonyms") or {}
        return [{"value": True, "label": "Yes", "synonyms": [*YES_WORDS, *extra.get("yes", [])]},
                {"value": False, "label": "No", "synonyms": [*NO_WORDS, *extra.get("no", [])]}]
    source = question.get("choices_from")
    if source == "services":
        return [{"value": s, "label": s, "synonyms": []} for s in conversation["services"]]
    if source == "case_people":
        return [{"value": p, "label": f"{p} ({r})", "synonyms": []} for p, r in sorted(conversation["people"].items())]
    return question.get("choices") or []


def interpret(question: dict[str, Any], answer: str, conversation: dict[str, Any]) -> Any:
    """The value an answer gives the question's field; raises Invalid with an explanation."""
    said = normalise(answer)
    kind = question["type"]
    if kind in ("choice", "yes_no"):
        options = choices_for(question, conversation)
        if said.isdigit() and 1 <= int(said) <= len(options):
            return options[int(said) - 1]["value"]
        for option in options:
            words = {normalise(str(option["value"])), normalise(option["label"]),
                     *(normalise(w) for w in option.get("synonyms") or [])}
            if said in words:
                return option["value"]
        listed = "; ".join(f"{n}. {o['label']}" for n, o in enumerate(options, 1))
        if kind == "yes_no":
            raise Invalid(f"I did not understand {answer.strip()[:60]!r}: please answer yes or no.")
        raise Invalid(f"I did not understand {answer.strip()[:60]!r}: please choose one of {listed}.")
    if kind == "text":
        if said in {normalise(w) for w in question.get("none_words") or []}:
            text = ""
        else:
            text = answer.strip()
        low, high = question.get("min_length", 1), question.get("max_length", 4000)
        if len(text) < low:
            raise Invalid(f"That is too short: at least {low} characters, please.")
        if len(text) > high:
            raise Invalid(f"That is too long: at most {high} characters, please.")
        return text
    # ids
    if said in {normalise(w) for w in question.get("none_words") or []}:
        return []
    ids = [p for p in re.split(r"[\s,;]+", answer.strip()) if p]
    bad = [p for p in ids if not ID_PATTERN.match(p)]
    if bad:
        raise Invalid(f"{bad[0][:60]!r} is not a document id.")
    if len(ids) > question.get("max_items", 20):
        raise Invalid(f"At most {question.get('max_items', 20)} documents, please.")
    return list(dict.fromkeys(ids))


def next_step(question: dict[str, Any], value: Any) -> tuple[str, dict[str, Any]]:
    """(where to go, fields to set) after ``value`` answered ``question``."""
    for rule in _rules(question):
        when = rule.get("when")
        if when is None or ("equals" in when and when["equals"] == value) or \
                ("in" in when and value in when["in"]):
            return rule["goto"], dict(rule.get("set") or {})
    return CONFIRM, {}  # unreachable for a checked script: its last rule has no condition


def collected(conversation: dict[str, Any]) -> dict[str, Any]:
    """The referral fields the answers on the current path give (later answers win)."""
    fields: dict[str, Any] = {}
    for step in conversation["path"]:
        fields[step["field"]] = step["value"]
        fields.update(step["set"])
    return fields


# --- the view a client gets -------------------------------------------------------------------------
def _question_view(conversation: dict[str, Any]) -> dict[str, Any] | None:
    current = conversation["current"]
    script = conversation["script"]
    if conversation["status"] != "open":
        return None
    if current == CONFIRM:
        return {"id": CONFIRM, "prompt": (script.get("confirm") or {}).get("prompt") or
                "Shall I make this referral? (yes / no)", "type": "yes_no",
                "choices": [{"number": 1, "label": "Yes"}, {"number": 2, "label": "No"}]}
    question = next(q for q in script["questions"] if q["id"] == current)
    view: dict[str, Any] = {"id": question["id"], "prompt": question["prompt"], "type": question["type"]}
    if question["type"] in ("choice", "yes_no"):
        view["choices"] = [{"number": n, "label": o["label"]}
                           for n, o in enumerate(choices_for(question, conversation), 1)]
    previous = conversation.get("previous_answers", {}).get(current)
    if previous is not None:
        view["previous_answer"] = previous
    return view


def summary(conversation: dict[str, Any]) -> list[dict[str, str]]:
    fields = collected(conversation)
    out = []
    for name, label in FIELD_LABELS.items():
        if name not in fields:
            continue
        value = fields[name]
        if isinstance(value, bool):
            shown = "yes" if value else "no"
        elif isinstance(value, list):
            shown = ", ".join(value) or "none"
        else:
            shown = str(value) if value not in (None, "") else "none"
        out.append({"field": name, "label": label, "answer": shown})
    return out


def view_of(conversation: dict[str, Any], explanation: str | None = None) -> dict[str, Any]:
    return {
        "conversation_id": conversation["conversation_id"],
        "case_id": conversation["case_id"],
        "status": conversation["status"],
        "step": conversation["step"],
        "question": _question_view(conversation),
        "explanation": explanation,
        "answered": [{"question_id": s["question_id"], "answer": s["raw"]} for s in conversation["path"]],
        "summary": summary(conversation) if conversation["current"] == CONFIRM else None,
        "referral_id": conversation.get("referral_id"),
    }


# --- the use cases ----------------------------------------------------------------------------------
class Conversations:
    """Start, answer, go back, resume; confirmation makes the referral through ``Referrals``."""

    def __init__(self, referrals: Referrals):
        self.referrals = referrals
        self.store = referrals.store

    def script_of(self, council_id: str) -> dict[str, Any]:
        return self.referrals.store.council_settings(council_id).get("conversation_script") or default_script()

    def get_script(self, who: Identity) -> dict[str, Any]:
        return self.referrals.audited(who, "referrals.settings.script.read", None, None,
                                      lambda: self.script_of(council_staff_of(who)))

    def put_script(self, who: Identity, script: dict[str, Any]) -> dict[str, Any]:
        def run():
            council = council_admin_of(who)
            checked = check_script(script)
            self.store.save_setting(council, "conversation_script", checked, who.subject, self.referrals.clock())
            return checked

        return self.referrals.audited(who, "referrals.settings.script.write", None, None, run)

    def start(self, who: Identity, case_id: str) -> dict[str, Any]:
        def run():
            viewer = staff_on(who, case_id)
            script = self.script_of(viewer.council_id)
            now = self.referrals.clock()
            conversation = {
                "conversation_id": new_id(),
                "council_id": viewer.council_id,
                "case_id": case_id,
                "owner": viewer.stamp(),
                # snapshots: numbered choices and questions stay the same for the whole conversation
                "script": script,
                "services": self.referrals.services_of(viewer.council_id),
                "people": family_side(self.store.case_people(viewer.council_id, case_id)),
                "status": "open",
                "current": script["start"],
                "path": [],
                "previous_answers": {},
                "step": 0,
                "last": None,
                "referral_id": None,
                "pending_referral_id": new_id(),
                "created_at": now,
                "updated_at": now,
            }
            self.store.add_conversation(conversation)
            return conversation

        return view_of(self.referrals.audited(who, "referrals.conversation.start", case_id, None, run))

    def _own(self, who: Identity, conversation_id: str) -> dict[str, Any]:
        if not who.is_person or not who.council_id:
            raise NotFound(NOT_FOUND)
        conversation = self.store.conversation(who.council_id, who.subject, conversation_id)
        if conversation is None or not viewer_on(who, conversation["case_id"]).is_staff:
            raise NotFound(NOT_FOUND)
        return conversation

    def get(self, who: Identity, conversation_id: str) -> dict[str, Any]:
        """Where the conversation stands: what a phone that lost its connection resumes from."""
        def run():
            return self._own(who, conversation_id)

        return view_of(self.referrals.audited(who, "referrals.conversation.read", None, conversation_id, run))

    def _replay_or_conflict(self, conversation: dict[str, Any], step: int, request: dict[str, Any]) -> dict:
        last = conversation.get("last")
        if last is not None and step == conversation["step"] - 1 and last == request:
            return view_of(conversation)  # the same request again after a lost answer: nothing more happens
        raise Conflict(f"This conversation is at step {conversation['step']}, not {step}: "
                       "GET it to see where it stands.")

    def answer(self, who: Identity, conversation_id: str, step: int, answer: str) -> dict[str, Any]:
        def run():
            conversation = self._own(who, conversation_id)
            request = {"kind": "answer", "step": step, "answer": answer}
            if step != conversation["step"]:
                return self._replay_or_conflict(conversation, step, request)
            if conversation["status"] != "open":
                raise Conflict("This conversation is finished: its referral is made.")
            said = normalise(answer)
            if said in {normalise(w) for w in conversation["script"].get("back_words") or []}:
                return self._back(who, conversation, request)
            if conversation["current"] == CONFIRM:
                return self._confirm(who, conversation, said, request)
            question = next(q for q in conversation["script"]["questions"] if q["id"] == conversation["current"])
            try:
                value = interpret(question, answer, conversation)
            except Invalid as why:
                explanation = str(why)
                if question.get("help"):
                    explanation += " " + question["help"]
                return view_of(conversation, explanation)
            goto, sets = next_step(question, value)
            updated = {**conversation,
                       "path": [*conversation["path"], {"question_id": question["id"], "field": question["field"],
                                                        "value": value, "raw": answer.strip(), "set": sets}],
                       "current": goto}
            return view_of(self._save(conversation, updated, request))

        return self.referrals.audited(who, "referrals.conversation.answer", None, conversation_id, run)

    def back(self, who: Identity, conversation_id: str, step: int) -> dict[str, Any]:
        def run():
            conversation = self._own(who, conversation_id)
            request = {"kind": "back", "step": step}
            if step != conversation["step"]:
                return self._replay_or_conflict(conversation, step, request)
            if conversation["status"] != "open":
                raise Conflict("This conversation is finished: its referral is made.")
            return self._back(who, conversation, request)

        return self.referrals.audited(who, "referrals.conversation.back", None, conversation_id, run)

    def _back(self, who: Identity, conversation: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        if not conversation["path"]:
            return view_of(conversation, "This is the first question: there is nothing before it.")
        last = conversation["path"][-1]
        updated = {**conversation, "path": conversation["path"][:-1], "current": last["question_id"],
                   "previous_answers": {**conversation["previous_answers"], last["question_id"]: last["raw"]}}
        return view_of(self._save(conversation, updated, request))

    def _confirm(self, who: Identity, conversation: dict[str, Any], said: str,
                 request: dict[str, Any]) -> dict[str, Any]:
        confirm = conversation["script"].get("confirm") or {}
        yes = {normalise(w) for w in confirm.get("yes") or YES_WORDS} | {"1"}
        no = {normalise(w) for w in confirm.get("no") or NO_WORDS} | {"2"}
        if said in no:
            return view_of(conversation, "Nothing was made. Go back to change an answer, or answer yes to make it.")
        if said not in yes:
            return view_of(conversation, "Please answer yes to make the referral, or no.")
        try:
            referral, _ = self.referrals.create_referral(who, conversation["case_id"], collected(conversation),
                                                         referral_id=conversation["pending_referral_id"])
        except DomainError as why:
            if why.status == 404:
                raise
            return view_of(conversation, f"The referral cannot be made yet: {why.detail} Go back to change it.")
        updated = {**conversation, "status": "completed", "current": "done",
                   "referral_id": referral["referral_id"]}
        return view_of(self._save(conversation, updated, request))

    def _save(self, before: dict[str, Any], updated: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        updated = {**updated, "step": before["step"] + 1, "last": request, "updated_at": self.referrals.clock()}
        if not self.store.save_conversation(updated, before["step"]):
            raise Conflict("This conversation moved on meanwhile: GET it to see where it stands.")
        return updated
