"""The manager's webhook server end to end: a real HTTPS client that trusts only the CA in
the caBundle (as kube-apiserver does) posts AdmissionReview and ConversionReview bodies as
kube-apiserver sends them; the answers, the errors (a handler that raises, malformed reviews,
wrong methods, content types and sizes), certificate rotation from a directory, readiness,
and the configurations and the CRD conversion written into the local API server."""

from __future__ import annotations

import base64
import http.client
import os
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ambient_ctrl.manager import Manager, ManagerOptions
from ambient_ctrl.testing import eventually
from ambient_ctrl.webhook import (
    CRDS,
    MUTATING_CONFIGURATIONS,
    VALIDATING_CONFIGURATIONS,
    ServiceReference,
    WebhookOptions,
    Webhooks,
    WebhookServer,
    WebhookServerOptions,
    inject_ca_bundle,
    install,
    render,
)
from ambient_ctrl.webhook.registry import WebhookBuilder
from envtest import LocalAPIServer
from envtest.patch.jsonpatch import json_patch
from foundation.certs import KeyPair, certificate_authority, issue
from informers.resource import Resource
from informers.rest import ResourceClient, Transport, load_configuration
from tests.ambient_ctrl.test_webhook_reviews import (
    WIDGET_CONVERTER,
    WIDGETS,
    admission_review,
    conversion_review,
    default_widget,
    patch_of,
    validate_widget,
    widget,
)
from tests.metrics.test_families import Exposed


def post(url: str, path: str, body: Any, *, ca: bytes, method: str = "POST",
         content_type: str = "application/json") -> tuple[int, Any]:
    """One request over a new TLS connection verifying the server against ``ca`` only."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cadata=ca.decode())
    connection = http.client.HTTPSConnection(host, int(port), timeout=10, context=context)
    try:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        connection.request(method, path, body=data if method == "POST" else None,
                           headers={"Content-Type": content_type})
        response = connection.getresponse()
        raw = response.read()
        is_json = response.getheader("Content-Type") == "application/json"
        return response.status, orjson.loads(raw) if is_json else raw.decode()
    finally:
        connection.close()


def broken_validator(obj: Any, old: Any) -> None:
    if obj is not None and obj["spec"].get("explode"):
        raise RuntimeError("the validator has a bug")


@pytest.fixture(scope="module")
def api() -> Iterator[LocalAPIServer]:
    with LocalAPIServer() as server:
        yield server


@pytest.fixture(scope="module")
def manager(api: LocalAPIServer) -> Iterator[Manager]:
    manager = Manager(kubeconfig=api.kubeconfig, options=ManagerOptions(
        metrics_address="0", probe_address="127.0.0.1:0", webhook_address="127.0.0.1:0",
        tune_gc=False))
    manager.webhook_for(WIDGETS).defaulter(default_widget).validator(validate_widget)
    gadgets = Resource("example.com", "v1", "gadgets", "Gadget")
    manager.webhook_for(gadgets).validator(broken_validator)
    manager.conversion_for(WIDGETS, WIDGET_CONVERTER)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(manager.run()), name="test-run")
    thread.start()
    try:
        eventually(lambda: manager.webhook_server.check() is None, timeout=10,
                   ignoring=(RuntimeError,))
        yield manager
    finally:
        manager.stop()
        thread.join(30)
        assert not thread.is_alive() and codes == [0]


def test_reviews_answered_over_tls_verified_against_the_ca_bundle(manager: Manager) -> None:
    server = manager.webhook_server
    ca = server.ca_bundle
    assert ca is not None and server.url.startswith("https://127.0.0.1:")
    sent = widget(size="large")
    status, body = post(server.url, "/mutate-example-com-v1-widget",
                        admission_review("CREATE", sent), ca=ca)
    assert status == 200 and body["response"]["allowed"] is True
    expected = dict(sent, spec={"size": "large", "replicas": 1})
    expected["metadata"] = dict(sent["metadata"],
                                labels={"app.kubernetes.io/managed-by": "widgets"})
    assert json_patch(sent, patch_of(body["response"])) == expected

    status, body = post(server.url, "/validate-example-com-v1-widget",
                        admission_review("UPDATE", widget(size="l"), widget(size="s")), ca=ca)
    assert status == 200 and body["response"]["allowed"] is False
    assert body["response"]["status"]["message"] == "spec.size is immutable"

    status, body = post(server.url, "/convert",
                        conversion_review("example.com/v2", widget(size="large")), ca=ca)
    assert status == 200
    assert body["response"]["convertedObjects"][0]["spec"] == {"size": {"name": "large"}}


def test_another_ca_is_refused(manager: Manager) -> None:
    other = certificate_authority("someone-else").cert_pem
    with pytest.raises(ssl.SSLCertVerificationError):
        post(manager.webhook_server.url, "/convert", {}, ca=other)


def test_a_handler_that_raises_answers_500_and_the_server_carries_on(
        manager: Manager, caplog: pytest.LogCaptureFixture) -> None:
    server = manager.webhook_server
    ca = server.ca_bundle
    assert ca is not None
    review = admission_review("CREATE", widget(explode=True))
    status, body = post(server.url, "/validate-example-com-v1-gadget", review, ca=ca)
    assert status == 200
    assert body["response"]["uid"] == review["request"]["uid"]
    assert body["response"]["allowed"] is False
    assert body["response"]["status"]["code"] == 500
    assert "RuntimeError: the validator has a bug" in body["response"]["status"]["message"]
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1
    status, body = post(server.url, "/validate-example-com-v1-gadget",
                        admission_review("CREATE", widget()), ca=ca)
    assert status == 200 and body["response"]["allowed"] is True
    assert not manager.dead_threads()


@pytest.mark.parametrize(("method", "path", "body", "content_type", "status", "answer"), [
    ("POST", "/validate-example-com-v1-widget", b"{not json", "application/json", 200,
     "the request body is not JSON"),
    ("POST", "/validate-example-com-v1-widget", b"", "application/json", 200,
     "request body is empty"),
    ("POST", "/validate-example-com-v1-widget", {"apiVersion": "v1"}, "application/json", 200,
     "expected an AdmissionReview"),
    ("POST", "/validate-example-com-v1-widget", b"{}", "text/plain", 200,
     "contentType=text/plain, expected application/json"),
    ("POST", "/convert", b"[1", "application/json", 400, "the request body is not JSON"),
    ("POST", "/convert", admission_review("CREATE", {}), "application/json", 400,
     "expected a ConversionReview"),
    ("GET", "/convert", b"", "application/json", 405, "GET is not allowed"),
    ("POST", "/mutate-example-com-v1-nothing", b"{}", "application/json", 404, "not found"),
])
def test_malformed_requests(manager: Manager, method: str, path: str, body: Any,
                            content_type: str, status: int, answer: str) -> None:
    ca = manager.webhook_server.ca_bundle
    assert ca is not None
    got_status, got = post(manager.webhook_server.url, path, body, ca=ca, method=method,
                           content_type=content_type)
    assert got_status == status
    if isinstance(got, dict):
        assert got["response"]["allowed"] is False
        assert got["response"]["status"]["code"] == 400
        assert answer in got["response"]["status"]["message"]
    else:
        assert answer in got


def test_readiness_includes_the_webhook_server(manager: Manager) -> None:
    host, port = manager.server.probe_address or ("", 0)
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("GET", "/readyz?verbose")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    assert "[+]webhook-server ok" in text


def test_registering_after_run_is_refused(manager: Manager) -> None:
    with pytest.raises(RuntimeError, match="before the manager runs"):
        manager.webhook_for(WIDGETS)


# -- certificates from a directory ---------------------------------------------------------------
def write_pair(directory: Path, ca: KeyPair) -> None:
    """As a Secret volume rotates: new files, then one rename each (atomic)."""
    pair = issue(ca, "webhook")
    for name, pem in (("tls.key", pair.key_pem), ("tls.crt", pair.cert_pem),
                      ("ca.crt", ca.cert_pem)):
        (directory / f".{name}.new").write_bytes(pem)
        os.replace(directory / f".{name}.new", directory / name)


def test_certificates_from_a_directory_reload_on_rotation(tmp_path: Path) -> None:
    first, second = certificate_authority("first"), certificate_authority("second")
    write_pair(tmp_path, first)
    webhooks = Webhooks()
    webhooks.add_conversion(WIDGETS, WIDGET_CONVERTER)
    review = conversion_review("example.com/v1", widget(size="s"))
    with WebhookServer(webhooks, WebhookServerOptions(address="127.0.0.1:0",
                                                      cert_dir=str(tmp_path))) as server:
        assert server.ca_bundle == first.cert_pem
        assert post(server.url, "/convert", review, ca=first.cert_pem)[0] == 200
        write_pair(tmp_path, second)
        assert server.ca_bundle == second.cert_pem
        assert post(server.url, "/convert", review, ca=second.cert_pem)[0] == 200
        with pytest.raises(ssl.SSLCertVerificationError):
            post(server.url, "/convert", review, ca=first.cert_pem)
        (tmp_path / "tls.crt").write_bytes(b"half written")  # a bad pair keeps the last one
        assert post(server.url, "/convert", review, ca=second.cert_pem)[0] == 200


def test_a_missing_certificate_directory_stops_the_start(tmp_path: Path) -> None:
    server = WebhookServer(Webhooks(), WebhookServerOptions(address="127.0.0.1:0",
                                                            cert_dir=str(tmp_path)))
    with pytest.raises(FileNotFoundError):
        server.start()
    server.stop()


def test_bodies_over_the_limit_are_refused_unread() -> None:
    webhooks = Webhooks()
    WebhookBuilder(webhooks, WIDGETS).validator(validate_widget)
    with WebhookServer(webhooks, WebhookServerOptions(address="127.0.0.1:0",
                                                      max_body=1024)) as server:
        assert server.ca_bundle is not None
        review = admission_review("CREATE", widget(blob="x" * 2048))
        status, text = post(server.url, "/validate-example-com-v1-widget", review,
                            ca=server.ca_bundle)
        assert status == 413 and "exceeds the limit of 1024 bytes" in text
        status, body = post(server.url, "/validate-example-com-v1-widget",
                            admission_review("CREATE", widget()), ca=server.ca_bundle)
        assert status == 200 and body["response"]["allowed"] is True
        dev_dir = server.cert_dir
        assert Path(dev_dir, "tls.key").stat().st_mode & 0o077 == 0
    assert not Path(dev_dir).exists()


# -- what the API server is told -----------------------------------------------------------------
WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                       "listKind": "WidgetList"},
             "versions": [{"name": version, "served": True, "storage": version == "v2",
                           "schema": {"openAPIV3Schema": {
                               "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
                          for version in ("v1", "v2")]}}


def test_render_configurations_for_a_service() -> None:
    webhooks = Webhooks()
    WebhookBuilder(webhooks, WIDGETS).defaulter(default_widget).validator(
        validate_widget, WebhookOptions(operations=("CREATE", "UPDATE", "DELETE"),
                                        failure_policy="Ignore", timeout_seconds=5,
                                        match_policy="Exact",
                                        namespace_selector={"matchLabels": {"team": "a"}},
                                        object_selector={"matchExpressions": [
                                            {"key": "skip", "operator": "DoesNotExist"}]}))
    mutating, validating = render(webhooks, ServiceReference("webhook-service", "system"),
                                  ca_bundle=b"PEM")
    assert mutating["kind"] == "MutatingWebhookConfiguration"
    assert mutating["metadata"]["name"] == "ambient-ctrl-mutating-webhook-configuration"
    assert mutating["webhooks"] == [{
        "name": "mwidget-v1.example.com", "admissionReviewVersions": ["v1"],
        "clientConfig": {"service": {"name": "webhook-service", "namespace": "system",
                                     "path": "/mutate-example-com-v1-widget", "port": 443},
                         "caBundle": base64.b64encode(b"PEM").decode()},
        "failurePolicy": "Fail", "matchPolicy": "Equivalent",
        "namespaceSelector": {}, "objectSelector": {},
        "rules": [{"apiGroups": ["example.com"], "apiVersions": ["v1"],
                   "operations": ["CREATE", "UPDATE"], "resources": ["widgets"],
                   "scope": "Namespaced"}],
        "sideEffects": "None", "timeoutSeconds": 10, "reinvocationPolicy": "Never"}]
    [entry] = validating["webhooks"]
    assert entry["name"] == "vwidget-v1.example.com"
    assert entry["clientConfig"]["service"]["path"] == "/validate-example-com-v1-widget"
    assert (entry["failurePolicy"], entry["timeoutSeconds"], entry["matchPolicy"]) == (
        "Ignore", 5, "Exact")
    assert entry["rules"][0]["operations"] == ["CREATE", "UPDATE", "DELETE"]
    assert entry["namespaceSelector"] == {"matchLabels": {"team": "a"}}
    assert entry["objectSelector"] == {"matchExpressions": [{"key": "skip",
                                                             "operator": "DoesNotExist"}]}
    assert "reinvocationPolicy" not in entry


def test_the_crd_conversion_points_at_the_manager(api: LocalAPIServer,
                                                  manager: Manager) -> None:
    transport = Transport(load_configuration(api.kubeconfig))
    try:
        crds = ResourceClient(transport, CRDS)
        crds.create(WIDGET_CRD)
        server = manager.webhook_server
        assert server.ca_bundle is not None
        only_conversions = Webhooks()
        only_conversions.add_conversion(WIDGETS, WIDGET_CONVERTER)
        install(transport, only_conversions, server.url, ca_bundle=server.ca_bundle)
        conversion = crds.get("widgets.example.com")["spec"]["conversion"]
        assert conversion["strategy"] == "Webhook"
        assert conversion["webhook"]["conversionReviewVersions"] == ["v1"]
        config = conversion["webhook"]["clientConfig"]
        assert config["url"] == server.url + "/convert"
        assert base64.b64decode(config["caBundle"]) == server.ca_bundle
        # A rotated CA: injected once, and not written again while it holds.
        rotated = certificate_authority("rotated").cert_pem
        assert inject_ca_bundle(transport, rotated, crds=["widgets.example.com"]) == 1
        assert inject_ca_bundle(transport, rotated, crds=["widgets.example.com"]) == 0
        config = crds.get("widgets.example.com")["spec"]["conversion"]["webhook"]
        assert base64.b64decode(config["clientConfig"]["caBundle"]) == rotated
        assert config["clientConfig"]["url"] == server.url + "/convert"
    finally:
        transport.close()


def test_install_writes_the_configurations(api: LocalAPIServer) -> None:
    """Create, then update (a second install after a CA rotation), then inject a CA — into
    the configurations the local API server stores (with kube's defaulting and validation of
    admissionregistration.k8s.io/v1)."""
    transport = Transport(load_configuration(api.kubeconfig))
    try:
        webhooks = Webhooks()
        WebhookBuilder(webhooks, WIDGETS).defaulter(default_widget).validator(validate_widget)
        url = "https://127.0.0.1:9443"
        first, second = (certificate_authority(n).cert_pem for n in ("first", "second"))
        install(transport, webhooks, url, ca_bundle=first, name="install-test")
        install(transport, webhooks, url, ca_bundle=second, name="install-test")
        expected = render(webhooks, url, ca_bundle=second, name="install-test")
        stored = [ResourceClient(transport, resource).get(obj["metadata"]["name"])
                  for resource, obj in zip((MUTATING_CONFIGURATIONS, VALIDATING_CONFIGURATIONS),
                                           expected, strict=True)]
        for got, want in zip(stored, expected, strict=True):
            assert got["webhooks"] == want["webhooks"]
        names = [obj["metadata"]["name"] for obj in expected]
        assert inject_ca_bundle(transport, first, mutating=names[:1], validating=names[1:]) == 2
        assert inject_ca_bundle(transport, first, mutating=names[:1], validating=names[1:]) == 0
        got = ResourceClient(transport, VALIDATING_CONFIGURATIONS).get(names[1])
        assert base64.b64decode(got["webhooks"][0]["clientConfig"]["caBundle"]) == first
    finally:
        transport.close()


def test_connections_are_kept_alive_and_idle_ones_closed_at_a_stop() -> None:
    """The API server reuses its connection for many reviews; a stop does not wait for an
    idle one (it is closed at once: the client reads the end well before the 30 s budget)."""
    webhooks = Webhooks()
    WebhookBuilder(webhooks, WIDGETS).validator(validate_widget)
    before = set(threading.enumerate())
    server = WebhookServer(webhooks, WebhookServerOptions(address="127.0.0.1:0",
                                                          request_timeout=60)).start()
    stopper = threading.Thread(target=server.stop, args=(30,), name="test-stop")
    try:
        assert server.ca_bundle is not None
        host, port = server.address
        context = ssl.create_default_context(cadata=server.ca_bundle.decode())
        connection = http.client.HTTPSConnection(host, port, timeout=10, context=context)
        try:
            sockets = set()
            for replicas in (1, 11, 2):
                connection.request("POST", "/validate-example-com-v1-widget", headers={
                    "Content-Type": "application/json"}, body=orjson.dumps(
                    admission_review("CREATE", widget(replicas=replicas))))
                response = connection.getresponse()
                assert orjson.loads(response.read())["response"]["allowed"] is (replicas < 10)
                assert response.getheader("Connection") != "close"
                sockets.add(id(connection.sock))
            assert len(sockets) == 1  # one connection, three reviews
            stopper.start()
            assert connection.sock is not None
            assert connection.sock.recv(1) == b""  # closed by the server, not by a timeout
        finally:
            connection.close()
    finally:
        stopper.join(40)
        server.stop()
    assert not [t for t in set(threading.enumerate()) - before
                if t.name.startswith("webhook-server")]


def test_requests_are_counted_per_registered_path(manager: Manager) -> None:
    ca = manager.webhook_server.ca_bundle
    assert ca is not None
    url = manager.webhook_server.url
    path = "/validate-example-com-v1-widget"
    exposed = Exposed(manager.recorder.registry)
    before = exposed.value("controller_runtime_webhook_requests_total", webhook=path,
                           code="200") or 0
    for replicas in (1, 11):  # allowed and denied: both HTTP 200
        assert post(url, path, admission_review("CREATE", widget(replicas=replicas)),
                    ca=ca)[0] == 200
    assert post(url, path, {}, ca=ca, method="GET")[0] == 405
    assert post(url, "/validate-nothing", {}, ca=ca)[0] == 404
    exposed = Exposed(manager.recorder.registry)
    assert exposed.value("controller_runtime_webhook_requests_total", webhook=path,
                         code="200") == before + 2
    assert exposed.value("controller_runtime_webhook_requests_total", webhook=path,
                         code="405") == 1
    assert exposed.value("controller_runtime_webhook_latency_seconds_count", webhook=path,
                         code="200") == before + 2
    assert exposed.value("controller_runtime_webhook_requests_in_flight", webhook=path) == 0
    assert "/validate-nothing" not in exposed.text
