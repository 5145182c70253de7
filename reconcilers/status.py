"""Session status as pure functions: conditions the way upstream writes them, timestamps, the
repos upstream records, and the merge patch that turns one status into another.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from foundation.clock import rfc3339

from .resources import Phase

READY = "Ready"
SECRETS_READY = "SecretsReady"
INTEGRATION_SECRETS_READY = "IntegrationSecretsReady"
S3_AVAILABLE = "S3Available"
POD_CREATED = "PodCreated"
POD_SCHEDULED = "PodScheduled"
RUNNER_STARTED = "RunnerStarted"
REPOS_RECONCILED = "ReposReconciled"
RESTART_REQUIRED = "RestartRequired"
MESSAGE_MAX = 8192
"""Characters a condition message may have; longer ones are cut. A message quotes user input
(a runtime id, a runner's output) of any length, and the API refuses a condition message over
32768 bytes — a status write refused for that would be retried forever. UTF-8 takes at most
4 bytes a character, so 8192 characters fit whatever the text."""


def current_phase(session: Mapping[str, Any]) -> Phase:
    value = (session.get("status") or {}).get("phase")
    try:
        return Phase(value) if value else Phase.PENDING
    except ValueError:
        return Phase.PENDING


def parse_time(value: Any) -> dt.datetime | None:
    """An RFC 3339 timestamp (fractions and offsets allowed) as an aware datetime; None when
    absent or unparsable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def now_text(now: dt.datetime) -> str:
    return rfc3339(now)


def upsert(conditions: Iterable[Mapping[str, Any]] | None, type: str, status: str, *,
           reason: str = "", message: str = "", now: dt.datetime) -> list[dict[str, Any]]:
    """A new condition list with ``type`` set as upstream's ``setCondition`` does: the type
    matches case-insensitively; ``lastTransitionTime`` moves only when the status changes;
    reason and message are overwritten only by non-empty values; a new condition gets all
    five fields; nothing is ever removed. Messages are cut at :data:`MESSAGE_MAX`."""
    message = bounded(message)
    out: list[dict[str, Any]] = []
    found = False
    for existing in conditions or ():
        item = dict(existing)
        if not found and str(item.get("type", "")).lower() == type.lower():
            found = True
            if item.get("status") != status:
                item["lastTransitionTime"] = rfc3339(now)
            item["status"] = status
            if reason:
                item["reason"] = reason
            if message:
                item["message"] = message
        out.append(item)
    if not found:
        out.append({"type": type, "status": status, "reason": reason, "message": message,
                    "lastTransitionTime": rfc3339(now)})
    return out


def find(status: Mapping[str, Any], type: str) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or ():
        if str(condition.get("type", "")).lower() == type.lower():
            return condition
    return None


def bounded(message: str, limit: int = MESSAGE_MAX) -> str:
    """``message``, cut to at most ``limit`` characters (marked with an ellipsis)."""
    return message if len(message) <= limit else message[:limit - 3] + "..."


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch turning status ``old`` into ``new``: fields ``new`` dropped become null
    (a merge patch leaves absent fields alone)."""
    return {**{key: None for key in old if key not in new}, **new}


# repos ---------------------------------------------------------------------------------------
def spec_repos(spec: Mapping[str, Any]) -> list[dict[str, str]] | None:
    """``spec.repos`` as upstream reconciles them: deduplicated by url (the last entry's
    branch wins), branch ``main`` by default, entries without a url skipped; None when the
    field is absent."""
    repos = spec.get("repos")
    if not isinstance(repos, list):
        return None
    by_url: dict[str, dict[str, str]] = {}
    for entry in repos:
        if not isinstance(entry, Mapping):
            continue
        url = entry.get("url")
        if not isinstance(url, str) or not url.strip():
            continue
        branch = entry.get("branch")
        branch = branch if isinstance(branch, str) and branch.strip() else "main"
        by_url[url] = {"url": url, "branch": branch}
    return list(by_url.values())


def repo_name(url: str) -> str:
    """The last path segment of a git URL without ``.git`` (upstream's
    ``deriveRepoNameFromURL``)."""
    trimmed = url.removesuffix(".git").rstrip("/")
    return trimmed.split("/")[-1] if trimmed else "repo"


def with_reconciled_repos(status: Mapping[str, Any], spec: Mapping[str, Any], *,
                          now: dt.datetime) -> dict[str, Any]:
    """``status`` after upstream's repos reconciliation at the start of a run: without
    ``spec.repos``, no ``reconciledRepos`` and ReposReconciled=True ``NoRepos``; with repos
    that differ from ``reconciledRepos`` (by url and branch), the new list (``status:
    Ready``, ``clonedAt`` now) and ReposReconciled=True ``Reconciled`` with the counts;
    unchanged repos leave the status as it is."""
    out = dict(status)
    wanted = spec_repos(spec)
    if wanted is None:
        out.pop("reconciledRepos", None)
        out["conditions"] = upsert(out.get("conditions"), REPOS_RECONCILED, "True",
                                   reason="NoRepos", message="No repositories defined", now=now)
        return out
    have = {str(r.get("url")): str(r.get("branch") or "")
            for r in status.get("reconciledRepos") or () if isinstance(r, Mapping)
            and r.get("url")}
    added = [r for r in wanted if r["url"] not in have]
    changed = [r for r in wanted if r["url"] in have and have[r["url"]] != r["branch"]]
    removed = [url for url in have if url not in {r["url"] for r in wanted}]
    if not (added or changed or removed):
        return out
    out["reconciledRepos"] = [{"url": r["url"], "name": repo_name(r["url"]),
                               "branch": r["branch"], "clonedAt": rfc3339(now),
                               "status": "Ready"} for r in wanted]
    out["conditions"] = upsert(
        out.get("conditions"), REPOS_RECONCILED, "True", reason="Reconciled",
        message=f"Reconciled {len(wanted)} repos (added: {len(added)}, removed: "
                f"{len(removed)}, branch changed: {len(changed)})", now=now)
    return out


def with_restart_required(status: dict[str, Any], held: Sequence[str], *,
                          now: dt.datetime) -> dict[str, Any]:
    """``RestartRequired``: True naming what the next run changes; False once nothing
    differs, only if the condition is there already (sessions that never needed a restart
    do not grow one)."""
    if held:
        return {**status, "conditions": upsert(
            status.get("conditions"), RESTART_REQUIRED, "True",
            reason="ImmutableFieldsChanged",
            message=f"the runner differs from the session's spec or its runtime in fields that "
                    f"cannot change while it runs ({_listed(held)}); stop and restart the "
                    "session to apply them", now=now)}
    condition = find(status, RESTART_REQUIRED)
    if condition is None or condition.get("status") == "False":
        return status
    return {**status, "conditions": upsert(status.get("conditions"), RESTART_REQUIRED, "False",
                                           reason="UpToDate", message="the runner matches the "
                                           "session's spec and its runtime", now=now)}


def _listed(paths: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


DETAIL_BATCH = 5.0
"""Seconds after a condition of the session last flipped during which progress detail waits
for the next write (see :func:`write_delay`)."""


def write_delay(old: Mapping[str, Any], new: Mapping[str, Any], *,
                now: dt.datetime) -> float | None:
    """When to write ``new`` over the stored ``old`` status: None (they are equal), 0.0 (now)
    or the seconds to wait.

    Everything is written at once except progress detail — a new condition that is True
    (``PodScheduled`` on the way to Running) — within :data:`DETAIL_BATCH` seconds of the last
    flip of a condition: a runner that goes scheduled → running in a second costs one write
    (the phase's), not one per step; detail still pending after the window is written then.
    A new False or Unknown condition is a problem to show, and a changed reason or message
    news: both go at once.
    """
    if new == old:
        return None
    if not _detail_only(old, new):
        return 0.0
    flips = [parse_time(c.get("lastTransitionTime")) for c in old.get("conditions") or ()]
    last = max((t for t in flips if t is not None), default=None)
    left = DETAIL_BATCH - (now - last).total_seconds() if last is not None else 0.0
    return max(left, 0.0)


def _detail_only(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    def rest(status: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in status.items() if k != "conditions"}

    if rest(old) != rest(new):
        return False
    before = {str(c.get("type")): c for c in old.get("conditions") or ()}
    after = {str(c.get("type")): c for c in new.get("conditions") or ()}
    return set(before) <= set(after) and all(
        condition == before[kind] if kind in before else condition.get("status") == "True"
        for kind, condition in after.items())
