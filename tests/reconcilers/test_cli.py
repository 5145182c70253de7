"""``ambient-ctrl run``'s options: one precedence for every option (flag > AMBIENT_CTRL_<NAME> >
upstream's variable, where upstream's operator has one > default), upstream's Deployment
arguments accepted as they are, and a configuration that cannot run refused at start with one
line (the Vertex preflight, a bad count) — the last two by running the command."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from reconcilers import command

UPSTREAM_ARGS = ["--max-concurrent-reconciles=10", "--health-probe-bind-address=:8081",
                 "--leader-elect=false"]
"""components/manifests/base/core/operator-deployment.yaml's args, verbatim."""

OPTIONS_WITH_UPSTREAM_VARIABLE = [
    # (flag, dest, AMBIENT_CTRL_ name, upstream's variable, default, a value, the flag's value)
    ("--max-concurrent-reconciles", "max_concurrent_reconciles",
     "AMBIENT_CTRL_MAX_CONCURRENT_RECONCILES", "MAX_CONCURRENT_RECONCILES", 8,
     ("7", 7), ("12", 12)),
    ("--registry-namespace", "registry_namespace", "AMBIENT_CTRL_REGISTRY_NAMESPACE",
     "NAMESPACE", "ambient-code", ("platform", "platform"), ("flagged", "flagged")),
    ("--leader-election-namespace", "leader_election_namespace",
     "AMBIENT_CTRL_LEADER_ELECTION_NAMESPACE", "NAMESPACE", "ambient-code",
     ("platform", "platform"), ("flagged", "flagged")),
]
"""Every option of ``run`` that upstream's operator also reads from its environment."""


def parse(argv: list[str]) -> argparse.Namespace:
    """``ambient-ctrl run <argv>`` as the command parses it (the parser is built now: option
    defaults come from the environment of this moment)."""
    parser = argparse.ArgumentParser(prog="ambient-ctrl")
    command.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["run", *argv])


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of the variables the options read, whatever the test's own environment has."""
    for name in list(os.environ):
        if name.startswith("AMBIENT_CTRL_") or name in ("NAMESPACE",
                                                       "MAX_CONCURRENT_RECONCILES"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("option", OPTIONS_WITH_UPSTREAM_VARIABLE, ids=lambda o: o[0])
def test_flag_over_ours_over_upstreams_over_default(
        monkeypatch: pytest.MonkeyPatch, option: tuple) -> None:
    flag, dest, ours, upstream, default, (text, value), (flag_text, flag_value) = option
    assert getattr(parse([]), dest) == default
    monkeypatch.setenv(upstream, text)
    assert getattr(parse([]), dest) == value, "upstream's variable is read"
    monkeypatch.setenv(ours, flag_text)
    assert getattr(parse([]), dest) == flag_value, "AMBIENT_CTRL_ wins over upstream's"
    monkeypatch.setenv(ours, text)
    monkeypatch.setenv(upstream, flag_text)
    assert getattr(parse([]), dest) == value, "AMBIENT_CTRL_ wins over upstream's"
    assert getattr(parse([f"{flag}={flag_text}"]), dest) == flag_value, "the flag wins"
    # An empty variable counts as unset (upstream reads os.Getenv(...) != "").
    monkeypatch.setenv(ours, "")
    assert getattr(parse([]), dest) == flag_value
    monkeypatch.setenv(upstream, "")
    assert getattr(parse([]), dest) == default


def test_upstream_deployment_arguments_are_accepted_as_they_are(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_RECONCILES", "10")
    args = parse(UPSTREAM_ARGS)
    assert args.max_concurrent_reconciles == 10
    assert args.health_probe_bind_address == ":8081"
    assert args.leader_elect is False
    # the other spellings of the switch
    assert parse(["--leader-elect"]).leader_elect is True
    assert parse(["--leader-elect=true"]).leader_elect is True
    monkeypatch.setenv("AMBIENT_CTRL_LEADER_ELECT", "true")
    assert parse([]).leader_elect is True
    assert parse(["--leader-elect=false"]).leader_elect is False


def test_a_flag_wins_over_upstreams_variable_unlike_upstream(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstream's operator lets MAX_CONCURRENT_RECONCILES override its flag; here the flag
    wins, as for every option (upstream's Deployment sets both to 10, so nothing changes)."""
    monkeypatch.setenv("MAX_CONCURRENT_RECONCILES", "3")
    assert parse(["--max-concurrent-reconciles=10"]).max_concurrent_reconciles == 10


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_a_count_that_cannot_be_used_is_a_usage_error_of_run(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        value: str) -> None:
    monkeypatch.setenv("MAX_CONCURRENT_RECONCILES", value)
    parser = argparse.ArgumentParser(prog="ambient-ctrl")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("other").set_defaults(run=None)
    command.register(commands)  # building the parser does not fail...
    assert parser.parse_args(["other"]).command == "other"  # ...nor does another command
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["run"])
    assert exit_info.value.code == 2
    assert "--max-concurrent-reconciles: expected a positive integer" in capsys.readouterr().err
    # The flag replaces the variable, so a good flag beside a bad variable runs.
    assert parser.parse_args(["run", "--max-concurrent-reconciles=2"]
                             ).max_concurrent_reconciles == 2


@pytest.mark.parametrize("name", ["AMBIENT_CTRL_LEADER_ELECTION_LEASE_DURATION",
                                  "AMBIENT_CTRL_LEADER_ELECT"])
def test_our_variables_are_checked_when_run_parses(
        monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "soon")
    with pytest.raises(SystemExit) as exit_info:
        parse([])
    assert exit_info.value.code == 2


# --- the command itself ----------------------------------------------------------------------
def run_command(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """``ambient-ctrl <argv>`` with only ``env`` (and PATH) in its environment."""
    return subprocess.run(
        [sys.executable, "-m", "ambient_ctrl.cli", *argv],
        env={"PATH": os.environ.get("PATH", ""), **env}, capture_output=True, text=True,
        timeout=60, check=False)


@pytest.mark.parametrize("switch", ["USE_VERTEX", "CLAUDE_CODE_USE_VERTEX"])
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_vertex_preflight_refuses_to_start_with_one_line(switch: str, log_format: str) -> None:
    """Upstream's preflight (main.go → preflight.ValidateVertexConfig): with Vertex on, the
    project, the region and the credentials path must be set, or the operator does not start.
    Refused before any connection (the kubeconfig does not exist)."""
    done = run_command({switch: "true", "CLOUD_ML_REGION": "us-east5"}, "run",
                       *UPSTREAM_ARGS, "--kubeconfig=/nonexistent/kubeconfig",
                       f"--log-format={log_format}")
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "cannot start: USE_VERTEX is on but ANTHROPIC_VERTEX_PROJECT_ID, " \
           "GOOGLE_APPLICATION_CREDENTIALS is not set" in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_bad_upstream_count_stops_run_only() -> None:
    env = {"MAX_CONCURRENT_RECONCILES": "ten"}
    done = run_command(env, "run", "--kubeconfig=/nonexistent/kubeconfig")
    assert done.returncode == 2
    assert "argument --max-concurrent-reconciles: expected a positive integer, got 'ten'" \
        in done.stderr
    assert "Traceback" not in done.stderr
    assert run_command(env, "apiserver", "--help").returncode == 0


def test_priority_queue_is_on_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse([]).priority_queue is True
    assert parse(["--priority-queue=false"]).priority_queue is False
    monkeypatch.setenv("AMBIENT_CTRL_PRIORITY_QUEUE", "false")
    assert parse([]).priority_queue is False
    assert parse(["--priority-queue"]).priority_queue is True
