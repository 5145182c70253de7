"""Running the local API server: in-process (:class:`LocalAPIServer`) or as a process.

The server is one asyncio event loop; every request and every watch is handled on it, which is
what makes the storage lock-free. In-process, a thread owned by :class:`LocalAPIServer` runs the
loop; :meth:`LocalAPIServer.stop` closes the listener, ends open streams and joins the thread.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ambient_ctrl.clock import Clock, RealClock

from . import kubeconfig
from .apiserver import APIServer, error_response
from .cluster import Cluster, ServerOptions, Target
from .errors import too_large
from .gc import GarbageCollector
from .http import HTTPProtocol
from .writes import commit_create

log = logging.getLogger(__name__)
T = TypeVar("T")

BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def _bootstrap(cluster: Cluster) -> None:
    ns_type = cluster.kinds.lookup("", "v1", "namespaces")
    assert ns_type is not None
    for name in BOOTSTRAP_NAMESPACES:
        commit_create(cluster, Target(ns_type), {"metadata": {"name": name}})


class Simulator(Protocol):
    """A controller living inside the server's loop (a kubelet, KubeVirt): it subscribes to the
    store, schedules its work with the loop's timers and writes through the same commit path as
    requests do. ``start`` and ``stop`` run on the loop thread."""

    name: str

    def start(self, cluster: Cluster) -> None: ...

    def stop(self) -> None: ...


class _Listener:
    """The listening socket, the connections it accepted and the simulators running beside it."""

    def __init__(self, server: asyncio.Server, connections: set[HTTPProtocol],
                 simulators: Sequence[Simulator]) -> None:
        self.server = server
        self.connections = connections
        self.simulators = simulators

    async def close(self) -> None:
        """Stop simulators and listening; drop every connection (open watches included)."""
        for simulator in self.simulators:
            simulator.stop()
        self.server.close()
        for connection in list(self.connections):
            connection.abort()
        try:
            await asyncio.wait_for(self.server.wait_closed(), 5)
        except TimeoutError:
            log.warning("connections still open at shutdown")


async def _listen(cluster: Cluster, host: str, port: int,
                  simulators: Sequence[Simulator] = ()) -> _Listener:
    if cluster.options.garbage_collection:
        GarbageCollector(cluster)  # lives as long as the store it observes
    _bootstrap(cluster)
    app = APIServer(cluster)
    limit = cluster.options.max_body_bytes
    connections: set[HTTPProtocol] = set()

    def protocol() -> HTTPProtocol:
        return HTTPProtocol(app, max_body=limit, connections=connections,
                            too_large=lambda: error_response(too_large(limit)))

    server = await asyncio.get_running_loop().create_server(
        protocol, host, port, reuse_address=True, backlog=1024)
    bound = server.sockets[0].getsockname()
    cluster.server_address = f"{bound[0]}:{bound[1]}"
    for simulator in simulators:
        simulator.start(cluster)
    return _Listener(server, connections, simulators)


class LocalAPIServer:
    """A local Kubernetes API server on 127.0.0.1, run by a thread this object owns.

    Use as a context manager::

        with LocalAPIServer() as api:
            subprocess.run(["kubectl", "--kubeconfig", api.kubeconfig, "get", "ns"])
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 kubeconfig_path: str | Path | None = None,
                 options: ServerOptions | None = None, clock: Clock | None = None,
                 simulators: Sequence[Simulator] = ()) -> None:
        self._simulators = tuple(simulators)
        self._host = host
        self._port = port
        self._kubeconfig_path = Path(kubeconfig_path) if kubeconfig_path else None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self.cluster = Cluster(options=options or ServerOptions(), clock=clock or RealClock())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: _Listener | None = None
        self._thread: threading.Thread | None = None
        self.kubeconfig = ""

    @property
    def url(self) -> str:
        return f"http://{self.cluster.server_address}"

    def start(self) -> LocalAPIServer:
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(ready,),
                                        name="envtest-apiserver", daemon=False)
        self._thread.start()
        ready.result(timeout=30)
        if self._kubeconfig_path is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="envtest-")
            self._kubeconfig_path = Path(self._tmpdir.name) / "kubeconfig"
        self.kubeconfig = str(kubeconfig.write(self._kubeconfig_path, self.url))
        return self

    def _run(self, ready: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._listener = loop.run_until_complete(
                _listen(self.cluster, self._host, self._port, self._simulators))
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            if self._listener is not None:
                loop.run_until_complete(self._listener.close())
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
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve in this thread until SIGTERM or SIGINT (the ``ambient-ctrl apiserver`` command)."""
    cluster = Cluster(options=options or ServerOptions())

    async def main() -> None:
        listener = await _listen(cluster, host, port, simulators)
        url = f"http://{cluster.server_address}"
        kubeconfig.write(kubeconfig_path, url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if on_ready is not None:
            on_ready(url)
        await stop.wait()
        await listener.close()

    asyncio.run(main())
