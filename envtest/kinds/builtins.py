"""Defaulting and validation of the built-in kinds, as their kube-apiserver strategies do it.

Only what clients observe: pods get the defaults a real server adds (so operators diffing desired
against actual state meet the same server-side fields they would in a cluster; the pod-spec
defaults every template shares are :mod:`.podspecs`), their spec is immutable but for images,
services get a cluster IP, secrets fold ``stringData`` into ``data``, NetworkPolicies and
LimitRanges are defaulted and checked (:mod:`.networkpolicies`, :mod:`.limitranges`). The
kinds added since are rows of :data:`STRATEGIES` (:class:`.strategy.Strategy`: workloads in
:mod:`.apps` and :mod:`.batch`, volumes, nodes and endpoints in :mod:`.storage`, HPAs and PDBs
in :mod:`.autoscaling`, webhooks and ingresses in :mod:`.admission`). Hooks are keyed by
group-resource (``pods``, ``networkpolicies.networking.k8s.io``).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from envtest.errors import Cause
from envtest.kinds import (
    admission,
    apps,
    autoscaling,
    batch,
    limitranges,
    networkpolicies,
    podspecs,
    storage,
)
from envtest.kinds.strategy import Strategy

_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_POD_MUTABLE = ("`spec.containers[*].image`,`spec.initContainers[*].image`,"
                "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
                "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if "
                "it was previously negative)")


class ClusterIPs:
    """Hands out service addresses from 10.96.0.0/12, as a default cluster does."""

    def __init__(self) -> None:
        self._next: Iterator[int] = itertools.count(10)

    def allocate(self) -> str:
        n = next(self._next)
        return f"10.96.{n // 250}.{n % 250 + 1}"


Prepare = Callable[[dict[str, Any], ClusterIPs], list[Cause]]
Update = Callable[[dict[str, Any], dict[str, Any]], list[Cause]]


def prepare_create(resource: str, obj: dict[str, Any], ips: ClusterIPs) -> list[Cause]:
    """Default ``obj`` (of group-resource ``resource``) in place; return validation causes."""
    strategy = STRATEGIES.get(resource)
    if strategy is not None:
        strategy.default(obj)
        strategy.prepare_create(obj)
        return strategy.validate(obj)
    hook = _CREATE.get(resource)
    causes = hook(obj, ips) if hook else []
    return causes + validate(resource, obj)


def check_update(resource: str, new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """Carry server-owned fields from ``old`` into ``new``; causes for forbidden changes."""
    strategy = STRATEGIES.get(resource)
    if strategy is not None:
        strategy.default(new)
        return strategy.validate_update(new, old) + strategy.validate(new)
    hook = _UPDATE.get(resource)
    causes = hook(new, old) if hook else []
    return causes + validate(resource, new)


def validate(resource: str, obj: dict[str, Any]) -> list[Cause]:
    strategy = STRATEGIES.get(resource)
    if strategy is not None:
        return strategy.validate(obj)
    hook = _VALIDATE.get(resource)
    return hook(obj) if hook else []


# pods ----------------------------------------------------------------------------------------
def _qos_class(spec: Mapping[str, Any]) -> str:
    requests_limits = [(c.get("resources") or {}) for c in spec.get("containers") or ()
                       if isinstance(c, dict)]
    if not any(r.get("requests") or r.get("limits") for r in requests_limits):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get(res) is not None
        and (r.get("requests") or {}).get(res, (r.get("limits") or {}).get(res))
        == (r.get("limits") or {}).get(res)
        for r in requests_limits for res in ("cpu", "memory"))
    return "Guaranteed" if guaranteed else "Burstable"


def _create_pod(pod: dict[str, Any], _: ClusterIPs) -> list[Cause]:
    spec = pod.setdefault("spec", {})
    if not isinstance(spec, dict):
        return [Cause("spec", "Invalid value: must be an object")]
    podspecs.default_spec(spec)
    for key, value in (("enableServiceLinks", True), ("priority", 0),
                       ("preemptionPolicy", "PreemptLowerPriority"),
                       ("serviceAccountName", "default")):
        spec.setdefault(key, value)
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    pod["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}
    return []


def _validate_pod(pod: dict[str, Any]) -> list[Cause]:
    return podspecs.validate_pod_spec(pod.get("spec"), "spec")


def _update_pod(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    if new_spec is old_spec:
        # A status write keeps the stored spec itself (``commit.update``): defaulted when it
        # was stored, and unchanged. (The kubelet writes three per pod.)
        return []

    def masked(spec: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in spec.items()
               if k not in ("activeDeadlineSeconds", "tolerations")}
        for key in ("containers", "initContainers"):
            out[key] = [{k: v for k, v in c.items() if k != "image"} if isinstance(c, dict)
                        else c for c in spec.get(key) or ()]
        return out

    if isinstance(new_spec, dict):
        podspecs.default_spec(new_spec)  # defaulting runs on every decode, updates included
    if masked(new_spec) != masked(old_spec):
        return [Cause("spec", f"Forbidden: pod updates may not change fields other than "
                      f"{_POD_MUTABLE}", "FieldValueForbidden")]
    return []


# services ------------------------------------------------------------------------------------
def _create_service(svc: dict[str, Any], ips: ClusterIPs) -> list[Cause]:
    spec = svc.setdefault("spec", {})
    if not isinstance(spec, dict):
        return [Cause("spec", "Invalid value: must be an object")]
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    _default_service_ports(spec)
    if spec["type"] != "ExternalName":
        if not spec.get("clusterIP"):
            spec["clusterIP"] = ips.allocate()
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    svc["status"] = {"loadBalancer": {}}
    return []


def _default_service_ports(spec: dict[str, Any]) -> None:
    for port in spec.get("ports") or ():
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])


def _validate_service(svc: dict[str, Any]) -> list[Cause]:
    spec = svc.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "Required value", "FieldValueRequired")]
    causes = []
    kind = spec.get("type")
    if kind not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        causes.append(Cause("spec.type", f'Unsupported value: "{kind}"', "FieldValueNotSupported"))
    ports = spec.get("ports")
    if kind != "ExternalName" and spec.get("clusterIP") != "None" and not ports:
        causes.append(Cause("spec.ports", "Required value", "FieldValueRequired"))
    causes += podspecs.port_causes(ports, "spec.ports", "port")
    if isinstance(ports, list) and len(ports) > 1:
        for i, port in enumerate(ports):
            if isinstance(port, dict) and not port.get("name"):
                causes.append(Cause(f"spec.ports[{i}].name", "Required value",
                                    "FieldValueRequired"))
    return causes


def _update_service(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    new_spec, old_spec = new.setdefault("spec", {}), old.get("spec") or {}
    if not isinstance(new_spec, dict):
        return [Cause("spec", "Invalid value: must be an object")]
    for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        if key in old_spec and not new_spec.get(key):
            new_spec[key] = old_spec[key]
    new_spec.setdefault("type", old_spec.get("type", "ClusterIP"))
    new_spec.setdefault("sessionAffinity", "None")
    _default_service_ports(new_spec)
    if new_spec.get("clusterIP") != old_spec.get("clusterIP"):
        return [Cause("spec.clusterIP", "Invalid value: field is immutable")]
    return []


# namespaces, secrets, configmaps -------------------------------------------------------------
def _create_namespace(ns: dict[str, Any], _: ClusterIPs) -> list[Cause]:
    ns.setdefault("spec", {})
    ns["status"] = {"phase": "Active"}
    return _update_namespace(ns, ns)


def _update_namespace(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    # The server keeps this label equal to the name so namespace selectors can match by name.
    labels = new["metadata"].setdefault("labels", {})
    if isinstance(labels, dict):
        labels["kubernetes.io/metadata.name"] = new["metadata"].get("name", "")
    return []


def _create_secret(secret: dict[str, Any], _: ClusterIPs) -> list[Cause]:
    secret.setdefault("type", "Opaque")
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict):
        data = secret.setdefault("data", {})
        if isinstance(data, dict):
            # A copy: after a patch, ``data`` may be the stored object's own dict (patches share
            # what they leave alone), and changing that would make the update look like a no-op.
            secret["data"] = {**data, **{key: base64.b64encode(str(value).encode()).decode()
                                         for key, value in string_data.items()}}
    return []


def _update_secret(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    causes = _create_secret(new, ClusterIPs())
    if old.get("immutable") and (new.get("data") != old.get("data")):
        causes.append(Cause("data", "Forbidden: field is immutable when `immutable` is set",
                            "FieldValueForbidden"))
    if new.get("type") != old.get("type"):
        causes.append(Cause("type", "Invalid value: field is immutable"))
    return causes


def _validate_keys(obj: dict[str, Any], fields: tuple[str, ...],
                   decode_base64: tuple[str, ...]) -> list[Cause]:
    causes = []
    for field in fields:
        values = obj.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            causes.append(Cause(field, "Invalid value: must be a map"))
            continue
        for key, value in values.items():
            if len(key) > 253 or not _KEY.fullmatch(key):
                causes.append(Cause(f"{field}[{key}]", f'Invalid value: "{key}": a valid '
                                    "config key must consist of alphanumeric characters, '-', "
                                    "'_' or '.'"))
            if not isinstance(value, str):
                causes.append(Cause(f"{field}[{key}]", "Invalid value: must be a string"))
            elif field in decode_base64:
                try:
                    base64.b64decode(value, validate=True)
                except binascii.Error:
                    causes.append(Cause(f"{field}[{key}]", "Invalid value: illegal base64 data"))
    return causes


def _validate_secret(secret: dict[str, Any]) -> list[Cause]:
    return _validate_keys(secret, ("data",), ("data",))


def _validate_configmap(cm: dict[str, Any]) -> list[Cause]:
    return _validate_keys(cm, ("data", "binaryData"), ("binaryData",))


# networkpolicies -------------------------------------------------------------------------------
def _create_network_policy(policy: dict[str, Any], _: ClusterIPs) -> list[Cause]:
    networkpolicies.default(policy)
    return []


def _update_network_policy(new: dict[str, Any], _: dict[str, Any]) -> list[Cause]:
    networkpolicies.default(new)  # defaulting runs on every decode, updates included
    return []


# limitranges ------------------------------------------------------------------------------------
def _create_limit_range(limit_range: dict[str, Any], _: ClusterIPs) -> list[Cause]:
    limitranges.decode(limit_range)
    limitranges.default(limit_range)
    return []


def _update_limit_range(new: dict[str, Any], _: dict[str, Any]) -> list[Cause]:
    limitranges.decode(new)
    limitranges.default(new)  # defaulting runs on every decode, updates included
    return []


_NETWORK_POLICIES = "networkpolicies.networking.k8s.io"
_CREATE: Mapping[str, Prepare] = {"pods": _create_pod, "services": _create_service,
                                  "namespaces": _create_namespace, "secrets": _create_secret,
                                  _NETWORK_POLICIES: _create_network_policy,
                                  "limitranges": _create_limit_range}
_UPDATE: Mapping[str, Update] = {"pods": _update_pod, "services": _update_service,
                                 "namespaces": _update_namespace, "secrets": _update_secret,
                                 _NETWORK_POLICIES: _update_network_policy,
                                 "limitranges": _update_limit_range}
_VALIDATE: Mapping[str, Callable[[dict[str, Any]], list[Cause]]] = {
    "pods": _validate_pod, "services": _validate_service, "secrets": _validate_secret,
    "configmaps": _validate_configmap, _NETWORK_POLICIES: networkpolicies.validate,
    "limitranges": limitranges.validate}

STRATEGIES: Mapping[str, Strategy] = MappingProxyType({
    **apps.STRATEGIES, **batch.STRATEGIES, **storage.STRATEGIES, **autoscaling.STRATEGIES,
    **admission.STRATEGIES})
"""Kinds whose strategy is data (:class:`.strategy.Strategy`), by group-resource."""
