"""Informer health families (this project's own; client-go exposes none that fit).

- ``informer_events_total{resource,type}`` (counter): watch events received; ``type`` is
  ADDED, MODIFIED, DELETED, BOOKMARK, ERROR, or ``other`` for anything else.
- ``informer_relists_total{resource}`` (counter): full lists that (re)filled an informer's
  store, the initial list included; a steady rate means watches keep losing their place (410).
- ``informer_watch_restarts_total{resource}`` (counter): watch requests started, the first
  included; more than one per watch timeout (5-10 min) means streams keep breaking.
- ``informer_last_event_age_seconds{resource}`` (gauge, computed at scrape time): seconds since
  the last watch event (bookmarks count: they prove the stream is alive), or since the resource
  was first reported on if no event has arrived yet. A value far above the watch timeout means
  a stuck informer.

``resource`` is the ``plural.group`` form (``pods``, ``agenticsessions.vteam.ambient-code``).
Informers sharing a resource (other namespaces or selectors) share its series.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry

from ._family import Children, Row, ScrapeGauges, counter
from .bounded import bound

WATCH_EVENT_TYPES = ("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR")
"""The ``type`` values of a Kubernetes watch event."""

LAST_EVENT_AGE = "informer_last_event_age_seconds"


class InformerMetrics:
    """The informer families on one registry.

    Its methods have the shape of ``informers.reflector.ReflectorObserver``, so an instance can
    be handed to reflectors directly. Thread-safe.

    ``monotonic`` is the clock the ages are measured with (pass the manager's
    ``Clock.monotonic``; a fake clock makes ages deterministic in tests).
    """

    def __init__(self, registry: CollectorRegistry, *, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self.events = counter(registry, "informer_events_total",
                              "Watch events received by informers, by resource and event type",
                              ("resource", "type"))
        self.relists = counter(
            registry, "informer_relists_total",
            "Full lists that filled an informer's store, the initial list included",
            ("resource",))
        self.watch_restarts = counter(
            registry, "informer_watch_restarts_total",
            "Watch requests started by informers, the first one included", ("resource",))
        self._events = Children(self.events)
        self._lock = threading.Lock()
        self._last_event: dict[str, float] = {}
        registry.register(ScrapeGauges(((
            LAST_EVENT_AGE,
            "Seconds since an informer last received a watch event (bookmarks included), or "
            "since it started if none has arrived",
            ("resource",)),), self._rows))

    def _seen(self, resource: str) -> None:
        with self._lock:
            if resource in self._last_event:
                return
            self._last_event[resource] = self._monotonic()
        # First sight: create the resource's series at 0 so rates exist from the start.
        for event_type in WATCH_EVENT_TYPES:
            self.events.labels(resource, event_type)
        self.relists.labels(resource)
        self.watch_restarts.labels(resource)

    def event(self, resource: str, event_type: str) -> None:
        """A watch event of ``event_type`` arrived for ``resource``."""
        if resource not in self._last_event:  # once per resource: no lock on every event
            self._seen(resource)
        self._events(resource, bound(event_type, WATCH_EVENT_TYPES)).inc()
        now = self._monotonic()
        with self._lock:  # max(): a slower thread must not move the time backwards
            self._last_event[resource] = max(now, self._last_event[resource])

    def relist(self, resource: str) -> None:
        """A full list of ``resource`` started."""
        self._seen(resource)
        self.relists.labels(resource).inc()

    def watch_restart(self, resource: str) -> None:
        """A watch of ``resource`` started."""
        self._seen(resource)
        self.watch_restarts.labels(resource).inc()

    def _rows(self) -> Iterator[Row]:
        now = self._monotonic()
        with self._lock:
            last = list(self._last_event.items())
        for resource, at in last:
            yield LAST_EVENT_AGE, (resource,), max(0.0, now - at)
