"""The virt-launcher pod carries the VMI's Secret, ConfigMap and service account volumes.

That is the path by which a Secret a VM names (refreshed by an operator) reaches the guest: the
kubelet keeps the pod's secret volume current and virtiofsd (a ``virtiofs-<volume>`` container)
shares it. Rendering is checked as a pure function, then end to end with the kubelet and
KubeVirt simulators: a VM's Secret can be traced to the launcher pod that mounts it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from envtest.simulators import KubeletSimulator, KubeVirtSimulator
from envtest.simulators.kubevirt_vmi import launcher_pod
from envtest.simulators.launcher_volumes import render
from tests.conftest import RawClient

KV = "/apis/kubevirt.io/v1"
SMP = "application/strategic-merge-patch+json"
Obj = dict[str, Any]


def vmi_spec() -> Obj:
    return {
        "domain": {"devices": {
            "disks": [{"name": "root", "disk": {"bus": "virtio"}},
                      {"name": "cloudinit", "disk": {"bus": "virtio"}},
                      {"name": "settings", "disk": {}}],
            "filesystems": [{"name": "creds", "virtiofs": {}},
                            {"name": "identity", "virtiofs": {}}]}},
        "volumes": [
            {"name": "root", "containerDisk": {"image": "quay.io/containerdisks/fedora:41"}},
            {"name": "cloudinit", "cloudInitNoCloud": {"secretRef": {"name": "s-cloudinit"}}},
            {"name": "creds", "secret": {"secretName": "agent-creds"}},
            {"name": "settings", "configMap": {"name": "agent-settings", "optional": True}},
            {"name": "identity", "serviceAccount": {"serviceAccountName": "runner"}},
        ],
    }


def test_render_volumes_mounts_and_virtiofs_containers() -> None:
    out = render(vmi_spec(), image="launcher:1", user=107)
    token = out.volumes[-1]["name"]
    assert token.startswith("kube-api-access-") and len(token) == len("kube-api-access-") + 5
    assert out.volumes[:-1] == [
        {"name": "cloudinit-udata", "secret": {"secretName": "s-cloudinit"}},
        {"name": "creds", "secret": {"secretName": "agent-creds"}},
        {"name": "settings", "configMap": {"name": "agent-settings", "optional": True}},
        {"name": "virtiofs-containers", "emptyDir": {}},
    ]
    assert out.volumes[-1]["projected"]["sources"][0] == {
        "serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert out.service_account == "runner"
    assert out.compute_mounts == [
        {"name": "cloudinit-udata", "readOnly": True, "subPath": "userdata",
         "mountPath": "/var/run/kubevirt-private/secret/cloudinit/userdata"},
        {"name": "cloudinit-udata", "readOnly": True, "subPath": "userData",
         "mountPath": "/var/run/kubevirt-private/secret/cloudinit/userData"},
        {"name": "settings", "mountPath": "/var/run/kubevirt-private/config-map/settings",
         "readOnly": True},  # a disk uses it; "creds" only a filesystem: no compute mount
        {"name": "virtiofs-containers", "mountPath": "/var/run/kubevirt/virtiofs-containers"},
        {"name": token, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
         "readOnly": True},
    ]
    creds, identity = out.containers
    assert creds["name"] == "virtiofs-creds" and creds["image"] == "launcher:1"
    assert creds["args"] == ["--socket-path=/var/run/kubevirt/virtiofs-containers/creds.sock",
                             "--shared-dir=/var/run/kubevirt-private/secret/creds",
                             "--sandbox=none", "--cache=auto"]
    assert [m["name"] for m in creds["volumeMounts"]] == ["virtiofs-containers", "creds", token]
    assert creds["volumeMounts"][1]["mountPath"] == "/var/run/kubevirt-private/secret/creds"
    assert identity["args"][1] == "--shared-dir=/var/run/secrets/kubernetes.io/serviceaccount/"
    assert [m["name"] for m in identity["volumeMounts"]] == ["virtiofs-containers", token]


def test_access_credentials_and_downward_api() -> None:
    out = render({"accessCredentials": [
        {"sshPublicKey": {"source": {"secret": {"secretName": "keys"}}}},
        {"userPassword": {"source": {"secret": {"secretName": "passwords"}}}}],
        "volumes": [{"name": "info", "downwardAPI": {"fields": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]},
        image="i", user=107)
    assert out.volumes == [
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "keys-access-cred", "secret": {"secretName": "keys"}},
        {"name": "passwords-access-cred", "secret": {"secretName": "passwords"}}]
    assert [m["mountPath"] for m in out.compute_mounts] == [
        "/var/run/kubevirt-private/secret/keys-access-cred",
        "/var/run/kubevirt-private/secret/passwords-access-cred"]
    assert not out.containers and not out.service_account


def test_a_vmi_without_config_volumes_keeps_the_plain_launcher() -> None:
    vmi = {"metadata": {"name": "vm", "uid": "u1", "namespace": "ns",
                        "labels": {"app": "runner"}},
           "spec": {"volumes": [{"name": "root", "containerDisk": {"image": "img"}}]}}
    pod = launcher_pod(vmi, scenario="never-ready")
    assert "volumes" not in pod["spec"] and "serviceAccountName" not in pod["spec"]
    assert pod["spec"]["automountServiceAccountToken"] is False
    [compute] = pod["spec"]["containers"]
    assert compute["name"] == "compute" and "volumeMounts" not in compute
    assert pod["metadata"]["labels"]["app"] == "runner"
    assert pod["metadata"]["annotations"]["envtest.ambient-code.io/scenario"] == (
        "never-ready@compute")


# end to end -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api() -> Iterator[LocalAPIServer]:
    kubelet = KubeletSimulator(schedule_delay=0.02, start_delay=0.05, ready_delay=0.1)
    kubevirt = KubeVirtSimulator(schedule_delay=0.02, boot_delay=0.05, ready_delay=0.1)
    with LocalAPIServer(simulators=[kubelet, kubevirt]) as server:
        yield server


def test_a_secret_named_by_a_vm_reaches_its_launcher_pod(client: RawClient,
                                                          namespace: str) -> None:
    for path, body in [
        ("secrets", {"metadata": {"name": "agent-creds"}, "stringData": {"token": "t1"}}),
        ("secrets", {"metadata": {"name": "s-cloudinit"}, "stringData": {"userdata": "#x"}}),
        ("serviceaccounts", {"metadata": {"name": "runner"}}),
    ]:
        assert client.post(f"/api/v1/namespaces/{namespace}/{path}", body)[0] == 201
    vm = {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
          "metadata": {"name": "agent"}, "spec": {"runStrategy": "Always", "template": {
              "metadata": {"labels": {"app": "ambient-code-runner", "session": "s1"}},
              "spec": vmi_spec()}}}
    status, body = client.post(f"{KV}/namespaces/{namespace}/virtualmachines", vm)
    assert status == 201, body

    def ready_launcher() -> Obj | None:
        _, pods = client.get(f"/api/v1/namespaces/{namespace}/pods")
        ready = [p for p in pods["items"] if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (p.get("status") or {}).get("conditions") or ())]
        return ready[0] if ready else None

    launcher = eventually(ready_launcher, timeout=10, message="the launcher never got ready")
    assert launcher["metadata"]["labels"]["app"] == "ambient-code-runner"
    assert launcher["metadata"]["labels"]["session"] == "s1"
    mounting = [p["metadata"]["name"] for p in client.get(
        f"/api/v1/namespaces/{namespace}/pods")[1]["items"]
        # defaultMode: kube's default for a secret volume (0644)
        if {"name": "creds", "secret": {"secretName": "agent-creds", "defaultMode": 420}}
        in p["spec"].get("volumes", [])]
    assert mounting == [launcher["metadata"]["name"]]
    spec = launcher["spec"]
    assert spec["serviceAccountName"] == "runner"
    assert spec["automountServiceAccountToken"] is True
    assert [c["name"] for c in spec["containers"]] == ["compute", "virtiofs-creds",
                                                       "virtiofs-identity"]
    statuses = {s["name"]: s for s in launcher["status"]["containerStatuses"]}
    assert all(s["ready"] and "running" in s["state"] for s in statuses.values())
    vmi = client.get(f"{KV}/namespaces/{namespace}/virtualmachineinstances/agent")[1]
    assert vmi["status"]["phase"] == "Running"
    # Every field the simulator wrote is one kube knows: a Strict patch goes through.
    status, patched = client.request(
        "PATCH", f"/api/v1/namespaces/{namespace}/pods/{launcher['metadata']['name']}"
        "?fieldValidation=Strict", {"metadata": {"labels": {"checked": "yes"}}},
        content_type=SMP)
    assert status == 200, patched
