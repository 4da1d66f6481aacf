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

    async def ping(self) -> bool:
        try:
            await self.db.command("ping")
            return True
        except Exception:  # noqa: BLE001 - health says no, whatever the reason
            return False


class Sessions:
    """Opening, checking and revoking sessions."""

    def __init__(self, store: SessionStore, ttl_seconds: int, cache_seconds: float,
                 on_revoke: Callable[[str], Awaitable[None]] | None = None,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.ttl_seconds = ttl_seconds
        self.cache_seconds = cache_seconds
        self.on_revoke = on_revoke
        self.clock = clock
        self._cache: dict[str, tuple[float, float, Principal]] = {}
        self._lock = threading.Lock()

    async def open(self, principal: Principal) -> tuple[str, datetime]:
        token = secrets.token_urlsafe(32)
        expires_at = datetime.fromtimestamp(self.clock(), UTC) + timedelta(seconds=self.ttl_seconds)
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
        record = await self.store.find(digest)
        if record is None:
            return None
        expires = record.expires_at.timestamp()
        if expires <= now:
            return None
        if self.cache_seconds > 0:
            with self._lock:
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

    def forget(self, digest: str) -> None:
        """Drop one session from this process's cache (a revocation seen here or broadcast)."""
        with self._lock:
            self._cache.pop(digest, None)

    def flush(self) -> None:
        with self._lock:
            self._cache.clear()
