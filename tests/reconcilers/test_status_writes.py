"""When the reconciler writes a session's status: ``status.write_delay``.

A phase, any top-level field, a condition that flips, disappears or appears other than True is
written at once; progress detail (a condition's reason or message, a new True condition) waits
for the next write within DETAIL_BATCH seconds of the last flip, and is written after that.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from reconcilers.status import DETAIL_BATCH, write_delay

FLIP = dt.datetime(2025, 3, 4, 5, 6, 0, tzinfo=dt.UTC)
SOON = FLIP + dt.timedelta(seconds=1)
LATER = FLIP + dt.timedelta(seconds=DETAIL_BATCH + 1)


def condition(kind: str, status: str, reason: str = "R", message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "observedGeneration": 1, "lastTransitionTime": "2025-03-04T05:06:00Z"}


CREATING = {"phase": "Creating", "observedGeneration": 1,
            "conditions": [condition("Ready", "False", "PodPending")]}


def with_conditions(*conditions: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**CREATING, **fields, "conditions": list(conditions)}


def test_an_unchanged_status_is_not_written() -> None:
    assert write_delay(CREATING, dict(CREATING), now=SOON) is None


@pytest.mark.parametrize("new", [
    pytest.param(with_conditions(condition("Ready", "True", "RunnerReady"), phase="Running"),
                 id="phase"),
    pytest.param(with_conditions(condition("Ready", "False", "PodPending"), endpoint="http://x"),
                 id="top-level-field"),
    pytest.param(with_conditions(condition("Ready", "True", "PodPending")), id="flip"),
    pytest.param(with_conditions(condition("Ready", "False", "PodPending"),
                                 condition("PodScheduled", "False", "Unschedulable")),
                 id="new-false-condition"),
    pytest.param(with_conditions(), id="removed-condition"),
])
def test_what_users_must_see_is_written_at_once(new: dict[str, Any]) -> None:
    assert write_delay(CREATING, new, now=SOON) == 0.0


@pytest.mark.parametrize("new", [
    pytest.param(with_conditions(condition("Ready", "False", "RunnerNotReady", "unready")),
                 id="reason-and-message"),
    pytest.param(with_conditions(condition("Ready", "False", "PodPending"),
                                 condition("PodScheduled", "True", "Scheduled")),
                 id="new-true-condition"),
])
def test_progress_detail_waits_for_the_batch_window(new: dict[str, Any]) -> None:
    assert write_delay(CREATING, new, now=SOON) == pytest.approx(DETAIL_BATCH - 1)
    assert write_delay(CREATING, new, now=LATER) == 0.0


def test_detail_without_any_condition_time_is_written_at_once() -> None:
    old = {**CREATING, "conditions": [{**CREATING["conditions"][0], "lastTransitionTime": ""}]}
    new = with_conditions(condition("Ready", "False", "RunnerNotReady"))
    assert write_delay(old, new, now=SOON) == 0.0
