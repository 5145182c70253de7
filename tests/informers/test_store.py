"""The indexed store: keys, indexes, label listing, relist diffs, read-only objects."""

from __future__ import annotations

import gc

import orjson
import pytest

from foundation.selectors import parse_label_selector
from informers.change import Change
from informers.store import (
    CONTROLLER_INDEX,
    NAMESPACE_INDEX,
    MutatedCacheError,
    Prepared,
    Store,
    key_of,
    stripping_managed_fields,
)


def pod(name: str, ns: str = "a", rv: str = "1", labels: dict | None = None,
        owner: str | None = None) -> dict:
    meta: dict = {"name": name, "namespace": ns, "resourceVersion": rv, "labels": labels or {},
                  "managedFields": [{"manager": "x"}]}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True, "kind": "S", "name": "s",
                                    "apiVersion": "v1"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta}


def test_keys_and_default_transform() -> None:
    store = Store()
    store.upsert(pod("p"))
    store.upsert({"metadata": {"name": "cluster-wide", "resourceVersion": "2"}})
    assert sorted(store.keys()) == ["a/p", "cluster-wide"]
    assert "managedFields" not in store.get("a/p")["metadata"]
    assert key_of(pod("x", "b")) == "b/x"


def test_a_transform_composed_with_the_default_still_drops_managed_fields() -> None:
    """Only the default, alone or composed (``stripping_managed_fields``), tells watches they
    may cut ``managedFields`` before parsing; a transform of one's own keeps what it keeps."""
    def labelled(obj: dict) -> dict:
        return {**obj, "metadata": {**obj["metadata"], "labels": {"seen": "yes"}}}

    composed = Store(transform=stripping_managed_fields(labelled))
    composed.upsert(pod("p"))
    assert composed.get("a/p")["metadata"] == {"name": "p", "namespace": "a",
                                               "resourceVersion": "1", "labels": {"seen": "yes"}}
    assert Store().drops_managed_fields and composed.drops_managed_fields
    assert not Store(transform=None).drops_managed_fields
    assert not Store(transform=labelled).drops_managed_fields


def test_indexes_follow_updates_and_deletes() -> None:
    store = Store(indexers={"by-app": lambda o: [o["metadata"]["labels"].get("app", "")]})
    store.upsert(pod("p1", owner="u1", labels={"app": "web"}))
    store.upsert(pod("p2", owner="u1", labels={"app": "db"}))
    store.upsert(pod("p3", ns="b", owner="u2"))
    assert [o["metadata"]["name"] for o in store.by_index(CONTROLLER_INDEX, "u1")] == ["p1", "p2"]
    assert [o["metadata"]["name"] for o in store.list(namespace="b")] == ["p3"]
    store.upsert(pod("p2", owner="u2", labels={"app": "web"}, rv="2"))
    assert [o["metadata"]["name"] for o in store.by_index(CONTROLLER_INDEX, "u1")] == ["p1"]
    assert [o["metadata"]["name"] for o in store.by_index("by-app", "web")] == ["p1", "p2"]
    store.delete("a/p1")
    assert store.by_index(CONTROLLER_INDEX, "u1") == []
    assert store.resource_version("a/p2") == "2"


def test_list_with_label_selector() -> None:
    store = Store()
    store.upsert(pod("web", labels={"app": "web", "tier": "1"}))
    store.upsert(pod("db", labels={"app": "db"}))
    selector = parse_label_selector("app=web")
    names = [o["metadata"]["name"] for o in store.list(label_selector=selector.matches)]
    assert names == ["web"]


def test_replace_reports_additions_updates_and_deletions() -> None:
    store = Store()
    store.upsert(pod("stay"))
    store.upsert(pod("go"))
    changes = {c.key: c for c in store.replace([pod("stay", rv="2"), pod("new")])}
    assert changes["a/go"].new is None and changes["a/go"].old["metadata"]["name"] == "go"
    assert changes["a/new"].old is None
    assert changes["a/stay"].old["metadata"]["resourceVersion"] == "1"
    assert sorted(store.keys()) == ["a/new", "a/stay"]


def test_mutation_of_cached_objects_is_detected_in_debug_mode() -> None:
    store = Store(debug_mutations=True)
    store.upsert(pod("p"))
    obj = store.get("a/p")
    obj["metadata"]["labels"]["sneaky"] = "edit"
    with pytest.raises(MutatedCacheError):
        store.get("a/p")


def test_reads_share_one_decoded_object() -> None:
    store = Store(decoded_cache_size=2)
    store.upsert(pod("p"))
    assert store.get("a/p") is store.get("a/p")
    for i in range(5):  # evict it: a later read decodes again, equal but new
        store.upsert(pod(f"q{i}"))
    assert store.get("a/p") == pod("p") | {"metadata": {
        k: v for k, v in pod("p")["metadata"].items() if k != "managedFields"}}


def test_change_decodes_the_previous_state_on_demand() -> None:
    store = Store()
    first = store.upsert(pod("p", rv="1", labels={"v": "1"}))
    assert not first.existed and first.old is None and first.old_version is None
    second = store.upsert(pod("p", rv="2", labels={"v": "2"}))
    assert second.existed and second.old_version == "1"
    assert second.old is not None and second.old["metadata"]["labels"] == {"v": "1"}
    assert second.old is second.old  # decoded once, then kept
    gone = store.delete("a/p")
    assert gone.new is None and gone.old_version == "2"
    assert gone.old is not None and gone.old["metadata"]["labels"] == {"v": "2"}
    assert not store.delete("a/p").existed


def test_debug_mode_catches_a_handler_mutating_the_object_it_was_given() -> None:
    store = Store(debug_mutations=True)
    given = store.upsert(pod("p")).new
    assert given is not None
    given["metadata"]["labels"]["sneaky"] = "edit"
    with pytest.raises(MutatedCacheError):
        store.get("a/p")


def test_changes_carry_bytes_and_decode_each_state_once_on_demand() -> None:
    store = Store()
    store.upsert(pod("p", rv="1", labels={"v": "1"}))
    change = store.upsert(pod("p", rv="2", labels={"v": "2"}))
    # What a change handler may read without decoding anything.
    assert (change.type, change.key, change.old_version, change.new_version) == (
        "update", "a/p", "1", "2")
    assert change._new is None and change._old is None  # nothing decoded yet
    new = change.new
    assert new is not None and new["metadata"]["labels"] == {"v": "2"}
    assert "managedFields" not in new["metadata"]  # the stored state, transform applied
    assert change.new is new  # decoded once, then kept
    assert change.old is not None and change.old["metadata"]["labels"] == {"v": "1"}
    gone = store.delete("a/p")
    assert (gone.type, gone.deleted, gone.old_version, gone.new) == ("delete", True, "2", None)


def test_a_reclaimed_change_keeps_bytes_not_what_a_handler_decoded() -> None:
    """After the inline handlers, a change drops every state it can decode again (lent or
    decoded by a handler): a relist's changes then hold bytes, not a decoded copy of every
    listed object, while their last one is delivered; later readers decode their own."""
    store = Store()
    store.upsert(pod("p", rv="1", labels={"v": "1"}))
    relisted = store.replace(store.prepare([pod("p", rv="2", labels={"v": "2"}),
                                            pod("q", rv="1")]))
    for change in relisted:
        decoded = change.new, change.old  # what an inline handler reads
        change.reclaim()
        assert change._new is None and change._old is None
        assert change.new == decoded[0] and change.new is not decoded[0]
        assert change.old == decoded[1]
    lent = store.upsert(pod("p", rv="3"), lend=True)
    assert lent._new is not None
    lent.reclaim()
    assert lent._new is None and lent.new is not None and lent.new_version == "3"
    built = Change("a/r", new=pod("r"))  # no bytes to decode again: kept
    built_new = built.new
    built.reclaim()
    assert built.new is built_new


def test_contents_as_adds_or_as_resync_updates() -> None:
    store = Store()
    for name in ("b", "a"):
        store.upsert(pod(name, rv=name))
    adds = store.contents()
    assert [(c.type, c.key, c.new_version) for c in adds] == [("add", "a/a", "a"),
                                                                ("add", "a/b", "b")]
    resync = store.contents(as_updates=True)
    assert [c.type for c in resync] == ["update", "update"]
    assert resync[0].old is resync[0].new  # a resync is one state, decoded once


def test_delete_with_the_final_state_reports_it_instead_of_the_cached_one() -> None:
    store = Store()
    store.upsert(pod("p", rv="1", labels={"v": "cached"}))
    final = pod("p", rv="2", labels={"v": "final"})
    gone = store.delete("a/p", final=final)
    assert (gone.type, gone.old_version) == ("delete", "2")
    assert gone._old is None  # encoded once, decoded on demand
    assert gone.old is not None and gone.old["metadata"]["labels"] == {"v": "final"}
    assert "managedFields" not in gone.old["metadata"]  # transformed like an upsert
    assert "a/p" not in store
    assert not store.delete("a/p", final=final).existed  # unknown key: nothing to report


def picky(obj: dict) -> dict:
    """A transform that refuses the object named "bad"."""
    if obj["metadata"]["name"] == "bad":
        raise ValueError("cannot take this one in")
    return obj


def test_replace_is_all_or_nothing_when_the_transform_raises() -> None:
    store = Store(transform=picky)
    store.upsert(pod("old"))
    with pytest.raises(ValueError):
        store.replace([pod("new"), pod("bad"), pod("old", rv="2")])
    assert store.keys() == ["a/old"] and store.resource_version("a/old") == "1"
    # The next relist (the reflector's retry) reports every change it makes, "new" included.
    changes = store.replace([pod("new"), pod("old", rv="2")])
    assert sorted((c.type, c.key) for c in changes) == [("add", "a/new"), ("update", "a/old")]


def test_indexers_added_later_index_what_the_store_holds() -> None:
    store = Store()
    store.upsert(pod("p1", labels={"app": "web"}))
    store.upsert(pod("p2", labels={"app": "db"}))
    store.add_indexers({"by-app": lambda o: [o["metadata"]["labels"].get("app", "")]})
    assert [o["metadata"]["name"] for o in store.by_index("by-app", "web")] == ["p1"]
    store.upsert(pod("p3", labels={"app": "web"}))
    store.upsert(pod("p1", labels={"app": "db"}, rv="2"))
    assert [o["metadata"]["name"] for o in store.by_index("by-app", "web")] == ["p3"]
    assert [o["metadata"]["name"] for o in store.by_index("by-app", "db")] == ["p1", "p2"]
    assert store.indexers == ["by-app", "controller", "namespace"]
    with pytest.raises(ValueError, match="by-app"):
        store.add_indexers({"by-app": lambda o: []})
    with pytest.raises(KeyError, match="no index 'nope'"):
        store.by_index("nope", "x")


def test_index_counts_without_decoding() -> None:
    store = Store(indexers={"team": lambda o: (o["metadata"]["labels"].get("team", ""),)})
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        store.upsert(pod(name, labels={"team": team}))
    assert store.index_counts("team") == {"x": 2, "y": 1}
    store.upsert(pod("b", rv="2", labels={"team": "y"}))
    store.delete("a/c")
    assert store.index_counts("team") == {"x": 1, "y": 1}
    with pytest.raises(KeyError):
        store.index_counts("nope")


def test_keys_by_index_without_decoding() -> None:
    store = Store(indexers={"team": lambda o: (o["metadata"]["labels"].get("team", ""),)})
    for name, team in (("c", "x"), ("a", "x"), ("b", "y")):
        store.upsert(pod(name, labels={"team": team}))
    assert store.keys_by_index("team", "x") == ["a/a", "a/c"]  # sorted
    assert store.keys_by_index("team", "z") == []
    assert store.keys_by_index(NAMESPACE_INDEX, "a") == ["a/a", "a/b", "a/c"]
    assert store._decoded == {}  # nothing was decoded to answer
    with pytest.raises(KeyError):
        store.keys_by_index("nope", "x")


def test_prepared_objects_are_kept_as_bytes_and_replace_like_the_objects() -> None:
    listed = [pod("p1", labels={"app": "web"}), pod("p2", owner="u1")]
    store = Store(indexers={"app": lambda o: [o["metadata"]["labels"].get("app", "")]})
    prepared = store.prepare(listed)
    assert all(isinstance(p, Prepared) and p.obj is None for p in prepared)  # no dicts held
    assert len(store) == 0  # nothing stored until replace
    twin = Store(indexers={"app": lambda o: [o["metadata"]["labels"].get("app", "")]})
    twin.replace(listed)
    changes = store.replace(prepared)
    assert [(c.type, c.key) for c in changes] == [("add", "a/p1"), ("add", "a/p2")]
    assert store.list() == twin.list()
    assert "managedFields" not in store.get("a/p1")["metadata"]  # transformed
    assert [o["metadata"]["name"] for o in store.by_index("app", "web")] == ["p1"]
    assert [o["metadata"]["name"] for o in store.by_index(CONTROLLER_INDEX, "u1")] == ["p2"]
    assert changes[0].new["metadata"]["name"] == "p1"  # decoded from the bytes on demand


def test_an_index_added_between_prepare_and_replace_indexes_the_prepared_objects() -> None:
    store = Store()
    prepared = store.prepare([pod("p1", labels={"app": "web"})])
    store.add_indexers({"app": lambda o: [o["metadata"]["labels"].get("app", "")]})
    store.replace(prepared)
    assert [o["metadata"]["name"] for o in store.by_index("app", "web")] == ["p1"]


def test_prepare_raises_what_the_transform_raises_and_stores_nothing() -> None:
    store = Store(transform=picky)
    with pytest.raises(ValueError):
        store.prepare([pod("fine"), pod("bad")])
    assert len(store) == 0


def test_debug_mode_keeps_prepared_objects_for_the_mutation_check() -> None:
    store = Store(debug_mutations=True)
    store.replace(store.prepare([pod("p1")]))
    store.get("a/p1")["metadata"]["name"] = "changed"
    with pytest.raises(MutatedCacheError):
        store.get("a/p1")


def test_what_the_store_keeps_of_an_object_leaves_the_collector_at_its_first_collection() -> None:
    """An entry (bytes, version, labels, index values) is a flat tuple of untracked members:
    the garbage collector stops tracking it at the first collection that sees it, so the
    bookkeeping of a large cache is not walked again by every later one. An index of
    several values (a nested tuple) may take the next generation's collection."""
    store = Store(indexers={"team": lambda o: [o["metadata"]["labels"].get("team", "")]})
    several = Store(indexers={"teams": lambda o: ["x", "y"]})
    for version in ("1", "2"):  # an add, then an update
        for one in (store, several):
            one.upsert(orjson.loads(orjson.dumps(pod("p", rv=version, owner="u1",
                                                     labels={"team": "x"}))))
    gc.collect(0)
    assert not gc.is_tracked(store._entries["a/p"])
    gc.collect(1)
    assert not gc.is_tracked(several._entries["a/p"])
    assert store.keys_by_index("team", "x") == several.keys_by_index("teams", "y") == ["a/p"]
    assert store.keys_by_index(CONTROLLER_INDEX, "u1") == ["a/p"]
    store.add_indexers({"late": lambda o: [o["metadata"]["name"]]})
    gc.collect(0)
    assert not gc.is_tracked(store._entries["a/p"])
    assert store.keys_by_index("late", "p") == ["a/p"]
    assert store.get("a/p")["metadata"]["resourceVersion"] == "2"


def test_an_index_value_of_one_key_keeps_it_as_a_string_and_grows_and_shrinks() -> None:
    """Most index values have one key (a controller owner's UID, one child per kind): kept
    as the key itself, not a set of one (216 bytes, tracked by the collector); a set from the
    second key on, the key again when one is left."""
    store = Store()
    store.upsert(pod("p1", owner="u1"))
    assert store._indexes[CONTROLLER_INDEX]["u1"] == "a/p1"
    store.upsert(pod("p2", owner="u1"))
    assert store.keys_by_index(CONTROLLER_INDEX, "u1") == ["a/p1", "a/p2"]
    assert store.index_counts(CONTROLLER_INDEX) == {"u1": 2}
    store.upsert(pod("p1", owner="u2", rv="2"))  # moved to another owner
    assert store._indexes[CONTROLLER_INDEX] == {"u1": "a/p2", "u2": "a/p1"}
    assert [o["metadata"]["name"] for o in store.list(namespace="a")] == ["p1", "p2"]
    store.delete("a/p2")
    assert store.keys_by_index(CONTROLLER_INDEX, "u1") == []
    assert store.index_counts(CONTROLLER_INDEX) == {"u2": 1}
    store.upsert(pod("p1", owner="u2", rv="3"))  # the same key again: still one
    assert store._indexes[CONTROLLER_INDEX] == {"u2": "a/p1"}
    assert store.list(namespace="b") == []
