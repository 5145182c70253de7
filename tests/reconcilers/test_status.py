"""Session status as pure functions (reconcilers.status): conditions as upstream's
``setCondition`` writes them (UPSTREAM-CONTRACT §7), timestamps, the repos a run records
(§4.15 first paragraph) and the merge patch between two statuses."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envtest.patch import merge_patch
from reconcilers.status import (
    MESSAGE_MAX,
    parse_time,
    repo_name,
    status_patch,
    upsert,
    with_reconciled_repos,
)

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
T_NOW = "2026-03-01T12:00:00Z"
BEFORE = "2026-03-01T08:00:00Z"


def ready(status: str = "False", reason: str = "Stopping", message: str = "was",
          type: str = "Ready") -> dict[str, Any]:
    return {"type": type, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": BEFORE}


# upsert ----------------------------------------------------------------------------------------
def test_a_new_condition_gets_all_five_fields_and_no_observed_generation() -> None:
    assert upsert(None, "PodCreated", "True", reason="PodCreated", message="made", now=NOW) == [
        {"type": "PodCreated", "status": "True", "reason": "PodCreated", "message": "made",
         "lastTransitionTime": T_NOW}]
    # empty reason and message are still written on a new condition
    assert upsert([], "Ready", "Unknown", now=NOW) == [
        {"type": "Ready", "status": "Unknown", "reason": "", "message": "",
         "lastTransitionTime": T_NOW}]


def test_type_matches_case_insensitively_and_keeps_its_spelling() -> None:
    out = upsert([ready(type="ready")], "Ready", "True", reason="Running", message="up", now=NOW)
    assert out == [{"type": "ready", "status": "True", "reason": "Running", "message": "up",
                    "lastTransitionTime": T_NOW}]


def test_last_transition_time_moves_only_when_the_status_changes() -> None:
    same = upsert([ready()], "Ready", "False", reason="UserStopped", message="new", now=NOW)
    assert same[0]["lastTransitionTime"] == BEFORE
    assert (same[0]["reason"], same[0]["message"]) == ("UserStopped", "new")
    flipped = upsert([ready()], "Ready", "True", reason="Running", now=NOW)
    assert flipped[0]["lastTransitionTime"] == T_NOW


def test_empty_reason_or_message_do_not_overwrite() -> None:
    out = upsert([ready()], "Ready", "True", reason="", message="", now=NOW)
    assert out == [{**ready(), "status": "True", "lastTransitionTime": T_NOW}]


def test_nothing_is_ever_removed_and_order_is_kept() -> None:
    existing = [ready(type="PodCreated"), ready(type="Custom"), ready()]
    out = upsert(existing, "RunnerStarted", "True", reason="ContainerRunning", now=NOW)
    assert [c["type"] for c in out] == ["PodCreated", "Custom", "Ready", "RunnerStarted"]
    assert out[:3] == existing


def test_the_input_list_and_its_items_are_not_mutated() -> None:
    existing = [ready()]
    frozen = copy.deepcopy(existing)
    upsert(existing, "Ready", "True", reason="Running", message="m", now=NOW)
    assert existing == frozen


def test_only_the_first_of_duplicate_types_is_updated() -> None:
    """As setCondition's loop breaks at the first match."""
    out = upsert([ready(), ready(type="READY")], "Ready", "True", reason="Running", now=NOW)
    assert (out[0]["status"], out[1]["status"]) == ("True", "False")


@pytest.mark.parametrize(("length", "kept"), [
    (0, 0), (MESSAGE_MAX, MESSAGE_MAX), (MESSAGE_MAX + 1, MESSAGE_MAX), (50_000, MESSAGE_MAX),
], ids=["empty", "at-the-limit", "one-over", "runtime-id-of-50k"])
def test_condition_messages_are_bounded(length: int, kept: int) -> None:
    for existing in (None, [ready()]):
        message = upsert(existing, "Ready", "False", reason="UnknownRuntime", message="é" * length,
                         now=NOW)[0]["message"]
        if length == 0 and existing:
            assert message == "was"
            continue
        assert len(message) == kept
        assert message.endswith("...") == (length > MESSAGE_MAX)
        assert len(message.encode()) <= 32768  # the API's limit, in bytes


# timestamps ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("2026-03-01T12:00:00Z", NOW),
    ("2026-03-01T12:00:00z", NOW),
    ("2026-03-01T13:00:00+01:00", NOW),
    ("2026-03-01T12:00:00.250Z", NOW + dt.timedelta(milliseconds=250)),
    ("2026-03-01T12:00:00", NOW),  # no zone: UTC
    ("", None), ("yesterday", None), (None, None), (1740830400, None),
])
def test_parse_time(text: Any, expected: dt.datetime | None) -> None:
    assert parse_time(text) == expected


# repos -----------------------------------------------------------------------------------------
def repos_status(**extra: Any) -> dict[str, Any]:
    return {"phase": "Pending", "startTime": BEFORE, **extra}


def entry(url: str, branch: str, name: str, when: str = T_NOW) -> dict[str, str]:
    return {"url": url, "name": name, "branch": branch, "clonedAt": when, "status": "Ready"}


def repos_condition(status: dict[str, Any]) -> tuple[str, str, str]:
    found = [c for c in status["conditions"] if c["type"] == "ReposReconciled"]
    assert len(found) == 1
    return found[0]["status"], found[0]["reason"], found[0]["message"]


def test_no_repos_field_removes_reconciled_repos_and_says_no_repos() -> None:
    status = repos_status(reconciledRepos=[entry("u", "main", "u", BEFORE)])
    out = with_reconciled_repos(status, {"timeout": 300}, now=NOW)
    assert "reconciledRepos" not in out
    assert repos_condition(out) == ("True", "NoRepos", "No repositories defined")
    assert with_reconciled_repos(repos_status(), {"repos": None}, now=NOW).get(
        "reconciledRepos") is None


def test_repos_are_deduplicated_by_url_the_last_wins_branch_defaults_to_main() -> None:
    spec = {"repos": [
        {"url": "https://github.com/org/api.git", "branch": "one"},
        {"url": "https://gitlab.com/group/sub/web/", "autoPush": True},
        {"url": "https://github.com/org/api.git", "branch": "two"},
        {"url": "  "}, {"branch": "x"}, "not-an-object",
        {"url": "git@github.com:org/tools.git", "branch": "  "}]}
    out = with_reconciled_repos(repos_status(), spec, now=NOW)
    assert sorted(out["reconciledRepos"], key=lambda r: r["url"]) == [
        entry("git@github.com:org/tools.git", "main", "tools"),
        entry("https://github.com/org/api.git", "two", "api"),
        entry("https://gitlab.com/group/sub/web/", "main", "web")]
    assert repos_condition(out) == (
        "True", "Reconciled", "Reconciled 3 repos (added: 3, removed: 0, branch changed: 0)")


def test_added_removed_and_branch_changed_are_counted() -> None:
    have = [entry("https://h/a", "main", "a", BEFORE), entry("https://h/b", "main", "b", BEFORE),
            entry("https://h/c", "dev", "c", BEFORE)]
    spec = {"repos": [{"url": "https://h/a"}, {"url": "https://h/c", "branch": "main"},
                      {"url": "https://h/d"}]}
    out = with_reconciled_repos(repos_status(reconciledRepos=have), spec, now=NOW)
    assert out["reconciledRepos"] == [entry("https://h/a", "main", "a"),
                                      entry("https://h/c", "main", "c"),
                                      entry("https://h/d", "main", "d")]
    assert repos_condition(out)[2] == \
        "Reconciled 3 repos (added: 1, removed: 1, branch changed: 1)"


def test_unchanged_repos_leave_the_status_untouched() -> None:
    have = [entry("https://h/a", "main", "a", BEFORE)]
    status = repos_status(reconciledRepos=have, conditions=[ready()])
    out = with_reconciled_repos(status, {"repos": [{"url": "https://h/a", "branch": "main"}]},
                                now=NOW)
    assert out == status
    # an empty list is "present": nothing reconciled before, nothing now
    assert with_reconciled_repos(repos_status(), {"repos": []}, now=NOW) == repos_status()


def test_removing_every_repo_records_an_empty_list() -> None:
    have = [entry("https://h/a", "main", "a", BEFORE)]
    out = with_reconciled_repos(repos_status(reconciledRepos=have), {"repos": []}, now=NOW)
    assert out["reconciledRepos"] == []
    assert repos_condition(out)[2] == \
        "Reconciled 0 repos (added: 0, removed: 1, branch changed: 0)"


@pytest.mark.parametrize(("url", "name"), [
    ("https://github.com/org/repo.git", "repo"), ("https://github.com/org/repo", "repo"),
    ("https://github.com/org/repo/", "repo"), ("git@github.com:org/repo.git", "repo"),
    ("https://github.com/org/repo.git/", "repo.git"), ("repo", "repo"),
])
def test_repo_name_is_the_last_path_segment_without_git(url: str, name: str) -> None:
    assert repo_name(url) == name


# status patch ----------------------------------------------------------------------------------
JSONISH = st.recursive(st.booleans() | st.integers() | st.text(max_size=3),
                       lambda inner: st.dictionaries(st.text(max_size=3), inner, max_size=3)
                       | st.lists(inner, max_size=3), max_leaves=8)
STATUSES = st.dictionaries(st.sampled_from(["phase", "startTime", "stoppedReason",
                                            "conditions", "lastActivityTime"]),
                           JSONISH, max_size=5)


@settings(max_examples=200, deadline=None, database=None)
@given(old=STATUSES, new=STATUSES)
def test_status_patch_turns_the_old_status_into_the_new(old: dict[str, Any],
                                                        new: dict[str, Any]) -> None:
    """Applied as the API server applies a JSON merge patch to the stored status: the fields
    are the new ones, and every non-object value is the new one (an object value is merged
    into the old one by a merge patch; the operator's status has none it shrinks)."""
    patched = merge_patch(old, status_patch(old, new))
    assert set(patched) == set(new)
    for key, value in new.items():
        if not isinstance(value, dict):
            assert patched[key] == value


def test_status_patch_nulls_what_the_new_status_dropped() -> None:
    old = {"phase": "Completed", "completionTime": BEFORE, "stoppedReason": "user"}
    new = {"phase": "Pending", "startTime": T_NOW}
    assert status_patch(old, new) == {"completionTime": None, "stoppedReason": None,
                                      "phase": "Pending", "startTime": T_NOW}


# write_delay: progress detail waits for the phase's write ---------------------------------------
def _with_conditions(*conditions: dict[str, str], phase: str = "Creating") -> dict[str, Any]:
    return {"phase": phase, "conditions": [dict(c) for c in conditions]}


_CREATED = {"type": "PodCreated", "status": "True", "reason": "PodCreated", "message": "m",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}
_SCHEDULED = {"type": "PodScheduled", "status": "True", "reason": "Scheduled", "message": "n",
              "lastTransitionTime": "2026-01-01T00:00:01Z"}
_T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(("new", "seconds_after", "expected"), [
    (_with_conditions(_CREATED), 1.0, None),  # nothing changed
    (_with_conditions(_CREATED, _SCHEDULED), 1.0, 4.0),  # a new True condition: waits
    (_with_conditions(_CREATED, _SCHEDULED), 6.0, 0.0),  # ... until the window ends
    (_with_conditions(_CREATED, {**_SCHEDULED, "status": "False"}), 1.0, 0.0),  # a problem
    (_with_conditions({**_CREATED, "message": "other"}), 1.0, 0.0),  # news of a condition
    (_with_conditions(_CREATED, _SCHEDULED, phase="Running"), 1.0, 0.0),  # a phase change
], ids=["same", "new-true-waits", "after-window", "new-false", "message", "phase"])
def test_write_delay_defers_only_new_true_conditions(new: dict[str, Any], seconds_after: float,
                                                     expected: float | None) -> None:
    from reconcilers.status import write_delay

    old = _with_conditions(_CREATED)
    assert write_delay(old, new, now=_T0 + dt.timedelta(seconds=seconds_after)) == expected
