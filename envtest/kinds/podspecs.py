"""The defaults kube-apiserver gives every pod spec: a Pod's own, and the template of every
workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob).

The facts are kube's ``pkg/apis/core/v1/defaults.go`` (``SetDefaults_PodSpec``,
``SetDefaults_Container``, ``SetDefaults_Probe``, the volume sources' default modes...), which
run on every decode, so a template is defaulted on create and on update alike. What only a
Pod gets (``enableServiceLinks``, the service account, priority: admission and
``SetDefaults_Pod``) is :mod:`.builtins`' ``pods`` hook, not here. Pure functions on the JSON
object, changed in place; values of the wrong JSON type are left to validation
(:func:`validate_pod_spec`, which a Pod and every template share).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from envtest.errors import Cause
from envtest.kinds.objects import DNS1123_LABEL

_SPEC_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("restartPolicy", "Always"), ("dnsPolicy", "ClusterFirst"),
    ("schedulerName", "default-scheduler"), ("terminationGracePeriodSeconds", 30),
    ("securityContext", {}))
_PROBE_DEFAULTS: tuple[tuple[str, int], ...] = (
    ("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
    ("failureThreshold", 3))
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_FILE_MODE = 0o644
"""``defaultMode`` of secret, configMap, downwardAPI and projected volumes (420)."""
_VOLUME_SOURCES = frozenset({
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
    "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
    "storageos", "csi", "ephemeral", "image"})


def pull_policy(image: str) -> str:
    """``Always`` for an image without a tag or tagged ``latest``, else ``IfNotPresent``."""
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    tag = tail.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def containers(spec: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every container of a pod spec: init, regular and ephemeral ones."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from _items(spec.get(key))


def default_spec(spec: dict[str, Any]) -> None:
    """Default a pod spec (a Pod's, or a template's) in place."""
    for key, value in _SPEC_DEFAULTS:
        spec.setdefault(key, value)
    for container in containers(spec):
        default_container(container, host_network=spec.get("hostNetwork") is True)
    for volume in _items(spec.get("volumes")):
        _default_volume(volume)


def default_template(template: Any) -> None:
    """Default a PodTemplateSpec (``spec.template`` of a workload) in place."""
    if isinstance(template, dict):
        spec = template.setdefault("spec", {})
        if isinstance(spec, dict):
            default_spec(spec)


def default_container(container: dict[str, Any], *, host_network: bool = False) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    if isinstance(container.get("image"), str):
        container.setdefault("imagePullPolicy", pull_policy(container["image"]))
    container.setdefault("resources", {})
    for port in _items(container.get("ports")):
        port.setdefault("protocol", "TCP")
        if host_network and "containerPort" in port:
            port.setdefault("hostPort", port["containerPort"])
    for name in _PROBES:
        probe = container.get(name)
        if isinstance(probe, dict):
            _default_probe(probe)
    for env in _items(container.get("env")):
        field_ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(
            env.get("valueFrom"), dict) else None
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")


def _default_probe(probe: dict[str, Any]) -> None:
    for key, value in _PROBE_DEFAULTS:
        if not probe.get(key):
            probe[key] = value
    http_get = probe.get("httpGet")
    if isinstance(http_get, dict):
        http_get.setdefault("path", "/")
        http_get.setdefault("scheme", "HTTP")
    grpc = probe.get("grpc")
    if isinstance(grpc, dict):
        grpc.setdefault("service", "")


def _default_volume(volume: dict[str, Any]) -> None:
    if not _VOLUME_SOURCES & volume.keys():
        volume["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        source = volume.get(key)
        if isinstance(source, dict):
            source.setdefault("defaultMode", _FILE_MODE)
    for item in _items((volume.get("downwardAPI") or {}).get("items")
                       if isinstance(volume.get("downwardAPI"), dict) else None):
        _default_field_ref(item)
    projected = volume.get("projected")
    for source in _items(projected.get("sources") if isinstance(projected, dict) else None):
        token = source.get("serviceAccountToken")
        if isinstance(token, dict):
            token.setdefault("expirationSeconds", 3600)
        downward = source.get("downwardAPI")
        for item in _items(downward.get("items") if isinstance(downward, dict) else None):
            _default_field_ref(item)
    host_path = volume.get("hostPath")
    if isinstance(host_path, dict):
        host_path.setdefault("type", "")
    ephemeral = volume.get("ephemeral")
    claim = ephemeral.get("volumeClaimTemplate") if isinstance(ephemeral, dict) else None
    if isinstance(claim, dict) and isinstance(claim.get("spec"), dict):
        default_claim_spec(claim["spec"])


def _default_field_ref(item: dict[str, Any]) -> None:
    field_ref = item.get("fieldRef")
    if isinstance(field_ref, dict):
        field_ref.setdefault("apiVersion", "v1")


def default_claim_spec(spec: dict[str, Any]) -> None:
    """A PersistentVolumeClaimSpec: ``volumeMode: Filesystem``."""
    spec.setdefault("volumeMode", "Filesystem")


def validate_pod_spec(spec: Any, prefix: str,
                      restart_policies: tuple[str, ...] = ("Always", "OnFailure", "Never"),
                      ) -> list[Cause]:
    """A pod spec's checks (a Pod's, or a template's at ``prefix``): containers with valid,
    unique names and images, valid ports, a restart policy among ``restart_policies``."""
    if not isinstance(spec, dict):
        return [Cause(prefix, "Required value", "FieldValueRequired")]
    causes = []
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        causes.append(Cause(f"{prefix}.containers", "Required value", "FieldValueRequired"))
    names: set[str] = set()
    for key in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(key) or ()):
            path = f"{prefix}.{key}[{i}]"
            if not isinstance(c, dict):
                causes.append(Cause(path, "Invalid value: must be an object"))
                continue
            name = c.get("name")
            if not isinstance(name, str) or not name:
                causes.append(Cause(f"{path}.name", "Required value", "FieldValueRequired"))
            elif len(name) > 63 or not DNS1123_LABEL.fullmatch(name):
                causes.append(Cause(f"{path}.name", f'Invalid value: "{name}": a lowercase '
                                    "RFC 1123 label must consist of lower case alphanumeric "
                                    "characters or '-'"))
            elif name in names:
                causes.append(Cause(f"{path}.name", f'Duplicate value: "{name}"',
                                    "FieldValueDuplicate"))
            names.add(name if isinstance(name, str) else "")
            if key == "containers" and not c.get("image"):
                causes.append(Cause(f"{path}.image", "Required value", "FieldValueRequired"))
            causes += port_causes(c.get("ports"), f"{path}.ports", "containerPort")
    policy = spec.get("restartPolicy")
    if policy not in restart_policies:
        supported = ", ".join(f'"{p}"' for p in restart_policies)
        causes.append(Cause(f"{prefix}.restartPolicy", f'Unsupported value: "{policy}": '
                            f"supported values: {supported}", "FieldValueNotSupported"))
    return causes


def port_causes(ports: Any, path: str, field: str) -> list[Cause]:
    causes = []
    for i, port in enumerate(ports or ()):
        number = port.get(field) if isinstance(port, dict) else None
        if not isinstance(number, int) or isinstance(number, bool) or not 0 < number < 65536:
            causes.append(Cause(f"{path}[{i}].{field}", f"Invalid value: {number}: must be "
                                "between 1 and 65535, inclusive"))
    return causes


def _items(value: Any) -> Iterator[dict[str, Any]]:
    for item in value if isinstance(value, list) else ():
        if isinstance(item, dict):
            yield item
