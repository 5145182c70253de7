"""The manager: owns every long-lived part of an operator and runs them in order.

``run`` starts the observability server (``/metrics``, ``/healthz``, ``/readyz``), the shared
informers, waits for their caches to sync (``/readyz`` turns ready then), then — once elected
leader if leader election is on — the controllers and other leader-only runnables. It returns
when asked to stop (``stop()``, or SIGTERM/SIGINT with ``install_signal_handlers``) or when
leadership is lost, after an orderly shutdown: no new work is taken, reconciles in flight are
drained up to the graceful-shutdown timeout, the lease is released, informers and servers stop,
every thread is joined. Exit code 0 for a clean stop, 1 when leadership was lost or the caches
never synced.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from typing import Protocol

from kubernetes import client as k8s_client

from informers.clock import Clock, RealClock
from informers.factory import InformerFactory
from informers.resource import LEASES
from informers.rest import (
    USER_AGENT,
    ResourceClient,
    Transport,
    TransportOptions,
    load_configuration,
)
from metrics.recorder import Recorder
from metrics.registry import new_registry
from metrics.server import ObservabilityServer, ServerOptions

from .builder import Builder
from .client import Client
from .leaderelection import LeaderElectionOptions, LeaderElector, default_identity

log = logging.getLogger(__name__)


class Runnable(Protocol):
    """Anything the manager starts and stops: controllers, or an operator's own loops."""

    def start(self) -> None: ...

    def stop(self, timeout: float) -> object: ...


@dataclass(frozen=True, slots=True)
class ManagerOptions:
    """What the operator's entry point decides (from flags); everything has a default."""

    leader_election: bool = False
    leader_election_id: str = "ambient-ctrl-leader"
    """Name of the Lease."""
    leader_election_namespace: str = "default"
    identity: str = ""
    """Holder identity; default ``hostname_uuid``."""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    cache_sync_timeout: float = 120.0
    graceful_shutdown_timeout: float = 30.0
    metrics_address: str = "127.0.0.1:8080"
    """``/metrics`` (``"0"`` = off). In a cluster the entry point passes ``:8080``."""
    probe_address: str = "127.0.0.1:8081"
    """``/healthz`` and ``/readyz`` (``"0"`` = off). In a cluster: ``:8081``."""
    cache_namespace: str | None = None
    """Restrict the informers' caches of namespaced kinds to one namespace."""
    field_manager: str = "ambient-ctrl"
    max_concurrent_requests: int = 16
    """Size of the HTTP connection pool shared by informers and workers."""
    user_agent: str = USER_AGENT
    """The User-Agent of every request (``product/version``, as in API server audit logs)."""


class Manager:
    """Owns the transport, informers, client, metrics, controllers and their threads."""

    def __init__(self, configuration: k8s_client.Configuration | None = None, *,
                 kubeconfig: str | None = None, options: ManagerOptions = ManagerOptions(),
                 clock: Clock | None = None, recorder: Recorder | None = None) -> None:
        self.options = options
        self.clock = clock or RealClock()
        self.recorder = recorder or Recorder(new_registry(), monotonic=self.clock.monotonic)
        config = configuration or load_configuration(kubeconfig)
        self.transport = Transport(config, options=TransportOptions(
            pool_size=options.max_concurrent_requests, user_agent=options.user_agent),
            observer=self.recorder.rest)
        self.informers = InformerFactory(self.transport, clock=self.clock,
                                         observer=self.recorder.informer)
        self.client = Client(self.transport, self.informers, field_manager=options.field_manager,
                             clock=self.clock, sync_timeout=options.cache_sync_timeout,
                             cache_namespace=options.cache_namespace)
        self.server = ObservabilityServer(self.recorder.registry, options=ServerOptions(
            metrics_address=options.metrics_address, probe_address=options.probe_address))
        self.server.readyz.add("informers-synced", self._check_synced)
        self._runnables: list[tuple[Runnable, bool]] = []
        self._started: list[Runnable] = []
        self._stop = threading.Event()
        self._elector_stop = threading.Event()
        """Set only after the runnables have stopped: the lease is released last."""
        self._synced = threading.Event()
        self._lock = threading.Lock()
        self._elector: LeaderElector | None = None
        self._lost = False

    # composition -------------------------------------------------------------------------------
    def builder(self, name: str | None = None) -> Builder:
        return Builder(self, name)

    def add(self, runnable: Runnable, *, needs_leader: bool = True) -> None:
        self._runnables.append((runnable, needs_leader))

    def _check_synced(self) -> None:
        if not self._synced.is_set():
            raise RuntimeError("informer caches have not synced")

    # running -----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`run` to shut down (thread-safe, idempotent)."""
        self._stop.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the manager (call from the main thread)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def run(self) -> int:
        """Run until stopped or leadership is lost; returns the process exit code."""
        self.server.start()
        elector_thread: threading.Thread | None = None
        try:
            self.informers.start()
            if not self.informers.wait_for_sync(self.options.cache_sync_timeout):
                log.error("informer caches did not sync in time")
                return 1
            self._synced.set()
            self._start_runnables(leader_only=False)
            if self.options.leader_election:
                elector_thread = self._campaign()
            else:
                self._start_runnables(leader_only=True)
            self._stop.wait()
            return 1 if self._lost else 0
        finally:
            self._shutdown(elector_thread)

    def _campaign(self) -> threading.Thread:
        opts = self.options
        self._elector = LeaderElector(
            ResourceClient(self.transport, LEASES),
            LeaderElectionOptions(name=opts.leader_election_id,
                                  namespace=opts.leader_election_namespace,
                                  identity=opts.identity or default_identity(),
                                  lease_duration=opts.lease_duration,
                                  renew_deadline=opts.renew_deadline,
                                  retry_period=opts.retry_period),
            on_started_leading=lambda: self._start_runnables(leader_only=True),
            on_stopped_leading=self._stopped_leading, clock=self.clock,
            metrics=self.recorder.leader)
        thread = threading.Thread(target=self._elector.run, args=(self._elector_stop,),
                                  name="leader-election")
        thread.start()
        return thread

    def _stopped_leading(self) -> None:
        if not self._elector_stop.is_set():
            self._lost = True
            log.error("leadership lost: stopping")
            self._stop_runnables()  # stop writing at once, before anyone else leads
            self._stop.set()

    def _start_runnables(self, *, leader_only: bool) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            for runnable, needs_leader in self._runnables:
                if needs_leader == leader_only:
                    runnable.start()
                    self._started.append(runnable)

    def _stop_runnables(self) -> None:
        deadline = self.clock.monotonic() + self.options.graceful_shutdown_timeout
        with self._lock:
            started, self._started = self._started, []
        for runnable in reversed(started):
            runnable.stop(max(deadline - self.clock.monotonic(), 0.0))

    def _shutdown(self, elector_thread: threading.Thread | None) -> None:
        self._stop.set()
        self._stop_runnables()
        self._elector_stop.set()
        if elector_thread is not None:
            elector_thread.join(self.options.renew_deadline + self.options.retry_period + 5)
        self.informers.stop()
        self.server.stop()
        self.transport.close()
        log.info("manager stopped")
