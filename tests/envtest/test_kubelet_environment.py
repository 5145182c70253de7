"""The kubelet simulator and what a container's environment needs, init containers, sidecars.

A container whose ``env``/``envFrom`` names a missing Secret or ConfigMap (or key) waits with
``CreateContainerConfigError`` and the kubelet's message, and starts once the reference
resolves; init containers run in order and sidecars (restartable init containers) keep running
and count in readiness; ``kubectl get pods`` columns follow kubectl's printer for all of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from envtest.kinds.registry import KindRegistry
from envtest.printing.tables import table
from envtest.simulators import SCENARIO_ANNOTATION, KubeletSimulator
from envtest.simulators.containerenv import Ref, config_error, refs
from tests.conftest import RawClient

Obj = dict[str, Any]
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@pytest.fixture(scope="module")
def api() -> Iterator[LocalAPIServer]:
    kubelet = KubeletSimulator(schedule_delay=0.02, start_delay=0.05, ready_delay=0.1,
                               backoff=0.2)
    with LocalAPIServer(simulators=[kubelet]) as server:
        yield server


# pure: the references and the kubelet's messages ------------------------------------------------
def test_references_in_the_kubelets_order() -> None:
    container = {"name": "c", "envFrom": [{"secretRef": {"name": "all"}},
                                          {"configMapRef": {"name": "cm", "optional": True}}],
                 "env": [{"name": "A", "value": "plain"},
                         {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                         {"name": "C", "valueFrom": {"configMapKeyRef": {
                             "name": "cm2", "key": "x", "optional": False}}},
                         {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}
    assert refs(container) == (Ref("secret", "all", None, False),
                               Ref("configmap", "cm", None, True),
                               Ref("secret", "s", "k", False),
                               Ref("configmap", "cm2", "x", False))


@pytest.mark.parametrize(("ref", "objects", "error"), [
    (Ref("secret", "db", "password", False), {}, 'secret "db" not found'),
    (Ref("secret", "db", None, False), {}, 'secret "db" not found'),
    (Ref("configmap", "cfg", None, False), {}, 'configmap "cfg" not found'),
    (Ref("secret", "db", "password", False), {("secret", "db"): {"user": "x"}},
     "couldn't find key password in Secret team-a/db"),
    (Ref("configmap", "cfg", "mode", False), {("configmap", "cfg"): {}},
     "couldn't find key mode in ConfigMap team-a/cfg"),
    (Ref("secret", "db", "password", True), {}, None),
    (Ref("secret", "db", "password", True), {("secret", "db"): {}}, None),
    (Ref("secret", "db", None, False), {("secret", "db"): {}}, None),
], ids=["secret", "secret-envfrom", "configmap-envfrom", "secret-key", "configmap-key",
        "optional-secret", "optional-key", "empty-secret-is-enough"])
def test_config_error_messages(ref: Ref, objects: dict[tuple[str, str], Obj],
                               error: str | None) -> None:
    lookup: Callable[[str, str], Obj | None] = lambda kind, name: objects.get((kind, name))  # noqa: E731
    assert config_error((ref,), "team-a", lookup) == error


# the simulator -----------------------------------------------------------------------------------
def create(client: RawClient, namespace: str, plural: str, body: Obj) -> Obj:
    status, created = client.post(f"/api/v1/namespaces/{namespace}/{plural}", body)
    assert status == 201, created
    return dict(created)


def await_pod(client: RawClient, namespace: str, name: str, check: Callable[[Obj], bool],
              timeout: float = 5.0) -> Obj:
    def matches() -> Obj | None:
        _, pod = client.get(f"/api/v1/namespaces/{namespace}/pods/{name}")
        return pod if check(pod) else None

    result: Obj = eventually(matches, timeout=timeout, message=f"pod {name} did not get there")
    return result


def waiting(pod: Obj, container: str = "app", key: str = "containerStatuses") -> Obj:
    for status in (pod.get("status") or {}).get(key) or ():
        if status["name"] == container:
            return dict(status["state"].get("waiting") or {})
    return {}


def condition(pod: Obj, kind: str) -> Obj:
    return next((dict(c) for c in pod["status"].get("conditions") or () if c["type"] == kind),
                {})


def ready(pod: Obj) -> bool:
    return condition(pod, "Ready").get("status") == "True"


def row(client: RawClient, namespace: str, name: str) -> list[Any]:
    _, listed = client.get(f"/api/v1/namespaces/{namespace}/pods?fieldSelector=metadata.name%3D"
                           f"{name}", headers={"Accept": TABLE})
    [found] = listed["rows"]
    return list(found["cells"][:4])


def app_pod(name: str, env: list[Obj] | None = None, env_from: list[Obj] | None = None,
            **spec: Any) -> Obj:
    container: Obj = {"name": "app", "image": "registry.example.com/app:1"}
    if env:
        container["env"] = env
    if env_from:
        container["envFrom"] = env_from
    return {"metadata": {"name": name}, "spec": {"containers": [container], **spec}}


def test_missing_secret_then_missing_key_then_it_starts(client: RawClient,
                                                        namespace: str) -> None:
    create(client, namespace, "pods", app_pod("web", env=[
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]))
    pod = await_pod(client, namespace, "web", lambda p: bool(waiting(p)) and waiting(p).get(
        "reason") == "CreateContainerConfigError")
    assert waiting(pod) == {"reason": "CreateContainerConfigError",
                            "message": 'secret "db" not found'}
    [status] = pod["status"]["containerStatuses"]
    assert (status["ready"], status["started"], status["imageID"]) == (False, False, "")
    assert pod["status"]["phase"] == "Pending" and pod["status"]["podIP"]
    assert condition(pod, "PodReadyToStartContainers")["status"] == "True"
    assert condition(pod, "Ready")["message"] == "containers with unready status: [app]"
    assert row(client, namespace, "web")[1:3] == ["0/1", "CreateContainerConfigError"]

    create(client, namespace, "secrets", {"metadata": {"name": "db"},
                                          "stringData": {"user": "admin"}})
    pod = await_pod(client, namespace, "web", lambda p: "key" in waiting(p).get("message", ""))
    assert waiting(pod)["message"] == f"couldn't find key password in Secret {namespace}/db"

    status_code, _ = client.patch(f"/api/v1/namespaces/{namespace}/secrets/db",
                                  {"stringData": {"password": "s3cret"}})
    assert status_code == 200
    pod = await_pod(client, namespace, "web", ready)
    assert "running" in pod["status"]["containerStatuses"][0]["state"]
    assert row(client, namespace, "web")[:3] == ["web", "1/1", "Running"]


@pytest.mark.parametrize(("env", "env_from", "objects", "message"), [
    (None, [{"secretRef": {"name": "bundle"}}], [], 'secret "bundle" not found'),
    (None, [{"configMapRef": {"name": "settings"}}], [], 'configmap "settings" not found'),
    ([{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}}],
     None, [("configmaps", {"metadata": {"name": "settings"}, "binaryData": {"mode": "AA=="}})],
     "couldn't find key mode in ConfigMap {ns}/settings"),
], ids=["envfrom-secret", "envfrom-configmap", "binarydata-does-not-count"])
def test_other_references_wait_too(client: RawClient, namespace: str, env: list[Obj] | None,
                                   env_from: list[Obj] | None, objects: list[tuple[str, Obj]],
                                   message: str) -> None:
    for plural, body in objects:
        create(client, namespace, plural, body)
    create(client, namespace, "pods", app_pod("p", env=env, env_from=env_from))
    pod = await_pod(client, namespace, "p", lambda p: bool(waiting(p).get("message")))
    assert waiting(pod) == {"reason": "CreateContainerConfigError",
                            "message": message.format(ns=namespace)}


def test_optional_references_do_not_block(client: RawClient, namespace: str) -> None:
    create(client, namespace, "pods", app_pod(
        "relaxed", env=[{"name": "X", "valueFrom": {"secretKeyRef": {
            "name": "absent", "key": "k", "optional": True}}}],
        env_from=[{"configMapRef": {"name": "absent", "optional": True}}]))
    await_pod(client, namespace, "relaxed", ready)


def test_a_configmap_in_another_namespace_does_not_unblock(client: RawClient,
                                                           namespace: str) -> None:
    create(client, namespace, "pods", app_pod("p", env_from=[{"configMapRef": {"name": "cfg"}}]))
    await_pod(client, namespace, "p", lambda p: bool(waiting(p).get("message")))
    create(client, "default", "configmaps", {"metadata": {"name": "cfg"}})
    create(client, namespace, "configmaps", {"metadata": {"name": "unrelated"}})
    _, pod = client.get(f"/api/v1/namespaces/{namespace}/pods/p")
    assert waiting(pod)["reason"] == "CreateContainerConfigError"
    create(client, namespace, "configmaps", {"metadata": {"name": "cfg"}})
    await_pod(client, namespace, "p", ready)


def test_a_restart_needs_its_secret_again(client: RawClient, namespace: str) -> None:
    create(client, namespace, "secrets", {"metadata": {"name": "token"},
                                          "stringData": {"t": "1"}})
    body = app_pod("crashy", env=[{"name": "T", "valueFrom": {"secretKeyRef": {
        "name": "token", "key": "t"}}}])
    body["metadata"]["annotations"] = {SCENARIO_ANNOTATION: "crash-loop:0.2"}
    create(client, namespace, "pods", body)
    await_pod(client, namespace, "crashy", lambda p: any(
        "running" in s["state"] for s in p["status"].get("containerStatuses") or ()))
    assert client.delete(f"/api/v1/namespaces/{namespace}/secrets/token")[0] == 200
    pod = await_pod(client, namespace, "crashy", lambda p: waiting(p).get(
        "reason") == "CreateContainerConfigError", timeout=10)
    assert waiting(pod)["message"] == 'secret "token" not found'
    assert pod["status"]["containerStatuses"][0]["restartCount"] >= 1


def test_init_container_waiting_on_a_configmap_holds_the_pod(client: RawClient,
                                                             namespace: str) -> None:
    create(client, namespace, "pods", app_pod("gated", initContainers=[
        {"name": "migrate", "image": "registry.example.com/migrate:1",
         "envFrom": [{"configMapRef": {"name": "schema"}}]}]))
    pod = await_pod(client, namespace, "gated", lambda p: bool(
        waiting(p, "migrate", "initContainerStatuses").get("message")))
    assert waiting(pod, "migrate", "initContainerStatuses") == {
        "reason": "CreateContainerConfigError", "message": 'configmap "schema" not found'}
    assert waiting(pod) == {"reason": "PodInitializing"}
    assert condition(pod, "Initialized") == {
        "type": "Initialized", "status": "False", "lastProbeTime": None,
        "lastTransitionTime": condition(pod, "Initialized")["lastTransitionTime"],
        "reason": "ContainersNotInitialized",
        "message": "containers with incomplete status: [migrate]"}
    assert row(client, namespace, "gated")[1:3] == ["0/1", "Init:CreateContainerConfigError"]

    create(client, namespace, "configmaps", {"metadata": {"name": "schema"}})
    pod = await_pod(client, namespace, "gated", ready)
    [init] = pod["status"]["initContainerStatuses"]
    assert init["state"]["terminated"]["reason"] == "Completed"
    assert condition(pod, "Initialized")["status"] == "True"


def test_init_container_sidecar_and_two_containers(client: RawClient, namespace: str) -> None:
    body = {"metadata": {"name": "full", "annotations": {SCENARIO_ANNOTATION: "never-ready"}},
            "spec": {
                "initContainers": [
                    {"name": "setup", "image": "busybox:1.36"},
                    {"name": "proxy", "image": "envoyproxy/envoy:v1.31",
                     "restartPolicy": "Always"}],
                "containers": [{"name": "zeta", "image": "registry.example.com/z:1"},
                               {"name": "alpha", "image": "registry.example.com/a:1"}]}}
    create(client, namespace, "pods", body)
    pod = await_pod(client, namespace, "full", lambda p: any(
        s["ready"] for s in p["status"].get("initContainerStatuses") or ()))
    setup, proxy = pod["status"]["initContainerStatuses"]  # in spec order
    assert (setup["name"], setup["state"]["terminated"]["reason"]) == ("setup", "Completed")
    assert (setup["ready"], setup["started"]) == (False, False)
    assert proxy["name"] == "proxy" and "running" in proxy["state"]
    assert (proxy["ready"], proxy["started"]) == (True, True)
    assert proxy["containerID"].startswith("containerd://")
    statuses = pod["status"]["containerStatuses"]
    assert [s["name"] for s in statuses] == ["alpha", "zeta"]  # sorted by name
    assert all("running" in s["state"] and s["started"] and not s["ready"] for s in statuses)
    assert condition(pod, "Initialized")["status"] == "True"
    assert condition(pod, "Ready")["message"] == (  # in spec order, as the kubelet lists them
        "containers with unready status: [zeta alpha]")
    assert row(client, namespace, "full")[1:3] == ["1/3", "Running"]


def test_a_sidecar_is_part_of_the_pods_readiness(client: RawClient, namespace: str) -> None:
    create(client, namespace, "pods", {"metadata": {"name": "meshed"}, "spec": {
        "initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}],
        "containers": [{"name": "app", "image": "app"}]}})
    pod = await_pod(client, namespace, "meshed", ready)
    assert [s["ready"] for s in pod["status"]["initContainerStatuses"]] == [True]
    assert row(client, namespace, "meshed")[1:3] == ["2/2", "Running"]


def test_before_the_sandbox_containers_wait_as_pod_initializing() -> None:
    kubelet = KubeletSimulator(schedule_delay=0.01, start_delay=60)
    with LocalAPIServer(simulators=[kubelet]) as server, RawClient(server.url) as raw:
        for name, init in (("plain", []), ("with-init", [{"name": "i", "image": "busybox"}])):
            create(raw, "default", "pods", app_pod(name, initContainers=init))
        plain = await_pod(raw, "default", "plain", lambda p: bool(p["spec"].get("nodeName")))
        assert waiting(plain) == {"reason": "ContainerCreating"}
        assert row(raw, "default", "plain")[1:3] == ["0/1", "ContainerCreating"]
        gated = await_pod(raw, "default", "with-init",
                          lambda p: bool(p["spec"].get("nodeName")))
        assert waiting(gated) == {"reason": "PodInitializing"}
        assert waiting(gated, "i", "initContainerStatuses") == {"reason": "PodInitializing"}
        assert row(raw, "default", "with-init")[1:3] == ["0/1", "Init:0/1"]


# the pod printer (kubectl get pods) ---------------------------------------------------------------
def _state(kind: str, **fields: Any) -> Obj:
    return {kind: fields}


def _status(name: str, state: Obj, *, ready: bool = False, restarts: int = 0,
            started: bool | None = None) -> Obj:
    out = {"name": name, "state": state, "ready": ready, "restartCount": restarts}
    if started is not None:
        out["started"] = started
    return out


@pytest.mark.parametrize(("inits", "statuses", "init_statuses", "extra", "expected"), [
    ([], [_status("a", _state("running"), ready=True)], [], {}, ["1/1", "Running", 0]),
    ([{"name": "i1"}, {"name": "i2"}], [_status("a", _state("waiting", reason="PodInitializing"))],
     [_status("i1", _state("terminated", exitCode=0, reason="Completed")),
      _status("i2", _state("running"))], {}, ["0/1", "Init:1/2", 0]),
    ([{"name": "i1"}], [_status("a", _state("waiting", reason="PodInitializing"))],
     [_status("i1", _state("waiting", reason="CrashLoopBackOff"), restarts=3)], {},
     ["0/1", "Init:CrashLoopBackOff", 3]),
    ([{"name": "i1"}], [_status("a", _state("waiting", reason="PodInitializing"))],
     [_status("i1", _state("terminated", exitCode=2))], {}, ["0/1", "Init:ExitCode:2", 0]),
    ([{"name": "s", "restartPolicy": "Always"}],
     [_status("a", _state("running"), ready=True, restarts=1)],
     [_status("s", _state("running"), ready=True, restarts=2, started=True)],
     {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}]},
     ["2/2", "Running", 3]),
    ([], [_status("a", _state("waiting", reason="ImagePullBackOff")),
          _status("b", _state("waiting", reason="CreateContainerConfigError"))], [], {},
     ["0/2", "ImagePullBackOff", 0]),  # the first container's reason wins
    ([], [_status("a", _state("terminated", exitCode=0, reason="Completed")),
          _status("b", _state("running"), ready=True)], [],
     {"conditions": [{"type": "Ready", "status": "False"}]}, ["1/2", "NotReady", 0]),
], ids=["running", "init-progress", "init-crash-loop", "init-exit-code", "sidecar",
        "first-reason", "completed-but-running"])
def test_pod_printer(inits: list[Obj], statuses: list[Obj], init_statuses: list[Obj],
                     extra: Obj, expected: list[Any]) -> None:
    pod = {"metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"initContainers": [{"image": "i", **c} for c in inits],
                    "containers": [{"name": s["name"], "image": "i"} for s in statuses]},
           "status": {"phase": "Pending" if init_statuses else "Running",
                      "containerStatuses": statuses, "initContainerStatuses": init_statuses,
                      **extra}}
    pods = KindRegistry().lookup("", "v1", "pods")
    assert pods is not None
    now = dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.UTC)
    printed = table(pods, [pod], list_meta={}, now=now)
    name, ready_, status, restarts, age = printed["rows"][0]["cells"][:5]
    assert [ready_, status, restarts] == expected and (name, age) == ("p", "5m")
