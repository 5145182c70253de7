"""SessionReconciler against a client whose cache lags behind the server (no server).

The fake client keeps two dicts: what the server stores, and what the informer cache shows;
``sync()`` brings the cache up to date. Writes can be scripted to fail once, as injected 5xx
do in the chaos run.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
import yaml

from ambient_ctrl.events import EventRecorder
from ambient_ctrl.expectations import Expectations
from ambient_ctrl.reconcile import Request
from informers.errors import AlreadyExists, Conflict, NotFound, ServerError
from informers.resource import CONFIGMAPS, NAMESPACES, SECRETS, Resource
from metrics.recorder import Recorder
from metrics.registry import new_registry
from reconcilers.cloudinit import TOKEN_PATH
from reconcilers.metrics import SessionMetrics
from reconcilers.pod import PodEnvironment
from reconcilers.reconciler import SessionReconciler
from reconcilers.registry import RegistryCache
from reconcilers.resources import AGENTIC_SESSIONS, ExecutionKind
from reconcilers.vm import KubeVirtEnvironment

NS = "sessions"
REGISTRY = [{"id": "claude-vm", "executionKind": "kubevirt-vm",
             "vmConfig": {"containerDiskImage": "quay.io/x/disk:1"}}]


class LaggingClient:
    """Server state and a cache that only catches up on :meth:`sync`."""

    def __init__(self) -> None:
        self.server: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.cache: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.fail_create: set[tuple[str, str]] = set()
        """(plural, name) whose next create fails with 503 before reaching storage."""
        self.creates: list[tuple[str, str]] = []
        self.reveal: set[tuple[str, str, str]] = set()
        """Keys the cache catches up on right after a read misses them (an informer event
        arriving between two reads of one reconcile)."""

    def sync(self) -> None:
        self.cache = copy.deepcopy(self.server)

    def add(self, resource: Resource, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.server[(resource.plural, meta.get("namespace", ""), meta["name"])] = obj

    def get(self, resource: Resource, name: str, namespace: str | None = None
            ) -> dict[str, Any] | None:
        key = (resource.plural, namespace or "", name)
        found = self.cache.get(key)
        if found is None and key in self.reveal and key in self.server:
            self.reveal.discard(key)
            self.cache[key] = copy.deepcopy(self.server[key])
        return found

    def create(self, resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        key = (resource.plural, meta.get("namespace", ""), meta["name"])
        self.creates.append((resource.plural, meta["name"]))
        if (resource.plural, meta["name"]) in self.fail_create:
            self.fail_create.discard((resource.plural, meta["name"]))
            raise ServerError(503, {"reason": "ServiceUnavailable"})
        if key in self.server:
            raise AlreadyExists(409, {"reason": "AlreadyExists"})
        stored = copy.deepcopy(dict(obj))
        if "stringData" in stored:  # what the API server does with a Secret's stringData
            stored["data"] = {k: base64.b64encode(v.encode()).decode()
                              for k, v in stored.pop("stringData").items()}
        self.server[key] = stored
        return stored

    def patch(self, resource: Resource, name: str, patch: Any, namespace: str | None = None,
              **_: Any) -> dict[str, Any]:
        key = (resource.plural, namespace or "", name)
        if key not in self.server:
            raise NotFound(404, {"reason": "NotFound"})
        if resource is SECRETS:
            raise AssertionError(f"patched Secret {name}: {patch}")
        return self.server[key]

    def patch_status(self, resource: Resource, name: str, patch: Any,
                     namespace: str | None = None, **_: Any) -> dict[str, Any]:
        """A merge patch of ``status``; ``metadata.resourceVersion`` is a precondition."""
        stored = self.server[(resource.plural, namespace or "", name)]
        version = (patch.get("metadata") or {}).get("resourceVersion")
        if version and version != stored["metadata"].get("resourceVersion"):
            raise Conflict(409, {"reason": "Conflict"})
        merged = {**(stored.get("status") or {}), **patch["status"]}
        stored["status"] = {k: v for k, v in merged.items() if v is not None}
        return stored

    def delete(self, resource: Resource, name: str, namespace: str | None = None,
               **_: Any) -> None:
        self.server.pop((resource.plural, namespace or "", name), None)


def _world() -> tuple[LaggingClient, SessionReconciler]:
    client = LaggingClient()
    client.add(NAMESPACES, {"metadata": {"name": NS,
                                         "labels": {"ambient-code.io/managed": "true"}}})
    client.add(CONFIGMAPS, {"metadata": {"name": "ambient-agent-registry",
                                         "namespace": "ambient-code", "uid": "cm-1",
                                         "resourceVersion": "1"},
                            "data": {"agent-registry.json": orjson.dumps(REGISTRY).decode()}})
    client.add(AGENTIC_SESSIONS, {
        "apiVersion": AGENTIC_SESSIONS.api_version, "kind": AGENTIC_SESSIONS.kind,
        "metadata": {"name": "vm-a", "namespace": NS, "uid": "uid-vm-a", "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"runtime": "claude-vm", "initialPrompt": "hi"}})
    client.sync()
    recorder = Recorder(new_registry(runtime_collectors=False), monotonic=lambda: 0.0)
    reconciler = SessionReconciler(
        client,  # type: ignore[arg-type]
        environments={ExecutionKind.POD: PodEnvironment(),
                      ExecutionKind.KUBEVIRT_VM: KubeVirtEnvironment()},
        registry=RegistryCache(),
        events=EventRecorder(client, component="test"),  # type: ignore[arg-type]
        metrics=SessionMetrics(recorder, sessions=lambda: {}),
        expectations=Expectations(), kubevirt_installed=lambda: True)
    return client, reconciler


def _token_in_cloudinit(client: LaggingClient) -> str:
    secret = client.server[("secrets", NS, "vm-a-cloudinit")]
    userdata = base64.b64decode(secret["data"]["userdata"]).decode()
    files = [f for f in yaml.safe_load(userdata)["write_files"] if f["path"] == TOKEN_PATH]
    return str(files[0]["content"])


def _stored_token(client: LaggingClient) -> str:
    secret = client.server[("secrets", NS, "vm-a-agui-token")]
    return base64.b64decode(secret["data"]["token"]).decode()


@pytest.mark.parametrize("cache", ["unseen", "lost-expectation"])
def test_a_retry_before_the_cache_shows_the_token_secret_never_boots_a_vm_with_another_token(
        cache: str) -> None:
    """Regression (chaos run): the cloud-init Secret's create failed after the token Secret's
    succeeded; the retry, a moment later, did not see the token Secret in the cache, drew a
    fresh token and wrote it into the cloud-init Secret: the VM booted with a token nobody
    has. The reconciler now stops at a child it cannot see (pending, or AlreadyExists)."""
    client, reconciler = _world()
    request = Request(NS, "vm-a")
    client.fail_create.add(("secrets", "vm-a-cloudinit"))
    with pytest.raises(ServerError):
        reconciler.reconcile(request)
    assert ("secrets", NS, "vm-a-agui-token") in client.server
    if cache == "lost-expectation":  # e.g. the create's answer was lost: nothing pending
        reconciler._expectations.forget((NS, "vm-a", "uid-vm-a"))
    reconciler.reconcile(request)  # the cache still lacks the token Secret
    assert ("secrets", NS, "vm-a-cloudinit") not in client.server
    assert ("virtualmachines", NS, "vm-a-runner") not in client.server
    client.sync()
    reconciler.reconcile(request)
    assert _token_in_cloudinit(client) == _stored_token(client)
    assert ("virtualmachines", NS, "vm-a-runner") in client.server
    assert client.creates.count(("secrets", "vm-a-cloudinit")) == 2  # the failed one, then one


def test_a_token_secret_appearing_during_the_reconcile_is_not_overwritten() -> None:
    """Regression (chaos run, one patched Secret in 2,000 sessions): the token was drawn from
    a snapshot that lacked the token Secret; the informer delivered it before the diff, which
    then "corrected" the stored token to the fresh one."""
    client, reconciler = _world()
    request = Request(NS, "vm-a")
    reconciler.reconcile(request)  # creates everything; the cache has seen none of it
    stored = _stored_token(client)
    client.reveal.add(("secrets", NS, "vm-a-agui-token"))
    result = reconciler.reconcile(request)  # the fake fails the test on a Secret patch
    assert result.requeue_after > 0
    client.sync()
    reconciler.reconcile(request)
    assert _stored_token(client) == stored == _token_in_cloudinit(client)


def test_a_stale_copy_of_a_deleted_session_never_writes_the_status_of_its_successor() -> None:
    """Regression (chaos run, delete and re-create under the same name): the cache still held
    the deleted, Running session; its children were gone, so the reconcile declared the run
    lost and patched Failed/WorkloadLost — by name, onto the new session, which then stayed
    Failed for good."""
    client, reconciler = _world()
    old = copy.deepcopy(client.server[("agenticsessions", NS, "vm-a")])
    old["metadata"]["resourceVersion"] = "5"
    old["status"] = {"phase": "Running", "executionKind": "kubevirt-vm",
                     "startTime": "2026-01-01T00:00:01Z"}
    client.cache[("agenticsessions", NS, "vm-a")] = old  # the cache: the old incarnation
    successor = client.server[("agenticsessions", NS, "vm-a")]
    successor["metadata"].update(uid="uid-vm-a-2", resourceVersion="9")
    with pytest.raises(Conflict):  # retried once the cache holds the new session
        reconciler.reconcile(Request(NS, "vm-a"))
    assert "status" not in client.server[("agenticsessions", NS, "vm-a")]
    client.sync()
    reconciler.reconcile(Request(NS, "vm-a"))
    assert client.server[("agenticsessions", NS, "vm-a")]["status"]["phase"] == "Creating"


def test_a_session_recreated_unseen_does_not_wait_for_its_predecessors_children() -> None:
    """Regression (chaos run, delete and re-create under one name while the watch was down):
    the old session's creations were still expected — children garbage-collected with it, so
    never to be seen — and the new one, same name, waited for them until the expectations
    expired (5 minutes), with no status and no children."""
    client, reconciler = _world()
    request = Request(NS, "vm-a")
    reconciler.reconcile(request)  # creates the children; the cache has seen none of them
    for key in [k for k in client.server if k[0] != "agenticsessions" and k[2].startswith("vm-a")]:
        del client.server[key]  # gone with the old session
    client.server[("agenticsessions", NS, "vm-a")]["metadata"].update(uid="uid-vm-a-2",
                                                                    resourceVersion="20")
    client.sync()  # the cache now shows the successor, never the deletion
    reconciler.reconcile(request)
    assert ("secrets", NS, "vm-a-agui-token") in client.server  # created again, at once
