"""HorizontalPodAutoscalers (autoscaling/v2) and PodDisruptionBudgets (policy/v1): objects that
bound a workload's replicas. Stored, defaulted and validated; no autoscaler or disruption
controller acts on them, so their status stays what a client writes.

Defaults from kube's ``pkg/apis/autoscaling/v2/defaults.go``: ``minReplicas: 1``, a CPU
utilization target of 80% when no metrics are given, and, when ``behavior`` is given, its
missing scale-up and scale-down rules filled with kube's (scale up by 100% or 4 pods every
15 s, the larger; scale down by 100% every 15 s, stabilized over 300 s). A PDB's
``minAvailable`` and ``maxUnavailable`` exclude each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from envtest.errors import Cause
from envtest.kinds.strategy import Object, Strategy, child, fresh_status, lookup

_CPU_TARGET: Mapping[str, Any] = {"type": "Utilization", "averageUtilization": 80}
_SCALE_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
    {"type": "Pods", "value": 4, "periodSeconds": 15},
    {"type": "Percent", "value": 100, "periodSeconds": 15}]}
_SCALE_DOWN = {"stabilizationWindowSeconds": 300, "selectPolicy": "Max", "policies": [
    {"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _fill(rules: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    for key, value in defaults.items():
        if rules.get(key) is None:
            rules[key] = [dict(p) for p in value] if isinstance(value, list) else value


def _default_hpa(obj: Object) -> None:
    spec = child(obj, "spec")
    if spec is None:
        return
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": dict(_CPU_TARGET)}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        for key, defaults in (("scaleUp", _SCALE_UP), ("scaleDown", _SCALE_DOWN)):
            rules = child(behavior, key)
            if rules is not None:
                _fill(rules, defaults)


def _validate_hpa(obj: Object) -> list[Cause]:
    causes = []
    for field in ("kind", "name"):
        if not lookup(obj, f"spec.scaleTargetRef.{field}"):
            causes.append(Cause(f"spec.scaleTargetRef.{field}", "Required value",
                                "FieldValueRequired"))
    low, high = lookup(obj, "spec.minReplicas"), lookup(obj, "spec.maxReplicas")
    if not isinstance(high, int) or high < 1:
        causes.append(Cause("spec.maxReplicas", f"Invalid value: {high}: must be greater "
                            "than or equal to 1"))
    elif isinstance(low, int) and low > high:
        causes.append(Cause("spec.minReplicas", f"Invalid value: {low}: must be less than or "
                            "equal to maxReplicas"))
    if isinstance(low, int) and low < 0:
        causes.append(Cause("spec.minReplicas", f"Invalid value: {low}: must be greater than "
                            "or equal to 0"))
    return causes


def _validate_pdb(obj: Object) -> list[Cause]:
    spec = obj.get("spec")
    if isinstance(spec, dict) and spec.get("minAvailable") is not None and spec.get(
            "maxUnavailable") is not None:
        return [Cause("spec", "Invalid value: minAvailable and maxUnavailable cannot be "
                      "both set")]
    causes = []
    for field in ("minAvailable", "maxUnavailable"):
        value = lookup(obj, f"spec.{field}")
        if isinstance(value, int) and value < 0:
            causes.append(Cause(f"spec.{field}", f"Invalid value: {value}: must be greater "
                                "than or equal to 0"))
        elif isinstance(value, str) and not (value.endswith("%") and value[:-1].isdigit()):
            causes.append(Cause(f"spec.{field}", f'Invalid value: "{value}": a valid '
                                "percent string must be a numeric string followed by an "
                                "ending '%'"))
    return causes


STRATEGIES: Mapping[str, Strategy] = MappingProxyType({
    "horizontalpodautoscalers.autoscaling": Strategy(
        _default_hpa, fresh_status(desiredReplicas=0), _validate_hpa),
    "poddisruptionbudgets.policy": Strategy(
        prepare_create=fresh_status(disruptionsAllowed=0, currentHealthy=0, desiredHealthy=0,
                              expectedPods=0), validate=_validate_pdb),
})
"""group-resource -> strategy."""
