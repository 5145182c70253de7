"""The phase machine (reconcilers.phase.next_step) against UPSTREAM-CONTRACT §3 and §5.

The table follows §3.2 row by row (and the deliberate differences of DESIGN §4): for each
row the phase the session is in, what happens (annotations, what was observed of the
workload, what starting a run did), and what the step must be — the next phase, the status
fields set and removed, the conditions (type, status, reason), the annotations cleared and
set, and the actions. Every expectation is written from the contract, never computed by the
code under test. Then §3.3/§3.4 (what the helpers write and clear), §3.6 IS_RESUME, §5
inactivity and the token refresh, a scenario walking a session through a whole life, and
hypothesis properties for what must hold in every step (conditions never removed,
annotations upstream never clears are never cleared).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconcilers.environment import Observation, RunInputs, Runtime
from reconcilers.phase import MAX_WAIT, next_step
from reconcilers.phasetypes import BadInput, Started, StartFailure, Step, World
from reconcilers.runner_env import is_resume, runner_env

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
T_NOW = "2026-03-01T12:00:00Z"
RUN_START = "2026-03-01T11:00:00Z"
"""status.startTime of the current run (an hour before NOW)."""
CREATED = "2026-03-01T10:00:00Z"
ACTIVE = "2026-03-01T11:59:00Z"
"""A recent status.lastActivityTime (written by the backend)."""
GENERATION = 3

DP = "ambient-code.io/desired-phase"
STOP_REASON = "ambient-code.io/stop-reason"
STOP_AT = "ambient-code.io/stop-requested-at"
START_AT = "ambient-code.io/start-requested-at"
FORCE = "ambient-code.io/force-execute-prompt"
PARENT = "vteam.ambient-code/parent-session-id"
TOKEN_SECRET_ANN = "ambient-code.io/runner-token-secret"
RUNNER_SA_ANN = "ambient-code.io/runner-sa"

STOP = {DP: "Stopped", STOP_AT: "2026-03-01T12:59:00+01:00"}
STOP_IDLE = {DP: "Stopped", STOP_REASON: "inactivity"}
STOP_RUN_FINISHED = {DP: "Stopped", STOP_REASON: "run-finished"}
RESTART = {DP: "Running", START_AT: "2026-03-01T12:59:00+01:00"}
OPERATOR_ANNOTATIONS = {TOKEN_SECRET_ANN: "ambient-runner-token-s1",
                        RUNNER_SA_ANN: "ambient-session-s1", PARENT: "s0"}


def condition(kind: str, status: str, reason: str, when: str = RUN_START) -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason, "message": f"{reason} earlier",
            "lastTransitionTime": when}


# What a session in each phase carries (as the operator and the backend leave it).
STATUS: dict[str | None, dict[str, Any] | None] = {
    None: None,
    "Pending": {"phase": "Pending", "startTime": RUN_START},
    "Creating": {"phase": "Creating", "startTime": RUN_START, "observedGeneration": GENERATION,
                 "sdkSessionId": "sdk-1",
                 "conditions": [condition("PodCreated", "True", "PodCreated")]},
    "Running": {"phase": "Running", "startTime": RUN_START, "observedGeneration": GENERATION,
                "lastActivityTime": ACTIVE, "sdkSessionId": "sdk-1",
                "conditions": [condition("PodCreated", "True", "PodCreated"),
                               condition("RunnerStarted", "True", "ContainerRunning"),
                               condition("Ready", "True", "Running")]},
    "Stopping": {"phase": "Stopping", "startTime": RUN_START, "lastActivityTime": ACTIVE,
                 "conditions": [condition("Ready", "False", "Stopping")]},
    "Stopped": {"phase": "Stopped", "startTime": RUN_START, "lastActivityTime": ACTIVE,
                "completionTime": "2026-03-01T11:30:00Z", "stoppedReason": "inactivity",
                "sdkSessionId": "sdk-1",
                "conditions": [condition("Ready", "False", "InactivityTimeout")]},
    "Completed": {"phase": "Completed", "startTime": RUN_START, "lastActivityTime": ACTIVE,
                  "completionTime": "2026-03-01T11:30:00Z",
                  "conditions": [condition("Ready", "False", "Completed")]},
    "Failed": {"phase": "Failed", "startTime": RUN_START,
               "completionTime": "2026-03-01T11:30:00Z",
               "conditions": [condition("Ready", "False", "PodFailed")]},
}


def session(phase: str | None, annotations: Mapping[str, str] | None = None, *,
            status: Mapping[str, Any] | None = None,
            spec: Mapping[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "s1", "namespace": "team-a", "uid": "uid-1",
                            "generation": GENERATION, "creationTimestamp": CREATED}
    if annotations:
        meta["annotations"] = dict(annotations)
    obj: dict[str, Any] = {"apiVersion": "vteam.ambient-code/v1alpha1",
                           "kind": "AgenticSession", "metadata": meta,
                           "spec": dict(spec or {"timeout": 300})}
    base = STATUS[phase] if status is None else status
    if base is not None:
        obj["status"] = {k: (list(v) if isinstance(v, list) else v) for k, v in base.items()}
    return obj


def workload(state: str, **kw: Any) -> Observation:
    """The current run's workload (annotated with the run's startTime)."""
    return Observation(state, run_started=kw.pop("run_started", RUN_START), **kw)  # type: ignore[arg-type]


STARTING = workload("starting")
RUNNING = workload("running", reason="ContainerRunning", message="Runner container is executing")


def cond(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    matches = [c for c in status.get("conditions") or () if c["type"].lower() == kind.lower()]
    assert len(matches) <= 1, f"condition {kind} appears {len(matches)} times"
    return matches[0] if matches else None


def actions(step: Step) -> set[str]:
    flags = {"start": step.start, "delete_workload": step.delete_workload,
             "delete_copies": step.delete_copies, "refresh_token": step.refresh_token,
             "retry": step.retry, "permanent": step.permanent is not None,
             "again": step.again}
    return {name for name, on in flags.items() if on}


ANY = object()


@dataclass(frozen=True)
class Row:
    """One row of §3.2: from ``phase`` with ``annotations`` and ``world`` → the step."""

    id: str
    phase: str | None
    annotations: Mapping[str, str]
    world: World
    to: str
    sets: Mapping[str, Any] = field(default_factory=dict)
    removes: tuple[str, ...] = ()
    conditions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    clear: frozenset[str] = frozenset()
    annotate: Mapping[str, str] = field(default_factory=dict)
    actions: frozenset[str] = frozenset()
    spec: Mapping[str, Any] | None = None


def row(id: str, phase: str | None, annotations: Mapping[str, str] | None, world: World,
        to: str, *, clear: tuple[str, ...] = (), actions: tuple[str, ...] = (),
        **kw: Any) -> Any:
    return pytest.param(Row(id, phase, annotations or {}, world, to, clear=frozenset(clear),
                            actions=frozenset(actions), **kw), id=id)


W = World()
STOPPED_USER = {"Ready": ("False", "UserStopped", "Session stopped by user"),
                "PodCreated": ("False", "UserStopped", "Pod deleted by user stop request"),
                "RunnerStarted": ("False", "UserStopped", "Runner stopped by user")}
STOPPED_IDLE = {"Ready": ("False", "InactivityTimeout", "Session stopped due to inactivity"),
                "PodCreated": ("False", "InactivityTimeout",
                               "Pod deleted due to inactivity timeout"),
                "RunnerStarted": ("False", "InactivityTimeout",
                                  "Runner stopped due to inactivity")}
RESET = {"PodCreated": ("False", "PodMissing", "Pod not found, will recreate")}
STOPPING = {"Ready": ("False", "Stopping", "Session is stopping")}
CREATED_CONDITIONS = {"PodCreated": ("True", "PodCreated"),
                      "SecretsReady": ("True", "AllRequiredSecretsFound",
                                       "Runner secret available"),
                      "S3Available": ("False", "NotConfigured"),
                      "ReposReconciled": ("True", "NoRepos", "No repositories defined")}
RUNNING_CONDITIONS = {"RunnerStarted": ("True", "ContainerRunning"),
                      "Ready": ("True", "Running", "Session is running")}
ENDED = ("delete_workload", "delete_copies")


def ended(state: str, reason: str, message: str) -> Observation:
    return workload(state, reason=reason, message=message)


TABLE = [
    # (no status) ---------------------------------------------------------------------------
    row("new-session-starts", None, None, W, "Pending",
        sets={"phase": "Pending", "startTime": T_NOW}, actions=("start",)),
    row("new-session-started-same-pass", None, None, replace(W, started=Started()), "Creating",
        sets={"startTime": T_NOW, "observedGeneration": GENERATION},
        conditions=CREATED_CONDITIONS),
    # Pending ---------------------------------------------------------------------------------
    row("pending-stop", "Pending", STOP, W, "Stopped",
        sets={"completionTime": T_NOW, "stoppedReason": "user", "startTime": RUN_START},
        conditions=STOPPED_USER, clear=(DP, STOP_AT), actions=("delete_copies",)),
    row("pending-stop-inactivity", "Pending", STOP_IDLE, W, "Stopped",
        sets={"stoppedReason": "inactivity"}, conditions=STOPPED_IDLE,
        clear=(DP, STOP_REASON), actions=("delete_copies",)),
    row("pending-stop-run-finished-is-user", "Pending", STOP_RUN_FINISHED, W, "Stopped",
        sets={"stoppedReason": "user"}, conditions=STOPPED_USER, clear=(DP, STOP_REASON),
        actions=("delete_copies",)),
    row("pending-stop-deletes-a-leftover-workload-first", "Pending", STOP,
        replace(W, workload=STARTING), "Stopping", conditions=STOPPING, removes=("stoppedReason",),
        actions=ENDED),
    row("pending-vertex-secret-missing", "Pending", None,
        replace(W, vertex_missing="Secret ambient-vertex missing in namespace ambient-code"),
        "Failed", removes=("completionTime",),
        conditions={"SecretsReady": ("False", "VertexSecretMissing"),
                    "Ready": ("False", "VertexSecretMissing")}),
    row("pending-token-provisioning-refused", "Pending", None,
        replace(W, started=Started(failure=StartFailure("token", "forbidden", True))),
        "Failed", removes=("completionTime",),
        conditions={"Ready": ("False", "TokenProvisionFailed")}),
    row("pending-token-provisioning-transient-retried", "Pending", None,
        replace(W, started=Started(failure=StartFailure("token", "503", False))),
        "Pending", conditions={"Ready": ("False", "TokenProvisionFailed")}, actions=("retry",)),
    row("pending-pod-exists", "Pending", {**RESTART, FORCE: "true"},
        replace(W, workload=STARTING), "Creating",
        sets={"observedGeneration": GENERATION}, conditions={"PodCreated": ("True", "PodExists")},
        clear=(DP,)),
    row("pending-pod-exists-already-running", "Pending", None, replace(W, workload=RUNNING),
        "Running", conditions={"PodCreated": ("True", "PodExists"), **RUNNING_CONDITIONS}),
    row("pending-pod-of-upstreams-operator-is-adopted", "Pending", None,
        replace(W, workload=workload("starting", run_started=None)), "Creating",
        conditions={"PodCreated": ("True", "PodExists")}),
    row("pending-runner-secret-missing-waits", "Pending", None, replace(W, runner_secret=False),
        "Pending", conditions={"SecretsReady": ("False", "RunnerSecretMissing")}),
    row("pending-create-already-exists", "Pending", RESTART,
        replace(W, started=Started(existed=True)), "Creating",
        conditions={"PodCreated": ("True", "PodExists")}, clear=(DP,)),
    row("pending-create-error", "Pending", None,
        replace(W, started=Started(failure=StartFailure("workload", "etcd timeout", False))),
        "Pending", conditions={"PodCreated": ("False", "CreateFailed", "etcd timeout"),
                               "Ready": ("False", "PodCreationFailed")}, actions=("retry",)),
    row("pending-create-refused-as-invalid", "Pending", None,
        replace(W, started=Started(failure=StartFailure("workload", "422", True))),
        "Pending", conditions={"PodCreated": ("False", "CreateFailed"),
                               "Ready": ("False", "PodCreationFailed")}, actions=("permanent",)),
    row("pending-pod-created", "Pending", {**RESTART, FORCE: "true"},
        replace(W, started=Started(), integrations=True, s3_available=True,
                s3_message="S3 storage configured: https://s3/b",
                run_fields={"executionKind": "pod", "runtime": "claude-agent-sdk"}),
        "Creating", sets={"observedGeneration": GENERATION, "executionKind": "pod",
                          "runtime": "claude-agent-sdk", "startTime": RUN_START},
        conditions={**CREATED_CONDITIONS,
                    "S3Available": ("True", "Configured", "S3 storage configured: https://s3/b"),
                    "IntegrationSecretsReady": ("True", "OptionalSecretFound")},
        clear=(DP, FORCE)),
    row("pending-bad-input", "Pending", None,
        replace(W, bad_input=BadInput("UnknownRuntime", 'runtime "x" is not defined')),
        "Pending", conditions={"Ready": ("False", "UnknownRuntime",
                                         'runtime "x" is not defined')},
        actions=("permanent",)),
    row("pending-stale-workload-of-an-earlier-run-is-deleted", "Pending", None,
        replace(W, workload=workload("running", run_started="2026-03-01T09:00:00Z")),
        "Pending", actions=("delete_workload",)),
    row("pending-stale-workload-being-deleted-is-waited-for", "Pending", None,
        replace(W, workload=workload("starting", terminating=True,
                                     run_started="2026-03-01T09:00:00Z")), "Pending"),
    # Creating --------------------------------------------------------------------------------
    row("creating-pod-missing-stop", "Creating", STOP, W, "Stopped",
        sets={"stoppedReason": "user", "completionTime": T_NOW}, conditions=STOPPED_USER,
        clear=(DP, STOP_AT), actions=("delete_copies",)),
    # A reset is written as upstream writes it, and the next pass (at once) starts the run.
    row("creating-pod-missing-resets", "Creating", {STOP_REASON: "inactivity"}, W,
        "Pending", sets={"startTime": T_NOW}, conditions=RESET, clear=(STOP_REASON,),
        actions=("again",)),
    row("creating-scheduled", "Creating", None,
        replace(W, workload=workload("starting", scheduled={
            "status": "True", "reason": "Scheduled", "message": "Scheduled on node-1"})),
        "Creating", conditions={"PodScheduled": ("True", "Scheduled", "Scheduled on node-1")}),
    row("creating-unschedulable", "Creating", None,
        replace(W, workload=workload("starting", scheduled={
            "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"})),
        "Creating", conditions={"PodScheduled": ("False", "Unschedulable", "0/3 nodes")}),
    row("creating-pod-succeeded", "Creating", None,
        replace(W, workload=ended("succeeded", "Completed", "Session finished")), "Completed",
        sets={"completionTime": T_NOW},
        conditions={"Ready": ("False", "Completed", "Session finished")}, actions=ENDED),
    row("creating-pod-failed", "Creating", None,
        replace(W, workload=ended("failed", "PodFailed", "Init container init-hydrate failed")),
        "Failed", sets={"completionTime": T_NOW},
        conditions={"Ready": ("False", "PodFailed", "Init container init-hydrate failed")},
        actions=ENDED),
    row("creating-runner-waiting-image-pull", "Creating", None,
        replace(W, workload=ended("failed", "ImagePullBackOff",
                                  "Runner waiting: ImagePullBackOff - Back-off pulling")),
        "Failed", sets={"completionTime": T_NOW},
        conditions={"Ready": ("False", "ImagePullBackOff",
                              "Runner waiting: ImagePullBackOff - Back-off pulling")},
        actions=ENDED),
    row("creating-runner-running", "Creating", None, replace(W, workload=RUNNING), "Running",
        conditions=RUNNING_CONDITIONS),
    row("creating-runner-exit-0", "Creating", None,
        replace(W, workload=ended("succeeded", "Completed", "Runner finished")), "Completed",
        sets={"completionTime": T_NOW},
        conditions={"Ready": ("False", "Completed", "Runner finished")}, actions=ENDED),
    row("creating-runner-exit-2", "Creating", None,
        replace(W, workload=ended("failed", "PrerequisiteFailed", "no API key")), "Failed",
        sets={"completionTime": T_NOW}, conditions={"Ready": ("False", "PrerequisiteFailed")},
        actions=ENDED),
    row("creating-runner-exit-other", "Creating", None,
        replace(W, workload=ended("failed", "RunnerExit", "Runner exited with code 1: Error")),
        "Failed", sets={"completionTime": T_NOW}, conditions={"Ready": ("False", "RunnerExit")},
        actions=ENDED),
    row("creating-stop-honoured-while-the-pod-exists", "Creating", STOP,
        replace(W, workload=STARTING), "Stopping", conditions=STOPPING, actions=ENDED),
    row("creating-fulfilled-desired-running-cleared", "Creating", RESTART,
        replace(W, workload=STARTING), "Creating", clear=(DP,)),
    # Running ---------------------------------------------------------------------------------
    row("running-pod-missing-resets", "Running", None, W, "Pending",
        sets={"startTime": T_NOW, "sdkSessionId": "sdk-1"},
        removes=("completionTime", "lastActivityTime", "stoppedReason"), conditions=RESET,
        actions=("again",)),
    row("running-pod-lost-is-deleted-then-replaced", "Running", None,
        replace(W, workload=workload("lost", reason="Evicted")), "Running",
        actions=("delete_workload",)),
    row("running-stop", "Running", STOP, replace(W, workload=RUNNING), "Stopping",
        sets={"lastActivityTime": ACTIVE}, conditions=STOPPING, actions=ENDED),
    # A stop asked while the pod is going anyway is still a stop (upstream's order: the pod
    # exists, desired-phase=Stopped → Stopping); nothing to delete, the copies are released.
    row("running-stop-while-the-pod-terminates-stops", "Running", STOP,
        replace(W, workload=workload("starting", terminating=True)), "Stopping",
        conditions=STOPPING, actions=("delete_copies",)),
    # Upstream's order: the pod is gone first (reset), then Pending sees the stop.
    row("running-stop-with-the-pod-gone-resets", "Running", STOP, W, "Pending",
        sets={"startTime": T_NOW}, removes=("lastActivityTime",), conditions=RESET,
        actions=("again",)),
    row("running-runner-exit-0", "Running", None,
        replace(W, workload=ended("succeeded", "Completed", "Runner finished")), "Completed",
        sets={"completionTime": T_NOW}, conditions={"Ready": ("False", "Completed")},
        actions=ENDED),
    row("running-runner-exit-2", "Running", None,
        replace(W, workload=ended("failed", "PrerequisiteFailed", "m")), "Failed",
        conditions={"Ready": ("False", "PrerequisiteFailed")}, actions=ENDED),
    row("running-runner-exit-other", "Running", None,
        replace(W, workload=ended("failed", "RunnerExit", "m")), "Failed",
        conditions={"Ready": ("False", "RunnerExit")}, actions=ENDED),
    row("running-token-45-minutes-old", "Running", None,
        replace(W, workload=RUNNING, token_present=True,
                token_refreshed_at=NOW - dt.timedelta(minutes=45)), "Running",
        actions=("refresh_token",)),
    row("running-token-fresh", "Running", None,
        replace(W, workload=RUNNING, token_present=True,
                token_refreshed_at=NOW - dt.timedelta(minutes=44)), "Running"),
    row("running-token-without-timestamp", "Running", None,
        replace(W, workload=RUNNING, token_present=True), "Running",
        actions=("refresh_token",)),
    row("running-idle-asks-to-stop", "Running", None,
        replace(W, workload=RUNNING, inactivity_timeout=59.0), "Running",
        annotate={DP: "Stopped", STOP_REASON: "inactivity"}, actions=("again",)),
    row("running-fulfilled-desired-running-cleared", "Running", RESTART,
        replace(W, workload=RUNNING), "Running", clear=(DP,)),
    # Stopping --------------------------------------------------------------------------------
    row("stopping-pod-gone", "Stopping", STOP, W, "Stopped",
        sets={"stoppedReason": "user", "completionTime": T_NOW}, conditions=STOPPED_USER,
        clear=(DP, STOP_AT), actions=("delete_copies",)),
    row("stopping-pod-gone-inactivity", "Stopping", STOP_IDLE, W, "Stopped",
        sets={"stoppedReason": "inactivity"}, conditions=STOPPED_IDLE, clear=(DP, STOP_REASON),
        actions=("delete_copies",)),
    row("stopping-pod-still-there", "Stopping", STOP, replace(W, workload=RUNNING), "Stopping",
        actions=("delete_workload",)),
    row("stopping-pod-being-deleted", "Stopping", STOP,
        replace(W, workload=workload("starting", terminating=True)), "Stopping"),
    # Stopped / Completed / Failed ------------------------------------------------------------
    *(row(f"{p.lower()}-restart", p, {**RESTART, STOP_REASON: "inactivity"}, W, "Pending",
          sets={"startTime": T_NOW}, conditions=RESET,
          removes=("completionTime", "lastActivityTime", "stoppedReason"),
          clear=(STOP_REASON,), actions=("again",))
      for p in ("Stopped", "Completed", "Failed")),
    row("stopped-restart-with-a-leftover-pod-waits-for-it", "Stopped", RESTART,
        replace(W, workload=STARTING), "Pending", sets={"startTime": T_NOW},
        removes=("stoppedReason",), conditions=RESET, actions=("delete_workload", "again")),
    *(row(f"{p.lower()}-otherwise-nothing", p, STOP, W, p) for p in
      ("Stopped", "Completed", "Failed")),
]


@pytest.mark.parametrize("case", TABLE)
def test_transition_table(case: Row) -> None:
    obj = session(case.phase, case.annotations, spec=case.spec)
    before = dict(obj.get("status") or {})
    step = next_step(obj, case.world, now=NOW)

    assert step.phase.value == case.to
    assert step.status["phase"] == case.to
    for key, value in case.sets.items():
        assert step.status.get(key) == value, key
    for key in case.removes:
        assert key not in step.status, key
    for kind, expected in case.conditions.items():
        found = cond(step.status, kind)
        assert found is not None, f"no {kind} condition"
        assert (found["status"], found["reason"], found["message"])[:len(expected)] == expected
        old = cond(before, kind)
        if old is None or old["status"] != found["status"]:
            assert found["lastTransitionTime"] == T_NOW, kind
    assert set(step.clear) == case.clear
    assert len(step.clear) == len(set(step.clear))
    assert dict(step.annotate) == dict(case.annotate)
    assert actions(step) == case.actions


def test_a_terminal_session_without_intent_is_left_exactly_as_it_is() -> None:
    for phase in ("Stopped", "Completed", "Failed"):
        obj = session(phase)
        step = next_step(obj, W, now=NOW)
        assert step.status == obj["status"]
        assert (actions(step), step.clear, dict(step.annotate)) == (set(), (), {})


def test_desired_phase_is_compared_trimmed_and_case_sensitively() -> None:
    assert next_step(session("Running", {DP: "  Stopped\n"}), replace(W, workload=RUNNING),
                     now=NOW).phase.value == "Stopping"
    assert next_step(session("Running", {DP: "stopped"}), replace(W, workload=RUNNING),
                     now=NOW).phase.value == "Running"
    assert next_step(session("Stopped", {DP: "running"}), W, now=NOW).phase.value == "Stopped"


# §3.3 / §3.4: what the helpers write and clear -----------------------------------------------
def test_reset_to_pending_writes_and_clears_exactly_upstreams_fields() -> None:
    full = {**(STATUS["Completed"] or {}), "stoppedReason": "user",
            "reconciledRepos": [{"url": "u"}], "sdkSessionId": "sdk-1", "observedGeneration": 2}
    annotations = {**RESTART, STOP_REASON: "run-finished", STOP_AT: "t",
                   **OPERATOR_ANNOTATIONS}
    step = next_step(session("Completed", annotations, status=full), W, now=NOW)
    assert step.status == {
        "phase": "Pending", "startTime": T_NOW, "reconciledRepos": [{"url": "u"}],
        "sdkSessionId": "sdk-1", "observedGeneration": 2,
        "conditions": [condition("Ready", "False", "Completed"),
                       {"type": "PodCreated", "status": "False", "reason": "PodMissing",
                        "message": "Pod not found, will recreate", "lastTransitionTime": T_NOW}]}
    # Only stop-reason: desired-phase=Running stays until the run is created.
    assert step.clear == (STOP_REASON,)


def test_transition_to_stopped_writes_upstreams_fields_and_clears_the_stop_intent() -> None:
    annotations = {**STOP, STOP_REASON: "inactivity", **OPERATOR_ANNOTATIONS, START_AT: "t"}
    step = next_step(session("Stopping", annotations), W, now=NOW)
    assert step.status["phase"] == "Stopped"
    assert step.status["completionTime"] == T_NOW
    assert step.status["stoppedReason"] == "inactivity"
    assert step.status["startTime"] == RUN_START
    assert step.status["lastActivityTime"] == ACTIVE  # only a reset removes it
    assert set(step.clear) == {DP, STOP_AT, STOP_REASON}
    assert step.delete_copies


def test_a_start_asked_for_while_stopping_survives_the_stop_and_starts_the_next_run() -> None:
    """The user's last word was Start (D=Running written while Stopping): the stop completes
    without erasing it, and the next pass begins a new run (issue 15: quick flips)."""
    annotations = {**RESTART, STOP_AT: "t1"}
    step = next_step(session("Stopping", annotations), W, now=NOW)
    assert step.status["phase"] == "Stopped"
    assert set(step.clear) == {STOP_AT}
    after = session("Stopped", RESTART, status=step.status)
    restart = next_step(after, W, now=NOW)
    assert restart.status["phase"] == "Pending"


def test_initiate_stop_only_moves_to_stopping() -> None:
    obj = session("Running", STOP)
    step = next_step(obj, replace(W, workload=RUNNING), now=NOW)
    changed = {k for k in {*obj["status"], *step.status}
               if obj["status"].get(k) != step.status.get(k)}
    assert changed == {"phase", "conditions"}
    assert step.clear == ()  # cleared when Stopped


def test_pod_created_clears_desired_phase_and_force_execute_prompt_but_nothing_else() -> None:
    annotations = {**RESTART, FORCE: "true", **OPERATOR_ANNOTATIONS}
    step = next_step(session("Pending", annotations), replace(W, started=Started()), now=NOW)
    assert step.phase.value == "Creating"
    assert set(step.clear) == {DP, FORCE}


def test_pod_created_records_the_sessions_generation() -> None:
    obj = session("Pending")
    obj["metadata"]["generation"] = 17
    step = next_step(obj, replace(W, started=Started()), now=NOW)
    assert step.status["observedGeneration"] == 17


# repos at the start of a run (§4.15 first paragraph) --------------------------------------------
def test_a_created_run_records_the_specs_repos() -> None:
    spec = {"repos": [{"url": "https://github.com/org/api.git", "branch": "dev"},
                      {"url": "https://github.com/org/web"}]}
    step = next_step(session("Pending", spec=spec), replace(W, started=Started()), now=NOW)
    assert step.status["reconciledRepos"] == [
        {"url": "https://github.com/org/api.git", "name": "api", "branch": "dev",
         "clonedAt": T_NOW, "status": "Ready"},
        {"url": "https://github.com/org/web", "name": "web", "branch": "main",
         "clonedAt": T_NOW, "status": "Ready"}]
    repos = cond(step.status, "ReposReconciled")
    assert repos is not None
    assert (repos["status"], repos["reason"], repos["message"]) == (
        "True", "Reconciled", "Reconciled 2 repos (added: 2, removed: 0, branch changed: 0)")


# §3.6 IS_RESUME ----------------------------------------------------------------------------------
MINIMAL_INPUTS = RunInputs(token_secret="ambient-runner-token-s1")


def _env_names(obj: Mapping[str, Any], resume: bool) -> dict[str, Any]:
    env = runner_env(obj, Runtime(id="claude-agent-sdk"), replace(MINIMAL_INPUTS,
                                                                   is_resume=resume))
    return {e["name"]: e.get("value") for e in env}


@pytest.mark.parametrize(("status", "annotations", "expected"), [
    (None, {}, False),
    ({"phase": "Pending"}, {}, False),
    ({"phase": "Pending", "startTime": ""}, {}, False),
    ({"phase": "Pending", "startTime": RUN_START}, {}, True),
    ({"phase": "Completed", "startTime": RUN_START}, {DP: "Running"}, True),
    ({"phase": "Pending", "startTime": RUN_START}, {FORCE: "true"}, False),
    ({"phase": "Pending", "startTime": RUN_START}, {FORCE: "True"}, True),
    ({"phase": "Pending", "startTime": RUN_START}, {FORCE: "false"}, True),
], ids=["fresh", "no-start-time", "empty-start-time", "started-before", "restart",
        "force-execute-prompt", "force-is-case-sensitive", "force-false"])
def test_is_resume(status: dict[str, Any] | None, annotations: dict[str, str],
                   expected: bool) -> None:
    obj = session(None, annotations, status=status)
    assert is_resume(obj) is expected
    env = _env_names(obj, is_resume(obj))
    assert env.get("IS_RESUME") == ("true" if expected else None)


def test_the_first_run_has_no_is_resume_and_a_resumed_run_has_it() -> None:
    """Through the machine: a fresh session's first pass starts a run from a session without
    startTime; a lost pod's reset starts the next one from a session that has it."""
    fresh = session(None)
    assert next_step(fresh, W, now=NOW).start
    assert is_resume(fresh) is False
    running = session("Running")
    reset = next_step(running, W, now=NOW)  # the workload is gone: reset to Pending
    after = session("Pending", status=reset.status)
    assert next_step(after, W, now=NOW).start  # and the next pass starts the new run
    assert is_resume(after) is True


def test_quirk_a_first_pass_that_could_not_start_makes_the_first_run_a_resume() -> None:
    """§3.6 QUIRK kept: startTime is written by the first pass even when the run cannot
    start (RunnerSecretMissing); the run that starts later gets IS_RESUME=true."""
    step = next_step(session(None), replace(W, runner_secret=False), now=NOW)
    assert step.phase.value == "Pending" and not step.start
    assert step.status["startTime"] == T_NOW
    assert is_resume(session(None, status=step.status)) is True


# §5 inactivity -----------------------------------------------------------------------------------
def _running(status_extra: Mapping[str, Any], drop: tuple[str, ...] = (),
             created: str | None = CREATED) -> dict[str, Any]:
    status = {k: v for k, v in STATUS["Running"].items() if k not in drop}  # type: ignore[union-attr]
    obj = session("Running", status={**status, **status_extra})
    if created is None:
        del obj["metadata"]["creationTimestamp"]
    return obj


def _ago(seconds: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def idle_step(obj: Mapping[str, Any], timeout: float, **world: Any) -> Step:
    return next_step(obj, replace(W, workload=RUNNING, inactivity_timeout=timeout, **world),
                     now=NOW)


STOP_FOR_IDLE = {DP: "Stopped", STOP_REASON: "inactivity"}


@pytest.mark.parametrize(("obj", "timeout", "stops", "requeue"), [
    # lastActivityTime first
    (_running({"lastActivityTime": _ago(100), "startTime": _ago(10_000)}), 200, False, 101.0),
    (_running({"lastActivityTime": _ago(300), "startTime": _ago(10)}), 200, True, None),
    # then startTime
    (_running({"startTime": _ago(100)}, drop=("lastActivityTime",)), 200, False, 101.0),
    (_running({"startTime": _ago(201)}, drop=("lastActivityTime",)), 200, True, None),
    # then creationTimestamp (NOW - 2 h)
    (_running({}, drop=("lastActivityTime", "startTime")), 7300, False, 101.0),
    (_running({}, drop=("lastActivityTime", "startTime")), 7199, True, None),
    # nothing to measure from: never idle
    (_running({}, drop=("lastActivityTime", "startTime"), created=None), 1, False, None),
    # strictly greater: exactly the timeout is not idle yet (due in a second)
    (_running({"lastActivityTime": _ago(200)}), 200, False, 1.0),
    (_running({"lastActivityTime": _ago(201)}), 200, True, None),
    # 0 disables, however long ago
    (_running({"lastActivityTime": _ago(10**8)}), 0, False, None),
    # absurd timeouts never overflow a timer
    (_running({"lastActivityTime": _ago(100)}), 1e15, False, MAX_WAIT),
    (_running({"lastActivityTime": _ago(100)}), float(2**63), False, MAX_WAIT),
    (_running({"lastActivityTime": _ago(100)}), 86_400 * 3, False, MAX_WAIT),
    # fractional and offset timestamps as the backend may write them
    (_running({"lastActivityTime": "2026-03-01T11:58:20.250Z"}), 100, False, 1.25),
    (_running({"lastActivityTime": "2026-03-01T12:58:20+01:00"}), 100, False, 1.0),
], ids=["activity-recent", "activity-old-start-recent", "start-recent", "start-old",
        "created-recent", "created-old", "no-reference", "exactly-timeout", "one-past",
        "zero-disables", "1e15", "2^63", "three-days", "fractional", "offset"])
def test_inactivity(obj: dict[str, Any], timeout: float, stops: bool,
                    requeue: float | None) -> None:
    step = idle_step(obj, timeout)
    assert step.phase.value == "Running"
    assert dict(step.annotate) == (STOP_FOR_IDLE if stops else {})
    assert STOP_AT not in step.annotate  # upstream sets no stop-requested-at
    if requeue is not None:
        assert step.requeue_after == pytest.approx(requeue)
    elif not stops:
        assert step.requeue_after is None
    assert step.requeue_after is None or 0 < step.requeue_after <= MAX_WAIT


def test_inactivity_is_only_judged_while_running() -> None:
    old = {"lastActivityTime": _ago(10_000)}
    for phase in ("Pending", "Creating", "Stopping"):
        status = {**(STATUS[phase] or {}), **old}
        step = next_step(session(phase, status=status),
                         replace(W, workload=STARTING, inactivity_timeout=60), now=NOW)
        assert STOP_REASON not in step.annotate, phase


def test_a_stop_already_asked_wins_over_inactivity() -> None:
    obj = _running({"lastActivityTime": _ago(10_000)})
    obj["metadata"]["annotations"] = dict(STOP)
    step = idle_step(obj, 60)
    assert step.phase.value == "Stopping"
    assert dict(step.annotate) == {}


def test_the_inactivity_stop_then_stops_with_reason_inactivity() -> None:
    """Running → (annotate) → Stopping → Stopped inactivity, the annotations cleared."""
    obj = _running({"lastActivityTime": _ago(10_000)})
    first = idle_step(obj, 60)
    obj = apply(obj, first)
    second = next_step(obj, replace(W, workload=RUNNING), now=NOW)
    assert second.phase.value == "Stopping" and second.delete_workload
    obj = apply(obj, second)
    third = next_step(obj, W, now=NOW)
    assert (third.phase.value, third.status["stoppedReason"]) == ("Stopped", "inactivity")
    assert annotations_of(apply(obj, third)) == {}


# token refresh (§4.11) ---------------------------------------------------------------------------
@pytest.mark.parametrize(("age", "refresh", "requeue"), [
    (dt.timedelta(minutes=44, seconds=59), False, 2.0),
    (dt.timedelta(minutes=45), True, 45 * 60 + 1.0),
    (dt.timedelta(hours=5), True, 45 * 60 + 1.0),
    (dt.timedelta(minutes=10), False, 35 * 60 + 1.0),
], ids=["due-in-a-second", "due-now", "long-overdue", "fresh"])
def test_token_refresh_every_45_minutes(age: dt.timedelta, refresh: bool,
                                        requeue: float) -> None:
    step = idle_step(_running({}), 0, token_present=True, token_refreshed_at=NOW - age)
    assert step.refresh_token is refresh
    assert step.requeue_after == pytest.approx(requeue)


def test_no_token_secret_means_nothing_to_refresh() -> None:
    step = idle_step(_running({}), 0, token_present=False, token_refreshed_at=NOW - dt.timedelta(
        hours=5))
    assert not step.refresh_token and step.requeue_after is None


def test_token_is_refreshed_only_while_running() -> None:
    stale = NOW - dt.timedelta(hours=2)
    for phase in ("Pending", "Creating", "Stopping", "Stopped"):
        step = next_step(session(phase), replace(W, workload=STARTING, token_present=True,
                                                 token_refreshed_at=stale), now=NOW)
        assert not step.refresh_token, phase


def test_the_earlier_of_token_refresh_and_idle_deadline_is_the_requeue() -> None:
    obj = _running({"lastActivityTime": _ago(3000)})
    step = idle_step(obj, 3600, token_present=True,
                     token_refreshed_at=NOW - dt.timedelta(minutes=40))
    assert step.requeue_after == pytest.approx(5 * 60 + 1.0)  # token due in 5 min, idle in 10
    step = idle_step(obj, 3060, token_present=True,
                     token_refreshed_at=NOW - dt.timedelta(minutes=40))
    assert step.requeue_after == pytest.approx(61.0)


# a whole life ------------------------------------------------------------------------------------
def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(obj["metadata"].get("annotations") or {})


def apply(obj: Mapping[str, Any], step: Step) -> dict[str, Any]:
    """What the reconciler writes for ``step``: the status, then the annotations."""
    out = {**obj, "status": dict(step.status), "metadata": dict(obj["metadata"])}
    kept = {k: v for k, v in annotations_of(obj).items() if k not in step.clear}
    out["metadata"]["annotations"] = {**kept, **step.annotate}
    return out


def test_a_session_lives_as_the_backend_and_frontend_expect() -> None:
    at = NOW
    obj = session(None, {PARENT: "s0"}, spec={"timeout": 300, "repos": [{"url": "u/r.git"}]})

    def run(world: World, minutes: float = 0) -> Step:
        nonlocal at, obj
        at = at + dt.timedelta(minutes=minutes)
        step = next_step(obj, world, now=at)
        obj = apply(obj, step)
        return step

    step = run(W)
    assert step.start and step.phase.value == "Pending" and not is_resume(session(None))
    step = next_step(session(None, {PARENT: "s0"}, spec=obj["spec"]),
                     replace(W, started=Started()), now=at)
    obj = apply(obj, step)
    assert obj["status"]["phase"] == "Creating"
    assert run(replace(W, workload=RUNNING), 1).phase.value == "Running"
    obj["status"]["lastActivityTime"] = obj["status"]["startTime"]  # the backend writes it
    # the pod is evicted: deleted, then (gone) a new run resumes the session
    assert run(replace(W, workload=workload("lost", run_started=obj["status"]["startTime"])),
               1).delete_workload
    step = run(W, 1)
    assert step.again and obj["status"]["phase"] == "Pending"
    assert "lastActivityTime" not in obj["status"] and is_resume(obj)
    step = run(W)
    assert step.start
    step = run(replace(W, started=Started()))
    assert obj["status"]["phase"] == "Creating"
    assert run(replace(W, workload=workload("running", run_started=obj["status"]["startTime"])),
               1).phase.value == "Running"
    # the user stops it (backend Stop): Stopping → Stopped user, annotations cleared
    obj["metadata"]["annotations"].update(STOP)
    assert run(replace(W, workload=RUNNING)).phase.value == "Stopping"
    step = run(W)
    assert (obj["status"]["phase"], obj["status"]["stoppedReason"]) == ("Stopped", "user")
    assert annotations_of(obj) == {PARENT: "s0"}
    # and starts it again (backend Start): a new run, resumed
    obj["metadata"]["annotations"].update(RESTART)
    step = run(W, 60)
    assert step.again and "stoppedReason" not in obj["status"] and is_resume(obj)
    step = run(W)
    assert step.start
    assert annotations_of(obj) == {PARENT: "s0", **RESTART}  # desired-phase stays until created
    step = run(replace(W, started=Started()))
    assert annotations_of(obj) == {PARENT: "s0", START_AT: RESTART[START_AT]}


# properties --------------------------------------------------------------------------------------
NEVER_CLEARED = (START_AT, PARENT, TOKEN_SECRET_ANN, RUNNER_SA_ANN)
CLEARABLE = {DP, STOP_AT, STOP_REASON, FORCE}
PHASES = [None, "Pending", "Creating", "Running", "Stopping", "Stopped", "Completed", "Failed"]
OBSERVATIONS = st.builds(
    Observation, state=st.sampled_from(["absent", "starting", "running", "succeeded", "failed",
                                        "lost"]),
    terminating=st.booleans(), reason=st.sampled_from(["", "Completed", "RunnerExit"]),
    message=st.sampled_from(["", "m"]),
    scheduled=st.none() | st.just({"status": "False", "reason": "Unschedulable",
                                   "message": "no nodes"}),
    run_started=st.sampled_from([None, RUN_START, "2026-03-01T09:00:00Z"]))
STARTS = st.none() | st.builds(Started, existed=st.booleans(), failure=st.none() | st.builds(
    StartFailure, stage=st.sampled_from(["token", "workload"]), message=st.just("x"),
    permanent=st.booleans()))
WORLDS = st.builds(
    World, workload=OBSERVATIONS, vertex_missing=st.sampled_from(["", "missing"]),
    runner_secret=st.booleans(), integrations=st.booleans(), s3_available=st.booleans(),
    bad_input=st.none() | st.just(BadInput("InvalidRuntime", "bad")),
    token_present=st.booleans(),
    token_refreshed_at=st.none() | st.integers(0, 10_000).map(
        lambda s: NOW - dt.timedelta(seconds=s)),
    inactivity_timeout=st.sampled_from([0.0, 30.0, 3600.0, 1e15]), started=STARTS)
ANNOTATIONS = st.dictionaries(
    st.sampled_from([DP, STOP_AT, STOP_REASON, FORCE, *NEVER_CLEARED]),
    st.sampled_from(["Running", "Stopped", "inactivity", "true", "x"]))


@settings(max_examples=400, deadline=None, database=None)
@given(phase=st.sampled_from(PHASES), world=WORLDS, annotations=ANNOTATIONS)
def test_every_step_keeps_upstreams_invariants(phase: str | None, world: World,
                                               annotations: dict[str, str]) -> None:
    obj = session(phase, annotations)
    step = next_step(obj, world, now=NOW)
    before = obj.get("status") or {}
    # the phase written is the step's, and one of the CRD's enum
    assert step.status["phase"] == step.phase.value
    # conditions are never removed, and each type appears once
    kinds = [c["type"].lower() for c in step.status.get("conditions") or ()]
    assert len(kinds) == len(set(kinds))
    assert {c["type"].lower() for c in before.get("conditions") or ()} <= set(kinds)
    # only the intent annotations are ever cleared, and only when present
    assert set(step.clear) <= CLEARABLE
    assert set(step.clear) <= set(annotations)
    assert not set(step.annotate) & set(NEVER_CLEARED)
    # stoppedReason is one of upstream's enum, and only on Stopped
    if "stoppedReason" in step.status and step.status.get("stoppedReason") != before.get(
            "stoppedReason"):
        assert step.phase.value == "Stopped"
        assert step.status["stoppedReason"] in ("user", "inactivity")
    # a step never starts a run while a workload is there, and never both starts and deletes
    if step.start:
        assert not world.workload.exists and not step.delete_workload
    # requeues are bounded
    assert step.requeue_after is None or 0 < step.requeue_after <= MAX_WAIT
    # the input is never mutated
    assert obj == session(phase, annotations)
