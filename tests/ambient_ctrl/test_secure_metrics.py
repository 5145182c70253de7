"""The manager's secure metrics in-process against the local API server: HTTPS, the bearer
tokens of service accounts the server minted, reviewed by the server (TokenReview, then a
SubjectAccessReview of get /metrics against the stored RBAC), 401/403/200, 500 while the
server cannot review, the reviews made with the operator's own client and cached."""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from ambient_ctrl.manager import Manager, ManagerOptions
from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from tests.conftest import RawClient

NS = "monitoring"
READER_ROLE = "metrics-reader"


def https_get(url: str, token: str | None = None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # self-signed
    connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=10,
                                             context=context)
    try:
        connection.request("GET", "/metrics",
                           headers={"Authorization": f"Bearer {token}"} if token else {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def api() -> Iterator[LocalAPIServer]:
    with LocalAPIServer() as server:
        yield server


@pytest.fixture(scope="module")
def tokens(api: LocalAPIServer) -> dict[str, str]:
    """Tokens of ``prometheus`` (bound to the metrics-reader ClusterRole) and ``stranger``."""
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    with RawClient(api.url) as raw:
        assert raw.post("/api/v1/namespaces", {"metadata": {"name": NS}})[0] == 201
        assert raw.post(f"{rbac}/clusterroles", {
            "metadata": {"name": READER_ROLE},
            "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]})[0] == 201
        assert raw.post(f"{rbac}/clusterrolebindings", {
            "metadata": {"name": "prometheus-metrics"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": READER_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": "prometheus",
                          "namespace": NS}]})[0] == 201
        out = {}
        for name in ("prometheus", "stranger"):
            assert raw.post(f"/api/v1/namespaces/{NS}/serviceaccounts",
                            {"metadata": {"name": name}})[0] == 201
            status, body = raw.post(
                f"/api/v1/namespaces/{NS}/serviceaccounts/{name}/token", {"spec": {}})
            assert status == 201, body
            out[name] = body["status"]["token"]
        return out


@pytest.fixture()
def manager(api: LocalAPIServer) -> Iterator[Manager]:
    manager = Manager(kubeconfig=api.kubeconfig, options=ManagerOptions(
        metrics_address="127.0.0.1:0", probe_address="127.0.0.1:0", metrics_secure=True,
        tune_gc=False))
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(manager.run()), name="test-run")
    thread.start()
    try:
        eventually(lambda: manager.server.metrics_address is not None, timeout=10)
        yield manager
    finally:
        manager.stop()
        thread.join(30)
        assert not thread.is_alive() and codes == [0]


def reviews(api: LocalAPIServer) -> dict[str, int]:
    counts = api.call(lambda cluster: dict(cluster.requests))
    return {resource: count for (verb, _, resource), count in counts.items()
            if resource in ("tokenreviews", "subjectaccessreviews") and verb == "create"}


def test_only_an_allowed_service_account_reads_metrics(api: LocalAPIServer, manager: Manager,
                                                       tokens: dict[str, Any]) -> None:
    url = manager.server.metrics_url
    assert url.startswith("https://")
    code, body = https_get(url, tokens["prometheus"])
    assert code == 200 and b"rest_client_requests_total" in body
    assert https_get(url, tokens["stranger"]) == (
        403, f"Authorization denied for user system:serviceaccount:{NS}:stranger\n".encode())
    assert https_get(url) == (401, b"Unauthorized\n")
    assert https_get(url, "garbage") == (401, b"Unauthorized\n")
    # The reviews were the operator's (its client, its User-Agent), once per token and user:
    # a second scrape is answered from the caches.
    before = reviews(api)
    assert before == {"tokenreviews": 3, "subjectaccessreviews": 2}
    assert https_get(url, tokens["prometheus"])[0] == 200
    assert https_get(url, tokens["stranger"])[0] == 403
    assert reviews(api) == before
    agents = api.call(lambda cluster: {agent for agent, _, _, resource
                                       in cluster.requests_by_agent
                                       if resource == "tokenreviews"})
    assert agents == {"ambient-ctrl"}


def test_an_api_server_that_cannot_review_is_500(api: LocalAPIServer, manager: Manager,
                                                 tokens: dict[str, Any]) -> None:
    api.faults.fail(code=503, resources=("tokenreviews",))
    try:
        code, body = https_get(manager.server.metrics_url, tokens["prometheus"])
        assert (code, body) == (500, b"Authentication failed\n")
        assert tokens["prometheus"].encode() not in body
    finally:
        api.faults.clear()
    # Not cached: the next scrape is reviewed again and served.
    assert https_get(manager.server.metrics_url, tokens["prometheus"])[0] == 200
