"""Sessions that run in a KubeVirt VirtualMachine (ADR-0008), under the Pod's contract.

:class:`KubeVirtEnvironment` renders the cloud-init Secret ``<n>-cloudinit`` and the
VirtualMachine ``<n>-runner``; the session's Service, token Secret, RBAC and NetworkPolicy are
the same as a Pod session's (:mod:`.children`). The guest gets what the Pod's runner gets —
the same variables (derived from the Pod's container, so the two cannot drift apart), the
AG-UI and bot tokens, the project's Secrets — through objects the VM references: plain values
in the cloud-init Secret, Secrets shared with virtiofs (:mod:`.cloudinit` says how they become
variables and files, and how a refreshed ``k8s-token`` reaches the guest). Nothing secret is
ever inline in the VirtualMachine.

The template's labels (``agentic-session=<n>``, ``app=ambient-code-runner``) are copied by
KubeVirt to the virt-launcher pod, so the Service and the NetworkPolicy select it as they
select a runner Pod; masquerade networking forwards the runner's port (8001) into the guest.
``sandbox.workspaceSize`` becomes an empty disk formatted and mounted at ``/workspace``.

``observe`` (first match wins):

=======================================================  ========================================
VM absent                                                absent
VM being deleted                                         starting, terminating
VMI Running and Ready (the runner's /health answers)     running (ContainerRunning)
VMI Running, not ready                                   starting
VM printableStatus ErrImagePull, ImagePullBackOff,       failed, reason = the printableStatus
CrashLoopBackOff, DataVolumeError
VMI Succeeded (the guest shut down)                      succeeded (Completed)
VMI Failed                                               failed (RunnerExit)
no VMI and the VM Stopped/Stopping (stopped by someone)  lost (replaced; the session resumes)
anything else                                            starting
=======================================================  ========================================

As for a Pod there is no scheduling timeout: an unschedulable VM stays Creating with
``PodScheduled=False Unschedulable``. The image-pull, DataVolume and crash-loop rows do not
apply to a VMI already ``Scheduled`` (handed to its node): a VM status saying so then lags.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ambient_ctrl.predicate import Funcs
from informers.resource import SECRETS, Resource

from .children import meta, session_owner
from .cloudinit import SECRETS_ROOT, GuestSetup, SecretRef, check_env_names, user_data
from .environment import (
    BackendUnavailable,
    Child,
    Children,
    Obj,
    Observation,
    RenderError,
    RunInputs,
    Runtime,
    update_worth_a_pass,
)
from .pod import run_of, runner_pod, scheduled_condition, workload_meta, workspace_size
from .resources import (
    AGUI_PORT_NAME,
    CLOUDINIT_KEY,
    CLOUDINIT_SECRET_APP,
    RUNNER_CONTAINER,
    VIRTUAL_MACHINE_INSTANCES,
    VIRTUAL_MACHINES,
    ExecutionKind,
    cloudinit_secret_name,
    runner_name,
    selector_labels,
)

RUN_STRATEGY = "RerunOnFailure"
"""KubeVirt restarts a guest that failed (repeated failures show as CrashLoopBackOff → Failed)
and leaves one that shut down cleanly stopped, so the session can reach Completed."""
READINESS_INITIAL_DELAY_SECONDS = 20
READINESS_PERIOD_SECONDS = 10
ROOT_DISK = "rootdisk"
CLOUDINIT_DISK = "cloudinitdisk"
WORKSPACE_DISK = "workspace"
POD_NETWORK = "default"
FAILED_PRINTABLE = frozenset({"ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff",
                              "DataVolumeError"})
_GONE_PRINTABLE = frozenset({"Stopped", "Stopping"})


class KubeVirtEnvironment:
    """The ``kubevirt-vm`` execution environment. ``render`` and ``observe`` are pure."""

    kind: ExecutionKind = ExecutionKind.KUBEVIRT_VM
    owns: Sequence[Child] = (Child(VIRTUAL_MACHINES, runner_name),
            Child(VIRTUAL_MACHINE_INSTANCES, runner_name, rendered=False),
            Child(SECRETS, cloudinit_secret_name))
    noun = "VirtualMachine"
    requires: Resource | None = VIRTUAL_MACHINES

    def unavailable(self, runtime: Runtime, *, recheck_after: float) -> BackendUnavailable:
        return BackendUnavailable(
            "KubeVirtNotInstalled", f"runtime {runtime.id} runs in a KubeVirt VirtualMachine, "
            "but the kubevirt.io/v1 API is not served by this cluster",
            recheck_after=recheck_after)

    def render(self, session: Mapping[str, Any], runtime: Runtime,
               inputs: RunInputs) -> list[Obj]:
        """[cloud-init Secret, VirtualMachine]; RenderError for bad input."""
        if runtime.vm is None:
            raise RenderError("InvalidVMConfig", f'runtime "{runtime.id}" has executionKind '
                              f"{ExecutionKind.KUBEVIRT_VM} but no vmConfig")
        pod = runner_pod(session, runtime, inputs)
        setup, volumes = guest_setup(pod, inputs)
        userdata = user_data(setup, template_name=runtime.vm.cloud_init_template,
                             templates=inputs.cloud_init_templates)
        return [cloudinit_secret(session, userdata),
                virtual_machine(session, runtime, inputs, pod, volumes)]

    def observe(self, session: Mapping[str, Any], children: Children, *,
                now: dt.datetime) -> Observation:
        _, name = meta(session)
        vm = children.get("VirtualMachine", runner_name(name))
        vmi = children.get("VirtualMachineInstance", runner_name(name))
        if vm is None:
            # The guest may outlive its VM for a moment: a stop or a new run waits for it.
            return Observation("starting", terminating=True) if vmi is not None \
                else Observation()
        vmi = _own_vmi(vm, vmi)
        return replace(_observe(vm, vmi), run_started=run_of(vm))


def _observe(vm: Mapping[str, Any], vmi: Mapping[str, Any] | None) -> Observation:
    scheduled = _scheduled(vm, vmi)
    if (vm.get("metadata") or {}).get("deletionTimestamp"):
        return Observation("starting", terminating=True, scheduled=scheduled)
    phase = str(_status(vmi).get("phase") or "")
    printable = str(_status(vm).get("printableStatus") or "")
    if phase == "Running":
        if (_condition(vmi, "Ready") or {}).get("status") == "True":
            return Observation("running", reason="ContainerRunning",
                               message="Runner VM is running and its runner answers",
                               scheduled=scheduled, ready=True)
        return Observation("starting", scheduled=scheduled)
    if printable in FAILED_PRINTABLE and phase != "Scheduled":
        return Observation("failed", reason=printable, scheduled=scheduled,
                           message=_printable_detail(vm, vmi, printable))
    if phase == "Succeeded":
        return Observation("succeeded", reason="Completed", scheduled=scheduled,
                           message="Runner VM shut down")
    if phase == "Failed":
        why = _status(vmi).get("reason")
        return Observation("failed", reason="RunnerExit", scheduled=scheduled,
                           message=f"Runner VM failed{f': {why}' if why else ''}")
    if vmi is None and printable in _GONE_PRINTABLE:
        return Observation("lost", reason="VMStopped", scheduled=scheduled,
                           message=f"VirtualMachine {_name(vm)} is {printable}")
    return Observation("starting", scheduled=scheduled)


def _vm_reads(vm: Mapping[str, Any]) -> tuple[Any, ...]:
    """What :func:`_observe` reads of a VM's status."""
    status = _status(vm)
    return (status.get("printableStatus"), status.get("startFailure"),
            _condition(vm, "Synchronized"), _condition(vm, "PodScheduled"))


def _vmi_reads(vmi: Mapping[str, Any]) -> tuple[Any, ...]:
    """What :func:`_observe` reads of a VM instance's status."""
    status = _status(vmi)
    return (status.get("phase"), status.get("reason"), status.get("nodeName"),
            _condition(vmi, "Ready"), _condition(vmi, "PodScheduled"),
            _condition(vmi, "Synchronized"))


RUNNER_VM_CHANGED = Funcs(on_update=lambda old, new: update_worth_a_pass(old, new, _vm_reads),
                          inline=True)
"""The predicate of the session controller's watch of runner VMs: KubeVirt's controller writes
a VM's status as its instance moves (the mirrored conditions, ``created``, ``ready``,
``observedGeneration``), and most of those writes say nothing the instance's own update did
not (:func:`~.environment.update_worth_a_pass`)."""

RUNNER_VMI_CHANGED = Funcs(on_update=lambda old, new: update_worth_a_pass(old, new, _vmi_reads),
                           inline=True)
"""The predicate of its watch of their instances: virt-handler and the guest agent report
interfaces, volumes, guest OS details and the launcher pod in the instance's status, none of
which a pass reads."""


# render --------------------------------------------------------------------------------------
def guest_setup(pod: Mapping[str, Any], inputs: RunInputs
                ) -> tuple[GuestSetup, list[dict[str, Any]]]:
    """What the guest needs, read off the Pod that the same session would run in, and the
    VM volumes (virtiofs) that share its Secrets."""
    spec = pod["spec"]
    runner = next(c for c in spec["containers"] if c["name"] == RUNNER_CONTAINER)
    sidecar = next((c for c in spec["containers"] if c["name"] != RUNNER_CONTAINER), None)
    init = (spec.get("initContainers") or [None])[0]
    token_volume = "runner-token"
    secret_volumes: dict[str, str] = {inputs.token_secret: token_volume}
    volumes: list[dict[str, Any]] = []
    for env_from in runner.get("envFrom") or ():
        name = env_from["secretRef"]["name"]
        secret_volumes.setdefault(name, _volume_name(name))
    for volume in spec["volumes"]:
        if "secret" in volume:
            secret_volumes.setdefault(volume["secret"]["secretName"], volume["name"])
    refs: list[SecretRef] = []
    state_sync_refs: list[SecretRef] = []
    plain: dict[str, str] = {}
    state_sync: dict[str, str] = {}
    # The runner's variables are the runner's; init-hydrate's and state-sync's are theirs
    # (BOT_TOKEN, a project's own S3 credentials), as in the Pod.
    for container, into, into_refs in ((runner, plain, refs), (init, state_sync, state_sync_refs),
                                       (sidecar, state_sync, state_sync_refs)):
        for var in (container or {}).get("env") or ():
            ref = (var.get("valueFrom") or {}).get("secretKeyRef")
            if ref is None:
                into.setdefault(var["name"], str(var.get("value", "")))
                continue
            volume = secret_volumes.setdefault(ref["name"], _volume_name(ref["name"]))
            if all(r.name != var["name"] for r in into_refs):
                into_refs.append(SecretRef(var["name"], volume, ref["key"],
                                           optional=bool(ref.get("optional"))))
    check_env_names([*plain, *state_sync, *(r.name for r in (*refs, *state_sync_refs))])
    for secret, volume in secret_volumes.items():
        volumes.append({"name": volume, "secret": {"secretName": secret}})
    for volume in spec["volumes"]:
        if "configMap" in volume:
            volumes.append({"name": volume["name"], "configMap": dict(volume["configMap"])})
    env_from = [secret_volumes[e["secretRef"]["name"]] for e in runner.get("envFrom") or ()]
    setup = GuestSetup(env=plain, secret_refs=refs, env_from=env_from,
                       volumes=[v["name"] for v in volumes],
                       links=_links(runner, spec["volumes"], secret_volumes),
                       state_sync_env=state_sync,
                       workspace=any(v["name"] == "workspace" for v in spec["volumes"]),
                       hydrate=init is not None, state_sync=sidecar is not None,
                       state_sync_refs=state_sync_refs)
    return setup, volumes


def _links(runner: Mapping[str, Any], pod_volumes: list[dict[str, Any]],
           secret_volumes: Mapping[str, str]) -> list[tuple[str, str]]:
    """Where the Pod mounts a Secret or ConfigMap file (the bot token, Vertex credentials,
    the CA bundle), a guest symlink into the share: (path in the guest, target)."""
    by_name = {v["name"]: v for v in pod_volumes}
    links: list[tuple[str, str]] = []
    for mount in runner.get("volumeMounts") or ():
        source = by_name.get(mount["name"]) or {}
        if "secret" in source:
            share = f"{SECRETS_ROOT}/{secret_volumes[source['secret']['secretName']]}"
            items = source["secret"].get("items")
        elif "configMap" in source:
            share, items = f"{SECRETS_ROOT}/{mount['name']}", None
        else:
            continue
        if mount.get("subPath"):
            links.append((mount["mountPath"], f"{share}/{mount['subPath']}"))
        elif items:
            links += [(f"{mount['mountPath']}/{item['path']}", f"{share}/{item['key']}")
                      for item in items]
        else:
            links.append((mount["mountPath"], share))
    return links


def _volume_name(secret: str) -> str:
    """A volume name (DNS label) for a shared Secret."""
    return secret[:63].rstrip("-.") or "secret"


def cloudinit_secret(session: Mapping[str, Any], userdata: str) -> Obj:
    namespace, name = meta(session)
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": cloudinit_secret_name(name), "namespace": namespace,
                         "labels": {"app": CLOUDINIT_SECRET_APP, "agentic-session": name},
                         "ownerReferences": [session_owner(session)]},
            "stringData": {CLOUDINIT_KEY: userdata}}


def virtual_machine(session: Mapping[str, Any], runtime: Runtime, inputs: RunInputs,
                    pod: Mapping[str, Any], shared: list[dict[str, Any]]) -> Obj:
    _, name = meta(session)
    assert runtime.vm is not None
    disks: list[dict[str, Any]] = [{"name": ROOT_DISK, "disk": {"bus": "virtio"}},
                                   {"name": CLOUDINIT_DISK, "disk": {"bus": "virtio"}}]
    volumes: list[dict[str, Any]] = [
        {"name": ROOT_DISK, "containerDisk": {"image": runtime.vm.container_disk_image}},
        {"name": CLOUDINIT_DISK, "cloudInitNoCloud": {
            "secretRef": {"name": cloudinit_secret_name(name)}}}]
    if runtime.sandbox.needs_workspace:
        disks.append({"name": WORKSPACE_DISK, "serial": WORKSPACE_DISK,
                      "disk": {"bus": "virtio"}})
        volumes.append({"name": WORKSPACE_DISK,
                        "emptyDisk": {"capacity": workspace_size(runtime)}})
    volumes += shared
    spec = pod["spec"]
    return {
        "apiVersion": VIRTUAL_MACHINES.api_version, "kind": VIRTUAL_MACHINES.kind,
        "metadata": workload_meta(session, inputs),
        "spec": {"runStrategy": RUN_STRATEGY, "template": {
            "metadata": {"labels": selector_labels(name)},
            "spec": {
                "domain": {
                    "cpu": {"cores": runtime.vm.cpu},
                    "memory": {"guest": runtime.vm.memory},
                    "devices": {
                        "disks": disks,
                        "filesystems": [{"name": v["name"], "virtiofs": {}} for v in shared],
                        "interfaces": [{"name": POD_NETWORK, "masquerade": {}, "ports": [
                            {"name": AGUI_PORT_NAME, "port": runtime.port,
                             "protocol": "TCP"}]}],
                    },
                },
                "networks": [{"name": POD_NETWORK, "pod": {}}],
                "volumes": volumes,
                "readinessProbe": {"httpGet": {"path": "/health", "port": runtime.port},
                                   "initialDelaySeconds": READINESS_INITIAL_DELAY_SECONDS,
                                   "periodSeconds": READINESS_PERIOD_SECONDS},
                "terminationGracePeriodSeconds": spec["terminationGracePeriodSeconds"],
            }}},
    }


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


def _scheduled(vm: Mapping[str, Any], vmi: Mapping[str, Any] | None) -> dict[str, str] | None:
    node = _status(vmi).get("nodeName")
    if node:
        return {"status": "True", "reason": "Scheduled", "message": f"Scheduled on {node}"}
    for obj in (vmi, vm):
        condition = _condition(obj, "PodScheduled")
        if condition is not None and condition.get("status") == "False":
            return scheduled_condition({"status": {"conditions": [condition]}})
    return None


def _printable_detail(vm: Mapping[str, Any], vmi: Mapping[str, Any] | None,
                      printable: str) -> str:
    detail = ""
    for obj in (vmi, vm):
        synced = _condition(obj, "Synchronized") or {}
        if synced.get("status") == "False" and synced.get("message"):
            detail = str(synced["message"])
            break
    if not detail and printable == "CrashLoopBackOff":
        failures = (_status(vm).get("startFailure") or {}).get("consecutiveFailCount")
        detail = f"the guest failed {failures or 'repeatedly'} time(s) in a row"
    return f"VirtualMachine {_name(vm)} is {printable}" + (f": {detail}" if detail else "")
