"""The informer factory: one shared informer per (resource, namespace, selectors).

Controllers ask the factory rather than building informers, so two controllers watching pods
share one list+watch and one cache.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .clock import Clock, RealClock
from .informer import SharedInformer
from .reflector import ReflectorObserver, ReflectorOptions
from .resource import Resource
from .rest import ResourceClient, Transport


@dataclass(frozen=True, slots=True)
class InformerKey:
    resource: Resource
    namespace: str | None = None
    label_selector: str | None = None
    field_selector: str | None = None


class InformerFactory:
    """Creates, starts and stops shared informers. Thread-safe."""

    def __init__(self, transport: Transport, *, options: ReflectorOptions = ReflectorOptions(),
                 clock: Clock | None = None, observer: ReflectorObserver | None = None,
                 resync_period: float | None = None) -> None:
        self._transport = transport
        self._options = options
        self._clock = clock or RealClock()
        self._observer = observer
        self._resync_period = resync_period
        self._informers: dict[InformerKey, SharedInformer] = {}
        self._lock = threading.Lock()
        self._started = False

    def informer(self, resource: Resource, *, namespace: str | None = None,
                 label_selector: str | None = None,
                 field_selector: str | None = None) -> SharedInformer:
        """The shared informer for this scope; started at once if the factory already runs."""
        key = InformerKey(resource, namespace, label_selector, field_selector)
        with self._lock:
            informer = self._informers.get(key)
            if informer is None:
                informer = SharedInformer(
                    ResourceClient(self._transport, resource), namespace=namespace,
                    label_selector=label_selector, field_selector=field_selector,
                    resync_period=self._resync_period, options=self._options,
                    clock=self._clock, observer=self._observer)
                self._informers[key] = informer
                if self._started:
                    informer.start()
            return informer

    def start(self) -> None:
        with self._lock:
            self._started = True
            informers = list(self._informers.values())
        for informer in informers:
            informer.start()

    def wait_for_sync(self, timeout: float) -> bool:
        """Whether every informer synced within ``timeout`` seconds (in total)."""
        deadline = self._clock.monotonic() + timeout
        with self._lock:
            informers = list(self._informers.values())
        return all(i.wait_for_sync(max(deadline - self._clock.monotonic(), 0.0))
                   for i in informers)

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            informers = list(self._informers.values())
            self._started = False
        for informer in informers:
            informer.stop(timeout)
