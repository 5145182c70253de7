"""Secure metrics over real HTTPS on 127.0.0.1: the self-signed certificate, certificate files
reloaded when they change, the access filter in front of /metrics only, probes left plain."""

from __future__ import annotations

import http.client
import os
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509

from metrics import (
    AccessFilter,
    Decision,
    ObservabilityServer,
    Recorder,
    ServerOptions,
    User,
    new_registry,
)
from metrics.tls import ServingCertificate, self_signed

PROMETHEUS = User("system:serviceaccount:monitoring:prometheus")


class Reviewer:
    """Tokens ``reader`` (allowed) and ``nobody`` (denied); anything else unauthenticated."""

    def authenticate(self, token: str) -> User | None:
        return {"reader": PROMETHEUS, "nobody": User("nobody")}.get(token)

    def authorize(self, user: User, verb: str, path: str) -> Decision:
        return Decision(user is PROMETHEUS and (verb, path) == ("get", "/metrics"))


def secure_options(**kw: object) -> ServerOptions:
    return ServerOptions(metrics_address="127.0.0.1:0", probe_address="127.0.0.1:0",
                         shutdown_timeout=2.0, metrics_secure=True, **kw)  # type: ignore[arg-type]


def https_get(url: str, path: str = "/metrics", *, token: str | None = None,
              context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    if context is None:  # as Prometheus with insecureSkipVerify
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=5,
                                             context=context)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"}
                           if token else {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def peer_certificate(url: str) -> bytes:
    parts = urlsplit(url)
    pem = ssl.get_server_certificate((parts.hostname or "", parts.port or 0), timeout=5)
    return ssl.PEM_cert_to_DER_cert(pem)


@pytest.fixture()
def registry() -> Iterator[object]:
    recorder = Recorder(new_registry(), monotonic=time.monotonic)
    recorder.controller.register("sessions", max_concurrent_reconciles=2)
    yield recorder.registry


@pytest.fixture()
def server(registry: object) -> Iterator[ObservabilityServer]:
    with ObservabilityServer(registry, options=secure_options(),  # type: ignore[arg-type]
                             metrics_access=AccessFilter(Reviewer())) as server:
        yield server


def test_metrics_need_a_token_the_api_server_allows(server: ObservabilityServer) -> None:
    url = server.metrics_url
    assert url.startswith("https://127.0.0.1:")
    assert https_get(url) == (401, b"Unauthorized\n")
    assert https_get(url, token="garbage") == (401, b"Unauthorized\n")
    assert https_get(url, token="nobody") == (403, b"Authorization denied for user nobody\n")
    code, body = https_get(url, token="reader")
    assert code == 200 and b"controller_runtime_max_concurrent_reconciles" in body
    # Other paths on the metrics listener are not found, token or not.
    assert https_get(url, "/healthz", token="reader")[0] == 404


def test_probes_stay_plain_and_open(server: ObservabilityServer) -> None:
    parts = urlsplit(server.probe_url)
    assert parts.scheme == "http"
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        connection.request("GET", "/readyz")
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_plain_http_gets_nothing_from_the_secure_listener(server: ObservabilityServer) -> None:
    parts = urlsplit(server.metrics_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        with pytest.raises((http.client.HTTPException, OSError)):
            connection.request("GET", "/metrics")
            connection.getresponse().read()
    finally:
        connection.close()


def test_the_self_signed_certificate_verifies_for_loopback(server: ObservabilityServer) -> None:
    der = peer_certificate(server.metrics_url)
    cert = x509.load_der_x509_certificate(der)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    # A client that trusts exactly this certificate verifies it, hostname included: it is a
    # well-formed, correctly signed serving certificate for 127.0.0.1.
    context = ssl.create_default_context(cadata=ssl.DER_cert_to_PEM_cert(der))
    code, _ = https_get(server.metrics_url, token="reader", context=context)
    assert code == 200
    # TLS 1.2 at least, HTTP/1.1 by ALPN.
    assert server.certificate is not None and server.certificate.self_signed
    assert server.certificate.context().minimum_version == ssl.TLSVersion.TLSv1_2


def test_secure_metrics_cannot_share_the_probes_listener(registry: object) -> None:
    options = ServerOptions(metrics_address="127.0.0.1:18443", probe_address="127.0.0.1:18443",
                            metrics_secure=True)
    server = ObservabilityServer(registry, options=options)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="share the probes"):
        server.start()
    server.stop()


def write_pair(directory: Path, cert: bytes, key: bytes) -> None:
    """As a Secret volume updates: new files moved into place (new inodes)."""
    for name, pem in (("tls.crt", cert), ("tls.key", key)):
        partial = directory / f".{name}.partial"
        partial.write_bytes(pem)
        os.replace(partial, directory / name)


def test_certificate_files_are_served_and_reloaded_when_they_change(
        registry: object, tmp_path: Path) -> None:
    first, second = self_signed(), self_signed()
    write_pair(tmp_path, *first)
    options = secure_options(metrics_cert_file=str(tmp_path / "tls.crt"),
                             metrics_key_file=str(tmp_path / "tls.key"))
    with ObservabilityServer(registry, options=options,  # type: ignore[arg-type]
                             metrics_access=AccessFilter(Reviewer())) as server:
        assert server.certificate is not None and not server.certificate.self_signed
        pem = ssl.PEM_cert_to_DER_cert(first[0].decode())
        assert peer_certificate(server.metrics_url) == pem
        write_pair(tmp_path, *second)  # rotated: the next connection gets the new pair
        assert peer_certificate(server.metrics_url) == ssl.PEM_cert_to_DER_cert(
            second[0].decode())
        # A pair that does not match (the new certificate, the old key) is not taken: the
        # last good pair is served on.
        write_pair(tmp_path, first[0], second[1])
        assert peer_certificate(server.metrics_url) == ssl.PEM_cert_to_DER_cert(
            second[0].decode())
        assert https_get(server.metrics_url, token="reader")[0] == 200


def test_certificate_files_that_cannot_be_loaded_stop_the_start(registry: object,
                                                                tmp_path: Path) -> None:
    missing = secure_options(metrics_cert_file=str(tmp_path / "tls.crt"),
                             metrics_key_file=str(tmp_path / "tls.key"))
    server = ObservabilityServer(registry, options=missing)  # type: ignore[arg-type]
    with pytest.raises(OSError):
        server.start()
    server.stop()
    with pytest.raises(ValueError, match="both"):
        ServingCertificate(tmp_path / "tls.crt", None)
