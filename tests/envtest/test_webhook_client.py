"""The webhook client (envtest.webhooks.client): POST a review over TLS to a URL or a Service,
on the server's loop, with kube's error texts."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from envtest import LocalAPIServer
from envtest.webhooks import WebhookCallError, post_review
from tests.conftest import RawClient
from tests.envtest.webhook_backend import WebhookBackend, allow

REVIEW = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
          "request": {"uid": "u-1"}}


@pytest.fixture(scope="module")
def backend() -> Iterator[WebhookBackend]:
    with WebhookBackend({"/ok": allow(), "/500": lambda r: (500, b"boom"),
                         "/text": lambda r: (200, b"not json")}) as server:
        yield server


def call(api: LocalAPIServer, config: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    loop = api._loop
    assert loop is not None
    future = asyncio.run_coroutine_threadsafe(
        post_review(api.cluster, config, orjson.dumps(REVIEW), timeout=timeout), loop)
    return future.result(15)


def test_a_url_with_its_ca_bundle_is_called(api: LocalAPIServer,
                                            backend: WebhookBackend) -> None:
    answer = call(api, backend.config("/ok"))
    assert answer["response"] == {"uid": "u-1", "allowed": True}
    assert backend.received("/ok")[-1] == REVIEW


def test_without_the_ca_bundle_the_certificate_is_refused(api: LocalAPIServer,
                                                          backend: WebhookBackend) -> None:
    with pytest.raises(WebhookCallError) as caught:
        call(api, {"url": backend.url + "/ok"})
    assert str(caught.value) == (f'Post "{backend.url}/ok?timeout=5s": tls: failed to verify '
                                 "certificate: x509: certificate signed by unknown authority")


def test_connection_refused_and_plain_http_urls(api: LocalAPIServer) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(WebhookCallError) as caught:
        call(api, {"url": f"https://127.0.0.1:{port}/x"}, timeout=1.5)
    assert str(caught.value) == (f'Post "https://127.0.0.1:{port}/x?timeout=2s": dial tcp '
                                 f"127.0.0.1:{port}: connect: connection refused")
    with pytest.raises(WebhookCallError, match="unsupported protocol scheme"):
        call(api, {"url": f"http://127.0.0.1:{port}/x"})


def test_a_status_other_than_200_or_a_body_not_json(api: LocalAPIServer,
                                                    backend: WebhookBackend) -> None:
    with pytest.raises(WebhookCallError, match=r'an error on the server \("boom"\)'):
        call(api, backend.config("/500"))
    with pytest.raises(WebhookCallError, match="json parse error"):
        call(api, backend.config("/text"))
    with pytest.raises(WebhookCallError, match="could not find the requested resource"):
        call(api, backend.config("/nowhere"))


def test_a_slow_webhook_times_out_without_blocking_the_server(
        api: LocalAPIServer, client: RawClient) -> None:
    with WebhookBackend({"/slow": allow()}, delay=5) as slow:
        loop = api._loop
        assert loop is not None
        future = asyncio.run_coroutine_threadsafe(post_review(
            api.cluster, slow.config("/slow"), orjson.dumps(REVIEW), timeout=0.5), loop)
        assert client.get("/api/v1/namespaces")[0] == 200  # the loop still serves
        with pytest.raises(WebhookCallError) as caught:
            future.result(10)
    assert str(caught.value) == f'Post "{slow.url}/slow?timeout=1s": context deadline exceeded'


def test_a_service_without_selector_reaches_its_loopback_endpoints(
        api: LocalAPIServer, client: RawClient, backend: WebhookBackend) -> None:
    assert client.post("/api/v1/namespaces", {"metadata": {"name": "webhooks"}})[0] in (201, 409)
    service = {"metadata": {"name": "hook"},
               "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 9443}]}}
    assert client.post("/api/v1/namespaces/webhooks/services", service)[0] == 201
    ref: dict[str, Any] = {"service": {"namespace": "webhooks", "name": "hook", "path": "/ok",
                                       "port": 443},
                          "caBundle": backend.ca_bundle}
    with pytest.raises(WebhookCallError) as caught:
        call(api, ref)
    assert str(caught.value) == ('Post "https://hook.webhooks.svc:443/ok?timeout=5s": '
                                 'endpoints "hook" not found')
    endpoints = {"metadata": {"name": "hook"}, "subsets": [{
        "addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": backend.port}]}]}
    assert client.post("/api/v1/namespaces/webhooks/endpoints", endpoints)[0] == 201
    assert call(api, ref)["response"]["allowed"] is True  # verified as hook.webhooks.svc
    with pytest.raises(WebhookCallError, match='no service port 8443 found for service "hook"'):
        call(api, {**ref, "service": {**ref["service"], "port": 8443}})
