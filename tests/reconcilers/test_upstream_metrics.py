"""Upstream's ``ambient_*`` series (reconcilers.upstream_metrics): upstream's names, types and
label names as its collector exposes them, what each pass records, and the bounds upstream's
instruments do not have. The series of a real operator run are scraped in e2e/test_dropin.py."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families

from ambient_ctrl.reconcile import Request, Result
from foundation.clock import FakeClock
from metrics.recorder import Recorder
from metrics.registry import new_registry
from reconcilers.metrics import SessionMetrics
from reconcilers.resources import Phase
from reconcilers.upstream_metrics import (
    NAMESPACES,
    USERS,
    TimedReconciler,
    UpstreamMetrics,
    namespace_phase,
)

NOW = dt.datetime(2026, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
COUNTERS = ("ambient_session_phase_transitions", "ambient_sessions_completed",
            "ambient_sessions_by_project", "ambient_sessions_by_user",
            "ambient_reconcile_retries", "ambient_session_timeouts")
HISTOGRAMS = ("ambient_session_startup_duration", "ambient_session_total_duration",
              "ambient_reconcile_duration")
GAUGES = ("ambient_sessions_active", "ambient_sessions_pending")


@dataclass
class StepStub:
    phase: Phase
    status: dict[str, Any] = field(default_factory=dict)


def at(seconds: float) -> str:
    return (NOW + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def session(namespace: str = "project-a", **annotations: str) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": "session-1",
                         "annotations": annotations}}


class World:
    def __init__(self, counts: dict[str, int] | None = None) -> None:
        self.registry = new_registry(runtime_collectors=False)
        self.counts = counts or {}
        self.metrics = UpstreamMetrics(Recorder(self.registry, monotonic=lambda: 0.0),
                                       sessions=lambda: self.counts)

    def move(self, before: str, after: Phase, *, obj: dict[str, Any] | None = None,
             now: dt.datetime = NOW, **status: Any) -> None:
        self.metrics.passed(obj or session(), {"phase": before} if before else {},
                            StepStub(after, status), now)

    def samples(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        out = {}
        for family in text_string_to_metric_families(generate_latest(self.registry).decode()):
            for sample in family.samples:
                if sample.name == name:
                    out[tuple(sorted(sample.labels.items()))] = sample.value
        return out


def test_families_have_upstreams_names_types_and_labels() -> None:
    world = World({"project-a/Running": 2})
    world.move("", Phase.CREATING)
    world.metrics.reconciled("project-a", "Running", 0.01, success=True)
    text = generate_latest(world.registry).decode()
    for name in COUNTERS:
        assert f"# TYPE {name} untyped" in text  # no _total: as the collector exposes a sum
        assert f"{name}_total" not in text and f"{name}_created" not in text
    for name in HISTOGRAMS:
        assert f"# TYPE {name} histogram" in text
    for name in GAUGES:
        assert f"# TYPE {name} gauge" in text
    # The exposition Prometheus asks for parses strictly.
    families = {f.name: f for f in openmetrics_parser.text_string_to_metric_families(
        openmetrics.generate_latest(world.registry).decode())}
    assert {families[name].type for name in COUNTERS} == {"unknown"}
    assert families["ambient_sessions_by_project"].samples[0].labels == {
        "namespace": "project-a"}


def test_a_run_from_start_to_inactivity_stop() -> None:
    world = World()
    world.move("", Phase.PENDING)  # the first status write: nothing happened yet
    assert world.samples("ambient_session_phase_transitions") == {}
    world.move("Pending", Phase.CREATING, startTime=at(0))
    world.move("Creating", Phase.RUNNING, startTime=at(0), now=NOW + dt.timedelta(seconds=7))
    world.move("Running", Phase.STOPPING, startTime=at(0))
    world.move("Stopping", Phase.STOPPED, startTime=at(0), completionTime=at(3600),
               stoppedReason="inactivity")
    world.move("Stopped", Phase.STOPPED)  # no change: nothing recorded
    transitions = world.samples("ambient_session_phase_transitions")
    assert transitions == {
        (("from_phase", f), ("namespace", "project-a"), ("to_phase", t)): 1.0
        for f, t in (("Pending", "Creating"), ("Creating", "Running"), ("Running", "Stopping"),
                     ("Stopping", "Stopped"))}
    assert world.samples("ambient_sessions_by_project") == {(("namespace", "project-a"),): 1.0}
    assert world.samples("ambient_sessions_by_user") == {
        (("namespace", "project-a"), ("user", "unknown")): 1.0}
    assert world.samples("ambient_session_startup_duration_sum") == {
        (("namespace", "project-a"),): 7.0}
    assert world.samples("ambient_session_total_duration_sum") == {
        (("namespace", "project-a"),): 3600.0}
    assert world.samples("ambient_sessions_completed") == {
        (("final_phase", "Stopped"), ("namespace", "project-a")): 1.0}
    assert world.samples("ambient_session_timeouts") == {(("namespace", "project-a"),): 1.0}


def test_user_stop_failure_and_lost_workload() -> None:
    world = World()
    world.move("Stopping", Phase.STOPPED, stoppedReason="user")
    world.move("Running", Phase.FAILED, startTime=at(0), completionTime=at(30))
    world.move("Running", Phase.PENDING)  # the workload was lost: upstream's retry
    world.move("Creating", Phase.PENDING)
    world.move("Stopped", Phase.PENDING)  # a restart is no retry
    assert world.samples("ambient_session_timeouts") == {}
    assert world.samples("ambient_sessions_completed") == {
        (("final_phase", "Stopped"), ("namespace", "project-a")): 1.0,
        (("final_phase", "Failed"), ("namespace", "project-a")): 1.0}
    assert world.samples("ambient_reconcile_retries") == {
        (("namespace", "project-a"), ("phase", "Running")): 1.0,
        (("namespace", "project-a"), ("phase", "Creating")): 1.0}


def test_created_by_names_the_user_as_upstream_reads_it() -> None:
    world = World()
    world.move("Pending", Phase.CREATING,
               obj=session(**{"ambient-code.io/created-by": "alice"}))
    assert world.samples("ambient_sessions_by_user") == {
        (("namespace", "project-a"), ("user", "alice")): 1.0}


def test_namespaces_and_users_are_bounded() -> None:
    world = World()
    for i in range(NAMESPACES + 5):
        world.move("Pending", Phase.CREATING, obj=session(f"ns-{i}", **{
            "ambient-code.io/created-by": f"user-{i}"}))
    by_project = world.samples("ambient_sessions_by_project")
    assert len(by_project) == NAMESPACES + 1
    assert by_project[(("namespace", "other"),)] == 5.0
    users = {dict(labels)["user"] for labels in world.samples("ambient_sessions_by_user")}
    assert len(users) == USERS + 1 and "other" in users


def test_gauges_count_live_sessions_per_namespace_at_scrape() -> None:
    world = World({"a/Running": 2, "b/Running": 1, "b/Pending": 3, "c/Creating": 1,
                   "c/Stopped": 4, "d/Running": 0})
    assert world.samples("ambient_sessions_active") == {
        (("namespace", "a"),): 2.0, (("namespace", "b"),): 1.0}
    assert world.samples("ambient_sessions_pending") == {
        (("namespace", "b"),): 3.0, (("namespace", "c"),): 1.0}
    world.counts.clear()  # the sessions went: so do their series
    assert world.samples("ambient_sessions_active") == {}
    assert namespace_phase({"metadata": {"namespace": "a"}}) == ("a/Pending",)
    assert namespace_phase({"metadata": {"namespace": "a"},
                            "status": {"phase": "Running"}}) == ("a/Running",)


class Inner:
    def __init__(self, clock: FakeClock, *, fail: bool = False) -> None:
        self.clock, self.fail = clock, fail

    def reconcile(self, request: Request) -> Result:
        self.clock.step(0.2)
        if self.fail:
            raise RuntimeError("the API server said no")
        return Result()


def test_timed_reconciler_records_duration_by_phase_and_failures_as_retries() -> None:
    world, clock = World(), FakeClock()
    phases = {"ok": "Running", "gone": None}
    timed = TimedReconciler(Inner(clock), world.metrics, phase_of=lambda r: phases[r.name],
                            clock=clock)
    assert timed.reconcile(Request("project-a", "ok")) == Result()
    assert timed.reconcile(Request("project-a", "gone")) == Result()  # not recorded
    failing = TimedReconciler(Inner(clock, fail=True), world.metrics,
                              phase_of=lambda r: "Pending", clock=clock)
    with pytest.raises(RuntimeError):
        failing.reconcile(Request("project-a", "bad"))
    assert world.samples("ambient_reconcile_duration_count") == {
        (("phase", "Running"), ("success", "true")): 1.0,
        (("phase", "Pending"), ("success", "false")): 1.0}
    assert world.samples("ambient_reconcile_duration_sum")[
        (("phase", "Running"), ("success", "true"))] == pytest.approx(0.2)
    assert world.samples("ambient_reconcile_retries") == {
        (("namespace", "project-a"), ("phase", "Pending")): 1.0}


def test_session_metrics_feed_upstreams_only_when_on() -> None:
    registry = new_registry(runtime_collectors=False)
    recorder = Recorder(registry, monotonic=lambda: 0.0)
    SessionMetrics(recorder, sessions=dict).passed(session(), {"phase": "Pending"},
                                                   StepStub(Phase.CREATING), NOW)
    assert "ambient_" not in generate_latest(registry).decode()
    upstream = UpstreamMetrics(recorder, sessions=dict)
    SessionMetrics(Recorder(new_registry(runtime_collectors=False), monotonic=lambda: 0.0),
                   sessions=dict, upstream=upstream).passed(
        session(), {"phase": "Pending"}, StepStub(Phase.CREATING), NOW)
    assert 'ambient_sessions_by_project{namespace="project-a"} 1.0' in \
        generate_latest(registry).decode()
