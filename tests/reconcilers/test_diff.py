"""Tests for reconcilers.diff: a table per rule, and hypothesis properties.

Properties, on realistic children (the runner Pod, the Service, the token Secret, the
VirtualMachine) put through the local API server's own defaulting:

1. idempotence — applying the produced patch (with envtest's strategic merge / merge patch)
   leaves nothing to diff, and the server accepts it as an update;
2. no churn — server-side defaulting and server-owned fields never produce a diff;
3. named-list order and quantity spellings never produce a diff;
4. ``recreate`` exactly when a mutation touched an immutable path (an oracle written here,
   independently of the module's tables).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from kubernetes.utils.quantity import parse_quantity

from ambient_ctrl.envtest.builtins import ClusterIPs, check_update, prepare_create
from ambient_ctrl.envtest.patch import merge_patch, strategic_merge_patch
from reconcilers.children import service, token_secret
from reconcilers.diff import Change, diff
from reconcilers.environment import Runtime, VMConfig
from reconcilers.pod import PodEnvironment
from reconcilers.resources import ExecutionKind
from reconcilers.vm import KubeVirtEnvironment, virtual_machine

Obj = dict[str, Any]
FAST = settings(max_examples=100, deadline=None, database=None)
SESSION: Obj = {"apiVersion": "vteam.ambient-code/v1alpha1", "kind": "AgenticSession",
                "metadata": {"name": "demo", "namespace": "team-a", "uid": "uid-session"}}
OWNER: Obj = {"apiVersion": "vteam.ambient-code/v1alpha1", "kind": "AgenticSession",
              "name": "demo", "uid": "uid-session", "controller": True,
              "blockOwnerDeletion": True}
PLURALS = {"Pod": "pods", "Service": "services", "Secret": "secrets"}
MUT = "_MUT"  # appended by mutations; generated names never contain "_"


# --------------------------------------------------------------------------------------------
# Fixtures: realistic desired children
# --------------------------------------------------------------------------------------------


def runner_pod(*, image: str = "quay.io/ambient/runner:1.2", env: dict[str, str] | None = None,
               cpu: Any = "500m", memory: Any = "1Gi", port: int = 8001,
               tolerations: list[Obj] | None = None) -> Obj:
    """The runner Pod as DESIGN.md §4 describes it."""
    env = {"SESSION_NAME": "demo", "DISPLAY_NAME": "", "AGUI_PORT": str(port)} \
        if env is None else env
    probe = {"httpGet": {"path": "/health", "port": "agui"}, "periodSeconds": 10}
    container = {
        "name": "runner", "image": image,
        "ports": [{"name": "agui", "containerPort": port, "protocol": "TCP"}],
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "resources": {"requests": {"cpu": cpu, "memory": memory},
                      "limits": {"cpu": cpu, "memory": memory}},
        "readinessProbe": probe, "livenessProbe": probe,
        "securityContext": {"allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "agui-token", "mountPath": "/var/run/secrets/agui",
                          "readOnly": True},
                         {"name": "workspace", "mountPath": "/workspace"}],
    }
    spec: Obj = {
        "restartPolicy": "Never", "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [{"name": "agui-token", "secret": {"secretName": "demo-agui-token",
                                                      "defaultMode": 0o440}},
                    {"name": "workspace", "emptyDir": {"sizeLimit": "2Gi"}}],
    }
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "demo-runner", "namespace": "team-a",
                         "labels": {"agentic-session": "demo", "app": "ambient-code-runner"},
                         "ownerReferences": [dict(OWNER)]},
            "spec": spec}


def runner_vm(*, memory: str = "4Gi", cores: int = 2, port: int = 8001,
              disk: str = "quay.io/ambient/disk:1") -> Obj:
    runtime = Runtime(id="vm", image="", port=port, execution_kind=ExecutionKind.KUBEVIRT_VM,
                      vm=VMConfig(container_disk_image=disk, memory=memory))
    return virtual_machine(SESSION, runtime, runtime.vm or VMConfig(disk), cores=cores,
                           memory=memory)


def runner_service(port: int = 8001) -> Obj:
    return service(SESSION, Runtime(id="pod", image="img", port=port))


def server(obj: Obj) -> Obj:
    """What the local API server stores for ``obj`` (its defaulting, nothing random)."""
    stored = copy.deepcopy(obj)
    plural = PLURALS.get(stored["kind"])
    if plural:
        prepare_create(plural, stored, ClusterIPs())
    stored["metadata"].update(uid="uid-child", resourceVersion="7", generation=1)
    return stored


def apply_patch(actual: Obj, change: Change) -> Obj:
    assert change.patch is not None
    if change.patch_type == "strategic":
        return strategic_merge_patch(actual, dict(change.patch), actual["kind"])
    result: Obj = merge_patch(actual, change.patch)
    return result


# --------------------------------------------------------------------------------------------
# Table tests
# --------------------------------------------------------------------------------------------


def _set(obj: Obj, path: str, value: Any) -> Obj:
    """A copy of ``obj`` with ``value`` at a dotted path (digits index lists)."""
    out = copy.deepcopy(obj)
    node: Any = out
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return out


def _pod_path(path: str) -> str:
    return path.replace("C.", "spec.containers.0.")


NO_DIFF = [
    ("cpu-0.5-vs-500m", runner_pod(cpu="0.5"), runner_pod(cpu="500m")),
    ("cpu-1-vs-1000m", runner_pod(cpu="1"), runner_pod(cpu="1000m")),
    ("cpu-int-vs-string", runner_pod(cpu=2), runner_pod(cpu="2")),
    ("memory-1Gi-vs-1024Mi", runner_pod(memory="1Gi"), runner_pod(memory="1024Mi")),
    ("memory-1Gi-vs-bytes", runner_pod(memory="1Gi"), runner_pod(memory=1073741824)),
    ("sizeLimit", runner_pod(), _set(runner_pod(), "spec.volumes.1.emptyDir.sizeLimit",
                                     "2048Mi")),
    ("vm-guest-memory", runner_vm(memory="4Gi"), runner_vm(memory="4096Mi")),
    ("env-order", runner_pod(env={"A": "1", "B": "2"}),
     _set(runner_pod(env={"A": "1", "B": "2"}), "spec.containers.0.env",
          [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}])),
    ("volume-order", runner_pod(),
     _set(runner_pod(), "spec.volumes", runner_pod()["spec"]["volumes"][::-1])),
    ("volumeMount-order", runner_pod(),
     _set(runner_pod(), "spec.containers.0.volumeMounts",
          runner_pod()["spec"]["containers"][0]["volumeMounts"][::-1])),
    ("vm-disk-order", runner_vm(),
     _set(runner_vm(), "spec.template.spec.domain.devices.disks",
          runner_vm()["spec"]["template"]["spec"]["domain"]["devices"]["disks"][::-1])),
    ("vm-volume-order", runner_vm(),
     _set(runner_vm(), "spec.template.spec.volumes",
          runner_vm()["spec"]["template"]["spec"]["volumes"][::-1])),
    ("server-defaults", runner_pod(), server(runner_pod())),
    ("status-and-metadata", runner_pod(),
     {**server(runner_pod()), "status": {"phase": "Running"}}),
    ("foreign-label-kept", runner_pod(),
     _set(runner_pod(), "metadata.labels", {"agentic-session": "demo",
                                            "app": "ambient-code-runner", "team": "x"})),
    ("empty-env-value-omitted", runner_pod(env={"A": ""}),
     _set(runner_pod(env={"A": ""}), "spec.containers.0.env", [{"name": "A"}])),
    ("targetPort-int-vs-string", _set(runner_service(), "spec.ports.0.targetPort", 8001),
     _set(runner_service(), "spec.ports.0.targetPort", "8001")),
    ("probe-port-int-vs-string", runner_vm(),
     _set(runner_vm(), "spec.template.spec.readinessProbe.httpGet.port", "8001")),
    ("protocol-default-TCP", runner_service(),
     _set(runner_service(), "spec.ports.0", {"name": "agui", "port": 8001,
                                             "targetPort": "agui"})),
    ("service-type-default", runner_service(),
     {**runner_service(), "spec": {k: v for k, v in runner_service()["spec"].items()
                                   if k != "type"}}),
    ("secret-stringData-vs-data", token_secret(SESSION, "s3cret"), server(
        token_secret(SESSION, "s3cret"))),
    ("owner-by-uid", runner_pod(), _set(runner_pod(), "metadata.ownerReferences", [
        {"apiVersion": "v1", "kind": "Other", "name": "x", "uid": "uid-other"},
        {**OWNER, "controller": False, "name": "renamed"}])),
    ("list-items-lack-kind", runner_pod(),
     {k: v for k, v in runner_pod().items() if k not in ("apiVersion", "kind")}),
    ("admission-tolerations", runner_pod(tolerations=[{"key": "gpu", "operator": "Exists"}]),
     runner_pod(tolerations=[{"key": "gpu", "operator": "Exists"},
                             {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                              "effect": "NoExecute", "tolerationSeconds": 300}])),
]


@pytest.mark.parametrize(("desired", "actual"), [c[1:] for c in NO_DIFF],
                         ids=[c[0] for c in NO_DIFF])
def test_equivalent_objects_do_not_differ(desired: Obj, actual: Obj) -> None:
    assert diff(desired, actual) == Change("none", diff(desired, None).patch_type)


DIFFERENT = [
    # (id, desired, actual, action, reasons)
    ("bool-is-not-int", _set(runner_pod(), "spec.automountServiceAccountToken", 0),
     runner_pod(), "recreate", ("spec.automountServiceAccountToken",)),
    ("quantity-only-at-quantity-paths",
     _set(runner_pod(), "metadata.labels.size", "1Gi"),
     _set(runner_pod(), "metadata.labels.size", "1024Mi"), "patch", ("metadata.labels.size",)),
    ("pod-image", runner_pod(image="runner:2"), runner_pod(), "patch",
     ("spec.containers[name=runner].image",)),
    ("pod-env", runner_pod(env={"A": "2"}), runner_pod(env={"A": "1"}), "recreate",
     ("spec.containers[name=runner].env[name=A].value",)),
    ("pod-new-env", runner_pod(env={"A": "1", "B": "2"}), runner_pod(env={"A": "1"}),
     "recreate", ("spec.containers[name=runner].env[name=B]",)),
    ("pod-quantity", runner_pod(memory="2Gi"), runner_pod(memory="1Gi"), "recreate",
     ("spec.containers[name=runner].resources.requests.memory",
      "spec.containers[name=runner].resources.limits.memory")),
    ("pod-deadline", _set(runner_pod(), "spec.activeDeadlineSeconds", 60), runner_pod(),
     "patch", ("spec.activeDeadlineSeconds",)),
    ("pod-toleration-added", runner_pod(tolerations=[{"key": "gpu", "operator": "Exists"}]),
     runner_pod(), "patch", ("spec.tolerations",)),
    ("pod-label", _set(runner_pod(), "metadata.labels.app", "other"), runner_pod(), "patch",
     ("metadata.labels.app",)),
    ("owner-missing", runner_pod(), _set(runner_pod(), "metadata.ownerReferences", []),
     "patch", ("metadata.ownerReferences[uid=uid-session]",)),
    ("service-port", runner_service(8002), server(runner_service(8001)), "patch",
     ("spec.ports[port=8002]", "spec.ports[port=8001]")),
    ("service-type", _set(runner_service(), "spec.type", "NodePort"), server(runner_service()),
     "patch", ("spec.type",)),
    ("service-clusterIP", _set(runner_service(), "spec.clusterIP", "None"),
     server(runner_service()), "recreate", ("spec.clusterIP",)),
    ("secret-data", token_secret(SESSION, "new"), server(token_secret(SESSION, "old")),
     "patch", ("stringData.token",)),
    ("secret-type", _set(token_secret(SESSION, "t"), "type", "kubernetes.io/basic-auth"),
     server(token_secret(SESSION, "t")), "recreate", ("type",)),
    ("immutable-secret-data", token_secret(SESSION, "new"),
     {**server(token_secret(SESSION, "old")), "immutable": True}, "recreate",
     ("stringData.token",)),
    ("vm-memory", runner_vm(memory="8Gi"), runner_vm(memory="4Gi"), "patch",
     ("spec.template.spec.domain.memory.guest",)),
    ("vm-disk-image", runner_vm(disk="disk:2"), runner_vm(disk="disk:1"), "patch",
     ("spec.template.spec.volumes[name=rootdisk].containerDisk.image",)),
    ("vm-plain-list", runner_vm(), _set(runner_vm(), "spec.template.spec.domain.devices."
                                        "interfaces.0.ports", []), "patch",
     ("spec.template.spec.domain.devices.interfaces[name=default].ports[port=8001]",)),
]


@pytest.mark.parametrize(("desired", "actual", "action", "reasons"), [c[1:] for c in DIFFERENT],
                         ids=[c[0] for c in DIFFERENT])
def test_differences(desired: Obj, actual: Obj, action: str, reasons: tuple[str, ...]) -> None:
    change = diff(desired, actual)
    assert (change.action, change.reasons) == (action, reasons)
    assert (change.patch is not None) == (action == "patch")


PATCHES = [
    ("pod-image-strategic", runner_pod(image="runner:2"), runner_pod(),
     {"spec": {"containers": [{"name": "runner", "image": "runner:2"}]}}),
    ("pod-toleration-keeps-admissions", runner_pod(tolerations=[{"key": "gpu"}]),
     runner_pod(tolerations=[{"key": "not-ready"}]),
     {"spec": {"tolerations": [{"key": "not-ready"}, {"key": "gpu"}]}}),
    ("owner-appended-by-uid", runner_pod(), _set(runner_pod(), "metadata.ownerReferences", []),
     {"metadata": {"ownerReferences": [OWNER]}}),
    ("service-port-renumbered", runner_service(8002), runner_service(8001),
     {"spec": {"ports": [runner_service(8002)["spec"]["ports"][0],
                         {"port": 8001, "$patch": "delete"}]}}),
    ("secret-as-base64-data", token_secret(SESSION, "new"), server(token_secret(SESSION, "o")),
     {"data": {"token": base64.b64encode(b"new").decode()}}),
    ("vm-list-sent-whole", runner_vm(disk="d:2"), runner_vm(disk="d:1"),
     {"spec": {"template": {"spec": {"volumes": runner_vm(disk="d:2")["spec"]["template"][
         "spec"]["volumes"]}}}}),
    ("vm-owner-kept", runner_vm(), _set(runner_vm(), "metadata.ownerReferences",
                                        [{"uid": "other"}]),
     {"metadata": {"ownerReferences": [{"uid": "other"}, OWNER]}}),
]


@pytest.mark.parametrize(("desired", "actual", "patch"), [c[1:] for c in PATCHES],
                         ids=[c[0] for c in PATCHES])
def test_patch_is_minimal_and_typed(desired: Obj, actual: Obj, patch: Obj) -> None:
    change = diff(desired, actual)
    assert change.patch == patch
    assert change.patch_type == ("merge" if desired["kind"] == "VirtualMachine" else "strategic")


def test_no_actual_means_create() -> None:
    assert diff(runner_vm(), None) == Change("create", "merge")
    assert diff(runner_pod(), None) == Change("create", "strategic")


def test_inputs_are_not_mutated_and_patch_is_not_shared() -> None:
    desired, actual = runner_vm(disk="d:2"), server(runner_vm(disk="d:1"))
    before = copy.deepcopy((desired, actual))
    change = diff(desired, actual)
    assert (desired, actual) == before
    assert change.patch is not None
    change.patch["spec"]["template"]["spec"]["volumes"][0]["name"] = "changed"
    assert desired == before[0]


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------

NAMES = st.from_regex(r"[A-Z][A-Z0-9]{0,5}", fullmatch=True)
VALUES = st.text(alphabet="abc-09 ", max_size=6)
CPU = st.sampled_from(["100m", "250m", "0.5", "1", "2", 4])
MEMORY = st.sampled_from(["256Mi", "512Mi", "1Gi", "1.5Gi", "2Gi"])
TOLERATIONS = st.lists(st.fixed_dictionaries(
    {"key": st.sampled_from(["gpu", "spot", "arm"]), "operator": st.just("Exists")}),
    max_size=2, unique_by=lambda t: t["key"])


@st.composite
def pods(draw: st.DrawFn) -> Obj:
    return runner_pod(image=draw(st.sampled_from(["runner:1", "quay.io/a/runner@sha256:ab",
                                                  "runner"])),
                      env=draw(st.dictionaries(NAMES, VALUES, max_size=4)),
                      cpu=draw(CPU), memory=draw(MEMORY), port=draw(st.integers(1024, 9000)),
                      tolerations=draw(st.none() | TOLERATIONS))


@st.composite
def vms(draw: st.DrawFn) -> Obj:
    return runner_vm(memory=draw(st.sampled_from(["256Mi", "1Gi", "4096Mi", "8Gi"])),
                     cores=draw(st.integers(1, 8)), port=draw(st.integers(1024, 9000)),
                     disk=draw(st.sampled_from(["disk:1", "quay.io/a/disk:2"])))


@st.composite
def rendered(draw: st.DrawFn) -> Obj:
    """One child as the operator's own environments render it."""
    session = {**SESSION, "spec": {
        "displayName": draw(VALUES), "llmSettings": {"model": "m", "temperature": 0.5},
        "environmentVariables": draw(st.dictionaries(NAMES, VALUES, max_size=3))}}
    port, token = draw(st.integers(1024, 9000)), draw(VALUES)
    if draw(st.booleans()):
        memory = draw(MEMORY)
        resources = {"requests": {"cpu": draw(CPU), "memory": memory},
                     "limits": {"memory": memory}}
        runtime = Runtime(id="pod", image=draw(st.sampled_from(["runner:1", "runner"])),
                          port=port, resources=resources)
        children = PodEnvironment().render(session, runtime, token=token)
    else:
        vm = VMConfig(container_disk_image="disk:1", cpu=draw(st.sampled_from(["1", "2000m"])),
                      memory=draw(st.sampled_from(["2Gi", "4096Mi"])))
        runtime = Runtime(id="vm", image="", port=port, vm=vm,
                          execution_kind=ExecutionKind.KUBEVIRT_VM)
        children = KubeVirtEnvironment().render(session, runtime, token=token)
    return draw(st.sampled_from(children))


DESIRED = st.one_of(
    pods(), vms(), st.integers(1024, 9000).map(runner_service),
    VALUES.map(lambda token: token_secret(SESSION, token)), rendered(),
)


@st.composite
def served(draw: st.DrawFn, obj: Obj) -> Obj:
    """``obj`` as a server stores it, with random server-side and foreign additions."""
    stored = server(obj)
    meta = stored["metadata"]
    for key, value in (("creationTimestamp", "2024-01-01T00:00:00Z"),
                       ("managedFields", [{"manager": "kubectl"}]),
                       ("labels", {**meta.get("labels", {}), "foreign": "x"}),
                       ("annotations", {"other/controller": "y"}),
                       ("finalizers", ["other/finalizer"]),
                       ("ownerReferences", [*meta.get("ownerReferences", []),
                                            {"uid": "uid-other", "kind": "Other"}])):
        if draw(st.booleans()):
            meta[key] = value
    if draw(st.booleans()):
        stored["status"] = {"phase": "Running", "conditions": [{"type": "Ready"}]}
    for extra in KIND_DEFAULTS.get(stored["kind"], ()):
        if draw(st.booleans()):
            extra(stored)
    return stored


def _pod_admission(pod: Obj) -> None:
    spec = pod["spec"]
    spec["tolerations"] = [*spec.get("tolerations", []),
                           {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                            "effect": "NoExecute", "tolerationSeconds": 300}]
    spec["volumes"].append({"name": "kube-api-access-x1", "projected": {"sources": []}})
    for container in spec["containers"]:
        container["volumeMounts"].append({"name": "kube-api-access-x1",
                                          "mountPath": "/var/run/secrets/kubernetes.io"})
        for key, value in (("timeoutSeconds", 1), ("successThreshold", 1)):
            container["readinessProbe"].setdefault(key, value)
        for env in container["env"]:
            if env.get("value") == "":
                del env["value"]  # omitempty


def _pod_scheduled(pod: Obj) -> None:
    pod["spec"].update(nodeName="node-1")


def _vm_webhook(vm: Obj) -> None:
    template = vm["spec"]["template"]["spec"]
    template["domain"].update(machine={"type": "q35"}, firmware={"uuid": "f-1"},
                              features={"acpi": {}})
    template["domain"]["resources"] = {"requests": {"memory": template["domain"]["memory"][
        "guest"]}}
    vm["metadata"]["annotations"] = {"kubevirt.io/latest-observed-api-version": "v1"}
    vm["metadata"]["finalizers"] = ["kubevirt.io/virtualMachineControllerFinalize"]


KIND_DEFAULTS: dict[str, tuple[Callable[[Obj], None], ...]] = {
    "Pod": (_pod_admission, _pod_scheduled), "VirtualMachine": (_vm_webhook,),
}


# --------------------------------------------------------------------------------------------
# Respelling and reordering
# --------------------------------------------------------------------------------------------

LIST_KEYS = {"containers": "name", "env": "name", "ports": "port", "volumes": "name",
             "volumeMounts": "mountPath", "disks": "name", "interfaces": "name",
             "networks": "name"}


def spellings(value: Any) -> list[Any]:
    """Spellings of the quantity ``value`` with the same value (``1Gi``, ``1024Mi``, ...)."""
    amount = Decimal(parse_quantity(value))
    out: list[Any] = [value, str(amount.normalize()) if amount % 1 else str(int(amount))]
    if amount % 1 == 0:
        out.append(int(amount))
    if (amount * 1000) % 1 == 0:
        out.append(f"{int(amount * 1000)}m")
    for suffix, factor in (("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30), ("k", 10**3),
                           ("M", 10**6)):
        if amount >= factor and (amount / factor) % 1 == 0:
            out.append(f"{int(amount / factor)}{suffix}")
    return out


def _is_quantity(path: tuple[str, ...]) -> bool:
    return path[-3:-1] in (("resources", "requests"), ("resources", "limits")) or \
        path[-2:] in (("memory", "guest"), ("emptyDir", "sizeLimit"))


@st.composite
def scrambled(draw: st.DrawFn, obj: Any) -> Any:
    """``obj`` with named lists shuffled and quantities / int probe ports respelled."""
    return _scramble(draw, obj, ())


def _scramble(draw: st.DrawFn, obj: Any, path: tuple[str, ...]) -> Any:
    if isinstance(obj, dict):
        return {k: _scramble(draw, v, (*path, k)) for k, v in obj.items()}
    if isinstance(obj, list):
        items = [_scramble(draw, v, (*path, "*")) for v in obj]
        return draw(st.permutations(items)) if path and path[-1] in LIST_KEYS else items
    if _is_quantity(path):
        return draw(st.sampled_from(spellings(obj)))
    if path[-2:] == ("httpGet", "port") and isinstance(obj, int):
        return draw(st.sampled_from([obj, str(obj)]))
    return obj


# --------------------------------------------------------------------------------------------
# Mutations and the immutability oracle
# --------------------------------------------------------------------------------------------

Path = tuple[Any, ...]


def leaves(obj: Any, path: Path = ()) -> Iterator[Path]:
    """Paths of rendered scalars a mutation may change (identity fields excluded)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            here = (*path, key)
            if here in (("apiVersion",), ("kind",), ("metadata", "name"),
                        ("metadata", "namespace")):
                continue
            if path[:2] == ("metadata", "ownerReferences") and key != "uid":
                continue  # owners are compared by uid only
            yield from leaves(value, here)
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from leaves(value, (*path, i))
    elif obj is not None:
        yield path


def shape(path: Path) -> tuple[str, ...]:
    return tuple("*" if isinstance(p, int) else p for p in path)


def changed(value: Any, path: Path) -> Any:
    """A value different from ``value`` by the diff's own equivalences."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if _is_quantity(shape(path)):
        return str(Decimal(parse_quantity(value)) + 1)
    return f"{value}{MUT}"


def mutate_leaf(obj: Obj, path: Path) -> Obj:
    out = copy.deepcopy(obj)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = changed(node[path[-1]], path)
    return out


ADDITIONS: dict[str, list[tuple[Path, Any]]] = {
    "Pod": [(("metadata", "labels", "added"), "x"), (("spec", "hostname"), "h"),
            (("spec", "containers", 0, "env", -1), {"name": "ADDED_MUT", "value": "v"}),
            (("spec", "tolerations", -1), {"key": "added", "operator": "Exists"})],
    "Service": [(("metadata", "annotations", "added"), "x"), (("spec", "clusterIP"), "None")],
    "Secret": [(("metadata", "labels", "added"), "x"), (("stringData", "added"), "v")],
    "VirtualMachine": [(("spec", "template", "spec", "hostname"), "h")],
}


def add(obj: Obj, path: Path, value: Any) -> Obj:
    out = copy.deepcopy(obj)
    node: Any = out
    for key in path[:-1]:
        if isinstance(node, list):
            node = node[key]
        else:
            node = node.setdefault(key, [] if key in ("tolerations", "env") else {})
    if path[-1] == -1:
        node.append(value)
    else:
        node[path[-1]] = value
    return out


def immutable(kind: str, path: Path) -> bool:
    """The oracle: what the local API server refuses to update (DESIGN §4, builtins.py)."""
    where = shape(path)
    if kind == "Pod":
        mutable = where[:2] in (("spec", "activeDeadlineSeconds"), ("spec", "tolerations")) \
            or (where[:2] in (("spec", "containers"), ("spec", "initContainers"))
                and where[3:] == ("image",))
        return where[0] == "spec" and not mutable
    if kind == "Service":
        return where[:2] == ("spec", "clusterIP")
    if kind == "Secret":
        return where == ("type",)
    return False


@st.composite
def mutated(draw: st.DrawFn, obj: Obj) -> tuple[Obj, list[Path]]:
    """``obj`` with one to three random changes, and where they were made."""
    out, paths = obj, []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            # A leaf changed twice could change back (booleans): pick fresh ones.
            path = draw(st.sampled_from([p for p in leaves(out) if p not in paths]))
            out = mutate_leaf(out, path)
        else:
            path, value = draw(st.sampled_from(ADDITIONS[out["kind"]]))
            out = add(out, path, value)
        paths.append(path)
    return out, paths


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@FAST
@given(st.data())
def test_applying_the_patch_leaves_nothing_to_diff(data: st.DataObject) -> None:
    desired = data.draw(DESIRED)
    drifted, _ = data.draw(mutated(desired))
    actual = data.draw(served(drifted))
    change = diff(desired, actual)
    event(f"{desired['kind']}: {change.action}")
    if change.action != "patch":
        return
    patched = apply_patch(actual, change)
    assert diff(desired, patched).action == "none", change
    plural = PLURALS.get(desired["kind"])
    if plural:  # the server takes it as an update: nothing immutable was touched
        assert check_update(plural, copy.deepcopy(patched), actual) == []


@FAST
@given(st.data())
def test_server_defaulting_never_produces_a_diff(data: st.DataObject) -> None:
    desired = data.draw(DESIRED)
    assert diff(desired, data.draw(served(desired))).action == "none"


@FAST
@given(st.data())
def test_list_order_and_quantity_spelling_never_produce_a_diff(data: st.DataObject) -> None:
    desired = data.draw(DESIRED)
    actual = data.draw(scrambled(data.draw(served(desired))))
    assert diff(desired, actual).action == "none"
    assert diff(data.draw(scrambled(desired)), actual).action == "none"


@FAST
@given(st.data())
def test_recreate_exactly_when_an_immutable_path_changed(data: st.DataObject) -> None:
    original = data.draw(DESIRED)
    desired, paths = data.draw(mutated(original))
    change = diff(desired, data.draw(served(original)))
    kind = original["kind"]
    expected = "recreate" if any(immutable(kind, p) for p in paths) else "patch"
    event(f"{kind}: {expected}")
    assert change.action == expected, (paths, change.reasons)


def test_diff_cache_answers_like_diff_and_ignores_what_the_walk_never_reads() -> None:
    from reconcilers.diff import DiffCache

    cache = DiffCache(maxsize=8)
    desired, actual = runner_pod(), server(runner_pod())
    assert cache.diff(desired, actual) == diff(desired, actual) == Change("none", "strategic")
    # A status update and a new resourceVersion: the same answer, from the cache.
    moved = copy.deepcopy(actual)
    moved["status"] = {"phase": "Running"}
    moved["metadata"]["resourceVersion"] = "999"
    assert cache.diff(desired, moved) is cache.diff(desired, actual)
    # A real difference is never answered from an entry of another state.
    changed = runner_pod(image="quay.io/ambient/runner:2.0")
    assert cache.diff(changed, actual) == diff(changed, actual)
    assert cache.diff(changed, actual).action == "patch"  # an image is patchable
    assert cache.diff(desired, None) == Change("create", "strategic")


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_diff_cache_agrees_with_diff(data: st.DataObject) -> None:
    from reconcilers.diff import DiffCache

    cache = DiffCache(maxsize=4)
    for _ in range(3):
        image = data.draw(st.sampled_from(["a:1", "a:2"]))
        env = data.draw(st.dictionaries(st.sampled_from(["A", "B"]), st.sampled_from(["1", "2"]),
                                        max_size=2))
        desired = runner_pod(image=image, env=env)
        actual = server(runner_pod(image=data.draw(st.sampled_from(["a:1", "a:2"])),
                                   env=data.draw(st.dictionaries(
                                       st.sampled_from(["A", "B"]), st.sampled_from(["1", "2"]),
                                       max_size=2))))
        assert cache.diff(desired, actual) == diff(desired, actual)
