"""The AgenticSession operator end to end in one process: local API server, kubelet and KubeVirt
simulators, the operator's manager. Assertions are on cluster state."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ambient_ctrl.testing import eventually
from informers.errors import Invalid
from informers.resource import EVENTS, PODS, SECRETS, SERVICES
from reconcilers.resources import AGENTIC_SESSIONS, VIRTUAL_MACHINES
from tests.reconcilers.operator_fixture import NS, World, operator_world


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with operator_world() as w:
        yield w


def test_pod_session_reaches_running(world: World) -> None:
    world.session("pod-a")
    session = world.wait_phase("pod-a", "Running")
    status = session["status"]
    assert status["executionKind"] == "pod" and status["startTime"]
    assert status["endpoint"] == f"http://session-pod-a.{NS}.svc:8001"
    assert world.condition("pod-a", "Ready")["status"] == "True"
    pod = world.get(PODS, "pod-a-runner")
    assert pod is not None
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert world.get(SERVICES, "session-pod-a") is not None
    assert world.get(SECRETS, "pod-a-agui-token") is not None


def test_vm_session_reaches_running(world: World) -> None:
    world.session("vm-a", runtime="claude-vm")
    session = world.wait_phase("vm-a", "Running")
    assert session["status"]["executionKind"] == "kubevirt-vm"
    vm = world.get(VIRTUAL_MACHINES, "vm-a-runner")
    assert vm is not None and vm["spec"]["runStrategy"] and "running" not in vm["spec"]
    volumes = vm["spec"]["template"]["spec"]["volumes"]
    assert any(v.get("cloudInitNoCloud", {}).get("secretRef", {}).get("name") ==
               "vm-a-cloudinit" for v in volumes)
    assert world.get(SECRETS, "vm-a-cloudinit") is not None
    assert world.get(SERVICES, "session-vm-a") is not None


def test_stop_then_restart(world: World) -> None:
    world.session("stopper")
    world.wait_phase("stopper", "Running")
    world.client(AGENTIC_SESSIONS).patch(
        "stopper", {"metadata": {"annotations": {"ambient-code.io/desired-phase": "Stopped"}}},
        NS)
    session = world.wait_phase("stopper", "Stopped")
    assert session["status"]["stoppedReason"] == "UserRequested"
    eventually(lambda: world.get(PODS, "stopper-runner") is None)
    world.client(AGENTIC_SESSIONS).patch(
        "stopper", {"metadata": {"annotations": {"ambient-code.io/desired-phase": "Running"}}},
        NS)
    world.wait_phase("stopper", "Running")
    annotations = world.get(AGENTIC_SESSIONS, "stopper")["metadata"].get("annotations") or {}
    assert "ambient-code.io/desired-phase" not in annotations, "the one-shot intent is cleared"


def test_deleting_a_session_collects_its_children(world: World) -> None:
    world.session("doomed")
    world.wait_phase("doomed", "Running")
    world.client(AGENTIC_SESSIONS).delete("doomed", NS)
    for resource, name in ((PODS, "doomed-runner"), (SERVICES, "session-doomed"),
                           (SECRETS, "doomed-agui-token")):
        eventually(lambda r=resource, n=name: world.get(r, n) is None)


@pytest.mark.parametrize(("name", "scenario", "phase", "reason"), [
    ("exit-zero", "exit:0:0.1", "Completed", ""),
    ("exit-two", "exit:2:0.1", "Failed", "PrerequisiteFailed"),
    ("oom", "oom:0.1", "Failed", "OOMKilled"),
], ids=["exit-0", "exit-2", "oom"])
def test_workload_outcomes(world: World, name: str, scenario: str, phase: str,
                           reason: str) -> None:
    world.session(name, environmentVariables={"ENVTEST_SCENARIO": scenario})
    session = world.wait_phase(name, phase)
    if reason:
        assert session["status"]["stoppedReason"] == reason
    assert session["status"]["completionTime"]


def test_image_pull_failure_fails_the_session(world: World) -> None:
    world.session("badimg", runtime="broken-image")
    session = world.wait_phase("badimg", "Failed")
    assert session["status"]["stoppedReason"] in ("ErrImagePull", "ImagePullBackOff")


def test_vm_image_pull_failure_fails_the_session(world: World) -> None:
    world.session("baddisk", runtime="broken-disk")
    session = world.wait_phase("baddisk", "Failed")
    assert session["status"]["stoppedReason"] in ("ErrImagePull", "ImagePullBackOff")


def test_timeout_fails_a_running_session(world: World) -> None:
    world.session("slowpoke", timeout=1)
    world.wait_phase("slowpoke", "Running")
    session = world.wait_phase("slowpoke", "Failed")
    assert session["status"]["stoppedReason"] == "Timeout"
    eventually(lambda: world.get(PODS, "slowpoke-runner") is None)


@pytest.mark.parametrize(("name", "spec", "reason"), [
    ("unknown-rt", {"runtime": "no-such-runtime"}, "UnknownRuntime"),
    ("reserved-env", {"environmentVariables": {"SESSION_NAME": "x"}}, "ReservedEnvName"),
    ("a" * 56, {}, "InvalidServiceName"),
], ids=["unknown-runtime", "reserved-env", "service-name-too-long"])
def test_bad_input_is_reported_not_retried(world: World, name: str, spec: dict,
                                           reason: str) -> None:
    world.session(name, **spec)
    assert_reported_not_retried(world, name, reason)


def test_an_overlong_runtime_id_is_reported_not_retried(world: World) -> None:
    """Regression: a 50,000-character runtime id made the UnknownRuntime condition message too
    long for a condition; the error was an ordinary one, retried forever with nothing shown.
    (``RUNNER_TYPE`` is the way in: the schema bounds ``spec.runtime``.)"""
    world.session("long-id", environmentVariables={"RUNNER_TYPE": "r" * 50_000})
    assert_reported_not_retried(world, "long-id", "UnknownRuntime")
    assert len(world.condition("long-id", "Ready")["message"]) < 1000


def test_the_schema_bounds_the_runtime_id(world: World) -> None:
    with pytest.raises(Invalid):
        world.session("long-runtime", runtime="r" * 50_000)


def warnings(world: World, name: str, reason: str) -> list[dict[str, Any]]:
    events = world.client(EVENTS).list(NS)["items"]
    return [e for e in events if e["reason"] == reason and e["type"] == "Warning"
            and e["involvedObject"]["name"] == name]


def assert_reported_not_retried(world: World, name: str, reason: str, *,
                                window: float = 0.5) -> None:
    """Ready=False with ``reason``, one Warning Event, and then quiet: a reconcile of a bad
    session records its Event again (the Event's count goes up) and a status write moves its
    resourceVersion, so neither moving for ``window`` seconds means no retries (backoff
    starts at 5 ms: a retrying request would be reconciled some seven times meanwhile)."""
    eventually(lambda: world.condition(name, "Ready").get("reason") == reason
               and warnings(world, name, reason),
               message=f"no Ready=False/{reason} and Warning Event on {name}")
    assert world.condition(name, "Ready")["status"] == "False"

    def snapshot() -> tuple[str, list[int]]:
        session = world.get(AGENTIC_SESSIONS, name) or {}
        return (session["metadata"]["resourceVersion"],
                [e.get("count", 1) for e in warnings(world, name, reason)])

    before = snapshot()
    time.sleep(window)
    assert snapshot() == before, "the bad session was reconciled again"


def test_unmanaged_namespaces_are_ignored(world: World) -> None:
    world.client(AGENTIC_SESSIONS).create({
        "metadata": {"name": "ignored", "namespace": "unmanaged"}, "spec": {}})
    world.session("witness")
    world.wait_phase("witness", "Running")
    ignored = world.get(AGENTIC_SESSIONS, "ignored", "unmanaged")
    assert ignored is not None and not ignored.get("status")


def test_running_session_whose_pod_disappears_fails(world: World) -> None:
    world.session("orphan")
    world.wait_phase("orphan", "Running")
    world.client(PODS).delete("orphan-runner", NS)
    session = world.wait_phase("orphan", "Failed")
    assert session["status"]["stoppedReason"] == "WorkloadLost"


def test_inactivity_timeout_stops_the_session(world: World) -> None:
    world.session("idle", inactivityTimeout=1)
    world.wait_phase("idle", "Running")
    session = world.wait_phase("idle", "Stopped")
    assert session["status"]["stoppedReason"] == "InactivityTimeout"


def test_registry_edit_keeps_running_sessions_on_their_backend(world: World) -> None:
    from tests.reconcilers.operator_fixture import REGISTRY

    flexible = {"id": "flex", "container": {"image": "quay.io/ambient_code/runner:1.0"}}
    world.set_registry([*REGISTRY, flexible])
    world.session("steady", runtime="flex")
    world.wait_phase("steady", "Running")
    as_vm = {"id": "flex", "executionKind": "kubevirt-vm",
             "vmConfig": {"containerDiskImage": "quay.io/ambient_code/runner-disk:1.0"}}
    world.set_registry([*REGISTRY, as_vm])
    world.session("fresh", runtime="flex")
    assert world.wait_phase("fresh", "Running")["status"]["executionKind"] == "kubevirt-vm"
    steady = world.get(AGENTIC_SESSIONS, "steady")
    assert steady["status"]["phase"] == "Running"
    assert steady["status"]["executionKind"] == "pod"
    assert world.condition("steady", "Ready")["status"] == "True"
    assert world.get(PODS, "steady-runner") is not None
    assert world.get(VIRTUAL_MACHINES, "steady-runner") is None


def test_backend_metrics(world: World) -> None:
    world.session("measured")
    world.wait_phase("measured", "Running")
    registry = world.manager.recorder.registry

    def sample(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    assert sample("agentic_session_startup_seconds_count", backend="pod") >= 1
    assert sample("agentic_sessions", backend="pod", phase="Running") >= 1
    assert sample("agentic_session_phase_transitions_total", backend="pod",
                  **{"from": "Creating", "to": "Running"}) >= 1
    assert sample("agentic_session_backend_operation_seconds_count", backend="pod",
                  operation="create") >= 3


def test_vm_session_without_kubevirt_is_reported() -> None:
    with operator_world(kubevirt=False) as bare:
        bare.session("novirt", runtime="claude-vm")
        eventually(lambda: bare.condition("novirt", "Ready").get("reason")
                   == "KubeVirtNotInstalled" and warnings(bare, "novirt", "KubeVirtNotInstalled"),
                   message="no Ready=False/KubeVirtNotInstalled and Warning Event")
        bare.session("podok")
        bare.wait_phase("podok", "Running")
