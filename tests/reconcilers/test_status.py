"""Session status as pure functions: conditions, the next phase, timeouts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from reconcilers.environment import Observation
from reconcilers.resources import Phase
from reconcilers.status import (
    LAST_ACTIVITY_ANNOTATION,
    MESSAGE_MAX,
    deadline_passed,
    next_phase,
    restarted,
    with_condition,
    with_restart_required,
    with_run_start,
)

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def ago(seconds: int) -> str:
    return (NOW - dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(("length", "kept"), [
    (0, 0), (MESSAGE_MAX, MESSAGE_MAX), (MESSAGE_MAX + 1, MESSAGE_MAX), (50_000, MESSAGE_MAX),
], ids=["empty", "at-the-limit", "one-over", "runtime-id-of-50k"])
def test_condition_messages_are_bounded(length: int, kept: int) -> None:
    status = with_condition({}, type="Ready", status_value="False", reason="UnknownRuntime",
                            message="m" * length, generation=1, now=NOW)
    message = status["conditions"][0]["message"]
    assert len(message) == kept
    assert message.endswith("...") == (length > MESSAGE_MAX)
    assert len(message.encode()) <= 32768  # the API's limit, in bytes


@pytest.mark.parametrize(("current", "observation", "expected"), [
    (Phase.PENDING, Observation(None),
     (Phase.CREATING, "CreatingWorkload", "creating the session's runner")),
    (Phase.CREATING, Observation(None),
     (Phase.CREATING, "CreatingWorkload", "creating the session's runner")),
    (Phase.RUNNING, Observation(None),
     (Phase.FAILED, "WorkloadLost",
      "the session's runner disappeared while the session was running")),
    (Phase.CREATING, Observation(Phase.CREATING, reason="PodPending", message="starting"),
     (Phase.CREATING, "PodPending", "starting")),
    (Phase.CREATING, Observation(Phase.RUNNING, ready=True, reason="RunnerReady", message="ok"),
     (Phase.RUNNING, "RunnerReady", "ok")),
    (Phase.RUNNING, Observation(Phase.CREATING, reason="RunnerNotReady", message="probe"),
     (Phase.RUNNING, "RunnerNotReady", "probe")),
    (Phase.RUNNING, Observation(Phase.CREATING),
     (Phase.RUNNING, "RunnerNotReady", "")),
    (Phase.RUNNING, Observation(Phase.COMPLETED, reason="Completed", message="exit 0"),
     (Phase.COMPLETED, "Completed", "exit 0")),
    (Phase.RUNNING, Observation(Phase.FAILED, reason="OOMKilled", message="oom"),
     (Phase.FAILED, "OOMKilled", "oom")),
    (Phase.CREATING, Observation(Phase.FAILED, reason="ErrImagePull", message="pull"),
     (Phase.FAILED, "ErrImagePull", "pull")),
], ids=["pending-no-workload", "creating-no-workload", "running-workload-lost",
        "creating-stays-creating", "creating-to-running", "running-briefly-unready",
        "running-unready-default-reason", "running-completes", "running-fails",
        "creating-fails"])
def test_next_phase(current: Phase, observation: Observation,
                    expected: tuple[Phase, str, str]) -> None:
    assert next_phase(current, observation) == expected


def session(*, timeout: int = 0, idle: int = 0, run_start: int | None = None,
            running: int | None = None, activity: int | None = None) -> dict[str, Any]:
    """A session with ``spec.timeout`` / ``inactivityTimeout``, its run begun ``run_start``
    seconds ago, Running for ``running`` seconds, last active ``activity`` seconds ago."""
    status = {}
    if run_start is not None:
        status["runStartTime"] = ago(run_start)
    if running is not None:
        status["startTime"] = ago(running)
    annotations = {} if activity is None else {LAST_ACTIVITY_ANNOTATION: ago(activity)}
    return {"metadata": {"annotations": annotations},
            "spec": {"timeout": timeout, "inactivityTimeout": idle}, "status": status}


@pytest.mark.parametrize(("given", "expected"), [
    (session(), ("", float("inf"))),
    (session(run_start=100, running=90), ("", float("inf"))),
    (session(timeout=60), ("", float("inf"))),
    (session(timeout=60, run_start=10), ("", 50.0)),
    (session(timeout=60, run_start=60), ("Timeout", 0.0)),
    (session(timeout=60, run_start=61, running=30), ("Timeout", 0.0)),
    (session(timeout=60, running=61), ("Timeout", 0.0)),
    (session(idle=30, run_start=100), ("", float("inf"))),
    (session(idle=30, run_start=100, running=10), ("", 20.0)),
    (session(idle=30, run_start=100, running=40), ("InactivityTimeout", 0.0)),
    (session(idle=30, run_start=100, running=40, activity=5), ("", 25.0)),
    (session(idle=30, running=10, activity=60), ("", 20.0)),
    (session(timeout=600, idle=30, run_start=100, running=50, activity=40),
     ("InactivityTimeout", 0.0)),
    (session(timeout=100, idle=30, run_start=90, running=5), ("", 10.0)),
], ids=["no-timeouts", "no-timeouts-running", "timeout-run-not-begun", "timeout-pending",
        "timeout-reached-creating", "timeout-reached-running", "timeout-run-before-the-field",
        "idle-not-running-yet", "idle-pending", "idle-reached", "idle-recent-activity",
        "idle-activity-before-running", "idle-first", "timeout-first"])
def test_deadline_passed(given: dict[str, Any], expected: tuple[str, float]) -> None:
    reason, left = deadline_passed(given, now=NOW)
    assert (reason, left) == (expected[0], pytest.approx(expected[1]))


def test_a_restart_begins_a_run() -> None:
    old = {"phase": "Stopped", "startTime": ago(100), "runStartTime": ago(200),
           "completionTime": ago(50), "stoppedReason": "UserRequested", "executionKind": "pod",
           "observedGeneration": 3, "conditions": [{"type": "Ready"}]}
    assert restarted(old, now=NOW) == {"phase": "Pending", "runStartTime": ago(0),
                                       "observedGeneration": 3,
                                       "conditions": [{"type": "Ready"}]}


@pytest.mark.parametrize(("status", "expected"), [
    ({}, ago(300)),
    ({"runStartTime": ago(10)}, ago(10)),
    ({"startTime": ago(60)}, ago(60)),
    ({"runStartTime": ago(10), "startTime": ago(5)}, ago(10)),
], ids=["first-run", "restarted", "running-before-the-field", "kept"])
def test_run_start(status: dict[str, Any], expected: str) -> None:
    assert with_run_start(status, created=ago(300))["runStartTime"] == expected


ASKED = {"conditions": [{"type": "RestartRequired", "status": "True", "observedGeneration": 1,
                         "lastTransitionTime": ago(60), "reason": "ImmutableFieldsChanged",
                         "message": "..."}]}


@pytest.mark.parametrize(("status", "changed", "expected"), [
    ({}, (), None),
    ({}, ("Pod spec.containers[name=runner].env[name=X]",), ("True", "ImmutableFieldsChanged")),
    (ASKED, (), ("False", "UpToDate")),
    (ASKED, ("Pod spec.x",), ("True", "ImmutableFieldsChanged")),
], ids=["ordinary-session-grows-no-condition", "asks", "cleared", "still-asks"])
def test_restart_required(status: dict[str, Any], changed: tuple[str, ...],
                          expected: tuple[str, str] | None) -> None:
    out = with_restart_required(status, changed=changed, generation=2, now=NOW)
    conditions = {c["type"]: c for c in out.get("conditions") or ()}
    if expected is None:
        assert "RestartRequired" not in conditions
        return
    condition = conditions["RestartRequired"]
    assert (condition["status"], condition["reason"]) == expected
    assert all(path in condition["message"] for path in changed)


def test_restart_required_names_a_bounded_number_of_fields() -> None:
    changed = [f"Pod spec.containers[name=runner].env[name=V{i}]" for i in range(5000)]
    message = with_restart_required({}, changed=changed, generation=1,
                                    now=NOW)["conditions"][0]["message"]
    assert "env[name=V9]" in message and "env[name=V10]" not in message
    assert "and 4990 more" in message
