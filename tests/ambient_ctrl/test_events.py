"""The event recorder against the local API server: what ends up as Events on the server."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from ambient_ctrl.client import Client
from ambient_ctrl.events import EventRecorder
from envtest import LocalAPIServer
from foundation.clock import FakeClock, rfc3339
from informers.resource import CONFIGMAPS, EVENTS, NAMESPACES

NS = "default"
_names = itertools.count()


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def recorder(client: Client, clock: FakeClock) -> EventRecorder:
    return EventRecorder(client, component="test-controller", host="pod-0", clock=clock)


@pytest.fixture()
def cm(client: Client) -> dict[str, Any]:
    return client.create(CONFIGMAPS, {"metadata": {"name": f"cm{next(_names)}",
                                                   "namespace": NS}})


def events_of(client: Client, obj: dict[str, Any], namespace: str = NS) -> list[dict[str, Any]]:
    items = client.resource(EVENTS).list(namespace)["items"]
    uid = obj["metadata"]["uid"]
    found = [e for e in items if e["involvedObject"].get("uid") == uid]
    return sorted(found, key=lambda e: e["metadata"]["name"])


def test_first_record_creates_a_complete_event(client: Client, recorder: EventRecorder,
                                               clock: FakeClock, cm: dict[str, Any]) -> None:
    recorder.record(cm, "Normal", reason="Created", message="created the runner")
    (event,) = events_of(client, cm)
    now = rfc3339(clock.now())
    meta = cm["metadata"]
    assert event["involvedObject"] == {
        "kind": "ConfigMap", "apiVersion": "v1", "name": meta["name"], "namespace": NS,
        "uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}
    assert {k: event.get(k) for k in ("reason", "message", "type", "source", "firstTimestamp",
                                      "lastTimestamp", "count", "reportingComponent",
                                      "reportingInstance")} == {
        "reason": "Created", "message": "created the runner", "type": "Normal",
        "source": {"component": "test-controller", "host": "pod-0"},
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        "reportingComponent": "test-controller", "reportingInstance": "pod-0"}
    name, _, suffix = event["metadata"]["name"].rpartition(".")
    assert name == meta["name"] and len(suffix) == 16 and int(suffix, 16)
    assert event["metadata"]["namespace"] == NS


def test_repeats_bump_count_and_last_timestamp(client: Client, recorder: EventRecorder,
                                               clock: FakeClock, cm: dict[str, Any]) -> None:
    first = rfc3339(clock.now())
    recorder.record(cm, "Warning", reason="Failed", message="image pull failed")
    clock.step(30)
    recorder.record(cm, "Warning", reason="Failed", message="image pull failed")
    clock.step(30)
    recorder.record(cm, "Warning", reason="Failed", message="image pull failed")
    (event,) = events_of(client, cm)
    assert (event["count"], event["firstTimestamp"], event["lastTimestamp"]) == (
        3, first, rfc3339(clock.now()))


def test_different_reason_message_or_type_is_a_new_event(client: Client,
                                                         recorder: EventRecorder,
                                                         cm: dict[str, Any]) -> None:
    recorder.record(cm, "Normal", reason="A", message="m")
    recorder.record(cm, "Normal", reason="B", message="m")
    recorder.record(cm, "Normal", reason="A", message="other")
    recorder.record(cm, "Warning", reason="A", message="m")
    recorder.record(cm, "Normal", reason="A", message="m")
    events = events_of(client, cm)
    assert sorted((e["type"], e["reason"], e["message"], e["count"]) for e in events) == [
        ("Normal", "A", "m", 2), ("Normal", "A", "other", 1), ("Normal", "B", "m", 1),
        ("Warning", "A", "m", 1)]
    assert len({e["metadata"]["name"] for e in events}) == 4


def test_a_repeat_after_the_ttl_creates_a_new_event(client: Client, recorder: EventRecorder,
                                                    clock: FakeClock,
                                                    cm: dict[str, Any]) -> None:
    recorder.record(cm, "Normal", reason="Synced", message="ok")
    clock.step(599)
    recorder.record(cm, "Normal", reason="Synced", message="ok")  # within: the window slides
    clock.step(601)
    recorder.record(cm, "Normal", reason="Synced", message="ok")
    assert [e["count"] for e in events_of(client, cm)] == [2, 1]


def test_rate_limit_drops_the_excess_and_refills(client: Client, clock: FakeClock,
                                                 cm: dict[str, Any]) -> None:
    recorder = EventRecorder(client, component="c", clock=clock, burst=3, qps=1 / 60)
    for i in range(5):
        recorder.record(cm, "Normal", reason=f"R{i}", message="m")
    assert [e["reason"] for e in events_of(client, cm)] == ["R0", "R1", "R2"]
    recorder.record(cm, "Normal", reason="R0", message="m")  # repeats are limited too
    assert [e["count"] for e in events_of(client, cm)] == [1, 1, 1]
    clock.step(60)
    recorder.record(cm, "Normal", reason="R0", message="m")
    recorder.record(cm, "Normal", reason="R9", message="m")
    assert [(e["reason"], e["count"]) for e in events_of(client, cm)] == [
        ("R0", 2), ("R1", 1), ("R2", 1)]


def test_the_limit_is_per_object(client: Client, clock: FakeClock,
                                 cm: dict[str, Any]) -> None:
    other = client.create(CONFIGMAPS, {"metadata": {"name": f"cm{next(_names)}",
                                                    "namespace": NS}})
    recorder = EventRecorder(client, component="c", clock=clock, burst=1)
    recorder.record(cm, "Normal", reason="A", message="m")
    recorder.record(cm, "Normal", reason="B", message="m")
    recorder.record(other, "Normal", reason="A", message="m")
    assert len(events_of(client, cm)) == 1 and len(events_of(client, other)) == 1


def test_api_failure_does_not_raise(api: LocalAPIServer, client: Client,
                                    recorder: EventRecorder, cm: dict[str, Any]) -> None:
    api.faults.fail(code=500, count=1, resources=["events"])
    try:
        recorder.record(cm, "Warning", reason="Lost", message="m")
    finally:
        api.faults.clear()
    assert events_of(client, cm) == []
    recorder.record(cm, "Warning", reason="Lost", message="m")
    assert [e["count"] for e in events_of(client, cm)] == [1]


def test_a_failed_repeat_does_not_raise(api: LocalAPIServer, client: Client,
                                        recorder: EventRecorder, cm: dict[str, Any]) -> None:
    recorder.record(cm, "Normal", reason="Again", message="m")
    api.faults.fail(code=503, count=1, resources=["events"])
    try:
        recorder.record(cm, "Normal", reason="Again", message="m")
    finally:
        api.faults.clear()
    recorder.record(cm, "Normal", reason="Again", message="m")
    (event,) = events_of(client, cm)
    assert event["count"] == 3  # the occurrence whose patch failed still counts


def test_a_deleted_event_is_created_again(client: Client, recorder: EventRecorder,
                                          cm: dict[str, Any]) -> None:
    recorder.record(cm, "Normal", reason="Expired", message="m")
    (event,) = events_of(client, cm)
    client.delete(EVENTS, event["metadata"]["name"], NS)
    recorder.record(cm, "Normal", reason="Expired", message="m")
    (again,) = events_of(client, cm)
    assert again["metadata"]["name"] == event["metadata"]["name"]
    assert again["count"] == 2


def test_cluster_scoped_objects_get_events_in_default(client: Client,
                                                      recorder: EventRecorder) -> None:
    namespace = client.create(NAMESPACES, {"metadata": {"name": f"ev{next(_names)}"}})
    recorder.record(namespace, "Normal", reason="Seen", message="m")
    (event,) = events_of(client, namespace, "default")
    assert "namespace" not in event["involvedObject"]


def test_unknown_type_is_dropped(client: Client, recorder: EventRecorder,
                                 cm: dict[str, Any]) -> None:
    recorder.record(cm, "Error", reason="Nope", message="m")
    assert events_of(client, cm) == []


def test_same_instant_events_get_distinct_names(client: Client, recorder: EventRecorder,
                                                cm: dict[str, Any]) -> None:
    for i in range(3):
        recorder.record(cm, "Normal", reason=f"Same{i}", message="m")
    assert len({e["metadata"]["name"] for e in events_of(client, cm)}) == 3


def test_started_recorder_writes_off_the_callers_thread_and_stop_flushes(
        api: LocalAPIServer, client: Client, clock: FakeClock, cm: dict[str, Any]) -> None:
    recorder = EventRecorder(client, component="async", clock=clock)
    recorder.start()
    api.faults.add_latency(0.5, verbs=["create"], resources=["events"])
    try:
        for i in range(3):
            recorder.record(cm, "Normal", reason=f"Step{i}", message="m")
        assert events_of(client, cm) == []  # record returned before any write finished
        assert recorder.stop(10)  # writes what was queued before returning
    finally:
        api.faults.clear()
    assert [e["reason"] for e in events_of(client, cm)] == ["Step0", "Step1", "Step2"]
    recorder.record(cm, "Normal", reason="AfterStop", message="m")  # stopped: written inline
    assert events_of(client, cm)[-1]["reason"] == "AfterStop"


def test_a_full_queue_drops_events_instead_of_blocking(api: LocalAPIServer, client: Client,
                                                       clock: FakeClock,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    import ambient_ctrl.events as events_module

    monkeypatch.setattr(events_module, "MAX_QUEUED", 2)
    targets = [client.create(CONFIGMAPS, {"metadata": {"name": f"full{i}", "namespace": NS}})
               for i in range(6)]
    recorder = EventRecorder(client, component="full", clock=clock)
    recorder.start()
    api.faults.add_latency(0.3, verbs=["create"], resources=["events"])
    try:
        for obj in targets:
            recorder.record(obj, "Warning", reason="Busy", message="m")
        assert recorder.stop(10)
    finally:
        api.faults.clear()
    written = sum(len(events_of(client, obj)) for obj in targets)
    # One in the writer's hands, two queued; the rest were dropped, each with a warning.
    assert 2 <= written <= 3
    assert sum("event dropped" in r.getMessage() for r in caplog.records) == 6 - written
