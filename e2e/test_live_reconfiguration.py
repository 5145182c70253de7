"""Live reconfiguration of a Running session (issue 14 item 1, UPSTREAM-CONTRACT §4.15), with
real processes: the local API server (its kubelet starts a runner stand-in for pods whose
session sets ``ENVTEST_RUNNER_STANDIN``) and the operator, which reaches runners through the API
server's Service proxy (``--runner-address apiserver``: there is no cluster DNS here).

The backend edits a Running session's ``spec.repos`` and ``spec.activeWorkflow`` (as its
AddRepo/RemoveRepo/SelectWorkflow handlers do): the runner must get ``POST /repos/add``,
``/repos/remove`` and ``/workflow`` with the session's ``X-Ambient-Session-Token``, and the
session must show what was applied — without a new runner. A runner that answers 500 leaves
``WorkflowReconciled=False UpdateFailed`` and is asked again with backoff, never in a storm.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from kubernetes import client

from ambient_ctrl.testing import eventually
from e2e.test_upstream_contract import (
    GROUP,
    OPERATOR_NS,
    PLURAL,
    REGISTRY,
    VERSION,
    Platform,
    running_platform,
)
from informers.rest import Transport
from reconcilers.install import install

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.local_only("a runner stand-in behind the local API server's proxy")]

NS = "live"
OLD = "https://github.com/org/old.git"
NEW = "https://github.com/org/new.git"
WORKFLOW = {"gitUrl": "https://github.com/org/workflows.git", "branch": "main",
            "path": "flows/review"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    def prepare(transport: Transport, api: client.ApiClient) -> None:
        install(transport, namespace=NS, registry_namespace=OPERATOR_NS, registry=REGISTRY)

    with running_platform(tmp_path_factory.mktemp("live"), simulate="kubelet", prepare=prepare,
                          operator_args=["--runner-address", "apiserver"]) as running:
        yield running


def standin(platform: Platform, name: str, path: str, body: Any = None,
            method: str = "GET") -> Any:
    """The session's runner stand-in, through the Service proxy (its test controls)."""
    request = platform.api.param_serialize(
        method=method, resource_path=f"/api/v1/namespaces/{NS}/services/session-{name}:8001/proxy"
        f"{path}", header_params={"Content-Type": "application/json"}, body=body,
        auth_settings=["BearerToken"])
    answer = platform.api.call_api(*request, _request_timeout=10)
    answer.read()
    if answer.status >= 300:
        raise client.ApiException(status=answer.status, reason=answer.data.decode())
    return orjson.loads(answer.data)


def runner_requests(platform: Platform, name: str) -> list[dict[str, Any]]:
    return [r for r in standin(platform, name, "/_standin/requests")["requests"]
            if r["path"] != "/health"]


def edit_spec(platform: Platform, name: str, spec: dict[str, Any]) -> None:
    """The backend's AddRepo/RemoveRepo/SelectWorkflow: a merge patch of the spec."""
    platform.custom.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name,
                                                   {"spec": spec})


def running_session(platform: Platform) -> tuple[str, str, str]:
    """A Running session with a runner stand-in and one repo: (name, pod uid, agui token)."""
    name = platform.create(NS, repos=[{"url": OLD}],
                           extra_env={"ENVTEST_RUNNER_STANDIN": "1"})
    platform.wait_phase(name, "Running", namespace=NS)
    eventually(lambda: standin(platform, name, "/health")["status"] == "healthy",
               ignoring=(client.ApiException,), message="the runner stand-in never answered")
    pod = platform.core.read_namespaced_pod(f"{name}-runner", NS)
    secret = platform.core.read_namespaced_secret(f"ambient-runner-token-{name}", NS)
    token = base64.b64decode(secret.data["agui-token"]).decode()
    return name, pod.metadata.uid, token


def conditions(platform: Platform, name: str) -> dict[str, tuple[str, str, str]]:
    status = platform.session(name, NS).get("status") or {}
    return {c["type"]: (c["status"], c.get("reason", ""), c.get("message", ""))
            for c in status.get("conditions") or ()}


def test_repo_and_workflow_edits_reach_the_running_runner(platform: Platform) -> None:
    name, pod_uid, token = running_session(platform)
    assert runner_requests(platform, name) == []  # nothing to reconfigure at start
    edit_spec(platform, name, {"repos": [{"url": NEW, "branch": "dev"}],
                               "activeWorkflow": WORKFLOW})
    generation = platform.session(name, NS)["metadata"]["generation"]

    def applied() -> dict[str, Any]:
        status = platform.session(name, NS)["status"]
        assert status.get("observedGeneration") == generation, status
        return dict(status)

    status = eventually(applied, timeout=20, message="the edit was never applied")
    calls = runner_requests(platform, name)
    assert [(c["method"], c["path"], c["body"]) for c in calls] == [
        ("POST", "/repos/add", {"url": NEW, "branch": "dev", "name": "new"}),
        ("POST", "/repos/remove", {"name": "old"}),
        ("POST", "/workflow", WORKFLOW)]
    assert all(c["headers"]["x-ambient-session-token"] == token for c in calls)
    assert all(c["status"] == 200 for c in calls)
    assert [(r["url"], r["branch"], r["name"], r["status"])
            for r in status["reconciledRepos"]] == [(NEW, "dev", "new", "Ready")]
    assert {k: status["reconciledWorkflow"][k] for k in ("gitUrl", "branch", "path",
                                                         "status")} == {**WORKFLOW,
                                                                        "status": "Active"}
    found = conditions(platform, name)
    assert found["ReposReconciled"][:2] == ("True", "Reconciled")
    assert found["WorkflowReconciled"] == (
        "True", "Reconciled", f"Switched to workflow {WORKFLOW['gitUrl']}@main")
    assert found["Reconciled"] == ("True", "SpecApplied",
                                   f"Successfully reconciled generation {generation}")
    assert "RestartRequired" not in found  # applied live, not waiting for a new run
    assert platform.phase(name, NS) == "Running"
    pod = platform.core.read_namespaced_pod(f"{name}-runner", NS)
    assert pod.metadata.uid == pod_uid  # the same runner: nothing restarted
    assert standin(platform, name, "/_standin/state")["workflow"]["gitUrl"] == WORKFLOW["gitUrl"]
    time.sleep(1.0)  # about time passing: once applied, the runner is not asked again
    assert len(runner_requests(platform, name)) == 3


def test_a_runner_answering_500_gets_a_clear_condition_and_no_storm(
        platform: Platform) -> None:
    name, _, _ = running_session(platform)
    standin(platform, name, "/_standin/behaviour", {"status": 500}, method="POST")
    edit_spec(platform, name, {"activeWorkflow": WORKFLOW})
    generation = platform.session(name, NS)["metadata"]["generation"]

    def refused() -> tuple[str, str, str]:
        found = conditions(platform, name)
        assert found.get("WorkflowReconciled", ("",))[0] == "False", found
        return found["WorkflowReconciled"]

    assert eventually(refused, timeout=20) == ("False", "UpdateFailed", "Runner returned 500")
    found = conditions(platform, name)
    assert found["Reconciled"] == ("False", "WorkflowReconciliationFailed",
                                   "Failed to reconcile workflow: Runner returned 500")
    assert platform.session(name, NS)["status"]["observedGeneration"] < generation
    # Asked again with backoff (5 s, then 10 s, ...), not in a storm.
    time.sleep(8.0)
    attempts = [c for c in runner_requests(platform, name) if c["path"] == "/workflow"]
    assert 1 <= len(attempts) <= 3, attempts
    standin(platform, name, "/_standin/behaviour", {}, method="POST")  # the runner recovers

    def recovered() -> dict[str, Any]:
        status = platform.session(name, NS)["status"]
        assert status.get("observedGeneration") == generation, status
        return dict(status)

    status = eventually(recovered, timeout=30, message="never applied after the runner recovered")
    assert status["reconciledWorkflow"]["gitUrl"] == WORKFLOW["gitUrl"]
    assert conditions(platform, name)["WorkflowReconciled"][:2] == ("True", "Reconciled")
    assert platform.phase(name, NS) == "Running"
