"""A small async cache: expiry, invalidation from another thread, one load per key at a time."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class AsyncTTLCache:
    """Values by key, loaded on a miss and kept ``ttl`` seconds or until invalidated.

    Invalidation may come from the event listener's thread. A load that was
    already running when its key was invalidated still answers its callers but
    is not kept, so a stale answer never outlives the event that outdated it.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic, max_entries: int = 100_000):
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._inflight: dict[Hashable, asyncio.Future] = {}
        self._generation = 0
        self._key_generation: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: Hashable) -> Any:
        hit = self._entries.get(key)
        if hit is not None and hit[0] > self.clock():
            return hit[1]
        return None

    async def get(self, key: Hashable, load: Callable[[], Awaitable[Any]]) -> Any:
        hit = self._entries.get(key)
        if hit is not None and hit[0] > self.clock():
            return hit[1]
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        return await self._load(key, load)

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[Any]]) -> Any:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        # a failure nobody else awaited must not be reported as "never retrieved"
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._inflight[key] = future
        stamp = (self._generation, self._key_generation.get(key, 0))
        try:
            value = await load()
        except BaseException as exc:
            self._inflight.pop(key, None)
            # callers sharing this load get an error of their own, never a cancellation
            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("load abandoned"))
            raise
        with self._lock:
            self._inflight.pop(key, None)
            if stamp == (self._generation, self._key_generation.get(key, 0)):
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
                self._entries[key] = (self.clock() + self.ttl, value)
        future.set_result(value)
        return value

    def invalidate(self, key: Hashable) -> None:
        with self._lock:
            self._key_generation[key] = self._key_generation.get(key, 0) + 1
            self._entries.pop(key, None)

    def invalidate_where(self, predicate: Callable[[Hashable], bool]) -> None:
        with self._lock:
            for key in [k for k in list(self._entries) + list(self._inflight) if predicate(k)]:
                self._key_generation[key] = self._key_generation.get(key, 0) + 1
                self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
