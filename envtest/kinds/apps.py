"""apps/v1 (Deployment, StatefulSet, DaemonSet, ReplicaSet) and core/v1 ReplicationController:
defaulting and validation as kube-apiserver's.

Defaults from kube's ``pkg/apis/apps/v1/defaults.go`` and ``pkg/apis/core/v1/defaults.go``:
a Deployment gets ``replicas: 1``, a RollingUpdate strategy of 25% / 25%,
``revisionHistoryLimit: 10`` and ``progressDeadlineSeconds: 600``; a StatefulSet
``OrderedReady`` pods, a RollingUpdate strategy with partition 0, a Retain/Retain claim
retention policy, its claim templates' ``volumeMode``; a DaemonSet a RollingUpdate strategy
of maxUnavailable 1, maxSurge 0; every template the pod-spec defaults (:mod:`.podspecs`).
A ReplicationController takes its selector and labels from its template's labels when it has
none. On create the status starts over, as the strategies' PrepareForCreate do; selectors
are immutable (apps/v1), a StatefulSet's spec but for its mutable fields too.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from envtest.errors import Cause
from envtest.kinds import podspecs
from envtest.kinds.strategy import Object, Strategy, child, fresh_status, immutable
from envtest.kinds.workloads import (
    default_template_at,
    non_negative,
    one_of,
    selector_causes,
    template_causes,
)

_ALWAYS = ("Always",)


def _spec(obj: Object) -> Object:
    return child(obj, "spec") or {}


# Deployment ----------------------------------------------------------------------------------
def _default_deployment(obj: Object) -> None:
    spec = _spec(obj)
    spec.setdefault("replicas", 1)
    strategy = child(spec, "strategy")
    if strategy is not None:
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = child(strategy, "rollingUpdate")
            if rolling is not None:
                rolling.setdefault("maxUnavailable", "25%")
                rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    default_template_at(obj, "spec", "template")


def _validate_deployment(obj: Object) -> list[Cause]:
    spec = obj.get("spec")
    causes = selector_causes(spec, "spec", "deployment") + template_causes(
        spec, "spec", _ALWAYS)
    causes += non_negative(obj, "spec.replicas", "spec.minReadySeconds",
                           "spec.revisionHistoryLimit", "spec.progressDeadlineSeconds")
    causes += one_of(obj, "spec.strategy.type", ("Recreate", "RollingUpdate"))
    strategy = (spec or {}).get("strategy") if isinstance(spec, dict) else None
    if isinstance(strategy, dict) and strategy.get("type") == "Recreate" and strategy.get(
            "rollingUpdate") is not None:
        causes.append(Cause("spec.strategy.rollingUpdate", "Forbidden: may not be specified "
                            "when strategy `type` is 'Recreate'", "FieldValueForbidden"))
    return causes


# StatefulSet ---------------------------------------------------------------------------------
def _default_stateful_set(obj: Object) -> None:
    spec = _spec(obj)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = child(spec, "updateStrategy")
    if strategy is not None:
        if "type" not in strategy:
            strategy["type"] = "RollingUpdate"
            strategy.setdefault("rollingUpdate", {})
        rolling = strategy.get("rollingUpdate")
        if strategy["type"] == "RollingUpdate" and isinstance(rolling, dict):
            rolling.setdefault("partition", 0)
    retention = child(spec, "persistentVolumeClaimRetentionPolicy")
    if retention is not None:
        retention.setdefault("whenDeleted", "Retain")
        retention.setdefault("whenScaled", "Retain")
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    default_template_at(obj, "spec", "template")
    for claim in spec.get("volumeClaimTemplates") or ():
        if isinstance(claim, dict):
            # Each template is a whole PersistentVolumeClaim: typed, defaulted, Pending.
            claim.setdefault("apiVersion", "v1")
            claim.setdefault("kind", "PersistentVolumeClaim")
            claim_spec = child(claim, "spec")
            if claim_spec is not None:
                podspecs.default_claim_spec(claim_spec)
            status = child(claim, "status")
            if status is not None:
                status.setdefault("phase", "Pending")


def _validate_stateful_set(obj: Object) -> list[Cause]:
    spec = obj.get("spec")
    causes = selector_causes(spec, "spec", "statefulset") + template_causes(
        spec, "spec", _ALWAYS)
    causes += non_negative(obj, "spec.replicas", "spec.minReadySeconds",
                           "spec.revisionHistoryLimit", "spec.ordinals.start",
                           "spec.updateStrategy.rollingUpdate.partition")
    causes += one_of(obj, "spec.podManagementPolicy", ("OrderedReady", "Parallel"))
    causes += one_of(obj, "spec.updateStrategy.type", ("RollingUpdate", "OnDelete"))
    for when in ("whenDeleted", "whenScaled"):
        causes += one_of(obj, f"spec.persistentVolumeClaimRetentionPolicy.{when}",
                         ("Retain", "Delete"))
    return causes


_STATEFUL_SET_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy",
                         "revisionHistoryLimit", "persistentVolumeClaimRetentionPolicy",
                         "minReadySeconds")


def _update_stateful_set(new: Object, old: Object) -> list[Cause]:
    def fixed(obj: Object) -> dict[str, Any]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return {}
        return {k: v for k, v in spec.items() if k not in _STATEFUL_SET_MUTABLE}

    if fixed(new) != fixed(old):
        return [Cause("spec", "Forbidden: updates to statefulset spec for fields other than "
                      "'replicas', 'ordinals', 'template', 'updateStrategy', "
                      "'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
                      "'minReadySeconds' are forbidden", "FieldValueForbidden")]
    return []


# DaemonSet -----------------------------------------------------------------------------------
def _default_daemon_set(obj: Object) -> None:
    spec = _spec(obj)
    strategy = child(spec, "updateStrategy")
    if strategy is not None:
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = child(strategy, "rollingUpdate")
            if rolling is not None:
                rolling.setdefault("maxUnavailable", 1)
                rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    default_template_at(obj, "spec", "template")


def _validate_daemon_set(obj: Object) -> list[Cause]:
    spec = obj.get("spec")
    causes = selector_causes(spec, "spec", "daemonset") + template_causes(
        spec, "spec", _ALWAYS)
    causes += non_negative(obj, "spec.minReadySeconds", "spec.revisionHistoryLimit")
    return causes + one_of(obj, "spec.updateStrategy.type", ("RollingUpdate", "OnDelete"))


# ReplicaSet and ReplicationController --------------------------------------------------------
def _default_replica_set(obj: Object) -> None:
    _spec(obj).setdefault("replicas", 1)
    default_template_at(obj, "spec", "template")


def _validate_replica_set(obj: Object) -> list[Cause]:
    spec = obj.get("spec")
    causes = selector_causes(spec, "spec", "replicaset") + template_causes(
        spec, "spec", _ALWAYS)
    return causes + non_negative(obj, "spec.replicas", "spec.minReadySeconds")


def _default_replication_controller(obj: Object) -> None:
    spec = _spec(obj)
    template = spec.get("template")
    labels = (template.get("metadata") or {}).get("labels") if isinstance(
        template, dict) else None
    if isinstance(labels, dict) and labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = obj.setdefault("metadata", {})
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    spec.setdefault("replicas", 1)
    default_template_at(obj, "spec", "template")


def _validate_replication_controller(obj: Object) -> list[Cause]:
    spec = obj.get("spec")
    # A map selector (core/v1), not a LabelSelector: the same check, written as one.
    selector = spec.get("selector") if isinstance(spec, dict) else None
    as_labels = dict(spec, selector={"matchLabels": selector} if isinstance(
        selector, dict) else selector) if isinstance(spec, dict) else spec
    causes = selector_causes(as_labels, "spec", "replicationcontroller")
    causes += template_causes(spec, "spec", _ALWAYS)
    return causes + non_negative(obj, "spec.replicas", "spec.minReadySeconds")


def _selector_immutable(new: Object, old: Object) -> list[Cause]:
    return immutable(new, old, "spec.selector")


STRATEGIES: Mapping[str, Strategy] = MappingProxyType({
    "deployments.apps": Strategy(_default_deployment, fresh_status(), _validate_deployment,
                                 _selector_immutable),
    "statefulsets.apps": Strategy(
        _default_stateful_set, fresh_status(replicas=0, availableReplicas=0),
        _validate_stateful_set,
        lambda new, old: _selector_immutable(new, old) or _update_stateful_set(new, old)),
    "daemonsets.apps": Strategy(
        _default_daemon_set,
        fresh_status(currentNumberScheduled=0, numberMisscheduled=0,
                      desiredNumberScheduled=0, numberReady=0),
        _validate_daemon_set, _selector_immutable),
    "replicasets.apps": Strategy(_default_replica_set, fresh_status(replicas=0),
                                 _validate_replica_set, _selector_immutable),
    "replicationcontrollers": Strategy(_default_replication_controller,
                                       fresh_status(replicas=0),
                                       _validate_replication_controller),
})
"""group-resource -> strategy."""
