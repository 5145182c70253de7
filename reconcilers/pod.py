"""Sessions that run in a Pod: the ``<session>-runner`` Pod, and what its status means.

``render`` returns the token Secret, the Pod and the Service (in that order: the Pod mounts the
Secret). The Pod is locked down: ``restartPolicy: Never`` (a runner that exits is the session's
outcome, not something to retry), no service-account token, ``runAsNonRoot``, seccomp
``RuntimeDefault``, no privilege escalation, every capability dropped, and no Service links.
``readOnlyRootFilesystem`` is set only when the runtime's ``sandbox`` asks for it: runner images
write to their home and caches, and a read-only root would break them; with it, ``/tmp`` becomes
a writable emptyDir. Every field the Pod sets is rendered explicitly (``false`` included) so that
the diff, which compares only rendered fields, sees a change in either direction.

``observe`` maps the Pod's status to the session, first match wins:

======================================================  ==========  =========================
Pod                                                      Phase       reason
======================================================  ==========  =========================
absent                                                   None
being deleted (``deletionTimestamp``)                    Creating    RunnerTerminating
phase Failed with a pod-level reason (Evicted, ...)      Failed      the pod's reason
runner terminated, exit 0                                Completed   Completed
runner terminated, OOMKilled                             Failed      OOMKilled
runner terminated, exit 2                                Failed      PrerequisiteFailed
runner terminated, other non-zero exit                   Failed      Error
runner waiting: ErrImagePull, ImagePullBackOff,          Failed      the kubelet's reason
InvalidImageName, ErrImageNeverPull,
CreateContainerConfigError, CrashLoopBackOff
phase Succeeded                                          Completed   Completed
phase Failed                                             Failed      PodFailed
phase Unknown                                            Failed      the pod's reason or
                                                                     PodUnknown
PodScheduled=False                                       Creating    the scheduler's reason
                                                                     (Unschedulable)
phase Running, Ready=True, Service with port ``agui``    Running     RunnerReady (ready)
phase Running, Ready=True, no Service yet                Creating    EndpointNotReady
phase Running, not Ready                                 Creating    RunnerNotReady
otherwise (Pending)                                      Creating    the runner's waiting
                                                                     reason, or PodPending
======================================================  ==========  =========================

A pod being deleted is Creating, not None: it still holds its name, so no replacement can be
created until it is gone, and None would tell a Running session its workload was lost while
the operator is merely replacing it (immutable fields changed). Its exit status is ignored: a
graceful deletion kills the runner, which is not the runner failing. Every observation of a pod
that has a ``PodScheduled`` condition carries it (True as reason ``Scheduled``), so the
session's copy flips back once the pod is scheduled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from . import children as _children
from .environment import Children, Obj, Observation, RenderError, Runtime
from .registry import check_port, resource_requirements, sandbox_settings
from .resources import (
    AGUI_PORT_NAME,
    ExecutionKind,
    Phase,
    runner_name,
    token_secret_name,
)

RUNNER_CONTAINER = "runner"
HEALTH_PATH = "/health"
WORKSPACE_DIR = "/workspace"
TOKEN_VOLUME = "agui-token"
WORKSPACE_VOLUME = "workspace"
TMP_VOLUME = "tmp"
TOKEN_FILE_MODE = 0o400
DEFAULT_FS_GROUP = 1001
"""The group the token file is readable by: with ``fsGroup`` the kubelet gives secret files
that group and group-read (0400 becomes 0440), so a non-root runner of any UID can read it.
``sandbox.fsGroup`` overrides it (e.g. for an OpenShift namespace's assigned range)."""
FAILED_WAITING = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                            "ErrImageNeverPull", "CreateContainerConfigError",
                            "CrashLoopBackOff"})
"""Waiting reasons that end the session: the pod will not start (or, for CrashLoopBackOff,
keeps dying) without someone changing the image, the registry or the spec."""
_MESSAGE_LIMIT = 1024
"""Termination messages are the runner's own text (or its last log lines): bounded in status."""


class PodEnvironment:
    """The Pod backend. Stateless; both methods are pure."""

    kind = ExecutionKind.POD

    def render(self, session: Mapping[str, Any], runtime: Runtime, *, token: str) -> list[Obj]:
        """[token Secret, runner Pod, Service]; RenderError for bad input."""
        service = _children.service(session, runtime)  # first: validates the name's length
        return [_children.token_secret(session, token), runner_pod(session, runtime), service]

    def observe(self, session: Mapping[str, Any], children: Children, *,
                now: dt.datetime) -> Observation:
        """The session's view of its Pod (see the module's table). ``now`` is unused: a pod's
        failures are final when the kubelet reports them."""
        pod = children.pod
        if pod is None:
            return Observation(None)
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            return Observation(Phase.CREATING, reason="RunnerTerminating",
                               message=f"runner pod {_name(pod)} is being deleted")
        observation = (_failed_or_finished(pod) or _unscheduled(pod)
                       or _starting(pod, children.service))
        return replace(observation, conditions=_scheduled_condition(pod))


# render ------------------------------------------------------------------------------------------
def runner_pod(session: Mapping[str, Any], runtime: Runtime) -> Obj:
    """The ``<session>-runner`` Pod of ``runtime``; RenderError for bad runtime values (the
    registry validates them, but a Runtime may come from elsewhere)."""
    _, session_name = _children.meta(session)
    where = f'runtime "{runtime.id}"'
    resources = resource_requirements(runtime.resources, f"{where} container.resources")
    sandbox = sandbox_settings(runtime.sandbox, f"{where} sandbox")
    check_port(runtime.port, f"{where} container.port")
    if not runtime.image or any(c.isspace() for c in runtime.image):
        raise RenderError("InvalidRuntime", f"{where} container.image: must be a container "
                          f"image reference without spaces, got {runtime.image!r}")
    read_only = bool(sandbox.get("readOnlyRootFilesystem", False))
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": _children.child_meta(session, runner_name(session_name)),
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            # Service links would put every Service of the namespace into the runner's env.
            "enableServiceLinks": False,
            "securityContext": _pod_security(sandbox),
            "containers": [_runner_container(session, runtime, resources, read_only)],
            "volumes": _volumes(session_name, read_only),
        },
    }


def _pod_security(sandbox: Mapping[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = {"runAsNonRoot": True,
                               "seccompProfile": {"type": "RuntimeDefault"},
                               "fsGroup": sandbox.get("fsGroup", DEFAULT_FS_GROUP)}
    if "runAsUser" in sandbox:
        context["runAsUser"] = sandbox["runAsUser"]
    return context


def _runner_container(session: Mapping[str, Any], runtime: Runtime,
                      resources: dict[str, dict[str, str]], read_only: bool) -> dict[str, Any]:
    mounts = [{"name": TOKEN_VOLUME, "mountPath": _children.TOKEN_MOUNT_DIR, "readOnly": True}]
    if read_only:
        mounts.append({"name": TMP_VOLUME, "mountPath": "/tmp"})
    mounts.append({"name": WORKSPACE_VOLUME, "mountPath": WORKSPACE_DIR})
    return {
        "name": RUNNER_CONTAINER,
        "image": runtime.image,
        "ports": [{"name": AGUI_PORT_NAME, "containerPort": runtime.port, "protocol": "TCP"}],
        "env": _children.session_env(session, runtime),
        "resources": resources,
        # Readiness gates the session's Running phase; liveness waits longer, because with
        # restartPolicy Never a liveness kill ends the session.
        "readinessProbe": _probe(initial_delay=2, period=5, timeout=3, failures=3),
        "livenessProbe": _probe(initial_delay=30, period=15, timeout=5, failures=4),
        # A runner that dies without writing /dev/termination-log still says why, in status.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {"allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "runAsNonRoot": True,
                            "readOnlyRootFilesystem": read_only},
        "volumeMounts": mounts,
    }


def _probe(*, initial_delay: int, period: int, timeout: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": HEALTH_PATH, "port": AGUI_PORT_NAME},
            "initialDelaySeconds": initial_delay, "periodSeconds": period,
            "timeoutSeconds": timeout, "failureThreshold": failures}


def _volumes(session_name: str, read_only: bool) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [
        {"name": TOKEN_VOLUME, "secret": {"secretName": token_secret_name(session_name),
                                          "defaultMode": TOKEN_FILE_MODE}}]
    if read_only:
        volumes.append({"name": TMP_VOLUME, "emptyDir": {}})
    volumes.append({"name": WORKSPACE_VOLUME, "emptyDir": {}})
    return volumes


# observe -----------------------------------------------------------------------------------------
def _failed_or_finished(pod: Mapping[str, Any]) -> Observation | None:
    """The rows that end the session: pod-level failures, the runner's exit, fatal waits."""
    status = pod.get("status") or {}
    phase, pod_reason = status.get("phase"), status.get("reason")
    message = str(status.get("message") or "")
    if phase == "Failed" and pod_reason:  # Evicted, DeadlineExceeded: the pod says it best
        return Observation(Phase.FAILED, reason=str(pod_reason), message=message)
    state = _runner_status(pod).get("state") or {}
    if "terminated" in state:
        return _exited(pod, state["terminated"])
    waiting = state.get("waiting") or {}
    if waiting.get("reason") in FAILED_WAITING:
        return _fatal_wait(pod, waiting)
    if phase == "Succeeded":
        return Observation(Phase.COMPLETED, reason="Completed",
                           message=f"runner pod {_name(pod)} succeeded")
    if phase == "Failed":
        return Observation(Phase.FAILED, reason="PodFailed",
                           message=message or f"runner pod {_name(pod)} failed")
    if phase == "Unknown":
        return Observation(Phase.FAILED, reason=str(pod_reason or "PodUnknown"),
                           message=message or f"the node of runner pod {_name(pod)} stopped "
                           "reporting its state")
    return None


def _exited(pod: Mapping[str, Any], terminated: Mapping[str, Any]) -> Observation:
    code = int(terminated.get("exitCode", 0))
    kubelet_reason = str(terminated.get("reason") or "")
    if code == 0:
        return Observation(Phase.COMPLETED, reason="Completed",
                           message=_with_detail("runner exited with code 0", terminated))
    if kubelet_reason == "OOMKilled":
        limit = _memory_limit(pod)
        return Observation(Phase.FAILED, reason="OOMKilled", message=_with_detail(
            f"runner was killed for exceeding its memory limit{f' of {limit}' if limit else ''}"
            f" (exit code {code})", terminated))
    if code == 2:
        return Observation(Phase.FAILED, reason="PrerequisiteFailed", message=_with_detail(
            "runner exited with code 2: a prerequisite failed", terminated))
    shown = f" ({kubelet_reason})" if kubelet_reason not in ("", "Error") else ""
    return Observation(Phase.FAILED, reason="Error", message=_with_detail(
        f"runner exited with code {code}{shown}", terminated))


def _fatal_wait(pod: Mapping[str, Any], waiting: Mapping[str, Any]) -> Observation:
    reason = str(waiting["reason"])
    message = str(waiting.get("message") or f"container {RUNNER_CONTAINER} is waiting: {reason}")
    last = (_runner_status(pod).get("lastState") or {}).get("terminated")
    if reason == "CrashLoopBackOff" and last:
        message += f" (last exit code {last.get('exitCode')})"
    return Observation(Phase.FAILED, reason=reason, message=message)


def _unscheduled(pod: Mapping[str, Any]) -> Observation | None:
    scheduled = _pod_condition(pod, "PodScheduled")
    if scheduled is None or scheduled.get("status") != "False":
        return None
    return Observation(Phase.CREATING, reason=str(scheduled.get("reason") or "Unschedulable"),
                       message=str(scheduled.get("message") or
                                   f"runner pod {_name(pod)} is not scheduled yet"))


def _starting(pod: Mapping[str, Any], service: Mapping[str, Any] | None) -> Observation:
    """A live pod: Running once it is Ready and reachable, Creating until then."""
    status = pod.get("status") or {}
    ready = _pod_condition(pod, "Ready") or {}
    if status.get("phase") == "Running" and ready.get("status") == "True":
        endpoint = _endpoint(service)
        if not endpoint:
            return Observation(Phase.CREATING, reason="EndpointNotReady",
                               message=f"runner pod {_name(pod)} is ready; its Service is not "
                               "there yet")
        return Observation(Phase.RUNNING, ready=True, reason="RunnerReady",
                           message="the session's runner is ready", endpoint=endpoint)
    if status.get("phase") == "Running":
        return Observation(Phase.CREATING, reason="RunnerNotReady",
                           message=str(ready.get("message") or "the runner is not ready yet"))
    waiting = (_runner_status(pod).get("state") or {}).get("waiting") or {}
    return Observation(Phase.CREATING, reason=str(waiting.get("reason") or "PodPending"),
                       message=str(waiting.get("message") or
                                   f"runner pod {_name(pod)} is starting"))


def _scheduled_condition(pod: Mapping[str, Any]) -> tuple[dict[str, str], ...]:
    scheduled = _pod_condition(pod, "PodScheduled")
    if scheduled is None:
        return ()
    if scheduled.get("status") == "True":
        node = (pod.get("spec") or {}).get("nodeName")
        return ({"type": "PodScheduled", "status": "True", "reason": "Scheduled",
                 "message": f"runner pod assigned to node {node}" if node else ""},)
    return ({"type": "PodScheduled", "status": "False",
             "reason": str(scheduled.get("reason") or "Unschedulable"),
             "message": str(scheduled.get("message") or "")},)


def _endpoint(service: Mapping[str, Any] | None) -> str:
    """The Service's in-cluster URL, as :func:`.children.endpoint` spells it (observe has no
    runtime: the port is read from the Service's ``agui`` port)."""
    meta = (service or {}).get("metadata") or {}
    ports = ((service or {}).get("spec") or {}).get("ports") or ()
    port = next((p.get("port") for p in ports if p.get("name") == AGUI_PORT_NAME), None)
    if not (meta.get("name") and meta.get("namespace") and port):
        return ""
    return f"http://{meta['name']}.{meta['namespace']}.svc:{port}"


def _runner_status(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    """The runner's container status (the first one if none is named ``runner``: a pod an
    older operator rendered), {} before the kubelet reports any."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return next((s for s in statuses if s.get("name") == RUNNER_CONTAINER),
                statuses[0] if statuses else {})


def _pod_condition(pod: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return next((c for c in conditions if c.get("type") == kind), None)


def _memory_limit(pod: Mapping[str, Any]) -> str:
    containers = (pod.get("spec") or {}).get("containers") or ()
    runner: Mapping[str, Any] = next(
        (c for c in containers if c.get("name") == RUNNER_CONTAINER), {})
    return str(((runner.get("resources") or {}).get("limits") or {}).get("memory") or "")


def _with_detail(summary: str, terminated: Mapping[str, Any]) -> str:
    """``summary``, then the runner's termination message (bounded)."""
    detail = str(terminated.get("message") or "").strip()
    if len(detail) > _MESSAGE_LIMIT:
        detail = "..." + detail[-(_MESSAGE_LIMIT - 3):]  # the end of a log says most
    return f"{summary}: {detail}" if detail else summary


def _name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name", ""))
