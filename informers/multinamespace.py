"""One cache over a set of namespaces: a shared informer per namespace behind one read API.

controller-runtime's multi-namespace cache (``cache.Options.DefaultNamespaces``): an operator
allowed into some namespaces only (Roles there, no ClusterRole) cannot list or watch a
namespaced kind cluster-wide, so each namespace gets its own list and watch
(``/api/v1/namespaces/<ns>/pods``) and its own store. :class:`MultiNamespaceInformer` joins
them for the consumers: handlers registered once are told of every namespace's changes, reads
go to the one store that can hold the object.

Costs: one watch (one connection) and one reflector per namespace, and one handler thread per
registered handler per namespace. Reads of one object or one namespace go straight to that
namespace's store (a dict lookup); whole-cache reads (``list()`` without a namespace, an index,
``index_counts``) visit every store. Nothing on the event path depends on the number of
namespaces: each informer's events touch its own store only.

The namespace set is fixed when the informer is built.
"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from foundation.clock import Clock, RealClock

from .change import Change
from .informer import ChangeHandler, EventHandler, Registration, SharedInformer
from .store import NAMESPACE_INDEX, IndexFunc, Obj, Store


def _key_order(namespaces: Iterable[str]) -> list[str]:
    """Namespaces in the order their keys (``<ns>/<name>``) sort: ``a-b/x`` before ``a/x``,
    so listing every namespace gives what one cluster-wide store lists, in the same order."""
    return sorted(namespaces, key=lambda ns: f"{ns}/")


class MultiNamespaceStore:
    """The read side of :class:`~informers.store.Store` over one store per namespace (at
    least one: an unknown index raises KeyError as a store does)."""

    def __init__(self, stores: Mapping[str, Store]) -> None:
        if not stores:
            raise ValueError("a multi-namespace store needs at least one namespace")
        self._stores = {ns: stores[ns] for ns in _key_order(stores)}

    @property
    def namespaces(self) -> builtins.list[str]:
        return list(self._stores)

    def _of(self, key: str) -> Store | None:
        namespace, slash, _ = key.partition("/")
        return self._stores.get(namespace) if slash else None

    def get(self, key: str) -> Obj | None:
        store = self._of(key)
        return None if store is None else store.get(key)

    def get_by_name(self, name: str, namespace: str | None = None) -> Obj | None:
        return self.get(f"{namespace}/{name}" if namespace else name)

    def list(self, *, namespace: str | None = None,
             label_selector: Callable[[Mapping[str, str]], bool] | None = None
             ) -> builtins.list[Obj]:
        if namespace:
            store = self._stores.get(namespace)
            return [] if store is None else store.list(label_selector=label_selector)
        return [obj for store in self._stores.values()
                for obj in store.list(label_selector=label_selector)]

    def by_index(self, index: str, value: str) -> builtins.list[Obj]:
        """As :meth:`Store.by_index`, across namespaces (the namespace index: one store)."""
        if index == NAMESPACE_INDEX:
            store = self._stores.get(value)
            return [] if store is None else store.by_index(index, value)
        return [obj for store in self._stores.values() for obj in store.by_index(index, value)]

    def keys_by_index(self, index: str, value: str) -> builtins.list[str]:
        """As :meth:`Store.keys_by_index`, across namespaces."""
        if index == NAMESPACE_INDEX:
            store = self._stores.get(value)
            return [] if store is None else store.keys_by_index(index, value)
        return sorted(key for store in self._stores.values()
                      for key in store.keys_by_index(index, value))

    def index_counts(self, index: str) -> dict[str, int]:
        total: Counter[str] = Counter()
        for store in self._stores.values():
            total.update(store.index_counts(index))
        return dict(total)

    def contents(self, *, as_updates: bool = False) -> builtins.list[Change]:
        return [change for store in self._stores.values()
                for change in store.contents(as_updates=as_updates)]

    def keys(self) -> builtins.list[str]:
        return [key for store in self._stores.values()
                for key in store.keys()]  # noqa: SIM118 (a Store is not iterable)

    def resource_version(self, key: str) -> str | None:
        store = self._of(key)
        return None if store is None else store.resource_version(key)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        for store in self._stores.values():
            store.add_indexers(indexers)

    @property
    def indexers(self) -> builtins.list[str]:
        first = next(iter(self._stores.values()), None)
        return [] if first is None else first.indexers

    def __len__(self) -> int:
        return sum(len(store) for store in self._stores.values())

    def __contains__(self, key: object) -> bool:
        store = self._of(key) if isinstance(key, str) else None
        return store is not None and key in store


class MultiRegistration:
    """One handler's registrations, one per namespace."""

    def __init__(self, registrations: Iterable[Registration], clock: Clock) -> None:
        self.registrations = list(registrations)
        self._clock = clock

    def has_synced(self) -> bool:
        return all(r.has_synced() for r in self.registrations)

    def wait_for_sync(self, timeout: float) -> bool:
        deadline = self._clock.monotonic() + timeout
        return all(r.wait_for_sync(max(deadline - self._clock.monotonic(), 0.0))
                   for r in self.registrations)


class MultiNamespaceInformer:
    """The shared informers of one kind in each of a set of namespaces, as one.

    The informers are the factory's (it starts, stops and health-checks them); this only fans
    registrations out and joins their stores. Handlers see each object's changes in order (an
    object lives in one namespace, hence in one informer).
    """

    def __init__(self, informers: Mapping[str, SharedInformer], *,
                 clock: Clock | None = None) -> None:
        if not informers:
            raise ValueError("a multi-namespace informer needs at least one namespace")
        self.informers = {ns: informers[ns] for ns in _key_order(informers)}
        self.resource = next(iter(self.informers.values())).resource
        self.store = MultiNamespaceStore({ns: i.store for ns, i in self.informers.items()})
        self._clock = clock or RealClock()
        self.name = f"informer-{self.resource.group_resource}-in-{len(self.informers)}-namespaces"

    @property
    def namespaces(self) -> list[str]:
        return list(self.informers)

    def add_handler(self, handler: EventHandler | ChangeHandler) -> MultiRegistration:
        """Register ``handler`` with every namespace's informer (each first sends what it
        holds as adds)."""
        return MultiRegistration([i.add_handler(handler) for i in self.informers.values()],
                                 self._clock)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        for informer in self.informers.values():
            informer.add_indexers(indexers)

    def has_synced(self) -> bool:
        return all(i.has_synced() for i in self.informers.values())

    def wait_for_sync(self, timeout: float) -> bool:
        deadline = self._clock.monotonic() + timeout
        return all(i.wait_for_sync(max(deadline - self._clock.monotonic(), 0.0))
                   for i in self.informers.values())

    def start(self) -> None:
        for informer in self.informers.values():
            informer.start()

    def dead_threads(self) -> list[str]:
        return [dead for i in self.informers.values() for dead in i.dead_threads()]

    def __repr__(self) -> str:
        return f"MultiNamespaceInformer({self.resource.group_resource}, {self.namespaces})"
