"""The Pod environment (reconcilers.pod) against UPSTREAM-CONTRACT §4.2-§4.6: the runner Pod
field by field, and ``observe`` against the table in pod.py's docstring, fed Pod statuses
shaped as a kubelet (containerd, k8s 1.30+) writes them."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import itertools
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest

from ambient_ctrl.predicate import runs_inline, settled
from envtest import LocalAPIServer
from envtest.kinds.builtins import ClusterIPs, prepare_create
from envtest.simulators import KubeletSimulator
from reconcilers.config import OperatorConfig
from reconcilers.environment import (
    Children,
    Observation,
    RenderError,
    RunInputs,
    Runtime,
    Sandbox,
)
from reconcilers.pod import (
    RUNNER_POD_BATCH,
    RUNNER_POD_CHANGED,
    PodEnvironment,
    check_env_names,
    news,
    pod_error_message,
    runner_pod,
    worth_a_pass,
)
from reconcilers.registry import parse_registry
from reconcilers.runner_env import init_env, runner_env, sidecar_env
from reconcilers.samples import CLAUDE_ENTRY, GEMINI_ENTRY
from tests.conftest import RawClient

Obj = dict[str, Any]
NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
RUN = "2026-03-01T11:00:00Z"
TOKEN = "ambient-runner-token-session-1"
POST_START = ("mkdir -p /workspace/.google_workspace_mcp/credentials && cp -f "
              "/app/.google_workspace_mcp/credentials/* /workspace/.google_workspace_mcp/"
              "credentials/ 2>/dev/null || true")
LOCKED = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": False,
          "capabilities": {"drop": ["ALL"]}}
CONFIG = OperatorConfig(backend_namespace="ambient-code")
INPUTS = RunInputs(config=CONFIG, token_secret=TOKEN, run_started=RUN)
SESSION: Obj = {
    "apiVersion": "vteam.ambient-code/v1alpha1", "kind": "AgenticSession",
    "metadata": {"name": "session-1", "namespace": "team-a", "uid": "uid-1", "generation": 1},
    "spec": {"initialPrompt": "go", "timeout": 300,
             "llmSettings": {"model": "claude-sonnet-4-6", "temperature": 0.7,
                             "maxTokens": 4000},
             "environmentVariables": {"RUNNER_TYPE": "claude-agent-sdk",
                                      "RUNNER_STATE_DIR": ".claude"}}}


def entry_runtime(entry: Mapping[str, Any]) -> Runtime:
    found = parse_registry(json.dumps([entry])).entries[entry["id"]]
    assert isinstance(found, Runtime), found
    return found


CLAUDE = entry_runtime(CLAUDE_ENTRY)
NO_ENTRY = Runtime(id="claude-agent-sdk")


def session(env: Mapping[str, str] | None = None, **spec: Any) -> Obj:
    out = copy.deepcopy(SESSION)
    if env is not None:
        out["spec"]["environmentVariables"] = dict(env)
    out["spec"].update(spec)
    return out


def render(runtime: Runtime = CLAUDE, inputs: RunInputs = INPUTS, obj: Obj | None = None) -> Obj:
    return runner_pod(obj or SESSION, runtime, inputs)


def container(pod: Obj, name: str) -> Obj:
    found = [c for c in [*pod["spec"].get("initContainers", ()), *pod["spec"]["containers"]]
             if c["name"] == name]
    assert len(found) == 1, name
    return found[0]


def volume(pod: Obj, name: str) -> Obj | None:
    return next((v for v in pod["spec"].get("volumes", ()) if v["name"] == name), None)


def sandbox(**fields: Any) -> Runtime:
    return replace(NO_ENTRY, sandbox=Sandbox(found=True, **fields))


# identity --------------------------------------------------------------------------------------
def test_pod_identity_labels_owner_and_run_annotation() -> None:
    pod = render()
    assert (pod["apiVersion"], pod["kind"]) == ("v1", "Pod")
    assert pod["metadata"]["name"] == "session-1-runner"
    assert pod["metadata"]["namespace"] == "team-a"
    assert pod["metadata"]["labels"] == {"agentic-session": "session-1",
                                         "app": "ambient-code-runner"}
    assert pod["metadata"]["ownerReferences"] == [
        {"apiVersion": "vteam.ambient-code/v1alpha1", "kind": "AgenticSession",
         "name": "session-1", "uid": "uid-1", "controller": True}]
    assert pod["metadata"]["annotations"]["ambient-code.io/run-started-at"] == RUN


def test_the_api_server_accepts_the_pod() -> None:
    for runtime in (CLAUDE, NO_ENTRY, sandbox(persistence="none")):
        pod = copy.deepcopy(render(runtime, replace(INPUTS, trusted_ca=True, integrations=True,
                                                    copied=frozenset({"ambient-vertex"}))))
        assert prepare_create("pods", pod, ClusterIPs()) == []


# pod spec (§4.2) -------------------------------------------------------------------------------
def test_pod_spec_basics() -> None:
    spec = render()["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["terminationGracePeriodSeconds"] == 60
    assert spec["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in spec
    assert "fsGroup" not in spec["securityContext"]
    assert "fsGroupChangePolicy" not in spec["securityContext"]


@pytest.mark.parametrize(("grace", "expected"), [(0, 60), (5, 5), (600, 600)])
def test_termination_grace_from_the_registry_else_60(grace: int, expected: int) -> None:
    pod = render(sandbox(persistence="s3", termination_grace_period=grace))
    assert pod["spec"]["terminationGracePeriodSeconds"] == expected


def test_mlflow_kubernetes_auth_runs_as_the_sessions_service_account() -> None:
    spec = render(inputs=replace(INPUTS, mlflow_kubernetes_auth=True))["spec"]
    assert spec["serviceAccountName"] == "ambient-session-session-1"
    assert spec["automountServiceAccountToken"] is True


def test_fs_group_only_with_pod_fsgroup() -> None:
    inputs = replace(INPUTS, config=replace(CONFIG, pod_fs_group=1000))
    security = render(inputs=inputs)["spec"]["securityContext"]
    assert (security["fsGroup"], security["fsGroupChangePolicy"]) == (1000, "OnRootMismatch")
    inputs = replace(INPUTS, config=replace(CONFIG, pod_fs_group=0))
    assert render(inputs=inputs)["spec"]["securityContext"]["fsGroup"] == 0


@pytest.mark.parametrize("policy", ["Always", "IfNotPresent", "Never"])
def test_image_pull_policy_on_every_container(policy: str) -> None:
    pod = render(inputs=replace(INPUTS, config=replace(CONFIG, image_pull_policy=policy)))
    containers = [*pod["spec"]["initContainers"], *pod["spec"]["containers"]]
    assert [c["imagePullPolicy"] for c in containers] == [policy] * 3


def test_every_container_is_locked_down() -> None:
    pod = render()
    for name in ("init-hydrate", "ambient-code-runner", "state-sync"):
        security = container(pod, name)["securityContext"]
        assert {k: security[k] for k in LOCKED} == LOCKED, name
    assert container(pod, "ambient-code-runner")["securityContext"]["runAsNonRoot"] is True


# which containers (§4.2 last paragraph) --------------------------------------------------------
@pytest.mark.parametrize(("runtime", "workspace", "init", "sidecar"), [
    (NO_ENTRY, True, True, True),  # no registry entry: all three
    (CLAUDE, True, True, True),
    (sandbox(persistence="s3"), True, False, True),
    (sandbox(persistence=""), True, False, True),  # empty persistence is not "none"
    (sandbox(persistence="none"), False, False, False),
    (sandbox(persistence="none", clone_repos=True), True, True, False),
    (sandbox(persistence="none", clone_repos=True, hydrate_state=True), True, True, False),
    # upstream would leave the workspace out and the init container's mounts dangling (422);
    # the workspace is included whenever a container mounts it
    (sandbox(persistence="none", hydrate_state=True), True, True, False),
], ids=["no-entry", "claude", "s3-no-seed", "empty-persistence", "none", "none-clone",
        "none-clone-hydrate", "none-hydrate-only"])
def test_registry_driven_inclusion(runtime: Runtime, workspace: bool, init: bool,
                                   sidecar: bool) -> None:
    pod = render(runtime)
    spec = pod["spec"]
    assert (volume(pod, "workspace") is not None) == workspace
    assert [c["name"] for c in spec.get("initContainers", ())] == (["init-hydrate"] if init
                                                                   else [])
    assert [c["name"] for c in spec["containers"]] == (
        ["ambient-code-runner", "state-sync"] if sidecar else ["ambient-code-runner"])
    runner_mounts = {m["mountPath"] for m in container(pod, "ambient-code-runner")[
        "volumeMounts"]}
    assert ("/workspace" in runner_mounts) == workspace


# init-hydrate (§4.3) and state-sync (§4.6) -----------------------------------------------------
WORKSPACE_MOUNTS = [{"name": "workspace", "mountPath": "/workspace"},
                    {"name": "workspace", "mountPath": "/app/.claude", "subPath": ".claude"}]


def test_init_hydrate_container() -> None:
    pod = render(NO_ENTRY)
    init = container(pod, "init-hydrate")
    assert init["image"] == "quay.io/ambient_code/vteam_state_sync:latest"
    assert init["command"] == ["/usr/local/bin/hydrate.sh"]
    assert "resources" not in init
    assert init["env"] == init_env(SESSION, INPUTS)
    assert init["volumeMounts"] == WORKSPACE_MOUNTS


def test_state_sync_container() -> None:
    pod = render(CLAUDE)
    sidecar = container(pod, "state-sync")
    assert sidecar["image"] == "quay.io/ambient_code/vteam_state_sync:latest"
    assert sidecar["command"] == ["/usr/local/bin/sync.sh"]
    assert sidecar["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                                    "limits": {"cpu": "1000m", "memory": "1Gi"}}
    assert sidecar["env"] == sidecar_env(SESSION, CLAUDE, INPUTS)
    assert sidecar["volumeMounts"] == WORKSPACE_MOUNTS


def test_state_sync_image_from_the_registry_else_the_operators() -> None:
    runtime = sandbox(persistence="s3", clone_repos=True, state_sync_image="sync:2")
    pod = render(runtime)
    assert container(pod, "init-hydrate")["image"] == "sync:2"
    assert container(pod, "state-sync")["image"] == "sync:2"
    inputs = replace(INPUTS, config=replace(CONFIG, state_sync_image="mine/sync:9"))
    assert container(render(NO_ENTRY, inputs), "state-sync")["image"] == "mine/sync:9"


# the runner container (§4.4) -------------------------------------------------------------------
def test_runner_container() -> None:
    pod = render(CLAUDE)
    runner = pod["spec"]["containers"][0]
    assert runner["name"] == "ambient-code-runner"
    assert runner["image"] == "quay.io/ambient_code/vteam_claude_runner:latest"
    assert runner["ports"] == [{"name": "agui", "containerPort": 8001, "protocol": "TCP"}]
    assert runner["readinessProbe"] == {
        "httpGet": {"path": "/health", "port": 8001}, "initialDelaySeconds": 3,
        "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 3}
    assert runner["livenessProbe"] == {
        "httpGet": {"path": "/health", "port": 8001}, "initialDelaySeconds": 20,
        "periodSeconds": 30, "timeoutSeconds": 5, "failureThreshold": 3}
    assert runner["lifecycle"] == {"postStart": {"exec": {"command": [
        "/bin/sh", "-c", POST_START]}}}
    assert runner["env"] == runner_env(SESSION, CLAUDE, INPUTS)
    assert runner["envFrom"] == [{"secretRef": {"name": "ambient-runner-secrets"}}]


def test_runner_image_and_port_from_the_registry_else_the_operators() -> None:
    runner = container(render(replace(NO_ENTRY, image="me/runner:3", port=9000)),
                       "ambient-code-runner")
    assert runner["image"] == "me/runner:3"
    assert runner["ports"][0]["containerPort"] == 9000
    assert runner["readinessProbe"]["httpGet"]["port"] == 9000
    assert runner["livenessProbe"]["httpGet"]["port"] == 9000
    inputs = replace(INPUTS, config=replace(CONFIG, runner_image="mine/runner:1"))
    assert container(render(NO_ENTRY, inputs), "ambient-code-runner")["image"] == \
        "mine/runner:1"


@pytest.mark.parametrize(("overrides", "expected"), [
    ({}, {"requests": {"cpu": "500m", "memory": "512Mi"},
          "limits": {"cpu": "2000m", "memory": "8Gi"}}),
    ({"requests": {"memory": "1Gi"}}, {"requests": {"cpu": "500m", "memory": "1Gi"},
                                       "limits": {"cpu": "2000m", "memory": "8Gi"}}),
    ({"limits": {"cpu": "4"}}, {"requests": {"cpu": "500m", "memory": "512Mi"},
                                "limits": {"cpu": "4", "memory": "8Gi"}}),
    ({"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
     {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}),
], ids=["defaults", "one-request", "one-limit", "all-four"])
def test_resources_default_and_are_overridden_key_by_key(overrides: Obj, expected: Obj) -> None:
    runner = container(render(replace(NO_ENTRY, resources=overrides)), "ambient-code-runner")
    assert runner["resources"] == expected


@pytest.mark.parametrize("overrides", [
    {"requests": {"cpu": "3"}},  # above the default 2000m limit
    {"limits": {"memory": "256Mi"}},  # below the default 512Mi request
    {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}},
])
def test_a_request_above_its_limit_is_refused(overrides: Obj) -> None:
    with pytest.raises(RenderError) as err:
        render(replace(NO_ENTRY, resources=overrides))
    assert err.value.reason == "InvalidResources"


@pytest.mark.parametrize(("integrations", "vertex", "expected"), [
    (False, False, ["ambient-runner-secrets"]),
    (True, False, ["ambient-non-vertex-integrations", "ambient-runner-secrets"]),
    (True, True, ["ambient-non-vertex-integrations"]),
    (False, True, None),
])
def test_env_from(integrations: bool, vertex: bool, expected: list[str] | None) -> None:
    inputs = replace(INPUTS, integrations=integrations,
                     config=replace(CONFIG, vertex=vertex))
    runner = container(render(inputs=inputs), "ambient-code-runner")
    if expected is None:
        assert "envFrom" not in runner
    else:
        assert runner["envFrom"] == [{"secretRef": {"name": name}} for name in expected]


# volumes and mounts (§4.5) ---------------------------------------------------------------------
TOKEN_VOLUME = {"name": "runner-token", "secret": {
    "secretName": TOKEN, "items": [{"key": "k8s-token", "path": "bot-token"}]}}
TOKEN_MOUNT = {"name": "runner-token", "mountPath": "/var/run/secrets/ambient", "readOnly": True}


def test_volumes_and_runner_mounts_with_everything_present() -> None:
    inputs = replace(INPUTS, copied=frozenset({"ambient-vertex"}), trusted_ca=True)
    pod = render(CLAUDE, inputs)
    assert pod["spec"]["volumes"] == [
        {"name": "workspace", "emptyDir": {"sizeLimit": "10Gi"}},
        {"name": "vertex", "secret": {"secretName": "ambient-vertex"}},
        {"name": "trusted-ca-bundle", "configMap": {"name": "trusted-ca-bundle"}},
        TOKEN_VOLUME]
    assert container(pod, "ambient-code-runner")["volumeMounts"] == [
        *WORKSPACE_MOUNTS,
        {"name": "vertex", "mountPath": "/app/vertex", "readOnly": True},
        {"name": "trusted-ca-bundle", "mountPath": "/etc/pki/tls/certs/ca-bundle.crt",
         "subPath": "ca-bundle.crt", "readOnly": True},
        TOKEN_MOUNT]
    for name in ("init-hydrate", "state-sync"):  # only the workspace, never a Secret
        assert container(pod, name)["volumeMounts"] == WORKSPACE_MOUNTS


def test_only_the_token_without_workspace_vertex_or_ca() -> None:
    pod = render(sandbox(persistence="none"))
    assert pod["spec"]["volumes"] == [TOKEN_VOLUME]
    assert container(pod, "ambient-code-runner")["volumeMounts"] == [TOKEN_MOUNT]


def test_the_token_secret_is_the_inputs() -> None:
    pod = render(inputs=replace(INPUTS, token_secret="from-annotation"))
    assert volume(pod, "runner-token")["secret"]["secretName"] == "from-annotation"  # type: ignore[index]


@pytest.mark.parametrize(("size", "expected"), [("", "10Gi"), ("50Gi", "50Gi"),
                                                ("1500Mi", "1500Mi")])
def test_workspace_size_limit(size: str, expected: str) -> None:
    pod = render(sandbox(persistence="s3", workspace_size=size))
    assert volume(pod, "workspace") == {"name": "workspace", "emptyDir": {"sizeLimit": expected}}


def test_a_workspace_size_that_is_no_quantity_is_refused() -> None:
    with pytest.raises(RenderError) as err:
        render(sandbox(persistence="s3", workspace_size="ten gigs"))
    assert err.value.reason == "InvalidQuantity"


@pytest.mark.parametrize(("registry", "env", "state_dir"), [
    ("", None, ".claude"),
    (".gemini", None, ".gemini"),
    (".gemini", ".custom", ".custom"),  # the session's RUNNER_STATE_DIR wins
    ("", "state/agent", "state/agent"),
    (".gemini", "", ".gemini"),  # an empty variable is no choice
])
def test_state_dir_precedence(registry: str, env: str | None, state_dir: str) -> None:
    obj = session(env={} if env is None else {"RUNNER_STATE_DIR": env})
    pod = render(sandbox(persistence="s3", clone_repos=True, state_dir=registry), obj=obj)
    expected = {"name": "workspace", "mountPath": f"/app/{state_dir}", "subPath": state_dir}
    for name in ("init-hydrate", "ambient-code-runner", "state-sync"):
        assert expected in container(pod, name)["volumeMounts"], name


def test_the_gemini_entry_mounts_its_state_dir() -> None:
    obj = session(env={"RUNNER_TYPE": "gemini-cli"})
    pod = render(entry_runtime(GEMINI_ENTRY), obj=obj)
    assert {"name": "workspace", "mountPath": "/app/.gemini", "subPath": ".gemini"} in \
        container(pod, "ambient-code-runner")["volumeMounts"]


@pytest.mark.parametrize("bad", ["/etc", "../escape", "a/../../b", "a//b", "trailing/"])
def test_a_state_dir_outside_the_workspace_is_refused(bad: str) -> None:
    with pytest.raises(RenderError) as err:
        render(obj=session(env={"RUNNER_STATE_DIR": bad}))
    assert err.value.reason == "InvalidStateDir"
    assert "RUNNER_STATE_DIR" in err.value.message


def test_render_is_deterministic_and_leaves_its_inputs_alone() -> None:
    obj = session(repos=[{"url": "https://h/r", "branch": "main"}])
    frozen = copy.deepcopy(obj)
    assert render(obj=obj) == render(obj=obj)
    assert obj == frozen


def test_pod_environment_render_is_the_pod() -> None:
    assert PodEnvironment().render(SESSION, CLAUDE, INPUTS) == [render()]


# observe ---------------------------------------------------------------------------------------
STARTED = "2026-03-01T11:00:05Z"
IMAGE = "quay.io/ambient_code/vteam_claude_runner:latest"


def state_running() -> Obj:
    return {"running": {"startedAt": STARTED}}


def state_waiting(reason: str, message: str = "") -> Obj:
    waiting: Obj = {"reason": reason}
    if message:
        waiting["message"] = message
    return {"waiting": waiting}


def state_terminated(code: int, reason: str, message: str = "") -> Obj:
    terminated: Obj = {"exitCode": code, "reason": reason, "startedAt": STARTED,
                       "finishedAt": "2026-03-01T11:30:00Z",
                       "containerID": "containerd://" + "ab" * 32}
    if message:
        terminated["message"] = message
    return {"terminated": terminated}


def status_entry(name: str, state: Obj, *, ready: bool = False) -> Obj:
    return {"name": name, "state": state, "lastState": {}, "ready": ready, "restartCount": 0,
            "image": IMAGE, "imageID": IMAGE + "@sha256:" + "0" * 64,
            "started": "running" in state, "containerID": "containerd://" + "cd" * 32}


def kubelet_pod(phase: str = "Pending", *, runner: Obj | None = None,
                sidecar: Obj | None = None, init: list[Obj] | None = None,
                node: str | None = "node-1", reason: str | None = None,
                message: str | None = None, deleting: bool = False,
                conditions: list[Obj] | None = None, run: str | None = RUN) -> Obj:
    """The rendered Pod with ``status`` (and ``nodeName``) as a kubelet writes them."""
    pod = copy.deepcopy(render(inputs=replace(INPUTS, run_started=run or "")))
    if node:
        pod["spec"]["nodeName"] = node
    if deleting:
        pod["metadata"]["deletionTimestamp"] = "2026-03-01T11:59:00Z"
    status: Obj = {"phase": phase, "hostIP": "172.18.0.2", "podIP": "10.244.0.7",
                   "startTime": "2026-03-01T11:00:01Z", "qosClass": "Burstable",
                   "conditions": conditions if conditions is not None else [
                       {"type": "PodScheduled", "status": "True",
                        "lastTransitionTime": "2026-03-01T11:00:01Z"}]}
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    if init is not None:
        status["initContainerStatuses"] = init
    statuses = []
    if runner is not None:
        statuses.append(status_entry("ambient-code-runner", runner))
    if sidecar is not None:
        statuses.append(status_entry("state-sync", sidecar))
    if statuses:
        status["containerStatuses"] = statuses
    pod["status"] = status
    return pod


def observe(pod: Obj | None) -> Observation:
    children = Children({"Pod": {"session-1-runner": pod}} if pod is not None else {})
    return PodEnvironment().observe(SESSION, children, now=NOW)


SCHEDULED = {"status": "True", "reason": "Scheduled", "message": "Scheduled on node-1"}
UNSCHEDULABLE_MESSAGE = "0/3 nodes are available: 3 Insufficient cpu."
PULL_MESSAGE = f'Back-off pulling image "{IMAGE}"'


OBSERVE = [
    ("absent", None, Observation()),
    ("being-deleted", kubelet_pod("Running", runner=state_running(), deleting=True),
     Observation("starting", terminating=True, scheduled=SCHEDULED, run_started=RUN)),
    ("pod-succeeded", kubelet_pod("Succeeded", runner=state_terminated(0, "Completed")),
     Observation("succeeded", reason="Completed", message="Session finished",
                 scheduled=SCHEDULED, run_started=RUN)),
    ("evicted", kubelet_pod("Failed", reason="Evicted",
                            message="The node was low on resource: memory."),
     Observation("lost", reason="Evicted", message="The node was low on resource: memory.",
                 scheduled=SCHEDULED, run_started=RUN)),
    ("node-shutdown", kubelet_pod("Failed", reason="Terminated",
                                  message="Pod was terminated in response to imminent node "
                                  "shutdown."),
     Observation("lost", reason="Terminated", message="Pod was terminated in response to "
                 "imminent node shutdown.", scheduled=SCHEDULED, run_started=RUN)),
    ("pod-failed", kubelet_pod("Failed", runner=state_terminated(1, "Error", "boom")),
     Observation("failed", reason="PodFailed",
                 message="Container ambient-code-runner failed (exit 1): Error - boom",
                 scheduled=SCHEDULED, run_started=RUN)),
    ("runner-running", kubelet_pod("Running", runner=state_running(),
                                   sidecar=state_running()),
     Observation("running", reason="ContainerRunning", message="Runner container is executing",
                 scheduled=SCHEDULED, run_started=RUN)),
    # Ready: the runner answers /health (what live reconfiguration waits for).
    ("runner-running-and-ready", kubelet_pod(
        "Running", runner=state_running(), sidecar=state_running(), conditions=[
            {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]),
     Observation("running", reason="ContainerRunning", message="Runner container is executing",
                 scheduled=SCHEDULED, run_started=RUN, ready=True)),
    ("runner-running-sidecar-crashed", kubelet_pod(
        "Running", runner=state_running(), sidecar=state_terminated(1, "Error")),
     Observation("running", reason="ContainerRunning", message="Runner container is executing",
                 scheduled=SCHEDULED, run_started=RUN)),
    *((f"waiting-{reason}", kubelet_pod("Pending", runner=state_waiting(reason, "detail")),
       Observation("failed", reason=reason, message=f"Runner waiting: {reason} - detail",
                   scheduled=SCHEDULED, run_started=RUN))
      for reason in ("ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff",
                     "CreateContainerConfigError", "InvalidImageName")),
    ("waiting-without-message", kubelet_pod("Pending", runner=state_waiting("ErrImagePull")),
     Observation("failed", reason="ErrImagePull", message="Runner waiting: ErrImagePull - ",
                 scheduled=SCHEDULED, run_started=RUN)),
    ("waiting-container-creating", kubelet_pod(
        "Pending", runner=state_waiting("ContainerCreating")),
     Observation("starting", scheduled=SCHEDULED, run_started=RUN)),
    ("waiting-pod-initializing", kubelet_pod(
        "Pending", runner=state_waiting("PodInitializing"),
        init=[status_entry("init-hydrate", state_running())]),
     Observation("starting", scheduled=SCHEDULED, run_started=RUN)),
    ("runner-exit-0", kubelet_pod("Running", runner=state_terminated(0, "Completed"),
                                  sidecar=state_running()),
     Observation("succeeded", reason="Completed", message="Runner finished",
                 scheduled=SCHEDULED, run_started=RUN)),
    ("runner-exit-2", kubelet_pod("Running", runner=state_terminated(2, "Error", "no key"),
                                  sidecar=state_running()),
     Observation("failed", reason="PrerequisiteFailed",
                 message="Runner exited due to prerequisite failure: no key",
                 scheduled=SCHEDULED, run_started=RUN)),
    ("runner-exit-137", kubelet_pod("Running", runner=state_terminated(137, "OOMKilled"),
                                    sidecar=state_running()),
     Observation("failed", reason="RunnerExit", message="Runner exited with code 137: OOMKilled",
                 scheduled=SCHEDULED, run_started=RUN)),
    ("runner-exit-1-with-message", kubelet_pod(
        "Running", runner=state_terminated(1, "Error", "Traceback"), sidecar=state_running()),
     Observation("failed", reason="RunnerExit", message="Runner exited with code 1: Error - "
                 "Traceback", scheduled=SCHEDULED, run_started=RUN)),
    ("no-container-status-yet", kubelet_pod("Pending"),
     Observation("starting", scheduled=SCHEDULED, run_started=RUN)),
    ("unschedulable", kubelet_pod("Pending", node=None, conditions=[
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": UNSCHEDULABLE_MESSAGE, "lastTransitionTime": "2026-03-01T11:00:01Z"}]),
     Observation("starting", scheduled={"status": "False", "reason": "Unschedulable",
                                        "message": UNSCHEDULABLE_MESSAGE}, run_started=RUN)),
    ("not-yet-looked-at-by-the-scheduler", kubelet_pod("Pending", node=None, conditions=[]),
     Observation("starting", run_started=RUN)),
    ("pod-of-upstreams-operator", kubelet_pod("Running", runner=state_running(), run=None),
     Observation("running", reason="ContainerRunning", message="Runner container is executing",
                 scheduled=SCHEDULED)),
]


@pytest.mark.parametrize(("pod", "expected"), [c[1:] for c in OBSERVE],
                         ids=[c[0] for c in OBSERVE])
def test_observe(pod: Obj | None, expected: Observation) -> None:
    assert observe(pod) == expected


def test_observe_ignores_another_sessions_pod() -> None:
    pod = kubelet_pod("Running", runner=state_running())
    children = Children({"Pod": {"other-runner": pod}})
    assert PodEnvironment().observe(SESSION, children, now=NOW) == Observation()


# pod_error_message (upstream's collectPodErrorMessage) -----------------------------------------
@pytest.mark.parametrize(("pod", "message"), [
    (kubelet_pod("Failed", init=[status_entry("init-hydrate", state_terminated(
        3, "Error", "clone failed"))]),
     "Init container init-hydrate failed (exit 3): clone failed - Error"),
    (kubelet_pod("Failed", init=[status_entry("init-hydrate", {"terminated": {
        "exitCode": 1, "message": "oops"}})]),
     "Init container init-hydrate failed (exit 1): oops"),
    (kubelet_pod("Failed", message="pod says", init=[status_entry(
        "init-hydrate", state_waiting("ImagePullBackOff", PULL_MESSAGE))]),
     f"Init container init-hydrate: ImagePullBackOff - {PULL_MESSAGE}"),
    (kubelet_pod("Failed", init=[status_entry("init-hydrate", state_terminated(0, "Completed"))],
                 runner=state_terminated(1, "Error", "bad")),
     "Container ambient-code-runner failed (exit 1): Error - bad"),
    (kubelet_pod("Failed", runner=state_waiting("CreateContainerConfigError", "no secret")),
     "Container ambient-code-runner: CreateContainerConfigError - no secret"),
    (kubelet_pod("Failed", reason="PodFailed", runner=state_terminated(1, "Error")),
     "Container ambient-code-runner failed (exit 1): Error - "),
    # a pod-level message wins over the containers'
    (kubelet_pod("Failed", message="DeadlineExceeded", runner=state_terminated(1, "Error")),
     "DeadlineExceeded"),
    (kubelet_pod("Failed", reason="UnexpectedAdmissionError"), "UnexpectedAdmissionError"),
    (kubelet_pod("Failed", runner=state_terminated(0, "Completed")),
     "Pod failed with unknown error"),
    (kubelet_pod("Failed"), "Pod failed with unknown error"),
], ids=["init-terminated", "init-terminated-no-reason", "init-waiting", "runner-terminated",
        "runner-waiting", "reason-PodFailed-looks-at-containers", "pod-message",
        "pod-reason", "nothing-failed", "nothing-at-all"])
def test_pod_error_message(pod: Obj, message: str) -> None:
    assert pod_error_message(pod) == message


@pytest.mark.parametrize(("name", "valid"), [
    ("A", True), ("_x", True), ("a.b-c_1", True), ("with space", True), ("~!<>?", True),
    ("", False), ("A=B", False), ("=", False), ("caf\u00e9", False), ("TAB\t", False),
    ("DEL\x7f", False), ("NL\n", False), ("NL\nINSIDE", False), ("\nLEADING", False)])
def test_env_names_a_pod_cannot_carry_are_refused(name: str, valid: bool) -> None:
    spec = {"initContainers": [{"name": "init", "env": [{"name": "OK"}]}],
            "containers": [{"name": "runner", "env": [{"name": "FINE"}, {"name": name}]}]}
    if valid:
        check_env_names(spec)
        return
    with pytest.raises(RenderError) as err:
        check_env_names(spec)
    assert err.value.reason == "InvalidEnvName" and "container runner" in str(err.value)


# which updates wake the session (RUNNER_POD_CHANGED) -------------------------------------------
def _running_pod_updates() -> list[Obj]:
    """The states of a rendered runner Pod as the local API server's kubelet moves it from
    created to ready (one per update its watch shows), with the Secrets it reads present."""
    kubelet = KubeletSimulator(schedule_delay=0.01, start_delay=0.02, ready_delay=0.05)
    pod = copy.deepcopy(render())
    namespace = pod["metadata"]["namespace"]
    secrets = {name for container in [*pod["spec"].get("initContainers", ()),
                                      *pod["spec"]["containers"]]
               for name in _secret_names(container)}
    with LocalAPIServer(simulators=[kubelet]) as server, RawClient(server.url) as client:
        assert client.post("/api/v1/namespaces", {"metadata": {"name": namespace}})[0] == 201
        for name in sorted(secrets):
            data = {key: base64.b64encode(b"x").decode() for key in secrets_keys(pod, name)}
            assert client.post(f"/api/v1/namespaces/{namespace}/secrets",
                               {"metadata": {"name": name}, "data": data})[0] == 201
        pod["metadata"].pop("ownerReferences", None)  # no session object here to own it
        status, created = client.post(f"/api/v1/namespaces/{namespace}/pods", pod)
        assert status == 201, created
        path = (f"/api/v1/namespaces/{namespace}/pods?watch=true&resourceVersion="
                f"{created['metadata']['resourceVersion']}")
        states = [created]
        with client.watch(path) as watch:
            while not _pod_ready(states[-1]):
                event = watch.next()
                assert event is not None and event["type"] == "MODIFIED", event
                states.append(event["object"])
    return states


def _secret_names(container: Obj) -> set[str]:
    names = {ref["secretRef"]["name"] for ref in container.get("envFrom") or ()
             if "secretRef" in ref}
    return names | {var["valueFrom"]["secretKeyRef"]["name"] for var in container.get("env") or ()
                    if "secretKeyRef" in (var.get("valueFrom") or {})}


def secrets_keys(pod: Obj, name: str) -> set[str]:
    return {var["valueFrom"]["secretKeyRef"]["key"]
            for container in [*pod["spec"].get("initContainers", ()), *pod["spec"]["containers"]]
            for var in container.get("env") or ()
            if (var.get("valueFrom") or {}).get("secretKeyRef", {}).get("name") == name}


def _pod_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def test_a_kubelets_updates_wake_the_session_only_when_its_observation_moves() -> None:
    states = _running_pod_updates()
    woken = [worth_a_pass(old, new) for old, new in itertools.pairwise(states)]
    observed = [replace(observe(state), ready=False) for state in states]
    # Each update that changes the observation (but for readiness) wakes the session; the
    # others do not.
    assert woken == [before != after for before, after in itertools.pairwise(observed)]
    assert observe(states[-1]).state == "running" and observe(states[-1]).ready
    assert not woken[-1], "the update that makes the runner ready is polled for, not news"
    assert not all(woken), f"the kubelet's {len(woken)} updates all woke the session"
    # Of those, the binding is progress (batched); the runner's start is news (at once).
    urgent = [news(old, new) for (old, new), wakes in zip(itertools.pairwise(states), woken,
                                                            strict=True) if wakes]
    assert urgent == [False, True], urgent
    assert not observed[0].scheduled and observed[-1].state == "running"


_BASE = kubelet_pod("Running", runner=state_running())


@pytest.mark.parametrize(("name", "change"), [
    ("label", lambda p: p["metadata"].setdefault("labels", {}).update(extra="1")),
    ("annotation", lambda p: p["metadata"].setdefault("annotations", {}).update(a="1")),
    ("deletion", lambda p: p["metadata"].update(deletionTimestamp="2026-03-01T12:00:00Z")),
    ("owner", lambda p: p["metadata"].update(ownerReferences=[])),
    ("spec", lambda p: p["spec"]["containers"][0].update(image="other")),
    ("failed", lambda p: p["status"].update(phase="Failed")),
    ("malformed", lambda p: p.update(status={"containerStatuses": 7})),
])
def test_what_wakes_the_session(name: str, change: Any) -> None:
    new = copy.deepcopy(_BASE)
    change(new)
    assert worth_a_pass(_BASE, new), name
    assert RUNNER_POD_CHANGED.update(_BASE, new)
    assert news(_BASE, new), f"{name}: at once, not batched"


@pytest.mark.parametrize(("name", "change"), [
    ("resync", lambda p: None),
    ("server bookkeeping", lambda p: p["metadata"].update(resourceVersion="99", generation=3)),
    ("pod IP", lambda p: p["status"].update(podIP="10.244.9.9", podIPs=[{"ip": "10.244.9.9"}])),
    ("a sidecar's readiness", lambda p: p["status"]["containerStatuses"].append(
        status_entry("state-sync", state_running(), ready=True))),
    ("ready", lambda p: p["status"]["conditions"].append({"type": "Ready", "status": "True"})),
])
def test_what_does_not(name: str, change: Any) -> None:
    new = copy.deepcopy(_BASE)
    change(new)
    assert not worth_a_pass(_BASE, new), name


def _changed(pod: Obj, change: Any) -> Obj:
    change(pod)
    return pod


_UNBOUND = kubelet_pod("Pending", node=None, conditions=[])
_PENDING = [state_waiting("ContainerCreating")]


@pytest.mark.parametrize(("name", "old", "new", "urgent"), [
    ("bound", _UNBOUND, kubelet_pod("Pending"), False),
    ("bound, then shown creating", kubelet_pod("Pending"),
     kubelet_pod("Pending", runner=_PENDING[0]), False),
    ("no node fits", _UNBOUND, kubelet_pod("Pending", node=None, conditions=[
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/3 nodes are available"}]), True),
    ("bound elsewhere", kubelet_pod("Pending"), kubelet_pod("Pending", node="node-2"), False),
    ("bound and started at once", _UNBOUND, kubelet_pod("Running", runner=state_running()),
     True),
    ("started", kubelet_pod("Pending", runner=_PENDING[0]),
     kubelet_pod("Running", runner=state_running()), True),
    ("image pull failing", kubelet_pod("Pending", runner=_PENDING[0]),
     kubelet_pod("Pending", runner=state_waiting("ImagePullBackOff")), True),
    ("bound and relabelled", _UNBOUND, _changed(kubelet_pod("Pending"), lambda p: p[
        "metadata"].setdefault("labels", {}).update(extra="1")), True),
    ("spec beyond the node", _UNBOUND, _changed(kubelet_pod("Pending"), lambda p: p[
        "spec"]["containers"][0].update(image="other")), True),
    ("malformed", _UNBOUND, {**kubelet_pod("Pending"), "status": {"conditions": 7}}, True),
])
def test_which_updates_wait_for_the_batch(name: str, old: Obj, new: Obj, urgent: bool) -> None:
    """What the session's Pod watch adds at once (news) and what waits for its batch
    (RUNNER_POD_BATCH): only a Pod being placed on a node is progress."""
    assert news(old, new) is urgent, name
    assert RUNNER_POD_BATCH.urgent(old, new) is urgent


def test_the_predicate_runs_on_the_informers_thread_and_passes_creates_and_deletes() -> None:
    assert runs_inline(RUNNER_POD_CHANGED)
    assert settled(RUNNER_POD_CHANGED, "create") is True
    assert settled(RUNNER_POD_CHANGED, "delete") is True
