"""Fault injection as a client sees it: errors, Retry-After, latency, pauses, drops, restarts."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import urllib3

from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer, ServerOptions
from tests.conftest import RawClient

CM = "/api/v1/namespaces/default/configmaps"


@pytest.fixture()
def server() -> Iterator[LocalAPIServer]:
    with LocalAPIServer(admin_port=0, seed=7,
                        options=ServerOptions(history_limit=50)) as api:
        yield api


@pytest.fixture()
def raw(server: LocalAPIServer) -> Iterator[RawClient]:
    with RawClient(server.url) as client:
        yield client


def _cm(name: str) -> dict:
    return {"metadata": {"name": name}}


def test_fail_next_n_matching_requests(server: LocalAPIServer, raw: RawClient) -> None:
    server.faults.fail(code=503, count=2, verbs=["create"], resources=["configmaps"])
    assert raw.get(CM)[0] == 200, "other verbs are not affected"
    assert raw.post("/api/v1/namespaces/default/secrets", _cm("s"))[0] == 201
    first, body = raw.post(CM, _cm("a"))
    assert (first, body["reason"], body["code"]) == (503, "ServiceUnavailable", 503)
    assert raw.post(CM, _cm("a"))[0] == 503
    assert raw.post(CM, _cm("a"))[0] == 201, "the fault is spent after two"
    assert server.faults.state()["failures"] == []


def test_429_carries_retry_after(server: LocalAPIServer, raw: RawClient) -> None:
    server.faults.fail(code=429, count=1, retry_after=3)
    resp = raw.http.request("GET", server.url + CM)
    assert resp.status == 429 and resp.headers["Retry-After"] == "3"
    status = __import__("orjson").loads(resp.data)
    assert status["reason"] == "TooManyRequests" and status["details"]["retryAfterSeconds"] == 3


def _outcomes(seed: int) -> list[int]:
    with LocalAPIServer(seed=seed) as api, RawClient(api.url) as client:
        api.faults.fail(code=500, fraction=0.5, verbs=["list"])
        return [client.get(CM)[0] for _ in range(30)]


def test_fraction_is_seeded_and_repeatable() -> None:
    first = _outcomes(3)
    assert first == _outcomes(3)
    assert {200, 500} == set(first)
    assert first != _outcomes(4)


def test_latency_delays_only_matching_requests(server: LocalAPIServer, raw: RawClient) -> None:
    server.faults.add_latency(1.0, verbs=["list"])
    finished: list[str] = []

    def slow() -> None:
        with RawClient(server.url) as other:
            assert other.get(CM)[0] == 200
        finished.append("slow-list")

    thread = threading.Thread(target=slow)
    thread.start()
    eventually(lambda: server.cluster.requests[("list", "", "configmaps")] == 1)
    assert raw.post(CM, _cm("fast"))[0] == 201
    finished.append("create")
    thread.join(10)
    assert finished == ["create", "slow-list"]


def test_pause_holds_requests_until_resume(server: LocalAPIServer, raw: RawClient) -> None:
    server.faults.pause()
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(raw.post(CM, _cm("held"))[0]))
    thread.start()
    eventually(lambda: server.cluster.requests[("create", "", "configmaps")] == 1)
    assert results == [] and thread.is_alive()
    server.faults.resume()
    thread.join(10)
    assert results == [201]


def test_drop_watches_now_and_periodically(server: LocalAPIServer, raw: RawClient) -> None:
    with raw.watch(f"{CM}?watch=1") as watch:
        eventually(lambda: server.faults.drop_watches() == 1)
        assert watch.next() is None, "the stream was cut"
    server.faults.drop_watches_every(0.2)
    with raw.watch(f"{CM}?watch=1") as watch:
        assert watch.next(timeout=10) is None
    server.faults.drop_watches_every(None)


def test_restart_forgets_history_and_refuses_connections_for_a_while(
        server: LocalAPIServer, raw: RawClient) -> None:
    _, obj = raw.post(CM, _cm("before"))
    version = obj["metadata"]["resourceVersion"]
    raw.post(CM, _cm("after"))  # the watch below asks for an older version than the newest
    server.faults.restart(downtime=1.0)
    fresh = urllib3.PoolManager(retries=False)
    try:
        def refused() -> bool:
            try:
                fresh.request("GET", server.url + CM)
            except urllib3.exceptions.HTTPError:
                return True
            return False

        eventually(refused, message="the listener did not close")
        eventually(lambda: fresh.request("GET", server.url + CM).status == 200,
                   ignoring=(urllib3.exceptions.HTTPError,), message="did not come back")
    finally:
        fresh.clear()
    with RawClient(server.url) as client, client.watch(f"{CM}?watch=1&resourceVersion={version}"
                                                       ) as watch:
        event = watch.next()
    assert event["type"] == "ERROR" and event["object"]["code"] == 410
    with RawClient(server.url) as client:
        assert client.get(f"{CM}/before")[0] == 200, "objects survive a restart"


def test_admin_endpoint(server: LocalAPIServer, raw: RawClient) -> None:
    with RawClient(server.admin_url) as admin:
        status, state = admin.post("/faults/fail", {"code": 500, "count": 1,
                                                    "resources": ["configmaps"]})
        assert status == 200 and state["failures"][0]["count"] == 1
        assert raw.get(CM)[0] == 500
        assert raw.get(CM)[0] == 200
        assert admin.post("/faults/fail", {"code": 418})[0] == 400
        assert admin.post("/faults/latency", {"seconds": 0.01})[0] == 200
        assert admin.request("DELETE", "/faults")[1]["latencies"] == []
        status, counts = admin.get("/requests")
        lists = [c for c in counts if c["verb"] == "list" and c["resource"] == "configmaps"]
        assert lists and lists[0]["count"] == 2
        assert admin.get("/nowhere")[0] == 404
