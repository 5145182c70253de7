"""From an operator's recorded requests to the wire floor's plan (pure functions).

The recording (the local API server's ``GET /record``, ``envtest.recording``) holds every
request the operator sent, in arrival order. For the replay against a fresh server where the
benchmark created the same sessions the same way:

* **watches**: the recorded watch targets, one per distinct watch (a re-opened watch is the same
  one), their ``resourceVersion`` set to the fresh server's (the recorded one means nothing
  there);
* **writes** (create, update, patch, delete): before the burst's mark, the operator's own set-up
  (a namespace's ProjectSettings, RBAC, LimitRange), replayed uncounted; after it, the burst's,
  grouped by session (the session name in the target or body) in the order of each session's
  first write, each session's writes in their recorded order;
* **rewritten**, because a fresh server gives new values: the sessions' uids (in
  ``ownerReferences`` and an Event's ``involvedObject``), old → new by name; and
  ``metadata.resourceVersion`` dropped from patch bodies (the operator's optimistic-concurrency
  precondition: the recorded versions are the old server's, and a bare client would take the
  current one from the watch event it already parsed, which this replay does not model; the
  difference is ~25 bytes a patch and a comparison in the server). Nothing else changes: the
  bodies are the operator's bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
Write = list[Any]
"""``[verb, resource, method, target, headers, body]`` (body as text)."""


@dataclass(frozen=True, slots=True)
class Plan:
    watches: list[str]
    """Watch targets, ``resourceVersion`` left as recorded (see :func:`at_version`)."""
    setup: list[Write]
    """The operator's writes before the mark, in order."""
    sessions: list[tuple[str, list[Write]]]
    """The burst's writes by session, in order of each session's first write."""

    def repeated_creates(self) -> int:
        """Creates of an object the burst created before (same collection and name): the
        operator sends one when two workers race to make a shared object (the namespace's
        NetworkPolicy); the server answers the second 409 AlreadyExists, in the replay too."""
        seen: set[tuple[str, str]] = set()
        repeated = 0
        for _, writes in self.sessions:
            for verb, _, _, target, _, body in writes:
                if verb != "create" or not body:
                    continue
                name = (orjson.loads(body).get("metadata") or {}).get("name", "")
                key = (target, name)
                repeated += bool(name) and key in seen
                seen.add(key)
        return repeated

    def writes_by_resource(self) -> dict[str, int]:
        """The burst's writes, ``"verb resource"`` → count."""
        counts: dict[str, int] = {}
        for _, writes in self.sessions:
            for verb, resource, *_ in writes:
                counts[f"{verb} {resource}"] = counts.get(f"{verb} {resource}", 0) + 1
        return dict(sorted(counts.items()))


def _watch_key(target: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A watch without what changes when it is re-opened (version, timeout)."""
    parts = urlsplit(target)
    query = tuple(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                         if k not in ("resourceVersion", "timeoutSeconds")))
    return parts.path, query


def at_version(target: str, resource_version: str) -> str:
    """``target`` with its ``resourceVersion`` set (added if absent)."""
    parts = urlsplit(target)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k != "resourceVersion"]
    query.insert(1 if query[:1] == [("watch", "1")] else 0, ("resourceVersion", resource_version))
    return f"{parts.path}?{urlencode(query)}"


def session_of(write: Mapping[str, Any], pattern: re.Pattern[str]) -> str:
    """The session a write belongs to: the first session name in its target, else its body;
    "" for none (a write of the operator's own, not a session's)."""
    found = pattern.search(write["target"]) or pattern.search(write.get("body", ""))
    return found.group(0) if found else ""


def rewrite(write: Mapping[str, Any], uids: Mapping[str, str]) -> Write:
    """The write as replayed: uids mapped, a patch's ``metadata.resourceVersion`` dropped."""
    body: str = write.get("body", "")
    if "bodyHex" in write:
        raise ValueError(f"a binary body cannot be replayed: {write['target']}")
    if uids and body:
        body = UID.sub(lambda m: uids.get(m.group(0), m.group(0)), body)
    if write["verb"] == "patch" and '"resourceVersion"' in body:
        doc = orjson.loads(body)
        meta = doc.get("metadata") if isinstance(doc, dict) else None
        if isinstance(meta, dict) and meta.pop("resourceVersion", None) is not None:
            if not meta:
                del doc["metadata"]
            body = orjson.dumps(doc).decode()
    headers = {k: v for k, v in write["headers"].items() if k != "user-agent"}
    return [write["verb"], write["resource"], write["method"], write["target"], headers, body]


def build(requests: Iterable[Mapping[str, Any]], mark: int, sessions: re.Pattern[str],
          uids: Mapping[str, str]) -> Plan:
    """The plan from the recorded ``requests``: those before index ``mark`` are set-up; the
    ``sessions`` pattern finds a write's session; ``uids`` maps old uids to new."""
    watches: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
    setup: list[Write] = []
    grouped: dict[str, list[Write]] = {}
    for index, request in enumerate(requests):
        if request["verb"] == "watch":
            watches.setdefault(_watch_key(request["target"]), request["target"])
        elif request["verb"] in WRITE_VERBS:
            write = rewrite(request, uids)
            if index < mark:
                setup.append(write)
            else:
                grouped.setdefault(session_of(request, sessions), []).append(write)
    ordered = sorted(grouped.items(), key=lambda item: item[0] != "")  # the operator's own first
    return Plan(list(watches.values()), setup, ordered)


def uid_map(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str]:
    """Old uid → new uid of every name in both (name → uid maps)."""
    return {uid: new[name] for name, uid in old.items() if name in new}
