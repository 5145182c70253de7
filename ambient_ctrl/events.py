"""Kubernetes Events about objects, de-duplicated and rate-limited like client-go's recorder.

:class:`EventRecorder` writes core/v1 Events (what ``kubectl describe`` shows) following
client-go's ``EventCorrelator``:

* **De-duplication.** A repeat of the same event — same involved object (kind, apiVersion,
  namespace, name, uid), type, reason and message — within ``ttl`` seconds of its previous
  occurrence does not create a new Event: the existing one gets its ``count`` incremented and
  its ``lastTimestamp`` moved, by a merge patch. The window slides with each repeat (client-go
  keeps the record in an LRU with no expiry at all); after ``ttl`` seconds of quiet a repeat
  starts a new Event. If the Event was deleted meanwhile (the server expires them, an hour by
  default) the patch gets 404 and the Event is created again under the same name.
* **Rate limiting.** Each involved object has a token bucket (``burst`` events, refilled at
  ``qps``: by default 25, then one every five minutes) shared by all its events, repeats
  included, so an always-failing object cannot flood the API server. An event over the limit
  is dropped and not counted (debug log).
* **Best effort, off the reconcile's path.** :meth:`EventRecorder.record` never raises into
  the reconcile. Once started (the manager starts the recorders it hands out, see
  ``Manager.event_recorder``) it correlates in the caller's thread and queues the write to its
  own writer thread, as client-go's broadcaster does: a reconcile does not wait for a request
  that only informs. The queue is bounded (:data:`MAX_QUEUED`); an event
  that finds it full is dropped with a warning, and API errors and refused writes are logged
  and the event is lost. :meth:`stop` writes what is queued, within its timeout. Not started,
  or stopped, it writes in the caller's thread.

Events are world-readable to anyone who can list Events in the namespace, and they are kept
after the object is gone. **Messages are the caller's responsibility: never put secrets,
tokens, credentials or user data you would not log into a reason or message.**
"""

from __future__ import annotations

import datetime as _dt
import logging
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache

from foundation.clock import Clock, RealClock, rfc3339
from foundation.threads import Threads
from informers.errors import NotFound
from informers.resource import EVENTS

from .client import Client

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
_TYPES = (NORMAL, WARNING)
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_NAME_MAX = 253
_SUFFIX = 17  # "." and 16 hex digits
MAX_QUEUED = 10000
"""Events waiting for the writer thread before new ones are dropped. client-go keeps 1000; a
Python writer shares the interpreter with the reconcile workers and falls further behind in a
burst (2,000 sessions created at once dropped ~100 of their events with 1000), and a queued
event costs about a kilobyte."""


@dataclass(frozen=True, slots=True)
class _Seen:
    """What we know of an Event already written: enough to patch it."""

    name: str
    namespace: str
    count: int
    first_timestamp: str


@dataclass(frozen=True, slots=True)
class _Pending:
    """An event correlated and waiting to be written."""

    key: tuple[str, ...]
    seen: _Seen
    event: dict[str, Any]
    patch: bool


class _Bucket:
    """A token bucket that answers "now or never" (client-go's TryAccept)."""

    def __init__(self, *, burst: int, qps: float, now: float) -> None:
        self._burst = float(burst)
        self._qps = qps
        self._tokens = float(burst)
        self._last = now

    def try_accept(self, now: float) -> bool:
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._qps)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class EventRecorder:
    """Records Events about objects on behalf of one component (e.g. a controller's name).

    Thread-safe; share one per component. ``host`` names the instance (the pod name) in
    ``source.host`` and ``reportingInstance``. ``cache_size`` bounds both the de-duplication
    cache and the rate-limit buckets (least recently used entries go first).
    """

    def __init__(self, client: Client, *, component: str, host: str = "",
                 clock: Clock | None = None, ttl: float = 600.0, burst: int = 25,
                 qps: float = 1.0 / 300.0, cache_size: int = 4096) -> None:
        if not component:
            raise ValueError("an event recorder needs a component name")
        if burst < 1 or qps <= 0 or ttl <= 0:
            raise ValueError("burst must be at least 1, qps and ttl positive")
        self._client = client
        self._component = component
        self._host = host
        self._clock = clock or RealClock()
        self._burst = burst
        self._qps = qps
        timer = self._clock.monotonic
        self._seen: TTLCache[tuple[str, ...], _Seen] = TTLCache(cache_size, ttl, timer=timer)
        # An idle bucket refills completely in burst/qps seconds, so forgetting it then loses
        # nothing: a new bucket starts full.
        self._buckets: TTLCache[tuple[str, ...], _Bucket] = TTLCache(cache_size, burst / qps,
                                                                      timer=timer)
        self._lock = threading.Lock()
        self._last_nanos = 0
        self._queue: queue.Queue[_Pending | None] = queue.Queue(MAX_QUEUED)
        self._writer: threading.Thread | None = None
        self._threads = Threads(f"events {component}")
        self._dropped = 0

    # lifecycle (a manager Runnable) ------------------------------------------------------------
    def start(self) -> None:
        """Write from a thread of the recorder's own from now on."""
        with self._lock:
            if self._writer is None:
                self._writer = self._threads.start(self._drain,
                                                   name=f"events-{self._component}")

    def stop(self, timeout: float) -> bool:
        """Write what is queued (within ``timeout``), then stop the writer thread; later
        events are written in the caller's thread. False if the writer outlived ``timeout``."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is None:
            return True
        self._threads.stopping()
        self._queue.put(None)  # after everything queued so far
        writer.join(timeout)
        if writer.is_alive():
            log.warning("event writer still busy after its stop timeout",
                        extra={"component": self._component, "queued": self._queue.qsize()})
            return False
        return True

    def record(self, obj: Mapping[str, Any], type: str, *, reason: str, message: str) -> None:
        """Record an event of ``type`` (``Normal`` or ``Warning``) about ``obj``.

        ``reason`` is a short CamelCase machine-readable cause (``FailedCreate``), ``message``
        a human-readable sentence — without secrets (see the module docstring). Never raises:
        an unknown type is logged as an error and the event dropped, like client-go.
        """
        if type not in _TYPES:
            log.error("unsupported event type", extra={"event_type": type, "reason": reason})
            return
        involved = _involved(obj)
        target = _target_key(involved)
        key = (*target, type, reason, message)
        with self._lock:
            if not self._accept(target):
                log.debug("event dropped by the rate limit",
                          extra={"object": _describe(involved), "reason": reason})
                return
            now = rfc3339(self._clock.now())
            previous = self._seen.get(key)
            seen = (self._first(involved, now) if previous is None
                    else _Seen(previous.name, previous.namespace, previous.count + 1,
                               previous.first_timestamp))
            self._seen[key] = seen
        pending = _Pending(key, seen, self._event(involved, seen, type=type, reason=reason,
                                                  message=message, now=now),
                           patch=previous is not None)
        if self._writer is None:
            self._send(pending)
            return
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            self._dropped += 1
            log.warning("event dropped: the writer's queue is full", extra={
                "object": _describe(involved), "reason": reason, "dropped": self._dropped})

    def dead_threads(self) -> list[str]:
        """The writer thread, if it ended before :meth:`stop`."""
        return self._threads.dead()

    def _drain(self) -> None:
        while (pending := self._queue.get()) is not None:
            try:
                self._send(pending)
            except Exception:  # best effort, and the writer must outlive any one event
                log.exception("event not recorded", extra={"component": self._component})

    def _send(self, pending: _Pending) -> None:
        written = self._write(pending.event, patch=pending.patch)
        if not written and not pending.patch:
            # No Event exists under this name: the next occurrence must start afresh. (After a
            # failed patch the Event still exists; the next patch carries the count on.)
            with self._lock:
                if self._seen.get(pending.key) == pending.seen:
                    del self._seen[pending.key]

    # correlation -------------------------------------------------------------------------------
    def _accept(self, target: tuple[str, ...]) -> bool:
        now = self._clock.monotonic()
        bucket = self._buckets.get(target)
        if bucket is None:
            bucket = _Bucket(burst=self._burst, qps=self._qps, now=now)
        accepted = bucket.try_accept(now)
        self._buckets[target] = bucket  # re-inserting restarts the idle timer
        return accepted

    def _first(self, involved: Mapping[str, Any], now: str) -> _Seen:
        return _Seen(self._new_name(str(involved.get("name", ""))),
                     str(involved.get("namespace") or "default"), 1, now)

    def _new_name(self, object_name: str) -> str:
        """``<object>.<16 hex digits of the time in ns>`` like client-go, strictly increasing
        per recorder so events recorded in the same instant (or a fake clock's) differ."""
        now = self._clock.now()
        nanos = (now - _EPOCH) // _dt.timedelta(microseconds=1) * 1000
        self._last_nanos = max(nanos, self._last_nanos + 1)
        return f"{object_name[:_NAME_MAX - _SUFFIX]}.{self._last_nanos:016x}"

    def _event(self, involved: Mapping[str, Any], seen: _Seen, *, type: str, reason: str,
               message: str, now: str) -> dict[str, Any]:
        source = {"component": self._component}
        if self._host:
            source["host"] = self._host
        return {"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": seen.name, "namespace": seen.namespace},
                "involvedObject": dict(involved), "reason": reason, "message": message,
                "type": type, "source": source, "firstTimestamp": seen.first_timestamp,
                "lastTimestamp": now, "count": seen.count,
                "reportingComponent": self._component, "reportingInstance": self._host}

    # writing -----------------------------------------------------------------------------------
    def _write(self, event: dict[str, Any], *, patch: bool) -> bool:
        """Send the event; False (logged) when it was not written."""
        meta = event["metadata"]
        try:
            if patch:
                try:
                    self._client.patch(EVENTS, meta["name"],
                                       {"count": event["count"],
                                        "lastTimestamp": event["lastTimestamp"]},
                                       meta["namespace"], patch_type="merge")
                    return True
                except NotFound:
                    pass  # expired or deleted on the server: create it again
            self._client.create(EVENTS, event)
            return True
        except Exception as exc:  # best effort: an event must never fail the reconcile
            log.warning("event not recorded", extra={
                "object": _describe(event["involvedObject"]), "reason": event["reason"],
                "error": repr(exc)})
            return False


def _involved(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The ObjectReference of ``obj`` (empty fields left out)."""
    meta = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind"), "apiVersion": obj.get("apiVersion"),
           "name": meta.get("name"), "namespace": meta.get("namespace"),
           "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")}
    return {k: str(v) for k, v in ref.items() if v}


def _target_key(involved: Mapping[str, Any]) -> tuple[str, ...]:
    """The object an event is about; its resourceVersion is not part of its identity."""
    return tuple(str(involved.get(k, "")) for k in ("kind", "apiVersion", "namespace", "name",
                                                      "uid"))


def _describe(involved: Mapping[str, Any]) -> str:
    return f"{involved.get('kind', '')} {involved.get('namespace', '')}/{involved.get('name', '')}"
