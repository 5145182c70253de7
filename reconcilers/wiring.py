"""The composition root: builds the AgenticSession operator on a manager, and its commands.

The only module that names concrete classes. ``register`` adds the ``operator`` subcommand to
``ambient-ctrl`` through the ``ambient_ctrl.commands`` entry point (setup.cfg), so the framework
never imports this package.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ambient_ctrl import logcontext
from ambient_ctrl.client import Client
from ambient_ctrl.controller import ControllerOptions
from ambient_ctrl.expectations import Expectations
from ambient_ctrl.handler import EnqueueForOwner, EnqueueMapped, EventSource
from ambient_ctrl.manager import Manager, ManagerOptions
from ambient_ctrl.predicate import AnnotationsChanged, GenerationChanged, LabelsChanged, or_
from ambient_ctrl.reconcile import Request
from ambient_ctrl.workqueue import WorkQueue
from informers.errors import KubeError
from informers.resource import CONFIGMAPS, NAMESPACES, PODS, SECRETS, SERVICES
from informers.rest import USER_AGENT
from metrics.server import DEFAULT_METRICS_ADDRESS, DEFAULT_SECURE_METRICS_ADDRESS

from .config import OperatorConfig
from .metrics import SessionMetrics, backend_phase
from .namespaced import watched_namespaces
from .platform_secrets import PlatformSecrets
from .pod import PodEnvironment
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
from .vm import KubeVirtEnvironment

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
          controller: ControllerOptions = ControllerOptions(max_concurrent_reconciles=4),
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
    if upstream_metrics:
        manager.index(AGENTIC_SESSIONS, NAMESPACE_PHASE_INDEX, namespace_phase)
    sessions = client.expect(AGENTIC_SESSIONS)
    kubevirt = KubeVirtDetector(manager, ttl=options.kubevirt_recheck)
    upstream = UpstreamMetrics(
        manager.recorder, sessions=lambda: sessions.store.index_counts(NAMESPACE_PHASE_INDEX)
    ) if upstream_metrics else None
    metrics = SessionMetrics(
        manager.recorder, sessions=lambda: sessions.store.index_counts(BACKEND_PHASE_INDEX),
        upstream=upstream)
    # The platform Secrets are read in the backend's namespace too (the source of the copies):
    # when the caches hold some namespaces only, that one is added for them.
    listed = client.cache_namespaces
    platform = None if listed is None else listed | {config.backend_namespace}
    by_name = {name: client.scoped(SECRETS, field_selector=f"metadata.name={name}",
                                   namespaces=platform if name in config.platform_secrets
                                   else None)
               for name in (RUNNER_SECRETS, INTEGRATION_SECRETS, *config.platform_secrets)}
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
    reconciler = SessionReconciler(
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

    def sessions_in(namespace: str, phases: frozenset[str] | None = None) -> list[Request]:
        return [Request.for_object(s) for s in client.list(AGENTIC_SESSIONS, namespace=namespace)
                if phases is None or ((s.get("status") or {}).get("phase") or "Pending") in phases]

    def registry_edited(configmap: Mapping[str, Any]) -> Iterable[Request]:
        if configmap["metadata"]["name"] != REGISTRY_CONFIGMAP:
            return []  # the models manifest and the templates matter when a run starts
        return [Request.for_object(s) for s in client.list(AGENTIC_SESSIONS)]

    def waiting_for_secrets(secret: Mapping[str, Any]) -> Iterable[Request]:
        return sessions_in(secret["metadata"]["namespace"], WAITING)

    def project_edited(settings: Mapping[str, Any]) -> Iterable[Request]:
        return sessions_in(settings["metadata"]["namespace"], LIVE_PHASES)

    def namespace_labelled(namespace: Mapping[str, Any]) -> Iterable[Request]:
        return sessions_in(namespace["metadata"]["name"])

    builder = (manager.builder(CONTROLLER_NAME)
               # Our own status writes do not wake us (they keep generation and annotations).
               .for_(AGENTIC_SESSIONS, or_(GenerationChanged, AnnotationsChanged))
               .owns(PODS, label_selector=RUNNER_SELECTOR)
               .owns(SECRETS, label_selector=OWNED_SECRETS)
               .watches(SERVICES, session_of, label_selector=SESSION_LABEL)
               .watches(SECRETS, waiting_for_secrets,
                        field_selector=f"metadata.name={RUNNER_SECRETS}")
               .watches(CONFIGMAPS, registry_edited, namespace=options.registry_namespace)
               .watches(PROJECT_SETTINGS, project_edited)
               .watches(NAMESPACES, namespace_labelled, LabelsChanged)
               .with_options(controller))
    queue = builder.complete(reconciler if upstream is None else TimedReconciler(
        reconciler, upstream, phase_of=cached_phase(client), clock=manager.clock)).queue
    # The builder's owns/watches for VMs and VMIs, added when KubeVirt is found: now, or once
    # it is installed (the informers then start at once: the manager runs).
    kubevirt.when_served(lambda: _watch_kubevirt(client, queue))
    if not kubevirt():
        log.info("kubevirt.io/v1 is not served: VM sessions report KubeVirtNotInstalled until "
                 "it is", extra={"recheck_seconds": options.kubevirt_recheck})
    setup_projects(manager)
    return reconciler


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


def _watch_kubevirt(client: Client, queue: WorkQueue[Request]) -> None:
    """Wake a session when its VM changes (owner) or its VMI does (the session label)."""
    vms = client.expect(VIRTUAL_MACHINES, label_selector=RUNNER_SELECTOR)
    vms.add_handler(EventSource(EnqueueForOwner(AGENTIC_SESSIONS), queue))
    vmis = client.expect(VIRTUAL_MACHINE_INSTANCES, label_selector=RUNNER_SELECTOR)
    vmis.add_handler(EventSource(EnqueueMapped(session_of), queue))


# the command -----------------------------------------------------------------------------------
def _run(args: argparse.Namespace) -> int:
    logcontext.configure(level=args.log_level, json=args.log_format == "json")
    if args.leader_election_renew_deadline >= args.leader_election_lease_duration:
        log.error("--leader-election-renew-deadline must be shorter than "
                  "--leader-election-lease-duration")
        return 2
    if args.metrics_bind_address is None:  # kubebuilder's ports: 8443 secure, 8080 plain
        args.metrics_bind_address = (DEFAULT_SECURE_METRICS_ADDRESS if args.metrics_secure
                                     else DEFAULT_METRICS_ADDRESS)
    config = OperatorConfig.from_env(os.environ)
    for problem in config.problems():
        log.error("cannot start: %s", problem)
    if config.problems():
        return 2
    manager = Manager(kubeconfig=args.kubeconfig, options=ManagerOptions(
        leader_election=args.leader_elect, leader_election_id=args.leader_election_id,
        leader_election_namespace=args.leader_election_namespace,
        identity=args.leader_election_identity,
        lease_duration=args.leader_election_lease_duration,
        renew_deadline=args.leader_election_renew_deadline,
        metrics_secure=args.metrics_secure, metrics_cert_dir=args.metrics_cert_path,
        metrics_cert_name=args.metrics_cert_name, metrics_key_name=args.metrics_cert_key,
        retry_period=args.leader_election_retry_period, user_agent=args.user_agent,
        metrics_address=args.metrics_bind_address,
        probe_address=args.health_probe_bind_address, cache_namespaces=args.namespace,
        webhook_address=args.webhook_bind_address, webhook_cert_dir=args.webhook_cert_path))
    setup(manager, config=config, options=OperatorOptions(
        registry_namespace=args.registry_namespace,
        require_managed_label=not args.all_namespaces, runner_address=args.runner_address),
        controller=ControllerOptions(max_concurrent_reconciles=args.max_concurrent_reconciles,
                                     use_priority_queue=args.priority_queue),
        upstream_metrics=args.upstream_metrics)
    manager.install_signal_handlers()
    return manager.run()


def _namespaces(value: str) -> tuple[str, ...]:
    """``--namespace``'s comma-separated list (empty: every namespace)."""
    try:
        return watched_namespaces([value])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _flag(value: str) -> bool:
    """``--flag``, ``--flag=true`` or ``--flag=false`` (upstream's Deployment passes
    ``--leader-elect=false``)."""
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _positive_int(value: str) -> int:
    """A count (``--max-concurrent-reconciles``): an integer of at least 1."""
    try:
        number = int(value.strip())
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def _env(name: str, default: str, *, upstream: str | None = None) -> str:
    """The default of an option: ``AMBIENT_CTRL_<name>``, else upstream's variable of that
    setting, else ``default`` — so with the flag first, one precedence for every option: flag
    > ``AMBIENT_CTRL_<name>`` > upstream's variable > default. An empty variable counts as
    unset (upstream's operator reads ``os.Getenv(...) != ""``). Options with a ``type`` take
    this string and convert it when ``run`` parses its arguments: a value that cannot be used
    is a usage error of ``run`` then, never a failure of every subcommand."""
    value = os.environ.get(f"AMBIENT_CTRL_{name}") or None
    if value is None and upstream:
        value = os.environ.get(upstream) or None
    return value if value is not None else default


def register(commands: Any) -> None:
    """Add ``ambient-ctrl run`` (entry point ``ambient_ctrl.commands``)."""
    parser = commands.add_parser(
        "run", help="run the AgenticSession operator",
        description="Run the AgenticSession operator. Every option also reads an environment "
                    "variable AMBIENT_CTRL_<OPTION> (upper case, dashes as underscores), e.g. "
                    "AMBIENT_CTRL_METRICS_BIND_ADDRESS; a flag wins over the variable. Where "
                    "upstream's operator reads a variable for the same setting "
                    "(MAX_CONCURRENT_RECONCILES; NAMESPACE, its own namespace, for "
                    "--registry-namespace and --leader-election-namespace), that variable "
                    "comes next: flag > AMBIENT_CTRL_<OPTION> > upstream's variable > "
                    "default. An empty variable counts as unset.")
    parser.add_argument("--kubeconfig", default=_env("KUBECONFIG", "") or None,
                        help="kubeconfig (default: $KUBECONFIG, then the in-cluster service "
                             "account, then ~/.kube/config)")
    parser.add_argument("--namespace", "--namespaces", type=_namespaces,
                        default=_env("NAMESPACE", ""), metavar="NS[,NS...]",
                        help="work only in these namespaces (comma-separated), each watched "
                             "on its own: what an operator granted Roles there and nothing "
                             "cluster-wide may do (config/namespaced; Namespaces themselves "
                             "are still watched cluster-wide, for their ambient-code.io/managed "
                             "label). Fixed at start. Default: every namespace")
    parser.add_argument("--registry-namespace",
                        default=_env("REGISTRY_NAMESPACE", "ambient-code", upstream="NAMESPACE"),
                        help="the operator's namespace, where the ambient-agent-registry, "
                             "ambient-models and ambient-cloud-init-templates ConfigMaps are "
                             "(default: $NAMESPACE, as upstream's operator, else ambient-code)")
    parser.add_argument("--runner-address", choices=["dns", "apiserver"],
                        default=_env("RUNNER_ADDRESS", "dns"),
                        help="how the operator reaches a session's runner for live changes: "
                             "the Service's cluster DNS name, as upstream (dns, the default), "
                             "or through the API server's Service proxy (apiserver: for an "
                             "operator outside the cluster network)")
    parser.add_argument("--all-namespaces", action="store_true",
                        default=_env("ALL_NAMESPACES", "") == "true",
                        help="reconcile sessions in every namespace, not only those labelled "
                             "ambient-code.io/managed=true")
    parser.add_argument("--leader-elect", nargs="?", const=True, type=_flag,
                        default=_env("LEADER_ELECT", "false"),
                        help="run only while holding the leader lease (--leader-elect, or "
                             "--leader-elect=true|false)")
    parser.add_argument("--leader-election-namespace",
                        default=_env("LEADER_ELECTION_NAMESPACE", "ambient-code",
                                     upstream="NAMESPACE"),
                        help="namespace of the leader Lease (default: $NAMESPACE, the "
                             "operator's own, else ambient-code)")
    parser.add_argument("--leader-election-id",
                        default=_env("LEADER_ELECTION_ID", "agenticsession-operator"),
                        help="name of the leader Lease")
    parser.add_argument("--leader-election-identity",
                        default=_env("LEADER_ELECTION_IDENTITY", ""),
                        help="this replica's holder identity in the Lease (default: "
                             "<hostname>_<random uuid>)")
    parser.add_argument("--leader-election-lease-duration", type=float,
                        default=_env("LEADER_ELECTION_LEASE_DURATION", "15"),
                        help="seconds a standby waits after the last renewal before taking "
                             "over (default 15)")
    parser.add_argument("--leader-election-renew-deadline", type=float,
                        default=_env("LEADER_ELECTION_RENEW_DEADLINE", "10"),
                        help="seconds the leader keeps failing to renew before it stops "
                             "(default 10; shorter than the lease duration)")
    parser.add_argument("--leader-election-retry-period", type=float,
                        default=_env("LEADER_ELECTION_RETRY_PERIOD", "2"),
                        help="seconds between attempts to acquire or renew (default 2)")
    parser.add_argument("--user-agent", default=_env("USER_AGENT", USER_AGENT),
                        help=f"User-Agent of every API request (default {USER_AGENT})")
    parser.add_argument("--metrics-bind-address",
                        default=_env("METRICS_BIND_ADDRESS", "") or None,
                        help='"host:port" for /metrics ("0" = off; default 127.0.0.1:8080, '
                             'or 127.0.0.1:8443 with --metrics-secure; config/manager: :8443)')
    parser.add_argument("--metrics-secure", nargs="?", const=True, type=_flag,
                        default=_env("METRICS_SECURE", "false"),
                        help="serve /metrics over HTTPS to clients whose bearer token the API "
                             "server authenticates (TokenReview) and allows get on /metrics "
                             "(SubjectAccessReview), as controller-runtime's "
                             "WithAuthenticationAndAuthorization; needs create on tokenreviews "
                             "and subjectaccessreviews (default false; config/manager sets it)")
    parser.add_argument("--metrics-cert-path", default=_env("METRICS_CERT_PATH", ""),
                        help="directory of the secure metrics certificate and key, reloaded "
                             "when they change (default: a self-signed certificate made at "
                             "start)")
    parser.add_argument("--metrics-cert-name", default=_env("METRICS_CERT_NAME", "tls.crt"),
                        help="the certificate's file name in --metrics-cert-path (tls.crt)")
    parser.add_argument("--metrics-cert-key", default=_env("METRICS_CERT_KEY", "tls.key"),
                        help="the key's file name in --metrics-cert-path (tls.key)")
    parser.add_argument("--webhook-bind-address",
                        default=_env("WEBHOOK_BIND_ADDRESS", "127.0.0.1:9443"),
                        help='"host:port" of the admission and conversion webhook server, '
                             'served only when webhooks are registered (config/webhook: :9443)')
    parser.add_argument("--webhook-cert-path", default=_env("WEBHOOK_CERT_PATH", ""),
                        help="directory of the webhook server's tls.crt and tls.key, reloaded "
                             "when they change (config/webhook: cert-manager's Secret; "
                             "default: a development CA and certificate made at start)")
    parser.add_argument("--health-probe-bind-address",
                        default=_env("HEALTH_PROBE_BIND_ADDRESS", "127.0.0.1:8081"),
                        help='"host:port" for /healthz and /readyz (":8081" in a cluster)')
    parser.add_argument("--max-concurrent-reconciles", type=_positive_int,
                        default=_env("MAX_CONCURRENT_RECONCILES", "4",
                                     upstream="MAX_CONCURRENT_RECONCILES"),
                        help="sessions reconciled at once (default: "
                             "$AMBIENT_CTRL_MAX_CONCURRENT_RECONCILES, then upstream's "
                             "$MAX_CONCURRENT_RECONCILES, then 4)")
    parser.add_argument("--priority-queue", nargs="?", const=True, type=_flag,
                        default=_env("PRIORITY_QUEUE", "true"),
                        help="reconcile sessions created or changed while the operator works "
                             "through its initial list (after a start or a failover) before "
                             "that list (default true; false: one first-in, first-out queue)")
    parser.add_argument("--upstream-metrics", nargs="?", const=True, type=_flag,
                        default=_env("UPSTREAM_METRICS", "false"),
                        help="also export upstream's ambient_* series under upstream's names, "
                             "for dashboards built on upstream's OpenTelemetry metrics "
                             "(default false)")
    parser.add_argument("--log-format", choices=["text", "json"],
                        default=_env("LOG_FORMAT", "text"),
                        help="text lines, or one JSON object a line (for log collectors)")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        default=_env("LOG_LEVEL", "INFO"), help="the least severe level logged")
    parser.set_defaults(run=_run)
