"""Workqueue families, as controller-runtime v0.24 exposes them (``pkg/metrics/workqueue.go``
for the names, ``pkg/internal/metrics/workqueue.go`` for labels and buckets).

- ``workqueue_depth{name,controller,priority}`` (gauge; one series per priority the queue has
  seen, ``priority="-100"``, ``"0"``, ..., each staying at 0 once empty, as controller-runtime's;
  past :data:`MAX_PRIORITY_SERIES` distinct priorities, one ``exceeded_cardinality_limit``
  series with the whole depth; ``priority=""`` for a queue without priorities)
- ``workqueue_adds_total{name,controller}`` (counter)
- ``workqueue_queue_duration_seconds{name,controller}`` (histogram,
  :data:`WORKQUEUE_DURATION_BUCKETS`)
- ``workqueue_work_duration_seconds{name,controller}`` (histogram,
  :data:`WORKQUEUE_DURATION_BUCKETS`)
- ``workqueue_unfinished_work_seconds{name,controller}`` (gauge)
- ``workqueue_longest_running_processor_seconds{name,controller}`` (gauge)
- ``workqueue_retries_total{name,controller}`` (counter)

The queue pushes what happens (adds, retries, durations) through a :class:`WorkqueueRecorder`;
the three gauges are read from the queue itself (:class:`QueueStats`) when the registry is
scraped, so they are exact at that moment, cannot drift, and need no updater thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry

from ._family import Row, ScrapeGauges, counter, exponential_buckets, histogram

log = logging.getLogger(__name__)

WORKQUEUE_DURATION_BUCKETS: tuple[float, ...] = exponential_buckets(10e-9, 10, 12)
"""controller-runtime's ``ExponentialBuckets(10e-9, 10, 12)``: 10 ns to 1000 s."""

DEPTH = "workqueue_depth"
UNFINISHED_WORK = "workqueue_unfinished_work_seconds"
LONGEST_RUNNING_PROCESSOR = "workqueue_longest_running_processor_seconds"
MAX_PRIORITY_SERIES = 25
"""controller-runtime's ``maxRecommendedUniquePriorities``: depth series per queue at most."""
CARDINALITY_EXCEEDED = "exceeded_cardinality_limit"


class QueueStats(Protocol):
    """What a workqueue reports about itself at scrape time.

    Called from the scraping thread, concurrently with the queue's workers: implementations
    must be thread-safe and quick (take the queue's lock, copy, return; no I/O).
    """

    def depth(self) -> int:
        """Items waiting to be handed to a worker (not those in progress, not those whose
        delay has not run out yet)."""

    def depth_by_priority(self) -> Mapping[int, int] | None:
        """:meth:`depth` per priority, every priority seen included (at 0 when empty); None
        for a queue without priorities."""

    def processing_seconds(self) -> Iterable[float]:
        """For each item a worker holds right now, how long it has been holding it."""


class WorkqueueMetrics:
    """The workqueue families on one registry; :meth:`register` hands out per-queue recorders."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("name", "controller")
        self.adds = counter(registry, "workqueue_adds_total",
                            "Total number of adds handled by workqueue", labels)
        self.queue_duration = histogram(
            registry, "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            labels=labels, buckets=WORKQUEUE_DURATION_BUCKETS)
        self.work_duration = histogram(
            registry, "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.",
            labels=labels, buckets=WORKQUEUE_DURATION_BUCKETS)
        self.retries = counter(
            registry, "workqueue_retries_total",
            "Total number of items added to the workqueue with a non-zero delay (rate-limited "
            "requeues, explicit RequeueAfter or AddAfter calls)", labels)
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str], QueueStats] = {}
        registry.register(ScrapeGauges((
            (DEPTH, "Current depth of workqueue by workqueue and priority",
             (*labels, "priority")),
            (UNFINISHED_WORK,
             "How many seconds of work has been done that is in progress and hasn't been "
             "observed by work_duration. Large values indicate stuck threads. One can deduce "
             "the number of stuck threads by observing the rate at which this increases.",
             labels),
            (LONGEST_RUNNING_PROCESSOR,
             "How many seconds has the longest running processor for workqueue been running.",
             labels),
        ), self._rows))

    def register(self, name: str, *, stats: QueueStats,
                 controller: str | None = None) -> WorkqueueRecorder:
        """Announce a queue. ``controller`` defaults to ``name`` (controller-runtime names a
        controller's queue after the controller). The queue's counters start at 0.

        Raises ``ValueError`` if a queue with the same labels is registered and not closed.
        """
        key = (name, name if controller is None else controller)
        with self._lock:
            if key in self._queues:
                raise ValueError(f"workqueue {key[0]!r} of controller {key[1]!r} is registered")
            self._queues[key] = stats
        return WorkqueueRecorder(self, key)

    def _unregister(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._queues.pop(key, None)

    def _rows(self) -> Iterator[Row]:
        with self._lock:
            queues = list(self._queues.items())
        for labels, stats in queues:
            try:
                depths = _depth_series(stats)
                running = list(stats.processing_seconds())
            except Exception:  # one broken queue must not fail the whole scrape
                log.warning("workqueue stats unavailable", exc_info=True,
                            extra={"workqueue": labels[0], "controller": labels[1]})
                continue
            for priority, depth in depths:
                yield DEPTH, (*labels, priority), float(depth)
            yield UNFINISHED_WORK, labels, float(sum(running))
            yield LONGEST_RUNNING_PROCESSOR, labels, float(max(running, default=0.0))


def _depth_series(stats: QueueStats) -> list[tuple[str, int]]:
    """The depth gauge's (``priority`` label, value) pairs of one queue."""
    by_priority = stats.depth_by_priority()
    if by_priority is None:
        return [("", stats.depth())]
    if len(by_priority) > MAX_PRIORITY_SERIES:
        return [(CARDINALITY_EXCEEDED, sum(by_priority.values()))]
    return [(str(priority), depth) for priority, depth in sorted(by_priority.items())]


class WorkqueueRecorder:
    """Records what happens to one queue. Thread-safe."""

    def __init__(self, families: WorkqueueMetrics, key: tuple[str, str]) -> None:
        self.name, self.controller = key
        self._families = families
        self._key = key
        self._adds = families.adds.labels(*key)
        self._retries = families.retries.labels(*key)
        self._queue_duration = families.queue_duration.labels(*key)
        self._work_duration = families.work_duration.labels(*key)

    def added(self) -> None:
        """An item entered the queue. As in client-go, an add of an item that is already
        waiting collapses into it and is not counted."""
        self._adds.inc()

    def retried(self) -> None:
        """An item was added with a non-zero delay (rate-limited or explicit ``add_after``)."""
        self._retries.inc()

    def observe_queue_duration(self, seconds: float) -> None:
        """An item was handed to a worker ``seconds`` after it was added."""
        self._queue_duration.observe(seconds)

    def observe_work_duration(self, seconds: float) -> None:
        """A worker finished an item it had held for ``seconds``."""
        self._work_duration.observe(seconds)

    def close(self) -> None:
        """Stop reading the queue's stats (its gauges leave the exposition; counters and
        histograms stay, as in controller-runtime). The name may then be registered again."""
        self._families._unregister(self._key)
