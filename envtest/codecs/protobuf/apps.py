"""Protobuf field tables for apps/v1, the group of ``kubectl create deployment``.

Data for :mod:`.tables`, in its table format (field number -> (JSON name, type, flags)):
field numbers from upstream ``k8s.io/api/apps/v1/generated.proto``, names and rules from the
json struct tags in ``types.go``.  PodTemplateSpec, LabelSelector and IntOrString come from the
core/v1 and meta/v1 tables.
"""

from __future__ import annotations

from typing import Final

KINDS: Final = frozenset({("apps/v1", "Deployment")})

# fmt: off
MESSAGES: Final[dict[str, dict[int, tuple[str, str, str]]]] = {
    "Deployment": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "DeploymentSpec", "k"),
        3: ("status", "DeploymentStatus", "k"),
    },
    "DeploymentSpec": {
        1: ("replicas", "int32", "p"), 2: ("selector", "LabelSelector", "n"),
        3: ("template", "PodTemplateSpec", "k"), 4: ("strategy", "DeploymentStrategy", "k"),
        5: ("minReadySeconds", "int32", ""), 6: ("revisionHistoryLimit", "int32", "p"),
        7: ("paused", "bool", ""), 9: ("progressDeadlineSeconds", "int32", "p"),
    },
    "DeploymentStrategy": {
        1: ("type", "string", ""), 2: ("rollingUpdate", "RollingUpdateDeployment", "p"),
    },
    "RollingUpdateDeployment": {
        1: ("maxUnavailable", "IntOrString", "p"), 2: ("maxSurge", "IntOrString", "p"),
    },
    "DeploymentStatus": {
        1: ("observedGeneration", "int64", ""), 2: ("replicas", "int32", ""),
        3: ("updatedReplicas", "int32", ""), 7: ("readyReplicas", "int32", ""),
        4: ("availableReplicas", "int32", ""), 5: ("unavailableReplicas", "int32", ""),
        9: ("terminatingReplicas", "int32", "p"), 6: ("conditions", "DeploymentCondition", "*"),
        8: ("collisionCount", "int32", "p"),
    },
    "DeploymentCondition": {
        1: ("type", "string", "k"), 2: ("status", "string", "k"),
        6: ("lastUpdateTime", "Time", "k"), 7: ("lastTransitionTime", "Time", "k"),
        4: ("reason", "string", ""), 5: ("message", "string", ""),
    },
}
# fmt: on
