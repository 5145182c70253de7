"""RESTMapper: from group and kind to a :class:`Resource`, through the server's discovery.

``mapper.resource_for("apps", "Deployment")`` answers ``Resource("apps", "v1", "deployments",
"Deployment", namespaced=True, verbs=(...), subresources={"status", "scale"})`` — the plural,
scope, verbs and subresources the server itself lists — so code need not spell them out.

How it reads discovery (controller-runtime's ``apiutil`` dynamic mapper, client-go's discovery):

* Lazily: nothing is asked until the first lookup. ``/api`` and ``/apis`` are then asked for
  aggregated discovery (``apidiscovery.k8s.io/v2``, one answer holding every group, version and
  resource, as kube-apiserver 1.30+ serves it); a server answering with the plain
  ``APIVersions`` / ``APIGroupList`` instead (older servers, the local API server) is read the
  classic way: the group list once, then one ``APIResourceList`` per group-version, fetched
  the first time a kind of that group is looked up.
* Cached: later lookups are dictionary reads, no request.
* Refreshed once on a miss: a kind that is not in the cache (a CRD installed after the mapper
  first loaded) makes the mapper read the group list and that group's resources again, once;
  still absent, the lookup raises :class:`NoKindMatch` naming the kinds the group does have.
  A miss costs those requests every time (as controller-runtime's): look up kinds once, at
  start-up, not in every reconcile.
* Without a version, the group's preferred version is used (the first the server lists), then
  its other versions in the server's order; with one, only that version.
* Thread-safe: lookups read an immutable snapshot without locking; loads and refreshes run
  under one lock, so concurrent misses of one kind cost one refresh.

Errors reaching the server (``TransportError``, ``APIError``) propagate and nothing is cached.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from .errors import NotFound
from .resource import Resource
from .rest import JSON, Transport

log = logging.getLogger(__name__)

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
"""The media type of aggregated discovery (kube-apiserver 1.30+ serves it at /api and /apis)."""
ACCEPT = f"{AGGREGATED},{JSON}"

GroupVersion = tuple[str, str]


class NoKindMatch(LookupError):
    """No resource of that kind in that group (and version) — after a fresh discovery."""

    def __init__(self, group: str, kind: str, version: str | None,
                 known: Iterable[str]) -> None:
        self.group, self.kind, self.version = group, kind, version
        where = f"{group or 'core'}/{version}" if version else f"group {group or 'core'!r}"
        known = sorted(set(known))
        hint = (f"; it serves {', '.join(known)}" if known
                else "; the server does not serve that group" + (" version" if version else ""))
        super().__init__(f"no kind {kind!r} in {where}{hint}")


@dataclass(frozen=True)
class _Snapshot:
    """What discovery said, replaced whole on every load (readers never lock)."""

    groups: Mapping[str, tuple[str, ...]] | None = None
    """Each group's versions, preferred first; None before the first load."""
    resources: Mapping[GroupVersion, Mapping[str, Resource]] = field(default_factory=dict)
    """Per loaded group-version, its resources by kind."""


class RESTMapper:
    """Maps group/kind (and optionally version) to resources from discovery. Thread-safe."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._snapshot = _Snapshot()
        self._lock = threading.Lock()
        self._loads = 0

    @property
    def loads(self) -> int:
        """How many times the group list has been read (the first load and each refresh)."""
        return self._loads

    def resource_for(self, group: str, kind: str, version: str | None = None) -> Resource:
        """The resource of ``kind`` in ``group`` ("" for the core group). Raises
        :class:`NoKindMatch` when the server serves no such kind, even after a refresh."""
        found = _lookup(self._snapshot, group, kind, version)
        if found is not None:
            return found
        seen = self._snapshot
        with self._lock:
            if self._snapshot is not seen:  # loaded meanwhile by another thread: look again
                found = _lookup(self._snapshot, group, kind, version)
                if found is not None:
                    return found
            return self._resolve_locked(group, kind, version)

    def resource_of(self, obj: Mapping[str, Any]) -> Resource:
        """The resource of an object, from its ``apiVersion`` and ``kind``."""
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not api_version or not kind:
            raise ValueError("the object has no apiVersion or kind to map to a resource")
        group, _, version = str(api_version).rpartition("/")
        return self.resource_for(group, str(kind), version)

    def reset(self) -> None:
        """Forget everything: the next lookup reads discovery afresh."""
        with self._lock:
            self._snapshot = _Snapshot()

    def _resolve_locked(self, group: str, kind: str, version: str | None) -> Resource:
        fresh = self._snapshot.groups is None
        if fresh:
            self._load_groups_locked()
        self._load_versions_locked(group, version)
        found = _lookup(self._snapshot, group, kind, version)
        if found is None and not fresh:
            log.info("kind not in the discovery cache; reading discovery again",
                     extra={"group": group, "kind": kind, "version": version})
            self._load_groups_locked(forget=group)
            self._load_versions_locked(group, version)
            found = _lookup(self._snapshot, group, kind, version)
        if found is None:
            raise NoKindMatch(group, kind, version, self._kinds(group, version))
        return found

    def _kinds(self, group: str, version: str | None) -> list[str]:
        snapshot = self._snapshot
        return [k for (g, v), kinds in snapshot.resources.items()
                if g == group and version in (None, v) for k in kinds]

    # loading ---------------------------------------------------------------------------------
    def _load_groups_locked(self, *, forget: str | None = None) -> None:
        """Read /api and /apis; keep cached group-versions unless the group is ``forget``
        (aggregated discovery replaces them all anyway)."""
        groups: dict[str, tuple[str, ...]] = {}
        resources = {gv: kinds for gv, kinds in self._snapshot.resources.items()
                     if gv[0] != forget}
        for path in ("/api", "/apis"):
            answer = self._get(path, accept=ACCEPT)
            if answer.get("kind") == "APIGroupDiscoveryList":
                found_groups, found = _aggregated(answer)
                groups.update(found_groups)
                resources = {gv: kinds for gv, kinds in resources.items()
                             if gv[0] not in found_groups}
                resources.update(found)
            else:
                groups.update(_classic_groups(answer))
        self._loads += 1
        self._snapshot = _Snapshot(groups, resources)

    def _load_versions_locked(self, group: str, version: str | None) -> None:
        snapshot = self._snapshot
        versions = (version,) if version else (snapshot.groups or {}).get(group, ())
        missing = [v for v in versions if (group, v) not in snapshot.resources]
        if not missing:
            return
        resources = dict(snapshot.resources)
        for v in missing:
            path = f"/apis/{group}/{v}" if group else f"/api/{v}"
            try:
                listed = self._get(path, accept=JSON)
            except NotFound:
                listed = {}  # not served (any more): an empty group-version
            resources[(group, v)] = _classic_resources(group, v, listed)
        self._snapshot = _Snapshot(snapshot.groups, resources)

    def _get(self, path: str, *, accept: str) -> dict[str, Any]:
        response = self._transport.request("GET", path, verb="GET",
                                           headers={"Accept": accept})
        answer = orjson.loads(response.data)
        return answer if isinstance(answer, dict) else {}


def _lookup(snapshot: _Snapshot, group: str, kind: str, version: str | None
            ) -> Resource | None:
    if snapshot.groups is None:
        return None
    versions = (version,) if version else snapshot.groups.get(group, ())
    for v in versions:
        found = snapshot.resources.get((group, v), {}).get(kind)
        if found is not None:
            return found
    return None


def _classic_groups(answer: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Versions per group from ``APIVersions`` (/api) or ``APIGroupList`` (/apis)."""
    if answer.get("kind") == "APIVersions" or "groups" not in answer:
        return {"": tuple(answer.get("versions") or ())}
    groups = {}
    for entry in answer.get("groups") or ():
        versions = [v.get("version") for v in entry.get("versions") or () if v.get("version")]
        preferred = (entry.get("preferredVersion") or {}).get("version")
        if preferred in versions:
            versions.remove(preferred)
            versions.insert(0, preferred)
        groups[str(entry.get("name", ""))] = tuple(versions)
    return groups


def _classic_resources(group: str, version: str, listed: Mapping[str, Any]
                       ) -> dict[str, Resource]:
    """Resources by kind from one ``APIResourceList`` (subresource entries: ``pods/status``)."""
    entries = listed.get("resources") or ()
    subresources: dict[str, set[str]] = {}
    for entry in entries:
        plural, _, sub = str(entry.get("name", "")).partition("/")
        if sub:
            subresources.setdefault(plural, set()).add(sub)
    kinds: dict[str, Resource] = {}
    for entry in entries:
        name = str(entry.get("name", ""))
        if "/" in name or not entry.get("kind"):
            continue
        kinds.setdefault(entry["kind"], Resource(
            group, version, name, entry["kind"], bool(entry.get("namespaced")),
            verbs=tuple(entry.get("verbs") or ()),
            subresources=frozenset(subresources.get(name, ()))))
    return kinds


def _aggregated(answer: Mapping[str, Any]
                ) -> tuple[dict[str, tuple[str, ...]], dict[GroupVersion, dict[str, Resource]]]:
    """Groups and resources from an ``APIGroupDiscoveryList``. Versions come preferred
    first; a version marked ``Stale`` (its aggregated server did not answer) is left out, so
    a lookup in it misses and refreshes."""
    groups: dict[str, tuple[str, ...]] = {}
    resources: dict[GroupVersion, dict[str, Resource]] = {}
    for item in answer.get("items") or ():
        group = str((item.get("metadata") or {}).get("name") or "")
        versions = []
        for listed in item.get("versions") or ():
            version = listed.get("version")
            if not version or listed.get("freshness") == "Stale":
                continue
            versions.append(version)
            kinds: dict[str, Resource] = {}
            resources[(group, version)] = kinds
            for entry in listed.get("resources") or ():
                kind = (entry.get("responseKind") or {}).get("kind")
                if not kind or not entry.get("resource"):
                    continue
                kinds.setdefault(kind, Resource(
                    group, version, entry["resource"], kind,
                    entry.get("scope") == "Namespaced", verbs=tuple(entry.get("verbs") or ()),
                    subresources=frozenset(s.get("subresource") for s in
                                           entry.get("subresources") or ()
                                           if s.get("subresource"))))
        groups[group] = tuple(versions)
    return groups, resources
