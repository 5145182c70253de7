"""The KubeVirt environment: what render produces and how observe maps VM/VMI status.

Observe is fed the status shapes the envtest KubeVirt simulator writes (its pure functions,
stepped here by hand — the same code the local API server runs) plus a few shapes copied from a
real cluster, so a simulator quirk cannot hide a mapping that real KubeVirt would break.
"""

from __future__ import annotations

import copy
import datetime as dt
import string
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ambient_ctrl.clock import rfc3339
from ambient_ctrl.envtest.simulators.kubevirt_vm import VMMemory, vm_status, vmi_manifest
from ambient_ctrl.envtest.simulators.kubevirt_vmi import (
    Situation,
    Timing,
    launcher_pod,
    vmi_status,
)
from ambient_ctrl.envtest.simulators.podstatus import UNSCHEDULABLE_MESSAGE
from ambient_ctrl.envtest.simulators.scenario import VMScenario
from reconcilers.cloudinit import RUNNER_UNIT, SESSION_ENV_PATH, TOKEN_PATH
from reconcilers.environment import Children, Observation, RenderError, Runtime, VMConfig
from reconcilers.resources import ExecutionKind, Phase
from reconcilers.vm import UNSCHEDULABLE_GRACE, KubeVirtEnvironment

Obj = dict[str, Any]
TOKEN = "agui-tok-3f9c1d2e7b"
USER_SECRET = "sk-user-value-8d1e"
PROMPT = "fix the flaky test in ci/ please"
DISK = "quay.io/ambient/runner-disk:1.4"
ENV = KubeVirtEnvironment()


def session(name: str = "demo", *, env: Mapping[str, str] | None = None,
            prompt: str = PROMPT) -> Obj:
    return {"apiVersion": "vteam.ambient-code/v1alpha1", "kind": "AgenticSession",
            "metadata": {"name": name, "namespace": "team-a", "uid": "sess-uid-1"},
            "spec": {"displayName": "Demo session", "initialPrompt": prompt,
                     "repos": [{"url": "https://example.com/repo-x.git"}],
                     "llmSettings": {"model": "model-x-large", "temperature": 0.2},
                     "environmentVariables": dict(
                         env if env is not None else {"API_KEY": USER_SECRET})}}


def runtime(**vm: Any) -> Runtime:
    config = {"container_disk_image": DISK, "cpu": "2", "memory": "4Gi", **vm}
    return Runtime(id="vm-agent", image="", port=8123, execution_kind=ExecutionKind.KUBEVIRT_VM,
                   vm=VMConfig(**config))


def render(sess: Obj | None = None, rt: Runtime | None = None, token: str = TOKEN) -> list[Obj]:
    return ENV.render(sess or session(), rt or runtime(), token=token)


def by_kind(objs: list[Obj]) -> dict[str, Obj]:
    out: dict[str, Obj] = {}
    for obj in objs:
        key = obj["kind"] if obj["kind"] != "Secret" else obj["metadata"]["name"]
        out[key] = obj
    return out


def vm_template_spec(objs: list[Obj]) -> Obj:
    spec: Obj = by_kind(objs)["VirtualMachine"]["spec"]["template"]["spec"]
    return spec


def userdata(objs: list[Obj]) -> str:
    text: str = by_kind(objs)["demo-cloudinit"]["stringData"]["userdata"]
    return text


# render --------------------------------------------------------------------------------------
def test_render_returns_token_secret_cloudinit_secret_vm_and_service_in_order() -> None:
    objs = render()
    assert [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objs] == [
        ("v1", "Secret", "demo-agui-token"), ("v1", "Secret", "demo-cloudinit"),
        ("kubevirt.io/v1", "VirtualMachine", "demo-runner"), ("v1", "Service", "session-demo")]


def _get(obj: Any, *path: Any) -> Any:
    for key in path:
        obj = obj[key]
    return obj


VM_FIELDS = [
    ("run-strategy", ("spec", "runStrategy"), "RerunOnFailure"),
    ("template-labels", ("spec", "template", "metadata", "labels"),
     {"agentic-session": "demo", "app": "ambient-code-runner"}),
    ("cpu", ("spec", "template", "spec", "domain", "cpu"), {"cores": 2}),
    ("memory", ("spec", "template", "spec", "domain", "memory"), {"guest": "4Gi"}),
    ("disks", ("spec", "template", "spec", "domain", "devices", "disks"),
     [{"name": "rootdisk", "disk": {"bus": "virtio"}},
      {"name": "cloudinitdisk", "disk": {"bus": "virtio"}}]),
    ("volumes", ("spec", "template", "spec", "volumes"),
     [{"name": "rootdisk", "containerDisk": {"image": DISK}},
      {"name": "cloudinitdisk", "cloudInitNoCloud": {"secretRef": {"name": "demo-cloudinit"}}}]),
    ("interfaces", ("spec", "template", "spec", "domain", "devices", "interfaces"),
     [{"name": "default", "masquerade": {},
       "ports": [{"name": "agui", "port": 8123, "protocol": "TCP"}]}]),
    ("networks", ("spec", "template", "spec", "networks"), [{"name": "default", "pod": {}}]),
    ("readiness-probe-path", ("spec", "template", "spec", "readinessProbe", "httpGet"),
     {"path": "/health", "port": 8123}),
    ("owner", ("metadata", "ownerReferences"),
     [{"apiVersion": "vteam.ambient-code/v1alpha1", "kind": "AgenticSession", "name": "demo",
       "uid": "sess-uid-1", "controller": True, "blockOwnerDeletion": True}]),
    ("namespace", ("metadata", "namespace"), "team-a"),
]


@pytest.mark.parametrize(("path", "expected"), [(p, e) for _, p, e in VM_FIELDS],
                         ids=[i for i, _, _ in VM_FIELDS])
def test_vm_field(path: tuple[str, ...], expected: Any) -> None:
    assert _get(by_kind(render())["VirtualMachine"], *path) == expected


def test_vm_never_uses_the_deprecated_running_field() -> None:
    assert "running" not in by_kind(render())["VirtualMachine"]["spec"]


def test_cloudinit_volume_references_the_secret_and_has_no_inline_user_data() -> None:
    volume = vm_template_spec(render())["volumes"][1]["cloudInitNoCloud"]
    assert volume == {"secretRef": {"name": "demo-cloudinit"}}
    assert not {"userData", "userDataBase64"} & set(volume)


def test_probe_timing_and_termination_grace_are_set() -> None:
    spec = vm_template_spec(render())
    assert spec["readinessProbe"]["initialDelaySeconds"] > 0
    assert spec["readinessProbe"]["periodSeconds"] > 0
    assert spec["terminationGracePeriodSeconds"] > 0


def test_every_child_has_the_controller_owner_reference() -> None:
    for obj in render():
        refs = obj["metadata"]["ownerReferences"]
        assert [r["uid"] for r in refs if r.get("controller")] == ["sess-uid-1"], obj["kind"]


def test_service_selects_the_labels_the_vm_template_carries() -> None:
    objs = by_kind(render())
    template_labels = objs["VirtualMachine"]["spec"]["template"]["metadata"]["labels"]
    selector = objs["Service"]["spec"]["selector"]
    assert selector.items() <= template_labels.items()


def test_secrets_are_opaque_string_data() -> None:
    objs = by_kind(render())
    assert objs["demo-cloudinit"]["type"] == "Opaque"
    assert set(objs["demo-cloudinit"]["stringData"]) == {"userdata"}
    assert objs["demo-agui-token"]["stringData"] == {"token": TOKEN}


@pytest.mark.parametrize("secret", [TOKEN, USER_SECRET, PROMPT, "model-x-large",
                                    "repo-x.git", "Demo session"],
                         ids=["token", "user-env", "prompt", "llm-model", "repos",
                              "display-name"])
def test_no_credential_or_env_value_in_the_vm_or_service(secret: str) -> None:
    objs = by_kind(render())
    for kind in ("VirtualMachine", "Service"):
        assert secret not in orjson.dumps(objs[kind]).decode(), kind
    assert secret in userdata(render())  # ... but the guest does get it


# cloud-init content --------------------------------------------------------------------------
def test_default_user_data_writes_env_and_token_files_and_starts_the_runner() -> None:
    text = userdata(render())
    assert text.startswith("#cloud-config\n")
    config = yaml.safe_load(text)
    files = {f["path"]: f for f in config["write_files"]}
    assert files[SESSION_ENV_PATH]["permissions"] == "0600"
    assert files[TOKEN_PATH]["permissions"] == "0400"
    assert files[TOKEN_PATH]["content"] == TOKEN
    env_lines = files[SESSION_ENV_PATH]["content"].splitlines()
    assert f'API_KEY="{USER_SECRET}"' in env_lines
    assert 'SESSION_NAME="demo"' in env_lines
    assert f'AGUI_TOKEN_FILE="{TOKEN_PATH}"' in env_lines
    assert 'AGUI_PORT="8123"' in env_lines
    assert TOKEN not in files[SESSION_ENV_PATH]["content"]  # the token is a file, not env
    assert ["systemctl", "enable", "--now", RUNNER_UNIT] in config["runcmd"]


TEMPLATE = """#cloud-config
# a comment the operator drops
write_files:
  - path: /opt/agent/${SESSION_NAME}.env
    content: |
      KEY=${API_KEY}
      TOKEN=${AGUI_TOKEN}
      HOME_EXPANDED_BY_SHELL=$${HOME} $PATH
runcmd:
  - [/opt/agent/start, "${SESSION_NAMESPACE}"]
"""


def test_template_placeholders_are_filled_from_the_session_env_and_token() -> None:
    config = yaml.safe_load(userdata(render(rt=runtime(cloud_init_template=TEMPLATE))))
    assert config["write_files"] == [{
        "path": "/opt/agent/demo.env",
        "content": f"KEY={USER_SECRET}\nTOKEN={TOKEN}\nHOME_EXPANDED_BY_SHELL=${{HOME}} $PATH\n"}]
    assert config["runcmd"] == [["/opt/agent/start", "team-a"]]


def test_template_values_cannot_change_the_cloud_config_structure() -> None:
    hostile = "x\nruncmd:\n  - [rm, -rf, /]\nusers: [evil]"
    sess = session(env={"API_KEY": hostile})
    config = yaml.safe_load(userdata(render(sess, runtime(cloud_init_template=TEMPLATE))))
    assert set(config) == {"write_files", "runcmd"}
    assert config["runcmd"] == [["/opt/agent/start", "team-a"]]
    assert hostile in config["write_files"][0]["content"]


@pytest.mark.parametrize(("template", "needle"), [
    ("#cloud-config\nruncmd:\n  - echo ${NOPE}\n", "${NOPE}"),
    ("#cloud-config\nruncmd:\n  - echo ${}\n", "malformed"),
    ("#cloud-config\nruncmd:\n  - echo ${BAD NAME}\n", "malformed"),
    ("#cloud-config\nruncmd:\n  - echo ${UNCLOSED\n", "malformed"),
    ("#!/bin/sh\necho hi\n", "#cloud-config"),
    ("#cloud-config\nruncmd: [unbalanced\n", "not valid YAML"),
    ("#cloud-config\n- a list\n", "mapping"),
], ids=["unknown", "empty", "bad-name", "unclosed", "not-cloud-config", "bad-yaml", "not-mapping"])
def test_bad_templates_are_render_errors(template: str, needle: str) -> None:
    with pytest.raises(RenderError) as err:
        render(rt=runtime(cloud_init_template=template))
    assert err.value.reason == "InvalidCloudInitTemplate"
    assert needle in err.value.message
    assert TOKEN not in err.value.message and USER_SECRET not in err.value.message


# bad vmConfig --------------------------------------------------------------------------------
@pytest.mark.parametrize(("vm", "field"), [
    ({"cpu": "two"}, "vmConfig.cpu"),
    ({"cpu": "0"}, "vmConfig.cpu"),
    ({"cpu": "-1"}, "vmConfig.cpu"),
    ({"cpu": "1.5"}, "vmConfig.cpu"),
    ({"cpu": "500m"}, "vmConfig.cpu"),
    ({"memory": "4GB!"}, "vmConfig.memory"),
    ({"memory": "lots"}, "vmConfig.memory"),
    ({"memory": "0"}, "vmConfig.memory"),
    ({"memory": "1500m"}, "vmConfig.memory"),
    ({"container_disk_image": " "}, "vmConfig.containerDiskImage"),
], ids=["cpu-word", "cpu-zero", "cpu-negative", "cpu-fraction", "cpu-millis",
        "memory-suffix", "memory-word", "memory-zero", "memory-fraction", "no-disk-image"])
def test_bad_vm_config_is_a_render_error_naming_the_field(vm: Obj, field: str) -> None:
    with pytest.raises(RenderError) as err:
        render(rt=runtime(**vm))
    assert err.value.reason == "InvalidVMConfig"
    assert field in err.value.message


def test_missing_vm_config_is_a_render_error() -> None:
    rt = Runtime(id="vm-agent", image="", execution_kind=ExecutionKind.KUBEVIRT_VM)
    with pytest.raises(RenderError) as err:
        render(rt=rt)
    assert err.value.reason == "InvalidVMConfig" and "vmConfig" in err.value.message


@pytest.mark.parametrize(("cpu", "memory", "cores", "guest"), [
    ("4", "8Gi", 4, "8Gi"), ("2000m", "1024Mi", 2, "1024Mi"), (" 1 ", "512M", 1, "512M"),
], ids=["plain", "millicores-and-mebibytes", "padded-and-decimal-suffix"])
def test_good_quantities(cpu: str, memory: str, cores: int, guest: str) -> None:
    domain = vm_template_spec(render(rt=runtime(cpu=cpu, memory=memory)))["domain"]
    assert domain["cpu"] == {"cores": cores} and domain["memory"] == {"guest": guest}


def test_shared_children_errors_pass_through() -> None:
    with pytest.raises(RenderError) as err:
        render(session(env={"SESSION_NAME": "x"}))
    assert err.value.reason == "ReservedEnvName"


# observe: status shapes from the simulator ---------------------------------------------------
T0 = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
TIMING = Timing(schedule_delay=1.0, boot_delay=1.0, ready_delay=1.0, pull_backoff=1.0)


def stored_vm() -> Obj:
    """The rendered VM as the API server stores it (uid, generation)."""
    vm = copy.deepcopy(by_kind(render())["VirtualMachine"])
    vm["metadata"].update(uid="vm-uid-1", generation=1, creationTimestamp=rfc3339(T0))
    return vm


def simulate(steps: int, *, scenario: VMScenario | None = None, pod: bool = True,
             elapsed: float = 5.0) -> tuple[Obj, Obj]:
    """(vm, vmi) after ``steps`` syncs of the simulator's VMI phase machine (timers standing
    in for the kubelet), the VM's status computed from the VMI as virt-controller would."""
    vm = stored_vm()
    vmi = vmi_manifest(vm)
    vmi["metadata"].update(namespace="team-a", uid="vmi-uid-1", creationTimestamp=rfc3339(T0))
    launcher = launcher_pod(vmi)
    launcher["metadata"].update(name="virt-launcher-demo-runner-abcde", uid="pod-uid-1")
    facts = Situation(elapsed=elapsed, follow=False, scenario=scenario, node="node-1",
                      ip="10.244.0.7", mac="52:54:00:aa:bb:cc", now=rfc3339(T0))
    for _ in range(steps):
        status, _ = vmi_status(vmi, launcher if pod else None, facts, TIMING)
        vmi = {**vmi, "status": status}
    vm["status"] = vm_status(vm, vmi, VMMemory(), strategy="Always", start_expected=True,
                             datavolume_error=scenario is not None
                             and scenario.kind == "datavolume-error", now=rfc3339(T0))
    return vm, vmi


def vm_only(*, start_expected: bool, failures: int = 0) -> Obj:
    """A VM without an instance: starting, crash-looping or stopped."""
    vm = stored_vm()
    memory = VMMemory(failures=failures, last_failed_uid="vmi-uid-0" if failures else "",
                      retry_at_wall=rfc3339(T0 + dt.timedelta(seconds=20)) if failures else "")
    vm["status"] = vm_status(vm, None, memory, strategy="Always", start_expected=start_expected,
                             datavolume_error=False, now=rfc3339(T0))
    return vm


def service() -> Obj:
    return by_kind(render())["Service"]


def with_vm_and_vmi(pair: tuple[Obj, Obj], *, svc: bool = True) -> Children:
    vm, vmi = pair
    return Children(vm=vm, vmi=vmi, service=service() if svc else None)


def deleting_vm() -> Children:
    vm, vmi = simulate(4)
    vm["metadata"]["deletionTimestamp"] = rfc3339(T0)
    return Children(vm=vm, vmi=vmi, service=service())


def foreign_vmi() -> Children:
    """The cache still holds the VMI of an earlier VM of the same name."""
    _, old_vmi = simulate(4, scenario=VMScenario("crash", after=1.0))
    old_vmi["metadata"]["ownerReferences"][0]["uid"] = "vm-uid-0"
    return Children(vm=vm_only(start_expected=True), vmi=old_vmi, service=service())


def stale_vm_status() -> Children:
    """The VMI was handed to its node; the VM's cached status still says ErrImagePull."""
    stale_vm, _ = simulate(2, scenario=VMScenario("image-pull-error"))
    _, vmi = simulate(2)
    return Children(vm=stale_vm, vmi=vmi, service=service())


def running_ready_children(svc: bool = True) -> Children:
    return with_vm_and_vmi(simulate(4), svc=svc)


Row = tuple[str, Callable[[], Children], dt.timedelta, Phase | None, str, dict[str, Any]]
ROWS: list[Row] = [
    ("no-vm", Children, dt.timedelta(0), None, "", {}),
    ("vm-deleting", deleting_vm, dt.timedelta(0), None, "", {}),
    ("vm-without-status", lambda: Children(vm=stored_vm()), dt.timedelta(0), Phase.CREATING,
     "VMStarting", {}),
    ("vm-starting-no-vmi", lambda: Children(vm=vm_only(start_expected=True)), dt.timedelta(0),
     Phase.CREATING, "VMStarting", {"message": "Starting"}),
    ("vmi-pending", lambda: with_vm_and_vmi(simulate(1, pod=False)), dt.timedelta(0),
     Phase.CREATING, "VMIPending", {}),
    ("vmi-scheduling", lambda: with_vm_and_vmi(simulate(1)), dt.timedelta(0), Phase.CREATING,
     "VMIScheduling", {}),
    ("vmi-scheduled", lambda: with_vm_and_vmi(simulate(2)), dt.timedelta(0), Phase.CREATING,
     "VMIScheduled", {"condition": ("PodScheduled", "True")}),
    ("vmi-running-not-ready", lambda: with_vm_and_vmi(simulate(3)), dt.timedelta(0),
     Phase.CREATING, "RunnerNotReady", {"message": "containers with unready status"}),
    ("vmi-running-never-ready", lambda: with_vm_and_vmi(simulate(
        4, scenario=VMScenario("never-ready"))), dt.timedelta(0), Phase.CREATING,
     "RunnerNotReady", {}),
    ("vmi-running-ready", running_ready_children, dt.timedelta(0), Phase.RUNNING,
     "RunnerReady", {"ready": True, "endpoint": "http://session-demo.team-a.svc:8123"}),
    ("vmi-running-ready-no-service", lambda: running_ready_children(svc=False),
     dt.timedelta(0), Phase.RUNNING, "RunnerReady", {"ready": True, "endpoint": ""}),
    ("vmi-succeeded", lambda: with_vm_and_vmi(simulate(
        4, scenario=VMScenario("guest-shutdown", after=1.0))), dt.timedelta(0),
     Phase.COMPLETED, "VMISucceeded", {}),
    ("vmi-failed", lambda: with_vm_and_vmi(simulate(
        4, scenario=VMScenario("crash", after=1.0))), dt.timedelta(0), Phase.FAILED,
     "VMIFailed", {}),
    ("err-image-pull", lambda: with_vm_and_vmi(simulate(
        2, scenario=VMScenario("image-pull-error"), elapsed=0.5)), dt.timedelta(0),
     Phase.FAILED, "ErrImagePull", {"message": "failed to pull and unpack image"}),
    ("image-pull-backoff", lambda: with_vm_and_vmi(simulate(
        2, scenario=VMScenario("image-pull-error"))), dt.timedelta(0), Phase.FAILED,
     "ImagePullBackOff", {"message": f'Back-off pulling image "{DISK}"'}),
    ("crash-loop-backoff", lambda: Children(vm=vm_only(start_expected=False, failures=3)),
     dt.timedelta(0), Phase.FAILED, "CrashLoopBackOff", {"message": "3 time(s)"}),
    ("datavolume-error", lambda: with_vm_and_vmi(simulate(
        1, scenario=VMScenario("datavolume-error"), pod=False)), dt.timedelta(0),
     Phase.FAILED, "DataVolumeError", {}),
    ("unschedulable-within-grace", lambda: with_vm_and_vmi(simulate(
        2, scenario=VMScenario("unschedulable"))), dt.timedelta(seconds=60), Phase.CREATING,
     "Unschedulable", {"condition": ("PodScheduled", "False"), "message": "Insufficient cpu",
                       "recheck_after": 241.0}),
    ("unschedulable-at-grace", lambda: with_vm_and_vmi(simulate(
        2, scenario=VMScenario("unschedulable"))), UNSCHEDULABLE_GRACE, Phase.CREATING,
     "Unschedulable", {"condition": ("PodScheduled", "False"), "recheck_after": 1.0}),
    ("unschedulable-beyond-grace", lambda: with_vm_and_vmi(simulate(
        2, scenario=VMScenario("unschedulable"))), UNSCHEDULABLE_GRACE + dt.timedelta(
        seconds=1), Phase.FAILED, "Unschedulable",
     {"condition": ("PodScheduled", "False"), "message": "301s"}),
    ("stopped-no-vmi", lambda: Children(vm=vm_only(start_expected=False)), dt.timedelta(0),
     None, "VMStopped", {}),
    ("foreign-vmi-ignored", foreign_vmi, dt.timedelta(0), Phase.CREATING, "VMStarting", {}),
    ("stale-vm-status-after-handover", stale_vm_status, dt.timedelta(0), Phase.CREATING,
     "VMIScheduled", {}),
]


@pytest.mark.parametrize(("build", "after", "phase", "reason", "extra"),
                         [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_observe(build: Callable[[], Children], after: dt.timedelta, phase: Phase | None,
                 reason: str, extra: dict[str, Any]) -> None:
    children = build()
    observed = ENV.observe(session(), children, now=T0 + after)
    assert (observed.phase, observed.reason) == (phase, reason), observed
    assert observed.ready is extra.get("ready", False)
    assert observed.endpoint == extra.get("endpoint", "")
    assert extra.get("message", "") in observed.message
    assert observed.recheck_after == extra.get("recheck_after")
    if "condition" in extra:
        kind, status = extra["condition"]
        assert [(c["type"], c["status"]) for c in observed.conditions] == [(kind, status)]
    assert_no_secrets(observed)


def assert_no_secrets(observed: Observation) -> None:
    text = orjson.dumps([observed.message, list(observed.conditions)]).decode()
    assert TOKEN not in text and USER_SECRET not in text


def test_simulated_shapes_are_what_the_rows_claim() -> None:
    """Guards the table against simulator changes: each fixture is in the state it names."""
    phases = [simulate(n)[1]["status"]["phase"] for n in (1, 2, 3, 4)]
    assert phases == ["Scheduling", "Scheduled", "Running", "Running"]
    assert simulate(1, pod=False)[1]["status"]["phase"] == "Pending"
    printable = {
        "pull": simulate(2, scenario=VMScenario("image-pull-error"), elapsed=0.5)[0],
        "backoff": simulate(2, scenario=VMScenario("image-pull-error"))[0],
        "unschedulable": simulate(2, scenario=VMScenario("unschedulable"))[0],
        "dv": simulate(1, scenario=VMScenario("datavolume-error"), pod=False)[0],
        "crash-loop": vm_only(start_expected=False, failures=3),
        "stopped": vm_only(start_expected=False),
        "starting": vm_only(start_expected=True),
        "running": simulate(4)[0],
    }
    assert {k: v["status"]["printableStatus"] for k, v in printable.items()} == {
        "pull": "ErrImagePull", "backoff": "ImagePullBackOff",
        "unschedulable": "ErrorUnschedulable", "dv": "DataVolumeError",
        "crash-loop": "CrashLoopBackOff", "stopped": "Stopped", "starting": "Starting",
        "running": "Running"}


def test_unschedulable_grace_is_configurable() -> None:
    children = with_vm_and_vmi(simulate(2, scenario=VMScenario("unschedulable")))
    short = KubeVirtEnvironment(unschedulable_grace=dt.timedelta(seconds=30))
    assert short.observe(session(), children, now=T0 + dt.timedelta(seconds=31)).phase is (
        Phase.FAILED)


def test_unschedulable_message_carries_the_schedulers_reason() -> None:
    children = with_vm_and_vmi(simulate(2, scenario=VMScenario("unschedulable")))
    observed = ENV.observe(session(), children, now=T0)
    assert observed.conditions[0]["message"] == UNSCHEDULABLE_MESSAGE


def test_observe_does_not_modify_cached_objects() -> None:
    children = running_ready_children()
    before = copy.deepcopy((children.vm, children.vmi, children.service))
    ENV.observe(session(), children, now=T0)
    assert (children.vm, children.vmi, children.service) == before


# observe: shapes copied from a real cluster (KubeVirt v1.x) ----------------------------------
def real_vm(printable: str, conditions: list[Obj], **status: Any) -> Obj:
    vm = stored_vm()
    vm["status"] = {"printableStatus": printable, "conditions": conditions,
                    "runStrategy": "Always", "desiredGeneration": 1, "observedGeneration": 1,
                    "volumeSnapshotStatuses": [{"enabled": False, "name": "rootdisk",
                                                "reason": "Snapshot is not supported for "
                                                          "this volumeSource type [rootdisk]"}],
                    **status}
    return vm


def real_vmi(phase: str, conditions: list[Obj]) -> Obj:
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": "demo-runner", "namespace": "team-a", "uid": "vmi-uid-9",
                         "labels": {"agentic-session": "demo", "app": "ambient-code-runner",
                                    "kubevirt.io/nodeName": "worker-2"},
                         "ownerReferences": [{"apiVersion": "kubevirt.io/v1",
                                              "kind": "VirtualMachine", "name": "demo-runner",
                                              "uid": "vm-uid-1", "controller": True,
                                              "blockOwnerDeletion": True}]},
            "status": {"phase": phase, "conditions": conditions, "guestOSInfo": {},
                       "qosClass": "Burstable", "migrationMethod": "BlockMigration"}}


READY = {"type": "Ready", "status": "True", "lastProbeTime": None,
         "lastTransitionTime": "2025-06-01T12:00:41Z"}
LIVE_MIGRATABLE = {"type": "LiveMigratable", "status": "False", "lastProbeTime": None,
                   "lastTransitionTime": None, "reason": "DisksNotLiveMigratable",
                   "message": "cannot migrate VMI which does not use masquerade..."}
UNSCHEDULABLE = {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                 "lastTransitionTime": "2025-06-01T12:00:03Z", "reason": "Unschedulable",
                 "message": "0/3 nodes are available: 3 Insufficient memory."}
NOT_READY = {"type": "Ready", "status": "False", "lastProbeTime": None,
             "lastTransitionTime": "2025-06-01T12:00:03Z", "reason": "GuestNotRunning",
             "message": "Guest VM is not reported as running"}


def test_real_cluster_running_and_ready() -> None:
    vm = real_vm("Running", [READY, LIVE_MIGRATABLE], created=True, ready=True)
    vmi = real_vmi("Running", [READY, LIVE_MIGRATABLE,
                               {"type": "AgentConnected", "status": "True",
                                "lastProbeTime": None, "lastTransitionTime": None}])
    observed = ENV.observe(session(), Children(vm=vm, vmi=vmi, service=service()), now=T0)
    assert (observed.phase, observed.ready) == (Phase.RUNNING, True)


@pytest.mark.parametrize(("after", "phase"), [(60, Phase.CREATING), (310, Phase.FAILED)],
                         ids=["waiting", "given-up"])
def test_real_cluster_unschedulable(after: int, phase: Phase) -> None:
    vm = real_vm("ErrorUnschedulable", [NOT_READY, UNSCHEDULABLE], created=True)
    vmi = real_vmi("Scheduling", [NOT_READY, UNSCHEDULABLE])
    observed = ENV.observe(session(), Children(vm=vm, vmi=vmi, service=service()),
                           now=dt.datetime(2025, 6, 1, 12, 0, 3, tzinfo=dt.UTC)
                           + dt.timedelta(seconds=after))
    assert (observed.phase, observed.reason) == (phase, "Unschedulable")
    assert "Insufficient memory" in observed.message


def test_real_cluster_image_pull_backoff_without_vmi_conditions_in_vm() -> None:
    """Only the VMI carries the Synchronized condition; the VM says ImagePullBackOff."""
    synced = {"type": "Synchronized", "status": "False", "lastProbeTime": None,
              "lastTransitionTime": "2025-06-01T12:00:09Z", "reason": "ImagePullBackOff",
              "message": f'Back-off pulling image "{DISK}"'}
    vm = real_vm("ImagePullBackOff", [NOT_READY], created=True)
    vmi = real_vmi("Scheduling", [NOT_READY, synced])
    observed = ENV.observe(session(), Children(vm=vm, vmi=vmi), now=T0)
    assert (observed.phase, observed.reason) == (Phase.FAILED, "ImagePullBackOff")
    assert "Back-off pulling image" in observed.message


def test_real_cluster_halted_vm_is_no_workload() -> None:
    vm = real_vm("Stopped", [{"type": "Ready", "status": "False", "lastProbeTime": None,
                              "lastTransitionTime": "2025-06-01T12:00:00Z",
                              "reason": "VMINotExists", "message": "VMI does not exist"}])
    assert ENV.observe(session(), Children(vm=vm), now=T0).phase is None


# properties ----------------------------------------------------------------------------------
_names = st.from_regex(r"[a-z]([a-z0-9-]{0,30}[a-z0-9])?", fullmatch=True)
_marked = st.text(alphabet=string.ascii_letters + string.digits + " \n\"'$`\\:#{}-",
                  min_size=6, max_size=40)
_env = st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,12}", fullmatch=True).filter(
    lambda n: n not in {"SESSION_NAME", "SESSION_NAMESPACE", "DISPLAY_NAME", "INITIAL_PROMPT",
                        "REPOS_JSON", "LLM_MODEL", "LLM_TEMPERATURE", "LLM_MAX_TOKENS",
                        "AGUI_PORT", "AGUI_TOKEN_FILE", "AGUI_TOKEN", "SESSION_TIMEOUT",
                        "INACTIVITY_TIMEOUT"}),
    _marked.map(lambda v: f"ENVVAL<{v}>"), max_size=4)


@settings(max_examples=60, deadline=None)
@given(name=_names, env=_env, token=_marked.map(lambda t: f"TOKEN<{t}>"),
       prompt=_marked.map(lambda p: f"PROMPT<{p}>"), templated=st.booleans())
def test_render_is_deterministic_and_keeps_credentials_in_secrets(
        name: str, env: dict[str, str], token: str, prompt: str, templated: bool) -> None:
    sess = session(name, env=env, prompt=prompt)
    template = ("#cloud-config\nwrite_files:\n  - path: /t\n    content: ${AGUI_TOKEN}\n"
                if templated else "")
    rt = runtime(cloud_init_template=template)
    first, second = ENV.render(sess, rt, token=token), ENV.render(sess, rt, token=token)
    assert orjson.dumps(first) == orjson.dumps(second)
    for obj in first:
        text = orjson.dumps(obj).decode()
        if obj["kind"] != "Secret":
            assert token not in text and prompt not in text, obj["kind"]
            assert not any(value in text for value in env.values()), obj["kind"]
    cloudinit = yaml.safe_load(next(o for o in first if o["metadata"]["name"].endswith(
        "-cloudinit"))["stringData"]["userdata"])
    files = {f["path"]: f["content"] for f in cloudinit["write_files"]}
    assert files["/t" if templated else TOKEN_PATH] == token
