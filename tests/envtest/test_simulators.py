"""Cluster simulators: the kubelet and KubeVirt acting on objects, scenario hooks included.

Two servers: one with both simulators (the KubeVirt one finds the kubelet and follows the
launcher pods), one with KubeVirt alone and no garbage collector (timers stand in for the pod,
the simulator deletes children itself). Delays are short so the module runs in seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from ambient_ctrl.cli import build_parser
from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer, ServerOptions
from envtest.simulators import (
    SCENARIO_ANNOTATION,
    SIMULATORS,
    KubeletSimulator,
    KubeVirtSimulator,
)
from envtest.simulators import client as sim_client
from envtest.storage.store import Stored
from tests.conftest import RawClient, Watch

KV = "/apis/kubevirt.io/v1"
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def api() -> Iterator[LocalAPIServer]:
    """Overrides conftest's server: this module's runs the kubelet and KubeVirt."""
    kubelet = KubeletSimulator(schedule_delay=0.02, start_delay=0.05, ready_delay=0.1,
                               backoff=0.2)
    kubevirt = KubeVirtSimulator(schedule_delay=0.02, boot_delay=0.05, ready_delay=0.1,
                                 pull_backoff=0.2, stop_delay=0.3, restart_backoff=0.3)
    with LocalAPIServer(simulators=[kubelet, kubevirt]) as srv:
        yield srv


@pytest.fixture(scope="module")
def lone() -> Iterator[RawClient]:
    """A server with KubeVirt but no kubelet and no garbage collector."""
    kubevirt = KubeVirtSimulator(schedule_delay=0.02, boot_delay=0.05, ready_delay=0.1,
                                 pull_backoff=0.2, stop_delay=0.05, kubelet_grace=0.1)
    with LocalAPIServer(options=ServerOptions(garbage_collection=False),
                        simulators=[kubevirt]) as srv, RawClient(srv.url) as raw:
        status, body = raw.post("/api/v1/namespaces", {"metadata": {"name": "lone"}})
        assert status == 201, body
        yield raw


class KeptChecks:
    """Each time a simulator takes its kept object instead of decoding the stored one: whether
    the two are byte for byte the same JSON (checked on the server's thread, reported here)."""

    def __init__(self) -> None:
        self.hits = 0
        self.wrong: list[str] = []


@pytest.fixture(autouse=True)
def kept(monkeypatch: pytest.MonkeyPatch) -> Iterator[KeptChecks]:
    checks = KeptChecks()
    take = sim_client.Kept.take

    def checked(self: sim_client.Kept, stored: Stored) -> Obj:
        hit = self.holds(stored)
        obj = take(self, stored)
        if hit:
            checks.hits += 1
            if orjson.dumps(obj) != stored.raw or obj != orjson.loads(stored.raw):
                checks.wrong.append(f"{obj['metadata']['name']} at {stored.rv}")
        return obj

    monkeypatch.setattr(sim_client.Kept, "take", checked)
    yield checks
    assert checks.wrong == [], "a kept object is not what storage holds"


# helpers -------------------------------------------------------------------------------------
def pod(name: str, scenario: str = "", *, restart: str = "Always",
        containers: tuple[str, ...] = ("app",)) -> Obj:
    meta: Obj = {"name": name}
    if scenario:
        meta["annotations"] = {SCENARIO_ANNOTATION: scenario}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {
        "restartPolicy": restart,
        "containers": [{"name": c, "image": "registry.example.com/agent:1.0"}
                       for c in containers]}}


def vm(name: str, scenario: str = "", *, strategy: str | None = "Always") -> Obj:
    meta: Obj = {"name": name}
    if scenario:
        meta["annotations"] = {SCENARIO_ANNOTATION: scenario}
    spec: Obj = {"template": {
        "metadata": {"labels": {"agentic-session": name, "app": "ambient-code-runner"}},
        "spec": {"domain": {"cpu": {"cores": 2}, "memory": {"guest": "2Gi"},
                            "devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}]}},
                 "networks": [{"name": "default", "pod": {}}],
                 "volumes": [{"name": "root", "containerDisk": {
                     "image": "quay.io/containerdisks/fedora:41"}}]}}}
    if strategy is None:
        spec["running"] = True
    else:
        spec["runStrategy"] = strategy
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": meta,
            "spec": spec}


def create(client: RawClient, path: str, obj: Obj) -> Obj:
    status, body = client.post(path, obj)
    assert status == 201, body
    return dict(body)


def get(client: RawClient, path: str) -> Obj | None:
    status, body = client.get(path)
    if status == 404:
        return None
    assert status == 200, body
    return dict(body)


def await_object(client: RawClient, path: str, check: Callable[[Obj], bool],
                 timeout: float = 5.0) -> Obj:
    """The object at ``path`` once ``check`` holds for it."""
    def ready() -> Obj | None:
        obj = get(client, path)
        return obj if obj is not None and check(obj) else None

    result: Obj = eventually(ready, timeout=timeout, message=f"{path} did not get there")
    return result


def history(watch: Watch, until: Callable[[Obj], bool], timeout: float = 5.0) -> list[Obj]:
    """Objects a watch delivers, up to and including the first for which ``until`` holds."""
    seen: list[Obj] = []
    deadline = time.monotonic() + timeout
    while True:
        event = watch.next(timeout=max(0.1, deadline - time.monotonic()))
        assert event is not None, "the watch ended"
        seen.append(event["object"])
        if until(event["object"]):
            return seen


def cond(obj: Obj, kind: str) -> Obj:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c["type"] == kind:
            return dict(c)
    return {}


def container(obj: Obj, index: int = 0) -> Obj:
    return dict(obj["status"]["containerStatuses"][index])


def phase(obj: Obj) -> str:
    return str((obj.get("status") or {}).get("phase", ""))


def printable(obj: Obj) -> str:
    return str((obj.get("status") or {}).get("printableStatus", ""))


def launchers(client: RawClient, namespace: str, vm_name: str) -> list[Obj]:
    _, pods = client.get(f"/api/v1/namespaces/{namespace}/pods?labelSelector="
                         f"vm.kubevirt.io/name%3D{vm_name}")
    return list(pods["items"])


def past_the_delays(client: RawClient, namespace: str, *, kind: str = "pod") -> None:
    """Wait until a healthy pod (or VM) created now is Ready. Each step of a simulator is a
    timer of a fixed delay started by the step before, so by then every schedule, start or
    ready step the simulator would have taken for an object created earlier has happened: what
    such an object still lacks, it will not get. (Instead of sleeping "well past" the delays.)"""
    if kind == "pod":
        path = f"/api/v1/namespaces/{namespace}/pods"
        create(client, path, pod("sentinel"))
        await_object(client, f"{path}/sentinel",
                     lambda p: cond(p, "Ready").get("status") == "True")
    else:
        base = f"{KV}/namespaces/{namespace}"
        create(client, f"{base}/virtualmachines", vm("sentinel"))
        await_object(client, f"{base}/virtualmachines/sentinel",
                     lambda v: (v.get("status") or {}).get("ready") is True)


# kubelet ---------------------------------------------------------------------------------------
def test_pod_is_scheduled_runs_then_turns_ready(client: RawClient, namespace: str) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    with client.watch(f"{pods}?watch=true") as watch:
        create(client, pods, pod("web"))
        seen = history(watch, lambda p: cond(p, "Ready").get("status") == "True")
    assert any(phase(p) == "Pending" and container(p)["state"]["waiting"]["reason"]
               == "ContainerCreating" for p in seen if p["status"].get("containerStatuses"))
    assert any(phase(p) == "Running" and cond(p, "Ready")["status"] == "False" for p in seen)
    ready = seen[-1]
    assert ready["spec"]["nodeName"] == "envtest-node"
    status = ready["status"]
    assert status["podIP"].startswith("10.244.") and status["podIPs"] == [{"ip": status["podIP"]}]
    assert status["hostIP"] and status["startTime"] and status["qosClass"] == "BestEffort"
    assert [c["type"] for c in status["conditions"]] == [
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    assert all(c["status"] == "True" and c["lastTransitionTime"] for c in status["conditions"])
    app = container(ready)
    assert app["ready"] and app["started"] and app["restartCount"] == 0
    assert app["image"] == "registry.example.com/agent:1.0"
    assert app["imageID"].startswith("registry.example.com/agent@sha256:")
    assert app["containerID"].startswith("containerd://") and "startedAt" in app["state"]["running"]


def test_kubelet_writes_from_the_pod_it_kept_unless_another_wrote_it(
        client: RawClient, namespace: str, kept: KeptChecks) -> None:
    """The kubelet decodes a pod once and then works from what its own writes stored (the
    autouse ``kept`` fixture checks each such use against storage). A write by someone else
    in between is seen: the restarts after a label was added keep the label."""
    path = f"/api/v1/namespaces/{namespace}/pods/kept"
    create(client, path.rsplit("/", 1)[0], pod("kept"))
    await_object(client, path, lambda p: cond(p, "Ready").get("status") == "True")
    assert kept.hits >= 3  # the binding and the statuses after it: none decoded again

    create(client, path.rsplit("/", 1)[0], pod("relabelled", "crash-loop:0.05"))
    path = f"{path.rsplit('/', 1)[0]}/relabelled"
    await_object(client, path, lambda p: bool(p["status"].get("containerStatuses"))
                 and container(p)["restartCount"] >= 1)
    status, body = client.patch(path, {"metadata": {"labels": {"team": "platform"}}})
    assert status == 200, body
    restarts = container(body)["restartCount"]
    later = await_object(client, path, lambda p: container(p)["restartCount"] >= restarts + 2)
    assert later["metadata"]["labels"] == {"team": "platform"}


def test_kept_objects_are_the_most_recent_few_and_need_a_uid() -> None:
    def stored(uid: str, rv: int) -> Stored:
        return Stored(orjson.dumps({"metadata": {"uid": uid, "resourceVersion": str(rv)}}), rv,
                      {}, {}, uid=uid)

    kept = sim_client.Kept(maxsize=2)
    first = kept.take(stored("a", 1))
    assert kept.take(stored("a", 1)) is first and not kept.holds(stored("a", 2))
    assert kept.take(stored("a", 2)) is not first  # another revision: decoded again
    kept.take(stored("b", 1))
    kept.take(stored("a", 2))  # a is the most recent again
    kept.take(stored("c", 1))  # b, the least recent, goes
    assert [kept.holds(stored(uid, rv)) for uid, rv in (("a", 2), ("b", 1), ("c", 1))] == [
        True, False, True]
    kept.forget("a")
    assert not kept.holds(stored("a", 2))
    kept.take(stored("", 1))
    assert not kept.holds(stored("", 1)), "an object without a UID is never kept"


def test_pod_ips_are_unique(client: RawClient, namespace: str) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    for name in ("a", "b", "c"):
        create(client, pods, pod(name))
    ips = {await_object(client, f"{pods}/{name}", lambda p: bool(p["status"].get("podIP")))
           ["status"]["podIP"] for name in ("a", "b", "c")}
    assert len(ips) == 3


def test_image_pull_error(client: RawClient, namespace: str) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    with client.watch(f"{pods}?watch=true") as watch:
        create(client, pods, pod("pull", "image-pull-error"))
        seen = history(watch, lambda p: bool(p["status"].get("containerStatuses")) and (
            container(p)["state"].get("waiting", {}).get("reason") == "ImagePullBackOff"))
    reasons = [container(p)["state"].get("waiting", {}).get("reason") for p in seen
               if p["status"].get("containerStatuses")]
    assert reasons.index("ErrImagePull") < reasons.index("ImagePullBackOff")
    err = next(container(p) for p in seen if p["status"].get("containerStatuses")
               and container(p)["state"].get("waiting", {}).get("reason") == "ErrImagePull")
    assert "failed to pull and unpack image" in err["state"]["waiting"]["message"]
    final = seen[-1]
    assert container(final)["state"]["waiting"]["message"] == (
        'Back-off pulling image "registry.example.com/agent:1.0"')
    assert phase(final) == "Pending" and container(final)["imageID"] == ""
    assert cond(final, "Ready")["reason"] == "ContainersNotReady"


def test_crash_loop_restarts_with_back_off(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods/crash"
    create(client, path.rsplit("/", 1)[0], pod("crash", "crash-loop:0.05"))
    obj = await_object(client, path, lambda p: bool(p["status"].get("containerStatuses")) and (
        container(p)["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff"))
    app = container(obj)
    assert phase(obj) == "Running" and app["restartCount"] >= 1 and not app["ready"]
    last = app["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (1, "Error")
    assert last["startedAt"] and last["finishedAt"] and last["containerID"]
    assert "back-off" in app["state"]["waiting"]["message"]
    assert f"restarting failed container=app pod=crash_{namespace}(" in (
        app["state"]["waiting"]["message"])
    restarted = await_object(client, path, lambda p: container(p)["restartCount"] >= 2)
    assert container(restarted)["lastState"]["terminated"]["exitCode"] == 1


@pytest.mark.parametrize(("scenario", "restart", "pod_phase", "code", "reason"), [
    ("crash-loop:0.05", "Never", "Failed", 1, "Error"),
    ("exit:0:0.05", "Never", "Succeeded", 0, "Completed"),
    ("exit:3:0.05", "Never", "Failed", 3, "Error"),
    ("exit:0:0.05", "OnFailure", "Succeeded", 0, "Completed"),
    ("oom:0.05", "Never", "Failed", 137, "OOMKilled"),
], ids=["crash-never", "exit-0", "exit-3", "exit-0-onfailure", "oom"])
def test_terminating_containers(client: RawClient, namespace: str, scenario: str, restart: str,
                                pod_phase: str, code: int, reason: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods/end"
    create(client, path.rsplit("/", 1)[0], pod("end", scenario, restart=restart))
    obj = await_object(client, path, lambda p: phase(p) in ("Succeeded", "Failed"))
    assert phase(obj) == pod_phase
    app = container(obj)
    done = app["state"]["terminated"]
    assert (done["exitCode"], done["reason"]) == (code, reason)
    assert not app["ready"] and not app["started"] and app["restartCount"] == 0
    assert cond(obj, "Ready")["status"] == "False" and cond(obj, "Ready")["reason"] == (
        "PodCompleted")
    assert cond(obj, "PodReadyToStartContainers")["status"] == "False"


def test_scenario_for_one_container(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods/two"
    create(client, path.rsplit("/", 1)[0], pod("two", "exit:2:0.05@side", restart="Never",
                                               containers=("main", "side")))
    obj = await_object(client, path, lambda p: bool(p["status"].get("containerStatuses")) and (
        "terminated" in container(p, 1)["state"]) and container(p, 0)["ready"])
    assert [c["name"] for c in obj["status"]["containerStatuses"]] == ["main", "side"]
    assert phase(obj) == "Running" and "running" in container(obj, 0)["state"]
    assert container(obj, 1)["state"]["terminated"]["exitCode"] == 2
    assert cond(obj, "Ready")["message"] == "containers with unready status: [side]"


def test_unschedulable(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods/big"
    create(client, path.rsplit("/", 1)[0], pod("big", "unschedulable"))
    obj = await_object(client, path, lambda p: bool(cond(p, "PodScheduled")))
    scheduled = cond(obj, "PodScheduled")
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
    assert scheduled["message"] == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 "
        "No preemption victims found for incoming pod.")
    past_the_delays(client, namespace)
    obj = get(client, path)
    assert obj is not None and phase(obj) == "Pending" and "nodeName" not in obj["spec"]
    assert "containerStatuses" not in obj["status"]


def test_never_ready(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods/slow"
    create(client, path.rsplit("/", 1)[0], pod("slow", "never-ready"))
    obj = await_object(client, path, lambda p: phase(p) == "Running")
    past_the_delays(client, namespace)
    obj = get(client, path) or {}
    assert phase(obj) == "Running" and container(obj)["started"] and not container(obj)["ready"]
    for kind in ("Ready", "ContainersReady"):
        assert (cond(obj, kind)["status"], cond(obj, kind)["reason"]) == (
            "False", "ContainersNotReady")


def test_malformed_scenario_is_ignored(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods/odd"
    create(client, path.rsplit("/", 1)[0], pod("odd", "exit:banana"))
    await_object(client, path, lambda p: cond(p, "Ready").get("status") == "True")


def test_recreated_pod_is_run_afresh(client: RawClient, namespace: str) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    create(client, pods, pod("again"))
    assert client.delete(f"{pods}/again")[0] == 200  # before the kubelet got to it
    second = create(client, pods, pod("again"))
    obj = await_object(client, f"{pods}/again", lambda p: cond(p, "Ready").get("status") == "True")
    assert obj["metadata"]["uid"] == second["metadata"]["uid"]


# KubeVirt with the kubelet ---------------------------------------------------------------------
def test_kubevirt_crds_are_installed(client: RawClient) -> None:
    _, resources = client.get(KV)
    names = {r["name"]: r for r in resources["resources"]}
    assert names["virtualmachines"]["shortNames"] == ["vm", "vms"]
    assert names["virtualmachineinstances"]["shortNames"] == ["vmi", "vmis"]
    assert {"virtualmachines/status", "virtualmachineinstances/status"} <= set(names)
    _, crd = client.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                        "virtualmachines.kubevirt.io")
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in columns] == ["Age", "Status", "Ready"]


@pytest.mark.parametrize("strategy", ["Always", None], ids=["runStrategy", "running-true"])
def test_vm_runs_and_becomes_ready(client: RawClient, namespace: str,
                                   strategy: str | None) -> None:
    base = f"{KV}/namespaces/{namespace}"
    created = create(client, f"{base}/virtualmachines", vm("vm", strategy=strategy))
    machine = await_object(client, f"{base}/virtualmachines/vm",
                           lambda v: (v.get("status") or {}).get("ready") is True)
    assert printable(machine) == "Running" and machine["status"]["created"] is True
    assert cond(machine, "Ready")["status"] == "True"
    vmi = get(client, f"{base}/virtualmachineinstances/vm") or {}
    assert phase(vmi) == "Running" and cond(vmi, "Ready")["status"] == "True"
    assert [t["phase"] for t in vmi["status"]["phaseTransitionTimestamps"]] == [
        "Pending", "Scheduling", "Scheduled", "Running"]
    assert vmi["metadata"]["labels"] == {"agentic-session": "vm", "app": "ambient-code-runner"}
    assert vmi["metadata"]["ownerReferences"] == [{
        "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "name": "vm",
        "uid": created["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    assert vmi["spec"]["domain"]["cpu"] == {"cores": 2}
    [launcher] = launchers(client, namespace, "vm")
    assert launcher["metadata"]["name"].startswith("virt-launcher-vm-")
    assert len(launcher["metadata"]["name"]) == len("virt-launcher-vm-") + 5
    assert launcher["metadata"]["labels"] == {
        "agentic-session": "vm", "app": "ambient-code-runner", "kubevirt.io": "virt-launcher",
        "vm.kubevirt.io/name": "vm", "kubevirt.io/created-by": vmi["metadata"]["uid"]}
    [owner] = launcher["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "VirtualMachineInstance", vmi["metadata"]["uid"], True)
    [compute] = launcher["spec"]["containers"]
    assert compute["name"] == "compute" and compute["image"].startswith("quay.io/kubevirt/")
    assert launcher["spec"]["securityContext"]["runAsNonRoot"] is True
    assert cond(launcher, "Ready")["status"] == "True"
    assert vmi["status"]["nodeName"] == launcher["spec"]["nodeName"] == "envtest-node"
    assert vmi["status"]["interfaces"][0]["ipAddress"] == launcher["status"]["podIP"]
    assert vmi["status"]["activePods"] == {launcher["metadata"]["uid"]: "envtest-node"}


def test_halted_stops_the_vm(client: RawClient, namespace: str) -> None:
    base = f"{KV}/namespaces/{namespace}"
    create(client, f"{base}/virtualmachines", vm("stop"))
    await_object(client, f"{base}/virtualmachines/stop", lambda v: printable(v) == "Running")
    with client.watch(f"{base}/virtualmachines?watch=true") as watch:
        status, _ = client.patch(f"{base}/virtualmachines/stop",
                                 {"spec": {"runStrategy": "Halted"}})
        assert status == 200
        seen = history(watch, lambda v: printable(v) == "Stopped")
    assert "Stopping" in [printable(v) for v in seen]
    stopped = seen[-1]["status"]
    assert "ready" not in stopped and "created" not in stopped
    assert cond(seen[-1], "Ready")["reason"] == "VMINotExists"
    assert get(client, f"{base}/virtualmachineinstances/stop") is None
    eventually(lambda: not launchers(client, namespace, "stop"), timeout=5)


def test_deleting_the_vm_removes_vmi_and_pod(client: RawClient, namespace: str) -> None:
    base = f"{KV}/namespaces/{namespace}"
    create(client, f"{base}/virtualmachines", vm("gone"))
    await_object(client, f"{base}/virtualmachines/gone", lambda v: printable(v) == "Running")
    assert client.delete(f"{base}/virtualmachines/gone")[0] == 200
    eventually(lambda: get(client, f"{base}/virtualmachineinstances/gone") is None, timeout=5)
    eventually(lambda: not launchers(client, namespace, "gone"), timeout=5)


def test_vm_image_pull_error(client: RawClient, namespace: str) -> None:
    base = f"{KV}/namespaces/{namespace}"
    with client.watch(f"{base}/virtualmachines?watch=true") as watch:
        create(client, f"{base}/virtualmachines", vm("pull", "image-pull-error"))
        seen = history(watch, lambda v: printable(v) == "ImagePullBackOff")
    statuses = [printable(v) for v in seen]
    assert statuses.index("ErrImagePull") < statuses.index("ImagePullBackOff")
    vmi = get(client, f"{base}/virtualmachineinstances/pull") or {}
    assert phase(vmi) == "Scheduling"
    assert (cond(vmi, "Synchronized")["status"], cond(vmi, "Synchronized")["reason"]) == (
        "False", "ImagePullBackOff")
    assert cond(seen[-1], "Synchronized")["reason"] == "ImagePullBackOff"
    [launcher] = launchers(client, namespace, "pull")
    assert container(launcher)["state"]["waiting"]["reason"] == "ImagePullBackOff"


def test_vm_unschedulable(client: RawClient, namespace: str) -> None:
    base = f"{KV}/namespaces/{namespace}"
    create(client, f"{base}/virtualmachines", vm("big", "unschedulable"))
    machine = await_object(client, f"{base}/virtualmachines/big",
                           lambda v: printable(v) == "ErrorUnschedulable")
    assert cond(machine, "PodScheduled")["reason"] == "Unschedulable"
    vmi = get(client, f"{base}/virtualmachineinstances/big") or {}
    scheduled = cond(vmi, "PodScheduled")
    assert phase(vmi) == "Scheduling"
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
    assert scheduled["message"].startswith("0/1 nodes are available")


def test_vm_crash_loops_under_always(client: RawClient, namespace: str) -> None:
    base = f"{KV}/namespaces/{namespace}"
    with client.watch(f"{base}/virtualmachineinstances?watch=true") as watch:
        create(client, f"{base}/virtualmachines", vm("crash", "crash:0.05"))
        first = history(watch, lambda v: phase(v) == "Failed")
    assert [phase(v) for v in first if phase(v)][-2:] == ["Running", "Failed"]
    assert len({v["metadata"]["uid"] for v in first}) == 1
    machine = await_object(client, f"{base}/virtualmachines/crash",
                           lambda v: printable(v) == "CrashLoopBackOff")
    failure = machine["status"]["startFailure"]
    assert failure["consecutiveFailCount"] >= 1 and failure["retryAfterTimestamp"]
    assert failure["lastFailedVMIUID"]
    assert "ready" not in machine["status"]
    again = await_object(client, f"{base}/virtualmachineinstances/crash",
                         lambda v: v["metadata"]["uid"] != first[0]["metadata"]["uid"])
    assert again["metadata"]["ownerReferences"][0]["name"] == "crash"


def test_vm_crash_under_once_stays_failed(client: RawClient, namespace: str) -> None:
    base = f"{KV}/namespaces/{namespace}"
    create(client, f"{base}/virtualmachines", vm("once", "crash:0.05", strategy="Once"))
    vmi = await_object(client, f"{base}/virtualmachineinstances/once",
                       lambda v: phase(v) == "Failed")
    machine = await_object(client, f"{base}/virtualmachines/once",
                           lambda v: printable(v) == "Stopped")
    assert "startFailure" not in machine["status"]
    assert cond(vmi, "Ready")["status"] == "False"
    eventually(lambda: not launchers(client, namespace, "once"), timeout=5)


@pytest.mark.parametrize("strategy", ["Once", "Always"])
def test_guest_shutdown(client: RawClient, namespace: str, strategy: str) -> None:
    base = f"{KV}/namespaces/{namespace}"
    with client.watch(f"{base}/virtualmachineinstances?watch=true") as watch:
        create(client, f"{base}/virtualmachines",
               vm("off", "guest-shutdown:0.1", strategy=strategy))
        first = history(watch, lambda v: phase(v) == "Succeeded")
    assert [phase(v) for v in first if phase(v)][-2:] == ["Running", "Succeeded"]
    if strategy == "Once":
        eventually(lambda: not launchers(client, namespace, "off"), timeout=5)
        machine = await_object(client, f"{base}/virtualmachines/off",
                               lambda v: printable(v) == "Stopped")
        vmi = get(client, f"{base}/virtualmachineinstances/off") or {}
        assert vmi["metadata"]["uid"] == first[-1]["metadata"]["uid"]  # kept, not restarted
    else:
        await_object(client, f"{base}/virtualmachineinstances/off",
                     lambda v: v["metadata"]["uid"] != first[-1]["metadata"]["uid"])
        machine = await_object(client, f"{base}/virtualmachines/off",
                               lambda v: printable(v) in ("Starting", "Running"))
    assert "startFailure" not in machine["status"]


def test_vm_never_ready(client: RawClient, namespace: str) -> None:
    base = f"{KV}/namespaces/{namespace}"
    create(client, f"{base}/virtualmachines", vm("slow", "never-ready"))
    await_object(client, f"{base}/virtualmachines/slow", lambda v: printable(v) == "Running")
    past_the_delays(client, namespace, kind="vm")
    machine = get(client, f"{base}/virtualmachines/slow") or {}
    assert printable(machine) == "Running" and "ready" not in machine["status"]
    assert cond(machine, "Ready")["reason"] == "ContainersNotReady"


def test_vm_datavolume_error(client: RawClient, namespace: str) -> None:
    base = f"{KV}/namespaces/{namespace}"
    create(client, f"{base}/virtualmachines", vm("dv", "datavolume-error"))
    await_object(client, f"{base}/virtualmachines/dv", lambda v: printable(v) == "DataVolumeError")
    vmi = get(client, f"{base}/virtualmachineinstances/dv") or {}
    assert phase(vmi) == "Pending" and not launchers(client, namespace, "dv")


# KubeVirt alone --------------------------------------------------------------------------------
def test_without_kubelet_timers_drive_the_vmi(lone: RawClient) -> None:
    base = f"{KV}/namespaces/lone"
    create(lone, f"{base}/virtualmachines", vm("solo"))
    machine = await_object(lone, f"{base}/virtualmachines/solo",
                           lambda v: (v.get("status") or {}).get("ready") is True)
    assert printable(machine) == "Running"
    vmi = get(lone, f"{base}/virtualmachineinstances/solo") or {}
    assert vmi["status"]["nodeName"] == "envtest-node"
    assert vmi["status"]["interfaces"][0]["ipAddress"].startswith("10.244.")
    [launcher] = launchers(lone, "lone", "solo")
    assert phase(launcher) == "Pending" and "nodeName" not in launcher["spec"]


def test_without_kubelet_image_pull_error(lone: RawClient) -> None:
    base = f"{KV}/namespaces/lone"
    create(lone, f"{base}/virtualmachines", vm("pull", "image-pull-error"))
    machine = await_object(lone, f"{base}/virtualmachines/pull",
                           lambda v: printable(v) == "ImagePullBackOff")
    assert cond(machine, "Synchronized")["message"] == (
        'Back-off pulling image "quay.io/containerdisks/fedora:41"')
    assert phase(get(lone, f"{base}/virtualmachineinstances/pull") or {}) == "Scheduling"


def test_without_gc_deleting_the_vm_removes_children(lone: RawClient) -> None:
    base = f"{KV}/namespaces/lone"
    create(lone, f"{base}/virtualmachines", vm("bye"))
    await_object(lone, f"{base}/virtualmachines/bye", lambda v: printable(v) == "Running")
    assert lone.delete(f"{base}/virtualmachines/bye")[0] == 200
    eventually(lambda: get(lone, f"{base}/virtualmachineinstances/bye") is None, timeout=5)
    eventually(lambda: not launchers(lone, "lone", "bye"), timeout=5)


# wiring ----------------------------------------------------------------------------------------
def test_simulate_flag() -> None:
    assert set(SIMULATORS) == {"kubelet", "kubevirt"}
    args = build_parser().parse_args(["apiserver", "--simulate", "kubelet, kubevirt"])
    assert args.simulate == ["kubelet", "kubevirt"]
    assert build_parser().parse_args(["apiserver"]).simulate == []
    with pytest.raises(SystemExit):
        build_parser().parse_args(["apiserver", "--simulate", "kubelet,etcd"])
