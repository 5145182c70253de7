"""Live reconfiguration of a Running session: its repos and its workflow, applied by the runner.

Upstream (``shared/UPSTREAM-CONTRACT.md`` §3.2 Running rows, §4.15): when a Running session's
``metadata.generation`` moved past ``status.observedGeneration`` (the backend edited the spec),
the operator compares ``spec.repos`` with ``status.reconciledRepos`` and ``spec.activeWorkflow``
with ``status.reconciledWorkflow`` and asks the runner to catch up — ``POST /repos/add`` for a
repo added or moved to another branch, ``POST /repos/remove`` for one removed, ``POST
/workflow`` for a new workflow — then records what it applied. A workflow that has not been
applied yet (``WorkflowReconciled`` not True) is retried on every pass, drift or not.

:func:`plan` says which calls a session needs (pure); the reconciler makes them (the runner's
endpoints are idempotent: a repo already cloned is skipped, an unchanged workflow is a no-op)
and hands back what happened to :func:`applied`, which writes the status as upstream does:

* repos: errors are only logged (upstream's rule); the new ``reconciledRepos`` (every repo
  ``Ready``, ``clonedAt`` now) and ``ReposReconciled=True Reconciled``; no ``spec.repos``:
  no ``reconciledRepos``, ``ReposReconciled=True NoRepos``;
* workflow: the runner's 200 gives ``reconciledWorkflow`` (``Active``, ``appliedAt`` now) and
  ``WorkflowReconciled=True Reconciled``; anything else ``WorkflowReconciled=False
  UpdateFailed`` — and, for a spec change, ``Reconciled=False WorkflowReconciliationFailed`` with
  ``observedGeneration`` left behind, so the change is tried again; no ``spec.activeWorkflow``:
  no ``reconciledWorkflow``, ``WorkflowReconciled=True NotConfigured``;
* a spec change applied: ``observedGeneration`` and ``Reconciled=True SpecApplied``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .status import REPOS_RECONCILED, find, now_text, repo_name, spec_repos, upsert

WORKFLOW_RECONCILED = "WorkflowReconciled"
RECONCILED = "Reconciled"
LIVE_ENV = frozenset({"REPOS_JSON", "ACTIVE_WORKFLOW_GIT_URL", "ACTIVE_WORKFLOW_BRANCH",
                      "ACTIVE_WORKFLOW_PATH"})
"""Runner variables whose change is applied live (by these calls), not by a new run."""


@dataclass(frozen=True, slots=True)
class Call:
    """One request to the runner: ``POST path`` with the JSON ``body``."""

    path: str
    body: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Plan:
    """What a Running session needs from its runner; ``spec_change``: the generation moved."""

    spec_change: bool
    repos: tuple[Call, ...] = ()
    repos_drift: bool = False
    """The repos differ from the reconciled ones (or ``spec.repos`` went): rewrite them."""
    added: int = 0
    branch_changed: int = 0
    removed: int = 0
    workflow: Call | None = None
    workflow_gone: bool = False
    """``spec.activeWorkflow`` went: forget the reconciled one."""

    @property
    def calls(self) -> tuple[Call, ...]:
        return (*self.repos, *((self.workflow,) if self.workflow else ()))


@dataclass(frozen=True, slots=True)
class Answers:
    """What the runner answered: ``workflow_error`` None when the workflow call succeeded
    (or none was made), else why it did not ("Runner returned 500", "Failed to notify runner:
    ..."). Repo calls' failures are only logged."""

    workflow_error: str | None = None


def plan(session: Mapping[str, Any]) -> Plan | None:
    """The runner calls ``session`` needs now, or None."""
    spec = session.get("spec") or {}
    status = session.get("status") or {}
    generation = (session.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    spec_change = bool(observed) and generation != observed
    workflow = _workflow_call(spec, status, retry=not spec_change)
    if not spec_change:
        return Plan(False, workflow=workflow) if workflow else None
    gone = not isinstance(spec.get("activeWorkflow"), Mapping) or not spec["activeWorkflow"]
    wanted = spec_repos(spec)
    if wanted is None:  # no repos: nothing to call, the reconciled ones are forgotten
        return Plan(True, repos_drift=True, workflow=workflow, workflow_gone=gone)
    have = {str(r.get("url")): str(r.get("branch") or "")
            for r in status.get("reconciledRepos") or () if isinstance(r, Mapping)
            and r.get("url")}
    added = [r for r in wanted if r["url"] not in have]
    moved = [r for r in wanted if r["url"] in have and have[r["url"]] != r["branch"]]
    gone_repos = [url for url in have if url not in {r["url"] for r in wanted}]
    calls = [Call("/repos/add", {"url": r["url"], "branch": r["branch"],
                                 "name": repo_name(r["url"])}) for r in (*added, *moved)]
    calls += [Call("/repos/remove", {"name": repo_name(url)}) for url in gone_repos]
    return Plan(True, repos=tuple(calls), repos_drift=bool(calls), added=len(added),
                branch_changed=len(moved), removed=len(gone_repos), workflow=workflow,
                workflow_gone=gone)


def _workflow_call(spec: Mapping[str, Any], status: Mapping[str, Any], *,
                   retry: bool) -> Call | None:
    """``POST /workflow`` when the workflow differs from the reconciled one (a spec change),
    or has not been applied yet (``retry``: WorkflowReconciled is not True)."""
    workflow = spec.get("activeWorkflow")
    if not isinstance(workflow, Mapping):
        return None
    git_url = str(workflow.get("gitUrl") or "")
    if not git_url.strip():
        return None
    branch = workflow.get("branch")
    branch = branch if isinstance(branch, str) and branch.strip() else "main"
    path = str(workflow.get("path") or "")
    body = {"gitUrl": git_url, "branch": branch, "path": path}
    if retry:
        condition = find(status, WORKFLOW_RECONCILED) or {}
        return Call("/workflow", body) if condition.get("status") != "True" else None
    have = status.get("reconciledWorkflow") or {}
    same = all(str(have.get(k) or "") == v for k, v in body.items())
    return None if same else Call("/workflow", body)


def applied(session: Mapping[str, Any], status: Mapping[str, Any], plan: Plan,
            answers: Answers, *, now: dt.datetime) -> dict[str, Any]:
    """``status`` after the calls of ``plan`` were made and answered ``answers``."""
    out = dict(status)
    spec = session.get("spec") or {}
    conditions = out.get("conditions")
    if plan.spec_change and plan.repos_drift:
        wanted = spec_repos(spec)
        if wanted is None:
            out.pop("reconciledRepos", None)
            conditions = upsert(conditions, REPOS_RECONCILED, "True", reason="NoRepos",
                                message="No repositories defined", now=now)
        else:
            out["reconciledRepos"] = [{"url": r["url"], "name": repo_name(r["url"]),
                                       "branch": r["branch"], "clonedAt": now_text(now),
                                       "status": "Ready"} for r in wanted]
            conditions = upsert(conditions, REPOS_RECONCILED, "True", reason="Reconciled",
                                message=_repos_message(plan, len(wanted)), now=now)
    if plan.spec_change and plan.workflow_gone:
        out.pop("reconciledWorkflow", None)
        conditions = upsert(conditions, WORKFLOW_RECONCILED, "True", reason="NotConfigured",
                            message="No workflow selected", now=now)
    if plan.workflow is not None:
        body = plan.workflow.body
        if answers.workflow_error is None:
            out["reconciledWorkflow"] = {**body, "status": "Active", "appliedAt": now_text(now)}
            conditions = upsert(conditions, WORKFLOW_RECONCILED, "True", reason="Reconciled",
                                message=f"Switched to workflow {body['gitUrl']}@"
                                        f"{body['branch']}", now=now)
        else:
            conditions = upsert(conditions, WORKFLOW_RECONCILED, "False", reason="UpdateFailed",
                                message=answers.workflow_error, now=now)
    if plan.spec_change:
        generation = int((session.get("metadata") or {}).get("generation", 1))
        if plan.workflow is not None and answers.workflow_error is not None:
            conditions = upsert(conditions, RECONCILED, "False",
                                reason="WorkflowReconciliationFailed",
                                message=f"Failed to reconcile workflow: "
                                        f"{answers.workflow_error}", now=now)
        else:
            out["observedGeneration"] = generation
            conditions = upsert(conditions, RECONCILED, "True", reason="SpecApplied",
                                message=f"Successfully reconciled generation {generation}",
                                now=now)
    out["conditions"] = conditions
    return out


def _repos_message(plan: Plan, total: int) -> str:
    return (f"Reconciled {total} repos (added: {plan.added}, removed: {plan.removed}, "
            f"branch changed: {plan.branch_changed})")


def without_live_env(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` (a rendered workload) without the variables :data:`LIVE_ENV`: what a live run
    is compared with, since these change by runner calls, not by a new run."""
    spec = obj.get("spec")
    if obj.get("kind") != "Pod" or not isinstance(spec, Mapping):
        return dict(obj)
    def strip(containers: Any) -> list[dict[str, Any]]:
        return [{**c, "env": [e for e in c.get("env") or () if e.get("name") not in LIVE_ENV]}
                for c in containers or ()]
    trimmed = {**spec, "containers": strip(spec.get("containers"))}
    if "initContainers" in spec:
        trimmed["initContainers"] = strip(spec["initContainers"])
    return {**obj, "spec": trimmed}
