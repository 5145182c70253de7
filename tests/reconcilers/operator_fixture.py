"""An AgenticSession operator running in-process against a local API server with simulators.

The cluster is set up as the ambient-code platform sets it up: the CRDs, a managed namespace
with the project's ``ambient-runner-secrets`` (:func:`reconcilers.install.install`), and the
agent registry upstream ships (:data:`reconcilers.samples.UPSTREAM_REGISTRY`, with ADR-0008's
``claude-kubevirt``) plus a few broken entries for the bad-input tests. Sessions are created
with exactly the body upstream's backend sends (:func:`reconcilers.samples.backend_session`).

The operator identifies itself with its own User-Agent (:data:`OPERATOR_AGENT`), so the server's
request counts tell its requests from the test's.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from ambient_ctrl.manager import Manager, ManagerOptions
from ambient_ctrl.testing import eventually
from ambient_ctrl.testing import settled as until_quiet
from envtest import LocalAPIServer
from envtest.simulators import KubeletSimulator, KubeVirtSimulator
from informers.errors import NotFound
from informers.resource import CONFIGMAPS, EVENTS, Resource
from informers.rest import ResourceClient, Transport, load_configuration
from reconcilers.config import OperatorConfig
from reconcilers.install import install
from reconcilers.reconciler import OperatorOptions
from reconcilers.resources import AGENTIC_SESSIONS, REGISTRY_CONFIGMAP, REGISTRY_KEY
from reconcilers.samples import UPSTREAM_REGISTRY, backend_session
from reconcilers.wiring import setup

NS = "sessions"
REGISTRY_NS = "ambient-code"
BACKEND_NS = "ambient-code"
OPERATOR_AGENT = "agenticsession-operator"
VM_RUNTIME = "claude-kubevirt"
BROKEN: list[dict[str, Any]] = [
    {"id": "broken-image",
     "container": {"image": "quay.io/ambient_code/does-not-exist:1", "port": 8001,
                   "env": {"RUNNER_TYPE": "broken-image"}}},
    {"id": "broken-disk", "executionKind": "kubevirt-vm",
     "container": {"image": "quay.io/ambient_code/ambient_runner:latest", "port": 8001,
                   "env": {"RUNNER_TYPE": "broken-disk"}},
     "vmConfig": {"containerDiskImage": "quay.io/ambient_code/does-not-exist-disk:1",
                  "cpu": 2, "memory": "4Gi"}},
    {"id": "bad-quantity",
     "container": {"image": "quay.io/ambient_code/vteam_claude_runner:latest",
                   "env": {"RUNNER_TYPE": "bad-quantity"},
                   "resources": {"requests": {"cpu": "lots"}}}},
    {"id": "bad-vmconfig", "executionKind": "kubevirt-vm",
     "container": {"env": {"RUNNER_TYPE": "bad-vmconfig"}},
     "vmConfig": {"containerDiskImage": "quay.io/ambient_code/fedora-runner:latest",
                  "cpu": "two", "memory": "4Gi"}},
]
"""Registry entries that cannot run, each for its own reason; selected as upstream's backend
selects an entry (its ``container.env`` puts ``RUNNER_TYPE`` into the session)."""
REGISTRY: list[dict[str, Any]] = [*UPSTREAM_REGISTRY, *BROKEN]
CONFIG = OperatorConfig(namespace=BACKEND_NS, backend_namespace=BACKEND_NS,
                        image_pull_policy="IfNotPresent")
"""The operator's environment as upstream's Deployment sets it (NAMESPACE, BACKEND_NAMESPACE,
IMAGE_PULL_POLICY=IfNotPresent)."""

DESIRED_PHASE = "ambient-code.io/desired-phase"
STOP_REQUESTED_AT = "ambient-code.io/stop-requested-at"
START_REQUESTED_AT = "ambient-code.io/start-requested-at"
STOP_REASON = "ambient-code.io/stop-reason"


def rfc3339(moment: dt.datetime | None = None) -> str:
    return (moment or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class World:
    api: LocalAPIServer
    manager: Manager
    transport: Transport

    def client(self, resource: Resource) -> ResourceClient:
        return ResourceClient(self.transport, resource)

    def create(self, *, runtime: str | None = None, namespace: str = NS,
               **kwargs: Any) -> str:
        """A session as upstream's backend creates it (``runtime``: a registry id, as the
        user picks it; a ``kubevirt-vm`` one also sets our ``spec.runtime``); its name."""
        if runtime is not None:
            kwargs["runner_type"] = runtime
            if runtime == VM_RUNTIME:  # its RUNNER_TYPE names the framework, not the entry
                kwargs["runtime"] = runtime
        kwargs.setdefault("registry", REGISTRY)
        body = backend_session(namespace, **kwargs)
        return str(self.client(AGENTIC_SESSIONS).create(body)["metadata"]["name"])

    def get(self, resource: Resource, name: str, namespace: str = NS) -> dict[str, Any] | None:
        try:
            return self.client(resource).get(name, namespace)
        except NotFound:
            return None

    def session(self, name: str) -> dict[str, Any]:
        obj = self.get(AGENTIC_SESSIONS, name)
        assert obj is not None, f"session {name} is gone"
        return obj

    def phase(self, name: str) -> str:
        obj = self.get(AGENTIC_SESSIONS, name)
        return str(((obj or {}).get("status") or {}).get("phase", ""))

    def wait_phase(self, name: str, phase: str, timeout: float = 20.0) -> dict[str, Any]:
        eventually(lambda: self.phase(name) == phase, timeout=timeout,
                   message=f"session {name} never reached {phase} (last: {self.phase(name)})")
        return self.session(name)

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        session = self.get(AGENTIC_SESSIONS, name) or {}
        for condition in (session.get("status") or {}).get("conditions") or ():
            if condition["type"] == type_:
                return dict(condition)
        return {}

    def annotate(self, name: str, annotations: Mapping[str, str | None]) -> None:
        self.client(AGENTIC_SESSIONS).patch(
            name, {"metadata": {"annotations": dict(annotations)}}, NS)

    def stop(self, name: str, **extra: str) -> None:
        """Stop as upstream's backend StopSession does."""
        self.annotate(name, {DESIRED_PHASE: "Stopped", STOP_REQUESTED_AT: rfc3339(), **extra})

    def start(self, name: str) -> None:
        """Start (restart) as upstream's backend StartSession does."""
        self.annotate(name, {DESIRED_PHASE: "Running", START_REQUESTED_AT: rfc3339()})

    def wait_cleared(self, name: str, *keys: str) -> None:
        """Until the session's annotations lack ``keys`` (the intent is cleared by a write
        after the status write that shows the phase)."""
        def cleared() -> bool:
            annotations = self.session(name)["metadata"].get("annotations") or {}
            return not any(key in annotations for key in keys)

        eventually(cleared, message=f"{keys} not cleared on {name}")

    def warnings(self, name: str, reason: str) -> list[dict[str, Any]]:
        events = self.client(EVENTS).list(NS)["items"]
        return [e for e in events if e["reason"] == reason and e["type"] == "Warning"
                and e["involvedObject"]["name"] == name]

    def operator_requests(self) -> dict[tuple[str, str], int]:
        """The operator's requests so far, by (verb, resource[/subresource])."""
        counts = self.api.call(lambda cluster: dict(cluster.requests_by_agent))
        out: dict[tuple[str, str], int] = {}
        for (agent, verb, _group, resource), n in counts.items():
            if agent == OPERATOR_AGENT:
                out[(verb, resource)] = out.get((verb, resource), 0) + n
        return out

    def settled(self) -> dict[tuple[str, str], int]:
        """The operator's request counts once they stop moving (0.3 s without a request):
        what other sessions still had to do is done. A retry storm never settles."""
        return until_quiet(self.operator_requests, message="the operator never went quiet")

    def set_registry(self, entries: list[dict[str, Any]]) -> None:
        """Edit the registry and wait until the operator's cache has the edit: a session
        created right after may otherwise be reconciled against the previous registry (as
        in a real cluster, where the edit reaches the operator through its watch)."""
        patched = self.client(CONFIGMAPS).patch(
            REGISTRY_CONFIGMAP, {"data": {REGISTRY_KEY: orjson.dumps(entries).decode()}},
            REGISTRY_NS)
        version = patched["metadata"]["resourceVersion"]

        def cached() -> bool:
            current = self.manager.client.get(CONFIGMAPS, REGISTRY_CONFIGMAP, REGISTRY_NS)
            return (current is not None
                    and int(current["metadata"]["resourceVersion"]) >= int(version))

        eventually(cached, message="the operator's cache never saw the registry edit")

    def registry(self) -> list[dict[str, Any]]:
        configmap = self.get(CONFIGMAPS, REGISTRY_CONFIGMAP, REGISTRY_NS) or {}
        return list(orjson.loads(configmap["data"][REGISTRY_KEY]))

    def sample(self, name: str, **labels: str) -> float:
        return self.manager.recorder.registry.get_sample_value(name, labels) or 0.0


def kubevirt_simulator() -> KubeVirtSimulator:
    return KubeVirtSimulator(schedule_delay=0.02, boot_delay=0.05, ready_delay=0.1,
                             pull_backoff=0.1, stop_delay=0.05, restart_backoff=0.1)


@contextmanager
def operator_world(*, kubevirt: bool = True,
                   options: OperatorOptions = OperatorOptions(registry_namespace=REGISTRY_NS),
                   config: OperatorConfig = CONFIG) -> Iterator[World]:
    simulators: list[Any] = [KubeletSimulator(schedule_delay=0.02, start_delay=0.05,
                                              ready_delay=0.1, backoff=0.1)]
    if kubevirt:
        simulators.append(kubevirt_simulator())
    with LocalAPIServer(simulators=simulators) as api:
        transport = Transport(load_configuration(api.kubeconfig))
        install(transport, namespace=NS, registry_namespace=REGISTRY_NS, registry=REGISTRY,
                other_namespaces=["unmanaged"])
        if kubevirt:
            eventually(lambda: _served(transport), message="KubeVirt CRDs not installed")
        manager = Manager(kubeconfig=api.kubeconfig, options=ManagerOptions(
            metrics_address="127.0.0.1:0", probe_address="0", graceful_shutdown_timeout=5,
            user_agent=f"{OPERATOR_AGENT}/test", tune_gc=False))
        setup(manager, options=options, config=config)
        runner = threading.Thread(target=manager.run, name="operator")
        runner.start()
        try:
            yield World(api, manager, transport)
        finally:
            manager.stop()
            runner.join(30)
            transport.close()


def _served(transport: Transport) -> bool:
    try:
        doc = transport.json("GET", "/apis/kubevirt.io/v1", verb="GET")
    except Exception:
        return False
    return any(r["name"] == "virtualmachines" for r in doc.get("resources", ()))
