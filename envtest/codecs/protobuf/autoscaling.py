"""Protobuf field tables for autoscaling/v2 HorizontalPodAutoscaler (``kubectl autoscale``
sends protobuf).

Data for :mod:`.tables`, in its table format (field number -> (JSON name, type, flags)):
field numbers from upstream ``k8s.io/api/autoscaling/v2/generated.proto``, names and rules from the
json struct tags in ``types.go``.
"""

from __future__ import annotations

from typing import Final

KINDS: Final = frozenset({("autoscaling/v2", "HorizontalPodAutoscaler")})

# fmt: off
MESSAGES: Final[dict[str, dict[int, tuple[str, str, str]]]] = {
    "HorizontalPodAutoscaler": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "HorizontalPodAutoscalerSpec", "k"),
        3: ("status", "HorizontalPodAutoscalerStatus", "k"),
    },
    "HorizontalPodAutoscalerSpec": {
        1: ("scaleTargetRef", "CrossVersionObjectReference", "k"),
        2: ("minReplicas", "int32", "p"), 3: ("maxReplicas", "int32", "k"),
        4: ("metrics", "MetricSpec", "*"), 5: ("behavior", "HorizontalPodAutoscalerBehavior", "p"),
    },
    "HorizontalPodAutoscalerStatus": {
        1: ("observedGeneration", "int64", "p"), 2: ("lastScaleTime", "Time", "p"),
        3: ("currentReplicas", "int32", ""), 4: ("desiredReplicas", "int32", "k"),
        5: ("currentMetrics", "MetricStatus", "*n"),
        6: ("conditions", "HorizontalPodAutoscalerCondition", "*"),
    },
    "CrossVersionObjectReference": {
        1: ("kind", "string", "k"), 2: ("name", "string", "k"), 3: ("apiVersion", "string", ""),
    },
    "MetricSpec": {
        1: ("type", "string", "k"), 2: ("object", "ObjectMetricSource", "p"),
        3: ("pods", "PodsMetricSource", "p"), 4: ("resource", "ResourceMetricSource", "p"),
        7: ("containerResource", "ContainerResourceMetricSource", "p"),
        5: ("external", "ExternalMetricSource", "p"),
    },
    "HorizontalPodAutoscalerBehavior": {
        1: ("scaleUp", "HPAScalingRules", "p"), 2: ("scaleDown", "HPAScalingRules", "p"),
    },
    "MetricStatus": {
        1: ("type", "string", "k"), 2: ("object", "ObjectMetricStatus", "p"),
        3: ("pods", "PodsMetricStatus", "p"), 4: ("resource", "ResourceMetricStatus", "p"),
        7: ("containerResource", "ContainerResourceMetricStatus", "p"),
        5: ("external", "ExternalMetricStatus", "p"),
    },
    "HorizontalPodAutoscalerCondition": {
        1: ("type", "string", "k"), 2: ("status", "string", "k"),
        3: ("lastTransitionTime", "Time", "k"), 4: ("reason", "string", ""),
        5: ("message", "string", ""), 6: ("observedGeneration", "int64", "p"),
    },
    "ObjectMetricSource": {
        1: ("describedObject", "CrossVersionObjectReference", "k"),
        2: ("target", "MetricTarget", "k"), 3: ("metric", "MetricIdentifier", "k"),
    },
    "PodsMetricSource": {
        1: ("metric", "MetricIdentifier", "k"), 2: ("target", "MetricTarget", "k"),
    },
    "ResourceMetricSource": {
        1: ("name", "string", "k"), 2: ("target", "MetricTarget", "k"),
    },
    "ContainerResourceMetricSource": {
        1: ("name", "string", "k"), 2: ("target", "MetricTarget", "k"),
        3: ("container", "string", "k"),
    },
    "ExternalMetricSource": {
        1: ("metric", "MetricIdentifier", "k"), 2: ("target", "MetricTarget", "k"),
    },
    "HPAScalingRules": {
        3: ("stabilizationWindowSeconds", "int32", "p"), 1: ("selectPolicy", "string", "p"),
        2: ("policies", "HPAScalingPolicy", "*"), 4: ("tolerance", "Quantity", "p"),
    },
    "ObjectMetricStatus": {
        1: ("metric", "MetricIdentifier", "k"), 2: ("current", "MetricValueStatus", "k"),
        3: ("describedObject", "CrossVersionObjectReference", "k"),
    },
    "PodsMetricStatus": {
        1: ("metric", "MetricIdentifier", "k"), 2: ("current", "MetricValueStatus", "k"),
    },
    "ResourceMetricStatus": {
        1: ("name", "string", "k"), 2: ("current", "MetricValueStatus", "k"),
    },
    "ContainerResourceMetricStatus": {
        1: ("name", "string", "k"), 2: ("current", "MetricValueStatus", "k"),
        3: ("container", "string", "k"),
    },
    "ExternalMetricStatus": {
        1: ("metric", "MetricIdentifier", "k"), 2: ("current", "MetricValueStatus", "k"),
    },
    "MetricTarget": {
        1: ("type", "string", "k"), 2: ("value", "Quantity", "p"),
        3: ("averageValue", "Quantity", "p"), 4: ("averageUtilization", "int32", "p"),
    },
    "MetricIdentifier": {
        1: ("name", "string", "k"), 2: ("selector", "LabelSelector", "p"),
    },
    "HPAScalingPolicy": {
        1: ("type", "string", "k"), 2: ("value", "int32", "k"), 3: ("periodSeconds", "int32", "k"),
    },
    "MetricValueStatus": {
        1: ("value", "Quantity", "p"), 2: ("averageValue", "Quantity", "p"),
        3: ("averageUtilization", "int32", "p"),
    },
}
# fmt: on
