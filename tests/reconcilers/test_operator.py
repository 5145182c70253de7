"""The AgenticSession operator in one process: local API server, kubelet and KubeVirt
simulators, the operator's manager, the upstream registry, sessions created with the body
upstream's backend sends. Assertions are on cluster state (e2e/test_upstream_contract.py checks
the same contract field by field against real processes)."""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from ambient_ctrl.testing import eventually
from informers.errors import AlreadyExists
from informers.resource import CONFIGMAPS, NAMESPACES, PODS, SECRETS, SERVICES, Resource
from reconcilers.reconciler import OperatorOptions
from reconcilers.resources import (
    AGENTIC_SESSIONS,
    PROJECT_SETTINGS,
    REGISTRY_CONFIGMAP,
    ROLE_BINDINGS,
    ROLES,
    SERVICE_ACCOUNTS,
    VIRTUAL_MACHINE_INSTANCES,
    VIRTUAL_MACHINES,
)
from tests.reconcilers.operator_fixture import (
    DESIRED_PHASE,
    NS,
    REGISTRY_NS,
    START_REQUESTED_AT,
    STOP_REASON,
    STOP_REQUESTED_AT,
    VM_RUNTIME,
    World,
    kubevirt_simulator,
    operator_world,
    rfc3339,
)

TOKEN_REFRESHED_AT = "ambient-code.io/token-refreshed-at"


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with operator_world() as w:
        yield w


# what a session has --------------------------------------------------------------------------
def run_children(name: str, runtime: str | None) -> list[tuple[Resource, str]]:
    """What a run has and a stop removes: the workload (and a VM's instance and cloud-init
    Secret) and the Service."""
    if runtime == VM_RUNTIME:
        return [(VIRTUAL_MACHINES, f"{name}-runner"), (VIRTUAL_MACHINE_INSTANCES, f"{name}-runner"),
                (SECRETS, f"{name}-cloudinit"), (SERVICES, f"session-{name}")]
    return [(PODS, f"{name}-runner"), (SERVICES, f"session-{name}")]


def identity(name: str) -> list[tuple[Resource, str]]:
    """What a session keeps across runs: the runner's token Secret and RBAC."""
    return [(SECRETS, f"ambient-runner-token-{name}"),
            (SERVICE_ACCOUNTS, f"ambient-session-{name}"),
            (ROLES, f"ambient-session-{name}-role"),
            (ROLE_BINDINGS, f"ambient-session-{name}-rb")]


def present(world: World, children: list[tuple[Resource, str]]) -> list[str]:
    return [f"{r.kind}/{n}" for r, n in children if world.get(r, n) is not None]


def names(children: list[tuple[Resource, str]]) -> list[str]:
    return [f"{r.kind}/{n}" for r, n in children]


def runner_env(world: World, name: str, runtime: str | None = None) -> dict[str, str]:
    """The runner's plain variables: the Pod's container, or the VM's cloud-init env file."""
    if runtime == VM_RUNTIME:
        secret = world.get(SECRETS, f"{name}-cloudinit") or {}
        userdata = base64.b64decode(secret["data"]["userdata"]).decode()
        files = {f["path"]: f["content"] for f in yaml.safe_load(userdata)["write_files"]}
        out = {}
        for line in files["/etc/ambient/runner.env"].splitlines():
            key, _, value = line.partition("=")
            out[key] = value.strip('"')
        return out
    pod = world.get(PODS, f"{name}-runner") or {}
    container = next(c for c in pod["spec"]["containers"] if c["name"] == "ambient-code-runner")
    return {e["name"]: e.get("value", "") for e in container.get("env") or ()
            if "valueFrom" not in e}


def workload_uid(world: World, name: str, runtime: str | None) -> str:
    resource = VIRTUAL_MACHINES if runtime == VM_RUNTIME else PODS
    obj = world.get(resource, f"{name}-runner")
    return str((obj or {}).get("metadata", {}).get("uid", ""))


def later_second(previous: str) -> None:
    """Wait until the clock's RFC 3339 second is past ``previous`` (timestamps have second
    precision: a renewed startTime must be able to differ)."""
    eventually(lambda: rfc3339() > previous, timeout=2, interval=0.05)


RUNTIMES = pytest.mark.parametrize("runtime", [None, VM_RUNTIME], ids=["pod", "kubevirt-vm"])


# a run -----------------------------------------------------------------------------------------
@RUNTIMES
def test_a_session_as_the_backend_creates_it_runs(world: World, runtime: str | None) -> None:
    name = world.create(runtime=runtime, repos=[{"url": "https://github.com/org/repo.git"}])
    session = world.wait_phase(name, "Running")
    status = session["status"]
    assert status["executionKind"] == ("kubevirt-vm" if runtime else "pod")
    assert status["runtime"] == (runtime or "claude-agent-sdk")
    assert status["startTime"] and "completionTime" not in status
    assert status["reconciledRepos"][0]["url"] == "https://github.com/org/repo.git"
    ready = world.condition(name, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Running")
    assert present(world, run_children(name, runtime)) == names(run_children(name, runtime))
    assert present(world, identity(name)) == names(identity(name))
    annotations = session["metadata"]["annotations"]
    assert annotations["ambient-code.io/runner-token-secret"] == f"ambient-runner-token-{name}"
    assert annotations["ambient-code.io/runner-sa"] == f"ambient-session-{name}"
    env = runner_env(world, name, runtime)
    assert env["TIMEOUT"] == "300" and env["AGENTIC_SESSION_NAME"] == name
    assert "IS_RESUME" not in env, "a session's first runner is not a resume"
    assert world.condition(name, "RestartRequired") == {}


@RUNTIMES
def test_stop_and_restart_as_the_backend_does(world: World, runtime: str | None) -> None:
    name = world.create(runtime=runtime)
    world.wait_phase(name, "Running")
    kept = {f"{r.kind}/{n}": world.get(r, n)["metadata"]["uid"] for r, n in identity(name)}
    world.stop(name)
    session = world.wait_phase(name, "Stopped")
    assert session["status"]["stoppedReason"] == "user"
    assert session["status"]["completionTime"]
    world.wait_cleared(name, DESIRED_PHASE, STOP_REQUESTED_AT)  # written after the status
    for kind in ("Ready", "PodCreated", "RunnerStarted"):
        assert world.condition(name, kind)["reason"] == "UserStopped", kind
    eventually(lambda: present(world, run_children(name, runtime)) == [],
               message="a stopped session keeps its workload or Service")
    assert {f"{r.kind}/{n}": (world.get(r, n) or {}).get("metadata", {}).get("uid")
            for r, n in identity(name)} == kept, "the token Secret and RBAC stay"

    stopped = session["status"]["completionTime"]
    later_second(stopped)
    world.start(name)
    session = world.wait_phase(name, "Running")
    assert session["status"]["startTime"] > stopped, "the new run's startTime"
    assert "stoppedReason" not in session["status"]
    assert "completionTime" not in session["status"]
    annotations = session["metadata"].get("annotations") or {}
    assert DESIRED_PHASE not in annotations, "the fulfilled intent is cleared"
    assert START_REQUESTED_AT in annotations, "upstream never clears start-requested-at"
    assert runner_env(world, name, runtime).get("IS_RESUME") == "true"
    eventually(lambda: present(world, run_children(name, runtime))
               == names(run_children(name, runtime)), message="the restarted run lacks a child")
    world.settled()  # every pass the operator still had to make over the live run is made
    assert world.condition(name, "RestartRequired") == {}, \
        "a resumed run is what the session asks for"


@RUNTIMES
def test_a_lost_workload_is_replaced_and_resumed(world: World, runtime: str | None) -> None:
    name = world.create(runtime=runtime)
    session = world.wait_phase(name, "Running")
    started = session["status"]["startTime"]
    first = workload_uid(world, name, runtime)
    world.client(AGENTIC_SESSIONS).patch_status(
        name, {"status": {"lastActivityTime": rfc3339()}}, NS)
    later_second(started)
    resource = VIRTUAL_MACHINES if runtime == VM_RUNTIME else PODS
    world.client(resource).delete(f"{name}-runner", NS)

    eventually(lambda: workload_uid(world, name, runtime) not in ("", first),
               message="no new workload")
    # The new workload is made before the status says so: wait for the new run's status.
    eventually(lambda: world.session(name)["status"]["startTime"] > started,
               message="startTime was not renewed")
    session = world.wait_phase(name, "Running")
    assert session["status"]["startTime"] > started
    assert "lastActivityTime" not in session["status"]
    assert runner_env(world, name, runtime).get("IS_RESUME") == "true"
    eventually(lambda: present(world, run_children(name, runtime))
               == names(run_children(name, runtime)), message="the resumed run lacks a child")
    assert world.sample("agentic_session_phase_transitions_total",
                        backend="kubevirt-vm" if runtime else "pod",
                        **{"from": "Running", "to": "Pending"}) + world.sample(
        "agentic_session_phase_transitions_total", backend="kubevirt-vm" if runtime else "pod",
        **{"from": "Running", "to": "Creating"}) >= 1
    world.settled()  # every pass the operator still had to make over the live run is made
    assert world.condition(name, "RestartRequired") == {}


def test_deleting_a_session_collects_its_children(world: World) -> None:
    name = world.create()
    world.wait_phase(name, "Running")
    world.client(AGENTIC_SESSIONS).delete(name, NS)
    everything = [*run_children(name, None), *identity(name)]
    eventually(lambda: present(world, everything) == [], message="children left behind")


def test_a_session_deleted_and_recreated_under_its_name_runs_again(world: World) -> None:
    name = world.create()
    world.wait_phase(name, "Running")
    old = world.get(SECRETS, f"ambient-runner-token-{name}")["metadata"]["uid"]
    world.client(AGENTIC_SESSIONS).delete(name, NS)
    eventually(lambda: world.get(AGENTIC_SESSIONS, name) is None)
    world.create(name=name)
    session = world.wait_phase(name, "Running")
    uid = session["metadata"]["uid"]
    token = world.get(SECRETS, f"ambient-runner-token-{name}")
    assert token["metadata"]["uid"] != old
    assert token["metadata"]["ownerReferences"][0]["uid"] == uid
    assert world.get(PODS, f"{name}-runner")["metadata"]["ownerReferences"][0]["uid"] == uid
    assert "IS_RESUME" not in runner_env(world, name)


# edits while a run lasts --------------------------------------------------------------------
def upsert_runtime(world: World, entry: dict[str, Any]) -> None:
    """Add or replace one registry entry, keeping the others (other tests' sessions use them)."""
    world.set_registry([*(e for e in world.registry() if e.get("id") != entry["id"]), entry])


@pytest.mark.parametrize("edit", ["session-env", "registry-env", "registry-image"])
def test_an_edit_to_a_live_run_waits_for_the_next_run(world: World, edit: str) -> None:
    """A registry edit (or a spec edit) never changes a live runner: the Pod stays, and
    RestartRequired says the change waits for the next run."""
    runtime = f"rt-{edit}"
    entry = {"id": runtime, "container": {"image": "quay.io/ambient_code/runner:1.0",
                                          "env": {"RUNNER_TYPE": runtime}}}
    upsert_runtime(world, entry)
    name = world.create(runner_type=runtime, registry=[entry])
    world.wait_phase(name, "Running")
    uid = workload_uid(world, name, None)
    if edit == "session-env":
        world.client(AGENTIC_SESSIONS).patch(
            name, {"spec": {"environmentVariables": {"EXTRA": "1"}}}, NS)
    elif edit == "registry-env":
        upsert_runtime(world, {**entry, "container": {
            **entry["container"], "env": {**entry["container"]["env"], "EXTRA": "1"}}})
    else:  # on a node, a new image restarts the container: the user's run would be lost
        upsert_runtime(world, {**entry, "container": {
            **entry["container"], "image": "quay.io/ambient_code/runner:2.0",
            "env": {**entry["container"]["env"], "EXTRA": "1"}}})
    eventually(lambda: world.condition(name, "RestartRequired").get("status") == "True",
               message="no RestartRequired=True")
    condition = world.condition(name, "RestartRequired")
    assert condition["reason"] == "ImmutableFieldsChanged"
    assert "env[name=EXTRA]" in condition["message"]
    pod = world.get(PODS, f"{name}-runner")
    if edit == "registry-image":
        assert "image" in condition["message"]
    assert {c["image"] for c in pod["spec"]["containers"]
            if c["name"] == "ambient-code-runner"} == {"quay.io/ambient_code/runner:1.0"}
    assert world.phase(name) == "Running"
    assert world.condition(name, "Ready")["status"] == "True"
    assert workload_uid(world, name, None) == uid
    assert "EXTRA" not in runner_env(world, name)

    world.stop(name)
    world.wait_phase(name, "Stopped")
    world.start(name)
    world.wait_phase(name, "Running")
    assert workload_uid(world, name, None) != uid
    assert runner_env(world, name)["EXTRA"] == "1"
    if edit == "registry-image":
        assert "quay.io/ambient_code/runner:2.0" in {
            c["image"] for c in world.get(PODS, f"{name}-runner")["spec"]["containers"]}
    eventually(lambda: world.condition(name, "RestartRequired").get("status") == "False",
               message="RestartRequired stayed True after the restart")


def test_a_deleted_registry_is_said_on_new_sessions_not_replaced_by_a_default(
        world: World) -> None:
    """The registry names what may run: without it a new session waits with
    Ready=False RegistryMissing and one Warning Event (it went to a built-in runner with an
    unpinned image); a live one keeps running; the registry back, the waiting one starts."""
    live = world.create()
    world.wait_phase(live, "Running")
    registry = world.client(CONFIGMAPS).get(REGISTRY_CONFIGMAP, REGISTRY_NS)
    world.client(CONFIGMAPS).delete(REGISTRY_CONFIGMAP, REGISTRY_NS)
    eventually(lambda: world.manager.client.get(CONFIGMAPS, REGISTRY_CONFIGMAP,
                                                REGISTRY_NS) is None)
    try:
        name = world.create()
        eventually(lambda: world.condition(name, "Ready").get("reason") == "RegistryMissing"
                   and world.warnings(name, "RegistryMissing"),
                   message="no Ready=False RegistryMissing")
        assert f"ConfigMap {REGISTRY_NS}/{REGISTRY_CONFIGMAP} not found" in world.condition(
            name, "Ready")["message"]
        assert world.get(PODS, f"{name}-runner") is None
        assert world.phase(live) == "Running"
    finally:
        world.client(CONFIGMAPS).create({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": REGISTRY_CONFIGMAP, "namespace": REGISTRY_NS},
            "data": registry["data"]})
    world.wait_phase(name, "Running")
    assert len(world.warnings(name, "RegistryMissing")) == 1


def test_a_registry_edit_keeps_live_sessions_on_their_backend(world: World) -> None:
    flexible = {"id": "flex", "container": {"image": "quay.io/ambient_code/runner:1.0",
                                            "env": {"RUNNER_TYPE": "flex"}}}
    upsert_runtime(world, flexible)
    steady = world.create(runner_type="flex", registry=[flexible])
    world.wait_phase(steady, "Running")
    upsert_runtime(world, {**flexible, "executionKind": "kubevirt-vm", "vmConfig": {
        "containerDiskImage": "quay.io/ambient_code/fedora-runner:latest"}})
    fresh = world.create(runner_type="flex", registry=[flexible])
    assert world.wait_phase(fresh, "Running")["status"]["executionKind"] == "kubevirt-vm"
    session = world.session(steady)
    assert session["status"]["phase"] == "Running"
    assert session["status"]["executionKind"] == "pod"
    assert world.get(PODS, f"{steady}-runner") is not None
    assert world.get(VIRTUAL_MACHINES, f"{steady}-runner") is None


# the runner's token ------------------------------------------------------------------------
@RUNTIMES
def test_a_stale_token_is_refreshed_in_place(world: World, runtime: str | None) -> None:
    name = world.create(runtime=runtime)
    world.wait_phase(name, "Running")
    secret_name = f"ambient-runner-token-{name}"
    before = world.get(SECRETS, secret_name)
    workload = world.get(VIRTUAL_MACHINES if runtime else PODS, f"{name}-runner")
    old = rfc3339(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=50))
    world.client(SECRETS).patch(secret_name, {"metadata": {"annotations": {
        TOKEN_REFRESHED_AT: old}}}, NS)

    def refreshed() -> dict[str, Any] | None:
        secret = world.get(SECRETS, secret_name) or {}
        stamp = secret["metadata"]["annotations"][TOKEN_REFRESHED_AT]
        return secret if stamp > old else None

    after = eventually(refreshed, message="the stale token was not refreshed")
    assert after["data"]["k8s-token"] != before["data"]["k8s-token"]
    assert after["data"]["agui-token"] == before["data"]["agui-token"], \
        "the AG-UI token the runner started with stays"
    now = world.get(VIRTUAL_MACHINES if runtime else PODS, f"{name}-runner")
    assert now["metadata"]["uid"] == workload["metadata"]["uid"]
    assert now["metadata"]["generation"] == workload["metadata"]["generation"]
    assert world.phase(name) == "Running"


def test_a_restart_refreshes_a_token_that_went_stale_while_stopped(world: World) -> None:
    """Upstream keeps the old token (its init-hydrate then gets an expired BOT_TOKEN after a
    long stop); refreshing it before the new run is the compatible fix."""
    name = world.create()
    world.wait_phase(name, "Running")
    world.stop(name)
    world.wait_phase(name, "Stopped")
    secret_name = f"ambient-runner-token-{name}"
    before = world.get(SECRETS, secret_name)
    old = rfc3339(dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    world.client(SECRETS).patch(secret_name, {"metadata": {"annotations": {
        TOKEN_REFRESHED_AT: old}}}, NS)
    world.start(name)
    world.wait_phase(name, "Running")
    after = world.get(SECRETS, secret_name)
    assert after["metadata"]["annotations"][TOKEN_REFRESHED_AT] > old
    assert after["data"]["k8s-token"] != before["data"]["k8s-token"]
    assert after["data"]["agui-token"] == before["data"]["agui-token"]
    assert after["metadata"]["uid"] == before["metadata"]["uid"]


# outcomes ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("scenario", "phase", "reason"), [
    ("exit:0:0.2@ambient-code-runner", "Completed", "Completed"),
    ("exit:2:0.2@ambient-code-runner", "Failed", "PrerequisiteFailed"),
    ("exit:1:0.2@ambient-code-runner", "Failed", "RunnerExit"),
], ids=["exit-0", "exit-2", "exit-1"])
def test_a_runner_that_ends_ends_the_session(world: World, scenario: str, phase: str,
                                             reason: str) -> None:
    name = world.create(extra_env={"ENVTEST_SCENARIO": scenario})
    session = world.wait_phase(name, phase)
    assert session["status"]["completionTime"]
    assert "stoppedReason" not in session["status"], "stoppedReason is only user or inactivity"
    ready = world.condition(name, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason)
    eventually(lambda: present(world, run_children(name, None)) == [],
               message="an ended run keeps its Pod or Service")


@pytest.mark.parametrize("runtime", ["broken-image", "broken-disk"])
def test_an_image_that_cannot_be_pulled_fails_the_session(world: World, runtime: str) -> None:
    name = world.create(runtime=runtime)
    world.wait_phase(name, "Failed")
    assert world.condition(name, "Ready")["reason"] in ("ErrImagePull", "ImagePullBackOff")


def test_an_unschedulable_runner_stays_creating(world: World) -> None:
    """No scheduling timeout (upstream has none): PodScheduled=False says why."""
    name = world.create(extra_env={"ENVTEST_SCENARIO": "unschedulable"})
    eventually(lambda: world.condition(name, "PodScheduled").get("reason") == "Unschedulable",
               message="no PodScheduled=False Unschedulable")
    # About time passing, so real time (the operator runs on the real clock): nothing gives
    # up on it.
    time.sleep(1.0)
    assert world.phase(name) == "Creating"
    world.stop(name)
    assert world.wait_phase(name, "Stopped")["status"]["stoppedReason"] == "user"


# inactivity ----------------------------------------------------------------------------------
def test_an_active_session_is_not_stopped_and_an_idle_one_is(world: World) -> None:
    name = world.create(inactivityTimeout=3)
    world.wait_phase(name, "Running")
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:  # the backend writes lastActivityTime as events flow
        world.client(AGENTIC_SESSIONS).patch_status(
            name, {"status": {"lastActivityTime": rfc3339()}}, NS)
        assert world.phase(name) == "Running", "an active session was stopped"
        time.sleep(0.5)  # real time must pass the 3 s timeout while activity is reported
    session = world.wait_phase(name, "Stopped", timeout=10)
    assert session["status"]["stoppedReason"] == "inactivity"
    ready = world.condition(name, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InactivityTimeout")
    world.wait_cleared(name, DESIRED_PHASE, STOP_REASON)


def test_project_settings_give_the_inactivity_timeout(world: World) -> None:
    namespace = "project-idle"
    world.client(NAMESPACES).create({"metadata": {"name": namespace, "labels": {
        "ambient-code.io/managed": "true"}}})
    world.client(SECRETS).create({"metadata": {"name": "ambient-runner-secrets",
                                               "namespace": namespace},
                                  "stringData": {"ANTHROPIC_API_KEY": "x"}})
    try:
        world.client(PROJECT_SETTINGS).create({
            "metadata": {"name": "projectsettings", "namespace": namespace},
            "spec": {"groupAccess": [], "inactivityTimeoutSeconds": 2}})
    except AlreadyExists:  # the operator gave the managed namespace its default settings
        world.client(PROJECT_SETTINGS).patch(
            "projectsettings", {"spec": {"inactivityTimeoutSeconds": 2}}, namespace)
    sessions = world.client(AGENTIC_SESSIONS)
    name = world.create(namespace=namespace)
    eventually(lambda: (sessions.get(name, namespace).get("status") or {}).get("phase")
               == "Stopped", timeout=15, message="the project's timeout did not stop it")
    assert sessions.get(name, namespace)["status"]["stoppedReason"] == "inactivity"


def test_stop_reason_run_finished_is_a_user_stop(world: World) -> None:
    name = world.create()
    world.wait_phase(name, "Running")
    world.annotate(name, {DESIRED_PHASE: "Stopped", STOP_REASON: "run-finished"})
    session = world.wait_phase(name, "Stopped")
    assert session["status"]["stoppedReason"] == "user"
    world.wait_cleared(name, DESIRED_PHASE, STOP_REASON)


# bad input -----------------------------------------------------------------------------------
def assert_reported_not_retried(world: World, name: str, reason: str, *,
                                window: float = 0.5) -> None:
    """Ready=False with ``reason``, a Warning Event, no workload, and then quiet: a reconcile
    of a bad session records its Event again (its count goes up) and a status write moves its
    resourceVersion, so neither moving for ``window`` seconds means no retries (backoff
    starts at 5 ms: a retrying request would be reconciled some seven times meanwhile)."""
    eventually(lambda: world.condition(name, "Ready").get("reason") == reason
               and world.warnings(name, reason),
               message=f"no Ready=False/{reason} and Warning Event on {name}")
    assert world.condition(name, "Ready")["status"] == "False"
    assert world.phase(name) == "Pending"

    def snapshot() -> tuple[str, list[int]]:
        session = world.session(name)
        return (session["metadata"]["resourceVersion"],
                [e.get("count", 1) for e in world.warnings(name, reason)])

    before = snapshot()
    time.sleep(window)  # the quiet window itself: what is asserted is that nothing happens
    assert snapshot() == before, "the bad session was reconciled again"
    assert world.get(PODS, f"{name}-runner") is None
    assert world.get(VIRTUAL_MACHINES, f"{name}-runner") is None


@pytest.mark.parametrize(("runtime", "reason"), [
    ("no-such-runtime", "UnknownRuntime"),
    ("bad-quantity", "InvalidQuantity"),
    ("bad-vmconfig", "InvalidVMConfig"),
])
def test_bad_input_is_reported_not_retried(world: World, runtime: str, reason: str) -> None:
    name = world.create(extra_env={"RUNNER_TYPE": runtime})
    assert_reported_not_retried(world, name, reason)


def test_a_service_name_over_63_characters_is_refused_before_anything_is_created(
        world: World) -> None:
    name = world.create(name="session-" + "x" * 48)  # Service session-<n>: 64 characters
    assert_reported_not_retried(world, name, "InvalidServiceName")
    assert present(world, [*run_children(name, None), *identity(name)]) == []
    assert "ambient-code.io/runner-sa" not in (world.session(name)["metadata"].get(
        "annotations") or {})


def test_a_refused_token_request_fails_the_session_once(world: World) -> None:
    before = world.settled().get(("create", "serviceaccounts/token"), 0)
    world.api.faults.fail(code=403, resources=["serviceaccounts/token"])
    try:
        name = world.create()
        session = world.wait_phase(name, "Failed")
        time.sleep(0.5)  # the quiet window itself (about time passing): no retries
        tries = world.operator_requests().get(("create", "serviceaccounts/token"), 0) - before
    finally:
        world.api.faults.clear()
    ready = world.condition(name, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "TokenProvisionFailed")
    assert world.warnings(name, "TokenProvisionFailed")
    assert "stoppedReason" not in session["status"]
    assert tries == 1
    assert world.get(PODS, f"{name}-runner") is None


def test_a_session_waits_for_its_runner_secrets_without_polling(world: World) -> None:
    namespace = "no-runner-secrets"
    world.client(NAMESPACES).create({"metadata": {"name": namespace, "labels": {
        "ambient-code.io/managed": "true"}}})
    sessions = world.client(AGENTIC_SESSIONS)
    name = world.create(namespace=namespace)

    def condition() -> dict[str, Any]:
        status = sessions.get(name, namespace).get("status") or {}
        return next((c for c in status.get("conditions") or () if c["type"] == "SecretsReady"),
                    {})

    eventually(lambda: condition().get("reason") == "RunnerSecretMissing",
               message="no SecretsReady=False RunnerSecretMissing")
    assert condition()["status"] == "False"
    assert sessions.get(name, namespace)["status"]["phase"] == "Pending"
    before = sum(world.settled().values())
    time.sleep(2.0)  # the quiet window itself (about time passing): waiting costs no requests
    assert sum(world.operator_requests().values()) - before <= 2
    world.client(SECRETS).create({"metadata": {"name": "ambient-runner-secrets",
                                               "namespace": namespace},
                                  "stringData": {"ANTHROPIC_API_KEY": "x"}})
    eventually(lambda: (sessions.get(name, namespace).get("status") or {}).get("phase")
               == "Running", message="the session did not start once its Secret existed")


def test_unmanaged_namespaces_are_ignored(world: World) -> None:
    world.client(AGENTIC_SESSIONS).create({
        "metadata": {"name": "ignored", "namespace": "unmanaged"}, "spec": {}})
    witness = world.create()
    world.wait_phase(witness, "Running")
    ignored = world.get(AGENTIC_SESSIONS, "ignored", "unmanaged")
    assert ignored is not None and not ignored.get("status")


# metrics -------------------------------------------------------------------------------------
def test_backend_metrics(world: World) -> None:
    name = world.create()
    world.wait_phase(name, "Running")
    assert world.sample("agentic_session_startup_seconds_count", backend="pod") >= 1
    assert world.sample("agentic_sessions", backend="pod", phase="Running") >= 1
    assert world.sample("agentic_session_phase_transitions_total", backend="pod",
                        **{"from": "Creating", "to": "Running"}) >= 1
    assert world.sample("agentic_session_backend_operation_seconds_count", backend="pod",
                        operation="create") >= 1


# KubeVirt installed late ----------------------------------------------------------------------
def test_a_vm_session_without_kubevirt_runs_once_kubevirt_is_installed() -> None:
    """KubeVirt is looked for again while a VM session waits: installed later, the session
    runs and its VM is watched."""
    options = OperatorOptions(registry_namespace=REGISTRY_NS, kubevirt_recheck=0.5)
    with operator_world(kubevirt=False, options=options) as bare:
        name = bare.create(runtime=VM_RUNTIME)
        eventually(lambda: bare.condition(name, "Ready").get("reason") == "KubeVirtNotInstalled"
                   and bare.warnings(name, "KubeVirtNotInstalled"),
                   message="no Ready=False/KubeVirtNotInstalled and Warning Event")
        pod = bare.create()
        bare.wait_phase(pod, "Running")
        kubevirt = kubevirt_simulator()
        bare.api.call(kubevirt.start)  # installs the kubevirt.io/v1 CRDs, as virt-operator
        try:
            session = bare.wait_phase(name, "Running")
            assert session["status"]["executionKind"] == "kubevirt-vm"
            assert bare.condition(name, "Ready")["status"] == "True"
            # The VM is watched now: a stop is seen through to the VM's and VMI's deletion.
            bare.stop(name)
            bare.wait_phase(name, "Stopped")
            eventually(lambda: present(bare, run_children(name, VM_RUNTIME)) == [],
                       message="the stopped VM session kept children")
        finally:
            bare.api.call(lambda _: kubevirt.stop())
