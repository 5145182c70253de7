"""Upstream's operator metrics under upstream's names, for the dashboards built on them
(``ambient-ctrl run --upstream-metrics``; off by default).

Upstream's operator exports OpenTelemetry instruments (``ambient.session.startup.duration``,
...) over OTLP to a collector whose Prometheus exporter turns them into ``ambient_*`` series;
upstream's Grafana dashboard (components/manifests/observability/.../ambient-operator-dashboard
.json) queries those. This module records the same series as Prometheus families on the
operator's own registry — upstream's names as the collector exposes them (dots as underscores,
counters without ``_total``: :meth:`~metrics.Recorder.unsuffixed_counter`), upstream's label
names and values — fed from the passes our own families are fed from, so the dashboard works
with this operator's /metrics scraped directly: no SDK, no collector.

============================================  =========  ==========================================
family                                        type       labels
============================================  =========  ==========================================
ambient_sessions_active                       gauge      namespace (Running sessions, at scrape)
ambient_sessions_pending                      gauge      namespace (Pending and Creating, at scrape)
ambient_session_startup_duration              histogram  namespace
ambient_session_total_duration                histogram  namespace
ambient_session_phase_transitions             counter    namespace, from_phase, to_phase
ambient_sessions_completed                    counter    namespace, final_phase
ambient_sessions_by_project                   counter    namespace
ambient_sessions_by_user                      counter    namespace, user
ambient_reconcile_duration                    histogram  phase, success
ambient_reconcile_retries                     counter    namespace, phase
ambient_session_timeouts                      counter    namespace
============================================  =========  ==========================================

Bounded where upstream's are not: a namespace label keeps the first :data:`NAMESPACES`
namespaces it sees (one set for every family; later ones are ``other``), ``user`` the first
:data:`USERS` users; phases come from the fixed set. The gauges count live sessions, so their
series go with the sessions.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ambient_ctrl.client import Client
from ambient_ctrl.reconcile import Reconciler, Request, Result
from foundation.clock import Clock
from metrics.bounded import FirstSeen
from metrics.recorder import Recorder

from .metrics import PHASES, STARTUP_BUCKETS, Step
from .resources import AGENTIC_SESSIONS, Phase
from .status import parse_time

NAMESPACES = 250
"""Distinct namespaces (projects) the counters and histograms keep; later ones are ``other``."""
USERS = 100
"""Distinct users ``ambient_sessions_by_user`` keeps; later ones are ``other``."""
CREATED_BY = "ambient-code.io/created-by"
"""The annotation upstream reads the user from (``unknown`` without it, as upstream)."""
TERMINAL = (Phase.STOPPED.value, Phase.COMPLETED.value, Phase.FAILED.value)
LOST_FROM = (Phase.CREATING.value, Phase.RUNNING.value)
TOTAL_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800)
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
NAMESPACE_PHASE_INDEX = "namespace-phase"
"""Sessions indexed by ``namespace/phase``: what the two gauges count."""


def namespace_phase(session: Mapping[str, Any]) -> tuple[str]:
    """The index value that counts a session in the gauges: ``namespace/phase``."""
    phase = (session.get("status") or {}).get("phase") or Phase.PENDING.value
    return (f"{session['metadata'].get('namespace', '')}/{phase}",)


class UpstreamMetrics:
    """Upstream's series. ``sessions`` gives the counts of the :func:`namespace_phase` index
    (read at scrape time, as our ``agentic_sessions``)."""

    def __init__(self, recorder: Recorder, *,
                 sessions: Callable[[], Mapping[str, int]]) -> None:
        namespace = FirstSeen(NAMESPACES)
        phase = {"phase": PHASES}
        self._startup = recorder.bounded_histogram(
            "ambient_session_startup_duration",
            "Seconds from the start of a session's run to Running (upstream's "
            "ambient.session.startup.duration).",
            labels={"namespace": namespace}, buckets=STARTUP_BUCKETS)
        self._total = recorder.bounded_histogram(
            "ambient_session_total_duration",
            "Seconds from a run's start to its end (upstream's ambient.session.total.duration).",
            labels={"namespace": namespace}, buckets=TOTAL_BUCKETS)
        self._reconcile = recorder.bounded_histogram(
            "ambient_reconcile_duration",
            "Seconds per reconcile, by the session's phase when it began (upstream's "
            "ambient.reconcile.duration).",
            labels={**phase, "success": ("true", "false")}, buckets=RECONCILE_BUCKETS)
        self._transitions = recorder.unsuffixed_counter(
            "ambient_session_phase_transitions",
            "Session phase transitions (upstream's ambient.session.phase.transitions).",
            labels={"namespace": namespace, "from_phase": PHASES, "to_phase": PHASES})
        self._completed = recorder.unsuffixed_counter(
            "ambient_sessions_completed",
            "Runs that ended, by final phase (upstream's ambient.sessions.completed).",
            labels={"namespace": namespace, "final_phase": TERMINAL})
        self._by_project = recorder.unsuffixed_counter(
            "ambient_sessions_by_project",
            "Runs started, by project namespace (upstream's ambient.sessions.by_project).",
            labels={"namespace": namespace})
        self._by_user = recorder.unsuffixed_counter(
            "ambient_sessions_by_user",
            "Runs started, by the session's ambient-code.io/created-by annotation (upstream's "
            "ambient.sessions.by_user).",
            labels={"namespace": namespace, "user": FirstSeen(USERS)})
        self._retries = recorder.unsuffixed_counter(
            "ambient_reconcile_retries",
            "Reconciles that failed and are retried, and runs whose workload was lost "
            "(upstream's ambient.reconcile.retries).",
            labels={"namespace": namespace, **phase})
        self._timeouts = recorder.unsuffixed_counter(
            "ambient_session_timeouts",
            "Sessions stopped for inactivity (upstream's ambient.session.timeouts).",
            labels={"namespace": namespace})
        self._sessions = sessions
        recorder.scrape_gauge(
            "ambient_sessions_active", "Running sessions (upstream's ambient.sessions.active).",
            labels=("namespace",), rows=lambda: self._rows((Phase.RUNNING.value,)))
        recorder.scrape_gauge(
            "ambient_sessions_pending",
            "Sessions waiting to start: Pending or Creating (upstream's "
            "ambient.sessions.pending).",
            labels=("namespace",),
            rows=lambda: self._rows((Phase.PENDING.value, Phase.CREATING.value)))

    def _rows(self, phases: Sequence[str]) -> Iterable[tuple[Sequence[str], float]]:
        counts: Counter[str] = Counter()
        for value, n in self._sessions().items():
            namespace, _, phase = value.rpartition("/")
            if phase in phases and n:
                counts[namespace] += n
        return [((namespace,), float(n)) for namespace, n in sorted(counts.items())]

    def passed(self, session: Mapping[str, Any], old: Mapping[str, Any], step: Step,
               now: dt.datetime) -> None:
        """What a pass that moved the session from ``old`` (its status) to ``step`` says."""
        meta = session["metadata"]
        namespace = str(meta.get("namespace", ""))
        before = str(old.get("phase") or Phase.PENDING.value)
        after = step.phase.value
        if before == after:
            return
        self._transitions.inc(namespace=namespace, from_phase=before, to_phase=after)
        status = step.status
        started = parse_time(status.get("startTime"))
        if after == Phase.CREATING.value:
            user = (meta.get("annotations") or {}).get(CREATED_BY) or "unknown"
            self._by_project.inc(namespace=namespace)
            self._by_user.inc(namespace=namespace, user=user)
        elif after == Phase.RUNNING.value and started is not None:
            self._startup.observe(max((now - started).total_seconds(), 0.0),
                                  namespace=namespace)
        elif after in TERMINAL:
            self._completed.inc(namespace=namespace, final_phase=after)
            ended = parse_time(status.get("completionTime"))
            if started is not None and ended is not None:
                self._total.observe(max((ended - started).total_seconds(), 0.0),
                                    namespace=namespace)
            if after == Phase.STOPPED.value and status.get("stoppedReason") == "inactivity":
                self._timeouts.inc(namespace=namespace)
        elif after == Phase.PENDING.value and before in LOST_FROM:
            self._retries.inc(namespace=namespace, phase=before)  # the workload was lost

    def reconciled(self, namespace: str, phase: str, seconds: float, *, success: bool) -> None:
        """One reconcile of a session that was in ``phase``."""
        self._reconcile.observe(seconds, phase=phase, success="true" if success else "false")
        if not success:
            self._retries.inc(namespace=namespace, phase=phase)


class TimedReconciler:
    """A reconciler that times each reconcile of ``inner`` into
    :meth:`UpstreamMetrics.reconciled`, by the phase ``phase_of`` reads from the cache
    before it begins (None: the session is gone, nothing is recorded)."""

    def __init__(self, inner: Reconciler, metrics: UpstreamMetrics, *,
                 phase_of: Callable[[Request], str | None], clock: Clock) -> None:
        self._inner = inner
        self._metrics = metrics
        self._phase_of = phase_of
        self._clock = clock

    def reconcile(self, request: Request) -> Result:
        phase = self._phase_of(request)
        begun = self._clock.monotonic()
        success = False
        try:
            result = self._inner.reconcile(request)
            success = True
            return result
        finally:
            if phase is not None:
                self._metrics.reconciled(request.namespace, phase,
                                         self._clock.monotonic() - begun, success=success)


def cached_phase(client: Client) -> Callable[[Request], str | None]:
    """The phase of the session a request names, as the cache has it (None: not there)."""
    def phase_of(request: Request) -> str | None:
        session = client.get(AGENTIC_SESSIONS, request.name, request.namespace)
        if session is None:
            return None
        return str((session.get("status") or {}).get("phase") or Phase.PENDING.value)
    return phase_of
