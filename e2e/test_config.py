"""config/ against the local API server and the operator as a process.

* Every manifest applies with the real kubectl (``apply -k config/default`` on a server that
  serves no monitoring CRDs, as a plain cluster, then ``config/samples``; then the Prometheus
  Operator's CRDs and ``config/monitored``, which adds only config/prometheus's objects) and
  ``kubectl get`` finds each object.
* RBAC: the operator runs with the Deployment's own arguments and environment (upstream's
  variables) against a server that records every request by client; the sample sessions of
  both backends (shaped as upstream's backend creates them) go through create → Running →
  drift → token refresh → stop → restart → delete. Every (group, resource, verb) the operator
  called must be granted by the ClusterRole or the Roles in its namespace, and every grant must
  have been used — except those in ``UNUSED_GRANTS`` (the runner Role's, which the operator
  holds only to grant them), which must stay granted and unused, and those in
  ``RETRY_GRANTS`` (used only when a retry finds an object an earlier attempt made), which
  must be granted.
* Metrics: every metric name the PrometheusRule and the Grafana dashboard reference is in the
  operator's /metrics, scraped during the same run over HTTPS as Prometheus scrapes it: with
  the token of a ServiceAccount bound to config/rbac's metrics-reader ClusterRole (the
  operator's TokenReview and SubjectAccessReview are among the requests checked above).
* The Dockerfile is linted statically (no container runtime here).

One API server process (kubelet and KubeVirt simulators, admin port) serves the whole module;
the tests that use it are ``local_only``, the static ones run against any target.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kubernetes import client, config

from ambient_ctrl.testing import eventually, free_port, start_apiserver_process, stop_process
from ambient_ctrl.webhook import ServiceReference, WebhookBuilder, Webhooks
from ambient_ctrl.webhook import render as render_webhooks
from e2e.cluster import ClosingApiClient
from informers.resource import Resource
from reconcilers import command, samples
from reconcilers.config import OperatorConfig

from .conftest import KUBECTL, Kubectl, Raw, Server
from .scrape import READER_ROLE, https_get, scraper_token

pytestmark = [pytest.mark.kubectl, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config"
SESSIONS_NAMESPACE = "agentic-sessions"
POD_SESSION, VM_SESSION = (
    yaml.safe_load((CONFIG / "samples" / f"session_{kind}.yaml").read_text())["metadata"]["name"]
    for kind in ("pod", "vm"))
FAILING_SESSION = "session-failing"
DESIRED_PHASE = "ambient-code.io/desired-phase"
TOKEN_REFRESHED_AT = "ambient-code.io/token-refreshed-at"
NETWORK_POLICY = "runner-allow-backend-only"
OPERATOR_AGENT = "ambient-ctrl"
"""The User-Agent product the operator sends; the test's own requests never use it."""

# Minimal stand-ins for the Prometheus Operator's CRDs, which the local server does not have.
MONITORING_CRDS = "\n---\n".join(f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {{plural: {plural}, singular: {kind.lower()}, kind: {kind}, listKind: {kind}List}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
""" for plural, kind in (("servicemonitors", "ServiceMonitor"),
                         ("prometheusrules", "PrometheusRule")))


# --------------------------------------------------------------------------------------------
# fixtures: one server, the manifests applied, one operator run
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class LocalCluster:
    server: Server
    kubectl: Kubectl
    admin: str
    """Base URL of the server's admin endpoint (request counts)."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    tmp = tmp_path_factory.mktemp("config")
    admin_port = free_port()
    process, url, kubeconfig = start_apiserver_process(
        tmp / "kubeconfig", log=tmp / "apiserver.log", bookmark_interval=1, timeout=30,
        extra_args=["--simulate", "kubelet,kubevirt", "--admin-port", str(admin_port)])
    raw = Raw(kubeconfig)
    try:
        server = Server(url, kubeconfig, tmp / "kube-cache", tmp / "apiserver.log", process, raw)
        yield LocalCluster(server, Kubectl(server), f"http://127.0.0.1:{admin_port}")
    finally:
        raw.close()
        code = stop_process(process, timeout=10)
        assert code == 0, f"the API server did not shut down cleanly ({code})"


def render(directory: str) -> list[dict[str, Any]]:
    """``kubectl kustomize config/<directory>``: the objects ``apply -k`` sends."""
    done = subprocess.run([str(KUBECTL), "kustomize", str(CONFIG / directory)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def default_objects() -> list[dict[str, Any]]:
    return render("default")


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects
             if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The element of a list of named things (containers, volumes, ...) called ``name``."""
    found = [item for item in items if item["name"] == name]
    assert len(found) == 1, f"expected one {name}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def applied(cluster: LocalCluster) -> dict[str, str]:
    """``apply -k config/default`` and ``apply -k config/samples`` on a server without the
    Prometheus Operator's CRDs (a plain cluster), then those CRDs and ``apply -k
    config/monitored``; returns kubectl's output of each apply."""
    kubectl = cluster.kubectl
    out = {}
    for directory in ("default", "samples"):
        out[directory] = kubectl("apply", "-k", str(CONFIG / directory)).stdout
    kubectl("apply", "-f", "-", input=MONITORING_CRDS)
    out["monitored"] = kubectl("apply", "-k", str(CONFIG / "monitored")).stdout
    return out


# --------------------------------------------------------------------------------------------
# every manifest applies
# --------------------------------------------------------------------------------------------
LOCAL_CLUSTER = pytest.mark.local_only(
    "installs config/ cluster-wide on a fresh local server (no admission, no Deployment "
    "controller) and counts the operator's requests through its admin endpoint")


@LOCAL_CLUSTER
@pytest.mark.parametrize("directory", ["default", "samples"])
def test_manifests_apply_and_are_found(cluster: LocalCluster, applied: dict[str, str],
                                       directory: str) -> None:
    objects = render(directory)
    kinds = {o["kind"] for o in objects}
    if directory == "default":
        assert {"CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole",
                "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "Service"} <= kinds
        # A plain cluster serves no monitoring.coreos.com kinds: monitoring is opt-in.
        assert not monitoring(objects)
    else:
        assert {"Namespace", "ConfigMap", "Secret", "AgenticSession"} <= kinds
    assert applied[directory].count(" created\n") == len(objects), applied[directory]
    # kubectl get finds every object it applied, in its namespace (applied again first: the
    # lifecycle test deletes the sample sessions, and the tests pass in any order).
    cluster.kubectl("apply", "-k", str(CONFIG / directory))
    found = cluster.kubectl.json("get", "-k", str(CONFIG / directory))
    got = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
           for o in found["items"]}
    assert got == {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
                   for o in objects}
    # Applying again changes nothing (the three-way patch of every object is empty).
    again = cluster.kubectl("apply", "-k", str(CONFIG / directory)).stdout
    assert again.count(" unchanged") == len(objects), again


def monitoring(objects: list[dict[str, Any]]) -> list[str]:
    """The kinds among ``objects`` that only the Prometheus Operator's CRDs serve."""
    return [o["kind"] for o in objects if o["apiVersion"].startswith("monitoring.coreos.com/")]


@LOCAL_CLUSTER
def test_monitoring_is_an_opt_in_overlay(cluster: LocalCluster,
                                         applied: dict[str, str]) -> None:
    """config/monitored is config/default plus config/prometheus: applied over config/default
    it creates the ServiceMonitor, the PrometheusRule and the dashboard and changes nothing
    else, and kubectl get finds them."""
    default, monitored = render("default"), render("monitored")
    key = lambda o: (o["kind"], o["metadata"].get("namespace", ""),  # noqa: E731
                     o["metadata"]["name"])
    added = {key(o) for o in monitored} - {key(o) for o in default}
    assert added == {key(o) for o in render("prometheus")}
    assert sorted(monitoring(monitored)) == ["PrometheusRule", "ServiceMonitor"]
    assert [o for o in monitored if key(o) not in added] == default
    out = applied["monitored"]
    assert out.count(" created\n") == len(added), out
    assert out.count(" unchanged\n") == len(default), out
    found = cluster.kubectl.json("get", "-k", str(CONFIG / "monitored"))
    assert {key(o) for o in found["items"]} == {key(o) for o in monitored}


# --------------------------------------------------------------------------------------------
# the operator run
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Run:
    calls: dict[tuple[str, str, str], int]
    """(group, resource, verb) → count, as the server recorded the operator's requests."""
    metrics: str
    """The operator's /metrics exposition, scraped after the restart."""
    leases: list[dict[str, Any]]
    owner_references: dict[tuple[str, str], list[dict[str, Any]]]
    """(kind, name) of each child the sessions had while Running → its ownerReferences."""
    runner_rules: list[dict[str, Any]]
    """The rules of a runner Role the operator made."""
    project: dict[tuple[str, str], dict[str, Any]] = dataclasses.field(default_factory=dict)
    """(kind, name) → what the project controller made in the samples' namespace."""


def operator_argv(deployment: dict[str, Any], kubeconfig: Path, metrics: str, probes: str,
                  raw: Raw) -> tuple[list[str], dict[str, str]]:
    """The Deployment's container arguments and environment, for a local process: the bind
    addresses move to 127.0.0.1, downward-API namespaces resolve to the Deployment's, and
    ConfigMap and Secret keys are read from the cluster as the kubelet would (an optional one
    that is absent leaves the variable unset)."""
    container = named(deployment["spec"]["template"]["spec"]["containers"], "manager")
    args = []
    for arg in container["args"]:
        if arg.startswith("--metrics-bind-address="):
            arg = f"--metrics-bind-address={metrics}"
        elif arg.startswith("--health-probe-bind-address="):
            arg = f"--health-probe-bind-address={probes}"
        args.append(arg)
    namespace = deployment["metadata"]["namespace"]
    env = {}
    for var in container.get("env", ()):
        source = var.get("valueFrom") or {}
        if "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "metadata.namespace", var
            env[var["name"]] = namespace
            continue
        ref = source.get("configMapKeyRef") or source.get("secretKeyRef")
        if ref is None:
            env[var["name"]] = var["value"]
            continue
        plural = "configmaps" if "configMapKeyRef" in source else "secrets"
        status, obj = raw.get(f"/api/v1/namespaces/{namespace}/{plural}/{ref['name']}")
        value = ((obj or {}).get("data") or {}).get(ref["key"]) if status == 200 else None
        if value is None:
            assert ref.get("optional"), var
            continue
        env[var["name"]] = value if plural == "configmaps" else \
            base64.b64decode(value).decode()
    return [sys.executable, "-m", "ambient_ctrl.cli", *args, "--kubeconfig",
            str(kubeconfig)], env


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


def session_path(name: str) -> str:
    return (f"/apis/vteam.ambient-code/v1alpha1/namespaces/{SESSIONS_NAMESPACE}"
            f"/agenticsessions/{name}")


PATHS = {"pod": "/api/v1/namespaces/{ns}/pods", "svc": "/api/v1/namespaces/{ns}/services",
         "secret": "/api/v1/namespaces/{ns}/secrets",
         "sa": "/api/v1/namespaces/{ns}/serviceaccounts",
         "role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
         "rb": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
         "netpol": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
         "vm": "/apis/kubevirt.io/v1/namespaces/{ns}/virtualmachines",
         "vmi": "/apis/kubevirt.io/v1/namespaces/{ns}/virtualmachineinstances",
         "limits": "/api/v1/namespaces/{ns}/limitranges",
         "ps": "/apis/vteam.ambient-code/v1alpha1/namespaces/{ns}/projectsettings"}


def child_path(kind: str, name: str) -> str:
    return f"{PATHS[kind].format(ns=SESSIONS_NAMESPACE)}/{name}"


def session_children(name: str) -> list[tuple[str, str]]:
    """(kind, name) of what every session has whatever runs it (upstream's, contract §4)."""
    return [("svc", f"session-{name}"), ("secret", f"ambient-runner-token-{name}"),
            ("sa", f"ambient-session-{name}"), ("role", f"ambient-session-{name}-role"),
            ("rb", f"ambient-session-{name}-rb")]


def wait_phase(raw: Raw, name: str, phase: str, timeout: float = 20) -> dict[str, Any]:
    def check() -> dict[str, Any]:
        session = raw.obj(session_path(name))
        got = (session.get("status") or {}).get("phase")
        assert got == phase, f"{name} is {got}, waiting for {phase}"
        return session
    return eventually(check, timeout=timeout)


def drive_sessions(cluster: LocalCluster, metrics_url: str, scraper: str
                   ) -> tuple[str, dict[tuple[str, str], list[dict[str, Any]]],
                              list[dict[str, Any]]]:
    """create → Running → drift → token refresh → stop → restart (→ /metrics) → delete;
    returns /metrics, the owner references of the children the sessions had while Running
    and the rules of the pod session's runner Role."""
    raw, kubectl = cluster.server.raw, cluster.kubectl
    ns = ("-n", SESSIONS_NAMESPACE)
    # A third session whose (simulated) runner exits 2: the failure path and its metrics. As
    # the backend makes it, but for spec.project (pruned by the schema: kubectl's strict field
    # validation would refuse it) and status (dropped by the status subresource).
    failing = samples.backend_session(SESSIONS_NAMESPACE, name=FAILING_SESSION, extra_env={
        "ENVTEST_SCENARIO": "exit:2:1@ambient-code-runner"})
    del failing["spec"]["project"], failing["status"]
    kubectl("apply", "-f", "-", input=orjson.dumps(failing).decode())
    for name in (POD_SESSION, VM_SESSION):
        wait_phase(raw, name, "Running")
    wait_phase(raw, FAILING_SESSION, "Failed")
    cloudinit = f"{VM_SESSION}-cloudinit"
    token = f"ambient-runner-token-{POD_SESSION}"
    children = [("pod", f"{POD_SESSION}-runner"), *session_children(POD_SESSION),
                ("vm", f"{VM_SESSION}-runner"), ("secret", cloudinit),
                *session_children(VM_SESSION)]
    owner_references = {(kind, name): raw.obj(child_path(kind, name))["metadata"]
                        .get("ownerReferences") or [] for kind, name in children}
    assert raw.obj(child_path("netpol", NETWORK_POLICY))
    runner_rules = raw.obj(child_path("role", f"ambient-session-{POD_SESSION}-role"))["rules"]

    # Drift: a user edits what the operator owns. Labels come back through a patch (pods,
    # services, VMs); a Secret frozen with wrong contents is deleted and recreated.
    drifted = [("pod", f"{POD_SESSION}-runner"), ("svc", f"session-{POD_SESSION}"),
               ("vm", f"{VM_SESSION}-runner")]
    for kind, name in drifted:
        kubectl("label", "--overwrite", *ns, kind, name, "agentic-session=drifted")
    frozen_uid = raw.obj(child_path("secret", cloudinit))["metadata"]["uid"]
    wrong = base64.b64encode(b"#cloud-config\n{}\n").decode()
    kubectl("patch", *ns, "secret", cloudinit, "--type=merge",
            "-p", orjson.dumps({"immutable": True, "data": {"userdata": wrong}}).decode())
    # A runner token older than 45 minutes is refreshed: a TokenRequest, k8s-token patched.
    before = raw.obj(child_path("secret", token))
    kubectl("annotate", "--overwrite", *ns, "secret", token,
            f"{TOKEN_REFRESHED_AT}=2000-01-01T00:00:00Z")

    def restored() -> bool:
        for kind, name in drifted:
            labels = raw.obj(child_path(kind, name))["metadata"]["labels"]
            assert labels["agentic-session"] != "drifted", (kind, name)
        secret = raw.obj(child_path("secret", cloudinit))
        assert secret["metadata"]["uid"] != frozen_uid and not secret.get("immutable")
        refreshed = raw.obj(child_path("secret", token))
        assert refreshed["metadata"]["annotations"][TOKEN_REFRESHED_AT] > "2000"
        assert refreshed["data"]["k8s-token"] != before["data"]["k8s-token"]
        assert refreshed["data"]["agui-token"] == before["data"]["agui-token"]
        return True
    eventually(restored, timeout=20)

    # Stop, then restart, through the user's annotation, twice (the second stop and restart
    # repeat the first's Events: patched, not created again); while stopped the namespace's
    # NetworkPolicy drifts, and the restart brings it back.
    for phase in ("Stopped", "Running", "Stopped", "Running"):
        for name in (POD_SESSION, VM_SESSION):
            kubectl("annotate", "--overwrite", *ns, "agenticsession", name,
                    f"{DESIRED_PHASE}={phase}")
        for name in (POD_SESSION, VM_SESSION):
            wait_phase(raw, name, phase)
        if phase == "Stopped":  # the run's children go; the token and the RBAC stay
            for kind, name in children:
                if kind in ("pod", "vm", "svc") or name == cloudinit:
                    eventually(lambda k=kind, n=name: raw.absent(child_path(k, n)),
                               timeout=20, message=f"{kind} {name} of a Stopped session")
                else:
                    assert raw.obj(child_path(kind, name))
            kubectl("patch", *ns, "networkpolicy", NETWORK_POLICY, "--type=merge",
                    "-p", '{"spec":{"ingress":[]}}')
    for name in (POD_SESSION, VM_SESSION):
        annotations = raw.obj(session_path(name))["metadata"].get("annotations") or {}
        assert DESIRED_PHASE not in annotations  # the one-shot intent was consumed
    eventually(lambda: raw.obj(child_path("netpol", NETWORK_POLICY))["spec"]["ingress"],
               timeout=20, message="the NetworkPolicy was not brought back")

    status, metrics = https_get(metrics_url, scraper)
    assert status == 200

    # Delete: the sessions go, their children with them (garbage collection).
    kubectl("delete", *ns, "agenticsession", POD_SESSION, VM_SESSION, FAILING_SESSION,
            "--wait=false")
    for kind, name in [*children, ("vmi", f"{VM_SESSION}-runner"),
                       ("pod", f"{FAILING_SESSION}-runner"),
                       *session_children(FAILING_SESSION)]:
        eventually(lambda k=kind, n=name: raw.absent(child_path(k, n)), timeout=20,
                   message=f"{kind} {name} not garbage-collected")
    return metrics, owner_references, runner_rules


TRIGGER, LIMITS, GROUP_BINDING = ("ambient-session-trigger", "ambient-default-limits",
                                  "devs-edit")


def drive_project(cluster: LocalCluster) -> dict[tuple[str, str], dict[str, Any]]:
    """The samples' managed namespace as a project: its ProjectSettings made and its status
    written; a group given access, its RoleBinding and the LimitRange drifted and brought back,
    the entry removed (its RoleBinding deleted). Returns what was made, by (kind, name)."""
    raw, kubectl = cluster.server.raw, cluster.kubectl
    ns = ("-n", SESSIONS_NAMESPACE)
    ready = {"groupBindingsCreated": 0, "scheduledSessionRBACReady": True,
             "limitRangeReady": True}
    eventually(lambda: (raw.obj(child_path("ps", "projectsettings")).get("status") or {})
               == ready, timeout=20, message="the project's settings were not provisioned")

    def access(*groups: str) -> None:
        kubectl("patch", *ns, "projectsettings", "projectsettings", "--type=merge", "-p",
                orjson.dumps({"spec": {"groupAccess": [{"groupName": g, "role": "edit"}
                                                       for g in groups]}}).decode())

    access("devs")
    binding = eventually(lambda: raw.get(child_path("rb", GROUP_BINDING))[1]
                         if not raw.absent(child_path("rb", GROUP_BINDING)) else None,
                         timeout=20, message="the group's RoleBinding was not made")
    kubectl("patch", *ns, "rolebinding", GROUP_BINDING, "--type=merge", "-p", orjson.dumps(
        {"subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
                       "name": "eve"}]}).decode())
    limits = raw.obj(child_path("limits", LIMITS))
    kubectl("patch", *ns, "limitrange", LIMITS, "--type=merge", "-p",
            '{"spec":{"limits":[{"type":"Container","default":{"cpu":"16"}}]}}')
    eventually(lambda: raw.obj(child_path("rb", GROUP_BINDING))["subjects"]
               == binding["subjects"] and raw.obj(child_path("limits", LIMITS))["spec"]
               == limits["spec"], timeout=20, message="the project's objects drifted for good")
    made = {(kind, name): raw.obj(child_path(kind, name)) for kind, name in (
        ("sa", TRIGGER), ("role", TRIGGER), ("rb", TRIGGER), ("limits", LIMITS),
        ("rb", GROUP_BINDING))}
    access()
    eventually(lambda: raw.absent(child_path("rb", GROUP_BINDING)), timeout=20,
               message="the RoleBinding of a removed entry stayed")
    return made


def prometheus_token(cluster: LocalCluster) -> str:
    """A token of the ServiceAccount monitoring/prometheus, bound to the metrics-reader
    ClusterRole config/default installed (as a platform binds its Prometheus)."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(cluster.server.kubeconfig),
                            client_configuration=configuration)
    with ClosingApiClient(configuration) as api:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": "monitoring"}})
        return scraper_token(api, "monitoring", "prometheus")


@pytest.fixture(scope="module")
def run(cluster: LocalCluster, applied: dict[str, str], default_objects: list[dict[str, Any]],
        tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The operator, started with the Deployment's arguments, through the whole scenario;
    stopped (SIGTERM, lease released) before the server's request counts are read."""
    deployment = one(default_objects, "Deployment")
    metrics, probes = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    argv, env = operator_argv(deployment, cluster.server.kubeconfig, metrics, probes,
                              cluster.server.raw)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, env={**cluster.kubectl.env, **env},
                                   stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        eventually(lambda: http_get(f"http://{probes}/readyz")[0] == 200, timeout=20,
                   ignoring=(OSError,), message="the operator never became ready")
        exposition, owner_references, rules = drive_sessions(
            cluster, f"https://{metrics}/metrics", prometheus_token(cluster))
        project = drive_project(cluster)
    finally:
        code = stop_process(process, timeout=40)
    assert code == 0, f"the operator exited {code}; see {log}"
    status, body = http_get(f"{cluster.admin}/requests?agent={OPERATOR_AGENT}")
    assert status == 200
    calls = {(c["group"], c["resource"], c["verb"]): c["count"] for c in orjson.loads(body)}
    # The simulated kubelet's heartbeat Lease (kube-node-lease) is the node's, not the operator's.
    leases = [lease for lease in cluster.server.raw.obj(
        "/apis/coordination.k8s.io/v1/leases")["items"]
        if lease["metadata"]["namespace"] != "kube-node-lease"]
    return Run(calls, exposition, leases, owner_references, rules, project)


# --------------------------------------------------------------------------------------------
# RBAC: exactly what the operator uses
# --------------------------------------------------------------------------------------------
ESCALATION = ("RBAC escalation prevention: the runner's Role ambient-session-<name>-role grants "
              "it (upstream's rules, contract §4.10), and the API server lets the operator create "
              "a Role only with permissions the operator holds itself. The operator never makes "
              "this request.")
TRIGGER_TOO = (" The project's ambient-session-trigger Role (create, get, list, update) grants "
               "it too.")
BIND = ("RBAC escalation prevention: a group's RoleBinding binds ambient-project-<role>, whose "
        "permissions the operator does not hold; the API server lets it bind them only with the "
        "bind verb on those ClusterRoles (by name). bind is checked, never a request.")
UNUSED_GRANTS: dict[tuple[str, str, str], str] = {
    ("vteam.ambient-code", "agenticsessions", "get"): ESCALATION + TRIGGER_TOO,
    ("vteam.ambient-code", "agenticsessions", "create"): ESCALATION + TRIGGER_TOO,
    ("vteam.ambient-code", "agenticsessions", "update"): ESCALATION + TRIGGER_TOO,
    ("rbac.authorization.k8s.io", "clusterroles", "bind"): BIND,
    ("authorization.k8s.io", "selfsubjectaccessreviews", "create"): ESCALATION,
    ("mlflow.kubeflow.org", "experiments", "get"): ESCALATION,
    ("mlflow.kubeflow.org", "experiments", "list"): ESCALATION,
    ("mlflow.kubeflow.org", "experiments", "update"): ESCALATION,
    ("", "secrets", "get"): ESCALATION + " It also reads a Secret a create found there already "
    "(a retry after a lost answer), which a calm run does not do.",
}
"""Grants the run must not exercise, each with the reason the operator still needs it. Each
entry must be granted and must stay unused; anything else granted must be used."""
AFTER_A_RETRY = ("read, or brought to what it must be, when a create finds the object there "
                 "already: an earlier attempt made it and failed later (e2e/test_chaos.py takes "
                 "this path under injected faults; a calm run does not)")
RETRY_GRANTS: dict[tuple[str, str, str], str] = {
    ("", "serviceaccounts", "get"): AFTER_A_RETRY,
    ("", "serviceaccounts", "patch"): AFTER_A_RETRY + "; also a ServiceAccount upstream's "
    "operator made without the created-by-user-id annotation",
    ("rbac.authorization.k8s.io", "roles", "get"): AFTER_A_RETRY,
    ("rbac.authorization.k8s.io", "roles", "patch"): AFTER_A_RETRY,
    ("rbac.authorization.k8s.io", "rolebindings", "get"): AFTER_A_RETRY,
    ("networking.k8s.io", "networkpolicies", "get"): "read when its create finds it there: "
    "another session's start in the same namespace made it a moment ago",
    ("", "limitranges", "get"): AFTER_A_RETRY,
}
"""Grants a calm run may or may not exercise, each with the path that needs it: they must be
granted; whether they were used is not checked."""
ANY_NAME: frozenset[str] = frozenset()
PROJECT_ROLES = frozenset({"ambient-project-admin", "ambient-project-edit",
                           "ambient-project-view"})
NAMED: dict[tuple[str, str, str], frozenset[str]] = {
    ("rbac.authorization.k8s.io", "clusterroles", "bind"): PROJECT_ROLES}
"""Allow-listed grants restricted to these names (the rest are for any name)."""
CLUSTER = ""
"""The scope of a ClusterRoleBinding's grants (else: a RoleBinding's namespace)."""


def granted(objects: list[dict[str, Any]]) -> dict[tuple[str, str, str, str],
                                                     frozenset[str]]:
    """(scope, group, resource, verb) of every rule of the roles bound to the Deployment's
    service account (scope: :data:`CLUSTER` or the namespace of a RoleBinding) → the resource
    names it is restricted to (:data:`ANY_NAME` if it is not)."""
    deployment = one(objects, "Deployment")
    account = (deployment["metadata"]["namespace"],
               deployment["spec"]["template"]["spec"]["serviceAccountName"])
    out: dict[tuple[str, str, str, str], frozenset[str]] = {}
    for binding in (o for o in objects if o["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        subjects = {(s.get("namespace", ""), s["name"]) for s in binding["subjects"]
                    if s["kind"] == "ServiceAccount"}
        if account not in subjects:
            continue
        ref = binding["roleRef"]
        role = one(objects, ref["kind"], ref["name"])
        scope = CLUSTER
        if binding["kind"] == "RoleBinding":
            scope = binding["metadata"]["namespace"]
        if role["kind"] == "Role":  # a Role grants in its own namespace only
            assert role["metadata"]["namespace"] == binding["metadata"]["namespace"]
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, ()), f"wildcard in {role['kind']} {rule}"
            names = frozenset(rule.get("resourceNames", ()))
            for key in ((scope, g, r, v) for g in rule["apiGroups"] for r in rule["resources"]
                        for v in rule["verbs"]):
                previous = out.get(key)
                if previous is None:
                    out[key] = names
                elif not previous or not names:  # one of the rules allows any name
                    out[key] = ANY_NAME
                else:
                    out[key] = previous | names
    return out


@LOCAL_CLUSTER
def test_rbac_grants_exactly_what_the_operator_uses(run: Run,
                                                    default_objects: list[dict[str, Any]]
                                                    ) -> None:
    scoped = granted(default_objects)
    grants = {key[1:] for key in scoped}
    used = set(run.calls)
    calls = sorted(run.calls.items())
    assert used, "the server recorded no request from the operator"
    assert not used - grants, f"called but not granted: {sorted(used - grants)}; " \
        f"all calls: {calls}"
    unused = grants - used - set(UNUSED_GRANTS) - set(RETRY_GRANTS)
    assert not unused, f"granted but never used: {sorted(unused)}; all calls: {calls}"
    # The allow-lists stay exact: every entry is granted cluster-wide (for any name, or those
    # NAMED), and the unused ones are really unused.
    for key in [*UNUSED_GRANTS, *RETRY_GRANTS]:
        assert scoped.get((CLUSTER, *key)) == NAMED.get(key, ANY_NAME), \
            f"allow-listed but not granted: {key}"
    for key in UNUSED_GRANTS:
        assert key not in used, f"allow-listed as unused but called: {key}"
    assert not set(UNUSED_GRANTS) & set(RETRY_GRANTS)
    # The runner Role the operator made grants exactly what upstream's does, and nothing the
    # operator lacks (else the API server would have refused to create it).
    assert run.runner_rules, "no runner Role was seen"
    for rule in run.runner_rules:
        for key in ((g, r, v) for g in rule["apiGroups"] for r in rule["resources"]
                    for v in rule["verbs"]):
            assert scoped.get((CLUSTER, *key)) == ANY_NAME, f"runner Role grants {key}"
    # Children name their session (the Service: its runner) as controller, without
    # blockOwnerDeletion (as upstream), so no update of the sessions' finalizers is needed.
    assert run.owner_references
    for (kind, name), refs in run.owner_references.items():
        owner = {"svc": ("Pod", "VirtualMachine")}.get(kind, ("AgenticSession",))
        assert len(refs) == 1 and refs[0]["kind"] in owner and refs[0].get("controller") \
            and "blockOwnerDeletion" not in refs[0], (kind, name, refs)
    # So do a project's objects their ProjectSettings; its trigger Role grants only what the
    # operator holds, and its group RoleBinding binds a ClusterRole it may bind.
    assert len(run.project) == 5, run.project
    for (kind, name), obj in run.project.items():
        refs = obj["metadata"]["ownerReferences"]
        assert len(refs) == 1 and refs[0]["kind"] == "ProjectSettings" \
            and refs[0].get("controller") and "blockOwnerDeletion" not in refs[0], \
            (kind, name, refs)
    for rule in run.project[("role", TRIGGER)]["rules"]:
        for key in ((g, r, v) for g in rule["apiGroups"] for r in rule["resources"]
                    for v in rule["verbs"]):
            assert scoped.get((CLUSTER, *key)) == ANY_NAME, f"trigger Role grants {key}"
    bound = run.project[("rb", GROUP_BINDING)]["roleRef"]["name"]
    assert bound in scoped[(CLUSTER, "rbac.authorization.k8s.io", "clusterroles", "bind")]
    # The server records calls by (group, resource, verb), not by name or namespace: those
    # restrictions are checked against what the operator touched instead.
    # * Leader election: the only Lease is the operator's, in its own namespace (where the
    #   Role is), released on SIGTERM; get/update are restricted to its name.
    deployment = one(default_objects, "Deployment")
    home = deployment["metadata"]["namespace"]
    lease_ids = [(lease["metadata"]["namespace"], lease["metadata"]["name"])
                 for lease in run.leases]
    assert lease_ids == [(home, "agenticsession-operator")]
    assert not run.leases[0]["spec"].get("holderIdentity")
    for verb in ("get", "update"):
        assert scoped[(home, "coordination.k8s.io", "leases", verb)] == {lease_ids[0][1]}
    # * ConfigMaps: any name only in the operator's own namespace (the registry, the models
    #   manifest, the cloud-init templates); elsewhere only trusted-ca-bundle, read with the
    #   field selector metadata.name=<name>, which the API server authorizes by resourceNames.
    for verb in ("list", "watch"):
        assert scoped[(home, "", "configmaps", verb)] == ANY_NAME
        assert scoped[(CLUSTER, "", "configmaps", verb)] == {"trusted-ca-bundle"}
    # Everything else is granted for any name, and namespaced grants are only those.
    assert {key for key, names in scoped.items() if names} == {
        (home, "coordination.k8s.io", "leases", "get"),
        (home, "coordination.k8s.io", "leases", "update"),
        (CLUSTER, "", "configmaps", "list"), (CLUSTER, "", "configmaps", "watch"),
        (CLUSTER, "rbac.authorization.k8s.io", "clusterroles", "bind")}
    assert {key[1:] for key in scoped if key[0] != CLUSTER} == {
        ("coordination.k8s.io", "leases", "create"), ("coordination.k8s.io", "leases", "get"),
        ("coordination.k8s.io", "leases", "update"), ("", "configmaps", "list"),
        ("", "configmaps", "watch")}


# --------------------------------------------------------------------------------------------
# metrics: every name the alerts and the dashboard use is exported
# --------------------------------------------------------------------------------------------
_PROMQL_WORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right",
                           "and", "or", "unless", "bool", "offset", "inf", "nan"})
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords,
    label names (in ``{}``, ``by (...)`` and the like) or parts of strings, ranges, numbers."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ",
                  expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][\w:]*", expr):
        before = expr[match.start() - 1] if match.start() else " "
        after = expr[match.end():].lstrip()[:1]
        if before.isdigit() or before in ".$" or after == "(":
            continue
        if match.group() not in _PROMQL_WORDS:
            names.add(match.group())
    return names


def alert_rules() -> list[dict[str, Any]]:
    rule = yaml.safe_load((CONFIG / "prometheus" / "alerts.yaml").read_text())
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def dashboard_names() -> set[str]:
    dashboard = orjson.loads((CONFIG / "prometheus" / "dashboard.json").read_bytes())
    names: set[str] = set()
    panels = list(dashboard["panels"])
    while panels:
        panel = panels.pop()
        panels.extend(panel.get("panels", ()))
        for target in panel.get("targets", ()):
            names |= promql_metric_names(target["expr"])
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        query = query.get("query", "") if isinstance(query, dict) else query or ""
        # label_values(metric{...}, label): the first argument is the metric.
        names |= set(re.findall(r"label_values\(\s*([A-Za-z_:][\w:]*)", query))
    return names


def exported(exposition: str) -> tuple[set[str], set[str]]:
    """(names of the samples in an exposition, names of its histogram families)."""
    from prometheus_client.parser import text_string_to_metric_families

    samples, histograms = set(), set()
    for family in text_string_to_metric_families(exposition):
        samples |= {sample.name for sample in family.samples}
        if family.type == "histogram":
            histograms.add(family.name)
    return samples, histograms


def test_promql_metric_names() -> None:
    expr = ('histogram_quantile(0.99, sum by (backend, le) (rate(a_seconds_bucket{x="y(z)", '
            'job=~"$job"}[$__rate_interval]))) > 1e3 or on (pod) group_left (node) b_total '
            '* ignoring(q) c offset 5m and vector(0) unless label_replace(d, "a", "$1", "b", '
            '"(.*)")')
    assert promql_metric_names(expr) == {"a_seconds_bucket", "b_total", "c", "d"}


def error_ratio(expr: str) -> tuple[str, set[str], float | None]:
    """An error-ratio expression reduced to its meaning: its shape (metrics and operators,
    without label matchers, ranges and groupings), its rate windows and its threshold
    (``> x``; None on a panel)."""
    threshold = None
    compared = re.fullmatch(r"(?s)(.*?)\s*>\s*([0-9.]+)\s*", expr)
    if compared:
        expr, threshold = compared.group(1), float(compared.group(2))
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        assert 'controller="agenticsession"' in matchers, expr  # this operator's only
    windows = set(re.findall(r"\[([^\]]+)\]", expr))
    shape = re.sub(r"\{[^}]*\}|\[[^\]]+\]|\bby\s*\([^)]*\)|\s+", "", expr)
    return shape, windows, threshold


RETRIED_ERRORS = ("sum(rate(controller_runtime_reconcile_errors_total))"
                  "-sum(rate(controller_runtime_terminal_reconcile_errors_total))")
ERROR_RATIO = f"({RETRIED_ERRORS})/sum(rate(controller_runtime_reconcile_total))"
"""Retried errors over reconciles: terminal errors are bad user input, not the operator's
failure (issue 16 item 11)."""


def dashboard_panel(title: str) -> dict[str, Any]:
    dashboard = orjson.loads((CONFIG / "prometheus" / "dashboard.json").read_bytes())
    return next(p for p in dashboard["panels"] if p["title"] == title)


def test_the_error_ratio_means_the_same_in_the_alert_and_on_the_dashboard() -> None:
    alert = next(r for r in alert_rules() if r["alert"] == "AgenticSessionReconcileErrorsHigh")
    panel = dashboard_panel("Reconcile error ratio (10m)")
    (target,) = panel["targets"]
    alert_shape, alert_windows, threshold = error_ratio(alert["expr"])
    panel_shape, panel_windows, _ = error_ratio(target["expr"])
    assert alert_shape == panel_shape == ERROR_RATIO
    assert alert_windows == panel_windows == {"10m"}
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1] == {"color": "red", "value": threshold}  # red where the alert fires
    # Terminal errors are charted on their own, beside the retried ones.
    series = {t["legendFormat"]: error_ratio(t["expr"])[0]
              for t in dashboard_panel("Reconcile errors")["targets"]}
    assert series["errors (retried)"] == RETRIED_ERRORS
    assert series["terminal (bad input, not retried)"] == (
        "sum(rate(controller_runtime_terminal_reconcile_errors_total))")


@LOCAL_CLUSTER
def test_alerts_and_dashboard_use_only_exported_metrics(run: Run) -> None:
    samples, histograms = exported(run.metrics)
    rules = alert_rules()
    assert {"AgenticSessionReconcileErrorsHigh", "AgenticSessionWorkqueueDepthHigh",
            "AgenticSessionWorkqueueStuck", "AgenticSessionPodStartupSlow",
            "AgenticSessionVMStartupSlow", "AgenticSessionOperatorNoLeader",
            "AgenticSessionInformerSilent"} <= {r["alert"] for r in rules}
    referenced = {name: "dashboard" for name in dashboard_names()}
    for rule in rules:
        referenced.update({name: f"alert {rule['alert']}"
                           for name in promql_metric_names(rule["expr"])})
    # The dashboard covers the controller-runtime families and the backend latency.
    assert {"controller_runtime_reconcile_total", "controller_runtime_reconcile_errors_total",
            "controller_runtime_reconcile_time_seconds_bucket", "workqueue_depth",
            "workqueue_queue_duration_seconds_bucket", "controller_runtime_active_workers",
            "rest_client_requests_total", "rest_client_request_duration_seconds_bucket",
            "agentic_session_startup_seconds_bucket",
            "agentic_session_backend_operation_seconds_bucket"} <= set(referenced)

    def is_exported(name: str) -> bool:
        base = next((name.removesuffix(s) for s in _HISTOGRAM_SUFFIXES if name.endswith(s)),
                    None)
        return name in samples or base in histograms

    missing = {name: where for name, where in referenced.items() if not is_exported(name)}
    assert not missing, f"referenced but not exported: {missing}"


# --------------------------------------------------------------------------------------------
# static checks: the Deployment's hardening and the Dockerfile
# --------------------------------------------------------------------------------------------
def test_deployment_is_hardened_and_wired(default_objects: list[dict[str, Any]]) -> None:
    deployment = one(default_objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = named(pod["containers"], "manager")
    assert deployment["spec"]["replicas"] == 2
    assert container["args"] == ["run", "--leader-elect", "--metrics-secure",
                                 "--metrics-bind-address=:8443",
                                 "--health-probe-bind-address=:8081", "--log-format=json"]
    assert pod["automountServiceAccountToken"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8081}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8081}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"https": 8443, "health": 8081}
    assert named(container["volumeMounts"], "tmp")["mountPath"] == "/tmp"
    # Upstream's configuration by upstream's names: both namespaces are the pod's own, the
    # runner images and pull policy as upstream's Deployment sets them, the platform switches
    # optional; what it says is a configuration the operator starts with.
    env = {var["name"]: var for var in container["env"]}
    for name in ("NAMESPACE", "BACKEND_NAMESPACE", "AMBIENT_CTRL_LEADER_ELECTION_NAMESPACE"):
        assert env[name]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["IMAGE_PULL_POLICY"]["value"] == "IfNotPresent"
    assert env["AMBIENT_CODE_RUNNER_IMAGE"]["value"].startswith("quay.io/ambient_code/")
    for name in ("USE_VERTEX", "LANGFUSE_ENABLED", "MLFLOW_TRACING_ENABLED"):
        ref = env[name]["valueFrom"]
        assert next(iter(ref.values()))["optional"] is True, (name, ref)
    plain = {name: var["value"] for name, var in env.items() if "value" in var}
    assert not OperatorConfig.from_env(plain).problems()
    assert "emptyDir" in named(pod["volumes"], "tmp")
    # The metrics Service selects these pods and the ServiceMonitor scrapes it by port name,
    # over HTTPS with Prometheus's own token (the operator's certificate is self-signed).
    service = one(default_objects, "Service", "agenticsession-operator-metrics")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("https", 8443, "https")]
    monitor = one(render("monitored"), "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= \
        service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["scheme"], endpoint["path"]) == ("https", "https",
                                                                        "/metrics")
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert endpoint["tlsConfig"] == {"insecureSkipVerify": True}
    # Scrapers get a ClusterRole of get /metrics and nothing else; config/ binds it to no one
    # (the operator's account least of all: it reviews, it does not read).
    reader = one(default_objects, "ClusterRole", READER_ROLE)
    assert reader["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    assert not [b for b in default_objects if b["kind"].endswith("RoleBinding")
                and b["roleRef"]["name"] == READER_ROLE]


def test_the_webhook_component_is_opt_in_and_wired(tmp_path: Path,
                                                   default_objects: list[dict[str, Any]]
                                                   ) -> None:
    """config/webhook is a Component an overlay adds to config/default (config/default has no
    webhook objects): it adds the Service, cert-manager's Issuer and Certificate and the two
    configurations, and wires the Deployment — the Service selects its pods on the port it
    opens, the Certificate names the Service and fills the Secret mounted where
    --webhook-cert-path points, the CA injector reads that Certificate, the operator's parser
    takes the flags, and the configurations ``webhook.render`` makes call that Service."""
    assert not [o for o in default_objects if o["metadata"].get("labels", {}).get(
        "app.kubernetes.io/component") == "webhook"]
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(CONFIG / "default", tmp_path)],
        "components": [os.path.relpath(CONFIG / "webhook", tmp_path)]}))
    done = subprocess.run([str(KUBECTL), "kustomize", str(tmp_path)], capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    objects = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    added = {key(o) for o in objects} - {key(o) for o in default_objects}
    assert added == {("Service", "agenticsession-operator-webhook-service"),
                     ("Issuer", "agenticsession-operator-selfsigned-issuer"),
                     ("Certificate", "agenticsession-operator-serving-cert"),
                     ("MutatingWebhookConfiguration",
                      "agenticsession-operator-mutating-webhook-configuration"),
                     ("ValidatingWebhookConfiguration",
                      "agenticsession-operator-validating-webhook-configuration")}
    changed = [key(o) for o in objects if key(o) not in added and o not in default_objects]
    assert changed == [("Deployment", "agenticsession-operator")]
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = named(pod["containers"], "manager")
    service = one(objects, "Service", "agenticsession-operator-webhook-service")
    assert service["spec"]["selector"].items() <= \
        deployment["spec"]["template"]["metadata"]["labels"].items()
    [port] = service["spec"]["ports"]
    assert named(container["ports"], port["targetPort"])["containerPort"] == 9443
    namespace = service["metadata"]["namespace"]
    certificate = one(objects, "Certificate")
    assert f"{service['metadata']['name']}.{namespace}.svc" in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["issuerRef"]["name"] == one(objects, "Issuer")["metadata"]["name"]
    volume = named(pod["volumes"], "webhook-certs")
    assert volume["secret"]["secretName"] == certificate["spec"]["secretName"]
    mount = named(container["volumeMounts"], "webhook-certs")
    parser = argparse.ArgumentParser(prog="ambient-ctrl")
    command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(container["args"])
    assert (args.webhook_cert_path, args.webhook_bind_address) == (mount["mountPath"], ":9443")
    injected = f"{certificate['metadata']['namespace']}/{certificate['metadata']['name']}"
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        configuration = one(objects, kind)
        assert configuration["metadata"]["annotations"] == {
            "cert-manager.io/inject-ca-from": injected}
    webhooks = Webhooks()
    WebhookBuilder(webhooks, Resource("example.com", "v1", "widgets", "Widget")).validator(
        lambda obj, old: None)
    [rendered] = render_webhooks(webhooks, ServiceReference(service["metadata"]["name"],
                                                            namespace, port["port"]),
                                 name="agenticsession-operator")
    assert rendered["metadata"]["name"] == \
        one(objects, "ValidatingWebhookConfiguration")["metadata"]["name"]
    assert rendered["webhooks"][0]["clientConfig"]["service"] == {
        "name": service["metadata"]["name"], "namespace": namespace,
        "path": "/validate-example-com-v1-widget", "port": 443}


def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments); continuation lines
    joined, comments dropped."""
    text = re.sub(r"\\\n", " ", text)
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        elif not stages:
            continue  # ARG before the first FROM
        stages[-1].append((instruction.upper(), rest.strip()))
    return stages


def test_dockerfile_final_stage_is_minimal_and_non_root() -> None:
    stages = dockerfile_stages((ROOT / "Dockerfile").read_text())
    assert len(stages) >= 2, "expected a builder stage and a final stage"
    final = stages[-1]
    instructions = dict(final)  # the last of each instruction wins, as in docker
    assert final[0][1].split()[0].startswith("python:3.11-slim"), final[0]
    user = instructions.get("USER", "").split(":")[0]
    assert user and user not in ("root", "0"), f"final stage runs as {user!r}"
    # Upstream's image answers ./operator in /app (the backend's CronJobs call it so); ours hands
    # that command line to ambient-ctrl (image/operator, tested in e2e/test_session_trigger.py).
    assert orjson.loads(instructions["ENTRYPOINT"]) == ["/app/operator"]
    assert orjson.loads(instructions["CMD"]) == ["run"]
    assert instructions["WORKDIR"] == "/app"
    assert ("COPY", "--chmod=0755 image/operator /app/operator") in final
    assert "PYTHONDONTWRITEBYTECODE" in " ".join(v for k, v in final if k == "ENV")
    body = " ".join(v for _, v in final).lower()
    for tool in ("gcc", "build-essential", "make ", "g++", "apt-get install"):
        assert tool not in body, f"the final stage installs build tools ({tool})"
    # Only the builder's wheels are installed (copied or bind-mounted from it, no index).
    installs = [v for k, v in final if k == "RUN" and "pip install" in v]
    assert installs and all("--no-index" in v for v in installs), installs
    assert any("from=builder" in v for k, v in final if k in ("COPY", "RUN"))
    assert not re.search(r"(?i)(password|token|secret|api_key)\s*=", body)
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git"} <= set(ignore)
