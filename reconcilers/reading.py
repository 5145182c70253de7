"""What one pass of the session reconciler reads: the runtime the agent registry names, the
environments of the new and of the current run, the session's children in the caches and its
workload's observation, the inputs a run is rendered from, the runner's token Secret and the
Service — all from caches, nothing written to the cluster (:class:`SessionReader`, :class:`Seen`;
what it sees is also told to the expectations of :class:`~.sync.ChildSync`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ambient_ctrl.client import Client, ScopedCache
from informers.resource import SECRETS, SERVICES, Resource

from . import children as ch
from . import s3, tokens
from .config import OperatorConfig, OperatorOptions
from .environment import (
    Children,
    ExecutionEnvironment,
    Observation,
    RenderError,
    RunInputs,
    Runtime,
)
from .models import models_vertex_id
from .phasetypes import BadInput
from .platform_secrets import PlatformSecrets
from .registry import RegistryCache, runtime_id
from .resources import (
    CLOUD_INIT_CONFIGMAP,
    DESIRED_PHASE,
    INTEGRATION_SECRETS,
    MINIO_CREDENTIALS,
    MLFLOW_SECRET,
    MODELS_CONFIGMAP,
    MODELS_KEY,
    PROJECT_SETTINGS_NAME,
    REGISTRY_CONFIGMAP,
    SESSION_LABEL,
    TRUSTED_CA_BUNDLE,
    TRUSTED_CA_KEY,
    ExecutionKind,
    Phase,
    runner_name,
    service_name,
)
from .runner_env import is_resume
from .status import now_text
from .sync import ChildSync


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
    rendered: Rendered | None = None
    """The check's render, for a start with the same inputs to reuse (None: no check)."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A run rendered once in a pass: the inputs and what they gave (never mutated)."""

    inputs: RunInputs
    objects: tuple[Mapping[str, Any], ...]

    def objects_for(self, inputs: RunInputs) -> tuple[Mapping[str, Any], ...] | None:
        return self.objects if inputs == self.inputs else None


class SessionReader:
    """Reads what a pass needs from the caches (thread-safe: it keeps no state of its own)."""

    def __init__(self, client: Client, *,
                 environments: Mapping[ExecutionKind, ExecutionEnvironment], caches: Caches,
                 platform: PlatformSecrets, registry: RegistryCache, sync: ChildSync,
                 served: Callable[[Resource], bool], config: OperatorConfig,
                 options: OperatorOptions) -> None:
        self._client = client
        self._environments = environments
        self._caches = caches
        self._platform = platform
        self._registry = registry
        self._sync = sync
        self._served = served
        self._config = config
        self._options = options

    def see(self, session: Mapping[str, Any], now: dt.datetime) -> Seen:
        """Everything this pass reads (from the caches)."""
        meta = session["metadata"]
        namespace, name = str(meta["namespace"]), str(meta["name"])
        incarnation = (namespace, name, str(meta.get("uid", "")))
        run = run_key(incarnation, str((session.get("status") or {}).get("startTime", "")))
        runtime, bad = self._runtime(session)
        start_env = self._environments[runtime.execution_kind if runtime else ExecutionKind.POD]
        observe_env = self._observed_environment(session.get("status") or {}, start_env)
        children = self._children(session, observe_env)
        self._sync.observed(run, children)
        workload = self._observe(session, observe_env, children, run, now)
        inputs = self._inputs(session) if runtime is not None else None
        rendered: Rendered | None = None
        if bad is None and runtime is not None and inputs is not None \
                and _may_start(session, workload):
            bad, rendered = self._check(session, runtime, start_env,
                                        _start_inputs(session, inputs, now))
        token_name, account = tokens.default_names(session)
        token = self._client.get(SECRETS, token_name, namespace)
        token = token if ch.owned_by(token, incarnation[2]) else None
        service = self._service(session)
        # Seen now, so no longer "created a moment ago" (neither is an environment's child).
        if token is not None:
            self._sync.observed(incarnation, Children({"Secret": {token_name: token}}))
        if service is not None:
            self._sync.observed(service_key(incarnation, service),
                                Children({"Service": {service_name(name): service}}))
        return Seen(incarnation=incarnation, run=run, runtime=runtime, bad=bad, start_env=start_env,
                    observe_env=observe_env, children=children, workload=workload,
                    inputs=inputs, token=token, token_name=token_name, account=account,
                    token_made=token is None and self._sync.pending(incarnation, "Secret",
                                                                    token_name),
                    service=service, rendered=rendered)

    def inactivity_timeout(self, session: Mapping[str, Any]) -> float:
        value = (session.get("spec") or {}).get("inactivityTimeout")
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        namespace, _ = ch.meta(session)
        settings = self._caches.project_settings.get(PROJECT_SETTINGS_NAME, namespace) or {}
        project = (settings.get("spec") or {}).get("inactivityTimeoutSeconds")
        if isinstance(project, int) and not isinstance(project, bool):
            return float(project)
        return float(self._config.default_inactivity_timeout)

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
        if isinstance(recorded, str) and recorded in self._environments:
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
        return service if ours(service, session) else None

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

    @staticmethod
    def _check(session: Mapping[str, Any], runtime: Runtime,
               environment: ExecutionEnvironment, inputs: RunInputs
               ) -> tuple[BadInput | None, Rendered | None]:
        """Render the run once to find bad input before anything is created; the render,
        for the start to reuse."""
        try:
            ch.check_names(session)
            objects = tuple(environment.render(session, runtime, inputs))
            ch.check_sizes(objects)
        except RenderError as error:
            return BadInput(error.reason, error.message), None
        return None, Rendered(inputs, objects)


def _start_inputs(session: Mapping[str, Any], inputs: RunInputs,
                  now: dt.datetime) -> RunInputs:
    """The inputs a start in this pass will most likely render with: the recorded run, or
    one beginning now (the phase machine's ``startTime`` of a first run). A guess only for
    reuse: a start with other inputs renders again."""
    started = str((session.get("status") or {}).get("startTime") or now_text(now))
    return replace(inputs, is_resume=is_resume(session), run_started=started)


def ours(obj: Mapping[str, Any] | None, session: Mapping[str, Any]) -> bool:
    """Owned by the session or by its workload (a Service is owned by the workload,
    whatever its kind: the workload is the one object named ``<n>-runner``)."""
    _, name = ch.meta(session)
    for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("uid") == session["metadata"].get("uid") or \
                ref.get("name") == runner_name(name):
            return True
    return False


def _may_start(session: Mapping[str, Any], workload: Observation) -> bool:
    """Whether this pass may start a run (so bad input matters): the session is new or
    Pending, asks to be started again, or its live workload is gone."""
    status = session.get("status") or {}
    annotations = (session.get("metadata") or {}).get("annotations") or {}
    return (status.get("phase") in (None, "", Phase.PENDING.value)
            or str(annotations.get(DESIRED_PHASE, "")).strip() == Phase.RUNNING.value
            or not workload.exists)


def run_key(incarnation: tuple[str, str, str], started: str) -> tuple[str, str, str, str]:
    return (*incarnation, started)


def service_key(incarnation: Hashable, service: Mapping[str, Any]) -> Hashable:
    """The Service's creation is expected per workload it belongs to: one made for a workload
    that went meanwhile (garbage-collected with it, maybe before the cache showed it) is no
    reason for the next workload's to wait."""
    refs = (service.get("metadata") or {}).get("ownerReferences") or ()
    return incarnation, next((str(r.get("uid")) for r in refs if r.get("controller")), "")
