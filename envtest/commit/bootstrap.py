"""What a cluster's control plane creates in a namespace: its ``default`` ServiceAccount, and in
the ``default`` namespace the ``kubernetes`` Service that names the API server.

kube-controller-manager's service account controller gives every active namespace a
``default`` ServiceAccount (pods run as it unless they name another); kube-apiserver's
bootstrap controller keeps ``default/kubernetes``, a ClusterIP Service on the first address of
the service range, port 443 (``https``) to the API server's port. Here both are made when the
namespace is created or written to, if missing; nothing re-creates them in between. No
Endpoints are written for ``kubernetes``: no client of this server reaches it through the
Service.
"""

from __future__ import annotations

import copy
from typing import Any

from envtest.cluster import Cluster, Target
from envtest.commit.create import commit_create

DEFAULT_SERVICE_ACCOUNT = "default"
KUBERNETES_SERVICE = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "kubernetes",
                 "labels": {"component": "apiserver", "provider": "kubernetes"}},
    "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.1",
             "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                        "targetPort": 6443}]},
}
"""``default/kubernetes`` as kube-apiserver makes it (the first address of 10.96.0.0/12)."""


def populate(cluster: Cluster, namespace: str) -> None:
    """Create what the control plane keeps in ``namespace`` where it is missing."""
    _ensure(cluster, "serviceaccounts", namespace, {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": DEFAULT_SERVICE_ACCOUNT}})
    if namespace == "default":
        _ensure(cluster, "services", namespace, KUBERNETES_SERVICE)


def _ensure(cluster: Cluster, plural: str, namespace: str, obj: dict[str, Any]) -> None:
    rtype = cluster.kinds.lookup("", "v1", plural)
    if rtype is None or cluster.store.get(rtype.store, (namespace, obj["metadata"]["name"])):
        return
    commit_create(cluster, Target(rtype, namespace), copy.deepcopy(obj))
