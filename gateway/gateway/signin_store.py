"""What sign-in keeps in the gateway's MongoDB, behind one abstract store (a memory twin for tests).

Collections:

| collection | _id | holds |
| --- | --- | --- |
| ``accounts`` | ``council/person`` | login (unique, lower case), display name, kind, roles, argon2id hash, TOTP, disabled |
| ``one_time`` | sha256 of a secret | invitation and reset codes, OIDC flows (state), pending second factors: taken once, TTL on ``expires_at`` |
| ``throttle`` | ``purpose:login:...`` / ``purpose:ip:...`` | failures, last failure, locked until; TTL on ``expires_at`` |
| ``machine_clients`` | client id | council, name, scopes, sha256 of the secret |
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError


class LoginTaken(Exception):
    """Another account already signs in with that login."""


@dataclass
class Account:
    council_id: str
    person_id: str
    login: str | None = None
    display_name: str = ""
    kind: str = "family"
    roles: list[str] = field(default_factory=list)
    password_hash: str | None = None
    totp_secret: str | None = None
    totp_enabled: bool = False
    totp_last_step: int | None = None
    disabled: bool = False

    @property
    def key(self) -> str:
        return f"{self.council_id}/{self.person_id}"

    def to_doc(self) -> dict[str, Any]:
        return {"_id": self.key, **asdict(self)}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Account:
        return cls(**{k: v for k, v in doc.items() if k != "_id"})


@dataclass(frozen=True)
class Throttled:
    failures: int
    last_failure: float
    locked_until: float


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class SignInStore(ABC):
    @abstractmethod
    async def account(self, council_id: str, person_id: str) -> Account | None: ...

    @abstractmethod
    async def account_by_login(self, login: str) -> Account | None: ...

    @abstractmethod
    async def save_account(self, account: Account) -> None:
        """Insert or replace; ``LoginTaken`` when another account has the login."""

    @abstractmethod
    async def put_one_time(self, digest: str, purpose: str, data: dict[str, Any], expires_at: float) -> None: ...

    @abstractmethod
    async def take_one_time(self, digest: str, purpose: str, now: float) -> dict[str, Any] | None:
        """The data of a live one-time secret, deleted in the same step (a second take gets None)."""

    @abstractmethod
    async def peek_one_time(self, digest: str, purpose: str, now: float) -> dict[str, Any] | None:
        """The data of a live one-time secret, left in place (it is taken later, once)."""

    @abstractmethod
    async def drop_one_time(self, purpose: str, key: str) -> None:
        """Forget every live secret of a purpose issued for ``data.key`` (an older invitation, say)."""

    @abstractmethod
    async def throttle(self, key: str) -> Throttled | None: ...

    @abstractmethod
    async def add_failure(self, key: str, now: float, quiet_after: float) -> int:
        """Count a failure (starting again after ``quiet_after`` seconds without one); the count now."""

    @abstractmethod
    async def lock(self, key: str, until: float) -> None: ...

    @abstractmethod
    async def clear_throttle(self, key: str) -> None: ...

    @abstractmethod
    async def save_client(self, doc: dict[str, Any]) -> None: ...

    @abstractmethod
    async def client(self, client_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def clients(self, council_id: str) -> list[dict[str, Any]]: ...

    @abstractmethod
    async def delete_client(self, council_id: str, client_id: str) -> bool: ...

    async def ensure_indexes(self) -> None:
        return None


class MongoSignInStore(SignInStore):
    def __init__(self, db):
        self.accounts = db["accounts"]
        self.one_time = db["one_time"]
        self.throttles = db["throttle"]
        self.machine_clients = db["machine_clients"]

    async def ensure_indexes(self) -> None:
        await self.accounts.create_index("login", unique=True,
                                         partialFilterExpression={"login": {"$type": "string"}})
        await self.one_time.create_index("expires_at", expireAfterSeconds=0)
        await self.one_time.create_index([("purpose", 1), ("data.key", 1)])
        await self.throttles.create_index("expires_at", expireAfterSeconds=0)
        await self.machine_clients.create_index("council_id")

    async def account(self, council_id, person_id):
        doc = await self.accounts.find_one({"_id": f"{council_id}/{person_id}"})
        return Account.from_doc(doc) if doc else None

    async def account_by_login(self, login):
        doc = await self.accounts.find_one({"login": login})
        return Account.from_doc(doc) if doc else None

    async def save_account(self, account):
        try:
            await self.accounts.replace_one({"_id": account.key}, account.to_doc(), upsert=True)
        except DuplicateKeyError as exc:
            raise LoginTaken(account.login) from exc

    async def put_one_time(self, digest, purpose, data, expires_at):
        await self.one_time.insert_one({"_id": digest, "purpose": purpose, "data": data,
                                        "expires_at": _utc(expires_at)})

    async def take_one_time(self, digest, purpose, now):
        doc = await self.one_time.find_one_and_delete({"_id": digest, "purpose": purpose,
                                                       "expires_at": {"$gt": _utc(now)}})
        return doc["data"] if doc else None

    async def peek_one_time(self, digest, purpose, now):
        doc = await self.one_time.find_one({"_id": digest, "purpose": purpose, "expires_at": {"$gt": _utc(now)}})
        return doc["data"] if doc else None

    async def drop_one_time(self, purpose, key):
        await self.one_time.delete_many({"purpose": purpose, "data.key": key})

    async def throttle(self, key):
        doc = await self.throttles.find_one({"_id": key})
        if doc is None:
            return None
        return Throttled(doc.get("failures", 0), doc.get("last_failure", 0.0), doc.get("locked_until", 0.0))

    async def add_failure(self, key, now, quiet_after):
        expires = _utc(now + quiet_after + 86400)
        # a failure after a quiet period starts the count again
        await self.throttles.update_one({"_id": key, "last_failure": {"$lt": now - quiet_after}},
                                        {"$set": {"failures": 0, "locked_until": 0.0}})
        doc = await self.throttles.find_one_and_update(
            {"_id": key}, {"$inc": {"failures": 1}, "$set": {"last_failure": now, "expires_at": expires}},
            upsert=True, return_document=ReturnDocument.AFTER)
        return int(doc["failures"])

    async def lock(self, key, until):
        await self.throttles.update_one({"_id": key}, {"$max": {"locked_until": until}})

    async def clear_throttle(self, key):
        await self.throttles.delete_one({"_id": key})

    async def save_client(self, doc):
        await self.machine_clients.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def client(self, client_id):
        return await self.machine_clients.find_one({"_id": client_id})

    async def clients(self, council_id):
        return [d async for d in self.machine_clients.find({"council_id": council_id}).sort("created_at", 1)]

    async def delete_client(self, council_id, client_id):
        done = await self.machine_clients.delete_one({"_id": client_id, "council_id": council_id})
        return done.deleted_count == 1


class MemorySignInStore(SignInStore):
    """The same behaviour in memory (unit tests, and a gateway built with an in-memory session store)."""

    def __init__(self):
        self.accounts: dict[str, dict] = {}
        self.one_time: dict[str, dict] = {}
        self.throttles: dict[str, dict] = {}
        self.machine_clients: dict[str, dict] = {}

    async def account(self, council_id, person_id):
        doc = self.accounts.get(f"{council_id}/{person_id}")
        return Account.from_doc(copy.deepcopy(doc)) if doc else None

    async def account_by_login(self, login):
        doc = next((d for d in self.accounts.values() if d["login"] == login), None)
        return Account.from_doc(copy.deepcopy(doc)) if doc else None

    async def save_account(self, account):
        if account.login and any(d["login"] == account.login and k != account.key for k, d in self.accounts.items()):
            raise LoginTaken(account.login)
        self.accounts[account.key] = account.to_doc()

    async def put_one_time(self, digest, purpose, data, expires_at):
        self.one_time[digest] = {"purpose": purpose, "data": copy.deepcopy(data), "expires_at": expires_at}

    async def take_one_time(self, digest, purpose, now):
        doc = self.one_time.get(digest)
        if doc is None or doc["purpose"] != purpose or doc["expires_at"] <= now:
            return None
        del self.one_time[digest]
        return doc["data"]

    async def peek_one_time(self, digest, purpose, now):
        doc = self.one_time.get(digest)
        if doc is None or doc["purpose"] != purpose or doc["expires_at"] <= now:
            return None
        return copy.deepcopy(doc["data"])

    async def drop_one_time(self, purpose, key):
        for digest in [d for d, v in self.one_time.items() if v["purpose"] == purpose and v["data"].get("key") == key]:
            del self.one_time[digest]

    async def throttle(self, key):
        doc = self.throttles.get(key)
        return Throttled(doc["failures"], doc["last_failure"], doc["locked_until"]) if doc else None

    async def add_failure(self, key, now, quiet_after):
        doc = self.throttles.setdefault(key, {"failures": 0, "last_failure": now, "locked_until": 0.0})
        if doc["last_failure"] < now - quiet_after:
            doc.update(failures=0, locked_until=0.0)
        doc["failures"] += 1
        doc["last_failure"] = now
        return doc["failures"]

    async def lock(self, key, until):
        doc = self.throttles[key]
        doc["locked_until"] = max(doc["locked_until"], until)

    async def clear_throttle(self, key):
        self.throttles.pop(key, None)

    async def save_client(self, doc):
        self.machine_clients[doc["_id"]] = copy.deepcopy(doc)

    async def client(self, client_id):
        return copy.deepcopy(self.machine_clients.get(client_id))

    async def clients(self, council_id):
        return [copy.deepcopy(d) for d in self.machine_clients.values() if d["council_id"] == council_id]

    async def delete_client(self, council_id, client_id):
        doc = self.machine_clients.get(client_id)
        if doc is None or doc["council_id"] != council_id:
            return False
        del self.machine_clients[client_id]
        return True
