"""The ``kubevirt.io/v1`` CustomResourceDefinitions the KubeVirt simulator installs.

As virt-operator installs them: namespaced, with a status subresource, the short names and
printer columns of KubeVirt's own CRDs. The schema preserves unknown fields — KubeVirt's full
OpenAPI schema is thousands of lines, and only the field names matter here.
"""

from __future__ import annotations

from typing import Any

GROUP = "kubevirt.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
VM_PLURAL = "virtualmachines"
VMI_PLURAL = "virtualmachineinstances"

_AGE: dict[str, Any] = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
_READY: dict[str, Any] = {"name": "Ready", "type": "string",
          "jsonPath": ".status.conditions[?(@.type=='Ready')].status"}
_VM_COLUMNS: list[dict[str, Any]] = [
    _AGE,
    {"name": "Status", "type": "string", "description": "Human Readable Status",
     "jsonPath": ".status.printableStatus"},
    _READY,
]
_VMI_COLUMNS: list[dict[str, Any]] = [
    _AGE,
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "IP", "type": "string", "jsonPath": ".status.interfaces[0].ipAddress"},
    {"name": "NodeName", "type": "string", "jsonPath": ".status.nodeName"},
    _READY,
    {"name": "Live-Migratable", "type": "string", "priority": 1,
     "jsonPath": ".status.conditions[?(@.type=='LiveMigratable')].status"},
    {"name": "Paused", "type": "string", "priority": 1,
     "jsonPath": ".status.conditions[?(@.type=='Paused')].status"},
]


def _crd(kind: str, plural: str, short_names: list[str],
         columns: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": {
            "app.kubernetes.io/component": "kubevirt",
            "app.kubernetes.io/managed-by": "virt-operator", "kubevirt.io": ""}},
        "spec": {
            "group": GROUP, "scope": "Namespaced",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                      "singular": kind.lower(), "shortNames": short_names,
                      "categories": ["all"]},
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }],
        },
    }


def definitions() -> list[dict[str, Any]]:
    """Fresh manifests of the VirtualMachine and VirtualMachineInstance CRDs."""
    return [_crd("VirtualMachine", VM_PLURAL, ["vm", "vms"], _VM_COLUMNS),
            _crd("VirtualMachineInstance", VMI_PLURAL, ["vmi", "vmis"], _VMI_COLUMNS)]
