"""config/upstream: this operator deployed in place of upstream's, in a platform installed from
upstream's manifests.

* Static (the real kubectl's ``kustomize``): the overlay renders upstream's operator by name —
  Deployment and ServiceAccount ``agentic-operator`` in ``ambient-code``, upstream's selector,
  container name and arguments, upstream's environment with upstream's sources — with our image
  and command, hardened, probes on :8081 and /metrics as config/manager serves it (HTTPS on
  :8443, to tokens the API server authorizes); the registry ConfigMap in upstream's format; our
  RBAC bound to upstream's ServiceAccount under upstream's ClusterRole name, differing from
  upstream's ClusterRole exactly by the grants listed here (and in the README, "Permissions").
  config/default and config/samples still render.
* Against the local API server as its own process (kubelet and KubeVirt simulators): upstream's
  operator objects as upstream's manifests install them (e2e/upstream_operator.yaml) are
  applied first, then the rendered overlay with ``kubectl apply -f -``, which replaces them in
  place. Nothing runs Deployments there, so the operator is started as the kubelet would start
  the stored Deployment's container: its command and arguments, its environment resolved from
  the cluster (``metadata.namespace``; optional ConfigMap and Secret keys that are absent
  leave the variable unset), ``KUBECONFIG`` pointing at the server and the bind addresses on
  127.0.0.1 — nothing else configures it. A session with the body upstream's backend sends
  reaches Running, and the runner Pod shows the Deployment's environment. A platform team's
  edits of the Deployment (a pinned runner image, upstream's metric names on) and of the
  registry reach the next operator, and upstream's series are on its /metrics (scraped with
  the token of an account bound to the metrics-reader ClusterRole). Vertex switched
  on through upstream's ``operator-config`` ConfigMap without its settings stops the operator
  at start with one line.
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from prometheus_client.parser import text_string_to_metric_families

from ambient_ctrl.testing import eventually, free_port, start_apiserver_process, stop_process
from reconcilers.samples import backend_session

from .cluster import KUBECTL, ClosingApiClient
from .scrape import READER_ROLE, https_get, scraper_token

pytestmark = [pytest.mark.kubectl, pytest.mark.timeout(180)]
LOCAL = pytest.mark.local_only(
    "applies the overlay cluster-wide over upstream's operator on a fresh local server and "
    "runs the operator from the stored Deployment")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config"
UPSTREAM_OPERATOR = Path(__file__).with_name("upstream_operator.yaml")
BIN = Path(sys.executable).parent
NS = "ambient-code"
"""Where upstream's overlays deploy the platform (backend and operator)."""
PROJECT = "dropin-project"
NAME = "agentic-operator"
GROUP, VERSION, PLURAL = "vteam.ambient-code", "v1alpha1", "agenticsessions"
REGISTRY, REGISTRY_KEY = "ambient-agent-registry", "agent-registry.json"
NO_IMAGE = {"id": "claude-no-image", "displayName": "Claude (platform image)",
            "framework": "claude-agent-sdk", "provider": "anthropic",
            "container": {"port": 8001, "env": {"RUNNER_TYPE": "claude-no-image",
                                                "RUNNER_STATE_DIR": ".claude"}},
            "sandbox": {"stateDir": ".claude", "persistence": "s3",
                        "seed": {"cloneRepos": True, "hydrateState": True}}}
"""A registry entry that names no image: its runner gets AMBIENT_CODE_RUNNER_IMAGE."""
PINNED_IMAGE = "quay.io/ambient_code/vteam_claude_runner:v0.0.0-pinned"

DROPPED_ENV = {
    # Upstream's variables the overlay leaves out, and why.
    "BACKEND_API_URL": "set upstream, read by neither operator (the runner's comes from "
                       "BACKEND_NAMESPACE)",
    "LANGFUSE_HOST": "the runner Pod references the Secret's keys itself",
    "LANGFUSE_PUBLIC_KEY": "the runner Pod references the Secret's keys itself",
    "LANGFUSE_SECRET_KEY": "the runner Pod references the Secret's keys itself",
    "OBSERVABILITY_BACKENDS": "the runner Pod references the Secret's key itself",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "no OTLP export: /metrics (--upstream-metrics for "
                                   "upstream's names)",
    "DEPLOYMENT_ENV": "an OTLP resource attribute", "VERSION": "an OTLP resource attribute",
    "GOMEMLIMIT": "Go's garbage collector",
}
ADDED_ENV = {"DEFAULT_INACTIVITY_TIMEOUT": "commented out upstream; upstream's default, set"}

Grant = tuple[str, str, str, str]
"""(API group, resource, verb, resource name or "")."""
BEYOND_UPSTREAM: dict[Grant, str] = {
    # What config/rbac grants (ClusterRole and the Roles in the operator's namespace) that
    # upstream's agentic-operator ClusterRole does not: README, "Permissions".
    ("", "configmaps", "list", ""): "own namespace only (Role): the registry, the models "
                                    "manifest and the cloud-init templates are watched",
    ("", "configmaps", "watch", ""): "own namespace only (Role), as above",
    ("", "configmaps", "list", "trusted-ca-bundle"): "each project's CA bundle, watched",
    ("", "configmaps", "watch", "trusted-ca-bundle"): "each project's CA bundle, watched",
    ("", "secrets", "list", ""): "token, cloud-init and named Secrets watched, not fetched",
    ("", "secrets", "watch", ""): "as above",
    ("", "secrets", "patch", ""): "the 45-minute token refresh and cloud-init drift, as "
                                  "patches (instead of update)",
    ("", "pods", "patch", ""): "a runner Pod's labels brought back (upstream: never)",
    ("", "services", "patch", ""): "a Service's labels brought back (upstream: never)",
    ("", "serviceaccounts", "patch", ""): "created-by-user-id added to an existing account "
                                          "(upstream: update, which it lacks)",
    ("rbac.authorization.k8s.io", "roles", "patch", ""): "the runner Role's rules brought "
                                                         "back (instead of update)",
    ("networking.k8s.io", "networkpolicies", "list", ""): "the namespace's policy watched",
    ("networking.k8s.io", "networkpolicies", "watch", ""): "as above",
    ("vteam.ambient-code", "agenticsessions/status", "patch", ""): "guarded merge patches "
                                                                  "(instead of update)",
    ("", "events", "create", ""): "Events about sessions (upstream records none)",
    ("", "events", "patch", ""): "a repeated Event's count",
    ("authorization.k8s.io", "selfsubjectaccessreviews", "create", ""):
        "granted by the runner Role; every authenticated user holds it (system:basic-user)",
    ("kubevirt.io", "virtualmachines", "list", ""): "VM sessions (ADR-0008)",
    ("kubevirt.io", "virtualmachines", "watch", ""): "VM sessions",
    ("kubevirt.io", "virtualmachines", "create", ""): "VM sessions",
    ("kubevirt.io", "virtualmachines", "patch", ""): "VM sessions",
    ("kubevirt.io", "virtualmachines", "delete", ""): "VM sessions",
    ("kubevirt.io", "virtualmachineinstances", "list", ""): "VM sessions, observed",
    ("kubevirt.io", "virtualmachineinstances", "watch", ""): "VM sessions, observed",
    ("coordination.k8s.io", "leases", "create", ""): "own namespace only (Role): leader "
                                                     "election, unused with "
                                                     "--leader-elect=false",
    ("coordination.k8s.io", "leases", "get", "agenticsession-operator"): "as above",
    ("coordination.k8s.io", "leases", "update", "agenticsession-operator"): "as above",
    # Projects (spec §8.2): what each ProjectSettings gives its namespace, watched by the label
    # ambient-code.io/managed=true and brought back when it drifts.
    ("", "serviceaccounts", "list", ""): "projects: the trigger ServiceAccount watched",
    ("", "serviceaccounts", "watch", ""): "as above",
    ("rbac.authorization.k8s.io", "roles", "list", ""): "projects: the trigger Role watched",
    ("rbac.authorization.k8s.io", "roles", "watch", ""): "as above",
    ("rbac.authorization.k8s.io", "rolebindings", "list", ""): "projects: group and trigger "
                                                               "RoleBindings watched",
    ("rbac.authorization.k8s.io", "rolebindings", "watch", ""): "as above",
    ("rbac.authorization.k8s.io", "rolebindings", "patch", ""): "projects: subjects brought "
                                                                "back; upstream's adopted",
    ("", "limitranges", "list", ""): "projects: the LimitRange watched",
    ("", "limitranges", "watch", ""): "as above",
    ("", "limitranges", "patch", ""): "projects: the limits brought back (upstream: never)",
    ("vteam.ambient-code", "projectsettings/status", "patch", ""): "merge patches, only when "
                                                                   "changed (upstream: update)",
    **{("rbac.authorization.k8s.io", "clusterroles", "bind", role): "projects: binding a "
       "ClusterRole whose permissions the operator lacks (escalation prevention)"
       for role in ("ambient-project-admin", "ambient-project-edit", "ambient-project-view")},
    # /metrics behind authentication and authorization (--metrics-secure; upstream's operator
    # pushes OTLP and serves no /metrics): the ClusterRole ...-metrics-auth-role.
    ("authentication.k8s.io", "tokenreviews", "create", ""): "each scrape's bearer token "
                                                             "reviewed",
    ("authorization.k8s.io", "subjectaccessreviews", "create", ""): "its user's get /metrics "
                                                                    "reviewed",
}
NOT_NEEDED: dict[Grant, str] = {
    # Upstream's grants this operator does not use.
    ("batch", "jobs", "get", ""): "no Jobs", ("batch", "jobs", "list", ""): "no Jobs",
    ("batch", "jobs", "watch", ""): "no Jobs", ("batch", "jobs", "create", ""): "no Jobs",
    ("batch", "jobs", "delete", ""): "no Jobs",
    ("apps", "deployments", "get", ""): "no Deployments",
    ("apps", "deployments", "list", ""): "no Deployments",
    ("apps", "deployments", "watch", ""): "no Deployments",
    ("apps", "deployments", "create", ""): "no Deployments",
    ("", "persistentvolumeclaims", "get", ""): "no PVCs (an emptyDir workspace, as upstream)",
    ("", "persistentvolumeclaims", "list", ""): "no PVCs",
    ("", "persistentvolumeclaims", "create", ""): "no PVCs",
    ("", "persistentvolumeclaims", "delete", ""): "no PVCs",
    ("", "pods/log", "get", ""): "no logs read",
    ("", "pods", "get", ""): "read from the cache", ("", "services", "get", ""): "the cache",
    ("", "namespaces", "get", ""): "the cache",
    ("", "configmaps", "get", ""): "watched in its own namespace (Role), by name elsewhere",
    ("", "pods", "deletecollection", ""): "each run's Pod deleted by name",
    ("", "secrets", "update", ""): "patch", ("rbac.authorization.k8s.io", "roles",
                                             "update", ""): "patch",
    ("networking.k8s.io", "networkpolicies", "update", ""): "patch",
    ("vteam.ambient-code", "agenticsessions/status", "update", ""): "patch",
    ("", "serviceaccounts", "delete", ""): "owner references delete them",
    ("rbac.authorization.k8s.io", "roles", "delete", ""): "owner references",
    ("vteam.ambient-code", "projectsettings", "get", ""): "watched (list, watch)",
    ("vteam.ambient-code", "projectsettings/status", "update", ""): "patch",
}
DASHBOARD_SERIES = {
    # Every series upstream's Grafana dashboard (ambient-operator-dashboard.json) queries, and
    # whether --upstream-metrics exports it (README, "Metrics": why not, where not).
    "ambient_sessions_active": True, "ambient_sessions_pending": True,
    "ambient_sessions_by_project": True, "ambient_session_startup_duration_bucket": True,
    "ambient_session_total_duration_bucket": True, "ambient_session_phase_transitions": True,
    "ambient_sessions_by_user": True, "ambient_reconcile_duration_bucket": True,
    "ambient_reconcile_retries": True, "ambient_session_timeouts": True,
    "ambient_sessions_completed": True,
    "ambient_image_pull_duration_bucket": False, "ambient_token_provision_duration_bucket": False,
    "ambient_s3_errors": False, "ambient_token_refresh_errors": False,
    "ambient_pod_restarts": False, "ambient_s3_storage_bytes": False,
}


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------
def render(directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run([str(KUBECTL), "kustomize", str(directory)], capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render(CONFIG / "upstream")


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def upstream_objects() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(UPSTREAM_OPERATOR.read_text()) if doc]


def container_of(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == [NAME]
    return dict(containers[0])


def grants(objects: list[dict[str, Any]], *kinds: str, account: str | None = None
           ) -> set[Grant]:
    """The (group, resource, verb, name) of every rule of the roles of ``kinds``; with
    ``account``, only of those bound to that ServiceAccount of ``NS``."""
    bound = {(b["roleRef"]["kind"], b["roleRef"]["name"]) for b in objects
             if b["kind"] in ("ClusterRoleBinding", "RoleBinding")
             and {"kind": "ServiceAccount", "name": account, "namespace": NS} in b["subjects"]}
    out = set()
    for obj in objects:
        if obj["kind"] in kinds and (account is None
                                     or (obj["kind"], obj["metadata"]["name"]) in bound):
            for rule in obj["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            for name in rule.get("resourceNames") or [""]:
                                out.add((group, resource, verb, name))
    return out


def test_overlay_is_upstreams_operator_by_name(objects: list[dict[str, Any]]) -> None:
    upstream = one(upstream_objects(), "Deployment", NAME)
    deployment = one(objects, "Deployment", NAME)
    # Everything in upstream's namespace; upstream's Namespace is not ours to change (ours
    # would label it pod-security restricted, which upstream's other pods do not meet).
    assert "Namespace" not in {o["kind"] for o in objects}
    assert {o["metadata"].get("namespace", NS) for o in objects} == {NS}
    spec, template = deployment["spec"], deployment["spec"]["template"]
    assert spec["selector"] == upstream["spec"]["selector"] == {"matchLabels": {"app": NAME}}
    assert template["metadata"]["labels"]["app"] == NAME
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert template["spec"]["serviceAccountName"] == NAME
    one(objects, "ServiceAccount", NAME)
    binding = one(objects, "ClusterRoleBinding", NAME)
    assert binding["roleRef"]["name"] == NAME
    one(objects, "ClusterRole", NAME)
    for obj in objects:
        if obj["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            assert obj["subjects"] == [{"kind": "ServiceAccount", "name": NAME,
                                        "namespace": NS}], obj["metadata"]["name"]
    # our image and command; upstream's arguments as they are, then ours
    container, theirs = container_of(deployment), container_of(upstream)
    assert container["image"].startswith("quay.io/ambient_code/ambient-ctrl:")
    assert container["command"] == ["ambient-ctrl", "run"]
    assert container["args"][:len(theirs["args"])] == theirs["args"]
    assert container["args"][len(theirs["args"]):] == ["--metrics-secure",
                                                       "--metrics-bind-address=:8443",
                                                       "--log-format=json"]
    # hardened, probes on :8081, /metrics on :8443 (HTTPS) as config/manager's
    pod_security = template["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] != 0
    security = container["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8081, "https": 8443}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "health"}
    service = one(objects, "Service", "agenticsession-operator-metrics")
    assert service["spec"]["selector"] == {"app": NAME}
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("https", 8443, "https")]  # what config/prometheus's ServiceMonitor scrapes


def test_overlay_environment_is_upstreams(objects: list[dict[str, Any]]) -> None:
    """Every variable upstream's Deployment gives its operator that this one reads, from the
    same source (a value, the pod's namespace, an optional key of the same ConfigMap or
    Secret); the rest are left out for the reasons in DROPPED_ENV."""
    ours = {v["name"]: v for v in container_of(one(objects, "Deployment", NAME))["env"]}
    theirs = {v["name"]: v for v in container_of(one(upstream_objects(), "Deployment",
                                                     NAME))["env"]}
    assert set(theirs) - set(ours) == set(DROPPED_ENV)
    assert set(ours) - set(theirs) == set(ADDED_ENV)
    for name in set(ours) & set(theirs):
        assert ours[name] == theirs[name], name
    assert ours["DEFAULT_INACTIVITY_TIMEOUT"] == {"name": "DEFAULT_INACTIVITY_TIMEOUT",
                                                  "value": "86400"}
    assert {"NAMESPACE", "BACKEND_NAMESPACE", "AMBIENT_CODE_RUNNER_IMAGE", "STATE_SYNC_IMAGE",
            "IMAGE_PULL_POLICY", "S3_ENDPOINT", "S3_BUCKET", "USE_VERTEX", "CLOUD_ML_REGION",
            "ANTHROPIC_VERTEX_PROJECT_ID", "GOOGLE_APPLICATION_CREDENTIALS", "LANGFUSE_ENABLED",
            "MLFLOW_TRACING_ENABLED", "GOOGLE_OAUTH_CLIENT_ID", "GOOGLE_OAUTH_CLIENT_SECRET",
            "DEFAULT_INACTIVITY_TIMEOUT", "MAX_CONCURRENT_RECONCILES"} <= set(ours)
    # The registry and the models manifest are watched, not mounted.
    assert [m["mountPath"] for m in container_of(one(objects, "Deployment", NAME))
            ["volumeMounts"]] == ["/tmp"]


def test_registry_is_upstreams(objects: list[dict[str, Any]]) -> None:
    registry = one(objects, "ConfigMap", REGISTRY)
    assert list(registry["data"]) == [REGISTRY_KEY]
    entries = orjson.loads(registry["data"][REGISTRY_KEY])
    assert [e["id"] for e in entries] == ["claude-agent-sdk", "gemini-cli"]
    for entry in entries:
        assert {"container", "sandbox", "auth", "featureGate"} <= set(entry)
        assert entry["container"]["port"] == 8001


def test_permissions_differ_from_upstreams_by_the_documented_grants(
        objects: list[dict[str, Any]]) -> None:
    """Our grants (the ClusterRole upstream's name now carries, and the Roles in the operator's
    namespace) against upstream's agentic-operator ClusterRole. A change of config/rbac that
    changes this difference must say why here and in the README ("Permissions")."""
    ours = grants(objects, "ClusterRole", "Role", account=NAME)
    theirs = grants(upstream_objects(), "ClusterRole")
    # The scrapers' ClusterRole comes along, bound to no one (README "Metrics").
    reader = one(objects, "ClusterRole", READER_ROLE)
    assert reader["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    assert sorted(ours - theirs) == sorted(BEYOND_UPSTREAM), \
        "beyond upstream's ClusterRole: update BEYOND_UPSTREAM and the README"
    assert sorted(theirs - ours) == sorted(NOT_NEEDED), \
        "upstream's grants not needed: update NOT_NEEDED and the README"


@pytest.mark.parametrize("directory", ["crd", "rbac", "manager", "prometheus", "default",
                                       "monitored", "samples", "upstream"])
def test_kustomizations_render(directory: str) -> None:
    objects = render(CONFIG / directory)
    assert objects
    # Only the opt-in monitoring needs the Prometheus Operator's CRDs: config/default and the
    # drop-in apply to a cluster without them.
    monitoring = {o["kind"] for o in objects
                  if o["apiVersion"].startswith("monitoring.coreos.com/")}
    wanted = {"ServiceMonitor", "PrometheusRule"} if directory in ("prometheus",
                                                                   "monitored") else set()
    assert monitoring == wanted


# --------------------------------------------------------------------------------------------
# the platform: upstream's operator installed, then replaced
# --------------------------------------------------------------------------------------------
@dataclass
class Platform:
    url: str
    kubeconfig: Path
    workdir: Path
    api: client.ApiClient
    kubectl_env: dict[str, str]
    applied: str
    """kubectl's output of applying the overlay over upstream's operator."""
    scraper: str = ""
    """The token of a ServiceAccount bound to the metrics-reader ClusterRole."""

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def kubectl(self, *args: str, input: str | None = None) -> str:
        done = subprocess.run([str(KUBECTL), "--kubeconfig", str(self.kubeconfig), *args],
                              input=input, capture_output=True, text=True, timeout=60,
                              env=self.kubectl_env, check=False)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    def stored(self, kind: str, name: str, namespace: str | None = NS) -> dict[str, Any]:
        where = ("-n", namespace) if namespace else ()
        return dict(orjson.loads(self.kubectl("get", *where, kind, name, "-o", "json")))

    def key(self, kind: str, name: str, key: str) -> str | None:
        """A ConfigMap's or Secret's key as the kubelet reads it (None: absent)."""
        try:
            if kind == "configmaps":
                return (self.core.read_namespaced_config_map(name, NS).data or {}).get(key)
            value = (self.core.read_namespaced_secret(name, NS).data or {}).get(key)
            return None if value is None else base64.b64decode(value).decode()
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def set_registry(self, entries: list[dict[str, Any]]) -> None:
        self.core.patch_namespaced_config_map(REGISTRY, NS, {
            "data": {REGISTRY_KEY: orjson.dumps(entries).decode()}})

    def registry(self) -> list[dict[str, Any]]:
        data = self.core.read_namespaced_config_map(REGISTRY, NS).data or {}
        return list(orjson.loads(data[REGISTRY_KEY]))

    def create_session(self, **kwargs: Any) -> str:
        body = backend_session(PROJECT, registry=self.registry(), **kwargs)
        return str(self.custom.create_namespaced_custom_object(
            GROUP, VERSION, PROJECT, PLURAL, body)["metadata"]["name"])

    def session(self, name: str) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, PROJECT, PLURAL,
                                                             name))

    def pod(self, name: str) -> dict[str, Any]:
        answer = self.core.read_namespaced_pod(f"{name}-runner", PROJECT,
                                               _preload_content=False)
        return dict(orjson.loads(answer.data))


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """The server; upstream's operator as upstream's manifests install it (with its namespace
    and registry), the MinIO credentials the platform has, a project as the backend makes it
    (managed namespace, ambient-runner-secrets); then ``kubectl apply -f -`` of the rendered
    overlay."""
    workdir = tmp_path_factory.mktemp("dropin")
    process, url, kubeconfig = start_apiserver_process(
        workdir / "kubeconfig", log=workdir / "apiserver.log",
        extra_args=["--simulate", "kubelet,kubevirt"])
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    api = ClosingApiClient(configuration)
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["KUBECACHEDIR"] = str(workdir / "kube-cache")
    world = Platform(url, kubeconfig, workdir, api, env, "")
    try:
        world.kubectl("create", "namespace", NS)
        # upstream's registry, as its manifests make it (ours is the same, plus our labels)
        upstream_registry = one(render(CONFIG / "upstream"), "ConfigMap", REGISTRY)
        del upstream_registry["metadata"]["labels"]
        world.kubectl("apply", "-k", str(CONFIG / "crd"))  # upstream's schema (ours adds)
        world.kubectl("apply", "-f", str(UPSTREAM_OPERATOR))
        world.kubectl("apply", "-f", "-", input=orjson.dumps(upstream_registry).decode())
        world.core.create_namespaced_secret(NS, {
            "metadata": {"name": "minio-credentials"},
            "stringData": {"access-key": "minio", "secret-key": "not-a-real-one"}})
        world.core.create_namespace({"metadata": {"name": PROJECT, "labels": {
            "ambient-code.io/managed": "true"}}})
        world.core.create_namespaced_secret(PROJECT, {
            "metadata": {"name": "ambient-runner-secrets"},
            "stringData": {"ANTHROPIC_API_KEY": "sk-ant-not-a-real-key"}})
        rendered = subprocess.run([str(KUBECTL), "kustomize", str(CONFIG / "upstream")],
                                  capture_output=True, text=True, timeout=30, check=True)
        world.applied = world.kubectl("apply", "-f", "-", input=rendered.stdout)
        world.scraper = scraper_token(api, NS, "prometheus")
        yield world
    finally:
        api.close()
        code = stop_process(process, timeout=10)
        assert code == 0, f"the API server did not shut down cleanly ({code})"


# --------------------------------------------------------------------------------------------
# the operator, as the kubelet would run the stored Deployment
# --------------------------------------------------------------------------------------------
@dataclass
class Operator:
    process: subprocess.Popen[bytes]
    log: Path
    metrics: str
    probes: str
    env: dict[str, str]
    """The container's environment as resolved."""

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def container_command(platform: Platform, metrics: str, probes: str
                      ) -> tuple[list[str], dict[str, str]]:
    """The stored Deployment's container: command + args (the bind addresses on 127.0.0.1),
    and its environment resolved as the kubelet resolves it."""
    deployment = platform.stored("deployment", NAME)
    container = container_of(deployment)
    command = list(container["command"])
    assert command[0] == "ambient-ctrl"  # the image's console script: the virtualenv's here
    argv = [str(BIN / "ambient-ctrl"), *command[1:]]
    for arg in container["args"]:
        if arg.startswith("--metrics-bind-address="):
            arg = f"--metrics-bind-address={metrics}"
        elif arg.startswith("--health-probe-bind-address="):
            arg = f"--health-probe-bind-address={probes}"
        argv.append(arg)
    env: dict[str, str] = {}
    for var in container.get("env", ()):
        source = var.get("valueFrom")
        if source is None:
            env[var["name"]] = var.get("value", "")
        elif "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "metadata.namespace", var
            env[var["name"]] = deployment["metadata"]["namespace"]
        else:
            kind = "configmaps" if "configMapKeyRef" in source else "secrets"
            ref = source.get("configMapKeyRef") or source["secretKeyRef"]
            value = platform.key(kind, ref["name"], ref["key"])
            if value is None:
                assert ref.get("optional"), f"{var['name']}: a required key is missing"
                continue
            env[var["name"]] = value
    return argv, env


def start_operator(platform: Platform, label: str) -> Operator:
    metrics, probes = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    argv, env = container_command(platform, metrics, probes)
    log = platform.workdir / f"operator-{label}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv, env={"PATH": os.environ.get("PATH", ""), "KUBECONFIG": str(
                platform.kubeconfig), **env},
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    return Operator(process, log, f"https://{metrics}/metrics", f"http://{probes}", env)


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


@contextlib.contextmanager
def running_operator(platform: Platform) -> Iterator[Operator]:
    """An operator started from the stored Deployment, ready; stopped afterwards (exit 0)."""
    operator = start_operator(platform, f"run-{free_port()}")

    def ready() -> bool:
        if operator.process.poll() is not None:
            raise AssertionError(f"the operator exited {operator.process.returncode}: "
                                 f"{operator.log_tail()}")
        return http_get(f"{operator.probes}/readyz")[0] == 200

    try:
        eventually(ready, timeout=30, ignoring=(OSError,),
                   message="the operator never became ready")
        yield operator
    finally:
        code = stop_process(operator.process, timeout=40)
    assert code == 0, f"the operator exited {code}: {operator.log_tail()}"


def wait_running(platform: Platform, operator: Operator, name: str) -> dict[str, Any]:
    def running() -> dict[str, Any]:
        phase = (platform.session(name).get("status") or {}).get("phase")
        assert phase == "Running", f"{name} is {phase}; operator log: {operator.log_tail()}"
        return platform.session(name)
    return eventually(running, timeout=30)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v.get("value", "") for v in container.get("env") or ()}


# --------------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------------
@LOCAL
def test_overlay_replaces_upstreams_operator_in_place(platform: Platform,
                                                      objects: list[dict[str, Any]]) -> None:
    applied = platform.applied
    for line in ("deployment.apps/agentic-operator configured",
                 "serviceaccount/agentic-operator configured",
                 "clusterrole.rbac.authorization.k8s.io/agentic-operator configured",
                 "clusterrolebinding.rbac.authorization.k8s.io/agentic-operator configured",
                 f"configmap/{REGISTRY} configured"):
        assert line in applied, applied
    stored = platform.stored("deployment", NAME)
    container = container_of(stored)
    assert container["command"] == ["ambient-ctrl", "run"]
    assert stored["spec"]["strategy"] == {"type": "Recreate"}  # rollingUpdate gone
    assert {v["name"] for v in container["env"]}.isdisjoint(DROPPED_ENV)
    assert [v["name"] for v in stored["spec"]["template"]["spec"]["volumes"]] == ["tmp"]
    rules = platform.stored("clusterrole", NAME, None)["rules"]
    assert rules == one(objects, "ClusterRole", NAME)["rules"]  # upstream's rules replaced
    assert platform.registry() == orjson.loads(one(objects, "ConfigMap", REGISTRY)["data"]
                                               [REGISTRY_KEY])
    # Applying again changes nothing.
    rendered = subprocess.run([str(KUBECTL), "kustomize", str(CONFIG / "upstream")],
                              capture_output=True, text=True, timeout=30, check=True)
    again = platform.kubectl("apply", "-f", "-", input=rendered.stdout)
    assert again.count(" unchanged") == len(objects), again


@pytest.fixture()
def imageless(platform: Platform) -> Iterator[None]:
    """The registry with a runtime that names no image, for one test: restored after it, so
    the tests pass in any order."""
    text = (platform.core.read_namespaced_config_map(REGISTRY, NS).data or {})[REGISTRY_KEY]
    registry = orjson.loads(text)
    if NO_IMAGE["id"] not in {e["id"] for e in registry}:
        platform.set_registry([*registry, NO_IMAGE])
    yield
    # The text as it was (the same entries written anew would differ from what kubectl applied)
    platform.core.patch_namespaced_config_map(REGISTRY, NS, {"data": {REGISTRY_KEY: text}})


@LOCAL
@pytest.mark.usefixtures("imageless")
def test_a_session_runs_with_the_deployments_environment(platform: Platform,
                                                         objects: list[dict[str, Any]]
                                                         ) -> None:
    """The operator configured only through the overlay's Deployment: a backend session of
    upstream's default runtime, and one of a runtime without an image, reach Running."""
    rendered = {v["name"]: v.get("value") for v in
                container_of(one(objects, "Deployment", NAME))["env"]}
    with running_operator(platform) as operator:
        # The pod's namespace, the absent operator-config and Secrets leave their variables
        # unset; everything else is the rendered value.
        assert operator.env == {**{k: v for k, v in rendered.items() if v is not None},
                                "NAMESPACE": NS, "BACKEND_NAMESPACE": NS}
        default = platform.create_session()
        imageless = platform.create_session(runner_type=NO_IMAGE["id"])
        for name in (default, imageless):
            wait_running(platform, operator, name)
        pod = platform.pod(default)
        runner = pod["spec"]["containers"][0]
        assert runner["image"] == "quay.io/ambient_code/vteam_claude_runner:latest"
        every = [*pod["spec"].get("initContainers", ()), *pod["spec"]["containers"]]
        assert {c["imagePullPolicy"] for c in every} == {rendered["IMAGE_PULL_POLICY"]}
        assert env_of(runner)["BACKEND_API_URL"] == \
            f"http://backend-service.{NS}.svc.cluster.local:8080/api"
        sync = next(c for c in pod["spec"]["containers"] if c["name"] == "state-sync")
        assert env_of(sync)["S3_ENDPOINT"] == rendered["S3_ENDPOINT"]
        assert env_of(sync)["S3_BUCKET"] == rendered["S3_BUCKET"]
        assert sync["image"] == rendered["STATE_SYNC_IMAGE"]
        assert platform.pod(imageless)["spec"]["containers"][0]["image"] == \
            rendered["AMBIENT_CODE_RUNNER_IMAGE"]


@LOCAL
@pytest.mark.usefixtures("imageless")
def test_the_platform_teams_edits_reach_the_operator(platform: Platform) -> None:
    """``kubectl set env`` on the Deployment (a pinned runner image, upstream's metric names
    on), as a platform team customizes it: the next operator (Recreate) runs with them, a new
    runner without a registry image gets the pinned one, and upstream's series are on
    /metrics with upstream's labels."""
    before = orjson.loads(platform.kubectl("-n", NS, "get", f"deployment/{NAME}", "-o", "json"))
    env = {e["name"]: e.get("value") for e in
           before["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    platform.kubectl("-n", NS, "set", "env", f"deployment/{NAME}",
                     f"AMBIENT_CODE_RUNNER_IMAGE={PINNED_IMAGE}",
                     "AMBIENT_CTRL_UPSTREAM_METRICS=true")
    try:
        _reach_the_operator(platform)
    finally:  # as the platform team left it: the other tests run in any order
        platform.kubectl("-n", NS, "set", "env", f"deployment/{NAME}", *(
            f"{name}={env[name]}" if env.get(name) is not None else f"{name}-"
            for name in ("AMBIENT_CODE_RUNNER_IMAGE", "AMBIENT_CTRL_UPSTREAM_METRICS")))


def _reach_the_operator(platform: Platform) -> None:
    with running_operator(platform) as operator:
        name = platform.create_session(runner_type=NO_IMAGE["id"])
        wait_running(platform, operator, name)
        assert platform.pod(name)["spec"]["containers"][0]["image"] == PINNED_IMAGE
        platform.custom.patch_namespaced_custom_object(GROUP, VERSION, PROJECT, PLURAL, name, {
            "metadata": {"annotations": {"ambient-code.io/desired-phase": "Stopped"}}})
        eventually(lambda: (platform.session(name).get("status") or {}).get("phase")
                   == "Stopped", timeout=30, message="the session never stopped")

        def scraped() -> tuple[set[str], dict[str, list[dict[str, str]]]]:
            status, text = https_get(operator.metrics, platform.scraper)
            assert status == 200, text
            families, series = set(), {}
            for family in text_string_to_metric_families(text):
                families.add(family.name)
                for sample in family.samples:
                    series.setdefault(sample.name, []).append(dict(sample.labels))
            assert "ambient_sessions_completed" in series
            return families, series

        families, series = eventually(scraped, timeout=10)
    # Every family the dashboard charts that we offer is exported (a counter or histogram has
    # series once something was recorded, as with OTLP); the others are not.
    offered = {name.removesuffix("_bucket") for name, on in DASHBOARD_SERIES.items() if on}
    assert offered <= families, offered - families
    assert not {name.removesuffix("_bucket") for name, on in DASHBOARD_SERIES.items()
                if not on} & families
    assert {"namespace": PROJECT, "from_phase": "Running", "to_phase": "Stopping"} in \
        series["ambient_session_phase_transitions"]
    assert {"namespace": PROJECT, "final_phase": "Stopped"} in \
        series["ambient_sessions_completed"]
    assert {"namespace": PROJECT, "user": "unknown"} in series["ambient_sessions_by_user"]
    assert any(s.get("namespace") == PROJECT for s in
               series["ambient_session_startup_duration_bucket"])
    assert {s["phase"] for s in series["ambient_reconcile_duration_bucket"]} >= {"Running"}


@LOCAL
def test_vertex_on_without_its_settings_stops_the_operator(platform: Platform) -> None:
    """USE_VERTEX from upstream's operator-config ConfigMap, without the project, region and
    credentials: the operator refuses to start, one line, exit 2 (upstream's preflight)."""
    platform.core.create_namespaced_config_map(NS, {
        "metadata": {"name": "operator-config"},
        "data": {"USE_VERTEX": "true", "CLOUD_ML_REGION": "us-east5"}})
    try:
        operator = start_operator(platform, "vertex")
        code = operator.process.wait(timeout=30)
        assert code == 2, operator.log_tail()
        assert operator.env["USE_VERTEX"] == "true"
        lines = operator.log.read_text().strip().splitlines()
        assert len(lines) == 1, lines
        line = orjson.loads(lines[0])  # --log-format=json, from the Deployment
        assert line["level"] == "error"
        assert line["msg"] == ("cannot start: USE_VERTEX is on but ANTHROPIC_VERTEX_PROJECT_ID, "
                               "GOOGLE_APPLICATION_CREDENTIALS is not set")
    finally:
        platform.core.delete_namespaced_config_map("operator-config", NS)
