"""Conditions: apimachinery's SetStatusCondition semantics as pure functions."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ambient_ctrl.conditions import (
    find_condition,
    is_false,
    is_true,
    remove_condition,
    set_condition,
)

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def ready(status: str, reason: str = "Ok", message: str = "", generation: int = 1,
          now: str = T0, conditions: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return set_condition(conditions, type="Ready", status=status, reason=reason,
                         message=message, observed_generation=generation, now=now)


def test_new_condition_is_appended_with_now() -> None:
    other = {"type": "Scheduled", "status": "True", "observedGeneration": 1,
             "lastTransitionTime": T0, "reason": "Done", "message": ""}
    assert ready("False", "Waiting", "not yet", conditions=[other]) == [other, {
        "type": "Ready", "status": "False", "observedGeneration": 1,
        "lastTransitionTime": T0, "reason": "Waiting", "message": "not yet"}]


@pytest.mark.parametrize(("before", "after", "moves"), [
    ("False", "True", True), ("True", "Unknown", True), ("True", "True", False),
    ("Unknown", "Unknown", False)],
    ids=["false-to-true", "true-to-unknown", "true-stays", "unknown-stays"])
def test_transition_time_moves_only_on_status_flips(before: str, after: str,
                                                    moves: bool) -> None:
    first = ready(before, "A", "first", generation=1, now=T0)
    second = ready(after, "B", "second", generation=2, now=T1, conditions=first)
    (condition,) = second
    assert condition["lastTransitionTime"] == (T1 if moves else T0)
    # Everything else always follows the new values.
    assert (condition["status"], condition["reason"], condition["message"],
            condition["observedGeneration"]) == (after, "B", "second", 2)


def test_inputs_are_not_mutated_and_order_is_kept() -> None:
    conditions = ready("True", conditions=set_condition(
        None, type="A", status="True", reason="X", message="", observed_generation=1, now=T0))
    conditions = set_condition(conditions, type="B", status="True", reason="X", message="",
                               observed_generation=1, now=T0)
    frozen = copy.deepcopy(conditions)
    updated = ready("False", now=T1, conditions=conditions)
    assert conditions == frozen
    assert [c["type"] for c in updated] == ["A", "Ready", "B"]


def test_find_is_true_is_false_and_remove() -> None:
    conditions = ready("True")
    assert find_condition(conditions, "Ready") == conditions[0]
    assert find_condition(conditions, "Other") is None
    assert is_true(conditions, "Ready") and not is_false(conditions, "Ready")
    assert not is_true(None, "Ready") and not is_false([], "Ready")
    assert remove_condition(conditions, "Ready") == []
    assert remove_condition(conditions, "Other") == conditions
    assert remove_condition(None, "Ready") == []


@pytest.mark.parametrize(("field", "value"), [
    ("status", "true"), ("status", "Yes"),
    ("reason", ""), ("reason", "has space"), ("reason", "1Starts"), ("reason", "Ends,"),
    ("reason", "Ends:"), ("reason", "Dash-ed"), ("reason", "A" * 1025),
    ("type", ""), ("type", "-bad"), ("type", "a/b/c"), ("type", "/Ready"),
    ("type", "UPPER.example.com/Ready"), ("type", "x" * 64),
    ("message", "m" * 32769), ("observed_generation", -1)],
    ids=lambda v: str(v)[:20])
def test_invalid_values_are_rejected(field: str, value: Any) -> None:
    kwargs: dict[str, Any] = {"type": "Ready", "status": "True", "reason": "Ok", "message": "",
                              "observed_generation": 1, "now": T0, field: value}
    with pytest.raises(ValueError):
        set_condition(None, **kwargs)


@pytest.mark.parametrize("reason", ["A", "Ok", "Failed_Create", "a:b,c_", "R2D2", "A" * 1024])
def test_valid_reasons(reason: str) -> None:
    assert ready("True", reason)[0]["reason"] == reason


@pytest.mark.parametrize("type_", ["Ready", "example.com/Ready", "pod-scheduled", "a.b_c"])
def test_valid_types(type_: str) -> None:
    conditions = set_condition(None, type=type_, status="True", reason="Ok", message="",
                               observed_generation=0, now=T0)
    assert conditions[0]["type"] == type_


_types = st.sampled_from(["Ready", "Scheduled", "example.com/Healthy"])
_updates = st.lists(st.tuples(_types, st.sampled_from(["True", "False", "Unknown"]),
                              st.sampled_from(["A", "B"]), st.text(max_size=5),
                              st.integers(0, 3)), max_size=12)


@given(_updates)
def test_transition_time_tracks_status_flips(updates: list[tuple[str, str, str, str, int]]
                                             ) -> None:
    """Replaying updates with a clock that ticks every step: each condition's
    lastTransitionTime is the step of its latest status change, and one entry per type."""
    conditions: list[dict[str, Any]] = []
    expected: dict[str, tuple[str, str]] = {}  # type -> (status, step of its last flip)
    for step, (type_, status, reason, message, generation) in enumerate(updates):
        now = f"2026-01-01T00:00:{step:02d}Z"
        conditions = set_condition(conditions, type=type_, status=status, reason=reason,
                                   message=message, observed_generation=generation, now=now)
        if expected.get(type_, ("", ""))[0] != status:
            expected[type_] = (status, now)
    assert {c["type"]: (c["status"], c["lastTransitionTime"]) for c in conditions} == expected
    assert len(conditions) == len(expected)


@given(_updates, _types, st.sampled_from(["True", "False", "Unknown"]))
def test_setting_twice_is_idempotent(updates: list[tuple[str, str, str, str, int]], type_: str,
                                     status: str) -> None:
    conditions: list[dict[str, Any]] = []
    for t, s, r, m, g in updates:
        conditions = set_condition(conditions, type=t, status=s, reason=r, message=m,
                                   observed_generation=g, now=T0)
    once = set_condition(conditions, type=type_, status=status, reason="R", message="m",
                         observed_generation=5, now=T1)
    twice = set_condition(once, type=type_, status=status, reason="R", message="m",
                          observed_generation=5, now="2026-01-02T00:00:00Z")
    assert twice == once
