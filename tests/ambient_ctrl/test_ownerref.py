"""Owner references: controller-runtime's SetControllerReference/SetOwnerReference semantics."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ambient_ctrl.ownerref import (
    AlreadyOwnedError,
    CrossNamespaceOwnerError,
    controller_of,
    is_controlled_by,
    set_controller_reference,
    set_owner_reference,
)


def obj(kind: str, name: str, *, namespace: str | None = "ns", uid: str = "",
        api_version: str = "v1", refs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": uid or f"uid-{name}"}
    if namespace is not None:
        meta["namespace"] = namespace
    if refs is not None:
        meta["ownerReferences"] = refs
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


SESSION = obj("AgenticThing", "s1", api_version="example.com/v1alpha1")
POD = obj("Pod", "s1-runner", uid="pod-uid")


def test_controller_reference_is_complete_and_inputs_untouched() -> None:
    owner, child = copy.deepcopy(SESSION), copy.deepcopy(POD)
    result = set_controller_reference(owner, child)
    assert result["metadata"]["ownerReferences"] == [{
        "apiVersion": "example.com/v1alpha1", "kind": "AgenticThing", "name": "s1",
        "uid": "uid-s1", "controller": True, "blockOwnerDeletion": True}]
    assert owner == SESSION and child == POD
    assert controller_of(result) == result["metadata"]["ownerReferences"][0]
    assert is_controlled_by(result, SESSION)
    assert not is_controlled_by(POD, SESSION)


def test_block_owner_deletion_can_be_turned_off() -> None:
    result = set_controller_reference(SESSION, POD, block_owner_deletion=False)
    assert result["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] is False


def test_setting_again_is_idempotent() -> None:
    once = set_controller_reference(SESSION, POD)
    assert set_controller_reference(SESSION, once) == once


def test_other_references_are_kept() -> None:
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "cm-uid"}
    result = set_controller_reference(SESSION, obj("Pod", "p", refs=[other]))
    assert [r["name"] for r in result["metadata"]["ownerReferences"]] == ["cm", "s1"]


def test_a_different_controller_is_refused() -> None:
    owned = set_controller_reference(obj("ReplicaSet", "rs", api_version="apps/v1"), POD)
    with pytest.raises(AlreadyOwnedError) as caught:
        set_controller_reference(SESSION, owned)
    assert caught.value.owner["name"] == "rs"


def test_recreated_owner_replaces_the_stale_reference() -> None:
    """Same group, kind and name is the same owner (referSameObject): the new uid replaces the
    old one, whatever the version."""
    stale = set_controller_reference(SESSION, POD)
    recreated = obj("AgenticThing", "s1", uid="new-uid", api_version="example.com/v1")
    result = set_controller_reference(recreated, stale)
    refs = result["metadata"]["ownerReferences"]
    assert len(refs) == 1 and refs[0]["uid"] == "new-uid" and refs[0]["apiVersion"] == (
        "example.com/v1")
    assert is_controlled_by(result, recreated) and not is_controlled_by(result, SESSION)


def test_plain_owner_reference_is_promoted_to_controller() -> None:
    plain = set_owner_reference(SESSION, POD)
    assert controller_of(plain) is None
    result = set_controller_reference(SESSION, plain)
    assert len(result["metadata"]["ownerReferences"]) == 1
    assert is_controlled_by(result, SESSION)


@pytest.mark.parametrize(("owner_ns", "obj_ns", "ok"), [
    ("ns", "ns", True),
    (None, "ns", True),      # a cluster-scoped owner may own a namespaced object
    (None, None, True),
    ("ns", "other", False),  # cross-namespace
    ("ns", None, False),     # a cluster-scoped object cannot have a namespaced owner
], ids=["same-namespace", "cluster-owner", "both-cluster", "cross-namespace",
        "namespaced-owner-of-cluster-object"])
@pytest.mark.parametrize("setter", [set_controller_reference, set_owner_reference],
                         ids=["controller", "owner"])
def test_namespace_rules(setter: Any, owner_ns: str | None, obj_ns: str | None,
                         ok: bool) -> None:
    owner = obj("Thing", "o", namespace=owner_ns)
    child = obj("Child", "c", namespace=obj_ns)
    if ok:
        assert setter(owner, child)["metadata"]["ownerReferences"][0]["name"] == "o"
    else:
        with pytest.raises(CrossNamespaceOwnerError):
            setter(owner, child)


def test_owner_without_uid_is_rejected() -> None:
    with pytest.raises(ValueError, match="uid"):
        set_controller_reference({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}},
                                 POD)


def test_set_owner_reference_upserts() -> None:
    first = set_owner_reference(SESSION, POD, block_owner_deletion=True)
    again = set_owner_reference(SESSION, first)
    assert again["metadata"]["ownerReferences"] == [{
        "apiVersion": "example.com/v1alpha1", "kind": "AgenticThing", "name": "s1",
        "uid": "uid-s1"}]
    other = set_owner_reference(obj("ConfigMap", "cm"), again)
    assert len(other["metadata"]["ownerReferences"]) == 2
    assert controller_of(other) is None


def test_set_owner_reference_ignores_another_controller() -> None:
    owned = set_controller_reference(obj("ReplicaSet", "rs", api_version="apps/v1"), POD)
    result = set_owner_reference(SESSION, owned)
    assert controller_of(result) == controller_of(owned)
    assert len(result["metadata"]["ownerReferences"]) == 2


def test_controller_of_ignores_non_controllers() -> None:
    refs = [{"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": False},
            {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": True}]
    assert controller_of(obj("Pod", "p", refs=refs)) == refs[1]
    assert controller_of({"metadata": {}}) is None
