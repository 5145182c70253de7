"""The AgenticSession operator end to end in one process: local API server, kubelet and KubeVirt
simulators, the operator's manager. Assertions are on cluster state."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from ambient_ctrl.testing import eventually
from informers.errors import Invalid
from informers.resource import CONFIGMAPS, EVENTS, PODS, SECRETS, SERVICES
from reconcilers.reconciler import OperatorOptions
from reconcilers.resources import (
    AGENTIC_SESSIONS,
    VIRTUAL_MACHINE_INSTANCES,
    VIRTUAL_MACHINES,
)
from tests.reconcilers.operator_fixture import (
    NS,
    REGISTRY_NS,
    World,
    kubevirt_simulator,
    operator_world,
)


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


POD_CHILDREN = ((PODS, "{}-runner"), (SERVICES, "session-{}"), (SECRETS, "{}-agui-token"))
VM_CHILDREN = ((VIRTUAL_MACHINES, "{}-runner"), (VIRTUAL_MACHINE_INSTANCES, "{}-runner"),
               (SERVICES, "session-{}"), (SECRETS, "{}-agui-token"), (SECRETS, "{}-cloudinit"))


def ask(world: World, name: str, phase: str) -> None:
    """The user's intent: ``desired-phase`` = ``phase`` (Stopped, or Running to restart)."""
    world.client(AGENTIC_SESSIONS).patch(
        name, {"metadata": {"annotations": {"ambient-code.io/desired-phase": phase}}}, NS)


def present(world: World, name: str, children: tuple[tuple[Any, str], ...]) -> list[str]:
    return [f"{resource.kind}/{child.format(name)}" for resource, child in children
            if world.get(resource, child.format(name)) is not None]


def sample(world: World, name: str, **labels: str) -> float:
    return world.manager.recorder.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(("name", "spec", "children"), [
    ("stopper", {}, POD_CHILDREN),
    ("vm-stopper", {"runtime": "claude-vm"}, VM_CHILDREN),
], ids=["pod", "kubevirt-vm"])
def test_stop_removes_every_child_and_restart_brings_them_back(
        world: World, name: str, spec: dict[str, Any],
        children: tuple[tuple[Any, str], ...]) -> None:
    world.session(name, **spec)
    backend = world.wait_phase(name, "Running")["status"]["executionKind"]
    assert len(present(world, name, children)) == len(children)
    deletes = sample(world, "agentic_session_backend_operation_seconds_count", backend=backend,
                     operation="delete")
    ask(world, name, "Stopped")
    session = world.wait_phase(name, "Stopped")
    assert session["status"]["stoppedReason"] == "UserRequested"
    assert present(world, name, children) == [], "a stopped session keeps no children"
    assert sample(world, "agentic_session_backend_operation_seconds_count", backend=backend,
                  operation="delete") >= deletes + len(children) - 1  # the VMI goes with its VM
    ask(world, name, "Running")
    world.wait_phase(name, "Running")
    annotations = world.get(AGENTIC_SESSIONS, name)["metadata"].get("annotations") or {}
    assert "ambient-code.io/desired-phase" not in annotations, "the one-shot intent is cleared"
    assert len(present(world, name, children)) == len(children)


def upsert_runtime(world: World, entry: dict[str, Any]) -> None:
    """Add or replace one registry entry, keeping the others (other tests' sessions use them)."""
    configmap = world.get(CONFIGMAPS, "ambient-agent-registry", REGISTRY_NS) or {}
    entries = orjson.loads(configmap["data"]["agent-registry.json"])
    world.set_registry([*(e for e in entries if e.get("id") != entry["id"]), entry])


def runner_env(world: World, name: str) -> dict[str, str]:
    pod = world.get(PODS, f"{name}-runner") or {}
    container = (pod.get("spec") or {}).get("containers", [{}])[0]
    return {e["name"]: e.get("value", "") for e in container.get("env") or ()}


@pytest.mark.parametrize("edit", ["session-env", "registry-env"])
def test_an_edit_to_a_running_pod_waits_for_the_next_run(world: World, edit: str) -> None:
    """Regression: an immutable change to a running session's pod (an env var from its spec
    or from its runtime's registry entry) deleted the pod to recreate it, and the next
    reconcile failed the session as WorkloadLost — a registry edit killed every session of the
    runtime. The pod now stays; RestartRequired says the change waits for the next run."""
    name, runtime = f"edit-{edit}", f"rt-{edit}"
    entry = {"id": runtime, "container": {"image": "quay.io/ambient_code/runner:1.0"}}
    upsert_runtime(world, entry)
    world.session(name, runtime=runtime)
    world.wait_phase(name, "Running")
    uid = world.get(PODS, f"{name}-runner")["metadata"]["uid"]
    if edit == "session-env":
        world.client(AGENTIC_SESSIONS).patch(
            name, {"spec": {"environmentVariables": {"EXTRA": "1"}}}, NS)
    else:
        upsert_runtime(world, {**entry, "container": {**entry["container"],
                                                      "env": {"EXTRA": "1"}}})
    eventually(lambda: world.condition(name, "RestartRequired").get("status") == "True",
               message="no RestartRequired=True")
    condition = world.condition(name, "RestartRequired")
    assert condition["reason"] == "ImmutableFieldsChanged"
    assert "spec.containers[name=runner].env[name=EXTRA]" in condition["message"]
    assert world.phase(name) == "Running"
    assert world.condition(name, "Ready")["status"] == "True"
    assert world.get(PODS, f"{name}-runner")["metadata"]["uid"] == uid
    assert "EXTRA" not in runner_env(world, name)

    ask(world, name, "Stopped")
    world.wait_phase(name, "Stopped")
    ask(world, name, "Running")
    world.wait_phase(name, "Running")
    assert world.get(PODS, f"{name}-runner")["metadata"]["uid"] != uid
    assert runner_env(world, name)["EXTRA"] == "1"
    eventually(lambda: world.condition(name, "RestartRequired").get("status") == "False",
               message="RestartRequired stayed True after the restart")


def test_ordinary_sessions_have_no_restart_required_condition(world: World) -> None:
    world.session("plain")
    world.wait_phase("plain", "Running")
    assert world.condition("plain", "RestartRequired") == {}


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
    # The timeout counts from creation, in whole seconds: 2 leaves at least one to be Running.
    world.session("slowpoke", timeout=2)
    world.wait_phase("slowpoke", "Running")
    session = world.wait_phase("slowpoke", "Failed")
    assert session["status"]["stoppedReason"] == "Timeout"
    assert present(world, "slowpoke", POD_CHILDREN) == []


def test_timeout_fails_a_session_stuck_creating(world: World) -> None:
    """Regression: the timeout counted from Running only, so a session whose pod could not be
    scheduled stayed Creating for good."""
    world.session("stuck", timeout=1, environmentVariables={"ENVTEST_SCENARIO": "unschedulable"})
    eventually(lambda: world.condition("stuck", "PodScheduled").get("status") == "False",
               message="the runner pod was scheduled")
    session = world.wait_phase("stuck", "Failed")
    assert session["status"]["stoppedReason"] == "Timeout"
    assert "startTime" not in session["status"], "it never ran"
    assert present(world, "stuck", POD_CHILDREN) == []


def test_startup_after_a_restart_counts_from_the_restart(world: World) -> None:
    """Regression: the startup latency of a restarted run was measured from the session's
    creation, so it grew with the time the session had been stopped."""
    world.session("again")
    world.wait_phase("again", "Running")
    ask(world, "again", "Stopped")
    stopped = world.wait_phase("again", "Stopped")["status"]["completionTime"]
    time.sleep(2.5)  # creation-based startup of the next run would be over 2.5 s
    count = sample(world, "agentic_session_startup_seconds_count", backend="pod")
    total = sample(world, "agentic_session_startup_seconds_sum", backend="pod")
    ask(world, "again", "Running")
    status = world.wait_phase("again", "Running")["status"]
    assert status["runStartTime"] > stopped  # RFC 3339 in UTC: text order is time order
    assert sample(world, "agentic_session_startup_seconds_count", backend="pod") == count + 1
    # Second-precision timestamps: the run's start may read up to a second early.
    assert sample(world, "agentic_session_startup_seconds_sum", backend="pod") - total < 2.0


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
    assert sample(world, "agentic_session_startup_seconds_count", backend="pod") >= 1
    assert sample(world, "agentic_sessions", backend="pod", phase="Running") >= 1
    assert sample(world, "agentic_session_phase_transitions_total", backend="pod",
                  **{"from": "Creating", "to": "Running"}) >= 1
    assert sample(world, "agentic_session_backend_operation_seconds_count", backend="pod",
                  operation="create") >= 3


def test_vm_session_without_kubevirt_runs_once_kubevirt_is_installed() -> None:
    """Regression: KubeVirt was looked for once, at start-up; installed later, VM sessions
    kept failing with KubeVirtNotInstalled (a terminal error: never retried) and VMs were
    never watched."""
    options = OperatorOptions(registry_namespace=REGISTRY_NS, kubevirt_recheck=0.5)
    with operator_world(kubevirt=False, options=options) as bare:
        bare.session("novirt", runtime="claude-vm")
        eventually(lambda: bare.condition("novirt", "Ready").get("reason")
                   == "KubeVirtNotInstalled" and warnings(bare, "novirt", "KubeVirtNotInstalled"),
                   message="no Ready=False/KubeVirtNotInstalled and Warning Event")
        bare.session("podok")
        bare.wait_phase("podok", "Running")
        kubevirt = kubevirt_simulator()
        bare.api.call(kubevirt.start)  # installs the kubevirt.io/v1 CRDs, as virt-operator
        try:
            session = bare.wait_phase("novirt", "Running")
            assert session["status"]["executionKind"] == "kubevirt-vm"
            assert bare.condition("novirt", "Ready")["status"] == "True"
            # The VM is watched now: a stop is seen through to the VM's and VMI's deletion.
            ask(bare, "novirt", "Stopped")
            bare.wait_phase("novirt", "Stopped")
            assert present(bare, "novirt", VM_CHILDREN) == []
        finally:
            bare.api.call(lambda _: kubevirt.stop())
