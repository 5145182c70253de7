"""VirtualMachines: run strategies, the VMI a VM starts, and the status virt-controller writes.

Pure functions over a VM, its VMI (or None) and the simulator's :class:`VMMemory`. The
``printableStatus`` rules and their precedence are KubeVirt's (first match wins): Terminating,
Stopping, Running, DataVolumeError, ErrorUnschedulable, ErrImagePull, ImagePullBackOff,
Starting, CrashLoopBackOff, Stopped, else Unknown.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from envtest.simulators import podstatus
from envtest.simulators.kubevirt_crds import API_VERSION
from envtest.simulators.kubevirt_vmi import FINAL, owner_reference
from envtest.simulators.scenario import SCENARIO_ANNOTATION

RUNNING_STRATEGIES = ("Always", "RerunOnFailure", "Once")
GENERATION_ANNOTATION = "kubevirt.io/vm-generation"
VMI_FINALIZER = "kubevirt.io/virtualMachineControllerFinalize"
"""Held on the VMIs a VM starts until the guest has stopped (what makes "Stopping" visible)."""


@dataclass(slots=True)
class VMMemory:
    """The VM controller's memory of one VM (by UID)."""

    failures: int = 0
    """Consecutive failed instances (``status.startFailure.consecutiveFailCount``)."""
    last_failed_uid: str = ""
    retry_at: float = 0.0
    """Monotonic time before which no new instance starts (crash-loop back-off)."""
    retry_at_wall: str = ""
    done: bool = False
    """No new instance: ``Once`` started one, or ``RerunOnFailure``'s one succeeded."""


def run_strategy(vm: Mapping[str, Any]) -> str:
    """``spec.runStrategy``, or what the deprecated ``spec.running`` means; Halted if neither."""
    spec = vm.get("spec") or {}
    if isinstance(spec.get("runStrategy"), str):
        return str(spec["runStrategy"])
    running = spec.get("running")
    return "Always" if running is True else "Halted"


def controlled_by(obj: Mapping[str, Any] | None, owner_uid: str) -> bool:
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or ()
    return any(r.get("controller") and r.get("uid") == owner_uid for r in refs)


def vmi_manifest(vm: Mapping[str, Any]) -> dict[str, Any]:
    """The VMI the VM controller creates: the template, owned by the VM, same name."""
    meta = vm["metadata"]
    template = (vm.get("spec") or {}).get("template") or {}
    template_meta = template.get("metadata") or {}
    annotations = {**(template_meta.get("annotations") or {}),
                   "kubevirt.io/latest-observed-api-version": "v1",
                   "kubevirt.io/storage-observed-api-version": "v1",
                   GENERATION_ANNOTATION: str(meta.get("generation", 1))}
    scenario = (meta.get("annotations") or {}).get(SCENARIO_ANNOTATION)
    if isinstance(scenario, str):  # the simulator's hook travels with the instance
        annotations[SCENARIO_ANNOTATION] = scenario
    return {
        "apiVersion": API_VERSION, "kind": "VirtualMachineInstance",
        "metadata": {"name": meta["name"], "labels": dict(template_meta.get("labels") or {}),
                     "annotations": annotations, "finalizers": [VMI_FINALIZER],
                     "ownerReferences": [owner_reference(vm, "VirtualMachine", API_VERSION)]},
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def _condition(vmi: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any]:
    for cond in ((vmi or {}).get("status") or {}).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return {}


def printable_status(vm: Mapping[str, Any], vmi: Mapping[str, Any] | None, *, strategy: str,
                     start_expected: bool, failures: int, datavolume_error: bool) -> str:
    phase = ((vmi or {}).get("status") or {}).get("phase", "")
    final = phase in FINAL
    scheduled, synced = _condition(vmi, "PodScheduled"), _condition(vmi, "Synchronized")
    rules = (
        ("Terminating", bool(vm["metadata"].get("deletionTimestamp"))),
        ("Stopping", vmi is not None and not final and (
            bool(vmi["metadata"].get("deletionTimestamp")) or strategy not in RUNNING_STRATEGIES)),
        ("Running", phase == "Running"),
        ("DataVolumeError", datavolume_error),
        ("ErrorUnschedulable", scheduled.get("status") == "False"
         and scheduled.get("reason") == "Unschedulable"),
        ("ErrImagePull", synced.get("status") == "False"
         and synced.get("reason") == "ErrImagePull"),
        ("ImagePullBackOff", synced.get("status") == "False"
         and synced.get("reason") == "ImagePullBackOff"),
        ("Starting", start_expected if vmi is None else phase in ("", "Pending", "Scheduling",
                                                                  "Scheduled")),
        ("CrashLoopBackOff", (vmi is None or final) and not start_expected and failures > 0
         and strategy in ("Always", "RerunOnFailure")),
        ("Stopped", final if vmi is not None else not start_expected),
    )
    return next((name for name, matches in rules if matches), "Unknown")


def vm_status(vm: Mapping[str, Any], vmi: Mapping[str, Any] | None, memory: VMMemory, *,
              strategy: str, start_expected: bool, datavolume_error: bool,
              now: str) -> dict[str, Any]:
    """The VM's status: printableStatus, ready/created, conditions mirrored from the VMI."""
    old = vm.get("status") or {}
    previous = old.get("conditions") or []
    ready = _condition(vmi, "Ready")
    if vmi is None:
        ready_cond = podstatus.condition("Ready", False, now=now, previous=previous,
                                         reason="VMINotExists", message="VMI does not exist")
    elif ready:
        ready_cond = dict(ready)
    else:
        ready_cond = podstatus.condition("Ready", False, now=now, previous=previous,
                                         reason="VMIConditionMissing",
                                         message="VMI is missing the Ready condition")
    mirrored = [dict(c) for c in ((vmi or {}).get("status") or {}).get("conditions") or ()
                if isinstance(c, dict) and c.get("type") not in ("Ready", "Failure")]
    status: dict[str, Any] = {
        "printableStatus": printable_status(
            vm, vmi, strategy=strategy, start_expected=start_expected, failures=memory.failures,
            datavolume_error=datavolume_error),
        "conditions": [ready_cond, *mirrored], "runStrategy": strategy,
        "desiredGeneration": vm["metadata"].get("generation", 1)}
    generation = ((vmi or {}).get("metadata", {}).get("annotations") or {}).get(
        GENERATION_ANNOTATION) or old.get("observedGeneration")
    if generation:
        status["observedGeneration"] = int(generation)
    if vmi is not None:
        status["created"] = True  # bools are omitempty in KubeVirt's API: absent means false
        if ((vmi.get("status") or {}).get("phase") == "Running"
                and ready_cond.get("status") == "True"):
            status["ready"] = True
    if memory.failures:
        status["startFailure"] = {"consecutiveFailCount": memory.failures,
                                  "lastFailedVMIUID": memory.last_failed_uid,
                                  "retryAfterTimestamp": memory.retry_at_wall}
    return status
