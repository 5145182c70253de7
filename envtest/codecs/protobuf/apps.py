"""Protobuf field tables for apps/v1, the group of ``kubectl create deployment``: Deployments,
StatefulSets, DaemonSets and ReplicaSets.

Data for :mod:`.tables`, in its table format (field number -> (JSON name, type, flags)):
field numbers from upstream ``k8s.io/api/apps/v1/generated.proto``, names and rules from the
json struct tags in ``types.go``.  PodTemplateSpec, LabelSelector and IntOrString come from the
core/v1 and meta/v1 tables, PersistentVolumeClaim (a StatefulSet's volumeClaimTemplates) from
core/v1's.
"""

from __future__ import annotations

from typing import Final

KINDS: Final = frozenset(("apps/v1", kind) for kind in (
    "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"))

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
    "StatefulSet": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "StatefulSetSpec", "k"),
        3: ("status", "StatefulSetStatus", "k"),
    },
    "StatefulSetSpec": {
        1: ("replicas", "int32", "p"), 2: ("selector", "LabelSelector", "n"),
        3: ("template", "PodTemplateSpec", "k"),
        4: ("volumeClaimTemplates", "PersistentVolumeClaim", "*"),
        5: ("serviceName", "string", "k"), 6: ("podManagementPolicy", "string", ""),
        7: ("updateStrategy", "StatefulSetUpdateStrategy", "k"),
        8: ("revisionHistoryLimit", "int32", "p"), 9: ("minReadySeconds", "int32", ""),
        10: ("persistentVolumeClaimRetentionPolicy",
             "StatefulSetPersistentVolumeClaimRetentionPolicy", "p"),
        11: ("ordinals", "StatefulSetOrdinals", "p"),
    },
    "StatefulSetUpdateStrategy": {
        1: ("type", "string", ""), 2: ("rollingUpdate", "RollingUpdateStatefulSetStrategy", "p"),
    },
    "RollingUpdateStatefulSetStrategy": {
        1: ("partition", "int32", "p"), 2: ("maxUnavailable", "IntOrString", "p"),
    },
    "StatefulSetPersistentVolumeClaimRetentionPolicy": {
        1: ("whenDeleted", "string", ""), 2: ("whenScaled", "string", ""),
    },
    "StatefulSetOrdinals": {
        1: ("start", "int32", "k"),
    },
    "StatefulSetStatus": {
        1: ("observedGeneration", "int64", ""), 2: ("replicas", "int32", "k"),
        3: ("readyReplicas", "int32", ""), 4: ("currentReplicas", "int32", ""),
        5: ("updatedReplicas", "int32", ""), 6: ("currentRevision", "string", ""),
        7: ("updateRevision", "string", ""), 9: ("collisionCount", "int32", "p"),
        10: ("conditions", "StatefulSetCondition", "*"), 11: ("availableReplicas", "int32", "k"),
    },
    "StatefulSetCondition": {
        1: ("type", "string", "k"), 2: ("status", "string", "k"),
        3: ("lastTransitionTime", "Time", "k"), 4: ("reason", "string", ""),
        5: ("message", "string", ""),
    },
    "DaemonSet": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "DaemonSetSpec", "k"),
        3: ("status", "DaemonSetStatus", "k"),
    },
    "DaemonSetSpec": {
        1: ("selector", "LabelSelector", "n"), 2: ("template", "PodTemplateSpec", "k"),
        3: ("updateStrategy", "DaemonSetUpdateStrategy", "k"), 4: ("minReadySeconds", "int32", ""),
        6: ("revisionHistoryLimit", "int32", "p"),
    },
    "DaemonSetUpdateStrategy": {
        1: ("type", "string", ""), 2: ("rollingUpdate", "RollingUpdateDaemonSet", "p"),
    },
    "RollingUpdateDaemonSet": {
        1: ("maxUnavailable", "IntOrString", "p"), 2: ("maxSurge", "IntOrString", "p"),
    },
    "DaemonSetStatus": {
        1: ("currentNumberScheduled", "int32", "k"), 2: ("numberMisscheduled", "int32", "k"),
        3: ("desiredNumberScheduled", "int32", "k"), 4: ("numberReady", "int32", "k"),
        5: ("observedGeneration", "int64", ""), 6: ("updatedNumberScheduled", "int32", ""),
        7: ("numberAvailable", "int32", ""), 8: ("numberUnavailable", "int32", ""),
        9: ("collisionCount", "int32", "p"), 10: ("conditions", "DaemonSetCondition", "*"),
    },
    "DaemonSetCondition": {
        1: ("type", "string", "k"), 2: ("status", "string", "k"),
        3: ("lastTransitionTime", "Time", "k"), 4: ("reason", "string", ""),
        5: ("message", "string", ""),
    },
    "ReplicaSet": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "ReplicaSetSpec", "k"),
        3: ("status", "ReplicaSetStatus", "k"),
    },
    "ReplicaSetSpec": {
        1: ("replicas", "int32", "p"), 4: ("minReadySeconds", "int32", ""),
        2: ("selector", "LabelSelector", "n"), 3: ("template", "PodTemplateSpec", "k"),
    },
    "ReplicaSetStatus": {
        1: ("replicas", "int32", "k"), 2: ("fullyLabeledReplicas", "int32", ""),
        4: ("readyReplicas", "int32", ""), 5: ("availableReplicas", "int32", ""),
        7: ("terminatingReplicas", "int32", "p"), 3: ("observedGeneration", "int64", ""),
        6: ("conditions", "ReplicaSetCondition", "*"),
    },
    "ReplicaSetCondition": {
        1: ("type", "string", "k"), 2: ("status", "string", "k"),
        3: ("lastTransitionTime", "Time", "k"), 4: ("reason", "string", ""),
        5: ("message", "string", ""),
    },
}
# fmt: on
