"""Brute-force protection: failures counted per login and per client IP, lockout with backoff.

After ``max_failures`` failures (without a quiet period of ``quiet_after``
seconds in between) a key is locked for ``base_lock`` seconds, doubling with
every further failure up to ``max_lock``. While any key of an attempt is
locked the attempt is not even tried. Keys are the login *as typed* (so an
unknown login locks exactly like a known one) and the client IP. State lives
in the gateway's MongoDB (shared by every gateway process).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from .signin_store import SignInStore


@dataclass(frozen=True)
class Limit:
    max_failures: int
    quiet_after: float = 900.0
    base_lock: float = 30.0
    max_lock: float = 3600.0

    def lock_seconds(self, failures: int) -> float:
        if failures < self.max_failures:
            return 0.0
        return min(self.max_lock, self.base_lock * 2 ** min(failures - self.max_failures, 20))


class Limiter:
    """``purpose`` (sign-in, code, reset) × ``kind`` (login, ip) → a ``Limit``."""

    def __init__(self, store: SignInStore, limits: dict[str, Limit], clock: Callable[[], float] = time.time):
        self.store = store
        self.limits = limits
        self.clock = clock

    @staticmethod
    def keys(purpose: str, login: str | None, ip: str | None) -> list[tuple[str, str]]:
        out = []
        if login is not None:
            out.append(("login", f"{purpose}:login:{login.strip().lower()[:200]}"))
        if ip:
            out.append(("ip", f"{purpose}:ip:{ip}"))
        return out

    async def retry_after(self, keys: list[tuple[str, str]]) -> int:
        """Seconds until every key is unlocked (0: go ahead)."""
        now = self.clock()
        wait = 0.0
        for _kind, key in keys:
            state = await self.store.throttle(key)
            if state is not None and state.locked_until > now:
                wait = max(wait, state.locked_until - now)
        return math.ceil(wait)

    async def failed(self, keys: list[tuple[str, str]]) -> None:
        now = self.clock()
        for kind, key in keys:
            limit = self.limits[kind]
            failures = await self.store.add_failure(key, now, limit.quiet_after)
            lock = limit.lock_seconds(failures)
            if lock:
                await self.store.lock(key, now + lock)

    async def succeeded(self, keys: list[tuple[str, str]]) -> None:
        """A success forgets the login's failures (never the IP's: one good password must not reset a spray)."""
        for kind, key in keys:
            if kind == "login":
                await self.store.clear_throttle(key)
