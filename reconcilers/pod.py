"""Sessions that run in a Pod: the runner Pod as upstream's operator renders it, and what its
status means for the session.

``render`` returns the ``<n>-runner`` Pod (``shared/UPSTREAM-CONTRACT.md`` §4.2-4.6):
``restartPolicy: Never``, the ``ambient-code-runner`` container with upstream's env, envFrom,
probes, postStart hook, resources (500m/512Mi → 2/8Gi unless the registry says otherwise) and
mounts; ``init-hydrate`` and ``state-sync`` as the registry entry's ``sandbox`` asks; the
workspace emptyDir, the runner token file at ``/var/run/secrets/ambient/bot-token``, the Vertex
credentials and the cluster's CA bundle when present. Hardening beyond upstream's (no
privilege escalation, every capability dropped): the runner runs as non-root and every
container under the RuntimeDefault seccomp profile; the runner image (``USER 1001``) allows
both.

``observe`` follows upstream's reading of the Pod (§3.2, Creating), first match wins:

=================================================  ===========  ==============================
Pod                                                state        reason (message)
=================================================  ===========  ==============================
absent                                             absent
being deleted                                      starting,    (the run ends when it is gone)
                                                   terminating
phase Succeeded                                    succeeded    Completed (Session finished)
phase Failed, evicted or preempted by the node     lost         (replaced; the session resumes)
phase Failed                                       failed       PodFailed (what failed, as
                                                                upstream collects it)
runner running                                     running      ContainerRunning
runner waiting: ImagePullBackOff, ErrImagePull,    failed       the waiting reason (Runner
CrashLoopBackOff, CreateContainerConfigError,                   waiting: reason - message)
InvalidImageName
runner exited 0                                    succeeded    Completed (Runner finished)
runner exited 2                                    failed       PrerequisiteFailed
runner exited otherwise                            failed       RunnerExit (Runner exited with
                                                                code N: reason - message)
otherwise                                          starting
=================================================  ===========  ==============================

``scheduled`` is ``PodScheduled`` True (``Scheduled on <node>``) once the Pod has a node, else
the Pod's own ``PodScheduled=False`` condition (``Unschedulable`` and the scheduler's message).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from ambient_ctrl.handler import Batch
from ambient_ctrl.predicate import Funcs
from informers.resource import PODS, Resource

from .children import meta, session_owner
from .environment import (
    BackendUnavailable,
    Child,
    Children,
    Obj,
    Observation,
    RenderError,
    RunInputs,
    Runtime,
    update_is_progress,
    update_worth_a_pass,
)
from .registry import quantity
from .resources import (
    AGUI_PORT_NAME,
    INTEGRATION_SECRETS,
    K8S_TOKEN_KEY,
    RESUME_ANNOTATION,
    RUN_ANNOTATION,
    RUNNER_CONTAINER,
    RUNNER_SECRETS,
    TRUSTED_CA_BUNDLE,
    TRUSTED_CA_KEY,
    VERTEX_SECRET,
    ExecutionKind,
    runner_name,
    selector_labels,
    service_account_name,
)
from .runner_env import init_env, runner_env, sidecar_env

HEALTH_PATH = "/health"
DEFAULT_STATE_DIR = ".claude"
DEFAULT_WORKSPACE_SIZE = "10Gi"
DEFAULT_GRACE_SECONDS = 60
TOKEN_MOUNT_DIR = "/var/run/secrets/ambient"
BOT_TOKEN_FILE = "bot-token"
DEFAULT_RESOURCES = {"requests": {"cpu": "500m", "memory": "512Mi"},
                     "limits": {"cpu": "2000m", "memory": "8Gi"}}
SIDECAR_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"},
                     "limits": {"cpu": "1000m", "memory": "1Gi"}}
POST_START = ("mkdir -p /workspace/.google_workspace_mcp/credentials && "
              "cp -f /app/.google_workspace_mcp/credentials/* "
              "/workspace/.google_workspace_mcp/credentials/ 2>/dev/null || true")
FATAL_WAITING = frozenset({"ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff",
                           "CreateContainerConfigError", "InvalidImageName"})
LOST_REASONS = frozenset({"Evicted", "Preempting", "NodeLost", "Terminated", "Shutdown",
                          "NodeShutdown"})
"""Pod-level reasons of a Failed pod the runner did not cause: the node took it away."""


class PodEnvironment:
    """The Pod backend. Stateless; ``render`` and ``observe`` are pure."""

    kind: ExecutionKind = ExecutionKind.POD
    noun = "pod"
    owns: Sequence[Child] = (Child(PODS, runner_name),)
    requires: Resource | None = None

    def unavailable(self, runtime: Runtime, *, recheck_after: float) -> BackendUnavailable:
        raise AssertionError("Pods are always available")

    def render(self, session: Mapping[str, Any], runtime: Runtime,
               inputs: RunInputs) -> list[Obj]:
        return [runner_pod(session, runtime, inputs)]

    def observe(self, session: Mapping[str, Any], children: Children, *,
                now: dt.datetime) -> Observation:
        _, name = meta(session)
        pod = children.get("Pod", runner_name(name))
        if pod is None:
            return Observation()
        return replace(_observe(pod), run_started=run_of(pod))


def _observe(pod: Mapping[str, Any], *, readiness: bool = True) -> Observation:
    """The Pod as the session's status shows it (without ``readiness``: never ready)."""
    scheduled = scheduled_condition(pod)
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return Observation("starting", terminating=True, scheduled=scheduled)
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase == "Succeeded":
        return Observation("succeeded", reason="Completed", message="Session finished",
                           scheduled=scheduled)
    if phase == "Failed":
        if status.get("reason") in LOST_REASONS:
            return Observation("lost", reason=str(status["reason"]),
                               message=str(status.get("message") or ""), scheduled=scheduled)
        return Observation("failed", reason="PodFailed", message=pod_error_message(pod),
                           scheduled=scheduled)
    return _runner(container_status(pod, RUNNER_CONTAINER), scheduled,
                   ready=readiness and _ready(pod))


def worth_a_pass(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a runner Pod's update can change what a pass over its session does
    (:func:`~.environment.update_worth_a_pass`, with what the session's status shows of the
    Pod: :func:`_observe`, less its readiness). The kubelet's other status writes are not: the
    sandbox's IP, a sidecar ready while the Pod is not, the timestamps of a container started;
    nor is the Pod turning Ready, which only a live reconfiguration waits for, and that wait
    looks again by itself (``phase.READY_RECHECK``)."""
    return update_worth_a_pass(old, new, _observe_but_readiness)


def _observe_but_readiness(pod: Mapping[str, Any]) -> Observation:
    return _observe(pod, readiness=False)  # not replace(): a predicate's, on every update


RUNNER_POD_CHANGED = Funcs(on_update=worth_a_pass, inline=True)
"""The predicate of the session controller's watch of runner Pods (:func:`worth_a_pass`): at
100 sessions/s two of each Pod's five kubelet writes woke its session for nothing."""


def news(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a runner Pod's update (one worth a pass) is news its session must see at once:
    all but the Pod being scheduled (``spec.nodeName``, ``PodScheduled`` True:
    :func:`~.environment.update_is_progress`), which changes no phase and whose detail waits
    for the session's next status write anyway (``status.DETAIL_BATCH``)."""
    return not update_is_progress(old, new, _observe, placed="nodeName")


RUNNER_POD_BATCH = Batch(period=1.0, urgent=news)
"""How the session controller's watch of runner Pods batches their progress (kube's Job
controller batches its Pods' updates by 1 s too). At 100 sessions/s a Pod was bound ~0.05 s
after its create, and that woke its session for a pass that wrote nothing (in 771 of 1,000
sessions; ``bench/latency_trace.py``); batched, the binding rides along with the pass of the
runner's start, a few tenths of a second later, or comes after a second."""


def _ready(pod: Mapping[str, Any]) -> bool:
    return any(isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


# render ------------------------------------------------------------------------------------------
def runner_pod(session: Mapping[str, Any], runtime: Runtime, inputs: RunInputs) -> Obj:
    _, name = meta(session)
    config = inputs.config
    sandbox = runtime.sandbox
    state_dir = state_directory(session, runtime)
    workspace_mounts = [{"name": "workspace", "mountPath": "/workspace"},
                        {"name": "workspace", "mountPath": f"/app/{state_dir}",
                         "subPath": state_dir}]
    state_sync_image = sandbox.state_sync_image or config.state_sync_image
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": sandbox.termination_grace_period or
        DEFAULT_GRACE_SECONDS,
    }
    mlflow_sa = inputs.mlflow_kubernetes_auth
    if mlflow_sa:
        spec["serviceAccountName"] = service_account_name(name)
    spec["automountServiceAccountToken"] = mlflow_sa
    security: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if config.pod_fs_group is not None:
        security.update(fsGroup=config.pod_fs_group, fsGroupChangePolicy="OnRootMismatch")
    spec["securityContext"] = security
    volumes: list[dict[str, Any]] = []
    if sandbox.needs_workspace:
        volumes.append({"name": "workspace", "emptyDir": {"sizeLimit": workspace_size(runtime)}})
    runner = _runner_container(session, runtime, inputs,
                               workspace_mounts if sandbox.needs_workspace else [])
    if VERTEX_SECRET in inputs.copied:
        volumes.append({"name": "vertex", "secret": {"secretName": VERTEX_SECRET}})
        runner["volumeMounts"].append({"name": "vertex", "mountPath": "/app/vertex",
                                       "readOnly": True})
    if inputs.trusted_ca:
        volumes.append({"name": "trusted-ca-bundle",
                        "configMap": {"name": TRUSTED_CA_BUNDLE}})
        runner["volumeMounts"].append({"name": "trusted-ca-bundle",
                                       "mountPath": "/etc/pki/tls/certs/ca-bundle.crt",
                                       "subPath": TRUSTED_CA_KEY, "readOnly": True})
    volumes.append({"name": "runner-token", "secret": {
        "secretName": inputs.token_secret,
        "items": [{"key": K8S_TOKEN_KEY, "path": BOT_TOKEN_FILE}]}})
    runner["volumeMounts"].append({"name": "runner-token", "mountPath": TOKEN_MOUNT_DIR,
                                   "readOnly": True})
    spec["volumes"] = volumes
    if sandbox.needs_init:
        spec["initContainers"] = [{
            "name": "init-hydrate", "image": state_sync_image,
            "imagePullPolicy": config.image_pull_policy,
            "command": ["/usr/local/bin/hydrate.sh"], "securityContext": _locked_down(),
            "env": init_env(session, inputs), "volumeMounts": workspace_mounts}]
    containers = [runner]
    if sandbox.needs_sidecar:
        containers.append({
            "name": "state-sync", "image": state_sync_image,
            "imagePullPolicy": config.image_pull_policy,
            "command": ["/usr/local/bin/sync.sh"], "securityContext": _locked_down(),
            "env": sidecar_env(session, runtime, inputs), "volumeMounts": workspace_mounts,
            "resources": SIDECAR_RESOURCES})
    spec["containers"] = containers
    check_env_names(spec)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": workload_meta(session, inputs), "spec": spec}


_NAME_CHARS = r"[\x20-\x3c\x3e-\x7e]+"
_ENV_NAME = re.compile(_NAME_CHARS)
"""A name a Pod's environment variable may have: printable ASCII (space to ``~``) but ``=``
(one regular expression: a character-by-character check was ~1 % of a burst's CPU)."""
_ENV_NAMES = re.compile(rf"{_NAME_CHARS}(?:\n{_NAME_CHARS})*")
"""Names of :data:`_ENV_NAME` joined by newlines (which no such name holds, and which a name
of its own must not smuggle in): a container's names in one match, not one call each (about
50 per runner Pod)."""


def check_env_names(spec: Mapping[str, Any]) -> None:
    """Refuse, before anything is created, an environment variable name the API server would
    refuse in a Pod (empty, or not only printable ASCII characters other than ``=``), e.g.
    from the session's environmentVariables: RenderError ``InvalidEnvName``."""
    for container in (*spec.get("initContainers", ()), *spec["containers"]):
        names = [var["name"] for var in container.get("env") or ()]
        joined = "\n".join(names)
        if not names or (joined.count("\n") == len(names) - 1  # no newline of a name's own
                         and _ENV_NAMES.fullmatch(joined)):
            continue
        name = next(n for n in names if not _ENV_NAME.fullmatch(n))
        raise RenderError("InvalidEnvName", f"environment variable {name!r} of "
                          f"container {container['name']} cannot be set in a Pod: "
                          "a name must be printable ASCII characters other than '='")


def workload_meta(session: Mapping[str, Any], inputs: RunInputs) -> dict[str, Any]:
    """The workload's metadata: ``<n>-runner``, the selector labels, the session as owner and
    the run it belongs to."""
    namespace, name = meta(session)
    metadata: dict[str, Any] = {"name": runner_name(name), "namespace": namespace,
                                "labels": selector_labels(name),
                                "ownerReferences": [session_owner(session)]}
    annotations = {RUN_ANNOTATION: inputs.run_started} if inputs.run_started else {}
    if inputs.is_resume:
        annotations[RESUME_ANNOTATION] = "true"
    if annotations:
        metadata["annotations"] = annotations
    return metadata


def run_of(workload: Mapping[str, Any]) -> str | None:
    annotations = (workload.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(RUN_ANNOTATION)
    return value if isinstance(value, str) else None


def _runner_container(session: Mapping[str, Any], runtime: Runtime, inputs: RunInputs,
                      mounts: list[dict[str, Any]]) -> dict[str, Any]:
    image = runtime.image or inputs.config.runner_image
    env_from = []
    if inputs.integrations:
        env_from.append({"secretRef": {"name": INTEGRATION_SECRETS}})
    if not inputs.config.vertex:
        env_from.append({"secretRef": {"name": RUNNER_SECRETS}})
    container: dict[str, Any] = {
        "name": RUNNER_CONTAINER, "image": image,
        "imagePullPolicy": inputs.config.image_pull_policy,
        "securityContext": {**_locked_down(), "runAsNonRoot": True},
        "ports": [{"name": AGUI_PORT_NAME, "containerPort": runtime.port, "protocol": "TCP"}],
        "readinessProbe": _probe(runtime.port, initial_delay=3, period=5, timeout=2),
        "livenessProbe": _probe(runtime.port, initial_delay=20, period=30, timeout=5),
        "volumeMounts": [dict(m) for m in mounts],
        "lifecycle": {"postStart": {"exec": {"command": ["/bin/sh", "-c", POST_START]}}},
        "env": runner_env(session, runtime, inputs),
        "resources": runner_resources(runtime),
    }
    if env_from:
        container["envFrom"] = env_from
    return container


def _locked_down() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": False,
            "capabilities": {"drop": ["ALL"]}}


def _probe(port: int, *, initial_delay: int, period: int, timeout: int) -> dict[str, Any]:
    return {"httpGet": {"path": HEALTH_PATH, "port": port},
            "initialDelaySeconds": initial_delay, "periodSeconds": period,
            "timeoutSeconds": timeout, "failureThreshold": 3}


def runner_resources(runtime: Runtime) -> dict[str, dict[str, str]]:
    """Upstream's defaults with the registry's ``cpu``/``memory`` values over them; a request
    above its limit (which the API server refuses) is a RenderError ``InvalidResources``."""
    merged = {section: {**values, **dict(runtime.resources.get(section) or {})}
              for section, values in DEFAULT_RESOURCES.items()}
    for name, requested in merged["requests"].items():
        limit = merged["limits"].get(name)
        if limit is not None and _amount(requested) > _amount(limit):
            raise RenderError("InvalidResources",
                              f'runtime "{runtime.id}": the runner\'s {name} request '
                              f'"{requested}" exceeds its limit "{limit}" (registry values '
                              "override upstream's defaults of 500m/512Mi requests and 2/8Gi "
                              "limits one by one)")
    return merged


def _amount(value: str) -> Decimal:
    return Decimal(parse_quantity(value))


def workspace_size(runtime: Runtime) -> str:
    size = runtime.sandbox.workspace_size or DEFAULT_WORKSPACE_SIZE
    quantity(size, f'runtime "{runtime.id}" sandbox.workspaceSize')
    return size


def state_directory(session: Mapping[str, Any], runtime: Runtime) -> str:
    """The runner's state directory under the workspace: the session's ``RUNNER_STATE_DIR``,
    else the registry's ``sandbox.stateDir``, else ``.claude``."""
    env = (session.get("spec") or {}).get("environmentVariables") or {}
    chosen = env.get("RUNNER_STATE_DIR") if isinstance(env, Mapping) else None
    state_dir = chosen if isinstance(chosen, str) and chosen else (
        runtime.sandbox.state_dir or DEFAULT_STATE_DIR)
    parts = state_dir.split("/")
    if state_dir.startswith("/") or ".." in parts or not all(parts):
        raise RenderError("InvalidStateDir", f"the state directory {state_dir!r} (from "
                          f"{'RUNNER_STATE_DIR' if chosen else 'sandbox.stateDir'}) must be a "
                          "relative path inside the workspace, without '..'")
    return state_dir


# observe -----------------------------------------------------------------------------------------
def container_status(pod: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or ():
        if isinstance(status, Mapping) and status.get("name") == name:
            return status
    return None


def scheduled_condition(pod: Mapping[str, Any]) -> dict[str, str] | None:
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        return {"status": "True", "reason": "Scheduled", "message": f"Scheduled on {node}"}
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if (isinstance(condition, Mapping) and condition.get("type") == "PodScheduled"
                and condition.get("status") == "False"):
            return {"status": "False", "reason": str(condition.get("reason") or ""),
                    "message": str(condition.get("message") or "")}
    return None


def _runner(runner: Mapping[str, Any] | None, scheduled: dict[str, str] | None,
            ready: bool = False) -> Observation:
    state = (runner or {}).get("state") or {}
    if "running" in state:
        return Observation("running", reason="ContainerRunning",
                           message="Runner container is executing", scheduled=scheduled,
                           ready=ready)
    waiting = state.get("waiting") or {}
    if waiting.get("reason") in FATAL_WAITING:
        return Observation("failed", reason=str(waiting["reason"]), scheduled=scheduled,
                           message=f"Runner waiting: {waiting['reason']} - "
                                   f"{waiting.get('message') or ''}")
    terminated = state.get("terminated")
    if isinstance(terminated, Mapping):
        return exited(terminated, scheduled)
    return Observation("starting", scheduled=scheduled)


def exited(terminated: Mapping[str, Any], scheduled: dict[str, str] | None = None
           ) -> Observation:
    """The runner's exit, as upstream reads it: 0 Completed, 2 PrerequisiteFailed, else
    RunnerExit."""
    code = terminated.get("exitCode", 0)
    message = str(terminated.get("message") or "")
    if code == 0:
        return Observation("succeeded", reason="Completed", message="Runner finished",
                           scheduled=scheduled)
    if code == 2:
        return Observation("failed", reason="PrerequisiteFailed", scheduled=scheduled,
                           message=f"Runner exited due to prerequisite failure: {message}")
    text = f"Runner exited with code {code}: {terminated.get('reason') or ''}"
    if message:
        text += f" - {message}"
    return Observation("failed", reason="RunnerExit", message=text, scheduled=scheduled)


def pod_error_message(pod: Mapping[str, Any]) -> str:
    """Why a Pod failed, as upstream's ``collectPodErrorMessage`` says it: a failed or
    waiting init container first, then (without a pod-level message) the containers."""
    status = pod.get("status") or {}
    message = str(status.get("message") or status.get("reason") or "")
    for init in status.get("initContainerStatuses") or ():
        state = (init or {}).get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and terminated.get("exitCode", 0) != 0:
            text = (f"Init container {init.get('name')} failed (exit "
                    f"{terminated.get('exitCode')}): {terminated.get('message') or ''}")
            return f"{text} - {terminated['reason']}" if terminated.get("reason") else text
        if waiting and waiting.get("reason"):
            return (f"Init container {init.get('name')}: {waiting['reason']} - "
                    f"{waiting.get('message') or ''}")
    if message in ("", "PodFailed"):
        for item in status.get("containerStatuses") or ():
            state = (item or {}).get("state") or {}
            terminated, waiting = state.get("terminated"), state.get("waiting")
            if terminated and terminated.get("exitCode", 0) != 0:
                return (f"Container {item.get('name')} failed (exit "
                        f"{terminated.get('exitCode')}): {terminated.get('reason') or ''} - "
                        f"{terminated.get('message') or ''}")
            if waiting:
                return (f"Container {item.get('name')}: {waiting.get('reason') or ''} - "
                        f"{waiting.get('message') or ''}")
    return message or "Pod failed with unknown error"
