"""Issue 13's "Done when": the operator as a drop-in for ambient-code's, with real processes.

The local API server runs as its own process with the kubelet and KubeVirt simulators (and its
admin port: request counts, fault injection); the operator runs as its own process
(``ambient-ctrl run``) with the environment upstream's Deployment gives its operator
(``NAMESPACE``, ``BACKEND_NAMESPACE``, ``IMAGE_PULL_POLICY``, ``S3_*``, ...). The cluster is set
up as the platform sets it up (:func:`reconcilers.install.install`: the CRDs, a managed
namespace with ``ambient-runner-secrets``, the agent registry upstream ships plus ADR-0008's
``claude-kubevirt``). Sessions are created with exactly the body upstream's backend sends
(:func:`reconcilers.samples.backend_session`), stopped and started as the backend does (the
intent annotations), and kept active as the backend does (``status.lastActivityTime`` through
the status subresource, GET + update). Everything is read back with the official
``kubernetes`` client, and checked against ``shared/UPSTREAM-CONTRACT.md`` (section numbers
in the comments).

Not testable here: the runner's own behaviour (no runner image runs; the simulators only act
out container states), the NetworkPolicy's enforcement (no CNI), the kubelet refreshing a
mounted token file and virtiofs serving it to a guest (the simulator shows the virt-launcher
pod mounting the Secret; what a guest reads is KubeVirt's part).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from prometheus_client.parser import text_string_to_metric_families

from ambient_ctrl.testing import eventually, free_port, start_apiserver_process, stop_process
from ambient_ctrl.testing import settled as until_quiet
from e2e.cluster import api_client_for, operator_serving
from informers.rest import Transport, load_configuration
from reconcilers.install import DEMO_API_KEY, install, managed_namespace
from reconcilers.samples import UPSTREAM_REGISTRY, backend_session

pytestmark = [pytest.mark.timeout(240),
              pytest.mark.local_only("starts its own API server and operator processes")]

NS = "contract"
"""The project: a managed namespace with ambient-runner-secrets."""
PROJECT_NS = "contract-project"
"""A project whose ProjectSettings set the inactivity timeout."""
BARE_NS = "contract-no-secrets"
"""A managed namespace the backend has not yet given its ambient-runner-secrets."""
OPERATOR_NS = "ambient-code"
"""The operator's and the backend's namespace (upstream deploys both there)."""
GROUP, VERSION, PLURAL = "vteam.ambient-code", "v1alpha1", "agenticsessions"
AGENT = "agenticsession-operator"
"""The operator's User-Agent product, for the server's request counts."""
VM_RUNTIME = "claude-kubevirt"
MINIO_SECRET_KEY = "minio-secret-not-a-real-one"
BACKEND_PUBLIC_URL = "https://ambient.example.com"
BROKEN: list[dict[str, Any]] = [
    {"id": "bad-quantity",
     "container": {"image": "quay.io/ambient_code/vteam_claude_runner:latest",
                   "env": {"RUNNER_TYPE": "bad-quantity"},
                   "resources": {"requests": {"cpu": "lots"}}}},
    {"id": "bad-vmconfig", "executionKind": "kubevirt-vm",
     "container": {"env": {"RUNNER_TYPE": "bad-vmconfig"}},
     "vmConfig": {"containerDiskImage": "quay.io/ambient_code/fedora-runner:latest",
                  "cpu": "two", "memory": "4Gi"}},
]
REGISTRY = [*UPSTREAM_REGISTRY, *BROKEN]
OPERATOR_ENV = {
    # components/manifests/base/core/operator-deployment.yaml, as a cluster would fill it in
    "MAX_CONCURRENT_RECONCILES": "10", "NAMESPACE": OPERATOR_NS,
    "BACKEND_NAMESPACE": OPERATOR_NS, "BACKEND_API_URL": "http://backend-service:8080/api",
    "AMBIENT_CODE_RUNNER_IMAGE": "quay.io/ambient_code/vteam_claude_runner:latest",
    "IMAGE_PULL_POLICY": "IfNotPresent",
    "STATE_SYNC_IMAGE": "quay.io/ambient_code/vteam_state_sync:latest",
    "S3_ENDPOINT": "http://minio.ambient-code.svc:9000", "S3_BUCKET": "ambient-sessions",
    "DEFAULT_INACTIVITY_TIMEOUT": "86400", "BACKEND_PUBLIC_URL": BACKEND_PUBLIC_URL,
    "DEPLOYMENT_ENV": "production", "VERSION": "latest",
}
BACKEND_API_URL = f"http://backend-service.{OPERATOR_NS}.svc.cluster.local:8080/api"

DESIRED_PHASE = "ambient-code.io/desired-phase"
STOP_REQUESTED_AT = "ambient-code.io/stop-requested-at"
START_REQUESTED_AT = "ambient-code.io/start-requested-at"
STOP_REASON = "ambient-code.io/stop-reason"
RUNNER_TOKEN_SECRET = "ambient-code.io/runner-token-secret"
RUNNER_SA = "ambient-code.io/runner-sa"
TOKEN_REFRESHED_AT = "ambient-code.io/token-refreshed-at"

RUNNER_ENV = [
    # §4.4, in emission order, for this operator's configuration and a backend session with
    # one repo; then the registry's container.env (sorted), which the session's
    # environmentVariables (the same two) override in place.
    "DEBUG", "AGENTIC_SESSION_NAME", "AGENTIC_SESSION_NAMESPACE", "SESSION_ID", "PROJECT_NAME",
    "WORKSPACE_PATH", "ARTIFACTS_DIR", "AGUI_PORT", "AGUI_TOKEN", "GOOGLE_MCP_CREDENTIALS_DIR",
    "GOOGLE_OAUTH_CLIENT_ID", "GOOGLE_OAUTH_CLIENT_SECRET", "GOOGLE_OAUTH_REDIRECT_URI",
    "USER_ID", "USER_NAME", "INITIAL_PROMPT", "LLM_MODEL", "LLM_TEMPERATURE", "LLM_MAX_TOKENS",
    "USE_AGUI", "TIMEOUT", "BACKEND_API_URL", "USE_VERTEX", "CLAUDE_CODE_USE_VERTEX",
    "REPOS_JSON", "RUNNER_STATE_DIR", "RUNNER_TYPE"]
RUNNER_RULES = [
    # §4.10, exactly
    {"apiGroups": ["vteam.ambient-code"], "resources": ["agenticsessions"],
     "verbs": ["get", "list", "watch", "create", "update", "patch"]},
    {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews"],
     "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": ["mlflow.kubeflow.org"], "resources": ["experiments"],
     "verbs": ["get", "list", "update"]},
]
REPO = "https://github.com/ambient-code/platform"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def rfc3339(moment: dt.datetime | None = None) -> str:
    return (moment or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64(text: str) -> str:
    return base64.b64decode(text).decode()


# the platform ---------------------------------------------------------------------------------
@dataclass
class Platform:
    """The two processes, a kubernetes client on the server, and the operator's endpoints."""

    api: client.ApiClient
    admin: str
    metrics_url: str
    operator: subprocess.Popen[bytes]
    operator_log: Path
    core: client.CoreV1Api = field(init=False)
    custom: client.CustomObjectsApi = field(init=False)
    rbac: client.RbacAuthorizationV1Api = field(init=False)
    net: client.NetworkingV1Api = field(init=False)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.rbac = client.RbacAuthorizationV1Api(self.api)
        self.net = client.NetworkingV1Api(self.api)

    # sessions, as the backend handles them
    def create(self, namespace: str = NS, **kwargs: Any) -> str:
        body = backend_session(namespace, registry=REGISTRY, **kwargs)
        created = self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace,
                                                              PLURAL, body)
        return str(created["metadata"]["name"])

    def create_vm(self, namespace: str = NS, **kwargs: Any) -> str:
        """A VM session: the user picked ADR-0008's runtime (the backend puts its entry's
        env into the session; our spec.runtime selects the entry)."""
        return self.create(namespace, runner_type=VM_RUNTIME, runtime=VM_RUNTIME, **kwargs)

    def session(self, name: str, namespace: str = NS) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                             name))

    def phase(self, name: str, namespace: str = NS) -> str:
        return str((self.session(name, namespace).get("status") or {}).get("phase", ""))

    def wait_phase(self, name: str, phase: str, *, namespace: str = NS,
                   timeout: float = 20.0) -> dict[str, Any]:
        eventually(lambda: self.phase(name, namespace) == phase, timeout=timeout,
                   message=f"{name} never reached {phase} (last: {self.phase(name, namespace)};"
                           f" operator log: {self.log_tail()})")
        return self.session(name, namespace)

    def condition(self, name: str, kind: str, namespace: str = NS) -> dict[str, Any]:
        status = self.session(name, namespace).get("status") or {}
        return next((dict(c) for c in status.get("conditions") or () if c["type"] == kind), {})

    def annotate(self, name: str, annotations: dict[str, str | None]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name, {
            "metadata": {"annotations": annotations}})

    def wait_cleared(self, name: str, *keys: str) -> dict[str, str]:
        """The session's annotations once they lack ``keys`` (the operator clears an intent
        with a write after the status write that shows the phase, as upstream does)."""
        def cleared() -> bool:
            annotations = self.session(name)["metadata"].get("annotations") or {}
            return not any(k in annotations for k in keys)

        eventually(cleared, message=f"{keys} not cleared on {name}")
        return dict(self.session(name)["metadata"].get("annotations") or {})

    def stop(self, name: str, **extra: str) -> None:
        """The backend's StopSession (be/s:3007-3008)."""
        self.annotate(name, {DESIRED_PHASE: "Stopped", STOP_REQUESTED_AT: rfc3339(), **extra})

    def start(self, name: str) -> None:
        """The backend's StartSession (be/s:2902-2903)."""
        self.annotate(name, {DESIRED_PHASE: "Running", START_REQUESTED_AT: rfc3339()})

    def touch(self, name: str, namespace: str = NS) -> None:
        """The backend records activity: GET, set status.lastActivityTime, UpdateStatus
        (be/agui:1068-1123), again on a conflict."""
        for _ in range(10):
            session = self.custom.get_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, name)
            session.setdefault("status", {})["lastActivityTime"] = rfc3339()
            try:
                self.custom.replace_namespaced_custom_object_status(
                    GROUP, VERSION, namespace, PLURAL, name, session)
                return
            except ApiException as error:
                if error.status != 409:
                    raise
        raise AssertionError(f"could not record activity on {name}")

    # children
    def read(self, kind: str, name: str, namespace: str = NS) -> dict[str, Any] | None:
        readers: dict[str, Callable[..., Any]] = {
            "Pod": self.core.read_namespaced_pod, "Service": self.core.read_namespaced_service,
            "Secret": self.core.read_namespaced_secret,
            "ServiceAccount": self.core.read_namespaced_service_account,
            "Role": self.rbac.read_namespaced_role,
            "RoleBinding": self.rbac.read_namespaced_role_binding,
            "NetworkPolicy": self.net.read_namespaced_network_policy}
        try:
            if kind in ("VirtualMachine", "VirtualMachineInstance"):
                return dict(self.custom.get_namespaced_custom_object(
                    "kubevirt.io", "v1", namespace, kind.lower() + "s", name))
            return dict(orjson.loads(readers[kind](name, namespace,
                                                   _preload_content=False).data))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def launcher_pods(self, name: str, namespace: str = NS) -> list[dict[str, Any]]:
        answer = self.core.list_namespaced_pod(
            namespace, label_selector=f"kubevirt.io=virt-launcher,agentic-session={name}",
            _preload_content=False)
        return list(orjson.loads(answer.data)["items"])

    def events(self, name: str, namespace: str = NS) -> list[dict[str, Any]]:
        answer = self.core.list_namespaced_event(namespace, _preload_content=False)
        return [e for e in orjson.loads(answer.data)["items"]
                if e["involvedObject"].get("name") == name]

    def warnings(self, name: str, reason: str, namespace: str = NS) -> list[dict[str, Any]]:
        return [e for e in self.events(name, namespace)
                if e["type"] == "Warning" and e["reason"] == reason]

    # the operator and the server
    def requests(self) -> Counter[tuple[str, str]]:
        """The operator's requests so far, by (verb, resource[/subresource])."""
        with urllib.request.urlopen(f"{self.admin}/requests?agent={AGENT}", timeout=10) as r:
            rows = orjson.loads(r.read())
        counts: Counter[tuple[str, str]] = Counter()
        for row in rows:
            counts[(row["verb"], row["resource"])] += row["count"]
        return counts

    def admin_call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            f"{self.admin}{path}", method=method,
            data=None if body is None else orjson.dumps(body),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return orjson.loads(answer.read())

    def metric(self, name: str, **labels: str) -> float:
        with urllib.request.urlopen(self.metrics_url, timeout=10) as answer:
            text = answer.read().decode()
        return sum(sample.value for family in text_string_to_metric_families(text)
                   for sample in family.samples if sample.name == name
                   and all(sample.labels.get(k) == v for k, v in labels.items()))

    def log_tail(self) -> str:
        return self.operator_log.read_text(errors="replace")[-2000:]


@contextlib.contextmanager
def running_platform(workdir: Path, *, simulate: str,
                     prepare: Callable[[Transport, client.ApiClient], None],
                     operator_args: list[str]) -> Iterator[Platform]:
    """The local API server (``--simulate simulate``, an admin port), ``prepare``d with the
    CRDs and what the test needs, and our operator on it with ``operator_args``; both stopped
    (and checked to stop cleanly) on the way out."""
    admin_port = free_port()
    server, _, kubeconfig = start_apiserver_process(
        workdir / "kubeconfig", log=workdir / "apiserver.log",
        extra_args=["--simulate", simulate, "--admin-port", str(admin_port)])
    operator: subprocess.Popen[bytes] | None = None
    api: client.ApiClient | None = None
    try:
        api = api_client_for(kubeconfig)
        transport = Transport(load_configuration(str(kubeconfig)))
        try:
            prepare(transport, api)
        finally:
            transport.close()
        metrics, probes = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        log = workdir / "operator.log"
        env = {k: v for k, v in os.environ.items()
               if k != "KUBECONFIG" and not k.startswith("AMBIENT_CTRL_")}
        with open(log, "ab") as out:
            operator = subprocess.Popen(
                [sys.executable, "-m", "ambient_ctrl.cli", "run", "--kubeconfig",
                 str(kubeconfig), "--registry-namespace", OPERATOR_NS,
                 "--metrics-bind-address", metrics, "--health-probe-bind-address", probes,
                 *operator_args, "--user-agent", f"{AGENT}/e2e"],
                env={**env, **OPERATOR_ENV}, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)
        eventually(lambda: operator_serving(f"http://{probes}/readyz", operator, log), timeout=30,
                   message="the operator never became ready")
        yield Platform(api, f"http://127.0.0.1:{admin_port}", f"http://{metrics}/metrics",
                       operator, log)
    finally:
        if api is not None:
            api.close()
        if operator is not None:
            assert stop_process(operator, timeout=35) == 0, "the operator did not stop cleanly"
        assert stop_process(server) == 0, "the API server did not stop cleanly"


def _prepare(transport: Transport, api: client.ApiClient) -> None:
    """The CRDs and registry, a managed project with its ProjectSettings, a bare managed
    namespace, the platform's MinIO credentials; KubeVirt served."""
    install(transport, namespace=NS, registry_namespace=OPERATOR_NS, registry=REGISTRY)
    managed_namespace(transport, PROJECT_NS)
    eventually(lambda: transport.json("GET", "/apis/kubevirt.io/v1", verb="GET"),
               timeout=30, ignoring=(Exception,), message="KubeVirt CRDs not served")
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": BARE_NS,
                                        "labels": {"ambient-code.io/managed": "true"}}})
    core.create_namespaced_secret(OPERATOR_NS, {  # the platform's MinIO credentials
        "metadata": {"name": "minio-credentials"},
        "stringData": {"access-key": "minio", "secret-key": MINIO_SECRET_KEY}})
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, PROJECT_NS, "projectsettings", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "ProjectSettings",
            "metadata": {"name": "projectsettings"},
            "spec": {"groupAccess": [], "inactivityTimeoutSeconds": 2}})


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory.mktemp("upstream-contract"),
                          simulate="kubelet,kubevirt", prepare=_prepare,
                          operator_args=["--max-concurrent-reconciles=10",
                                         "--leader-elect=false"]) as running:
        yield running


class PhaseLog:
    """Every phase a session's watch shows, in order (a test's own watch on the server)."""

    def __init__(self, platform: Platform, name: str) -> None:
        self.phases: list[str] = []
        self.error: Exception | None = None
        self._closing = threading.Event()
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(platform, name), daemon=True)
        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait(10)

    def _run(self, platform: Platform, name: str) -> None:
        version = platform.session(name)["metadata"]["resourceVersion"]
        self._ready.set()
        try:
            for event in self._watch.stream(
                    platform.custom.list_namespaced_custom_object, GROUP, VERSION, NS, PLURAL,
                    field_selector=f"metadata.name={name}", resource_version=version,
                    timeout_seconds=60):
                phase = (event["object"].get("status") or {}).get("phase")
                if phase and (not self.phases or self.phases[-1] != phase):
                    self.phases.append(phase)
        except Exception as error:  # the stream cut by close(): what it saw stands
            if not self._closing.is_set():
                self.error = error

    def close(self, last: str) -> list[str]:
        """The phases seen, once the watch has shown ``last`` (what the test just read)."""
        eventually(lambda: self.phases[-1:] == [last] or self.error is not None, timeout=5,
                   message=f"the test's watch never showed {last}: {self.phases}")
        self._closing.set()
        self._watch.stop()
        self._thread.join(5)
        assert self.error is None, f"the test's watch failed: {self.error!r}"
        return self.phases


# runner views ----------------------------------------------------------------------------------
def container(pod: dict[str, Any], name: str = "ambient-code-runner") -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == name)


def pod_env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(pod)["env"]}


def cloud_init(platform: Platform, name: str) -> dict[str, Any]:
    secret = platform.read("Secret", f"{name}-cloudinit")
    assert secret is not None, "no cloud-init Secret"
    userdata = b64(secret["data"]["userdata"])
    assert userdata.startswith("#cloud-config\n")
    return dict(yaml.safe_load(userdata))


def guest_files(platform: Platform, name: str) -> dict[str, str]:
    return {f["path"]: f["content"] for f in cloud_init(platform, name)["write_files"]}


def env_file(text: str) -> dict[str, str]:
    """``NAME="value"`` lines (cloudinit.env_file) back into values."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, _, quoted = line.partition("=")
        out[key] = re.sub(r"\\(.)", r"\1", quoted[1:-1])
    return out


def runner_env(platform: Platform, name: str, vm: bool) -> dict[str, Any]:
    """What the runner gets: the Pod's container env, or the VM guest's runner env file."""
    if vm:
        return env_file(guest_files(platform, name)["/etc/ambient/runner.env"])
    pod = platform.read("Pod", f"{name}-runner")
    assert pod is not None, "no runner Pod"
    return pod_env(pod)


def workload(platform: Platform, name: str, vm: bool) -> dict[str, Any] | None:
    return platform.read("VirtualMachine" if vm else "Pod", f"{name}-runner")


def uid(obj: dict[str, Any] | None) -> str:
    return str((obj or {}).get("metadata", {}).get("uid", ""))


def later_second(previous: str) -> None:
    """Timestamps have second precision: wait until a new one can differ from ``previous``."""
    eventually(lambda: rfc3339() > previous, timeout=2, interval=0.05)


def jwt_claims(token: str) -> dict[str, Any]:
    header, payload, signature = token.split(".")
    assert signature, "an unsigned token"
    assert orjson.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"]
    return dict(orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def owner(obj: dict[str, Any]) -> tuple[str, str, bool]:
    ref = obj["metadata"]["ownerReferences"][0]
    return ref["kind"], ref["name"], bool(ref.get("controller"))


# the contract ------------------------------------------------------------------------------
def test_a_pod_session_has_every_child_the_platform_reads(platform: Platform) -> None:
    name = platform.create(repos=[{"url": REPO}])
    session = platform.wait_phase(name, "Running")
    session_uid = session["metadata"]["uid"]
    assert re.fullmatch(f"session-{UUID.pattern}", name)

    # the session as the CRD stores it (§1): branch defaulted, spec.project pruned
    spec = session["spec"]
    assert spec["repos"] == [{"url": REPO, "branch": "main", "autoPush": False}]
    assert spec["timeout"] == 300 and "project" not in spec
    # status and conditions the frontend shows (§1.3, §7)
    status = session["status"]
    assert status["phase"] == "Running" and status["startTime"]
    assert status["observedGeneration"] == session["metadata"]["generation"]
    assert status["reconciledRepos"] == [{"url": REPO, "name": "platform", "branch": "main",
                                          "clonedAt": status["reconciledRepos"][0]["clonedAt"],
                                          "status": "Ready"}]
    for condition in status["conditions"]:
        assert set(condition) >= {"type", "status", "reason", "message", "lastTransitionTime"}
    expected = {"Ready": ("True", "Running"), "PodCreated": ("True", "PodCreated"),
                "SecretsReady": ("True", "AllRequiredSecretsFound"),
                "PodScheduled": ("True", "Scheduled"),
                "RunnerStarted": ("True", "ContainerRunning"),
                "ReposReconciled": ("True", "Reconciled"),
                "S3Available": ("True", "Configured")}
    for kind, (state, reason) in expected.items():
        condition = platform.condition(name, kind)
        assert (condition.get("status"), condition.get("reason")) == (state, reason), kind
    assert platform.condition(name, "Ready")["message"] == "Session is running"
    assert platform.condition(name, "ReposReconciled")["message"] == \
        "Reconciled 1 repos (added: 1, removed: 0, branch changed: 0)"
    # §2.1: the annotations the backend reads (MintSessionGitHubToken needs runner-sa)
    annotations = session["metadata"]["annotations"]
    assert annotations[RUNNER_TOKEN_SECRET] == f"ambient-runner-token-{name}"
    assert annotations[RUNNER_SA] == f"ambient-session-{name}"

    # Pod <n>-runner (§0.5, §2.4, §4.2, §4.4, §4.5)
    pod = platform.read("Pod", f"{name}-runner")
    assert pod is not None
    assert pod["metadata"]["labels"] == {"agentic-session": name, "app": "ambient-code-runner"}
    assert owner(pod) == ("AgenticSession", name, True)
    assert pod["metadata"]["ownerReferences"][0]["uid"] == session_uid
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["terminationGracePeriodSeconds"] == 60
    assert pod["spec"]["automountServiceAccountToken"] is False
    runner = container(pod)
    assert pod["spec"]["containers"][0]["name"] == "ambient-code-runner"
    assert runner["image"] == "quay.io/ambient_code/vteam_claude_runner:latest"
    assert runner["imagePullPolicy"] == "IfNotPresent"
    assert runner["ports"] == [{"name": "agui", "containerPort": 8001, "protocol": "TCP"}]
    assert runner["readinessProbe"]["httpGet"]["path"] == "/health"
    assert runner["securityContext"]["allowPrivilegeEscalation"] is False
    assert runner["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert runner["resources"]["requests"] == {"cpu": "500m", "memory": "512Mi"}
    assert runner["resources"]["limits"]["memory"] == "8Gi"
    assert runner["resources"]["limits"]["cpu"] in ("2", "2000m")
    assert [e["name"] for e in runner["env"]] == RUNNER_ENV
    env = pod_env(pod)
    assert env["AGUI_TOKEN"] == {"secretKeyRef": {"name": f"ambient-runner-token-{name}",
                                                  "key": "agui-token"}}
    assert {k: env[k] for k in (
        "DEBUG", "AGENTIC_SESSION_NAME", "AGENTIC_SESSION_NAMESPACE", "SESSION_ID",
        "PROJECT_NAME", "WORKSPACE_PATH", "ARTIFACTS_DIR", "AGUI_PORT", "USER_ID", "USER_NAME",
        "INITIAL_PROMPT", "LLM_MODEL", "LLM_TEMPERATURE", "LLM_MAX_TOKENS", "USE_AGUI",
        "TIMEOUT", "BACKEND_API_URL", "USE_VERTEX", "CLAUDE_CODE_USE_VERTEX", "REPOS_JSON",
        "RUNNER_TYPE", "RUNNER_STATE_DIR", "GOOGLE_OAUTH_REDIRECT_URI")} == {
        "DEBUG": "true", "AGENTIC_SESSION_NAME": name, "AGENTIC_SESSION_NAMESPACE": NS,
        "SESSION_ID": name, "PROJECT_NAME": NS, "WORKSPACE_PATH": "/workspace",
        "ARTIFACTS_DIR": "artifacts", "AGUI_PORT": "8001", "USER_ID": "alice",
        "USER_NAME": "Alice", "INITIAL_PROMPT": "Fix the failing test",
        "LLM_MODEL": "claude-sonnet-4-6", "LLM_TEMPERATURE": "0.70", "LLM_MAX_TOKENS": "4000",
        "USE_AGUI": "true", "TIMEOUT": "300", "BACKEND_API_URL": BACKEND_API_URL,
        "USE_VERTEX": "0", "CLAUDE_CODE_USE_VERTEX": "0",
        "REPOS_JSON": f'[{{"autoPush":false,"branch":"main","url":"{REPO}"}}]',
        "RUNNER_TYPE": "claude-agent-sdk", "RUNNER_STATE_DIR": ".claude",
        "GOOGLE_OAUTH_REDIRECT_URI": f"{BACKEND_PUBLIC_URL}/oauth2callback"}
    assert "IS_RESUME" not in env, "a session's first runner is no resume (§3.6)"
    assert runner["envFrom"] == [{"secretRef": {"name": "ambient-runner-secrets"}}]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["runner-token"]["secret"] == {
        "secretName": f"ambient-runner-token-{name}", "defaultMode": 420,  # kube's default
        "items": [{"key": "k8s-token", "path": "bot-token"}]}
    mounts = {m["mountPath"]: m for m in runner["volumeMounts"]}
    assert mounts["/var/run/secrets/ambient"] == {"name": "runner-token", "readOnly": True,
                                                  "mountPath": "/var/run/secrets/ambient"}
    assert volumes["workspace"]["emptyDir"]["sizeLimit"] == "10Gi"
    assert mounts["/workspace"]["name"] == "workspace"
    assert mounts["/app/.claude"]["subPath"] == ".claude"
    # init-hydrate and state-sync: the registry entry asks for both (§4.3, §4.6, §4.14)
    init = pod["spec"]["initContainers"][0]
    assert init["name"] == "init-hydrate"
    init_env = {e["name"]: e.get("value", e.get("valueFrom")) for e in init["env"]}
    assert init_env["BOT_TOKEN"] == {"secretKeyRef": {"name": f"ambient-runner-token-{name}",
                                                      "key": "k8s-token"}}
    assert init_env["S3_ENDPOINT"] == "http://minio.ambient-code.svc:9000"
    assert init_env["S3_BUCKET"] == "ambient-sessions"
    assert init_env["AWS_SECRET_ACCESS_KEY"] == MINIO_SECRET_KEY
    assert [c["name"] for c in pod["spec"]["containers"]] == ["ambient-code-runner",
                                                              "state-sync"]

    # Service session-<n> (§0.6, §4.7): owned by the Pod
    service = platform.read("Service", f"session-{name}")
    assert service is not None
    assert service["metadata"]["labels"] == {"app": "ambient-code", "agentic-session": name}
    assert owner(service) == ("Pod", f"{name}-runner", True)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == {"agentic-session": name,
                                           "app": "ambient-code-runner"}
    assert service["spec"]["ports"] == [{"name": "agui", "protocol": "TCP", "port": 8001,
                                         "targetPort": 8001}]
    assert session["status"]["endpoint"] == \
        f"http://session-{name}.{NS}.svc.cluster.local:8001"

    # Secret ambient-runner-token-<n> (§0.7, §4.8)
    secret = platform.read("Secret", f"ambient-runner-token-{name}")
    assert secret is not None
    assert secret["type"] == "Opaque" and set(secret["data"]) == {"k8s-token", "agui-token"}
    assert secret["metadata"]["labels"] == {"app": "ambient-runner-token"}
    assert secret["metadata"]["annotations"][TOKEN_REFRESHED_AT]
    assert owner(secret) == ("AgenticSession", name, True)
    claims = jwt_claims(b64(secret["data"]["k8s-token"]))
    assert claims["sub"] == f"system:serviceaccount:{NS}:ambient-session-{name}"
    assert claims["exp"] > time.time() + 600
    assert UUID.fullmatch(b64(secret["data"]["agui-token"]))

    # ServiceAccount, Role, RoleBinding (§0.8, §4.10)
    account = platform.read("ServiceAccount", f"ambient-session-{name}")
    assert account is not None
    assert account["metadata"]["annotations"]["ambient-code.io/created-by-user-id"] == "alice"
    assert account["metadata"]["labels"] == {"app": "ambient-runner"}
    assert owner(account) == ("AgenticSession", name, True)
    role = platform.read("Role", f"ambient-session-{name}-role")
    assert role is not None and role["rules"] == RUNNER_RULES
    binding = platform.read("RoleBinding", f"ambient-session-{name}-rb")
    assert binding is not None
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": f"ambient-session-{name}-role"}
    assert binding["subjects"] == [{"kind": "ServiceAccount",
                                    "name": f"ambient-session-{name}", "namespace": NS}]

    # NetworkPolicy runner-allow-backend-only (§4.12)
    policy = platform.read("NetworkPolicy", "runner-allow-backend-only")
    assert policy is not None
    assert policy["metadata"]["labels"] == {"app": "ambient-code",
                                            "ambient-code.io/managed-by": "operator"}
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app": "ambient-code-runner"}}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [{
        "from": [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": OPERATOR_NS}}}],
        "ports": [{"protocol": "TCP", "port": 8001}]}]

    # what an SRE sees
    assert platform.metric("agentic_session_phase_transitions_total", backend="pod",
                           to="Running") >= 1


def test_a_vm_session_gets_the_same_contract_through_secrets_it_references(
        platform: Platform) -> None:
    name = platform.create_vm(repos=[{"url": REPO}])
    session = platform.wait_phase(name, "Running", timeout=30)
    assert session["status"]["executionKind"] == "kubevirt-vm"
    assert session["status"]["runtime"] == VM_RUNTIME
    assert platform.condition(name, "Ready")["reason"] == "Running"
    annotations = session["metadata"]["annotations"]
    assert annotations[RUNNER_SA] == f"ambient-session-{name}"
    token_name = f"ambient-runner-token-{name}"
    secret = platform.read("Secret", token_name)
    assert secret is not None and set(secret["data"]) == {"k8s-token", "agui-token"}
    for kind, child in (("ServiceAccount", f"ambient-session-{name}"),
                        ("Role", f"ambient-session-{name}-role"),
                        ("RoleBinding", f"ambient-session-{name}-rb")):
        assert platform.read(kind, child) is not None, kind

    # the VirtualMachine (ADR-0008 entry verbatim; template labels; nothing secret inline)
    vm = platform.read("VirtualMachine", f"{name}-runner")
    assert vm is not None and owner(vm) == ("AgenticSession", name, True)
    template = vm["spec"]["template"]
    assert template["metadata"]["labels"] == {"agentic-session": name,
                                              "app": "ambient-code-runner"}
    domain = template["spec"]["domain"]
    assert domain["cpu"]["cores"] == 2 and domain["memory"]["guest"] == "4Gi"
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert volumes["rootdisk"]["containerDisk"]["image"] == \
        "quay.io/ambient_code/fedora-runner:latest"
    assert volumes["cloudinitdisk"]["cloudInitNoCloud"] == {
        "secretRef": {"name": f"{name}-cloudinit"}}
    shared = {v["secret"]["secretName"]: v["name"] for v in volumes.values() if "secret" in v}
    assert set(shared) == {token_name, "ambient-runner-secrets"}
    assert {f["name"] for f in domain["devices"]["filesystems"]} == set(shared.values())
    assert all("virtiofs" in f for f in domain["devices"]["filesystems"])
    assert domain["devices"]["interfaces"][0]["ports"] == [
        {"name": "agui", "port": 8001, "protocol": "TCP"}]
    secrets = [b64(secret["data"]["k8s-token"]), b64(secret["data"]["agui-token"]),
               DEMO_API_KEY, MINIO_SECRET_KEY]
    whole = orjson.dumps(vm).decode()
    for value in secrets:
        assert value not in whole, "a secret inline in the VirtualMachine"

    # the guest's environment: the Pod's plain values in the cloud-init Secret, the
    # Secret-backed ones (AGUI_TOKEN, envFrom) read from the shared Secrets, the bot token a
    # link into the token Secret's share
    userdata = orjson.dumps(cloud_init(platform, name)).decode()
    for value in secrets[:3]:
        assert value not in userdata, "a token or API key copied into the cloud-init"
    files = guest_files(platform, name)
    env = env_file(files["/etc/ambient/runner.env"])
    assert list(env) == [n for n in RUNNER_ENV if n != "AGUI_TOKEN"]
    assert env["AGENTIC_SESSION_NAME"] == name and env["TIMEOUT"] == "300"
    assert env["AGUI_PORT"] == "8001" and env["BACKEND_API_URL"] == BACKEND_API_URL
    assert env["RUNNER_TYPE"] == "claude-agent-sdk" and "IS_RESUME" not in env
    listing = files["/etc/ambient/secret-env.list"].splitlines()
    assert f"AGUI_TOKEN {shared[token_name]}/agui-token" in listing
    assert f"* {shared['ambient-runner-secrets']}" in listing
    links = cloud_init(platform, name)["bootcmd"]
    assert ["ln", "-sfn", f"/run/ambient/secrets/{shared[token_name]}/k8s-token",
            "/var/run/secrets/ambient/bot-token"] in links

    # the Service selects the virt-launcher pod, as the NetworkPolicy does
    service = platform.read("Service", f"session-{name}")
    assert service is not None and owner(service) == ("VirtualMachine", f"{name}-runner", True)
    assert service["spec"]["ports"][0]["port"] == 8001
    launchers = platform.launcher_pods(name)
    assert len(launchers) == 1
    labels = launchers[0]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
    assert labels.get("app") == "ambient-code-runner"  # runner-allow-backend-only selects it

    # a refreshed k8s-token reaches the Secret the VM shares with the guest (§4.11): the
    # virt-launcher pod mounts that Secret, so the kubelet's update reaches virtiofs
    old_token = secret["data"]["k8s-token"]
    stale = rfc3339(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=50))
    platform.core.patch_namespaced_secret(token_name, NS, {"metadata": {"annotations": {
        TOKEN_REFRESHED_AT: stale}}})

    def refreshed() -> dict[str, Any] | None:
        current = platform.read("Secret", token_name) or {}
        return current if current["data"]["k8s-token"] != old_token else None

    after = eventually(refreshed, message="the stale k8s-token was not refreshed")
    assert after["metadata"]["annotations"][TOKEN_REFRESHED_AT] > stale
    assert after["data"]["agui-token"] == secret["data"]["agui-token"]
    assert jwt_claims(b64(after["data"]["k8s-token"]))["sub"] == \
        f"system:serviceaccount:{NS}:ambient-session-{name}"
    same = platform.read("VirtualMachine", f"{name}-runner")
    assert uid(same) == uid(vm) and same["metadata"]["generation"] == vm["metadata"]["generation"]
    mounted = [v for v in launchers[0]["spec"].get("volumes") or ()
               if (v.get("secret") or {}).get("secretName") == token_name]
    assert mounted, "the virt-launcher pod does not mount the token Secret"
    assert platform.phase(name) == "Running"
    assert platform.condition(name, "RestartRequired") == {}


@pytest.mark.parametrize("vm", [False, True], ids=["pod", "kubevirt-vm"])
def test_loss_stop_restart_and_run_finished_as_the_platform_drives_them(
        platform: Platform, vm: bool) -> None:
    name = platform.create_vm() if vm else platform.create()
    session = platform.wait_phase(name, "Running", timeout=30)
    started = session["status"]["startTime"]
    first = uid(workload(platform, name, vm))
    identity = {kind: uid(platform.read(kind, child)) for kind, child in (
        ("Secret", f"ambient-runner-token-{name}"),
        ("ServiceAccount", f"ambient-session-{name}"),
        ("Role", f"ambient-session-{name}-role"),
        ("RoleBinding", f"ambient-session-{name}-rb"))}

    # the workload is lost while Running (§0.10, §3.2): reset, a new run, IS_RESUME
    platform.touch(name)
    assert platform.session(name)["status"]["lastActivityTime"]
    later_second(started)
    log = PhaseLog(platform, name)
    if vm:
        platform.custom.delete_namespaced_custom_object("kubevirt.io", "v1", NS,
                                                        "virtualmachines", f"{name}-runner")
    else:
        platform.core.delete_namespaced_pod(f"{name}-runner", NS)
    eventually(lambda: uid(workload(platform, name, vm)) not in ("", first), timeout=20,
               message="no new workload after the loss")
    # The new workload is made before the status says so: wait for the new run's status.
    eventually(lambda: platform.session(name)["status"]["startTime"] > started,
               message="startTime was not renewed")
    session = platform.wait_phase(name, "Running", timeout=30)
    # (Pending is not written as a status of its own: the reset and the new run's start
    # happen in one pass, so a watch sees Creating next.)
    phases = log.close("Running")
    assert set(phases) <= {"Running", "Pending", "Creating"}, phases
    status = session["status"]
    assert status["startTime"] > started, "startTime is the new run's"
    for gone in ("completionTime", "lastActivityTime", "stoppedReason"):
        assert gone not in status, gone
    assert runner_env(platform, name, vm).get("IS_RESUME") == "true"
    eventually(lambda: platform.read("Service", f"session-{name}") is not None,
               message="the new run has no Service")

    # a stop as the backend stops (§3.5): Stopping → Stopped, stoppedReason user
    log = PhaseLog(platform, name)
    platform.stop(name)
    session = platform.wait_phase(name, "Stopped")
    assert log.close("Stopped")[-2:] == ["Stopping", "Stopped"]
    status = session["status"]
    assert status["stoppedReason"] == "user" and status["completionTime"]
    annotations = platform.wait_cleared(name, DESIRED_PHASE, STOP_REQUESTED_AT)
    assert annotations[RUNNER_SA] == f"ambient-session-{name}", "runner-* are never cleared"
    for kind in ("Ready", "PodCreated", "RunnerStarted"):
        condition = platform.condition(name, kind)
        assert (condition["status"], condition["reason"]) == ("False", "UserStopped"), kind
    run = [("VirtualMachine", f"{name}-runner"), ("VirtualMachineInstance", f"{name}-runner"),
           ("Secret", f"{name}-cloudinit")] if vm else [("Pod", f"{name}-runner")]
    run.append(("Service", f"session-{name}"))
    eventually(lambda: all(platform.read(k, n) is None for k, n in run),
               message="the stopped session kept its workload or Service")
    if vm:
        eventually(lambda: platform.launcher_pods(name) == [],
                   message="the virt-launcher pod outlived the stop")
    assert {kind: uid(platform.read(kind, child)) for kind, child in (
        ("Secret", f"ambient-runner-token-{name}"),
        ("ServiceAccount", f"ambient-session-{name}"),
        ("Role", f"ambient-session-{name}-role"),
        ("RoleBinding", f"ambient-session-{name}-rb"))} == identity, \
        "the token Secret and the RBAC are kept"

    # a restart as the backend starts it: Pending → Creating → Running, a resumed runner
    stopped = status["completionTime"]
    later_second(stopped)
    log = PhaseLog(platform, name)
    platform.start(name)
    session = platform.wait_phase(name, "Running", timeout=30)
    phases = log.close("Running")
    assert set(phases) <= {"Stopped", "Pending", "Creating", "Running"}, phases
    status = session["status"]
    assert status["startTime"] >= stopped
    assert "completionTime" not in status and "stoppedReason" not in status
    annotations = session["metadata"].get("annotations") or {}
    assert DESIRED_PHASE not in annotations, "the fulfilled start is cleared"
    assert START_REQUESTED_AT in annotations, "upstream never clears start-requested-at"
    assert runner_env(platform, name, vm).get("IS_RESUME") == "true"
    eventually(lambda: all(platform.read(k, n) is not None for k, n in run),
               timeout=15, message="the restarted run lacks its workload or Service")
    assert platform.condition(name, "RestartRequired") == {}
    assert platform.condition(name, "Ready")["status"] == "True"

    # stopOnRunFinished: the backend stops with stop-reason run-finished → a user stop
    platform.annotate(name, {DESIRED_PHASE: "Stopped", STOP_REASON: "run-finished"})
    session = platform.wait_phase(name, "Stopped")
    assert session["status"]["stoppedReason"] == "user"
    platform.wait_cleared(name, DESIRED_PHASE, STOP_REASON)


def test_timeout_is_not_enforced_and_inactivity_follows_last_activity(
        platform: Platform) -> None:
    """§5: spec.timeout only becomes TIMEOUT; inactivity compares now with
    status.lastActivityTime (else startTime), with the session's inactivityTimeout, else the
    project's, else the operator's default."""
    short = platform.create(timeout=2)
    active = platform.create(inactivityTimeout=3)
    idle_pod = platform.create(inactivityTimeout=2)
    idle_vm = platform.create_vm(inactivityTimeout=2)
    project = platform.create(PROJECT_NS)
    for name in (short, active, idle_pod, idle_vm):
        platform.wait_phase(name, "Running", timeout=30)
    created = time.monotonic()
    platform.touch(idle_pod)  # activity once, then none
    platform.touch(idle_vm)
    stopped: dict[str, float] = {}
    # About time passing: the backend records activity on `active` every half second.
    while time.monotonic() - created < 5.0:
        platform.touch(active)
        assert platform.phase(active) == "Running", "an active session was stopped"
        for name in (idle_pod, idle_vm):
            if name not in stopped and platform.phase(name) in ("Stopping", "Stopped"):
                stopped[name] = time.monotonic() - created
        time.sleep(0.5)
    assert platform.phase(short) == "Running", "spec.timeout was enforced"
    assert platform.condition(short, "Ready")["status"] == "True"
    assert runner_env(platform, short, False)["TIMEOUT"] == "2"
    for name in (idle_pod, idle_vm):
        session = platform.wait_phase(name, "Stopped", timeout=10)
        assert session["status"]["stoppedReason"] == "inactivity"
        ready = platform.condition(name, "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "InactivityTimeout")
        platform.wait_cleared(name, DESIRED_PHASE, STOP_REASON)
        eventually(lambda n=name: platform.read("Service", f"session-{n}") is None,
                   message="the idle session kept its Service")
    session = platform.wait_phase(project, "Stopped", namespace=PROJECT_NS, timeout=15)
    assert session["status"]["stoppedReason"] == "inactivity", "the project's timeout"
    assert platform.phase(active) == "Running"
    # and once the backend stops recording activity, the active one goes idle too
    platform.wait_phase(active, "Stopped", timeout=10)
    assert platform.session(active)["status"]["stoppedReason"] == "inactivity"
    assert platform.phase(short) == "Running"
    platform.stop(short)
    platform.wait_phase(short, "Stopped")


# bad input -----------------------------------------------------------------------------------
def settled(platform: Platform) -> Counter[tuple[str, str]]:
    """The operator's request counts once they stop moving (0.3 s without one): what other
    sessions still had to do is done. A storm never settles."""
    return until_quiet(platform.requests, message="the operator never went quiet")


def quiet(platform: Platform, seconds: float) -> Counter[tuple[str, str]]:
    """The operator's requests during ``seconds`` (about time passing: none should come)."""
    before = settled(platform)
    time.sleep(seconds)
    return platform.requests() - before


def test_a_session_waits_for_ambient_runner_secrets_without_polling(
        platform: Platform) -> None:
    name = platform.create(BARE_NS)
    eventually(lambda: platform.condition(name, "SecretsReady", BARE_NS).get("reason")
               == "RunnerSecretMissing", message="no SecretsReady=False RunnerSecretMissing")
    assert platform.condition(name, "SecretsReady", BARE_NS)["status"] == "False"
    assert platform.phase(name, BARE_NS) == "Pending"
    eventually(lambda: platform.warnings(name, "RunnerSecretMissing", BARE_NS),
               message="no Warning Event RunnerSecretMissing")
    assert sum(quiet(platform, 3.0).values()) <= 2, "the waiting session is polled"
    assert platform.read("Pod", f"{name}-runner", BARE_NS) is None
    platform.core.create_namespaced_secret(BARE_NS, {
        "metadata": {"name": "ambient-runner-secrets"},
        "stringData": {"ANTHROPIC_API_KEY": DEMO_API_KEY}})
    platform.wait_phase(name, "Running", namespace=BARE_NS)
    assert platform.condition(name, "SecretsReady", BARE_NS)["status"] == "True"


def test_a_refused_token_request_fails_the_session_without_retries(platform: Platform) -> None:
    before = platform.requests()[("create", "serviceaccounts/token")]
    platform.admin_call("POST", "/faults/fail", {"code": 403,
                                                 "resources": ["serviceaccounts/token"]})
    try:
        name = platform.create()
        session = platform.wait_phase(name, "Failed")
        eventually(lambda: platform.warnings(name, "TokenProvisionFailed"),
                   message="no Warning Event TokenProvisionFailed")
        requests = quiet(platform, 1.0)
        tries = platform.requests()[("create", "serviceaccounts/token")] - before
    finally:
        platform.admin_call("DELETE", "/faults")
    ready = platform.condition(name, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "TokenProvisionFailed")
    assert "403" in ready["message"] or "forbidden" in ready["message"].lower()
    assert tries == 1, "the refused TokenRequest was retried"
    assert sum(requests.values()) <= 2
    assert platform.read("Pod", f"{name}-runner") is None
    assert "stoppedReason" not in session["status"]


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"extra_env": {"RUNNER_TYPE": "no-such-runtime"}}, "UnknownRuntime"),
    ({"runner_type": "bad-vmconfig"}, "InvalidVMConfig"),
    ({"runner_type": "bad-quantity"}, "InvalidQuantity"),
    ({"name": "session-" + "x" * 48}, "InvalidServiceName"),
], ids=["unknown-runtime", "invalid-vmconfig", "bad-quantity", "service-name-over-63"])
def test_bad_input_is_reported_once_and_creates_nothing(platform: Platform,
                                                        kwargs: dict[str, Any],
                                                        reason: str) -> None:
    name = platform.create(**kwargs)
    eventually(lambda: platform.condition(name, "Ready").get("reason") == reason
               and platform.warnings(name, reason),
               message=f"no Ready=False {reason} and Warning Event")
    assert platform.condition(name, "Ready")["status"] == "False"
    version = platform.session(name)["metadata"]["resourceVersion"]
    requests = quiet(platform, 1.0)
    assert platform.session(name)["metadata"]["resourceVersion"] == version, "retried"
    assert sum(requests.values()) <= 2, f"a retry storm: {requests}"
    assert len(platform.warnings(name, reason)) == 1
    assert platform.warnings(name, reason)[0].get("count", 1) == 1
    assert platform.phase(name) == "Pending"
    for kind, child in (("Pod", f"{name}-runner"), ("VirtualMachine", f"{name}-runner"),
                        ("Service", f"session-{name}"),
                        ("Secret", f"ambient-runner-token-{name}"),
                        ("ServiceAccount", f"ambient-session-{name}")):
        assert platform.read(kind, child) is None, f"{kind} {child} was created"
    if reason == "InvalidServiceName":
        assert RUNNER_SA not in (platform.session(name)["metadata"].get("annotations") or {})
