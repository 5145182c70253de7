"""Event handlers: which requests an informer event should enqueue.

* :class:`EnqueueForObject` — the object itself (``for_``);
* :class:`EnqueueForOwner` — the object's controller owner of a given kind (``owns``);
* :class:`EnqueueMapped` — whatever a map function returns (``watches``).

:class:`EventSource` joins an informer, a handler, predicates and a queue: it is what the
builder registers on the informer. It adds at :data:`~ambient_ctrl.workqueue.LOW_PRIORITY`
what is old news — the informer's initial list (also what a handler registered late is given
first) and updates that changed nothing (a resync) — and everything else at normal priority,
as controller-runtime's handlers do on a priority queue (``WithLowPriorityWhenUnchanged``): a
standby that takes over, or an operator that restarts, reconciles sessions created meanwhile
before the thousands it lists.

A source may **batch** updates (:class:`Batch`, ``batch=`` on the builder's ``owns`` and
``watches``), as kube's Job controller batches its pods' updates (``podUpdateBatchPeriod``,
1 s): an update that is only progress is added after the batch's period, so the steps a child
takes in quick succession wake the owner once, not once each; an update the batch calls urgent,
and every create and delete, is added at once. With :attr:`ControllerOptions.latest_result_wins
<ambient_ctrl.controller.ControllerOptions>`, a reconcile that begins after a batched add was
made has read at least that state, and takes the add back when it ends: the next urgent update
(a runner Pod's start, after its binding) then brings the progress before it along in the same
pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from informers.change import Change
from informers.resource import Resource

from .ownwrites import OwnWritesOf
from .predicate import Predicate, and_, runs_inline, settled
from .reconcile import Request
from .workqueue import LOW_PRIORITY, NORMAL_PRIORITY, WorkQueue

Obj = Mapping[str, Any]


class EventHandler(Protocol):
    def requests(self, obj: Obj) -> Iterable[Request]: ...


class EnqueueForObject:
    def requests(self, obj: Obj) -> Iterable[Request]:
        return (Request.for_object(obj),)

    @staticmethod
    def requests_for_key(key: str) -> Iterable[Request]:
        """The request of a store key (``namespace/name``): no need to decode the object."""
        namespace, _, name = key.rpartition("/")
        return (Request(namespace, name),)


@dataclass(frozen=True, slots=True)
class EnqueueForOwner:
    """The owner of kind ``owner`` named in the object's owner references (by default only the
    controller reference, as controller-runtime's ``Owns``)."""

    owner: Resource
    only_controller: bool = True

    def requests(self, obj: Obj) -> Iterable[Request]:
        meta = obj.get("metadata") or {}
        for ref in meta.get("ownerReferences") or ():
            if self.only_controller and not ref.get("controller"):
                continue
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            if ref.get("kind") == self.owner.kind and group == self.owner.group:
                namespace = str(meta.get("namespace") or "") if self.owner.namespaced else ""
                yield Request(namespace, str(ref.get("name", "")))


@dataclass(frozen=True, slots=True)
class EnqueueMapped:
    map: Callable[[Obj], Iterable[Request]]

    def requests(self, obj: Obj) -> Iterable[Request]:
        return self.map(obj)


@dataclass(frozen=True, slots=True)
class Batch:
    """Which updates may wait ``period`` seconds for the ones that follow (see the module).

    ``urgent(old, new)``: whether the update is news the owner must see at once (a failure,
    a new state); the others are progress. It must be quick and never raise or block: an event
    source calls it on the informer's thread, as it does inline predicates."""

    period: float
    urgent: Callable[[Obj, Obj], bool]


class EventSource:
    """An informer change handler that filters changes through predicates and enqueues
    requests, with controller-runtime's mapping:

    * create: the new object; delete: the object as it was deleted;
    * update: for ``for_``, the new object; for ``owns`` and ``watches``, *both* the old and the
      new object, so an owner reference removed or moved to another owner wakes the old owner
      too (and a map function sees where the object was as well as where it is).

    The objects of a change are decoded only if a predicate or the handler needs them: ``for_``
    without predicates enqueues the key alone.

    A source made of our own handlers (:class:`EnqueueForObject`, :class:`EnqueueForOwner`)
    and built-in or ``inline`` predicates is quick and never blocks, so it is ``inline``: the
    informer calls
    it on its reflector's thread with the object it just parsed (``informers.informer``), not
    through a queue and a thread of its own. A map function or a predicate of the user's runs
    on a handler thread, where a slow one stalls nobody else."""

    def __init__(self, handler: EventHandler, queue: WorkQueue[Request],
                 predicates: Iterable[Predicate] = (), *,
                 own_writes: OwnWritesOf | None = None, batch: Batch | None = None) -> None:
        self._handler = handler
        self._batch = batch
        self._own_writes = own_writes
        self._queue = queue
        self._predicates = tuple(predicates)
        self._for_object = isinstance(handler, EnqueueForObject)
        self._by_key = self._for_object and not self._predicates
        # The controller owner is known to be the same in both states of most updates (the
        # store's controller index): then the old state maps to the same request as the new.
        self._by_controller = (isinstance(handler, EnqueueForOwner) and handler.only_controller
                               and not self._predicates)
        self.inline = (isinstance(handler, EnqueueForObject | EnqueueForOwner)
                       and all(runs_inline(p) for p in self._predicates))
        # Creates and deletes the predicates decide whatever the object (the built-in ones look
        # at updates only): passed, a for_ source enqueues the key without decoding; refused,
        # nothing is decoded at all.
        self._settled = {event: settled(and_(*self._predicates), event)
                         for event in ("create", "delete")}

    def on_change(self, change: Change) -> None:
        event = "delete" if change.deleted else "update" if change.existed else "create"
        verdict = self._settled.get(event)
        if verdict is False:
            return
        if (self._own_writes is not None and event != "delete" and not change.initial
                and self._own_writes.caused(change.key, change.new_version,
                                            lambda: self._enqueue(change, verdict))):
            return  # the object as our reconcile wrote it, or held until our write ends
        self._enqueue(change, verdict)

    def _enqueue(self, change: Change, verdict: bool | None) -> None:
        if self._by_key or (verdict and self._for_object):
            requests: Iterable[Request] = EnqueueForObject.requests_for_key(change.key)
        else:
            requests = self._requests(change)
        priority = LOW_PRIORITY if change.initial or change.unchanged else NORMAL_PRIORITY
        if self._batch is not None:
            requests = tuple(requests)
            if requests and self._batched(change):
                for request in requests:
                    self._queue.add_after(request, self._batch.period, priority)
                return
        for request in requests:
            self._queue.add(request, priority)

    def _batched(self, change: Change) -> bool:
        """Whether this change is progress that waits for the batch's period."""
        if not change.existed or change.deleted or change.initial or change.unchanged:
            return False
        old, new = change.old, change.new
        assert self._batch is not None
        return old is not None and new is not None and not self._batch.urgent(old, new)

    def _requests(self, change: Change) -> Iterable[Request]:
        predicates = self._predicates
        if change.deleted:
            old = change.old
            assert old is not None
            return self._handler.requests(old) if all(p.delete(old) for p in predicates) else ()
        new = change.new
        assert new is not None
        if not change.existed:
            return self._handler.requests(new) if all(p.create(new) for p in predicates) else ()
        if self._by_controller and not change.owner_moved:
            return self._handler.requests(new)
        old = change.old
        assert old is not None
        if not all(p.update(old, new) for p in predicates):
            return ()
        if self._for_object:
            return self._handler.requests(new)
        # dict.fromkeys: each request once, in order (new first), for a map that repeats.
        return dict.fromkeys([*self._handler.requests(new), *self._handler.requests(old)])

