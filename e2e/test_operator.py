"""The AgenticSession operator, as its own process, against the target cluster: the local API
server with its kubelet and KubeVirt simulators, or — with ``E2E_KUBECONFIG`` — another
cluster (the CRD and the agent registry applied there with kubectl; ``E2E_REGISTRY`` names a
registry whose images run on it; VM sessions need KubeVirt and are skipped without it).

Each test works in a namespace of its own, labelled ``ambient-code.io/managed=true`` and
deleted after it. Nothing here relies on the simulators' scenario hooks or the local
server's admin endpoint; on a real cluster a child deleted by the garbage collector may
still be terminating, which counts as gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ambient_ctrl.testing import eventually

from .cluster import MANAGED_LABEL, registry_entries
from .conftest import unique
from .operator_process import (
    POD_RUNTIME,
    SESSIONS,
    VM_RUNTIME,
    World,
    condition,
    session_body,
    start_world,
    stop_world,
)

pytestmark = pytest.mark.timeout(180)

DESIRED_PHASE = "ambient-code.io/desired-phase"
TIMEOUT = 60.0
"""Seconds for a session to get where it is going (a real cluster pulls images)."""


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
    group = "/apis/kubevirt.io/v1" if plural.startswith("virtualmachine") else "/api/v1"
    return f"{group}/namespaces/{ns}/{plural}/{name}"


def create(world: World, ns: str, name: str, spec: dict[str, Any]) -> None:
    status, body = world.raw.request("POST", f"{SESSIONS}/namespaces/{ns}/agenticsessions",
                                     session_body(name, ns, spec))
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


def intend(world: World, ns: str, name: str, desired: str) -> None:
    status, body = world.raw.request(
        "PATCH", session_path(ns, name), {"metadata": {"annotations": {DESIRED_PHASE: desired}}},
        content_type="application/merge-patch+json")
    assert status == 200, (status, body)


def gone(world: World, path: str) -> bool:
    """Absent, or on its way out (a real kubelet gives pods a grace period)."""
    status, body = world.raw.request("GET", path)
    assert status in (200, 404), (path, status, body)
    return status == 404 or bool(body["metadata"].get("deletionTimestamp"))


def owned_by(world: World, path: str, session: dict[str, Any]) -> dict[str, Any]:
    """The child at ``path``, checked to name ``session`` as its blocking controller owner."""
    child = dict(world.raw.get(path))
    refs = [(r["kind"], r["name"], r["uid"], r.get("controller"), r.get("blockOwnerDeletion"))
            for r in child["metadata"].get("ownerReferences") or ()]
    meta = session["metadata"]
    assert refs == [("AgenticSession", meta["name"], meta["uid"], True, True)], (path, refs)
    return child


def test_pod_session_runs_stops_restarts_and_is_collected(world: World, ns: str) -> None:
    name = "pod-session"
    create(world, ns, name, {"displayName": "e2e", "initialPrompt": "Refactor the parser"})
    session = session_when(world, ns, name, running, "not Running and Ready")
    status = session["status"]
    assert status["executionKind"] == "pod" and status["endpoint"], status
    children = [child_path(ns, "pods", f"{name}-runner"),
                child_path(ns, "services", f"session-{name}"),
                child_path(ns, "secrets", f"{name}-agui-token")]
    pod = owned_by(world, children[0], session)
    for path in children[1:]:
        owned_by(world, path, session)

    intend(world, ns, name, "Stopped")
    session_when(world, ns, name, phase("Stopped"), "not Stopped")
    eventually(lambda: gone(world, children[0]), timeout=TIMEOUT, interval=0.2,
               message="the runner pod of a Stopped session is still there")

    intend(world, ns, name, "Running")
    session = session_when(world, ns, name, running, "not Running again")
    assert DESIRED_PHASE not in (session["metadata"].get("annotations") or {})
    restarted = owned_by(world, children[0], session)
    assert restarted["metadata"]["uid"] != pod["metadata"]["uid"]

    world.raw.request("DELETE", session_path(ns, name))
    for path in [session_path(ns, name), *children]:
        eventually(lambda p=path: gone(world, p), timeout=TIMEOUT, interval=0.2,
                   message=f"{path} was not garbage-collected")


def test_vm_session_runs(world: World, ns: str) -> None:
    if not world.kubevirt():
        pytest.skip("the cluster does not serve kubevirt.io/v1 VirtualMachines")
    name = "vm-session"
    create(world, ns, name, {"runtime": VM_RUNTIME["id"], "initialPrompt": "Build a kind cluster"})
    session = session_when(world, ns, name, running, "not Running and Ready")
    assert session["status"]["executionKind"] == "kubevirt-vm"
    vm = owned_by(world, child_path(ns, "virtualmachines", f"{name}-runner"), session)
    assert vm["spec"].get("runStrategy") and "running" not in vm["spec"]
    owned_by(world, child_path(ns, "secrets", f"{name}-cloudinit"), session)
    owned_by(world, child_path(ns, "services", f"session-{name}"), session)


def test_sessions_in_unmanaged_namespaces_wait_for_the_label(world: World, ns: str) -> None:
    other = unique("unmanaged")
    world.create_namespace(other, managed=False)
    try:
        create(world, other, "waiting", {"initialPrompt": "hi"})
        create(world, ns, "control", {"initialPrompt": "hi"})
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


def test_unknown_runtime_is_reported_on_the_session(world: World, ns: str) -> None:
    name = "no-such-runtime"
    create(world, ns, name, {"runtime": "no-such-runtime", "initialPrompt": "hi"})
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
