"""foundation.lru.LRU against cachetools.LRUCache, the cache it replaces in hot paths: the same
answers and the same entries kept after any sequence of gets, stores, pops and ``in``."""

from __future__ import annotations

from typing import Any

import pytest
from cachetools import LRUCache
from hypothesis import given, settings
from hypothesis import strategies as st

from foundation.lru import LRU

KEYS = st.integers(0, 6)
OPS = st.lists(st.one_of(
    st.tuples(st.just("get"), KEYS),
    st.tuples(st.just("set"), KEYS, st.integers()),
    st.tuples(st.just("pop"), KEYS),
    st.tuples(st.just("in"), KEYS)), max_size=60)


def _apply(cache: Any, op: tuple[Any, ...]) -> Any:
    if op[0] == "get":
        return cache.get(op[1], "absent")
    if op[0] == "set":
        cache[op[1]] = op[2]
        return None
    if op[0] == "pop":
        return cache.pop(op[1], "absent")
    return op[1] in cache


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4), OPS)
def test_it_answers_and_forgets_as_cachetools_does(maxsize: int,
                                                    ops: list[tuple[Any, ...]]) -> None:
    ours: LRU[int, int] = LRU(maxsize)
    theirs: LRUCache[int, int] = LRUCache(maxsize)
    for op in ops:
        assert _apply(ours, op) == _apply(theirs, op), op
        assert len(ours) == len(theirs)
        assert {k for k in range(7) if k in ours} == set(theirs.keys())


def test_a_hit_keeps_an_entry_that_in_does_not() -> None:
    cache: LRU[str, int] = LRU(2)
    cache["a"], cache["b"] = 1, 2
    assert cache.get("a") == 1  # now "b" is the least recent
    cache["c"] = 3
    assert "b" not in cache
    assert "a" in cache  # no recency: "a" stays the least recent of the two
    cache["d"] = 4
    assert "a" not in cache and cache.get("c") == 3 and cache.get("d") == 4


def test_pop_without_a_default_raises_as_a_dict_does() -> None:
    cache: LRU[str, int] = LRU(1)
    with pytest.raises(KeyError):
        cache.pop("missing")
    assert cache.get("missing") is None and cache.pop("missing", 0) == 0
    with pytest.raises(ValueError):
        LRU(0)
