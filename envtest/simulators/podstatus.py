"""Pod status shapes as a kubelet writes them: container states, conditions, phase.

Pure functions: the kubelet simulator keeps the facts (what each container is doing) and these
turn them into the fields clients read, with the reasons, messages and formats of a real kubelet
on containerd (k8s 1.30+): ``containerd://`` IDs, canonical image names, the
``PodReadyToStartContainers`` condition.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

HOST_IP = "172.18.0.2"
"""The simulated node's address (a kind node's, on the docker network)."""
UNSCHEDULABLE_MESSAGE = ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
                         "available: 1 No preemption victims found for incoming pod.")
TERMINAL = ("Succeeded", "Failed")


def canonical_image(image: str) -> str:
    """The reference containerd reports: ``nginx`` → ``docker.io/library/nginx:latest``."""
    name, at, digest = image.partition("@")
    first, slash, _ = name.partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}" if slash else f"docker.io/library/{name}"
    if not at and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}@{digest}" if at else name


def image_id(image: str) -> str:
    """``repository@sha256:…``: a stable digest per image (there is no registry to ask)."""
    canonical = canonical_image(image)
    if "@" in canonical:
        return canonical
    repository = canonical.rsplit(":", 1)[0]
    return f"{repository}@sha256:{hashlib.sha256(canonical.encode()).hexdigest()}"


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    state: dict[str, Any] = {"reason": reason}
    if message:
        state["message"] = message
    return {"waiting": state}


def running(started_at: str) -> dict[str, Any]:
    return {"running": {"startedAt": started_at}}


def terminated(*, exit_code: int, reason: str, started_at: str, finished_at: str,
               container_id: str) -> dict[str, Any]:
    return {"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": started_at,
                           "finishedAt": finished_at, "containerID": container_id}}


def pull_error_message(image: str) -> str:
    """containerd's answer when a reference does not resolve."""
    ref = canonical_image(image)
    return (f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": failed '
            f'to resolve reference "{ref}": {ref}: not found')


def pull_backoff_message(image: str) -> str:
    return f'Back-off pulling image "{image}"'


def crash_backoff_message(delay: float, container: str, *, pod: str, namespace: str,
                          uid: str) -> str:
    return (f"back-off {go_duration(delay)} restarting failed container={container} "
            f"pod={pod}_{namespace}({uid})")


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration`` text: ``500ms``, ``10s``, ``1m20s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:g}s"
    return f"{int(minutes)}m{text}" if minutes else text


def phase(statuses: Sequence[Mapping[str, Any]], restart_policy: str) -> str:
    """The pod phase from its container statuses, by the kubelet's rules (``getPhase``)."""
    running_, waiting_, stopped, failed = 0, 0, 0, 0
    for status in statuses:
        state = status.get("state") or {}
        if "running" in state:
            running_ += 1
        elif "terminated" in state:
            stopped += 1
            failed += state["terminated"].get("exitCode", 0) != 0
        elif (status.get("lastState") or {}).get("terminated"):
            stopped += 1  # waiting to restart after an exit
        else:
            waiting_ += 1
    if waiting_ or not statuses:
        return "Pending"
    if running_:
        return "Running"
    if restart_policy == "Always" or (restart_policy == "OnFailure" and failed):
        return "Running"
    return "Failed" if failed else "Succeeded"


def condition(kind: str, status: bool, *, now: str, previous: Iterable[Mapping[str, Any]],
              reason: str = "", message: str = "") -> dict[str, Any]:
    """One pod condition; ``lastTransitionTime`` is kept while the status does not change."""
    value = "True" if status else "False"
    since = next((c.get("lastTransitionTime") for c in previous
                  if c.get("type") == kind and c.get("status") == value), None)
    out: dict[str, Any] = {"type": kind, "status": value, "lastProbeTime": None,
                           "lastTransitionTime": since or now}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def conditions(*, pod_phase: str, sandbox: bool, uninitialized: Sequence[str],
               unready: Sequence[str], now: str,
               previous: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The five conditions of a scheduled pod, in the kubelet's order."""
    initialized = condition("Initialized", not uninitialized, now=now, previous=previous)
    if uninitialized:
        initialized.update(reason="ContainersNotInitialized", message="containers with "
                           f"incomplete status: [{' '.join(uninitialized)}]")
    done = pod_phase in TERMINAL
    if done:
        why, message = "PodCompleted", ""
    else:
        why = "ContainersNotReady" if unready else ""
        message = f"containers with unready status: [{' '.join(unready)}]" if unready else ""
    ready = not done and not unready
    return [
        condition("PodReadyToStartContainers", sandbox and not done, now=now, previous=previous),
        initialized,
        condition("Ready", ready, now=now, previous=previous, reason=why, message=message),
        condition("ContainersReady", ready, now=now, previous=previous, reason=why,
                  message=message),
        condition("PodScheduled", True, now=now, previous=previous),
    ]


def unschedulable(*, now: str, previous: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The scheduler's verdict on a pod that fits no node."""
    return [condition("PodScheduled", False, now=now, previous=previous,
                      reason="Unschedulable", message=UNSCHEDULABLE_MESSAGE)]
