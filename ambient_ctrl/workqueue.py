"""The workqueue: client-go's semantics, so N workers can share it safely.

* an item is never handed to two workers at once: while one holds it, adding it again only
  marks it dirty, and it is handed out again after :meth:`WorkQueue.done`;
* bursts collapse: adding an item already waiting does nothing (but raise its priority);
* priorities, as controller-runtime's ``priorityqueue`` (0.23+): a higher priority is handed
  out first, first in first out within a priority; an item added again keeps the higher of
  its priorities, and one raised goes to the back of its new priority (an item re-added while
  held, or whose delay ran out, goes to the back of its priority then). Event handlers add
  what an informer's initial list (or an unchanged resync) brings at :data:`LOW_PRIORITY`,
  so events arriving meanwhile are not stuck behind that backlog (``handler.py``);
  ``priorities=False`` makes every priority :data:`NORMAL_PRIORITY`: one FIFO, as client-go;
* :meth:`WorkQueue.add_after` keeps the earliest time when an item is delayed twice;
* :meth:`WorkQueue.add_rate_limited` delays by the rate limiter's backoff, :meth:`forget` ends
  it, :meth:`num_requeues` tells how far it went;
* ``workqueue_retries_total`` counts every delayed add — each :meth:`~WorkQueue.add_after`,
  hence each rate-limited add and each requeue-after, whatever the delay (zero included) —
  and nothing once shut down, as client-go's ``AddAfter`` counts;
* after :meth:`WorkQueue.shutdown` nothing new is taken or handed out: ``get`` returns None at
  once, even with items waiting, and ``done`` puts nothing back; ``shutdown(drain=True)``
  (client-go's ``ShutDownWithDrain``) also waits for the items workers hold to be done.

One deliberate difference from client-go: its ``Get`` keeps handing out items already queued
after ``ShutDown`` and reports shutdown only once the queue is empty (its doc comment says
"immediately instruct the worker goroutines to exit", its code drains the queue).
controller-runtime gets away with that because each reconcile it starts then has a cancelled
context and returns at once. Our reconciles have no context to cancel, so handing out the
backlog would run it in full against the graceful-shutdown deadline (or, when leadership is
lost, write after we may have stopped leading). Items left waiting lose nothing: whoever runs
next lists every object and enqueues it again.

Items waiting to be handed out sit in a heap keyed by (priority, order of arrival): ``add`` and
``get`` cost O(log n) whatever the priorities. Raising an item's priority pushes a new entry
and leaves the old one to be skipped when it surfaces (lazily; the heap is rebuilt whenever
such stale entries outnumber the live ones, so memory stays proportional to the items).

Time comes from an injected clock; delayed items are moved to the queue by one thread the queue
owns (started on the first delayed add, joined at shutdown). Delays saturate
(:func:`~foundation.clock.saturate`): NaN and negatives mean now, anything over a year (1e10 s,
infinity) means a year; nothing an item asks for can stop the delay thread, which logs and
carries on should its work ever raise (and is reported by :meth:`WorkQueue.dead_threads` if it
dies anyway).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import operator
import threading
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

from foundation.clock import Clock, RealClock, saturate
from foundation.threads import Threads
from metrics.workqueue import WorkqueueMetrics, WorkqueueRecorder

from .ratelimit import RateLimiter, default_controller_rate_limiter

T = TypeVar("T", bound=Hashable)
log = logging.getLogger(__name__)

_DELAY_THREAD_JOIN_SECONDS = 5.0
_IDLE_PAUSE = 3600.0
"""How long the delay thread sleeps with nothing waiting (an add wakes it at once)."""
_RECOVERY_PAUSE = 1.0
"""Real seconds the delay thread pauses after its work raised, so a failure does not spin."""

NORMAL_PRIORITY = 0
"""The priority of an add that names none: watch events, requeues, retries."""
LOW_PRIORITY = -100
"""What an informer's initial list and unchanged resyncs are added at (controller-runtime's
``handler.LowPriority``)."""
_STALE_SLACK = 64
"""Stale heap entries tolerated beyond the live ones before the heap is rebuilt."""


class WorkQueue(Generic[T]):
    """A rate-limited, delaying, deduplicating priority work queue (thread-safe).

    ``priorities``: honour the priorities items are added with (controller-runtime's
    ``UsePriorityQueue``, on by default); False hands everything out first in, first out."""

    def __init__(self, *, name: str = "", rate_limiter: RateLimiter | None = None,
                 clock: Clock | None = None, metrics: WorkqueueMetrics | None = None,
                 controller: str | None = None, priorities: bool = True) -> None:
        self.name = name
        self.priorities = priorities
        self._clock = clock or RealClock()
        self._limiter = rate_limiter or default_controller_rate_limiter(self._clock)
        self._cond = threading.Condition()
        self._ready: list[tuple[int, int, T]] = []
        """Heap of (-priority, arrival, item); an entry is live while ``_entries`` says so."""
        self._entries: dict[T, int] = {}
        """Items waiting to be handed out → the arrival number of their live heap entry."""
        self._depths: dict[int, int] = {NORMAL_PRIORITY: 0}
        """Priority → items waiting at it (every priority seen stays, at 0 when none)."""
        self._dirty: dict[T, int] = {}
        """Items to hand out (waiting, or added again while held) → their priority."""
        self._processing: dict[T, float] = {}
        self._added_at: dict[T, float] = {}
        self._waiting: list[tuple[float, int, T]] = []
        self._delayed: dict[T, tuple[float, int, int]] = {}
        """Delayed items → (when due, priority, asked): the earliest time, the highest
        priority, and the number (:meth:`asked`) of the latest delayed add merged into it."""
        self._asked = 0
        self._seq = itertools.count()
        self._shutting_down = False
        self._wakeup = threading.Event()
        self._stopped = threading.Event()
        self._delay_thread: threading.Thread | None = None
        self._threads = Threads(f"workqueue {name}")
        self._metrics: WorkqueueRecorder | None = (
            metrics.register(name, stats=self, controller=controller) if metrics else None)

    def _priority(self, priority: int) -> int:
        """``priority`` as an int (TypeError for anything else), or normal without priorities."""
        priority = operator.index(priority)
        return priority if self.priorities else NORMAL_PRIORITY

    # adding ------------------------------------------------------------------------------------
    def add(self, item: T, priority: int = NORMAL_PRIORITY) -> None:
        """Add ``item`` (higher ``priority`` first); if it is waiting already, it keeps the
        higher of the two priorities."""
        priority = self._priority(priority)
        with self._cond:
            self._add_locked(item, priority)

    def _add_locked(self, item: T, priority: int) -> None:
        if self._shutting_down:
            return
        queued = self._dirty.get(item)
        if queued is not None:
            if priority > queued:
                self._dirty[item] = priority
                if item in self._entries:  # waiting: moves up; held: goes back at it
                    self._depths[queued] -= 1
                    self._push(item, priority)
            return
        if self._metrics is not None:
            self._metrics.added()
        self._dirty[item] = priority
        self._added_at[item] = self._clock.monotonic()
        if item in self._processing:
            return  # handed out again once the worker holding it is done
        self._push(item, priority)
        self._cond.notify()

    def _push(self, item: T, priority: int) -> None:
        """Queue ``item`` behind everything of its priority (its older entry goes stale)."""
        seq = next(self._seq)
        self._entries[item] = seq
        self._depths[priority] = self._depths.get(priority, 0) + 1
        heapq.heappush(self._ready, (-priority, seq, item))
        if len(self._ready) > 2 * len(self._entries) + _STALE_SLACK:
            self._ready = [e for e in self._ready if self._entries.get(e[2]) == e[1]]
            heapq.heapify(self._ready)

    def _pop(self) -> tuple[T, int]:
        """The first live item of the highest priority, and its priority (stale ones go)."""
        while True:
            negated, seq, item = heapq.heappop(self._ready)
            if self._entries.get(item) == seq:
                del self._entries[item]
                self._depths[-negated] -= 1
                return item, -negated

    def add_after(self, item: T, delay: float, priority: int = NORMAL_PRIORITY) -> None:
        """Add ``item`` after ``delay`` seconds (at once if ``delay`` <= 0 or NaN; a delay over
        a year, infinity included, is a year). Delayed twice, it is due at the earlier time
        with the higher priority. Counted as a retry either way, as client-go counts every
        ``AddAfter`` (not once shut down)."""
        delay = saturate(delay)
        priority = self._priority(priority)
        with self._cond:
            if self._shutting_down:
                return
            if self._metrics is not None:
                self._metrics.retried()
            if delay <= 0:
                self._add_locked(item, priority)
                return
            ready = self._clock.monotonic() + delay
            self._asked += 1
            due, was, _ = self._delayed.get(item, (float("inf"), priority, 0))
            self._delayed[item] = (min(due, ready), max(was, priority), self._asked)
            if due <= ready:
                return  # already due earlier
            if len(self._waiting) > 2 * len(self._delayed) + 64:
                self._compact()
            sooner = not self._waiting or ready < self._waiting[0][0]
            heapq.heappush(self._waiting, (ready, next(self._seq), item))
            if self._delay_thread is None:
                self._delay_thread = self._threads.start(self._delay_loop,
                                                         name=f"workqueue-{self.name}-delay")
        if sooner:  # else the delay thread wakes for an earlier item first, and looks again
            self._wakeup.set()

    def add_rate_limited(self, item: T, *, at_least: float = 0.0,
                         priority: int = NORMAL_PRIORITY) -> None:
        """Add ``item`` after the rate limiter's backoff, or after ``at_least`` seconds if
        that is longer (a server's Retry-After). Counts a failure for the item either way."""
        self.add_after(item, max(saturate(self._limiter.when(item)), saturate(at_least)),
                       priority)

    def _compact(self) -> None:
        """Rebuild the heap of delayed adds from the live ones: entries superseded by an
        earlier due time or taken back (:meth:`drop_delayed`) stay in the heap until they
        come up, and a request dropped and delayed again by every reconcile would pile them
        up for as long as its delay (amortised O(1): at most once per as many pushes)."""
        self._waiting = [(due, next(self._seq), item)
                         for item, (due, _, _) in self._delayed.items()]
        heapq.heapify(self._waiting)

    def asked(self) -> int:
        """How many delayed adds (:meth:`add_after`) were made so far: a mark for
        :meth:`drop_delayed`."""
        return self._asked

    def drop_delayed(self, item: T, *, asked_by: int | None = None) -> bool:
        """Take back a delayed add of ``item`` that is still waiting (whether there was one);
        an add already due, or the item waiting or being processed, stays. ``asked_by`` (a
        mark of :meth:`asked`): only if every delayed add merged into it was made by then —
        one made since (an event seen while the item was processed) stays."""
        with self._cond:
            delayed = self._delayed.get(item)
            if delayed is None or (asked_by is not None and delayed[2] > asked_by):
                return False
            del self._delayed[item]
            return True

    def forget(self, item: T) -> None:
        self._limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self._limiter.num_requeues(item)

    def _delay_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                pause = self._move_due()
                if pause is None:
                    return
                self._clock.wait(self._wakeup, pause)
            except Exception:  # never die of it: every delayed item of the process waits on us
                log.exception("workqueue delay thread failed; carrying on",
                              extra={"queue": self.name})
                self._stopped.wait(_RECOVERY_PAUSE)

    def _move_due(self) -> float | None:
        """Queue the items due by now; how long until the next one (None once stopped)."""
        with self._cond:
            # Clear the wakeup before looking at _stopped and the heap: a shutdown or an
            # add_after that sets it after either look then ends the wait at once.
            self._wakeup.clear()
            if self._stopped.is_set():
                return None
            now = self._clock.monotonic()
            while self._waiting and self._waiting[0][0] <= now:
                ready, _, item = heapq.heappop(self._waiting)
                due = self._delayed.get(item)
                if due is not None and due[0] == ready:
                    del self._delayed[item]
                    self._add_locked(item, due[1])
            return self._waiting[0][0] - now if self._waiting else _IDLE_PAUSE

    def dead_threads(self) -> list[str]:
        """The delay thread, if it ended before shutdown (see ``foundation.threads``)."""
        return self._threads.dead()

    # handing out -------------------------------------------------------------------------------
    def get(self, timeout: float | None = None) -> T | None:
        """The next item, blocking until there is one; None once shut down (or on timeout)."""
        got = self.get_with_priority(timeout)
        return None if got is None else got[0]

    def get_with_priority(self, timeout: float | None = None) -> tuple[T, int] | None:
        """The next item and the priority it waited at (what a requeue of it keeps), as
        :meth:`get`."""
        with self._cond:
            if not self._entries and not self._shutting_down:
                self._cond.wait_for(lambda: self._entries or self._shutting_down, timeout)
            if self._shutting_down or not self._entries:
                return None
            item, priority = self._pop()
            now = self._clock.monotonic()
            self._processing[item] = now
            del self._dirty[item]
            added = self._added_at.pop(item, now)
        if self._metrics is not None:
            self._metrics.observe_queue_duration(now - added)
        return item, priority

    def done(self, item: T) -> None:
        with self._cond:
            started = self._processing.pop(item, None)
            # Only an item a worker held goes back: one not held that is dirty is waiting
            # already, and queueing it again would hand it to two workers.
            if started is not None and item in self._dirty and not self._shutting_down:
                self._push(item, self._dirty[item])
                self._cond.notify()
            if self._shutting_down:
                # A draining shutdown may be waiting for this. Only then: waking every idle
                # worker on each done (to find nothing and sleep again) cost ~5 % of a busy
                # operator's CPU.
                self._cond.notify_all()
        if self._metrics is not None and started is not None:
            self._metrics.observe_work_duration(self._clock.monotonic() - started)

    # state -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def depth(self) -> int:
        with self._cond:
            return len(self._entries)

    def depth_by_priority(self) -> dict[int, int] | None:
        """Items waiting per priority, every priority seen so far included (at 0 once none
        waits, as controller-runtime's gauge stays); None for a queue without priorities."""
        if not self.priorities:
            return None
        with self._cond:
            return dict(self._depths)

    def processing_seconds(self) -> Iterable[float]:
        with self._cond:  # read now under the lock: a get after it would make ages negative
            now = self._clock.monotonic()
            return [now - started for started in self._processing.values()]

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def shutdown(self, *, drain: bool = False, timeout: float = 30.0) -> bool:
        """Stop handing out work; with ``drain``, wait up to ``timeout`` seconds (real time)
        for items in progress to be done. Returns whether nothing is left in progress."""
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()
            if drain:
                self._cond.wait_for(lambda: not self._processing, timeout)
            idle = not self._processing
        self._threads.stopping()
        self._stopped.set()
        self._wakeup.set()
        # Woken above, the delay thread ends at once; its join must not depend on how long the
        # caller would wait for workers (``timeout`` may be 0).
        self._threads.join(_DELAY_THREAD_JOIN_SECONDS)
        if self._metrics is not None:
            self._metrics.close()
        return idle
