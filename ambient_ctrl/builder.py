"""The builder: declare what a controller reconciles and what wakes it, then hand it a
reconciler::

    WIDGETS = Resource("example.com", "v1", "widgets", "Widget")  # a custom resource

    manager.builder("widget") \\
        .for_(WIDGETS, GenerationChanged) \\
        .owns(CONFIGMAPS) \\
        .with_options(ControllerOptions(max_concurrent_reconciles=2)) \\
        .complete(WidgetReconciler(manager.client))

``for_`` enqueues the object itself, ``owns`` the controller owner of the child, ``watches`` what
a map function returns. ``with_retry(RetryPolicy(...))`` bounds and shapes the retries of failed
reconciles (``retry.py``); ``every(interval, jitter=...)`` reconciles each object of the
``for_`` kind periodically while it exists (``timer.py``). ``for_``'s kind is also the
controller's primary: a NotFound saying the request's object is gone ends the work instead of
failing it (see ``notfound.py``).

Every kind named here gets a shared informer (one per kind, whoever else watches it) that the
manager starts and syncs before any controller runs.

The builder needs four things of whatever it registers the controller with — its client, its
clock, its metrics recorder and ``add`` — named by :class:`ControllerHost`; the
:class:`~ambient_ctrl.manager.Manager` is one, and the builder does not import it (the manager
imports the builder for ``manager.builder(name)``, so the dependency goes one way).

``GenerationChanged`` suits kinds whose spec moves ``metadata.generation`` (custom resources,
Deployments): it skips status-only and metadata-only updates. ConfigMaps, Secrets, Services
have no generation, so it would drop every update of theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from foundation.clock import Clock
from informers.resource import Resource
from metrics.recorder import Recorder

from .aio import AsyncReconciler, EventLoop, is_async
from .client import Client
from .controller import Controller, ControllerOptions
from .handler import (
    Batch,
    EnqueueForObject,
    EnqueueForOwner,
    EnqueueMapped,
    EventHandler,
    EventSource,
)
from .notfound import Primary, on_server, version_in
from .predicate import Predicate
from .reconcile import Reconciler, Request
from .retry import RetryPolicy
from .timer import Timer


class ControllerHost(Protocol):
    """What a :class:`Builder` needs of the manager it builds for: the client whose informers
    feed the controller, the clock and recorder the controller runs with, ``add``, which
    runs the controller (with leader election when ``needs_leader``), and ``event_loop``, the
    one loop async reconcilers run on."""

    @property
    def client(self) -> Client: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def recorder(self) -> Recorder: ...

    def add(self, runnable: Controller, *, needs_leader: bool = True) -> None: ...

    def event_loop(self) -> EventLoop: ...


@dataclass(frozen=True, slots=True)
class _Watch:
    resource: Resource
    handler: EventHandler
    predicates: tuple[Predicate, ...]
    label_selector: str | None = None
    field_selector: str | None = None
    namespace: str | None = None
    batch: Batch | None = None


class Builder:
    """Collects watches and options; :meth:`complete` builds and registers the controller."""

    def __init__(self, manager: ControllerHost, name: str | None = None) -> None:
        self._manager = manager
        self._name = name
        self._for: Resource | None = None
        self._watches: list[_Watch] = []
        self._filters: tuple[Predicate, ...] = ()
        self._options = ControllerOptions()
        self._retry: RetryPolicy | None = None
        self._timer: Timer | None = None

    def for_(self, resource: Resource, *predicates: Predicate) -> Builder:
        if self._for is not None:
            raise ValueError("for_ may be called once: a controller reconciles one kind")
        self._for = resource
        self._watches.append(_Watch(resource, EnqueueForObject(), predicates))
        return self

    def owns(self, resource: Resource, *predicates: Predicate, only_controller: bool = True,
             label_selector: str | None = None, batch: Batch | None = None) -> Builder:
        """Reconcile the controller owner when a child changes. ``label_selector`` narrows the
        cache of that kind to the children this controller labels (a cluster-wide cache of
        pods or secrets is costly, and secrets are sensitive). ``batch``: the updates that
        are only progress wait for the ones after them (``handler.Batch``)."""
        if self._for is None:
            raise ValueError("call for_ before owns: the owner kind comes from it")
        handler = EnqueueForOwner(self._for, only_controller=only_controller)
        self._watches.append(_Watch(resource, handler, predicates, label_selector,
                                    batch=batch))
        return self

    def watches(self, resource: Resource, map_fn: Callable[[Any], Iterable[Request]],
                *predicates: Predicate, namespace: str | None = None,
                label_selector: str | None = None,
                field_selector: str | None = None, batch: Batch | None = None) -> Builder:
        """Reconcile what ``map_fn`` returns for each event of ``resource`` (in the cache
        scope the namespace and selectors give); ``batch`` as for :meth:`owns`."""
        self._watches.append(_Watch(resource, EnqueueMapped(map_fn), predicates,
                                    label_selector, field_selector, namespace, batch))
        return self

    def with_event_filter(self, *predicates: Predicate) -> Builder:
        """Predicates applied to every watch of this controller."""
        self._filters += predicates
        return self

    def with_options(self, options: ControllerOptions) -> Builder:
        """How the controller runs; :meth:`with_retry` and :meth:`every` override its
        ``retry`` and ``timer``, whichever is called first."""
        self._options = options
        return self

    def with_retry(self, policy: RetryPolicy) -> Builder:
        """Retry limits, backoff per error and hooks (see ``retry.py``)."""
        self._retry = policy
        return self

    def every(self, interval: float, *, jitter: float = 0.1, idle: float = 0.0) -> Builder:
        """Reconcile each object of the ``for_`` kind every ``interval`` seconds while it
        exists, plus up to ``jitter`` times the interval at random; with ``idle``, only once it
        has been unchanged that long (see ``timer.py``)."""
        self._timer = Timer(interval, jitter, idle)
        return self

    def complete(self, reconciler: Reconciler | AsyncReconciler) -> Controller:
        if self._for is None and not self._watches:
            raise ValueError("a controller needs for_ or watches")
        name = self._name or (self._for.kind.lower() if self._for else "controller")
        manager = self._manager
        options = self._options
        if self._retry is not None:
            options = replace(options, retry=self._retry)
        if self._timer is not None:
            options = replace(options, timer=self._timer)
        primary = (Primary(self._for, on_server(manager.client.resource(self._for)),
                           cached_version=version_in(manager.client.expect(self._for).store))
                   if self._for is not None else None)
        loop = None
        if is_async(reconciler):
            loop = manager.event_loop()
            loop.reserve(options.max_concurrent_reconciles)
        controller = Controller(name, reconciler, options=options, clock=manager.clock,
                                recorder=manager.recorder, primary=primary, loop=loop)
        for watch in self._watches:
            informer = manager.client.expect(watch.resource, namespace=watch.namespace,
                                             label_selector=watch.label_selector,
                                             field_selector=watch.field_selector)
            informer.add_handler(EventSource(watch.handler, controller.queue,
                                             watch.predicates + self._filters,
                                             own_writes=controller.own_writes_of(
                                                 watch.resource), batch=watch.batch))
        manager.add(controller, needs_leader=options.need_leader_election)
        return controller
