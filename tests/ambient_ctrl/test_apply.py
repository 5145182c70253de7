"""Server-side apply through the client, against the local API server: create, ownership,
conflicts and force, status, and the objects it refuses before sending."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from ambient_ctrl.client import Client
from ambient_ctrl.envtest import LocalAPIServer
from ambient_ctrl.testing import custom_resource_definition
from informers.errors import Conflict
from informers.resource import CONFIGMAPS, Resource
from tests.ambient_ctrl.conftest import framework_client

NS = "default"
_names = itertools.count()


@pytest.fixture()
def other(api: LocalAPIServer) -> Iterator[Client]:
    yield from framework_client(api)


def applied(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NS}, "data": data}


def managers(obj: dict[str, Any]) -> dict[str, str]:
    return {m["manager"]: m["operation"] for m in obj["metadata"].get("managedFields") or ()}


def test_apply_creates_then_owns_what_it_applies(client: Client) -> None:
    name = f"cm{next(_names)}"
    created = client.apply(CONFIGMAPS, applied(name, a="1", b="2"))
    assert created["data"] == {"a": "1", "b": "2"}
    assert managers(created) == {client.field_manager: "Apply"}
    # Applying without b: the field this manager applied before and no longer does goes away.
    again = client.apply(CONFIGMAPS, applied(name, a="1"))
    assert again["data"] == {"a": "1"}


def test_conflicts_need_force(client: Client, other: Client) -> None:
    name = f"cm{next(_names)}"
    client.apply(CONFIGMAPS, applied(name, a="1"))
    with pytest.raises(Conflict) as caught:
        other.apply(CONFIGMAPS, applied(name, a="2"), field_manager="rival")
    assert f'conflict with "{client.field_manager}"' in str(caught.value)
    assert [(c.get("reason"), c.get("field")) for c in caught.value.causes] == [
        ("FieldManagerConflict", ".data.a")]
    taken = other.apply(CONFIGMAPS, applied(name, a="2"), field_manager="rival", force=True)
    assert taken["data"] == {"a": "2"} and "rival" in managers(taken)


def test_apply_status(client: Client) -> None:
    crds = client.mapper.resource_for("apiextensions.k8s.io", "CustomResourceDefinition")
    client.apply(crds, custom_resource_definition("example.com", "Appliance"))
    appliances: Resource = client.mapper.resource_for("example.com", "Appliance")
    head = {"apiVersion": "example.com/v1", "kind": "Appliance",
            "metadata": {"name": "toaster", "namespace": NS}}
    client.apply(appliances, {**head, "spec": {"slots": 2}, "status": {"ignored": True}})
    result = client.apply_status(appliances, {**head, "status": {"phase": "Hot"},
                                              "spec": {"slots": 9}})
    assert result["status"] == {"phase": "Hot"} and result["spec"] == {"slots": 2}
    stored = client.resource(appliances).get("toaster", NS)
    assert stored["status"] == {"phase": "Hot"}
    # (kube keeps one entry per manager and subresource; the local server keeps the last
    # Apply entry of a manager whatever its subresource: only the status entry is checked.)
    assert {"manager": client.field_manager, "subresource": "status"} in [
        {"manager": e["manager"], "subresource": e.get("subresource")}
        for e in stored["metadata"]["managedFields"]]


@pytest.mark.parametrize(("obj", "message"), [
    ({"kind": "ConfigMap", "metadata": {"name": "x", "namespace": NS}}, "apiVersion"),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": NS}}, "metadata.name"),
    ({**applied("x"), "metadata": {"name": "x", "namespace": NS,
                                   "managedFields": [{"manager": "m"}]}}, "managedFields"),
], ids=["no-apiVersion", "no-name", "read-back"])
def test_refused_before_sending(client: Client, obj: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        client.apply(CONFIGMAPS, obj)
    with pytest.raises(ValueError, match="field manager"):
        client.resource(CONFIGMAPS).apply(applied("x"), field_manager="")
