"""Status emission: what a pass tells the world — the session's status and intent
annotations (guarded writes), Events, metrics and the one log line per lifecycle step.

Writes are merge patches guarded by the resourceVersion they were computed from: a status
computed from a cache that still held an older session (or one deleted and re-created under
its name) answers 409 instead of landing, and an intent annotation the user wrote a moment ago
is never erased by clearing the previous one. Each write is remembered
(:class:`~ambient_ctrl.readyourwrites.ReadYourWrites`) so the next reconcile waits for the cache
to show it instead of acting on the version it replaced.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ambient_ctrl.client import Client
from ambient_ctrl.events import EventRecorder
from ambient_ctrl.readyourwrites import ReadYourWrites
from ambient_ctrl.reconcile import Request
from informers.errors import NotFound

from .metrics import SessionMetrics
from .phase import Step
from .resources import AGENTIC_SESSIONS, Phase
from .status import find, parse_time, status_patch, write_delay

log = logging.getLogger("reconcilers.reconciler")
_WRITES = ("status", "intent")
"""A pass's writes to the session, in the order they are made."""


class StatusEmitter:
    """Writes a pass's outcome. Thread-safe."""

    def __init__(self, client: Client, *, events: EventRecorder, metrics: SessionMetrics,
                 writes: ReadYourWrites) -> None:
        self._client = client
        self._events = events
        self._metrics = metrics
        self._writes = writes

    def stale(self, request: Request, cached_version: str) -> bool:
        """Whether the cache still shows a version older than our last write.

        A pass may write twice (the status, then the intent annotations), each over the
        version the other left: each write is remembered on its own, and the status write's
        is asked first — a cache still showing the version before both must not pass for
        "moved on" because it is not the version the second write replaced."""
        return any(self._writes.stale((request, write), cached_version)
                   for write in _WRITES)

    def forget(self, request: Request) -> None:
        for write in _WRITES:
            self._writes.forget((request, write))

    def write(self, session: Mapping[str, Any], status: dict[str, Any], *,
              clear: Sequence[str] = (), annotate: Mapping[str, str] | None = None,
              now: dt.datetime, defer: bool = True) -> float | None:
        """The status (if it changed), then the intent annotations; each guarded by the
        resourceVersion it was computed from, so a newer intent is never overwritten.
        Progress detail may wait (:func:`.status.write_delay`; not with ``defer`` off: a pass
        that ends without a requeue writes all it has): the seconds until it is due, None when
        nothing waits."""
        meta = session["metadata"]
        request = Request.for_object(session)
        version = str(meta.get("resourceVersion", ""))
        old = session.get("status") or {}
        delay = write_delay(old, status, now=now)
        if delay is not None and not defer:
            delay = 0.0
        try:
            if delay == 0.0:
                written = self._client.patch_status(
                    AGENTIC_SESSIONS, meta["name"],
                    {"metadata": {"resourceVersion": version},
                     "status": status_patch(old, status)}, meta["namespace"])
                after = str(written["metadata"].get("resourceVersion", ""))
                self._writes.wrote((request, "status"), before=version, after=after)
                version = after
            changes: dict[str, str | None] = {key: None for key in clear}
            changes.update(annotate or {})
            if changes:
                written = self._client.patch(
                    AGENTIC_SESSIONS, meta["name"],
                    {"metadata": {"resourceVersion": version, "annotations": changes}},
                    meta["namespace"])
                self._writes.wrote((request, "intent"), before=version,
                                   after=str(written["metadata"].get("resourceVersion", "")))
        except NotFound:
            pass  # the session is gone: nothing left to say about it
        return delay or None

    def report(self, session: Mapping[str, Any], old: Mapping[str, Any], step: Step,
                backend: str, now: dt.datetime) -> None:
        """Logs (one line per lifecycle step), Events and metrics of this pass."""
        self._metrics.passed(session, old, step, now)
        for event in step.events:
            self._events.record(session, event.type, reason=event.reason,
                                message=event.message)
            if event.type == "Warning":
                self._metrics.error(backend, event.reason)
        before = str(old.get("phase") or "")
        after = step.phase.value
        if before == after:
            return
        meta = session["metadata"]
        self._metrics.transition(backend, before or Phase.PENDING.value, after)
        extra: dict[str, Any] = {"session": f"{meta['namespace']}/{meta['name']}",
                                 "backend": backend, "from": before or "(new)", "to": after}
        ready = find(step.status, "Ready") or {}
        if step.phase == Phase.RUNNING:
            begun = parse_time(step.status.get("startTime"))
            seconds = max((now - begun).total_seconds(), 0.0) if begun else None
            if seconds is not None:
                self._metrics.started(backend, seconds)
                extra["seconds"] = round(seconds, 1)
            self._events.record(session, "Normal", reason="Running", message=(
                f"the runner started {seconds:.1f} s after the run began" if seconds is not None
                else "the runner started"))
        elif step.phase in (Phase.STOPPED, Phase.COMPLETED):
            self._events.record(session, "Normal", reason=str(ready.get("reason") or after),
                                message=str(ready.get("message") or f"session is {after}"))
        if step.phase == Phase.FAILED:
            extra["reason"] = ready.get("reason")
            log.warning("session failed", extra=extra)
        else:
            log.info("session phase changed", extra=extra)
