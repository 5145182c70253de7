"""The Pod environment: what render produces, and how observe maps every Pod status row.

Observe is fed pods shaped the way the envtest kubelet simulator writes them (its pure builders
in :mod:`ambient_ctrl.envtest.simulators.podstatus`), on top of the Pod render produced, plus a
few pod-level shapes (eviction, a lost node) the simulator does not act out.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ambient_ctrl.envtest.simulators import podstatus
from reconcilers.children import RESERVED_ENV, TOKEN_MOUNT_DIR, session_env
from reconcilers.environment import Children, Observation, RenderError, Runtime
from reconcilers.pod import PodEnvironment
from reconcilers.registry import DEFAULT
from reconcilers.resources import AGENTIC_SESSIONS, ExecutionKind, Phase

Obj = dict[str, Any]
ENV = PodEnvironment()
TOKEN = "agui-tok-5b7e01"
UID = "0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19"
NOW = dt.datetime(2025, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
T0, T1, T2 = "2025-03-04T05:00:00Z", "2025-03-04T05:00:03Z", "2025-03-04T05:06:00Z"
CONTAINER_ID = "containerd://" + "ab" * 32
NODE = "envtest-node"


def session(name: str = "demo", *, env: Mapping[str, str] | None = None) -> Obj:
    return {"apiVersion": "vteam.ambient-code/v1alpha1", "kind": "AgenticSession",
            "metadata": {"name": name, "namespace": "team-a", "uid": UID, "generation": 1},
            "spec": {"displayName": "Demo", "initialPrompt": "fix the build",
                     "repos": [{"url": "https://example.com/r.git"}],
                     "llmSettings": {"model": "m-large", "temperature": 0.3},
                     "environmentVariables": dict(env if env is not None else {"API_KEY": "k"})}}


def runtime(**fields: Any) -> Runtime:
    values: dict[str, Any] = {"id": "agent-x", "image": "quay.io/ambient_code/runner-x:1.2",
                              "port": 8123, "env": {"LOG_LEVEL": "debug"},
                              "resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                            "limits": {"cpu": "2", "memory": "4Gi"}},
                              **fields}
    return Runtime(**values)


def render(name: str = "demo", rt: Runtime | None = None, **kw: Any) -> list[Obj]:
    return ENV.render(session(name, **kw), rt or runtime(), token=TOKEN)


def pod_of(objects: list[Obj]) -> Obj:
    return next(o for o in objects if o["kind"] == "Pod")


# render ----------------------------------------------------------------------------------------
def test_render_children_in_order() -> None:
    objects = render()
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Secret", "demo-agui-token"), ("Pod", "demo-runner"), ("Service", "session-demo")]
    assert all(o["metadata"]["namespace"] == "team-a" for o in objects)
    assert objects[0]["stringData"] == {"token": TOKEN}


def test_render_pod_spec_is_locked_down() -> None:
    spec = pod_of(render())["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["securityContext"] == {"runAsNonRoot": True,
                                       "seccompProfile": {"type": "RuntimeDefault"},
                                       "fsGroup": 1001}
    [runner] = spec["containers"]
    assert runner["name"] == "runner"
    assert runner["securityContext"] == {"allowPrivilegeEscalation": False,
                                         "capabilities": {"drop": ["ALL"]},
                                         "runAsNonRoot": True, "readOnlyRootFilesystem": False}


def test_render_runner_container() -> None:
    rt = runtime()
    [runner] = pod_of(render(rt=rt))["spec"]["containers"]
    assert runner["image"] == rt.image
    assert runner["ports"] == [{"name": "agui", "containerPort": 8123, "protocol": "TCP"}]
    assert runner["resources"] == {"limits": {"cpu": "2", "memory": "4Gi"},
                                   "requests": {"cpu": "500m", "memory": "1Gi"}}
    for probe in ("readinessProbe", "livenessProbe"):
        assert runner[probe]["httpGet"] == {"path": "/health", "port": "agui"}
        assert runner[probe]["periodSeconds"] > 0 and runner[probe]["failureThreshold"] >= 3
    # With restartPolicy Never a liveness kill ends the session: it must wait longer.
    assert runner["livenessProbe"]["initialDelaySeconds"] > \
        runner["readinessProbe"]["initialDelaySeconds"]


def test_render_env_is_the_session_env() -> None:
    [runner] = pod_of(render())["spec"]["containers"]
    assert runner["env"] == session_env(session(), runtime())
    names = [e["name"] for e in runner["env"]]
    assert names == sorted(names)
    env = {e["name"]: e["value"] for e in runner["env"]}
    assert env["LOG_LEVEL"] == "debug" and env["API_KEY"] == "k"
    assert env["AGUI_PORT"] == "8123"
    assert env["AGUI_TOKEN_FILE"] == f"{TOKEN_MOUNT_DIR}/token"
    assert TOKEN not in orjson.dumps(runner).decode()  # the token is a file, never env


def test_render_token_mount_and_workspace() -> None:
    spec = pod_of(render())["spec"]
    assert spec["volumes"] == [
        {"name": "agui-token", "secret": {"secretName": "demo-agui-token", "defaultMode": 256}},
        {"name": "workspace", "emptyDir": {}}]
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": "agui-token", "mountPath": TOKEN_MOUNT_DIR, "readOnly": True},
        {"name": "workspace", "mountPath": "/workspace"}]


def test_render_read_only_root_from_sandbox() -> None:
    rt = runtime(sandbox={"readOnlyRootFilesystem": True, "fsGroup": 1000770000,
                          "runAsUser": 1000770000})
    spec = pod_of(render(rt=rt))["spec"]
    runner = spec["containers"][0]
    assert runner["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in runner["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in spec["volumes"]
    assert spec["securityContext"]["fsGroup"] == 1000770000
    assert spec["securityContext"]["runAsUser"] == 1000770000


def test_render_labels_and_owner_references() -> None:
    for obj in render():
        meta = obj["metadata"]
        assert meta["labels"] == {"agentic-session": "demo", "app": "ambient-code-runner"}
        assert meta["ownerReferences"] == [{
            "apiVersion": AGENTIC_SESSIONS.api_version, "kind": "AgenticSession",
            "name": "demo", "uid": UID, "controller": True, "blockOwnerDeletion": True}]


def test_render_service() -> None:
    service = render()[2]
    assert service["spec"]["selector"] == {"agentic-session": "demo",
                                           "app": "ambient-code-runner"}
    assert service["spec"]["ports"] == [{"name": "agui", "port": 8123, "targetPort": "agui",
                                         "protocol": "TCP"}]


def test_render_default_runtime() -> None:
    objects = ENV.render(session(), DEFAULT, token=TOKEN)
    runner = pod_of(objects)["spec"]["containers"][0]
    assert runner["image"] == DEFAULT.image
    assert runner["resources"] == {k: dict(v) for k, v in DEFAULT.resources.items()}
    orjson.dumps(objects)  # plain JSON: no read-only mapping leaks into an object


def test_render_is_deterministic_and_pure() -> None:
    s, rt = session(), runtime()
    before = (copy.deepcopy(s), copy.deepcopy(rt))
    first = ENV.render(s, rt, token=TOKEN)
    assert ENV.render(s, rt, token=TOKEN) == first
    assert orjson.dumps(ENV.render(s, rt, token=TOKEN)) == orjson.dumps(first)
    assert (s, rt) == before
    first[1]["spec"]["containers"][0]["env"].clear()  # callers may edit what they get
    assert ENV.render(s, rt, token=TOKEN)[1]["spec"]["containers"][0]["env"]


BAD_INPUT = [
    ("reserved-session-env", {"env": {"SESSION_NAME": "x"}}, None, "ReservedEnvName",
     "SESSION_NAME from the spec"),
    ("invalid-session-env", {"env": {"9X": "x"}}, None, "InvalidEnvName", "'9X'"),
    ("reserved-registry-env", {}, runtime(env={"AGUI_TOKEN": "x"}), "ReservedEnvName",
     "registry entry agent-x"),
    ("long-service-name", {"name": "s" * 56}, None, "InvalidServiceName", "the limit of 63"),
    ("bad-quantity", {}, runtime(resources={"limits": {"memory": "4GB"}}), "InvalidQuantity",
     'runtime "agent-x" container.resources.limits.memory: "4GB"'),
    ("request-above-limit", {}, runtime(resources={"requests": {"cpu": "3"},
                                                   "limits": {"cpu": "2"}}),
     "InvalidResources", "exceeds limits.cpu"),
    ("bad-port", {}, runtime(port=0), "InvalidRuntime", 'runtime "agent-x" container.port'),
    ("empty-image", {}, runtime(image=""), "InvalidRuntime", "container.image"),
    ("root-sandbox", {}, runtime(sandbox={"runAsUser": 0}), "InvalidRuntime",
     "sandbox.runAsUser"),
]


@pytest.mark.parametrize(("kw", "rt", "reason", "fragment"), [b[1:] for b in BAD_INPUT],
                         ids=[b[0] for b in BAD_INPUT])
def test_render_bad_input(kw: Obj, rt: Runtime | None, reason: str, fragment: str) -> None:
    with pytest.raises(RenderError) as caught:
        render(rt=rt, **kw)
    assert caught.value.reason == reason
    assert fragment in caught.value.message


def test_kind() -> None:
    assert ENV.kind == ExecutionKind.POD


# observe: pods as the kubelet writes them ------------------------------------------------------
def container_status(state: Obj, *, ready: bool = False, last_state: Obj | None = None,
                     restarts: int = 0, pulled: bool = True) -> Obj:
    image = runtime().image
    out = {"name": "runner", "state": state, "lastState": last_state or {}, "ready": ready,
           "restartCount": restarts,
           "image": podstatus.canonical_image(image) if pulled else image,
           "imageID": podstatus.image_id(image) if pulled else "",
           "started": "running" in state}
    if "waiting" not in state or restarts:
        out["containerID"] = CONTAINER_ID
    return out


def scheduled(state: Obj, *, ready: bool = False, sandbox: bool = True, **kw: Any) -> Obj:
    """A bound pod's status with one runner container in ``state``."""
    statuses = [container_status(state, ready=ready, **kw)]
    phase = podstatus.phase(statuses, "Never") if sandbox else "Pending"
    status = {"phase": phase, "hostIP": podstatus.HOST_IP, "startTime": T0,
              "containerStatuses": statuses, "qosClass": "Burstable",
              "conditions": podstatus.conditions(
                  pod_phase=phase, sandbox=sandbox, uninitialized=[], now=T1, previous=[],
                  unready=[] if ready else ["runner"])}
    if sandbox:
        status.update(podIP="10.244.0.7", podIPs=[{"ip": "10.244.0.7"}])
    return status


def exited(code: int, reason: str, message: str = "") -> Obj:
    state = podstatus.terminated(exit_code=code, reason=reason, started_at=T1, finished_at=T2,
                                 container_id=CONTAINER_ID)
    if message:
        state["terminated"]["message"] = message
    return scheduled(state)


def pod(status: Obj | None, *, bound: bool = True, deleting: bool = False) -> Obj:
    obj = copy.deepcopy(pod_of(render()))
    obj["metadata"].update(uid="pod-uid-1", resourceVersion="42", creationTimestamp=T0)
    if deleting:
        obj["metadata"].update(deletionTimestamp=T2, deletionGracePeriodSeconds=30)
    if bound:
        obj["spec"]["nodeName"] = NODE
    obj["status"] = status if status is not None else {"phase": "Pending",
                                                       "qosClass": "Burstable"}
    return obj


def service() -> Obj:
    svc = copy.deepcopy(render()[2])
    svc["metadata"].update(uid="svc-uid", resourceVersion="43")
    svc["spec"].update(clusterIP="10.96.12.34", clusterIPs=["10.96.12.34"])
    return svc


IMAGE = runtime().image
SCHEDULED = {"type": "PodScheduled", "status": "True", "reason": "Scheduled",
             "message": f"runner pod assigned to node {NODE}"}
UNSCHEDULABLE = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": podstatus.UNSCHEDULABLE_MESSAGE}
ENDPOINT = "http://session-demo.team-a.svc:8123"
CRASH = podstatus.crash_backoff_message(20, "runner", pod="demo-runner", namespace="team-a",
                                        uid="pod-uid-1")
CONFIG_ERROR = ('container has runAsNonRoot and image will run as root (pod: '
                '"demo-runner_team-a(pod-uid-1)", container: runner)')
EVICTED = ("The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. "
           "Container runner was using 3900Mi, request is 1Gi, has larger consumption of memory.")
LOG_TAIL = "Traceback (most recent call last):\n  ...\nValueError: no repo access"

# (id, pod, service?, phase, ready, reason, message (a fragment), endpoint, conditions)
ROWS: list[tuple[str, Obj | None, bool, Phase | None, bool, str, str, str, tuple[Obj, ...]]] = [
    ("absent", None, True, None, False, "", "", "", ()),
    ("deleting", pod(scheduled(podstatus.running(T1), ready=True), deleting=True), True,
     Phase.CREATING, False, "RunnerTerminating", "runner pod demo-runner is being deleted", "",
     ()),
    ("deleting-after-sigterm", pod(exited(143, "Error"), deleting=True), True,
     Phase.CREATING, False, "RunnerTerminating", "being deleted", "", ()),
    ("just-created", pod(None, bound=False), True, Phase.CREATING, False, "PodPending",
     "runner pod demo-runner is starting", "", ()),
    ("unschedulable", pod({"phase": "Pending", "qosClass": "Burstable",
                           "conditions": podstatus.unschedulable(now=T1, previous=[])},
                          bound=False), True,
     Phase.CREATING, False, "Unschedulable", podstatus.UNSCHEDULABLE_MESSAGE, "",
     (UNSCHEDULABLE,)),
    ("scheduling-gated", pod({"phase": "Pending", "conditions": [podstatus.condition(
        "PodScheduled", False, now=T1, previous=[], reason="SchedulingGated",
        message="Scheduling is blocked due to non-empty scheduling gates")]}, bound=False),
     True, Phase.CREATING, False, "SchedulingGated", "scheduling gates", "",
     ({"type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
       "message": "Scheduling is blocked due to non-empty scheduling gates"},)),
    ("container-creating", pod(scheduled(podstatus.waiting("ContainerCreating"),
                                         sandbox=False, pulled=False)), True,
     Phase.CREATING, False, "ContainerCreating", "runner pod demo-runner is starting", "",
     (SCHEDULED,)),
    ("err-image-pull", pod(scheduled(podstatus.waiting(
        "ErrImagePull", podstatus.pull_error_message(IMAGE)), pulled=False)), True,
     Phase.FAILED, False, "ErrImagePull", podstatus.pull_error_message(IMAGE), "",
     (SCHEDULED,)),
    ("image-pull-backoff", pod(scheduled(podstatus.waiting(
        "ImagePullBackOff", podstatus.pull_backoff_message(IMAGE)), pulled=False)), True,
     Phase.FAILED, False, "ImagePullBackOff", f'Back-off pulling image "{IMAGE}"', "",
     (SCHEDULED,)),
    ("invalid-image-name", pod(scheduled(podstatus.waiting(
        "InvalidImageName", 'Failed to apply default image tag "Quay.io/X": couldn\'t parse '
        'image name "Quay.io/X": invalid reference format'), pulled=False)), True,
     Phase.FAILED, False, "InvalidImageName", "invalid reference format", "", (SCHEDULED,)),
    ("err-image-never-pull", pod(scheduled(podstatus.waiting(
        "ErrImageNeverPull", f'Container image "{IMAGE}" is not present with pull policy of '
        "Never"), pulled=False)), True,
     Phase.FAILED, False, "ErrImageNeverPull", "pull policy of Never", "", (SCHEDULED,)),
    ("create-container-config-error", pod(scheduled(podstatus.waiting(
        "CreateContainerConfigError", CONFIG_ERROR))), True,
     Phase.FAILED, False, "CreateContainerConfigError", CONFIG_ERROR, "", (SCHEDULED,)),
    ("crash-loop-backoff", pod(scheduled(podstatus.waiting("CrashLoopBackOff", CRASH),
                                         restarts=2, last_state=podstatus.terminated(
                                             exit_code=1, reason="Error", started_at=T1,
                                             finished_at=T2, container_id=CONTAINER_ID))),
     True, Phase.FAILED, False, "CrashLoopBackOff", f"{CRASH} (last exit code 1)", "",
     (SCHEDULED,)),
    ("running-not-ready", pod(scheduled(podstatus.running(T1))), True,
     Phase.CREATING, False, "RunnerNotReady", "containers with unready status: [runner]", "",
     (SCHEDULED,)),
    ("running-ready", pod(scheduled(podstatus.running(T1), ready=True)), True,
     Phase.RUNNING, True, "RunnerReady", "ready", ENDPOINT, (SCHEDULED,)),
    ("running-ready-no-service", pod(scheduled(podstatus.running(T1), ready=True)), False,
     Phase.CREATING, False, "EndpointNotReady", "its Service is not there yet", "",
     (SCHEDULED,)),
    ("exit-0", pod(exited(0, "Completed")), True,
     Phase.COMPLETED, False, "Completed", "runner exited with code 0", "", (SCHEDULED,)),
    ("exit-0-with-message", pod(exited(0, "Completed", "3 commits pushed")), True,
     Phase.COMPLETED, False, "Completed", "runner exited with code 0: 3 commits pushed", "",
     (SCHEDULED,)),
    ("oom-killed", pod(exited(137, "OOMKilled")), True,
     Phase.FAILED, False, "OOMKilled",
     "runner was killed for exceeding its memory limit of 4Gi (exit code 137)", "",
     (SCHEDULED,)),
    ("exit-2", pod(exited(2, "Error", "GITHUB_TOKEN is not set")), True,
     Phase.FAILED, False, "PrerequisiteFailed",
     "runner exited with code 2: a prerequisite failed: GITHUB_TOKEN is not set", "",
     (SCHEDULED,)),
    ("exit-1", pod(exited(1, "Error", LOG_TAIL)), True,
     Phase.FAILED, False, "Error", f"runner exited with code 1: {LOG_TAIL}", "", (SCHEDULED,)),
    ("start-error", pod(exited(128, "StartError", 'exec: "/app/run": no such file')), True,
     Phase.FAILED, False, "Error", "runner exited with code 128 (StartError): exec:", "",
     (SCHEDULED,)),
    ("succeeded-without-statuses", pod({"phase": "Succeeded", "conditions": []}), True,
     Phase.COMPLETED, False, "Completed", "runner pod demo-runner succeeded", "", ()),
    ("evicted", pod({"phase": "Failed", "reason": "Evicted", "message": EVICTED,
                     "containerStatuses": [container_status(podstatus.terminated(
                         exit_code=137, reason="ContainerStatusUnknown", started_at=T1,
                         finished_at=T2, container_id=CONTAINER_ID))]}), True,
     Phase.FAILED, False, "Evicted", EVICTED, "", ()),
    ("failed-without-reason", pod({"phase": "Failed"}), True,
     Phase.FAILED, False, "PodFailed", "runner pod demo-runner failed", "", ()),
    ("unknown-node-lost", pod({"phase": "Unknown", "reason": "NodeLost",
                               "message": f"Node {NODE} which was running pod demo-runner is "
                               "unresponsive"}), True,
     Phase.FAILED, False, "NodeLost", "is unresponsive", "", ()),
    ("unknown", pod({"phase": "Unknown"}), True,
     Phase.FAILED, False, "PodUnknown", "stopped reporting its state", "", ()),
]


@pytest.mark.parametrize(("obj", "with_service", "phase", "ready", "reason", "message",
                          "endpoint", "conditions"), [r[1:] for r in ROWS],
                         ids=[r[0] for r in ROWS])
def test_observe(obj: Obj | None, with_service: bool, phase: Phase | None, ready: bool,
                 reason: str, message: str, endpoint: str,
                 conditions: tuple[Obj, ...]) -> None:
    children = Children(pod=obj, service=service() if with_service else None)
    before = copy.deepcopy(children)
    seen = ENV.observe(session(), children, now=NOW)
    assert (seen.phase, seen.ready, seen.reason, seen.endpoint) == (phase, ready, reason,
                                                                     endpoint)
    assert message in seen.message
    assert tuple(seen.conditions) == conditions
    assert children == before  # cached objects are read-only


def test_observe_absent_is_empty() -> None:
    assert ENV.observe(session(), Children(), now=NOW) == Observation(None)


def test_observe_running_endpoint_matches_children_endpoint() -> None:
    from reconcilers.children import endpoint
    seen = ENV.observe(session(), Children(pod=pod(scheduled(podstatus.running(T1),
                                                             ready=True)),
                                           service=service()), now=NOW)
    assert seen.endpoint == endpoint(session(), runtime())


def test_observe_bounds_long_termination_messages() -> None:
    tail = "x" * 5000 + "the real error"
    seen = ENV.observe(session(), Children(pod=pod(exited(1, "Error", tail))), now=NOW)
    assert seen.message.endswith("the real error") and len(seen.message) < 1100


def test_observe_running_pod_after_unschedulable_flips_the_condition() -> None:
    previous = podstatus.unschedulable(now=T0, previous=[])
    status = scheduled(podstatus.running(T1), ready=True)
    status["conditions"] = podstatus.conditions(pod_phase="Running", sandbox=True,
                                                uninitialized=[], unready=[], now=T1,
                                                previous=previous)
    seen = ENV.observe(session(), Children(pod=pod(status), service=service()), now=NOW)
    assert seen.phase == Phase.RUNNING and tuple(seen.conditions) == (SCHEDULED,)


# properties ------------------------------------------------------------------------------------
_NAMES = st.from_regex(r"[a-z]([a-z0-9-]{0,30}[a-z0-9])?", fullmatch=True)
_ENV_NAMES = st.from_regex(r"[A-Z_][A-Z0-9_]{0,12}", fullmatch=True).filter(
    lambda n: n not in RESERVED_ENV)
_RUNTIMES = st.builds(
    runtime,
    port=st.integers(1, 65535),
    env=st.dictionaries(_ENV_NAMES, st.text(max_size=12), max_size=4),
    sandbox=st.fixed_dictionaries({}, optional={
        "readOnlyRootFilesystem": st.booleans(), "fsGroup": st.integers(0, 2**31 - 1),
        "runAsUser": st.integers(1, 2**31 - 1)}),
    resources=st.sampled_from([{}, {"limits": {"memory": "1Gi"}},
                               {"requests": {"cpu": "0.5"}, "limits": {"cpu": "500m"}}]))


@settings(max_examples=60, deadline=None)
@given(name=_NAMES, namespace=_NAMES, uid=st.uuids().map(str), rt=_RUNTIMES,
       env=st.dictionaries(_ENV_NAMES, st.text(max_size=12), max_size=5),
       token=st.text(min_size=1, max_size=40))
def test_render_property(name: str, namespace: str, uid: str, rt: Runtime,
                         env: dict[str, str], token: str) -> None:
    s = session(name, env=env)
    s["metadata"].update(namespace=namespace, uid=uid)
    reordered = copy.deepcopy(s)
    reordered["spec"]["environmentVariables"] = dict(reversed(list(env.items())))
    first = ENV.render(s, rt, token=token)
    assert orjson.dumps(ENV.render(reordered, rt, token=token)) == orjson.dumps(first)
    for obj in first:
        controllers = [r for r in obj["metadata"]["ownerReferences"] if r.get("controller")]
        assert len(controllers) == 1 and len(obj["metadata"]["ownerReferences"]) == 1
        assert (controllers[0]["uid"], controllers[0]["kind"], controllers[0]["name"]) == \
            (uid, "AgenticSession", name)
        assert obj["metadata"]["namespace"] == namespace
