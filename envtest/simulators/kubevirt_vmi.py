"""VirtualMachineInstances: their virt-launcher pod and the status virt-controller and
virt-handler give them.

Pure functions; the simulator supplies the facts (how long the VMI has been in its phase, its
launcher pod, whether a kubelet runs that pod). The phases go ``Pending`` → ``Scheduling`` (the
launcher pod exists) → ``Scheduled`` (the pod runs: handed to the node) → ``Running`` (the
guest booted) → ``Succeeded``/``Failed``. With a kubelet the pod's state decides (its
``PodScheduled=False``, image-pull waits and ``Ready`` condition are mirrored as KubeVirt does);
without one, timers stand in for the pod. Field names and reasons are KubeVirt's
(``kubevirt.io/api/core/v1``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from envtest.simulators import launcher_volumes, podstatus
from envtest.simulators.kubevirt_crds import API_VERSION
from envtest.simulators.scenario import SCENARIO_ANNOTATION, VMScenario

LAUNCHER_IMAGE = "quay.io/kubevirt/virt-launcher:v1.5.0"
LAUNCHER_USER = 107  # the qemu user virt-launcher runs as (non-root)
FINAL = ("Succeeded", "Failed")
_PRE_HANDOVER = ("", "Pending", "Scheduling")


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds each step takes: the guest's boot always, the rest when no kubelet drives the
    launcher pod."""

    schedule_delay: float
    """Scheduling → Scheduled (the pod would be bound and started)."""
    boot_delay: float
    """Scheduled → Running (virt-handler starts the domain)."""
    ready_delay: float
    """Running → Ready (the readiness probe passes)."""
    pull_backoff: float
    """ErrImagePull → ImagePullBackOff (``image-pull-error``)."""


@dataclass(frozen=True, slots=True)
class Situation:
    """What the simulator knows about one VMI at this moment."""

    elapsed: float
    """Seconds since the VMI entered its current phase."""
    follow: bool | None
    """Whether a kubelet drives the launcher pod (None: not known yet — wait)."""
    scenario: VMScenario | None
    node: str
    ip: str
    """The address to report when no kubelet gives the pod one."""
    mac: str
    now: str


def owner_reference(obj: Mapping[str, Any], kind: str, api_version: str) -> dict[str, Any]:
    meta = obj["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def launcher_pod(vmi: Mapping[str, Any], *, scenario: str = "") -> dict[str, Any]:
    """The ``virt-launcher-<vmi>-xxxxx`` pod virt-controller creates for ``vmi``; ``scenario``
    is the pod-level part of the VMI's scenario, for the kubelet simulator (aimed at the
    compute container). The VMI's Secret, ConfigMap, downward API and service account volumes
    become the pod's (:mod:`.launcher_volumes`)."""
    meta, spec = vmi["metadata"], vmi.get("spec") or {}
    name, uid = meta["name"], meta["uid"]
    labels = {**(meta.get("labels") or {}), "kubevirt.io": "virt-launcher",
              "vm.kubevirt.io/name": name, "kubevirt.io/created-by": uid}
    annotations = {"kubevirt.io/domain": name,
                   "kubectl.kubernetes.io/default-container": "compute"}
    if scenario:
        annotations[SCENARIO_ANNOTATION] = f"{scenario}@compute"
    volumes = launcher_volumes.render(spec, image=LAUNCHER_IMAGE, user=LAUNCHER_USER)
    compute = _compute(name, uid, meta.get("namespace", ""), spec)
    if volumes.compute_mounts:
        compute["volumeMounts"] = volumes.compute_mounts
    pod_spec: dict[str, Any] = {"containers": [compute, *volumes.containers]}
    if volumes.volumes:
        pod_spec["volumes"] = volumes.volumes
    if volumes.service_account:
        pod_spec["serviceAccountName"] = volumes.service_account
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": f"virt-launcher-{name}-", "labels": labels,
                     "annotations": annotations, "ownerReferences": [
                         owner_reference(vmi, "VirtualMachineInstance", API_VERSION)]},
        "spec": {
            **pod_spec, "restartPolicy": "Never",
            "automountServiceAccountToken": bool(volumes.service_account),
            "hostname": spec.get("hostname") or name,
            "nodeSelector": {**(spec.get("nodeSelector") or {}),
                             "kubevirt.io/schedulable": "true"},
            "securityContext": {"runAsNonRoot": True, "runAsUser": LAUNCHER_USER,
                                "runAsGroup": LAUNCHER_USER, "fsGroup": LAUNCHER_USER},
            "terminationGracePeriodSeconds": int(spec.get("terminationGracePeriodSeconds",
                                                          30)) + 15,
        },
    }


def _compute(name: str, uid: str, namespace: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    domain = spec.get("domain") or {}
    resources = copy.deepcopy(domain.get("resources") or {})
    requests = resources.setdefault("requests", {})
    memory = (domain.get("memory") or {}).get("guest")
    if memory and "memory" not in requests:
        requests["memory"] = memory
    cpu = domain.get("cpu") or {}
    vcpus = int(cpu.get("cores", 1)) * int(cpu.get("sockets", 1)) * int(cpu.get("threads", 1))
    requests.setdefault("cpu", f"{100 * vcpus}m")  # KubeVirt's default 1/10 CPU per vCPU
    return {
        "name": "compute", "image": LAUNCHER_IMAGE, "imagePullPolicy": "IfNotPresent",
        "command": ["/usr/bin/virt-launcher-monitor", "--qemu-timeout", "240s", "--name", name,
                    "--uid", uid, "--namespace", namespace, "--kubevirt-share-dir",
                    "/var/run/kubevirt", "--ephemeral-disk-dir",
                    "/var/run/kubevirt-ephemeral-disks", "--container-disk-dir",
                    "/var/run/kubevirt/container-disks", "--grace-period-seconds", "45",
                    "--hook-sidecars", "0"],
        "resources": resources,
        "securityContext": {"runAsNonRoot": True, "runAsUser": LAUNCHER_USER,
                            "runAsGroup": LAUNCHER_USER, "privileged": False,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
    }


def pod_down(pod: Mapping[str, Any]) -> bool:
    """Finished or being deleted: KubeVirt's ``IsPodDownOrGoingDown``."""
    return bool(pod["metadata"].get("deletionTimestamp")) or (
        (pod.get("status") or {}).get("phase") in podstatus.TERMINAL)


def pod_condition(pod: Mapping[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for cond in ((pod or {}).get("status") or {}).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


# status --------------------------------------------------------------------------------------
Wake = float | None
"""Seconds until time alone changes the status (None: only an event will)."""


def _earliest(*wakes: Wake) -> Wake:
    due = [w for w in wakes if w is not None]
    return min(due) if due else None


def _after(phase: str, to: str, elapsed: float, delay: float) -> tuple[str, Wake]:
    return (to, None) if elapsed >= delay else (phase, delay - elapsed)


def next_phase(phase: str, pod: Mapping[str, Any] | None, facts: Situation,
               timing: Timing) -> tuple[str, Wake]:
    """One step of the phase machine (the next sync takes the next step)."""
    scenario = facts.scenario.kind if facts.scenario else ""
    if phase in FINAL:
        return phase, None
    if phase in ("", "Pending"):
        return ("Scheduling" if pod is not None else "Pending"), None
    if pod is None or pod_down(pod):
        return "Failed", None  # the launcher pod went away under the VMI
    if phase == "Scheduling":
        if facts.follow is None:
            return phase, None
        if facts.follow:  # handed over once the pod runs (KubeVirt's isPodReady)
            return ("Scheduled" if (pod.get("status") or {}).get("phase") == "Running"
                    else phase), None
        if scenario in ("image-pull-error", "unschedulable"):
            return phase, None
        return _after(phase, "Scheduled", facts.elapsed, timing.schedule_delay)
    if phase == "Scheduled":
        return _after(phase, "Running", facts.elapsed, timing.boot_delay)
    if scenario in ("crash", "guest-shutdown") and facts.scenario is not None:
        end = "Failed" if scenario == "crash" else "Succeeded"
        return _after(phase, end, facts.elapsed, facts.scenario.after)
    return phase, None


def _ready(phase: str, pod: Mapping[str, Any] | None, facts: Situation, timing: Timing,
           previous: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], Wake]:
    """The VMI's Ready condition, as virt-controller derives it from the launcher pod."""
    def cond(ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
        return podstatus.condition("Ready", ok, now=facts.now, previous=previous,
                                   reason=reason, message=message)

    if pod is None:
        return cond(False, "PodNotExists", "virt-launcher pod has not yet been scheduled"), None
    if pod_down(pod):
        return cond(False, "PodTerminating", "virt-launcher pod is terminating"), None
    if phase != "Running":
        return cond(False, "GuestNotRunning", "Guest VM is not reported as running"), None
    if facts.follow:
        ready = pod_condition(pod, "Ready")
        if ready is None:
            return cond(False, "PodConditionMissing",
                        "virt-launcher pod is missing the Ready condition"), None
        return {**ready, "lastProbeTime": None}, None
    if facts.scenario is not None and facts.scenario.kind == "never-ready":
        return cond(False, "ContainersNotReady", "containers with unready status: [compute]"), None
    if facts.elapsed < timing.ready_delay:
        return (cond(False, "ContainersNotReady", "containers with unready status: [compute]"),
                timing.ready_delay - facts.elapsed)
    return cond(True), None


def _scheduling(pod: Mapping[str, Any] | None, vmi: Mapping[str, Any], facts: Situation,
                timing: Timing, previous: Sequence[Mapping[str, Any]],
                ) -> tuple[list[dict[str, Any]], Wake]:
    """PodScheduled=False and Synchronized=False (image pull errors) of a VMI not yet handed
    over: mirrored from the launcher pod, or acted out from the scenario without a kubelet."""
    scenario = facts.scenario.kind if facts.scenario else ""
    if facts.follow:
        scheduled = pod_condition(pod, "PodScheduled")
        out = [dict(scheduled)] if scheduled and scheduled.get("status") == "False" else []
        for status in ((pod or {}).get("status") or {}).get("containerStatuses") or ():
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
                out.append(podstatus.condition(
                    "Synchronized", False, now=facts.now, previous=previous,
                    reason=waiting["reason"], message=waiting.get("message", "")))
                break
        return out, None
    if facts.follow is None or pod is None:
        return [], None
    if scenario == "unschedulable":
        return podstatus.unschedulable(now=facts.now, previous=previous), None
    if scenario == "image-pull-error":
        image = _disk_image(vmi)
        backing_off = facts.elapsed >= timing.pull_backoff
        reason = "ImagePullBackOff" if backing_off else "ErrImagePull"
        message = (podstatus.pull_backoff_message(image) if backing_off
                   else podstatus.pull_error_message(image))
        return [podstatus.condition("Synchronized", False, now=facts.now, previous=previous,
                                    reason=reason, message=message)], (
            None if backing_off else timing.pull_backoff - facts.elapsed)
    return [], None


def _disk_image(vmi: Mapping[str, Any]) -> str:
    for volume in (vmi.get("spec") or {}).get("volumes") or ():
        image = ((volume or {}).get("containerDisk") or {}).get("image")
        if image:
            return str(image)
    return LAUNCHER_IMAGE


def vmi_status(vmi: Mapping[str, Any], pod: Mapping[str, Any] | None, facts: Situation,
               timing: Timing) -> tuple[dict[str, Any], Wake]:
    """The VMI's next status and when time alone will change it again."""
    old = vmi.get("status") or {}
    previous = old.get("conditions") or []
    phase, wake = next_phase(old.get("phase", ""), pod, facts, timing)
    status = dict(old, phase=phase)
    if phase != old.get("phase"):
        facts = replace(facts, elapsed=0.0)
        status["phaseTransitionTimestamps"] = [*old.get("phaseTransitionTimestamps", ()), {
            "phase": phase, "phaseTransitionTimestamp": facts.now}]
    ready, ready_wake = _ready(phase, pod, facts, timing, previous)
    extra, extra_wake = (_scheduling(pod, vmi, facts, timing, previous)
                         if phase in _PRE_HANDOVER else ([], None))
    status["conditions"] = [ready, *extra]
    _placement(status, phase, vmi, pod, facts)
    return status, _earliest(wake, ready_wake, extra_wake)


def _placement(status: dict[str, Any], phase: str, vmi: Mapping[str, Any],
               pod: Mapping[str, Any] | None, facts: Situation) -> None:
    """Where the VMI runs: its pod, node, network interfaces and volumes."""
    pod_status = (pod or {}).get("status") or {}
    if pod is not None:
        status["activePods"] = {pod["metadata"]["uid"]: (pod.get("spec") or {}).get(
            "nodeName", "")}
        status["launcherContainerImageVersion"] = LAUNCHER_IMAGE
        if pod_status.get("qosClass"):
            status["qosClass"] = pod_status["qosClass"]
    else:
        status.pop("activePods", None)
        status.pop("launcherContainerImageVersion", None)
    if phase not in ("Scheduled", "Running"):
        return
    spec = vmi.get("spec") or {}
    node = (pod or {}).get("spec", {}).get("nodeName") if facts.follow else facts.node
    ip = pod_status.get("podIP", "") if facts.follow else facts.ip
    network = ((spec.get("networks") or [{}])[0] or {}).get("name", "default")
    status.update(nodeName=node or facts.node, migrationTransport="Unix", interfaces=[{
        "name": network, "ipAddress": ip, "ipAddresses": [ip] if ip else [], "mac": facts.mac,
        "interfaceName": "eth0", "podInterfaceName": "eth0", "queueCount": 1,
        "infoSource": "domain, guest-agent"}], volumeStatus=[
        {"name": v.get("name", ""), "target": f"vd{chr(ord('a') + i)}",
         **({"size": 1048576} if "cloudInitNoCloud" in v else {})}
        for i, v in enumerate(spec.get("volumes") or ()) if isinstance(v, dict)])
    if phase == "Running":
        status.setdefault("guestOSInfo", {})
