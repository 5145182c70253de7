"""Per-object timers: reconcile every live object of a controller's kind periodically
(kopf's ``@kopf.timer``), on the workqueue — no thread per object, no thread of its own.

``Builder.every(interval, jitter=..., idle=...)`` (or ``ControllerOptions(timer=Timer(...))``)
arms, after each reconcile of a request whose object is in the cache of the controller's
``for_`` kind, a delayed add of that request ``interval`` seconds later, stretched by up to
``jitter`` times the interval at random (client-go's ``wait.Jitter``), so objects created
together do not tick together. So:

* a timer starts with the first reconcile of an object, which its appearance in the cache
  causes, and is re-armed after every reconcile that does not fail;
* it stops when the object goes: the reconcile the deletion causes (or the tick due after it,
  at most one) finds the object out of the cache and arms nothing;
* ticks do not pile up: the workqueue keeps one delayed add per request, the earliest, and a
  request already waiting or being reconciled absorbs a tick that falls due; a reconcile that
  an event causes in between does not push the tick back;
* a tick is added at ``LOW_PRIORITY``, as a resync is: fresh events go first (a tick merged
  with a pending add of higher priority keeps that priority);
* errors own the schedule: a failed reconcile is retried on its backoff and arms no tick (the
  retry that succeeds does); a terminal error stops the timer until the object changes, as
  kopf's PermanentError stops a timer. A tick armed before the failure still falls due (the
  workqueue cannot take a delayed add back): one retry at most comes sooner than its backoff.

``idle`` (kopf's): tick only once the object has been unchanged for that many seconds — the
first tick after a change comes ``idle`` seconds after it, the next ones every ``interval``.
A change is a new resourceVersion in the cache, seen at the next reconcile (the one the change
causes), so the reconciler's own writes to the object (a status patch) are changes too, as in
kopf. A tick armed before a change still falls due: at most one tick per change comes early,
and arms the next one at the end of the idle time. With ``idle``, the timer keeps each live
object's last resourceVersion and when it was first seen, dropped at the reconcile that finds
the object gone.

The reconciler cannot tell a tick from an event (level-triggered: it reads the state and makes
it right). What kopf has and this has not: ``initial_delay`` (an object's first reconcile is
the one its appearance causes, at once), ``sharp`` (the interval counted from the start of the
reconcile, not its end), several timers per kind, and a handler per timer.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from foundation.clock import Clock, saturate

from .reconcile import Request
from .workqueue import LOW_PRIORITY, WorkQueue


@dataclass(frozen=True, slots=True)
class Timer:
    """Reconcile each live object every ``interval`` seconds (plus jitter)."""

    interval: float
    """Seconds from the end of one reconcile of an object to its next tick."""
    jitter: float = 0.1
    """Up to this fraction of each wait is added at random (0: none)."""
    idle: float = 0.0
    """Tick only once the object has been unchanged this many seconds (0: always)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.interval) and self.interval > 0):
            raise ValueError(f"a timer's interval must be positive seconds, not "
                             f"{self.interval!r}")
        if not (math.isfinite(self.jitter) and self.jitter >= 0):
            raise ValueError(f"a timer's jitter must be a fraction of at least 0, not "
                             f"{self.jitter!r}")
        if not (math.isfinite(self.idle) and self.idle >= 0):
            raise ValueError(f"a timer's idle time must be seconds of at least 0, not "
                             f"{self.idle!r}")

    def delay(self, draw: float, *, unchanged_for: float = math.inf) -> float:
        """Seconds to the next tick of an object unchanged for ``unchanged_for`` seconds, for
        a uniform ``draw`` in [0, 1)."""
        wait = self.idle - unchanged_for if unchanged_for < self.idle else self.interval
        return saturate(wait * (1.0 + self.jitter * draw))


class Ticker:
    """Arms a controller's ticks: :meth:`reconciled` after each reconcile that did not fail.
    Called by the controller's workers (never two at once for one request)."""

    def __init__(self, timer: Timer, queue: WorkQueue[Request],
                 cached_version: Callable[[Request], str | None], clock: Clock) -> None:
        self.timer = timer
        self._queue = queue
        self._version = cached_version
        self._clock = clock
        self._seen: dict[Request, tuple[str, float]] = {}
        """With ``idle``: each live object's last resourceVersion, and when it was first seen."""
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Objects whose last change the timer keeps (with ``idle`` only)."""
        with self._lock:
            return len(self._seen)

    def reconciled(self, request: Request) -> None:
        version = self._version(request)
        if version is None:  # not in the cache (gone, or not of the controller's kind)
            if self.timer.idle:
                with self._lock:
                    self._seen.pop(request, None)
            return
        unchanged_for = self._unchanged_for(request, version) if self.timer.idle else math.inf
        self._queue.add_after(request, self.timer.delay(random.random(),
                                                        unchanged_for=unchanged_for),
                              LOW_PRIORITY)

    def _unchanged_for(self, request: Request, version: str) -> float:
        now = self._clock.monotonic()
        with self._lock:
            seen = self._seen.get(request)
            if seen is None or seen[0] != version:
                seen = self._seen[request] = (version, now)
        return now - seen[1]
