"""Sessions: opaque bearer tokens, stored only as their sha256 with the principal.

The gateway's only data. ``Sessions`` keeps a short per-process cache for the
proxy path; a revocation drops the entry here at once and is broadcast to the
other gateway processes (``gateway.session_revoked``), and the cache never
outlives ``SESSION_CACHE_SECONDS``. The gateway's own operations always ask the
store.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .identity import Principal


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SessionRecord:
    principal: Principal
    expires_at: datetime


class SessionStore(ABC):
    """Where sessions live, keyed by the sha256 of their token."""

    @abstractmethod
    async def save(self, digest: str, record: SessionRecord) -> None: ...

    @abstractmethod
    async def find(self, digest: str) -> SessionRecord | None: ...

    @abstractmethod
    async def delete(self, digest: str) -> None: ...

    @abstractmethod
    async def delete_for_person(self, council_id: str | None, person_id: str) -> int:
        """Delete every session of one person (or machine client); how many there were."""

    async def ensure_indexes(self) -> None:
        return None

    async def ping(self) -> bool:
        return True


class MongoSessionStore(SessionStore):
    """Collection ``sessions``: ``{_id: sha256(token), principal, created_at, expires_at}``; TTL on expires_at."""

    def __init__(self, db):
        self.collection = db["sessions"]
        self.db = db

    async def ensure_indexes(self) -> None:
        await self.collection.create_index("expires_at", expireAfterSeconds=0)
        await self.collection.create_index([("principal.council_id", 1), ("principal.person_id", 1)])

    async def save(self, digest: str, record: SessionRecord) -> None:
        await self.collection.insert_one({
            "_id": digest,
            "principal": record.principal.to_doc(),
            "created_at": datetime.now(UTC),
            "expires_at": record.expires_at,
        })

    async def find(self, digest: str) -> SessionRecord | None:
        doc = await self.collection.find_one({"_id": digest})
        if doc is None:
            return None
        expires_at = doc["expires_at"]
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return SessionRecord(Principal.from_doc(doc["principal"]), expires_at)

    async def delete(self, digest: str) -> None:
        await self.collection.delete_one({"_id": digest})

    async def delete_for_person(self, council_id: str | None, person_id: str) -> int:
        done = await self.collection.delete_many({"principal.council_id": council_id,
                                                  "principal.person_id": person_id})
        return done.deleted_count

    async def ping(self) -> bool:
        try:
            await self.db.command("ping")
            return True
        except Exception:
            return False


class Sessions:
    """Opening, checking and revoking sessions."""

    def __init__(self, store: SessionStore, ttl_seconds: int, cache_seconds: float,
                 on_revoke: Callable[[str], Awaitable[None]] | None = None,
                 clock: Callable[[], float] = time.time,
                 on_revoke_person: Callable[[str | None, str], Awaitable[None]] | None = None):
        self.store = store
        self.ttl_seconds = ttl_seconds
        self.cache_seconds = cache_seconds
        self.on_revoke = on_revoke
        self.on_revoke_person = on_revoke_person
        self.clock = clock
        self._cache: dict[str, tuple[float, float, Principal]] = {}
        self._person_revocations = 0  # a lookup that raced a person's revocation is not cached
        self._lock = threading.Lock()

    async def open(self, principal: Principal, ttl_seconds: int | None = None) -> tuple[str, datetime]:
        token = secrets.token_urlsafe(32)
        ttl = min(ttl_seconds or self.ttl_seconds, self.ttl_seconds)
        expires_at = datetime.fromtimestamp(self.clock(), UTC) + timedelta(seconds=ttl)
        await self.store.save(token_digest(token), SessionRecord(principal, expires_at))
        return token, expires_at

    async def principal(self, token: str, use_cache: bool = False) -> Principal | None:
        """The principal of a live session, or None (unknown, revoked or expired)."""
        if not token or len(token) > 200:
            return None
        digest = token_digest(token)
        now = self.clock()
        if use_cache:
            hit = self._cache.get(digest)
            if hit is not None and hit[0] > now and hit[1] > now:
                return hit[2]
        revocations = self._person_revocations
        record = await self.store.find(digest)
        if record is None:
            return None
        expires = record.expires_at.timestamp()
        if expires <= now:
            return None
        if self.cache_seconds > 0:
            with self._lock:
                if self._person_revocations != revocations:
                    return record.principal  # a person was revoked while we looked: do not cache this
                if len(self._cache) > 50_000:
                    self._cache.clear()
                self._cache[digest] = (now + self.cache_seconds, expires, record.principal)
        return record.principal

    async def revoke(self, token: str) -> None:
        digest = token_digest(token)
        self.forget(digest)
        await self.store.delete(digest)
        if self.on_revoke is not None:
            await self.on_revoke(digest)

    async def revoke_person(self, council_id: str | None, person_id: str) -> None:
        """Every session of a person ends: dropped here at once, deleted from the store, and the other
        gateway processes told to drop theirs (``gateway.person_signed_out``)."""
        self.forget_person(council_id, person_id)
        await self.store.delete_for_person(council_id, person_id)
        self.forget_person(council_id, person_id)  # a lookup may have raced the delete
        if self.on_revoke_person is not None:
            await self.on_revoke_person(council_id, person_id)

    def forget_person(self, council_id: str | None, person_id: str) -> None:
        with self._lock:
            self._person_revocations += 1
            for digest in [d for d, (_, _, p) in self._cache.items()
                           if p.person_id == person_id and p.council_id == council_id]:
                del self._cache[digest]

    def forget(self, digest: str) -> None:
        """Drop one session from this process's cache (a revocation seen here or broadcast)."""
        with self._lock:
            self._cache.pop(digest, None)

    def flush(self) -> None:
        with self._lock:
            self._cache.clear()
