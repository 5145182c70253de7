"""Table columns of the workload kinds, as kube-apiserver's printers have them: Deployments,
StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs and CronJobs (``-o wide``
adds each template's containers and images, and the selector).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envtest.printing.cells import AGE, Row, age, col, format_labels, get, join_or
from foundation.selectors import SelectorError, label_selector_from_dict

_WIDE = [col("Containers", priority=1), col("Images", priority=1)]
_SELECTOR = col("Selector", priority=1)


def _template_cells(template: Any) -> list[str]:
    containers = [c for c in get(template, "spec.containers") or () if isinstance(c, Mapping)]
    return [join_or([c.get("name", "") for c in containers], ""),
            join_or([c.get("image", "") for c in containers], "")]


def _selector(selector: Any) -> str:
    """``LabelSelectorAsSelector(...).String()``: empty for none, ``<error>`` when invalid."""
    try:
        return str(label_selector_from_dict(selector)) if selector is not None else ""
    except SelectorError:
        return "<error>"


def _wide(obj: Mapping[str, Any], *, selector: bool = True) -> list[str]:
    cells = _template_cells(get(obj, "spec.template"))
    return [*cells, _selector(get(obj, "spec.selector"))] if selector else cells


def _int(obj: Mapping[str, Any], path: str) -> int:
    value = get(obj, path)
    return value if isinstance(value, int) else 0


def _deployment(obj: Mapping[str, Any]) -> list[Any]:
    return [f"{_int(obj, 'status.readyReplicas')}/{_int(obj, 'spec.replicas')}",
            _int(obj, "status.updatedReplicas"), _int(obj, "status.availableReplicas"),
            age(obj), *_wide(obj)]


def _replica_set(obj: Mapping[str, Any]) -> list[Any]:
    return [_int(obj, "spec.replicas"), _int(obj, "status.replicas"),
            _int(obj, "status.readyReplicas"), age(obj), *_wide(obj)]


def _replication_controller(obj: Mapping[str, Any]) -> list[Any]:
    return [_int(obj, "spec.replicas"), _int(obj, "status.replicas"),
            _int(obj, "status.readyReplicas"), age(obj),
            *_template_cells(get(obj, "spec.template")), format_labels(get(obj, "spec.selector"))]


def _stateful_set(obj: Mapping[str, Any]) -> list[Any]:
    return [f"{_int(obj, 'status.readyReplicas')}/{_int(obj, 'spec.replicas')}", age(obj),
            *_wide(obj, selector=False)]


def _daemon_set(obj: Mapping[str, Any]) -> list[Any]:
    return [_int(obj, "status.desiredNumberScheduled"),
            _int(obj, "status.currentNumberScheduled"), _int(obj, "status.numberReady"),
            _int(obj, "status.updatedNumberScheduled"), _int(obj, "status.numberAvailable"),
            format_labels(get(obj, "spec.template.spec.nodeSelector")), age(obj), *_wide(obj)]


def _has_condition(obj: Mapping[str, Any], kind: str) -> bool:
    return any(isinstance(c, Mapping) and c.get("type") == kind and c.get("status") == "True"
               for c in get(obj, "status.conditions") or ())


_JOB_STATES = ("Complete", "Failed", "Terminating", "Suspended", "FailureTarget",
               "SuccessCriteriaMet")


def job_status(obj: Mapping[str, Any]) -> str:
    """kube's STATUS of a Job: its first finished or pending condition, else Running."""
    for state in _JOB_STATES:
        if state == "Terminating":
            if get(obj, "metadata.deletionTimestamp"):
                return state
        elif _has_condition(obj, state):
            return state
    return "Running"


def _completions(obj: Mapping[str, Any]) -> str:
    succeeded = _int(obj, "status.succeeded")
    completions = get(obj, "spec.completions")
    if isinstance(completions, int):
        return f"{succeeded}/{completions}"
    parallelism = _int(obj, "spec.parallelism")
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _duration(obj: Mapping[str, Any]) -> Any:
    """Start to completion, or start to now while running (rendered as an age)."""
    start, end = get(obj, "status.startTime"), get(obj, "status.completionTime")
    if not start:
        return ""
    return {"start": start, "end": end}


def _job(obj: Mapping[str, Any]) -> list[Any]:
    return [job_status(obj), _completions(obj), _duration(obj), age(obj), *_wide(obj)]


def _bool(value: Any) -> str:
    return "<unset>" if value is None else str(bool(value))


def _cron_job(obj: Mapping[str, Any]) -> list[Any]:
    template = get(obj, "spec.jobTemplate.spec.template")
    last = get(obj, "status.lastScheduleTime")
    return [get(obj, "spec.schedule") or "", get(obj, "spec.timeZone") or "<none>",
            _bool(get(obj, "spec.suspend")), len(get(obj, "status.active") or ()),
            {"start": last, "end": None} if last else "<none>", age(obj),
            *_template_cells(template), _selector(get(obj, "spec.jobTemplate.spec.selector"))]


_REPLICAS = [col("Desired", "integer"), col("Current", "integer"), col("Ready", "integer"), AGE,
             *_WIDE, _SELECTOR]

COLUMNS: Mapping[str, tuple[list[dict[str, Any]], Row]] = {
    "deployments.apps": ([col("Ready"), col("Up-to-date", "integer"),
                          col("Available", "integer"), AGE, *_WIDE, _SELECTOR], _deployment),
    "replicasets.apps": (_REPLICAS, _replica_set),
    "replicationcontrollers": (_REPLICAS, _replication_controller),
    "statefulsets.apps": ([col("Ready"), AGE, *_WIDE], _stateful_set),
    "daemonsets.apps": ([col("Desired", "integer"), col("Current", "integer"),
                         col("Ready", "integer"), col("Up-to-date", "integer"),
                         col("Available", "integer"), col("Node Selector"), AGE, *_WIDE,
                         _SELECTOR], _daemon_set),
    "jobs.batch": ([col("Status"), col("Completions"), col("Duration", "duration"), AGE, *_WIDE,
                    _SELECTOR], _job),
    "cronjobs.batch": ([col("Schedule"), col("Timezone"), col("Suspend", "boolean"),
                        col("Active", "integer"), col("Last Schedule", "duration"), AGE,
                        *_WIDE, _SELECTOR], _cron_job),
}
"""group-resource -> (columns after Name, the row's cells after the name)."""
