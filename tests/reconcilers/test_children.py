"""What every session has whatever runs it (reconcilers.children), against UPSTREAM-CONTRACT
§2.4 and §4.7-§4.13: the Service, the token Secret, the runner's ServiceAccount, Role and
RoleBinding, the NetworkPolicy and copied platform Secrets."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from envtest.kinds import networkpolicies
from envtest.kinds.builtins import ClusterIPs, prepare_create
from informers.resource import PODS
from reconcilers.children import (
    agui_port,
    check_names,
    copied_secret,
    network_policy,
    owned_by,
    refreshed_token_patch,
    role,
    role_binding,
    secret_value,
    service,
    service_account,
    service_port,
    token_secret,
)
from reconcilers.environment import RenderError, RunInputs, Runtime, VMConfig
from reconcilers.pod import runner_pod
from reconcilers.resources import VIRTUAL_MACHINES, ExecutionKind
from reconcilers.vm import KubeVirtEnvironment

Obj = dict[str, Any]
SESSION: Obj = {"apiVersion": "vteam.ambient-code/v1alpha1", "kind": "AgenticSession",
                "metadata": {"name": "session-1", "namespace": "team-a", "uid": "uid-1"},
                "spec": {"userContext": {"userId": "u-123", "displayName": "Alice"}}}
OWNER = {"apiVersion": "vteam.ambient-code/v1alpha1", "kind": "AgenticSession",
         "name": "session-1", "uid": "uid-1", "controller": True}
POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "session-1-runner", "namespace": "team-a", "uid": "pod-uid"}}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# Service (§4.7) ----------------------------------------------------------------------------------
@pytest.mark.parametrize("port", [8001, 9000])
def test_the_service(port: int) -> None:
    assert service(SESSION, POD, PODS, port) == {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "session-session-1", "namespace": "team-a",
                     "labels": {"app": "ambient-code", "agentic-session": "session-1"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Pod",
                                          "name": "session-1-runner", "uid": "pod-uid",
                                          "controller": True}]},
        "spec": {"type": "ClusterIP",
                 "selector": {"agentic-session": "session-1", "app": "ambient-code-runner"},
                 "ports": [{"name": "agui", "protocol": "TCP", "port": port,
                            "targetPort": port}]}}


def test_the_service_selects_the_runner_pod() -> None:
    pod = runner_pod(SESSION, Runtime(id="x"), RunInputs(token_secret="t"))
    selector = service(SESSION, POD, PODS, 8001)["spec"]["selector"]
    assert selector.items() <= pod["metadata"]["labels"].items()


def test_the_api_server_accepts_the_service() -> None:
    assert prepare_create("services", service(SESSION, POD, PODS, 8001), ClusterIPs()) == []


@pytest.mark.parametrize(("obj", "port"), [
    (None, 8001), ({"spec": {"ports": []}}, 8001),
    ({"spec": {"ports": [{"name": "http", "port": 80}, {"name": "agui", "port": 9001}]}}, 9001),
    ({"spec": {"ports": [{"name": "agui", "port": "9001"}]}}, 8001),
])
def test_the_operator_reads_its_port_from_the_service(obj: Obj | None, port: int) -> None:
    assert service_port(obj) == port


def test_agui_port_of_a_pod_and_of_a_vm() -> None:
    runtime = Runtime(id="x", port=9123)
    assert agui_port(runner_pod(SESSION, runtime, RunInputs(token_secret="t"))) == 9123
    vm_runtime = Runtime(id="vm", port=9124, execution_kind=ExecutionKind.KUBEVIRT_VM,
                         vm=VMConfig(container_disk_image="d"))
    _, vm = KubeVirtEnvironment().render(SESSION, vm_runtime, RunInputs(token_secret="t"))
    assert agui_port(vm) == 9124
    assert agui_port({"spec": {"containers": [{"name": "c", "ports": [
        {"name": "http", "containerPort": 80}]}]}}) is None
    # Other shapes are searched whole; malformed ones are no port, not an error.
    assert agui_port({"spec": {"initContainers": [{"name": "c", "ports": [
        {"name": "agui", "containerPort": 7000}]}]}}) == 7000
    assert agui_port({"spec": {"containers": "x", "template": {"spec": []}}}) is None
    assert agui_port({"spec": {"containers": [{"ports": [
        {"name": "agui", "containerPort": True}]}]}}) is None


# token Secret (§4.8) ----------------------------------------------------------------------------
def test_the_token_secret() -> None:
    assert token_secret(SESSION, k8s_token="jwt.a.b", agui_token="uuid-1",
                        refreshed_at="2026-03-01T12:00:00Z") == {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "ambient-runner-token-session-1", "namespace": "team-a",
                     "labels": {"app": "ambient-runner-token"},
                     "annotations": {"ambient-code.io/token-refreshed-at":
                                     "2026-03-01T12:00:00Z"},
                     "ownerReferences": [OWNER]},
        "data": {"k8s-token": b64("jwt.a.b"), "agui-token": b64("uuid-1")}}


def test_a_refresh_patches_only_the_k8s_token_and_its_timestamp() -> None:
    assert refreshed_token_patch("jwt.new", "2026-03-01T12:45:00Z") == {
        "metadata": {"annotations": {"ambient-code.io/token-refreshed-at":
                                     "2026-03-01T12:45:00Z"}},
        "data": {"k8s-token": b64("jwt.new")}}


# ServiceAccount, Role, RoleBinding (§4.10) ---------------------------------------------------
def test_the_service_account() -> None:
    assert service_account(SESSION) == {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "ambient-session-session-1", "namespace": "team-a",
                     "labels": {"app": "ambient-runner"},
                     "ownerReferences": [OWNER],
                     "annotations": {"ambient-code.io/created-by-user-id": "u-123"}}}


@pytest.mark.parametrize("user", [None, {}, {"userId": ""}, {"userId": 5}])
def test_no_user_no_created_by_annotation(user: Any) -> None:
    obj = copy.deepcopy(SESSION)
    obj["spec"]["userContext"] = user
    assert "annotations" not in service_account(obj)["metadata"]


def test_the_role_has_upstreams_rules_exactly() -> None:
    obj = role(SESSION)
    assert (obj["apiVersion"], obj["kind"]) == ("rbac.authorization.k8s.io/v1", "Role")
    assert obj["metadata"]["name"] == "ambient-session-session-1-role"
    assert obj["metadata"]["ownerReferences"] == [OWNER]
    assert obj["rules"] == [
        {"apiGroups": ["vteam.ambient-code"], "resources": ["agenticsessions"],
         "verbs": ["get", "list", "watch", "create", "update", "patch"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews"],
         "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        {"apiGroups": ["mlflow.kubeflow.org"], "resources": ["experiments"],
         "verbs": ["get", "list", "update"]}]


def test_the_role_binding() -> None:
    obj = role_binding(SESSION)
    assert (obj["apiVersion"], obj["kind"]) == ("rbac.authorization.k8s.io/v1", "RoleBinding")
    assert obj["metadata"]["name"] == "ambient-session-session-1-rb"
    assert obj["metadata"]["ownerReferences"] == [OWNER]
    assert obj["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                              "name": "ambient-session-session-1-role"}
    assert obj["subjects"] == [{"kind": "ServiceAccount", "name": "ambient-session-session-1",
                                "namespace": "team-a"}]


def test_rendering_never_shares_rule_lists_between_roles() -> None:
    first = role(SESSION)
    first["rules"][0]["verbs"].append("delete")
    first["rules"].append({})
    assert "delete" not in role(SESSION)["rules"][0]["verbs"]
    assert len(role(SESSION)["rules"]) == 4


# NetworkPolicy (§4.12) ---------------------------------------------------------------------------
def test_the_network_policy() -> None:
    policy = network_policy("team-a", "ambient-code")
    assert policy == {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "runner-allow-backend-only", "namespace": "team-a",
                     "labels": {"app": "ambient-code", "ambient-code.io/managed-by": "operator"}},
        "spec": {"podSelector": {"matchLabels": {"app": "ambient-code-runner"}},
                 "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                     "kubernetes.io/metadata.name": "ambient-code"}}}],
                     "ports": [{"protocol": "TCP", "port": 8001}]}]}}
    assert "ownerReferences" not in policy["metadata"]  # per namespace, never deleted
    assert networkpolicies.validate(policy) == []


def test_the_network_policy_port_is_8001_whatever_the_registry_says() -> None:
    """Upstream hardcodes it; the function takes no port."""
    assert network_policy("a", "b")["spec"]["ingress"][0]["ports"] == [
        {"protocol": "TCP", "port": 8001}]


# copied platform Secrets (§4.13) ----------------------------------------------------------------
SOURCE = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
          "metadata": {"name": "ambient-vertex", "namespace": "ambient-code",
                       "uid": "src-uid", "resourceVersion": "9", "labels": {"team": "ml"},
                       "annotations": {"private": "x"}},
          "data": {"ambient-code-key.json": b64("{}")}}


@pytest.mark.parametrize("controller", [True, False])
def test_a_copied_secret(controller: bool) -> None:
    copy_ = copied_secret(SOURCE, "team-a", SESSION, controller=controller)
    owner = {k: v for k, v in OWNER.items() if k != "controller" or controller}
    assert copy_ == {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "ambient-vertex", "namespace": "team-a",
                     "annotations": {"vteam.ambient-code/copied-from":
                                     "ambient-code/ambient-vertex"},
                     "labels": {"team": "ml"}, "ownerReferences": [owner]},
        "data": {"ambient-code-key.json": b64("{}")}}


# names, values, owners ---------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "ok"), [
    ("a" * 55, True), ("a" * 56, False), ("session-1", True), ("my.session", False),
    ("Session", False), ("s-", False)])
def test_the_service_name_must_be_a_dns_label_of_63(name: str, ok: bool) -> None:
    obj = {"metadata": {"name": name, "namespace": "n"}}
    if ok:
        check_names(obj)
        return
    with pytest.raises(RenderError) as err:
        check_names(obj)
    assert err.value.reason == "InvalidServiceName"


@pytest.mark.parametrize(("data", "value"), [
    ({"k": b64("v=\n")}, "v=\n"), ({}, ""), ({"k": "not base64!"}, ""), ({"k": 5}, ""),
])
def test_secret_value(data: Obj, value: str) -> None:
    assert secret_value({"data": data}, "k") == value
    assert secret_value(None, "k") == ""


def test_owned_by_looks_at_uids_only() -> None:
    assert owned_by({"metadata": {"ownerReferences": [{"uid": "u"}, {"uid": "v"}]}}, "v")
    assert not owned_by({"metadata": {"ownerReferences": [{"name": "v"}]}}, "v")
    assert not owned_by(None, "v")


def test_no_owner_reference_blocks_owner_deletion() -> None:
    objects = [service(SESSION, POD, PODS, 8001), service_account(SESSION), role(SESSION),
               role_binding(SESSION), copied_secret(SOURCE, "n", SESSION, controller=True),
               token_secret(SESSION, k8s_token="", agui_token="", refreshed_at=""),
               service(SESSION, {**POD, "kind": "VirtualMachine"}, VIRTUAL_MACHINES, 1)]
    for obj in objects:
        for ref in obj["metadata"]["ownerReferences"]:
            assert "blockOwnerDeletion" not in ref
