"""A recorded watch stream, served again at memory speed from a process of its own.

The ingest benchmark compares our informer with the raw parse limit on the same stream. Served
by the local API server, the stream arrives no faster than the server replays its history
(~25-30k events/s of 6.3 KB pods here), so the "limit" reader spent most of its time waiting
and measured the server, not the parse. Recording the stream once and replaying its bytes
from a trivial server in another process (so it takes no interpreter time from the reader)
makes both readers CPU-bound on identical input: chunked HTTP/1.1 as the API server sends it,
one chunk per 64 KiB, and the connection then held open like a watch that has no news.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import socket
from collections.abc import Iterator

import urllib3

CHUNK = 1 << 16


def record(url: str, path: str, count: int) -> bytes:
    """The first ``count`` lines (watch events) of GET ``url + path``, newline-terminated."""
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=300))
    response = http.request("GET", url + path, preload_content=False)
    data, lines = bytearray(), 0
    try:
        for chunk in response.stream(CHUNK):
            data += chunk
            lines += chunk.count(b"\n")
            if lines >= count:
                break
    finally:
        with contextlib.suppress(RuntimeError):
            response.shutdown()
        response.close()
        http.clear()
    cut = -1
    for _ in range(count):
        cut = data.index(b"\n", cut + 1)
    return bytes(data[:cut + 1])


def _serve(listener: socket.socket, body: bytes) -> None:
    while True:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                more = conn.recv(4096)
                if not more:
                    break
                request += more
            if request.startswith(b"STOP"):
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with contextlib.suppress(OSError):  # the reader hangs up once it has enough
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
                for start in range(0, len(body), CHUNK):
                    piece = body[start:start + CHUNK]
                    conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                while conn.recv(4096):  # hold the stream open until the reader closes it
                    pass


@contextlib.contextmanager
def replaying(body: bytes) -> Iterator[str]:
    """A loopback server answering every request with ``body`` as a chunked stream, in its
    own process; yields its URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    process = mp.get_context("fork").Process(target=_serve, args=(listener, body),
                                             name="bench-replay")
    process.start()
    listener.close()  # the child holds it
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 5) as s:
            s.sendall(b"STOP\r\n\r\n")
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(5)
