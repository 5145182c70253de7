"""The recording interface the layers above use: one :class:`Recorder` per registry.

Upper layers (informers, controllers, the manager, the operator) receive a ``Recorder`` (or
the one area of it they need) from the entry point and call its typed methods; none of them
imports prometheus_client. Every family is created per registry, so building two recorders on
two registries in one process is safe (tests do it all the time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry

from ._family import ScrapeGauges
from .bounded import Allowed, BoundedCounter, BoundedHistogram, UnsuffixedCounter
from .controller import ControllerMetrics
from .informer import InformerMetrics
from .leader import LeaderElectionMetrics
from .rest import RestClientMetrics
from .webhook import WebhookMetrics
from .workqueue import WorkqueueMetrics


class Recorder:
    """Every family of one registry, grouped by area, and factories for the operator's own.

    ::

        recorder = Recorder(new_registry(), monotonic=clock.monotonic)
        controller = recorder.controller.register("agenticsession", max_concurrent_reconciles=8)
        controller.reconciled(ReconcileResult.SUCCESS, seconds=0.012)
    """

    def __init__(self, registry: CollectorRegistry, *, monotonic: Callable[[], float]) -> None:
        self.registry = registry
        """Where everything is registered (serve it with an ``ObservabilityServer``)."""
        self.controller = ControllerMetrics(registry)
        """``controller_runtime_*``: reconcile outcomes, timing, workers."""
        self.workqueue = WorkqueueMetrics(registry)
        """``workqueue_*``."""
        self.rest = RestClientMetrics(registry)
        """``rest_client_*`` (an ``informers.rest.RequestObserver``)."""
        self.leader = LeaderElectionMetrics(registry)
        """``leader_election_master_status``."""
        self.informer = InformerMetrics(registry, monotonic=monotonic)
        """``informer_*`` (an ``informers.reflector.ReflectorObserver``)."""
        self.webhook = WebhookMetrics(registry)
        """``controller_runtime_webhook_*``: the webhook server's requests."""

    def bounded_histogram(self, name: str, documentation: str, *,
                          labels: Mapping[str, Allowed],
                          buckets: Sequence[float]) -> BoundedHistogram:
        """A new histogram on this registry whose labels take only the given values; anything
        else is recorded as ``"other"`` (e.g. ``labels={"backend": ("pod", "kubevirt-vm")}``;
        a :class:`~metrics.bounded.FirstSeen` label keeps its first values).
        """
        return BoundedHistogram(self.registry, name=name, documentation=documentation,
                                labels=labels, buckets=buckets)

    def scrape_gauge(self, name: str, documentation: str, *, labels: Sequence[str],
                     rows: Callable[[], Iterable[tuple[Sequence[str], float]]]) -> None:
        """A gauge family computed when scraped: ``rows()`` yields (label values, value) —
        e.g. sessions by phase counted from an informer cache, with no thread or timer."""
        self.registry.register(ScrapeGauges(
            [(name, documentation, tuple(labels))],
            lambda: ((name, tuple(values), value) for values, value in rows())))

    def bounded_counter(self, name: str, documentation: str, *,
                        labels: Mapping[str, Allowed]) -> BoundedCounter:
        """A new counter (``name`` ends in ``_total``) with bounded labels, like
        :meth:`bounded_histogram`."""
        return BoundedCounter(self.registry, name=name, documentation=documentation,
                              labels=labels)

    def unsuffixed_counter(self, name: str, documentation: str, *,
                           labels: Mapping[str, Allowed]) -> UnsuffixedCounter:
        """A new counter exposed under ``name`` as it is (no ``_total``), with bounded labels:
        for series that must keep the names an OpenTelemetry Collector gave them
        (:class:`~metrics.bounded.UnsuffixedCounter`)."""
        return UnsuffixedCounter(self.registry, name=name, documentation=documentation,
                                 labels=labels)
