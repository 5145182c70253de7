"""The informer's local copy: a thread-safe, indexed store of objects kept as compact JSON.

Representation, chosen by measurement (CLIENT-SURFACE.md): a dict per Pod costs 3-6x its compact
JSON, so each object is kept as exact-size compact bytes plus a small record (resourceVersion,
labels, index values); reads decode on demand (~10 us for a Pod) through a small LRU cache of
decoded objects, so the reads of one reconcile, and of the next one on the same object, decode
once. Writes do not fill that cache. It is small on purpose: decoded objects are trees of
container objects that every full garbage collection walks — 4,096 decoded Pods per informer
are over a million of them, and with 10,000 sessions cached that made collections pause an
operator for a quarter of a second. It holds 64 per informer: the reads it serves come within
a pass or two of the decode, and at 70 sessions/s 64 served as many as 256 did (76 % of 69,000
reads), while the young collections found half as many objects alive (with the operator's
render cache cut alike; ``bench/latency_trace.py``, ``gc.callbacks``).
The record beside the bytes is kept where the collector need not look (see :data:`_Entry`).

Contract for readers: objects handed out are shared and **read-only** — copy before editing.
With ``debug_mutations=True`` every cached read checks that the shared object still serializes to
its stored bytes and raises :class:`MutatedCacheError` if a consumer changed it.

Each write reports what it did as a :class:`~informers.change.Change` (:mod:`.change`).
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import orjson

from .change import Change
from .rawjson import RawObject, without_managed_fields

Obj = dict[str, Any]
IndexFunc = Callable[[Mapping[str, Any]], Iterable[str]]
Transform = Callable[[Obj], Obj]

NAMESPACE_INDEX = "namespace"
CONTROLLER_INDEX = "controller"


class MutatedCacheError(RuntimeError):
    """A consumer modified an object it got from the cache (they are shared and read-only)."""


def key_of(obj: Mapping[str, Any]) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects (client-go's key)."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name', '')}" if namespace else str(meta.get("name", ""))


def strip_managed_fields(obj: Obj) -> Obj:
    """The default transform: ``metadata.managedFields`` is large and no controller reads it."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


def stripping_managed_fields(transform: Transform) -> Transform:
    """A transform that strips ``metadata.managedFields`` (:func:`strip_managed_fields`), then
    applies ``transform``. Said so, rather than by a transform of one's own that strips them
    inside: a store with either keeps the same objects, but only with this one does a watch
    know to cut them from each event's bytes before parsing it (half a Pod's bytes as served:
    ``bench/informer_ingest.py``)."""
    def stripped_then(obj: Obj) -> Obj:
        return transform(strip_managed_fields(obj))

    stripped_then.drops_managed_fields = True  # type: ignore[attr-defined]
    return stripped_then


def drops_managed_fields(transform: Transform | None) -> bool:
    """Whether a store with ``transform`` keeps objects without ``metadata.managedFields``
    (the default transform, or one made by :func:`stripping_managed_fields`)."""
    return transform is strip_managed_fields or getattr(
        transform, "drops_managed_fields", False) is True


def index_namespace(obj: Mapping[str, Any]) -> Iterable[str]:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return (namespace,) if namespace else ()


def index_controller(obj: Mapping[str, Any]) -> Iterable[str]:
    """The UID of the controller owner, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return (str(ref.get("uid", "")),)
    return ()


_Entry = tuple[Any, ...]
"""What the store keeps of an object besides its labels: ``(raw, resourceVersion, *index
values)``, the index values in the order of the store's indexers, each a ``str`` when the
indexer gave exactly one value (most do) and a tuple otherwise.

A flat, plain tuple of strings and bytes on purpose: the garbage collector stops tracking such
a tuple at the first collection that sees it (one holding a nested tuple, an index of several
values, at the next generation's), so the store's bookkeeping is not walked again by later
ones. A tuple holding any other container, the labels' dict included, stays tracked: the labels
are kept apart. As a class instance holding the labels and a dict of tuples, an entry was four
to six tracked objects per event, living as long as the object (``bench/latency_trace.py``
with ``gc.callbacks``)."""

_RAW, _VERSION, _INDEXED = 0, 1, 2
_NO_LABELS: Mapping[str, str] = {}
_CONTROLLER_AT = _INDEXED + 1
"""Where the controller index's value sits: ``Store`` puts the namespace and controller
indexers first, and adding indexers only appends."""


def _values(value: str | tuple[str, ...]) -> tuple[str, ...]:
    """An entry's index value as a tuple of values."""
    return (value,) if isinstance(value, str) else value


_Bucket = str | set[str]
"""The keys of an index value: the one key as a string (most values have one: a controller
owner's UID has its children, one per kind), a set from the second on. A set of one key is a
216-byte object the collector tracks; ~80,000 of them with 10,000 sessions cached."""


def _add(index: dict[str, _Bucket], value: str, key: str) -> None:
    keys = index.get(value)
    if keys is None:
        index[value] = key
    elif isinstance(keys, str):
        if keys != key:
            index[value] = {keys, key}
    else:
        keys.add(key)


def _keys(bucket: _Bucket | None) -> Iterable[str]:
    if bucket is None:
        return ()
    return (bucket,) if isinstance(bucket, str) else bucket


def _index_value(values: Iterable[str]) -> str | tuple[str, ...]:
    """An indexer's values as an entry keeps them (see :data:`_Entry`)."""
    out = tuple(values)
    return out[0] if len(out) == 1 and isinstance(out[0], str) else out


class Prepared(NamedTuple):
    """An object made ready for the store outside its lock (transform, bytes, index values).
    A tuple, not a frozen dataclass: it is built once per watch event, on the hot path.
    ``obj`` is the transformed object, or None where it was not kept (see :meth:`Store.prepare`)."""

    key: str
    obj: Obj | None
    entry: _Entry
    labels: Mapping[str, str]
    indexers: Mapping[str, IndexFunc]


class Store:
    """Objects by key with named indexes. Safe for one writer (the reflector) and many readers."""

    def __init__(self, *, indexers: Mapping[str, IndexFunc] | None = None,
                 transform: Transform | None = strip_managed_fields,
                 decoded_cache_size: int = 64, debug_mutations: bool = False) -> None:
        self._indexers: dict[str, IndexFunc] = {NAMESPACE_INDEX: index_namespace,
                                                CONTROLLER_INDEX: index_controller}
        self._indexers.update(indexers or {})
        self._transform = transform
        self._entries: dict[str, _Entry] = {}
        self._labels: dict[str, Mapping[str, str]] = {}
        """Each object's labels (the object's own dict, as decoded), apart from its entry."""
        self._indexes: dict[str, dict[str, _Bucket]] = {name: {} for name in self._indexers}
        # Least recently used first: a plain dict (insertion order) rather than an LRU class,
        # so that the write path's one look-up is a single C call (dict.pop).
        self._decoded: dict[str, tuple[bytes, Obj]] = {}
        self._decoded_size = decoded_cache_size
        self._debug = debug_mutations
        self._lock = threading.RLock()

    @property
    def drops_managed_fields(self) -> bool:
        """Whether the store keeps objects without ``metadata.managedFields`` (its transform is
        the default, or made by :func:`stripping_managed_fields`): they need not be parsed in
        the first place."""
        return drops_managed_fields(self._transform)

    # writes (the reflector's side) -------------------------------------------------------------
    def upsert(self, obj: Obj, *, raw: RawObject | None = None, lend: bool = False) -> Change:
        """Add or replace ``obj``; the change carries the previous state for update handlers.

        The store keeps its own bytes: the caller may drop ``obj`` (the change decodes a copy
        on demand), and must not change it afterwards in debug mode. If the transform raises,
        the store is left as it was. ``raw``, when given, is ``obj`` as the server sent it
        (compact JSON): with the default transform the store keeps a cut of it rather than
        serialising the object again (:mod:`.rawjson`). With ``lend`` the change carries the
        (transformed) object as its new state until :meth:`Change.reclaim`, for handlers called
        before the change is queued: they need not decode what the caller just parsed.
        """
        encoded = self._encode(obj, keep=True, raw=raw)
        change = self._put(encoded)
        if lend and encoded.obj is not None:
            change.lend(encoded.obj)
        return change

    def prepare(self, objects: Iterable[Obj]) -> builtins.list[Prepared]:
        """``objects`` made ready for :meth:`replace` without keeping them (in debug mode they
        are kept, for the mutation check). A reflector prepares each list page as it arrives,
        so a relist of 50,000 Pods is held as their compact bytes, not as dicts five times that
        size that the garbage collector would walk again and again while the list grows
        (measured: parsing such pages with the pages kept took 8x as long with the collector
        on). Raises what the transform raises; nothing is stored until :meth:`replace`."""
        return [self._encode(obj, keep=self._debug) for obj in objects]

    def _encode(self, obj: Obj, *, keep: bool, raw: RawObject | None = None) -> Prepared:
        """The transformed object (if ``keep``), its key, its entry (bytes, version, index
        values) and labels; ``raw`` is the object's bytes as sent, if known."""
        cut = None
        if raw is not None and self._transform is strip_managed_fields and not self._debug:
            cut = without_managed_fields(raw, obj)
        if self._transform is not None:
            obj = self._transform(obj)
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace")  # key_of(obj), without a second call on the hot path
        key = f"{namespace}/{meta.get('name', '')}" if namespace else str(meta.get("name", ""))
        # orjson over-allocates its output: keep an exact-size copy.
        stored = cut if cut is not None else bytes(memoryview(orjson.dumps(obj)))
        indexers = self._indexers  # replaced, never changed, by add_indexers: a snapshot
        return Prepared(key, obj if keep else None,
                        (stored, str(meta.get("resourceVersion", "")),
                         *[_index_value(fn(obj)) for fn in indexers.values()]),
                        meta.get("labels") or _NO_LABELS, indexers)

    def _put(self, encoded: Prepared) -> Change:
        key, obj, entry = encoded.key, encoded.obj, encoded.entry
        raw = entry[_RAW]
        with self._lock:
            if encoded.indexers is not self._indexers:  # an index was added meanwhile
                current = obj if obj is not None else orjson.loads(raw)
                entry = (*entry[:_INDEXED],
                         *[_index_value(fn(current)) for fn in self._indexers.values()])
            old = self._entries.get(key)
            # The decoded cache serves readers, not writers: filling it on every write would
            # hold the most recently written objects as dicts (3-6x their bytes) and keep the
            # garbage collector busy scanning them. In debug mode writes fill it too, so a
            # handler that mutates the object it was given is caught by the next read.
            cached = self._decoded.pop(key, None)
            previous = None
            if old is not None:
                # Already decoded: no need to decode it again.
                previous = cached[1] if cached is not None and cached[0] is old[_RAW] else None
                if old[_INDEXED:] != entry[_INDEXED:]:  # most updates leave every index value
                    self._unindex(key, old)
                    self._index(key, entry)
            else:
                self._index(key, entry)
            self._entries[key] = entry
            self._labels[key] = encoded.labels
            if self._debug:
                self._remember(key, raw, obj if obj is not None else orjson.loads(raw))
        new = obj if self._debug else None
        if old is None:
            return Change(key, new=new, new_raw=raw, new_version=entry[_VERSION])
        change = Change(key, previous, new, new_raw=raw, old_raw=old[_RAW],
                        old_version=old[_VERSION], new_version=entry[_VERSION])
        change.owner_moved = old[_CONTROLLER_AT] != entry[_CONTROLLER_AT]
        return change

    def delete(self, key: str, final: Obj | None = None, *,
               raw: RawObject | None = None) -> Change:
        """Remove ``key``. The change's old state is ``final`` when given — the object the
        server's DELETED event carried, its state at deletion (encoded like an upsert) — or
        else the last state this store held (a deletion learnt from a relist). Nothing is
        reported (``existed`` is False) for a key the store did not hold. ``raw``: where
        ``final`` lies in the line it arrived in, as for :meth:`upsert`."""
        encoded = (self._encode(final, keep=self._debug, raw=raw) if final is not None
                   else None)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is None:
                return Change(key)
            del self._labels[key]
            cached = self._decoded.pop(key, None)
            previous = (cached[1] if encoded is None and cached is not None
                        and cached[0] is old[_RAW] else None)
            self._unindex(key, old)
        if encoded is not None:
            entry = encoded.entry
            return Change(key, encoded.obj if self._debug else None, old_raw=entry[_RAW],
                          old_version=entry[_VERSION])
        return Change(key, previous, old_raw=old[_RAW], old_version=old[_VERSION])

    def replace(self, objects: Iterable[Obj | Prepared]) -> list[Change]:
        """Make the store hold exactly ``objects`` (a relist; as listed, or from
        :meth:`prepare`); the changes it took, deletions (with the last known state) included.
        All or nothing: if the transform raises for one object, the store is left as it was
        (a half-applied relist would hide the rest from handlers for good, as the next relist
        finds them unchanged)."""
        encoded = [obj if isinstance(obj, Prepared) else self._encode(obj, keep=self._debug)
                   for obj in objects]
        changes = []
        seen = set()
        with self._lock:
            for one in encoded:
                changes.append(self._put(one))
                seen.add(one.key)
            for key in [k for k in self._entries if k not in seen]:
                changes.append(self.delete(key))
        return changes

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add named indexes (client-go's ``AddIndexers``), indexing what the store holds.

        Raises ValueError if a name is taken (an index is defined once, by its owner).
        """
        with self._lock:
            taken = sorted(set(indexers) & set(self._indexers))
            if taken:
                raise ValueError(f"indexes already defined: {', '.join(taken)}")
            self._indexers = {**self._indexers, **indexers}  # appended: entries' order holds
            added: dict[str, dict[str, _Bucket]] = {name: {} for name in indexers}
            for key, entry in self._entries.items():
                obj = orjson.loads(entry[_RAW])
                values = [_index_value(fn(obj)) for fn in indexers.values()]
                self._entries[key] = (*entry, *values)
                for index, value in zip(added.values(), values, strict=True):
                    for one in _values(value):
                        _add(index, one, key)
            self._indexes.update(added)

    @property
    def indexers(self) -> builtins.list[str]:
        """The names of the indexes, the built-in ``namespace`` and ``controller`` included."""
        with self._lock:
            return sorted(self._indexers)

    def _index(self, key: str, entry: _Entry) -> None:
        for index, value in zip(self._indexes.values(), entry[_INDEXED:], strict=True):
            for one in _values(value):
                _add(index, one, key)

    def _unindex(self, key: str, entry: _Entry) -> None:
        for index, value in zip(self._indexes.values(), entry[_INDEXED:], strict=True):
            for one in _values(value):
                keys = index.get(one)
                if keys is None:
                    continue
                if isinstance(keys, str):
                    if keys == key:
                        del index[one]
                    continue
                keys.discard(key)
                if len(keys) == 1:
                    index[one] = next(iter(keys))

    # reads -------------------------------------------------------------------------------------
    def _remember(self, key: str, raw: bytes, obj: Obj) -> None:
        """Keep ``obj`` (``raw`` decoded) as the most recently used; forget the least recently
        used beyond the cache's size."""
        decoded = self._decoded
        decoded.pop(key, None)
        decoded[key] = (raw, obj)
        if len(decoded) > self._decoded_size:
            del decoded[next(iter(decoded))]

    def _decode(self, key: str, entry: _Entry) -> Obj:
        cached = self._decoded.get(key)
        raw = entry[_RAW]
        if cached is not None and cached[0] is raw:
            if self._debug and orjson.dumps(cached[1]) != raw:
                raise MutatedCacheError(f"cached object {key} was modified by a consumer")
            self._remember(key, *cached)
            return cached[1]
        obj: Obj = orjson.loads(raw)
        self._remember(key, raw, obj)
        return obj

    def get(self, key: str) -> Obj | None:
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else self._decode(key, entry)

    def get_by_name(self, name: str, namespace: str | None = None) -> Obj | None:
        return self.get(f"{namespace}/{name}" if namespace else name)

    def list(self, *, namespace: str | None = None,
             label_selector: Callable[[Mapping[str, str]], bool] | None = None) -> list[Obj]:
        """Objects, optionally of one namespace and matching a label predicate (e.g.
        ``LabelSelector.matches``); labels are checked without decoding the object."""
        with self._lock:
            keys = (_keys(self._indexes[NAMESPACE_INDEX].get(namespace)) if namespace
                    else self._entries.keys())
            return [self._decode(k, e) for k in sorted(keys)
                    if (e := self._entries[k]) and (label_selector is None
                                                   or label_selector(self._labels[k]))]

    def by_index(self, index: str, value: str) -> builtins.list[Obj]:
        """Objects whose index ``index`` has ``value``; KeyError for an unknown index."""
        with self._lock:
            return [self._decode(k, self._entries[k]) for k in self._index_keys(index, value)]

    def keys_by_index(self, index: str, value: str) -> builtins.list[str]:
        """The keys of the objects whose index ``index`` has ``value``, sorted, without
        decoding any (what maps a change to the requests of many objects wants); KeyError for
        an unknown index."""
        with self._lock:
            return self._index_keys(index, value)

    def _index_keys(self, index: str, value: str) -> builtins.list[str]:
        if index not in self._indexes:
            raise KeyError(f"no index {index!r} (have {', '.join(sorted(self._indexes))})")
        return sorted(_keys(self._indexes[index].get(value)))

    def index_counts(self, index: str) -> dict[str, int]:
        """How many objects each value of index ``index`` has, without decoding any (what a
        gauge by some property wants at scrape time); KeyError for an unknown index."""
        with self._lock:
            if index not in self._indexes:
                raise KeyError(f"no index {index!r} (have {', '.join(sorted(self._indexes))})")
            return {value: 1 if isinstance(keys, str) else len(keys)
                    for value, keys in self._indexes[index].items()}

    def contents(self, *, as_updates: bool = False) -> builtins.list[Change]:
        """Every object as an add (what a late handler gets first) or, ``as_updates``, as an
        update from itself to itself (what a resync replays); decoded on demand."""
        with self._lock:
            return [Change(key, old_raw=e[_RAW] if as_updates else None, new_raw=e[_RAW],
                           old_version=e[_VERSION] if as_updates else None,
                           new_version=e[_VERSION])
                    for key, e in sorted(self._entries.items())]

    def keys(self) -> builtins.list[str]:
        with self._lock:
            return list(self._entries)

    def resource_version(self, key: str) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else entry[_VERSION]

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries
