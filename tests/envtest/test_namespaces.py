"""Namespaces go one at a time, and the system ones not at all (NamespaceLifecycle)."""

from __future__ import annotations

import pytest

from tests.conftest import RawClient


def names(client: RawClient) -> set[str]:
    status, listed = client.get("/api/v1/namespaces")
    assert status == 200
    return {item["metadata"]["name"] for item in listed["items"]}


def test_namespaces_have_no_delete_collection(client: RawClient, namespace: str) -> None:
    before = names(client)
    status, result = client.delete("/api/v1/namespaces")
    assert status == 405 and result["reason"] == "MethodNotAllowed", result
    assert result["kind"] == "Status"
    assert names(client) == before and namespace in before
    status, result = client.delete("/api/v1/namespaces?labelSelector=x%3Dy")
    assert status == 405


def test_discovery_lists_no_deletecollection_for_namespaces(client: RawClient) -> None:
    _, core = client.get("/api/v1")
    verbs = {r["name"]: set(r["verbs"]) for r in core["resources"]}
    assert verbs["namespaces"] == {"create", "delete", "get", "list", "patch", "update",
                                   "watch"}
    assert "deletecollection" in verbs["configmaps"]


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public"])
def test_system_namespaces_may_not_be_deleted(client: RawClient, name: str) -> None:
    status, result = client.delete(f"/api/v1/namespaces/{name}")
    assert status == 403, result
    assert result["reason"] == "Forbidden"
    assert result["message"] == (f'namespaces "{name}" is forbidden: this namespace may not '
                                 "be deleted")
    assert result["details"] == {"name": name, "kind": "namespaces"}
    status, ns = client.get(f"/api/v1/namespaces/{name}")
    assert status == 200 and ns["status"]["phase"] == "Active"
    assert "deletionTimestamp" not in ns["metadata"]


def test_other_namespaces_are_deleted_by_name(client: RawClient) -> None:
    assert client.post("/api/v1/namespaces", {"metadata": {"name": "mortal"}})[0] == 201
    assert client.delete("/api/v1/namespaces/mortal")[0] == 200
    assert client.get("/api/v1/namespaces/mortal")[0] == 404
