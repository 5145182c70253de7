"""The server's storage: objects as compact JSON bytes, one revision counter, event history.

Like etcd behind kube-apiserver there is one revision across all kinds; each write takes the next
one and becomes an :class:`Event` kept in a bounded history, from which watches resume. Objects
are held as serialized bytes, not dicts: Python dicts cost 3-6x more memory and turn the garbage
collector into a latency source (see CLIENT-SURFACE.md). All access happens on the server's
event-loop thread, so there is no lock.

A write takes its revision only once the object has been serialised and found within
``max_object_bytes``: a write that fails leaves no gap in the revisions and no event. The bound
is etcd's default ``--max-request-bytes`` (1.5 MiB), and a larger object is refused as
kube-apiserver passes on etcd's refusal: 500 with the message "etcdserver: request is too
large" and no reason. (etcd measures the protobuf encoding for built-in kinds; we measure JSON,
which is somewhat larger, so the bound bites a little earlier for them.)

A request may wait for the revision to reach a resourceVersion it names (:meth:`ObjectStore.
reached`); and a fault can put the store back to a :class:`Backup` — its objects and its
revision counter as they were, the history gone — as a restore of etcd from a backup does.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from envtest import errors
from envtest.kinds.fields import selectable_fields
from envtest.kinds.registry import ResourceType

ETCD_MAX_REQUEST_BYTES = 1572864
"""etcd's default --max-request-bytes."""

Key = tuple[str, str]
"""(namespace, name); namespace is "" for cluster-scoped objects."""


@dataclass(slots=True)
class Stored:
    """One object at one revision, with what selectors and the garbage collector need
    pre-extracted (so neither parses the object on every event)."""

    raw: bytes
    rv: int
    labels: Mapping[str, str]
    fields: Mapping[str, str]
    uid: str = ""
    owners: tuple[str, ...] = ()
    """UIDs named by ``metadata.ownerReferences``."""
    finalizers: tuple[str, ...] = ()
    deleting: bool = False

    def load(self) -> dict[str, Any]:
        """A fresh, private dict of the object (callers may mutate it)."""
        obj: dict[str, Any] = orjson.loads(self.raw)
        return obj


@dataclass(slots=True)
class Event:
    """One committed change. ``old_*`` describe the object before a MODIFIED change."""

    rv: int
    store: str
    type: str
    namespace: str
    new: Stored
    old_labels: Mapping[str, str] | None = None
    old_fields: Mapping[str, str] | None = None
    _lines: dict[str, bytes] = field(default_factory=dict)

    def json_line(self, event_type: str) -> bytes:
        """The watch-stream line for this event, serialized once for all watchers."""
        line = self._lines.get(event_type)
        if line is None:
            line = b'{"type":"' + event_type.encode() + b'","object":' + self.new.raw + b"}\n"
            self._lines[event_type] = line
        return line


class Subscriber(Protocol):
    """A watch stream: receives every event of its store, filters and forwards it."""

    def offer(self, event: Event) -> None: ...


@dataclass(frozen=True, slots=True)
class Backup:
    """What :meth:`ObjectStore.backup` saw: every object and the revision, at one moment."""

    revision: int
    objects: dict[str, dict[Key, Stored]]


class ObjectStore:
    """Objects by store and key, the revision counter, history and subscribers."""

    def __init__(self, *, history_limit: int = 20000,
                 max_object_bytes: int = ETCD_MAX_REQUEST_BYTES) -> None:
        self.revision = 1
        self.max_object_bytes = max_object_bytes
        self.compacted = 1
        """The oldest revision a watch can resume from; older ones get 410 Gone."""
        self._objects: dict[str, dict[Key, Stored]] = {}
        self._sorted: dict[str, list[Key]] = {}
        """Each store's keys in order, kept until a key comes or goes (updates keep it)."""
        self._history: deque[Event] = deque()
        self._history_limit = history_limit
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._observers: list[Callable[[Event], None]] = []
        self._waiters: list[tuple[int, asyncio.Future[bool]]] = []

    # reads -------------------------------------------------------------------------------------
    def get(self, store: str, key: Key) -> Stored | None:
        return self._objects.get(store, {}).get(key)

    def items(self, store: str, namespace: str | None = None, *, after: Key | None = None
              ) -> Iterator[tuple[Key, Stored]]:
        """Objects of one store in key order (namespace, then name), as etcd lists them;
        only those past ``after`` (a list's continue key). Starts by bisection, so a page
        of a long list costs its own length, not the collection's."""
        objects = self._objects.get(store, {})
        keys = self._keys(store)
        start, end = self._span(keys, namespace)
        if after is not None:
            start = max(start, bisect.bisect_right(keys, after))
        for index in range(start, end):
            key = keys[index]
            stored = objects.get(key)
            if stored is not None:  # gone since (a caller writing while it iterates)
                yield key, stored

    def count_after(self, store: str, namespace: str | None, after: Key) -> int:
        """How many keys of ``namespace`` (None: all) sort after ``after``."""
        keys = self._keys(store)
        start, end = self._span(keys, namespace)
        return max(0, end - max(start, bisect.bisect_right(keys, after)))

    def _keys(self, store: str) -> list[Key]:
        keys = self._sorted.get(store)
        if keys is None:
            keys = self._sorted[store] = sorted(self._objects.get(store, {}))
        return keys

    @staticmethod
    def _span(keys: list[Key], namespace: str | None) -> tuple[int, int]:
        if namespace is None:
            return 0, len(keys)
        # Namespace names never hold NUL: (ns + "\0",) sorts after every (ns, name).
        return (bisect.bisect_left(keys, (namespace, "")),
                bisect.bisect_left(keys, (namespace + "\0",)))

    def count(self, store: str) -> int:
        return len(self._objects.get(store, {}))

    def namespaces_in_use(self, store: str) -> set[str]:
        return {ns for ns, _ in self._objects.get(store, {})}

    # writes ------------------------------------------------------------------------------------
    def put(self, rtype: ResourceType, obj: dict[str, Any], event_type: str) -> Stored:
        """Store ``obj`` (ADDED or MODIFIED) at the next revision and notify watchers.

        ``obj`` gets its new ``metadata.resourceVersion`` in place.
        """
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        stored = self._stamp(rtype, obj, limit=self.max_object_bytes)
        objects = self._objects.setdefault(rtype.store, {})
        old = objects.get(key)
        objects[key] = stored
        if old is None:
            self._sorted.pop(rtype.store, None)
        self._record(Event(stored.rv, rtype.store, event_type, key[0], stored,
                           old.labels if old else None, old.fields if old else None))
        return stored

    def delete(self, rtype: ResourceType, obj: dict[str, Any]) -> Stored:
        """Remove the object; the DELETED event carries its last state at a new revision."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        stored = self._stamp(rtype, obj, limit=0)
        if self._objects.get(rtype.store, {}).pop(key, None) is not None:
            self._sorted.pop(rtype.store, None)
        self._record(Event(stored.rv, rtype.store, "DELETED", key[0], stored,
                           stored.labels, stored.fields))
        return stored

    def drop_store(self, store: str) -> list[Stored]:
        """Forget a whole store (its CRD went away) without events; return what it held."""
        self._sorted.pop(store, None)
        return list(self._objects.pop(store, {}).values())

    def forget_history(self) -> None:
        """Behave like a compacted etcd: resuming from any earlier revision gets 410 Gone."""
        self._history.clear()
        self.compacted = self.revision

    def backup(self) -> Backup:
        """Every object and the revision as they are now (stored objects are never changed
        in place, so the backup shares them)."""
        return Backup(self.revision, {store: dict(objects)
                                      for store, objects in self._objects.items()})

    def restore(self, backup: Backup) -> None:
        """Put the objects and the revision counter back as ``backup`` saw them, history gone
        (an etcd restored from a backup): what was written since is lost, what was deleted
        since is back, and the revision is behind every version a client saw since. Nothing
        is told to watchers or observers (drop the watches: a restore restarts the server)."""
        self._objects = {store: dict(objects) for store, objects in backup.objects.items()}
        self._sorted.clear()
        self.revision = self.compacted = backup.revision
        self._history.clear()

    def reached(self, revision: int, timeout: float) -> asyncio.Future[bool]:
        """A future that becomes True once the revision is at least ``revision``, or False
        after ``timeout`` seconds (call on the loop thread)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        if self.revision >= revision:
            future.set_result(True)
            return future
        waiter = (revision, future)
        self._waiters.append(waiter)

        def expire() -> None:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            if not future.done():
                future.set_result(False)

        timer = loop.call_later(max(timeout, 0.0), expire)
        future.add_done_callback(lambda _: timer.cancel())
        return future

    def _wake(self) -> None:
        waiting, self._waiters = self._waiters, []
        for revision, future in waiting:
            if future.done():
                continue
            if self.revision >= revision:
                future.set_result(True)
            else:
                self._waiters.append((revision, future))

    def _stamp(self, rtype: ResourceType, obj: dict[str, Any], *, limit: int) -> Stored:
        """Serialise ``obj`` at the next revision, then take that revision (not before: a
        failure must not use one up)."""
        meta = obj["metadata"]
        previous = meta.get("resourceVersion")
        meta["resourceVersion"] = str(self.revision + 1)
        try:
            raw = orjson.dumps(obj)
            if limit and len(raw) > limit:
                raise errors.APIError(500, "", "etcdserver: request is too large")
        except BaseException:
            if previous is None:
                del meta["resourceVersion"]
            else:
                meta["resourceVersion"] = previous
            raise
        self.revision += 1
        owners = tuple(str(ref.get("uid", "")) for ref in meta.get("ownerReferences") or ())
        return Stored(raw, self.revision, meta.get("labels") or {},
                      selectable_fields(rtype, obj), uid=str(meta.get("uid", "")),
                      owners=owners, finalizers=tuple(meta.get("finalizers") or ()),
                      deleting=bool(meta.get("deletionTimestamp")))

    def _record(self, event: Event) -> None:
        self._history.append(event)
        while len(self._history) > self._history_limit:
            self.compacted = self._history.popleft().rv
        for subscriber in list(self._subscribers.get(event.store, ())):
            subscriber.offer(event)
        for observer in self._observers:
            observer(event)
        if self._waiters:
            self._wake()

    def observe(self, observer: Callable[[Event], None]) -> None:
        """Call ``observer`` for every event of every store, after its watchers.

        Observers (the garbage collector) must not write from inside the call: a write would
        reach some watchers before the event being delivered. They schedule their work instead.
        """
        self._observers.append(observer)

    # watch support -----------------------------------------------------------------------------
    def subscribe(self, store: str, subscriber: Subscriber) -> None:
        self._subscribers.setdefault(store, set()).add(subscriber)

    def unsubscribe(self, store: str, subscriber: Subscriber) -> None:
        self._subscribers.get(store, set()).discard(subscriber)

    def subscribers(self, store: str | None = None) -> list[Subscriber]:
        if store is not None:
            return list(self._subscribers.get(store, ()))
        return [s for subs in self._subscribers.values() for s in subs]

    def events_since(self, store: str, revision: int) -> Iterable[Event]:
        """Events of ``store`` after ``revision``, oldest first. Caller checks ``compacted``."""
        newer: list[Event] = []
        for event in reversed(self._history):
            if event.rv <= revision:
                break
            if event.store == store:
                newer.append(event)
        newer.reverse()
        return newer


def synthetic_added(store: str, items: Iterable[tuple[Key, Stored]],
                    keep: Callable[[Stored], bool]) -> list[Event]:
    """ADDED events for existing objects (a watch from "now" or with sendInitialEvents)."""
    return [Event(s.rv, store, "ADDED", key[0], s) for key, s in items if keep(s)]
