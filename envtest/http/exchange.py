"""HTTP/1.1 exchanges with servers on this machine, on the server's asyncio loop.

What the Service proxy (:mod:`.proxy`) and the webhook client (:mod:`envtest.webhooks.client`)
share: open a connection (plain, or TLS with ``ssl=`` and the name to verify), write a request
already framed by the caller, and read the answer — the status line, the headers, and a body
framed by ``Content-Length``, chunked encoding or the end of the stream.

* :func:`exchange` — one request on a connection of its own (the caller sends
  ``Connection: close``): the proxy's way;
* :class:`ConnectionPool` — requests on kept-alive connections, as kube-apiserver's webhook
  client reuses them (no TLS handshake per review): an idle connection is reused while the
  server keeps it open (one the server closed meanwhile is retried once on a new connection),
  at most ``per_key`` idle ones are kept per destination, each for ``idle_timeout`` seconds,
  and :meth:`ConnectionPool.close` closes them all (the server stopping).

Nothing here blocks the loop; timeouts are the caller's (``asyncio.wait_for``): a request cut
short closes its connection.
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RawResponse:
    """An answer as it came: status, headers in order (names as sent), body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str:
        """The last value of a header (case-insensitive), or ``""``."""
        wanted = name.lower()
        return next((v for n, v in reversed(self.headers) if n.lower() == wanted), "")


async def exchange(address: tuple[str, int], data: bytes, *, head_only: bool = False,
                   ssl: _ssl.SSLContext | None = None,
                   server_hostname: str | None = None) -> RawResponse:
    """Send ``data`` (a whole request) to ``address`` and read the answer; with ``ssl``,
    over TLS verifying ``server_hostname`` (default: the address's host)."""
    reader, writer = await _connect(address, ssl, server_hostname)
    try:
        writer.write(data)
        await writer.drain()
        answer, _ = await read_answer(reader, head_only=head_only)
    finally:
        writer.close()
    return answer


async def _connect(address: tuple[str, int], ssl: _ssl.SSLContext | None,
                   server_hostname: str | None
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if ssl is None:
        return await asyncio.open_connection(*address)
    return await asyncio.open_connection(*address, ssl=ssl,
                                         server_hostname=server_hostname or address[0])


async def read_answer(reader: asyncio.StreamReader, *,
                      head_only: bool = False) -> tuple[RawResponse, bool]:
    """An answer, and whether its connection may carry another request (HTTP/1.1 without
    ``Connection: close``, HTTP/1.0 with ``keep-alive``, a body not ended by the stream)."""
    version, status, headers = await read_head(reader)
    lower = {name.lower(): value for name, value in headers}
    connection = lower.get("connection", "").lower()
    reusable = "close" not in connection and (version != "HTTP/1.0" or "keep-alive"
                                                in connection)
    if head_only or status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "chunked" in lower.get("transfer-encoding", "").lower():
        body = await read_chunked(reader)
    elif "content-length" in lower:
        body = await reader.readexactly(int(lower["content-length"]))
    else:
        body, reusable = await reader.read(), False  # the body ends with the stream
    return RawResponse(status, headers, body), reusable


async def read_head(reader: asyncio.StreamReader) -> tuple[str, int, list[tuple[str, str]]]:
    """The protocol version, status and headers of an answer."""
    raw = await reader.readline()
    if not raw:
        raise EOFError("the server closed the connection without answering")
    status_line = raw.decode("latin-1")
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/") or not rest[:3].isdigit():
        raise ValueError(f"malformed HTTP response {status_line.strip()[:100]!r}")
    headers = []
    while (line := (await reader.readline()).decode("latin-1").strip()):
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed MIME header line: {line[:100]}")
        headers.append((name.strip(), value.strip()))
    return version, int(rest[:3]), headers


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked body, trailers skipped."""
    chunks = []
    while size := int((await reader.readline()).split(b";")[0].strip() or b"0", 16):
        chunks.append(await reader.readexactly(size))
        await reader.readline()
    while (await reader.readline()).strip():  # trailers
        pass
    return b"".join(chunks)


_Key = tuple[tuple[str, int], "_ssl.SSLContext | None", "str | None"]


@dataclass(slots=True)
class _Idle:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    since: float

    def usable(self, now: float, idle_timeout: float) -> bool:
        return (now - self.since < idle_timeout and not self.reader.at_eof()
                and not self.writer.is_closing())


class ConnectionPool:
    """Kept-alive connections by destination (address, TLS context, TLS name); loop only."""

    def __init__(self, *, idle_timeout: float = 90.0, per_key: int = 4) -> None:
        self.idle_timeout = idle_timeout
        """Seconds an idle connection is kept (Go's ``IdleConnTimeout``: 90 s)."""
        self.per_key = per_key
        self.opened = 0
        """Connections opened so far (what reuse saves is visible here)."""
        self._idle: dict[_Key, list[_Idle]] = {}
        self._closed = False

    async def exchange(self, address: tuple[str, int], data: bytes, *,
                       ssl: _ssl.SSLContext | None = None,
                       server_hostname: str | None = None) -> RawResponse:
        """Send ``data`` (a whole request, kept alive) and read the answer."""
        key: _Key = (address, ssl, server_hostname)
        idle = self._checkout(key)
        if idle is not None:
            try:
                return await self._roundtrip(key, idle.reader, idle.writer, data)
            except (EOFError, ConnectionResetError, BrokenPipeError):
                pass  # the server closed it while it was idle: once more, on a new one
        self.opened += 1
        reader, writer = await _connect(address, ssl, server_hostname)
        return await self._roundtrip(key, reader, writer, data)

    async def _roundtrip(self, key: _Key, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter, data: bytes) -> RawResponse:
        try:
            writer.write(data)
            await writer.drain()
            answer, reusable = await read_answer(reader)
        except BaseException:
            writer.close()
            raise
        if reusable and not self._closed and len(self._idle.get(key, ())) < self.per_key:
            loop = asyncio.get_running_loop()
            self._idle.setdefault(key, []).append(_Idle(reader, writer, loop.time()))
        else:
            writer.close()
        return answer

    def _checkout(self, key: _Key) -> _Idle | None:
        idle = self._idle.get(key)
        now = asyncio.get_running_loop().time()
        while idle:
            candidate = idle.pop()
            if candidate.usable(now, self.idle_timeout):
                return candidate
            candidate.writer.close()
        return None

    def close(self) -> None:
        """Close every idle connection and keep none from now on (the server is stopping)."""
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.writer.close()
        self._idle.clear()


def go_error(exc: BaseException, dialed: str) -> str:
    """What Go's HTTP client says of a failed exchange with ``dialed`` (``ip:port``)."""
    if isinstance(exc, ConnectionRefusedError):
        return f"dial tcp {dialed}: connect: connection refused"
    if isinstance(exc, ConnectionResetError):
        return f"read tcp {dialed}: read: connection reset by peer"
    if isinstance(exc, EOFError):  # asyncio.IncompleteReadError among them
        return "EOF"
    return str(exc) or type(exc).__name__
