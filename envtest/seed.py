"""Seeding: put objects into the store exactly as given, and read every stored object back.

A benchmark of an operator *restart* needs a server that already holds what the operator left
behind — tens of thousands of sessions with their Running pods, Services, Secrets and RBAC —
and creating that through the API takes as long as the run it prepares (each object a create,
then a status write; each pod through the simulated kubelet). :func:`load` stores objects the
way an etcd restored from a dump holds them: ``uid``, ``creationTimestamp``, ``generation``,
``status`` and owner references as given, with no admission, defaulting, validation or
simulator in between; only ``resourceVersion`` is the store's (the next revision). Each object
is an ADDED (or, replacing one, MODIFIED) event like any write, so watchers, the garbage
collector and the simulators see it — an owner must come before its dependents, or the garbage
collector deletes them. :func:`dump` answers every stored object, for a seed taken from a
server an operator has converged.

Both run on the server's loop thread (the admin endpoint's ``GET``/``POST /objects``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from envtest.cluster import Cluster
from envtest.kinds.registry import ResourceType


def _types(cluster: Cluster) -> dict[tuple[str, str], ResourceType]:
    """Served types by (apiVersion, kind)."""
    return {(rtype.api_version, rtype.kind): rtype for rtype in cluster.kinds}


def load(cluster: Cluster, items: Iterable[Any]) -> int:
    """Store ``items`` as given (see the module doc); how many. Refuses (``ValueError``, nothing
    of that object stored) an item that is not an object with a served ``apiVersion`` and
    ``kind`` and a ``metadata.name``, or a namespaced one whose namespace does not exist; the
    items before it stay stored. A missing ``uid`` or ``creationTimestamp`` is made up."""
    types = _types(cluster)
    count = 0
    for index, obj in enumerate(items):
        rtype = types.get((str(obj.get("apiVersion")), str(obj.get("kind")))) if isinstance(
            obj, dict) else None
        if rtype is None:
            raise ValueError(f"item {index}: not an object of a served apiVersion and kind")
        meta = obj.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            raise ValueError(f"item {index}: metadata.name missing")
        namespace = meta.get("namespace", "")
        if rtype.namespaced and cluster.namespace_phase(str(namespace or "")) is None:
            raise ValueError(f"item {index}: namespace {namespace!r} does not exist")
        if not rtype.namespaced:
            meta.pop("namespace", None)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", cluster.now())
        replaced = cluster.store.get(rtype.store, (str(namespace or ""), meta["name"]))
        cluster.store.put(rtype, obj, "ADDED" if replaced is None else "MODIFIED")
        count += 1
    return count


def dump(cluster: Cluster) -> list[dict[str, Any]]:
    """Every stored object (every kind, in store and key order), with its apiVersion and
    kind as served."""
    out = []
    for rtype in {rtype.store: rtype for rtype in cluster.kinds}.values():
        for _, stored in cluster.store.items(rtype.store):
            obj = stored.load()
            obj.setdefault("apiVersion", rtype.api_version)
            obj.setdefault("kind", rtype.kind)
            out.append(obj)
    return out
