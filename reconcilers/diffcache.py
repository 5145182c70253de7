"""A child's diff with its answers remembered (:class:`DiffCache`): the reconciles that find
nothing to do skip the walk of :func:`.diff.diff` for a digest of the two objects.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from typing import Any

import orjson

from foundation.lru import LRU

from .diff import Change, diff

__all__ = ["DiffCache"]


class DiffCache:
    """:func:`diff` with its answers remembered: a bounded LRU keyed by digests of the two
    objects, so the reconciles that find nothing to do (a VM's instance turning ready, a token
    refresh, a resync) skip the walk — ~45 us for a runner Pod as the server stores it (the
    fields and subtrees that are the same JSON skipped, see :func:`.diff._identical`) — for ~20 us
    of hashing. (A Pod session's start compares its Pod once, in the pass of the runner's
    start: a miss, so ~20 us more.)

    ``actual`` is digested without what the walk never reads and the server changes on every
    write — ``status``, ``metadata.resourceVersion``, ``generation`` and ``managedFields`` —
    so a Pod whose status moved hits the entry its previous state made. Thread-safe.
    """

    def __init__(self, maxsize: int = 8192) -> None:
        self._answers: LRU[tuple[bytes, bytes], Change] = LRU(maxsize)
        self._desired: LRU[int, tuple[Mapping[str, Any], bytes]] = LRU(512)
        """Digests of desired objects by identity (each kept with its object, so an id is
        never another's): a render reused while its inputs stand (``liverender``) is not
        serialised again."""
        self._lock = threading.Lock()

    def diff(self, desired: Mapping[str, Any], actual: Mapping[str, Any] | None) -> Change:
        if actual is None:
            return diff(desired, None)
        try:
            key = (self._desired_digest(desired), _digest(_comparable(actual)))
        except orjson.JSONEncodeError:  # not plain JSON (a caller's Decimal, say): no memo
            return diff(desired, actual)
        with self._lock:
            known = self._answers.get(key)
        if known is not None:
            return known
        change = diff(desired, actual)
        with self._lock:
            self._answers[key] = change
        return change

    def _desired_digest(self, desired: Mapping[str, Any]) -> bytes:
        with self._lock:
            known = self._desired.get(id(desired))
        if known is not None and known[0] is desired:
            return known[1]
        digest = _digest(desired)
        with self._lock:
            self._desired[id(desired)] = (desired, digest)
        return digest


_SERVER_BOOKKEEPING = frozenset({"resourceVersion", "generation", "managedFields"})


def _comparable(actual: Mapping[str, Any]) -> dict[str, Any]:
    """``actual`` without the parts the walk never reads (shallow: nothing is copied deep)."""
    out = {k: v for k, v in actual.items() if k != "status"}
    meta = actual.get("metadata")
    if isinstance(meta, Mapping):
        out["metadata"] = {k: v for k, v in meta.items() if k not in _SERVER_BOOKKEEPING}
    return out


_GIL_HELD = 2047
"""The most bytes hashed at once: ``hashlib`` lets go of the GIL to hash 2,048 or more
(``HASHLIB_GIL_MINSIZE``; and for every later update of that hash object), and a worker that
lets go of it amid other busy threads waits for it back — up to the switch interval, 5 ms,
for ~10 us of hashing (a runner Pod is ~5 KB)."""


def _digest(obj: Mapping[str, Any]) -> bytes:
    # Sorted keys: equal objects digest equally whatever order their keys were built in.
    data = memoryview(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS))
    digest = hashlib.blake2b(digest_size=16)
    for at in range(0, len(data), _GIL_HELD):
        digest.update(data[at:at + _GIL_HELD])
    return digest.digest()
