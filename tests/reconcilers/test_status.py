"""Session status as pure functions: conditions, the next phase, timeouts."""

from __future__ import annotations

import datetime as dt

import pytest

from reconcilers.environment import Observation
from reconcilers.resources import Phase
from reconcilers.status import MESSAGE_MAX, next_phase, with_condition

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


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
