"""The composition root: builds the AgenticSession operator on a manager.

The only module that names concrete classes: the caches the session reconciler reads, the
reconciler with its collaborators, and the watches that wake it (:func:`setup`), then the
project controller (:func:`setup_projects`). The command that runs it is :mod:`.command`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from ambient_ctrl.client import Client, ScopedCache
from ambient_ctrl.controller import Controller, ControllerOptions
from ambient_ctrl.expectations import Expectations
from ambient_ctrl.handler import EnqueueForOwner, EnqueueMapped, EventSource
from ambient_ctrl.manager import Manager
from ambient_ctrl.predicate import AnnotationsChanged, GenerationChanged, LabelsChanged, or_
from ambient_ctrl.reconcile import Request
from informers.errors import KubeError
from informers.resource import CONFIGMAPS, NAMESPACES, PODS, SECRETS, SERVICES
from informers.store import NAMESPACE_INDEX

from .config import OperatorConfig
from .metrics import SessionMetrics, backend_phase
from .platform_secrets import PlatformSecrets
from .pod import RUNNER_POD_BATCH, RUNNER_POD_CHANGED, PodEnvironment
from .project_children import MANAGED_SELECTOR
from .projects import RESOURCES as PROJECT_CHILDREN
from .projects import ProjectCaches, ProjectReconciler, managed_namespace_requests
from .reconciler import Caches, OperatorOptions, SessionReconciler
from .registry import RegistryCache
from .resources import (
    AGENTIC_SESSIONS,
    APP_LABEL,
    CLOUDINIT_SECRET_APP,
    INTEGRATION_SECRETS,
    MANAGED_BY,
    MINIO_CREDENTIALS,
    NETWORK_POLICIES,
    PROJECT_SETTINGS,
    REGISTRY_CONFIGMAP,
    RUNNER_APP,
    RUNNER_SECRETS,
    SESSION_LABEL,
    TOKEN_SECRET_APP,
    TRUSTED_CA_BUNDLE,
    VIRTUAL_MACHINE_INSTANCES,
    VIRTUAL_MACHINES,
    Phase,
)
from .runner import RunnerClient
from .sync import ChildSync
from .upstream_metrics import (
    NAMESPACE_PHASE_INDEX,
    TimedReconciler,
    UpstreamMetrics,
    cached_phase,
    namespace_phase,
)
from .vm import RUNNER_VM_CHANGED, RUNNER_VMI_CHANGED, KubeVirtEnvironment

log = logging.getLogger(__name__)
RUNNER_SELECTOR = f"{APP_LABEL}={RUNNER_APP}"
OWNED_SECRETS = f"{APP_LABEL} in ({TOKEN_SECRET_APP},{CLOUDINIT_SECRET_APP})"
WAITING = frozenset({Phase.PENDING.value})
LIVE_PHASES = frozenset({Phase.CREATING.value, Phase.RUNNING.value})
CONTROLLER_NAME = "agenticsession"
PROJECTS_CONTROLLER = "projectsettings"
BACKEND_PHASE_INDEX = "backend-phase"
"""Sessions indexed by ``backend/phase``: what the ``agentic_sessions`` gauge counts."""


class KubeVirtDetector:
    """Whether the cluster serves kubevirt.io/v1 VirtualMachines, asked (API discovery) at
    most once per ``ttl`` seconds. The reconciler asks on every reconcile, so KubeVirt
    installed after the operator started is found within ``ttl`` of a VM session's recheck.
    """

    def __init__(self, manager: Manager, *, ttl: float = 30.0) -> None:
        self._manager = manager
        self._ttl = ttl
        self._answer: tuple[float, bool] | None = None
        self._lock = threading.Lock()
        self._on_served: Callable[[], None] | None = None

    def when_served(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once, on the first answer that says served (this one, if so).
        It runs before that answer reaches any caller: what it sets up (the VM and VMI
        caches) is there before a reconcile reads VMs, or a read would start an informer of
        its own, unscoped and without the handlers."""
        with self._lock:
            self._on_served = callback
        self()

    def __call__(self) -> bool:
        now = self._manager.clock.monotonic()
        with self._lock:
            if self._answer is not None and now - self._answer[0] < self._ttl:
                if self._answer[1]:
                    self._served()
                return self._answer[1]
        try:
            doc = self._manager.transport.json("GET", "/apis/kubevirt.io/v1", verb="GET")
            served = any(r.get("name") == VIRTUAL_MACHINES.plural
                         for r in doc.get("resources") or ())
        except KubeError:
            served = False
        with self._lock:
            if served:
                self._served()
            self._answer = (now, served)
        return served

    def _served(self) -> None:
        """Run the pending callback (with the lock held: callers wait for it)."""
        callback, self._on_served = self._on_served, None
        if callback is not None:
            log.info("kubevirt.io/v1 is served: watching VirtualMachines and their instances")
            callback()


def setup(manager: Manager, *, options: OperatorOptions = OperatorOptions(),
          config: OperatorConfig | None = None,
          controller: ControllerOptions = ControllerOptions(max_concurrent_reconciles=8),
          upstream_metrics: bool = False) -> SessionReconciler:
    """Register the AgenticSession controller, its caches and its watches on ``manager``;
    with ``upstream_metrics``, upstream's ``ambient_*`` series too (:mod:`.upstream_metrics`).
    """
    config = config or OperatorConfig()
    client = manager.client
    # The default scope of each kind (what client.get reads) first: the children the
    # operator labels. Narrower caches of the same kinds follow.
    client.expect(PODS, label_selector=RUNNER_SELECTOR)
    client.expect(SECRETS, label_selector=OWNED_SECRETS)
    client.expect(SERVICES, label_selector=SESSION_LABEL)
    manager.index(AGENTIC_SESSIONS, BACKEND_PHASE_INDEX, backend_phase)
    # Sessions by namespace and phase: what the watches' map functions wake (and upstream's
    # gauges count), found without decoding a session.
    manager.index(AGENTIC_SESSIONS, NAMESPACE_PHASE_INDEX, namespace_phase)
    sessions = client.expect(AGENTIC_SESSIONS)
    kubevirt = KubeVirtDetector(manager, ttl=options.kubevirt_recheck)
    upstream = UpstreamMetrics(
        manager.recorder, sessions=lambda: sessions.store.index_counts(NAMESPACE_PHASE_INDEX)
    ) if upstream_metrics else None
    metrics = SessionMetrics(
        manager.recorder, sessions=lambda: sessions.store.index_counts(BACKEND_PHASE_INDEX),
        upstream=upstream)
    reconciler = _session_reconciler(manager, config, options, metrics, kubevirt)
    wakeups = Wakeups(client)
    builder = (manager.builder(CONTROLLER_NAME)
               # Our own status writes do not wake us (they keep generation and annotations).
               .for_(AGENTIC_SESSIONS, or_(GenerationChanged, AnnotationsChanged))
               .owns(PODS, RUNNER_POD_CHANGED, label_selector=RUNNER_SELECTOR,
                     batch=RUNNER_POD_BATCH)
               .owns(SECRETS, label_selector=OWNED_SECRETS)
               .watches(SERVICES, session_of, label_selector=SESSION_LABEL)
               .watches(SECRETS, wakeups.waiting_for_secrets,
                        field_selector=f"metadata.name={RUNNER_SECRETS}")
               .watches(CONFIGMAPS, wakeups.registry_edited,
                        namespace=options.registry_namespace)
               .watches(PROJECT_SETTINGS, wakeups.project_edited)
               .watches(NAMESPACES, wakeups.namespace_labelled, LabelsChanged)
               # The reconciler never counts on its own write's event to go on (a pass
               # ends with what it wrote, or asks to be requeued): those events are not news.
               # Each pass answers when to look again in full (the earliest of the phase
               # machine's, a deferred status detail's, a runner retry's): an earlier pass's
               # requeue that a later one did not ask again would be a pass for nothing.
               .with_options(replace(controller, skip_own_writes=True,
                                     latest_result_wins=True)))
    session_controller = builder.complete(reconciler if upstream is None else TimedReconciler(
        reconciler, upstream, phase_of=cached_phase(client), clock=manager.clock))
    # The builder's owns/watches for VMs and VMIs, added when KubeVirt is found: now, or once
    # it is installed (the informers then start at once: the manager runs).
    kubevirt.when_served(lambda: _watch_kubevirt(client, session_controller))
    if not kubevirt():
        log.info("kubevirt.io/v1 is not served: VM sessions report KubeVirtNotInstalled until "
                 "it is", extra={"recheck_seconds": options.kubevirt_recheck})
    setup_projects(manager)
    return reconciler


def _session_reconciler(manager: Manager, config: OperatorConfig, options: OperatorOptions,
                        metrics: SessionMetrics, kubevirt: KubeVirtDetector
                        ) -> SessionReconciler:
    """The session reconciler with its caches and collaborators."""
    client = manager.client
    by_name = _named_secrets(client, config)
    caches = Caches(
        configmaps=client.scoped(CONFIGMAPS, namespace=options.registry_namespace),
        trusted_ca=client.scoped(CONFIGMAPS,
                                 field_selector=f"metadata.name={TRUSTED_CA_BUNDLE}"),
        runner_secrets=by_name[RUNNER_SECRETS], integrations=by_name[INTEGRATION_SECRETS],
        minio=client.scoped(SECRETS, namespace=config.backend_namespace,
                            field_selector=f"metadata.name={MINIO_CREDENTIALS}"),
        project_settings=client.scoped(PROJECT_SETTINGS),
        network_policies=client.scoped(NETWORK_POLICIES,
                                       label_selector=f"{MANAGED_BY}=operator"))
    return SessionReconciler(
        client, environments=(PodEnvironment(), KubeVirtEnvironment()), caches=caches,
        platform=PlatformSecrets(client, config, {n: by_name[n] for n in
                                                  config.platform_secrets}),
        registry=RegistryCache(), events=manager.event_recorder("agenticsession-operator"),
        metrics=metrics,
        sync=ChildSync(client, expectations=Expectations(clock=manager.clock), metrics=metrics,
                       clock=manager.clock),
        runner=RunnerClient(manager.transport, via=options.runner_address),
        served=lambda resource: kubevirt() if resource == VIRTUAL_MACHINES else True,
        config=config, options=options, clock=manager.clock)


def _named_secrets(client: Client, config: OperatorConfig) -> dict[str, ScopedCache]:
    """A cache per Secret name the operator reads in sessions' namespaces. The platform
    Secrets are read in the backend's namespace too (the source of the copies): when the
    caches hold some namespaces only, that one is added for them."""
    listed = client.cache_namespaces
    platform = None if listed is None else listed | {config.backend_namespace}
    return {name: client.scoped(SECRETS, field_selector=f"metadata.name={name}",
                                namespaces=platform if name in config.platform_secrets
                                else None)
            for name in (RUNNER_SECRETS, INTEGRATION_SECRETS, *config.platform_secrets)}


class Wakeups:
    """Which sessions a change of something they read wakes (the ``watches`` map functions).

    Found by their cache keys (the namespace index, the namespace/phase index), never by
    decoding sessions: a Secret edited in a namespace of 10,000 sessions, or the initial list
    of every namespace at a start, costs index look-ups, not 10,000 decodes each."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _sessions_in(self, namespace: str, phases: Iterable[str] | None = None
                     ) -> list[Request]:
        if phases is None:
            keys = self._client.keys(AGENTIC_SESSIONS, index=(NAMESPACE_INDEX, namespace))
        else:
            keys = [key for phase in sorted(phases) for key in self._client.keys(
                AGENTIC_SESSIONS, index=(NAMESPACE_PHASE_INDEX, f"{namespace}/{phase}"))]
        return [_request(key) for key in keys]

    def registry_edited(self, configmap: Mapping[str, Any]) -> Iterable[Request]:
        if configmap["metadata"]["name"] != REGISTRY_CONFIGMAP:
            return []  # the models manifest and the templates matter when a run starts
        return [_request(key) for key in self._client.keys(AGENTIC_SESSIONS)]

    def waiting_for_secrets(self, secret: Mapping[str, Any]) -> Iterable[Request]:
        """Sessions still Pending in the Secret's namespace (they wait for the runner's)."""
        return self._sessions_in(secret["metadata"]["namespace"], WAITING)

    def project_edited(self, settings: Mapping[str, Any]) -> Iterable[Request]:
        """Live sessions of the project (its settings apply to their runs)."""
        return self._sessions_in(settings["metadata"]["namespace"], LIVE_PHASES)

    def namespace_labelled(self, namespace: Mapping[str, Any]) -> Iterable[Request]:
        """Every session of a namespace whose labels changed (managed or not any more)."""
        return self._sessions_in(namespace["metadata"]["name"])


def _request(key: str) -> Request:
    namespace, _, name = key.rpartition("/")
    return Request(namespace, name)


def setup_projects(manager: Manager, *, controller: ControllerOptions = ControllerOptions(
        max_concurrent_reconciles=2)) -> ProjectReconciler:
    """Register the project controller (:mod:`.projects`): the ProjectSettings of managed
    namespaces and what each ProjectSettings gives its namespace. Call it after the session
    controller's registration, whose unscoped namespace cache stays the one it reads."""
    client = manager.client
    children = {kind: client.scoped(resource, label_selector=MANAGED_SELECTOR)
                for kind, resource in PROJECT_CHILDREN.items()}
    caches = ProjectCaches(
        settings=client.scoped(PROJECT_SETTINGS),
        namespaces=client.scoped(NAMESPACES, label_selector=MANAGED_SELECTOR),
        service_accounts=children["ServiceAccount"], roles=children["Role"],
        role_bindings=children["RoleBinding"], limit_ranges=children["LimitRange"])
    reconciler = ProjectReconciler(
        client, caches=caches, events=manager.event_recorder("agenticsession-operator"),
        clock=manager.clock)
    listed = client.cache_namespaces  # --namespace: those projects alone

    def project_of(namespace: Mapping[str, Any]) -> list[Request]:
        return [request for request in managed_namespace_requests(namespace)
                if listed is None or request.namespace in listed]

    builder = (manager.builder(PROJECTS_CONTROLLER)
               # Our own status writes do not wake us (they keep the generation).
               .for_(PROJECT_SETTINGS, GenerationChanged)
               .watches(NAMESPACES, project_of, label_selector=MANAGED_SELECTOR))
    for resource in PROJECT_CHILDREN.values():
        builder.owns(resource, label_selector=MANAGED_SELECTOR)
    builder.with_options(controller).complete(reconciler)
    return reconciler


def session_of(obj: Mapping[str, Any]) -> Iterable[Request]:
    """The session a child belongs to, by its ``agentic-session`` label (a Service is owned by
    the workload, a VM's instance by the VM)."""
    meta = obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SESSION_LABEL)
    return [Request(meta.get("namespace", ""), name)] if name else []


def _watch_kubevirt(client: Client, controller: Controller) -> None:
    """Wake a session when its VM changes (owner) or its VMI does (the session label)."""
    vms = client.expect(VIRTUAL_MACHINES, label_selector=RUNNER_SELECTOR)
    vms.add_handler(EventSource(EnqueueForOwner(AGENTIC_SESSIONS), controller.queue,
                                (RUNNER_VM_CHANGED,),
                                own_writes=controller.own_writes_of(VIRTUAL_MACHINES)))
    vmis = client.expect(VIRTUAL_MACHINE_INSTANCES, label_selector=RUNNER_SELECTOR)
    vmis.add_handler(EventSource(EnqueueMapped(session_of), controller.queue,
                                 (RUNNER_VMI_CHANGED,),
                                 own_writes=controller.own_writes_of(
                                     VIRTUAL_MACHINE_INSTANCES)))
