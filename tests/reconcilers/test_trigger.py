"""``ambient-ctrl session-trigger``'s pure parts: upstream's naming, the reuse decision table,
the resume write, the settings from the environment; and the resume's conflict handling
against a stand-in API. The command against a real API server: e2e/test_session_trigger.py."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from informers.errors import Conflict, NotFound
from reconcilers.trigger import (
    Decision,
    Settings,
    SettingsError,
    Trigger,
    TriggerError,
    backend_api_url,
    decide,
    display_time,
    go_rfc3339,
    new_session,
    newest,
    resumed,
    run_input,
    run_url,
    sanitize_name,
    settings_from_env,
)

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
UNIX = int(NOW.timestamp())  # 1767323045


# sanitize_name: upstream's table (trigger_test.go), then the byte-level behaviour ---------------
@pytest.mark.parametrize(("text", "expected"), [
    ("DailyReport", "dailyreport"),
    ("my task!here", "my-task-here"),
    ("hello!!!world", "hello-world"),
    ("hello!", "hello"),
    ("abcdefghijklmnopqrstuvwxyz1234567890abcdefghijklmnop",
     "abcdefghijklmnopqrstuvwxyz1234567890abcd"),
    ("", "run"),
    ("!!!@@@###", "run"),
    ("MyDailyTask", "mydailytask"),
    ("daily jira summary", "daily-jira-summary"),
    ("  hello", "hello"),
    ("task123", "task123"),
    # truncation can leave a hyphen at the end: trimmed after truncating
    ("abcdefghijklmnopqrstuvwxyz1234567890abc!def", "abcdefghijklmnopqrstuvwxyz1234567890abc"),
    # non-ASCII letters are separators, as Go's byte loop sees them
    ("Café Résumé", "caf-r-sum"),
    ("ÄÖÜ", "run"),
])
def test_sanitize_name_as_upstream(text: str, expected: str) -> None:
    assert sanitize_name(text) == expected


def test_a_schedule_name_fits_a_service_name() -> None:
    prefix = sanitize_name("schedule-cb9522da-ce4d-4bc8-8cc8-5647407288f5")
    assert prefix == "schedule-cb9522da-ce4d-4bc8-8cc8-5647407"
    assert len(f"session-{prefix}-1775052000") <= 63


def go_sanitize(text: str) -> str:
    """trigger.go's sanitizeName transcribed byte for byte (Go strings are UTF-8 bytes)."""
    result = bytearray()
    for ch in text.encode():
        if ord("a") <= ch <= ord("z") or ord("0") <= ch <= ord("9"):
            result.append(ch)
        elif ord("A") <= ch <= ord("Z"):
            result.append(ch + 32)
        elif result and result[-1] != ord("-"):
            result.append(ord("-"))
    result = result[:40]
    while result and result[-1] == ord("-"):
        result = result[:-1]
    return result.decode() if result else "run"


@given(st.text(max_size=80))
def test_sanitize_name_matches_upstreams_byte_loop(text: str) -> None:
    name = sanitize_name(text)
    assert name == go_sanitize(text)
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?", name)
    assert sanitize_name(name) == name


# a new session ------------------------------------------------------------------------------------
def settings(template: dict[str, Any], *, schedule: str = "schedule-1234",
             reuse: bool = False) -> Settings:
    return Settings(template=template, namespace="proj", schedule=schedule, reuse=reuse)


def test_display_time_is_gos_layout_in_utc() -> None:
    assert display_time(NOW) == "Jan 2, 2026 - 03:04:05"
    assert display_time(dt.datetime(2025, 12, 31, 23, 59, 59,
                                    tzinfo=dt.timezone(dt.timedelta(hours=-5)))) \
        == "Jan 1, 2026 - 04:59:59"


def test_a_new_run_is_named_after_the_display_name_and_labelled() -> None:
    template = {"displayName": "Daily Jira Summary", "initialPrompt": "Summarise",
                "llmSettings": {"model": "claude-sonnet-4-6"}, "timeout": 300}
    session = new_session(settings(template), NOW)
    assert session["apiVersion"] == "vteam.ambient-code/v1alpha1"
    assert session["kind"] == "AgenticSession"
    assert session["metadata"] == {
        "name": f"daily-jira-summary-{UNIX}", "namespace": "proj",
        "labels": {"ambient-code.io/scheduled-session-name": "schedule-1234",
                   "ambient-code.io/scheduled-run": "true"}}
    assert session["spec"] == {**template,
                               "displayName": "Daily Jira Summary (Jan 2, 2026 - 03:04:05)"}
    assert template["displayName"] == "Daily Jira Summary", "the template is not changed"
    assert "status" not in session


@pytest.mark.parametrize("display", [None, "", 42])
def test_without_a_display_name_the_schedule_names_the_run(display: Any) -> None:
    template: dict[str, Any] = {"initialPrompt": "Summarise"}
    if display is not None:
        template["displayName"] = display
    schedule = "schedule-cb9522da-ce4d-4bc8-8cc8-5647407288f5"
    session = new_session(settings(template, schedule=schedule), NOW)
    assert session["metadata"]["name"] == f"schedule-cb9522da-ce4d-4bc8-8cc8-5647407-{UNIX}"
    assert session["spec"] == template, "no displayName is made up"
    assert session["metadata"]["labels"]["ambient-code.io/scheduled-session-name"] == schedule


# reuse: which session, and what is done with it ---------------------------------------------------
def listed(name: str, phase: str | None, created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    session: dict[str, Any] = {"metadata": {"name": name, "creationTimestamp": created}}
    if phase is not None:
        session["status"] = {"phase": phase}
    return session


@pytest.mark.parametrize(("phase", "prompt", "action"), [
    ("Running", "go", "send"),
    ("Running", "", "skip"),
    ("Stopped", "go", "resume"),
    ("Stopped", "", "resume"),
    ("Completed", "go", "resume"),
    ("Completed", "", "resume"),
    ("Pending", "go", "create"),
    ("Creating", "go", "create"),
    ("Stopping", "go", "create"),
    ("Failed", "go", "create"),
    ("", "go", "create"),
    (None, "go", "create"),
    ("running", "go", "create"),  # phases are compared exactly, as upstream does
])
def test_the_reuse_decision_table(phase: str | None, prompt: str, action: str) -> None:
    assert decide([listed("s1", phase)], prompt) == Decision(action, "s1", phase or "")


def test_with_no_previous_session_reuse_creates() -> None:
    assert decide([], "go") == Decision("create")


def test_the_newest_session_decides() -> None:
    sessions = [listed("old-running", "Running", "2026-01-01T00:00:00Z"),
                listed("new-stopped", "Stopped", "2026-01-01T00:00:01Z"),
                listed("older-completed", "Completed", "2025-12-31T23:59:59Z")]
    assert decide(sessions, "go") == Decision("resume", "new-stopped", "Stopped")


def test_of_equal_timestamps_the_first_listed_wins_and_none_is_oldest() -> None:
    same = "2026-01-01T00:00:00Z"
    assert newest([listed("a", "Running", same), listed("b", "Stopped", same)]) \
        == listed("a", "Running", same)
    undated = {"metadata": {"name": "undated"}, "status": {"phase": "Running"}}
    assert decide([undated, listed("dated", "Stopped")], "go").session == "dated"


def test_a_resume_starts_the_session_and_forces_the_new_prompt() -> None:
    session = {"apiVersion": "vteam.ambient-code/v1alpha1", "kind": "AgenticSession",
               "metadata": {"name": "s1", "namespace": "proj", "resourceVersion": "7",
                            "annotations": {"keep": "me"}},
               "spec": {"initialPrompt": "old", "timeout": 300},
               "status": {"phase": "Stopped"}}
    out = resumed(session, "new prompt", NOW)
    assert out["metadata"]["annotations"] == {
        "keep": "me", "ambient-code.io/desired-phase": "Running",
        "ambient-code.io/start-requested-at": "2026-01-02T03:04:05Z",
        "ambient-code.io/force-execute-prompt": "true"}
    assert out["spec"] == {"initialPrompt": "new prompt", "timeout": 300}
    assert out["metadata"]["resourceVersion"] == "7", "the write is conditional on the read"
    assert session["metadata"]["annotations"] == {"keep": "me"}, "the read is not changed"
    assert session["spec"]["initialPrompt"] == "old"


def test_a_resume_without_a_prompt_only_asks_to_start() -> None:
    session = {"metadata": {"name": "s1"}, "spec": {"initialPrompt": "old"}}
    out = resumed(session, "", NOW)
    assert out["metadata"]["annotations"] == {
        "ambient-code.io/desired-phase": "Running",
        "ambient-code.io/start-requested-at": "2026-01-02T03:04:05Z"}
    assert out["spec"] == {"initialPrompt": "old"}
    assert resumed({"metadata": {"name": "s"}}, "p", NOW)["spec"] == {"initialPrompt": "p"}


def test_start_requested_at_is_gos_rfc3339_in_the_local_zone() -> None:
    assert go_rfc3339(NOW) == "2026-01-02T03:04:05Z"
    east = NOW.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert go_rfc3339(east) == "2026-01-02T05:04:05+02:00"


def test_the_run_sent_to_a_running_session() -> None:
    assert run_input("s1", "hello", NOW) == {
        "threadId": "s1", "runId": f"scheduled-{UNIX}",
        "messages": [{"id": f"scheduled-msg-{UNIX}678901000", "role": "user",
                      "content": "hello"}]}


def test_the_backend_url() -> None:
    assert backend_api_url({}) == \
        "http://backend-service.ambient-code.svc.cluster.local:8080/api"
    assert backend_api_url({"BACKEND_NAMESPACE": "vteam-dev"}) == \
        "http://backend-service.vteam-dev.svc.cluster.local:8080/api"
    assert backend_api_url({"BACKEND_NAMESPACE": "x",
                            "BACKEND_API_URL": "http://127.0.0.1:9/api/"}) == \
        "http://127.0.0.1:9/api"
    assert run_url("http://b:8080/api", "proj", "s1") == \
        "http://b:8080/api/projects/proj/agentic-sessions/s1/agui/run"


# the environment ----------------------------------------------------------------------------------
ENV = {"SESSION_TEMPLATE": '{"initialPrompt": "go"}', "PROJECT_NAMESPACE": "proj",
       "SCHEDULED_SESSION_NAME": "schedule-1"}


def test_settings_from_upstreams_variables() -> None:
    assert settings_from_env(ENV) == Settings({"initialPrompt": "go"}, "proj", "schedule-1",
                                              reuse=False)
    assert settings_from_env(ENV).prompt == "go"
    assert Settings({"initialPrompt": 3}, "p", "s", False).prompt == ""


@pytest.mark.parametrize(("value", "reuse"), [
    ("true", True), ("TRUE", True), (" True\n", True), ("false", False), ("", False),
    ("yes", False), ("1", False)])
def test_reuse_is_true_in_any_case(value: str, reuse: bool) -> None:
    assert settings_from_env({**ENV, "REUSE_LAST_SESSION": value}).reuse is reuse


@pytest.mark.parametrize("missing", ["SESSION_TEMPLATE", "PROJECT_NAMESPACE",
                                     "SCHEDULED_SESSION_NAME"])
@pytest.mark.parametrize("how", ["absent", "empty"])
def test_a_missing_variable_is_named(missing: str, how: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    if how == "empty":
        env[missing] = ""
    with pytest.raises(SettingsError, match=f"missing environment variable {missing} "):
        settings_from_env(env)


@pytest.mark.parametrize(("template", "message"), [
    ("{", "is not valid JSON"), ("[1]", "not an array"), ("null", "not null"),
    ('"x"', "not a string"), ("3", "not a number"), ("true", "not a boolean")])
def test_a_template_must_be_a_json_object(template: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings_from_env({**ENV, "SESSION_TEMPLATE": template})


# the resume's writes: conflict-safe --------------------------------------------------------------
class Sessions:
    """A stand-in for the API's sessions: a get returns the stored object, an update conflicts
    the first ``conflicts`` times (someone else wrote in between) and then stores it."""

    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.version = 1
        self.stored: dict[str, Any] = {
            "metadata": {"name": "s1", "namespace": "proj", "resourceVersion": "1",
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"initialPrompt": "old"}, "status": {"phase": "Stopped"}}
        self.reads = 0
        self.writes: list[dict[str, Any]] = []

    def list(self, namespace: str, *, label_selector: str) -> dict[str, Any]:
        assert label_selector == "ambient-code.io/scheduled-session-name=schedule-1"
        return {"items": [self.stored]}

    def get(self, name: str, namespace: str, *, timeout: float) -> dict[str, Any]:
        self.reads += 1
        return self.stored

    def update(self, obj: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        self.writes.append(obj)
        if obj["metadata"]["resourceVersion"] != str(self.version) or self.conflicts:
            if self.conflicts:  # another writer: a new version the next read sees
                self.conflicts -= 1
                self.version += 1
                self.stored = {**self.stored, "metadata": {
                    **self.stored["metadata"], "resourceVersion": str(self.version)}}
            raise Conflict(409, {"reason": "Conflict", "message": "the object has been "
                                                                    "modified"})
        self.stored = obj
        return obj

    def create(self, obj: dict[str, Any], namespace: str, *, timeout: float) -> dict[str, Any]:
        raise AssertionError("a resume creates nothing")


def trigger(sessions: Sessions) -> Trigger:
    return Trigger(sessions, backend_api="http://127.0.0.1:1/api",  # type: ignore[arg-type]
                   token_file="/nonexistent", now=lambda: NOW)


def test_a_resume_that_meets_a_conflict_reads_again_and_writes_once_it_is_fresh() -> None:
    sessions = Sessions(conflicts=2)
    trigger(sessions).run(settings_from_env({**ENV, "REUSE_LAST_SESSION": "true"}))
    assert sessions.reads == 3
    assert [w["metadata"]["resourceVersion"] for w in sessions.writes] == ["1", "2", "3"]
    stored = sessions.stored
    assert stored["metadata"]["annotations"]["ambient-code.io/desired-phase"] == "Running"
    assert stored["metadata"]["annotations"]["ambient-code.io/force-execute-prompt"] == "true"
    assert stored["spec"]["initialPrompt"] == "go"


def test_a_resume_gives_up_after_five_conflicts() -> None:
    sessions = Sessions(conflicts=5)
    with pytest.raises(TriggerError, match="failed to resume session s1: still conflicting"):
        trigger(sessions).run(settings_from_env({**ENV, "REUSE_LAST_SESSION": "true"}))
    assert sessions.reads == 5 and len(sessions.writes) == 5


def test_a_resume_whose_session_vanished_fails_without_creating() -> None:
    sessions = Sessions(conflicts=0)

    def gone(name: str, namespace: str, *, timeout: float) -> dict[str, Any]:
        raise NotFound(404, {"reason": "NotFound", "message": "not found"})

    sessions.get = gone  # type: ignore[method-assign]
    with pytest.raises(TriggerError, match="failed to resume session s1: 404 NotFound"):
        trigger(sessions).run(settings_from_env({**ENV, "REUSE_LAST_SESSION": "true"}))
