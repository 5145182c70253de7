"""Event handlers: which requests an informer event should enqueue.

* :class:`EnqueueForObject` — the object itself (``for_``);
* :class:`EnqueueForOwner` — the object's controller owner of a given kind (``owns``);
* :class:`EnqueueMapped` — whatever a map function returns (``watches``).

:class:`EventSource` joins an informer, a handler, predicates and a queue: it is what the
builder registers on the informer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from informers.informer import DeletedFinalStateUnknown
from informers.resource import Resource

from .predicate import Predicate
from .reconcile import Request
from .workqueue import WorkQueue

Obj = Mapping[str, Any]


class EventHandler(Protocol):
    def requests(self, obj: Obj) -> Iterable[Request]: ...


class EnqueueForObject:
    def requests(self, obj: Obj) -> Iterable[Request]:
        return (Request.for_object(obj),)


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


class EventSource:
    """An informer handler that filters events through predicates and enqueues requests."""

    def __init__(self, handler: EventHandler, queue: WorkQueue[Request],
                 predicates: Iterable[Predicate] = ()) -> None:
        self._handler = handler
        self._queue = queue
        self._predicates = tuple(predicates)

    def _enqueue(self, obj: Obj) -> None:
        for request in self._handler.requests(obj):
            self._queue.add(request)

    def on_add(self, obj: Obj) -> None:
        if all(p.create(obj) for p in self._predicates):
            self._enqueue(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if all(p.update(old, new) for p in self._predicates):
            self._enqueue(new)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        state = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        if all(p.delete(state) for p in self._predicates):
            self._enqueue(state)
