"""Per-object timers: reconcile every live object of a controller's kind periodically
(kopf's ``@kopf.timer``), on the workqueue — no thread per object, no thread of its own.

``Builder.every(interval, jitter=...)`` (or ``ControllerOptions(timer=Timer(...))``) arms, after
each reconcile of a request whose object is in the cache of the controller's ``for_`` kind, a
delayed add of that request ``interval`` seconds later, stretched by up to ``jitter`` times the
interval at random (client-go's ``wait.Jitter``), so objects created together do not tick
together. So:

* a timer starts with the first reconcile of an object, which its appearance in the cache
  causes, and is re-armed after every reconcile that does not fail;
* it stops when the object goes: the reconcile the deletion causes (or the tick due after it,
  at most one) finds the object out of the cache and arms nothing;
* ticks do not pile up: the workqueue keeps one delayed add per request, the earliest, and a
  request already waiting or being reconciled absorbs a tick that falls due; a reconcile that
  an event causes in between does not push the tick back;
* errors own the schedule: a failed reconcile is retried on its backoff and arms no tick (the
  retry that succeeds does); a terminal error stops the timer until the object changes, as
  kopf's PermanentError stops a timer. A tick armed before the failure still falls due (the
  workqueue cannot take a delayed add back): one retry at most comes sooner than its backoff.

The reconciler cannot tell a tick from an event (level-triggered: it reads the state and makes
it right). What kopf has and this has not: ``idle`` (tick only after the object has been
unchanged for a while), ``initial_delay``, ``sharp`` (the interval counted from the start of the
reconcile, not its end), several timers per kind, and a per-timer handler.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from foundation.clock import saturate

from .reconcile import Request
from .workqueue import WorkQueue


@dataclass(frozen=True, slots=True)
class Timer:
    """Reconcile each live object every ``interval`` seconds (plus jitter)."""

    interval: float
    """Seconds from the end of one reconcile of an object to its next tick."""
    jitter: float = 0.1
    """Up to this fraction of the interval is added at random to each tick (0: none)."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.interval) and self.interval > 0):
            raise ValueError(f"a timer's interval must be positive seconds, not "
                             f"{self.interval!r}")
        if not (math.isfinite(self.jitter) and self.jitter >= 0):
            raise ValueError(f"a timer's jitter must be a fraction of at least 0, not "
                             f"{self.jitter!r}")

    def delay(self, draw: float) -> float:
        """Seconds to the next tick for a uniform ``draw`` in [0, 1)."""
        return saturate(self.interval * (1.0 + self.jitter * draw))


@dataclass(slots=True)
class Ticker:
    """Arms a controller's ticks: :meth:`reconciled` after each reconcile that did not fail."""

    timer: Timer
    queue: WorkQueue[Request]
    live: Callable[[Request], bool]
    """Whether the request's object is in the cache of the controller's kind."""

    def reconciled(self, request: Request) -> None:
        if self.live(request):
            self.queue.add_after(request, self.timer.delay(random.random()))
