"""The informer factory: one shared informer per (resource, namespace, selectors).

Controllers ask the factory rather than building informers, so two controllers watching pods
share one list+watch and one cache. What the factory knows per resource — user indexes — and
for every store — mutation detection — applies to each informer it builds, whenever it builds
it.

A scope may span a set of namespaces (:meth:`InformerFactory.informer_across`): one informer
per namespace, joined for the consumers (:mod:`informers.multinamespace`), for an operator
allowed into those namespaces only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from foundation.clock import Clock, RealClock
from foundation.threads import Deadline

from .informer import SharedInformer
from .multinamespace import MultiNamespaceInformer
from .reflector import ReflectorHealth, ReflectorObserver, ReflectorOptions
from .resource import Resource
from .rest import ResourceClient, Transport
from .store import IndexFunc, Store, Transform, drops_managed_fields, strip_managed_fields

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InformerKey:
    """The scope of one shared informer: the informers of equal keys are one and the same."""

    resource: Resource
    namespace: str | None = None
    """Only objects of this namespace (None: all namespaces, or cluster-scoped)."""
    label_selector: str | None = None
    field_selector: str | None = None


class InformerFactory:
    """Creates, starts and stops shared informers. Thread-safe.

    ``debug_mutations`` builds every store with mutation detection (for tests: each cached
    read checks that no consumer changed a shared object; see ``informers.store``).
    """

    def __init__(self, transport: Transport, *, options: ReflectorOptions = ReflectorOptions(),
                 clock: Clock | None = None, observer: ReflectorObserver | None = None,
                 resync_period: float | None = None, debug_mutations: bool = False) -> None:
        self._transport = transport
        self._options = options
        self._clock = clock or RealClock()
        self._observer = observer
        self._resync_period = resync_period
        self._debug_mutations = debug_mutations
        self._informers: dict[InformerKey, SharedInformer] = {}
        self._across: dict[tuple[InformerKey, frozenset[str]], MultiNamespaceInformer] = {}
        self._indexers: dict[Resource, dict[str, IndexFunc]] = {}
        self._transforms: dict[Resource, Transform | None] = {}
        self._lock = threading.Lock()
        self._started = False

    def add_indexers(self, resource: Resource, indexers: Mapping[str, IndexFunc]) -> None:
        """Index every cache of ``resource`` — those built already and those to come — by
        ``indexers`` (name → function of the object returning its index values). Raises
        ValueError for a name already defined for that resource."""
        with self._lock:
            known = self._indexers.setdefault(resource, {})
            taken = sorted(set(indexers) & set(known))
            if taken:
                raise ValueError(f"indexes of {resource.group_resource} already defined: "
                                 f"{', '.join(taken)}")
            known.update(indexers)
            informers = [i for k, i in self._informers.items() if k.resource == resource]
        for informer in informers:
            informer.add_indexers(indexers)

    def set_transform(self, resource: Resource, transform: Transform | None) -> None:
        """What every cache of ``resource`` keeps of an object: ``transform(obj)``, applied as
        it arrives and before it is stored (controller-runtime's ``ByObject.Transform``), e.g.
        dropping a large field nothing reads. It replaces the default,
        :func:`~informers.store.strip_managed_fields`: to keep that, pass
        ``stripping_managed_fields(transform)`` (:mod:`informers.store`), which also lets the
        watches cut them before parsing; None keeps objects whole. A transform returns a new
        dict or the one given, never raises, and is set before the resource's first informer
        (ValueError after: its cache holds objects shaped otherwise)."""
        with self._lock:
            if any(key.resource == resource for key in self._informers):
                raise ValueError(f"{resource.group_resource} is cached already: set its "
                                 "transform before its first informer")
            self._transforms[resource] = transform

    def drops_managed_fields(self, resource: Resource) -> bool:
        """Whether the caches of ``resource`` keep objects without ``metadata.managedFields``
        (its transform: :meth:`set_transform`)."""
        with self._lock:
            return drops_managed_fields(self._transforms.get(resource, strip_managed_fields))

    def informer(self, resource: Resource, *, namespace: str | None = None,
                 label_selector: str | None = None,
                 field_selector: str | None = None) -> SharedInformer:
        """The shared informer for this scope; started at once if the factory already runs."""
        key = InformerKey(resource, namespace, label_selector, field_selector)
        with self._lock:
            informer = self._informers.get(key)
            if informer is None:
                store = Store(indexers=self._indexers.get(resource),
                              debug_mutations=self._debug_mutations,
                              transform=self._transforms.get(resource, strip_managed_fields))
                informer = SharedInformer(
                    ResourceClient(self._transport, resource), namespace=namespace,
                    label_selector=label_selector, field_selector=field_selector,
                    store=store, resync_period=self._resync_period, options=self._options,
                    clock=self._clock, observer=self._observer)
                self._informers[key] = informer
                if self._started:
                    informer.start()
            return informer

    def informer_across(self, resource: Resource, namespaces: Collection[str], *,
                        label_selector: str | None = None,
                        field_selector: str | None = None) -> MultiNamespaceInformer:
        """The shared informers of this scope in each of ``namespaces`` (at least one), joined
        (:class:`~informers.multinamespace.MultiNamespaceInformer`): one list and watch per
        namespace, never a cluster-wide one. Each is this factory's own, shared with anyone
        asking for that namespace alone."""
        if not resource.namespaced:
            raise ValueError(f"{resource.group_resource} is cluster-scoped: it has no "
                             "namespaces to watch one by one")
        wanted = frozenset(namespaces)
        key = (InformerKey(resource, None, label_selector, field_selector), wanted)
        with self._lock:
            joined = self._across.get(key)
        if joined is not None:
            return joined
        parts = {ns: self.informer(resource, namespace=ns, label_selector=label_selector,
                                   field_selector=field_selector) for ns in wanted}
        with self._lock:
            return self._across.setdefault(key, MultiNamespaceInformer(parts,
                                                                       clock=self._clock))

    def remove(self, resource: Resource, *, namespace: str | None = None,
               label_selector: str | None = None, field_selector: str | None = None,
               timeout: float = 10.0) -> bool:
        """Stop the informer of this scope and forget it (controller-runtime's
        ``RemoveInformer``): its watch ends and its cache is dropped; a later read of the scope
        builds a new one. Whether there was one. ValueError while a handler is registered on
        it (a controller still uses it: remove the handler first); a joined view
        (:meth:`informer_across`) that includes it goes with it."""
        key = InformerKey(resource, namespace, label_selector, field_selector)
        with self._lock:
            informer = self._informers.get(key)
            if informer is None:
                return False
            if informer.handler_count:
                raise ValueError(f"{informer.name} still has {informer.handler_count} "
                                 "handler(s): remove them before the informer")
            del self._informers[key]
            for joined_key, joined in list(self._across.items()):
                if informer in joined.informers.values():
                    del self._across[joined_key]
        informer.stop(timeout)
        log.info("informer removed", extra={"resource": resource.group_resource,
                                            "namespace": namespace or "",
                                            "label_selector": label_selector or ""})
        return True

    def __len__(self) -> int:
        """How many informers (hence watches) the factory holds."""
        with self._lock:
            return len(self._informers)

    def health(self) -> dict[InformerKey, ReflectorHealth]:
        """Each informer's reflector health, by scope."""
        with self._lock:
            informers = dict(self._informers)
        return {key: informer.health for key, informer in informers.items()}

    def dead_threads(self) -> list[str]:
        """Threads of every informer that ended while they should run (``/healthz``)."""
        with self._lock:
            informers = list(self._informers.values())
        return [dead for informer in informers for dead in informer.dead_threads()]

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
        """Stop every informer, all within ``timeout`` seconds together; threads that outlive
        it are logged."""
        with self._lock:
            informers = list(self._informers.values())
            self._started = False
        for informer in informers:
            informer.signal_stop()
        deadline = Deadline(timeout)
        for informer in informers:
            informer.stop(deadline.remaining())
