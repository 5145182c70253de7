"""Server-side apply on keyed lists with real clients: kubectl 1.37 (``apply --server-side``)
and the official Python client (``application/apply-patch+yaml``), against the local API
server (or, with ``E2E_KUBECONFIG``, a real cluster: every expectation here is what
kube-apiserver does, per structured-merge-diff and kube's "Server-Side Apply" docs).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from ambient_ctrl.testing import eventually

from .cluster import api_client_for
from .conftest import Cleanup, Kubectl, Raw, Server

pytestmark = [pytest.mark.kubectl, pytest.mark.timeout(120)]

APPLY = "application/apply-patch+yaml"


def service(namespace: str, *ports: dict[str, Any]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": "web", "namespace": namespace},
                       "spec": {"ports": list(ports)}})


def deployment(namespace: str, *containers: dict[str, Any], full: bool = True) -> str:
    spec: dict[str, Any] = {"template": {"spec": {"containers": list(containers)}}}
    if full:
        spec["selector"] = {"matchLabels": {"app": "web"}}
        spec["template"]["metadata"] = {"labels": {"app": "web"}}
    return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "namespace": namespace}, "spec": spec})


def ssa(kubectl: Kubectl, manifest: str, manager: str, *flags: str,
        check: bool = True) -> Any:
    return kubectl("apply", "--server-side", f"--field-manager={manager}", *flags, "-f", "-",
                   input=manifest, check=check)


def managed_fields(kubectl: Kubectl, namespace: str, kind: str) -> dict[str, Any]:
    """Each manager's fieldsV1, as ``kubectl get -o yaml --show-managed-fields`` prints it."""
    text = kubectl("-n", namespace, "get", kind, "web", "-o", "yaml",
                   "--show-managed-fields").stdout
    return {m["manager"]: m["fieldsV1"] for m in yaml.safe_load(text)["metadata"]["managedFields"]}


def port_names(kubectl: Kubectl, namespace: str) -> list[str]:
    obj = kubectl.json("-n", namespace, "get", "service", "web")
    return [p["name"] for p in obj["spec"]["ports"]]


def test_two_field_managers_own_their_own_containers(kubectl: Kubectl, namespace: str) -> None:
    """kube: Deployment.spec.template.spec.containers is keyed by name; a second manager's
    container is appended and each manager's entry names its item ``k:{"name":...}``;
    the first manager re-applying its own container leaves the other's alone."""
    app = {"name": "app", "image": "app:1"}
    ssa(kubectl, deployment(namespace, app), "team-app")
    ssa(kubectl, deployment(namespace, {"name": "proxy", "image": "proxy:1"}, full=False),
        "team-mesh")
    ssa(kubectl, deployment(namespace, {**app, "image": "app:2"}), "team-app")
    obj = kubectl.json("-n", namespace, "get", "deployment", "web")
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("app", "app:2"),
                                                             ("proxy", "proxy:1")]
    fields = managed_fields(kubectl, namespace, "deployment")
    mesh = fields["team-mesh"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert mesh == {'k:{"name":"proxy"}': {".": {}, "f:image": {}, "f:name": {}}}
    app_fields = fields["team-app"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert list(app_fields) == ['k:{"name":"app"}']


def test_a_port_no_longer_applied_is_removed(kubectl: Kubectl, namespace: str) -> None:
    """kube: fields the applier owned and stops sending are removed when no other manager
    owns them (the issue's gap: the port stayed)."""
    ssa(kubectl, service(namespace, {"name": "http", "port": 80},
                         {"name": "https", "port": 443}), "owner")
    ssa(kubectl, service(namespace, {"name": "http", "port": 80}), "owner")
    assert port_names(kubectl, namespace) == ["http"]
    fields = managed_fields(kubectl, namespace, "service")["owner"]
    assert list(fields["f:spec"]["f:ports"]) == ['k:{"port":80,"protocol":"TCP"}']


def test_a_port_another_manager_added_stays(kubectl: Kubectl, namespace: str) -> None:
    """kube: ``kubectl patch`` (operation Update, manager kubectl-patch) owns the port it
    added; the applier dropping its own ports does not remove it."""
    ssa(kubectl, service(namespace, {"name": "http", "port": 80}), "owner")
    kubectl("-n", namespace, "patch", "service", "web", "-p",
            json.dumps({"spec": {"ports": [{"name": "debug", "port": 9000}]}}))
    ssa(kubectl, service(namespace, {"name": "grpc", "port": 9090}), "owner")
    assert port_names(kubectl, namespace) == ["debug", "grpc"]
    fields = managed_fields(kubectl, namespace, "service")
    assert 'k:{"port":9000,"protocol":"TCP"}' in fields["kubectl-patch"]["f:spec"]["f:ports"]


def test_conflicts_name_the_field_and_force_moves_it(kubectl: Kubectl, namespace: str) -> None:
    ssa(kubectl, service(namespace, {"name": "http", "port": 80, "targetPort": 8080}), "owner")
    ssa(kubectl, service(namespace, {"name": "metrics", "port": 9100}), "monitoring")
    assert port_names(kubectl, namespace) == ["http", "metrics"], "own items: no conflict"

    taking = service(namespace, {"name": "http", "port": 80, "targetPort": 9999},
                     {"name": "metrics", "port": 9100})
    refused = ssa(kubectl, taking, "monitoring", check=False)
    assert refused.returncode != 0
    assert ('conflict with "owner": .spec.ports[port=80,protocol="TCP"].targetPort'
            in refused.stderr)
    ssa(kubectl, taking, "monitoring", "--force-conflicts")
    obj = kubectl.json("-n", namespace, "get", "service", "web")
    assert [(p["name"], p["targetPort"]) for p in obj["spec"]["ports"]] == [
        ("http", 9999), ("metrics", 9100)]
    fields = managed_fields(kubectl, namespace, "service")
    http = 'k:{"port":80,"protocol":"TCP"}'
    assert "f:targetPort" in fields["monitoring"]["f:spec"]["f:ports"][http]
    assert "f:targetPort" not in fields["owner"]["f:spec"]["f:ports"][http]
    assert "f:name" in fields["owner"]["f:spec"]["f:ports"][http], "same value: shared"

    # merge.go: items both sides hold come out in the applied order.
    ssa(kubectl, service(namespace, {"name": "metrics", "port": 9100},
                         {"name": "http", "port": 80, "targetPort": 9999}), "monitoring")
    assert port_names(kubectl, namespace) == ["metrics", "http"]


def test_client_side_apply_upgrades_to_server_side(kubectl: Kubectl, namespace: str) -> None:
    """kubectl 1.26+ moves kubectl-client-side-apply's fields to its Apply manager (a JSON
    patch of managedFields) before applying server-side, so a field dropped from the manifest
    goes, as the kube docs' "Upgrading from client-side apply to server-side apply" says."""
    def config_map(**data: str) -> str:
        return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "web", "namespace": namespace}, "data": data})

    kubectl("apply", "-f", "-", input=config_map(a="1", b="2"))
    kubectl("apply", "--server-side", "-f", "-", input=config_map(a="1"))
    obj = kubectl.json("-n", namespace, "get", "configmap", "web")
    assert obj["data"] == {"a": "1"}
    fields = managed_fields(kubectl, namespace, "configmap")
    assert fields["kubectl"] == {"f:data": {"f:a": {}}}
    assert "kubectl-client-side-apply" not in fields


def test_created_fields_belong_to_the_creator(kubectl: Kubectl, namespace: str) -> None:
    """kube: ``kubectl create`` (an Update by kubectl-create) owns what it set; an apply of
    other values conflicts until forced."""
    kubectl("-n", namespace, "create", "deployment", "web", "--image=nginx:1")
    manifest = deployment(namespace, {"name": "nginx", "image": "nginx:2"})
    refused = ssa(kubectl, manifest, "deployer", check=False)
    assert refused.returncode != 0
    assert ('conflict with "kubectl-create": .spec.template.spec.containers[name="nginx"].image'
            in refused.stderr)
    ssa(kubectl, manifest, "deployer", "--force-conflicts")
    fields = managed_fields(kubectl, namespace, "deployment")
    nginx = fields["kubectl-create"]["f:spec"]["f:template"]["f:spec"]["f:containers"][
        'k:{"name":"nginx"}']
    assert "f:image" not in nginx and "f:name" in nginx


# The official Python client -------------------------------------------------------------------
@pytest.fixture()
def v1(apiserver: Server) -> Iterator[client.CoreV1Api]:
    with api_client_for(apiserver.kubeconfig) as api:
        yield client.CoreV1Api(api)


def apply_config_map(v1: client.CoreV1Api, namespace: str, manager: str,
                     body: dict[str, Any], *, force: bool = False) -> Any:
    return v1.patch_namespaced_config_map(
        "cm", namespace, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
                          **body}, field_manager=manager, force=force, _content_type=APPLY)


def test_python_client_apply_owns_finalizers_per_value(v1: client.CoreV1Api,
                                                       namespace: str) -> None:
    """kube: ObjectMeta.finalizers is listType=set; two managers each own their value
    (``v:"..."``) and one manager dropping its value leaves the other's."""
    mine = {"metadata": {"name": "cm", "finalizers": ["example.com/mine"]}}
    theirs = {"metadata": {"name": "cm", "finalizers": ["example.com/theirs"]}}
    apply_config_map(v1, namespace, "mine", mine)
    obj = apply_config_map(v1, namespace, "theirs", theirs)
    assert obj.metadata.finalizers == ["example.com/mine", "example.com/theirs"]
    owned = {m.manager: m.fields_v1 for m in obj.metadata.managed_fields}
    assert owned["theirs"] == {"f:metadata": {"f:finalizers": {'v:"example.com/theirs"': {}}}}
    obj = apply_config_map(v1, namespace, "mine", {"metadata": {"name": "cm"}})
    assert obj.metadata.finalizers == ["example.com/theirs"]
    obj = apply_config_map(v1, namespace, "theirs", {"metadata": {"name": "cm"}})
    assert not obj.metadata.finalizers


def test_python_client_apply_conflicts_and_force(v1: client.CoreV1Api, namespace: str) -> None:
    """kube: 409 with a FieldManagerConflict cause per field; force=true moves ownership."""
    apply_config_map(v1, namespace, "first", {"data": {"a": "1", "b": "2"}})
    with pytest.raises(ApiException) as caught:
        apply_config_map(v1, namespace, "second", {"data": {"a": "9", "b": "2"}})
    assert caught.value.status == 409
    details = json.loads(caught.value.body)["details"]
    assert [(c["reason"], c["field"]) for c in details["causes"]] == [
        ("FieldManagerConflict", ".data.a")]
    obj = apply_config_map(v1, namespace, "second", {"data": {"a": "9", "b": "2"}}, force=True)
    owned = {m.manager: m.fields_v1 for m in obj.metadata.managed_fields}
    assert owned == {"first": {"f:data": {"f:b": {}}}, "second": {"f:data": {"f:a": {}, "f:b": {}}}}
    obj = apply_config_map(v1, namespace, "second", {"data": {}})
    assert obj.data == {"b": "2"}, "b stays: first still owns it; a goes"


def test_python_client_custom_resource_map_list(apiserver: Server, raw: Raw, namespace: str,
                                                cleanup: Cleanup) -> None:
    """A CRD's ``x-kubernetes-list-type: map`` list: items keyed by both map keys (the second
    defaulted from the schema), owned per item, removed when their only applier drops them."""
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "routers.ssa.example.com"},
           "spec": {"group": "ssa.example.com", "scope": "Namespaced",
                    "names": {"plural": "routers", "singular": "router", "kind": "Router"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                        "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                            "type": "object", "properties": {"routes": {
                                "type": "array", "x-kubernetes-list-type": "map",
                                "x-kubernetes-list-map-keys": ["host", "path"],
                                "items": {"type": "object", "required": ["host"],
                                          "properties": {
                                              "host": {"type": "string"},
                                              "path": {"type": "string", "default": "/"},
                                              "to": {"type": "string"}}}}}}}}}}]}}
    status, body = raw.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                               crd)
    assert status == 201, body
    cleanup.add("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                "routers.ssa.example.com")
    with api_client_for(apiserver.kubeconfig) as api:
        custom = client.CustomObjectsApi(api)

        def apply(manager: str, *routes: dict[str, str]) -> Any:
            body = {"apiVersion": "ssa.example.com/v1", "kind": "Router",
                    "metadata": {"name": "r"}, "spec": {"routes": list(routes)}}
            return custom.patch_namespaced_custom_object(
                "ssa.example.com", "v1", namespace, "routers", "r", body, field_manager=manager,
                _content_type=APPLY)

        routers = f"/apis/ssa.example.com/v1/namespaces/{namespace}/routers"
        eventually(lambda: raw.get(routers)[0] == 200, message="routers never served")
        apply("a", {"host": "x", "to": "svc-a"}, {"host": "y", "to": "svc-y"})
        obj = apply("b", {"host": "x", "path": "/api", "to": "svc-b"})
        assert [(r["host"], r["path"]) for r in obj["spec"]["routes"]] == [
            ("x", "/"), ("y", "/"), ("x", "/api")]
        owned = {m["manager"]: m["fieldsV1"] for m in obj["metadata"]["managedFields"]}
        assert list(owned["b"]["f:spec"]["f:routes"]) == ['k:{"host":"x","path":"/api"}']
        obj = apply("a", {"host": "x", "to": "svc-a"})
        assert [(r["host"], r["path"]) for r in obj["spec"]["routes"]] == [
            ("x", "/"), ("x", "/api")]
