"""The raw-JSON client: every verb, patch types and typed errors, against the local server."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ambient_ctrl.testing import StandinHandler, eventually, http_standin
from envtest import LocalAPIServer
from foundation.clock import FakeClock
from informers import errors
from informers.resource import CONFIGMAPS, PODS, SERVICEACCOUNTS, Resource
from informers.rest import (
    AUTH_REFRESH,
    ResourceClient,
    Transport,
    TransportOptions,
    load_configuration,
)


def test_verbs_round_trip(transport: Transport) -> None:
    cms = ResourceClient(transport, CONFIGMAPS)
    created = cms.create({"metadata": {"name": "a", "namespace": "default"}, "data": {"k": "1"}})
    assert created["metadata"]["uid"]
    assert cms.get("a", "default")["data"] == {"k": "1"}
    created["data"]["k"] = "2"
    updated = cms.update(created)
    assert updated["data"] == {"k": "2"}
    assert cms.patch("a", {"data": {"m": "3"}}, "default")["data"] == {"k": "2", "m": "3"}
    ops = [{"op": "remove", "path": "/data/m"}]
    assert cms.patch("a", ops, "default", patch_type="json")["data"] == {"k": "2"}
    strategic = cms.patch("a", {"metadata": {"labels": {"x": "y"}}}, "default",
                          patch_type="strategic")
    assert strategic["metadata"]["labels"] == {"x": "y"}
    page = cms.list("default", label_selector="x=y")
    assert [i["metadata"]["name"] for i in page["items"]] == ["a"]
    cms.delete("a", "default")
    with pytest.raises(errors.NotFound):
        cms.get("a", "default")


def test_status_subresource_writes(transport: Transport) -> None:
    pods = ResourceClient(transport, PODS)
    pod = pods.create({"metadata": {"name": "p", "namespace": "default"},
                       "spec": {"containers": [{"name": "c", "image": "i"}]}})
    pod["status"] = {"phase": "Running"}
    assert pods.update_status(pod)["status"]["phase"] == "Running"
    patched = pods.patch_status("p", {"status": {"podIP": "10.0.0.1"}}, "default")
    assert patched["status"]["podIP"] == "10.0.0.1"


@pytest.mark.parametrize(("call", "expected"), [
    (lambda c: c.get("missing", "default"), errors.NotFound),
    (lambda c: c.create({"metadata": {"name": "dup", "namespace": "default"}}) and
     c.create({"metadata": {"name": "dup", "namespace": "default"}}), errors.AlreadyExists),
    (lambda c: c.create({"metadata": {"name": "old", "namespace": "default"}}) and
     c.update({"metadata": {"name": "old", "namespace": "default", "resourceVersion": "1"}}),
     errors.Conflict),
    (lambda c: c.create({"metadata": {"name": "Bad_Name", "namespace": "default"}}),
     errors.Invalid),
], ids=["not-found", "already-exists", "conflict", "invalid"])
def test_typed_errors(transport: Transport, call: object, expected: type) -> None:
    cms = ResourceClient(transport, CONFIGMAPS)
    with pytest.raises(expected) as info:
        call(cms)  # type: ignore[operator]
    assert info.value.status["kind"] == "Status"


def test_invalid_carries_causes_and_429_retry_after(server: LocalAPIServer) -> None:
    transport = Transport(load_configuration(server.kubeconfig),
                          options=TransportOptions(max_retries=0))  # raise, not retry
    cms = ResourceClient(transport, CONFIGMAPS)
    try:
        with pytest.raises(errors.Invalid) as info:
            cms.create({"metadata": {"name": "Bad_Name", "namespace": "default"}})
        assert info.value.causes[0]["field"] == "metadata.name"
        server.faults.fail(code=429, count=1, retry_after=7)
        with pytest.raises(errors.TooManyRequests) as limited:
            cms.list("default")
        assert limited.value.retry_after == 7.0
        server.faults.fail(code=503, count=1)
        with pytest.raises(errors.ServerError):
            cms.list("default")
    finally:
        transport.close()


@pytest.mark.parametrize("value", ["inf", "nan", "-3", "soon"])
def test_a_retry_after_that_is_no_number_of_seconds_is_none_or_zero(value: str) -> None:
    error = errors.error_from(429, b"", {"Retry-After": value})
    assert error.retry_after == (0.0 if value == "-3" else None)


# Retry-After (issue 15 item 8) -----------------------------------------------------------------
class Calling:
    """A request on its own thread against a transport on a fake clock, whose waits the test
    steps through."""

    def __init__(self, call: Any) -> None:
        self.result: list[Any] = []
        self.thread = threading.Thread(target=self._run, args=(call,), name="test-call")
        self.thread.start()

    def _run(self, call: Any) -> None:
        try:
            self.result.append(call())
        except Exception as exc:  # handed to the test
            self.result.append(exc)

    def outcome(self) -> Any:
        self.thread.join(10)
        assert not self.thread.is_alive()
        return self.result[0]


def _fake_clock_transport(server: LocalAPIServer, **options: Any) -> tuple[Transport, FakeClock]:
    clock = FakeClock()
    transport = Transport(load_configuration(server.kubeconfig), clock=clock,
                          options=TransportOptions(**options))
    return transport, clock


def _step_waits(clock: FakeClock, count: int) -> None:
    for n in range(count):
        eventually(lambda: clock.waiters == 1 and len(clock.requested) == n + 1,  # noqa: B023
                   timeout=10, message=f"the {n + 1}th wait for Retry-After")
        clock.step(clock.requested[n])


@pytest.mark.parametrize("verb", ["create", "patch", "delete", "get"])
def test_every_verb_waits_for_retry_after_and_tries_again(server: LocalAPIServer,
                                                          verb: str) -> None:
    """client-go's ``rest`` client: 429 + Retry-After is tried again after it, whatever the
    verb. Regression (issue 15 item 8): writes were not, and the controller's 5 ms backoff sent
    them again at once — 350 attempts in 20 s where ~200 were due."""
    transport, clock = _fake_clock_transport(server)
    cms = ResourceClient(transport, CONFIGMAPS)
    name = f"retried-{verb}"
    if verb != "create":
        cms.create({"metadata": {"name": name, "namespace": "default"}})
    calls = {"create": lambda: cms.create({"metadata": {"name": name, "namespace": "default"}}),
             "patch": lambda: cms.patch(name, {"data": {"k": "v"}}, "default"),
             "delete": lambda: cms.delete(name, "default"),
             "get": lambda: cms.get(name, "default")}
    before = server.cluster.requests[(verb, "", "configmaps")]
    server.faults.fail(code=429, count=3, retry_after=2, verbs=[verb])
    try:
        calling = Calling(calls[verb])
        _step_waits(clock, 3)
        outcome = calling.outcome()
    finally:
        transport.close()
    assert not isinstance(outcome, Exception), outcome
    assert clock.requested == [2.0, 2.0, 2.0]  # exactly what the server asked, each time
    assert server.cluster.requests[(verb, "", "configmaps")] - before == 4


def test_attempts_over_a_window_follow_retry_after(server: LocalAPIServer) -> None:
    """A server answering 429, Retry-After: 1, for 10 s: one attempt per second (11), then
    the error with its retry_after for the caller's queue."""
    transport, clock = _fake_clock_transport(server)
    cms = ResourceClient(transport, CONFIGMAPS)
    server.faults.fail(code=429, retry_after=1, verbs=["create"])
    before = server.cluster.requests[("create", "", "configmaps")]
    try:
        calling = Calling(lambda: cms.create({"metadata": {"name": "w", "namespace": "default"}}))
        _step_waits(clock, 10)
        outcome = calling.outcome()
    finally:
        server.faults.clear()
        transport.close()
    assert isinstance(outcome, errors.TooManyRequests) and outcome.retry_after == 1.0
    assert clock.requested == [1.0] * 10
    assert server.cluster.requests[("create", "", "configmaps")] - before == 11


@pytest.mark.parametrize(("fault", "options", "timeout"), [
    ({"code": 429, "retry_after": 30}, {}, None),
    ({"code": 503}, {}, None),
    ({"code": 429, "retry_after": 1}, {"max_retries": 0}, None),
    ({"code": 429, "retry_after": 5}, {}, 3.0),
], ids=["retry-after-over-the-cap", "5xx-without-retry-after", "retries-off",
        "past-the-request-timeout"])
def test_when_retry_after_is_not_waited_for(server: LocalAPIServer, fault: dict[str, Any],
                                            options: dict[str, Any],
                                            timeout: float | None) -> None:
    transport, clock = _fake_clock_transport(server, **options)
    cms = ResourceClient(transport, CONFIGMAPS)
    server.faults.fail(count=1, verbs=["create"], **fault)
    try:
        with pytest.raises((errors.TooManyRequests, errors.ServerError)):
            cms.create({"metadata": {"name": "not-waited", "namespace": "default"}},
                       timeout=timeout)
    finally:
        transport.close()
    assert clock.requested == []


def test_closing_the_transport_ends_a_wait_for_retry_after(server: LocalAPIServer) -> None:
    transport, clock = _fake_clock_transport(server)
    cms = ResourceClient(transport, CONFIGMAPS)
    server.faults.fail(code=429, retry_after=5, verbs=["create"])
    try:
        calling = Calling(lambda: cms.create({"metadata": {"name": "c", "namespace": "default"}}))
        eventually(lambda: clock.waiters == 1, timeout=10)
        transport.close()
        assert isinstance(calling.outcome(), errors.TooManyRequests)
    finally:
        server.faults.clear()


def test_the_write_guard_is_asked_again_before_each_retry(server: LocalAPIServer) -> None:
    transport, clock = _fake_clock_transport(server)
    asked: list[str] = []

    class Lost(Exception):
        pass

    def guard(method: str, path: str) -> None:
        asked.append(method)
        if len(asked) > 1:
            raise Lost("no longer the leader")

    transport.write_guard = guard
    server.faults.fail(code=429, count=1, retry_after=1, verbs=["create"])
    try:
        calling = Calling(lambda: ResourceClient(transport, CONFIGMAPS).create(
            {"metadata": {"name": "g", "namespace": "default"}}))
        _step_waits(clock, 1)
        assert isinstance(calling.outcome(), Lost)
    finally:
        transport.close()
    assert asked == ["POST", "POST"]


def test_create_subresource_posts_to_the_object_subresource(server: Any,
                                                            transport: Transport) -> None:
    accounts = ResourceClient(transport, SERVICEACCOUNTS)
    accounts.create({"metadata": {"name": "bot", "namespace": "default"}})
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "spec": {"audiences": ["vault"], "expirationSeconds": 900}}
    answer = accounts.create_subresource("bot", "token", request, "default",
                                         field_manager="tester")
    assert (answer["kind"], answer["metadata"]["name"]) == ("TokenRequest", "bot")
    assert answer["spec"]["expirationSeconds"] == 900 and answer["status"]["token"]
    assert server.cluster.requests[("create", "", "serviceaccounts/token")] == 1

    with pytest.raises(errors.NotFound) as missing:
        accounts.create_subresource("ghost", "token", request, "default")
    assert missing.value.status["details"]["name"] == "ghost"
    with pytest.raises(errors.Invalid) as invalid:
        accounts.create_subresource("bot", "token", {"spec": {"expirationSeconds": 1}},
                                    "default")
    assert invalid.value.causes[0]["field"] == "spec.expirationSeconds"
    with pytest.raises(errors.APIError) as refused:  # status takes no POST: 405
        ResourceClient(transport, PODS).create_subresource("p", "status", {}, "default")
    assert refused.value.code == 405
    server.faults.fail(code=403, count=1, resources=["serviceaccounts/token"])
    with pytest.raises(errors.APIError) as forbidden:
        accounts.create_subresource("bot", "token", request, "default")
    assert (forbidden.value.code, forbidden.value.reason) == (403, "Forbidden")
    with pytest.raises(ValueError, match="namespaced"):
        accounts.create_subresource("bot", "token", request)
    with pytest.raises(ValueError, match="subresource"):
        accounts.create_subresource("bot", "", request, "default")


def test_transport_error_when_nothing_answers() -> None:
    from kubernetes.client import Configuration

    from ambient_ctrl.testing import free_port

    config = Configuration()
    config.host = f"http://127.0.0.1:{free_port()}"
    transport = Transport(config)
    try:
        with pytest.raises(errors.TransportError):
            ResourceClient(transport, CONFIGMAPS).list("default")
    finally:
        transport.close()


def test_cluster_scoped_paths() -> None:
    ns = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
    assert ns.path(None, "x") == "/api/v1/namespaces/x"
    assert PODS.path("a", "b", "status") == "/api/v1/namespaces/a/pods/b/status"
    assert Resource("g.io", "v1", "things", "Thing").path() == "/apis/g.io/v1/things"


def test_write_guard_refuses_writes_before_they_are_sent(server: Any,
                                                         transport: Transport) -> None:
    class Refused(Exception):
        pass

    def guard(method: str, path: str) -> None:
        raise Refused(f"{method} {path}")

    cms = ResourceClient(transport, CONFIGMAPS)
    cms.create({"metadata": {"name": "guarded", "namespace": "default"}})
    transport.write_guard = guard
    before = dict(server.cluster.requests)
    with pytest.raises(Refused, match="POST /api/v1/namespaces/default/configmaps"):
        cms.create({"metadata": {"name": "refused", "namespace": "default"}})
    with pytest.raises(Refused):
        cms.patch("guarded", {"data": {"k": "v"}}, "default")
    with pytest.raises(Refused):
        cms.delete("guarded", "default")
    assert cms.get("guarded", "default")["metadata"]["name"] == "guarded"  # reads still go
    assert cms.list("default")["items"]
    after = dict(server.cluster.requests)
    writes = {k: after[k] - before.get(k, 0) for k in after if k[0] not in ("get", "list")}
    assert not any(writes.values()), writes


def test_a_request_timeout_caps_the_whole_request(server: Any, transport: Transport) -> None:
    """A hung server answers nothing: the caller's cap ends the request, not the transport's
    10 s read timeout."""
    cms = ResourceClient(transport, CONFIGMAPS)
    server.faults.pause()
    try:
        started = time.monotonic()
        with pytest.raises(errors.TransportError):
            cms.get("anything", "default", timeout=0.3)
        assert time.monotonic() - started < 5.0
    finally:
        server.faults.resume()


def test_resize_pool() -> None:
    from kubernetes.client import Configuration

    config = Configuration()
    config.host = "http://127.0.0.1:1"
    transport = Transport(config)
    try:
        assert transport.pool_size == 16
        transport.resize_pool(40)
        assert transport.pool_size == 40
        with pytest.raises(ValueError):
            transport.resize_pool(0)
    finally:
        transport.close()


class _Capture:
    """A one-shot HTTP server on loopback recording the request line it gets."""

    def __init__(self) -> None:
        import socket
        import threading

        self.lines: list[str] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="capture")
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            self.lines.append(data.split(b"\r\n")[0].decode())
            body = b'{"kind":"Status","apiVersion":"v1","status":"Success"}'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))

    def close(self) -> None:
        self._thread.join(10)
        self._sock.close()


def _configuration(host: str, proxy: str | None = None) -> Any:
    from kubernetes import client as k8s_client

    configuration = k8s_client.Configuration()
    configuration.host = host
    configuration.proxy = proxy
    return configuration


def test_a_server_url_with_a_path_prefix_keeps_it() -> None:
    """Some kubeconfigs (Rancher, proxies of cloud consoles) name the API server by a URL
    with a path: every request goes under it."""
    capture = _Capture()
    transport = Transport(_configuration(f"http://127.0.0.1:{capture.port}/k8s/clusters/c1"))
    try:
        ResourceClient(transport, CONFIGMAPS).get("a", "default")
    finally:
        transport.close()
        capture.close()
    assert capture.lines == ["GET /k8s/clusters/c1/api/v1/namespaces/default/configmaps/a "
                             "HTTP/1.1"]


def test_requests_go_through_a_configured_proxy() -> None:
    """With a proxy configured, the request is sent to it, with the absolute URL."""
    proxy = _Capture()
    transport = Transport(_configuration("http://api.example.invalid:6443",
                                         proxy=f"http://127.0.0.1:{proxy.port}"))
    try:
        ResourceClient(transport, CONFIGMAPS).get("a", "default")
    finally:
        transport.close()
        proxy.close()
    assert proxy.lines == ["GET http://api.example.invalid:6443/api/v1/namespaces/default/"
                           "configmaps/a HTTP/1.1"]


@pytest.mark.parametrize("reading", [True, False])
def test_a_closed_watch_ends_on_the_server(server: LocalAPIServer, transport: Transport,
                                           reading: bool) -> None:
    """Closing a watch (an informer stopping, a reflector restarting) closes its connection:
    the server sees the watch end at once. Shutting the socket for reading and putting the
    connection back in the pool left the server's watch open until the pool reused it."""
    def watchers() -> int:
        return server.call(lambda cluster: len(cluster.store.subscribers("configmaps")))

    client = ResourceClient(transport, CONFIGMAPS)
    events = client.watch("default", timeout_seconds=60, allow_bookmarks=False)
    eventually(lambda: watchers() == 1, timeout=10, message="the watch never opened")
    if reading:
        reader = threading.Thread(target=lambda: list(events))
        reader.start()
        time.sleep(0.1)  # let it block in its read: close() must unblock it
        events.close()
        reader.join(10)
        assert not reader.is_alive()
    else:
        events.close()
    eventually(lambda: watchers() == 0, timeout=10,
               message="the server still holds the closed watch")


def test_the_token_is_asked_for_once_a_second_and_again_after_a_401() -> None:
    """The client's refresh hook (which re-applies the kubeconfig each call) runs at most once
    per AUTH_REFRESH; a token it renews is sent from then on; a 401 makes the next request
    ask again at once."""
    seen: list[str] = []
    refused = {"token-2"}

    class Handler(StandinHandler):
        def do_GET(self) -> None:
            token = self.headers.get("Authorization", "")
            seen.append(token)
            if token.removeprefix("Bearer ") in refused:
                self.reply(401, b'{"kind":"Status","apiVersion":"v1","status":"Failure",'
                                b'"reason":"Unauthorized","code":401}')
                return
            self.reply(200, b'{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a"}}')

    tokens = iter(f"token-{n}" for n in range(1, 10))
    asked: list[str] = []

    def refresh(configuration: Any) -> None:
        asked.append(token := next(tokens))
        configuration.api_key["BearerToken"] = token

    clock = FakeClock()
    with http_standin(Handler) as url:
        configuration = _configuration(url)
        configuration.api_key_prefix["BearerToken"] = "Bearer"
        configuration.api_key["BearerToken"] = "token-0"
        configuration.refresh_api_key_hook = refresh
        transport = Transport(configuration, clock=clock)
        configmaps = ResourceClient(transport, CONFIGMAPS)
        try:
            for _ in range(3):
                configmaps.get("a", "default")
            clock.step(AUTH_REFRESH)
            with pytest.raises(errors.APIError):  # token-2: refused
                configmaps.get("a", "default")
            configmaps.get("a", "default")  # asked again at once: token-3
            configmaps.get("a", "default")
        finally:
            transport.close()
    assert asked == ["token-1", "token-2", "token-3"]
    assert seen == ["Bearer token-1"] * 3 + ["Bearer token-2"] + ["Bearer token-3"] * 2


def test_requests_after_close_and_after_a_resize_leave_no_connection_open(
        server: LocalAPIServer) -> None:
    """A request that comes after ``close`` (a reconcile still finishing) or after a resize
    closes its connection when done: none is left for the garbage collector to find open
    (which, with warnings as errors, fails whatever test it happens in)."""
    import gc
    import warnings

    transport = Transport(load_configuration(str(server.kubeconfig)))
    cms = ResourceClient(transport, CONFIGMAPS)
    cms.list("default")
    transport.resize_pool(3)
    cms.list("default")
    transport.close()
    cms.list("default")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del transport, cms
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
