"""Protobuf field tables for batch/v1, the group of ``kubectl create job`` and ``kubectl create
cronjob`` (both send protobuf).

Data for :mod:`.tables`, in its table format (field number -> (JSON name, type, flags)): field
numbers from upstream ``k8s.io/api/batch/v1/generated.proto``, names and rules from the json
struct tags in ``types.go``. PodTemplateSpec, ObjectReference and LabelSelector come from the
core/v1 and meta/v1 tables. JobSpec's alpha ``scheduling`` (workload scheduling, behind a
feature gate kube-apiserver has off by default) is left out.
"""

from __future__ import annotations

from typing import Final

KINDS: Final = frozenset({("batch/v1", "Job"), ("batch/v1", "CronJob")})

# fmt: off
MESSAGES: Final[dict[str, dict[int, tuple[str, str, str]]]] = {
    "Job": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "JobSpec", "k"),
        3: ("status", "JobStatus", "k"),
    },
    "JobSpec": {
        1: ("parallelism", "int32", "p"), 2: ("completions", "int32", "p"),
        3: ("activeDeadlineSeconds", "int64", "p"),
        11: ("podFailurePolicy", "PodFailurePolicy", "p"),
        16: ("successPolicy", "SuccessPolicy", "p"), 7: ("backoffLimit", "int32", "p"),
        12: ("backoffLimitPerIndex", "int32", "p"), 13: ("maxFailedIndexes", "int32", "p"),
        4: ("selector", "LabelSelector", "p"), 5: ("manualSelector", "bool", "p"),
        6: ("template", "PodTemplateSpec", "k"), 8: ("ttlSecondsAfterFinished", "int32", "p"),
        9: ("completionMode", "string", "p"), 10: ("suspend", "bool", "p"),
        14: ("podReplacementPolicy", "string", "p"), 15: ("managedBy", "string", "p"),
    },
    "JobStatus": {
        1: ("conditions", "JobCondition", "*"), 2: ("startTime", "Time", "p"),
        3: ("completionTime", "Time", "p"), 4: ("active", "int32", ""),
        5: ("succeeded", "int32", ""), 6: ("failed", "int32", ""),
        11: ("terminating", "int32", "p"), 7: ("completedIndexes", "string", ""),
        10: ("failedIndexes", "string", "p"),
        8: ("uncountedTerminatedPods", "UncountedTerminatedPods", "p"), 9: ("ready", "int32", "p"),
    },
    "JobCondition": {
        1: ("type", "string", "k"), 2: ("status", "string", "k"),
        3: ("lastProbeTime", "Time", "k"), 4: ("lastTransitionTime", "Time", "k"),
        5: ("reason", "string", ""), 6: ("message", "string", ""),
    },
    "PodFailurePolicy": {
        1: ("rules", "PodFailurePolicyRule", "*n"),
    },
    "PodFailurePolicyRule": {
        1: ("action", "string", "k"),
        2: ("onExitCodes", "PodFailurePolicyOnExitCodesRequirement", "p"),
        3: ("onPodConditions", "PodFailurePolicyOnPodConditionsPattern", "*"),
    },
    "PodFailurePolicyOnExitCodesRequirement": {
        1: ("containerName", "string", "p"), 2: ("operator", "string", "k"),
        3: ("values", "int32", "*n"),
    },
    "PodFailurePolicyOnPodConditionsPattern": {
        1: ("type", "string", "k"), 2: ("status", "string", "k"),
    },
    "SuccessPolicy": {
        1: ("rules", "SuccessPolicyRule", "*n"),
    },
    "SuccessPolicyRule": {
        1: ("succeededIndexes", "string", "p"), 2: ("succeededCount", "int32", "p"),
    },
    "UncountedTerminatedPods": {
        1: ("succeeded", "string", "*"), 2: ("failed", "string", "*"),
    },
    "CronJob": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "CronJobSpec", "k"),
        3: ("status", "CronJobStatus", "k"),
    },
    "CronJobSpec": {
        1: ("schedule", "string", "k"), 8: ("timeZone", "string", "p"),
        2: ("startingDeadlineSeconds", "int64", "p"), 3: ("concurrencyPolicy", "string", ""),
        4: ("suspend", "bool", "p"), 5: ("jobTemplate", "JobTemplateSpec", "k"),
        6: ("successfulJobsHistoryLimit", "int32", "p"),
        7: ("failedJobsHistoryLimit", "int32", "p"),
    },
    "JobTemplateSpec": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "JobSpec", "k"),
    },
    "CronJobStatus": {
        1: ("active", "ObjectReference", "*"), 4: ("lastScheduleTime", "Time", "p"),
        5: ("lastSuccessfulTime", "Time", "p"),
    },
}
# fmt: on
