"""Volumes and their classes (PersistentVolumeClaim, PersistentVolume, StorageClass), and the
other kinds that are stored as a cluster keeps them, with nothing acting on them: Nodes,
Endpoints, EndpointSlices.

Defaults from kube's ``pkg/apis/core/v1/defaults.go`` and ``pkg/apis/storage/v1/defaults.go``:
a claim and a volume ``volumeMode: Filesystem`` and phase ``Pending`` (no binder moves them
on), a volume ``persistentVolumeReclaimPolicy: Retain``, a class ``reclaimPolicy: Delete`` and
``volumeBindingMode: Immediate``, a node's allocatable its capacity, endpoint ports
``protocol: TCP``. A claim's spec is immutable once created but for its requested storage,
a class's parameters and provisioner altogether, as kube's validation says.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from envtest.errors import Cause
from envtest.kinds import podspecs
from envtest.kinds.strategy import Object, Strategy, child, fresh_status, immutable, lookup
from envtest.kinds.workloads import one_of

_ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")


def _default_claim(obj: Object) -> None:
    spec = child(obj, "spec")
    if spec is not None:
        podspecs.default_claim_spec(spec)
    status = child(obj, "status")
    if status is not None:
        status.setdefault("phase", "Pending")


def _access_modes(obj: Object) -> list[Cause]:
    modes = lookup(obj, "spec.accessModes")
    if not modes:
        return [Cause("spec.accessModes", "Required value: at least 1 access mode is "
                      "required", "FieldValueRequired")]
    supported = ", ".join(f'"{m}"' for m in _ACCESS_MODES)
    return [Cause("spec.accessModes", f'Unsupported value: "{mode}": supported values: '
                  f"{supported}", "FieldValueNotSupported")
            for mode in modes if mode not in _ACCESS_MODES]


def _validate_claim(obj: Object) -> list[Cause]:
    causes = _access_modes(obj)
    if lookup(obj, "spec.resources.requests.storage") is None and lookup(
            obj, "spec.dataSourceRef") is None:
        causes.append(Cause("spec.resources[storage]", "Required value", "FieldValueRequired"))
    return causes + one_of(obj, "spec.volumeMode", ("Filesystem", "Block"))


def _update_claim(new: Object, old: Object) -> list[Cause]:
    def fixed(obj: Object) -> object:
        spec = dict(obj.get("spec") or {})
        resources = dict(spec.get("resources") or {})
        resources.pop("requests", None)
        spec["resources"] = resources
        spec.pop("volumeAttributesClassName", None)
        return spec

    if fixed(new) != fixed(old):
        return [Cause("spec", "Forbidden: spec is immutable after creation except "
                      "resources.requests and volumeAttributesClassName for bound claims",
                      "FieldValueForbidden")]
    return []


def _default_volume(obj: Object) -> None:
    spec = child(obj, "spec")
    if spec is not None:
        spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        podspecs.default_claim_spec(spec)
    status = child(obj, "status")
    if status is not None:
        status.setdefault("phase", "Pending")


def _validate_volume(obj: Object) -> list[Cause]:
    causes = _access_modes(obj)
    if lookup(obj, "spec.capacity.storage") is None:
        causes.append(Cause("spec.capacity", "Required value", "FieldValueRequired"))
    return causes + one_of(obj, "spec.persistentVolumeReclaimPolicy",
                           ("Delete", "Recycle", "Retain"))


def _default_class(obj: Object) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


def _validate_class(obj: Object) -> list[Cause]:
    causes = [] if obj.get("provisioner") else [
        Cause("provisioner", "Required value", "FieldValueRequired")]
    causes += one_of(obj, "reclaimPolicy", ("Delete", "Retain"))
    return causes + one_of(obj, "volumeBindingMode", ("Immediate", "WaitForFirstConsumer"))


def _update_class(new: Object, old: Object) -> list[Cause]:
    causes = immutable(new, old, "provisioner", "reclaimPolicy", "volumeBindingMode")
    if new.get("parameters") != old.get("parameters"):
        causes.append(Cause("parameters", "Forbidden: updates to parameters are forbidden.",
                            "FieldValueForbidden"))
    return causes


def _default_node(obj: Object) -> None:
    status = obj.get("status")
    if isinstance(status, dict) and "capacity" in status:
        status.setdefault("allocatable", status["capacity"])


def _default_endpoint_ports(ports: object) -> None:
    for port in ports if isinstance(ports, list) else ():
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def _default_endpoints(obj: Object) -> None:
    for subset in obj.get("subsets") or ():
        if isinstance(subset, dict):
            _default_endpoint_ports(subset.get("ports"))


def _default_endpoint_slice(obj: Object) -> None:
    _default_endpoint_ports(obj.get("ports"))
    for port in obj.get("ports") or ():
        if isinstance(port, dict):
            port.setdefault("name", "")


def _validate_endpoint_slice(obj: Object) -> list[Cause]:
    if "addressType" not in obj:
        return [Cause("addressType", "Required value", "FieldValueRequired")]
    return one_of(obj, "addressType", ("IPv4", "IPv6", "FQDN"))


_PENDING = fresh_status(phase="Pending")

STRATEGIES: Mapping[str, Strategy] = MappingProxyType({
    "persistentvolumeclaims": Strategy(_default_claim, _PENDING, _validate_claim, _update_claim),
    "persistentvolumes": Strategy(_default_volume, _PENDING, _validate_volume),
    "storageclasses.storage.k8s.io": Strategy(_default_class, validate=_validate_class,
                                              validate_update=_update_class),
    "nodes": Strategy(_default_node),
    "endpoints": Strategy(_default_endpoints),
    "endpointslices.discovery.k8s.io": Strategy(_default_endpoint_slice,
                                                validate=_validate_endpoint_slice),
})
"""group-resource -> strategy."""
