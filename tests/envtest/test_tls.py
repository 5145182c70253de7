"""HTTPS and the request-head timeout, through real clients: kubectl, the official Python client
(its configuration loaded from the server's kubeconfig) and our own REST transport.

A server with ``tls=True`` makes a CA, signs a serving certificate for 127.0.0.1, localhost and
::1 with it, and writes the CA into its kubeconfig; clients verify the server against it. The
wrong scheme fails at once, with kube's words: a plain request on the TLS port gets Go's
"Client sent an HTTP request to an HTTPS server.", a TLS client on a plain port is answered
with plain HTTP that its TLS library rejects. A request head that does not arrive within
``request_header_timeout`` loses its connection; bodies and watches are not timed.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from cryptography import x509
from kubernetes import client as k8s

from envtest import LocalAPIServer, ServerOptions
from envtest.http.tls import HTTP_ON_TLS_PORT
from foundation.certs import certificate_authority
from informers import TransportError
from informers.rest import Transport, load_configuration
from tests.conftest import run_kubectl

from ..conftest import typed_client

HEAD_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def tls_api() -> Iterator[LocalAPIServer]:
    options = ServerOptions(request_header_timeout=HEAD_TIMEOUT, bookmark_interval=0.2)
    with LocalAPIServer(tls=True, options=options) as server:
        yield server


@pytest.fixture(scope="module")
def plain_api() -> Iterator[LocalAPIServer]:
    with LocalAPIServer(options=ServerOptions(request_header_timeout=HEAD_TIMEOUT)) as server:
        yield server


def kubectl(kubeconfig: str, *args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return run_kubectl(kubeconfig, cache, *args)


def address(server: LocalAPIServer) -> tuple[str, int]:
    host, port = server.url.split("://")[1].rsplit(":", 1)
    return host, int(port)


def cluster_entry(kubeconfig: str) -> dict[str, Any]:
    return dict(yaml.safe_load(Path(kubeconfig).read_text())["clusters"][0]["cluster"])


def rewritten(kubeconfig: str, target: Path, **cluster: str) -> str:
    """A copy of ``kubeconfig`` whose cluster entry has ``cluster``'s keys replaced."""
    config = yaml.safe_load(Path(kubeconfig).read_text())
    config["clusters"][0]["cluster"].update(cluster)
    target.write_text(yaml.safe_dump(config))
    return str(target)


# the certificate and the kubeconfig ------------------------------------------------------------
def test_kubeconfig_names_https_and_carries_the_ca(tls_api: LocalAPIServer) -> None:
    entry = cluster_entry(tls_api.kubeconfig)
    assert entry["server"] == tls_api.url and tls_api.url.startswith("https://127.0.0.1:")
    assert base64.b64decode(entry["certificate-authority-data"]) == tls_api.ca_pem
    assert "insecure-skip-tls-verify" not in entry


def test_serving_certificate_is_signed_by_the_ca_for_the_local_names(
        tls_api: LocalAPIServer) -> None:
    host, port = address(tls_api)
    served = x509.load_pem_x509_certificate(
        ssl.get_server_certificate((host, port)).encode())
    ca = x509.load_pem_x509_certificate(tls_api.ca_pem)
    served.verify_directly_issued_by(ca)
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(names.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    assert not served.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_a_server_restarted_with_the_same_ca_dir_is_still_trusted(tmp_path: Path) -> None:
    first_options = ServerOptions(tls=True, tls_ca_dir=str(tmp_path / "ca"))
    with LocalAPIServer(options=first_options) as first:
        first_ca = first.ca_pem
    assert (tmp_path / "ca" / "ca.key").stat().st_mode & 0o077 == 0
    with LocalAPIServer(options=first_options) as second:
        assert second.ca_pem == first_ca
        served = x509.load_pem_x509_certificate(
            ssl.get_server_certificate(address(second)).encode())
        served.verify_directly_issued_by(x509.load_pem_x509_certificate(first_ca))


# real clients over TLS ---------------------------------------------------------------------------
def test_kubectl_works_over_tls(tls_api: LocalAPIServer, tmp_path: Path) -> None:
    made = kubectl(tls_api.kubeconfig, "create", "configmap", "over-tls", "--from-literal=a=b",
                   cache=tmp_path)
    assert made.returncode == 0, made.stderr
    got = kubectl(tls_api.kubeconfig, "get", "configmap", "over-tls", "-o", "json",
                  cache=tmp_path)
    assert got.returncode == 0, got.stderr
    assert orjson.loads(got.stdout)["data"] == {"a": "b"}


def test_kubectl_refuses_a_server_its_ca_did_not_sign(tls_api: LocalAPIServer,
                                                       tmp_path: Path) -> None:
    other = base64.b64encode(certificate_authority("someone-else").cert_pem).decode()
    config = rewritten(tls_api.kubeconfig, tmp_path / "kubeconfig",
                       **{"certificate-authority-data": other})
    done = kubectl(config, "get", "namespaces", cache=tmp_path)
    assert done.returncode != 0
    assert "certificate signed by unknown authority" in done.stderr


def test_python_client_and_our_transport_verify_the_ca(tls_api: LocalAPIServer,
                                                       tmp_path: Path) -> None:
    configuration = load_configuration(tls_api.kubeconfig)
    assert configuration.verify_ssl and configuration.ssl_ca_cert
    with typed_client(configuration) as api:
        names = [ns.metadata.name for ns in k8s.CoreV1Api(api).list_namespace().items]
    assert "default" in names
    transport = Transport(load_configuration(tls_api.kubeconfig))
    try:
        found = transport.json("GET", "/api/v1/namespaces/default", verb="get")
        assert found["metadata"]["name"] == "default"
    finally:
        transport.close()
    other = base64.b64encode(certificate_authority("someone-else").cert_pem).decode()
    untrusted = rewritten(tls_api.kubeconfig, tmp_path / "kubeconfig",
                          **{"certificate-authority-data": other})
    transport = Transport(load_configuration(untrusted))
    try:
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            transport.json("GET", "/api/v1/namespaces/default", verb="get")
    finally:
        transport.close()


# the wrong scheme fails at once ------------------------------------------------------------------
def test_plain_http_on_the_tls_port_gets_gos_answer(tls_api: LocalAPIServer,
                                                     tmp_path: Path) -> None:
    with socket.create_connection(address(tls_api), timeout=5) as sock:
        sock.sendall(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(4096), b""))
    assert answer == HTTP_ON_TLS_PORT
    plain = tls_api.url.replace("https://", "http://")
    config = rewritten(tls_api.kubeconfig, tmp_path / "kubeconfig", server=plain)
    done = kubectl(config, "get", "--raw", "/api", cache=tmp_path)
    # What kubectl prints against kube-apiserver too: the text answer is not a Status.
    assert done.returncode != 0
    assert "(BadRequest): the server rejected our request" in done.stderr
    configuration = load_configuration(config)
    with typed_client(configuration) as api, pytest.raises(k8s.ApiException) as refused:
        k8s.CoreV1Api(api).list_namespace()
    assert refused.value.status == 400
    assert refused.value.body == HTTP_ON_TLS_PORT.split(b"\r\n\r\n")[1].decode()


def test_tls_on_a_plain_port_fails_at_once(plain_api: LocalAPIServer, tmp_path: Path) -> None:
    config = rewritten(plain_api.kubeconfig, tmp_path / "kubeconfig",
                       server=plain_api.url.replace("http://", "https://"))
    started = time.monotonic()
    done = kubectl(config, "get", "--raw", "/api", "--request-timeout=20s", cache=tmp_path)
    assert done.returncode != 0
    assert "server gave HTTP response to HTTPS client" in done.stderr
    assert time.monotonic() - started < 15  # answered, not timed out
    context = ssl.create_default_context()
    with socket.create_connection(address(plain_api), timeout=5) as sock, \
            pytest.raises(ssl.SSLError, match=r"WRONG_VERSION_NUMBER|wrong version"):
        context.wrap_socket(sock, server_hostname="127.0.0.1")


# the request-head timeout ------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["plain", "tls"])
def test_an_unfinished_request_head_loses_its_connection(
        which: str, plain_api: LocalAPIServer, tls_api: LocalAPIServer,
        caplog: pytest.LogCaptureFixture) -> None:
    server = tls_api if which == "tls" else plain_api
    raw = socket.create_connection(address(server), timeout=10)
    sock = (ssl.create_default_context(cadata=server.ca_pem.decode()).wrap_socket(
        raw, server_hostname="127.0.0.1") if which == "tls" else raw)
    with sock:
        sock.sendall(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started = time.monotonic()
        assert sock.recv(4096) == b""  # closed without an answer, as Go's server does
        assert HEAD_TIMEOUT * 0.8 <= time.monotonic() - started < 8
    assert "request head did not arrive within" in caplog.text


def test_a_connection_that_sends_nothing_is_closed(plain_api: LocalAPIServer,
                                                   tls_api: LocalAPIServer) -> None:
    for server in (plain_api, tls_api):  # the TLS port: no ClientHello either
        with socket.create_connection(address(server), timeout=10) as sock:
            assert sock.recv(4096) == b""


def test_a_slow_body_and_an_idle_keep_alive_connection_are_not_cut(
        tls_api: LocalAPIServer) -> None:
    host, port = address(tls_api)
    context = ssl.create_default_context(cadata=tls_api.ca_pem.decode())
    connection = http.client.HTTPSConnection(host, port, context=context, timeout=10)
    body = orjson.dumps({"metadata": {"name": "slow-body"}, "data": {"k": "v"}})

    def trickle() -> Iterator[bytes]:
        for part in (body[:10], body[10:]):
            time.sleep(HEAD_TIMEOUT * 1.5)
            yield part

    try:
        connection.request("POST", "/api/v1/namespaces/default/configmaps", body=trickle(),
                           headers={"Content-Type": "application/json"},
                           encode_chunked=True)
        answer = connection.getresponse()
        assert answer.status == 201, answer.read()
        answer.read()
        time.sleep(HEAD_TIMEOUT * 2)  # idle between requests: not timed
        connection.request("GET", "/api/v1/namespaces/default/configmaps/slow-body")
        again = connection.getresponse()
        assert again.status == 200 and orjson.loads(again.read())["data"] == {"k": "v"}
    finally:
        connection.close()


def test_a_watch_outlives_the_head_timeout(tls_api: LocalAPIServer) -> None:
    configuration = load_configuration(tls_api.kubeconfig)
    with typed_client(configuration) as api:
        core = k8s.CoreV1Api(api)
        stream = core.list_namespaced_config_map(
            "default", watch=True, timeout_seconds=30, _preload_content=False,
            _request_timeout=(5, 10))
        try:
            time.sleep(HEAD_TIMEOUT * 3)  # the watch's connection waits, silent
            core.create_namespaced_config_map("default", {"metadata": {"name": "late"}})
            for line in stream.stream(amt=None):
                if b'"name":"late"' in line:
                    break
            else:
                raise AssertionError("the watch ended before its event")
        finally:
            stream.release_conn()
            stream.close()
