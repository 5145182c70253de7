"""One HTTP/1.1 exchange with a server on this machine, on the server's asyncio loop.

What the Service proxy (:mod:`.proxy`) and the webhook client (:mod:`envtest.webhooks.client`)
share: open a connection (plain, or TLS with ``ssl=`` and the name to verify), write a request
already framed by the caller (``Connection: close``), and read the answer — the status line,
the headers, and a body framed by ``Content-Length``, chunked encoding or the end of the
stream. Nothing here blocks the loop; timeouts are the caller's (``asyncio.wait_for``).
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
    if ssl is not None:
        reader, writer = await asyncio.open_connection(
            *address, ssl=ssl, server_hostname=server_hostname or address[0])
    else:
        reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(data)
        await writer.drain()
        status, headers = await read_head(reader)
        lower = {name.lower(): value for name, value in headers}
        if head_only or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in lower.get("transfer-encoding", "").lower():
            body = await read_chunked(reader)
        elif "content-length" in lower:
            body = await reader.readexactly(int(lower["content-length"]))
        else:
            body = await reader.read()  # Connection: close — the body ends with the stream
    finally:
        writer.close()
    return RawResponse(status, headers, body)


async def read_head(reader: asyncio.StreamReader) -> tuple[int, list[tuple[str, str]]]:
    """The status line and headers of an answer."""
    status_line = (await reader.readline()).decode("latin-1")
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/") or not rest[:3].isdigit():
        raise ValueError(f"malformed HTTP response {status_line.strip()[:100]!r}")
    headers = []
    while (line := (await reader.readline()).decode("latin-1").strip()):
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed MIME header line: {line[:100]}")
        headers.append((name.strip(), value.strip()))
    return int(rest[:3]), headers


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked body, trailers skipped."""
    chunks = []
    while size := int((await reader.readline()).split(b";")[0].strip() or b"0", 16):
        chunks.append(await reader.readexactly(size))
        await reader.readline()
    while (await reader.readline()).strip():  # trailers
        pass
    return b"".join(chunks)


def go_error(exc: BaseException, dialed: str) -> str:
    """What Go's HTTP client says of a failed exchange with ``dialed`` (``ip:port``)."""
    if isinstance(exc, ConnectionRefusedError):
        return f"dial tcp {dialed}: connect: connection refused"
    if isinstance(exc, ConnectionResetError):
        return f"read tcp {dialed}: read: connection reset by peer"
    if isinstance(exc, EOFError):  # asyncio.IncompleteReadError among them
        return "EOF"
    return str(exc) or type(exc).__name__
