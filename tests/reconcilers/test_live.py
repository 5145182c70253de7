"""Live reconfiguration as pure functions (UPSTREAM-CONTRACT §4.15, §3.2 Running rows).

Expectations are written from the contract: which runner calls a spec change needs, and what
the status says once the runner answered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from reconcilers.environment import Observation
from reconcilers.live import Answers, Call, Plan, applied, plan, without_live_env
from reconcilers.phase import READY_RECHECK, next_step
from reconcilers.phasetypes import World

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
T_NOW = "2026-03-01T12:00:00Z"
OLD = "https://github.com/org/old.git"
NEW = "https://github.com/org/new.git"
WF = {"gitUrl": "https://github.com/org/wf.git", "branch": "main", "path": "flows/a"}


def session(*, generation: int = 2, observed: int = 1, repos: Any = None,
            workflow: Any = None, status: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if repos is not None:
        spec["repos"] = repos
    if workflow is not None:
        spec["activeWorkflow"] = workflow
    return {"metadata": {"name": "s", "namespace": "ns", "generation": generation},
            "spec": spec,
            "status": {"phase": "Running", "observedGeneration": observed,
                       "startTime": "2026-03-01T11:00:00Z", **(status or {})}}


RECONCILED_OLD = {"reconciledRepos": [{"url": OLD, "branch": "main", "name": "old",
                                       "status": "Ready", "clonedAt": "x"}]}


@pytest.mark.parametrize(("obj", "calls"), [
    # no generation drift, no workflow: nothing
    (session(generation=1, repos=[{"url": NEW}], status=RECONCILED_OLD), None),
    # observedGeneration 0 (never written): upstream skips the drift check
    (session(observed=0, repos=[{"url": NEW}]), None),
    # a repo added and one removed
    (session(repos=[{"url": NEW, "branch": "dev"}], status=RECONCILED_OLD),
     [Call("/repos/add", {"url": NEW, "branch": "dev", "name": "new"}),
      Call("/repos/remove", {"name": "old"})]),
    # a branch changed: /repos/add with the new branch
    (session(repos=[{"url": OLD, "branch": "feature"}], status=RECONCILED_OLD),
     [Call("/repos/add", {"url": OLD, "branch": "feature", "name": "old"})]),
    # duplicates: the last entry's branch wins, branch defaults to main
    (session(repos=[{"url": NEW, "branch": "a"}, {"url": NEW}], status=RECONCILED_OLD),
     [Call("/repos/add", {"url": NEW, "branch": "main", "name": "new"}),
      Call("/repos/remove", {"name": "old"})]),
    # the same repos: no call (the generation moved for something else)
    (session(repos=[{"url": OLD}], status=RECONCILED_OLD), []),
    # a new workflow
    (session(workflow=WF), [Call("/workflow", WF)]),
    # the workflow's branch defaults to main
    (session(workflow={"gitUrl": WF["gitUrl"]}),
     [Call("/workflow", {"gitUrl": WF["gitUrl"], "branch": "main", "path": ""})]),
    # the reconciled workflow is the same: no call
    (session(workflow=WF, status={"reconciledWorkflow": {**WF, "status": "Active"}}), []),
    # no drift, but the workflow never applied (WorkflowReconciled not True): retried
    (session(generation=1, workflow=WF), [Call("/workflow", WF)]),
    (session(generation=1, workflow=WF, status={"conditions": [
        {"type": "WorkflowReconciled", "status": "True"}]}), None),
    # a workflow without gitUrl is nothing to apply
    (session(generation=1, workflow={"branch": "x"}), None),
], ids=["no-drift", "never-observed", "add-remove", "branch", "dedupe", "same", "workflow",
        "workflow-branch-default", "workflow-same", "workflow-retry", "workflow-applied",
        "workflow-without-url"])
def test_plan(obj: dict[str, Any], calls: list[Call] | None) -> None:
    result = plan(obj)
    if calls is None:
        assert result is None
    else:
        assert result is not None and list(result.calls) == calls


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


def test_applied_spec_change_records_repos_workflow_and_generation() -> None:
    obj = session(repos=[{"url": NEW, "branch": "dev"}, {"url": OLD}], workflow=WF,
                  status=RECONCILED_OLD)
    the_plan = plan(obj)
    assert the_plan is not None
    status = applied(obj, obj["status"], the_plan, Answers(), now=NOW)
    assert status["observedGeneration"] == 2
    assert status["reconciledRepos"] == [
        {"url": NEW, "name": "new", "branch": "dev", "clonedAt": T_NOW, "status": "Ready"},
        {"url": OLD, "name": "old", "branch": "main", "clonedAt": T_NOW, "status": "Ready"}]
    assert status["reconciledWorkflow"] == {**WF, "status": "Active", "appliedAt": T_NOW}
    assert conditions(status) == {
        "ReposReconciled": ("True", "Reconciled",
                            "Reconciled 2 repos (added: 1, removed: 0, branch changed: 0)"),
        "WorkflowReconciled": ("True", "Reconciled",
                               f"Switched to workflow {WF['gitUrl']}@main"),
        "Reconciled": ("True", "SpecApplied", "Successfully reconciled generation 2")}


def test_applied_workflow_failure_keeps_the_generation_behind() -> None:
    obj = session(workflow=WF)
    the_plan = plan(obj)
    assert the_plan is not None
    status = applied(obj, obj["status"], the_plan, Answers("Runner returned 500"), now=NOW)
    assert status["observedGeneration"] == 1
    assert "reconciledWorkflow" not in status
    assert conditions(status) == {
        "ReposReconciled": ("True", "NoRepos", "No repositories defined"),  # no spec.repos
        "WorkflowReconciled": ("False", "UpdateFailed", "Runner returned 500"),
        "Reconciled": ("False", "WorkflowReconciliationFailed",
                       "Failed to reconcile workflow: Runner returned 500")}


def test_applied_repos_and_workflow_removed_forget_what_was_reconciled() -> None:
    obj = session(status={**RECONCILED_OLD, "reconciledWorkflow": {**WF, "status": "Active"}})
    the_plan = plan(obj)
    assert the_plan is not None and the_plan.calls == ()
    status = applied(obj, obj["status"], the_plan, Answers(), now=NOW)
    assert "reconciledRepos" not in status and "reconciledWorkflow" not in status
    assert conditions(status)["ReposReconciled"] == ("True", "NoRepos",
                                                      "No repositories defined")
    assert conditions(status)["WorkflowReconciled"] == ("True", "NotConfigured",
                                                         "No workflow selected")
    assert status["observedGeneration"] == 2


def test_applied_workflow_retry_without_a_spec_change_leaves_the_generation_alone() -> None:
    obj = session(generation=1, workflow=WF)
    the_plan = plan(obj)
    assert the_plan is not None and not the_plan.spec_change
    status = applied(obj, obj["status"], the_plan, Answers(), now=NOW)
    assert "Reconciled" not in conditions(status)
    assert status["reconciledWorkflow"]["gitUrl"] == WF["gitUrl"]


def test_the_machine_asks_the_runner_only_once_it_answers() -> None:
    obj = session(workflow=WF)
    running = Observation("running", ready=False, run_started="2026-03-01T11:00:00Z")
    world = World(workload=running, token_present=False, inactivity_timeout=0)
    waiting = next_step(obj, world, now=NOW)
    assert waiting.reconfigure is None  # not ready: wait for it, looking again in a while
    assert waiting.requeue_after == READY_RECHECK, "readiness does not wake the session"
    ready = replace(world, workload=replace(running, ready=True))
    step = next_step(obj, ready, now=NOW)
    assert step.reconfigure == Plan(True, repos_drift=True, workflow=Call("/workflow", WF))
    done = next_step(obj, replace(ready, reconfigured=Answers()), now=NOW)
    assert done.reconfigure is None and done.status["observedGeneration"] == 2
    assert done.requeue_after is None, "nothing waits any more"


def test_without_live_env_drops_only_the_live_variables() -> None:
    pod = {"kind": "Pod", "spec": {
        "containers": [{"name": "ambient-code-runner", "env": [
            {"name": "REPOS_JSON", "value": "[]"}, {"name": "TIMEOUT", "value": "300"},
            {"name": "ACTIVE_WORKFLOW_GIT_URL", "value": "u"}]}],
        "initContainers": [{"name": "init-hydrate", "env": [
            {"name": "REPOS_JSON", "value": "[]"}, {"name": "SESSION_NAME", "value": "s"}]}]}}
    trimmed = without_live_env(pod)
    assert trimmed["spec"]["containers"][0]["env"] == [{"name": "TIMEOUT", "value": "300"}]
    assert trimmed["spec"]["initContainers"][0]["env"] == [
        {"name": "SESSION_NAME", "value": "s"}]
    assert pod["spec"]["containers"][0]["env"][0]["name"] == "REPOS_JSON"  # not mutated
