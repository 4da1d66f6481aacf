"""The catalogue's repository: the only module that speaks to MongoDB.

Collections: ``councils``, ``tools`` (current version of each), ``tool_versions``
(every version, never changed), ``enablements`` (a tool's state per council,
never deleted), ``enablement_history`` (append-only), ``outbox`` and ``audit``.
Every enablement query is filtered by council id; tools are the same for every
council (the catalogue itself).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from chassis.audit import AuditTrail
from chassis.identity import Identity
from chassis.mongo import in_transaction
from chassis.outbox import Outbox
from chassis.problems import Conflict

from . import schemas
from .domain import (
    ENABLED,
    CatalogueStore,
    Change,
    Council,
    Enablement,
    HistoryRecord,
    OidcSettings,
    SignInSettings,
    Tool,
    ToolVersion,
)

SOURCE = "catalogue"


def _enablement_id(council_id: str, tool_id: str) -> str:
    return f"{council_id}/{tool_id}"


def _council(doc: dict) -> Council:
    return Council(doc["_id"], doc["name"], doc["created_at"], doc["updated_at"])


def _tool(doc: dict) -> Tool:
    return Tool(doc["_id"], doc["manifest"], doc["published_at"])


def _enablement(doc: dict) -> Enablement:
    return Enablement(doc["council_id"], doc["tool_id"], doc["enabled"], list(doc["audiences"]),
                      list(doc["scopes"]), doc["changed_at"], doc["changed_by"], doc["revision"])


class MongoCatalogueStore(CatalogueStore):
    def __init__(self, client: MongoClient, db: Database, audit: AuditTrail):
        self.client = client
        self.db = db
        self.audit = audit
        self.outbox = Outbox(db, SOURCE)
        self.councils = db["councils"]
        self.tools = db["tools"]
        self.versions = db["tool_versions"]
        self.enablements = db["enablements"]
        self.history_records = db["enablement_history"]

    def ensure_indexes(self) -> None:
        self.versions.create_index([("tool_id", ASCENDING), ("published_at", DESCENDING)])
        self.enablements.create_index([("council_id", ASCENDING), ("tool_id", ASCENDING)], unique=True)
        self.history_records.create_index([("council_id", ASCENDING), ("tool_id", ASCENDING),
                                           ("revision", DESCENDING)], unique=True)
        self.outbox.ensure_indexes()
        self.audit.ensure_indexes()

    # --- councils -----------------------------------------------------------------------------

    def get_council(self, council_id: str) -> Council | None:
        doc = self.councils.find_one({"_id": council_id})
        return _council(doc) if doc else None

    def list_councils(self) -> list[Council]:
        return [_council(d) for d in self.councils.find({}).sort("_id", ASCENDING)]

    def put_council(self, council_id: str, name: str, who: Identity, at: datetime) -> tuple[Council, bool]:
        def write(session: ClientSession) -> tuple[Council, bool]:
            before = self.councils.find_one_and_update(
                {"_id": council_id},
                {"$set": {"name": name, "updated_at": at}, "$setOnInsert": {"created_at": at}},
                upsert=True, return_document=ReturnDocument.BEFORE, session=session,
            )
            action = "council_renamed" if before else "council_created"
            self.audit.record(who, action, record_id=council_id, session=session)
            doc = self.councils.find_one({"_id": council_id}, session=session)
            return _council(doc), before is None

        return in_transaction(self.client, write)

    # --- tools ----------------------------------------------------------------------------------

    def get_tool(self, tool_id: str) -> Tool | None:
        doc = self.tools.find_one({"_id": tool_id})
        return _tool(doc) if doc else None

    def list_tools(self) -> list[Tool]:
        return [_tool(d) for d in self.tools.find({}).sort("_id", ASCENDING)]

    def list_versions(self, tool_id: str) -> list[ToolVersion]:
        docs = self.versions.find({"tool_id": tool_id}).sort([("published_at", DESCENDING), ("_id", DESCENDING)])
        return [ToolVersion(d["version"], d["published_at"], d["published_by"]) for d in docs]

    def publish(self, manifest: dict[str, Any], who: Identity, at: datetime, expected_current: str | None) -> Tool:
        tool_id, version = manifest["id"], manifest["version"]

        def write(session: ClientSession) -> Tool:
            current = self.tools.find_one({"_id": tool_id}, session=session)
            if (current["version"] if current else None) != expected_current:
                raise Conflict("Another version of this tool was published meanwhile; look again and retry.")
            self.versions.insert_one(schemas.ToolVersionDoc().dump({
                "_id": f"{tool_id}@{version}", "tool_id": tool_id, "version": version, "manifest": manifest,
                "published_at": at, "published_by": who.subject,
            }), session=session)
            doc = schemas.ToolDoc().dump({"_id": tool_id, "version": version, "manifest": manifest,
                                          "published_at": at, "published_by": who.subject})
            self.tools.replace_one({"_id": tool_id}, doc, upsert=True, session=session)
            self.audit.record(who, "tool_published", record_id=f"{tool_id}@{version}", session=session)
            return _tool(doc)

        try:
            return in_transaction(self.client, write)
        except DuplicateKeyError as exc:
            raise Conflict(f"Version {version} of {tool_id} is already published.") from exc

    # --- enablements ------------------------------------------------------------------------------

    def get_enablement(self, council_id: str, tool_id: str) -> Enablement | None:
        doc = self.enablements.find_one({"council_id": council_id, "tool_id": tool_id})
        return _enablement(doc) if doc else None

    def list_enablements(self, council_id: str) -> list[Enablement]:
        return [_enablement(d) for d in self.enablements.find({"council_id": council_id}).sort("tool_id", 1)]

    def apply_change(self, change: Change, who: Identity) -> Enablement:
        revision = change.expected_revision + 1
        enabled = change.action == ENABLED
        state = schemas.EnablementDoc().dump({
            "_id": _enablement_id(change.council_id, change.tool_id),
            "council_id": change.council_id, "tool_id": change.tool_id, "enabled": enabled,
            "audiences": change.audiences if enabled else [], "scopes": change.scopes if enabled else [],
            "changed_at": change.at, "changed_by": change.by, "revision": revision,
        })
        if enabled:
            event_type = "tool_enabled"
            data = schemas.ToolEnabledData().dump({"tool_id": change.tool_id, "audiences": change.audiences,
                                                   "scopes": change.scopes, "by": change.by})
        else:
            event_type = "tool_disabled"
            data = schemas.ToolDisabledData().dump({"tool_id": change.tool_id, "by": change.by})

        def write(session: ClientSession) -> Enablement:
            key = {"council_id": change.council_id, "tool_id": change.tool_id}
            if change.expected_revision == 0:
                self.enablements.insert_one(state, session=session)
            else:
                replaced = self.enablements.replace_one({**key, "revision": change.expected_revision}, state,
                                                        session=session)
                if replaced.matched_count != 1:
                    raise Conflict("This tool was changed meanwhile in this council; look again and retry.")
            self.history_records.insert_one(schemas.HistoryDoc().dump({
                "_id": uuid.uuid4().hex, **key, "revision": revision, "action": change.action,
                "audiences": change.audiences, "scopes": change.scopes, "by": change.by, "at": change.at,
            }), session=session)
            self.outbox.add(session, event_type, change.council_id, data)
            self.audit.record(who, event_type, record_id=state["_id"], session=session)
            return _enablement(state)

        try:
            return in_transaction(self.client, write)
        except DuplicateKeyError as exc:
            raise Conflict("This tool was changed meanwhile in this council; look again and retry.") from exc

    def history(self, council_id: str, tool_id: str) -> list[HistoryRecord]:
        docs = self.history_records.find({"council_id": council_id, "tool_id": tool_id}).sort("revision", DESCENDING)
        return [HistoryRecord(d["action"], list(d["audiences"]), list(d["scopes"]), d["by"], d["at"]) for d in docs]

    # --- sign-in settings -------------------------------------------------------------------------

    def get_sign_in(self, council_id: str) -> SignInSettings | None:
        doc = self.db["sign_in"].find_one({"_id": council_id})
        if doc is None:
            return None
        oidc = doc.get("oidc")
        return SignInSettings(
            council_id,
            OidcSettings(oidc["issuer"], oidc["client_id"], list(oidc["allowed_domains"]),
                         oidc.get("client_secret_env")) if oidc else None,
            bool(doc.get("staff_totp_required")), doc["updated_at"], doc["updated_by"])

    def put_sign_in(self, settings: SignInSettings, who: Identity) -> SignInSettings:
        oidc = settings.oidc
        doc = {"_id": settings.council_id, "staff_totp_required": settings.staff_totp_required,
               "oidc": None if oidc is None else {
                   "issuer": oidc.issuer, "client_id": oidc.client_id, "allowed_domains": oidc.allowed_domains,
                   "client_secret_env": oidc.client_secret_env},
               "updated_at": settings.updated_at, "updated_by": settings.updated_by}

        def write(session: ClientSession) -> SignInSettings:
            self.db["sign_in"].replace_one({"_id": settings.council_id}, doc, upsert=True, session=session)
            self.audit.record(who, "sign_in_settings_changed", record_id=settings.council_id, session=session)
            return settings

        return in_transaction(self.client, write)


def build_store(client: MongoClient, db: Database) -> MongoCatalogueStore:
    return MongoCatalogueStore(client, db, AuditTrail(db, SOURCE))
