"""informers.http1 against a scripted server on loopback: every framing an HTTP/1.x server may
answer with, connections kept and replaced, which requests are tried again after a reused
connection closed, and bad answers refused with an error instead of a hang or a wrong body.
(The transport on it talks to the local API server in test_rest.py and, over TLS, in
tests/envtest/test_tls.py.)"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from informers.http1 import BadResponse, ConnectionPool

Script = Callable[[int, socket.socket, "Scripted"], None]
"""Serves one accepted connection: its number (from 0), the socket, the server."""


class Scripted:
    """Accepts connections on loopback and serves each with ``script``; records every
    request head it read."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.heads: list[bytes] = []
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, name="scripted", daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            number, self.accepted = self.accepted, self.accepted + 1
            thread = threading.Thread(target=self._serve, args=(number, conn), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, number: int, conn: socket.socket) -> None:
        with conn:
            self.script(number, conn, self)

    def read_head(self, conn: socket.socket) -> bytes | None:
        """One request's head and body (by Content-Length); None once the client closed."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += conn.recv(65536)
        self.heads.append(head)
        return head

    def connect(self, timeout: float) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def close(self) -> None:
        self._listener.close()
        for thread in self._threads:
            thread.join(5)


@pytest.fixture()
def serve() -> Iterator[Callable[[Script], tuple[Scripted, ConnectionPool]]]:
    made: list[tuple[Scripted, ConnectionPool]] = []

    def start(script: Script) -> tuple[Scripted, ConnectionPool]:
        server = Scripted(script)
        pool = ConnectionPool(server.connect, host=f"127.0.0.1:{server.port}", maxsize=2)
        made.append((server, pool))
        return server, pool

    yield start
    for server, pool in made:
        pool.close()
        server.close()


def get(pool: ConnectionPool, method: str = "GET", target: str = "/x",
        body: bytes | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    response = pool.request(method, target, headers={"Accept": "application/json"}, body=body,
                            connect_timeout=5.0, timeout=timeout)
    return response.status, response.data


def answering(*answers: bytes) -> Script:
    """Each request on a connection gets the next answer; then the connection waits for
    the client to close it."""
    def script(number: int, conn: socket.socket, server: Scripted) -> None:
        for answer in answers:
            if server.read_head(conn) is None:
                return
            conn.sendall(answer)
        server.read_head(conn)
    return script


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def test_a_kept_connection_carries_the_next_request(serve: Callable[..., Any]) -> None:
    server, pool = serve(answering(OK, OK, OK))
    assert [get(pool) for _ in range(3)] == [(200, b"{}")] * 3
    assert server.accepted == 1
    assert server.heads[0].split(b"\r\n")[:3] == [
        b"GET /x HTTP/1.1", f"Host: 127.0.0.1:{server.port}".encode(),
        b"Accept: application/json"]


@pytest.mark.parametrize("answer, body", [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nTrailer: x\r\n\r\n", b'{"a":1}'),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}",
     b"{}"),
    (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", b""),
], ids=["chunked", "interim-100", "no-content", "not-modified"])
def test_framings(serve: Callable[..., Any], answer: bytes, body: bytes) -> None:
    server, pool = serve(answering(answer, OK))
    assert get(pool)[1] == body
    assert get(pool) == (200, b"{}")  # the framing was read exactly: the next answer is whole
    assert server.accepted == 1


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
], ids=["connection-close", "http-1.0"])
def test_a_connection_either_side_closes_is_not_used_again(serve: Callable[..., Any],
                                                           answer: bytes) -> None:
    server, pool = serve(answering(answer))
    assert get(pool) == (200, b"{}")
    assert get(pool) == (200, b"{}")
    assert server.accepted == 2


def test_a_body_without_length_runs_until_the_server_closes(serve: Callable[..., Any]) -> None:
    def script(number: int, conn: socket.socket, server: Scripted) -> None:
        server.read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n{\"long\":")
        time.sleep(0.05)
        conn.sendall(b"true}")

    server, pool = serve(script)
    assert get(pool) == (200, b'{"long":true}')
    assert get(pool) == (200, b'{"long":true}')
    assert server.accepted == 2


def test_an_idle_connection_the_server_closed_is_replaced_before_use(
        serve: Callable[..., Any]) -> None:
    """Even for a POST, which is never sent twice: the close is seen before sending."""
    def script(number: int, conn: socket.socket, server: Scripted) -> None:
        server.read_head(conn)
        conn.sendall(OK)  # kept by the client, then closed here while idle

    server, pool = serve(script)
    assert get(pool) == (200, b"{}")
    time.sleep(0.1)
    assert get(pool, "POST", body=b"{}") == (200, b"{}")
    assert server.accepted == 2
    assert [head.split(b" ")[0] for head in server.heads] == [b"GET", b"POST"]


def _closes_after_reading_the_second_request(number: int, conn: socket.socket,
                                             server: Scripted) -> None:
    server.read_head(conn)
    conn.sendall(OK)
    if number == 0:
        server.read_head(conn)  # read, not answered: the client cannot know what was done
        conn.shutdown(socket.SHUT_RDWR)
    else:
        server.read_head(conn)


def test_a_get_on_a_reused_connection_that_closes_unanswered_is_sent_again(
        serve: Callable[..., Any]) -> None:
    server, pool = serve(_closes_after_reading_the_second_request)
    assert get(pool) == (200, b"{}")
    assert get(pool) == (200, b"{}")
    assert server.accepted == 2 and len(server.heads) == 3


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE", "PUT"])
def test_a_write_on_a_reused_connection_that_closes_unanswered_is_not_sent_again(
        serve: Callable[..., Any], method: str) -> None:
    server, pool = serve(_closes_after_reading_the_second_request)
    assert get(pool) == (200, b"{}")
    with pytest.raises(ConnectionError):
        get(pool, method, body=b"{}")
    assert server.accepted == 1 and len(server.heads) == 2


@pytest.mark.parametrize("answer, error", [
    (b"HTTP/2 200 OK\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", "ended after 2 of 10 bytes"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "is no number"),
    (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", "more than 100 headers"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort", "inside a chunk"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", "closed in the answer's headers"),
], ids=["version", "code", "short-body", "bad-length", "no-colon", "too-many-headers",
        "chunk-size", "short-chunk", "cut-headers"])
def test_a_bad_answer_is_an_error_not_a_hang(serve: Callable[..., Any], answer: bytes,
                                             error: str) -> None:
    def script(number: int, conn: socket.socket, server: Scripted) -> None:
        server.read_head(conn)
        conn.sendall(answer)
        conn.shutdown(socket.SHUT_WR)  # and nothing more comes

    _, pool = serve(script)
    with pytest.raises(BadResponse, match=error):
        get(pool)


def test_a_server_that_never_answers_times_out(serve: Callable[..., Any]) -> None:
    def script(number: int, conn: socket.socket, server: Scripted) -> None:
        server.read_head(conn)
        server.read_head(conn)  # until the client gives up and closes

    _, pool = serve(script)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        get(pool, timeout=0.2)
    assert time.monotonic() - started < 3.0


def test_each_request_on_a_kept_connection_has_its_own_timeout(
        serve: Callable[..., Any]) -> None:
    """The socket's timeout is set only when it changes: a request with a shorter one than
    the last on the same connection still gives up at its own."""
    def script(number: int, conn: socket.socket, server: Scripted) -> None:
        server.read_head(conn)
        conn.sendall(OK)
        server.read_head(conn)  # the second request is never answered
        server.read_head(conn)

    server, pool = serve(script)
    assert get(pool, timeout=30.0) == (200, b"{}")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        get(pool, timeout=0.2)
    assert time.monotonic() - started < 10.0, "the 0.2 s of this request, not the 30 s"
    assert server.accepted == 1


def test_the_request_head_refuses_injection_and_escapes_the_target(
        serve: Callable[..., Any]) -> None:
    server, pool = serve(answering(OK))
    for headers in ({"X": "a\r\nEvil: 1"}, {"X\r\nEvil": "1"}, {"X": "a\0"}):
        with pytest.raises(ValueError):
            pool.request("GET", "/x", headers=headers, body=None, connect_timeout=5,
                         timeout=5)
    with pytest.raises(ValueError):
        pool.request("GE T", "/x", headers={}, body=None, connect_timeout=5, timeout=5)
    assert server.accepted == 0  # refused before anything was sent
    assert get(pool, target="/a b/\u00e9?q=1%2F") == (200, b"{}")
    assert server.heads[0].split(b"\r\n")[0] == b"GET /a%20b/%C3%A9?q=1%2F HTTP/1.1"


def test_a_body_gets_its_length_and_repeated_headers_are_kept_apart(
        serve: Callable[..., Any]) -> None:
    answer = (b"HTTP/1.1 200 OK\r\nWarning: 299 - \"one\"\r\nwarning: 299 - \"two\"\r\n"
              b"Content-Length: 0\r\n\r\n")
    server, pool = serve(answering(answer))
    response = pool.request("POST", "/x", headers={}, body=b'{"a":1}', connect_timeout=5,
                            timeout=5)
    assert response.headers.getlist("WARNING") == ['299 - "one"', '299 - "two"']
    assert response.headers.get("warning") == '299 - "one", 299 - "two"'
    assert response.headers.get("Retry-After") is None
    assert b"Content-Length: 7" in server.heads[0].split(b"\r\n")
