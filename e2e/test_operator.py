"""The AgenticSession operator, as its own process, against the target cluster: the local API
server with its kubelet and KubeVirt simulators, or — with ``E2E_KUBECONFIG`` — another
cluster (the CRDs and the agent registry applied there with kubectl; ``E2E_REGISTRY`` names a
registry whose images run on it; VM sessions need KubeVirt and are skipped without it).

Sessions are created as upstream's backend creates them (``reconcilers.samples``: name
``session-<uuid>`` shaped, ``timeout: 300``, ``userContext``, the registry entry's env) against
upstream's registry (``claude-agent-sdk``, ADR-0008's ``claude-kubevirt``). Each test works in
a namespace of its own, labelled ``ambient-code.io/managed=true`` with the project's
``ambient-runner-secrets``, deleted after it. Nothing here relies on the simulators' scenario
hooks or the local server's admin endpoint; on a real cluster a child deleted by the garbage
collector may still be terminating, which counts as gone.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ambient_ctrl.testing import eventually

from .cluster import MANAGED_LABEL, registry_entries
from .conftest import unique
from .operator_process import (
    POD_RUNTIME,
    RUNNER_SECRETS,
    SESSIONS,
    VM_RUNTIME,
    World,
    backend_body,
    condition,
    create_runner_secrets,
    start_world,
    stop_world,
)

pytestmark = pytest.mark.timeout(240)

DESIRED_PHASE = "ambient-code.io/desired-phase"
STOP_REQUESTED_AT = "ambient-code.io/stop-requested-at"
TIMEOUT = 60.0
"""Seconds for a session to get where it is going (a real cluster pulls images)."""
RBAC = "/apis/rbac.authorization.k8s.io/v1"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    started = start_world(tmp_path_factory.mktemp("operator"),
                          registry=registry_entries([POD_RUNTIME, VM_RUNTIME]), namespaces=[])
    try:
        started.start_operator(concurrency=4)
        yield started
    finally:
        operator, _ = stop_world(started)
        assert operator == 0, f"the operator exited {operator} on SIGTERM; see {started.workdir}"


@pytest.fixture()
def ns(world: World) -> Iterator[str]:
    name = unique("op")
    world.create_namespace(name)
    yield name
    world.delete_namespace(name)


def session_path(ns: str, name: str) -> str:
    return f"{SESSIONS}/namespaces/{ns}/agenticsessions/{name}"


def child_path(ns: str, plural: str, name: str) -> str:
    group = {"virtualmachines": "/apis/kubevirt.io/v1",
             "virtualmachineinstances": "/apis/kubevirt.io/v1",
             "roles": RBAC, "rolebindings": RBAC,
             "networkpolicies": "/apis/networking.k8s.io/v1"}.get(plural, "/api/v1")
    return f"{group}/namespaces/{ns}/{plural}/{name}"


def create(world: World, ns: str, name: str, **options: Any) -> None:
    """A session as upstream's backend creates it (``vm=True``: ADR-0008's VM runtime)."""
    status, body = world.raw.request("POST", f"{SESSIONS}/namespaces/{ns}/agenticsessions",
                                     backend_body(name, ns, **options))
    assert status == 201, (status, body)


def session_when(world: World, ns: str, name: str, check: Callable[[dict[str, Any]], bool],
                 what: str) -> dict[str, Any]:
    def holds() -> dict[str, Any]:
        assert world.healthy(), "the operator stopped answering /healthz"
        session = world.raw.get(session_path(ns, name))
        assert check(session), f"{name}: {what}; status: {session.get('status')}"
        return dict(session)
    return eventually(holds, timeout=TIMEOUT, interval=0.2)


def running(session: dict[str, Any]) -> bool:
    return ((session.get("status") or {}).get("phase") == "Running"
            and condition(session).get("status") == "True")


def phase(value: str) -> Callable[[dict[str, Any]], bool]:
    return lambda session: (session.get("status") or {}).get("phase") == value


def annotate(world: World, ns: str, name: str, annotations: dict[str, str]) -> None:
    status, body = world.raw.request(
        "PATCH", session_path(ns, name), {"metadata": {"annotations": annotations}},
        content_type="application/merge-patch+json")
    assert status == 200, (status, body)


def stop(world: World, ns: str, name: str) -> None:
    """As the backend's StopSession: desired-phase=Stopped and stop-requested-at."""
    annotate(world, ns, name, {DESIRED_PHASE: "Stopped",
                               STOP_REQUESTED_AT: time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                time.gmtime())})


def gone(world: World, path: str) -> bool:
    """Absent, or on its way out (a real kubelet gives pods a grace period)."""
    status, body = world.raw.request("GET", path)
    assert status in (200, 404), (path, status, body)
    return status == 404 or bool(body["metadata"].get("deletionTimestamp"))


def owned_by(world: World, path: str, owner: dict[str, Any], kind: str) -> dict[str, Any]:
    """The child at ``path``, checked to name ``owner`` (of ``kind``) as its controller, as
    upstream's operator writes the reference (no blockOwnerDeletion)."""
    child = dict(world.raw.get(path))
    refs = [(r["kind"], r["name"], r["uid"], r.get("controller"), r.get("blockOwnerDeletion"))
            for r in child["metadata"].get("ownerReferences") or ()]
    meta = owner["metadata"]
    assert refs == [(kind, meta["name"], meta["uid"], True, None)], (path, refs)
    return child


def env_of(pod: dict[str, Any]) -> dict[str, Any]:
    """The runner container's variables: name → value (or its valueFrom)."""
    runner = next(c for c in pod["spec"]["containers"] if c["name"] == "ambient-code-runner")
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in runner.get("env") or ()}


def decoded(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def check_session_children(world: World, ns: str, name: str, session: dict[str, Any],
                           workload: dict[str, Any], workload_kind: str) -> list[str]:
    """Upstream's children of every session (token Secret, ServiceAccount, Role, RoleBinding,
    Service, NetworkPolicy), checked; their paths."""
    token = owned_by(world, child_path(ns, "secrets", f"ambient-runner-token-{name}"),
                     session, "AgenticSession")
    assert decoded(token, "k8s-token").count(".") == 2, "k8s-token is not a JWT"
    assert decoded(token, "agui-token"), token["data"]
    account = owned_by(world, child_path(ns, "serviceaccounts", f"ambient-session-{name}"),
                       session, "AgenticSession")
    assert account["metadata"]["annotations"]["ambient-code.io/created-by-user-id"] == \
        session["spec"]["userContext"]["userId"]
    role = owned_by(world, child_path(ns, "roles", f"ambient-session-{name}-role"), session,
                    "AgenticSession")
    assert {"agenticsessions"} in [set(r["resources"]) for r in role["rules"]], role["rules"]
    binding = owned_by(world, child_path(ns, "rolebindings", f"ambient-session-{name}-rb"),
                       session, "AgenticSession")
    assert binding["roleRef"]["name"] == f"ambient-session-{name}-role"
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [
        ("ServiceAccount", f"ambient-session-{name}")]
    service = owned_by(world, child_path(ns, "services", f"session-{name}"), workload,
                       workload_kind)
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [("agui", 8001)]
    assert service["spec"]["selector"] == {"agentic-session": name,
                                           "app": "ambient-code-runner"}
    policy = world.raw.get(child_path(ns, "networkpolicies", "runner-allow-backend-only"))
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app": "ambient-code-runner"}}
    annotations = session["metadata"].get("annotations") or {}
    assert annotations.get("ambient-code.io/runner-sa") == f"ambient-session-{name}"
    assert annotations.get("ambient-code.io/runner-token-secret") == \
        f"ambient-runner-token-{name}"
    return [child_path(ns, "secrets", f"ambient-runner-token-{name}"),
            child_path(ns, "serviceaccounts", f"ambient-session-{name}"),
            child_path(ns, "roles", f"ambient-session-{name}-role"),
            child_path(ns, "rolebindings", f"ambient-session-{name}-rb"),
            child_path(ns, "services", f"session-{name}")]


def test_pod_session_runs_resumes_stops_restarts_and_is_collected(world: World,
                                                                  ns: str) -> None:
    name = unique("session")
    # timeout is passed to the runner and never enforced: the session outlives it.
    create(world, ns, name, prompt="Refactor the parser", timeout=1)
    session = session_when(world, ns, name, running, "not Running and Ready")
    status = session["status"]
    assert status["executionKind"] == "pod" and status["startTime"], status
    assert status["endpoint"] == f"http://session-{name}.{ns}.svc.cluster.local:8001", status
    pod_path = child_path(ns, "pods", f"{name}-runner")
    pod = owned_by(world, pod_path, session, "AgenticSession")
    env = env_of(pod)
    assert env["TIMEOUT"] == "1" and env["AGENTIC_SESSION_NAME"] == name, env
    assert env["AGUI_TOKEN"] == {"secretKeyRef": {"name": f"ambient-runner-token-{name}",
                                                  "key": "agui-token"}}, env
    assert "IS_RESUME" not in env, "the first runner of a session is not a resume"
    children = check_session_children(world, ns, name, session, pod, "Pod")
    time.sleep(2)  # about time passing: spec.timeout (1 s) is over and never enforced
    assert running(world.raw.get(session_path(ns, name))), "stopped by spec.timeout"

    # The runner Pod lost while Running: back to Pending, a new runner that resumes.
    world.raw.request("DELETE", pod_path)
    resumed = eventually(lambda: (p := world.raw.get(pod_path))["metadata"]["uid"]
                         != pod["metadata"]["uid"] and p, timeout=TIMEOUT, interval=0.2,
                         message="the lost runner Pod was not replaced")
    assert env_of(resumed)["IS_RESUME"] == "true"
    session = session_when(world, ns, name, running, "not Running after the resume")

    # Stopped as the backend stops it.
    stop(world, ns, name)
    session = session_when(world, ns, name, phase("Stopped"), "not Stopped")
    assert session["status"]["stoppedReason"] == "user", session["status"]
    assert not {DESIRED_PHASE, STOP_REQUESTED_AT} & set(session["metadata"].get("annotations")
                                                        or {})
    for path in (pod_path, child_path(ns, "services", f"session-{name}")):
        eventually(lambda p=path: gone(world, p), timeout=TIMEOUT, interval=0.2,
                   message=f"{path} of a Stopped session is still there")

    annotate(world, ns, name, {DESIRED_PHASE: "Running"})
    session = session_when(world, ns, name, running, "not Running again")
    assert DESIRED_PHASE not in (session["metadata"].get("annotations") or {})
    assert "stoppedReason" not in session["status"], session["status"]
    restarted = owned_by(world, pod_path, session, "AgenticSession")
    assert restarted["metadata"]["uid"] not in (pod["metadata"]["uid"],
                                                resumed["metadata"]["uid"])
    assert env_of(restarted)["IS_RESUME"] == "true"

    world.raw.request("DELETE", session_path(ns, name))
    for path in [session_path(ns, name), pod_path, *children]:
        eventually(lambda p=path: gone(world, p), timeout=TIMEOUT, interval=0.2,
                   message=f"{path} was not garbage-collected")


def test_vm_session_runs_and_stops(world: World, ns: str) -> None:
    if not world.kubevirt():
        pytest.skip("the cluster does not serve kubevirt.io/v1 VirtualMachines")
    name = unique("session")
    create(world, ns, name, vm=True, prompt="Build a kind cluster")
    session = session_when(world, ns, name, running, "not Running and Ready")
    assert session["status"]["executionKind"] == "kubevirt-vm"
    assert session["status"]["runtime"] == VM_RUNTIME["id"]
    vm = owned_by(world, child_path(ns, "virtualmachines", f"{name}-runner"), session,
                  "AgenticSession")
    assert vm["spec"].get("runStrategy") and "running" not in vm["spec"]
    assert vm["spec"]["template"]["metadata"]["labels"] == {"agentic-session": name,
                                                            "app": "ambient-code-runner"}
    # The guest gets its tokens from the token Secret, referenced, never inline.
    shared = {v["secret"]["secretName"] for v in vm["spec"]["template"]["spec"]["volumes"]
              if "secret" in v}
    assert {f"ambient-runner-token-{name}", RUNNER_SECRETS} <= shared, shared
    owned_by(world, child_path(ns, "secrets", f"{name}-cloudinit"), session, "AgenticSession")
    check_session_children(world, ns, name, session, vm, "VirtualMachine")

    stop(world, ns, name)
    session = session_when(world, ns, name, phase("Stopped"), "not Stopped")
    assert session["status"]["stoppedReason"] == "user", session["status"]
    eventually(lambda: gone(world, child_path(ns, "virtualmachines", f"{name}-runner")),
               timeout=TIMEOUT, interval=0.2, message="the VM of a Stopped session is there")


def test_sessions_in_unmanaged_namespaces_wait_for_the_label(world: World, ns: str) -> None:
    other = unique("unmanaged")
    world.create_namespace(other, managed=False)
    try:
        create(world, other, "waiting")
        create(world, ns, "control")
        session_when(world, ns, "control", running, "not Running")
        # The managed one ran; the other was left alone: no status, no children.
        assert not world.raw.get(session_path(other, "waiting")).get("status")
        assert gone(world, child_path(other, "pods", "waiting-runner"))
        status, body = world.raw.request(
            "PATCH", f"/api/v1/namespaces/{other}",
            {"metadata": {"labels": {MANAGED_LABEL: "true"}}},
            content_type="application/merge-patch+json")
        assert status == 200, body
        session_when(world, other, "waiting", running, "not Running once managed")
    finally:
        world.delete_namespace(other)


def test_a_session_waits_pending_for_the_runner_secret(world: World) -> None:
    """Without ``ambient-runner-secrets`` a session stays Pending with upstream's condition,
    creates nothing, and starts once the Secret is there."""
    other = unique("nosecret")
    world.create_namespace(other, runner_secrets=False)
    try:
        create(world, other, "waiting")
        session = session_when(world, other, "waiting",
                               lambda s: condition(s, "SecretsReady").get("reason")
                               == "RunnerSecretMissing", "no RunnerSecretMissing condition")
        assert session["status"]["phase"] == "Pending"
        assert condition(session, "SecretsReady")["status"] == "False"
        assert gone(world, child_path(other, "pods", "waiting-runner"))
        create_runner_secrets(world.raw, other)
        session = session_when(world, other, "waiting", running,
                               "not Running once its Secret exists")
        assert condition(session, "SecretsReady")["status"] == "True"
    finally:
        world.delete_namespace(other)


def test_unknown_runtime_is_reported_on_the_session(world: World, ns: str) -> None:
    name = "no-such-runtime"
    create(world, ns, name, runtime="no-such-runtime")
    session = session_when(world, ns, name,
                           lambda s: condition(s).get("reason") == "UnknownRuntime",
                           "no UnknownRuntime condition")
    ready = condition(session)
    assert ready["status"] == "False" and "no-such-runtime" in ready["message"], ready

    def warned() -> bool:
        events = world.raw.items(f"/api/v1/namespaces/{ns}/events")
        return any(e["involvedObject"].get("uid") == session["metadata"]["uid"]
                   and (e["type"], e["reason"]) == ("Warning", "UnknownRuntime")
                   for e in events)
    eventually(warned, timeout=TIMEOUT, interval=0.2, message="no Warning Event")
    assert gone(world, child_path(ns, "pods", f"{name}-runner"))
