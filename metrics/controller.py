"""Controller families: reconcile outcomes, errors, panics, timing and worker counts.

Names, labels, result values and buckets are controller-runtime v0.24's
(``pkg/internal/controller/metrics/metrics.go``), so dashboards and alerts written for
controller-runtime operators work unchanged:

- ``controller_runtime_reconcile_total{controller,result}`` (counter; result is one of
  success, error, requeue, requeue_after)
- ``controller_runtime_reconcile_errors_total{controller}`` (counter)
- ``controller_runtime_terminal_reconcile_errors_total{controller}`` (counter)
- ``controller_runtime_reconcile_panics_total{controller}`` (counter)
- ``controller_runtime_reconcile_timeouts_total{controller}`` (counter)
- ``controller_runtime_reconcile_time_seconds{controller}`` (histogram,
  :data:`RECONCILE_TIME_BUCKETS`)
- ``controller_runtime_max_concurrent_reconciles{controller}`` (gauge)
- ``controller_runtime_active_workers{controller}`` (gauge)
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator

from prometheus_client import CollectorRegistry

from ._family import counter, gauge, histogram

RECONCILE_TIME_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8,
    0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0,
    20.0, 25.0, 30.0, 40.0, 50.0, 60.0,
)
"""controller-runtime's 40 upper bounds for reconcile time, 5 ms to 60 s."""


class ReconcileResult(enum.StrEnum):
    """The ``result`` label of ``controller_runtime_reconcile_total``: what the controller did
    with the request after one reconcile."""

    SUCCESS = "success"
    """Done; the request is forgotten until the object changes."""
    ERROR = "error"
    """The reconciler failed (terminally or not); a non-terminal error is retried."""
    REQUEUE = "requeue"
    """Requeued through the rate limiter without an error."""
    REQUEUE_AFTER = "requeue_after"
    """Requeued after the delay the reconciler asked for."""


class ControllerMetrics:
    """The controller families on one registry; :meth:`register` hands out per-controller
    recorders."""

    def __init__(self, registry: CollectorRegistry) -> None:
        by_controller = ("controller",)
        self.reconcile_total = counter(
            registry, "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller", ("controller", "result"))
        self.reconcile_errors = counter(
            registry, "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller", by_controller)
        self.terminal_reconcile_errors = counter(
            registry, "controller_runtime_terminal_reconcile_errors_total",
            "Total number of terminal reconciliation errors per controller", by_controller)
        self.reconcile_panics = counter(
            registry, "controller_runtime_reconcile_panics_total",
            "Total number of reconciliation panics per controller", by_controller)
        self.reconcile_timeouts = counter(
            registry, "controller_runtime_reconcile_timeouts_total",
            "Total number of reconciliation timeouts per controller", by_controller)
        self.reconcile_time = histogram(
            registry, "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller", labels=by_controller,
            buckets=RECONCILE_TIME_BUCKETS)
        self.max_concurrent_reconciles = gauge(
            registry, "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller", by_controller)
        self.active_workers = gauge(
            registry, "controller_runtime_active_workers",
            "Number of currently used workers per controller", by_controller)

    def register(self, controller: str, *, max_concurrent_reconciles: int) -> ControllerRecorder:
        """Announce a controller (when it starts): every counter of it, all four results
        included, exists at 0 and the worker gauges are set, so its series are there before the
        first reconcile (``rate()`` and ``absent()`` then behave). Registering a name again (a
        restarted controller) keeps its counts and resets its worker gauges, as
        controller-runtime does on start."""
        return ControllerRecorder(self, controller,
                                  max_concurrent_reconciles=max_concurrent_reconciles)


class ControllerRecorder:
    """Records the reconciles of one controller. Thread-safe; shared by its workers."""

    def __init__(self, families: ControllerMetrics, controller: str, *,
                 max_concurrent_reconciles: int) -> None:
        self.controller = controller
        self._total = {result: families.reconcile_total.labels(controller, result.value)
                       for result in ReconcileResult}
        self._errors = families.reconcile_errors.labels(controller)
        self._terminal = families.terminal_reconcile_errors.labels(controller)
        self._panics = families.reconcile_panics.labels(controller)
        self._timeouts = families.reconcile_timeouts.labels(controller)
        self._time = families.reconcile_time.labels(controller)
        self._active = families.active_workers.labels(controller)
        # labels() above already created each counter's series at 0: that is the pre-setting
        # controller-runtime does with Add(0) when a controller starts.
        families.max_concurrent_reconciles.labels(controller).set(max_concurrent_reconciles)
        self._active.set(0)

    def reconciled(self, result: ReconcileResult, *, seconds: float,
                   terminal: bool = False) -> None:
        """One reconcile finished with ``result`` after ``seconds``.

        An ``ERROR`` also counts in ``reconcile_errors_total``, and with ``terminal=True`` in
        ``terminal_reconcile_errors_total`` (an error the controller will not retry).
        """
        if terminal and result is not ReconcileResult.ERROR:
            raise ValueError("only an ERROR result can be terminal")
        if result is ReconcileResult.ERROR:
            if terminal:
                self._terminal.inc()
            self._errors.inc()
        self._total[result].inc()
        self._time.observe(seconds)

    def panicked(self) -> None:
        """The reconciler blew up in a way the controller recovered from (controller-runtime: a
        recovered panic). Record the reconcile itself with :meth:`reconciled` as well."""
        self._panics.inc()

    def timed_out(self) -> None:
        """A reconcile overran the controller's reconcile timeout."""
        self._timeouts.inc()

    @contextlib.contextmanager
    def active_worker(self) -> Iterator[None]:
        """Count a worker as busy for the duration of the ``with`` block."""
        self._active.inc()
        try:
            yield
        finally:
            self._active.dec()
