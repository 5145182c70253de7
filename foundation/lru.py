"""A bounded mapping that forgets its least recently used entry, for caches in hot paths.

``cachetools.LRUCache`` answers each ``get`` and store through three to six Python frames (its
``Cache`` base, a name-mangled update, a ``__missing__`` hook, size accounting). In the session
operator's burst (cProfile, calls per session) its LRU caches — the diff cache, the live
renders, the emitted-event memo, the registries — took 56 such calls, of ~10,300; with
:class:`LRU`, 17. It is the same policy in one frame per call over a C ``OrderedDict``: a hit
or a store makes the key the most recent, ``in`` does not (as cachetools), and a store past
``maxsize`` forgets the least recent. Every entry counts one (no ``getsizeof``). Not locked:
the callers that share one across threads hold their own lock, as they did with cachetools'.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar, overload

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")

_MISSING: object = object()


class LRU(Generic[K, V]):
    """At most ``maxsize`` entries; the least recently used goes first."""

    __slots__ = ("_data", "maxsize")

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        self._data: OrderedDict[K, V] = OrderedDict()
        self.maxsize = maxsize

    @overload
    def get(self, key: K) -> V | None: ...

    @overload
    def get(self, key: K, default: D) -> V | D: ...

    def get(self, key: K, default: object = None) -> object:
        """The value of ``key`` (now the most recent), or ``default``."""
        data = self._data
        value = data.get(key, _MISSING)
        if value is _MISSING:
            return default
        data.move_to_end(key)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        data = self._data
        data[key] = value
        data.move_to_end(key)
        if len(data) > self.maxsize:
            data.popitem(last=False)

    @overload
    def pop(self, key: K) -> V: ...

    @overload
    def pop(self, key: K, default: D) -> V | D: ...

    def pop(self, key: K, default: object = _MISSING) -> object:
        """Remove ``key``; its value, else ``default`` (KeyError without one, as a dict)."""
        if default is _MISSING:
            return self._data.pop(key)
        return self._data.pop(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)
