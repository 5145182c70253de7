"""Table columns of the cluster's other kinds, as kube-apiserver's printers have them: Nodes,
ServiceAccounts, volumes and their classes, Endpoints and EndpointSlices, Ingresses and their
classes, PodDisruptionBudgets, HorizontalPodAutoscalers, webhook configurations, APIServices.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envtest.printing.cells import AGE, Row, age, col, get, join_or

_NODE_ROLE = "node-role.kubernetes.io/"
_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
_ACCESS = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
           "ReadWriteOncePod": "RWOP"}


def _node(obj: Mapping[str, Any]) -> list[Any]:
    ready = next((c for c in get(obj, "status.conditions") or ()
                  if isinstance(c, Mapping) and c.get("type") == "Ready"), None)
    status = ["Ready" if ready and ready.get("status") == "True" else (
        "NotReady" if ready else "Unknown")]
    if get(obj, "spec.unschedulable"):
        status.append("SchedulingDisabled")
    labels = get(obj, "metadata.labels") or {}
    roles = sorted(k[len(_NODE_ROLE):] for k in labels if k.startswith(_NODE_ROLE))
    if labels.get("kubernetes.io/role"):
        roles.append(labels["kubernetes.io/role"])
    addresses = {a.get("type"): a.get("address") for a in get(obj, "status.addresses") or ()
                 if isinstance(a, Mapping)}
    info = get(obj, "status.nodeInfo") or {}
    return [",".join(status), join_or(roles), age(obj), info.get("kubeletVersion", ""),
            addresses.get("InternalIP") or "<none>", addresses.get("ExternalIP") or "<none>",
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


def _modes(obj: Mapping[str, Any], path: str) -> str:
    return ",".join(_ACCESS.get(m, m) for m in get(obj, path) or ())


def _claim(obj: Mapping[str, Any]) -> list[Any]:
    bound = get(obj, "spec.volumeName")
    return [get(obj, "status.phase") or "", bound or "",
            get(obj, "status.capacity.storage") or "" if bound else "",
            _modes(obj, "status.accessModes") if bound else "",
            get(obj, "spec.storageClassName") or "<unset>",
            get(obj, "status.currentVolumeAttributesClassName") or "<unset>", age(obj),
            get(obj, "spec.volumeMode") or "<unset>"]


def _volume(obj: Mapping[str, Any]) -> list[Any]:
    claim = get(obj, "spec.claimRef") or {}
    claimed = f"{claim.get('namespace')}/{claim.get('name')}" if claim else ""
    return [get(obj, "spec.capacity.storage") or "", _modes(obj, "spec.accessModes"),
            get(obj, "spec.persistentVolumeReclaimPolicy") or "", get(obj, "status.phase") or "",
            claimed, get(obj, "spec.storageClassName") or "",
            get(obj, "spec.volumeAttributesClassName") or "<unset>",
            get(obj, "status.reason") or "", age(obj), get(obj, "spec.volumeMode") or "<unset>"]


def _storage_class(obj: Mapping[str, Any]) -> list[Any]:
    return [obj.get("provisioner", ""), obj.get("reclaimPolicy", "Delete"),
            obj.get("volumeBindingMode", "Immediate"),
            str(bool(obj.get("allowVolumeExpansion"))).lower(), age(obj)]


def _class_name(obj: Mapping[str, Any]) -> str:
    name = get(obj, "metadata.name") or ""
    default = (get(obj, "metadata.annotations") or {}).get(_DEFAULT_CLASS) == "true"
    return f"{name} (default)" if default else name


def _endpoints(obj: Mapping[str, Any]) -> list[Any]:
    shown = []
    for subset in obj.get("subsets") or ():
        ports = [p.get("port") for p in subset.get("ports") or ()] or [None]
        for address in subset.get("addresses") or ():
            for port in ports:
                ip = address.get("ip", "")
                shown.append(f"{ip}:{port}" if port is not None else ip)
    text = ",".join(shown[:3]) + (f" + {len(shown) - 3} more..." if len(shown) > 3 else "")
    return [text or "<none>", age(obj)]


def _endpoint_slice(obj: Mapping[str, Any]) -> list[Any]:
    ports = ",".join(str(p.get("port", "")) if p.get("port") is not None else "<unset>"
                     for p in obj.get("ports") or ())
    addresses = [a for e in obj.get("endpoints") or () for a in e.get("addresses") or ()]
    text = ",".join(addresses[:3]) + (
        f" + {len(addresses) - 3} more..." if len(addresses) > 3 else "")
    return [obj.get("addressType", ""), ports or "<unset>", text or "<unset>", age(obj)]


def _ingress(obj: Mapping[str, Any]) -> list[Any]:
    hosts = [r.get("host") for r in get(obj, "spec.rules") or () if r.get("host")]
    addresses = [i.get("ip") or i.get("hostname")
                 for i in get(obj, "status.loadBalancer.ingress") or ()]
    ports = "80, 443" if get(obj, "spec.tls") else "80"
    return [get(obj, "spec.ingressClassName") or "<none>", join_or(hosts, "*"),
            join_or(addresses, ""), ports, age(obj)]


def _pdb(obj: Mapping[str, Any]) -> list[Any]:
    def shown(path: str) -> str:
        value = get(obj, path)
        return "N/A" if value is None else str(value)

    return [shown("spec.minAvailable"), shown("spec.maxUnavailable"),
            get(obj, "status.disruptionsAllowed") or 0, age(obj)]


def _hpa(obj: Mapping[str, Any]) -> list[Any]:
    ref = get(obj, "spec.scaleTargetRef") or {}
    metrics = get(obj, "spec.metrics") or ()
    targets = ", ".join(_metric(m) for m in metrics) or "<none>"
    return [f"{ref.get('kind')}/{ref.get('name')}", targets,
            get(obj, "spec.minReplicas") or "<unset>", get(obj, "spec.maxReplicas") or 0,
            get(obj, "status.currentReplicas") or 0, age(obj)]


def _metric(metric: Mapping[str, Any]) -> str:
    resource = metric.get("resource") or metric.get("containerResource") or {}
    target = resource.get("target") or {}
    if target.get("averageUtilization") is not None:
        return f"{resource.get('name')}: <unknown>/{target['averageUtilization']}%"
    value = target.get("averageValue") or target.get("value")
    shown = f"<unknown>/{value}" if value is not None else "<unknown>"
    return f"{resource['name']}: {shown}" if resource.get("name") else shown


def _webhooks(obj: Mapping[str, Any]) -> list[Any]:
    return [len(obj.get("webhooks") or ()), age(obj)]


def _api_service(obj: Mapping[str, Any]) -> list[Any]:
    service = get(obj, "spec.service")
    where = f"{service.get('namespace')}/{service.get('name')}" if service else "Local"
    available = next((c for c in get(obj, "status.conditions") or ()
                      if c.get("type") == "Available"), None)
    shown = "Unknown" if available is None else (
        "True" if available.get("status") == "True"
        else f"{available.get('status')} ({available.get('reason', '')})")
    return [where, shown, age(obj)]


_WEBHOOKS = ([col("Webhooks", "integer"), AGE], _webhooks)

COLUMNS: Mapping[str, tuple[list[dict[str, Any]], Row]] = {
    "nodes": ([col("Status"), col("Roles"), AGE, col("Version"),
               col("Internal-IP", priority=1), col("External-IP", priority=1),
               col("OS-Image", priority=1), col("Kernel-Version", priority=1),
               col("Container-Runtime", priority=1)], _node),
    "serviceaccounts": ([col("Secrets", "integer"), AGE],
                        lambda sa: [len(sa.get("secrets") or ()), age(sa)]),
    "persistentvolumeclaims": ([col("Status"), col("Volume"), col("Capacity"),
                                col("Access Modes"), col("StorageClass"),
                                col("VolumeAttributesClass"), AGE,
                                col("VolumeMode", priority=1)], _claim),
    "persistentvolumes": ([col("Capacity"), col("Access Modes"), col("Reclaim Policy"),
                           col("Status"), col("Claim"), col("StorageClass"),
                           col("VolumeAttributesClass"), col("Reason"), AGE,
                           col("VolumeMode", priority=1)], _volume),
    "storageclasses.storage.k8s.io": ([col("Provisioner"), col("ReclaimPolicy"),
                                       col("VolumeBindingMode"), col("AllowVolumeExpansion"),
                                       AGE], _storage_class),
    "endpoints": ([col("Endpoints"), AGE], _endpoints),
    "endpointslices.discovery.k8s.io": ([col("AddressType"), col("Ports"), col("Endpoints"),
                                         AGE], _endpoint_slice),
    "ingresses.networking.k8s.io": ([col("Class"), col("Hosts"), col("Address"), col("Ports"),
                                     AGE], _ingress),
    "ingressclasses.networking.k8s.io": ([col("Controller"), col("Parameters"), AGE],
                                         lambda c: [get(c, "spec.controller") or "",
                                                    "<none>", age(c)]),
    "poddisruptionbudgets.policy": ([col("Min Available"), col("Max Unavailable"),
                                     col("Allowed Disruptions", "integer"), AGE], _pdb),
    "horizontalpodautoscalers.autoscaling": ([col("Reference"), col("Targets"),
                                              col("MinPods"), col("MaxPods", "integer"),
                                              col("Replicas", "integer"), AGE], _hpa),
    "validatingwebhookconfigurations.admissionregistration.k8s.io": _WEBHOOKS,
    "mutatingwebhookconfigurations.admissionregistration.k8s.io": _WEBHOOKS,
    "apiservices.apiregistration.k8s.io": ([col("Service"), col("Available"), AGE],
                                           _api_service),
}
"""group-resource -> (columns after Name, the row's cells after the name)."""

NAMES: Mapping[str, Row] = {"storageclasses.storage.k8s.io": lambda c: [_class_name(c)]}
"""Kinds whose NAME cell is more than the name (the default StorageClass is marked)."""
