"""What a write to the informer's store did: a :class:`Change`, the previous and the new state
of one object, carried as the store's compact bytes and decoded on demand.

The store (:mod:`.store`) makes them: its writes, and its contents replayed to a late handler or
by a resync. The informer hands them to its handlers (:mod:`.informer`).
"""

from __future__ import annotations

from typing import Any

import orjson

Obj = dict[str, Any]


class Change:
    """What a write did: the previous and the new state (None where absent).

    Both states are carried as the store's compact bytes and decoded on first access, then
    kept. The reflector thread only parses the event and stores its bytes; the handler
    threads, which want the objects, decode them. This keeps large object trees out of the
    handler queues: a queue of parsed dicts (20 KB of small objects per Pod) made the cyclic
    garbage collector rescan the backlog over and over and cost 3-4x the parse per event
    (bench/informer_ingest.py). ``existed``, ``old_version`` and ``deleted`` answer without
    decoding.
    """

    __slots__ = ("_lent", "_new", "_new_raw", "_old", "_old_raw", "initial", "key",
                 "new_version", "old_version", "owner_moved", "tombstone")

    def __init__(self, key: str, old: Obj | None = None, new: Obj | None = None, *,
                 old_raw: bytes | None = None, new_raw: bytes | None = None,
                 old_version: str | None = None, new_version: str | None = None) -> None:
        self.key = key
        self._old, self._old_raw = old, old_raw
        self._new, self._new_raw = new, new_raw
        self._lent = False
        self.old_version = old_version if old_version is not None else _version(old)
        self.new_version = new_version if new_version is not None else _version(new)
        self.tombstone = False
        """A deletion learnt from a relist: ``old`` is the last state this side knew."""
        self.initial = False
        """An add of the informer's initial list, or of the cache's contents replayed to a
        handler registered late (client-go's ``isInInitialList``): old news, not an event."""
        self.owner_moved = True
        """False when an update provably kept the controller owner reference (the same owner
        UID in both states, known from the store's controller index without decoding): a
        handler mapping objects to their controller need not look at the old state."""

    @property
    def type(self) -> str:
        """``add``, ``update`` or ``delete``."""
        return "delete" if self.deleted else "update" if self.existed else "add"

    @property
    def unchanged(self) -> bool:
        """An update to the same resourceVersion (a resync's replay): nothing happened."""
        return self.existed and not self.deleted and self.old_version == self.new_version

    @property
    def existed(self) -> bool:
        """Whether there was a previous state."""
        return self._old is not None or self._old_raw is not None

    @property
    def deleted(self) -> bool:
        """Whether there is no new state (the object is gone)."""
        return self._new is None and self._new_raw is None

    @property
    def old(self) -> Obj | None:
        if self._old is None and self._old_raw is not None:
            # Handler threads racing here each decode an equal copy; either may be kept.
            self._old = (self.new if self._old_raw is self._new_raw  # a resync: one object
                         else orjson.loads(self._old_raw))
        return self._old

    def lend(self, obj: Obj) -> None:
        """Carry ``obj``, equal to the new state's bytes decoded, as the new state until
        :meth:`reclaim` (the store lends what the reflector parsed to inline handlers)."""
        if self._new is None:
            self._new, self._lent = obj, True

    def reclaim(self) -> None:
        """Drop every state its bytes can give again: a lent new state, and what a handler
        decoded. A change that waits in handler queues carries bytes, not trees of objects
        for the garbage collector to walk (handlers decode on demand); so does a relist's
        list of changes, which would otherwise hold every listed object decoded by an inline
        handler (50,000 Pods: ~1.3 GB) until its last one is delivered."""
        if self._lent or self._new_raw is not None:
            self._new, self._lent = None, False
        if self._old_raw is not None:
            self._old = None

    @property
    def new(self) -> Obj | None:
        if self._new is None and self._new_raw is not None:
            # Not through the store's decoded cache, which serves readers (a reconcile's
            # reads), not writers: what a handler decodes is the change's own.
            self._new = orjson.loads(self._new_raw)
        return self._new


def _version(obj: Obj | None) -> str | None:
    return None if obj is None else str((obj.get("metadata") or {}).get("resourceVersion", ""))
