"""The repository: the only module that speaks to MongoDB.

Every query carries the council; referral reads also carry the case and the
visibility rule (``visibility_filter``, the database form of ``domain.can_see``).
A status change and its event are written in one transaction (the outbox).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from chassis.audience import audience_filter
from chassis.events import process_once
from chassis.mongo import in_transaction
from chassis.outbox import Outbox
from chassis.problems import Conflict

from .domain import AbstractReferralStore, Viewer

SERVICE = "referrals"


def visibility_filter(person_id: str, role: str | None) -> dict[str, Any]:
    """The Mongo condition for "``person_id`` with ``role`` on the case may see this referral"."""
    return audience_filter(person_id, role, author_field="referrer.person_id")


def _out(doc: dict[str, Any] | None, id_field: str) -> dict[str, Any] | None:
    if doc is None:
        return None
    out = {k: v for k, v in doc.items() if k != "_id"}
    out[id_field] = doc["_id"]
    return out


def _doc(record: dict[str, Any], id_field: str) -> dict[str, Any]:
    doc = {k: v for k, v in record.items() if k != id_field}
    doc["_id"] = record[id_field]
    return doc


class MongoReferralStore(AbstractReferralStore):
    def __init__(self, client: MongoClient, db: Database):
        self.client = client
        self.db = db
        self.referrals = db["referrals"]
        self.settings = db["council_settings"]
        self.members = db["case_members"]
        self.conversations = db["conversations"]
        self.outbox = Outbox(db, SERVICE)

    def ensure_indexes(self) -> None:
        self.referrals.create_index([("council_id", ASCENDING), ("case_id", ASCENDING),
                                     ("created_at", DESCENDING), ("_id", DESCENDING)])
        self.members.create_index([("council_id", ASCENDING), ("case_id", ASCENDING), ("present", ASCENDING)])
        self.conversations.create_index([("council_id", ASCENDING), ("owner.person_id", ASCENDING)])
        self.outbox.ensure_indexes()

    def _scope(self, viewer: Viewer, case_id: str) -> dict[str, Any]:
        return {"council_id": viewer.council_id, "case_id": case_id, **visibility_filter(viewer.person_id, viewer.role)}

    # --- referrals -----------------------------------------------------------------------------
    def add_referral(self, referral: dict[str, Any]) -> bool:
        try:
            self.referrals.insert_one(_doc(referral, "referral_id"))
        except DuplicateKeyError:
            return False
        return True

    def raw_referral(self, council_id: str, referral_id: str) -> dict[str, Any] | None:
        return _out(self.referrals.find_one({"_id": referral_id, "council_id": council_id}), "referral_id")

    def visible_referrals(self, viewer: Viewer, case_id: str, limit: int) -> list[dict[str, Any]]:
        docs = self.referrals.find(self._scope(viewer, case_id)).sort([("created_at", DESCENDING),
                                                                       ("_id", DESCENDING)]).limit(limit)
        return [_out(d, "referral_id") for d in docs]  # type: ignore[misc]

    def visible_referral(self, viewer: Viewer, case_id: str, referral_id: str) -> dict[str, Any] | None:
        return _out(self.referrals.find_one({"_id": referral_id, **self._scope(viewer, case_id)}), "referral_id")

    def replace_referral(self, viewer: Viewer, referral: dict[str, Any], expected_version: int,
                         event: tuple[str, dict, dict] | None) -> dict[str, Any]:
        updated = {**referral, "version": expected_version + 1}

        def write(session: ClientSession) -> None:
            result = self.referrals.replace_one(
                {"_id": referral["referral_id"], "version": expected_version, **self._scope(viewer, referral["case_id"])},
                _doc(updated, "referral_id"), session=session)
            if result.matched_count != 1:
                raise Conflict("The referral changed meanwhile; read it again and retry.")
            if event is not None:
                event_type, data, story = event
                self.outbox.add(session, event_type, viewer.council_id, data, story)

        in_transaction(self.client, write)
        return updated

    # --- council settings ----------------------------------------------------------------------
    def council_settings(self, council_id: str) -> dict[str, Any]:
        return self.settings.find_one({"_id": council_id}) or {}

    def save_setting(self, council_id: str, key: str, value: Any, by: str, at: datetime) -> None:
        self.settings.update_one({"_id": council_id},
                                 {"$set": {key: value, f"{key}_changed": {"by": by, "at": at}}}, upsert=True)

    # --- case memberships (projected from the case directory's events) ------------------------------
    def case_people(self, council_id: str, case_id: str) -> dict[str, str]:
        docs = self.members.find({"council_id": council_id, "case_id": case_id, "present": True})
        return {d["person_id"]: d["role"] for d in docs}

    def apply_membership(self, envelope: dict[str, Any]) -> bool:
        """member_added / member_removed of the case directory, at most once and never older over newer."""
        data, council = envelope["data"], envelope["council_id"]
        key = {"_id": f"{council}|{data['case_id']}|{data['person_id']}"}
        present = envelope["type"] == "member_added"
        at = datetime.fromisoformat(envelope["occurred_at"])
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)  # what MongoDB keeps, so comparisons hold

        def effect(session: ClientSession) -> None:
            current = self.members.find_one(key, session=session)
            if current is not None and current["as_of"] > at:
                return  # a later change already arrived
            self.members.replace_one(key, {"council_id": council, "case_id": data["case_id"],
                                           "person_id": data["person_id"], "role": data["role"],
                                           "present": present, "as_of": at}, upsert=True, session=session)

        return process_once(self.client, self.db, envelope, effect)

    # --- conversations ---------------------------------------------------------------------------------
    def add_conversation(self, conversation: dict[str, Any]) -> None:
        self.conversations.insert_one(_doc(conversation, "conversation_id"))

    def conversation(self, council_id: str, person_id: str, conversation_id: str) -> dict[str, Any] | None:
        doc = self.conversations.find_one({"_id": conversation_id, "council_id": council_id,
                                           "owner.person_id": person_id})
        return _out(doc, "conversation_id")

    def save_conversation(self, conversation: dict[str, Any], expected_step: int) -> bool:
        result = self.conversations.replace_one(
            {"_id": conversation["conversation_id"], "council_id": conversation["council_id"],
             "owner.person_id": conversation["owner"]["person_id"], "step": expected_step},
            _doc(conversation, "conversation_id"))
        return result.matched_count == 1
