"""Tests for reconcilers.diff: a table per rule, and hypothesis properties.

Properties, on the children the operator renders (the runner Pod with its init container,
sidecar, envFrom and secretKeyRef variables; the VirtualMachine with its virtiofs filesystems
and Secret volumes and its cloud-init Secret; the Service; the token Secret; the
NetworkPolicy), put through the local API server's own defaulting:

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
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from kubernetes.utils.quantity import parse_quantity

from envtest.kinds.builtins import ClusterIPs, check_update, prepare_create
from envtest.patch import merge_patch, strategic_merge_patch
from informers.resource import PODS
from reconcilers.children import network_policy, service, token_secret
from reconcilers.config import OperatorConfig
from reconcilers.diff import Change, diff
from reconcilers.environment import RunInputs, Runtime, S3Settings, Sandbox, VMConfig
from reconcilers.pod import runner_pod as render_pod
from reconcilers.resources import ExecutionKind
from reconcilers.vm import KubeVirtEnvironment

Obj = dict[str, Any]
FAST = settings(max_examples=150, deadline=None, database=None)
SESSION: Obj = {"apiVersion": "vteam.ambient-code/v1alpha1", "kind": "AgenticSession",
                "metadata": {"name": "demo", "namespace": "team-a", "uid": "uid-session"}}
OWNER: Obj = {"apiVersion": "vteam.ambient-code/v1alpha1", "kind": "AgenticSession",
              "name": "demo", "uid": "uid-session", "controller": True}
PLURALS = {"Pod": "pods", "Service": "services", "Secret": "secrets",
           "NetworkPolicy": "networkpolicies.networking.k8s.io"}
MUT = "_MUT"  # appended by mutations; generated names never contain "_"
RUNNER = "ambient-code-runner"
INIT = "init-hydrate"
INPUTS = RunInputs(config=OperatorConfig(backend_namespace="ambient-code"),
                   token_secret="ambient-runner-token-demo", run_started="2026-03-01T11:00:00Z",
                   trusted_ca=True, copied=frozenset({"ambient-vertex"}))
TABLE_SANDBOX = Sandbox(found=True, persistence="none", clone_repos=True, workspace_size="2Gi")
"""The table's Pod: workspace, init-hydrate and the runner (no sidecar)."""


# --------------------------------------------------------------------------------------------
# Fixtures: the children as the operator renders them
# --------------------------------------------------------------------------------------------


def session(env: dict[str, str] | None = None, **spec: Any) -> Obj:
    return {**SESSION, "spec": {"environmentVariables": dict(env or {}), **spec}}


def runner_pod(*, image: str = "quay.io/ambient/runner:1.2", env: dict[str, str] | None = None,
               cpu: Any = "500m", memory: Any = "1Gi", port: int = 8001,
               tolerations: list[Obj] | None = None, sandbox: Sandbox = TABLE_SANDBOX,
               inputs: RunInputs = INPUTS, spec: Obj | None = None) -> Obj:
    """The runner Pod as reconcilers.pod renders it (plus tolerations, which it never sets,
    for the rules about admission's additions)."""
    runtime = Runtime(id="agent", image=image, port=port, sandbox=sandbox,
                      resources={"requests": {"cpu": cpu, "memory": memory},
                                 "limits": {"cpu": cpu, "memory": memory}})
    pod = render_pod(session(env, **(spec or {})), runtime, inputs)
    if tolerations is not None:
        pod["spec"]["tolerations"] = tolerations
    return pod


def vm_runtime(*, memory: str = "4Gi", cores: int = 2, port: int = 8001,
               disk: str = "quay.io/ambient/disk:1", sandbox: Sandbox | None = None) -> Runtime:
    return Runtime(id="vm", port=port, execution_kind=ExecutionKind.KUBEVIRT_VM,
                   vm=VMConfig(container_disk_image=disk, cpu=cores, memory=memory),
                   sandbox=sandbox or Sandbox(found=True, persistence="s3",
                                              workspace_size="10Gi"))


def runner_vm(*, inputs: RunInputs = INPUTS, env: dict[str, str] | None = None,
              **runtime: Any) -> Obj:
    vm: Obj = KubeVirtEnvironment().render(session(env), vm_runtime(**runtime), inputs)[1]
    return vm


def cloudinit_secret(*, inputs: RunInputs = INPUTS, env: dict[str, str] | None = None,
                     **runtime: Any) -> Obj:
    secret: Obj = KubeVirtEnvironment().render(session(env), vm_runtime(**runtime), inputs)[0]
    return secret


WORKLOAD = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "demo-runner", "namespace": "team-a", "uid": "uid-pod"}}


def runner_service(port: int = 8001) -> Obj:
    return service(SESSION, WORKLOAD, PODS, port)


def runner_token(k8s_token: str = "jwt", agui_token: str = "agui") -> Obj:
    return token_secret(SESSION, k8s_token=k8s_token, agui_token=agui_token,
                        refreshed_at="2026-03-01T12:00:00Z")


def policy(backend_namespace: str = "ambient-code") -> Obj:
    return network_policy("team-a", backend_namespace)


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


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


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


def _omit_empty_env(pod: Obj) -> Obj:
    """``value: ""`` dropped from every env var, as Go's omitempty does."""
    out = copy.deepcopy(pod)
    for container in [*out["spec"].get("initContainers", ()), *out["spec"]["containers"]]:
        for var in container.get("env") or ():
            if var.get("value") == "":
                del var["value"]
    return out


def _reversed(obj: Obj, path: str) -> Obj:
    node: Any = obj
    for key in path.split("."):
        node = node[int(key) if key.isdigit() else key]
    return _set(obj, path, list(reversed(node)))


def _runner_env_reason(name: str, *, init: bool = True) -> tuple[str, ...]:
    runner = f"spec.containers[name={RUNNER}].env[name={name}]"
    return (f"spec.initContainers[name={INIT}].env[name={name}]", runner) if init else (runner,)


NO_DIFF = [
    ("cpu-0.5-vs-500m", runner_pod(cpu="0.5"), runner_pod(cpu="500m")),
    ("cpu-1-vs-1000m", runner_pod(cpu="1"), runner_pod(cpu="1000m")),
    ("cpu-int-vs-string", runner_pod(cpu=2), runner_pod(cpu="2")),
    ("memory-1Gi-vs-1024Mi", runner_pod(memory="1Gi"), runner_pod(memory="1024Mi")),
    ("memory-1Gi-vs-bytes", runner_pod(memory="1Gi"), runner_pod(memory=1073741824)),
    ("sizeLimit", runner_pod(), _set(runner_pod(), "spec.volumes.0.emptyDir.sizeLimit",
                                     "2048Mi")),
    ("vm-guest-memory", runner_vm(memory="4Gi"), runner_vm(memory="4096Mi")),
    ("env-order", runner_pod(env={"A": "1", "B": "2"}),
     _reversed(runner_pod(env={"A": "1", "B": "2"}), "spec.containers.0.env")),
    ("volume-order", runner_pod(), _reversed(runner_pod(), "spec.volumes")),
    ("volumeMount-order", runner_pod(), _reversed(runner_pod(), "spec.containers.0.volumeMounts")),
    ("vm-disk-order", runner_vm(), _reversed(runner_vm(),
                                             "spec.template.spec.domain.devices.disks")),
    ("vm-volume-order", runner_vm(), _reversed(runner_vm(), "spec.template.spec.volumes")),
    ("server-defaults", runner_pod(), server(runner_pod())),
    ("status-and-metadata", runner_pod(),
     {**server(runner_pod()), "status": {"phase": "Running"}}),
    ("foreign-label-kept", runner_pod(),
     _set(runner_pod(), "metadata.labels", {"agentic-session": "demo",
                                            "app": "ambient-code-runner", "team": "x"})),
    ("empty-env-value-omitted", runner_pod(env={"A": ""}),
     _omit_empty_env(runner_pod(env={"A": ""}))),
    ("targetPort-int-vs-string", runner_service(),
     _set(runner_service(), "spec.ports.0.targetPort", "8001")),
    ("probe-port-int-vs-string", runner_vm(),
     _set(runner_vm(), "spec.template.spec.readinessProbe.httpGet.port", "8001")),
    ("protocol-default-TCP", runner_service(),
     _set(runner_service(), "spec.ports.0", {"name": "agui", "port": 8001,
                                             "targetPort": 8001})),
    ("service-type-default", runner_service(),
     {**runner_service(), "spec": {k: v for k, v in runner_service()["spec"].items()
                                   if k != "type"}}),
    ("cloudinit-stringData-vs-data", cloudinit_secret(), server(cloudinit_secret())),
    ("token-secret-server-defaults", runner_token(), server(runner_token())),
    ("networkpolicy-server-defaults", policy(), server(policy())),
    ("networkpolicy-protocol-default", policy(),
     _set(policy(), "spec.ingress.0.ports.0", {"port": 8001})),
    ("owner-by-uid", runner_pod(), _set(runner_pod(), "metadata.ownerReferences", [
        {"apiVersion": "v1", "kind": "Other", "name": "x", "uid": "uid-other"},
        {**OWNER, "controller": False, "name": "renamed", "blockOwnerDeletion": True}])),
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
    # Equal in Python, not the same JSON, deep in a subtree that is otherwise the same:
    ("nested-bool-is-not-int", _set(runner_pod(), "spec.securityContext", {"runAsNonRoot": True}),
     _set(runner_pod(), "spec.securityContext", {"runAsNonRoot": 1}), "recreate",
     ("spec.securityContext.runAsNonRoot",)),
    ("listed-bool-is-not-int", _set(runner_pod(), "spec.tolerations", [{"key": True}]),
     _set(runner_pod(), "spec.tolerations", [{"key": 1}]), "patch", ("spec.tolerations",)),
    ("quantity-only-at-quantity-paths",
     _set(runner_pod(), "metadata.labels.size", "1Gi"),
     _set(runner_pod(), "metadata.labels.size", "1024Mi"), "patch", ("metadata.labels.size",)),
    ("pod-image", runner_pod(image="runner:2"), runner_pod(), "patch",
     (f"spec.containers[name={RUNNER}].image",)),
    ("pod-env", runner_pod(env={"A": "2"}), runner_pod(env={"A": "1"}), "recreate",
     tuple(f"{r}.value" for r in _runner_env_reason("A"))),
    ("pod-new-env", runner_pod(env={"A": "1", "B": "2"}), runner_pod(env={"A": "1"}),
     "recreate", _runner_env_reason("B")),
    ("pod-quantity", runner_pod(memory="2Gi"), runner_pod(memory="1Gi"), "recreate",
     (f"spec.containers[name={RUNNER}].resources.requests.memory",
      f"spec.containers[name={RUNNER}].resources.limits.memory")),
    ("pod-secret-env-ref", runner_pod(inputs=replace(INPUTS, token_secret="other-token")),
     runner_pod(), "recreate",
     (f"spec.initContainers[name={INIT}].env[name=BOT_TOKEN].valueFrom.secretKeyRef.name",
      "spec.volumes[name=runner-token].secret.secretName",
      f"spec.containers[name={RUNNER}].env[name=AGUI_TOKEN].valueFrom.secretKeyRef.name")),
    ("pod-env-from", runner_pod(inputs=replace(INPUTS, integrations=True)), runner_pod(),
     "recreate", (f"spec.containers[name={RUNNER}].envFrom",)),
    ("pod-deadline", _set(runner_pod(), "spec.activeDeadlineSeconds", 60), runner_pod(),
     "patch", ("spec.activeDeadlineSeconds",)),
    ("pod-init-image", _set(runner_pod(), "spec.initContainers.0.image", "sync:2"),
     runner_pod(), "patch", (f"spec.initContainers[name={INIT}].image",)),
    ("pod-toleration-added", runner_pod(tolerations=[{"key": "gpu", "operator": "Exists"}]),
     runner_pod(), "patch", ("spec.tolerations",)),
    ("pod-label", _set(runner_pod(), "metadata.labels.app", "other"), runner_pod(), "patch",
     ("metadata.labels.app",)),
    ("pod-run-annotation", runner_pod(inputs=replace(INPUTS, run_started="2026-03-01T12:00:00Z")),
     runner_pod(), "patch", ("metadata.annotations.ambient-code.io/run-started-at",)),
    ("owner-missing", runner_pod(), _set(runner_pod(), "metadata.ownerReferences", []),
     "patch", ("metadata.ownerReferences[uid=uid-session]",)),
    ("service-port", runner_service(8002), server(runner_service(8001)), "patch",
     ("spec.ports[port=8002]", "spec.ports[port=8001]")),
    ("service-type", _set(runner_service(), "spec.type", "NodePort"), server(runner_service()),
     "patch", ("spec.type",)),
    ("service-clusterIP", _set(runner_service(), "spec.clusterIP", "None"),
     server(runner_service()), "recreate", ("spec.clusterIP",)),
    ("secret-data", runner_token("new"), server(runner_token("old")), "patch",
     ("data.k8s-token",)),
    ("cloudinit-userdata", cloudinit_secret(env={"A": "2"}),
     server(cloudinit_secret(env={"A": "1"})), "patch", ("stringData.userdata",)),
    ("secret-type", _set(runner_token(), "type", "kubernetes.io/basic-auth"),
     server(runner_token()), "recreate", ("type",)),
    ("immutable-secret-data", runner_token("new"),
     {**server(runner_token("old")), "immutable": True}, "recreate", ("data.k8s-token",)),
    ("networkpolicy-peer", policy("other-backend"), server(policy()), "patch",
     ("spec.ingress",)),
    ("vm-memory", runner_vm(memory="8Gi"), runner_vm(memory="4Gi"), "patch",
     ("spec.template.spec.domain.memory.guest",)),
    ("vm-disk-image", runner_vm(disk="disk:2"), runner_vm(disk="disk:1"), "patch",
     ("spec.template.spec.volumes[name=rootdisk].containerDisk.image",)),
    ("vm-shared-secret", runner_vm(inputs=replace(INPUTS, integrations=True)), runner_vm(),
     "patch", ("spec.template.spec.domain.devices.filesystems",
               "spec.template.spec.volumes[name=ambient-non-vertex-integrations]")),
    ("vm-plain-list", runner_vm(), _set(runner_vm(), "spec.template.spec.domain.devices."
                                        "interfaces.0.ports", []), "patch",
     ("spec.template.spec.domain.devices.interfaces[name=default].ports[port=8001]",)),
]


@pytest.mark.parametrize(("desired", "actual", "action", "reasons"), [c[1:] for c in DIFFERENT],
                         ids=[c[0] for c in DIFFERENT])
def test_differences(desired: Obj, actual: Obj, action: str, reasons: tuple[str, ...]) -> None:
    change = diff(desired, actual)
    assert change.action == action
    assert sorted(change.reasons) == sorted(reasons)
    assert (change.patch is not None) == (action == "patch")


PATCHES = [
    ("pod-image-strategic", runner_pod(image="runner:2"), runner_pod(),
     {"spec": {"containers": [{"name": RUNNER, "image": "runner:2"}]}}),
    ("pod-toleration-keeps-admissions", runner_pod(tolerations=[{"key": "gpu"}]),
     runner_pod(tolerations=[{"key": "not-ready"}]),
     {"spec": {"tolerations": [{"key": "not-ready"}, {"key": "gpu"}]}}),
    ("owner-appended-by-uid", runner_pod(), _set(runner_pod(), "metadata.ownerReferences", []),
     {"metadata": {"ownerReferences": [OWNER]}}),
    ("service-port-renumbered", runner_service(8002), runner_service(8001),
     {"spec": {"ports": [runner_service(8002)["spec"]["ports"][0],
                         {"port": 8001, "$patch": "delete"}]}}),
    ("token-as-base64-data", runner_token("new"), server(runner_token("old")),
     {"data": {"k8s-token": b64("new")}}),
    ("cloudinit-as-base64-data", cloudinit_secret(env={"A": "2"}),
     server(cloudinit_secret(env={"A": "1"})),
     {"data": {"userdata": b64(cloudinit_secret(env={"A": "2"})["stringData"]["userdata"])}}),
    ("networkpolicy-list-sent-whole", policy("other"), server(policy()),
     {"spec": {"ingress": policy("other")["spec"]["ingress"]}}),
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
    assert change.patch_type == ("merge" if desired["kind"] in ("VirtualMachine",
                                                                "NetworkPolicy")
                                 else "strategic")


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
SANDBOXES = st.sampled_from([
    TABLE_SANDBOX,
    Sandbox(),  # no registry entry: workspace, init-hydrate and the state-sync sidecar
    Sandbox(found=True, persistence="s3", clone_repos=True, hydrate_state=True,
            state_dir=".gemini", workspace_size="10Gi", termination_grace_period=30),
    Sandbox(found=True, persistence="none"),
])
CUSTOM_S3 = S3Settings(endpoint="https://s3", bucket="b", available=True,
                       key_ref=("ambient-non-vertex-integrations", "S3_ACCESS_KEY",
                                "S3_SECRET_KEY"))


@st.composite
def run_inputs(draw: st.DrawFn) -> RunInputs:
    """Inputs that add envFrom (integrations, runner secrets), secretKeyRef variables
    (Langfuse, MLflow, a project's S3 keys), Secret and ConfigMap volumes."""
    copied = draw(st.sets(st.sampled_from(["ambient-vertex", "ambient-admin-langfuse-secret",
                                           "ambient-admin-mlflow-observability-secret"])))
    return replace(INPUTS, integrations=draw(st.booleans()), copied=frozenset(copied),
                   trusted_ca=draw(st.booleans()),
                   config=replace(INPUTS.config, vertex=draw(st.booleans())),
                   s3=draw(st.sampled_from([S3Settings(), CUSTOM_S3, S3Settings(
                       endpoint="http://minio", bucket="b", access_key="ak", secret_key="sk",
                       available=True)])),
                   is_resume=draw(st.booleans()))


@st.composite
def pods(draw: st.DrawFn) -> Obj:
    return runner_pod(image=draw(st.sampled_from(["runner:1", "quay.io/a/runner@sha256:ab",
                                                  "runner"])),
                      env=draw(st.dictionaries(NAMES, VALUES, max_size=4)),
                      cpu=draw(CPU), memory=draw(MEMORY), port=draw(st.integers(1024, 9000)),
                      tolerations=draw(st.none() | TOLERATIONS), sandbox=draw(SANDBOXES),
                      inputs=draw(run_inputs()),
                      spec={"repos": [{"url": "https://h/r.git", "branch": "main"}]}
                      if draw(st.booleans()) else None)


@st.composite
def vm_children(draw: st.DrawFn, index: int) -> Obj:
    """The cloud-init Secret (0) or the VirtualMachine (1: filesystems, Secret volumes)."""
    runtime = vm_runtime(memory=draw(st.sampled_from(["256Mi", "1Gi", "4096Mi", "8Gi"])),
                         cores=draw(st.integers(1, 8)), port=draw(st.integers(1024, 9000)),
                         disk=draw(st.sampled_from(["disk:1", "quay.io/a/disk:2"])),
                         sandbox=draw(SANDBOXES))
    children = KubeVirtEnvironment().render(
        session(draw(st.dictionaries(NAMES, VALUES, max_size=3))), runtime, draw(run_inputs()))
    child: Obj = children[index]
    return child


# The rendered workloads weigh more: they have the most rules to get right.
DESIRED = st.one_of(
    pods(), pods(), vm_children(1), vm_children(1), vm_children(0),
    st.integers(1024, 9000).map(runner_service),
    st.tuples(VALUES, VALUES).map(lambda t: runner_token(*t)),
    st.sampled_from(["ambient-code", "backend"]).map(policy),
)


@st.composite
def served(draw: st.DrawFn, obj: Obj) -> Obj:
    """``obj`` as a server stores it, with random server-side and foreign additions."""
    stored = server(obj)
    meta = stored["metadata"]
    for key, value in (("creationTimestamp", "2024-01-01T00:00:00Z"),
                       ("managedFields", [{"manager": "kubectl"}]),
                       ("labels", {**meta.get("labels", {}), "foreign": "x"}),
                       ("annotations", {**meta.get("annotations", {}), "other/controller": "y"}),
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
    # As the ServiceAccount admission plugin adds it, defaulted (defaultMode) as kube serves it.
    spec["volumes"].append({"name": "kube-api-access-x1",
                            "projected": {"sources": [], "defaultMode": 420}})
    for container in [*spec.get("initContainers", ()), *spec["containers"]]:
        container.setdefault("volumeMounts", []).append(
            {"name": "kube-api-access-x1", "mountPath": "/var/run/secrets/kubernetes.io"})
        for probe in ("readinessProbe", "livenessProbe"):
            if probe in container:
                container[probe].setdefault("timeoutSeconds", 1)
                container[probe].setdefault("successThreshold", 1)
        for env in container.get("env") or ():
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
    vm["metadata"]["annotations"] = {**vm["metadata"].get("annotations", {}),
                                     "kubevirt.io/latest-observed-api-version": "v1"}
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
    "VirtualMachine": [(("spec", "template", "spec", "hostname"), "h"),
                       (("spec", "template", "spec", "domain", "devices", "filesystems", -1),
                        {"name": "added", "virtiofs": {}})],
    "NetworkPolicy": [(("metadata", "labels", "added"), "x"),
                      (("metadata", "annotations", "added"), "x")],
}


def add(obj: Obj, path: Path, value: Any) -> Obj:
    out = copy.deepcopy(obj)
    node: Any = out
    for key in path[:-1]:
        if isinstance(node, list):
            node = node[key]
        else:
            node = node.setdefault(key, [] if key in ("tolerations", "env", "filesystems")
                                   else {})
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
    from reconcilers.diffcache import DiffCache

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
    from reconcilers.diffcache import DiffCache

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
