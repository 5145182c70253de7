"""The client reconcilers use: reads from shared informer caches, writes to the API server.

* Reads (:meth:`Client.get`, :meth:`Client.list`) come from the cache of a shared informer. The
  first read of a kind nobody watches yet starts its informer and waits for it to sync — and
  logs a warning, because an accidental cluster-wide cache of a big kind is how operators blow
  up their memory. Cached objects are shared and read-only: copy before editing.
* Writes go to the server, through the status subresource for status; patch types are merge,
  JSON, strategic (built-in kinds) and server-side apply. :meth:`Client.create_subresource`
  POSTs to a subresource (``serviceaccounts/NAME/token``).
* :meth:`Client.apply` and :meth:`Client.apply_status` are server-side apply with the
  client's field manager (``force=True`` takes fields over, as a controller usually should).
* :attr:`Client.mapper` resolves group/kind to a :class:`Resource` through discovery.
* :meth:`Client.mutate` is the safe read-modify-write: read fresh from the server, apply a
  function to a copy, write it with its resourceVersion, and on a conflict start over from a
  fresh read — never a blind overwrite.
* Every request first checks the reconcile's deadline (see ``reconcile.ReconcileTimeout``).
"""

from __future__ import annotations

import builtins
import copy
import logging
import threading
from collections.abc import Callable, Collection, Mapping
from typing import Any

import tenacity

from foundation.clock import Clock, RealClock
from foundation.selectors import label_selector_from_dict, parse_label_selector
from informers.errors import Conflict
from informers.factory import InformerFactory
from informers.informer import SharedInformer
from informers.multinamespace import MultiNamespaceInformer
from informers.resource import Resource
from informers.rest import ResourceClient, Transport
from informers.restmapper import RESTMapper

from . import ownwrites
from .reconcile import check_deadline

log = logging.getLogger(__name__)

Obj = dict[str, Any]


Scope = tuple[frozenset[str] | None, str | None, str | None]
"""What one cache holds: its namespaces (None: every namespace, or the client's default set),
label selector, field selector."""
Informer = SharedInformer | MultiNamespaceInformer
"""One informer, or one per namespace joined (the read API and ``add_handler`` are alike)."""


class ScopedCache:
    """Reads of one narrowed informer cache (see :meth:`Client.scoped`). Read-only objects."""

    def __init__(self, resource: Resource, informer: Informer, clock: Clock) -> None:
        self.resource = resource
        self.informer = informer
        self._clock = clock

    def get(self, name: str, namespace: str | None = None) -> Obj | None:
        check_deadline(self._clock.monotonic())
        key = f"{namespace}/{name}" if self.resource.namespaced and namespace else name
        return self.informer.store.get(key)

    def list(self, namespace: str | None = None) -> list[Obj]:
        check_deadline(self._clock.monotonic())
        return self.informer.store.list(namespace=namespace)


class Client:
    """Cached reads, direct writes. Thread-safe; one per manager.

    ``cache_namespaces`` (controller-runtime's ``cache.Options.DefaultNamespaces``): the
    caches of namespaced kinds hold these namespaces only, each listed and watched on its own
    (``/api/v1/namespaces/<ns>/pods``), never cluster-wide — what an operator holding Roles
    in those namespaces and no ClusterRole may do. Empty: every namespace, one cluster-wide
    watch per kind. Cluster-scoped kinds are always watched cluster-wide. A cache declared with
    its own ``namespace`` or ``namespaces`` holds those instead.
    """

    def __init__(self, transport: Transport, factory: InformerFactory, *,
                 field_manager: str = "ambient-ctrl", clock: Clock | None = None,
                 sync_timeout: float = 120.0, cache_namespaces: Collection[str] = ()) -> None:
        self._transport = transport
        self._factory = factory
        self._field_manager = field_manager
        self._clock = clock or RealClock()
        self._sync_timeout = sync_timeout
        self._cache_namespaces = frozenset(cache_namespaces) or None
        self._clients: dict[Resource, ResourceClient] = {}
        self._lock = threading.Lock()
        self._expected: set[Resource] = set()
        self._selectors: dict[Resource, Scope] = {}
        self.mapper = RESTMapper(transport)
        """Group/kind to :class:`Resource` from the server's discovery, cached (no request
        until the first lookup)."""

    @property
    def field_manager(self) -> str:
        """The field manager every write of this client names."""
        return self._field_manager

    @property
    def cache_namespaces(self) -> frozenset[str] | None:
        """The namespaces the caches of namespaced kinds hold by default (None: all)."""
        return self._cache_namespaces

    # plumbing ----------------------------------------------------------------------------------
    def resource(self, resource: Resource) -> ResourceClient:
        """The uncached client of one resource (for what the cache cannot answer). Its writes
        answer objects shaped as the kind's caches keep them: without ``managedFields`` unless
        a transform keeps them (``InformerFactory.set_transform``, set before the first write)."""
        with self._lock:
            client = self._clients.get(resource)
            if client is None:
                client = self._clients[resource] = ResourceClient(
                    self._transport, resource,
                    answers_without_managed_fields=self._factory.drops_managed_fields(resource))
            return client

    def expect(self, resource: Resource, *, namespace: str | None = None,
               namespaces: Collection[str] | None = None, label_selector: str | None = None,
               field_selector: str | None = None) -> Informer:
        """Declare a kind this client will read (the builder does, for watched kinds): its
        informer is created now and started with the others, so no warning on first read.

        A namespace (or a set of ``namespaces``, one informer each) and selectors narrow what
        the cache holds (e.g. only the pods an operator labels, or one ConfigMap in one
        namespace). The first scope declared for a kind is the one :meth:`get` and :meth:`list`
        read; the informer returned is the one of the scope asked for, so several narrow caches
        of one kind can coexist (read the others through :meth:`scoped`).
        """
        within = _namespaces(namespace, namespaces)
        scope = (within, label_selector, field_selector)
        with self._lock:
            self._expected.add(resource)
            # The unscoped cache counts as a scope too: a controller that declared every
            # namespace first keeps reading it after another declares only labelled ones.
            self._selectors.setdefault(resource, scope)
        if not (within or label_selector or field_selector):
            return self._informer_of(resource)
        return self._informer_in(resource, scope)

    def scoped(self, resource: Resource, *, namespace: str | None = None,
               namespaces: Collection[str] | None = None, label_selector: str | None = None,
               field_selector: str | None = None) -> ScopedCache:
        """A cache of ``resource`` narrowed to a namespace (or several) and/or selectors, apart
        from the kind's default scope: e.g. Secrets with ``fieldSelector=metadata.name=x`` in
        every namespace next to the Secrets an operator labels. Declared like :meth:`expect`."""
        informer = self.expect(resource, namespace=namespace, namespaces=namespaces,
                               label_selector=label_selector, field_selector=field_selector)
        return ScopedCache(resource, informer, self._clock)

    def _informer_of(self, resource: Resource) -> Informer:
        return self._informer_in(resource, self._selectors.get(resource, (None, None, None)))

    def _informer_in(self, resource: Resource, scope: Scope) -> Informer:
        within, labels, fields = scope
        if not resource.namespaced:
            return self._factory.informer(resource, label_selector=labels, field_selector=fields)
        namespaces = within or self._cache_namespaces
        if namespaces is None:
            return self._factory.informer(resource, label_selector=labels, field_selector=fields)
        if len(namespaces) == 1:
            return self._factory.informer(resource, namespace=next(iter(namespaces)),
                                          label_selector=labels, field_selector=fields)
        return self._factory.informer_across(resource, namespaces, label_selector=labels,
                                             field_selector=fields)

    def informer(self, resource: Resource) -> Informer:
        informer = self._informer_of(resource)
        if not informer.has_synced():
            with self._lock:
                unexpected = resource not in self._expected
                self._expected.add(resource)
            if unexpected:
                namespaces = self._cache_namespaces if resource.namespaced else None
                where = (f"a new informer in each of its {len(namespaces)} namespaces"
                         if namespaces else "a new cluster-wide informer")
                log.warning("first read of %s starts %s; declare it with the builder to make "
                            "the cache's size deliberate", resource.group_resource, where)
            informer.start()
            if not informer.wait_for_sync(self._sync_timeout):
                raise TimeoutError(f"cache of {resource.group_resource} did not sync")
        return informer

    def informer_synced(self, resource: Resource) -> bool:
        """Whether a read of ``resource`` is answered from a synced cache at once (else the
        first read starts the informer and waits for it)."""
        return self._informer_of(resource).has_synced()

    def _check(self) -> None:
        check_deadline(self._clock.monotonic())

    # reads -------------------------------------------------------------------------------------
    def get(self, resource: Resource, name: str, namespace: str | None = None) -> Obj | None:
        """The cached object, or None if the cache does not hold it. Read-only."""
        self._check()
        key = f"{namespace}/{name}" if resource.namespaced and namespace else name
        return self.informer(resource).store.get(key)

    def list(self, resource: Resource, namespace: str | None = None, *,
             labels: str | Mapping[str, Any] | None = None,
             index: tuple[str, str] | None = None) -> list[Obj]:
        """Cached objects, by namespace, label selector (string or metav1.LabelSelector dict)
        and/or one index value: ``("controller", owner_uid)``, ``("namespace", name)`` or an
        index registered with ``Manager.index`` (KeyError for an unknown index). Read-only."""
        self._check()
        store = self.informer(resource).store
        selector = (parse_label_selector(labels) if isinstance(labels, str)
                    else label_selector_from_dict(labels) if labels is not None else None)
        if index is not None:
            objects = store.by_index(*index)
            return [o for o in objects
                    if (namespace is None or o["metadata"].get("namespace") == namespace)
                    and (selector is None or selector.matches(o["metadata"].get("labels")))]
        return store.list(namespace=namespace,
                          label_selector=selector.matches if selector is not None else None)

    def keys(self, resource: Resource, *,
             index: tuple[str, str] | None = None) -> builtins.list[str]:
        """The cache keys (``namespace/name``, or ``name``) of every cached object of
        ``resource``, or of those with one index value (as :meth:`list`'s ``index``), sorted,
        without decoding any: what a map function that wakes many objects needs."""
        self._check()
        store = self.informer(resource).store
        return store.keys_by_index(*index) if index is not None else sorted(store.keys())

    # writes ------------------------------------------------------------------------------------
    def create(self, resource: Resource, obj: Mapping[str, Any]) -> Obj:
        self._check()
        return _write(resource, obj, lambda: self.resource(resource).create(
            obj, field_manager=self._field_manager))

    def create_subresource(self, resource: Resource, name: str, subresource: str,
                           body: Mapping[str, Any], namespace: str | None = None) -> Obj:
        """POST ``body`` to an object's subresource (a ``TokenRequest`` to
        ``serviceaccounts/NAME/token``); the server's answer, uncached."""
        self._check()
        return self.resource(resource).create_subresource(name, subresource, body, namespace,
                                                          field_manager=self._field_manager)

    def update(self, resource: Resource, obj: Mapping[str, Any]) -> Obj:
        self._check()
        return _write(resource, obj, lambda: self.resource(resource).update(
            obj, field_manager=self._field_manager))

    def update_status(self, resource: Resource, obj: Mapping[str, Any]) -> Obj:
        self._check()
        return _write(resource, obj, lambda: self.resource(resource).update_status(
            obj, field_manager=self._field_manager))

    def patch(self, resource: Resource, name: str, patch: Any, namespace: str | None = None, *,
              patch_type: str = "merge", force: bool | None = None) -> Obj:
        self._check()
        return ownwrites.write(resource, name, namespace, lambda: self.resource(resource).patch(
            name, patch, namespace, patch_type=patch_type, field_manager=self._field_manager,
            force=force))

    def patch_status(self, resource: Resource, name: str, patch: Any,
                     namespace: str | None = None, *, patch_type: str = "merge") -> Obj:
        self._check()
        return ownwrites.write(resource, name, namespace, lambda: self.resource(
            resource).patch_status(name, patch, namespace, patch_type=patch_type,
                                   field_manager=self._field_manager))

    def apply(self, resource: Resource, obj: Mapping[str, Any], *, force: bool = False,
              field_manager: str | None = None) -> Obj:
        """Server-side apply ``obj`` (the fields this controller owns) as the client's field
        manager, or ``field_manager``; see ``ResourceClient.apply``. Without ``force`` a field
        another manager owns with another value fails with a 409 Conflict; ``force=True``
        (controller-runtime's ``client.ForceOwnership``) takes it over — what a controller,
        the authority on the fields it applies, usually wants."""
        self._check()
        return _write(resource, obj, lambda: self.resource(resource).apply(
            obj, field_manager=field_manager or self._field_manager, force=force))

    def apply_status(self, resource: Resource, obj: Mapping[str, Any], *, force: bool = False,
                     field_manager: str | None = None) -> Obj:
        """Server-side apply of ``obj``'s status (the status subresource), like :meth:`apply`."""
        self._check()
        return _write(resource, obj, lambda: self.resource(resource).apply_status(
            obj, field_manager=field_manager or self._field_manager, force=force))

    def delete(self, resource: Resource, name: str, namespace: str | None = None, *,
               propagation_policy: str | None = None, uid: str | None = None,
               resource_version: str | None = None) -> Obj:
        self._check()
        return self.resource(resource).delete(name, namespace,
                                              propagation_policy=propagation_policy, uid=uid,
                                              resource_version=resource_version)

    def mutate(self, resource: Resource, name: str, namespace: str | None,
               change: Callable[[Obj], Obj | None], *, status: bool = False,
               attempts: int = 5) -> Obj:
        """Read fresh, apply ``change`` to a copy (it edits in place or returns a new object),
        write with optimistic concurrency; on Conflict, re-read and apply again."""
        def once() -> Obj:
            self._check()
            fresh = copy.deepcopy(self.resource(resource).get(name, namespace))
            changed = change(fresh)
            desired = fresh if changed is None else changed
            writer = self.update_status if status else self.update
            return writer(resource, desired)

        never = threading.Event()

        def pause(seconds: float) -> None:  # between attempts: a plain wait on our clock
            self._clock.wait(never, seconds)

        retrying = tenacity.Retrying(retry=tenacity.retry_if_exception_type(Conflict),
                                     stop=tenacity.stop_after_attempt(attempts),
                                     wait=tenacity.wait_random(0, 0.05), reraise=True,
                                     sleep=pause)
        return retrying(once)


def _write(resource: Resource, obj: Mapping[str, Any], request: Callable[[], Obj]) -> Obj:
    """``request()``, a write of ``obj``: the running reconcile's own (:mod:`.ownwrites`)."""
    meta = obj.get("metadata") or {}
    answer: Obj = ownwrites.write(resource, meta.get("name"), meta.get("namespace"), request)
    return answer


def _namespaces(namespace: str | None, namespaces: Collection[str] | None
                ) -> frozenset[str] | None:
    """One namespace or a set of them, as a set (None when neither is given)."""
    if namespace and namespaces:
        raise ValueError("give namespace or namespaces, not both")
    if namespace:
        return frozenset((namespace,))
    return frozenset(namespaces) if namespaces else None
