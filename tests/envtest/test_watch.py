"""Watch semantics: resume, bookmarks, 410, WatchList, selector transitions, slow watchers."""

from __future__ import annotations

import logging
import socket
import threading

import pytest

from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer, ServerOptions
from tests.conftest import RawClient


def cm(name: str, labels: dict | None = None, **data: str) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": data}


def test_watch_from_resource_version_sees_only_later_changes(client: RawClient,
                                                            namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, first = client.post(path, cm("w1"))
    rv = first["metadata"]["resourceVersion"]
    with client.watch(f"{path}?watch=1&resourceVersion={rv}") as watch:
        client.post(path, cm("w2"))
        client.patch(f"{path}/w1", {"metadata": {"annotations": {"touch": "1"}}})
        client.delete(f"{path}/w2")
        events = watch.take(3)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w2"), ("MODIFIED", "w1"), ("DELETED", "w2")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and versions[0] > int(rv)


def test_watch_without_version_lists_existing_first(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    client.post(path, cm("pre"))
    with client.watch(f"{path}?watch=true") as watch:
        event = watch.next()
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "pre")


def test_bookmarks_while_idle(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, obj = client.post(path, cm("b"))
    rv = obj["metadata"]["resourceVersion"]
    with client.watch(f"{path}?watch=1&allowWatchBookmarks=true&resourceVersion={rv}") as w:
        event = w.next()
    assert event["type"] == "BOOKMARK"
    assert int(event["object"]["metadata"]["resourceVersion"]) >= int(rv)
    assert event["object"]["kind"] == "ConfigMap"


def test_expired_version_gets_410_error_event(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, obj = client.post(path, cm("old"))
    for i in range(520):  # the module's server keeps 500 events
        client.patch(f"{path}/old", {"data": {"i": str(i)}})
    with client.watch(f"{path}?watch=1&resourceVersion={obj['metadata']['resourceVersion']}") as w:
        event = w.next()
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
        assert w.next() is None, "the stream ends after the error"


def test_watch_list_initial_events_end_bookmark(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    client.post(path, cm("i1"))
    client.post(path, cm("i2"))
    query = "watch=1&sendInitialEvents=true&allowWatchBookmarks=true&" \
            "resourceVersionMatch=NotOlderThan"
    with client.watch(f"{path}?{query}") as w:
        events = w.take(3)
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    assert events[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    status, _ = client.get(f"{path}?watch=1&sendInitialEvents=true")
    assert status == 422, "WatchList without bookmarks is refused, never ignored"


def test_label_selector_transitions(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, obj = client.post(path, cm("sel", {"app": "x"}))
    rv = obj["metadata"]["resourceVersion"]
    with client.watch(f"{path}?watch=1&labelSelector=app%3Dy&resourceVersion={rv}") as w:
        client.patch(f"{path}/sel", {"metadata": {"labels": {"app": "y"}}})
        client.patch(f"{path}/sel", {"metadata": {"labels": {"app": "z"}}})
        events = w.take(2)
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


def test_legacy_watch_path_on_one_object(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, obj = client.post(path, cm("one"))
    client.post(path, cm("other"))
    rv = obj["metadata"]["resourceVersion"]
    with client.watch(f"/api/v1/watch/namespaces/{namespace}/configmaps/one?resourceVersion={rv}"
                      ) as w:
        client.patch(f"{path}/other", {"data": {"a": "1"}})
        client.patch(f"{path}/one", {"data": {"a": "1"}})
        event = w.next()
    assert event["object"]["metadata"]["name"] == "one"


def test_timeout_seconds_ends_the_stream(client: RawClient, namespace: str) -> None:
    with client.watch(f"/api/v1/namespaces/{namespace}/configmaps?watch=1&timeoutSeconds=1") as w:
        assert w.next(timeout=10) is None


def test_slow_watcher_is_disconnected_and_writers_go_on() -> None:
    options = ServerOptions(max_watch_backlog=256 * 1024)
    with LocalAPIServer(options=options) as api, RawClient(api.url) as client, \
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        host, port = api.cluster.server_address.split(":")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: no scaling
        sock.connect((host, int(port)))
        sock.sendall(b"GET /api/v1/namespaces/default/configmaps?watch=1 HTTP/1.1\r\n"
                     b"Host: x\r\n\r\n")
        eventually(lambda: api.call(lambda c: len(c.store.subscribers()) == 1))
        blob = "x" * 50000
        for i in range(200):  # ~10 MB of events the watcher never reads
            status, _ = client.post("/api/v1/namespaces/default/configmaps",
                                    cm(f"c{i}", payload=blob))
            assert status == 201
        eventually(lambda: api.call(lambda c: len(c.store.subscribers()) == 0),
                   message="the stalled watcher was not dropped")


def stalled_watch(api: LocalAPIServer, path: str) -> socket.socket:
    """A watch whose client never reads (a small receive buffer, set before connecting)."""
    host, port = api.cluster.server_address.split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def test_stalled_watchers_together_are_bounded_the_furthest_behind_goes_first(
        caplog: pytest.LogCaptureFixture) -> None:
    """Each stalled watcher stays under its own bound, but together they pass the server's:
    the one furthest behind is dropped, never a watcher that reads, and the others stay.
    Before, 40 such watchers grew the server by 1.9 GiB: only each one's bound applied."""
    bound = 16 * 1024 * 1024
    options = ServerOptions(max_watch_backlog=bound, max_watch_backlog_total=bound)
    caplog.set_level(logging.WARNING, logger="envtest.storage.watch")
    with LocalAPIServer(options=options) as api, RawClient(api.url) as client:
        path = "/api/v1/namespaces/default/configmaps"
        reader = client.watch(f"{path}?watch=1")
        early = stalled_watch(api, f"{path}?watch=1")  # behind on every event
        eventually(lambda: api.call(lambda c: len(c.store.subscribers()) == 2))
        blob = "x" * 50000
        # 6 MB only the early watcher gets: more than the kernel's socket buffers absorb
        for i in range(120):
            assert client.post(path, cm(f"a{i}", payload=blob))[0] == 201
        now = client.get(path)[1]["metadata"]["resourceVersion"]  # from now: no ADDED replay
        middle = [stalled_watch(api, f"{path}?watch=1&resourceVersion={now}") for _ in range(2)]
        late = [stalled_watch(api, f"{path}?watch=1&resourceVersion={10**6}")
                for _ in range(3)]  # silent: a version the store has not reached
        try:
            eventually(lambda: api.call(lambda c: len(c.store.subscribers()) == 7))
            i = 120
            while api.call(lambda c: len(c.store.subscribers())) == 7 and i < 600:
                assert client.post(path, cm(f"a{i}", payload=blob))[0] == 201
                i += 1
            # Dropped by the total, not by its own bound; the others stay; the reader has
            # every event.
            assert api.call(lambda c: len(c.store.subscribers())) == 6
            assert early.recv(1 << 20) and _closed(early)
            assert not any(_closed(sock, wait=0.2) for sock in [*middle, *late])
            assert [r.getMessage() for r in caplog.records if "the furthest" in r.getMessage()]
            assert len(reader.take(i, timeout=20)) == i
        finally:
            for sock in [early, *middle, *late]:
                sock.close()
            reader.close()


def test_one_watcher_may_hold_its_own_bound_whatever_the_total() -> None:
    """A per-watcher bound raised above the total (a benchmark replaying a long history at
    once) is honoured: the total never drops a watcher under its own bound."""
    options = ServerOptions(max_watch_backlog=8 * 1024 * 1024,
                            max_watch_backlog_total=1024 * 1024)
    with LocalAPIServer(options=options) as api, RawClient(api.url) as client:
        path = "/api/v1/namespaces/default/configmaps"
        blob = "x" * 50000
        for i in range(60):  # 3 MB of history, replayed at once to a watcher not reading yet
            assert client.post(path, cm(f"h{i}", payload=blob))[0] == 201
        sock = stalled_watch(api, f"{path}?watch=1&resourceVersion=1")
        try:
            eventually(lambda: api.call(lambda c: len(c.store.subscribers()) == 1))
            assert not _closed(sock, wait=0.5)
        finally:
            sock.close()


def _closed(sock: socket.socket, wait: float = 10.0) -> bool:
    """Whether the server has closed ``sock`` (reading what it still holds first)."""
    sock.settimeout(wait)
    try:
        while sock.recv(1 << 20):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_concurrent_writers_and_watchers_see_every_event_in_order() -> None:
    with LocalAPIServer() as api, RawClient(api.url) as client:
        path = "/api/v1/namespaces/default/configmaps"
        watches = [client.watch(f"{path}?watch=1&resourceVersion=1") for _ in range(3)]
        writers, per_writer = 4, 50

        def write(n: int) -> None:
            with RawClient(api.url) as local:
                for i in range(per_writer):
                    assert local.post(path, cm(f"w{n}-{i}"))[0] == 201

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for watch in watches:
            events = watch.take(writers * per_writer, timeout=20)
            versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
            assert versions == sorted(set(versions))
            assert {e["object"]["metadata"]["name"] for e in events} == {
                f"w{n}-{i}" for n in range(writers) for i in range(per_writer)}
            watch.close()
