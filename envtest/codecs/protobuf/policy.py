"""Protobuf field tables for policy/v1 PodDisruptionBudget (``kubectl create pdb`` sends
protobuf).

Data for :mod:`.tables`, in its table format (field number -> (JSON name, type, flags)):
field numbers from upstream ``k8s.io/api/policy/v1/generated.proto``, names and rules from the
json struct tags in ``types.go``.
"""

from __future__ import annotations

from typing import Final

KINDS: Final = frozenset({("policy/v1", "PodDisruptionBudget")})

# fmt: off
MESSAGES: Final[dict[str, dict[int, tuple[str, str, str]]]] = {
    "PodDisruptionBudget": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "PodDisruptionBudgetSpec", "k"),
        3: ("status", "PodDisruptionBudgetStatus", "k"),
    },
    "PodDisruptionBudgetSpec": {
        1: ("minAvailable", "IntOrString", "p"), 2: ("selector", "LabelSelector", "p"),
        3: ("maxUnavailable", "IntOrString", "p"),
        4: ("unhealthyPodEvictionPolicy", "string", "p"),
    },
    "PodDisruptionBudgetStatus": {
        1: ("observedGeneration", "int64", ""), 2: ("disruptedPods", "Time", "%"),
        3: ("disruptionsAllowed", "int32", "k"), 4: ("currentHealthy", "int32", "k"),
        5: ("desiredHealthy", "int32", "k"), 6: ("expectedPods", "int32", "k"),
        7: ("conditions", "Condition", "*"),
    },
}
# fmt: on
