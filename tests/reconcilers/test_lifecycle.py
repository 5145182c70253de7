"""A session's life as the operator tells it and counts it (issue 16 items 2 and 6).

* Its log at INFO is its story, one line per step: ``session created``, ``session creating``,
  ``session running`` (backend, seconds), ``session stopping``, ``session stopped`` (reason),
  ``session deleted`` — after the framework's ``caches synced`` and ``controller started``.
* Deleting sessions is not an error: 40 sessions created then deleted — half while they
  start, half once Running — leave ``controller_runtime_reconcile_errors_total`` at 0 and log
  no ERROR line. The NotFound answers a deleted session's writes get (the TokenRequest of a
  ServiceAccount garbage-collected with it, a status patch) end the work.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from ambient_ctrl.logcontext import ContextFilter
from ambient_ctrl.testing import eventually
from reconcilers.resources import AGENTIC_SESSIONS

from .operator_fixture import NS, World, operator_world

SESSIONS = 40


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with operator_world(kubevirt=False) as w:
        yield w


def errors(world: World) -> float:
    return world.sample("controller_runtime_reconcile_errors_total",
                        controller="agenticsession")


def session_lines(records: list[logging.LogRecord], name: str) -> list[logging.LogRecord]:
    """What was logged at INFO and above about the session, or while reconciling it."""
    key = f"{NS}/{name}"
    return [r for r in records if r.levelno >= logging.INFO
            and key in (getattr(r, "session", None), getattr(r, "request", None))]


def test_a_sessions_life_is_one_info_line_per_step(caplog: pytest.LogCaptureFixture) -> None:
    caplog.handler.addFilter(ContextFilter())
    caplog.set_level(logging.INFO)
    with operator_world(kubevirt=False) as world:
        name = world.create()
        world.wait_phase(name, "Running")
        world.stop(name)
        world.wait_phase(name, "Stopped")
        world.client(AGENTIC_SESSIONS).delete(name, NS)
        eventually(lambda: [r for r in session_lines(caplog.records, name)
                            if r.getMessage() == "session deleted"],
                   message="the deletion was not logged")
        world.settled()  # and nothing more comes of it
        framework = [(r.getMessage(), getattr(r, "controller", None)) for r in caplog.records
                     if r.name.startswith("ambient_ctrl")]

    lines = session_lines(caplog.records, name)
    assert [(r.levelname, r.getMessage()) for r in lines] == [
        ("INFO", "session created"), ("INFO", "session creating"),
        ("INFO", "session running"), ("INFO", "session stopping"),
        ("INFO", "session stopped"), ("INFO", "session deleted")]
    _, _, running, _, stopped, _ = lines
    assert (running.backend, running.to) == ("pod", "Running")  # type: ignore[attr-defined]
    assert isinstance(running.seconds, float)  # type: ignore[attr-defined]
    assert stopped.reason == "user"  # type: ignore[attr-defined]
    assert framework.count(("caches synced", None)) == 1
    assert framework.count(("controller started", "agenticsession")) == 1


def test_bad_input_is_one_warning_line_without_traceback(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.handler.addFilter(ContextFilter())
    caplog.set_level(logging.INFO)
    name = world.create(runtime="bad-quantity")
    eventually(lambda: world.condition(name, "Ready").get("reason") == "InvalidQuantity",
               message="the bad input was not answered")
    world.settled()
    warnings = [r for r in session_lines(caplog.records, name) if r.levelno >= logging.WARNING]
    assert [(r.levelname, r.exc_info) for r in warnings] == [("WARNING", None)]
    assert "InvalidQuantity" in warnings[0].getMessage()


def test_deleting_sessions_mid_start_and_running_is_no_error(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    sessions = world.client(AGENTIC_SESSIONS)
    before = errors(world)
    starting = [world.create() for _ in range(SESSIONS // 2)]
    for name in starting:  # while their first reconciles create the children
        sessions.delete(name, NS)
    running = [world.create() for _ in range(SESSIONS // 2)]
    for name in running:
        world.wait_phase(name, "Running")
    for name in running:
        sessions.delete(name, NS)
    eventually(lambda: not {s["metadata"]["name"] for s in sessions.list(NS)["items"]}
               & {*starting, *running}, timeout=30, message="sessions not deleted")
    world.settled()  # every reconcile their deletion caused has run

    assert errors(world) - before == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    # A deletion is told once, for each session whose creation was (some went before the
    # operator ever saw them).
    told = {name: [r.getMessage() for r in session_lines(caplog.records, name)
                   if r.getMessage() in ("session created", "session deleted")]
            for name in (*starting, *running)}
    assert {name: lines for name, lines in told.items()
            if lines not in ([], ["session created", "session deleted"])} == {}
    assert all(told[name] for name in running)
