"""The protobuf request-body decoder, against bodies captured from kubectl 1.37.1.

The fixtures in fixtures/protobuf/ are the exact request bodies kubectl POSTed to a stub server
(commands in CAPTURED).  For the `kubectl create` commands the expected dicts are kubectl's own
`--dry-run=client -o json` output for the same flags (for the apps/v1 and RBAC commands, in
DRY_RUN, that output is kept verbatim as <name>.json next to <name>.bin); `kubectl debug` has
no dry run, so those were checked field by field against the Pod JSON the stub served it.
What no kubectl command sends as protobuf (Event, Endpoints, statuses, stringData, bare
objects) is built here with a tiny encoder.  The expected JSON of the Event, Service,
Deployment, Role, ClusterRole and ClusterRoleBinding bodies is what kubectl 1.37.1 printed
(`kubectl events -o json`, `kubectl create <kind> -o json`) when a stub server answered with
those same bodies; the rest follows the upstream Go struct tags.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envtest.codecs.protobuf as protobuf
from envtest.codecs.protobuf import MAGIC, SUPPORTED_KINDS, ProtobufError, decode_object
from envtest.codecs.protobuf import apps as protobuf_apps

FIXTURES = Path(__file__).parent / "fixtures" / "protobuf"


# --- a minimal encoder, with field numbers written out from upstream generated.proto -----------

def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def num(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def blob(field: int, payload: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def text(field: int, value: str) -> bytes:
    return blob(field, value.encode())


def msg(field: int, *parts: bytes) -> bytes:
    return blob(field, b"".join(parts))


def entry(field: int, key: str, value: bytes) -> bytes:
    """A map<string, V> entry; value is the already-encoded field 2."""
    return msg(field, text(1, key), value)


def stamp(field: int, seconds: int, nanos: int = 0) -> bytes:
    return msg(field, num(1, seconds), *([num(2, nanos)] if nanos else []))


def envelope(raw: bytes, kind: str, api_version: str = "v1") -> bytes:
    type_meta = msg(1, text(1, api_version), text(2, kind))
    return MAGIC + type_meta + blob(2, raw) + text(3, "") + text(4, "")


def meta(*parts: bytes) -> bytes:
    return msg(1, *parts)


def _pod_spec(*parts: bytes) -> bytes:
    return envelope(msg(2, *parts), "Pod")


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.bin").read_bytes()


def dry_run_json(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


# --- bodies captured from kubectl 1.37.1 ------------------------------------------------

# fixture name -> (the command that sent it, the expected decode)
CAPTURED: dict[str, tuple[str, dict[str, Any]]] = {
    "namespace": (
        "kubectl create namespace demo",
        {
            "kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "demo"}, "spec": {},
            "status": {},
        },
    ),
    "configmap": (
        (
            "kubectl create configmap app-config -n team-a --from-literal=a=b "
            "'--from-literal=greeting=hello world' --from-file=blob=blob.bin "
            "--from-file=settings.ini"
        ),
        {
            "kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": "app-config", "namespace": "team-a"},
            "data": {"a": "b", "greeting": "hello world", "settings.ini": "mode=fast\nlevel=3\n"},
            "binaryData": {"blob": "AP8QYmluYXJ5gA=="},
        },
    ),
    "configmap-empty": (
        "kubectl create configmap empty",
        {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "empty"}},
    ),
    "secret-basic-auth": (
        (
            "kubectl create secret generic creds --type=kubernetes.io/basic-auth "
            "--from-literal=username=admin '--from-literal=password=s3cr=t!' "
            "--from-literal=empty="
        ),
        {
            "kind": "Secret", "apiVersion": "v1", "metadata": {"name": "creds"},
            "data": {"empty": "", "password": "czNjcj10IQ==", "username": "YWRtaW4="},
            "type": "kubernetes.io/basic-auth",
        },
    ),
    "secret-opaque": (
        (
            "kubectl create secret generic plain --from-literal=token=ünïcødé "
            "--from-file=key.bin=blob.bin"
        ),
        {
            "kind": "Secret", "apiVersion": "v1", "metadata": {"name": "plain"},
            "data": {"key.bin": "AP8QYmluYXJ5gA==", "token": "w7xuw69jw7hkw6k="},
        },
    ),
    "serviceaccount": (
        "kubectl create serviceaccount robot -n team-a",
        {
            "kind": "ServiceAccount", "apiVersion": "v1",
            "metadata": {"name": "robot", "namespace": "team-a"},
        },
    ),
    "service-nodeport": (
        "kubectl create service nodeport web-np --tcp=443:8443 --node-port=30443",
        {
            "kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "web-np", "labels": {"app": "web-np"}},
            "spec": {
                "ports": [
                    {
                        "name": "443-8443", "protocol": "TCP", "port": 443, "targetPort": 8443,
                        "nodePort": 30443,
                    },
                ],
                "selector": {"app": "web-np"}, "type": "NodePort",
            },
            "status": {"loadBalancer": {}},
        },
    ),
    "service-clusterip": (
        "kubectl create service clusterip api --tcp=80:http --tcp=9090:9090 -n team-a",
        {
            "kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "api", "namespace": "team-a", "labels": {"app": "api"}},
            "spec": {
                "ports": [
                    {"name": "80-http", "protocol": "TCP", "port": 80, "targetPort": "http"},
                    {"name": "9090-9090", "protocol": "TCP", "port": 9090, "targetPort": 9090},
                ],
                "selector": {"app": "api"}, "type": "ClusterIP",
            },
            "status": {"loadBalancer": {}},
        },
    ),
    "pod-debug-copy": (
        (
            "kubectl debug full --copy-to=full-debug --image=busybox:1.36 "
            "--container=debugger --attach=false --share-processes --keep-liveness "
            "--keep-readiness --keep-startup --keep-labels --keep-annotations --same-node "
            "--env=TRACE=1 --custom=custom.json -- sleep 1d"
        ),
        {
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {
                "name": "full-debug", "namespace": "default", "labels": {"app": "full"},
                "annotations": {"note": "overrides"},
            },
            "spec": {
                "volumes": [
                    {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                    {
                        "name": "cfg",
                        "configMap": {
                            "name": "app-config", "items": [{"key": "a", "path": "a.txt"}],
                            "defaultMode": 420,
                        },
                    },
                    {"name": "sec", "secret": {"secretName": "creds", "optional": False}},
                    {
                        "name": "proj",
                        "projected": {
                            "sources": [
                                {
                                    "serviceAccountToken": {
                                        "audience": "api", "expirationSeconds": 3600,
                                        "path": "token",
                                    },
                                },
                                {
                                    "downwardAPI": {
                                        "items": [
                                            {
                                                "path": "labels",
                                                "fieldRef": {"fieldPath": "metadata.labels"},
                                            },
                                        ],
                                    },
                                },
                            ],
                        },
                    },
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data-pvc"}},
                    {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
                    {
                        "name": "eph",
                        "ephemeral": {
                            "volumeClaimTemplate": {
                                "metadata": {"labels": {"type": "scratch"}},
                                "spec": {
                                    "accessModes": ["ReadWriteOnce"],
                                    "selector": {"matchLabels": {"tier": "ssd"}},
                                    "resources": {"requests": {"storage": "1Gi"}},
                                    "storageClassName": "fast",
                                },
                            },
                        },
                    },
                    {
                        "name": "csi",
                        "csi": {
                            "driver": "secrets.example.com", "readOnly": True,
                            "volumeAttributes": {"role": "app"},
                            "nodePublishSecretRef": {"name": "csi-creds"},
                        },
                    },
                    {
                        "name": "dapi",
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "cpu",
                                    "resourceFieldRef": {
                                        "containerName": "full", "resource": "requests.cpu",
                                        "divisor": "0",
                                    },
                                },
                            ],
                            "defaultMode": 292,
                        },
                    },
                    {
                        "name": "img",
                        "image": {
                            "reference": "registry.example/data:v1", "pullPolicy": "IfNotPresent",
                        },
                    },
                ],
                "initContainers": [
                    {
                        "name": "init", "image": "busybox", "command": ["sh", "-c", "true"],
                        "resources": {}, "restartPolicy": "Always",
                    },
                ],
                "containers": [
                    {
                        "name": "full", "image": "registry.example/app:v2", "workingDir": "/srv",
                        "ports": [
                            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                            {"hostPort": 19090, "containerPort": 9090, "protocol": "UDP"},
                        ],
                        "envFrom": [
                            {"configMapRef": {"name": "app-config"}},
                            {"prefix": "S_", "secretRef": {"name": "creds", "optional": True}},
                        ],
                        "env": [
                            {"name": "PLAIN", "value": "1"},
                            {
                                "name": "POD_NAME",
                                "valueFrom": {
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"},
                                },
                            },
                            {
                                "name": "MEM",
                                "valueFrom": {
                                    "resourceFieldRef": {
                                        "containerName": "full", "resource": "limits.memory",
                                        "divisor": "1Mi",
                                    },
                                },
                            },
                            {
                                "name": "PASS",
                                "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}},
                            },
                        ],
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "256Mi"},
                            "requests": {"cpu": "250m", "memory": "64Mi"},
                        },
                        "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
                        "volumeMounts": [
                            {"name": "scratch", "mountPath": "/tmp"},
                            {
                                "name": "cfg", "readOnly": True, "mountPath": "/etc/app",
                                "subPath": "app",
                            },
                            {
                                "name": "eph", "recursiveReadOnly": "Disabled",
                                "mountPath": "/data", "mountPropagation": "HostToContainer",
                            },
                        ],
                        "livenessProbe": {
                            "httpGet": {
                                "path": "/healthz", "port": "http", "scheme": "HTTP",
                                "httpHeaders": [{"name": "X-Probe", "value": "1"}],
                            },
                            "initialDelaySeconds": 3, "periodSeconds": 10,
                        },
                        "readinessProbe": {
                            "tcpSocket": {"port": 8080}, "timeoutSeconds": 2, "failureThreshold": 5,
                        },
                        "startupProbe": {
                            "grpc": {"port": 9090, "service": "health"}, "successThreshold": 1,
                            "terminationGracePeriodSeconds": 10,
                        },
                        "lifecycle": {
                            "postStart": {"exec": {"command": ["echo", "up"]}},
                            "preStop": {
                                "httpGet": {"path": "/stop", "port": 8080, "host": "localhost"},
                            },
                        },
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                        "imagePullPolicy": "Always",
                        "securityContext": {
                            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                            "privileged": False, "seLinuxOptions": {"level": "s0:c123,c456"},
                            "runAsUser": 0, "readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False, "procMount": "Default",
                            "appArmorProfile": {
                                "type": "Localhost", "localhostProfile": "k8s-apparmor",
                            },
                        },
                        "stdin": True, "stdinOnce": True, "tty": True,
                    },
                    {
                        "name": "debugger", "image": "busybox:1.36", "command": ["sleep", "1d"],
                        "env": [{"name": "DEBUG", "value": "1"}, {"name": "TRACE", "value": "1"}],
                        "resources": {"limits": {"memory": "128Mi"}},
                        "terminationMessagePolicy": "File",
                        "securityContext": {"capabilities": {"add": ["NET_RAW"]}, "runAsUser": 0},
                    },
                ],
                "terminationGracePeriodSeconds": 5, "activeDeadlineSeconds": 600,
                "dnsPolicy": "ClusterFirstWithHostNet",
                "nodeSelector": {"disk": "ssd", "zone": "a"}, "serviceAccountName": "robot",
                "automountServiceAccountToken": False, "nodeName": "worker-1", "hostNetwork": True,
                "shareProcessNamespace": True,
                "securityContext": {
                    "runAsUser": 1000, "runAsGroup": 3000, "runAsNonRoot": True,
                    "supplementalGroups": [4000, 5000], "fsGroup": 2000,
                    "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}],
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "imagePullSecrets": [{"name": "regcred"}], "hostname": "full-0", "subdomain": "svc",
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {
                                            "key": "kubernetes.io/arch", "operator": "In",
                                            "values": ["amd64", "arm64"],
                                        },
                                    ],
                                },
                            ],
                        },
                    },
                    "podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {
                                "weight": 50,
                                "podAffinityTerm": {
                                    "labelSelector": {"matchLabels": {"app": "full"}},
                                    "topologyKey": "kubernetes.io/hostname",
                                },
                            },
                        ],
                    },
                },
                "schedulerName": "custom",
                "tolerations": [
                    {
                        "key": "dedicated", "operator": "Equal", "value": "gpu",
                        "effect": "NoSchedule",
                    },
                    {
                        "key": "node.kubernetes.io/not-ready", "operator": "Exists",
                        "effect": "NoExecute", "tolerationSeconds": 300,
                    },
                ],
                "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}],
                "priorityClassName": "low", "priority": -5,
                "dnsConfig": {
                    "nameservers": ["1.1.1.1"], "searches": ["svc.local"],
                    "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
                },
                "readinessGates": [{"conditionType": "example.com/ready"}],
                "runtimeClassName": "gvisor", "enableServiceLinks": False,
                "preemptionPolicy": "Never", "overhead": {"cpu": "10m"},
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                        "labelSelector": {
                            "matchExpressions": [{"key": "app", "operator": "Exists"}],
                        },
                    },
                ],
                "setHostnameAsFQDN": True, "os": {"name": "linux"}, "hostUsers": False,
                "schedulingGates": [{"name": "example.com/gate"}],
                "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "gpu-template"}],
            },
            "status": {},
        },
    ),
    "pod-debug-node": (
        (
            "kubectl debug node/worker-1 --image=busybox:1.36 --attach=false "
            "--profile=sysadmin"
        ),
        {
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {
                "name": "node-debugger-worker-1-lw52j",
                "labels": {"app.kubernetes.io/managed-by": "kubectl-debug"},
            },
            "spec": {
                "volumes": [{"name": "host-root", "hostPath": {"path": "/"}}],
                "containers": [
                    {
                        "name": "debugger", "image": "busybox:1.36", "resources": {},
                        "volumeMounts": [{"name": "host-root", "mountPath": "/host"}],
                        "terminationMessagePolicy": "File", "securityContext": {"privileged": True},
                    },
                ],
                "restartPolicy": "Never", "nodeName": "worker-1", "hostNetwork": True,
                "hostPID": True, "hostIPC": True, "tolerations": [{"operator": "Exists"}],
            },
            "status": {},
        },
    ),
}


# apps/v1 and rbac.authorization.k8s.io/v1 generators: fixture name -> the command.  Each body's
# expected decode is <name>.json, that command's `--dry-run=client -o json` output.
DRY_RUN: dict[str, str] = {
    "deployment": "kubectl create deployment web --image=nginx:1.27",
    "deployment-replicas-port": (
        "kubectl create deployment api -n team-a --image=registry.example/api:v2 --replicas=3 "
        "--port=8080"
    ),
    "deployment-multi-image": (
        "kubectl create deployment pair --image=nginx:1.27 --image=busybox:1.36"
    ),
    "deployment-command": (
        "kubectl create deployment sleeper --image=busybox:1.36 --replicas=0 -- sleep 3600"
    ),
    "role": (
        "kubectl create role pod-reader -n team-a --verb=get,list,watch "
        "--resource=pods,pods/status,deployments.apps"
    ),
    "role-resource-names": (
        "kubectl create role cm-editor --verb=get,update,patch --resource=configmaps "
        "--resource-name=settings --resource-name=flags"
    ),
    "clusterrole": (
        "kubectl create clusterrole reader --verb=get "
        "--resource=namespaces,roles.rbac.authorization.k8s.io --non-resource-url=/healthz "
        "'--non-resource-url=/logs/*'"
    ),
    "clusterrole-aggregated": (
        "kubectl create clusterrole monitoring "
        "--aggregation-rule=rbac.example.com/aggregate-to-monitoring=true,tier=ops"
    ),
    "rolebinding": (
        "kubectl create rolebinding readers -n team-a --role=pod-reader --user=alice "
        "--group=devs --serviceaccount=team-a:robot"
    ),
    "rolebinding-clusterrole": "kubectl create rolebinding viewers --clusterrole=view --user=bob",
    "clusterrolebinding": (
        "kubectl create clusterrolebinding root --clusterrole=cluster-admin --user=root "
        "--group=system:masters --serviceaccount=kube-system:default"
    ),
    "clusterrolebinding-no-subjects": (
        "kubectl create clusterrolebinding empty --clusterrole=view"
    ),
}
CAPTURED.update({name: (command, dry_run_json(name)) for name, command in DRY_RUN.items()})


# --- bodies no kubectl generator sends, built by hand ---------------------------------------

T0 = 1714979289  # 2024-05-06T07:08:09Z
T1 = 1714979349  # 2024-05-06T07:09:09Z
GO_ZERO_TIME = -62135596800  # 0001-01-01T00:00:00Z, time.Time{}

REFERENCE = b"".join([
    text(1, "Pod"), text(2, "default"), text(3, "web"), text(4, "5f0c-uid"), text(5, "v1"),
    text(6, "42"), text(7, "spec.containers{web}"),
])

EVENT = b"".join([
    meta(text(1, "web.17c"), text(3, "default"), stamp(8, T0)),
    msg(2, REFERENCE),
    text(3, "Pulled"),
    text(4, 'Successfully pulled image "nginx"'),
    msg(5, text(1, "kubelet"), text(2, "worker-1")),
    stamp(6, T0),
    stamp(7, T1, 999),  # metav1.Time drops the nanoseconds
    num(8, 3),
    text(9, "Normal"),
    stamp(10, T1, 123456789),  # MicroTime keeps microseconds, truncating the rest
    msg(11, num(1, 2), stamp(2, T1, 500)),
    text(12, "Pulling"),
    msg(13, text(1, "Node"), text(3, "worker-1")),
    text(14, "kubelet"),
    text(15, "worker-1"),
])

EVENT_JSON: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "v1",
    "metadata": {"name": "web.17c", "namespace": "default",
                 "creationTimestamp": "2024-05-06T07:08:09Z"},
    "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "5f0c-uid",
                       "apiVersion": "v1", "resourceVersion": "42",
                       "fieldPath": "spec.containers{web}"},
    "reason": "Pulled",
    "message": 'Successfully pulled image "nginx"',
    "source": {"component": "kubelet", "host": "worker-1"},
    "firstTimestamp": "2024-05-06T07:08:09Z",
    "lastTimestamp": "2024-05-06T07:09:09Z",
    "count": 3,
    "type": "Normal",
    "eventTime": "2024-05-06T07:09:09.123456Z",
    "series": {"count": 2, "lastObservedTime": "2024-05-06T07:09:09.000000Z"},
    "action": "Pulling",
    "related": {"kind": "Node", "name": "worker-1"},
    "reportingComponent": "kubelet",
    "reportingInstance": "worker-1",
}

# Only a name: the fields without omitempty still appear, as zero values or null.
BARE_EVENT = meta(text(1, "bare"))
BARE_EVENT_JSON: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "v1",
    "metadata": {"name": "bare"},
    "involvedObject": {},
    "source": {},
    "firstTimestamp": None,
    "lastTimestamp": None,
    "eventTime": None,
    "reportingComponent": "",
    "reportingInstance": "",
}

SERVICE = b"".join([
    meta(text(1, "web-lb"), text(3, "default"), entry(11, "app", text(2, "web"))),
    msg(2,
        msg(1, text(1, "https"), text(2, "TCP"), num(3, 443),
            msg(4, num(1, 1), text(3, "https")), num(5, 30443), text(6, "kubernetes.io/h2c")),
        msg(1, text(1, "metrics"), text(2, "TCP"), num(3, 9090), msg(4, num(2, 9091))),
        entry(2, "app", text(2, "web")),
        entry(2, "tier", text(2, "frontend")),
        text(3, "10.96.0.10"),
        text(4, "LoadBalancer"),
        text(5, "192.0.2.1"),
        text(7, "ClientIP"),
        text(8, ""),
        text(9, "10.0.0.0/8"),
        text(10, ""),
        text(11, "Local"),
        num(12, 31000),
        num(13, 0),
        msg(14, msg(1, num(1, 600))),
        text(17, "SingleStack"),
        text(18, "10.96.0.10"),
        text(19, "IPv4"),
        num(20, 0),
        text(22, "Cluster")),
    msg(3,
        msg(1, msg(1, text(1, "192.0.2.10"), text(2, ""), text(3, "VIP"),
                   msg(4, num(1, 443), text(2, "TCP"))),
            msg(1, text(2, "lb.example.com"), msg(4, num(1, 80), text(2, "TCP"),
                                                  text(3, "PortUnavailable")))),
        msg(2, text(1, "Ready"), text(2, "True"), num(3, 0), stamp(4, T0),
            text(5, "Provisioned"), text(6, ""))),
])

SERVICE_JSON: dict[str, Any] = {
    "kind": "Service",
    "apiVersion": "v1",
    "metadata": {"name": "web-lb", "namespace": "default", "labels": {"app": "web"}},
    "spec": {
        "ports": [
            {"name": "https", "protocol": "TCP", "appProtocol": "kubernetes.io/h2c", "port": 443,
             "targetPort": "https", "nodePort": 30443},
            {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": 9091},
        ],
        "selector": {"app": "web", "tier": "frontend"},
        "clusterIP": "10.96.0.10",
        "clusterIPs": ["10.96.0.10"],
        "type": "LoadBalancer",
        "externalIPs": ["192.0.2.1"],
        "sessionAffinity": "ClientIP",
        "loadBalancerSourceRanges": ["10.0.0.0/8"],
        "externalTrafficPolicy": "Local",
        "healthCheckNodePort": 31000,
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "allocateLoadBalancerNodePorts": False,
        "internalTrafficPolicy": "Cluster",
    },
    "status": {
        "loadBalancer": {"ingress": [
            {"ip": "192.0.2.10", "ipMode": "VIP", "ports": [{"port": 443, "protocol": "TCP"}]},
            {"hostname": "lb.example.com",
             "ports": [{"port": 80, "protocol": "TCP", "error": "PortUnavailable"}]},
        ]},
        "conditions": [{"type": "Ready", "status": "True",
                        "lastTransitionTime": "2024-05-06T07:08:09Z",
                        "reason": "Provisioned", "message": ""}],
    },
}

ENDPOINTS = b"".join([
    meta(text(1, "web"), text(3, "default")),
    msg(2,
        msg(1, text(1, "10.0.0.7"), text(3, "web-0"), text(4, "worker-1"),
            msg(2, REFERENCE)),
        msg(1, text(1, "10.0.0.8")),
        msg(2, text(1, "10.0.0.9"), text(4, "")),
        msg(3, text(1, "http"), num(2, 8080), text(3, "TCP"), text(4, "http")),
        msg(3, num(2, 9090), text(3, "UDP"))),
])

ENDPOINTS_JSON: dict[str, Any] = {
    "kind": "Endpoints",
    "apiVersion": "v1",
    "metadata": {"name": "web", "namespace": "default"},
    "subsets": [{
        "addresses": [
            {"ip": "10.0.0.7", "hostname": "web-0", "nodeName": "worker-1",
             "targetRef": EVENT_JSON["involvedObject"]},
            {"ip": "10.0.0.8"},
        ],
        "notReadyAddresses": [{"ip": "10.0.0.9", "nodeName": ""}],
        "ports": [
            {"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"},
            {"port": 9090, "protocol": "UDP"},
        ],
    }],
}

POD = b"".join([
    meta(text(1, "web-0"), text(3, "default"),
         msg(13, text(1, "ReplicaSet"), text(3, "web"), text(4, "rs-uid"), text(5, "apps/v1"),
             num(6, 1), num(7, 1)),
         text(14, "example.com/cleanup"),
         msg(17, text(1, "kubectl"), text(2, "Update"), text(3, "v1"), stamp(4, T0),
             text(6, "FieldsV1"), msg(7, blob(1, b'{"f:spec":{"f:containers":{}}}')))),
    msg(2,
        msg(2, text(1, "app"), text(2, "nginx"), msg(8)),
        msg(34, msg(1, text(1, "debug"), text(2, "busybox"), msg(8), num(16, 1)), text(2, "app")),
        num(25, -5),
        # supplementalGroups split between a packed run and a plain element
        msg(14, blob(4, varint(4000) + varint(5000)), num(4, 6000), num(2, 1000))),
    msg(3,
        text(1, "Running"),
        msg(2, text(1, "Ready"), text(2, "True"), msg(3), stamp(4, T0)),
        text(5, "192.168.1.5"),
        text(6, "10.0.0.7"),
        msg(12, text(1, "10.0.0.7")),
        stamp(7, T0),
        msg(8, text(1, "app"),
            msg(2, msg(2, stamp(1, T0))),
            msg(3, msg(3, num(1, 137), text(3, "OOMKilled"), stamp(5, 1714975200),
                       stamp(6, 1714978800))),
            num(4, 1), num(5, 2), text(6, "nginx"), text(7, "sha256:abc"), num(9, 1),
            entry(10, "memory", msg(2, text(1, "64Mi")))),
        text(9, "Burstable")),
])

POD_JSON: dict[str, Any] = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {
        "name": "web-0",
        "namespace": "default",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                             "uid": "rs-uid", "controller": True,
                             "blockOwnerDeletion": True}],
        "finalizers": ["example.com/cleanup"],
        "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                           "time": "2024-05-06T07:08:09Z", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:spec": {"f:containers": {}}}}],
    },
    "spec": {
        "containers": [{"name": "app", "image": "nginx", "resources": {}}],
        "ephemeralContainers": [{"name": "debug", "image": "busybox", "resources": {},
                                 "stdin": True, "targetContainerName": "app"}],
        "securityContext": {"runAsUser": 1000, "supplementalGroups": [4000, 5000, 6000]},
        "priority": -5,
    },
    "status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None,
                        "lastTransitionTime": "2024-05-06T07:08:09Z"}],
        "hostIP": "192.168.1.5",
        "podIP": "10.0.0.7",
        "podIPs": [{"ip": "10.0.0.7"}],
        "startTime": "2024-05-06T07:08:09Z",
        "containerStatuses": [{
            "name": "app",
            "state": {"running": {"startedAt": "2024-05-06T07:08:09Z"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                         "startedAt": "2024-05-06T06:00:00Z",
                                         "finishedAt": "2024-05-06T07:00:00Z"}},
            "ready": True,
            "restartCount": 2,
            "image": "nginx",
            "imageID": "sha256:abc",
            "started": True,
            "allocatedResources": {"memory": "64Mi"},
        }],
        "qosClass": "Burstable",
    },
}

BUILT = {
    "event": (EVENT, EVENT_JSON),
    "bare-event": (BARE_EVENT, BARE_EVENT_JSON),
    "service-with-status": (SERVICE, SERVICE_JSON),
    "endpoints": (ENDPOINTS, ENDPOINTS_JSON),
    "pod-with-status": (POD, POD_JSON),
}


SECRET = b"".join([
    meta(text(1, "settings"), text(2, "settings-"), entry(12, "note", text(2, "kept"))),
    num(5, 0),
    entry(2, "raw", blob(2, b"\x00\x01")),
    entry(2, "empty", b""),  # a map entry without a value holds the zero value
    entry(4, "plain", text(2, "text")),
    text(3, "Opaque"),
])

SECRET_JSON: dict[str, Any] = {
    "kind": "Secret",
    "apiVersion": "v1",
    "metadata": {"name": "settings", "generateName": "settings-",
                 "annotations": {"note": "kept"}},
    "immutable": False,
    "data": {"empty": "", "raw": "AAE="},
    "stringData": {"plain": "text"},
    "type": "Opaque",
}

BUILT["secret-string-data"] = (SECRET, SECRET_JSON)


# A Deployment as a controller would report it: what `kubectl create deployment` never sends.
DEPLOYMENT = b"".join([
    meta(text(1, "web"), text(3, "default"), num(7, 3), entry(11, "app", text(2, "web"))),
    msg(2,
        num(1, 2),
        msg(2, entry(1, "app", text(2, "web")),
            msg(2, text(1, "tier"), text(2, "In"), text(3, "web"), text(3, "api")),
            msg(2, text(1, "canary"), text(2, "DoesNotExist"))),
        msg(3, meta(entry(11, "app", text(2, "web"))),
            msg(2, msg(2, text(1, "app"), text(2, "nginx:1.27"), msg(8)))),
        msg(4, text(1, "RollingUpdate"),
            msg(2, msg(1, num(1, 0), num(2, 0)), msg(2, num(1, 1), text(3, "25%")))),
        num(5, 0),  # omitempty: dropped
        num(6, 0),  # a pointer: kept
        num(7, 1),
        num(9, 600)),
    msg(3,
        num(1, 3), num(2, 2), num(3, 2), num(7, 1), num(4, 1), num(5, 1), num(9, 0),
        msg(6, text(1, "Available"), text(2, "False"), stamp(6, T0), stamp(7, T1),
            text(4, "MinimumReplicasUnavailable"),
            text(5, "Deployment does not have minimum availability.")),
        msg(6, text(1, "Progressing"), text(2, "True"))),
])

DEPLOYMENT_JSON: dict[str, Any] = {
    "kind": "Deployment",
    "apiVersion": "apps/v1",
    "metadata": {"name": "web", "namespace": "default", "generation": 3,
                 "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"},
                     "matchExpressions": [{"key": "tier", "operator": "In",
                                           "values": ["web", "api"]},
                                          {"key": "canary", "operator": "DoesNotExist"}]},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                              "resources": {}}]}},
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
        "revisionHistoryLimit": 0,
        "paused": True,
        "progressDeadlineSeconds": 600,
    },
    "status": {
        "observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 1,
        "availableReplicas": 1, "unavailableReplicas": 1, "terminatingReplicas": 0,
        "conditions": [
            {"type": "Available", "status": "False",
             "lastUpdateTime": "2024-05-06T07:08:09Z",
             "lastTransitionTime": "2024-05-06T07:09:09Z",
             "reason": "MinimumReplicasUnavailable",
             "message": "Deployment does not have minimum availability."},
            {"type": "Progressing", "status": "True", "lastUpdateTime": None,
             "lastTransitionTime": None},
        ],
    },
}

# Only a name: the selector pointer and the containers slice have no omitempty.
BARE_DEPLOYMENT_JSON: dict[str, Any] = {
    "kind": "Deployment",
    "apiVersion": "apps/v1",
    "metadata": {"name": "bare"},
    "spec": {"selector": None, "template": {"metadata": {}, "spec": {"containers": None}},
             "strategy": {}},
    "status": {},
}

CLUSTER_ROLE = b"".join([
    meta(text(1, "edit-all")),
    msg(2, text(1, "*")),
    msg(2, text(1, "get"), text(1, "list"), text(2, ""), text(2, "apps"), text(3, "deployments"),
        text(3, "deployments/scale"), text(4, "web"), text(5, "/metrics")),
    msg(2),  # verbs has no omitempty
    msg(3, msg(1, entry(1, "a", text(2, "b"))),
        msg(1, msg(2, text(1, "tier"), text(2, "NotIn"), text(3, "db")))),
])

CLUSTER_ROLE_JSON: dict[str, Any] = {
    "kind": "ClusterRole",
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "metadata": {"name": "edit-all"},
    "rules": [
        {"verbs": ["*"]},
        {"verbs": ["get", "list"], "apiGroups": ["", "apps"],
         "resources": ["deployments", "deployments/scale"], "resourceNames": ["web"],
         "nonResourceURLs": ["/metrics"]},
        {"verbs": None},
    ],
    "aggregationRule": {"clusterRoleSelectors": [
        {"matchLabels": {"a": "b"}},
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]},
    ]},
}

# A subject without a name, a binding without a roleRef: both render their untagged fields.
BARE_BINDING = b"".join([meta(text(1, "bare")), msg(2, text(1, "User"))])

BARE_BINDING_JSON: dict[str, Any] = {
    "kind": "ClusterRoleBinding",
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "metadata": {"name": "bare"},
    "subjects": [{"kind": "User", "name": ""}],
    "roleRef": {"apiGroup": "", "kind": "", "name": ""},
}

BUILT.update({
    "deployment-with-status": (DEPLOYMENT, DEPLOYMENT_JSON),
    "bare-deployment": (meta(text(1, "bare")), BARE_DEPLOYMENT_JSON),
    "clusterrole-every-field": (CLUSTER_ROLE, CLUSTER_ROLE_JSON),
    "bare-clusterrolebinding": (BARE_BINDING, BARE_BINDING_JSON),
    "bare-role": (meta(text(1, "bare")), {
        "kind": "Role", "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "bare"}, "rules": None,
    }),
})


# authentication.k8s.io/v1 TokenRequest (kubectl create token): no dry run exists, so the
# expected dicts follow the Go struct tags — audiences, expirationSeconds and boundObjectRef
# have no omitempty (null when unset), status is a struct (always there).
_TOKEN_STATUS = {"token": "", "expirationTimestamp": None}
CAPTURED.update({
    "tokenrequest": ("kubectl create token bot -n default", {
        "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "metadata": {},
        "spec": {"audiences": None, "expirationSeconds": None, "boundObjectRef": None},
        "status": _TOKEN_STATUS}),
    "tokenrequest-duration": ("kubectl create token bot -n default --duration 20m", {
        "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "metadata": {},
        "spec": {"audiences": None, "expirationSeconds": 1200, "boundObjectRef": None},
        "status": _TOKEN_STATUS}),
    "tokenrequest-bound": (
        "kubectl create token bot -n default --audience https://a.example.com --audience vault "
        "--bound-object-kind Pod --bound-object-name runner-0 "
        "--bound-object-uid 0b6c9c0e-1f7e-4d2b-9d4a-6f1f7f3c2a10", {
            "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "metadata": {},
            "spec": {"audiences": ["https://a.example.com", "vault"],
                     "expirationSeconds": None,
                     "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "runner-0",
                                        "uid": "0b6c9c0e-1f7e-4d2b-9d4a-6f1f7f3c2a10"}},
            "status": _TOKEN_STATUS}),
})

# networking.k8s.io/v1 NetworkPolicy: no kubectl command sends one as protobuf.
NETWORK_POLICY = b"".join([
    meta(text(1, "db"), text(3, "team-a")),
    msg(2,
        msg(1, entry(1, "app", text(2, "db"))),
        msg(2,
            msg(1, text(1, "TCP"), msg(2, num(2, 5432))),
            msg(1, msg(2, num(1, 1), text(3, "metrics"))),
            msg(2, msg(1, entry(1, "app", text(2, "api"))), msg(2))),
        msg(3,
            msg(1, text(1, "UDP"), msg(2, num(2, 53)), num(3, 60)),
            msg(2, msg(3, text(1, "10.0.0.0/8"), text(2, "10.1.0.0/16")))),
        text(4, "Ingress"), text(4, "Egress")),
])
BUILT.update({
    "networkpolicy": (NETWORK_POLICY, {
        "kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1",
        "metadata": {"name": "db", "namespace": "team-a"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [{"ports": [{"protocol": "TCP", "port": 5432}, {"port": "metrics"}],
                         "from": [{"podSelector": {"matchLabels": {"app": "api"}},
                                   "namespaceSelector": {}}]}],
            "egress": [{"ports": [{"protocol": "UDP", "port": 53, "endPort": 60}],
                        "to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}],
            "policyTypes": ["Ingress", "Egress"]}}),
    "bare-networkpolicy": (meta(text(1, "bare")), {
        "kind": "NetworkPolicy", "apiVersion": "networking.k8s.io/v1",
        "metadata": {"name": "bare"}, "spec": {"podSelector": {}}}),
})


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_captured_kubectl_body(name: str) -> None:
    _command, expected = CAPTURED[name]
    assert decode_object(fixture(name)) == expected


def test_every_fixture_is_checked() -> None:
    assert {path.stem for path in FIXTURES.glob("*.bin")} == set(CAPTURED)
    assert {path.stem for path in FIXTURES.glob("*.json")} == set(DRY_RUN)


@pytest.mark.parametrize("name", sorted(DRY_RUN))
def test_decode_renders_keys_in_kubectl_order(name: str) -> None:
    # Dict equality ignores order; kubectl's JSON follows the Go structs' field order.
    assert json.dumps(decode_object(fixture(name))) == json.dumps(dry_run_json(name))


@pytest.mark.parametrize("name", sorted(BUILT))
def test_built_body(name: str) -> None:
    raw, expected = BUILT[name]
    assert decode_object(envelope(raw, expected["kind"], expected["apiVersion"])) == expected


def test_keys_come_out_in_go_struct_order() -> None:
    pod = decode_object(fixture("pod-debug-node"))
    assert list(pod) == ["kind", "apiVersion", "metadata", "spec", "status"]
    assert list(pod["spec"]["containers"][0]) == [
        "name", "image", "resources", "volumeMounts", "terminationMessagePolicy",
        "securityContext",
    ]


def test_accepts_bytearray_and_memoryview() -> None:
    body = fixture("namespace")
    assert decode_object(bytearray(body)) == decode_object(memoryview(body)) == {
        "kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "demo"},
        "spec": {}, "status": {},
    }


def test_repeated_singular_message_merges_and_last_scalar_wins() -> None:
    raw = (meta(text(1, "first"), entry(11, "a", text(2, "1")))
           + meta(text(1, "second"), entry(11, "b", text(2, "2")), entry(11, "a", text(2, "3"))))
    assert decode_object(envelope(raw, "ConfigMap"))["metadata"] == {
        "name": "second", "labels": {"a": "3", "b": "2"},
    }


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    unknown = (num(999, 7) + varint(1000 << 3 | 1) + bytes(8) + varint(1001 << 3 | 5) + bytes(4)
               + blob(1002, b"\xff\xff\xff"))
    raw = unknown + meta(unknown, text(1, "demo"), unknown) + unknown
    assert decode_object(envelope(raw, "ServiceAccount")) == {
        "kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "demo"},
    }
    # The envelope may carry unknown fields too.
    assert decode_object(envelope(raw, "ServiceAccount") + num(77, 1))["metadata"] == {
        "name": "demo"
    }


def test_integers_follow_go_field_widths() -> None:
    def spec(*parts: bytes) -> dict[str, Any]:
        spec: dict[str, Any] = decode_object(envelope(msg(2, *parts), "Pod"))["spec"]
        return spec

    assert spec(num(25, -5))["priority"] == -5  # int32 sent as a 10-byte varint
    assert spec(num(25, (1 << 32) + 7))["priority"] == 7  # Go keeps the low 32 bits
    assert spec(num(25, 0x80000000))["priority"] == -(1 << 31)
    assert spec(num(4, -1))["terminationGracePeriodSeconds"] == -1
    assert spec(num(4, 0))["terminationGracePeriodSeconds"] == 0  # pointer: zero is kept
    assert "hostNetwork" not in spec(num(11, 0))  # omitempty bool
    assert spec(num(11, 2))["hostNetwork"] is True


def test_times() -> None:
    def metadata(*parts: bytes) -> dict[str, Any]:
        body = envelope(meta(text(1, "t"), *parts), "Namespace")
        result: dict[str, Any] = decode_object(body)["metadata"]
        return result

    # creationTimestamp is omitzero: Go's zero time and an empty message both vanish.
    assert metadata(stamp(8, GO_ZERO_TIME)) == {"name": "t"}
    assert metadata(msg(8)) == {"name": "t"}
    # deletionTimestamp is a pointer: set but zero renders null.
    assert metadata(msg(9))["deletionTimestamp"] is None
    assert metadata(stamp(9, 0))["deletionTimestamp"] == "1970-01-01T00:00:00Z"
    assert metadata(stamp(8, -30641760000))["creationTimestamp"] == "0999-01-01T00:00:00Z"
    assert metadata(stamp(8, T0, 999_999_999))["creationTimestamp"] == "2024-05-06T07:08:09Z"


def test_micro_times() -> None:
    def event_time(*parts: bytes) -> Any:
        return decode_object(envelope(msg(10, *parts), "Event"))["eventTime"]

    assert event_time(num(1, T0), num(2, 1999)) == "2024-05-06T07:08:09.000001Z"
    assert event_time(num(1, T0), num(2, -1999)) == "2024-05-06T07:08:08.999999Z"
    assert event_time(num(1, GO_ZERO_TIME)) is None
    assert event_time() is None


def test_map_entries_with_missing_parts() -> None:
    raw = meta(msg(11, text(2, "no-key")), msg(11, text(1, "no-value")))
    assert decode_object(envelope(raw, "ConfigMap"))["metadata"]["labels"] == {
        "": "no-key", "no-value": "",
    }
    container = msg(2, text(1, "c"), msg(8, msg(1, text(1, "cpu"))))
    assert decode_object(_pod_spec(container))["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "0"},
    }


def test_protobuf_error_is_a_value_error() -> None:
    assert issubclass(ProtobufError, ValueError)


MALFORMED = {
    "empty body": (b"", r"must start with b'k8s\\x00', got b''"),
    "json body": (b'{"kind": "Pod"}', r"must start with b'k8s\\x00', got b'{\"ki'"),
    "bad magic": (b"k8s\x01" + fixture("namespace")[4:], r"must start with"),
    "truncated varint": (MAGIC + b"\x0a\x80", r"^truncated varint at offset 5$"),
    "truncated key": (MAGIC + b"\x80", r"^truncated varint at offset 4$"),
    "truncated length-delimited": (
        MAGIC + b"\x0a\x05ab",
        r"^truncated length-delimited field 1 at offset 4: needs 5 bytes, 2 left$",
    ),
    "truncated 64-bit": (MAGIC + varint(9 << 3 | 1) + bytes(3), r"^truncated 64-bit field 9"),
    "truncated 32-bit": (MAGIC + varint(9 << 3 | 5) + bytes(3), r"^truncated 32-bit field 9"),
    "varint too long": (MAGIC + b"\x08" + b"\xff" * 10 + b"\x01",
                        r"^varint longer than 10 bytes at offset 5$"),
    "varint overflow": (MAGIC + b"\x08" + b"\xff" * 9 + b"\x7f",
                        r"^varint overflows 64 bits at offset 5$"),
    "group": (MAGIC + varint(1 << 3 | 3), r"^unsupported wire type 3 at offset 4$"),
    "wire type 7": (MAGIC + varint(1 << 3 | 7), r"^unsupported wire type 7 at offset 4$"),
    "field zero": (MAGIC + b"\x02\x00", r"^invalid field number 0 at offset 4$"),
    "unsupported kind": (envelope(b"", "Lease", "coordination.k8s.io/v1"),
                         r"^unsupported kind coordination.k8s.io/v1 Lease in protobuf body$"),
    "kind of another group": (envelope(b"", "Deployment", "v1"),
                              r"^unsupported kind v1 Deployment in protobuf body$"),
    "unsupported version": (envelope(b"", "Pod", "v2"), r"^unsupported kind v2 Pod in"),
    "no kind": (MAGIC, r"^unsupported kind <no apiVersion> <no kind> in protobuf body$"),
    "content encoding": (envelope(b"", "Pod") + text(3, "gzip"),
                         r"^unsupported content encoding 'gzip' in protobuf body$"),
    "raw is a varint": (MAGIC + msg(1, text(1, "v1"), text(2, "Pod")) + num(2, 1),
                        r"^Unknown.raw \(field 2\) at offset \d+ is varint, expected"),
    "string sent as varint": (
        envelope(meta(num(1, 5)), "Namespace"),
        r"^ObjectMeta.name \(field 1\) at offset \d+ is varint, expected length-delimited$",
    ),
    "bool sent as bytes": (_pod_spec(text(11, "yes")),
                           r"^PodSpec.hostNetwork \(field 11\) at offset \d+ is length-delimited"),
    "truncated nested message": (envelope(meta(b"\x0a\x09abc"), "Namespace"),
                                 r"^truncated length-delimited field 1 at offset \d+: needs 9"),
    "truncated packed varint": (_pod_spec(msg(14, blob(4, b"\x81"))), r"^truncated varint"),
    "unknown int-or-string type": (
        _pod_spec(msg(2, text(1, "c"), msg(10, msg(1, msg(2, msg(2, num(1, 2))))))),
        r"^IntOrString at offset \d+ has unknown type 2$",
    ),
    "FieldsV1 not JSON": (
        envelope(meta(msg(17, msg(7, blob(1, b"{nope")))), "ConfigMap"),
        r"^FieldsV1 at offset \d+ is not valid JSON$",
    ),
    "empty quantity": (_pod_spec(entry(32, "cpu", msg(2))),
                       r"^quantity at offset \d+ has no value$"),
    "time out of range": (envelope(meta(stamp(8, 1 << 62)), "Namespace"),
                          r"^timestamp at offset \d+ is out of range$"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_body(name: str) -> None:
    body, message = MALFORMED[name]
    with pytest.raises(ProtobufError, match=message):
        decode_object(body)


def decodes_or_rejects(body: bytes) -> bool:
    """True if the body decodes, False if ProtobufError rejects it; anything else propagates."""
    try:
        result = decode_object(body)
    except ProtobufError:
        return False
    assert isinstance(result, dict)
    return True


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_every_truncation_of_a_capture_fails_cleanly(name: str) -> None:
    body = fixture(name)
    well_formed = [cut for cut in range(len(body)) if decodes_or_rejects(body[:cut])]
    # Only cuts between envelope fields (after typeMeta, after raw, after contentEncoding)
    # leave a well-formed body.
    assert len(well_formed) <= 3


def _any_message() -> st.SearchStrategy[bytes]:
    numbers = st.integers(1, 45)
    leaf = st.one_of(
        st.builds(num, numbers, st.integers(-(1 << 63), (1 << 64) - 1)),
        st.builds(text, numbers, st.text(max_size=6)),
        st.builds(lambda n, b: varint(n << 3 | 5) + b, numbers, st.binary(min_size=4, max_size=4)),
    )
    return st.recursive(
        st.lists(leaf, max_size=5).map(b"".join),
        lambda inner: st.lists(st.one_of(leaf, st.builds(blob, numbers, inner)),
                               max_size=5).map(b"".join),
        max_leaves=30,
    )


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_after_magic_only_raise_protobuf_error(tail: bytes) -> None:
    decodes_or_rejects(MAGIC + tail)


@FUZZ
@given(st.sampled_from(sorted(SUPPORTED_KINDS)), _any_message())
def test_well_formed_wire_data_of_any_shape_only_raises_protobuf_error(
    kind: tuple[str, str], raw: bytes
) -> None:
    decodes_or_rejects(envelope(raw, kind[1], kind[0]))


@FUZZ
@given(st.sampled_from(sorted(CAPTURED)), st.data())
def test_mutated_captures_only_raise_protobuf_error(name: str, data: st.DataObject) -> None:
    body = bytearray(fixture(name))
    for _ in range(data.draw(st.integers(1, 4))):
        body[data.draw(st.integers(len(MAGIC), len(body) - 1))] = data.draw(st.integers(0, 255))
    decodes_or_rejects(bytes(body))


_BUILTIN_TYPES = {
    "string", "int32", "int64", "bool", "bytes",
    "Time", "MicroTime", "Quantity", "IntOrString", "FieldsV1", "ExtraValue",
}


def test_schema_is_closed_consistent_and_acyclic() -> None:
    tables = protobuf.MESSAGES
    assert {kind for _version, kind in SUPPORTED_KINDS} <= set(tables)
    for message, fields in tables.items():
        names = [spec[0] for spec in fields.values() if spec[0]]
        assert len(names) == len(set(names)), message
        for number, (json_name, type_, flags) in fields.items():
            where = f"{message}.{number}"
            assert 0 < number < 1 << 29, where
            assert type_ in tables or type_ in _BUILTIN_TYPES, where
            assert flags in {"", "p", "z", "k", "n", "^", "*", "*n", "%"}, where
            assert (flags == "^") == (json_name == ""), where
            assert flags != "^" or type_ in tables, where

    finished: set[str] = set()

    def visit(message: str, path: tuple[str, ...]) -> None:
        assert message not in path, " -> ".join((*path, message))
        if message not in finished:
            for _json_name, type_, _flags in tables[message].values():
                if type_ in tables:
                    visit(type_, (*path, message))
            finished.add(message)

    for _version, kind in SUPPORTED_KINDS:
        visit(kind, ())


def test_message_names_must_be_unique_across_groups() -> None:
    with pytest.raises(ValueError, match=r"^protobuf message Deployment is defined by two API"):
        protobuf.merge_messages(protobuf_apps.MESSAGES, protobuf_apps.MESSAGES)
