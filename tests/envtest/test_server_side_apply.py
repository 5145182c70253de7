"""Server-side apply's merge and field ownership as pure functions (``envtest.patch.managed``,
``structured``, ``fieldpath``, ``shapes``), against structured-merge-diff's rules
(sigs.k8s.io/structured-merge-diff: typed/merge.go, merge/update.go, fieldpath/serialize-pe.go).
The same behaviours through kubectl and the Python client: e2e/test_server_side_apply.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from envtest.patch import PatchError, fieldpath, managed, structured
from envtest.patch.managed import Conflicts, Owner
from envtest.patch.shapes import DEDUCED, Shape, shape_of

SERVICE = shape_of("Service", builtin=True, schema=None)
POD = shape_of("Pod", builtin=True, schema=None)


def service(*ports: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", **meta},
            "spec": {"ports": list(ports)}}


def applier(name: str) -> Owner:
    return Owner({"manager": name, "operation": "Apply", "apiVersion": "v1", "time": "t1"},
                 set())


def updater(name: str) -> Owner:
    return Owner({"manager": name, "operation": "Update", "apiVersion": "v1", "time": "t1"},
                 set())


def apply(live: dict[str, Any], config: dict[str, Any], managers: list[Owner], who: str, *,
          shape: Shape = SERVICE, force: bool = False) -> tuple[dict[str, Any], list[Owner]]:
    return managed.apply(live, config, shape, managers, applier(who), force=force)


def fields_of(managers: list[Owner], who: str) -> dict[str, Any]:
    entry = next(e for e in managed.entries(managers) if e["manager"] == who)
    return entry["fieldsV1"]


def names(obj: dict[str, Any]) -> list[str]:
    return [p["name"] for p in obj["spec"]["ports"]]


def test_managed_fields_name_map_list_items_by_their_keys() -> None:
    """kube: ``k:{"port":80,"protocol":"TCP"}`` (ServiceSpec.ports is listType=map keyed by
    port and protocol, protocol defaulting to TCP); ``.`` marks the item itself as owned."""
    _, owners = apply({}, service({"port": 80, "name": "http"}), [], "a")
    assert fields_of(owners, "a") == {"f:spec": {"f:ports": {
        'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:name": {}, "f:port": {}}}}}


def test_two_appliers_each_own_their_items_and_the_list_keeps_live_order() -> None:
    """Items another manager applied stay in place; new items are appended in applied order
    (merge.go visitListItems)."""
    live, owners = apply({}, service({"port": 80, "name": "a80"}, {"port": 81, "name": "a81"}),
                         [], "a")
    live, owners = apply(live, service({"port": 90, "name": "b90"}, {"port": 91, "name": "b91"}),
                         owners, "b")
    assert names(live) == ["a80", "a81", "b90", "b91"]
    assert set(fields_of(owners, "a")["f:spec"]["f:ports"]) == {
        'k:{"port":80,"protocol":"TCP"}', 'k:{"port":81,"protocol":"TCP"}'}
    assert set(fields_of(owners, "b")["f:spec"]["f:ports"]) == {
        'k:{"port":90,"protocol":"TCP"}', 'k:{"port":91,"protocol":"TCP"}'}
    live, owners = apply(live, service({"port": 80, "name": "a80"}, {"port": 81, "name": "a81"},
                                       {"port": 82, "name": "a82"}), owners, "a")
    assert names(live) == ["a80", "a81", "b90", "b91", "a82"]


def test_an_item_the_applier_stops_sending_is_removed_unless_another_manager_owns_it() -> None:
    live, owners = apply({}, service({"port": 80, "name": "web"}, {"port": 443, "name": "tls"}),
                         [], "a")
    live, owners = apply(live, service({"port": 443, "name": "tls"}), owners, "b")
    live, owners = apply(live, service({"port": 80, "name": "web"}), owners, "a")
    assert names(live) == ["web", "tls"], "443 stays: b applied it too"
    live, owners = apply(live, service(), owners, "b")
    assert names(live) == ["web"], "443 goes once nobody owns it"
    assert [e["manager"] for e in managed.entries(owners)] == ["a"]


def test_an_updater_keeps_what_it_added() -> None:
    """kubectl edit (operation Update) added a port: the applier never owned it, so dropping
    its own port leaves the edited one."""
    live, owners = apply({}, service({"port": 80, "name": "web"}), [], "a")
    edited = service({"port": 80, "name": "web"}, {"port": 81, "name": "debug"})
    owners = managed.update(live, edited, SERVICE, owners, updater("kubectl-edit"))
    live, owners = apply(edited, service({"port": 82, "name": "new"}), owners, "a")
    assert names(live) == ["debug", "new"]


def test_conflicts_are_per_field_and_force_moves_ownership() -> None:
    live, owners = apply({}, service({"port": 80, "name": "web", "targetPort": 8080}), [], "a")
    same = service({"port": 80, "name": "web", "targetPort": 8080})
    shared, owners = apply(live, same, owners, "b")  # same values: shared, no conflict
    assert shared == live
    with pytest.raises(Conflicts) as caught:
        apply(live, service({"port": 80, "name": "web", "targetPort": 9090}), owners, "c")
    assert str(caught.value) == ('Apply failed with 2 conflicts: conflict with "a": '
                                 '.spec.ports[port=80,protocol="TCP"].targetPort; conflict with '
                                 '"b": .spec.ports[port=80,protocol="TCP"].targetPort')
    live, owners = apply(live, service({"port": 80, "name": "web", "targetPort": 9090}),
                         owners, "c", force=True)
    assert live["spec"]["ports"] == [{"port": 80, "name": "web", "targetPort": 9090}]
    port = 'k:{"port":80,"protocol":"TCP"}'
    assert "f:targetPort" not in fields_of(owners, "a")["f:spec"]["f:ports"][port]
    assert "f:targetPort" in fields_of(owners, "c")["f:spec"]["f:ports"][port]


def test_an_updater_is_not_a_conflict_for_itself_but_is_for_an_applier() -> None:
    """kube: ``kubectl scale`` then an apply of another replicas value conflicts with the
    ``Update`` manager too (update.go: conflicts with every other manager)."""
    live = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "1"}}
    owners = managed.update({}, live, DEDUCED, [], updater("creator"))
    with pytest.raises(Conflicts, match=r'conflict with "creator": \.data\.k'):
        apply(live, {**live, "data": {"k": "2"}}, owners, "a", shape=DEDUCED)


def test_merge_order_inserts_new_items_before_the_shared_one_that_follows() -> None:
    """merge.go: live [a b c] + applied [d b] -> [a d b c]."""
    def ports(*letters: str) -> list[dict[str, Any]]:
        return [{"port": ord(x), "name": x} for x in letters]
    merged = structured.merge(service(*ports("a", "b", "c")), service(*ports("d", "b")), SERVICE)
    assert names(merged) == ["a", "d", "b", "c"]
    swapped = structured.merge(service(*ports("a", "b", "c")), service(*ports("c", "a")), SERVICE)
    assert names(swapped) == ["b", "c", "a"], "shared items follow the applied order"


def test_sets_own_each_value() -> None:
    """metadata.finalizers is listType=set: ``v:"x"`` elements, each owned by its applier."""
    base = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    live, owners = apply({}, {**base, "metadata": {"name": "c", "finalizers": ["a/x"]}},
                         [], "a", shape=POD)
    live, owners = apply(live, {**base, "metadata": {"name": "c", "finalizers": ["b/y"]}},
                         owners, "b", shape=POD)
    assert live["metadata"]["finalizers"] == ["a/x", "b/y"]
    assert fields_of(owners, "b") == {"f:metadata": {"f:finalizers": {'v:"b/y"': {}}}}
    live, owners = apply(live, base, owners, "a", shape=POD)
    assert live["metadata"]["finalizers"] == ["b/y"]


def test_lists_without_keys_are_atomic() -> None:
    """Container.args has no keys: owned and replaced whole (``f:args: {}``)."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "i", "args": ["1", "2"]}]}}
    live, owners = apply({}, pod, [], "a", shape=POD)
    assert fields_of(owners, "a")["f:spec"]["f:containers"]['k:{"name":"c"}']["f:args"] == {}
    other = {**pod, "spec": {"containers": [{"name": "c", "args": ["3"]}]}}
    with pytest.raises(Conflicts, match=r'\.spec\.containers\[name="c"\]\.args'):
        apply(live, other, owners, "b", shape=POD)


def test_custom_resource_lists_follow_their_schema_markers() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "routes": {"type": "array", "x-kubernetes-list-type": "map",
                   "x-kubernetes-list-map-keys": ["host", "path"],
                   "items": {"type": "object", "properties": {
                       "host": {"type": "string"}, "path": {"type": "string", "default": "/"},
                       "to": {"type": "string"}}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set",
                 "items": {"type": "string"}},
        "plain": {"type": "array", "items": {"type": "string"}}}}}}
    shape = shape_of("Route", builtin=False, schema=schema)
    obj = {"apiVersion": "x/v1", "kind": "Route", "metadata": {"name": "r", "finalizers": ["f"]},
           "spec": {"routes": [{"host": "h", "to": "svc"}], "tags": ["t"], "plain": ["p"]}}
    _, owners = apply({}, obj, [], "a", shape=shape)
    assert fields_of(owners, "a") == {
        "f:metadata": {"f:finalizers": {'v:"f"': {}}},
        "f:spec": {"f:plain": {}, "f:routes": {'k:{"host":"h","path":"/"}': {
            ".": {}, "f:host": {}, "f:to": {}}}, "f:tags": {'v:"t"': {}}}}


def test_an_item_without_its_key_is_refused() -> None:
    with pytest.raises(PatchError, match='omits key field "name"'):
        apply({}, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                   "spec": {"containers": [{"image": "i"}]}}, [], "a", shape=POD)
    with pytest.raises(PatchError, match="duplicate entries"):
        apply({}, service({"port": 80}, {"port": 80}), [], "a")


def test_fields_v1_round_trips() -> None:
    tree = {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}}}}
    paths = fieldpath.from_fields_v1(tree)
    assert ("f:metadata", "f:labels") in paths
    assert fieldpath.to_fields_v1(paths) == tree


def test_a_repeated_apply_keeps_the_entry_time() -> None:
    live, owners = apply({}, service({"port": 80}), [], "a")
    again, owners2 = managed.apply(live, service({"port": 80}), SERVICE, owners,
                                   Owner({**applier("a").entry, "time": "t2"}, set()),
                                   force=False)
    assert again == live and managed.entries(owners2) == managed.entries(owners)


# structured-merge-diff's typed/merge_test.go "setStr" cases: live, applied, merged (one letter
# an element; the first four with an empty side written as "").
SMD_SET_MERGES = [
    ("abc", "ab", "abc"), ("ab", "abc", "abc"), ("abc", "", "abc"), ("", "abc", "abc"),
    ("ab", "ba", "ba"), ("abc", "def", "abcdef"), ("abc", "cdef", "abcdef"),
    ("abcgf", "cdef", "abcgdef"), ("abc", "defxyz", "abcdefxyz"), ("cdef", "ace", "acdef"),
    ("abcxyz", "def", "abcxyzdef"), ("abcxyz", "defxyz", "abcdefxyz"), ("cagf", "cfag", "cfag"),
    ("abcd", "defa", "bcdefa"), ("cdefghij", "2h3e4kl", "cdfg2hij3e4kl"),
    ("abcdefghij", "1b2h3e4kl", "a1bcdfg2hij3e4kl"),
    # duplicates on the live side
    ("abb", "c", "abbc"), ("abb", "b", "ab"), ("abb", "a", "abb"),
    ("abcdec", "1b2ed", "a1bc2ecd"), ("abcdec", "1b2ced", "a1b2ced"), ("aabb", "bcd", "aabcd"),
    ("aabb", "", "aabb"), ("cagfca", "cfag", "cfag"),
]


@pytest.mark.parametrize(("live", "applied", "merged"), SMD_SET_MERGES)
def test_merge_order_matches_structured_merge_diff(live: str, applied: str,
                                                   merged: str) -> None:
    finalizers = shape_of("Pod", builtin=True, schema=None).field("metadata")
    result = structured.merge({"finalizers": list(live)}, {"finalizers": list(applied)},
                              finalizers)
    assert "".join(result["finalizers"]) == merged


def test_updates_edit_the_stored_tree_like_the_set() -> None:
    """An updater's entry is edited in its fieldsV1 form (no parse); the result is the set's."""
    live, owners = apply({}, service({"port": 80, "name": "web"}, {"port": 81, "name": "x"}),
                         [], "a")
    stored = managed.owners(managed.entries(owners))
    edited = service({"port": 80, "name": "renamed"}, {"port": 82, "name": "y"})
    by_tree = managed.update(live, edited, SERVICE, stored, updater("edit"))
    by_set = managed.update(live, edited, SERVICE, owners, updater("edit"))
    assert [(m.entry["manager"], m.fields) for m in by_tree] == [
        (m.entry["manager"], m.fields) for m in by_set]
    assert fields_of(by_tree, "a") == {"f:spec": {"f:ports": {
        'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}}}}
    again = managed.update(edited, {**edited, "metadata": {"name": "s", "labels": {"l": "1"}}},
                           SERVICE, managed.owners(managed.entries(by_tree)), updater("edit"))
    assert fields_of(again, "edit") == fieldpath.to_fields_v1(
        {p for m in by_set if m.entry["manager"] == "edit" for p in m.fields}
        | {("f:metadata", "f:labels", "f:l")})


def test_a_creators_tree_is_the_set_of_its_fields() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"},
                                                           "finalizers": ["x"]},
           "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}],
                                    "env": []}], "volumes": []}}
    created = managed.update({}, pod, POD, [], updater("creator"))
    by_set = managed.update({"metadata": {}}, pod, POD, [], updater("creator"))
    assert created[0].fields == by_set[0].fields
    assert ("f:spec", "f:volumes") not in created[0].fields, "an empty keyed list owns nothing"
