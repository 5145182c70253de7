"""SessionReconciler against a client whose cache lags behind the server (no server).

The fake client keeps two dicts: what the server stores, and what the informer cache shows;
``sync()`` brings the cache up to date (all of it, or some kinds). Writes can be scripted to
fail once, as injected 5xx do in the chaos run. Each test is a race the chaos run found or can
produce: a reconcile acting on a cache that has not yet shown the operator's own writes, or
still shows a session deleted and re-created under its name.
"""

from __future__ import annotations

import base64
import copy
import itertools
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import pytest

from ambient_ctrl.events import EventRecorder
from ambient_ctrl.expectations import Expectations
from ambient_ctrl.reconcile import Request
from foundation.clock import Clock, FakeClock, RealClock
from informers.errors import AlreadyExists, Conflict, NotFound, ServerError
from informers.resource import CONFIGMAPS, NAMESPACES, PODS, SECRETS, Resource
from metrics.recorder import Recorder
from metrics.registry import new_registry
from reconcilers.config import OperatorConfig
from reconcilers.metrics import SessionMetrics
from reconcilers.platform_secrets import PlatformSecrets
from reconcilers.pod import PodEnvironment
from reconcilers.reconciler import Caches, OperatorOptions, SessionReconciler, StartRetry
from reconcilers.registry import RegistryCache
from reconcilers.resources import AGENTIC_SESSIONS, RUN_ANNOTATION
from reconcilers.samples import UPSTREAM_REGISTRY, backend_session
from reconcilers.sync import CACHE_GRACE, ChildSync
from reconcilers.vm import KubeVirtEnvironment

NS = "sessions"
NAME = "session-0b5e4a3c-8d6f-4c61-9a57-2f0a1f6f4a11"
Key = tuple[str, str, str]


class LaggingClient:
    """Server state and a cache that only catches up on :meth:`sync`."""

    def __init__(self) -> None:
        self.server: dict[Key, dict[str, Any]] = {}
        self.cache: dict[Key, dict[str, Any]] = {}
        self.fail_create: set[tuple[str, str]] = set()
        """(plural, name) whose next create fails with 503 before reaching storage."""
        self.after_status_write: Callable[[], None] | None = None
        """Runs right after a status write: someone else writing in between."""
        self.writes: list[tuple[str, str, str]] = []
        """(verb, plural[/subresource], name) of every write, in order."""
        self._versions = itertools.count(100)
        self._uids = itertools.count(1)

    # the test's side ---------------------------------------------------------------------------
    def sync(self, *plurals: str) -> None:
        """The cache catches up: with everything, or with objects of ``plurals``."""
        if not plurals:
            self.cache = copy.deepcopy(self.server)
            return
        for key in [k for k in self.cache if k[0] in plurals]:
            del self.cache[key]
        self.cache.update({k: copy.deepcopy(v) for k, v in self.server.items()
                           if k[0] in plurals})

    def add(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        meta["resourceVersion"] = str(next(self._versions))
        self.server[(resource.plural, meta.get("namespace", ""), meta["name"])] = obj
        return obj

    def stored(self, plural: str, name: str) -> dict[str, Any] | None:
        return self.server.get((plural, NS, name))

    def count(self, verb: str, plural: str) -> int:
        return sum(1 for v, p, _ in self.writes if (v, p) == (verb, plural))

    def __repr__(self) -> str:
        return f"LaggingClient(writes={self.writes})"

    # the Client the reconciler uses ------------------------------------------------------------
    def get(self, resource: Resource, name: str, namespace: str | None = None
            ) -> dict[str, Any] | None:
        return self.cache.get((resource.plural, namespace or "", name))

    def list(self, resource: Resource, namespace: str | None = None) -> list[dict[str, Any]]:
        return [v for (p, ns, _), v in self.cache.items()
                if p == resource.plural and (namespace is None or ns == namespace)]

    def resource(self, resource: Resource) -> _Live:
        return _Live(self, resource)

    def create(self, resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        key = (resource.plural, meta.get("namespace", ""), meta["name"])
        self.writes.append(("create", resource.plural, meta["name"]))
        if (resource.plural, meta["name"]) in self.fail_create:
            self.fail_create.discard((resource.plural, meta["name"]))
            raise ServerError(503, {"reason": "ServiceUnavailable"})
        if key in self.server:
            raise AlreadyExists(409, {"reason": "AlreadyExists"})
        stored = copy.deepcopy(dict(obj))
        stored.setdefault("kind", resource.kind)
        if "stringData" in stored:  # what the API server does with a Secret's stringData
            stored["data"] = {k: base64.b64encode(v.encode()).decode()
                              for k, v in stored.pop("stringData").items()}
        return copy.deepcopy(self.add(resource, stored))

    def create_subresource(self, resource: Resource, name: str, subresource: str,
                           body: Any, namespace: str | None = None) -> dict[str, Any]:
        assert (resource.plural, subresource) == ("serviceaccounts", "token")
        self.writes.append(("create", "serviceaccounts/token", name))
        if (resource.plural, namespace or "", name) not in self.server:
            raise NotFound(404, {"reason": "NotFound"})
        return {"status": {"token": f"eyJ.token-{len(self.writes)}.sig",
                           "expirationTimestamp": "2030-01-01T00:00:00Z"}}

    def patch(self, resource: Resource, name: str, patch: Any, namespace: str | None = None,
              **_: Any) -> dict[str, Any]:
        self.writes.append(("patch", resource.plural, name))
        stored = self._stored(resource, name, namespace)
        _check_version(stored, patch)
        meta = patch.get("metadata") or {}
        for field in ("annotations", "labels"):
            merged = {**(stored["metadata"].get(field) or {}), **(meta.get(field) or {})}
            stored["metadata"][field] = {k: v for k, v in merged.items() if v is not None}
        for field in ("data", "spec", "rules"):
            if field in patch:
                stored[field] = {**(stored.get(field) or {}), **patch[field]} \
                    if isinstance(patch[field], dict) else patch[field]
        stored["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(stored)

    def patch_status(self, resource: Resource, name: str, patch: Any,
                     namespace: str | None = None, **_: Any) -> dict[str, Any]:
        """A merge patch of ``status``; ``metadata.resourceVersion`` is a precondition."""
        self.writes.append(("patch", f"{resource.plural}/status", name))
        stored = self._stored(resource, name, namespace)
        _check_version(stored, patch)
        merged = {**(stored.get("status") or {}), **patch["status"]}
        stored["status"] = {k: v for k, v in merged.items() if v is not None}
        stored["metadata"]["resourceVersion"] = str(next(self._versions))
        answer = copy.deepcopy(stored)
        if self.after_status_write is not None:
            self.after_status_write()
        return answer

    def delete(self, resource: Resource, name: str, namespace: str | None = None,
               **_: Any) -> None:
        self.writes.append(("delete", resource.plural, name))
        if self.server.pop((resource.plural, namespace or "", name), None) is None:
            raise NotFound(404, {"reason": "NotFound"})

    def _stored(self, resource: Resource, name: str, namespace: str | None) -> dict[str, Any]:
        try:
            return self.server[(resource.plural, namespace or "", name)]
        except KeyError:
            raise NotFound(404, {"reason": "NotFound"}) from None


class _Live:
    """``client.resource(r)``: reads from the server, not the cache."""

    def __init__(self, client: LaggingClient, resource: Resource) -> None:
        self._client = client
        self._resource = resource

    def get(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        return copy.deepcopy(self._client._stored(self._resource, name, namespace))


class _Scoped:
    """A narrow cache: the lagging cache's objects of one kind."""

    def __init__(self, client: LaggingClient, resource: Resource) -> None:
        self._client = client
        self._resource = resource

    def get(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self._client.get(self._resource, name, namespace)


def _check_version(stored: Mapping[str, Any], patch: Mapping[str, Any]) -> None:
    version = (patch.get("metadata") or {}).get("resourceVersion")
    if version and version != stored["metadata"].get("resourceVersion"):
        raise Conflict(409, {"reason": "Conflict"})


class FakeRunner:
    """The session's runner, as the reconciler's RunnerClient reaches it: records the calls,
    answers ``status`` (None: 200)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str]] = []
        self.error: str | None = None

    def post(self, namespace: str, session: str, port: int, call: Any, token: str
             ) -> str | None:
        self.calls.append((call.path, dict(call.body), token))
        return self.error


class NoEvents(EventRecorder):
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str]] = []

    def record(self, obj: Mapping[str, Any], type: str, *, reason: str, message: str) -> None:
        self.recorded.append((type, reason))


def world(runtime: str = "claude-agent-sdk", runner: FakeRunner | None = None,
          clock: Clock | None = None) -> tuple[LaggingClient, SessionReconciler]:
    client = LaggingClient()
    client.add(NAMESPACES, {"metadata": {"name": NS,
                                         "labels": {"ambient-code.io/managed": "true"}}})
    client.add(CONFIGMAPS, {"metadata": {"name": "ambient-agent-registry",
                                         "namespace": "ambient-code"},
                            "data": {"agent-registry.json":
                                     orjson.dumps(UPSTREAM_REGISTRY).decode()}})
    client.add(SECRETS, {"metadata": {"name": "ambient-runner-secrets", "namespace": NS},
                         "data": {"ANTHROPIC_API_KEY": "eA=="}})
    body = backend_session(NS, name=NAME, runner_type=runtime,
                           **({"runtime": runtime} if runtime == "claude-kubevirt" else {}))
    body.pop("status")  # the status subresource drops it
    body["metadata"].update(generation=1, creationTimestamp="2026-01-01T00:00:00Z")
    client.add(AGENTIC_SESSIONS, body)
    client.sync()
    recorder = Recorder(new_registry(runtime_collectors=False), monotonic=lambda: 0.0)
    metrics = SessionMetrics(recorder, sessions=lambda: {})
    config = OperatorConfig(namespace="ambient-code", backend_namespace="ambient-code")
    fake: Any = client
    scoped = {name: _Scoped(client, resource) for name, resource in (
        ("configmaps", CONFIGMAPS), ("secrets", SECRETS))}
    caches = Caches(configmaps=scoped["configmaps"], trusted_ca=scoped["configmaps"],
                    runner_secrets=scoped["secrets"], integrations=scoped["secrets"],
                    minio=scoped["secrets"], project_settings=_Scoped(client, Resource(
                        "vteam.ambient-code", "v1alpha1", "projectsettings",
                        "ProjectSettings")),
                    network_policies=_Scoped(client, Resource(
                        "networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy")))
    clock = clock or RealClock()
    reconciler = SessionReconciler(
        fake, environments=(PodEnvironment(), KubeVirtEnvironment()), caches=caches,
        platform=PlatformSecrets(fake, config, {}), registry=RegistryCache(),
        events=NoEvents(), metrics=metrics,
        sync=ChildSync(fake, expectations=Expectations(clock=clock), metrics=metrics,
                       clock=clock),
        runner=runner or FakeRunner(),  # type: ignore[arg-type]
        served=lambda resource: True, config=config,
        options=OperatorOptions(registry_namespace="ambient-code"), clock=clock)
    return client, reconciler


REQUEST = Request(NS, NAME)
TOKEN = f"ambient-runner-token-{NAME}"


def agui_token(client: LaggingClient) -> str:
    secret = client.stored("secrets", TOKEN)
    assert secret is not None
    return base64.b64decode(secret["data"]["agui-token"]).decode()


@pytest.mark.parametrize("runtime", ["claude-agent-sdk", "claude-kubevirt"])
def test_a_retry_before_the_cache_shows_the_token_secret_never_provisions_another(
        runtime: str) -> None:
    """The workload's create failed after the token Secret's succeeded; the retry comes
    before the cache shows the Secret. Provisioning again would rotate ``agui-token`` under
    the runner (the backend reads it from the Secret, the runner got the old one: every
    AG-UI call answered 401). The token Secret is expected, not provisioned again."""
    client, reconciler = world(runtime)
    workload = "virtualmachines" if runtime == "claude-kubevirt" else "pods"
    client.fail_create.add((workload, f"{NAME}-runner"))
    with pytest.raises(StartRetry):
        reconciler.reconcile(REQUEST)
    first = agui_token(client)
    assert client.count("create", "serviceaccounts/token") == 1
    client.sync("agenticsessions")  # the status write shows; the Secret does not yet
    reconciler.reconcile(REQUEST)
    assert client.count("create", "serviceaccounts/token") == 1
    assert ("patch", "secrets", TOKEN) not in client.writes
    assert agui_token(client) == first
    assert client.stored(workload, f"{NAME}-runner") is not None
    assert client.stored("agenticsessions", NAME)["status"]["phase"] == "Creating"


def test_a_workload_created_a_moment_ago_is_neither_created_again_nor_taken_for_lost() -> None:
    client, reconciler = world()
    reconciler.reconcile(REQUEST)
    assert client.count("create", "pods") == 1
    client.sync("agenticsessions")  # Creating; the Pod is not in the cache yet
    for _ in range(3):
        reconciler.reconcile(REQUEST)
    assert client.count("create", "pods") == 1
    session = client.stored("agenticsessions", NAME)
    assert session["status"]["phase"] == "Creating"
    assert (session.get("metadata") or {}).get("annotations", {}).get(
        "ambient-code.io/runner-sa") == f"ambient-session-{NAME}"


def test_a_stale_copy_of_a_deleted_session_never_writes_the_status_of_its_successor() -> None:
    """The cache still holds the deleted, Running session; its children are gone, so a
    reconcile resets it to Pending — by name, onto the new session. The status write is
    guarded by the cached resourceVersion: 409, nothing else is made (the reset is written
    before a run starts), and the reconcile is retried once the cache holds the successor,
    which then starts as a new session would."""
    client, reconciler = world()
    old = copy.deepcopy(client.server[("agenticsessions", NS, NAME)])
    old["metadata"]["resourceVersion"] = "5"
    old["status"] = {"phase": "Running", "executionKind": "pod",
                     "startTime": "2026-01-01T00:00:01Z"}
    client.cache[("agenticsessions", NS, NAME)] = old
    successor = client.server[("agenticsessions", NS, NAME)]
    successor["metadata"].update(uid="uid-successor", resourceVersion="900")
    result = reconciler.reconcile(REQUEST)
    assert result.requeue
    assert "status" not in client.server[("agenticsessions", NS, NAME)]
    assert not [k for k, v in client.server.items() if any(
        r.get("uid") == old["metadata"]["uid"]
        for r in v["metadata"].get("ownerReferences") or ())]
    client.sync()
    reconciler.reconcile(REQUEST)
    stored = client.server[("agenticsessions", NS, NAME)]
    assert stored["status"]["phase"] == "Creating"
    pod = client.stored("pods", f"{NAME}-runner")
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "uid-successor"
    assert "IS_RESUME" not in {e["name"] for e in pod["spec"]["containers"][0]["env"]}


def test_a_session_recreated_unseen_does_not_wait_for_its_predecessors_children() -> None:
    """Deleted and re-created under one name while the watch was down: the old session's
    creations must not be expected for the new one (its children went with the old one and
    will never be seen), or the new one waits for them until the expectations expire."""
    client, reconciler = world()
    reconciler.reconcile(REQUEST)  # creates the children; the cache has seen none of them
    for key in [k for k in client.server if k[0] not in ("agenticsessions", "namespaces",
                                                         "configmaps")
                and NAME in k[2]]:
        del client.server[key]  # gone with the old session
    client.server[("agenticsessions", NS, NAME)]["metadata"].update(uid="uid-successor",
                                                                    resourceVersion="950")
    client.server[("agenticsessions", NS, NAME)].pop("status", None)
    client.sync()  # the cache now shows the successor, never the deletion
    reconciler.reconcile(REQUEST)
    assert client.stored("secrets", TOKEN) is not None  # provisioned again, at once
    assert client.stored("pods", f"{NAME}-runner") is not None
    assert client.stored("pods", f"{NAME}-runner")["metadata"]["ownerReferences"][0][
        "uid"] == "uid-successor"


def test_a_stop_asked_for_while_a_restart_is_written_is_not_erased() -> None:
    """The fulfilled desired-phase=Running is cleared by a patch guarded by the version the
    status write produced: a desired-phase=Stopped the backend writes in between answers 409
    and survives, and the next pass stops the run."""
    client, reconciler = world()
    session = client.server[("agenticsessions", NS, NAME)]
    session["status"] = {"phase": "Stopped", "startTime": "2026-01-01T00:00:01Z",
                         "completionTime": "2026-01-01T00:10:00Z", "stoppedReason": "user"}
    session["metadata"]["annotations"] = {"ambient-code.io/desired-phase": "Running"}
    client.sync()

    def backend_stops() -> None:
        stored = client.server[("agenticsessions", NS, NAME)]
        stored["metadata"]["annotations"]["ambient-code.io/desired-phase"] = "Stopped"
        stored["metadata"]["resourceVersion"] = "990"

    reconciler.reconcile(REQUEST)  # the restart's reset: Pending, written first
    assert client.server[("agenticsessions", NS, NAME)]["status"]["phase"] == "Pending"
    client.sync()
    client.after_status_write = backend_stops
    assert reconciler.reconcile(REQUEST).requeue  # the guarded clear met a newer version
    client.after_status_write = None
    stored = client.server[("agenticsessions", NS, NAME)]
    assert stored["metadata"]["annotations"]["ambient-code.io/desired-phase"] == "Stopped"
    assert stored["status"]["phase"] == "Creating"
    client.sync()
    reconciler.reconcile(REQUEST)
    client.sync()
    reconciler.reconcile(REQUEST)
    stored = client.server[("agenticsessions", NS, NAME)]
    assert stored["status"]["phase"] == "Stopped"
    assert stored["status"]["stoppedReason"] == "user"
    assert client.stored("pods", f"{NAME}-runner") is None
    assert "ambient-code.io/desired-phase" not in stored["metadata"]["annotations"]


def _running(client: LaggingClient, reconciler: SessionReconciler) -> None:
    """Start the run and make its Pod Running and Ready, as a kubelet would."""
    reconciler.reconcile(REQUEST)
    pod = client.stored("pods", f"{NAME}-runner")
    assert pod is not None
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                     "containerStatuses": [{"name": "ambient-code-runner",
                                            "state": {"running": {}}}]}
    client.sync()
    reconciler.reconcile(REQUEST)
    client.sync()
    assert client.stored("agenticsessions", NAME)["status"]["phase"] == "Running"


def test_a_child_whose_label_went_before_its_cache_saw_it_is_read_from_the_server() -> None:
    """The Service is created and awaited; its label is removed before the (label-selected)
    cache shows it, so no watch ever will. While the cache may just be behind, a pass waits;
    after ``CACHE_GRACE`` it reads the server and brings the Service back (not after the
    expectation's 300 s)."""
    clock = FakeClock()
    client, reconciler = world(clock=clock)
    reconciler.reconcile(REQUEST)
    service_key = ("services", NS, f"session-{NAME}")
    labels = copy.deepcopy(client.server[service_key]["metadata"]["labels"])
    client.server[service_key]["metadata"]["labels"] = {}
    pod = client.stored("pods", f"{NAME}-runner")
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                     "containerStatuses": [{"name": "ambient-code-runner",
                                            "state": {"running": {}}}]}
    client.sync()
    del client.cache[service_key]  # the cache holds only labelled Services
    reconciler.reconcile(REQUEST)
    assert ("patch", "services", f"session-{NAME}") not in client.writes
    clock.step(CACHE_GRACE)
    client.sync("agenticsessions")
    reconciler.reconcile(REQUEST)
    assert client.count("create", "services") == 1
    assert ("patch", "services", f"session-{NAME}") in client.writes
    assert client.server[service_key]["metadata"]["labels"] == labels


def test_a_running_sessions_repo_and_workflow_edits_reach_its_runner() -> None:
    """§4.15: the backend edits spec.repos and spec.activeWorkflow of a Running session (the
    generation moves): the runner gets /repos/add, /repos/remove and /workflow with the
    session's token; the status records what was applied; the workload is not replaced."""
    runner = FakeRunner()
    client, reconciler = world(runner=runner)
    session = client.stored("agenticsessions", NAME)
    session["spec"]["repos"] = [{"url": "https://github.com/org/old.git", "branch": "main"}]
    client.sync()
    _running(client, reconciler)
    pod_uid = client.stored("pods", f"{NAME}-runner")["metadata"]["uid"]
    token = base64.b64decode(client.stored("secrets", TOKEN)["data"]["agui-token"]).decode()
    runner.calls.clear()
    session = client.stored("agenticsessions", NAME)
    session["spec"]["repos"] = [{"url": "https://github.com/org/new.git", "branch": "dev"}]
    session["spec"]["activeWorkflow"] = {"gitUrl": "https://github.com/org/wf.git",
                                         "branch": "main", "path": "flows/a"}
    session["metadata"]["generation"] = 2
    client.sync()
    reconciler.reconcile(REQUEST)
    assert runner.calls == [
        ("/repos/add", {"url": "https://github.com/org/new.git", "branch": "dev",
                        "name": "new"}, token),
        ("/repos/remove", {"name": "old"}, token),
        ("/workflow", {"gitUrl": "https://github.com/org/wf.git", "branch": "main",
                       "path": "flows/a"}, token)]
    status = client.stored("agenticsessions", NAME)["status"]
    assert status["observedGeneration"] == 2
    assert [r["url"] for r in status["reconciledRepos"]] == ["https://github.com/org/new.git"]
    assert status["reconciledWorkflow"]["status"] == "Active"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (conditions["Reconciled"]["status"], conditions["Reconciled"]["reason"]) == (
        "True", "SpecApplied")
    assert conditions["WorkflowReconciled"]["reason"] == "Reconciled"
    assert conditions["ReposReconciled"]["message"] == (
        "Reconciled 1 repos (added: 1, removed: 1, branch changed: 0)")
    assert "RestartRequired" not in conditions  # applied live: no new run needed
    assert client.stored("pods", f"{NAME}-runner")["metadata"]["uid"] == pod_uid
    client.sync()
    runner.calls.clear()
    reconciler.reconcile(REQUEST)
    assert runner.calls == []  # applied: nothing more to ask


def test_a_runner_that_refuses_the_workflow_leaves_a_condition_and_is_asked_again_later(
        ) -> None:
    runner = FakeRunner()
    client, reconciler = world(runner=runner)
    _running(client, reconciler)
    runner.error = "Runner returned 500"
    runner.calls.clear()
    session = client.stored("agenticsessions", NAME)
    session["spec"]["activeWorkflow"] = {"gitUrl": "https://github.com/org/wf.git"}
    session["metadata"]["generation"] = 2
    client.sync()
    first = reconciler.reconcile(REQUEST)
    second_session = client.stored("agenticsessions", NAME)
    status = second_session["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (conditions["WorkflowReconciled"]["status"],
            conditions["WorkflowReconciled"]["reason"]) == ("False", "UpdateFailed")
    assert conditions["Reconciled"]["reason"] == "WorkflowReconciliationFailed"
    assert status["observedGeneration"] == 1  # not applied: tried again
    client.sync()
    again = reconciler.reconcile(REQUEST)
    assert len(runner.calls) == 2
    assert 0 < first.requeue_after < again.requeue_after <= 300  # backing off
    runner.error = None
    client.sync()
    reconciler.reconcile(REQUEST)
    status = client.stored("agenticsessions", NAME)["status"]
    assert status["observedGeneration"] == 2
    assert status["reconciledWorkflow"]["gitUrl"] == "https://github.com/org/wf.git"



def _intend(client: LaggingClient, phase: str) -> None:
    """The backend's Start/Stop: the desired-phase annotation (and a newer version)."""
    stored = client.server[("agenticsessions", NS, NAME)]
    stored["metadata"].setdefault("annotations", {})["ambient-code.io/desired-phase"] = phase
    stored["metadata"]["resourceVersion"] = str(next(client._versions))


def test_a_run_stopped_before_its_workload_was_seen_does_not_hold_the_next_run() -> None:
    """Expectations belong to one run: the runner Pod of a run stopped before the cache ever
    showed it (created and deleted between two passes) is no reason for the next run's
    Pod to wait until the expectation expires (issue 15: quick Running/Stopped flips)."""
    client, reconciler = world()
    reconciler.reconcile(REQUEST)  # run 1: the Pod is created; the cache never shows it
    assert client.stored("pods", f"{NAME}-runner") is not None
    client.sync("agenticsessions", "secrets", "serviceaccounts", "roles", "rolebindings")
    _intend(client, "Stopped")
    client.sync("agenticsessions")
    for _ in range(3):  # Stopping → Stopped: the Pod is deleted by name
        reconciler.reconcile(REQUEST)
        client.sync("agenticsessions")
    assert client.stored("pods", f"{NAME}-runner") is None
    assert client.stored("agenticsessions", NAME)["status"]["phase"] == "Stopped"
    client.sync()
    _intend(client, "Running")
    client.sync("agenticsessions")
    for _ in range(3):  # the restart: reset to Pending, then the new run starts at once
        reconciler.reconcile(REQUEST)
        client.sync("agenticsessions")
    assert client.stored("pods", f"{NAME}-runner") is not None, \
        "the new run waited for the stopped run's Pod"


def test_a_stop_after_the_unseen_workload_vanished_does_not_wait_for_it() -> None:
    """The run's Pod was created and deleted by someone else before the cache showed it (a
    watch that compressed both away): a Stop reads it from the server instead of waiting for
    an event that will never come, and the next run starts at once."""
    client, reconciler = world()
    reconciler.reconcile(REQUEST)
    del client.server[("pods", NS, f"{NAME}-runner")]  # never seen by the cache
    client.sync("agenticsessions", "secrets", "serviceaccounts", "roles", "rolebindings")
    _intend(client, "Stopped")
    client.sync("agenticsessions")
    for _ in range(3):
        reconciler.reconcile(REQUEST)
        client.sync("agenticsessions")
    assert client.stored("agenticsessions", NAME)["status"]["phase"] == "Stopped"
    _intend(client, "Running")
    client.sync("agenticsessions")
    for _ in range(3):
        reconciler.reconcile(REQUEST)
        client.sync("agenticsessions")
    assert client.stored("pods", f"{NAME}-runner") is not None


def test_a_stop_never_deletes_an_unseen_workload_of_someone_else() -> None:
    """The name the run created is held by another object by the time a Stop reads it from
    the server (ours went, someone else's came): it is left alone."""
    client, reconciler = world()
    reconciler.reconcile(REQUEST)
    pod = client.server.pop(("pods", NS, f"{NAME}-runner"))
    client.add(PODS, {"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": pod["metadata"]["name"], "namespace": NS},
                      "spec": {"containers": [{"name": "x", "image": "x"}]}})
    client.sync("agenticsessions", "secrets", "serviceaccounts", "roles", "rolebindings")
    _intend(client, "Stopped")
    client.sync("agenticsessions")
    reconciler.reconcile(REQUEST)
    assert client.stored("pods", f"{NAME}-runner") is not None
    assert client.count("delete", "pods") == 0


def test_a_namespace_no_longer_managed_starts_nothing_but_its_runs_still_stop() -> None:
    """Unmanaging a namespace (its ambient-code.io/managed label removed): a live run is
    still looked after and its Stop carried out (upstream skipped it, so the Stop was
    ignored and the run went on); a stopped session is not started again there."""
    client, reconciler = world()
    _running(client, reconciler)
    client.server[("namespaces", "", NS)]["metadata"]["labels"] = {}
    _intend(client, "Stopped")
    client.sync()
    for _ in range(3):
        reconciler.reconcile(REQUEST)
        client.sync()
    assert client.stored("agenticsessions", NAME)["status"]["phase"] == "Stopped"
    assert client.stored("pods", f"{NAME}-runner") is None
    _intend(client, "Running")
    client.sync()
    before = len(client.writes)
    reconciler.reconcile(REQUEST)
    assert client.writes[before:] == []  # nothing starts in a namespace that is not managed
    assert client.stored("agenticsessions", NAME)["status"]["phase"] == "Stopped"


def test_in_a_namespace_not_managed_a_status_no_run_wrote_is_left_alone() -> None:
    """A session whose status says Running but that no start wrote (no startTime: another
    tool's, or a test's fixture) is not looked after there: no Pod-lost reset, no write."""
    client, reconciler = world()
    client.server[("namespaces", "", NS)]["metadata"]["labels"] = {}
    client.server[("agenticsessions", NS, NAME)]["status"] = {"phase": "Running"}
    client.sync()
    before = len(client.writes)
    for _ in range(2):
        reconciler.reconcile(REQUEST)
        client.sync()
    assert client.writes[before:] == []
    assert client.stored("agenticsessions", NAME)["status"] == {"phase": "Running"}


def _count_renders(monkeypatch: pytest.MonkeyPatch, environment: type[Any]) -> list[object]:
    """A list that gets an entry for each render ``environment`` makes from now on."""
    renders: list[object] = []
    original = environment.render

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        renders.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(environment, "render", counted)
    return renders


@pytest.mark.parametrize("runtime", ["claude-agent-sdk", "claude-kubevirt"])
def test_a_first_start_renders_once_and_records_the_run_it_starts(
        runtime: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check's render (bad input is found before anything is created) is the one the
    start creates from, when its inputs are the start's: the same run (``startTime``) on the
    workload as in the status."""
    renders = _count_renders(monkeypatch, KubeVirtEnvironment if runtime == "claude-kubevirt"
                             else PodEnvironment)
    client, reconciler = world(runtime)
    reconciler.reconcile(REQUEST)
    assert len(renders) == 1
    workload = "virtualmachines" if runtime == "claude-kubevirt" else "pods"
    made = client.stored(workload, f"{NAME}-runner")
    assert made is not None
    status = client.stored("agenticsessions", NAME)["status"]
    assert made["metadata"]["annotations"][RUN_ANNOTATION] == status["startTime"]


@pytest.mark.parametrize("runtime", ["claude-agent-sdk", "claude-kubevirt"])
def test_a_start_and_the_live_runs_first_pass_render_once(
        runtime: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The start's render is the one the live run's first pass compares its children with
    (the session has the start's annotations and status by then: no render reads them)."""
    renders = _count_renders(monkeypatch, KubeVirtEnvironment if runtime == "claude-kubevirt"
                             else PodEnvironment)
    client, reconciler = world(runtime)
    reconciler.reconcile(REQUEST)
    client.sync()
    session = client.stored("agenticsessions", NAME)
    assert session["status"]["phase"] == "Creating"
    assert session["metadata"]["annotations"].get("ambient-code.io/runner-sa"), \
        "the start wrote the token's names on the session"
    before = len(client.writes)
    reconciler.reconcile(REQUEST)  # the live run's first pass: its children compared
    client.sync()
    assert len(renders) == 1
    assert client.writes[before:] == [], "the start's render is what was created"


def test_a_run_started_again_after_its_workload_was_lost_records_the_new_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The Running session's Pod goes (evicted): reset to Pending with a new ``startTime``,
    then the new run starts. Its Pod records the new run, not the checked-and-lost one's,
    and that run is rendered once."""
    client, reconciler = world()
    _running(client, reconciler)
    first = "2026-01-01T00:00:00Z"  # the run began long ago (startTime has 1 s resolution)
    client.stored("agenticsessions", NAME)["status"]["startTime"] = first
    del client.server[("pods", NS, f"{NAME}-runner")]
    client.sync()
    reconciler.reconcile(REQUEST)  # the reset: Pending, a new startTime
    client.sync("agenticsessions")
    renders = _count_renders(monkeypatch, PodEnvironment)
    reconciler.reconcile(REQUEST)  # the new run
    status = client.stored("agenticsessions", NAME)["status"]
    made = client.stored("pods", f"{NAME}-runner")
    assert made is not None and status["startTime"] != first
    assert made["metadata"]["annotations"][RUN_ANNOTATION] == status["startTime"]
    assert len(renders) == 1
