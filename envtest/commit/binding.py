"""Binding a pod to a node: ``POST pods/{name}/binding``, the one write that sets
``spec.nodeName``."""

from __future__ import annotations

from typing import Any

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.commit.stored import current


def commit_binding(cluster: Cluster, target: Target, node_name: str, *, uid: str = "",
                   pod: dict[str, Any] | None = None) -> bytes:
    """Assign the pod ``target`` names to ``node_name``, as ``POST pods/{name}/binding`` does.

    A pod's spec is immutable through update and patch (``builtins.check_update``); in
    kube-apiserver only the binding subresource sets ``spec.nodeName`` — once — and marks the pod
    ``PodScheduled=True`` in the same write. The simulated scheduler (the kubelet simulator) needs
    exactly that, so it is this separate path rather than an exception in ``commit_update``,
    which keeps the immutability rule whole for every client. ``uid`` is the binding's UID
    precondition: a pod recreated under the same name is not bound by mistake. ``pod``: the
    stored pod, already loaded by the caller (changed in place, as the loaded one would be).
    """
    rtype = target.rtype
    if pod is None:
        pod = current(cluster, target)
    meta, spec = pod["metadata"], pod.setdefault("spec", {})
    refuse = None
    if uid and meta.get("uid") != uid:
        refuse = (f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
                  f"{meta.get('uid')}")
    elif meta.get("deletionTimestamp"):
        refuse = f"pod {target.name} is being deleted, cannot be assigned to a host"
    elif spec.get("nodeName"):
        refuse = f'pod {target.name} is already assigned to node "{spec["nodeName"]}"'
    if refuse:
        raise errors.conflict("pods/binding", rtype.group, target.name, refuse)
    spec["nodeName"] = node_name
    status = pod.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or ()
                  if isinstance(c, dict) and c.get("type") != "PodScheduled"]
    conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                       "lastTransitionTime": cluster.now()})
    status["conditions"] = conditions
    return cluster.store.put(rtype, pod, "MODIFIED").raw
