"""The observability server over real HTTP on 127.0.0.1: /metrics (Prometheus text and
OpenMetrics), /healthz, /readyz, their lifecycle and their threads."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from ambient_ctrl.testing import eventually, free_port
from metrics import (
    ObservabilityServer,
    ReconcileResult,
    Recorder,
    ServerOptions,
    new_registry,
)
from metrics.server import parse_address

LOCAL = ServerOptions(metrics_address="127.0.0.1:0", probe_address="127.0.0.1:0",
                      shutdown_timeout=2.0)
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0;q=0.5,"
                     "application/openmetrics-text;version=0.0.1;q=0.4,"
                     "text/plain;version=0.0.4;q=0.3,*/*;q=0.2")


def get(url: str, path: str, headers: dict[str, str] | None = None,
        method: str = "GET") -> tuple[int, http.client.HTTPResponse, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response, response.read()
    finally:
        connection.close()


@pytest.fixture()
def recorder() -> Recorder:
    recorder = Recorder(new_registry(), monotonic=time.monotonic)
    recorder.controller.register("sessions", max_concurrent_reconciles=2).reconciled(
        ReconcileResult.SUCCESS, seconds=0.02)
    return recorder


@pytest.fixture()
def server(recorder: Recorder) -> Iterator[ObservabilityServer]:
    with ObservabilityServer(recorder.registry, options=LOCAL) as server:
        yield server


def test_metrics_in_prometheus_text(server: ObservabilityServer) -> None:
    status, response, body = get(server.metrics_url, "/metrics")
    assert status == 200
    assert response.getheader("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    total = families["controller_runtime_reconcile"]
    assert total.type == "counter"
    assert {(s.labels["result"], s.value) for s in total.samples} == {
        ("success", 1.0), ("error", 0.0), ("requeue", 0.0), ("requeue_after", 0.0)}
    assert "process_cpu_seconds" in families  # the runtime collectors are served too


@pytest.mark.parametrize("accept", [
    "application/openmetrics-text", "application/openmetrics-text; version=1.0.0",
    PROMETHEUS_ACCEPT,
], ids=["bare", "versioned", "prometheus"])
def test_metrics_in_openmetrics_when_asked(server: ObservabilityServer, accept: str) -> None:
    status, response, body = get(server.metrics_url, "/metrics", {"Accept": accept})
    assert status == 200
    assert (response.getheader("Content-Type") or "").startswith(
        "application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(text)}
    reconcile = families["controller_runtime_reconcile"]
    assert {s.name for s in reconcile.samples} == {"controller_runtime_reconcile_total"}


def test_metrics_gzip_when_accepted(server: ObservabilityServer) -> None:
    status, response, body = get(server.metrics_url, "/metrics", {"Accept-Encoding": "gzip"})
    assert status == 200
    assert response.getheader("Content-Encoding") == "gzip"
    assert b"controller_runtime_reconcile_total" in gzip.decompress(body)


def test_head_has_headers_only(server: ObservabilityServer) -> None:
    status, response, body = get(server.metrics_url, "/metrics", method="HEAD")
    assert status == 200 and body == b""
    assert int(response.getheader("Content-Length") or 0) > 0


def test_probes_pass_by_default(server: ObservabilityServer) -> None:
    for path in ("/healthz", "/readyz", "/readyz/", "/healthz/ping"):
        assert get(server.probe_url, path)[::2] == (200, b"ok"), path
    assert get(server.probe_url, "/readyz?verbose")[::2] == (
        200, b"[+]ping ok\nreadyz check passed\n")


def test_readyz_fails_listing_failing_checks(server: ObservabilityServer) -> None:
    synced = threading.Event()

    def informers_synced() -> None:
        if not synced.is_set():
            raise RuntimeError("2 informers not synced")

    server.healthz.add("ping", lambda: None)
    server.readyz.add("informers-synced", informers_synced)
    server.readyz.add("leader", lambda: None)
    status, response, body = get(server.probe_url, "/readyz")
    assert status == 500
    assert response.getheader("Content-Type") == "text/plain; charset=utf-8"
    assert body.decode() == ("[-]informers-synced failed: reason withheld\n[+]leader ok\n"
                             "readyz check failed\n")
    assert get(server.probe_url, "/readyz/informers-synced")[::2] == (
        500, b"internal server error: 2 informers not synced\n")
    assert get(server.probe_url, "/readyz/leader")[::2] == (200, b"ok")
    assert get(server.probe_url, "/readyz/unknown")[0] == 404
    assert get(server.probe_url, "/readyz?exclude=informers-synced")[::2] == (200, b"ok")
    assert get(server.probe_url, "/healthz")[::2] == (200, b"ok")

    synced.set()
    assert get(server.probe_url, "/readyz")[::2] == (200, b"ok")
    assert get(server.probe_url, "/readyz?verbose=1")[::2] == (
        200, b"[+]informers-synced ok\n[+]leader ok\nreadyz check passed\n")


def test_each_listener_serves_its_own_paths(server: ObservabilityServer) -> None:
    assert server.metrics_address != server.probe_address
    assert get(server.metrics_url, "/healthz")[0] == 404
    assert get(server.probe_url, "/metrics")[0] == 404
    assert get(server.metrics_url, "/")[0] == 404
    assert get(server.metrics_url, "/metrics", method="POST")[0] == 501


def test_one_address_for_everything(recorder: Recorder) -> None:
    address = f"127.0.0.1:{free_port()}"
    options = ServerOptions(metrics_address=address, probe_address=address)
    with ObservabilityServer(recorder.registry, options=options) as server:
        assert server.metrics_url == server.probe_url == f"http://{address}"
        assert get(server.metrics_url, "/metrics")[0] == 200
        assert get(server.metrics_url, "/readyz")[::2] == (200, b"ok")


def test_a_listener_can_be_turned_off(recorder: Recorder) -> None:
    options = ServerOptions(metrics_address="127.0.0.1:0", probe_address="0")
    with ObservabilityServer(recorder.registry, options=options) as server:
        assert server.probe_address is None
        with pytest.raises(RuntimeError, match="not running"):
            _ = server.probe_url
        assert get(server.metrics_url, "/metrics")[0] == 200


def test_start_stop_leaves_no_thread_behind(recorder: Recorder) -> None:
    before = set(threading.enumerate())
    server = ObservabilityServer(recorder.registry, options=LOCAL).start()
    assert len(set(threading.enumerate()) - before) == 1  # the acceptor
    for _ in range(3):
        assert get(server.metrics_url, "/metrics")[0] == 200
        assert get(server.probe_url, "/readyz")[0] == 200
    server.stop()
    server.stop()  # idempotent
    assert set(threading.enumerate()) == before
    assert not any(t.daemon for t in threading.enumerate() if t not in before)


def test_stop_cuts_a_stuck_client_at_the_deadline(recorder: Recorder) -> None:
    before = set(threading.enumerate())
    server = ObservabilityServer(recorder.registry, options=LOCAL).start()
    host, port = server.metrics_address or ("", 0)
    with socket.create_connection((host, port), timeout=5) as stuck:
        stuck.sendall(b"GET /metr")  # and never finishes the request
        # the acceptor and the connection's own thread
        eventually(lambda: len(set(threading.enumerate()) - before) == 2, timeout=5,
                   interval=0.01)
        started = time.monotonic()
        server.stop(timeout=0.2)
        assert time.monotonic() - started < 1.5
    assert set(threading.enumerate()) == before


def test_a_port_in_use_fails_start_and_leaks_nothing(recorder: Recorder) -> None:
    before = set(threading.enumerate())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        options = ServerOptions(metrics_address="127.0.0.1:0",
                                probe_address=f"127.0.0.1:{port}")
        server = ObservabilityServer(recorder.registry, options=options)
        with pytest.raises(OSError):
            server.start()
    assert set(threading.enumerate()) == before
    server.stop()  # nothing to stop: harmless


def test_started_once(recorder: Recorder) -> None:
    with ObservabilityServer(recorder.registry, options=LOCAL) as server, \
            pytest.raises(RuntimeError, match="already"):
        server.start()


@pytest.mark.parametrize(("address", "parsed"), [
    (":8080", ("", 8080)), ("127.0.0.1:8081", ("127.0.0.1", 8081)), ("[::1]:9090", ("::1", 9090)),
    ("localhost:0", ("localhost", 0)), ("0", None), ("", None),
], ids=["all-interfaces", "loopback", "ipv6", "any-port", "off", "empty"])
def test_parse_address(address: str, parsed: tuple[str, int] | None) -> None:
    assert parse_address(address) == parsed


@pytest.mark.parametrize("address", ["8080", "host:", "host:http", "::1:80", "h:70000"],
                         ids=["port-only", "no-port", "named-port", "bare-ipv6", "too-big"])
def test_parse_address_rejects(address: str) -> None:
    with pytest.raises(ValueError):
        parse_address(address)


def test_defaults_are_loopback_and_in_cluster_constants_are_controller_runtimes() -> None:
    from metrics import IN_CLUSTER_METRICS_ADDRESS, IN_CLUSTER_PROBE_ADDRESS

    assert ServerOptions().metrics_address == "127.0.0.1:8080"
    assert ServerOptions().probe_address == "127.0.0.1:8081"
    assert (IN_CLUSTER_METRICS_ADDRESS, IN_CLUSTER_PROBE_ADDRESS) == (":8080", ":8081")


def test_two_servers_two_registries(recorder: Recorder) -> None:
    other = Recorder(new_registry(), monotonic=time.monotonic)
    other.controller.register("sessions", max_concurrent_reconciles=9)
    with contextlib.ExitStack() as stack:
        one = stack.enter_context(ObservabilityServer(recorder.registry, options=LOCAL))
        two = stack.enter_context(ObservabilityServer(other.registry, options=LOCAL))
        first = get(one.metrics_url, "/metrics")[2].decode()
        second = get(two.metrics_url, "/metrics")[2].decode()
    assert 'controller_runtime_max_concurrent_reconciles{controller="sessions"} 2.0' in first
    assert 'controller_runtime_max_concurrent_reconciles{controller="sessions"} 9.0' in second
