"""Read-your-writes: know when the cache has not yet caught up with our own last write.

A reconcile reads the object from the informer cache, writes (say) its status, and returns.
Another event for the same object — a child changed — starts the next reconcile a moment
later, often before the watch has delivered our write: the cache still shows the version we
wrote over. Acting on it recomputes from stale state; a write guarded by that resourceVersion
fails with 409 Conflict and costs a request, an error, a backoff and another reconcile (in
the benchmark's steady run, one conflict for every two sessions before this existed).

So a reconciler records each write (:meth:`ReadYourWrites.wrote`: the resourceVersion it
wrote over and the one the server answered), and a reconcile first asks
:meth:`ReadYourWrites.stale` with the version the cache shows. Versions are compared for
equality only (they are opaque strings): the cache is stale while it still shows the version
we wrote over. Entries expire after ``ttl`` seconds and are dropped once the cache shows
another version, so a lost watch event delays a reconcile, never blocks it.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

from cachetools import TTLCache

from foundation.clock import Clock, RealClock


class ReadYourWrites:
    """The versions our writes replaced, per object key, until the cache moves past them.
    Thread-safe."""

    def __init__(self, *, ttl: float = 30.0, clock: Clock | None = None,
                 maxsize: int = 65536) -> None:
        clock = clock or RealClock()
        self._replaced: TTLCache[Hashable, tuple[str, str]] = TTLCache(
            maxsize, ttl, timer=clock.monotonic)
        self._lock = threading.Lock()

    def wrote(self, key: Hashable, *, before: str, after: str) -> None:
        """A write turned ``key``'s version ``before`` into ``after`` (the server's answer)."""
        if before and after and before != after:
            with self._lock:
                self._replaced[key] = (before, after)

    def stale(self, key: Hashable, cached_version: str) -> bool:
        """Whether a cache showing ``cached_version`` of ``key`` is behind our last write."""
        with self._lock:
            entry = self._replaced.get(key)
            if entry is None:
                return False
            if cached_version == entry[0]:
                return True
            del self._replaced[key]  # caught up (or moved on): stop checking
            return False

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._replaced.pop(key, None)
