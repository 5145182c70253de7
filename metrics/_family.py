"""Building blocks shared by the family modules: registration without ``_created`` series,
controller-runtime's bucket layouts, scrape-time gauge families, and children looked up once
for the families recorded on every request or event.

Internal: the public surface is the per-area classes that use these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

Row = tuple[str, Sequence[str], float]
"""One scrape-time sample: family name, label values, value."""

M = TypeVar("M", bound=MetricWrapperBase)

OTHER = "other"
"""The label value recorded in place of any value outside a label's allowed set."""


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """``count`` upper bounds from ``start``, each ``factor`` times the previous.

    Computed by repeated multiplication, as Prometheus' Go client does, so the ``le`` labels are
    the same floats controller-runtime exposes (``9.999999999999999e-06`` included).
    """
    if count < 1 or start <= 0 or factor <= 1:
        raise ValueError("exponential buckets need count >= 1, start > 0 and factor > 1")
    bounds = []
    for _ in range(count):
        bounds.append(start)
        start *= factor
    return tuple(bounds)


class _WithoutCreated:
    """Exposes one prometheus_client metric without its ``_created`` samples.

    controller-runtime's exposition has no ``_created`` series; prometheus_client adds them to
    counters and histograms unless its process-wide switch is flipped. Filtering per metric keeps
    the exposition identical without touching global state.
    """

    def __init__(self, metric: MetricWrapperBase) -> None:
        self._metric = metric

    def describe(self) -> Iterable[Metric]:
        return self._metric.describe()

    def collect(self) -> Iterator[Metric]:
        for family in self._metric.collect():  # a fresh Metric on every call: safe to edit
            created = family.name + "_created"
            family.samples = [s for s in family.samples if s.name != created]
            yield family


def counter(registry: CollectorRegistry, name: str, documentation: str,
            labels: Sequence[str]) -> Counter:
    """A counter family registered on ``registry`` (``name`` ends in ``_total``)."""
    metric = Counter(name, documentation, labels, registry=None)
    registry.register(_WithoutCreated(metric))
    return metric


def gauge(registry: CollectorRegistry, name: str, documentation: str,
          labels: Sequence[str]) -> Gauge:
    """A gauge family registered on ``registry``, set by the code that records into it."""
    metric = Gauge(name, documentation, labels, registry=None)
    registry.register(metric)
    return metric


def histogram(registry: CollectorRegistry, name: str, documentation: str, *,
              labels: Sequence[str], buckets: Sequence[float]) -> Histogram:
    """A histogram family with explicit buckets (``+Inf`` is added by the client)."""
    metric = Histogram(name, documentation, labels, buckets=buckets, registry=None)
    registry.register(_WithoutCreated(metric))
    return metric


class Children(Generic[M]):
    """The children of one labelled family, each looked up once.

    ``family.labels(...)`` validates the values and takes the family's lock on every call,
    which a family recorded on every API request or watch event pays thousands of times a
    second; this keeps each child in a dict by its label values (a lookup with no lock). For
    families whose label values are bounded and never removed: a child removed from the
    family (``remove``, ``clear``) would keep counting here, unseen.
    """

    def __init__(self, family: M) -> None:
        self._family = family
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:  # two threads may both look it up: labels() returns the same child
            child = self._children[values] = self._family.labels(*values)
        return child


class ScrapeGauges:
    """Gauge families whose values are computed when the registry is collected.

    The owner passes a function that yields ``(family name, label values, value)`` rows; this
    class turns them into families with fixed documentation and label names.
    """

    def __init__(self, families: Sequence[tuple[str, str, Sequence[str]]],
                 rows: Callable[[], Iterable[Row]]) -> None:
        self._families = tuple(families)
        self._rows = rows

    def _empty(self) -> dict[str, GaugeMetricFamily]:
        return {name: GaugeMetricFamily(name, doc, labels=labels)
                for name, doc, labels in self._families}

    def describe(self) -> Iterable[Metric]:
        return list(self._empty().values())

    def collect(self) -> Iterator[Metric]:
        families = self._empty()
        for name, label_values, value in self._rows():
            families[name].add_metric(label_values, value)
        yield from families.values()
