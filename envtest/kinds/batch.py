"""batch/v1 (Job, CronJob): defaulting and validation as kube-apiserver's.

Defaults from kube's ``pkg/apis/batch/v1/defaults.go``: a Job without completions and
parallelism gets 1 of each (parallelism 1 alone otherwise), ``backoffLimit: 6`` (the largest
int32 with ``backoffLimitPerIndex``), ``completionMode: NonIndexed``, ``suspend: false``,
``podReplacementPolicy: TerminatingOrFailed`` (``Failed`` with a pod failure policy), pod
failure policy patterns ``status: "True"``, its template's labels as its own when it has
none; a CronJob ``concurrencyPolicy: Allow``, ``suspend: false`` and history limits 3 and 1.
The Job strategy generates the selector (``batch.kubernetes.io/controller-uid`` of the Job's
uid) and labels the template with it and the job name unless ``manualSelector`` is set; a
Job's selector, completions and template (unless suspended) are immutable. A CronJob's
schedule is checked for cron's shape (five fields or a ``@`` descriptor), not parsed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from envtest.errors import Cause
from envtest.kinds.strategy import Object, Strategy, child, fresh_status, immutable, lookup
from envtest.kinds.workloads import (
    default_template_at,
    non_negative,
    one_of,
    selector_causes,
    template_causes,
)

_JOB_RESTART = ("OnFailure", "Never")
_MAX_INT32 = 2**31 - 1
_CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
_JOB_NAME = "batch.kubernetes.io/job-name"
_CRON_FIELD = re.compile(r"[0-9A-Za-z*?,/\-LW#]+")
_DURATION = re.compile(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+")
_CRON_DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily",
                               "@midnight", "@hourly"})
_CRON_JOB_NAME_MAX = 52
"""A CronJob's Jobs are named ``<cronjob>-<11 digits>``, which must fit in 63 characters."""


# Job -----------------------------------------------------------------------------------------
def _default_job_spec(spec: Object) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = _MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    policy = spec.get("podFailurePolicy")
    if isinstance(policy, dict):
        for rule in policy.get("rules") or ():
            for pattern in (rule.get("onPodConditions") or ()) if isinstance(rule, dict) else ():
                if isinstance(pattern, dict):
                    pattern.setdefault("status", "True")
    spec.setdefault("podReplacementPolicy",
                    "Failed" if spec.get("podFailurePolicy") is not None else
                    "TerminatingOrFailed")


def _default_job(obj: Object) -> None:
    spec = child(obj, "spec")
    if spec is None:
        return
    _default_job_spec(spec)
    default_template_at(obj, "spec", "template")
    _labels_from_template(obj)


def _labels_from_template(obj: Object) -> None:
    labels = lookup(obj, "spec.template.metadata.labels")
    meta = obj.setdefault("metadata", {})
    if isinstance(labels, dict) and labels and not meta.get("labels"):
        meta["labels"] = dict(labels)


def _prepare_job(obj: Object) -> None:
    """The strategy's create: a fresh status, and the selector generated for the Job's uid."""
    fresh_status()(obj)
    spec = obj.get("spec")
    if not isinstance(spec, dict) or spec.get("manualSelector") is True:
        return
    meta = obj["metadata"]
    uid, name = meta["uid"], meta["name"]
    template_meta = child(spec, "template", "metadata")
    if template_meta is None:
        return
    labels = template_meta.setdefault("labels", {})
    if isinstance(labels, dict):
        # The legacy keys too, as kube still writes them (pods are selected by either).
        for key, value in ((_CONTROLLER_UID, uid), (_JOB_NAME, name), ("controller-uid", uid),
                           ("job-name", name)):
            labels.setdefault(key, value)
    selector = spec.get("selector")
    if selector is None:
        selector = spec["selector"] = {}
    if isinstance(selector, dict):
        match = selector.setdefault("matchLabels", {})
        if isinstance(match, dict):
            match.setdefault(_CONTROLLER_UID, uid)
    _labels_from_template(obj)


def _validate_job_spec(spec: Any, prefix: str, *, generated: bool) -> list[Cause]:
    causes = template_causes(spec, prefix, _JOB_RESTART)
    if generated:
        causes += selector_causes(spec, prefix, "job")
    holder = {"spec": spec}
    causes += non_negative(holder, *(f"spec.{f}" for f in (
        "parallelism", "completions", "backoffLimit", "activeDeadlineSeconds",
        "ttlSecondsAfterFinished", "backoffLimitPerIndex", "maxFailedIndexes")))
    causes += one_of(holder, "spec.completionMode", ("NonIndexed", "Indexed"))
    causes += one_of(holder, "spec.podReplacementPolicy", ("TerminatingOrFailed", "Failed"))
    return [Cause(c.field.replace("spec", prefix, 1), c.message, c.reason)
            if c.field.startswith("spec.") else c for c in causes]


def _validate_job(obj: Object) -> list[Cause]:
    return _validate_job_spec(obj.get("spec"), "spec", generated=True)


def _update_job(new: Object, old: Object) -> list[Cause]:
    causes = immutable(new, old, "spec.selector", "spec.completions")
    if lookup(old, "spec.suspend") is not True:
        causes += immutable(new, old, "spec.template")
    return causes


# CronJob -------------------------------------------------------------------------------------
def _default_cron_job(obj: Object) -> None:
    spec = child(obj, "spec")
    if spec is None:
        return
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_spec = child(spec, "jobTemplate", "spec")
    if job_spec is not None:
        _default_job_spec(job_spec)
        default_template_at(obj, "spec", "jobTemplate", "spec", "template")


def schedule_causes(schedule: Any) -> list[Cause]:
    """A cron schedule's shape: five fields, or a descriptor (``@hourly``, ``@every 5m``)."""
    if not isinstance(schedule, str) or not schedule.strip():
        return [Cause("spec.schedule", "Required value", "FieldValueRequired")]
    if re.search(r"\b(CRON_)?TZ=", schedule):
        return [Cause("spec.schedule", f'Invalid value: "{schedule}": cannot use TZ or '
                      "CRON_TZ in schedule, use timeZone field instead")]
    fields = schedule.split()
    if fields[0] in _CRON_DESCRIPTORS and len(fields) == 1:
        return []
    if fields[0] == "@every" and len(fields) == 2 and _DURATION.fullmatch(fields[1]):
        return []
    if len(fields) == 5 and all(_CRON_FIELD.fullmatch(f) for f in fields):
        return []
    return [Cause("spec.schedule", f'Invalid value: "{schedule}": unparseable schedule: '
                  "expected exactly 5 fields")]


def _validate_cron_job(obj: Object) -> list[Cause]:
    causes = schedule_causes(lookup(obj, "spec.schedule"))
    name = lookup(obj, "metadata.name")
    if isinstance(name, str) and len(name) > _CRON_JOB_NAME_MAX:
        causes.append(Cause("metadata.name", f'Invalid value: "{name}": must be no more '
                            f"than {_CRON_JOB_NAME_MAX} characters"))
    causes += one_of(obj, "spec.concurrencyPolicy", ("Allow", "Forbid", "Replace"))
    causes += non_negative(obj, "spec.startingDeadlineSeconds",
                           "spec.successfulJobsHistoryLimit", "spec.failedJobsHistoryLimit")
    job_spec = lookup(obj, "spec.jobTemplate.spec")
    if not isinstance(job_spec, dict):
        return [*causes, Cause("spec.jobTemplate.spec", "Required value", "FieldValueRequired")]
    # The selector is the Jobs' own to generate: a template that sets one is not checked here.
    return causes + _validate_job_spec(job_spec, "spec.jobTemplate.spec", generated=False)


STRATEGIES: Mapping[str, Strategy] = MappingProxyType({
    "jobs.batch": Strategy(_default_job, _prepare_job, _validate_job, _update_job),
    "cronjobs.batch": Strategy(_default_cron_job, fresh_status(), _validate_cron_job),
})
"""group-resource -> strategy."""
