"""core/v1 and events.k8s.io/v1 Events: one store seen through both APIs, with kube's mapping
(note/message, regarding/involvedObject, reportingController/reportingComponent,
deprecatedCount/count, ...), through kubectl and the Python client's CoreV1Api and EventsV1Api.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kubernetes import client as k8s

from envtest import LocalAPIServer
from envtest.verbs.events import to_core, to_events
from informers.rest import load_configuration
from tests.conftest import run_kubectl

from ..conftest import RawClient, typed_client

NS = "default"
EVENTS = f"/apis/events.k8s.io/v1/namespaces/{NS}/events"
CORE = f"/api/v1/namespaces/{NS}/events"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalAPIServer]:
    with LocalAPIServer() as running:
        yield running


@pytest.fixture()
def apis(server: LocalAPIServer) -> Iterator[tuple[k8s.CoreV1Api, k8s.EventsV1Api]]:
    with typed_client(load_configuration(server.kubeconfig)) as api:
        yield k8s.CoreV1Api(api), k8s.EventsV1Api(api)


@pytest.fixture()
def raw(server: LocalAPIServer) -> Iterator[RawClient]:
    with RawClient(server.url) as client:
        yield client


def kubectl(server: LocalAPIServer, tmp: Path, *args: str) -> str:
    done = run_kubectl(server.kubeconfig, tmp, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def new_style(name: str, pod: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "eventTime": "2026-01-02T03:04:05.000006Z",
            "reportingController": "example.com/ctrl", "reportingInstance": "ctrl-0",
            "action": "Scheduling", "reason": "Scheduled", "type": "Normal",
            "note": f"{pod} went somewhere",
            "regarding": {"kind": "Pod", "namespace": NS, "name": pod, "apiVersion": "v1"}}


def old_style(name: str, pod: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "reason": "Pulled", "type": "Warning",
            "message": f"{pod} pulled", "count": 3, "source": {"component": "kubelet"},
            "firstTimestamp": "2026-01-02T03:04:05Z", "lastTimestamp": "2026-01-02T03:05:05Z",
            "eventTime": "2026-01-02T03:04:05.000000Z", "reportingComponent": "kubelet",
            "reportingInstance": "node-1",
            "involvedObject": {"kind": "Pod", "namespace": NS, "name": pod}}


def test_the_mapping_round_trips_in_kubes_field_order() -> None:
    core = old_style("e", "p")
    served = to_events(core)
    assert list(served) == ["metadata", "eventTime", "reportingController",
                            "reportingInstance", "reason", "regarding", "note", "type",
                            "deprecatedSource", "deprecatedFirstTimestamp",
                            "deprecatedLastTimestamp", "deprecatedCount"]
    assert to_core(served) == core


def test_written_through_events_v1_read_through_core_and_kubectl(
        server: LocalAPIServer, apis: tuple[k8s.CoreV1Api, k8s.EventsV1Api],
        tmp_path: Path) -> None:
    core, events = apis
    made = events.create_namespaced_event(NS, k8s.EventsV1Event.from_dict(
        new_style("new-style", "web-1")))
    assert made.note == "web-1 went somewhere" and made.api_version == "events.k8s.io/v1"
    seen = core.read_namespaced_event("new-style", NS)
    assert seen.message == "web-1 went somewhere"
    assert seen.involved_object.name == "web-1"
    assert seen.reporting_component == "example.com/ctrl"
    assert seen.action == "Scheduling" and seen.reporting_instance == "ctrl-0"
    listed = orjson.loads(kubectl(server, tmp_path, "get", "events", "-o", "json"))
    mine = [e for e in listed["items"] if e["metadata"]["name"] == "new-style"]
    assert mine and mine[0]["message"] == "web-1 went somewhere"
    assert "new-style" in kubectl(server, tmp_path, "get", "events.v1.events.k8s.io")


def test_written_through_core_read_through_events_v1(
        apis: tuple[k8s.CoreV1Api, k8s.EventsV1Api], raw: RawClient) -> None:
    core, events = apis
    core.create_namespaced_event(NS, old_style("old-style", "db-0"))
    seen = events.read_namespaced_event("old-style", NS)
    assert seen.note == "db-0 pulled" and seen.regarding.name == "db-0"
    assert seen.deprecated_count == 3 and seen.deprecated_source.component == "kubelet"
    assert seen.reporting_controller == "kubelet"
    assert seen.deprecated_first_timestamp is not None
    status, body = raw.get(f"{EVENTS}/old-style")
    assert status == 200 and body["apiVersion"] == "events.k8s.io/v1"
    assert "message" not in body and "involvedObject" not in body
    names = [e.metadata.name for e in events.list_namespaced_event(NS).items]
    assert "old-style" in names


def test_field_selectors_in_each_apis_terms(
        apis: tuple[k8s.CoreV1Api, k8s.EventsV1Api]) -> None:
    core, events = apis
    core.create_namespaced_event(NS, old_style("select-a", "target-pod"))
    events.create_namespaced_event(NS, k8s.EventsV1Event.from_dict(
        new_style("select-b", "other-pod")))
    by_regarding = events.list_namespaced_event(NS, field_selector="regarding.name=target-pod")
    assert [e.metadata.name for e in by_regarding.items] == ["select-a"]
    by_controller = events.list_namespaced_event(
        NS, field_selector="reportingController=example.com/ctrl,regarding.name=other-pod")
    assert [e.metadata.name for e in by_controller.items] == ["select-b"]
    by_involved = core.list_namespaced_event(NS, field_selector="involvedObject.name=other-pod")
    assert [e.metadata.name for e in by_involved.items] == ["select-b"]


def test_patches_in_events_v1_terms(apis: tuple[k8s.CoreV1Api, k8s.EventsV1Api],
                                    raw: RawClient) -> None:
    core, events = apis
    core.create_namespaced_event(NS, old_style("patched", "api-0"))
    events.patch_namespaced_event("patched", NS, {"note": "merged", "deprecatedCount": 4})
    seen = core.read_namespaced_event("patched", NS)
    assert (seen.message, seen.count) == ("merged", 4)
    status, body = raw.request("PATCH", f"{EVENTS}/patched",
                               raw=orjson.dumps([{"op": "replace", "path": "/note",
                                                  "value": "json-patched"}]),
                               content_type="application/json-patch+json")
    assert status == 200 and body["note"] == "json-patched"
    assert core.read_namespaced_event("patched", NS).message == "json-patched"


def test_a_watch_through_events_v1_sees_core_writes(
        apis: tuple[k8s.CoreV1Api, k8s.EventsV1Api]) -> None:
    core, events = apis
    stream = events.list_namespaced_event(NS, watch=True, timeout_seconds=10,
                                          field_selector="regarding.name=watched-pod",
                                          _preload_content=False, _request_timeout=(5, 10))
    try:
        core.create_namespaced_event(NS, old_style("watched", "watched-pod"))
        buffered = b""
        for chunk in stream.stream(amt=None):
            buffered += chunk
            if b"\n" in buffered:
                break
        event = orjson.loads(buffered.split(b"\n")[0])
        assert event["type"] == "ADDED"
        assert event["object"]["apiVersion"] == "events.k8s.io/v1"
        assert event["object"]["note"] == "watched-pod pulled"
        assert event["object"]["regarding"]["name"] == "watched-pod"
    finally:
        stream.release_conn()
        stream.close()


def test_errors_name_the_api_asked(apis: tuple[k8s.CoreV1Api, k8s.EventsV1Api],
                                   raw: RawClient) -> None:
    _, events = apis
    with pytest.raises(k8s.ApiException) as missing:
        events.read_namespaced_event("nowhere", NS)
    body = orjson.loads(missing.value.body)
    assert body["message"] == 'events.events.k8s.io "nowhere" not found'
    assert body["details"] == {"name": "nowhere", "group": "events.k8s.io", "kind": "events"}
    status, answer = raw.post(EVENTS, {"apiVersion": "v1", "kind": "Event",
                                       "metadata": {"name": "wrong"}})
    assert status == 400 and "does not match the expected API version" in answer["message"]


def test_deleted_through_one_gone_from_both(apis: tuple[k8s.CoreV1Api, k8s.EventsV1Api]
                                            ) -> None:
    core, events = apis
    core.create_namespaced_event(NS, old_style("short-lived", "x"))
    events.delete_namespaced_event("short-lived", NS)
    with pytest.raises(k8s.ApiException) as gone:
        core.read_namespaced_event("short-lived", NS)
    assert gone.value.status == 404
