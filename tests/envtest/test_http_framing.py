"""HTTP/1.1 framing the server cannot trust: a 400 Status, then the connection closes."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import orjson
import pytest

from envtest import LocalAPIServer
from tests.conftest import RawClient


def exchange(api: LocalAPIServer, data: bytes) -> tuple[int, dict[str, str], bytes, bool]:
    """Send raw bytes; (status, headers, body, whether the server closed the connection)."""
    address = urlsplit(api.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines)}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        sock.settimeout(5)
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            closed = False
        return int(status_line.split()[1]), headers, body[:length], closed


CM = b'{"metadata":{"name":"framed"}}'


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",
    b"GET /api/v1/namespaces HTTP/2.0\r\nHost: x\r\n\r\n",
    b"GET api/v1/namespaces HTTP/1.1\r\nHost: x\r\n\r\n",
    b"G(T /api/v1/namespaces HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: abc\r\n\r\n" + CM,
    b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: -20\r\n\r\n" + CM,
    b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: +30\r\n\r\n" + CM,
    b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + CM + b"\r\n0\r\n\r\n",
    b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n-1e\r\n" + CM + b"\r\n0\r\n\r\n",
    b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n4\r\n" + CM + b"\r\n0\r\n\r\n",
    b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
    b"Transfer-Encoding: gzip\r\n\r\n" + CM,
], ids=["request-line", "http-version", "relative-target", "bad-method", "length-garbage",
        "length-negative", "length-signed", "chunk-size-garbage", "chunk-size-negative",
        "chunk-overrun", "unknown-transfer-coding"])
def test_bad_framing_gets_a_status_and_the_connection_closes(
        api: LocalAPIServer, client: RawClient, request_bytes: bytes) -> None:
    status, headers, body, closed = exchange(api, request_bytes)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert headers.get("connection") == "close"
    result = orjson.loads(body)
    assert (result["kind"], result["reason"], result["code"]) == ("Status", "BadRequest", 400)
    assert result["message"]
    assert closed, "the connection must not be reused after a framing error"
    assert client.get("/api/v1/namespaces/default/configmaps/framed")[0] == 404
    assert client.get("/healthz")[0] == 200


def test_well_formed_chunked_body_is_accepted(api: LocalAPIServer, client: RawClient,
                                              namespace: str) -> None:
    body = b'{"metadata":{"name":"chunked"},"data":{"a":"b"}}'
    first, second = body[:10], body[10:]
    status, _, created, _ = exchange(
        api, f"POST /api/v1/namespaces/{namespace}/configmaps HTTP/1.1\r\nHost: x\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        + b"%x;ext=1\r\n%b\r\n%x\r\n%b\r\n0\r\n\r\n" % (len(first), first, len(second), second))
    assert status == 201, created
    assert orjson.loads(created)["data"] == {"a": "b"}


@pytest.mark.parametrize("complete", [True, False], ids=["complete", "still-arriving"])
def test_a_header_block_over_a_mebibyte_gets_431(api: LocalAPIServer, complete: bool) -> None:
    """Go's net/http (kube-apiserver's) refuses headers past 1 MiB, whether or not the
    block has ended; a complete one used to be accepted whatever its size."""
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"a" * 8000) for i in range(140))
    head = b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\n" + filler
    status, _, body, closed = exchange(api, head + b"\r\n" if complete else head)
    assert status == 431
    assert orjson.loads(body)["reason"] == "RequestHeaderFieldsTooLarge"
    assert closed


def test_a_header_block_under_the_bound_is_served(api: LocalAPIServer) -> None:
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"a" * 8000) for i in range(120))
    status, _, _, _ = exchange(
        api, b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\n" + filler + b"\r\n")
    assert status == 200
