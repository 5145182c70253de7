"""The simulated node as a cluster shows it: the kubelet registers its Node (and Lease), the pods
it binds name a node that exists, and the objects the control plane makes are there — read
with the official Python client and kubectl.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from tests.conftest import KUBECTL, RawClient, typed_client
from tests.envtest import runner_pods

api = runner_pods.api  # a server whose kubelet runs pods within a tenth of a second


@pytest.fixture()
def core(api: LocalAPIServer) -> Iterator[k8s.CoreV1Api]:
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(api.kubeconfig, client_configuration=configuration)
    with typed_client(configuration) as typed:
        yield k8s.CoreV1Api(typed)


def test_the_kubelet_registers_its_node(core: k8s.CoreV1Api) -> None:
    [node] = core.list_node().items
    assert node.metadata.name == "envtest-node"
    assert node.metadata.labels["kubernetes.io/hostname"] == "envtest-node"
    ready = {c.type: c.status for c in node.status.conditions}
    assert ready == {"MemoryPressure": "False", "DiskPressure": "False", "PIDPressure": "False",
                     "Ready": "True"}
    assert node.status.allocatable == node.status.capacity
    assert node.status.node_info.kubelet_version.startswith("v1.37")
    lease = k8s.CoordinationV1Api(core.api_client).read_namespaced_lease(
        "envtest-node", "kube-node-lease")
    assert lease.spec.holder_identity == "envtest-node"
    assert lease.metadata.owner_references[0].uid == node.metadata.uid


def test_pods_are_bound_to_a_node_that_exists(core: k8s.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(namespace, k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="p"),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="c", image="busybox")])))
    bound = eventually(lambda: core.read_namespaced_pod("p", namespace).spec.node_name,
                       message="the pod was never bound")
    assert core.read_node(bound).metadata.name == bound
    # The pod runs as its namespace's default ServiceAccount, which exists.
    account = core.read_namespaced_service_account("default", namespace)
    pod = core.read_namespaced_pod("p", namespace)
    assert account.metadata.name == pod.spec.service_account_name


def test_kubectl_get_nodes(api: LocalAPIServer) -> None:
    done = subprocess.run([str(KUBECTL), "--kubeconfig", str(api.kubeconfig), "get", "nodes",
                           "-o", "wide"], capture_output=True, text=True, timeout=60, check=True)
    header, row = [line.split() for line in done.stdout.strip().splitlines()]
    assert header[:5] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert row[:3] == ["envtest-node", "Ready", "<none>"] and row[5] == "127.0.0.1"


def test_a_new_namespace_holds_its_default_service_account(client: RawClient) -> None:
    status, _ = client.post("/api/v1/namespaces", {"metadata": {"name": "fresh"}})
    assert status == 201
    _, accounts = client.get("/api/v1/namespaces/fresh/serviceaccounts")
    assert [a["metadata"]["name"] for a in accounts["items"]] == ["default"]
    _, services = client.get("/api/v1/namespaces/default/services/kubernetes")
    assert json.dumps(services["spec"]["ports"]) == json.dumps(
        [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}])
    # Deleting the namespace takes its ServiceAccount with it.
    client.delete("/api/v1/namespaces/fresh")
    eventually(lambda: client.get("/api/v1/namespaces/fresh")[0] == 404,
               message="the namespace was never removed")
