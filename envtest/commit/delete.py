"""Deleting an object: now, or marked with a deletionTimestamp while finalizers remain."""

from __future__ import annotations

from typing import Any

import orjson

from envtest.cluster import Cluster
from envtest.commit.hooks import hooks_for, removed_everywhere
from envtest.kinds.registry import ResourceType

_PROPAGATION_FINALIZERS = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}
"""The finalizer each propagation policy leaves for the garbage collector to act on."""


def begin_delete(cluster: Cluster, rtype: ResourceType, obj: dict[str, Any], *,
                 policy: str | None = None) -> bytes:
    """Delete now, or mark for deletion when finalizers remain; returns the object's bytes.

    ``Foreground`` and ``Orphan`` propagation add the finalizer the garbage collector acts on.
    A kind with a deletion of its own (a namespace, a CRD) does it instead.
    """
    own = hooks_for(rtype).delete(cluster, rtype, obj)
    if own is not None:
        return own
    meta = obj["metadata"]
    special = _PROPAGATION_FINALIZERS.get(policy or "")
    if special and not meta.get("deletionTimestamp"):
        others = [f for f in meta.get("finalizers") or ()
                  if f not in _PROPAGATION_FINALIZERS.values()]
        meta["finalizers"] = [*others, special]
    if not meta.get("finalizers"):
        return remove(cluster, rtype, obj)
    if meta.get("deletionTimestamp"):
        return orjson.dumps(obj)
    mark_deleting(cluster, obj)
    return cluster.store.put(rtype, obj, "MODIFIED").raw


def mark_deleting(cluster: Cluster, obj: dict[str, Any]) -> None:
    """Set what a deletion that waits sets: the timestamp and a zero grace period."""
    obj["metadata"]["deletionTimestamp"] = cluster.now()
    obj["metadata"]["deletionGracePeriodSeconds"] = 0


def remove(cluster: Cluster, rtype: ResourceType, obj: dict[str, Any]) -> bytes:
    """Take the object out of storage (DELETED), then what its going implies."""
    stored = cluster.store.delete(rtype, obj)
    hooks_for(rtype).removed(cluster, rtype, obj)
    removed_everywhere(cluster, obj)
    return stored.raw
