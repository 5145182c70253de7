"""Shared informers: one reflector and one store per (resource, namespace, selectors), however
many consumers; each consumer registers handlers that are told of adds, updates and deletes.

Guarantees to handlers:

* per object, notifications arrive in order: add before update, nothing after delete unless the
  object is created again; a deletion carries the object as the server's DELETED event had it
  (its final state, which may be newer than the cache's); a deletion missed while disconnected
  arrives as a :class:`DeletedFinalStateUnknown` tombstone carrying the last known state;
* a handler registered late first receives the current contents as adds;
* each handler has its own queue and thread, so a slow handler never stalls the reflector or
  other handlers; a handler that raises is logged and keeps receiving;
* except an *inline* change handler (``inline = True`` on it): it runs on the thread that
  applies the change (the reflector's), under the informer's lock, with the object the
  reflector just parsed lent as ``change.new`` — no queue, no thread hand-off, no second
  decode. For handlers that only enqueue (a controller's sources without user predicates):
  measured on the ingest benchmark, the hand-off between the reflector's and a handler's
  thread cost about a quarter of the parse per event. What inline handlers decoded is dropped
  once they ran (``Change.reclaim``): queued handlers decode their own copy, so neither their
  queues nor a relist's changes hold object trees (a relist of 50,000 sessions peaked at
  3.0 GiB holding them, 1.5 GiB without: ``bench/scale.py``);
* objects passed to handlers are the store's shared, read-only objects;
* an optional resync replays the local cache as updates (it never relists from the server);
* the adds of the initial list, and of the contents a late handler receives first, are marked
  ``change.initial`` (client-go's ``isInInitialList``): a controller queues them behind fresh
  events (``ambient_ctrl.handler``).

The informer's threads (reflector, resync, one per handler) never die of the work they run;
one that ends anyway before :meth:`SharedInformer.stop` is reported by
:meth:`SharedInformer.dead_threads` (the manager's ``/healthz``).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from foundation.clock import Clock, RealClock
from foundation.threads import Threads, join_all

from .change import Change
from .rawjson import RawObject
from .reflector import Reflector, ReflectorHealth, ReflectorObserver, ReflectorOptions
from .rest import ResourceClient
from .store import IndexFunc, Obj, Prepared, Store, key_of

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown:
    """A deletion learnt from a relist: the object's last state as this informer knew it."""

    key: str
    obj: Obj


class EventHandler(Protocol):
    """What a consumer implements (each method optional in spirit: use :class:`Handlers`)."""

    def on_add(self, obj: Obj) -> None: ...

    def on_update(self, old: Obj, new: Obj) -> None: ...

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None: ...


class ChangeHandler(Protocol):
    """A consumer that takes each :class:`~informers.change.Change` whole (``change.type`` is
    add, update or delete; ``change.tombstone`` marks a deletion learnt from a relist) and
    decodes ``change.old`` / ``change.new`` only if it needs them: a controller that enqueues
    an object's key reads neither, and pays nothing for the objects' bodies.

    A change handler with a true ``inline`` attribute is called on the reflector's thread
    (see the module docstring): it must be quick, must not block, and must not keep
    ``change.new`` beyond the call."""

    def on_change(self, change: Change) -> None: ...


@dataclass(frozen=True, slots=True)
class Handlers:
    """An :class:`EventHandler` from plain functions; missing ones ignore the event."""

    add: Callable[[Obj], None] | None = None
    update: Callable[[Obj, Obj], None] | None = None
    delete: Callable[[Obj | DeletedFinalStateUnknown], None] | None = None

    def on_add(self, obj: Obj) -> None:
        if self.add is not None:
            self.add(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if self.update is not None:
            self.update(old, new)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        if self.delete is not None:
            self.delete(obj)


_SYNCED = ("synced",)
_STOP = ("stop",)


class Registration:
    """One handler's queue and thread. ``has_synced`` once it processed the initial contents."""

    def __init__(self, handler: EventHandler | ChangeHandler, name: str) -> None:
        self._handler = handler
        self._on_change = getattr(handler, "on_change", None)
        self.inline = self._on_change is not None and getattr(handler, "inline", False) is True
        """Delivered on the applying thread, not through a queue and a thread of its own."""
        # A C-implemented queue: the reflector's push and this thread's wait cost a fraction
        # of a Condition's, which matters at tens of thousands of events per second.
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._synced = threading.Event()
        self._stopped = False
        self._name = name
        self._threads = Threads(name)
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self._name

    def push(self, kind: str, change: Change) -> None:
        if not self.inline:
            self._queue.put((kind, change))
        elif not self._stopped:
            self._deliver((kind, change))

    def mark_synced(self) -> None:
        if self.inline:
            self._synced.set()
        else:
            self._queue.put(_SYNCED)

    def has_synced(self) -> bool:
        return self._synced.is_set()

    def wait_for_sync(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def start(self) -> None:
        if self._thread is None and not self.inline:
            self._thread = self._threads.start(self._run, name=self._name)

    @property
    def thread(self) -> threading.Thread | None:
        """The handler's thread (None until started)."""
        return self._thread

    def dead_threads(self) -> list[str]:
        """Its thread, if it ended before :meth:`stop`."""
        return self._threads.dead()

    def signal_stop(self) -> None:
        """Ask the thread to end once the notification in hand is delivered (without
        waiting); what is queued is dropped."""
        self._threads.stopping()
        self._stopped = True
        self._queue.put(_STOP)  # wakes the thread if it waits

    def stop(self, timeout: float) -> None:
        self.signal_stop()
        self._threads.join(timeout)

    def _run(self) -> None:
        get = self._queue.get
        while True:
            notification = get()
            if self._stopped:
                return
            self._deliver(notification)

    def _deliver(self, notification: tuple[Any, ...]) -> None:
        if notification is _SYNCED:
            self._synced.set()
            return
        kind, change = notification
        try:
            if self._on_change is not None:
                self._on_change(change)
                return
            # The objects of a change are decoded here, off the reflector's thread.
            handler: Any = self._handler
            if kind == "add":
                handler.on_add(change.new)
            elif kind == "update":
                handler.on_update(change.old, change.new)
            else:
                handler.on_delete(DeletedFinalStateUnknown(change.key, change.old)
                                  if change.tombstone else change.old)
        except Exception:  # a faulty handler must not stop the others or its own queue
            log.exception("event handler %r failed on %s", self._handler, kind)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()


class SharedInformer:
    """A store kept in step by a reflector, fanning changes out to registered handlers.

    Owns the reflector thread, the optional resync thread and each handler's thread;
    :meth:`stop` stops and joins them all.
    """

    def __init__(self, client: ResourceClient, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 store: Store | None = None, resync_period: float | None = None,
                 options: ReflectorOptions = ReflectorOptions(), clock: Clock | None = None,
                 observer: ReflectorObserver | None = None) -> None:
        self.resource = client.resource
        self.store = store if store is not None else Store()  # an empty store is falsy
        self._clock = clock or RealClock()
        self._resync_period = resync_period
        self._reflector = Reflector(client, self, namespace=namespace,
                                    label_selector=label_selector,
                                    field_selector=field_selector, options=options,
                                    clock=self._clock, observer=observer)
        self._lock = threading.Lock()
        self._registrations: list[Registration] = []
        self._inline: tuple[Registration, ...] = ()
        self._queued: tuple[Registration, ...] = ()
        self._lends = False
        """Whether an inline handler is registered: applied changes then lend it the parsed
        object."""
        self._handler_ids = itertools.count()
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._started = False
        self.name = f"informer-{self.resource.group_resource}"
        self._threads = Threads(self.name)

    # consumers ---------------------------------------------------------------------------------
    def add_handler(self, handler: EventHandler | ChangeHandler) -> Registration:
        """Register ``handler`` (an :class:`EventHandler`, or a :class:`ChangeHandler` when it
        has ``on_change``); it first receives the current contents as adds."""
        registration = Registration(handler, f"{self.name}-handler-{next(self._handler_ids)}")
        with self._lock:
            if self._synced.is_set():
                for change in self.store.contents():
                    change.initial = True
                    registration.push("add", change)
                registration.mark_synced()
            self._registrations.append(registration)
            self._split_registrations()
            if self._started:
                registration.start()
        return registration

    def remove_handler(self, registration: Registration, timeout: float = 10.0) -> None:
        """Stop delivering to ``registration``'s handler and end its thread (client-go's
        ``RemoveEventHandler``); ValueError if it is not this informer's."""
        with self._lock:
            if registration not in self._registrations:
                raise ValueError(f"{registration.name} is not a handler of {self.name}")
            self._registrations.remove(registration)
            self._split_registrations()
        registration.stop(timeout)

    def _split_registrations(self) -> None:
        self._inline = tuple(r for r in self._registrations if r.inline)
        self._queued = tuple(r for r in self._registrations if not r.inline)
        self._lends = bool(self._inline)

    @property
    def handler_count(self) -> int:
        """How many handlers are registered (an informer with none serves reads only)."""
        with self._lock:
            return len(self._registrations)

    def has_synced(self) -> bool:
        return self._synced.is_set()

    def wait_for_sync(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    @property
    def resource_version(self) -> str:
        return self._reflector.resource_version

    @property
    def health(self) -> ReflectorHealth:
        """How its reflector is doing: last success, failures in a row (``/healthz``), and
        whether it lost its resourceVersion and is relisting (``/readyz``)."""
        return self._reflector.health

    def dead_threads(self) -> list[str]:
        """Its threads (reflector, resync, handlers) that ended before :meth:`stop`."""
        with self._lock:
            registrations = list(self._registrations)
        return self._threads.dead() + [dead for r in registrations for dead in r.dead_threads()]

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add named indexes to the store (what it holds already is indexed too)."""
        self.store.add_indexers(indexers)

    # lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            for registration in self._registrations:
                registration.start()
            self._threads.start(self._reflector.run, self._stop, name=f"{self.name}-reflector")
            if self._resync_period:
                self._threads.start(self._resync_loop, name=f"{self.name}-resync")

    def signal_stop(self) -> None:
        """Ask every thread to end, without waiting for them (:meth:`stop` joins)."""
        self._threads.stopping()
        self._stop.set()
        self._reflector.stop()
        with self._lock:
            registrations = list(self._registrations)
        for registration in registrations:
            registration.signal_stop()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the reflector, resync and handler threads and join them all within ``timeout``
        seconds together; threads that outlive it are logged."""
        self.signal_stop()
        with self._lock:
            threads = self._threads.threads + [r.thread for r in self._registrations
                                               if r.thread is not None]
        join_all(threads, timeout, owner=self.name)

    def _resync_loop(self) -> None:
        assert self._resync_period is not None
        while not self._clock.wait(self._stop, self._resync_period):
            try:
                with self._lock:
                    for resync in self.store.contents(as_updates=True):
                        for registration in self._registrations:
                            registration.push("update", resync)
            except Exception:  # the next period tries again; the thread must not end
                log.exception("resync of %s failed", self.resource.group_resource)

    # the reflector's sink ----------------------------------------------------------------------
    @property
    def drops_managed_fields(self) -> bool:
        return self.store.drops_managed_fields

    def prepare(self, objects: Iterable[Obj]) -> list[Prepared]:
        return self.store.prepare(objects)

    def replace(self, objects: list[Obj] | list[Prepared], resource_version: str) -> None:
        with self._lock:
            # Let go of each change once delivered: queued handlers hold theirs until they
            # ran, and nothing holds every listed object decoded until the last one is out.
            changes = deque(self.store.replace(objects))
            initial = not self._synced.is_set()
            while changes:
                change = changes.popleft()
                change.initial = initial
                self._dispatch(change, relist=True)
            if not self._synced.is_set():
                for registration in self._registrations:
                    registration.mark_synced()
                self._synced.set()

    def apply(self, event_type: str, obj: Obj, raw: RawObject | None = None) -> None:
        with self._lock:
            if event_type == "DELETED":
                # Handlers get the object as the server last had it (the event's), which may
                # be newer than the cache's: e.g. finalizers removed by the final update.
                change = self.store.delete(key_of(obj), final=obj, raw=raw)
                if not change.existed:
                    return  # never seen: nothing to tell
            else:
                change = self.store.upsert(obj, raw=raw, lend=self._lends)
            self._dispatch(change, relist=False)

    def _dispatch(self, change: Change, *, relist: bool) -> None:
        if change.deleted:
            change.tombstone = relist
            self._notify("delete", change)
        elif not change.existed:
            self._notify("add", change)
        elif not relist or change.old_version != change.new_version:
            # A relist re-delivers every object; only those that changed are news.
            self._notify("update", change)

    def _notify(self, kind: str, change: Change) -> None:
        for registration in self._inline:
            registration.push(kind, change)
        change.reclaim()  # queued handlers decode their own copy: no object trees in queues
        for registration in self._queued:
            registration.push(kind, change)

