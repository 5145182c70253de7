"""An AgenticSession operator running in-process against a local API server with simulators."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from ambient_ctrl.envtest import LocalAPIServer
from ambient_ctrl.envtest.simulators import KubeletSimulator, KubeVirtSimulator
from ambient_ctrl.manager import Manager, ManagerOptions
from ambient_ctrl.testing import eventually
from informers.errors import NotFound
from informers.resource import CONFIGMAPS, Resource
from informers.rest import ResourceClient, Transport, load_configuration
from reconcilers.install import install
from reconcilers.reconciler import OperatorOptions
from reconcilers.resources import AGENTIC_SESSIONS
from reconcilers.wiring import setup

NS = "sessions"
REGISTRY_NS = "ambient-code"
REGISTRY = [
    {"id": "claude-agent-sdk", "displayName": "Claude (pod)",
     "container": {"image": "quay.io/ambient_code/runner:1.0", "port": 8001}},
    {"id": "claude-vm", "displayName": "Claude (VM)", "executionKind": "kubevirt-vm",
     "vmConfig": {"containerDiskImage": "quay.io/ambient_code/runner-disk:1.0",
                  "cpu": "2", "memory": "4Gi"}},
    {"id": "broken-image", "container": {"image": "quay.io/ambient_code/does-not-exist:1"}},
    {"id": "broken-disk", "executionKind": "kubevirt-vm",
     "vmConfig": {"containerDiskImage": "quay.io/ambient_code/does-not-exist-disk:1"}},
]


@dataclass
class World:
    api: LocalAPIServer
    manager: Manager
    transport: Transport

    def client(self, resource: Resource) -> ResourceClient:
        return ResourceClient(self.transport, resource)

    def session(self, name: str, **spec: Any) -> dict[str, Any]:
        body = {"apiVersion": AGENTIC_SESSIONS.api_version, "kind": AGENTIC_SESSIONS.kind,
                "metadata": {"name": name, "namespace": NS},
                "spec": {"displayName": name, "initialPrompt": "hello", **spec}}
        return self.client(AGENTIC_SESSIONS).create(body)

    def get(self, resource: Resource, name: str, namespace: str = NS) -> dict[str, Any] | None:
        try:
            return self.client(resource).get(name, namespace)
        except NotFound:
            return None

    def phase(self, name: str) -> str:
        obj = self.get(AGENTIC_SESSIONS, name)
        return str(((obj or {}).get("status") or {}).get("phase", ""))

    def wait_phase(self, name: str, phase: str, timeout: float = 20.0) -> dict[str, Any]:
        eventually(lambda: self.phase(name) == phase, timeout=timeout,
                   message=f"session {name} never reached {phase} (last: {self.phase(name)})")
        session = self.get(AGENTIC_SESSIONS, name)
        assert session is not None
        return session

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        session = self.get(AGENTIC_SESSIONS, name) or {}
        for condition in (session.get("status") or {}).get("conditions") or ():
            if condition["type"] == type_:
                return dict(condition)
        return {}

    def set_registry(self, entries: list[dict[str, Any]]) -> None:
        """Edit the registry and wait until the operator's cache has the edit: a session
        created right after may otherwise be reconciled against the previous registry (as
        in a real cluster, where the edit reaches the operator through its watch)."""
        patched = self.client(CONFIGMAPS).patch(
            "ambient-agent-registry", {"data": {"agent-registry.json":
                                                orjson.dumps(entries).decode()}}, REGISTRY_NS)
        version = patched["metadata"]["resourceVersion"]

        def cached() -> bool:
            current = self.manager.client.get(CONFIGMAPS, "ambient-agent-registry",
                                              REGISTRY_NS)
            return (current is not None
                    and int(current["metadata"]["resourceVersion"]) >= int(version))

        eventually(cached, message="the operator's cache never saw the registry edit")


def kubevirt_simulator() -> KubeVirtSimulator:
    return KubeVirtSimulator(schedule_delay=0.02, boot_delay=0.05, ready_delay=0.1,
                             pull_backoff=0.1, stop_delay=0.05, restart_backoff=0.1)


@contextmanager
def operator_world(*, kubevirt: bool = True,
                   options: OperatorOptions = OperatorOptions(registry_namespace=REGISTRY_NS)
                   ) -> Iterator[World]:
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
            metrics_address="127.0.0.1:0", probe_address="0", graceful_shutdown_timeout=5))
        setup(manager, options=options)
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
