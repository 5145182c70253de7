"""Scenario hooks: an annotation that makes a simulator act out a failure, as real ones look.

The value of the annotation ``envtest.ambient-code.io/scenario`` on a Pod (kubelet simulator) or
a VirtualMachine (KubeVirt simulator) selects the scenario. Objects made by an operator under
test carry no such annotation, so two more sources are read, in this order: a container's
environment variable ``ENVTEST_SCENARIO`` (pods and virt-launcher pods), and an image name
(container or containerDisk) containing ``does-not-exist``, which fails to pull as on a real
cluster (``image-pull-error``). ``T`` is seconds (a decimal, >= 0),
``N`` an exit code (0-255). Whitespace around the value is ignored; a malformed value is logged
and ignored — the object then behaves normally.

Pods::

    scenario  := behaviour ["@" container]      (without "@", every container acts it out)
    behaviour := "image-pull-error"             ErrImagePull, then ImagePullBackOff; Pending
               | "crash-loop" [":" T]           runs T s (default 0.5), exits 1 (Error); restarts
                                                per restartPolicy (CrashLoopBackOff) or Failed
               | "exit:" N [":" T]              runs T s (default 0), exits N (Completed for 0,
                                                Error otherwise); Succeeded/Failed under Never
               | "oom" [":" T]                  runs T s (default 0.5), OOMKilled, exit code 137
               | "unschedulable"                no node: PodScheduled=False Unschedulable
               | "never-ready"                  Running, readiness never passes

A container env var ``ENVTEST_RUNNER_STANDIN`` (not a scenario: a pod that runs normally)
gives the container a runner stand-in answering upstream runner's HTTP API, reachable through
the Service proxy; see :mod:`.standin`.

VirtualMachines (copied to the VMI; the launcher pod gets the pod-level part)::

    scenario := "image-pull-error"              containerDisk pull fails; VMI stays Scheduling
              | "unschedulable"                 VMI Scheduling, PodScheduled=False Unschedulable
              | "never-ready"                   VMI Running, Ready=False
              | "crash:" T                      T s after Running the guest crashes: VMI Failed
              | "guest-shutdown:" T             T s after Running the guest powers off:
                                                VMI Succeeded
              | "datavolume-error"              a DataVolume fails: VMI stays Pending
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger("envtest.simulators")

SCENARIO_ANNOTATION = "envtest.ambient-code.io/scenario"
DEFAULT_RUN = 0.5
"""Seconds a crash-loop or oom container runs before it dies, unless the scenario says."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PodScenario:
    """What the kubelet simulator makes of the containers it applies to."""

    kind: str
    """``image-pull-error``, ``exit``, ``unschedulable`` or ``never-ready``."""
    exit_code: int = 0
    reason: str = ""
    """The terminated state's reason for ``exit``: Completed, Error or OOMKilled."""
    after: float = 0.0
    """Seconds a container runs before it exits (``exit``)."""
    container: str = ""
    """The one container it applies to; "" for all."""

    def applies_to(self, container: str) -> bool:
        return not self.container or self.container == container


@dataclass(frozen=True, slots=True)
class VMScenario:
    """What the KubeVirt simulator makes of a VM's instances."""

    kind: str
    """``image-pull-error``, ``unschedulable``, ``never-ready``, ``crash``, ``guest-shutdown``
    or ``datavolume-error``."""
    after: float = 0.0

    @property
    def pod_scenario(self) -> str:
        """The launcher pod's part, for the kubelet simulator ("" when the VMI alone acts)."""
        return self.kind if self.kind in ("image-pull-error", "unschedulable",
                                          "never-ready") else ""


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"not a duration: {text!r}")
    return value


def parse_pod(value: str) -> PodScenario:
    """The pod scenario ``value`` names; ValueError when malformed."""
    behaviour, _, container = value.strip().partition("@")
    kind, *args = behaviour.split(":")
    if kind in ("image-pull-error", "unschedulable", "never-ready") and not args:
        return PodScenario(kind, container=container)
    if kind in ("crash-loop", "oom") and len(args) <= 1:
        after = _seconds(args[0]) if args else DEFAULT_RUN
        code, reason = (1, "Error") if kind == "crash-loop" else (137, "OOMKilled")
        return PodScenario("exit", code, reason, after, container)
    if kind == "exit" and len(args) in (1, 2):
        code = int(args[0])
        if not 0 <= code <= 255:
            raise ValueError(f"exit code out of range: {code}")
        after = _seconds(args[1]) if len(args) == 2 else 0.0
        return PodScenario("exit", code, "Completed" if code == 0 else "Error", after, container)
    raise ValueError(f"unknown pod scenario: {value!r}")


def parse_vm(value: str) -> VMScenario:
    """The VM scenario ``value`` names; ValueError when malformed."""
    kind, *args = value.strip().split(":")
    if kind in ("image-pull-error", "unschedulable", "never-ready",
                "datavolume-error") and not args:
        return VMScenario(kind)
    if kind in ("crash", "guest-shutdown") and len(args) == 1:
        return VMScenario(kind, _seconds(args[0]))
    raise ValueError(f"unknown VM scenario: {value!r}")


SCENARIO_ENV = "ENVTEST_SCENARIO"
MISSING_IMAGE_MARK = "does-not-exist"


def _from_spec(obj: Mapping[str, Any]) -> str | None:
    """A scenario named by the object's spec: a container env var, or an image that cannot
    exist (pods, VMs and VMIs)."""
    spec = obj.get("spec") or {}
    template = (spec.get("template") or {}).get("spec") or {}  # a VirtualMachine
    containers = list(spec.get("containers") or ())
    for container in containers:
        for env in container.get("env") or ():
            if env.get("name") == SCENARIO_ENV and env.get("value"):
                return str(env["value"])
    images = [c.get("image", "") for c in containers]
    for volumes in (spec.get("volumes"), template.get("volumes")):
        images += [(v.get("containerDisk") or {}).get("image", "") for v in volumes or ()]
    if any(MISSING_IMAGE_MARK in str(image) for image in images):
        return "image-pull-error"
    return None


def scenario_of(obj: Mapping[str, Any], parse: Callable[[str], T]) -> T | None:
    """The object's scenario, or None (absent or malformed — the latter is logged)."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(SCENARIO_ANNOTATION)
    if not isinstance(value, str) or not value.strip():
        value = _from_spec(obj)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return parse(value)
    except ValueError as exc:
        meta = obj.get("metadata") or {}
        log.warning("scenario annotation ignored", extra={
            "object": f"{meta.get('namespace', '')}/{meta.get('name', '')}", "value": value,
            "error": str(exc)})
        return None
