"""HTTP plumbing of the manager's servers: listeners, the request handler, the thread that
accepts connections and the threads that serve them. In ``foundation`` because two layers
serve HTTP on it and neither owns it: :mod:`metrics.server` (``/metrics`` and the probes) and
the admission and conversion webhook server (``ambient_ctrl.webhook.server``), which decide
what is served where.
GET and HEAD are served everywhere; POST only on a listener given a ``max_body`` (a request
without a ``Content-Length`` is answered 411, a longer one 413 without reading it).

A ``keep_alive`` listener speaks HTTP/1.1 and serves one connection's requests one after the
other on its thread (the API server reuses its connections to a webhook: no handshake per
call); a connection idle for ``request_timeout`` is closed, and a stop closes idle connections
at once and lets busy ones finish their request, as Go's ``Server.Shutdown`` does.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
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

_ACCEPT_RECOVERY = 0.5
"""Seconds the accepting thread pauses after a failure it survived (no hot loop)."""


@dataclass(frozen=True, slots=True)
class Response:
    """An answer, ready to send."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class Router(Protocol):
    """Answers a request (its method, the request line's target: path and query, the
    request headers and its body, empty but for a POST)."""

    def answer(self, method: str, target: str, headers: Message, body: bytes) -> Response: ...


class _Handler(BaseHTTPRequestHandler):
    server: Listener

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.request_timeout)

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def do_POST(self) -> None:
        limit = self.server.max_body
        if not limit:
            self.send_error(501, f"Unsupported method ({self.command!r})")
            return
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            self.send_error(411, "a request body needs a Content-Length")
            return
        if int(length) > limit:
            self.close_connection = True  # the body stays unread: the connection is spent
            self.send_error(413, f"request body of {length} bytes exceeds the limit of "
                                 f"{limit} bytes")
            return
        self._answer(with_body=True, body=self.rfile.read(int(length)))

    def _answer(self, *, with_body: bool, body: bytes = b"") -> None:
        response = self.server.routes.answer(self.command, self.path, self.headers, body)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if with_body:
            self.wfile.write(response.body)

    def version_string(self) -> str:
        return "ambient-ctrl"

    def handle_one_request(self) -> None:
        if self.protocol_version == "HTTP/1.1":  # keep-alive: wait for the next request idle
            workers = self.server.dispatch
            if not workers.idle(True):
                self.close_connection = True
                return
            try:
                waiting = self.rfile.peek(1)  # type: ignore[attr-defined]
            except OSError:  # idle past the timeout, or cut at a stop
                waiting = b""
            if not waiting or not workers.idle(False):
                self.close_connection = True
                return
        super().handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("observability request", extra={"request": format % args})


class _KeepAliveHandler(_Handler):
    protocol_version = "HTTP/1.1"
    # An answer is two writes (head, body): without TCP_NODELAY the second waits for the
    # client's delayed ACK (~40 ms) on a connection that stays open.
    disable_nagle_algorithm = True


class Listener(HTTPServer):
    """A listening socket; connections are accepted by the owner's acceptor thread and served
    on threads the owner tracks (``dispatch``). With ``tls`` (the current context, asked once
    per connection) connections are HTTPS; the handshake runs on the connection's thread,
    bounded by ``request_timeout``, so a client that never finishes it holds only its own
    thread."""

    def __init__(self, address: tuple[str, int], *, routes: Router, request_timeout: float,
                 dispatch: Workers, tls: Callable[[], ssl.SSLContext] | None = None,
                 max_body: int = 0, keep_alive: bool = False) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.routes = routes
        self.request_timeout = request_timeout
        self.max_body = max_body
        self.tls = tls
        self.dispatch = dispatch
        super().__init__(address, _KeepAliveHandler if keep_alive else _Handler)

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
        self.dispatch.start(self, request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-answer are routine (a scraper timing out); no tracebacks.
        log.debug("observability connection failed", exc_info=True,
                  extra={"client": str(client_address)})


class Workers:
    """The connection threads in flight, and their sockets (to cut them at a deadline)."""

    def __init__(self, name: str = "observability-server") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._active: dict[threading.Thread, socket.socket] = {}
        self._idle: set[threading.Thread] = set()
        self._stopping = False

    def idle(self, waiting: bool) -> bool:
        """A keep-alive connection's thread waits for its next request (``True``) or got one
        (``False``); False tells it to close instead, as the server stops."""
        thread = threading.current_thread()
        with self._lock:
            if waiting:
                self._idle.add(thread)
            else:
                self._idle.discard(thread)
            return not self._stopping

    def close_idle(self) -> None:
        """Refuse further requests on kept-alive connections and cut those idle now."""
        with self._lock:
            self._stopping = True
            sockets = [self._active[t] for t in self._idle if t in self._active]
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def start(self, listener: Listener, request: socket.socket, client: Any) -> None:
        thread = threading.Thread(target=self._serve, args=(listener, request, client),
                                  name=f"{self._name}-request")
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
                self._idle.discard(threading.current_thread())

    def join(self, timeout: float) -> list[threading.Thread]:
        """Join the threads for up to ``timeout`` seconds in all (real time: a
        :class:`~foundation.threads.Deadline`); return those still alive. The server logs
        what is late once it has cut the connections, so this does not."""
        return join_all(self._threads(), timeout, owner=self._name, warn=False)

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


class Acceptor:
    """The one thread that accepts the connections of a server's listeners, and the
    :class:`Workers` serving them: started once, stopped once (not restartable)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.workers = Workers(name)
        """Pass as the ``dispatch`` of every listener this acceptor serves."""
        self._listeners: list[Listener] = []
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake: tuple[socket.socket, socket.socket] | None = None

    def start(self, listeners: list[Listener]) -> None:
        """Accept on ``listeners`` (bound already) until :meth:`stop`."""
        self._listeners = listeners
        self._wake = socket.socketpair()
        self._thread = threading.Thread(target=self._accept, name=self.name)
        self._thread.start()

    def alive(self) -> bool:
        """Whether the accepting thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _accept(self) -> None:
        assert self._wake is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake[0], selectors.EVENT_READ)
            for listener in self._listeners:
                selector.register(listener.socket, selectors.EVENT_READ, listener)
            while not self._stopping.is_set():
                try:
                    for key, _ in selector.select():
                        if isinstance(key.data, Listener) and not self._stopping.is_set():
                            key.data.accept_one()
                except Exception:  # the server's own thread: never die of one connection
                    log.exception("server failed to accept; carrying on",
                                  extra={"server": self.name})
                    self._stopping.wait(_ACCEPT_RECOVERY)

    def stop(self, budget: float, close: Callable[[], None]) -> None:
        """Stop accepting, ``close`` the listeners, let requests in flight finish for up to
        ``budget`` seconds, then cut what remains and join every thread (waiting at most one
        more second); threads still alive then are logged. Idempotent."""
        thread, self._thread = self._thread, None
        if thread is None:
            close()
            return
        self._stopping.set()
        assert self._wake is not None
        self._wake[1].send(b"\0")
        thread.join(budget)
        close()
        self.workers.close_idle()
        late = self.workers.join(budget)
        if late:
            self.workers.abort()
            late = self.workers.join(1.0)
        for sock in self._wake:
            sock.close()
        if thread.is_alive() or late:
            log.warning("server threads outlived the shutdown deadline",
                        extra={"server": self.name,
                               "threads": [t.name for t in (thread, *late) if t.is_alive()]})
