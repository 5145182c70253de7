"""Running the local API server: in-process (:class:`LocalAPIServer`) or as a process.

The server is one asyncio event loop; every request and every watch is handled on it, which is
what makes the storage lock-free. In-process, a thread owned by :class:`LocalAPIServer` runs the
loop; :meth:`LocalAPIServer.stop` closes the listener, ends open streams and joins the thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from envtest import kubeconfig
from envtest.admin import AdminAPI
from envtest.cluster import Cluster, ServerOptions, Target
from envtest.commit import commit_create
from envtest.errors import error_response, too_large
from envtest.faults import FaultControl, Faults
from envtest.gc import GarbageCollector
from envtest.http import tls
from envtest.http.protocol import Backlog, Handler, HTTPProtocol
from envtest.http.router import APIServer
from foundation import gctuning
from foundation.clock import Clock, RealClock

log = logging.getLogger(__name__)
T = TypeVar("T")

BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
ADMIN_HOST = "127.0.0.1"
"""The admin (fault-injection) endpoint listens here whatever ``host`` the API uses: it can stop,
slow and fail the API without any authentication, so it must never be reachable from outside
the machine, even when the API itself is exposed with ``--host 0.0.0.0``."""


class ListenError(OSError):
    """The server could not listen on its address (the port is taken, the address is not
    local...); the message says which address and why, in one line."""


def _bootstrap(cluster: Cluster) -> None:
    ns_type = cluster.kinds.lookup("", "v1", "namespaces")
    assert ns_type is not None
    for name in BOOTSTRAP_NAMESPACES:
        commit_create(cluster, Target(ns_type), {"metadata": {"name": name}})


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where installed (it moves watch fan-out and small replies faster, see
    bench/), else asyncio's: uvloop comes with the ``envtest`` extra
    (``pip install 'ambient-ctrl[envtest]'``), which the operator never needs."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def event_loop_name() -> str:
    """Which loop :func:`new_event_loop` makes, in words for a person starting the server."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "on asyncio's event loop; pip install 'ambient-ctrl[envtest]' for uvloop"
    return "on uvloop"


class Simulator(Protocol):
    """A controller living inside the server's loop (a kubelet, KubeVirt): it subscribes to the
    store, schedules its work with the loop's timers and writes through the same commit path as
    requests do. ``start`` and ``stop`` run on the loop thread."""

    name: str

    def start(self, cluster: Cluster) -> None: ...

    def stop(self) -> None: ...


class _Listener:
    """A listening socket and the connections it accepted; can stop listening for a while."""

    def __init__(self, handler: Handler, *, host: str, port: int, max_body: int,
                 header_timeout: float, max_backlog: int = 0,
                 tls_context: ssl.SSLContext | None = None) -> None:
        self._handler = handler
        self._backlog = Backlog(max_backlog)
        self._host = host
        self._port = port
        self._max_body = max_body
        self._header_timeout = header_timeout
        self._tls = tls_context
        self._server: asyncio.Server | tls.TLSServer | None = None
        self.connections: set[HTTPProtocol] = set()

    def _protocol(self) -> HTTPProtocol:
        limit = self._max_body
        return HTTPProtocol(self._handler, max_body=limit, connections=self.connections,
                            too_large=lambda: error_response(too_large(limit)),
                            backlog=self._backlog, header_timeout=self._header_timeout)

    async def open(self) -> str:
        """Listen; returns the bound ``host:port`` (the port is kept for reopening)."""
        try:
            if self._tls is not None:
                self._server = await tls.serve(self._protocol, self._host, self._port,
                                               self._tls, self._header_timeout or 60.0)
            else:
                self._server = await asyncio.get_running_loop().create_server(
                    self._protocol, self._host, self._port, reuse_address=True, backlog=1024)
        except OSError as exc:
            reason = (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
            error = ListenError(f"cannot listen on {self._host}:{self._port}: {reason}")
            error.errno = exc.errno
            raise error from exc
        host, self._port = self._server.sockets[0].getsockname()[:2]
        return f"{host}:{self._port}"

    async def close(self) -> None:
        """Stop listening and drop every connection (open watches included)."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for connection in list(self.connections):
            connection.abort()
        # A connection accepted in this turn of the loop may make itself known (connection_made)
        # only after this step: it would outlive the close, and a client's keep-alive
        # connection would go on being served as if nothing happened (a test polling for
        # refusal under load never saw one). One turn later every such callback has run.
        await asyncio.sleep(0)
        for connection in list(self.connections):
            connection.abort()
        try:
            await asyncio.wait_for(server.wait_closed(), 5)
        except TimeoutError:
            log.warning("connections still open at shutdown")

    async def bounce(self, downtime: float) -> None:
        """Close, stay away ``downtime`` seconds (clients see connection refused), reopen."""
        await self.close()
        await asyncio.sleep(downtime)
        await self.open()


class _Running:
    """Everything a started server owns on its loop: listeners, collector, simulators."""

    def __init__(self, cluster: Cluster, *, host: str, port: int, admin_port: int | None,
                 simulators: Sequence[Simulator], seed: int) -> None:
        self.cluster = cluster
        self.simulators = tuple(simulators)
        self.faults = Faults(cluster, seed=seed)
        limit = cluster.options.max_body_bytes
        self.handler = APIServer(cluster, self.faults)
        options = cluster.options
        self.tls = tls.ServingTLS.generate(options.tls_ca_dir) if options.tls else None
        total = options.max_watch_backlog_total  # never below what one watcher may hold
        timeout = options.request_header_timeout
        self.api = _Listener(self.handler, host=host, port=port, max_body=limit,
                             header_timeout=timeout,
                             max_backlog=total and max(total, options.max_watch_backlog),
                             tls_context=self.tls.context if self.tls else None)
        self.faults.reopen = self.api.bounce
        # The admin endpoint stays plain HTTP: loopback only, for the test harness.
        self.admin = None if admin_port is None else _Listener(
            AdminAPI(self.faults, cluster), host=ADMIN_HOST, port=admin_port, max_body=limit,
            header_timeout=timeout)
        self.admin_address = ""

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.cluster.server_address}"

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> Path:
        return kubeconfig.write(path, self.url, token=self.cluster.admin_token,
                                ca_pem=self.tls.ca_pem if self.tls else b"")

    async def start(self) -> None:
        if self.cluster.options.garbage_collection:
            GarbageCollector(self.cluster)  # lives as long as the store it observes
        _bootstrap(self.cluster)
        self.cluster.server_address = await self.api.open()
        if self.admin is not None:
            self.admin_address = await self.admin.open()
        for simulator in self.simulators:
            simulator.start(self.cluster)

    async def stop(self) -> None:
        for simulator in self.simulators:
            simulator.stop()
        self.faults.clear()
        self.handler.close()
        await self.api.close()
        if self.admin is not None:
            await self.admin.close()


class LocalAPIServer:
    """A local Kubernetes API server on 127.0.0.1, run by a thread this object owns.

    Use as a context manager::

        with LocalAPIServer() as api:
            subprocess.run(["kubectl", "--kubeconfig", api.kubeconfig, "get", "ns"])
            api.faults.fail(code=503, count=2, verbs=["create"], resources=["pods"])

    ``tls=True`` (or ``ServerOptions(tls=True)``) serves HTTPS with a CA made at start: the
    kubeconfig carries it, :attr:`ca_pem` gives it to other clients.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 kubeconfig_path: str | Path | None = None,
                 options: ServerOptions | None = None, clock: Clock | None = None,
                 simulators: Sequence[Simulator] = (), admin_port: int | None = None,
                 seed: int = 0, tls: bool | None = None) -> None:
        options = options or ServerOptions()
        if tls is not None:
            options = replace(options, tls=tls)
        self._simulators = tuple(simulators)
        self._host = host
        self._port = port
        self._admin_port = admin_port
        self._seed = seed
        self._kubeconfig_path = Path(kubeconfig_path) if kubeconfig_path else None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self.cluster = Cluster(options=options, clock=clock or RealClock())
        self.faults = FaultControl(lambda fn: self.call(lambda _: fn()))
        """Thread-safe fault injection (see :mod:`envtest.faults`)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: _Running | None = None
        self._thread: threading.Thread | None = None
        self.kubeconfig = ""

    @property
    def url(self) -> str:
        scheme = "https" if self.cluster.options.tls else "http"
        return f"{scheme}://{self.cluster.server_address}"

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate (PEM) that signed the serving certificate; b"" without TLS."""
        assert self._running is not None, "the server has not started"
        return self._running.tls.ca_pem if self._running.tls else b""

    @property
    def admin_url(self) -> str:
        """The fault-injection endpoint (only with ``admin_port``; always on loopback)."""
        assert self._running is not None and self._running.admin_address
        return f"http://{self._running.admin_address}"

    def start(self) -> LocalAPIServer:
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,),
                                        name="envtest-apiserver", daemon=False)
        self._thread.start()
        ready.result(timeout=30)
        if self._kubeconfig_path is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="envtest-")
            self._kubeconfig_path = Path(self._tmpdir.name) / "kubeconfig"
        assert self._running is not None
        self.kubeconfig = str(self._running.write_kubeconfig(self._kubeconfig_path))
        return self

    def _run(self, ready: Future[None]) -> None:
        loop = new_event_loop()
        self._loop = loop
        running = _Running(self.cluster, host=self._host, port=self._port,
                           admin_port=self._admin_port, simulators=self._simulators,
                           seed=self._seed)
        try:
            loop.run_until_complete(running.start())
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        self._running = running
        self.faults.bind(running.faults)
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(running.stop())
            loop.close()

    def call(self, fn: Callable[[Cluster], T], timeout: float = 10.0) -> T:
        """Run ``fn(cluster)`` on the server's loop thread and return its result."""
        assert self._loop is not None
        result: Future[T] = Future()

        def run() -> None:
            try:
                result.set_result(fn(self.cluster))
            except BaseException as exc:  # handed to the caller
                result.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return result.result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> LocalAPIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve(*, host: str = "127.0.0.1", port: int = 0, kubeconfig_path: str | Path,
          options: ServerOptions | None = None, simulators: Sequence[Simulator] = (),
          admin_port: int | None = None, seed: int = 0,
          on_ready: Callable[[str, str], None] | None = None) -> None:
    """Serve in this thread until SIGTERM or SIGINT (the ``ambient-ctrl apiserver`` command).

    ``on_ready(url, admin_url)`` is called once listening (admin_url is "" without admin_port).
    The admin endpoint listens on :data:`ADMIN_HOST` whatever ``host`` is. Raises
    :class:`ListenError` when an address cannot be bound.
    """
    cluster = Cluster(options=options or ServerOptions())

    async def main() -> None:
        running = _Running(cluster, host=host, port=port, admin_port=admin_port,
                           simulators=simulators, seed=seed)
        await running.start()
        gctuning.tune()  # this process is the server's alone
        url = running.url
        running.write_kubeconfig(kubeconfig_path)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if on_ready is not None:
            on_ready(url, f"http://{running.admin_address}" if running.admin_address else "")
        await stop.wait()
        await running.stop()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(main())
