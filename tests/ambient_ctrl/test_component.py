"""A small controller (ConfigMap → mirrored Secret) run by a Manager against the local server.

Asserts cluster state: wake-ups from for/owns/watches, predicates, requeue-after, TerminalError,
a recovered exception, conflicts handled by re-reading, readiness after sync.
"""

from __future__ import annotations

import base64
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from ambient_ctrl.client import Client
from ambient_ctrl.manager import Manager, ManagerOptions
from ambient_ctrl.predicate import GenerationChanged
from ambient_ctrl.reconcile import Request, Result, TerminalError
from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from informers.errors import NotFound
from informers.resource import CONFIGMAPS, SECRETS, Resource

NS = "default"


class Counted:
    """A test reconciler's client and its reconciles per request name, counted under a lock
    (the workers run reconciles concurrently)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def count(self, request: Request) -> None:
        with self.lock:
            self.calls[request.name] += 1


class Mirror(Counted):
    """Mirrors labelled ConfigMaps into owned Secrets; test hooks via labels."""

    def __init__(self, client: Client) -> None:
        super().__init__(client)
        self.flaky_failures = 1

    def reconcile(self, request: Request) -> Result:
        self.count(request)
        cm = self.client.get(CONFIGMAPS, request.name, request.namespace)
        if cm is None:
            return Result()
        labels = cm["metadata"].get("labels") or {}
        if labels.get("bad") == "true":
            raise TerminalError("this ConfigMap can never be mirrored")
        if labels.get("flaky") == "true":
            with self.lock:
                if self.flaky_failures:
                    self.flaky_failures -= 1
                    raise RuntimeError("transient failure")
        self._mirror(cm)
        if labels.get("requeue") == "true":
            return Result(requeue_after=0.1)
        return Result()

    def _mirror(self, cm: dict[str, Any]) -> None:
        data = {k: base64.b64encode(v.encode()).decode() for k, v in (cm.get("data") or {}).items()}
        name = cm["metadata"]["name"] + "-mirror"
        secret = self.client.get(SECRETS, name, NS)
        if secret is None:
            owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": cm["metadata"]["name"],
                     "uid": cm["metadata"]["uid"], "controller": True,
                     "blockOwnerDeletion": True}
            self.client.create(SECRETS, {"metadata": {"name": name, "namespace": NS,
                                                      "ownerReferences": [owner]},
                                         "data": data})
        elif secret.get("data") != data:
            self.client.mutate(SECRETS, name, NS, lambda s: s.update(data=data))


@pytest.fixture()
def world() -> Iterator[tuple[LocalAPIServer, Manager, Mirror]]:
    with LocalAPIServer() as api:
        manager = Manager(kubeconfig=api.kubeconfig, options=ManagerOptions(
            metrics_address="127.0.0.1:0", probe_address="127.0.0.1:0",
            graceful_shutdown_timeout=5))
        mirror = Mirror(manager.client)

        def poke(secret: Any) -> list[Request]:
            target = (secret["metadata"].get("labels") or {}).get("poke")
            return [Request(NS, target)] if target else []

        (manager.builder("mirror")
         .for_(CONFIGMAPS)
         .owns(SECRETS)
         .watches(SECRETS, poke)
         .complete(mirror))
        result: list[int] = []
        runner = threading.Thread(target=lambda: result.append(manager.run()))
        runner.start()
        try:
            eventually(lambda: manager.server.probe_address is not None)
            yield api, manager, mirror
        finally:
            manager.stop()
            runner.join(30)
        assert result == [0], "a clean stop exits 0"


def _cm(manager: Manager, name: str, labels: dict[str, str] | None = None, **data: str) -> None:
    manager.client.create(CONFIGMAPS, {"metadata": {"name": name, "namespace": NS,
                                                    "labels": labels or {}}, "data": data})


def _secret(manager: Manager, name: str) -> dict[str, Any] | None:
    try:
        return manager.client.resource(SECRETS).get(name, NS)
    except NotFound:
        return None


def _decoded(secret: dict[str, Any] | None) -> dict[str, str]:
    assert secret is not None
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def test_for_creates_and_updates_the_child(world: Any) -> None:
    _, manager, _ = world
    _cm(manager, "a", k="1")
    eventually(lambda: _secret(manager, "a-mirror") is not None)
    manager.client.patch(CONFIGMAPS, "a", {"data": {"k": "2"}}, NS)
    eventually(lambda: _decoded(_secret(manager, "a-mirror")) == {"k": "2"})


def test_owns_recreates_a_deleted_child(world: Any) -> None:
    _, manager, _ = world
    _cm(manager, "b", k="1")
    eventually(lambda: _secret(manager, "b-mirror") is not None)
    manager.client.delete(SECRETS, "b-mirror", NS)
    eventually(lambda: _secret(manager, "b-mirror") is not None
               and _decoded(_secret(manager, "b-mirror")) == {"k": "1"})


def test_watches_maps_other_objects_to_requests(world: Any) -> None:
    _, manager, mirror = world
    _cm(manager, "c", k="1")
    eventually(lambda: mirror.calls["c"] >= 1)
    before = mirror.calls["c"]
    manager.client.create(SECRETS, {"metadata": {"name": "poker", "namespace": NS,
                                                 "labels": {"poke": "c"}}})
    eventually(lambda: mirror.calls["c"] > before)


class Counting:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def reconcile(self, request: Request) -> Result:
        self.calls[request.name] += 1
        return Result()


WIDGETS = Resource("example.com", "v1", "widgets", "Widget")
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                "CustomResourceDefinition", namespaced=False)
WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {
                               "type": "object",
                               "x-kubernetes-preserve-unknown-fields": True}}}]}}
"""A custom resource with a status subresource: only spec changes move its generation (a
ConfigMap has no generation at all, so GenerationChanged would drop all its updates)."""


def _widget(manager: Manager, name: str) -> None:
    manager.client.create(WIDGETS, {"apiVersion": "example.com/v1", "kind": "Widget",
                                    "metadata": {"name": name, "namespace": NS},
                                    "spec": {"size": 1}})


def test_generation_predicate_ignores_metadata_and_status_changes() -> None:
    with LocalAPIServer() as api:
        manager = Manager(kubeconfig=api.kubeconfig, options=ManagerOptions(
            metrics_address="0", probe_address="0"))
        manager.client.create(CRDS, WIDGET_CRD)
        counting = Counting()
        manager.builder("count").for_(WIDGETS, GenerationChanged).complete(counting)
        runner = threading.Thread(target=manager.run)
        runner.start()
        try:
            _widget(manager, "d")
            eventually(lambda: counting.calls["d"] == 1)
            manager.client.patch(WIDGETS, "d", {"metadata": {"annotations": {"x": "y"}}}, NS)
            manager.client.patch_status(WIDGETS, "d", {"status": {"phase": "Ready"}}, NS)
            manager.client.patch(WIDGETS, "d", {"spec": {"size": 2}}, NS)
            # One informer, one worker, FIFO: once the barrier is reconciled, every earlier
            # event of "d" has been either filtered out or reconciled.
            _widget(manager, "barrier")
            eventually(lambda: counting.calls["barrier"] == 1)
            assert counting.calls["d"] == 2, "the metadata and status changes were filtered out"
        finally:
            manager.stop()
            runner.join(30)


def test_requeue_after_reconciles_again(world: Any) -> None:
    _, manager, mirror = world
    _cm(manager, "e", {"requeue": "true"}, k="1")
    eventually(lambda: mirror.calls["e"] >= 4)


def _sample(manager: Manager, name: str, **labels: str) -> float:
    value = manager.recorder.registry.get_sample_value(name, labels)
    return value or 0.0


def test_terminal_error_is_not_retried(world: Any) -> None:
    _, manager, mirror = world
    _cm(manager, "f", {"bad": "true"}, k="1")
    eventually(lambda: _sample(manager, "controller_runtime_terminal_reconcile_errors_total",
                               controller="mirror") == 1)
    assert mirror.calls["f"] == 1
    assert _secret(manager, "f-mirror") is None


def test_recovered_exception_is_retried_with_backoff(world: Any) -> None:
    _, manager, mirror = world
    _cm(manager, "h", {"flaky": "true"}, k="1")
    eventually(lambda: _secret(manager, "h-mirror") is not None)
    assert mirror.calls["h"] >= 2
    assert _sample(manager, "controller_runtime_reconcile_errors_total", controller="mirror") >= 1


def test_mutate_rereads_on_conflict(world: Any) -> None:
    _, manager, _ = world
    _cm(manager, "i", k="1")
    interfered: list[bool] = []

    def change(cm: dict[str, Any]) -> None:
        if not interfered:  # another writer sneaks in between our read and our write
            interfered.append(True)
            manager.client.patch(CONFIGMAPS, "i", {"data": {"other": "kept"}}, NS)
        cm["data"]["k"] = "mine"

    manager.client.mutate(CONFIGMAPS, "i", NS, change)
    final = manager.client.resource(CONFIGMAPS).get("i", NS)
    assert final["data"] == {"k": "mine", "other": "kept"}


def test_ready_once_synced_and_metrics_served(world: Any) -> None:
    _, manager, _ = world
    http = urllib3.PoolManager(retries=False)
    try:
        eventually(lambda: http.request("GET", manager.server.probe_url + "/readyz").status
                   == 200, message="never ready")
        assert manager.informers.wait_for_sync(0)
        scraped = http.request("GET", manager.server.metrics_url + "/metrics").data.decode()
        assert 'controller_runtime_reconcile_total{controller="mirror",result="success"}' in scraped
        assert "workqueue_depth" in scraped and "rest_client_requests_total" in scraped
    finally:
        http.clear()
