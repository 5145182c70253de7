"""The ExecutionEnvironment protocol (ADR-0008): how a session's runner runs, as pure functions.

An environment owns the *workload* of a run (a Pod, a VirtualMachine) and any objects only it
needs (a VM's cloud-init Secret); it says which kinds those are (:attr:`owns`), renders them
(``render``) and reads what the cache holds of them back into an :class:`Observation`
(``observe``). Everything a session has whatever its environment — the token Secret, the
runner's ServiceAccount and RBAC, the Service, the NetworkPolicy — is rendered by
:mod:`.children`; the phase machine (:mod:`.phase`) and the reconciler name no environment,
so a third one is a new module and one entry in the wiring.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Protocol

from informers.resource import Resource

from .config import OperatorConfig
from .resources import ExecutionKind

Obj = dict[str, Any]


# the registry's view of a runtime ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sandbox:
    """``sandbox`` of a registry entry. ``found=False`` stands for "no registry entry": then
    the workspace, the init container and the state-sync sidecar are all included."""

    found: bool = False
    state_dir: str = ""
    state_sync_image: str = ""
    persistence: str = ""
    workspace_size: str = ""
    termination_grace_period: int = 0
    clone_repos: bool = False
    hydrate_state: bool = False

    @property
    def needs_init(self) -> bool:
        return not self.found or self.clone_repos or self.hydrate_state

    @property
    def needs_sidecar(self) -> bool:
        return not self.found or self.persistence != "none"

    @property
    def needs_workspace(self) -> bool:
        # Upstream includes the workspace for persistence or cloning; the init container and
        # the sidecar mount it too, so it is there whenever one of them is (else: 422).
        return (not self.found or self.persistence != "none" or self.clone_repos
                or self.needs_init or self.needs_sidecar)


@dataclass(frozen=True, slots=True)
class VMConfig:
    """``vmConfig`` of a ``kubevirt-vm`` entry (ADR-0008)."""

    container_disk_image: str
    cpu: int = 2
    memory: str = "4Gi"
    cloud_init_template: str = ""


@dataclass(frozen=True, slots=True)
class Runtime:
    """One validated agent registry entry (or the built-in default)."""

    id: str
    image: str = ""
    """Empty: the operator's ``AMBIENT_CODE_RUNNER_IMAGE``."""
    display_name: str = ""
    port: int = 8001
    env: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Overrides of the runner's requests/limits (``cpu``, ``memory``)."""
    sandbox: Sandbox = field(default_factory=Sandbox)
    execution_kind: ExecutionKind = ExecutionKind.POD
    vm: VMConfig | None = None


# what a render needs besides the session and its runtime -----------------------------------
@dataclass(frozen=True, slots=True)
class S3Settings:
    """Where init-hydrate and state-sync keep the session's state (contract §4.14)."""

    endpoint: str = ""
    bucket: str = ""
    access_key: str = ""
    secret_key: str = ""
    key_ref: tuple[str, str, str] | None = None
    """(secret, access key's key, secret key's key) when the credentials live in a Secret of
    the session's namespace: referenced, not copied into the workload."""
    available: bool = False
    message: str = ""


@dataclass(frozen=True, slots=True)
class RunInputs:
    """Facts about the cluster a workload is rendered from, gathered by the reconciler."""

    config: OperatorConfig = field(default_factory=OperatorConfig)
    token_secret: str = ""
    """The runner token Secret's name (the session's annotation may override the default)."""
    is_resume: bool = False
    run_started: str = ""
    """The run's ``status.startTime``, recorded on the workload (:data:`RUN_ANNOTATION`)."""
    integrations: bool = False
    """``ambient-non-vertex-integrations`` exists in the session's namespace."""
    copied: frozenset[str] = frozenset()
    """Platform Secrets present in the session's namespace (vertex, Langfuse, MLflow)."""
    mlflow_kubernetes_auth: bool = False
    s3: S3Settings = field(default_factory=S3Settings)
    trusted_ca: bool = False
    project_mcp: Mapping[str, Any] | None = None
    vertex_model_id: str = ""
    cloud_init_templates: Mapping[str, str] = field(default_factory=dict)
    """Named templates from the ``ambient-cloud-init-templates`` ConfigMap."""


# what the cache holds ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Children:
    """A session's children as the cache holds them: by kind, then by name."""

    objects: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)

    def get(self, kind: str, name: str) -> Mapping[str, Any] | None:
        return (self.objects.get(kind) or {}).get(name)

    def of(self, kind: str) -> Iterator[Mapping[str, Any]]:
        yield from (self.objects.get(kind) or {}).values()

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        for by_name in self.objects.values():
            yield from by_name.values()


@dataclass(frozen=True, slots=True)
class Child:
    """A kind an environment owns, and the name its object has for a session."""

    resource: Resource
    name: Callable[[str], str]
    rendered: bool = True
    """False for what the environment only observes (a VM's instance, made by KubeVirt)."""


RunnerState = Literal["absent", "starting", "running", "succeeded", "failed", "lost"]


@dataclass(frozen=True, slots=True)
class Observation:
    """The workload as the session's status should show it.

    ``state``: ``absent`` (no workload object), ``starting`` (it exists; the runner has not
    started), ``running``, ``succeeded``/``failed`` (the runner or the workload ended, with
    ``reason`` and ``message`` as the session's Ready condition shows them), ``lost`` (the
    workload is there but will not run again: evicted, stopped by someone else; it is to be
    replaced and the session resumed). ``terminating``: the object is being deleted.
    ``scheduled`` is the PodScheduled condition to show (None: nothing to say yet).
    """

    state: RunnerState = "absent"
    terminating: bool = False
    ready: bool = False
    """The runner answers (the Pod's, or the VM instance's, readiness probe on /health)."""
    reason: str = ""
    message: str = ""
    scheduled: Mapping[str, str] | None = None
    run_started: str | None = None
    """The ``startTime`` of the run the workload was made for (its annotation); None for a
    workload without one (made by upstream's operator before a swap: adopted)."""

    @property
    def exists(self) -> bool:
        return self.state != "absent"


class RenderError(ValueError):
    """The session, its runtime or the cluster cannot produce valid children (bad input):
    ``reason`` is a CamelCase condition reason, the message says which field and why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class BackendUnavailable(RenderError):
    """The cluster cannot run this environment now (KubeVirt not installed): not the
    session's fault, and no edit of it fixes it — look again after ``recheck_after`` s."""

    def __init__(self, reason: str, message: str, *, recheck_after: float) -> None:
        super().__init__(reason, message)
        self.recheck_after = recheck_after


class ExecutionEnvironment(Protocol):
    """A backend a session can run on. ``render`` and ``observe`` are pure."""

    kind: ExecutionKind
    noun: str
    """How messages name the workload ("pod", "VirtualMachine")."""
    owns: Sequence[Child]
    """The workload first, then what else the environment renders or observes."""
    requires: Resource | None
    """An API the cluster must serve for this environment (None: always available)."""

    def unavailable(self, runtime: Runtime, *, recheck_after: float) -> BackendUnavailable:
        """The error to report while :attr:`requires` is not served."""
        ...

    def render(self, session: Mapping[str, Any], runtime: Runtime,
               inputs: RunInputs) -> list[Obj]:
        """The workload and the environment's own objects; raises :class:`RenderError`."""
        ...

    def observe(self, session: Mapping[str, Any], children: Children, *,
                now: dt.datetime) -> Observation:
        ...


def workload_of(environment: ExecutionEnvironment) -> Child:
    return environment.owns[0]


_SERVER_BOOKKEEPING = frozenset({"resourceVersion", "generation", "managedFields"})


def update_worth_a_pass(old: Mapping[str, Any], new: Mapping[str, Any],
                        reads: Callable[[Mapping[str, Any]], object]) -> bool:
    """Whether an update of an object a pass observes — a run's workload, a VM's instance —
    can change what the pass over its session does: its metadata (labels, annotations, owners,
    deletion: what tells whose it is and which run) or its spec (what the live converge
    compares) changed, or what the pass reads of its status (``reads``, compared by value).
    Its owner's other status writes are not: a Pod's IP, a guest agent's report. Malformed
    states pass (the pass says what is wrong with them)."""
    try:
        return (old.get("spec") != new.get("spec")
                or _metadata(old) != _metadata(new) or reads(old) != reads(new))
    except Exception:  # an event filter must not fail: the pass will judge
        return True


def update_is_progress(old: Mapping[str, Any], new: Mapping[str, Any],
                       reads: Callable[[Mapping[str, Any]], Observation], *,
                       placed: str = "") -> bool:
    """Whether an update of a run's workload that is worth a pass is only progress, which the
    session may see a moment later (its source's ``Batch``): it was placed on a node (its spec
    gained ``placed``, a ``scheduled`` observation turned True) or its readiness moved, and
    nothing else of what a pass reads changed. Anything else — another state, a failure, a
    node that will not take it, its metadata or the rest of its spec — is news; so is a
    malformed state (the pass says what is wrong with it)."""
    try:
        if _metadata(old) != _metadata(new) or _spec(old, placed) != _spec(new, placed):
            return False
        before, after = reads(old), reads(new)
        scheduled = after.scheduled
        if scheduled != before.scheduled and (scheduled or {}).get("status") != "True":
            return False
        return all(getattr(before, name) == getattr(after, name) for name in _NOT_PROGRESS)
    except Exception:  # an event filter must not fail: the pass will judge, at once
        return False


_NOT_PROGRESS = tuple(f.name for f in fields(Observation) if f.name not in ("scheduled", "ready"))
"""What of an observation is news when it moves (a predicate's, on every update: compared
field by field, where two ``replace`` calls cost ~8 us)."""


def _spec(obj: Mapping[str, Any], placed: str) -> object:
    spec = obj.get("spec")
    if not placed or not isinstance(spec, Mapping):
        return spec
    return {k: v for k, v in spec.items() if k != placed}


def _metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    return {k: v for k, v in meta.items() if k not in _SERVER_BOOKKEEPING}
