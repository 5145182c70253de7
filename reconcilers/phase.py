"""The session's phase machine: upstream's transition table as one pure function.

:func:`next_step` takes the session as the cache shows it, what the reconciler observed of the
world (:class:`~.phasetypes.World`) and the time, and returns a :class:`~.phasetypes.Step`:
the phase and status to write, the intent annotations to clear or set, and what to do (start
the run, delete the workload, refresh the runner's token, ...). It does no I/O. An action whose
outcome changes the verdict — starting a run, which may find the token refused or the workload
invalid — is fed back as ``World.started`` and the function is asked again. Those inputs and
outputs are plain data in :mod:`.phasetypes`; this module holds the machine itself: the
table's rows by phase, and the transitions they share (upstream's helpers).

The table (``shared/UPSTREAM-CONTRACT.md`` §3.2; D is the ``desired-phase`` annotation):

===========  =====================================================  ==========================
From         When                                                   Then
===========  =====================================================  ==========================
(no status)  first reconcile                                        Pending, startTime; on
Pending      D=Stopped                                              Stopped (a workload left
                                                                    over is deleted first)
Pending      Vertex on, its Secret missing                          Failed VertexSecretMissing
Pending      workload exists                                        Creating PodExists; clear D
Pending      bad input (registry, runtime, names, resources)        Ready=False <reason>; no
                                                                    retry until it changes
Pending      Vertex off, ambient-runner-secrets missing             SecretsReady=False
                                                                    RunnerSecretMissing; wait
Pending      otherwise                                              start: token, workload,
                                                                    Service, NetworkPolicy
Pending      started                                                Creating PodCreated; clear
                                                                    D, force-execute-prompt
Pending      token refused / workload refused                       Failed TokenProvisionFailed
                                                                    / Pending PodCreationFailed
Creating     D=Stopped (workload or not)                            Stopping / Stopped
Creating     workload gone                                          Pending (ResetToPending)
Creating     runner running                                         Running
Creating     runner or Pod succeeded / failed                       Completed / Failed; delete
Running      workload gone (or lost: evicted, stopped)              Pending, IS_RESUME next
Running      D=Stopped                                              Stopping: delete workload
Running      runner exited or failed (upstream misses it)           Completed / Failed
Running      repos/workflow drifted (or workflow not applied yet)   ask the runner (§4.15)
Running      token older than 45 min                                refresh k8s-token
Running      idle past the inactivity timeout                       set D=Stopped, stop-reason
                                                                    inactivity
Stopping     workload gone                                          Stopped
Stopped,     D=Running                                              Pending (ResetToPending)
Completed,
Failed
===========  =====================================================  ==========================

The first reconcile continues as Pending in the same pass; a reset is written as upstream
writes it (Pending, a new startTime) and the next pass, at once, starts the new run.
Differences from upstream, each invisible to its backend, runner and frontend: Stop is
honoured while Creating; a runner that ends while Running is noticed; a desired-phase=Running
that is already fulfilled (Creating, Running) is cleared, so a later completion does not
restart the session by itself; a transient error while provisioning the token is retried
instead of failing the session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from . import live
from .environment import Observation
from .phasetypes import BadInput, Event, StartFailure, Step, World
from .resources import (
    DESIRED_PHASE,
    FORCE_EXECUTE_PROMPT,
    STOP_REASON,
    STOP_REQUESTED_AT,
    Phase,
)
from .status import (
    INTEGRATION_SECRETS_READY,
    POD_CREATED,
    POD_SCHEDULED,
    READY,
    RUNNER_STARTED,
    S3_AVAILABLE,
    SECRETS_READY,
    now_text,
    parse_time,
    upsert,
    with_reconciled_repos,
)

TOKEN_REFRESH = dt.timedelta(minutes=45)
"""How old a live run's ``k8s-token`` may get before it is refreshed (upstream's 45 minutes,
``shared/UPSTREAM-CONTRACT.md`` §4.11)."""
MAX_WAIT = 86400.0
"""The longest requeue: a deadline further away is looked at again after a day (a huge
timeout must never overflow a timer)."""
READY_RECHECK = 2.0
"""Seconds between looks at a runner a live reconfiguration waits for. Polled, not woken: a
runner Pod's readiness is not news to its session (``pod.worth_a_pass``), as only this rare
wait reads it — every session's start would otherwise pay a pass for it."""


def next_step(session: Mapping[str, Any], world: World, *, now: dt.datetime) -> Step:
    """The next step for ``session`` (see the module's table)."""
    status = dict(session.get("status") or {})
    annotations = dict((session.get("metadata") or {}).get("annotations") or {})
    step = Step(_phase(status), status)
    if not status.get("phase"):
        step = Step(Phase.PENDING, {**status, "phase": Phase.PENDING.value,
                                    "startTime": _first_start(session, status, world, now)})
    return _HANDLERS[step.phase](session, annotations, world, step, now)


def _first_start(session: Mapping[str, Any], status: Mapping[str, Any], world: World,
                 now: dt.datetime) -> str:
    """``startTime`` of a session's first run: now, unless a workload of the session exists
    already (a pass that made it lost its status write): its run's, or — while the cache
    cannot say which run it is for (created a moment ago; only a VM's instance seen yet) —
    the session's creation, which no run of it precedes."""
    adopted = _adopted(status, world)
    if adopted is not None:
        return adopted
    created = (session.get("metadata") or {}).get("creationTimestamp")
    if world.workload.exists and world.workload.run_started is None and parse_time(created):
        return str(created)
    return now_text(now)


def _older(run: str | None, recorded: str | None) -> bool:
    """Whether a workload's run began before the run the status records (a leftover)."""
    began, current = parse_time(run), parse_time(recorded)
    return began is not None and current is not None and began < current


def _adopted(status: Mapping[str, Any], world: World) -> str | None:
    """The run a live workload was made for (its ``startTime`` annotation) when it is newer
    than the run the status records: a run this operator started whose status write was lost
    (a failed patch, a restart). Such a workload is the run's, adopted rather than replaced
    (replacing it would delete a runner that works, and the Service it owns)."""
    workload = world.workload
    run = workload.run_started
    if not workload.exists or workload.terminating or workload.state == "lost" or not run \
            or run == status.get("startTime"):
        return None
    started, recorded = parse_time(run), parse_time(status.get("startTime"))
    if started is None or (recorded is not None and started <= recorded):
        return None
    return run


def _phase(status: Mapping[str, Any]) -> Phase:
    try:
        return Phase(status.get("phase") or Phase.PENDING.value)
    except ValueError:
        return Phase.PENDING


def _desired(annotations: Mapping[str, str]) -> str:
    return str(annotations.get(DESIRED_PHASE) or "").strip()


# phases ------------------------------------------------------------------------------------
def _pending(session: Mapping[str, Any], annotations: Mapping[str, str], world: World,
             step: Step, now: dt.datetime) -> Step:
    status = step.status
    workload = world.workload
    if _desired(annotations) == Phase.STOPPED:
        if workload.exists:
            return _initiate_stop(step, now, workload)
        return _to_stopped(step, annotations, now)
    if world.vertex_missing:
        conditions = upsert(status.get("conditions"), SECRETS_READY, "False",
                            reason="VertexSecretMissing", message=world.vertex_missing, now=now)
        conditions = upsert(conditions, READY, "False", reason="VertexSecretMissing",
                            message="Vertex AI enabled but ambient-vertex secret not found",
                            now=now)
        return _with(step, Phase.FAILED, {**status, "phase": Phase.FAILED.value,
                                          "conditions": conditions},
                     events=(Event("Warning", "VertexSecretMissing", world.vertex_missing),))
    if workload.exists and world.started is None:
        stale = _older(workload.run_started, status.get("startTime"))
        if workload.terminating or workload.state == "lost" or stale:
            # A workload of an earlier run: the new one waits until it is gone.
            return replace(step, delete_workload=not workload.terminating)
        return _created(session, annotations, world, step, now, existed=True)
    if world.bad_input is not None:
        bad = world.bad_input
        conditions = upsert(status.get("conditions"), READY, "False", reason=bad.reason,
                            message=bad.message, now=now)
        return replace(step, status={**status, "conditions": conditions}, permanent=bad,
                       events=(Event("Warning", bad.reason, bad.message),))
    if not world.runner_secret:
        message = "Secret ambient-runner-secrets missing"
        conditions = upsert(status.get("conditions"), SECRETS_READY, "False",
                            reason="RunnerSecretMissing", message=message, now=now)
        return replace(step, status={**status, "conditions": conditions},
                       events=(Event("Warning", "RunnerSecretMissing",
                                     f"{message}: the session starts once it exists"),))
    started = world.started
    if started is None:
        return replace(step, start=True)
    if started.failure is not None:
        return _start_failed(step, started.failure, now)
    return _created(session, annotations, world, step, now, existed=started.existed)


def _start_failed(step: Step, failure: StartFailure, now: dt.datetime) -> Step:
    status = step.status
    if failure.stage == "token":
        message = f"Failed to provision runner token: {failure.message}"
        conditions = upsert(status.get("conditions"), READY, "False",
                            reason="TokenProvisionFailed", message=message, now=now)
        if failure.permanent:
            return _with(step, Phase.FAILED, {**status, "phase": Phase.FAILED.value,
                                              "conditions": conditions},
                         events=(Event("Warning", "TokenProvisionFailed", message),))
        return replace(step, status={**status, "conditions": conditions}, retry=True)
    conditions = upsert(status.get("conditions"), POD_CREATED, "False", reason="CreateFailed",
                        message=failure.message, now=now)
    upstreams = failure.reason == "PodCreationFailed"
    conditions = upsert(conditions, READY, "False", reason=failure.reason,
                        message="Runner pod creation failed" if upstreams  # upstream's words
                        else failure.message, now=now)
    changed = replace(step, status={**status, "conditions": conditions},
                      events=(Event("Warning", failure.reason, failure.message),))
    if failure.permanent:
        return replace(changed, permanent=BadInput(failure.reason, failure.message))
    return replace(changed, retry=True)


def _created(session: Mapping[str, Any], annotations: Mapping[str, str], world: World,
             step: Step, now: dt.datetime, *, existed: bool) -> Step:
    """Pending → Creating: the workload was created (or found)."""
    status = {**step.status, **world.run_fields, "phase": Phase.CREATING.value,
              "observedGeneration": int((session.get("metadata") or {}).get("generation", 1))}
    conditions = status.get("conditions")
    if existed:
        conditions = upsert(conditions, POD_CREATED, "True", reason="PodExists",
                            message=f"Runner {world.workload_noun} already exists", now=now)
    else:
        conditions = upsert(conditions, POD_CREATED, "True", reason="PodCreated",
                            message=f"Runner {world.workload_noun} created", now=now)
        conditions = upsert(conditions, SECRETS_READY, "True",
                            reason="AllRequiredSecretsFound", message="Runner secret available",
                            now=now)
        if world.integrations:
            conditions = upsert(conditions, INTEGRATION_SECRETS_READY, "True",
                                reason="OptionalSecretFound",
                                message="Secret ambient-non-vertex-integrations present",
                                now=now)
        conditions = upsert(conditions, S3_AVAILABLE, "True" if world.s3_available else "False",
                            reason="Configured" if world.s3_available else "NotConfigured",
                            message=world.s3_message, now=now)
    status["conditions"] = conditions
    if not existed:
        status = with_reconciled_repos(status, session.get("spec") or {}, now=now)
    clear = (DESIRED_PHASE, FORCE_EXECUTE_PROMPT) if not existed else (DESIRED_PHASE,)
    created = _with(step, Phase.CREATING, status,
                    clear=tuple(k for k in clear if k in annotations))
    if existed and world.workload.exists:
        # Found, not made: it may be running already, and no event will say so again.
        return _creating(session, annotations, world, created, now)
    return created


def _creating(session: Mapping[str, Any], annotations: Mapping[str, str], world: World,
              step: Step, now: dt.datetime) -> Step:
    workload = world.workload
    desired = _desired(annotations)
    if desired == Phase.STOPPED:
        if not workload.exists:
            return _to_stopped(step, annotations, now)
        return _initiate_stop(step, now, workload)
    if not workload.exists:
        return _reset_to_pending(step, annotations, now)
    step = _clear_fulfilled(step, annotations)
    if workload.terminating:
        return step
    if workload.state == "lost":
        return replace(step, delete_workload=True)
    if workload.scheduled is not None:
        scheduled = workload.scheduled
        step = replace(step, status={**step.status, "conditions": upsert(
            step.status.get("conditions"), POD_SCHEDULED, scheduled["status"],
            reason=scheduled.get("reason", ""), message=scheduled.get("message", ""),
            now=now)})
    if workload.state in ("succeeded", "failed"):
        return _ended(step, workload, now)
    if workload.state == "running":
        conditions = upsert(step.status.get("conditions"), RUNNER_STARTED, "True",
                            reason="ContainerRunning", message=workload.message or
                            "Runner container is executing", now=now)
        conditions = upsert(conditions, READY, "True", reason="Running",
                            message="Session is running", now=now)
        status = {**step.status, "conditions": conditions}
        if world.endpoint:
            status["endpoint"] = world.endpoint
        return _running(session, annotations, world,
                        _with(step, Phase.RUNNING, status), now)
    return step


def _running(session: Mapping[str, Any], annotations: Mapping[str, str], world: World,
             step: Step, now: dt.datetime) -> Step:
    workload = world.workload
    if not workload.exists:
        return _reset_to_pending(step, annotations, now)
    if _desired(annotations) == Phase.STOPPED:
        # Before the other rows: a stop asked while the workload is going anyway (deleted by
        # someone, lost) is still a stop, and keeps the run's startTime (upstream's order).
        return _initiate_stop(step, now, workload)
    if workload.terminating:
        return step
    if workload.state == "lost":
        return replace(step, delete_workload=True)
    if workload.state in ("succeeded", "failed"):
        return _ended(step, workload, now)
    step = _clear_fulfilled(step, annotations)
    step, waiting = _reconfigure(session, world, step, now)
    waits: list[float] = [READY_RECHECK - 1.0] if waiting else []
    if world.token_present:
        refreshed = world.token_refreshed_at
        due = (refreshed + TOKEN_REFRESH - now).total_seconds() if refreshed else 0.0
        if due <= 0:
            step = replace(step, refresh_token=True)
            due = TOKEN_REFRESH.total_seconds()
        waits.append(due)
    idle_left = _idle_left(session, step.status, world.inactivity_timeout, now)
    if idle_left is not None:
        if idle_left < 0:
            # The Stop, as a user's: the next pass acts on it (its own annotation's event
            # does not wake the operator).
            return replace(step, annotate={DESIRED_PHASE: Phase.STOPPED.value,
                                           STOP_REASON: "inactivity"}, again=True)
        waits.append(idle_left)
    if waits:
        step = replace(step, requeue_after=min(min(waits) + 1.0, MAX_WAIT))
    return step


def _reconfigure(session: Mapping[str, Any], world: World, step: Step,
                 now: dt.datetime) -> tuple[Step, bool]:
    """Live reconfiguration (:mod:`.live`) once the runner answers: ask for the calls, or
    record what they did; and whether a plan waits for the runner to answer (looked at again
    every :data:`READY_RECHECK` seconds: its readiness does not wake the session)."""
    plan = live.plan({**session, "status": step.status})
    if plan is None:
        return step, False
    if not world.workload.ready:
        return step, True
    if world.reconfigured is None:
        return replace(step, reconfigure=plan), False
    return replace(step, status=live.applied(session, step.status, plan, world.reconfigured,
                                             now=now)), False


def _stopping(session: Mapping[str, Any], annotations: Mapping[str, str], world: World,
              step: Step, now: dt.datetime) -> Step:
    workload = world.workload
    if not workload.exists:
        return _to_stopped(step, annotations, now)
    return replace(step, delete_workload=not workload.terminating)


def _terminal(session: Mapping[str, Any], annotations: Mapping[str, str], world: World,
              step: Step, now: dt.datetime) -> Step:
    workload = world.workload
    leftover = workload.exists and not workload.terminating
    if _desired(annotations) == Phase.RUNNING:
        reset = _reset_to_pending(step, annotations, now)
        return replace(reset, delete_workload=leftover, events=(
            *reset.events, Event("Normal", "Restarting", "restart requested: starting a new run")))
    return replace(step, delete_workload=leftover)


_HANDLERS = {Phase.PENDING: _pending, Phase.CREATING: _creating, Phase.RUNNING: _running,
             Phase.STOPPING: _stopping, Phase.STOPPED: _terminal, Phase.COMPLETED: _terminal,
             Phase.FAILED: _terminal}


# transitions (upstream's helpers) ---------------------------------------------------------
def _with(step: Step, phase: Phase, status: dict[str, Any], **changes: Any) -> Step:
    """``step`` moved to ``phase``; annotations to clear and events add up over a pass."""
    if "clear" in changes:
        changes["clear"] = tuple(dict.fromkeys((*step.clear, *changes["clear"])))
    if "events" in changes:
        changes["events"] = (*step.events, *changes["events"])
    return replace(step, phase=phase, status={**status, "phase": phase.value}, **changes)


def _reset_to_pending(step: Step, annotations: Mapping[str, str], now: dt.datetime) -> Step:
    """ResetToPending: a new run begins (after a restart, or the workload was lost). Written
    first, as upstream writes it, and looked at again at once: the next pass starts the run
    (a workload still there is the old run's, and goes first)."""
    status = {k: v for k, v in step.status.items()
              if k not in ("completionTime", "lastActivityTime", "stoppedReason")}
    status["startTime"] = now_text(now)
    status["conditions"] = upsert(status.get("conditions"), POD_CREATED, "False",
                                  reason="PodMissing", message="Pod not found, will recreate",
                                  now=now)
    return _with(step, Phase.PENDING, status,
                 clear=(STOP_REASON,) if STOP_REASON in annotations else (), again=True)


def _initiate_stop(step: Step, now: dt.datetime, workload: Observation) -> Step:
    conditions = upsert(step.status.get("conditions"), READY, "False", reason="Stopping",
                        message="Session is stopping", now=now)
    return _with(step, Phase.STOPPING, {**step.status, "conditions": conditions},
                 delete_workload=not workload.terminating, delete_copies=True)


def _to_stopped(step: Step, annotations: Mapping[str, str], now: dt.datetime) -> Step:
    inactivity = annotations.get(STOP_REASON) == "inactivity"
    reason = "InactivityTimeout" if inactivity else "UserStopped"
    messages = (("Session stopped due to inactivity", "Pod deleted due to inactivity timeout",
                 "Runner stopped due to inactivity") if inactivity else
                ("Session stopped by user", "Pod deleted by user stop request",
                 "Runner stopped by user"))
    conditions = step.status.get("conditions")
    for kind, message in zip((READY, POD_CREATED, RUNNER_STARTED), messages, strict=True):
        conditions = upsert(conditions, kind, "False", reason=reason, message=message, now=now)
    status = {**step.status, "completionTime": now_text(now),
              "stoppedReason": "inactivity" if inactivity else "user", "conditions": conditions}
    # The stop is done; a Start asked for meanwhile (D=Running) is not: it stays, and the
    # next pass begins the new run (upstream clears it here and loses the user's last word).
    done = (STOP_REQUESTED_AT, STOP_REASON) if _desired(annotations) == Phase.RUNNING else (
        DESIRED_PHASE, STOP_REQUESTED_AT, STOP_REASON)
    clear = tuple(k for k in done if k in annotations)
    return _with(step, Phase.STOPPED, status, clear=clear, delete_copies=True)


def _ended(step: Step, workload: Observation, now: dt.datetime) -> Step:
    """The runner (or its Pod) succeeded or failed: Completed or Failed, and the workload goes
    (as upstream deletes the Pod, its Service and the copied Secrets)."""
    succeeded = workload.state == "succeeded"
    phase = Phase.COMPLETED if succeeded else Phase.FAILED
    conditions = upsert(step.status.get("conditions"), READY, "False", reason=workload.reason,
                        message=workload.message, now=now)
    events = () if succeeded else (Event("Warning", workload.reason or "Failed",
                                         workload.message or "the session failed"),)
    return _with(step, phase, {**step.status, "completionTime": now_text(now),
                               "conditions": conditions},
                 delete_workload=True, delete_copies=True, events=events)


def _clear_fulfilled(step: Step, annotations: Mapping[str, str]) -> Step:
    """A desired-phase=Running met by a live run is done: clear it, or a later completion
    would restart the session by itself."""
    if _desired(annotations) == Phase.RUNNING and DESIRED_PHASE not in step.clear:
        return replace(step, clear=(*step.clear, DESIRED_PHASE))
    return step


def _idle_left(session: Mapping[str, Any], status: Mapping[str, Any], timeout: float,
               now: dt.datetime) -> float | None:
    """Seconds until the session counts as idle (negative: it is); None when the timeout is
    off or nothing says when the session was last active."""
    if timeout <= 0:
        return None
    reference = (parse_time(status.get("lastActivityTime")) or parse_time(status.get("startTime"))
                 or parse_time((session.get("metadata") or {}).get("creationTimestamp")))
    if reference is None:
        return None
    idle = (now - reference).total_seconds()
    return timeout - idle if idle <= timeout else -1.0
