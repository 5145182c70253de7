"""Creation expectations: don't create a child twice because the cache has not seen it yet.

A reconcile that creates a child and is run again a moment later (another event for the same
owner) reads the informer cache, which may not have the new child yet. Deterministic names
turn a duplicate create into a harmless AlreadyExists, but kinds with generated names (or a
costly create) need kube-controller-manager's ``ControllerExpectations`` idea, simplified to
names:

1. before issuing creates, the reconciler calls :meth:`Expectations.expect_creations` with the
   owner's key and the names it is about to create — *before*, because the informer may
   deliver the add before the create call even returns;
2. the informer's add handler calls :meth:`Expectations.observed` for each new child (and the
   reconciler calls it too for a create that failed, so nobody waits for an object that will
   never appear);
3. a reconcile first asks :meth:`Expectations.satisfied`; while it is False the cache is known
   to be behind and the reconcile should not act on missing children (requeue instead).

Entries expire after ``ttl`` seconds (a watch event can be lost for good, e.g. the child was
deleted before the informer listed it), after which the key counts as satisfied again:
expectations delay a reconcile, they never block one forever.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable

from cachetools import TTLCache

from foundation.clock import Clock, RealClock


class _Waiting:
    __slots__ = ("names", "since")

    def __init__(self, names: set[str], since: float) -> None:
        self.names, self.since = names, since


class Expectations:
    """Names each owner key still waits to see in the cache. Thread-safe."""

    def __init__(self, *, ttl: float = 300.0, clock: Clock | None = None,
                 maxsize: int = 65536) -> None:
        self._clock = clock or RealClock()
        # Values are edited in place: re-inserting would restart the entry's TTL, and the
        # deadline belongs to the expectation, not to its last observation.
        self._pending: TTLCache[Hashable, _Waiting] = TTLCache(maxsize, ttl,
                                                               timer=self._clock.monotonic)
        self._lock = threading.Lock()

    def expect_creations(self, key: Hashable, names: Iterable[str]) -> None:
        """Wait for ``names`` under ``key``, replacing what the key waited for before, and
        restart its ``ttl``. An empty ``names`` is the same as :meth:`forget`."""
        pending = set(names)
        with self._lock:
            if pending:
                self._pending[key] = _Waiting(pending, self._clock.monotonic())
            else:
                self._pending.pop(key, None)

    def observed(self, key: Hashable, name: str) -> None:
        """``name`` was seen (or will never come): stop waiting for it. Unknown keys and
        names are ignored, so informer handlers can call this for every add."""
        with self._lock:
            waiting = self._pending.get(key)
            if waiting is None or name not in waiting.names:
                return
            waiting.names.discard(name)
            if not waiting.names:
                del self._pending[key]

    def satisfied(self, key: Hashable) -> bool:
        """True when ``key`` waits for nothing: all observed, forgotten, never expected or
        expired."""
        with self._lock:
            return key not in self._pending

    def pending(self, key: Hashable) -> frozenset[str]:
        """The names ``key`` still waits for (empty when satisfied)."""
        with self._lock:
            waiting = self._pending.get(key)
            return frozenset(waiting.names) if waiting is not None else frozenset()

    def waited(self, key: Hashable) -> float:
        """Seconds since ``key``'s expectations were last set (0 when it waits for nothing):
        how far behind the cache is, or that what it waits for will not come by a watch (a
        child whose label was removed before a label-selected cache saw it), which is when a
        caller reads the server instead."""
        with self._lock:
            waiting = self._pending.get(key)
            return 0.0 if waiting is None else self._clock.monotonic() - waiting.since

    def forget(self, key: Hashable) -> None:
        """Drop ``key`` (call it when the owner is deleted)."""
        with self._lock:
            self._pending.pop(key, None)
