"""The simulated node as a Node object: what a kubelet registers when it starts.

Pods the kubelet simulator binds name this node in ``spec.nodeName``; the Node object makes that
name resolve (``kubectl get nodes``, ``kubectl describe node``, informers on Nodes), with its
Lease in ``kube-node-lease`` as a kubelet keeps one. It is
``Ready``, addressed on 127.0.0.1 and labelled as a kubelet labels itself; its capacity is
nominal (nothing here limits what pods ask for). Its conditions' heartbeats are not renewed.
"""

from __future__ import annotations

from typing import Any

from envtest.cluster import Cluster
from envtest.discovery.apis import VERSION_INFO
from envtest.simulators import client

CAPACITY = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
_CONDITIONS = (("MemoryPressure", "False", "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available"),
               ("DiskPressure", "False", "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure"),
               ("PIDPressure", "False", "KubeletHasSufficientPID",
                "kubelet has sufficient PID available"),
               ("Ready", "True", "KubeletReady", "kubelet is posting ready status"))


def node_object(name: str, now: str) -> dict[str, Any]:
    """The Node a kubelet named ``name`` registers at ``now``."""
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64"}},
        "spec": {"podCIDR": "10.244.0.0/16", "podCIDRs": ["10.244.0.0/16"]},
        "status": {
            "capacity": dict(CAPACITY), "allocatable": dict(CAPACITY),
            "conditions": [{"type": kind, "status": status, "reason": reason,
                            "message": message, "lastHeartbeatTime": now,
                            "lastTransitionTime": now}
                           for kind, status, reason, message in _CONDITIONS],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "",
                         "kernelVersion": "6.1.0", "osImage": "envtest",
                         "containerRuntimeVersion": "containerd://2.0.0",
                         "kubeletVersion": VERSION_INFO["gitVersion"],
                         "kubeProxyVersion": "", "operatingSystem": "linux",
                         "architecture": "amd64"},
        },
    }


def register(cluster: Cluster, name: str) -> None:
    """Create the Node and its Lease in ``kube-node-lease`` unless they exist (a restarted
    simulator finds its own)."""
    nodes = cluster.kinds.lookup("", "v1", "nodes")
    if nodes is not None and client.get(cluster, nodes, "", name) is None:
        created = client.create(cluster, nodes, "", node_object(name, cluster.now()))
        leases = cluster.kinds.lookup("coordination.k8s.io", "v1", "leases")
        if created is not None and leases is not None and client.get(
                cluster, leases, LEASE_NAMESPACE, name) is None:
            client.create(cluster, leases, LEASE_NAMESPACE, lease_object(created))


LEASE_NAMESPACE = "kube-node-lease"


def lease_object(node: dict[str, Any]) -> dict[str, Any]:
    """The node's heartbeat Lease, owned by the Node (its renewTime is not renewed)."""
    meta = node["metadata"]
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": meta["name"], "ownerReferences": [{
                "apiVersion": "v1", "kind": "Node", "name": meta["name"], "uid": meta["uid"]}]},
            "spec": {"holderIdentity": meta["name"], "leaseDurationSeconds": 40,
                     "renewTime": meta["creationTimestamp"].replace("Z", ".000000Z")}}
