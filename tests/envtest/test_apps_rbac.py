"""apps/v1 Deployments and rbac.authorization.k8s.io/v1 roles and bindings: served and stored
(nothing acts on them), so deployable manifests such as config/default apply as in a cluster.

Regression: ``kubectl apply -k config/default`` failed with "no matches for kind Deployment in
version apps/v1" (and for every RBAC kind).
"""

from __future__ import annotations

import pytest

from envtest.patch import STRATEGIC_MERGE_KINDS
from tests.conftest import RawClient

RBAC = "/apis/rbac.authorization.k8s.io/v1"


def deployment(name: str, *containers: dict[str, str]) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": list(containers)}}}}


@pytest.mark.parametrize(("group_version", "plural", "kind", "namespaced"), [
    ("apps/v1", "deployments", "Deployment", True),
    ("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", False),
    ("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", False),
    ("rbac.authorization.k8s.io/v1", "roles", "Role", True),
    ("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding", True),
], ids=["deployments", "clusterroles", "clusterrolebindings", "roles", "rolebindings"])
def test_discovery_serves_the_kind(client: RawClient, group_version: str, plural: str,
                                   kind: str, namespaced: bool) -> None:
    status, doc = client.get(f"/apis/{group_version}")
    assert status == 200, doc
    entry = next(r for r in doc["resources"] if r["name"] == plural)
    assert (entry["kind"], entry["namespaced"]) == (kind, namespaced)


def test_deployment_round_trip_and_strategic_merge(client: RawClient, namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    body = deployment("web", {"name": "app", "image": "app:1"},
                      {"name": "sidecar", "image": "proxy:1"})
    status, created = client.post(path, body)
    assert status == 201, created
    assert created["metadata"]["generation"] == 1
    # Containers merge by name: the patch changes one and keeps the other.
    status, patched = client.patch(
        f"{path}/web", {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "app:2"}]}}}}, kind="strategic")
    assert status == 200, patched
    containers = patched["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("app", "app:2"),
                                                             ("sidecar", "proxy:1")]
    assert patched["metadata"]["generation"] == 2
    status, listed = client.get(path)
    assert [d["metadata"]["name"] for d in listed["items"]] == ["web"]
    assert client.get(f"{path}/web/status")[0] == 200


def test_rbac_objects_have_their_scope(client: RawClient, namespace: str) -> None:
    rule = {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]}
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"}
    subject = {"kind": "ServiceAccount", "name": "op", "namespace": namespace}
    assert client.post(f"{RBAC}/clusterroles", {
        "metadata": {"name": "reader"}, "rules": [rule]})[0] == 201
    assert client.post(f"{RBAC}/clusterrolebindings", {
        "metadata": {"name": "reader"}, "roleRef": ref, "subjects": [subject]})[0] == 201
    assert client.post(f"{RBAC}/namespaces/{namespace}/roles", {
        "metadata": {"name": "leases"}, "rules": [rule]})[0] == 201
    assert client.post(f"{RBAC}/namespaces/{namespace}/rolebindings", {
        "metadata": {"name": "leases"}, "roleRef": {**ref, "kind": "Role", "name": "leases"},
        "subjects": [subject]})[0] == 201
    status, role = client.get(f"{RBAC}/clusterroles/reader")
    assert status == 200 and role["rules"] == [rule] and "namespace" not in role["metadata"]
    # A namespaced kind is not served cluster-wide for writes, a cluster-scoped one not in a
    # namespace.
    assert client.post(f"{RBAC}/roles", {"metadata": {"name": "x"}, "rules": []})[0] == 404
    assert client.get(f"{RBAC}/namespaces/{namespace}/clusterroles")[0] == 404
    # Rules are untagged in the API: a strategic merge patch replaces the list.
    status, patched = client.patch(f"{RBAC}/clusterroles/reader", {"rules": [
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}]}, kind="strategic")
    assert status == 200 and [r["resources"] for r in patched["rules"]] == [["events"]]


def test_builtin_groups_cannot_be_taken_by_a_crd(client: RawClient) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "deployments.apps"},
           "spec": {"group": "apps", "scope": "Namespaced",
                    "names": {"plural": "deployments", "kind": "Deployment"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                        "openAPIV3Schema": {"type": "object"}}}]}}
    status, body = client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert status == 422, body


def test_strategic_merge_covers_the_new_kinds() -> None:
    assert {"Deployment", "ClusterRole", "ClusterRoleBinding", "Role",
            "RoleBinding"} <= STRATEGIC_MERGE_KINDS
