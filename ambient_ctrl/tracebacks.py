"""Which failures have shown their traceback: once per object and error, until it changes.

A reconcile that fails the same way on every retry would print the same 30-line traceback
each time (the backoff reaches 1000 s, but a burst of retries comes first). The controller
asks :meth:`TracebackMemory.first` before logging a failure: the first time an object fails
with an error, the traceback is logged; a repeat of the same error (type and message) is one
line; a different error, or the same one after a success (:meth:`forget`), shows its
traceback again. Bounded: the least recently failed objects are forgotten first.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

from cachetools import LRUCache


def signature(error: BaseException) -> tuple[str, str]:
    """What makes two failures "the same error": its type and its message."""
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}", str(error)


class TracebackMemory:
    """Thread-safe; one per controller."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self._seen: LRUCache[Hashable, tuple[str, str]] = LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()

    def first(self, key: Hashable, error: BaseException) -> bool:
        """Whether ``error`` is news for ``key`` (and remember it as the last one shown)."""
        sig = signature(error)
        with self._lock:
            if self._seen.get(key) == sig:
                return False
            self._seen[key] = sig
            return True

    def forget(self, key: Hashable) -> None:
        """``key`` succeeded (or ended): its next failure is news again."""
        with self._lock:
            self._seen.pop(key, None)
