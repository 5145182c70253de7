"""The manager: owns every long-lived part of an operator and runs them in order.

``run`` starts the observability server (``/metrics``, ``/healthz``, ``/readyz``), sizes the
HTTP pool, starts the shared informers, waits for their caches to sync (``/readyz`` turns
ready then), then — once elected leader if leader election is on — the controllers and other
leader-only runnables. It returns when asked to stop (``stop()``, or SIGTERM/SIGINT with
``install_signal_handlers``) or when leadership is lost:

* on a stop, after an orderly shutdown: no new work is taken, reconciles in flight are drained
  up to the graceful-shutdown timeout, the lease is released, informers and servers stop,
  every thread is joined (those that outlive their join are logged);
* on lost leadership, at once, as controller-runtime does (no graceful drain: another
  process may lead already): controllers stop without waiting for reconciles in flight, and
  every write through the manager's transport is refused from the moment the lease may have
  expired (:class:`~ambient_ctrl.leaderelection.NotLeaderError`) — even before the renewing
  thread notices, e.g. in a process that was frozen past its lease.

Exit code 0 for a clean stop, 1 when leadership was lost or the caches never synced.

Secure metrics (``metrics_secure``, controller-runtime's ``SecureServing`` with
``filters.WithAuthenticationAndAuthorization``): ``/metrics`` over HTTPS, every request's
bearer token checked by the API server with a TokenReview and a SubjectAccessReview
(:mod:`metrics.access`, :mod:`ambient_ctrl.reviews`), sent on a small connection pool of its
own (a scrape never waits behind reconciles; no leader-only write guard: reviews are asked by
standbys too). The certificate comes from ``metrics_cert_dir`` (reloaded when it changes) or
is self-signed at start.

Webhooks (``webhook_for``, ``conversion_for``; :mod:`ambient_ctrl.webhook`): when any is
registered, ``run`` starts the HTTPS webhook server right after the observability server, on
every replica and before the informers (listing a CRD at a version other than its storage
version may need this very process's conversion webhook), and ``/readyz`` has its
``webhook-server`` check. Certificates come from ``webhook_cert_dir`` (reloaded when they
change) or, without one, from a development CA made at start (``manager.webhook_server.
ca_bundle``, for :func:`ambient_ctrl.webhook.install`).

Probes (controller-runtime's format, :mod:`metrics.health`):

* ``/healthz``: ``informers`` fails once an informer has failed to list or watch for
  ``informer_unhealthy_after`` seconds in a row; ``threads`` fails as soon as a framework
  thread — a reflector, an informer's handler or resync thread, a controller's worker, a
  workqueue's delay thread, an event writer, the leader-election thread — died or returned
  while its owner still ran (``/healthz/threads`` names it and how it ended). Such a process
  is not alive whatever else answers: a restart is the cure.
* ``/readyz``: ``informers-synced`` until every cache synced at start; then
  ``informers-in-step`` fails while an informer lost its resourceVersion (410, "Too large
  resource version", a history reset: the server is not the one the cache followed) and is
  relisting — its cache may hold objects that no longer exist and miss new ones. This goes
  beyond controller-runtime, whose readiness only gates the first sync: here readiness also
  says "this replica's view is being rebuilt". It is short (one list), and never fails for
  an informer that merely cannot reach the server (that is ``/healthz``'s, after its bound).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client as k8s_client

from foundation import gctuning
from foundation.clock import Clock, RealClock
from foundation.threads import Deadline, Threads
from informers.apiwarnings import WarningLogger
from informers.factory import InformerFactory, InformerKey
from informers.resource import LEASES, Resource
from informers.rest import (
    USER_AGENT,
    ResourceClient,
    Transport,
    TransportOptions,
    load_configuration,
)
from metrics.access import AccessFilter
from metrics.recorder import Recorder
from metrics.registry import new_registry
from metrics.server import ObservabilityServer, ServerOptions

from .aio import AsyncClient, EventLoop
from .builder import Builder
from .client import Client
from .controller import Controller
from .events import EventRecorder
from .leaderelection import LeaderElectionOptions, LeaderElector, NotLeaderError, default_identity
from .reviews import APIServerReviewer
from .webhook.conversion import Converter
from .webhook.registry import WebhookBuilder, Webhooks
from .webhook.server import WebhookServer, WebhookServerOptions

log = logging.getLogger(__name__)

POOL_HEADROOM = 4
"""Connections beyond the computed work: first reads of undeclared kinds (each starts a watch),
event recording, an operator's own calls outside reconciles."""


class Runnable(Protocol):
    """Anything the manager starts and stops: controllers, or an operator's own loops."""

    def start(self) -> None: ...

    def stop(self, timeout: float) -> object: ...


@dataclass(frozen=True, slots=True)
class ManagerOptions:
    """What the operator's entry point decides (from flags); everything has a default."""

    leader_election: bool = False
    """Run leader-only runnables (controllers, by default) only while holding the Lease."""
    leader_election_id: str = "ambient-ctrl-leader"
    """Name of the Lease."""
    leader_election_namespace: str = "default"
    """Namespace of the Lease."""
    identity: str = ""
    """Holder identity; default ``hostname_uuid``."""
    lease_duration: float = 15.0
    """Seconds a standby waits after the leader's last renewal before taking over."""
    renew_deadline: float = 10.0
    """Seconds the leader keeps failing to renew before it stops leading (and this process
    stops); shorter than ``lease_duration``."""
    retry_period: float = 2.0
    """Seconds between attempts to acquire or renew the Lease."""
    cache_sync_timeout: float = 120.0
    """Seconds the informers may take to sync at start before ``run`` gives up (exit 1)."""
    graceful_shutdown_timeout: float = 30.0
    """Seconds a stop waits for reconciles in flight (not on lost leadership: no drain)."""
    metrics_address: str = "127.0.0.1:8080"
    """``/metrics`` (``"0"`` = off). In a cluster the entry point passes ``:8080``."""
    probe_address: str = "127.0.0.1:8081"
    """``/healthz`` and ``/readyz`` (``"0"`` = off). In a cluster: ``:8081``."""
    metrics_secure: bool = False
    """Serve ``/metrics`` over HTTPS to authenticated, authorized clients only (a bearer token
    the API server accepts, of a user allowed ``get`` on the non-resource URL ``/metrics``).
    The operator then needs ``create`` on ``tokenreviews`` and ``subjectaccessreviews``."""
    metrics_cert_dir: str = ""
    """Directory of the secure metrics certificate (``metrics_cert_name``) and key
    (``metrics_key_name``), reloaded when they change; empty: a self-signed certificate."""
    metrics_cert_name: str = "tls.crt"
    metrics_key_name: str = "tls.key"
    webhook_address: str = "127.0.0.1:9443"
    """The webhook server's ``host:port`` (served only when a webhook is registered). In a
    cluster: ``:9443``, the port ``config/webhook``'s Service targets."""
    webhook_cert_dir: str = ""
    """Directory of the webhook server's ``tls.crt`` and ``tls.key`` (cert-manager's Secret
    mount, kubebuilder's ``/tmp/k8s-webhook-server/serving-certs``), reloaded when they
    change; empty: a development CA and certificate made at start."""
    webhook_dev_hosts: tuple[str, ...] = ("localhost",)
    """DNS names of the development certificate."""
    cache_namespaces: tuple[str, ...] = ()
    """Restrict the informers' caches of namespaced kinds to these namespaces, each listed and
    watched on its own (controller-runtime's ``cache.Options.DefaultNamespaces``): what an
    operator with Roles in them and no cluster-wide grant may do. Empty: every namespace.
    Cluster-scoped kinds are watched cluster-wide either way. Fixed for the manager's life."""
    field_manager: str = "ambient-ctrl"
    """The field manager of every write (server-side apply and managedFields)."""
    max_concurrent_requests: int | None = None
    """Size of the HTTP connection pool shared by informers and workers; None: sized from
    the work when ``run`` starts (see :meth:`Manager.pool_size`)."""
    user_agent: str = USER_AGENT
    """The User-Agent of every request (``product/version``, as in API server audit logs)."""
    informer_unhealthy_after: float = 300.0
    """``/healthz`` fails once an informer has failed to list or watch for this many seconds
    in a row (well past the reflector's 30 s backoff cap): a restart may cure what retrying
    did not, and an operator on a stale cache should not pass for healthy."""
    detect_cache_mutations: bool = False
    """Check on every cached read that no consumer changed a shared object (raises
    ``MutatedCacheError``). For tests: it costs a serialization per read."""
    tune_gc: bool = True
    """Raise the garbage collector's thresholds from the start, pause automatic collection
    while the caches fill (at most ``cache_sync_timeout``) and, once they have, collect and
    freeze what exists (:mod:`foundation.gctuning`: full collections paused a busy operator
    for up to 0.2 s, and walked a still-growing heap during the first lists); restored when
    ``run`` returns. The collector is the process's:
    turn this off when the manager shares its process with code that tunes it otherwise."""


class Manager:
    """Owns the transport, informers, client, metrics, controllers and their threads."""

    def __init__(self, configuration: k8s_client.Configuration | None = None, *,
                 kubeconfig: str | None = None, options: ManagerOptions = ManagerOptions(),
                 clock: Clock | None = None, recorder: Recorder | None = None) -> None:
        self.options = options
        self.clock = clock or RealClock()
        self.recorder = recorder or Recorder(new_registry(), monotonic=self.clock.monotonic)
        self._config = configuration or load_configuration(kubeconfig)
        pool = options.max_concurrent_requests or TransportOptions().pool_size
        # One for all the manager's transports: each warning text is logged once per process.
        self._warnings = WarningLogger()
        self.transport = Transport(self._config, options=TransportOptions(
            pool_size=pool, user_agent=options.user_agent), observer=self.recorder.rest,
            clock=self.clock, write_guard=self._guard_write if options.leader_election
            else None, warning_handler=self._warnings)
        self.informers = InformerFactory(self.transport, clock=self.clock,
                                         observer=self.recorder.informer,
                                         debug_mutations=options.detect_cache_mutations)
        self.client = Client(self.transport, self.informers, field_manager=options.field_manager,
                             clock=self.clock, sync_timeout=options.cache_sync_timeout,
                             cache_namespaces=options.cache_namespaces)
        self._metrics_transport: Transport | None = None
        access = None
        if options.metrics_secure:
            self._metrics_transport = Transport(self._config, options=TransportOptions(
                pool_size=2, user_agent=options.user_agent), observer=self.recorder.rest,
                clock=self.clock, warning_handler=self._warnings)
            access = AccessFilter(APIServerReviewer(self._metrics_transport),
                                  monotonic=self.clock.monotonic)
        cert_dir = options.metrics_cert_dir
        self.server = ObservabilityServer(self.recorder.registry, options=ServerOptions(
            metrics_address=options.metrics_address, probe_address=options.probe_address,
            metrics_secure=options.metrics_secure,
            metrics_cert_file=os.path.join(cert_dir, options.metrics_cert_name)
            if cert_dir else "",
            metrics_key_file=os.path.join(cert_dir, options.metrics_key_name)
            if cert_dir else ""), metrics_access=access)
        self.server.readyz.add("informers-synced", self._check_synced)
        self.server.readyz.add("informers-in-step", self._check_in_step)
        self.server.healthz.add("informers", self._check_informers)
        self.server.healthz.add("threads", self._check_threads)
        self.webhooks = Webhooks()
        """The admission and conversion webhooks this manager serves."""
        self.webhook_server = WebhookServer(self.webhooks, WebhookServerOptions(
            address=options.webhook_address, cert_dir=options.webhook_cert_dir,
            dev_hosts=options.webhook_dev_hosts), metrics=self.recorder.webhook)
        self.server.readyz.add("webhook-server", self._check_webhooks)
        self._threads = Threads("manager")
        self._runnables: list[tuple[Runnable, bool]] = []
        self._loop: EventLoop | None = None
        self._started: list[Runnable] = []
        self._stop = threading.Event()
        self._elector_stop = threading.Event()
        """Set only after the runnables have stopped: the lease is released last."""
        self._synced = threading.Event()
        self._running = False
        self._lock = threading.Lock()
        self._elector: LeaderElector | None = None
        self._lease_transport: Transport | None = None
        self._lost = False

    # composition -------------------------------------------------------------------------------
    def builder(self, name: str | None = None) -> Builder:
        return Builder(self, name)

    def webhook_for(self, resource: Resource) -> WebhookBuilder:
        """Declare ``resource``'s admission webhooks: ``.defaulter(fn)``, ``.validator(fn)``
        (controller-runtime's ``WebhookManagedBy(mgr).For(obj)``). Call before :meth:`run`."""
        self._not_running("webhooks")
        return WebhookBuilder(self.webhooks, resource)

    def conversion_for(self, resource: Resource, converter: Converter) -> None:
        """Serve the conversions of ``resource``'s CRD (every version of its kind) at
        ``/convert`` with ``converter`` (``(obj, desired_api_version) -> obj``, or a
        :class:`~ambient_ctrl.webhook.HubAndSpoke`). Call before :meth:`run`."""
        self._not_running("conversions")
        self.webhooks.add_conversion(resource, converter)

    def _not_running(self, what: str) -> None:
        if self._running:
            raise RuntimeError(f"register {what} before the manager runs")

    def _check_webhooks(self) -> None:
        if self.webhooks:
            self.webhook_server.check()

    def add(self, runnable: Runnable, *, needs_leader: bool = True) -> None:
        self._runnables.append((runnable, needs_leader))

    def event_loop(self) -> EventLoop:
        """The event loop async reconcilers run on: made on first use, started before the
        controllers that use it and stopped after them (a runnable of every replica, leader or
        not)."""
        with self._lock:
            if self._loop is None:
                self._loop = EventLoop()
                self._runnables.append((self._loop, False))
            return self._loop

    @property
    def async_client(self) -> AsyncClient:
        """:attr:`client`'s verbs as coroutines, for async reconcilers (see ``aio``)."""
        return AsyncClient(self.client, self.event_loop())

    def event_recorder(self, component: str, **options: Any) -> EventRecorder:
        """An :class:`~ambient_ctrl.events.EventRecorder` for ``component`` writing through
        this manager's client, run by the manager: its writer thread starts with the manager
        (before the controllers) and stops after them, writing what they recorded while
        draining. ``options`` go to the recorder (``host``, ``ttl``, ``burst``, ...)."""
        recorder = EventRecorder(self.client, component=component, clock=self.clock, **options)
        self.add(recorder, needs_leader=False)
        return recorder

    def index(self, resource: Resource, name: str,
              fn: Callable[[Any], Iterable[str]]) -> None:
        """Index every cache of ``resource`` by ``fn`` (the object → its index values), as
        controller-runtime's ``FieldIndexer.IndexField``; read with
        ``client.list(resource, index=(name, value))``. Call before :meth:`run`."""
        self._not_running("indexes")
        self.informers.add_indexers(resource, {name: fn})

    def pool_size(self) -> int:
        """Connections the HTTP pool keeps: ``max_concurrent_requests`` when set, or else
        one per reconcile worker of every controller, one per informer (its watch holds a
        connection for good) and :data:`POOL_HEADROOM`."""
        if self.options.max_concurrent_requests:
            return self.options.max_concurrent_requests
        workers = sum(r.options.max_concurrent_reconciles for r, _ in self._runnables
                      if isinstance(r, Controller))
        return workers + len(self.informers) + POOL_HEADROOM

    def _check_synced(self) -> None:
        if not self._synced.is_set():
            raise RuntimeError("informer caches have not synced")

    def _check_informers(self) -> None:
        bound = self.options.informer_unhealthy_after
        now = self.clock.monotonic()
        failing = [f"{_scope(key)} failing for {health.failing_for(now):.0f} s: "
                   f"{health.last_error}" for key, health in self.informers.health().items()
                   if health.failing_for(now) > bound]
        if failing:
            raise RuntimeError("; ".join(failing))

    def _check_in_step(self) -> None:
        relisting = [f"{_scope(key)}: {health.lost_version}"
                     for key, health in self.informers.health().items()
                     if health.lost_version is not None]
        if relisting:
            raise RuntimeError("relisting after losing the resourceVersion: "
                               + "; ".join(relisting))

    def dead_threads(self) -> list[str]:
        """Every framework thread of this manager that died or returned while it should run:
        informers', runnables' (those that tell: controllers, event recorders) and its own."""
        runnables = [runnable for runnable, _ in list(self._runnables)]  # no lock: a probe
        dead = self.informers.dead_threads() + self._threads.dead()
        for runnable in runnables:
            tell = getattr(runnable, "dead_threads", None)
            if callable(tell):
                dead.extend(tell())
        return dead

    def _check_threads(self) -> None:
        dead = self.dead_threads()
        if dead:
            raise RuntimeError("framework threads ended while they should run: "
                               + "; ".join(dead))

    def _guard_write(self, method: str, path: str) -> None:
        """Refuse writes once we led and may no longer (see ``LeaderElector.lease_lost``).
        Runnables that need no leader write freely before this process first leads."""
        elector = self._elector
        if elector is not None and elector.lease_lost():
            raise NotLeaderError(f"{method} {path} refused: this process no longer holds the "
                                 f"lease {self.options.leader_election_id}")

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
        self._running = True
        self.server.start()
        elector_thread: threading.Thread | None = None
        gc_restore: tuple[int, int, int] | None = None
        resume_gc = False  # automatic collection paused (by us) while the caches fill
        try:
            if self.webhooks:  # every replica, before the caches: lists may need conversions
                self.webhook_server.start()
            if self.options.tune_gc:  # before the first lists, which allocate the most
                gc_restore = gctuning.raise_thresholds()
                resume_gc = gctuning.pause()
            self.transport.resize_pool(self.pool_size())
            self.informers.start()
            synced = self.informers.wait_for_sync(self.options.cache_sync_timeout)
            if self.options.tune_gc:  # bounded by the sync timeout: collect, and go on
                gctuning.freeze()
                gctuning.resume(resume_gc)
                resume_gc = False
            if not synced:
                log.error("informer caches did not sync in time")
                return 1
            self._synced.set()
            log.info("caches synced", extra={"informers": len(self.informers)})
            self._start_runnables(leader_only=False)
            if self.options.leader_election:
                elector_thread = self._campaign()
            else:
                self._start_runnables(leader_only=True)
            self._stop.wait()
            return 1 if self._lost else 0
        finally:
            gctuning.resume(resume_gc)  # an error before the sync's end
            self._shutdown(elector_thread)
            if gc_restore is not None:
                gctuning.restore(gc_restore)

    def _campaign(self) -> threading.Thread:
        opts = self.options
        # Its own small pool, as controller-runtime gives leader election its own client: a
        # renewal never waits for a connection behind busy workers, and the write guard of
        # the shared transport does not apply to the lease itself.
        lease_transport = self._lease_transport = Transport(
            self._config, options=TransportOptions(pool_size=1, user_agent=opts.user_agent),
            observer=self.recorder.rest, clock=self.clock, warning_handler=self._warnings)
        self._elector = LeaderElector(
            ResourceClient(lease_transport, LEASES),
            LeaderElectionOptions(name=opts.leader_election_id,
                                  namespace=opts.leader_election_namespace,
                                  identity=opts.identity or default_identity(),
                                  lease_duration=opts.lease_duration,
                                  renew_deadline=opts.renew_deadline,
                                  retry_period=opts.retry_period),
            on_started_leading=lambda: self._start_runnables(leader_only=True),
            on_stopped_leading=self._stopped_leading, clock=self.clock,
            metrics=self.recorder.leader)
        return self._threads.start(self._elector.run, self._elector_stop, name="leader-election")

    def _stopped_leading(self) -> None:
        self._threads.stopping()  # the elector's thread ends next, as it should
        if not self._elector_stop.is_set():
            self._lost = True
            log.error("leadership lost: stopping at once, without draining")
            self._stop_runnables(0.0)  # another process may lead already: no drain
            self._stop.set()

    def _start_runnables(self, *, leader_only: bool) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            for runnable, needs_leader in self._runnables:
                if needs_leader == leader_only:
                    runnable.start()
                    self._started.append(runnable)

    def _stop_runnables(self, timeout: float) -> None:
        deadline = Deadline(timeout)
        with self._lock:
            started, self._started = self._started, []
        for runnable in reversed(started):
            runnable.stop(deadline.remaining())

    def _shutdown(self, elector_thread: threading.Thread | None) -> None:
        self._threads.stopping()
        self._stop.set()
        self._stop_runnables(0.0 if self._lost else self.options.graceful_shutdown_timeout)
        self._elector_stop.set()
        if elector_thread is not None:
            # A renewal ends by its deadline and a release takes at most a retry period.
            self._threads.join(self.options.renew_deadline + self.options.retry_period + 5)
        if self._lease_transport is not None:
            self._lease_transport.close()
        self.informers.stop()
        self.webhook_server.stop()
        self.server.stop()
        if self._metrics_transport is not None:
            self._metrics_transport.close()
        self.transport.close()
        log.info("manager stopped")


def _scope(key: InformerKey) -> str:
    """An informer, for a probe's message: its kind, and its namespace when it has one."""
    kind = key.resource.group_resource
    return f"{kind} in {key.namespace}" if key.namespace else kind
