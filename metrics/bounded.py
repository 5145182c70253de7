"""Families whose label values come from sets fixed up front.

A label fed from data (a backend kind, an API verb, a resource) can grow without bound if the
data is unexpected; every new value is a new series on the Prometheus server. These families
take each label's allowed values at construction and record anything else as ``"other"``, so the
number of series is known before the first observation.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from prometheus_client import CollectorRegistry

from ._family import OTHER, counter, histogram


class _Bounds:
    """Each label's allowed values; maps given values onto them."""

    def __init__(self, labels: Mapping[str, Collection[str]]) -> None:
        if any(not allowed for allowed in labels.values()):
            raise ValueError("every bounded label needs at least one allowed value")
        self.names = tuple(labels)
        self._allowed = tuple(frozenset(allowed) for allowed in labels.values())

    def values(self, given: Mapping[str, str]) -> tuple[str, ...]:
        if given.keys() != set(self.names):
            raise ValueError(f"expected the labels {sorted(self.names)}, got {sorted(given)}")
        return tuple(value if value in allowed else OTHER
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
                 labels: Mapping[str, Collection[str]], buckets: Sequence[float]) -> None:
        self._bounds = _Bounds(labels)
        self._histogram = histogram(registry, name, documentation, labels=self._bounds.names,
                                    buckets=buckets)

    def observe(self, value: float, /, **labels: str) -> None:
        """Record ``value`` under the given labels (all of them, by name)."""
        self._histogram.labels(*self._bounds.values(labels)).observe(value)


class BoundedCounter:
    """A counter whose labels take only allowed values (anything else becomes ``"other"``).
    ``name`` ends in ``_total``."""

    def __init__(self, registry: CollectorRegistry, *, name: str, documentation: str,
                 labels: Mapping[str, Collection[str]]) -> None:
        self._bounds = _Bounds(labels)
        self._counter = counter(registry, name, documentation, self._bounds.names)

    def inc(self, amount: float = 1.0, /, **labels: str) -> None:
        """Add ``amount`` under the given labels (all of them, by name)."""
        self._counter.labels(*self._bounds.values(labels)).inc(amount)
