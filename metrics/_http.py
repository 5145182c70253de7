"""HTTP plumbing of the observability server: listeners, the request handler, and the
threads that serve connections.

Internal to :mod:`metrics.server`, which decides what is served where.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import TCPServer
from typing import Any, Protocol

from foundation.threads import join_all

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Response:
    """An answer, ready to send."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class Router(Protocol):
    """Answers a request (its method, the request line's target: path and query, and the
    request headers)."""

    def answer(self, method: str, target: str, headers: Message) -> Response: ...


class _Handler(BaseHTTPRequestHandler):
    server: Listener

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.request_timeout)

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, *, with_body: bool) -> None:
        response = self.server.routes.answer(self.command, self.path, self.headers)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if with_body:
            self.wfile.write(response.body)

    def version_string(self) -> str:
        return "ambient-ctrl"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("observability request", extra={"request": format % args})


class Listener(HTTPServer):
    """A listening socket; connections are accepted by the owner's acceptor thread and served
    on threads the owner tracks (``dispatch``). With ``tls`` (the current context, asked once
    per connection) connections are HTTPS; the handshake runs on the connection's thread,
    bounded by ``request_timeout``, so a client that never finishes it holds only its own
    thread."""

    def __init__(self, address: tuple[str, int], *, routes: Router, request_timeout: float,
                 dispatch: Workers, tls: Callable[[], ssl.SSLContext] | None = None) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.routes = routes
        self.request_timeout = request_timeout
        self.tls = tls
        self._dispatch = dispatch
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the host's FQDN (a DNS lookup) for a name that
        # nothing here uses.
        TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.bound: tuple[str, int] = (str(host), int(port))
        self.server_name, self.server_port = self.bound

    def accept_one(self) -> None:
        """Accept a waiting connection and hand it to a worker thread."""
        try:
            request, client_address = self.get_request()
        except OSError:
            return  # the client gave up between select and accept
        self._dispatch.start(self, request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-answer are routine (a scraper timing out); no tracebacks.
        log.debug("observability connection failed", exc_info=True,
                  extra={"client": str(client_address)})


class Workers:
    """The connection threads in flight, and their sockets (to cut them at a deadline)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[threading.Thread, socket.socket] = {}

    def start(self, listener: Listener, request: socket.socket, client: Any) -> None:
        thread = threading.Thread(target=self._serve, args=(listener, request, client),
                                  name="observability-request")
        with self._lock:
            self._active[thread] = request
        thread.start()

    def _serve(self, listener: Listener, request: socket.socket, client: Any) -> None:
        try:
            if listener.tls is not None:
                request.settimeout(listener.request_timeout)
                request = listener.tls().wrap_socket(request, server_side=True,
                                                     do_handshake_on_connect=False)
                with self._lock:  # the wrapped socket is the one to cut at a deadline
                    self._active[threading.current_thread()] = request
                request.do_handshake()
            listener.finish_request(request, client)
        except Exception:
            listener.handle_error(request, client)
        finally:
            listener.shutdown_request(request)
            with self._lock:
                self._active.pop(threading.current_thread(), None)

    def join(self, timeout: float) -> list[threading.Thread]:
        """Join the threads for up to ``timeout`` seconds in all (real time: a
        :class:`~foundation.threads.Deadline`); return those still alive. The server logs
        what is late once it has cut the connections, so this does not."""
        return join_all(self._threads(), timeout, owner="observability-server", warn=False)

    def abort(self) -> None:
        """Cut every connection still open; its thread then ends at its next read or write."""
        with self._lock:
            sockets = list(self._active.values())
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _threads(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._active)
