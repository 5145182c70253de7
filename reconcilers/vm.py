"""The KubeVirt backend: a session runs in a VirtualMachine booted from a containerDisk.

:class:`KubeVirtEnvironment` renders four children — the token Secret, the cloud-init Secret
``<session>-cloudinit`` (NoCloud user data, :mod:`.cloudinit`), the VirtualMachine
``<session>-runner`` and the Service — and maps what KubeVirt reports back onto session phases.

The VM's template carries the Service's selector labels: KubeVirt copies them to the VMI and on
to its virt-launcher pod, which is what the Service selects. Masquerade networking forwards the
AG-UI port from that pod into the guest, and the readiness probe, run by the kubelet against the
pod, is what makes the VMI (and the session) Ready. Credentials — the AG-UI token and every env
value — travel only in the cloud-init Secret, referenced by ``cloudInitNoCloud.secretRef``;
inline ``userData`` would put them in the VM object for anyone who can read VMs.

Status mapping (:meth:`KubeVirtEnvironment.observe`), first match wins:

=======================================================  =========================================
VM absent, or being deleted                              phase None
VMI ``Running``, ``Ready=True``                          Running, ready, endpoint from the Service
VMI ``Running``, not ready                               Creating, ``RunnerNotReady``
VM ``printableStatus`` ErrImagePull, ImagePullBackOff,   Failed, reason = the printableStatus
CrashLoopBackOff, DataVolumeError
VMI ``Succeeded``                                        Completed (the guest shut down)
VMI ``Failed``                                           Failed, ``VMIFailed``
``ErrorUnschedulable`` (or PodScheduled=False,           Creating + PodScheduled=False condition
Unschedulable) for at most :data:`UNSCHEDULABLE_GRACE`   (``recheck_after`` = when the grace ends);
                                                         then Failed, Unschedulable
no VMI and printableStatus Stopped/Stopping/Terminating  phase None (no workload runs)
anything else (VMI Pending/Scheduling/Scheduled, no      Creating
VMI yet, Starting, Provisioning, no status yet)
=======================================================  =========================================

A VMI whose controller reference names another VM (a leftover of a deleted one) is ignored.
The image-pull, DataVolume, crash-loop and unschedulable rows do not apply to a VMI already
``Scheduled`` (handed to its node): a VM status saying so then lags behind the VMI.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from . import children as _children
from .cloudinit import TOKEN_PATH, user_data
from .environment import Children, Obj, Observation, RenderError, Runtime, VMConfig
from .resources import (
    AGUI_PORT_NAME,
    CLOUDINIT_KEY,
    VIRTUAL_MACHINES,
    ExecutionKind,
    Phase,
    cloudinit_secret_name,
    runner_name,
    selector_labels,
)

RUN_STRATEGY = "RerunOnFailure"
"""KubeVirt restarts a guest that failed (repeated failures show as CrashLoopBackOff → Failed)
and leaves one that shut down cleanly stopped, so the session can reach Completed. ``Always``
would replace a finished guest at once and the session would never complete."""
UNSCHEDULABLE_GRACE = dt.timedelta(seconds=300)
"""How long a VM may stay unschedulable before its session fails. Measured from the
``lastTransitionTime`` of the VMI's ``PodScheduled=False`` condition: a cluster autoscaler
usually adds a node within a few minutes, so a short wait is not yet an error."""
READINESS_INITIAL_DELAY_SECONDS = 20
"""A guest boots and starts the runner before ``/health`` can answer; probing earlier only
produces failures in the events."""
READINESS_PERIOD_SECONDS = 10
TERMINATION_GRACE_PERIOD_SECONDS = 30
"""Time the guest gets for an ACPI shutdown (the runner flushes its state) before it is killed."""
ROOT_DISK = "rootdisk"
CLOUDINIT_DISK = "cloudinitdisk"
POD_NETWORK = "default"
INVALID_VM_CONFIG = "InvalidVMConfig"
FAILED_PRINTABLE = frozenset({"ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff",
                              "DataVolumeError"})
"""VM ``printableStatus`` values that fail the session at once."""
_GONE_PRINTABLE = frozenset({"Stopped", "Stopping", "Terminating"})
_VMI_CREATING = {"": "VMIPending", "Pending": "VMIPending", "Scheduling": "VMIScheduling",
                 "Scheduled": "VMIScheduled", "WaitingForSync": "VMIWaitingForSync",
                 "Unknown": "VMIUnknown"}


class KubeVirtEnvironment:
    """The ``kubevirt-vm`` execution environment. Pure: render and observe do no I/O.

    ``unschedulable_grace`` defaults to :data:`UNSCHEDULABLE_GRACE`.
    """

    kind: ExecutionKind = ExecutionKind.KUBEVIRT_VM

    def __init__(self, *, unschedulable_grace: dt.timedelta = UNSCHEDULABLE_GRACE) -> None:
        self.unschedulable_grace = unschedulable_grace

    def render(self, session: Mapping[str, Any], runtime: Runtime, *, token: str) -> list[Obj]:
        """[token Secret, cloud-init Secret, VirtualMachine, Service].

        Raises :class:`RenderError`: ``InvalidVMConfig`` (no vmConfig, no disk image, a bad
        cpu or memory quantity), ``InvalidCloudInitTemplate``, and the shared children's
        reasons (reserved env names, an overlong Service name).
        """
        vm_config = _vm_config(runtime)
        cores, memory = _cpu_cores(vm_config, runtime.id), _memory(vm_config, runtime.id)
        env = {e["name"]: e["value"] for e in _children.session_env(session, runtime)}
        env["AGUI_TOKEN_FILE"] = TOKEN_PATH  # the guest reads the token from cloud-init's file
        userdata = user_data(env, token=token, template=vm_config.cloud_init_template)
        return [
            _children.token_secret(session, token),
            cloudinit_secret(session, userdata),
            virtual_machine(session, runtime, vm_config, cores=cores, memory=memory),
            _children.service(session, runtime),
        ]

    def observe(self, session: Mapping[str, Any], children: Children, *,
                now: dt.datetime) -> Observation:
        """The session's phase from its VM, VMI and Service (see the module docstring)."""
        vm = children.vm
        if vm is None or (vm.get("metadata") or {}).get("deletionTimestamp"):
            return Observation(phase=None)
        vmi = _own_vmi(vm, children.vmi)
        phase = _status(vmi).get("phase") or ""
        printable = str(_status(vm).get("printableStatus") or "")
        if phase == "Running":
            return _running(vmi or {}, children.service)
        # Once the VMI is handed to its node, scheduling and image pulls are over: a VM status
        # still saying otherwise merely lags behind the VMI in the cache.
        handed_over = phase == "Scheduled"
        if printable in FAILED_PRINTABLE and not handed_over:
            return _failed_printable(vm, vmi, printable)
        if phase in ("Succeeded", "Failed"):
            return _finished(vm, vmi or {}, phase)
        unschedulable = None if handed_over else _unschedulable_condition(vm, vmi)
        if unschedulable is not None or (printable == "ErrorUnschedulable" and not handed_over):
            return self._unschedulable(vm, vmi, unschedulable or {}, now=now)
        if vmi is None and printable in _GONE_PRINTABLE:
            return Observation(phase=None, reason="VMStopped",
                               message=f"VirtualMachine {_name(vm)} is {printable}")
        return _creating(vm, vmi, phase, printable)

    def _unschedulable(self, vm: Mapping[str, Any], vmi: Mapping[str, Any] | None,
                       condition: Mapping[str, Any], *, now: dt.datetime) -> Observation:
        """Creating while the VM has been unschedulable for at most the grace period."""
        detail = str(condition.get("message") or "no node can run it")
        pod_scheduled = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                         "message": detail}
        since = _timestamp(condition.get("lastTransitionTime")) or _timestamp(
            ((vmi or {}).get("metadata") or {}).get("creationTimestamp"))
        waited = _aware(now) - since if since is not None else dt.timedelta(0)
        if waited > self.unschedulable_grace:
            return Observation(
                phase=Phase.FAILED, reason="Unschedulable", conditions=(pod_scheduled,),
                message=f"VirtualMachine {_name(vm)} has been unschedulable for "
                        f"{int(waited.total_seconds())}s, past the "
                        f"{int(self.unschedulable_grace.total_seconds())}s grace period: {detail}")
        # Nothing changes on the VM when the grace period ends: ask to be looked at again then.
        left = (self.unschedulable_grace - waited).total_seconds()
        return Observation(phase=Phase.CREATING, reason="Unschedulable", conditions=(
            pod_scheduled,), message=f"VirtualMachine {_name(vm)} is not scheduled yet: {detail}",
            recheck_after=max(left, 0.0) + 1.0)


# render --------------------------------------------------------------------------------------
def cloudinit_secret(session: Mapping[str, Any], userdata: str) -> Obj:
    """``<session>-cloudinit``: the NoCloud user data the VM's ``secretRef`` names."""
    _, session_name = _children.meta(session)
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": _children.child_meta(session, cloudinit_secret_name(session_name)),
            "type": "Opaque", "stringData": {CLOUDINIT_KEY: userdata}}


def virtual_machine(session: Mapping[str, Any], runtime: Runtime, vm_config: VMConfig, *,
                    cores: int, memory: str) -> Obj:
    """``<session>-runner``: :data:`RUN_STRATEGY` (never the deprecated ``spec.running``)."""
    _, session_name = _children.meta(session)
    return {
        "apiVersion": VIRTUAL_MACHINES.api_version, "kind": VIRTUAL_MACHINES.kind,
        "metadata": _children.child_meta(session, runner_name(session_name)),
        "spec": {"runStrategy": RUN_STRATEGY, "template": {
            "metadata": {"labels": selector_labels(session_name)},
            "spec": _vmi_spec(session_name, runtime, vm_config, cores=cores, memory=memory)}},
    }


def _vmi_spec(session_name: str, runtime: Runtime, vm_config: VMConfig, *, cores: int,
              memory: str) -> Obj:
    return {
        "domain": {
            "cpu": {"cores": cores},
            "memory": {"guest": memory},
            "devices": {
                "disks": [{"name": ROOT_DISK, "disk": {"bus": "virtio"}},
                          {"name": CLOUDINIT_DISK, "disk": {"bus": "virtio"}}],
                # With ports listed, masquerade forwards only those into the guest.
                "interfaces": [{"name": POD_NETWORK, "masquerade": {}, "ports": [
                    {"name": AGUI_PORT_NAME, "port": runtime.port, "protocol": "TCP"}]}],
            },
        },
        "networks": [{"name": POD_NETWORK, "pod": {}}],
        "volumes": [
            {"name": ROOT_DISK, "containerDisk": {"image": vm_config.container_disk_image}},
            {"name": CLOUDINIT_DISK, "cloudInitNoCloud": {
                "secretRef": {"name": cloudinit_secret_name(session_name)}}},
        ],
        "readinessProbe": {"httpGet": {"path": "/health", "port": runtime.port},
                           "initialDelaySeconds": READINESS_INITIAL_DELAY_SECONDS,
                           "periodSeconds": READINESS_PERIOD_SECONDS},
        "terminationGracePeriodSeconds": TERMINATION_GRACE_PERIOD_SECONDS,
    }


def _vm_config(runtime: Runtime) -> VMConfig:
    if runtime.vm is None:
        raise RenderError(INVALID_VM_CONFIG, f"runtime {runtime.id} has executionKind "
                          f"{ExecutionKind.KUBEVIRT_VM} but no vmConfig")
    if not runtime.vm.container_disk_image.strip():
        raise RenderError(INVALID_VM_CONFIG,
                          f"vmConfig.containerDiskImage of runtime {runtime.id} is empty")
    return runtime.vm


def _quantity(value: str, field_name: str, runtime_id: str) -> Decimal:
    """``value`` parsed as a positive quantity; RenderError naming the field otherwise."""
    try:
        amount = parse_quantity(str(value).strip())
    except ValueError:
        amount = None
    if amount is None or not amount > 0:
        raise RenderError(INVALID_VM_CONFIG, f"vmConfig.{field_name} {value!r} of runtime "
                          f"{runtime_id} is not a positive quantity (e.g. 2, 4Gi)")
    return Decimal(amount)


def _cpu_cores(vm_config: VMConfig, runtime_id: str) -> int:
    """``domain.cpu.cores`` is a whole number of virtual CPUs (``2``, ``2000m``; not ``1.5``)."""
    amount = _quantity(vm_config.cpu, "cpu", runtime_id)
    if amount != amount.to_integral_value():
        raise RenderError(INVALID_VM_CONFIG, f"vmConfig.cpu {vm_config.cpu!r} of runtime "
                          f"{runtime_id} must be a whole number of cores")
    return int(amount)


def _memory(vm_config: VMConfig, runtime_id: str) -> str:
    """``domain.memory.guest``, spelled as configured (the diff compares quantities by value)."""
    amount = _quantity(vm_config.memory, "memory", runtime_id)
    if amount != amount.to_integral_value():
        raise RenderError(INVALID_VM_CONFIG, f"vmConfig.memory {vm_config.memory!r} of runtime "
                          f"{runtime_id} must be a whole number of bytes")
    return str(vm_config.memory).strip()


# observe -------------------------------------------------------------------------------------
def _status(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("status") or {}


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _condition(obj: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    for condition in _status(obj).get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return None


def _own_vmi(vm: Mapping[str, Any], vmi: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``vmi`` unless its controller is another VM (one deleted and recreated by that name)."""
    vm_uid = (vm.get("metadata") or {}).get("uid")
    refs = ((vmi or {}).get("metadata") or {}).get("ownerReferences") or ()
    controller = next((r for r in refs if isinstance(r, Mapping) and r.get("controller")), None)
    if vmi is not None and vm_uid and controller and controller.get("uid") != vm_uid:
        return None
    return vmi


def _endpoint(service: Mapping[str, Any] | None) -> str:
    """The AG-UI URL of the session's Service ("" until the cache holds it)."""
    if service is None:
        return ""
    meta, spec = service.get("metadata") or {}, service.get("spec") or {}
    port = next((p.get("port") for p in spec.get("ports") or ()
                 if isinstance(p, Mapping) and p.get("name") == AGUI_PORT_NAME), None)
    if port is None or not meta.get("name") or not meta.get("namespace"):
        return ""
    return f"http://{meta['name']}.{meta['namespace']}.svc:{port}"


def _scheduled() -> dict[str, str]:
    return {"type": "PodScheduled", "status": "True", "reason": "Scheduled", "message": ""}


def _running(vmi: Mapping[str, Any], service: Mapping[str, Any] | None) -> Observation:
    ready = _condition(vmi, "Ready") or {}
    if ready.get("status") == "True":
        return Observation(phase=Phase.RUNNING, ready=True, reason="RunnerReady",
                           message=f"VirtualMachineInstance {_name(vmi)} is running and ready",
                           endpoint=_endpoint(service), conditions=(_scheduled(),))
    detail = str(ready.get("message") or "the readiness probe on /health has not passed")
    return Observation(phase=Phase.CREATING, reason="RunnerNotReady", conditions=(_scheduled(),),
                       message=f"VirtualMachineInstance {_name(vmi)} is running but not "
                               f"ready: {detail}")


def _failed_printable(vm: Mapping[str, Any], vmi: Mapping[str, Any] | None,
                      printable: str) -> Observation:
    """Failed with the printableStatus as reason; the VMI's (or VM's) condition says why."""
    detail = ""
    for obj in (vmi, vm):
        synced = _condition(obj, "Synchronized") or {}
        if synced.get("status") == "False" and synced.get("message"):
            detail = str(synced["message"])
            break
    if not detail and printable == "CrashLoopBackOff":
        failures = (_status(vm).get("startFailure") or {}).get("consecutiveFailCount")
        detail = f"the guest failed {failures or 'repeatedly'} time(s) in a row"
    if not detail and printable == "DataVolumeError":
        detail = "a DataVolume of the VM failed"
    message = f"VirtualMachine {_name(vm)} is {printable}" + (f": {detail}" if detail else "")
    return Observation(phase=Phase.FAILED, reason=printable, message=message)


def _finished(vm: Mapping[str, Any], vmi: Mapping[str, Any], phase: str) -> Observation:
    if phase == "Succeeded":
        return Observation(phase=Phase.COMPLETED, reason="VMISucceeded",
                           message=f"the guest of VirtualMachine {_name(vm)} shut down")
    why = _status(vmi).get("reason")
    return Observation(phase=Phase.FAILED, reason="VMIFailed",
                       message=f"VirtualMachineInstance {_name(vmi) or _name(vm)} failed"
                               + (f": {why}" if why else ""))


def _unschedulable_condition(vm: Mapping[str, Any],
                             vmi: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """PodScheduled=False/Unschedulable of the VMI, else as the VM mirrors it."""
    for obj in (vmi, vm):
        condition = _condition(obj, "PodScheduled")
        if condition is not None:
            unschedulable = (condition.get("status") == "False"
                             and condition.get("reason") == "Unschedulable")
            return condition if unschedulable else None
    return None


def _creating(vm: Mapping[str, Any], vmi: Mapping[str, Any] | None, phase: str,
              printable: str) -> Observation:
    if vmi is None:
        state = printable or "being created"
        return Observation(phase=Phase.CREATING, reason="VMStarting",
                           message=f"VirtualMachine {_name(vm)} is {state}; no instance yet")
    reason = _VMI_CREATING.get(phase, "VMIStarting")
    conditions = (_scheduled(),) if phase == "Scheduled" else ()
    return Observation(phase=Phase.CREATING, reason=reason, conditions=conditions,
                       message=f"VirtualMachineInstance {_name(vmi)} is {phase or 'Pending'}")


def _timestamp(value: Any) -> dt.datetime | None:
    """An RFC 3339 timestamp as an aware datetime; None when absent or unparsable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return _aware(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _aware(moment: dt.datetime) -> dt.datetime:
    """Naive datetimes are UTC (Kubernetes timestamps always are)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
