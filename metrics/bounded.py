"""Families whose label values come from sets fixed up front.

A label fed from data (a backend kind, an API verb, a resource) can grow without bound if the
data is unexpected; every new value is a new series on the Prometheus server. These families
take each label's allowed values at construction and record anything else as ``"other"``, so the
number of series is known before the first observation. A label whose values cannot be known up
front (a namespace) takes a :class:`FirstSeen` instead: its first ``limit`` distinct values are
kept, any later one is ``"other"``.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric, UnknownMetricFamily

from ._family import OTHER, Children, counter, histogram


class FirstSeen:
    """The allowed values of a label learnt as they come: the first ``limit`` distinct values
    (for the life of the process), then ``"other"`` for any new one. Thread-safe.

    ::

        labels={"namespace": FirstSeen(250), "phase": ("Pending", "Running")}
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a FirstSeen label needs a limit of at least 1")
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if value in self._seen or len(self._seen) < self.limit:
                self._seen.add(value)
                return value
        return OTHER


Allowed = Collection[str] | FirstSeen
"""A label's bound: its allowed values, or :class:`FirstSeen`."""


class _Bounds:
    """Each label's allowed values; maps given values onto them."""

    def __init__(self, labels: Mapping[str, Allowed]) -> None:
        if any(not isinstance(allowed, FirstSeen) and not allowed
               for allowed in labels.values()):
            raise ValueError("every bounded label needs at least one allowed value")
        self.names = tuple(labels)
        self._allowed = tuple(allowed if isinstance(allowed, FirstSeen) else frozenset(allowed)
                              for allowed in labels.values())

    def values(self, given: Mapping[str, str]) -> tuple[str, ...]:
        if given.keys() != set(self.names):
            raise ValueError(f"expected the labels {sorted(self.names)}, got {sorted(given)}")
        return tuple(allowed(value) if isinstance(allowed, FirstSeen)
                     else value if value in allowed else OTHER
                     for value, allowed in zip((given[n] for n in self.names), self._allowed,
                                               strict=True))


def bound(value: str, allowed: Collection[str]) -> str:
    """``value`` if it is allowed, else ``"other"``."""
    return value if value in allowed else OTHER


class BoundedHistogram:
    """A histogram whose labels take only allowed values (anything else becomes ``"other"``).

    ::

        latency = BoundedHistogram(registry, name="session_time_to_running_seconds",
                                   documentation="...", labels={"backend": ("pod", "kubevirt-vm")},
                                   buckets=(1, 5, 15, 30, 60, 120, 300, 600))
        latency.observe(12.5, backend="pod")
    """

    def __init__(self, registry: CollectorRegistry, *, name: str, documentation: str,
                 labels: Mapping[str, Allowed], buckets: Sequence[float]) -> None:
        self._bounds = _Bounds(labels)
        self._histogram = histogram(registry, name, documentation, labels=self._bounds.names,
                                    buckets=buckets)
        self._children = Children(self._histogram)  # bounded values: a bounded dict

    def observe(self, value: float, /, **labels: str) -> None:
        """Record ``value`` under the given labels (all of them, by name)."""
        self._children(*self._bounds.values(labels)).observe(value)


class BoundedCounter:
    """A counter whose labels take only allowed values (anything else becomes ``"other"``).
    ``name`` ends in ``_total``."""

    def __init__(self, registry: CollectorRegistry, *, name: str, documentation: str,
                 labels: Mapping[str, Allowed]) -> None:
        self._bounds = _Bounds(labels)
        self._counter = counter(registry, name, documentation, self._bounds.names)
        self._children = Children(self._counter)  # bounded values: a bounded dict

    def inc(self, amount: float = 1.0, /, **labels: str) -> None:
        """Add ``amount`` under the given labels (all of them, by name)."""
        self._children(*self._bounds.values(labels)).inc(amount)


class UnsuffixedCounter:
    """A counter exposed under its name as it is — no ``_total``, type ``unknown`` (``untyped``
    in the 0.0.4 text format) — with bounded labels: the shape the OpenTelemetry Collector's
    Prometheus exporter gives an OTLP sum when it does not normalize names (its default
    before the ``pkg.translator.prometheus.NormalizeName`` gate), so queries written against
    such an exporter find the series. ``rate()`` and ``increase()`` work on it as on any
    counter."""

    def __init__(self, registry: CollectorRegistry, *, name: str, documentation: str,
                 labels: Mapping[str, Allowed]) -> None:
        self._bounds = _Bounds(labels)
        self._name = name
        self._documentation = documentation
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def inc(self, amount: float = 1.0, /, **labels: str) -> None:
        """Add ``amount`` (>= 0) under the given labels (all of them, by name)."""
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._bounds.values(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def describe(self) -> Iterable[Metric]:
        return [UnknownMetricFamily(self._name, self._documentation,
                                    labels=self._bounds.names)]

    def collect(self) -> Iterator[Metric]:
        family = UnknownMetricFamily(self._name, self._documentation,
                                     labels=self._bounds.names)
        with self._lock:
            rows = sorted(self._values.items())
        for values, value in rows:
            family.add_metric(values, value)
        yield family
