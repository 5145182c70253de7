"""Session status as pure functions: phases, timestamps, conditions, timeouts.

The reconciler gathers facts (the session, what the backend observes, the time) and these
functions turn them into the next status; the reconciler writes it only if it changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from ambient_ctrl.conditions import find_condition, set_condition
from informers.clock import rfc3339

from .environment import Observation
from .resources import Phase

READY = "Ready"


def current_phase(session: Mapping[str, Any]) -> Phase:
    value = (session.get("status") or {}).get("phase")
    try:
        return Phase(value) if value else Phase.PENDING
    except ValueError:
        return Phase.PENDING


def parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def with_phase(status: Mapping[str, Any], phase: Phase, *, now: dt.datetime,
               stopped_reason: str = "") -> dict[str, Any]:
    """``status`` moved to ``phase``: startTime on the run's first Running, completionTime on
    a terminal phase, stoppedReason when stopped or failed."""
    out = dict(status)
    out["phase"] = phase.value
    if phase == Phase.RUNNING and not out.get("startTime"):
        out["startTime"] = rfc3339(now)
    if phase.terminal:
        out.setdefault("completionTime", rfc3339(now))
        if stopped_reason:
            out["stoppedReason"] = stopped_reason
    else:
        out.pop("completionTime", None)
        out.pop("stoppedReason", None)
    return out


MESSAGE_MAX = 8192
"""Characters a condition message may have; longer ones are cut. A message quotes user input
(a runtime id, a runner's output) of any length, and the API refuses a condition message over
32768 bytes — one status write refused for that would be retried forever. UTF-8 takes at most
4 bytes a character, so 8192 characters fit whatever the text."""


def with_condition(status: Mapping[str, Any], *, type: str, status_value: str, reason: str,
                   message: str, generation: int, now: dt.datetime) -> dict[str, Any]:
    """``status`` with the condition ``type`` set; every condition the operator writes goes
    through here, so this is where its message is bounded (:data:`MESSAGE_MAX`)."""
    out = dict(status)
    out["conditions"] = set_condition(status.get("conditions"), type=type, status=status_value,
                                      reason=reason, message=bounded(message),
                                      observed_generation=generation, now=rfc3339(now))
    return out


def bounded(message: str, limit: int = MESSAGE_MAX) -> str:
    """``message``, cut to at most ``limit`` characters (marked with an ellipsis)."""
    return message if len(message) <= limit else message[:limit - 3] + "..."


RESTART_REQUIRED = "RestartRequired"
_CHANGES_LISTED = 10


def with_restart_required(status: Mapping[str, Any], *, changed: Sequence[str],
                          generation: int, now: dt.datetime) -> dict[str, Any]:
    """``status`` with ``RestartRequired``: True (``ImmutableFieldsChanged``) naming the
    ``changed`` fields — where the live workload differs from what the session and its
    runtime render now, in fields that cannot change while it runs; the next run gets them.
    False (``UpToDate``) once nothing differs, and only if the condition is there: sessions
    that never needed a restart do not grow one."""
    if changed:
        listed = ", ".join(changed[:_CHANGES_LISTED])
        if len(changed) > _CHANGES_LISTED:
            listed += f" and {len(changed) - _CHANGES_LISTED} more"
        return with_condition(
            status, type=RESTART_REQUIRED, status_value="True", reason="ImmutableFieldsChanged",
            message=f"the runner differs from the session's spec or its runtime in fields that "
                    f"cannot change while it runs ({listed}); stop and restart the session to "
                    "apply them", generation=generation, now=now)
    if find_condition(status.get("conditions"), RESTART_REQUIRED) is None:
        return dict(status)
    return with_condition(status, type=RESTART_REQUIRED, status_value="False",
                          reason="UpToDate", message="the runner matches the session's spec "
                          "and its runtime", generation=generation, now=now)


DETAIL_BATCH = 5.0
"""Seconds after a condition of the session last flipped during which a change of progress
detail only waits for the next write (see :func:`write_delay`)."""


def write_delay(old: Mapping[str, Any], new: Mapping[str, Any], *,
                now: dt.datetime) -> float | None:
    """When to write ``new`` over the stored ``old`` status: None (they are equal), 0.0 (now)
    or the seconds to wait.

    Everything is written at once except progress detail — a condition's reason or message,
    or a new condition that is True (a new False or Unknown one is a problem to show) —
    within :data:`DETAIL_BATCH` seconds of the last flip of a condition: a runner pod that
    goes scheduled → started → ready in a second costs one write (the phase's), not one per
    step; detail still pending after the batch window is written then.
    """
    if new == old:
        return None
    if not _detail_only(old, new):
        return 0.0
    flips = [parse_time(c.get("lastTransitionTime")) for c in old.get("conditions") or ()]
    last = max((t for t in flips if t is not None), default=None)
    left = DETAIL_BATCH - (now - last).total_seconds() if last is not None else 0.0
    return max(left, 0.0)


def _detail_only(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    def rest(status: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in status.items() if k != "conditions"}

    if rest(old) != rest(new):
        return False
    before = {c.get("type"): c.get("status") for c in old.get("conditions") or ()}
    after = {c.get("type"): c.get("status") for c in new.get("conditions") or ()}
    return set(before) <= set(after) and all(
        value == before.get(kind, "True") for kind, value in after.items())


def restarted(status: Mapping[str, Any], *, now: dt.datetime) -> dict[str, Any]:
    """A fresh run, begun ``now``: phase Pending, run-specific fields cleared, runStartTime
    set; conditions are kept (their transition times stay meaningful) and re-evaluated by the
    next reconcile."""
    keep = ("conditions", "observedGeneration")
    return {**{k: v for k, v in status.items() if k in keep}, "phase": Phase.PENDING.value,
            "runStartTime": rfc3339(now)}


def with_run_start(status: Mapping[str, Any], *, created: Any) -> dict[str, Any]:
    """``status`` with ``runStartTime``, when the current run began: a restart sets it; the
    first run began when the session was created (``created``, its creationTimestamp), or, for
    a run that began before the field existed and is Running, at its startTime — its timeout
    was counted from there."""
    out = dict(status)
    if not out.get("runStartTime"):
        begun = out.get("startTime") or created
        if begun:
            out["runStartTime"] = begun
    return out


def run_start(status: Mapping[str, Any]) -> dt.datetime | None:
    """When the current run began (see :func:`with_run_start`); None if unknown."""
    return parse_time(status.get("runStartTime")) or parse_time(status.get("startTime"))


def next_phase(current: Phase, observation: Observation) -> tuple[Phase, str, str]:
    """(phase, reason, message) after observing the workload of an active session."""
    seen = observation.phase
    if seen is None:
        if current == Phase.RUNNING:
            return (Phase.FAILED, "WorkloadLost",
                    "the session's runner disappeared while the session was running")
        return Phase.CREATING, "CreatingWorkload", "creating the session's runner"
    if current == Phase.RUNNING and seen == Phase.CREATING:
        # Running sessions stay Running while the runner is briefly unready; Ready tells.
        return Phase.RUNNING, observation.reason or "RunnerNotReady", observation.message
    return seen, observation.reason, observation.message


def deadline_passed(session: Mapping[str, Any], *, now: dt.datetime) -> tuple[str, float]:
    """Which timeout ended the session's run — ("Timeout", 0.0) or ("InactivityTimeout", 0.0)
    — or ("", the seconds until the nearest one; inf when none applies).

    ``spec.timeout`` counts from the start of the run (``runStartTime``), whatever the phase:
    a run stuck Creating (an unschedulable pod) times out like a Running one. The inactivity
    timeout counts from the later of Running (``startTime``) and the last activity: a run
    that is not Running yet cannot be idle.
    """
    spec = session.get("spec") or {}
    status = session.get("status") or {}
    remaining = float("inf")
    begun = run_start(status)
    timeout = int(spec.get("timeout") or 0)
    if timeout and begun is not None:
        left = timeout - (now - begun).total_seconds()
        if left <= 0:
            return "Timeout", 0.0
        remaining = min(remaining, left)
    started = parse_time(status.get("startTime"))
    idle_limit = int(spec.get("inactivityTimeout") or 0)
    if idle_limit and started is not None:
        annotations = (session.get("metadata") or {}).get("annotations") or {}
        last = parse_time(annotations.get(LAST_ACTIVITY_ANNOTATION)) or started
        left = idle_limit - (now - max(last, started)).total_seconds()
        if left <= 0:
            return "InactivityTimeout", 0.0
        remaining = min(remaining, left)
    return "", remaining


LAST_ACTIVITY_ANNOTATION = "ambient-code.io/last-activity"
"""RFC 3339 time of the session's last activity, written by the runner (or the UI)."""
