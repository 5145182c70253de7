"""The multi-namespace store reads as one cluster-wide store holding the same objects would."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foundation.selectors import parse_label_selector
from informers.multinamespace import MultiNamespaceStore
from informers.store import CONTROLLER_INDEX, NAMESPACE_INDEX, Store


def _app(obj: Any) -> list[str]:
    return [(obj["metadata"].get("labels") or {}).get("app", "")]


def _obj(ns: str, name: str, app: str, owner: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": "1",
                         "labels": {"app": app},
                         "ownerReferences": [{"uid": owner, "controller": True}]}}


NAMESPACES = ["a", "a-b", "a.b", "b", "ab"]  # '-' and '.' sort before '/': key order matters
objects = st.lists(st.tuples(st.sampled_from(NAMESPACES), st.sampled_from(["x", "y", "z"]),
                             st.sampled_from(["web", "db"]), st.sampled_from(["u1", "u2"])),
                   max_size=20)


def _stores(items: list[tuple[str, str, str, str]]) -> tuple[Store, MultiNamespaceStore]:
    whole = Store(indexers={"app": _app})
    parts = {ns: Store(indexers={"app": _app}) for ns in NAMESPACES}
    for ns, name, app, owner in items:
        whole.upsert(_obj(ns, name, app, owner))
        parts[ns].upsert(_obj(ns, name, app, owner))
    return whole, MultiNamespaceStore(parts)


@given(objects)
def test_reads_equal_one_cluster_wide_store(items: list[tuple[str, str, str, str]]) -> None:
    whole, joined = _stores(items)
    assert sorted(joined.keys()) == sorted(whole.keys())
    assert len(joined) == len(whole)
    assert joined.list() == whole.list()
    web = parse_label_selector("app=web").matches
    assert joined.list(label_selector=web) == whole.list(label_selector=web)
    for ns in [*NAMESPACES, "elsewhere"]:
        assert joined.list(namespace=ns) == whole.list(namespace=ns)
        assert joined.by_index(NAMESPACE_INDEX, ns) == whole.by_index(NAMESPACE_INDEX, ns)
        assert joined.keys_by_index(NAMESPACE_INDEX, ns) == [
            f"{o['metadata']['namespace']}/{o['metadata']['name']}"
            for o in whole.by_index(NAMESPACE_INDEX, ns)]
        for name in ("x", "y", "z"):
            key = f"{ns}/{name}"
            assert joined.get(key) == whole.get(key)
            assert joined.get_by_name(name, ns) == whole.get_by_name(name, ns)
            assert (key in joined) == (key in whole)
            assert joined.resource_version(key) == whole.resource_version(key)
    for index, value in (("app", "web"), ("app", "db"), (CONTROLLER_INDEX, "u1")):
        assert joined.by_index(index, value) == whole.by_index(index, value)
        assert joined.keys_by_index(index, value) == whole.keys_by_index(index, value)
    for index in ("app", CONTROLLER_INDEX, NAMESPACE_INDEX):
        assert joined.index_counts(index) == whole.index_counts(index)
    assert [c.key for c in joined.contents()] == [c.key for c in whole.contents()]
    assert joined.get("x") is None  # a key without a namespace is in no namespace's store


def test_indexes_added_later_and_unknown_ones() -> None:
    _, joined = _stores([("a", "x", "web", "u1"), ("b", "y", "db", "u2")])
    joined.add_indexers({"owner-app": lambda o: [f"{_app(o)[0]}"]})
    assert "owner-app" in joined.indexers
    assert [o["metadata"]["name"] for o in joined.by_index("owner-app", "db")] == ["y"]
    with pytest.raises(KeyError, match="no index 'nope'"):
        joined.by_index("nope", "v")
    with pytest.raises(KeyError, match="no index 'nope'"):
        joined.index_counts("nope")
    with pytest.raises(KeyError, match="no index 'nope'"):
        joined.keys_by_index("nope", "v")
    with pytest.raises(ValueError, match="at least one namespace"):
        MultiNamespaceStore({})
