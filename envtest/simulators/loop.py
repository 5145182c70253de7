"""Scheduling simulator work on the server's loop: owned timers and a coalescing sync queue.

Simulators never block, sleep or start threads; they arm timers on the server's event loop and
sync objects from a queue drained on the next loop iteration. Work never runs inside an event
delivery (``Subscriber.offer``): a write there would reach some watchers before the event being
delivered, so offers only enqueue. Every callback is guarded: an unexpected exception is logged
with its context and dropped, it never unwinds into the loop or a client's request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger("envtest.simulators")


def guarded(what: str, fn: Callable[..., Any], *args: Any) -> None:
    """Call ``fn(*args)``; log (never raise) whatever it raises."""
    try:
        fn(*args)
    except Exception:  # a simulator bug must not take the server down
        log.exception("simulator step failed", extra={"step": what, "detail": repr(args)[:200]})


class Timers:
    """Timers grouped by owner (a pod, a VMI), so one owner's can be cancelled together."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handles: dict[Hashable, set[asyncio.TimerHandle]] = {}

    def later(self, owner: Hashable, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in ``delay`` seconds unless ``owner``'s timers are cancelled."""
        handles = self._handles.setdefault(owner, set())

        def fire() -> None:
            handles.discard(handle)
            if not handles and self._handles.get(owner) is handles:
                del self._handles[owner]
            guarded(getattr(fn, "__name__", "timer"), fn, *args)

        handle = self._loop.call_later(max(0.0, delay), fire)
        handles.add(handle)

    def replace(self, owner: Hashable, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        """Like :meth:`later`, after cancelling what ``owner`` had pending (one wake-up each)."""
        self.cancel(owner)
        self.later(owner, delay, fn, *args)

    def cancel(self, owner: Hashable) -> None:
        for handle in self._handles.pop(owner, ()):
            handle.cancel()

    def cancel_all(self) -> None:
        for owner in list(self._handles):
            self.cancel(owner)

    def pending(self, owner: Hashable) -> bool:
        return bool(self._handles.get(owner))


class SyncQueue:
    """Keys to sync, deduplicated and drained by ``sync(key)`` on the next loop iteration.

    Like a controller's workqueue without rate limiting: a key added while it waits is synced
    once; a key added while it is being synced is synced again afterwards (level-triggered).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sync: Callable[[Any], None]) -> None:
        self._loop = loop
        self._sync = sync
        self._pending: dict[Hashable, None] = {}  # insertion-ordered set
        self._handle: asyncio.Handle | None = None

    def add(self, key: Hashable) -> None:
        self._pending[key] = None
        if self._handle is None:
            self._handle = self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._handle = None
        batch, self._pending = self._pending, {}
        for key in batch:
            guarded("sync", self._sync, key)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._pending.clear()
