"""The AgenticSession reconciler: gather what the cache says, ask the phase machine, act.

One pass: read the session → resolve its runtime (agent registry) and environment → read its
children and observe the workload (pure) → gather the facts the machine needs (prerequisite
Secrets, the token, the inactivity timeout) → :func:`.phase.next_step` (pure) → do what it
says: start the run (:meth:`SessionReconciler._start`: platform Secrets, the runner's token,
the workload, its Service, the NetworkPolicy), delete the workload, release copied Secrets,
refresh the token, keep a live run's children in shape (holding spec changes back as
``RestartRequired``) → write the status (one guarded merge patch, only if it changed) and
then the intent annotations (another guarded patch) → requeue for the next moment something
is due (a token refresh, the inactivity deadline), never to poll.

Bad input ends in ``Ready=False`` with the reason, a Warning Event and a TerminalError (no
retry until the session or the registry changes); a cluster without KubeVirt is looked at
again every ``kubevirt_recheck`` seconds instead (installing it is no change to the session).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cachetools import TTLCache

from ambient_ctrl.client import Client, ScopedCache
from ambient_ctrl.events import EventRecorder
from ambient_ctrl.readyourwrites import ReadYourWrites
from ambient_ctrl.reconcile import Request, Result, TerminalError
from foundation.clock import Clock, RealClock
from informers.errors import AlreadyExists, APIError, Conflict, Invalid, NotFound
from informers.resource import NAMESPACES, SECRETS, SERVICES, Resource

from . import children as ch
from . import live, s3, tokens
from .config import OperatorConfig
from .emission import StatusEmitter
from .environment import (
    Child,
    Children,
    ExecutionEnvironment,
    Observation,
    RenderError,
    RunInputs,
    Runtime,
)
from .metrics import SessionMetrics
from .models import models_vertex_id
from .phase import BadInput, Started, StartFailure, Step, World, next_step
from .platform_secrets import PlatformSecrets
from .registry import RegistryCache, runtime_id
from .resources import (
    AGENTIC_SESSIONS,
    AGUI_TOKEN_KEY,
    CLOUD_INIT_CONFIGMAP,
    DESIRED_PHASE,
    INTEGRATION_SECRETS,
    MANAGED_BY,
    MANAGED_NAMESPACE_LABEL,
    MINIO_CREDENTIALS,
    MLFLOW_SECRET,
    MODELS_CONFIGMAP,
    MODELS_KEY,
    NETWORK_POLICIES,
    NETWORK_POLICY_NAME,
    PROJECT_SETTINGS_NAME,
    REGISTRY_CONFIGMAP,
    RESUME_ANNOTATION,
    RUN_ANNOTATION,
    RUNNER_SA,
    RUNNER_SECRETS,
    RUNNER_TOKEN_SECRET,
    SESSION_LABEL,
    START_REQUESTED_AT,
    TOKEN_REFRESHED_AT,
    TRUSTED_CA_BUNDLE,
    TRUSTED_CA_KEY,
    ExecutionKind,
    Phase,
    runner_name,
    service_name,
)
from .runner import RunnerClient, Via
from .runner_env import is_resume
from .status import find, parse_time, with_restart_required
from .sync import ChildSync

log = logging.getLogger(__name__)

STALE_RECHECK = 0.05
"""Seconds before looking again when the cache does not show our last write to the session
yet (the watch delivers it within milliseconds)."""
LIVE = frozenset({Phase.CREATING, Phase.RUNNING})
ENDED = frozenset({Phase.STOPPED, Phase.COMPLETED, Phase.FAILED})
RUNNER_RETRY_MAX = 300.0
REFUSAL_MEMORY = 3600.0
"""How long a refused start is remembered (after that, or an operator restart, one more try)."""


@dataclass(frozen=True, slots=True)
class OperatorOptions:
    """Settings from the operator's flags."""

    registry_namespace: str = "ambient-code"
    """Namespace of the ``ambient-agent-registry`` ConfigMap (and the models manifest and the
    cloud-init templates): the operator's own."""
    require_managed_label: bool = True
    """Reconcile only sessions in namespaces labelled ``ambient-code.io/managed=true``."""
    kubevirt_recheck: float = 30.0
    """Seconds between looks for KubeVirt while a VM session waits for it."""
    runner_address: Via = "dns"
    """How the runner is reached (see :mod:`.runner`)."""
    runner_retry: float = 5.0
    """Seconds before a runner that refused a live reconfiguration is asked again, doubled
    per failure up to :data:`RUNNER_RETRY_MAX` (reset by a success)."""


@dataclass(frozen=True, slots=True)
class Caches:
    """The narrow caches the reconciler reads besides its own children."""

    configmaps: ScopedCache
    """The operator's namespace: the registry, the models manifest, cloud-init templates."""
    trusted_ca: ScopedCache
    runner_secrets: ScopedCache
    integrations: ScopedCache
    minio: ScopedCache
    project_settings: ScopedCache
    network_policies: ScopedCache


@dataclass(frozen=True, slots=True)
class Seen:
    """What one pass read: the runtime (or why there is none), the environments of the new
    and of the current run, the children and the workload's observation, the run's inputs,
    the token Secret and the Service."""

    incarnation: tuple[str, str, str]
    run: tuple[str, str, str, str]
    """The current run's key (the incarnation and its ``startTime``): what a run creates is
    expected under it, so a run that ended before its workload was seen never holds the next."""
    runtime: Runtime | None
    bad: BadInput | None
    start_env: ExecutionEnvironment
    observe_env: ExecutionEnvironment
    children: Children
    workload: Observation
    inputs: RunInputs | None
    token: Mapping[str, Any] | None
    token_name: str
    account: str
    token_made: bool
    service: Mapping[str, Any] | None


class StartRetry(Exception):
    """Starting the run failed for a reason that may pass; the status says which."""


class SessionReconciler:
    """Reconciles AgenticSessions. Thread-safe: each call works on its own request."""

    def __init__(self, client: Client, *, environments: Sequence[ExecutionEnvironment],
                 caches: Caches, platform: PlatformSecrets, registry: RegistryCache,
                 events: EventRecorder, metrics: SessionMetrics, sync: ChildSync,
                 runner: RunnerClient, served: Callable[[Resource], bool],
                 config: OperatorConfig,
                 options: OperatorOptions = OperatorOptions(),
                 clock: Clock | None = None) -> None:
        self._client = client
        self._environments = {env.kind: env for env in environments}
        self._caches = caches
        self._platform = platform
        self._registry = registry
        self._events = events
        self._metrics = metrics
        self._sync = sync
        self._runner = runner
        self._runner_failures: TTLCache[tuple[str, str, str], int] = TTLCache(
            maxsize=10_000, ttl=RUNNER_RETRY_MAX * 4)
        self._refused: TTLCache[tuple[str, str, str], tuple[Hashable, Started]] = TTLCache(
            maxsize=65_536, ttl=REFUSAL_MEMORY)
        """Starts the cluster refused for good (a name taken), by session, with what the
        user controls at the time: asked again only once that changes."""
        self._served = served
        self._config = config
        self._options = options
        self._clock = clock or RealClock()
        self._emit = StatusEmitter(client, events=events, metrics=metrics,
                                   writes=ReadYourWrites(clock=self._clock))
        self._foreign_policies: set[str] = set()

    # entry -----------------------------------------------------------------------------------
    def reconcile(self, request: Request) -> Result:
        session = self._client.get(AGENTIC_SESSIONS, request.name, request.namespace)
        if session is None or session["metadata"].get("deletionTimestamp"):
            self._emit.forget(request)
            return Result()  # children go with it: garbage collection by owner references
        if self._emit.stale(request, str(session["metadata"].get("resourceVersion", ""))):
            return Result(requeue_after=STALE_RECHECK)
        if not self._managed(request.namespace) and not _winding_down(session):
            return Result()  # upstream skips unmanaged namespaces; a run there is still ended
        try:
            return self._pass(session)
        except Conflict:
            log.debug("the session changed while it was reconciled; looking again")
            return Result(requeue=True)

    def _managed(self, namespace: str) -> bool:
        if not self._options.require_managed_label:
            return True
        labels = ((self._client.get(NAMESPACES, namespace) or {}).get("metadata") or {}
                  ).get("labels") or {}
        return labels.get(MANAGED_NAMESPACE_LABEL) == "true"

    def _pass(self, session: Mapping[str, Any]) -> Result:
        now = self._clock.now()
        seen = self._see(session, now)
        world = self._world(session, seen, now)
        step = next_step(session, world, now=now)
        # The token's annotations, also when the write after provisioning was lost (the
        # backend refuses to mint GitHub tokens for a session without runner-sa).
        annotate = _token_annotations(session, seen.token_name, seen.account) \
            if seen.token is not None or seen.token_made else {}
        if step.start and seen.runtime is not None and seen.inputs is not None:
            started = self._refusal(session, seen.incarnation)
            if started is None:
                run = replace(seen.inputs, is_resume=is_resume(session),
                              run_started=str(step.status.get("startTime", "")))
                started, provisioned = self._start(session, seen, run, now)
                annotate.update(provisioned)
            step = next_step(session, replace(world, started=started), now=now)
            if step.permanent is not None and started.failure is not None:
                self._refused[seen.incarnation] = (_user_controls(session), started)
        if _said(session, step):
            step = replace(step, events=())  # the same refusal, shown already: no news
        retry_runner: float | None = None
        if step.reconfigure is not None:
            answers, retry_runner = self._reconfigure(session, seen, step.reconfigure)
            step = next_step(session, replace(world, reconfigured=answers), now=now)
        backend = str(step.status.get("executionKind") or seen.observe_env.kind.value)
        self._act(session, step, seen, backend, now)
        if step.phase in ENDED or step.status.get("startTime") != (
                session.get("status") or {}).get("startTime"):
            self._sync.forget(seen.run)  # the run is over (or a new one begins): so is its wait
        held: tuple[str, ...] = ()
        if step.phase in LIVE and not step.delete_workload:
            held = self._converge_live(session, seen, backend)
        detail_due = self._emit.write(
            session, with_restart_required(step.status, held, now=now), clear=step.clear,
            annotate={**step.annotate, **annotate}, now=now,
            defer=step.permanent is None and not step.retry)
        self._emit.report(session, session.get("status") or {}, step, backend, now)
        result = self._outcome(session, step)
        for due in (detail_due, retry_runner):
            if due is not None and (not result.requeue_after or due < result.requeue_after):
                result = Result(requeue_after=max(due, STALE_RECHECK))
        return result

    def _see(self, session: Mapping[str, Any], now: dt.datetime) -> Seen:
        """Everything this pass reads (from the caches)."""
        meta = session["metadata"]
        namespace, name = str(meta["namespace"]), str(meta["name"])
        incarnation = (namespace, name, str(meta.get("uid", "")))
        run = _run_key(incarnation, str((session.get("status") or {}).get("startTime", "")))
        runtime, bad = self._runtime(session)
        start_env = self._environments[runtime.execution_kind if runtime else ExecutionKind.POD]
        observe_env = self._observed_environment(session.get("status") or {}, start_env)
        children = self._children(session, observe_env)
        self._sync.observed(run, children)
        workload = self._observe(session, observe_env, children, run, now)
        inputs = self._inputs(session) if runtime is not None else None
        if bad is None and runtime is not None and inputs is not None \
                and _may_start(session, workload):
            bad = self._check(session, runtime, start_env, inputs)
        token_name, account = tokens.default_names(session)
        token = self._client.get(SECRETS, token_name, namespace)
        token = token if ch.owned_by(token, incarnation[2]) else None
        service = self._service(session)
        # Seen now, so no longer "created a moment ago" (neither is an environment's child).
        if token is not None:
            self._sync.observed(incarnation, Children({"Secret": {token_name: token}}))
        if service is not None:
            self._sync.observed(_service_key(incarnation, service),
                                Children({"Service": {service_name(name): service}}))
        return Seen(incarnation=incarnation, run=run, runtime=runtime, bad=bad, start_env=start_env,
                    observe_env=observe_env, children=children, workload=workload,
                    inputs=inputs, token=token, token_name=token_name, account=account,
                    token_made=token is None and self._sync.pending(incarnation, "Secret",
                                                                    token_name),
                    service=service)

    def _world(self, session: Mapping[str, Any], seen: Seen, now: dt.datetime) -> World:
        """What the phase machine decides from."""
        namespace, name = ch.meta(session)
        inputs = seen.inputs
        refreshed = now if seen.token_made else parse_time(
            ((seen.token or {}).get("metadata") or {}).get("annotations", {}).get(
                TOKEN_REFRESHED_AT))
        return World(
            workload=seen.workload, vertex_missing=self._platform.vertex_missing(),
            runner_secret=self._config.vertex or
            self._caches.runner_secrets.get(RUNNER_SECRETS, namespace) is not None,
            integrations=inputs.integrations if inputs else False,
            s3_available=inputs.s3.available if inputs else False,
            s3_message=inputs.s3.message if inputs else "",
            bad_input=seen.bad, token_present=seen.token is not None or seen.token_made,
            token_refreshed_at=refreshed,
            inactivity_timeout=self._inactivity_timeout(session),
            run_fields={"executionKind": seen.start_env.kind.value,
                        **({"runtime": seen.runtime.id} if seen.runtime else {})},
            endpoint=_endpoint(namespace, name, seen.service),
            workload_noun=seen.start_env.noun)

    # reading ---------------------------------------------------------------------------------
    def _runtime(self, session: Mapping[str, Any]) -> tuple[Runtime | None, BadInput | None]:
        registry = self._caches.configmaps.get(REGISTRY_CONFIGMAP,
                                               self._options.registry_namespace)
        if registry is None:
            # Not a silent fall-back to a built-in runner: the registry names what may run.
            return None, BadInput("RegistryMissing", (
                f"ConfigMap {self._options.registry_namespace}/{REGISTRY_CONFIGMAP} not found: "
                "the agent registry says which runtimes exist; the session starts once it "
                "exists"))
        try:
            runtime = self._registry.lookup(registry, runtime_id(session))
        except RenderError as error:
            return None, BadInput(error.reason, error.message)
        environment = self._environments[runtime.execution_kind]
        if environment.requires is not None and not self._served(environment.requires):
            missing = environment.unavailable(runtime,
                                              recheck_after=self._options.kubevirt_recheck)
            return runtime, BadInput(missing.reason, missing.message,
                                     recheck_after=missing.recheck_after)
        return runtime, None

    def _observed_environment(self, status: Mapping[str, Any],
                              start_env: ExecutionEnvironment) -> ExecutionEnvironment:
        """The environment the current (or last) run used: recorded in status once it began,
        so a registry edit never moves a live session; sessions of upstream's operator, which
        records none, ran in Pods."""
        recorded = status.get("executionKind")
        if recorded in self._environments:
            return self._environments[ExecutionKind(recorded)]
        if status.get("phase") in (Phase.CREATING, Phase.RUNNING, Phase.STOPPING):
            return self._environments[ExecutionKind.POD]
        return start_env

    def _children(self, session: Mapping[str, Any],
                  environment: ExecutionEnvironment) -> Children:
        """The environment's children of the session that the cache holds: what it renders
        when the session owns it, what it observes (a VM's instance) when the workload owns
        it — or, with the workload gone, when it carries the session's label."""
        namespace, name = ch.meta(session)
        objects: dict[str, dict[str, Mapping[str, Any]]] = {}
        if environment.requires is not None and not self._served(environment.requires):
            return Children(objects)
        workload: Mapping[str, Any] | None = None
        for child in environment.owns:
            obj = self._client.get(child.resource, child.name(name), namespace)
            if obj is None or not self._belongs(obj, session, child.rendered, workload):
                continue
            objects.setdefault(child.resource.kind, {})[child.name(name)] = obj
            if child is environment.owns[0]:
                workload = obj
        return Children(objects)

    @staticmethod
    def _belongs(obj: Mapping[str, Any], session: Mapping[str, Any], rendered: bool,
                 workload: Mapping[str, Any] | None) -> bool:
        if rendered:
            return ch.owned_by(obj, str(session["metadata"].get("uid", "")))
        if workload is not None:
            return ch.owned_by(obj, str(workload["metadata"].get("uid", "")))
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return labels.get(SESSION_LABEL) == session["metadata"]["name"]

    def _observe(self, session: Mapping[str, Any], environment: ExecutionEnvironment,
                 children: Children, run: Hashable, now: dt.datetime) -> Observation:
        observation = environment.observe(session, children, now=now)
        workload = environment.owns[0]
        if not observation.exists and self._sync.pending(
                run, workload.resource.kind, workload.name(ch.meta(session)[1])):
            return Observation("starting")  # created a moment ago; the cache has not shown it
        return observation

    def _service(self, session: Mapping[str, Any]) -> Mapping[str, Any] | None:
        namespace, name = ch.meta(session)
        service = self._client.get(SERVICES, service_name(name), namespace)
        return service if self._ours(service, session) else None

    @staticmethod
    def _ours(obj: Mapping[str, Any] | None, session: Mapping[str, Any]) -> bool:
        """Owned by the session or by its workload (a Service is owned by the workload,
        whatever its kind: the workload is the one object named ``<n>-runner``)."""
        _, name = ch.meta(session)
        for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or ():
            if ref.get("uid") == session["metadata"].get("uid") or \
                    ref.get("name") == runner_name(name):
                return True
        return False

    def _inputs(self, session: Mapping[str, Any]) -> RunInputs:
        namespace, _ = ch.meta(session)
        config = self._config
        integrations = self._caches.integrations.get(INTEGRATION_SECRETS, namespace)
        minio = self._caches.minio.get(MINIO_CREDENTIALS, config.backend_namespace)
        ca = self._caches.trusted_ca.get(TRUSTED_CA_BUNDLE, namespace) or {}
        settings = self._caches.project_settings.get(PROJECT_SETTINGS_NAME, namespace) or {}
        templates = self._caches.configmaps.get(CLOUD_INIT_CONFIGMAP,
                                                self._options.registry_namespace) or {}
        copied = self._platform.present(namespace)
        return RunInputs(
            config=config, token_secret=tokens.default_names(session)[0],
            integrations=integrations is not None, copied=copied,
            mlflow_kubernetes_auth=MLFLOW_SECRET in copied
            and self._platform.mlflow_kubernetes_auth(namespace),
            s3=s3.resolve(integrations, minio, config),
            trusted_ca=TRUSTED_CA_KEY in (ca.get("data") or {})
            or TRUSTED_CA_KEY in (ca.get("binaryData") or {}),
            project_mcp=(settings.get("spec") or {}).get("mcpServers"),
            vertex_model_id=self._vertex_model_id(session),
            cloud_init_templates={str(k): str(v) for k, v in
                                  (templates.get("data") or {}).items()})

    def _vertex_model_id(self, session: Mapping[str, Any]) -> str:
        model = ((session.get("spec") or {}).get("llmSettings") or {}).get("model")
        if not isinstance(model, str) or not model:
            return ""
        manifest = self._caches.configmaps.get(MODELS_CONFIGMAP,
                                               self._options.registry_namespace)
        return models_vertex_id((manifest or {}).get("data", {}).get(MODELS_KEY), model)

    def _check(self, session: Mapping[str, Any], runtime: Runtime,
               environment: ExecutionEnvironment, inputs: RunInputs) -> BadInput | None:
        """Render the run once to find bad input before anything is created."""
        try:
            ch.check_names(session)
            ch.check_sizes(environment.render(session, runtime, inputs))
        except RenderError as error:
            return BadInput(error.reason, error.message)
        return None

    def _refusal(self, session: Mapping[str, Any], incarnation: tuple[str, str, str]
                 ) -> Started | None:
        """The refusal of this session's last start, while nothing the user controls (the
        spec, a new Start) changed since: not asked again."""
        refused = self._refused.get(incarnation)
        if refused is None:
            return None
        if refused[0] != _user_controls(session):
            del self._refused[incarnation]
            return None
        return refused[1]

    def _inactivity_timeout(self, session: Mapping[str, Any]) -> float:
        value = (session.get("spec") or {}).get("inactivityTimeout")
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        namespace, _ = ch.meta(session)
        settings = self._caches.project_settings.get(PROJECT_SETTINGS_NAME, namespace) or {}
        project = (settings.get("spec") or {}).get("inactivityTimeoutSeconds")
        if isinstance(project, int) and not isinstance(project, bool):
            return float(project)
        return float(self._config.default_inactivity_timeout)

    # acting ----------------------------------------------------------------------------------
    def _start(self, session: Mapping[str, Any], seen: Seen, inputs: RunInputs,
               now: dt.datetime) -> tuple[Started, dict[str, str]]:
        """Start a run: platform Secrets, the runner's token, the workload (and what the
        environment needs with it), its Service, the namespace's NetworkPolicy."""
        assert seen.runtime is not None
        runtime, environment, incarnation = seen.runtime, seen.start_env, seen.incarnation
        run = _run_key(incarnation, inputs.run_started)
        token, token_name, account = seen.token, seen.token_name, seen.account
        self._platform.copy(session)
        annotate: dict[str, str] = {}
        try:
            if token is None and not seen.token_made:
                annotate = tokens.provision(self._client, session, now=now)
                self._sync.expect(incarnation, "Secret", token_name)
            elif token is not None and _stale(token, now):
                tokens.refresh(self._client, session, secret_name=token_name, account=account,
                               now=now)
        except tokens.TokenError as error:
            return Started(failure=StartFailure("token", error.message, error.permanent)), {}
        resources = {child.resource.kind: child.resource for child in environment.owns}
        workload_kind = environment.owns[0].resource.kind
        workload: Mapping[str, Any] | None = None
        existed = False
        for obj in environment.render(session, runtime, inputs):
            resource = resources[obj["kind"]]
            try:
                created = self._sync.create(run, resource, obj,
                                            backend=environment.kind.value)
            except APIError as error:
                permanent = isinstance(error, Invalid) or error.code == 400
                return Started(failure=StartFailure("workload", error.message,
                                                    permanent=permanent)), annotate
            if created is None:
                actual = self._client.resource(resource).get(obj["metadata"]["name"],
                                                             obj["metadata"]["namespace"])
                if not ch.owned_by(actual, str(session["metadata"]["uid"])):
                    if ch.owned_by_predecessor(actual, session):  # going: try again
                        return Started(failure=StartFailure(
                            "workload", f"{obj['kind']} {obj['metadata']['name']} still "
                            "belongs to an earlier session of this name; waiting for garbage "
                            "collection to remove it", permanent=False)), annotate
                    return Started(failure=StartFailure(
                        "workload", f"{obj['kind']} {obj['metadata']['name']} already exists "
                        "and does not belong to this session; it is left alone",
                        permanent=True)), annotate
                created = actual
                existed = existed or obj["kind"] == workload_kind
                if obj["kind"] != workload_kind:
                    # Left over from the previous run (its workload was lost, not stopped):
                    # it becomes this run's (a VM's cloud-init says IS_RESUME now).
                    self._sync.converge(run, resource, obj, actual,
                                        backend=environment.kind.value)
            if obj["kind"] == workload_kind:
                workload = created
        if workload is not None:
            taken = self._ensure_service(session, workload, environment, runtime.port,
                                         incarnation)
            if taken is not None:
                # Nothing half-made: the run cannot be reached without its Service.
                self._sync.delete(resources[workload_kind], workload["metadata"]["name"],
                                  workload["metadata"]["namespace"],
                                  backend=environment.kind.value, propagation="Background",
                                  uid=str(workload["metadata"].get("uid", "")))
                self._sync.settle(run, workload_kind, workload["metadata"]["name"])
                return Started(failure=StartFailure("workload", taken, permanent=True,
                                                    reason="ServiceNameTaken")), annotate
        self._ensure_network_policy(session)
        return Started(existed=existed), annotate

    def _ensure_service(self, session: Mapping[str, Any], workload: Mapping[str, Any],
                        environment: ExecutionEnvironment, port: int,
                        incarnation: Hashable) -> str | None:
        """The run's Service, created or brought back; why not, when its name is taken by an
        object that is not the session's (left alone)."""
        desired = ch.service(session, workload, environment.owns[0].resource, port)
        namespace, name = ch.meta(session)
        key = _service_key(incarnation, desired)
        actual = self._client.get(SERVICES, service_name(name), namespace)
        try:
            if actual is None and not self._sync.pending(key, "Service", service_name(name)):
                if self._sync.create(key, SERVICES, desired,
                                     backend=environment.kind.value) is not None:
                    return None
                # Taken, and not in the cache (which holds only labelled Services).
                actual = self._client.resource(SERVICES).get(service_name(name), namespace)
            if actual is not None and not self._ours(actual, session):
                message = (f"Service {service_name(name)} already exists and does not belong "
                           "to this session; it is left alone (delete it or use another "
                           "session name)")
                return message
            self._sync.converge(key, SERVICES, desired, actual,
                                backend=environment.kind.value)
        except APIError as error:
            log.warning("could not create the session's Service",
                        extra={"service": service_name(name), "error": error.message})
            if tokens.transient(error):
                # Upstream only logs this; nothing else would bring a Running session back
                # here, and without the Service the backend cannot reach the runner: retry.
                raise
        return None

    def _ensure_network_policy(self, session: Mapping[str, Any]) -> None:
        """``runner-allow-backend-only`` in the session's namespace, created or brought back
        to its spec; one of that name that is not the operator's is left alone."""
        namespace, _ = ch.meta(session)
        if namespace in self._foreign_policies:
            return
        desired = ch.network_policy(namespace, self._config.backend_namespace)
        actual = self._caches.network_policies.get(NETWORK_POLICY_NAME, namespace)
        try:
            if actual is None:
                try:
                    self._client.create(NETWORK_POLICIES, desired)
                    return
                except AlreadyExists:
                    actual = self._client.resource(NETWORK_POLICIES).get(
                        NETWORK_POLICY_NAME, namespace)
                if ((actual.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY) \
                        != "operator":
                    self._foreign_policies.add(namespace)
                    log.warning("a NetworkPolicy of the operator's name exists and is not the "
                                "operator's; it is left as it is",
                                extra={"networkpolicy": f"{namespace}/{NETWORK_POLICY_NAME}"})
                    return
            if actual.get("spec") != desired["spec"]:
                self._client.patch(NETWORK_POLICIES, NETWORK_POLICY_NAME,
                                   {"metadata": {"labels": desired["metadata"]["labels"]},
                                    "spec": desired["spec"]}, namespace)
        except APIError as error:  # defence in depth only: the token is the primary control
            log.warning("could not ensure the runner NetworkPolicy",
                        extra={"namespace": namespace, "error": error.message})

    def _reconfigure(self, session: Mapping[str, Any], seen: Seen,
                     plan: live.Plan) -> tuple[live.Answers, float | None]:
        """Make the plan's runner calls; the answers, and when to ask again after a refusal
        (doubling per failure, never a storm)."""
        namespace, name = ch.meta(session)
        token = ch.secret_value(seen.token, AGUI_TOKEN_KEY)
        port = ch.service_port(seen.service)
        failed: str | None = None
        for call in plan.calls:
            error = self._runner.post(namespace, name, port, call, token)
            if error is not None and call.path == "/workflow":
                failed = error
        key = seen.incarnation
        if failed is None:
            self._runner_failures.pop(key, None)
            log.info("runner reconfigured", extra={"session": f"{namespace}/{name}",
                                                   "calls": [c.path for c in plan.calls]})
            return live.Answers(), None
        count = self._runner_failures[key] = self._runner_failures.get(key, 0) + 1
        return live.Answers(workflow_error=failed), min(
            self._options.runner_retry * 2 ** (count - 1), RUNNER_RETRY_MAX)

    def _act(self, session: Mapping[str, Any], step: Step, seen: Seen, backend: str,
             now: dt.datetime) -> None:
        if step.delete_workload:
            self._delete_run(session, seen, backend)
        if step.delete_copies:
            self._platform.release(session)
        if step.refresh_token and seen.token is not None:
            try:
                tokens.refresh(self._client, session, secret_name=seen.token_name,
                               account=seen.account, now=now)
            except tokens.TokenError as error:
                if not error.permanent:
                    raise
                self._events.record(session, "Warning", reason="TokenRefreshFailed",
                                    message=error.message)

    def _delete_run(self, session: Mapping[str, Any], seen: Seen, backend: str) -> None:
        """Delete the run's Service and what the environment rendered (the workload last,
        in the background, as upstream deletes the Pod). A child created a moment ago that
        the cache has not shown yet is read from the server and deleted if it is ours (by
        uid: never another's of that name), so a Stop right after a start does not wait."""
        environment, children = seen.observe_env, seen.children
        namespace, name = ch.meta(session)
        service = self._client.get(SERVICES, service_name(name), namespace)
        if service is not None and self._ours(service, session) and \
                not service["metadata"].get("deletionTimestamp"):
            self._sync.delete(SERVICES, service_name(name), namespace, backend=backend)
        for child in reversed(environment.owns):
            obj = children.get(child.resource.kind, child.name(name))
            if obj is None and child.rendered:
                obj = self._unseen(session, seen.run, child)
            if not child.rendered or obj is None or obj["metadata"].get("deletionTimestamp"):
                continue
            self._sync.delete(child.resource, child.name(name), namespace, backend=backend,
                              propagation="Background", uid=str(obj["metadata"].get("uid", "")))

    def _unseen(self, session: Mapping[str, Any], run: Hashable, child: Child
                ) -> Mapping[str, Any] | None:
        """The child this run created that the cache has not shown yet, read from the server
        (None when it is gone already, is not ours, or was not created by this run)."""
        namespace, name = ch.meta(session)
        kind, child_name = child.resource.kind, child.name(name)
        if not self._sync.pending(run, kind, child_name):
            return None
        try:
            obj = self._client.resource(child.resource).get(child_name, namespace)
        except NotFound:
            obj = None
        self._sync.settle(run, kind, child_name)  # read from the server: no longer awaited
        return obj if ch.owned_by(obj, str(session["metadata"].get("uid", ""))) else None

    def _converge_live(self, session: Mapping[str, Any], seen: Seen,
                       backend: str) -> tuple[str, ...]:
        """Keep a live run's children in shape; the spec differences held for the next run
        (nothing when the run's workload is going, or the run is on another environment than
        its runtime names now: a registry edit never moves a live run)."""
        runtime, inputs, environment = seen.runtime, seen.inputs, seen.observe_env
        children, incarnation, run = seen.children, seen.incarnation, seen.run
        if (runtime is None or inputs is None or environment.kind != seen.start_env.kind
                or not seen.workload.exists or seen.workload.terminating):
            return ()
        _, name = ch.meta(session)
        workload = children.get(environment.owns[0].resource.kind, runner_name(name))
        if workload is None:
            return ()
        # Rendered as the run was made: its start and whether it resumed are on the workload.
        made = (workload.get("metadata") or {}).get("annotations") or {}
        live_inputs = replace(inputs, is_resume=made.get(RESUME_ANNOTATION) == "true",
                       run_started=str(made.get(RUN_ANNOTATION) or
                                       (session.get("status") or {}).get("startTime", "")))
        try:
            desired = environment.render(session, runtime, live_inputs)
        except RenderError:
            return ()  # the next run reports it; this one is left as it is
        # The repos and the workflow change live (the runner is asked): not a new run's.
        desired = [live.without_live_env(obj) for obj in desired]
        resources = {child.resource.kind: child.resource for child in environment.owns}
        held: list[str] = []
        for obj in desired:
            actual = children.get(obj["kind"], obj["metadata"]["name"])
            # Only the workload's spec waits for the next run; the rest (a VM's cloud-init
            # Secret, read again when the guest reboots) is brought back as it must be.
            held += self._sync.converge(run, resources[obj["kind"]], obj, actual,
                                        backend=backend,
                                        live=obj["kind"] == environment.owns[0].resource.kind)
        taken = self._ensure_service(session, workload, environment,
                                     ch.agui_port(workload) or runtime.port, incarnation)
        if taken is not None:  # ours went while the run lasts, and another took the name
            self._events.record(session, "Warning", reason="ServiceNameTaken", message=taken)
        return tuple(held)

    def _outcome(self, session: Mapping[str, Any], step: Step) -> Result:
        if step.permanent is not None:
            if step.permanent.recheck_after is not None:
                return Result(requeue_after=step.permanent.recheck_after)
            if _said(session, step):
                return Result()  # said already (one log line, one Event): nothing new
            raise TerminalError(f"{step.permanent.reason}: {step.permanent.message}")
        if step.retry:
            raise StartRetry(str((find(step.status, "Ready") or {}).get("message", "")))
        if step.again:
            return Result(requeue_after=STALE_RECHECK)
        if step.requeue_after is not None:
            return Result(requeue_after=max(step.requeue_after, 0.5))
        return Result()


def _token_annotations(session: Mapping[str, Any], secret: str,
                       account: str) -> dict[str, str]:
    """``runner-token-secret`` and ``runner-sa`` where the session lacks them."""
    annotations = (session.get("metadata") or {}).get("annotations") or {}
    return {key: value for key, value in ((RUNNER_TOKEN_SECRET, secret), (RUNNER_SA, account))
            if not annotations.get(key)}


def _may_start(session: Mapping[str, Any], workload: Observation) -> bool:
    """Whether this pass may start a run (so bad input matters): the session is new or
    Pending, asks to be started again, or its live workload is gone."""
    status = session.get("status") or {}
    annotations = (session.get("metadata") or {}).get("annotations") or {}
    return (status.get("phase") in (None, "", Phase.PENDING.value)
            or str(annotations.get(DESIRED_PHASE, "")).strip() == Phase.RUNNING.value
            or not workload.exists)


def _winding_down(session: Mapping[str, Any]) -> bool:
    """A namespace that is no longer managed starts nothing (upstream skips it); a run that
    is on there — live, with the ``startTime`` a start writes — is still looked after until
    it ends: stopped when asked (upstream ignored the Stop), its token refreshed, its end
    noticed. A session whose status merely says so (no run was started) is left alone."""
    status = session.get("status") or {}
    return status.get("phase") in (Phase.CREATING, Phase.RUNNING, Phase.STOPPING) and bool(
        status.get("startTime"))


def _said(session: Mapping[str, Any], step: Step) -> bool:
    """Whether ``step`` refuses the run exactly as the stored status says already."""
    if step.permanent is None:
        return False
    shown = find(session.get("status") or {}, "Ready")
    return shown is not None and shown == find(step.status, "Ready")


def _user_controls(session: Mapping[str, Any]) -> Hashable:
    """What a user changes to ask for another try: the spec (generation) or a new Start."""
    meta = session.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return (meta.get("generation"), annotations.get(START_REQUESTED_AT),
            annotations.get(DESIRED_PHASE))


def _run_key(incarnation: tuple[str, str, str], started: str) -> tuple[str, str, str, str]:
    return (*incarnation, started)


def _service_key(incarnation: Hashable, service: Mapping[str, Any]) -> Hashable:
    """The Service's creation is expected per workload it belongs to: one made for a workload
    that went meanwhile (garbage-collected with it, maybe before the cache showed it) is no
    reason for the next workload's to wait."""
    refs = (service.get("metadata") or {}).get("ownerReferences") or ()
    return incarnation, next((str(r.get("uid")) for r in refs if r.get("controller")), "")


def _stale(token: Mapping[str, Any], now: dt.datetime) -> bool:
    refreshed = parse_time(((token.get("metadata") or {}).get("annotations") or {}).get(
        TOKEN_REFRESHED_AT))
    return refreshed is None or now - refreshed >= dt.timedelta(minutes=45)


def _endpoint(namespace: str, name: str, service: Mapping[str, Any] | None) -> str:
    """The runner's address as the backend dials it (``session-<n>.<ns>.svc...``)."""
    if service is None:
        return ""
    return (f"http://{service_name(name)}.{namespace}.svc.cluster.local:"
            f"{ch.service_port(service)}")
