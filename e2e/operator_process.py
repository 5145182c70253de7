"""The local API server (with simulators and the fault admin port) and the AgenticSession
operator, each as its own process, for the operator, failover, chaos and bad-input runs.

With ``E2E_KUBECONFIG`` no server is started: the world is that cluster, the CRDs and the
registry are applied there with kubectl (the registry in a namespace of the run's own), the
operator process is pointed at it, and :func:`stop_world` deletes the namespaces it created.

No pytest here: the test modules own the fixtures. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import urllib3
import yaml

from ambient_ctrl.testing import eventually, free_port, start_apiserver_process, stop_process
from reconcilers import samples

from .cluster import (
    EXTERNAL_KUBECONFIG,
    LOCAL_TLS,
    MANAGED_LABEL,
    TEST_AGENT,
    ApiHttp,
    kubectl,
)

ROOT = Path(__file__).resolve().parents[1]
CRD_DIR = ROOT / "config" / "crd"
CRDS = (CRD_DIR / "agenticsessions.yaml", CRD_DIR / "projectsettings.yaml")
"""The operator's CRDs: AgenticSession, and ProjectSettings (read for inactivity timeouts)."""
SESSIONS = "/apis/vteam.ambient-code/v1alpha1"
NAMESPACE = "chaos"
REGISTRY_NAMESPACE = "ambient-code"
REGISTRY_NAME = "ambient-agent-registry"
REGISTRY_KEY = "agent-registry.json"
RUNNER_SECRETS = "ambient-runner-secrets"
"""The project's API keys: a managed namespace needs this Secret, or its sessions wait."""
POD_RUNTIME: dict[str, Any] = samples.CLAUDE_ENTRY
"""Upstream's shipped ``claude-agent-sdk`` entry (the default runtime: a Pod)."""
VM_RUNTIME: dict[str, Any] = samples.KUBEVIRT_ENTRY
"""ADR-0008's ``claude-kubevirt`` entry, verbatim (``spec.runtime: claude-kubevirt``)."""
RETRIED = frozenset({429, 500, 503, 504})
"""Answers a test's own request is retried on (injected faults hit the test's calls too)."""


class Raw:
    """Raw JSON over HTTP with a small retry loop for injected faults and a restarting server.

    Not the client under test: the operator has its own transport.
    """

    def __init__(self, kubeconfig: Path, *, maxsize: int = 8) -> None:
        self.api = ApiHttp(kubeconfig, maxsize=maxsize)
        self.url = self.api.url
        self.http = urllib3.PoolManager(maxsize=4, retries=False,
                                        timeout=urllib3.Timeout(connect=5, read=60),
                                        headers={"User-Agent": TEST_AGENT})
        """Plain HTTP to the local endpoints: the admin port, operators' probes and metrics."""

    def request(self, method: str, path: str, body: Any = None, *,
                content_type: str = "application/json", attempts: int = 60,
                ) -> tuple[int, Any]:
        """(status, decoded body); retried while the answer is a fault or no answer at all."""
        data = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": content_type} if body is not None else {}
        for attempt in range(attempts):
            try:
                resp = self.api.request(method, path, headers=headers, body=data,
                                        timeout=urllib3.Timeout(connect=5, read=60))
            except urllib3.exceptions.HTTPError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.25)
                continue
            if resp.status in RETRIED and attempt < attempts - 1:
                time.sleep(min(float(resp.headers.get("Retry-After") or 0.1), 1.0))
                continue
            return resp.status, orjson.loads(resp.data) if resp.data else None
        raise AssertionError("unreachable")

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200, (path, status, body)
        return body

    def items(self, path: str) -> list[dict[str, Any]]:
        return list(self.get(path)["items"])

    def close(self) -> None:
        self.api.close()
        self.http.clear()


@dataclass
class Operator:
    """One ``ambient-ctrl run`` process: its log and its HTTP endpoints."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    metrics: str
    """URL of its /metrics."""
    health: str
    """Base URL of its /healthz and /readyz."""

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@dataclass
class World:
    """The two processes and how to reach them (``server`` None: an external cluster)."""

    workdir: Path
    server: subprocess.Popen[bytes] | None
    url: str
    admin: str
    """Base URL of the local server's admin endpoint ("" on an external cluster)."""
    kubeconfig: Path
    raw: Raw
    operator: subprocess.Popen[bytes] | None = None
    metrics: str = ""
    health: str = ""
    registry_namespace: str = REGISTRY_NAMESPACE
    created: list[str] = field(default_factory=list)
    """Namespaces made for this world; deleted by :func:`stop_world` on an external cluster."""

    @property
    def external(self) -> bool:
        return self.server is None

    def create_namespace(self, name: str, *, managed: bool = True,
                         runner_secrets: bool = True) -> None:
        """A namespace (labelled ``ambient-code.io/managed=true`` when ``managed``) with the
        project's ``ambient-runner-secrets`` (unless not ``runner_secrets``), as the
        platform's backend makes a project."""
        labels = {MANAGED_LABEL: "true"} if managed else {}
        status, body = self.raw.request("POST", "/api/v1/namespaces", {"metadata": {
            "name": name, "labels": labels}})
        assert status == 201, (status, body)
        self.created.append(name)
        if runner_secrets:
            create_runner_secrets(self.raw, name)

    def delete_namespace(self, name: str) -> None:
        status, body = self.raw.request("DELETE", f"/api/v1/namespaces/{name}")
        assert status in (200, 202, 404), (status, body)
        if name in self.created:
            self.created.remove(name)

    def kubevirt(self) -> bool:
        """Whether the cluster serves kubevirt.io/v1 VirtualMachines."""
        status, doc = self.raw.request("GET", "/apis/kubevirt.io/v1")
        return status == 200 and any(r["name"] == "virtualmachines" for r in doc["resources"])

    @property
    def operator_log(self) -> Path:
        return self.workdir / "operator.log"

    def admin_call(self, method: str, path: str, body: Any = None) -> Any:
        assert self.admin, "an external cluster has no admin endpoint (mark the test local_only)"
        resp = self.raw.http.request(method, self.admin + path,
                                     body=None if body is None else orjson.dumps(body))
        assert resp.status == 200, (path, resp.status, resp.data)
        return orjson.loads(resp.data)

    def set_registry(self, entries: list[Any]) -> None:
        status, body = self.raw.request(
            "PATCH",
            f"/api/v1/namespaces/{self.registry_namespace}/configmaps/{REGISTRY_NAME}",
            {"data": {REGISTRY_KEY: json.dumps(entries)}},
            content_type="application/merge-patch+json")
        assert status == 200, (status, body)

    def start_operator(self, *, concurrency: int = 8, log_format: str = "text") -> None:
        """The operator (``operator.log``), as :attr:`operator`, :attr:`metrics` and
        :attr:`health`."""
        started = self.spawn_operator("operator", concurrency=concurrency,
                                      log_format=log_format)
        self.operator, self.metrics, self.health = (started.process, started.metrics,
                                                    started.health)

    def spawn_operator(self, name: str, *, args: tuple[str, ...] = (), concurrency: int = 8,
                       log_format: str = "text") -> Operator:
        """Start another ``ambient-ctrl run`` (log ``<name>.log``, extra ``args``) and wait
        until it answers /healthz; stop it with :func:`stop_process`."""
        metrics, health = free_port(), free_port()
        log = self.workdir / f"{name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "ambient_ctrl.cli", "run",
                 "--kubeconfig", str(self.kubeconfig),
                 "--registry-namespace", self.registry_namespace,
                 "--metrics-bind-address", f"127.0.0.1:{metrics}",
                 "--health-probe-bind-address", f"127.0.0.1:{health}",
                 "--max-concurrent-reconciles", str(concurrency),
                 "--log-format", log_format, *args],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        started = Operator(name, process, log, f"http://127.0.0.1:{metrics}/metrics",
                           f"http://127.0.0.1:{health}")
        try:
            eventually(lambda: self.answers(started), timeout=30, interval=0.2,
                       message=f"{name}'s /healthz never answered")
        except BaseException:
            stop_process(process)
            raise
        return started

    def answers(self, operator: Operator) -> bool:
        """Whether ``operator`` answers /healthz; fails if it exited."""
        assert operator.process.poll() is None, \
            f"{operator.name} exited: {operator.log_tail()}"
        try:
            resp = self.raw.http.request("GET", operator.health + "/healthz", retries=False,
                                         timeout=5)
        except urllib3.exceptions.HTTPError:
            return False
        return resp.status == 200

    def healthy(self) -> bool:
        assert self.operator is not None
        return self.answers(Operator("the operator", self.operator, self.operator_log,
                                     self.metrics, self.health))

    def scrape(self) -> str:
        resp = self.raw.http.request("GET", self.metrics, timeout=10)
        assert resp.status == 200, resp.status
        return str(resp.data.decode())


def start_world(workdir: Path, *, registry: list[Any], namespaces: list[str],
                extra_args: tuple[str, ...] = ()) -> World:
    """The API server process (kubelet and KubeVirt simulators, admin port, seed 1) with the
    CRDs, ``namespaces`` (managed, with their runner Secret), the registry namespace and
    ConfigMap installed. Stop it with :func:`stop_world`; the operator is started separately
    (:meth:`World.start_operator`).

    With ``E2E_KUBECONFIG``: that cluster instead, set up with kubectl (``extra_args`` are the
    local server's and do not apply).
    """
    if EXTERNAL_KUBECONFIG:
        return _external_world(workdir, Path(EXTERNAL_KUBECONFIG), registry=registry,
                               namespaces=namespaces)
    admin_port = free_port()
    server, url, kubeconfig = start_apiserver_process(
        workdir / "kubeconfig", log=workdir / "apiserver.log", timeout=30,
        extra_args=_server_args(workdir, admin_port, extra_args))
    world = World(workdir, server, url, f"http://127.0.0.1:{admin_port}", kubeconfig,
                  Raw(kubeconfig))
    try:
        _install(world.raw, registry=registry, namespaces=namespaces)
    except BaseException:
        stop_world(world)
        raise
    return world


def _server_args(workdir: Path, admin_port: int, extra_args: tuple[str, ...] = ()
                 ) -> list[str]:
    """The world's server: HTTPS (unless ``E2E_TLS=0``) with its CA kept in the work directory,
    so that a restarted server (:func:`restart_server`) is trusted by the running operator."""
    tls = ["--tls", "--tls-ca-dir", str(workdir / "ca")] if LOCAL_TLS else []
    return ["--simulate", "kubelet,kubevirt", "--admin-port", str(admin_port), "--seed", "1",
            "--bookmark-interval", "1", *tls, *extra_args]


def restart_server(world: World, *, registry: list[Any], namespaces: list[str]) -> None:
    """Stop the API server process and start a new one on the same ports that lost
    everything (a restart without its storage: the revision counter starts over), then
    install what :func:`start_world` installed. The operator is left running."""
    assert world.server is not None, "an external cluster is not restarted here"
    stop_process(world.server, timeout=15)
    port = urllib3.util.parse_url(world.url).port
    admin_port = urllib3.util.parse_url(world.admin).port
    assert port is not None and admin_port is not None
    world.server, _, _ = start_apiserver_process(
        world.kubeconfig, log=world.workdir / "apiserver-restarted.log", port=port, timeout=30,
        extra_args=_server_args(world.workdir, admin_port))
    _install(world.raw, registry=registry, namespaces=namespaces)


def _external_world(workdir: Path, kubeconfig: Path, *, registry: list[Any],
                    namespaces: list[str]) -> World:
    """The cluster ``kubeconfig`` names, with the CRDs applied (they stay: deleting one would
    delete every session on the cluster), the registry in a namespace of this run's own, and
    ``namespaces`` created (managed)."""
    raw = Raw(kubeconfig)
    world = World(workdir, None, raw.url, "", kubeconfig, raw,
                  registry_namespace=f"e2e-registry-{os.getpid()}-{workdir.name}"[:63]
                  .lower().rstrip("-_").replace("_", "-"))
    cache = workdir / "kube-cache"
    try:
        for crd in CRDS:
            kubectl(kubeconfig, "apply", "-f", str(crd), cache_dir=cache)
        kubectl(kubeconfig, "wait", "--for=condition=Established", "--timeout=60s",
                "crd/agenticsessions.vteam.ambient-code",
                "crd/projectsettings.vteam.ambient-code", cache_dir=cache)
        world.create_namespace(world.registry_namespace, managed=False)
        kubectl(kubeconfig, "apply", "-f", "-", cache_dir=cache, input=json.dumps({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": REGISTRY_NAME, "namespace": world.registry_namespace},
            "data": {REGISTRY_KEY: json.dumps(registry)}}))
        for name in namespaces:
            world.create_namespace(name)
    except BaseException:
        stop_world(world)
        raise
    return world


def _install(raw: Raw, *, registry: list[Any], namespaces: list[str]) -> None:
    for crd in CRDS:
        status, body = raw.request(
            "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            yaml.safe_load(crd.read_text()))
        assert status == 201, (status, body)
    for name in namespaces:
        status, body = raw.request("POST", "/api/v1/namespaces", {"metadata": {
            "name": name, "labels": {MANAGED_LABEL: "true"}}})
        assert status == 201, (status, body)
        create_runner_secrets(raw, name)
    status, body = raw.request("POST", "/api/v1/namespaces",
                               {"metadata": {"name": REGISTRY_NAMESPACE}})
    assert status == 201, (status, body)
    status, body = raw.request(
        "POST", f"/api/v1/namespaces/{REGISTRY_NAMESPACE}/configmaps",
        {"metadata": {"name": REGISTRY_NAME, "namespace": REGISTRY_NAMESPACE},
         "data": {REGISTRY_KEY: json.dumps(registry)}})
    assert status == 201, (status, body)

    def served(path: str, plural: str) -> Callable[[], bool]:
        def check() -> bool:
            status, doc = raw.request("GET", path)
            return status == 200 and any(r["name"] == plural for r in doc["resources"])
        return check

    # The KubeVirt simulator installs its CRDs as the server starts; the operator decides at
    # start-up whether VMs are served, so wait for them (and for our CRDs) first.
    eventually(served("/apis/kubevirt.io/v1", "virtualmachines"), timeout=30, interval=0.1,
               message="KubeVirt CRDs not served")
    for plural in ("agenticsessions", "projectsettings"):
        eventually(served(SESSIONS, plural), timeout=30, interval=0.1,
                   message=f"{plural} not served")


def create_runner_secrets(raw: Raw, namespace: str) -> None:
    """The project's ``ambient-runner-secrets`` (a placeholder API key), as the platform's
    backend creates it from the project's settings."""
    status, body = raw.request("POST", f"/api/v1/namespaces/{namespace}/secrets", {
        "metadata": {"name": RUNNER_SECRETS, "namespace": namespace}, "type": "Opaque",
        "stringData": {"ANTHROPIC_API_KEY": "sk-ant-e2e-not-a-real-key"}})
    # 409: an earlier attempt was committed but its answer lost (injected faults).
    assert status in (201, 409), (status, body)


def stop_world(world: World) -> tuple[int | None, int]:
    """Stop the operator (SIGTERM; it has 35 s to drain) then the server; their exit codes.
    On an external cluster, delete the namespaces the world created instead of a server."""
    operator = None if world.operator is None else stop_process(world.operator, timeout=35)
    try:
        for name in list(world.created) if world.external else ():
            world.delete_namespace(name)
    finally:
        world.raw.close()
    return operator, 0 if world.server is None else stop_process(world.server, timeout=15)


def session_body(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A session with exactly ``spec`` (for malformed input)."""
    return {"apiVersion": "vteam.ambient-code/v1alpha1", "kind": "AgenticSession",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def backend_body(name: str, namespace: str, *, vm: bool = False,
                 registry: list[Any] | None = None, **options: Any) -> dict[str, Any]:
    """A session as upstream's backend creates it (:func:`reconcilers.samples.backend_session`:
    ``timeout: 300``, ``userContext``, the registry entry's env, ``status.phase: Pending``),
    named ``name``; ``vm``: ADR-0008's VM runtime (``spec.runtime``). ``options`` go to
    ``backend_session`` (``prompt``, ``extra_env``, ``timeout``, spec fields, ...)."""
    if vm:
        options["runtime"] = VM_RUNTIME["id"]
    return samples.backend_session(namespace, name=name, registry=registry, **options)


def condition(session: dict[str, Any], type_: str = "Ready") -> dict[str, Any]:
    for item in (session.get("status") or {}).get("conditions") or ():
        if item.get("type") == type_:
            return dict(item)
    return {}


# a session's children ---------------------------------------------------------------------------
RBAC = "/apis/rbac.authorization.k8s.io/v1"
CHILD_KINDS = {"pods": "/api/v1", "services": "/api/v1", "secrets": "/api/v1",
               "serviceaccounts": "/api/v1", "roles": RBAC, "rolebindings": RBAC,
               "virtualmachines": "/apis/kubevirt.io/v1"}
"""Every kind of a session's children (plural → API prefix)."""
LABELLED = frozenset({"pods", "services", "virtualmachines", "secrets"})
"""Kinds some of whose children carry the ``agentic-session`` label."""


def expected_children(name: str, *, vm: bool) -> dict[str, list[str]]:
    """Plural → the names of a session's children of that kind (upstream's, contract §4)."""
    return {"pods": [] if vm else [f"{name}-runner"],
            "virtualmachines": [f"{name}-runner"] if vm else [],
            "services": [f"session-{name}"],
            "secrets": sorted([f"ambient-runner-token-{name}",
                               *([f"{name}-cloudinit"] if vm else [])]),
            "serviceaccounts": [f"ambient-session-{name}"],
            "roles": [f"ambient-session-{name}-role"],
            "rolebindings": [f"ambient-session-{name}-rb"]}


def labelled_children(name: str, *, vm: bool) -> dict[str, list[str]]:
    """Plural → the names of the session's children labelled ``agentic-session=<name>``:
    the workload, the Service and a VM's cloud-init Secret (not the token Secret or RBAC,
    which upstream labels by app only)."""
    expected = expected_children(name, vm=vm)
    return {"pods": expected["pods"], "virtualmachines": expected["virtualmachines"],
            "services": expected["services"], "secrets": [f"{name}-cloudinit"] if vm else []}


def controller(obj: dict[str, Any]) -> dict[str, Any]:
    """The controller owner reference of ``obj`` ({} without one); at most one."""
    refs = [r for r in obj["metadata"].get("ownerReferences") or () if r.get("controller")]
    assert len(refs) <= 1, obj["metadata"]
    return refs[0] if refs else {}


def owners(sessions: dict[str, dict[str, Any]], objects: dict[str, list[dict[str, Any]]]
           ) -> tuple[dict[tuple[str, str], list[str]], dict[str, list[str]]]:
    """((plural, session) → names of the children it controls — directly, or through its
    workload (a Service is owned by the runner Pod or VM) —, session → its virt-launcher
    pods (controlled by the VMI, found by the session label))."""
    uids = {s["metadata"]["uid"]: name for name, s in sessions.items()}
    workloads = {obj["metadata"]["uid"]: uids[controller(obj)["uid"]]
                 for plural in ("pods", "virtualmachines") for obj in objects.get(plural, ())
                 if controller(obj).get("uid") in uids}
    owned: dict[tuple[str, str], list[str]] = {}
    launchers: dict[str, list[str]] = {}
    for plural, objs in objects.items():
        for obj in objs:
            ref = controller(obj)
            session = uids.get(ref.get("uid", "")) or workloads.get(ref.get("uid", ""))
            if session is not None:
                owned.setdefault((plural, session), []).append(obj["metadata"]["name"])
            elif ref.get("kind") == "VirtualMachineInstance":
                label = (obj["metadata"].get("labels") or {}).get("agentic-session")
                if label is not None:
                    launchers.setdefault(label, []).append(obj["metadata"]["name"])
    return owned, launchers


def token_claims(secret: dict[str, Any]) -> dict[str, Any]:
    """The ``kubernetes.io`` claims of the JWT in a token Secret's ``k8s-token`` (namespace,
    ``serviceaccount: {name, uid}``): whom the TokenRequest minted it for."""
    token = base64.b64decode(secret["data"]["k8s-token"]).decode()
    payload = token.split(".")[1]
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return dict(claims["kubernetes.io"])
