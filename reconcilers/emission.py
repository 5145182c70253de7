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
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ambient_ctrl.client import Client
from ambient_ctrl.events import EventRecorder
from ambient_ctrl.readyourwrites import ReadYourWrites
from ambient_ctrl.reconcile import Request
from foundation.lru import LRU
from informers.errors import NotFound

from .metrics import SessionMetrics
from .phasetypes import Step
from .resources import AGENTIC_SESSIONS, Phase
from .status import find, parse_time, status_patch, write_delay

log = logging.getLogger("reconcilers.reconciler")
_WRITES = ("status", "intent")
"""A pass's writes to the session, in the order they are made."""

STEP_LINES: Mapping[Phase, tuple[int, str]] = {
    Phase.PENDING: (logging.INFO, "session pending"),
    Phase.CREATING: (logging.INFO, "session creating"),
    Phase.RUNNING: (logging.INFO, "session running"),
    Phase.STOPPING: (logging.INFO, "session stopping"),
    Phase.STOPPED: (logging.INFO, "session stopped"),
    Phase.COMPLETED: (logging.INFO, "session completed"),
    Phase.FAILED: (logging.WARNING, "session failed"),
}
"""The one line each lifecycle step logs (a phase entered), kopf-style: with ``session
created`` before the first and ``session deleted`` after the last, a session's story at INFO.
Fields: ``session``, ``backend``, ``from``, ``to``; ``seconds`` from the run's start to
Running; ``reason`` when it stops or fails."""
KNOWN_SESSIONS = 65_536
"""Sessions remembered as seen, so that a deletion is logged once (beyond it, the least
recently reconciled are forgotten, and their deletion goes unsaid)."""


class StatusEmitter:
    """Writes a pass's outcome. Thread-safe."""

    def __init__(self, client: Client, *, events: EventRecorder, metrics: SessionMetrics,
                 writes: ReadYourWrites) -> None:
        self._client = client
        self._events = events
        self._metrics = metrics
        self._writes = writes
        self._known: LRU[Request, bool] = LRU(KNOWN_SESSIONS)
        self._known_lock = threading.Lock()

    def stale(self, request: Request, cached_version: str) -> bool:
        """Whether the cache still shows a version older than our last write.

        A pass may write twice (the status, then the intent annotations), each over the
        version the other left: each write is remembered on its own, and the status write's
        is asked first — a cache still showing the version before both must not pass for
        "moved on" because it is not the version the second write replaced."""
        return any(self._writes.stale((request, write), cached_version)
                   for write in _WRITES)

    def forget(self, request: Request) -> None:
        """The session is gone (or going): forget our writes, and say so once."""
        for write in _WRITES:
            self._writes.forget((request, write))
        with self._known_lock:
            known = self._known.pop(request, False)
        if known:
            log.info("session deleted", extra={"session": str(request)})

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
        request = Request.for_object(session)
        with self._known_lock:
            seen = self._known.get(request, False)
            self._known[request] = True
        if not seen and not before:
            log.info("session created", extra={"session": str(request), "backend": backend})
        if before == after:
            return
        self._metrics.transition(backend, before or Phase.PENDING.value, after)
        ready = find(step.status, "Ready") or {}
        seconds: float | None = None
        if step.phase == Phase.RUNNING:
            begun = parse_time(step.status.get("startTime"))
            seconds = max((now - begun).total_seconds(), 0.0) if begun else None
            if seconds is not None:
                self._metrics.started(backend, seconds)
            self._events.record(session, "Normal", reason="Running", message=(
                f"the runner started {seconds:.1f} s after the run began" if seconds is not None
                else "the runner started"))
        elif step.phase in (Phase.STOPPED, Phase.COMPLETED):
            self._events.record(session, "Normal", reason=str(ready.get("reason") or after),
                                message=str(ready.get("message") or f"session is {after}"))
        if step.status.get("phase") == after:  # a step taken (bad input writes no phase)
            _log_step(request, step, backend, before=before, seconds=seconds,
                      reason=step.status.get("stoppedReason") or ready.get("reason"))


def _log_step(request: Request, step: Step, backend: str, *, before: str,
              seconds: float | None, reason: Any) -> None:
    """The step's one line (:data:`STEP_LINES`)."""
    extra: dict[str, Any] = {"session": str(request), "backend": backend,
                             "from": before or "(new)", "to": step.phase.value}
    if seconds is not None:
        extra["seconds"] = round(seconds, 1)
    if step.phase in (Phase.STOPPING, Phase.STOPPED, Phase.COMPLETED, Phase.FAILED) \
            and reason and reason != step.phase.value:
        extra["reason"] = reason
    level, message = STEP_LINES[step.phase]
    log.log(level, message, extra=extra)
