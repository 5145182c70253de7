"""Seeding over the admin endpoint (envtest.seed): objects stored as given, read back whole."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from tests.conftest import RawClient

PODS = "/api/v1/namespaces/default/pods"


@pytest.fixture()
def server() -> Iterator[LocalAPIServer]:
    with LocalAPIServer(admin_port=0) as api:
        yield api


@pytest.fixture()
def admin(server: LocalAPIServer) -> Iterator[RawClient]:
    with RawClient(server.admin_url) as client:
        yield client


@pytest.fixture()
def raw(server: LocalAPIServer) -> Iterator[RawClient]:
    with RawClient(server.url) as client:
        yield client


def _owner() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "owner", "namespace": "default", "uid": "u-owner",
                         "creationTimestamp": "2020-01-02T03:04:05Z"}, "data": {"a": "b"}}


def _pod(owner_uid: str = "u-owner") -> dict[str, Any]:
    """A running pod as a kubelet left it: status, uid, owner and timestamps of its own."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "runner", "namespace": "default", "uid": "u-pod",
                         "creationTimestamp": "2020-01-02T03:04:06Z", "labels": {"app": "x"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
                                              "name": "owner", "uid": owner_uid}]},
            "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running", "podIP": "10.1.2.3",
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def test_objects_are_stored_as_given_and_watchers_see_them(admin: RawClient, raw: RawClient
                                                           ) -> None:
    _, listed = raw.get(PODS)
    events: list[dict[str, Any]] = []
    watching = threading.Thread(target=lambda: events.extend(_watch_one(
        raw, listed["metadata"]["resourceVersion"])))
    watching.start()
    status, answer = admin.post("/objects", {"items": [_owner(), _pod()]})
    watching.join(10)
    assert (status, answer["result"]) == (200, 2)
    status, pod = raw.get(f"{PODS}/runner")
    assert status == 200
    assert (pod["metadata"]["uid"], pod["metadata"]["creationTimestamp"]) == (
        "u-pod", "2020-01-02T03:04:06Z")
    assert pod["status"]["phase"] == "Running" and pod["spec"]["nodeName"] == "node-a"
    assert int(pod["metadata"]["resourceVersion"]) > int(listed["metadata"]["resourceVersion"])
    assert [(e["type"], e["object"]["metadata"]["uid"]) for e in events] == [("ADDED", "u-pod")]
    assert raw.get(f"{PODS}?labelSelector=app%3Dx")[1]["items"][0]["metadata"]["name"] == (
        "runner"), "selectors see a seeded object's labels"


def _watch_one(raw: RawClient, version: str) -> list[dict[str, Any]]:
    """The pod events of a watch from ``version`` that ends after 1 s."""
    response = raw.http.request("GET", f"{raw.url}{PODS}?watch=1&resourceVersion={version}"
                                       "&timeoutSeconds=1")
    assert response.status == 200
    return [orjson.loads(line) for line in response.data.splitlines() if line.strip()]


def test_dump_answers_every_object_and_a_second_load_replaces(admin: RawClient,
                                                              raw: RawClient) -> None:
    admin.post("/objects", {"items": [_owner()]})
    status, dumped = admin.get("/objects")
    assert status == 200
    kinds = {(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in dumped["items"]}
    assert {("v1", "ConfigMap", "owner"), ("v1", "Namespace", "default")} <= kinds
    changed = {**_owner(), "data": {"a": "c"}}
    assert admin.post("/objects", {"items": [changed]})[1]["result"] == 1
    assert raw.get("/api/v1/namespaces/default/configmaps/owner")[1]["data"] == {"a": "c"}


def test_the_garbage_collector_judges_seeded_owners(admin: RawClient, raw: RawClient) -> None:
    """An owner loaded before its dependent keeps it; a dependent whose owner does not exist
    is collected, as any object would be."""
    admin.post("/objects", {"items": [_owner(), _pod()]})
    orphan = _pod("u-gone")
    orphan["metadata"].update(name="orphan", uid="u-orphan")
    admin.post("/objects", {"items": [orphan]})
    eventually(lambda: raw.get(f"{PODS}/orphan")[0] == 404, timeout=5,
               message="the orphan was not collected")
    assert raw.get(f"{PODS}/runner")[0] == 200


@pytest.mark.parametrize(("item", "message"), [
    ({"apiVersion": "v1", "kind": "Nothing", "metadata": {"name": "x"}}, "served apiVersion"),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}, "metadata.name"),
    ({"apiVersion": "v1", "kind": "ConfigMap",
      "metadata": {"name": "x", "namespace": "nowhere"}}, "namespace 'nowhere' does not exist"),
    ("not an object", "served apiVersion"),
])
def test_a_bad_item_is_refused_with_its_index(admin: RawClient, item: Any, message: str
                                              ) -> None:
    status, answer = admin.post("/objects", {"items": [_owner(), item]})
    assert status == 400 and "item 1" in answer["error"] and message in answer["error"]
    assert admin.post("/objects", {"objects": []})[0] == 400, "items is required"
