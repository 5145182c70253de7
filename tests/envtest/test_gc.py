"""Garbage collection by owner references, as kube-controller-manager does it."""

from __future__ import annotations

from typing import Any

from ambient_ctrl.testing import eventually
from tests.conftest import RawClient


def _ref(owner: dict[str, Any], *, block: bool = False, controller: bool = False) -> dict:
    ref = {"apiVersion": owner.get("apiVersion", "v1"), "kind": owner.get("kind", "ConfigMap"),
           "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
    if block:
        ref["blockOwnerDeletion"] = True
    if controller:
        ref["controller"] = True
    return ref


def _cm(client: RawClient, ns: str, name: str, *owners: dict, finalizers: tuple = ()) -> dict:
    meta: dict[str, Any] = {"name": name}
    if owners:
        meta["ownerReferences"] = list(owners)
    if finalizers:
        meta["finalizers"] = list(finalizers)
    status, obj = client.post(f"/api/v1/namespaces/{ns}/configmaps", {"metadata": meta})
    assert status == 201, obj
    return obj


def _gone(client: RawClient, ns: str, name: str) -> bool:
    return client.get(f"/api/v1/namespaces/{ns}/configmaps/{name}")[0] == 404


def test_background_deletes_dependents_of_a_deleted_owner(client: RawClient,
                                                         namespace: str) -> None:
    owner = _cm(client, namespace, "owner")
    _cm(client, namespace, "child", _ref(owner))
    client.delete(f"/api/v1/namespaces/{namespace}/configmaps/owner")
    eventually(lambda: _gone(client, namespace, "child"))


def test_dependent_with_a_live_owner_keeps_it_and_loses_the_dangling_reference(
        client: RawClient, namespace: str) -> None:
    first, second = _cm(client, namespace, "o1"), _cm(client, namespace, "o2")
    _cm(client, namespace, "shared", _ref(first), _ref(second))
    client.delete(f"/api/v1/namespaces/{namespace}/configmaps/o1")

    def only_second() -> bool:
        _, obj = client.get(f"/api/v1/namespaces/{namespace}/configmaps/shared")
        return [r["name"] for r in obj["metadata"].get("ownerReferences", [])] == ["o2"]

    eventually(only_second)
    client.delete(f"/api/v1/namespaces/{namespace}/configmaps/o2")
    eventually(lambda: _gone(client, namespace, "shared"))


def test_reference_to_another_incarnation_is_dangling(client: RawClient, namespace: str) -> None:
    owner = _cm(client, namespace, "phoenix")
    stale = _ref(owner)
    client.delete(f"/api/v1/namespaces/{namespace}/configmaps/phoenix")
    _cm(client, namespace, "phoenix")  # same name, new uid
    _cm(client, namespace, "orphaned", stale)
    eventually(lambda: _gone(client, namespace, "orphaned"))
    assert not _gone(client, namespace, "phoenix")


def test_foreground_waits_for_blocking_dependents(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    owner = _cm(client, namespace, "fg")
    _cm(client, namespace, "blocker", _ref(owner, block=True), finalizers=("example.com/hold",))
    _cm(client, namespace, "plain", _ref(owner))
    status, obj = client.delete(f"{path}/fg", {"propagationPolicy": "Foreground"})
    assert status == 200 and "foregroundDeletion" in obj["metadata"]["finalizers"]
    eventually(lambda: _gone(client, namespace, "plain"))

    def blocker_deleting() -> bool:
        return bool(client.get(f"{path}/blocker")[1]["metadata"].get("deletionTimestamp"))

    eventually(blocker_deleting)
    _, still = client.get(f"{path}/fg")
    assert still["metadata"]["deletionTimestamp"], "the owner waits for its blocking dependent"
    client.patch(f"{path}/blocker", {"metadata": {"finalizers": None}})
    eventually(lambda: _gone(client, namespace, "blocker"))
    eventually(lambda: _gone(client, namespace, "fg"))


def test_foreground_without_dependents_completes(client: RawClient, namespace: str) -> None:
    _cm(client, namespace, "alone")
    client.delete(f"/api/v1/namespaces/{namespace}/configmaps/alone",
                  {"propagationPolicy": "Foreground"})
    eventually(lambda: _gone(client, namespace, "alone"))


def test_orphan_removes_references_and_keeps_dependents(client: RawClient,
                                                        namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    owner = _cm(client, namespace, "parent")
    _cm(client, namespace, "kid", _ref(owner))
    client.delete(f"{path}/parent?propagationPolicy=Orphan")
    eventually(lambda: _gone(client, namespace, "parent"))
    _, kid = client.get(f"{path}/kid")
    assert "ownerReferences" not in kid["metadata"]


def test_transitive_chain_custom_resource_pod_service(client: RawClient, namespace: str) -> None:
    crd = {"metadata": {"name": "sessions.chain.example.com"},
           "spec": {"group": "chain.example.com", "scope": "Namespaced",
                    "names": {"plural": "sessions", "kind": "Session"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                        "openAPIV3Schema": {"type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True}}}]}}
    assert client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)[0] == 201
    _, session = client.post(f"/apis/chain.example.com/v1/namespaces/{namespace}/sessions",
                             {"metadata": {"name": "s"}, "spec": {}})
    _, pod = client.post(f"/api/v1/namespaces/{namespace}/pods", {
        "metadata": {"name": "s-runner", "ownerReferences": [_ref(session, controller=True)]},
        "spec": {"containers": [{"name": "c", "image": "i"}]}})
    pod.setdefault("apiVersion", "v1")
    pod["kind"] = "Pod"
    assert client.post(f"/api/v1/namespaces/{namespace}/services", {
        "metadata": {"name": "s-svc", "ownerReferences": [_ref(pod)]},
        "spec": {"ports": [{"port": 80}]}})[0] == 201
    client.delete(f"/apis/chain.example.com/v1/namespaces/{namespace}/sessions/s")
    eventually(lambda: client.get(f"/api/v1/namespaces/{namespace}/pods/s-runner")[0] == 404)
    eventually(lambda: client.get(f"/api/v1/namespaces/{namespace}/services/s-svc")[0] == 404)


def test_namespace_terminates_after_its_contents(client: RawClient) -> None:
    client.post("/api/v1/namespaces", {"metadata": {"name": "ending"}})
    _cm(client, "ending", "held", finalizers=("example.com/hold",))
    _cm(client, "ending", "free")
    client.delete("/api/v1/namespaces/ending")
    _, ns = client.get("/api/v1/namespaces/ending")
    assert ns["status"]["phase"] == "Terminating"
    assert _gone(client, "ending", "free")
    status, _ = client.post("/api/v1/namespaces/ending/configmaps", {"metadata": {"name": "x"}})
    assert status == 403, "no new content in a terminating namespace"
    client.patch("/api/v1/namespaces/ending/configmaps/held", {"metadata": {"finalizers": None}})
    eventually(lambda: client.get("/api/v1/namespaces/ending")[0] == 404)
