"""The KubeVirt environment (reconcilers.vm) under the Pod's contract (ADR-0008, DESIGN §4):
the guest gets the environment the Pod's runner gets, Secrets only by reference, the
VirtualMachine field by field, and ``observe`` against the table in vm.py's docstring."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from ambient_ctrl.predicate import runs_inline, settled
from envtest import LocalAPIServer
from envtest.simulators import KubeVirtSimulator
from reconcilers.children import network_policy, service
from reconcilers.cloudinit import (
    HYDRATE_UNIT,
    RUNNER_ENV_PATH,
    SECRET_ENV_LIST_PATH,
    SECRETS_ROOT,
    STATE_SYNC_ENV_PATH,
    STATE_SYNC_SECRET_ENV_PATH,
    STATE_SYNC_SECRET_ENV_UNIT,
    STATE_SYNC_SECRET_LIST_PATH,
    STATE_SYNC_SERVICE,
)
from reconcilers.config import OperatorConfig
from reconcilers.environment import (
    Children,
    Observation,
    RenderError,
    RunInputs,
    Runtime,
    S3Settings,
    VMConfig,
)
from reconcilers.pod import runner_pod
from reconcilers.registry import parse_registry, runtime_id
from reconcilers.resources import RUN_ANNOTATION, VIRTUAL_MACHINES
from reconcilers.samples import KUBEVIRT_ENTRY, backend_session
from reconcilers.vm import RUNNER_VM_CHANGED, RUNNER_VMI_CHANGED, KubeVirtEnvironment
from tests.conftest import RawClient

Obj = dict[str, Any]
NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
RUN = "2026-03-01T11:00:00Z"
TOKEN = "ambient-runner-token-session-1"
ENV = KubeVirtEnvironment()

# Values that are secret: none may appear in the VirtualMachine.
S3_SECRET = "S3-SECRET-VALUE-7f3a"
S3_ACCESS = "S3-ACCESS-VALUE-19c2"
OAUTH_SECRET = "OAUTH-CLIENT-SECRET-4b1e"
API_KEY = "sk-ant-api03-USER-KEY-9d8c"
VERTEX_CREDENTIALS = "/app/vertex/ambient-code-key.json"

CONFIG = OperatorConfig(backend_namespace="ambient-code",
                        google_oauth_client_id="cid", google_oauth_client_secret=OAUTH_SECRET)
INPUTS = RunInputs(config=CONFIG, token_secret=TOKEN, run_started=RUN,
                   s3=S3Settings(endpoint="http://minio:9000", bucket="b", access_key=S3_ACCESS,
                                 secret_key=S3_SECRET, available=True))


def adr_runtime() -> Runtime:
    found = parse_registry(json.dumps([KUBEVIRT_ENTRY])).entries["claude-kubevirt"]
    assert isinstance(found, Runtime), found
    return found


ADR = adr_runtime()
SESSION: Obj = {
    "apiVersion": "vteam.ambient-code/v1alpha1", "kind": "AgenticSession",
    "metadata": {"name": "session-1", "namespace": "team-a", "uid": "uid-1", "generation": 1},
    "spec": {"runtime": "claude-kubevirt", "initialPrompt": 'say "hi" $HOME `id`\nthen stop',
             "timeout": 300, "llmSettings": {"model": "claude-sonnet-4-6", "temperature": 0.7,
                                             "maxTokens": 4000},
             "userContext": {"userId": "alice", "displayName": "Alice"},
             "environmentVariables": {"RUNNER_TYPE": "claude-agent-sdk",
                                      "RUNNER_STATE_DIR": ".claude", "MY_API_KEY": API_KEY}}}


def render(runtime: Runtime = ADR, inputs: RunInputs = INPUTS,
           obj: Obj | None = None) -> tuple[Obj, Obj]:
    secret, vm = ENV.render(obj or SESSION, runtime, inputs)
    return secret, vm


def userdata(secret: Obj) -> dict[str, Any]:
    text = secret["stringData"]["userdata"]
    assert text.startswith("#cloud-config\n")
    config = yaml.safe_load(text)
    assert isinstance(config, dict)
    return config


def written(secret: Obj, path: str) -> str:
    found = [f["content"] for f in userdata(secret)["write_files"] if f["path"] == path]
    assert len(found) == 1, path
    return str(found[0])


def template(vm: Obj) -> Obj:
    spec: Obj = vm["spec"]["template"]["spec"]
    return spec


def source(path: Path, names: list[str]) -> dict[str, str]:
    script = f'. "{path}"; ' + "".join(f'printf "%s\\0" "${n}"; ' for n in names)
    out = subprocess.run(["/bin/sh", "-c", script], check=True, capture_output=True,
                         env={"PATH": os.environ["PATH"]}).stdout
    return dict(zip(names, (v.decode() for v in out.split(b"\0")[:-1]), strict=True))


# the ADR's entry ---------------------------------------------------------------------------------
def test_the_adr_entry_parses_verbatim_and_a_backend_session_renders() -> None:
    assert ADR.vm == VMConfig(container_disk_image="quay.io/ambient_code/fedora-runner:latest",
                              cpu=2, memory="4Gi", cloud_init_template="ambient-runner-cloud-init")
    obj = backend_session("team-a", name="session-1", runtime="claude-kubevirt")
    obj["metadata"]["uid"] = "uid-1"
    assert runtime_id(obj) == "claude-kubevirt"
    secret, vm = render(obj=obj)
    assert (secret["kind"], vm["kind"]) == ("Secret", "VirtualMachine")


def test_a_runtime_without_vm_config_is_refused() -> None:
    with pytest.raises(RenderError) as err:
        render(replace(ADR, vm=None))
    assert err.value.reason == "InvalidVMConfig"


# the VirtualMachine ------------------------------------------------------------------------------
def test_the_virtual_machine_field_by_field() -> None:
    _, vm = render()
    assert (vm["apiVersion"], vm["kind"]) == (VIRTUAL_MACHINES.api_version, "VirtualMachine")
    assert vm["metadata"]["name"] == "session-1-runner"
    assert vm["metadata"]["labels"] == {"agentic-session": "session-1",
                                        "app": "ambient-code-runner"}
    assert vm["metadata"]["ownerReferences"] == [
        {"apiVersion": "vteam.ambient-code/v1alpha1", "kind": "AgenticSession",
         "name": "session-1", "uid": "uid-1", "controller": True}]
    assert vm["metadata"]["annotations"]["ambient-code.io/run-started-at"] == RUN
    assert vm["spec"]["runStrategy"] == "RerunOnFailure"
    assert "running" not in vm["spec"]  # runStrategy and running are exclusive
    spec = template(vm)
    assert spec["domain"]["cpu"] == {"cores": 2}
    assert isinstance(spec["domain"]["cpu"]["cores"], int)
    assert spec["domain"]["memory"] == {"guest": "4Gi"}
    assert spec["domain"]["devices"]["interfaces"] == [
        {"name": "default", "masquerade": {}, "ports": [
            {"name": "agui", "port": 8001, "protocol": "TCP"}]}]
    assert spec["networks"] == [{"name": "default", "pod": {}}]
    assert spec["readinessProbe"] == {"httpGet": {"path": "/health", "port": 8001},
                                      "initialDelaySeconds": 20, "periodSeconds": 10}
    assert spec["terminationGracePeriodSeconds"] == 60
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["rootdisk"] == {"name": "rootdisk", "containerDisk": {
        "image": "quay.io/ambient_code/fedora-runner:latest"}}
    assert volumes["cloudinitdisk"] == {"name": "cloudinitdisk", "cloudInitNoCloud": {
        "secretRef": {"name": "session-1-cloudinit"}}}
    assert volumes["workspace"] == {"name": "workspace", "emptyDisk": {"capacity": "50Gi"}}
    disks = {d["name"]: d for d in spec["domain"]["devices"]["disks"]}
    assert set(disks) == {"rootdisk", "cloudinitdisk", "workspace"}
    # the guest finds the workspace disk by its serial (/dev/disk/by-id/virtio-workspace)
    assert disks["workspace"]["serial"] == "workspace"
    assert userdata(render()[0])["fs_setup"][0]["device"] == "/dev/disk/by-id/virtio-workspace"


def test_cpu_memory_and_disk_come_from_vm_config() -> None:
    runtime = replace(ADR, vm=VMConfig(container_disk_image="me/disk:9", cpu=7, memory="12Gi"))
    spec = template(render(runtime)[1])
    assert spec["domain"]["cpu"] == {"cores": 7}
    assert spec["domain"]["memory"] == {"guest": "12Gi"}
    assert {"name": "rootdisk", "containerDisk": {"image": "me/disk:9"}} in spec["volumes"]


def test_without_a_workspace_there_is_no_disk_for_it() -> None:
    runtime = replace(ADR, sandbox=replace(ADR.sandbox, persistence="none", clone_repos=False,
                                           hydrate_state=False))
    secret, vm = render(runtime)
    names = {v["name"] for v in template(vm)["volumes"]}
    assert "workspace" not in names
    assert "workspace" not in {d["name"] for d in template(vm)["domain"]["devices"]["disks"]}
    assert "fs_setup" not in userdata(secret)


def test_the_service_and_the_network_policy_select_the_virt_launcher_pod() -> None:
    """KubeVirt copies the template's labels to the virt-launcher pod."""
    _, vm = render()
    labels = vm["spec"]["template"]["metadata"]["labels"]
    stored = {**vm, "metadata": {**vm["metadata"], "uid": "vm-uid"}}
    selector = service(SESSION, stored, VIRTUAL_MACHINES, 8001)["spec"]["selector"]
    policy = network_policy("team-a", "ambient-code")["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert policy.items() <= labels.items()


def test_the_cloud_init_secret() -> None:
    secret, _ = render()
    assert secret["type"] == "Opaque"
    assert secret["metadata"]["name"] == "session-1-cloudinit"
    assert secret["metadata"]["namespace"] == "team-a"
    assert secret["metadata"]["labels"] == {"app": "ambient-runner-cloudinit",
                                            "agentic-session": "session-1"}
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert set(secret["stringData"]) == {"userdata"}


# the same contract as the Pod ---------------------------------------------------------------------
EVERYTHING = replace(INPUTS, integrations=True, trusted_ca=True,
                     copied=frozenset({"ambient-vertex", "ambient-admin-langfuse-secret",
                                       "ambient-admin-mlflow-observability-secret"}),
                     config=replace(CONFIG, vertex=True, vertex_settings={
                         "CLOUD_ML_REGION": "us-east5", "ANTHROPIC_VERTEX_PROJECT_ID": "p",
                         "GOOGLE_APPLICATION_CREDENTIALS": VERTEX_CREDENTIALS}))
VARIANTS = [INPUTS, EVERYTHING, replace(INPUTS, integrations=True, s3=S3Settings(
    endpoint="https://s3", bucket="b", available=True,
    key_ref=("ambient-non-vertex-integrations", "S3_ACCESS_KEY", "S3_SECRET_KEY")))]


def pod_secrets(pod: Obj) -> set[str]:
    """Every Secret the Pod reads: envFrom, secretKeyRef, volumes."""
    names: set[str] = set()
    for container in [*pod["spec"].get("initContainers", ()), *pod["spec"]["containers"]]:
        names |= {e["secretRef"]["name"] for e in container.get("envFrom", ())}
        names |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]
                  if "valueFrom" in e}
    names |= {v["secret"]["secretName"] for v in pod["spec"]["volumes"] if "secret" in v}
    return names


@pytest.mark.parametrize("inputs", VARIANTS, ids=["plain", "everything", "custom-s3"])
def test_every_secret_the_pod_reads_is_shared_with_virtiofs(inputs: RunInputs) -> None:
    pod = runner_pod(SESSION, ADR, inputs)
    secret, vm = render(inputs=inputs)
    spec = template(vm)
    shared = {v["name"]: v for v in spec["volumes"] if "secret" in v or "configMap" in v}
    assert {v["secret"]["secretName"] for v in shared.values() if "secret" in v} == \
        pod_secrets(pod)
    assert {f["name"] for f in spec["domain"]["devices"]["filesystems"]} == set(shared)
    assert all(f["virtiofs"] == {} for f in spec["domain"]["devices"]["filesystems"])
    # each share is mounted in the guest, where the env script and the links expect it
    mounts = {m[0]: m for m in userdata(secret)["mounts"] if m[2] == "virtiofs"}
    assert mounts == {name: [name, f"{SECRETS_ROOT}/{name}", "virtiofs", "ro,nofail", "0",
                             "0"] for name in shared}
    if inputs.trusted_ca:
        assert shared["trusted-ca-bundle"] == {"name": "trusted-ca-bundle",
                                               "configMap": {"name": "trusted-ca-bundle"}}


@pytest.mark.parametrize("inputs", VARIANTS, ids=["plain", "everything", "custom-s3"])
def test_no_secret_value_is_inline_in_the_virtual_machine(inputs: RunInputs) -> None:
    secret, vm = render(inputs=inputs)
    text = json.dumps(vm)
    for value in (S3_SECRET, S3_ACCESS, OAUTH_SECRET, API_KEY, "say \\\"hi\\\""):
        assert value not in text
    assert "stringData" not in text and "userdata" not in text
    # the values the Pod passes as plain values live in the cloud-init Secret
    user = secret["stringData"]["userdata"]
    assert OAUTH_SECRET in user and API_KEY in user
    if inputs.s3.key_ref is None:
        assert S3_SECRET in user


def test_the_guest_gets_the_runners_plain_env_in_the_pods_order(tmp_path: Path) -> None:
    pod = runner_pod(SESSION, ADR, EVERYTHING)
    runner = pod["spec"]["containers"][0]
    plain = [(e["name"], e["value"]) for e in runner["env"] if "valueFrom" not in e]
    secret, _ = render(inputs=EVERYTHING)
    text = written(secret, RUNNER_ENV_PATH)
    assert [line.split("=", 1)[0] for line in text.splitlines() if line[:1].isupper()
            and "=" in line] == [name for name, _ in plain]
    path = tmp_path / "runner.env"
    path.write_text(text, encoding="utf-8")
    assert source(path, [n for n, _ in plain]) == dict(plain)


def test_the_guest_gets_the_runners_secret_variables_and_env_from() -> None:
    pod = runner_pod(SESSION, ADR, EVERYTHING)
    runner = pod["spec"]["containers"][0]
    secret, vm = render(inputs=EVERYTHING)
    volume_of = {v["secret"]["secretName"]: v["name"] for v in template(vm)["volumes"]
                 if "secret" in v}
    lines = written(secret, SECRET_ENV_LIST_PATH).splitlines()
    env_from = [f"* {volume_of[e['secretRef']['name']]}" for e in runner["envFrom"]]
    assert lines[:len(env_from)] == env_from
    refs = [e for e in runner["env"] if "valueFrom" in e]
    for var in refs:
        selector = var["valueFrom"]["secretKeyRef"]
        line = f"{var['name']} {volume_of[selector['name']]}/{selector['key']}" + (
            " optional" if selector.get("optional") else "")
        assert line in lines
    assert f"AGUI_TOKEN {volume_of[TOKEN]}/agui-token" in lines


def test_the_state_sync_env_is_the_init_and_sidecar_plain_env(tmp_path: Path) -> None:
    pod = runner_pod(SESSION, ADR, INPUTS)
    expected: dict[str, str] = {}
    for container in [*pod["spec"]["initContainers"], pod["spec"]["containers"][1]]:
        for var in container["env"]:
            if "valueFrom" not in var:
                expected.setdefault(var["name"], var["value"])
    path = tmp_path / "state-sync.env"
    path.write_text(written(render()[0], STATE_SYNC_ENV_PATH), encoding="utf-8")
    assert source(path, list(expected)) == expected
    assert expected["AWS_SECRET_ACCESS_KEY"] == S3_SECRET and expected["SYNC_INTERVAL"] == "60"


@pytest.mark.parametrize("inputs", VARIANTS, ids=["plain", "everything", "custom-s3"])
def test_each_secret_variable_reaches_the_service_of_the_container_that_reads_it(
        inputs: RunInputs) -> None:
    """The runner's secretKeyRef variables go to the runner's list; init-hydrate's and
    state-sync's (BOT_TOKEN, a project's own S3 keys) to theirs — never the runner's."""
    pod = runner_pod(SESSION, ADR, inputs)
    secret, vm = render(inputs=inputs)
    volume_of = {v["secret"]["secretName"]: v["name"] for v in template(vm)["volumes"]
                 if "secret" in v}

    def lines(*containers: Obj) -> set[str]:
        return {f"{e['name']} {volume_of[e['valueFrom']['secretKeyRef']['name']]}/"
                f"{e['valueFrom']['secretKeyRef']['key']}"
                + (" optional" if e["valueFrom"]["secretKeyRef"].get("optional") else "")
                for c in containers for e in c["env"] if "valueFrom" in e}

    runner, sidecar = pod["spec"]["containers"]
    [init] = pod["spec"]["initContainers"]
    runner_list = {line for line in written(secret, SECRET_ENV_LIST_PATH).splitlines()
                   if not line.startswith("* ")}
    assert runner_list == lines(runner)
    state_sync_list = set(written(secret, STATE_SYNC_SECRET_LIST_PATH).splitlines())
    assert state_sync_list == lines(init, sidecar)
    assert "BOT_TOKEN runner-token/k8s-token" in state_sync_list
    if inputs.s3.key_ref is not None:
        assert {"AWS_ACCESS_KEY_ID ambient-non-vertex-integrations/S3_ACCESS_KEY",
                "AWS_SECRET_ACCESS_KEY ambient-non-vertex-integrations/S3_SECRET_KEY"} <= \
            state_sync_list
    units = {f["path"]: f["content"] for f in userdata(secret)["write_files"]}
    for unit in (HYDRATE_UNIT, STATE_SYNC_SERVICE):
        dropin = units[f"/etc/systemd/system/{unit}.d/10-ambient-session.conf"]
        assert f"EnvironmentFile=-{STATE_SYNC_SECRET_ENV_PATH}" in dropin
        assert f"Requires={STATE_SYNC_SECRET_ENV_UNIT}" in dropin


def test_files_the_pod_mounts_from_secrets_are_links_into_the_shares() -> None:
    secret, vm = render(inputs=EVERYTHING)
    commands = userdata(secret)["bootcmd"]
    links = {cmd[3]: cmd[2] for cmd in commands if cmd[0] == "ln"}
    assert links == {
        # the bot token: a live Secret volume, so a refreshed k8s-token reaches the guest
        "/var/run/secrets/ambient/bot-token": f"{SECRETS_ROOT}/runner-token/k8s-token",
        "/app/vertex": f"{SECRETS_ROOT}/vertex",
        "/etc/pki/tls/certs/ca-bundle.crt": f"{SECRETS_ROOT}/trusted-ca-bundle/ca-bundle.crt"}
    for path in links:
        assert ["mkdir", "-p", path.rsplit("/", 1)[0]] in commands
    volumes = {v["name"]: v for v in template(vm)["volumes"]}
    assert volumes["runner-token"] == {"name": "runner-token",
                                       "secret": {"secretName": TOKEN}}
    assert volumes["vertex"] == {"name": "vertex", "secret": {"secretName": "ambient-vertex"}}


def test_a_named_template_from_the_inputs_is_used() -> None:
    runtime = replace(ADR, vm=replace(ADR.vm, cloud_init_template="tiny"))  # type: ignore[type-var]
    tiny = "#cloud-config\nruncmd:\n  - [echo, '${AGENTIC_SESSION_NAME}']\n"
    secret, _ = render(runtime, replace(INPUTS, cloud_init_templates={"tiny": tiny}))
    assert userdata(secret) == {"runcmd": [["echo", "session-1"]]}


def test_an_unknown_template_name_is_refused() -> None:
    runtime = replace(ADR, vm=replace(ADR.vm, cloud_init_template="missing"))  # type: ignore[type-var]
    with pytest.raises(RenderError) as err:
        render(runtime)
    assert err.value.reason == "InvalidCloudInitTemplate"


@pytest.mark.parametrize(("where", "name"), [("session", "MY-VAR"), ("session", "1ST"),
                                             ("registry", "a.b"), ("registry", "WITH SPACE")])
def test_env_names_a_vm_cannot_carry_are_refused(where: str, name: str) -> None:
    obj = copy.deepcopy(SESSION)
    runtime = ADR
    if where == "session":
        obj["spec"]["environmentVariables"][name] = "v"
    else:
        runtime = replace(ADR, env={**ADR.env, name: "v"})
    runner_pod(obj, runtime, INPUTS)  # a Pod takes them
    with pytest.raises(RenderError) as err:
        render(runtime, obj=obj)
    assert err.value.reason == "InvalidEnvName"


def test_render_is_deterministic_and_pure() -> None:
    frozen = copy.deepcopy(SESSION)
    assert render(inputs=EVERYTHING) == render(inputs=EVERYTHING)
    assert frozen == SESSION


# observe -----------------------------------------------------------------------------------------
VM_UID = "vm-uid-1"


def vm_obj(printable: str = "Starting", *, deleting: bool = False, failures: int = 0,
           synced: Obj | None = None, scheduled: Obj | None = None,
           run: str | None = RUN) -> Obj:
    vm = copy.deepcopy(render()[1])
    vm["metadata"].update(uid=VM_UID, resourceVersion="7", generation=1)
    if run is None:
        vm["metadata"].pop("annotations", None)
    if deleting:
        vm["metadata"]["deletionTimestamp"] = "2026-03-01T11:59:00Z"
    conditions: list[Obj] = [{"type": "Ready", "status": "False", "reason": "VMINotExists",
                              "message": "VMI does not exist"}]
    conditions += [c for c in (synced, scheduled) if c]
    status: Obj = {"printableStatus": printable, "conditions": conditions,
                   "runStrategy": "RerunOnFailure", "desiredGeneration": 1}
    if failures:
        status["startFailure"] = {"consecutiveFailCount": failures,
                                  "retryAfterTimestamp": "2026-03-01T12:05:00Z"}
    vm["status"] = status
    return vm


def vmi_obj(phase: str, *, ready: bool = False, node: str | None = "node-1",
            reason: str | None = None, owner: str = VM_UID,
            conditions: list[Obj] | None = None) -> Obj:
    status: Obj = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}, *(conditions or ())],
        "guestOSInfo": {}, "qosClass": "Burstable"}
    if node:
        status["nodeName"] = node
    if reason:
        status["reason"] = reason
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
            "metadata": {"name": "session-1-runner", "namespace": "team-a", "uid": "vmi-uid",
                         "labels": {"agentic-session": "session-1", "app": "ambient-code-runner"},
                         "ownerReferences": [{"apiVersion": "kubevirt.io/v1",
                                              "kind": "VirtualMachine",
                                              "name": "session-1-runner", "uid": owner,
                                              "controller": True, "blockOwnerDeletion": True}]},
            "status": status}


def observe(vm: Obj | None, vmi: Obj | None) -> Observation:
    objects: dict[str, dict[str, Mapping[str, Any]]] = {}
    if vm is not None:
        objects["VirtualMachine"] = {"session-1-runner": vm}
    if vmi is not None:
        objects["VirtualMachineInstance"] = {"session-1-runner": vmi}
    return ENV.observe(SESSION, Children(objects), now=NOW)


ON_NODE = {"status": "True", "reason": "Scheduled", "message": "Scheduled on node-1"}
PULL = {"type": "Synchronized", "status": "False", "reason": "ErrImagePull",
        "message": 'failed to pull image "quay.io/ambient_code/fedora-runner:latest"'}
UNSCHEDULABLE = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": "0/1 nodes are available: 1 Insufficient memory."}

OBSERVE = [
    ("absent", None, None, Observation()),
    ("vmi-outlives-its-vm", None, vmi_obj("Running", ready=True),
     Observation("starting", terminating=True)),
    ("vm-being-deleted", vm_obj("Terminating", deleting=True), vmi_obj("Running", ready=True),
     Observation("starting", terminating=True, scheduled=ON_NODE, run_started=RUN)),
    ("running-and-ready", vm_obj("Running"), vmi_obj("Running", ready=True),
     Observation("running", reason="ContainerRunning",
                 message="Runner VM is running and its runner answers", scheduled=ON_NODE,
                 run_started=RUN, ready=True)),
    ("running-not-ready", vm_obj("Running"), vmi_obj("Running"),
     Observation("starting", scheduled=ON_NODE, run_started=RUN)),
    ("image-pull", vm_obj("ErrImagePull", synced=PULL), vmi_obj("Pending", node=None,
                                                                  conditions=[PULL]),
     Observation("failed", reason="ErrImagePull", message="VirtualMachine session-1-runner is "
                 f"ErrImagePull: {PULL['message']}", run_started=RUN)),
    ("image-pull-backoff-without-vmi", vm_obj("ImagePullBackOff"), None,
     Observation("failed", reason="ImagePullBackOff",
                 message="VirtualMachine session-1-runner is ImagePullBackOff",
                 run_started=RUN)),
    ("crash-loop", vm_obj("CrashLoopBackOff", failures=3), None,
     Observation("failed", reason="CrashLoopBackOff", message="VirtualMachine session-1-runner "
                 "is CrashLoopBackOff: the guest failed 3 time(s) in a row", run_started=RUN)),
    ("datavolume-error", vm_obj("DataVolumeError"), None,
     Observation("failed", reason="DataVolumeError",
                 message="VirtualMachine session-1-runner is DataVolumeError", run_started=RUN)),
    ("stale-pull-error-once-scheduled", vm_obj("ErrImagePull", synced=PULL),
     vmi_obj("Scheduled"),
     Observation("starting", scheduled=ON_NODE, run_started=RUN)),
    ("guest-shut-down", vm_obj("Stopped"), vmi_obj("Succeeded"),
     Observation("succeeded", reason="Completed", message="Runner VM shut down",
                 scheduled=ON_NODE, run_started=RUN)),
    ("guest-failed", vm_obj("Stopped"), vmi_obj("Failed", reason="GuestPanicked"),
     Observation("failed", reason="RunnerExit", message="Runner VM failed: GuestPanicked",
                 scheduled=ON_NODE, run_started=RUN)),
    ("guest-failed-without-reason", vm_obj("Stopped"), vmi_obj("Failed"),
     Observation("failed", reason="RunnerExit", message="Runner VM failed", scheduled=ON_NODE,
                 run_started=RUN)),
    ("stopped-by-someone", vm_obj("Stopped"), None,
     Observation("lost", reason="VMStopped", message="VirtualMachine session-1-runner is Stopped",
                 run_started=RUN)),
    ("stopping-by-someone", vm_obj("Stopping"), None,
     Observation("lost", reason="VMStopped",
                 message="VirtualMachine session-1-runner is Stopping", run_started=RUN)),
    ("stopping-while-its-vmi-is-still-there", vm_obj("Stopping"), vmi_obj("Scheduled"),
     Observation("starting", scheduled=ON_NODE, run_started=RUN)),
    ("starting-without-vmi", vm_obj("Starting"), None, Observation("starting", run_started=RUN)),
    ("scheduling", vm_obj("Starting"), vmi_obj("Scheduling", node=None),
     Observation("starting", run_started=RUN)),
    ("unschedulable", vm_obj("ErrorUnschedulable", scheduled=UNSCHEDULABLE),
     vmi_obj("Scheduling", node=None, conditions=[UNSCHEDULABLE]),
     Observation("starting", scheduled={"status": "False", "reason": "Unschedulable",
                                        "message": UNSCHEDULABLE["message"]}, run_started=RUN)),
    ("vmi-of-a-previous-vm-is-not-this-runs", vm_obj("Starting"),
     vmi_obj("Running", ready=True, owner="old-vm-uid"),
     Observation("starting", run_started=RUN)),
    ("vm-of-upstream-without-run", vm_obj("Running", run=None), vmi_obj("Running", ready=True),
     Observation("running", reason="ContainerRunning",
                 message="Runner VM is running and its runner answers", scheduled=ON_NODE,
                 ready=True)),
]


@pytest.mark.parametrize(("vm", "vmi", "expected"), [c[1:] for c in OBSERVE],
                         ids=[c[0] for c in OBSERVE])
def test_observe(vm: Obj | None, vmi: Obj | None, expected: Observation) -> None:
    assert observe(vm, vmi) == expected


def test_kind_and_owned_children() -> None:
    assert ENV.kind.value == "kubevirt-vm"
    assert [(c.resource.kind, c.name("s"), c.rendered) for c in ENV.owns] == [
        ("VirtualMachine", "s-runner", True), ("VirtualMachineInstance", "s-runner", False),
        ("Secret", "s-cloudinit", True)]
    assert ENV.requires == VIRTUAL_MACHINES


# which updates wake the session (RUNNER_VM_CHANGED, RUNNER_VMI_CHANGED) -----------------------
def _vm_and_instance_updates() -> tuple[list[Obj], list[Obj]]:
    """The states of a rendered runner VM and of its instance as the local API server's
    KubeVirt moves them from created to ready (one per update their watches show)."""
    secret, vm = copy.deepcopy(render())
    namespace = vm["metadata"]["namespace"]
    for obj in (secret, vm):
        obj["metadata"].pop("ownerReferences", None)  # no session object here to own them
    simulator = KubeVirtSimulator(kubelet=False, schedule_delay=0.01, boot_delay=0.02,
                                  ready_delay=0.05)
    base = f"/apis/kubevirt.io/v1/namespaces/{namespace}"
    with LocalAPIServer(simulators=[simulator]) as server, RawClient(server.url) as client:
        assert client.post("/api/v1/namespaces", {"metadata": {"name": namespace}})[0] == 201
        assert client.post(f"/api/v1/namespaces/{namespace}/secrets", secret)[0] == 201
        status, created = client.post(f"{base}/virtualmachines", vm)
        assert status == 201, created
        since = f"?watch=true&resourceVersion={created['metadata']['resourceVersion']}"
        vms, instances = [created], []
        with client.watch(f"{base}/virtualmachines{since}") as vm_watch, \
                client.watch(f"{base}/virtualmachineinstances{since}") as instance_watch:
            while not instances or not _instance_ready(instances[-1]):
                event = instance_watch.next()
                assert event is not None and event["type"] in ("ADDED", "MODIFIED"), event
                instances.append(event["object"])
            while not (vms[-1].get("status") or {}).get("ready"):
                event = vm_watch.next()
                assert event is not None and event["type"] == "MODIFIED", event
                vms.append(event["object"])
    return vms, instances


def _instance_ready(vmi: Obj) -> bool:
    status = vmi.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or ())


def test_kubevirts_updates_wake_the_session_when_its_observation_moves() -> None:
    vms, instances = _vm_and_instance_updates()
    vm_woken = [RUNNER_VM_CHANGED.update(old, new) for old, new in itertools.pairwise(vms)]
    instance_woken = [RUNNER_VMI_CHANGED.update(old, new)
                      for old, new in itertools.pairwise(instances)]
    # Whatever the other object's state, an update that moves the observation wakes it.
    for vmi in [None, *instances]:
        for (old, new), woken in zip(itertools.pairwise(vms), vm_woken, strict=True):
            assert woken or observe(old, vmi) == observe(new, vmi), (old, new, vmi)
    for vm in vms:
        for (old, new), woken in zip(itertools.pairwise(instances), instance_woken,
                                     strict=True):
            assert woken or observe(vm, old) == observe(vm, new), (vm, old, new)
    assert observe(vms[-1], instances[-1]).state == "running"
    assert instance_woken[-1], "the update that makes the guest ready is news"
    assert not all(vm_woken), f"the VM's {len(vm_woken)} updates all woke the session"


def test_the_filters_pass_every_change_the_observation_sees() -> None:
    """Across the observation table's states: two VMs (or two instances) that the session
    would observe differently, with any instance (or VM) beside them, make an update that
    wakes it."""
    vms = [vm for _, vm, _, _ in OBSERVE if vm is not None]
    instances = [vmi for _, _, vmi, _ in OBSERVE if vmi is not None]
    for old, new in itertools.permutations(vms, 2):
        if any(observe(old, vmi) != observe(new, vmi) for vmi in [None, *instances]):
            assert RUNNER_VM_CHANGED.update(old, new)
    for old, new in itertools.permutations(instances, 2):
        if any(observe(vm, old) != observe(vm, new) for vm in vms):
            assert RUNNER_VMI_CHANGED.update(old, new)


_RUNNING_VM, _RUNNING_VMI = vm_obj("Running"), vmi_obj("Running", ready=True)


_VM_WAKES = [
    ("annotation (another run)", lambda vm: vm["metadata"]["annotations"].update(
        {RUN_ANNOTATION: "2026-03-02T00:00:00Z"})),
    ("deletion", lambda vm: vm["metadata"].update(deletionTimestamp="2026-03-01T12:00:00Z")),
    ("spec", lambda vm: vm["spec"].update(runStrategy="Halted")),
    ("printable status", lambda vm: vm["status"].update(printableStatus="Stopped")),
    ("start failures", lambda vm: vm["status"].update(startFailure={"consecutiveFailCount": 1})),
    ("synchronized", lambda vm: vm["status"]["conditions"].append(PULL)),
    ("unschedulable", lambda vm: vm["status"]["conditions"].append(UNSCHEDULABLE)),
    ("malformed", lambda vm: vm.update(status=7)),
]
_VM_QUIET = [
    ("resync", lambda vm: None),
    ("server bookkeeping", lambda vm: vm["metadata"].update(resourceVersion="99", generation=2)),
    ("created, ready", lambda vm: vm["status"].update(created=True, ready=True)),
    ("generations", lambda vm: vm["status"].update(desiredGeneration=2, observedGeneration=2)),
    ("its own Ready condition", lambda vm: vm["status"]["conditions"][0].update(
        status="True", reason="", message="")),
]
_VMI_WAKES = [
    ("phase", lambda vmi: vmi["status"].update(phase="Failed")),
    ("reason", lambda vmi: vmi["status"].update(reason="GuestPanicked")),
    ("ready", lambda vmi: vmi["status"]["conditions"][0].update(status="False")),
    ("node", lambda vmi: vmi["status"].update(nodeName="node-2")),
    ("owner", lambda vmi: vmi["metadata"]["ownerReferences"][0].update(uid="another-vm")),
    ("label", lambda vmi: vmi["metadata"]["labels"].update(extra="1")),
    ("malformed", lambda vmi: vmi["status"].update(conditions=7)),
]
_VMI_QUIET = [
    ("resync", lambda vmi: None),
    ("interfaces", lambda vmi: vmi["status"].update(interfaces=[
        {"name": "default", "ipAddress": "10.0.2.2", "ipAddresses": ["10.0.2.2"]}])),
    ("guest OS", lambda vmi: vmi["status"].update(guestOSInfo={"id": "fedora"})),
    ("launcher pod", lambda vmi: vmi["status"].update(activePods={"pod-uid": "node-1"},
                                                      launcherContainerImageVersion="v1")),
    ("volumes", lambda vmi: vmi["status"].update(volumeStatus=[{"name": "rootdisk"}])),
]


@pytest.mark.parametrize(("predicate", "base", "change", "wakes"), [
    pytest.param(predicate, base, change, wakes, id=f"{kind} {verdict}: {name}")
    for kind, predicate, base, table in (
        ("vm", RUNNER_VM_CHANGED, _RUNNING_VM, ((_VM_WAKES, True), (_VM_QUIET, False))),
        ("instance", RUNNER_VMI_CHANGED, _RUNNING_VMI,
         ((_VMI_WAKES, True), (_VMI_QUIET, False))))
    for cases, wakes in table
    for verdict in ("wakes" if wakes else "does not",)
    for name, change in cases])
def test_what_wakes_the_session(predicate: Any, base: Obj, change: Any, wakes: bool) -> None:
    """One update of a running VM (or of its instance) at a time, against the filter of its
    watch: what the pass reads wakes the session, KubeVirt's other writes do not."""
    new = copy.deepcopy(base)
    change(new)
    assert predicate.update(base, new) is wakes


def test_both_filters_run_on_the_informers_thread_and_pass_creates_and_deletes() -> None:
    for predicate in (RUNNER_VM_CHANGED, RUNNER_VMI_CHANGED):
        assert runs_inline(predicate)
        assert settled(predicate, "create") is True and settled(predicate, "delete") is True
