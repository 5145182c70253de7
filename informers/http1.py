"""HTTP/1.1 for the API server's ordinary requests (everything but watches), lean.

urllib3 over ``http.client`` spends ~160 us of client CPU on a small request to a local API
server — the request built header by header (``putrequest``, ``putheader``), the answer's
headers parsed by the ``email`` package, Retry and Timeout objects per call — while the
request written as one buffer and the answer read line by line costs ~16 us (both measured
by ``bench/http_client.py``). An operator makes about a dozen such requests per session:
that difference was a fifth of its CPU in a burst.

Only the bytes are ours. The sockets come from urllib3's connection as the kubernetes
client configured it (TLS with its CA, client certificates, SNI and hostname checks, socket
options such as ``TCP_NODELAY``); a proxy, and streamed answers, stay with urllib3.

What the answer may be: ``HTTP/1.1`` or ``HTTP/1.0``; a body by ``Content-Length``, by
``Transfer-Encoding: chunked`` or until the server closes; none for ``HEAD``, 1xx, 204 and
304. A connection is kept for the next request unless either side said ``close`` (HTTP/1.0:
unless it said ``keep-alive``) or the body ran until the close. An idle connection the server
closed (readable while idle) is replaced before it is used; a reused connection that closes
before any byte of the answer is tried once more on a new one for methods that are safe to
repeat (GET, HEAD, OPTIONS — Go's ``net/http`` rule), and raises for the others, whose
request the server may have acted on.
"""

from __future__ import annotations

import io
import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import quote

from urllib3.util.wait import wait_for_read

__all__ = ["BadResponse", "ConnectionPool", "Headers", "Response"]

MAX_LINE = 65536
"""The longest status or header line read (http.client's limit)."""
MAX_HEADERS = 100
_REPEATABLE = frozenset({"GET", "HEAD", "OPTIONS"})
_TARGET = re.compile(r"[!-~]*")
"""A request target sent as it is: printable ASCII, no space."""
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""A method or header name (RFC 9110 token)."""
_UNSAFE = re.compile(r"[\r\n\0]")
_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~"
"""What ``quote`` keeps besides letters and digits when a target needs escaping (``%`` too:
an escape already made stays as it is)."""


class BadResponse(Exception):
    """The server's answer is not HTTP/1.x as this client reads it."""


class _ClosedEarly(ConnectionError):
    """The connection closed before any byte of the answer."""


class Headers(Mapping[str, str]):
    """An answer's headers, by case-insensitive name; ``get`` joins repeated ones with
    ``", "`` and ``getlist`` gives each (as urllib3's ``HTTPHeaderDict``)."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[str, list[str]] = {}

    def add(self, name: str, value: str) -> None:
        self._values.setdefault(name.lower(), []).append(value)

    def getlist(self, name: str) -> list[str]:
        return list(self._values.get(name.lower(), ()))

    def __getitem__(self, name: str) -> str:
        return ", ".join(self._values[name.lower()])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class Response:
    """A whole answer: ``status``, ``reason``, ``headers`` and the body, ``data``."""

    __slots__ = ("data", "headers", "reason", "status")

    def __init__(self, status: int, reason: str, headers: Headers, data: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.data = data


class _Connection:
    __slots__ = ("reader", "reused", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader: io.BufferedReader = sock.makefile("rb")
        self.reused = False

    def dropped(self) -> bool:
        """Readable while idle: the server closed it (or sent what nobody asked for)."""
        return wait_for_read(self.sock, timeout=0.0)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


Connect = Callable[[float], socket.socket]
"""Opens a connected (TLS-wrapped, where configured) socket within the given seconds."""


class ConnectionPool:
    """Keep-alive connections to one server, each used by one request at a time; at most
    ``maxsize`` are kept idle (more are opened while many threads ask, and closed after).
    Thread-safe."""

    def __init__(self, connect: Connect, *, host: str, maxsize: int) -> None:
        self._connect = connect
        self._host = host
        self._maxsize = maxsize
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def request(self, method: str, target: str, *, headers: Mapping[str, str],
                body: bytes | None, connect_timeout: float, timeout: float) -> Response:
        """Send one request and read its whole answer. ``timeout`` bounds the send and each
        read of the answer. Raises OSError (a timeout, a refused or reset connection) or
        :class:`BadResponse`."""
        head = _head(method, target, self._host, headers, body)
        message = head + body if body else head
        while True:
            connection = self._take(connect_timeout)
            reused = connection.reused
            try:
                if connection.sock.gettimeout() != timeout:
                    # A system call that lets go of the GIL: only when the timeout changes.
                    connection.sock.settimeout(timeout)
                try:
                    connection.sock.sendall(message)
                except ConnectionError as error:
                    raise _ClosedEarly(str(error)) from error
                response, keep = _read_response(connection.reader, method)
            except _ClosedEarly:
                connection.close()
                if reused and method in _REPEATABLE:
                    continue  # the server closed it as we reused it: once more, on a new one
                raise
            except BaseException:
                connection.close()
                raise
            if keep:
                self._give(connection)
            else:
                connection.close()
            return response

    def close(self) -> None:
        """Close the idle connections; those in use are closed when they come back, and so
        is any a later request opens."""
        with self._lock:
            idle, self._idle, self._closed = self._idle, [], True
        for connection in idle:
            connection.close()

    def _take(self, connect_timeout: float) -> _Connection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return _Connection(self._connect(connect_timeout))
            if not connection.dropped():
                return connection
            connection.close()

    def _give(self, connection: _Connection) -> None:
        connection.reused = True
        with self._lock:
            if not self._closed and len(self._idle) < self._maxsize:
                self._idle.append(connection)
                return
        connection.close()


def _head(method: str, target: str, host: str, headers: Mapping[str, str],
          body: bytes | None) -> bytes:
    """The request line and headers, as bytes; refuses a line break or NUL in any of them
    (a header injection), as http.client does."""
    if not _TARGET.fullmatch(target):
        target = quote(target, safe=_TARGET_SAFE)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        lines.append(f"{name}: {value}")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    if not _TOKEN.fullmatch(method) or _UNSAFE.search(
            "".join((target, host, *headers.values()))) \
            or not all(_TOKEN.fullmatch(name) for name in headers):
        raise ValueError(f"{method} {target}: a line break, NUL or separator where the "
                         "request's head cannot hold one")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _read_response(reader: io.BufferedReader, method: str) -> tuple[Response, bool]:
    """The answer on ``reader`` and whether the connection may carry another request."""
    read_line = reader.readline
    try:
        line = read_line(MAX_LINE + 1)
    except ConnectionResetError as error:
        raise _ClosedEarly(str(error)) from error
    while True:
        if not line:
            raise _ClosedEarly("the server closed the connection before answering")
        version, status, reason = _status_line(line)
        headers = _headers(read_line)
        if not 100 <= status < 200 or status == 101:
            break
        line = read_line(MAX_LINE + 1)  # an interim answer (100 Continue): the real one next
    connection = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    keep = ("close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection) \
        and status != 101  # switched to another protocol: no more HTTP on it
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return Response(status, reason, headers, b""), keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Response(status, reason, headers, _chunked(reader, read_line)), keep
    length = headers.get("content-length")
    if length is None:
        data = reader.read()  # until the server closes
        return Response(status, reason, headers, data), False
    try:
        size = int(length.split(",")[0])
    except ValueError:
        raise BadResponse(f"Content-Length {length!r} is no number") from None
    if size < 0:
        raise BadResponse(f"Content-Length {length!r} is negative")
    data = reader.read(size)
    if len(data) < size:
        raise BadResponse(f"the answer ended after {len(data)} of {size} bytes")
    return Response(status, reason, headers, data), keep


def _status_line(line: bytes) -> tuple[str, int, str]:
    if len(line) > MAX_LINE:
        raise BadResponse("status line too long")
    text = line.decode("latin-1").rstrip("\r\n")
    version, _, rest = text.partition(" ")
    code, _, reason = rest.partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise BadResponse(f"not an HTTP/1.x status line: {text[:80]!r}")
    return version, int(code), reason


def _headers(read_line: Callable[[int], bytes]) -> Headers:
    headers = Headers()
    for _ in range(MAX_HEADERS + 1):
        line = read_line(MAX_LINE + 1)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise BadResponse("the connection closed in the answer's headers")
        if len(line) > MAX_LINE:
            raise BadResponse("header line too long")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or not name or name != name.strip():
            raise BadResponse(f"malformed header line {line[:80]!r}")
        headers.add(name, value.strip())
    raise BadResponse(f"more than {MAX_HEADERS} headers")


def _chunked(reader: io.BufferedReader, read_line: Callable[[int], bytes]) -> bytes:
    read = reader.read
    parts: list[bytes] = []
    while True:
        line = read_line(MAX_LINE + 1)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadResponse(f"malformed chunk size {line[:80]!r}") from None
        if size == 0:
            break
        chunk = read(size)
        if len(chunk) < size or read(2) != b"\r\n":
            raise BadResponse("the answer ended inside a chunk")
        parts.append(chunk)
    _headers(read_line)  # trailers, up to the blank line
    return b"".join(parts)
