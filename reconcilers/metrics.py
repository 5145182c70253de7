"""Backend latency and session metrics for SREs, on the manager's registry.

Labels are bounded: backend ∈ {pod, kubevirt-vm}, phases and operations from fixed sets, error
reasons from a known list (anything else is "other"). Never session names or users.
Upstream's ``ambient_*`` series (:mod:`.upstream_metrics`), when on, are fed from the same
passes (:meth:`SessionMetrics.passed`), through :class:`UpstreamSeries` (this module does not
import that one, which imports this one's tables).

=============================================  =========  ================================
family                                         type       labels
=============================================  =========  ================================
agentic_session_startup_seconds                histogram  backend
agentic_session_backend_operation_seconds      histogram  backend, operation
agentic_session_phase_transitions_total        counter    backend, from, to
agentic_session_backend_errors_total           counter    backend, reason
agentic_sessions                               gauge      backend, phase (at scrape time)
=============================================  =========  ================================
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from metrics.recorder import Recorder

from .resources import ExecutionKind, Phase

BACKENDS = tuple(kind.value for kind in ExecutionKind)
PHASES = tuple(phase.value for phase in Phase)
OPERATIONS = ("create", "patch", "delete", "recreate")
ERROR_REASONS = (
    # the workload's end (upstream's reasons)
    "PodFailed", "RunnerExit", "PrerequisiteFailed", "ErrImagePull", "ImagePullBackOff",
    "InvalidImageName", "CrashLoopBackOff", "CreateContainerConfigError", "DataVolumeError",
    # starting a run
    "TokenProvisionFailed", "PodCreationFailed", "RunnerSecretMissing", "VertexSecretMissing",
    "KubeVirtNotInstalled",
    # bad input
    "UnknownRuntime", "InvalidRuntime", "InvalidRegistry", "DuplicateRuntime", "InvalidVMConfig",
    "InvalidQuantity", "InvalidResources", "InvalidServiceName", "InvalidStateDir",
    "InvalidEnvName", "InvalidCloudInitTemplate",
    # the operator's own trouble
    "TokenRefreshFailed", "ServiceNameTaken",
)
STARTUP_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200)
OPERATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Step(Protocol):
    """What a pass decided (:class:`reconcilers.phasetypes.Step`): its phase and next status."""

    @property
    def phase(self) -> Phase: ...

    @property
    def status(self) -> Mapping[str, Any]: ...


class UpstreamSeries(Protocol):
    """Upstream's series as the session metrics feed them
    (:class:`~reconcilers.upstream_metrics.UpstreamMetrics`)."""

    def passed(self, session: Mapping[str, Any], old: Mapping[str, Any], step: Step,
               now: dt.datetime) -> None: ...


def backend_phase(session: Mapping[str, Any]) -> tuple[str]:
    """The index value that counts a session in ``agentic_sessions``: ``backend/phase``."""
    status = session.get("status") or {}
    return (f"{status.get('executionKind') or 'pod'}/{status.get('phase') or Phase.PENDING.value}",)


class SessionMetrics:
    """What the reconciler records. ``sessions`` feeds the per-phase gauge at scrape time: the
    number of sessions per :func:`backend_phase` value (an informer index's counts, so a
    scrape reads one number per value instead of decoding every session: with 10,000
    sessions, decoding them held the cache for ~0.1 s per scrape)."""

    def __init__(self, recorder: Recorder, *,
                 sessions: Callable[[], Mapping[str, int]],
                 upstream: UpstreamSeries | None = None) -> None:
        self._upstream = upstream
        backend = {"backend": BACKENDS}
        self._startup = recorder.bounded_histogram(
            "agentic_session_startup_seconds",
            "Seconds from the start of a session's run (its creation, or a restart) to "
            "Running, by backend.",
            labels=backend, buckets=STARTUP_BUCKETS)
        self._operations = recorder.bounded_histogram(
            "agentic_session_backend_operation_seconds",
            "Seconds the API server took to create, patch or delete a backend object.",
            labels={**backend, "operation": OPERATIONS}, buckets=OPERATION_BUCKETS)
        self._transitions = recorder.bounded_counter(
            "agentic_session_phase_transitions_total",
            "Session phase transitions, by backend and from/to phase.",
            labels={**backend, "from": PHASES, "to": PHASES})
        self._errors = recorder.bounded_counter(
            "agentic_session_backend_errors_total",
            "Sessions that failed or were refused, by backend and reason.",
            labels={**backend, "reason": ERROR_REASONS})
        self._sessions = sessions
        recorder.scrape_gauge("agentic_sessions", "Sessions by backend and phase.",
                              labels=("backend", "phase"), rows=self._rows)

    def _rows(self) -> Iterable[tuple[Sequence[str], float]]:
        counts: Counter[tuple[str, str]] = Counter()
        for value, n in self._sessions().items():
            backend, _, phase = value.partition("/")
            counts[(backend, phase)] += n
        return [((backend if backend in BACKENDS else "other",
                  phase if phase in PHASES else "other"), float(n))
                for (backend, phase), n in sorted(counts.items())]

    def started(self, backend: str, seconds: float) -> None:
        self._startup.observe(seconds, backend=backend)

    def operation(self, backend: str, operation: str, seconds: float) -> None:
        self._operations.observe(seconds, backend=backend, operation=operation)

    def transition(self, backend: str, old: str, new: str) -> None:
        self._transitions.inc(backend=backend, **{"from": old, "to": new})

    def error(self, backend: str, reason: str) -> None:
        self._errors.inc(backend=backend, reason=reason)

    def passed(self, session: Mapping[str, Any], old: Mapping[str, Any], step: Step,
               now: dt.datetime) -> None:
        """A pass took the session from status ``old`` to ``step`` (upstream's series)."""
        if self._upstream is not None:
            self._upstream.passed(session, old, step, now)
