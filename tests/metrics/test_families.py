"""The families exposed by a Recorder: names, types, label names and buckets as
controller-runtime v0.24 has them, and what each recording method does to them."""

from __future__ import annotations

import time
from collections.abc import Iterable

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from foundation.clock import FakeClock
from metrics import (
    ControllerRecorder,
    QueueStats,
    ReconcileResult,
    Recorder,
    new_registry,
)

# Upstream: sigs.k8s.io/controller-runtime v0.24.1,
# pkg/internal/controller/metrics/metrics.go (controller families and the reconcile buckets).
RECONCILE_BUCKETS = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8,
    0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30,
    40, 50, 60,
]
# pkg/internal/metrics/workqueue.go: prometheus.ExponentialBuckets(10e-9, 10, 12). The Go client
# multiplies repeatedly, so two bounds are not round decimals; these are the `le` values a
# controller-runtime operator exposes.
WORKQUEUE_BUCKETS = [
    1e-08, 1e-07, 1e-06, 9.999999999999999e-06, 9.999999999999999e-05, 0.001, 0.01, 0.1, 1.0,
    10.0, 100.0, 1000.0,
]
# client-go's rest_client_request_duration_seconds buckets (controller-runtime main,
# pkg/metrics/client_go_adapter.go, opt-in there after v0.24).
REST_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0]

Row = tuple[str, str, set[str], list[float] | None]
"""(name as exposed, type, label names, finite buckets or None)"""

UPSTREAM: list[Row] = [
    # pkg/internal/controller/metrics/metrics.go
    ("controller_runtime_reconcile_total", "counter", {"controller", "result"}, None),
    ("controller_runtime_reconcile_errors_total", "counter", {"controller"}, None),
    ("controller_runtime_terminal_reconcile_errors_total", "counter", {"controller"}, None),
    ("controller_runtime_reconcile_panics_total", "counter", {"controller"}, None),
    ("controller_runtime_reconcile_timeouts_total", "counter", {"controller"}, None),
    ("controller_runtime_reconcile_time_seconds", "histogram", {"controller"},
     RECONCILE_BUCKETS),
    ("controller_runtime_max_concurrent_reconciles", "gauge", {"controller"}, None),
    ("controller_runtime_active_workers", "gauge", {"controller"}, None),
    # pkg/metrics/workqueue.go (names) and pkg/internal/metrics/workqueue.go (labels, buckets)
    ("workqueue_depth", "gauge", {"name", "controller", "priority"}, None),
    ("workqueue_adds_total", "counter", {"name", "controller"}, None),
    ("workqueue_queue_duration_seconds", "histogram", {"name", "controller"}, WORKQUEUE_BUCKETS),
    ("workqueue_work_duration_seconds", "histogram", {"name", "controller"}, WORKQUEUE_BUCKETS),
    ("workqueue_unfinished_work_seconds", "gauge", {"name", "controller"}, None),
    ("workqueue_longest_running_processor_seconds", "gauge", {"name", "controller"}, None),
    ("workqueue_retries_total", "counter", {"name", "controller"}, None),
    # pkg/metrics/client_go_adapter.go
    ("rest_client_requests_total", "counter", {"code", "method", "host"}, None),
    ("rest_client_request_duration_seconds", "histogram", {"verb", "host"}, REST_BUCKETS),
    # pkg/metrics/leaderelection.go
    ("leader_election_master_status", "gauge", {"name"}, None),
    # pkg/webhook/internal/metrics/metrics.go (prometheus.DefBuckets)
    ("controller_runtime_webhook_latency_seconds", "histogram", {"webhook", "code"},
     [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
    ("controller_runtime_webhook_requests_total", "counter", {"webhook", "code"}, None),
    ("controller_runtime_webhook_requests_in_flight", "gauge", {"webhook"}, None),
]
# This project's own (metrics/informer.py).
PROJECT: list[Row] = [
    ("informer_events_total", "counter", {"resource", "type"}, None),
    ("informer_relists_total", "counter", {"resource"}, None),
    ("informer_watch_restarts_total", "counter", {"resource"}, None),
    ("informer_last_event_age_seconds", "gauge", {"resource"}, None),
]


class Queue:
    """A QueueStats with settable answers."""

    def __init__(self, depth: int = 0, processing: Iterable[float] = (),
                 by_priority: dict[int, int] | None = None) -> None:
        self.waiting = depth
        self.processing = list(processing)
        self.by_priority = by_priority

    def depth(self) -> int:
        return self.waiting

    def depth_by_priority(self) -> dict[int, int] | None:
        return self.by_priority

    def processing_seconds(self) -> Iterable[float]:
        return self.processing


class Exposed:
    """A registry's Prometheus text exposition, parsed with prometheus_client's parser."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.text = generate_latest(registry).decode()
        self.families = {}
        for family in text_string_to_metric_families(self.text):
            name = family.name + ("_total" if family.type == "counter" else "")
            self.families[name] = family

    def value(self, name: str, /, **labels: str) -> float | None:
        family = self.families.get(name.removesuffix("_bucket").removesuffix("_count"))
        for sample in family.samples if family else ():
            if sample.name == name and sample.labels == labels:
                return sample.value
        return None

    def shape(self, name: str) -> tuple[str, set[str], list[float] | None]:
        family = self.families[name]
        labels = {key for s in family.samples for key in s.labels} - {"le"}
        buckets = None
        if family.type == "histogram":
            first = next(s.labels for s in family.samples if s.name.endswith("_bucket"))
            series = {k: v for k, v in first.items() if k != "le"}
            buckets = [float(s.labels["le"]) for s in family.samples
                       if s.name.endswith("_bucket")
                       and {k: v for k, v in s.labels.items() if k != "le"} == series]
            assert buckets.pop() == float("inf")
        return family.type, labels, buckets


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def recorder(clock: FakeClock) -> Recorder:
    return Recorder(new_registry(runtime_collectors=False), monotonic=clock.monotonic)


def populated(recorder: Recorder) -> Exposed:
    """Touch every family once so each has a series to inspect."""
    recorder.controller.register("c", max_concurrent_reconciles=1)
    recorder.workqueue.register("c", stats=Queue())
    recorder.rest.observe(verb="GET", method="GET", host="h:6443", code="200", seconds=0.1)
    recorder.leader.set_leader("lease", True)
    recorder.informer.event("pods", "ADDED")
    recorder.webhook.started("/convert")
    recorder.webhook.answered("/convert", 200, 0.01)
    return Exposed(recorder.registry)


@pytest.mark.parametrize(("name", "kind", "labels", "buckets"), UPSTREAM + PROJECT,
                         ids=[row[0] for row in UPSTREAM + PROJECT])
def test_family_matches_table(recorder: Recorder, name: str, kind: str, labels: set[str],
                              buckets: list[float] | None) -> None:
    assert populated(recorder).shape(name) == (kind, labels, buckets)


def test_no_other_families_and_no_created_series(recorder: Recorder) -> None:
    exposed = populated(recorder)
    assert set(exposed.families) == {row[0] for row in UPSTREAM + PROJECT}
    assert "_created" not in exposed.text


def test_registering_a_controller_presets_every_result_to_zero(recorder: Recorder) -> None:
    recorder.controller.register("sessions", max_concurrent_reconciles=4)
    exposed = Exposed(recorder.registry)
    for result in ("success", "error", "requeue", "requeue_after"):
        assert exposed.value("controller_runtime_reconcile_total", controller="sessions",
                             result=result) == 0.0
    for name in ("controller_runtime_reconcile_errors_total",
                 "controller_runtime_terminal_reconcile_errors_total",
                 "controller_runtime_reconcile_panics_total",
                 "controller_runtime_reconcile_timeouts_total",
                 "controller_runtime_active_workers"):
        assert exposed.value(name, controller="sessions") == 0.0, name
    assert exposed.value("controller_runtime_max_concurrent_reconciles",
                         controller="sessions") == 4.0


def test_reconcile_outcomes(recorder: Recorder) -> None:
    rec: ControllerRecorder = recorder.controller.register("c", max_concurrent_reconciles=2)
    rec.reconciled(ReconcileResult.SUCCESS, seconds=0.004)
    rec.reconciled(ReconcileResult.REQUEUE_AFTER, seconds=0.2)
    rec.reconciled(ReconcileResult.ERROR, seconds=0.3)
    rec.reconciled(ReconcileResult.ERROR, seconds=0.3, terminal=True)
    rec.panicked()
    rec.timed_out()
    exposed = Exposed(recorder.registry)
    total = "controller_runtime_reconcile_total"
    assert exposed.value(total, controller="c", result="success") == 1
    assert exposed.value(total, controller="c", result="requeue_after") == 1
    assert exposed.value(total, controller="c", result="error") == 2
    assert exposed.value(total, controller="c", result="requeue") == 0
    assert exposed.value("controller_runtime_reconcile_errors_total", controller="c") == 2
    assert exposed.value("controller_runtime_terminal_reconcile_errors_total",
                         controller="c") == 1
    assert exposed.value("controller_runtime_reconcile_panics_total", controller="c") == 1
    assert exposed.value("controller_runtime_reconcile_timeouts_total", controller="c") == 1
    assert exposed.value("controller_runtime_reconcile_time_seconds_count", controller="c") == 4
    assert exposed.value("controller_runtime_reconcile_time_seconds_bucket", controller="c",
                         le="0.005") == 1


def test_only_an_error_can_be_terminal(recorder: Recorder) -> None:
    rec = recorder.controller.register("c", max_concurrent_reconciles=1)
    with pytest.raises(ValueError, match="terminal"):
        rec.reconciled(ReconcileResult.SUCCESS, seconds=0.1, terminal=True)


def test_active_workers_follow_the_with_block(recorder: Recorder) -> None:
    rec = recorder.controller.register("c", max_concurrent_reconciles=2)
    with rec.active_worker(), rec.active_worker():
        assert Exposed(recorder.registry).value("controller_runtime_active_workers",
                                                controller="c") == 2
    with pytest.raises(RuntimeError), rec.active_worker():
        raise RuntimeError("reconcile blew up")
    assert Exposed(recorder.registry).value("controller_runtime_active_workers",
                                            controller="c") == 0


def test_registering_a_controller_twice_keeps_its_counts(recorder: Recorder) -> None:
    recorder.controller.register("c", max_concurrent_reconciles=1).reconciled(
        ReconcileResult.SUCCESS, seconds=0.1)
    recorder.controller.register("c", max_concurrent_reconciles=3)
    exposed = Exposed(recorder.registry)
    assert exposed.value("controller_runtime_reconcile_total", controller="c",
                         result="success") == 1
    assert exposed.value("controller_runtime_max_concurrent_reconciles", controller="c") == 3


def test_workqueue_gauges_are_read_from_the_queue_at_scrape_time(recorder: Recorder) -> None:
    queue = Queue(depth=3, processing=[1.5, 4.0])
    stats: QueueStats = queue
    rec = recorder.workqueue.register("sessions", stats=stats)
    rec.added()
    rec.retried()
    rec.observe_queue_duration(0.002)
    rec.observe_work_duration(0.5)
    labels = {"name": "sessions", "controller": "sessions"}
    exposed = Exposed(recorder.registry)
    assert exposed.value("workqueue_depth", priority="", **labels) == 3
    assert exposed.value("workqueue_unfinished_work_seconds", **labels) == 5.5
    assert exposed.value("workqueue_longest_running_processor_seconds", **labels) == 4.0
    assert exposed.value("workqueue_adds_total", **labels) == 1
    assert exposed.value("workqueue_retries_total", **labels) == 1
    assert exposed.value("workqueue_queue_duration_seconds_count", **labels) == 1
    assert exposed.value("workqueue_work_duration_seconds_count", **labels) == 1

    queue.waiting, queue.processing = 0, []
    exposed = Exposed(recorder.registry)
    assert exposed.value("workqueue_depth", priority="", **labels) == 0
    assert exposed.value("workqueue_unfinished_work_seconds", **labels) == 0
    assert exposed.value("workqueue_longest_running_processor_seconds", **labels) == 0


def test_workqueue_controller_label_and_close(recorder: Recorder) -> None:
    rec = recorder.workqueue.register("q", controller="ctl", stats=Queue(depth=1))
    with pytest.raises(ValueError, match="registered"):
        recorder.workqueue.register("q", controller="ctl", stats=Queue())
    rec.added()
    assert Exposed(recorder.registry).value("workqueue_depth", name="q", controller="ctl",
                                            priority="") == 1
    rec.close()
    exposed = Exposed(recorder.registry)
    assert exposed.value("workqueue_depth", name="q", controller="ctl", priority="") is None
    assert exposed.value("workqueue_adds_total", name="q", controller="ctl") == 1
    recorder.workqueue.register("q", controller="ctl", stats=Queue())  # the name is free again


def test_a_broken_queue_does_not_break_the_scrape(recorder: Recorder) -> None:
    class Broken(Queue):
        def depth(self) -> int:
            raise RuntimeError("lock poisoned")

    recorder.workqueue.register("broken", stats=Broken())
    recorder.workqueue.register("fine", stats=Queue(depth=2))
    exposed = Exposed(recorder.registry)
    assert exposed.value("workqueue_depth", name="fine", controller="fine", priority="") == 2
    assert exposed.value("workqueue_depth", name="broken", controller="broken",
                         priority="") is None


def test_rest_client_requests(recorder: Recorder) -> None:
    rest = recorder.rest
    rest.observe(verb="LIST", method="GET", host="10.0.0.1:6443", code="200", seconds=0.03)
    rest.observe(verb="PATCH", method="patch", host="10.0.0.1:6443", code="409", seconds=0.01)
    rest.observe(verb="GET", method="GET", host="10.0.0.1:6443", code="<error>", seconds=30.0)
    exposed = Exposed(recorder.registry)
    host = "10.0.0.1:6443"
    assert exposed.value("rest_client_requests_total", code="200", method="GET", host=host) == 1
    assert exposed.value("rest_client_requests_total", code="409", method="PATCH",
                         host=host) == 1
    assert exposed.value("rest_client_requests_total", code="<error>", method="GET",
                         host=host) == 1
    # client-go labels latency by HTTP method, not by the caller's verb
    assert exposed.value("rest_client_request_duration_seconds_count", verb="GET",
                         host=host) == 2
    assert exposed.value("rest_client_request_duration_seconds_bucket", verb="GET", host=host,
                         le="0.1") == 1


def test_leader_election_status(recorder: Recorder) -> None:
    recorder.leader.set_leader("ambient-operator", True)
    assert Exposed(recorder.registry).value("leader_election_master_status",
                                            name="ambient-operator") == 1
    recorder.leader.set_leader("ambient-operator", False)
    assert Exposed(recorder.registry).value("leader_election_master_status",
                                            name="ambient-operator") == 0


def test_informer_health(recorder: Recorder, clock: FakeClock) -> None:
    informer = recorder.informer
    informer.relist("pods")
    informer.watch_restart("pods")
    clock.step(7)
    exposed = Exposed(recorder.registry)
    # no event yet: the age counts from the informer's first report, every type is at 0
    assert exposed.value("informer_last_event_age_seconds", resource="pods") == 7
    for event_type in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"):
        assert exposed.value("informer_events_total", resource="pods", type=event_type) == 0
    informer.event("pods", "ADDED")
    informer.event("pods", "BOOKMARK")
    informer.event("pods", "SURPRISE")
    clock.step(2.5)
    informer.relist("pods")
    informer.watch_restart("pods")
    exposed = Exposed(recorder.registry)
    assert exposed.value("informer_last_event_age_seconds", resource="pods") == 2.5
    assert exposed.value("informer_events_total", resource="pods", type="ADDED") == 1
    assert exposed.value("informer_events_total", resource="pods", type="BOOKMARK") == 1
    assert exposed.value("informer_events_total", resource="pods", type="other") == 1
    assert exposed.value("informer_relists_total", resource="pods") == 2
    assert exposed.value("informer_watch_restarts_total", resource="pods") == 2


def test_families_are_created_per_registry(clock: FakeClock) -> None:
    # Building the families twice in one process must not raise (no global registry), and
    # each registry sees only its own recordings.
    first = Recorder(new_registry(), monotonic=clock.monotonic)
    second = Recorder(new_registry(), monotonic=clock.monotonic)
    first.controller.register("c", max_concurrent_reconciles=1).reconciled(
        ReconcileResult.SUCCESS, seconds=0.1)
    second.controller.register("c", max_concurrent_reconciles=1)
    one, two = Exposed(first.registry), Exposed(second.registry)
    assert set(one.families) == set(two.families)
    assert one.value("controller_runtime_reconcile_total", controller="c", result="success") == 1
    assert two.value("controller_runtime_reconcile_total", controller="c", result="success") == 0


def test_the_global_registry_is_untouched(clock: FakeClock) -> None:
    from prometheus_client import REGISTRY

    Recorder(new_registry(), monotonic=time.monotonic)
    names = {family.name for family in REGISTRY.collect()}
    assert not {n for n in names if n.startswith(("controller_runtime", "workqueue"))}


def test_registry_has_process_and_platform_collectors() -> None:
    exposed = Exposed(new_registry())
    assert "python_info" in exposed.families
    assert "process_start_time_seconds" in exposed.families
    assert not Exposed(new_registry(runtime_collectors=False)).families
