"""Status bodies byte for byte as kube-apiserver writes them, read by real clients.

kube-apiserver encodes ``metav1.Status`` with Go's ``json.Encoder``: the struct's field order
(kind, apiVersion, metadata, status, message, reason, details, code), ``<``, ``>`` and ``&``
escaped, and a newline after the object. The expected bytes below are a real kube-apiserver
answer (a 404 whose ``Content-Length: 178`` counts the newline) with our names put in; clients
that compare bodies as text (golden files, the Python client's ``ApiException.body``) see no
difference.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator

import orjson
import pytest
from kubernetes import client as k8s

from envtest import LocalAPIServer
from informers.rest import load_configuration

from ..conftest import typed_client

NOT_FOUND = (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
             b'"message":"pods \\"nginx\\" not found","reason":"NotFound",'
             b'"details":{"name":"nginx","kind":"pods"},"code":404}\n')
"""kube-apiserver's answer to GET /api/v1/namespaces/default/pods/nginx, as captured."""


@pytest.fixture(scope="module")
def server() -> Iterator[LocalAPIServer]:
    with LocalAPIServer() as running:
        yield running


def raw(server: LocalAPIServer, method: str, path: str, body: bytes | None = None
        ) -> tuple[int, dict[str, str], bytes]:
    host, port = server.url.split("://")[1].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, path, body=body,
                           headers={"Content-Type": "application/json"} if body else {})
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


def test_not_found_is_kubes_bytes(server: LocalAPIServer) -> None:
    code, headers, body = raw(server, "GET", "/api/v1/namespaces/default/pods/nginx")
    assert code == 404 and body == NOT_FOUND
    assert headers["Content-Length"] == "178" and headers["Content-Type"] == "application/json"


def test_python_client_sees_the_same_text(server: LocalAPIServer) -> None:
    with typed_client(load_configuration(server.kubeconfig)) as api:
        core = k8s.CoreV1Api(api)
        with pytest.raises(k8s.ApiException) as missing:
            core.read_namespaced_pod("nginx", "default")
        assert missing.value.body == NOT_FOUND.decode()
        core.create_namespaced_config_map("default", {"metadata": {"name": "twice"}})
        with pytest.raises(k8s.ApiException) as taken:
            core.create_namespaced_config_map("default", {"metadata": {"name": "twice"}})
    assert taken.value.body == (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"configmaps \\"twice\\" already exists","reason":"AlreadyExists",'
        '"details":{"name":"twice","kind":"configmaps"},"code":409}\n')


def test_html_characters_are_escaped_as_go_does(server: LocalAPIServer) -> None:
    code, _, body = raw(server, "GET", "/api/v1/namespaces/default/pods/a%3Cb%3E%26c")
    assert code == 404
    assert b'"message":"pods \\"a\\u003cb\\u003e\\u0026c\\" not found"' in body
    assert not {b"<", b">", b"&"} & {bytes([c]) for c in body}
    assert orjson.loads(body)["details"]["name"] == "a<b>&c"


def test_invalid_lists_details_with_causes_before_the_code(server: LocalAPIServer) -> None:
    code, _, body = raw(server, "POST", "/api/v1/namespaces/default/configmaps",
                        orjson.dumps({"metadata": {"name": "Bad_Name"}}))
    assert code == 422 and body.endswith(b"}\n")
    keys = list(orjson.loads(body))
    assert keys == ["kind", "apiVersion", "metadata", "status", "message", "reason", "details",
                    "code"]
    details = orjson.loads(body)["details"]
    assert list(details) == ["name", "kind", "causes"]
    assert list(details["causes"][0]) == ["reason", "message", "field"]


def test_a_delete_answered_with_a_success_status(server: LocalAPIServer) -> None:
    code, _, made = raw(server, "POST", "/api/v1/namespaces/default/configmaps",
                        orjson.dumps({"metadata": {"name": "gone"}}))
    assert code == 201
    uid = orjson.loads(made)["metadata"]["uid"]
    code, _, body = raw(server, "DELETE", "/api/v1/namespaces/default/configmaps/gone")
    assert code == 200
    assert body == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success",'
                    b'"details":{"name":"gone","kind":"configmaps","uid":"' + uid.encode()
                    + b'"}}\n')


def test_framing_errors_below_the_api_are_statuses_too(server: LocalAPIServer) -> None:
    code, _, body = raw(server, "POST", "/api/v1/namespaces/default/configmaps",
                        b"x" * 10)  # fine framing: a decode error, from the API layer
    assert code == 400 and body.endswith(b"}\n")
    host, port = server.url.split("://")[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(4096), b""))
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert payload == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
                       b'"message":"bad Content-Length \'-1\'","reason":"BadRequest",'
                       b'"code":400}\n')
