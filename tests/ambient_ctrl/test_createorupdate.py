"""create_or_update / create_or_patch: the merge-patch diff as a property, the helpers against
the local API server (a CRD with a status subresource, ConfigMaps without one)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ambient_ctrl.client import Client
from ambient_ctrl.createorupdate import (
    MutateKeyError,
    OperationResult,
    create_or_patch,
    create_or_update,
    merge_patch_between,
)
from ambient_ctrl.envtest import LocalAPIServer
from ambient_ctrl.testing import custom_resource_definition, eventually
from informers.errors import Conflict
from informers.resource import CONFIGMAPS, Resource
from tests.ambient_ctrl.conftest import framework_client

NS = "default"
_names = itertools.count()


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, section 2, as written there."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


json_leaf = st.one_of(st.integers(0, 3), st.sampled_from(["x", "y"]),
                      st.lists(st.integers(0, 3), max_size=2))
json_value = st.recursive(json_leaf, lambda children: st.dictionaries(
    st.sampled_from("abc"), children, max_size=3), max_leaves=8)
json_object = st.dictionaries(st.sampled_from("abcd"), json_value, max_size=4)


@given(json_object, json_object)
def test_merge_patch_turns_before_into_after(before: dict, after: dict) -> None:
    patch = merge_patch_between(before, after)
    assert apply_merge_patch(before, patch) == after
    assert (patch == {}) == (before == after)


@pytest.mark.parametrize(("before", "after", "patch"), [
    ({"a": 1, "b": 2}, {"a": 1}, {"b": None}),
    ({"m": {"x": 1, "y": 2}}, {"m": {"x": 1, "y": 3}}, {"m": {"y": 3}}),
    ({"l": [1, 2]}, {"l": [1]}, {"l": [1]}),
    ({"m": {"x": 1}}, {"m": {}}, {"m": {"x": None}}),
], ids=["removed", "nested", "list-whole", "emptied"])
def test_merge_patch_table(before: dict, after: dict, patch: dict) -> None:
    assert merge_patch_between(before, after) == patch


@pytest.fixture(scope="module")
def api() -> Iterator[LocalAPIServer]:
    with LocalAPIServer() as server:
        yield server


@pytest.fixture()
def client(api: LocalAPIServer) -> Iterator[Client]:
    yield from framework_client(api)


@pytest.fixture()
def gadgets(client: Client) -> Resource:
    """A namespaced custom resource with a status subresource, resolved by discovery."""
    crds = client.mapper.resource_for("apiextensions.k8s.io", "CustomResourceDefinition")
    if not client.resource(crds).list()["items"]:
        client.create(crds, custom_resource_definition("example.com", "Gadget"))
    return client.mapper.resource_for("example.com", "Gadget")


def name() -> str:
    return f"obj{next(_names)}"


def server(client: Client, resource: Resource, key: str) -> dict[str, Any]:
    return client.resource(resource).get(key, NS)


def set_data(**data: str) -> Any:
    return lambda obj: obj.__setitem__("data", dict(data))


@pytest.mark.parametrize("helper", [create_or_update, create_or_patch])
def test_create_then_update_then_unchanged(client: Client, helper: Any) -> None:
    key = name()
    result, created = helper(client, CONFIGMAPS, (NS, key), set_data(a="1"), cached=False)
    assert result is OperationResult.CREATED and created["data"] == {"a": "1"}
    assert created["metadata"]["resourceVersion"]
    result, updated = helper(client, CONFIGMAPS, (NS, key), set_data(a="2"), cached=False)
    assert result is OperationResult.UPDATED and server(client, CONFIGMAPS, key)["data"] == {
        "a": "2"}
    version = updated["metadata"]["resourceVersion"]
    result, same = helper(client, CONFIGMAPS, (NS, key), set_data(a="2"), cached=False)
    assert result is OperationResult.UNCHANGED and result == "unchanged"
    assert same["metadata"]["resourceVersion"] == version  # the object read, not rewritten
    assert server(client, CONFIGMAPS, key)["metadata"]["resourceVersion"] == version


def test_unchanged_sends_no_write(api: LocalAPIServer, client: Client) -> None:
    key = name()
    create_or_update(client, CONFIGMAPS, (NS, key), set_data(a="1"), cached=False)
    api.faults.fail(code=500, count=1, resources=["configmaps"], verbs=["update", "patch"])
    try:
        for helper in (create_or_update, create_or_patch):
            assert helper(client, CONFIGMAPS, (NS, key), set_data(a="1"),
                          cached=False)[0] is OperationResult.UNCHANGED
        assert api.faults.state()["failures"], "a write was sent"
    finally:
        api.faults.clear()


def test_from_the_cache_and_from_an_object(client: Client) -> None:
    key = name()
    given = {"metadata": {"name": key, "namespace": NS, "labels": {"from": "given"}}}
    result, created = create_or_update(client, CONFIGMAPS, given, set_data(a="1"))
    assert result is OperationResult.CREATED
    assert created["metadata"]["labels"] == {"from": "given"} and created["kind"] == "ConfigMap"
    assert given == {"metadata": {"name": key, "namespace": NS, "labels": {"from": "given"}}}

    def cached() -> dict[str, Any] | None:
        return client.get(CONFIGMAPS, key, NS)
    eventually(cached, timeout=10)
    # Present: the object read is mutated; the given object's other fields are not used.
    result, _ = create_or_update(client, CONFIGMAPS, {"metadata": {
        "name": key, "namespace": NS, "labels": {"ignored": "yes"}}}, set_data(a="1"))
    assert result is OperationResult.UNCHANGED


@pytest.mark.parametrize("helper", [create_or_update, create_or_patch])
@pytest.mark.parametrize("change", [
    lambda o: o["metadata"].__setitem__("name", "other"),
    lambda o: o["metadata"].__setitem__("namespace", "kube-system"),
    lambda o: {"metadata": {"name": "x"}},
], ids=["name", "namespace", "returned"])
def test_mutate_must_not_move_the_object(client: Client, helper: Any, change: Any) -> None:
    key = name()
    with pytest.raises(MutateKeyError):
        helper(client, CONFIGMAPS, (NS, key), change, cached=False)
    helper(client, CONFIGMAPS, (NS, key), set_data(a="1"), cached=False)
    with pytest.raises(MutateKeyError):
        helper(client, CONFIGMAPS, (NS, key), change, cached=False)
    assert server(client, CONFIGMAPS, key)["data"] == {"a": "1"}


def test_mutate_returning_something_else_is_refused(client: Client) -> None:
    with pytest.raises(TypeError, match="in place or return the object"):
        create_or_update(client, CONFIGMAPS, (NS, name()), lambda obj: [obj])


def test_bad_keys(client: Client) -> None:
    with pytest.raises(ValueError, match="namespaced"):
        create_or_update(client, CONFIGMAPS, (None, "x"), set_data())
    with pytest.raises(ValueError, match="name the object"):
        create_or_patch(client, CONFIGMAPS, {"metadata": {"namespace": NS}}, set_data())


def test_a_concurrent_write_is_a_conflict_for_the_caller_to_requeue(client: Client) -> None:
    key = name()
    create_or_update(client, CONFIGMAPS, (NS, key), set_data(a="1"), cached=False)

    def racing(obj: dict[str, Any]) -> None:  # another writer gets in between read and write
        client.resource(CONFIGMAPS).patch(key, {"data": {"other": "x"}}, NS)
        obj["data"] = {"a": "2"}

    with pytest.raises(Conflict):
        create_or_update(client, CONFIGMAPS, (NS, key), racing, cached=False)
    assert server(client, CONFIGMAPS, key)["data"] == {"a": "1", "other": "x"}


def test_patch_leaves_concurrent_fields_alone_unless_locked(client: Client) -> None:
    key = name()
    create_or_patch(client, CONFIGMAPS, (NS, key), set_data(a="1"), cached=False)

    values = iter(["2", "3"])

    def racing(obj: dict[str, Any]) -> None:
        value = next(values)
        client.resource(CONFIGMAPS).patch(key, {"metadata": {"labels": {"x": value}}}, NS)
        obj["data"]["a"] = value

    assert create_or_patch(client, CONFIGMAPS, (NS, key), racing,
                           cached=False)[0] is OperationResult.UPDATED
    stored = server(client, CONFIGMAPS, key)
    assert stored["data"] == {"a": "2"} and stored["metadata"]["labels"] == {"x": "2"}
    with pytest.raises(Conflict):
        create_or_patch(client, CONFIGMAPS, (NS, key), racing, cached=False,
                        optimistic_lock=True)
    assert server(client, CONFIGMAPS, key)["data"] == {"a": "2"}


def gadget(**spec: Any) -> Any:
    def mutate(obj: dict[str, Any]) -> None:
        obj["spec"] = dict(spec)
    return mutate


def test_patch_results_with_a_status_subresource(client: Client, gadgets: Resource) -> None:
    key = name()

    def both(obj: dict[str, Any]) -> None:
        obj["spec"] = {"size": 2}
        obj["status"] = {"phase": "Growing"}

    def status_only(obj: dict[str, Any]) -> None:
        obj["status"]["phase"] = "Ready"

    assert gadgets.subresources == {"status"}
    result, created = create_or_patch(client, gadgets, (NS, key), both, cached=False)
    assert result is OperationResult.CREATED and "status" not in created  # dropped on create
    result, obj = create_or_patch(client, gadgets, (NS, key), both, cached=False)
    assert result is OperationResult.UPDATED_STATUS_ONLY and result == "updatedStatusOnly"
    assert obj["status"] == {"phase": "Growing"}
    def spec_and_status(obj: dict[str, Any]) -> None:
        gadget(size=3)(obj)
        status_only(obj)

    result, obj = create_or_patch(client, gadgets, (NS, key), spec_and_status, cached=False)
    assert result is OperationResult.UPDATED_STATUS and result == "updatedStatus"
    assert (obj["spec"], obj["status"]) == ({"size": 3}, {"phase": "Ready"})
    assert create_or_patch(client, gadgets, (NS, key), gadget(size=4),
                           cached=False)[0] is OperationResult.UPDATED
    stored = server(client, gadgets, key)
    assert (stored["spec"], stored["status"]) == ({"size": 4}, {"phase": "Ready"})


def test_update_discards_status_as_the_server_does(client: Client, gadgets: Resource) -> None:
    key = name()
    create_or_update(client, gadgets, (NS, key), gadget(size=1), cached=False)

    def with_status(obj: dict[str, Any]) -> dict[str, Any]:
        changed = copy.deepcopy(obj)
        changed["status"] = {"phase": "Ignored"}
        return changed

    assert create_or_update(client, gadgets, (NS, key), with_status,
                            cached=False)[0] is OperationResult.UPDATED
    assert "status" not in server(client, gadgets, key)
