"""A resourceVersion the server has not reached, answered as kube-apiserver answers it (issue 15
item 2), and a server "restored from a backup" whose revision is behind its clients'.

kube-apiserver's watch cache (``staging/src/k8s.io/apiserver/pkg/storage/cacher``): a list not
older than (or exactly at) such a version, and a watch-list (``sendInitialEvents``) from it,
wait up to 3 s (``blockTimeout``) for the cache to get there, then fail with
``storage.NewTooLargeResourceVersionError``: 504, reason Timeout, Retry-After 1, the cause
``ResourceVersionTooLarge``. A plain watch from it is accepted at once ("clients can wait for
events without unnecessary blocking") and sends nothing until the cache passes it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from envtest import LocalAPIServer, ServerOptions
from tests.conftest import RawClient

WAIT = 0.3
"""The server's wait for a version it has not reached (kube-apiserver's is 3 s)."""


@pytest.fixture(scope="module")
def api() -> Iterator[LocalAPIServer]:
    with LocalAPIServer(options=ServerOptions(bookmark_interval=0.1,
                                              resource_version_wait=WAIT)) as srv:
        yield srv


def cm(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}}


def revision(api: LocalAPIServer) -> int:
    return int(api.call(lambda cluster: cluster.store.revision))


def too_large_status(requested: int, current: int) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f"Timeout: Too large resource version: {requested}, current: {current}",
            "reason": "Timeout", "code": 504,
            "details": {"causes": [{"reason": "ResourceVersionTooLarge",
                                    "message": "Too large resource version"}],
                        "retryAfterSeconds": 1}}


@pytest.mark.parametrize("match", ["", "NotOlderThan", "Exact"])
def test_a_list_from_a_version_not_reached_is_too_large(api: LocalAPIServer, client: RawClient,
                                                        namespace: str, match: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    current = revision(api)
    query = f"resourceVersion={current + 100}" + (
        f"&resourceVersionMatch={match}" if match else "")
    resp = client.http.request("GET", f"{api.url}{path}?{query}")
    assert resp.status == 504
    assert resp.headers["Retry-After"] == "1"
    assert orjson.loads(resp.data) == too_large_status(current + 100, current)


def test_a_list_waits_for_a_version_about_to_be_reached() -> None:
    with LocalAPIServer(options=ServerOptions(resource_version_wait=20)) as slow, \
            RawClient(slow.url) as raw:
        path = "/api/v1/namespaces/default/configmaps"
        wanted = revision(slow) + 1
        answers: list[tuple[int, Any]] = []
        waiting = threading.Thread(target=lambda: answers.append(raw.get(
            f"{path}?resourceVersion={wanted}&resourceVersionMatch=NotOlderThan")))
        waiting.start()
        # Whether the list arrives before this write or after, it must answer 200 at a
        # version at least the one it asked for.
        assert raw.post(path, cm("arrives"))[0] == 201
        waiting.join(30)
    [(status, body)] = answers
    assert status == 200, body
    assert int(body["metadata"]["resourceVersion"]) >= wanted
    assert [item["metadata"]["name"] for item in body["items"]] == ["arrives"]


def test_a_list_at_a_version_reached_is_served_at_once(api: LocalAPIServer, client: RawClient,
                                                       namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, made = client.post(path, cm("here"))
    status, body = client.get(f"{path}?resourceVersion={made['metadata']['resourceVersion']}"
                              "&resourceVersionMatch=NotOlderThan&limit=1")
    assert status == 200 and [i["metadata"]["name"] for i in body["items"]] == ["here"]


def test_a_watch_from_a_version_not_reached_is_silent_until_the_store_passes_it(
        api: LocalAPIServer, client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    ahead = revision(api) + 3
    with client.watch(f"{path}?watch=1&allowWatchBookmarks=true"
                      f"&resourceVersion={ahead}") as watch:
        for name in ("w1", "w2", "w3"):  # revisions up to ``ahead`` itself: not sent
            assert client.post(path, cm(name))[0] == 201
        assert client.post(path, cm("w4"))[0] == 201
        first = watch.next()
        assert first is not None
        later = watch.next()  # BOOKMARKs may follow now that the store passed ``ahead``
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "w4")
    assert int(first["object"]["metadata"]["resourceVersion"]) == ahead + 1
    assert later is not None and later["type"] == "BOOKMARK"
    assert int(later["object"]["metadata"]["resourceVersion"]) > ahead


def test_a_watch_list_from_a_version_not_reached_ends_with_too_large(
        api: LocalAPIServer, client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    current = revision(api)
    query = (f"watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
             f"&resourceVersionMatch=NotOlderThan&resourceVersion={current + 100}")
    with client.watch(f"{path}?{query}") as watch:
        assert watch.status == 200  # the version parsed: errors come as events
        event = watch.next()
        assert watch.next() is None, "the stream ends after the error"
    assert event is not None and event["type"] == "ERROR"
    assert event["object"] == too_large_status(current + 100, current)


def test_a_restore_from_a_backup_puts_objects_and_revision_back() -> None:
    with LocalAPIServer(options=ServerOptions(resource_version_wait=WAIT)) as own, \
            RawClient(own.url) as client:
        path = "/api/v1/namespaces/default/configmaps"
        assert client.post(path, cm("kept"))[0] == 201
        backup = own.faults.backup()
        assert client.post(path, cm("lost"))[0] == 201
        assert client.delete(f"{path}/kept")[0] == 200
        seen = revision(own)
        own.faults.restore(backup)
        status, body = client.get(path)
        assert status == 200
        assert int(body["metadata"]["resourceVersion"]) == backup.revision < seen
        assert [item["metadata"]["name"] for item in body["items"]] == ["kept"]
        status, body = client.get(f"{path}?resourceVersion={seen}")
    assert status == 504 and body["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
