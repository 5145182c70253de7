"""How a VMI's volumes reach its virt-launcher pod, as virt-controller renders them.

Pure functions, after KubeVirt's ``pkg/virt-controller/services`` (``rendervolumes.go``,
``virtiofs.go``, ``template.go``):

* a ``secret`` volume becomes a pod volume of the same name, ``{"secret": {"secretName"}}``
  (``optional`` kept), a ``configMap`` one ``{"configMap": {"name"}}``, a ``downwardAPI`` one
  ``{"downwardAPI": {"items": <fields>}}``; the compute container mounts one read-only under
  ``/var/run/kubevirt-private/{secret,config-map,downwardapi}/<volume>`` when a disk uses it;
* ``cloudInitNoCloud``/``cloudInitConfigDrive`` with ``secretRef`` or ``networkDataSecretRef``
  become secret volumes ``<volume>-udata``/``<volume>-ndata``, mounted by subPath;
* ``accessCredentials`` naming a Secret become ``<secret>-access-cred`` volumes;
* a ``serviceAccount`` volume is not a pod volume of its own: the pod runs as that service
  account with ``automountServiceAccountToken``, and the token arrives the way it does in any
  pod — as the ``kube-api-access-<suffix>`` projected volume mounted at
  ``/var/run/secrets/kubernetes.io/serviceaccount``. kube-apiserver's ServiceAccount admission
  plugin adds that volume; this server has no admission plugins, so it is rendered here;
* each volume a ``filesystems`` entry shares (virtiofs) gets a ``virtiofs-<volume>`` container
  running virtiofsd on the volume's directory: the path by which a refreshed Secret or
  ConfigMap reaches a running guest (the kubelet updates the mounted files, virtiofsd serves
  them).

Other volume types (containerDisk, PVCs, DataVolumes...) are left out: nothing here reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from envtest.kinds.objects import generated_name

PRIVATE_DIR = "/var/run/kubevirt-private"
SOURCE_DIRS = {"secret": f"{PRIVATE_DIR}/secret", "configMap": f"{PRIVATE_DIR}/config-map",
               "downwardAPI": f"{PRIVATE_DIR}/downwardapi"}
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
VIRTIOFS_DIR = "/var/run/kubevirt/virtiofs-containers"
VIRTIOFS_VOLUME = "virtiofs-containers"
TOKEN_EXPIRATION = 3607
"""What the ServiceAccount admission plugin asks for a projected token (an hour and 7 s)."""


@dataclass(slots=True)
class LauncherVolumes:
    """What the launcher pod gets from the VMI's volumes."""

    volumes: list[dict[str, Any]] = field(default_factory=list)
    compute_mounts: list[dict[str, Any]] = field(default_factory=list)
    """Mounts of the compute container (and the token mount of every container)."""
    containers: list[dict[str, Any]] = field(default_factory=list)
    """The ``virtiofs-<volume>`` containers."""
    service_account: str = ""
    """The pod's service account, when a ``serviceAccount`` volume names one."""


def render(spec: Mapping[str, Any], *, image: str, user: int) -> LauncherVolumes:
    """The launcher pod's volumes, mounts and virtiofs containers for a VMI ``spec``."""
    out = LauncherVolumes()
    devices = (spec.get("domain") or {}).get("devices") or {}
    disks = {d.get("name") for d in devices.get("disks") or () if isinstance(d, dict)}
    shared = {f.get("name") for f in devices.get("filesystems") or () if isinstance(f, dict)}
    volumes = [v for v in spec.get("volumes") or () if isinstance(v, dict) and v.get("name")]
    for volume in volumes:
        _cloud_init(volume, out)
    for volume in volumes:
        _config_volume(volume, volume["name"] in disks, out)
    for secret in _access_credential_secrets(spec):
        name = f"{secret}-access-cred"
        out.volumes.append({"name": name, "secret": {"secretName": secret}})
        out.compute_mounts.append({"name": name, "mountPath": f"{SOURCE_DIRS['secret']}/{name}",
                                   "readOnly": True})
    if shared:
        out.volumes.append({"name": VIRTIOFS_VOLUME, "emptyDir": {}})
        out.compute_mounts.append({"name": VIRTIOFS_VOLUME, "mountPath": VIRTIOFS_DIR})
        out.containers = [_virtiofs(v, image, user) for v in volumes if v["name"] in shared]
    if out.service_account:
        token = _service_account_token()
        out.volumes.append(token)
        mount = {"name": token["name"], "mountPath": SERVICE_ACCOUNT_DIR, "readOnly": True}
        out.compute_mounts.append(mount)
        for container in out.containers:
            container["volumeMounts"].append(dict(mount))
    return out


def _config_volume(volume: Mapping[str, Any], on_disk: bool, out: LauncherVolumes) -> None:
    name = volume["name"]
    for kind in ("secret", "configMap", "downwardAPI"):
        source = volume.get(kind)
        if not isinstance(source, dict):
            continue
        if kind == "secret":
            rendered: dict[str, Any] = {"secretName": source.get("secretName", "")}
        elif kind == "configMap":
            rendered = {"name": source.get("name", "")}
        else:
            rendered = {"items": list(source.get("fields") or ())}
        if kind != "downwardAPI" and source.get("optional") is not None:
            rendered["optional"] = source["optional"]
        out.volumes.append({"name": name, kind: rendered})
        if on_disk:
            out.compute_mounts.append({"name": name, "mountPath": f"{SOURCE_DIRS[kind]}/{name}",
                                       "readOnly": True})
    account = volume.get("serviceAccount")
    if isinstance(account, dict) and account.get("serviceAccountName"):
        out.service_account = str(account["serviceAccountName"])


def _cloud_init(volume: Mapping[str, Any], out: LauncherVolumes) -> None:
    name = volume["name"]
    for kind in ("cloudInitNoCloud", "cloudInitConfigDrive"):
        source = volume.get(kind)
        if not isinstance(source, dict):
            continue
        for key, suffix, paths in (("secretRef", "udata", ("userdata", "userData")),
                                   ("networkDataSecretRef", "ndata",
                                    ("networkdata", "networkData"))):
            ref = source.get(key)
            if not isinstance(ref, dict) or not ref.get("name"):
                continue
            out.volumes.append({"name": f"{name}-{suffix}",
                                "secret": {"secretName": ref["name"]}})
            out.compute_mounts += [{"name": f"{name}-{suffix}", "readOnly": True, "subPath": p,
                                    "mountPath": f"{SOURCE_DIRS['secret']}/{name}/{p}"}
                                   for p in paths]


def _access_credential_secrets(spec: Mapping[str, Any]) -> list[str]:
    names = []
    for credential in spec.get("accessCredentials") or ():
        for kind in ("sshPublicKey", "userPassword"):
            secret = (((credential or {}).get(kind) or {}).get("source") or {}).get("secret")
            if isinstance(secret, dict) and secret.get("secretName"):
                names.append(str(secret["secretName"]))
                break
    return names


def _virtiofs(volume: Mapping[str, Any], image: str, user: int) -> dict[str, Any]:
    """The virtiofsd container that shares ``volume`` with the guest."""
    name = volume["name"]
    kind = next((k for k in SOURCE_DIRS if k in volume), None)
    source = (SOURCE_DIRS[kind] + f"/{name}" if kind else
              SERVICE_ACCOUNT_DIR + "/" if "serviceAccount" in volume else f"/{name}")
    mounts = [{"name": VIRTIOFS_VOLUME, "mountPath": VIRTIOFS_DIR}]
    if "serviceAccount" not in volume:  # the token is mounted as in every container
        mounts.append({"name": name, "mountPath": source})
    return {
        "name": f"virtiofs-{name}", "image": image, "imagePullPolicy": "IfNotPresent",
        "command": ["/usr/libexec/virtiofsd"],
        "args": [f"--socket-path={VIRTIOFS_DIR}/{name}.sock", f"--shared-dir={source}",
                 "--sandbox=none", "--cache=auto"],
        "volumeMounts": mounts,
        "resources": {"requests": {"cpu": "10m", "memory": "1M"},
                      "limits": {"cpu": "100m", "memory": "80M"}},
        "securityContext": {"runAsUser": user, "runAsGroup": user, "runAsNonRoot": True,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
    }


def _service_account_token() -> dict[str, Any]:
    """The projected volume the ServiceAccount admission plugin gives a pod."""
    return {"name": generated_name("kube-api-access-"), "projected": {
        "defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt",
                           "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}
