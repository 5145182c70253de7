"""A small HTTP/1.1 server on asyncio: requests in, one write per response, chunked streams out.

Why not http.server or a framework: the API server's hot paths are watch fan-out and small JSON
replies. A hand-written ``asyncio.Protocol`` measured fastest on this machine (CLIENT-SURFACE.md)
and lets a watch stream write one chunk per loop iteration however many events it carries.
Keep-alive, ``Content-Length`` and chunked request bodies, ``Expect: 100-continue``; TLS is
the transport's (``tls.py`` makes the listener).

A request head that has not fully arrived ``header_timeout`` seconds after the connection
started (its first request) or after its first byte (later ones) closes the connection, as Go's
``ReadHeaderTimeout`` does: a client that stalls in its head (slowloris) cannot hold a
connection forever. Nothing else is timed: a body may trickle, a watch stays open. A TLS
handshake sent to this plain server is answered with a 400 at once (the client's TLS library
reports a bad record), not left waiting for a head that never comes.

A request whose framing cannot be trusted (a malformed request line, a ``Content-Length`` that is
not a plain decimal number, a bad chunk size or chunk terminator, a transfer coding other than
chunked) gets a 400 ``Status`` and the connection is closed: nothing after it can be parsed
reliably. Go's net/http, in front of kube-apiserver, closes too but answers such requests in
text/plain before kube code runs; we answer with a JSON Status so every client can print it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol, cast
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 1 << 20
"""A request line and headers larger than this get 431 (Go's ``http.DefaultMaxHeaderBytes``)."""
TLS_HANDSHAKE = 0x16
"""The first byte of a TLS record that carries a handshake: a ClientHello on a plain port."""
_DECIMAL = re.compile(rb"[0-9]+")
_HEX = re.compile(rb"[0-9a-fA-F]+")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(slots=True)
class Request:
    """One parsed HTTP request. Header names are lower-case."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes = b""
    path: str = ""
    query: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = unquote(parts.path)
        self.query = parse_qs(parts.query, keep_blank_values=True)

    def param(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str) -> bool:
        return self.param(name).lower() in ("1", "true")


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class StreamSink(Protocol):
    """What a streaming handler writes to (see :class:`ChunkedStream`)."""

    closed: bool

    def send(self, data: bytes) -> None: ...
    def limit_backlog(self, limit: int, on_overflow: Callable[[int, int], None]) -> None: ...
    def finish(self) -> None: ...
    def abort(self) -> None: ...
    def buffered(self) -> int: ...
    def on_close(self, callback: Callable[[], None]) -> None: ...


@dataclass(slots=True)
class Streaming:
    """A handler's answer that opens a chunked stream and hands it to ``start``."""

    content_type: str
    start: Callable[[StreamSink], None]


Answer = Response | Streaming


class Handler(Protocol):
    """Answers a request now, or later through a future (injected latency, a paused server)."""

    def __call__(self, request: Request) -> Answer | asyncio.Future[Answer]: ...


class Backlog:
    """What every open stream of one server holds unsent, together, with a bound.

    A stream counts here while its connection is behind (more buffered than the transport's
    high-water mark: the client is not reading as fast as it is written to), measured each
    time it is written to, and stops counting once the transport drains (``resume_writing``).
    Past ``limit`` the stream furthest behind is dropped, then the next, until the total is
    back under it: many slow watchers cannot together hold what one may not (kube-apiserver
    closes a watcher that cannot keep up; its client relists). Work per write: a dict update;
    a scan of the streams that are behind only when the limit is passed.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._behind: dict[ChunkedStream, int] = {}

    def update(self, stream: ChunkedStream, behind: int) -> None:
        self.total += behind - self._behind.pop(stream, 0)
        if behind > 0:
            self._behind[stream] = behind
        while self.limit and self.total > self.limit and self._behind:
            slowest = max(self._behind, key=self._behind.__getitem__)
            slowest.overflow(self._behind[slowest], self.total)

    def forget(self, stream: ChunkedStream) -> None:
        self.total -= self._behind.pop(stream, 0)


class ChunkedStream:
    """A chunked response body. Data sent within one loop iteration goes out as one chunk."""

    HIGH_WATER = 64 * 1024
    """Bytes a connection may buffer before its stream counts as behind (asyncio's default
    high-water mark)."""

    def __init__(self, protocol: HTTPProtocol, loop: asyncio.AbstractEventLoop,
                 backlog: Backlog | None = None) -> None:
        self._protocol = protocol
        self._loop = loop
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._scheduled = False
        self._callbacks: list[Callable[[], None]] = []
        self._limit = 0
        self._on_overflow: Callable[[int, int], None] | None = None
        self._backlog = backlog
        self.closed = False

    def limit_backlog(self, limit: int, on_overflow: Callable[[int, int], None]) -> None:
        """Abort the connection once more than ``limit`` bytes wait to be sent, or when the
        server's streams together hold more than theirs and this one is furthest behind;
        ``on_overflow(behind, total)`` first (``total``: the server's, or 0 for ``limit``)."""
        self._limit = limit
        self._on_overflow = on_overflow

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        self._pending.append(data)
        self._pending_bytes += len(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self.closed or not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        self._protocol.write(b"%x\r\n%b\r\n" % (len(data), data))
        behind = self._protocol.buffered()
        if self._limit and behind > self._limit:
            # The client stopped reading: drop it rather than hold memory for it.
            self.overflow(behind, 0)
        elif self._backlog is not None and self._on_overflow is not None:
            self._backlog.update(self, behind if behind > self.HIGH_WATER else 0)

    def overflow(self, behind: int, total: int) -> None:
        """Drop the connection of a stream too far behind (see :meth:`limit_backlog`)."""
        if self._on_overflow is not None:
            self._on_overflow(behind, total)
        self.abort()

    def drained(self) -> None:
        """The connection's buffer went under its low-water mark: no longer behind."""
        if self._backlog is not None:
            self._backlog.forget(self)

    def buffered(self) -> int:
        return self._pending_bytes + self._protocol.buffered()

    def finish(self) -> None:
        """End the body cleanly; the connection stays open for the next request."""
        if self.closed:
            return
        self._flush()
        self._protocol.write(b"0\r\n\r\n")
        self._close()
        self._protocol.stream_finished()

    def abort(self) -> None:
        """Drop the connection (a watcher that fell too far behind)."""
        if not self.closed:
            self._close()
            self._protocol.abort()

    def on_close(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def _close(self) -> None:
        self.closed = True
        self._pending.clear()
        if self._backlog is not None:
            self._backlog.forget(self)
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


_GO_ESCAPES = ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"),
               ("\u2028".encode(), b"\\u2028"), ("\u2029".encode(), b"\\u2029"))


def encode_status(status: dict[str, Any]) -> bytes:
    """A ``Status`` body byte for byte as kube-apiserver writes it: Go's ``json.Encoder`` on
    ``metav1.Status`` — fields in the struct's order (kind, apiVersion, metadata, status,
    message, reason, details, code: ``status`` must list them so), no spaces, ``<``, ``>``,
    ``&`` and U+2028/9 escaped, and a trailing newline. Those characters occur only inside
    JSON strings, so replacing them in the encoded bytes is exact."""
    body = orjson.dumps(status)
    for raw, escaped in _GO_ESCAPES:
        if raw in body:
            body = body.replace(raw, escaped)
    return body + b"\n"


def status_response(code: int, reason: str, message: str) -> Response:
    """A failure ``Status`` built here, below the API layer (errors.py builds the others)."""
    return Response(code, encode_status({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code}))


_INTERNAL_ERROR = status_response(500, "InternalError", "internal error")


class _BodyTooLarge(Exception):
    pass


class _HeaderTooLarge(Exception):
    """A header block over :data:`MAX_HEADER_BYTES`, complete or not (Go's net/http: 431)."""


class HTTPProtocol(asyncio.Protocol):
    """One client connection: parse requests in order, answer each before reading the next."""

    def __init__(self, handler: Handler, *, max_body: int,
                 too_large: Callable[[], Response],
                 connections: set[HTTPProtocol] | None = None,
                 backlog: Backlog | None = None, header_timeout: float = 0) -> None:
        self._handler = handler
        self._header_timeout = header_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = True  # what is buffered (if anything) is a request head so far
        self._backlog = backlog
        self._connections = connections if connections is not None else set()
        self._max_body = max_body
        self._too_large = too_large
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._stream: ChunkedStream | None = None
        self._waiting = False  # an answer is pending: later requests wait their turn
        self._closing = False

    # asyncio callbacks -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._connections.add(self)
        self._time_head()  # the first request's head is timed from the connection's start

    def _time_head(self) -> None:
        if self._header_timeout and self._head_timer is None:
            self._head_timer = asyncio.get_running_loop().call_later(
                self._header_timeout, self._head_timed_out)

    def _untime_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._transport is None or not self._in_head or self._stream or self._waiting:
            return
        peer = self._transport.get_extra_info("peername")
        log.warning("closing a connection whose request head did not arrive within %g s",
                    self._header_timeout, extra={"peer": str(peer), "received": len(self._buffer)})
        self._closing = True
        self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._untime_head()
        self._connections.discard(self)
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream._close()

    def resume_writing(self) -> None:
        if self._stream is not None:
            self._stream.drained()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._process()

    # used by ChunkedStream ---------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def buffered(self) -> int:
        return self._transport.get_write_buffer_size() if self._transport else 0

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def stream_finished(self) -> None:
        self._stream = None
        if self._closing:
            self._close_transport()
        else:
            asyncio.get_running_loop().call_soon(self._process)

    # request handling --------------------------------------------------------------------------
    def _process(self) -> None:
        while (self._stream is None and not self._waiting and not self._closing
               and self._transport is not None):
            try:
                request = self._parse()
            except _BodyTooLarge:
                self._closing = True
                self._respond(self._too_large(), keep_alive=False)
                return
            except _HeaderTooLarge:
                self._closing = True
                self._respond(status_response(
                    431, "RequestHeaderFieldsTooLarge",
                    f"the request's header block exceeds {MAX_HEADER_BYTES} bytes"),
                    keep_alive=False)
                return
            except ValueError as exc:
                self._closing = True
                self._respond(status_response(400, "BadRequest", str(exc)), keep_alive=False)
                return
            if request is None:
                if self._in_head and self._buffer:
                    self._time_head()  # a later request's head: timed from its first byte
                elif not self._in_head:
                    self._untime_head()  # a body: not timed
                return
            self._untime_head()
            keep_alive = request.headers.get("connection", "").lower() != "close"
            self._closing = not keep_alive
            self._dispatch(request, keep_alive)

    def _dispatch(self, request: Request, keep_alive: bool) -> None:
        try:
            answer = self._handler(request)
        except Exception:  # the handler maps API errors itself; anything here is our bug
            log.exception("unhandled error serving %s %s", request.method, request.target)
            answer = _INTERNAL_ERROR
        if isinstance(answer, asyncio.Future):
            self._waiting = True
            answer.add_done_callback(lambda done: self._deferred(done, request, keep_alive))
            return
        self._deliver(answer, keep_alive)

    def _deferred(self, done: asyncio.Future[Answer], request: Request, keep_alive: bool) -> None:
        self._waiting = False
        if done.cancelled():
            self.abort()
            return
        try:
            answer = done.result()
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.target)
            answer = _INTERNAL_ERROR
        self._deliver(answer, keep_alive)
        if self._stream is None and not self._closing:
            self._process()

    def _deliver(self, answer: Answer, keep_alive: bool) -> None:
        if isinstance(answer, Response):
            self._respond(answer, keep_alive)
            return
        if self._transport is None:
            return
        self._stream = ChunkedStream(self, asyncio.get_running_loop(), self._backlog)
        self._transport.write(self._head(200, answer.content_type, {}, keep_alive,
                                         b"Transfer-Encoding: chunked\r\n"))
        answer.start(self._stream)

    def _respond(self, response: Response, keep_alive: bool) -> None:
        if self._transport is None:
            return
        length = b"Content-Length: %d\r\n" % len(response.body)
        self._transport.write(self._head(response.status, response.content_type,
                                         response.headers, keep_alive, length) + response.body)
        if not keep_alive:
            self._close_transport()

    def _close_transport(self) -> None:
        if self._transport is not None:
            self._transport.close()

    @staticmethod
    def _head(status: int, content_type: str, headers: dict[str, str], keep_alive: bool,
              framing: bytes) -> bytes:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [f"HTTP/1.1 {status} {phrase}\r\n", f"Content-Type: {content_type}\r\n",
                 "Cache-Control: no-cache, private\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        if not keep_alive:
            lines.append("Connection: close\r\n")
        return "".join(lines).encode("latin-1") + framing + b"\r\n"

    def _parse(self) -> Request | None:
        if self._buffer and self._buffer[0] == TLS_HANDSHAKE:
            raise ValueError("client sent a TLS handshake to an HTTP server: this server "
                             "speaks plain HTTP here (use http:// or its kubeconfig)")
        end = self._buffer.find(b"\r\n\r\n", 0, MAX_HEADER_BYTES + 4)
        self._in_head = end < 0
        if end < 0:
            if len(self._buffer) > MAX_HEADER_BYTES:
                raise _HeaderTooLarge
            return None
        head = bytes(self._buffer[:end]).decode("latin-1")
        request_line, *header_lines = head.split("\r\n")
        parts = request_line.split(" ")
        if (len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1")
                or not _TOKEN.fullmatch(parts[0]) or not parts[1].startswith(("/", "*", "http://", "https://"))):
            raise ValueError(f"malformed HTTP request {request_line[:200]!r}")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError(f"malformed header line {line!r}")
            headers[name.strip().lower()] = value.strip()
        if parts[2] == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
            headers["connection"] = "close"
        body = self._body(headers, end + 4)
        if body is None:
            return None
        return Request(parts[0].upper(), parts[1], headers, body)

    def _body(self, headers: dict[str, str], start: int) -> bytes | None:
        """The body if it has fully arrived (and consume the request), else None."""
        coding = headers.get("transfer-encoding", "").strip().lower()
        if coding == "chunked":
            return self._chunked_body(start)
        if coding:
            raise ValueError(f"unsupported transfer encoding: {coding[:100]!r}")
        declared = headers.get("content-length", "0").strip().encode("latin-1")
        if not _DECIMAL.fullmatch(declared) or len(declared) > 18:
            # Go's net/http: "bad Content-Length"; a negative one must not move the buffer.
            raise ValueError(f"bad Content-Length {declared[:40].decode('latin-1')!r}")
        length = int(declared)
        if length > self._max_body:
            raise _BodyTooLarge
        if length and headers.get("expect", "").lower() == "100-continue" \
                and len(self._buffer) == start:
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            headers.pop("expect")
        if len(self._buffer) < start + length:
            return None
        body = bytes(self._buffer[start:start + length])
        del self._buffer[:start + length]
        return body

    def _chunked_body(self, start: int) -> bytes | None:
        pos, total = start, 0
        chunks: list[bytes] = []
        while True:
            line_end = self._buffer.find(b"\r\n", pos)
            if line_end < 0:
                if len(self._buffer) - pos > 4096:
                    raise ValueError("malformed chunked encoding: chunk size line too long")
                return None
            digits = bytes(self._buffer[pos:line_end]).split(b";")[0].strip()
            if not _HEX.fullmatch(digits) or len(digits) > 16:
                raise ValueError(f"malformed chunked encoding: bad chunk size "
                                 f"{digits[:40].decode('latin-1')!r}")
            size = int(digits, 16)
            total += size
            if total > self._max_body:
                raise _BodyTooLarge
            if size == 0:
                trailer_end = self._buffer.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    return None
                del self._buffer[:trailer_end + 4]
                return b"".join(chunks)
            data_start = line_end + 2
            if len(self._buffer) < data_start + size + 2:
                return None
            if self._buffer[data_start + size:data_start + size + 2] != b"\r\n":
                raise ValueError("malformed chunked encoding: chunk data not followed by CRLF")
            chunks.append(bytes(self._buffer[data_start:data_start + size]))
            pos = data_start + size + 2
