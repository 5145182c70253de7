"""HTTPS for the local API server: a CA made at start, and a listener that tells TLS from HTTP.

:class:`ServingTLS` is a CA generated in memory and a serving certificate it signs for
``localhost``, ``127.0.0.1`` and ``::1`` — as envtest and kind do; clients pin the CA (the
kubeconfig carries it as ``certificate-authority-data``) and verify the names.

:func:`serve` listens and looks at each connection's first bytes before TLS starts (a peek:
nothing is consumed). A TLS handshake (a record of type 22) goes on to OpenSSL; anything that
looks like an HTTP request gets what kube-apiserver's Go server answers on its TLS port —
``400 Bad Request`` and "Client sent an HTTP request to an HTTPS server." — and is closed: a
client that forgot ``https://`` learns it at once instead of waiting. A connection that sends
nothing is closed after the head timeout, and so is a handshake that does not finish by then
(Go: the TLS handshake shares the ``ReadHeaderTimeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from envtest.http.protocol import TLS_HANDSHAKE
from foundation.certs import KeyPair, certificate_authority, issue, server_context

log = logging.getLogger(__name__)

HTTP_ON_TLS_PORT = (b"HTTP/1.0 400 Bad Request\r\n\r\n"
                    b"Client sent an HTTP request to an HTTPS server.\n")
"""What Go's net/http writes to a plain HTTP request on a TLS port (kube-apiserver's too)."""


@dataclass(frozen=True)
class ServingTLS:
    """A CA and the serving certificate it signed, and the server context presenting it."""

    ca: KeyPair
    serving: KeyPair
    context: ssl.SSLContext

    @classmethod
    def generate(cls, ca_dir: str | os.PathLike[str] = "") -> ServingTLS:
        """A new serving certificate, signed by a new CA or, with ``ca_dir``, by the one kept
        there (``ca.crt``, ``ca.key``; made and kept there when absent): a server restarted
        with the same directory is trusted by clients that loaded the old kubeconfig."""
        ca = _kept_ca(Path(ca_dir)) if ca_dir else certificate_authority("envtest-ca")
        serving = issue(ca, "envtest-apiserver")
        return cls(ca, serving, server_context(serving.cert_pem, serving.key_pem))

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate clients trust (never its key)."""
        return self.ca.cert_pem


def _kept_ca(directory: Path) -> KeyPair:
    cert, key = directory / "ca.crt", directory / "ca.key"
    if cert.exists() and key.exists():
        return KeyPair(cert.read_bytes(), key.read_bytes())
    ca = certificate_authority("envtest-ca")
    directory.mkdir(parents=True, exist_ok=True)
    for path, pem, mode in ((key, ca.key_pem, 0o600), (cert, ca.cert_pem, 0o644)):
        partial = path.with_name(f".{path.name}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        partial.replace(path)
    return ca


class TLSServer:
    """Accepts connections on a listening socket and hands TLS ones to the loop's SSL transport.

    The little of :class:`asyncio.Server` the API server's listener uses: ``sockets``,
    ``close`` and ``wait_closed``. Everything runs on the loop's thread.
    """

    def __init__(self, sock: socket.socket, factory: Callable[[], asyncio.Protocol],
                 context: ssl.SSLContext, timeout: float) -> None:
        self._sock = sock
        self._factory = factory
        self._context = context
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._sniffing: dict[socket.socket, asyncio.TimerHandle] = {}
        self._handshakes: set[asyncio.Task[None]] = set()
        self.sockets = (sock,)
        self._loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(64):  # bounded per wake-up; the loop calls again while more wait
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors...: log, keep listening
                log.warning("accept failed on the TLS port: %s", exc)
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sniffing[conn] = self._loop.call_later(self._timeout, self._drop, conn)
            self._loop.add_reader(conn.fileno(), self._sniff, conn)

    def _drop(self, conn: socket.socket) -> None:
        """Nothing arrived within the head timeout (or the server closes)."""
        timer = self._sniffing.pop(conn, None)
        if timer is not None:
            timer.cancel()
            self._loop.remove_reader(conn.fileno())
            conn.close()

    def _sniff(self, conn: socket.socket) -> None:
        try:
            first = conn.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            first = b""
        if not first:
            self._drop(conn)
            return
        self._sniffing.pop(conn).cancel()
        self._loop.remove_reader(conn.fileno())
        if first[0] == TLS_HANDSHAKE:
            task = self._loop.create_task(self._handshake(conn))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)
            return
        _refuse_plain(conn)

    async def _handshake(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(
                self._factory, conn, ssl=self._context, ssl_handshake_timeout=self._timeout)
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            # A client that does not trust the CA, or gives up: its side says why.
            log.debug("TLS handshake failed: %s", exc)
            if conn.fileno() >= 0:
                conn.close()

    def close(self) -> None:
        if self._sock.fileno() < 0:
            return
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        for conn in list(self._sniffing):
            self._drop(conn)
        for task in self._handshakes:
            task.cancel()

    async def wait_closed(self) -> None:
        if self._handshakes:
            await asyncio.wait(list(self._handshakes))


def _refuse_plain(conn: socket.socket) -> None:
    """Answer a plain request on the TLS port as Go does, then close. What the client has
    sent so far is read first, so the close is a clean FIN that lets it read the answer."""
    try:
        for _ in range(16):
            if not conn.recv(65536):
                break
    except OSError:
        pass
    with contextlib.suppress(OSError):
        conn.send(HTTP_ON_TLS_PORT)
    conn.close()


async def serve(factory: Callable[[], asyncio.Protocol], host: str, port: int,
                context: ssl.SSLContext, timeout: float) -> TLSServer:
    """Listen on ``host:port`` for TLS (see the module's docstring); raises OSError."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return TLSServer(sock, factory, context, timeout)
