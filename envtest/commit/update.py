"""Changing an object: kept metadata, the status split, generation, admission, no-op writes."""

from __future__ import annotations

from typing import Any

import orjson

from envtest.cluster import Cluster, Target
from envtest.commit.delete import remove
from envtest.commit.hooks import hooks_for
from envtest.errors import Cause
from envtest.kinds.objects import drop_empty_meta, raise_if_invalid, spec_part, validate_meta
from envtest.kinds.registry import ResourceType

_KEPT = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
         "generation", "name", "namespace")
"""Metadata a write cannot change: the stored values win over what the client sent."""


def commit_update(cluster: Cluster, target: Target, old: dict[str, Any], new: dict[str, Any],
                  *, dry_run: bool = False) -> tuple[int, bytes]:
    """Store ``new`` as the next state of ``old``; (HTTP status, body)."""
    return store_update(cluster, target, old, prepare_update(cluster, target, old, new),
                        dry_run=dry_run)


def prepare_update(cluster: Cluster, target: Target, old: dict[str, Any],
                   new: dict[str, Any]) -> dict[str, Any]:
    """The next state of ``old`` as kube's ``BeforeUpdate`` makes it — the status split, kept
    metadata, generation — validated (422)."""
    rtype = target.rtype
    merged = _split_status(rtype, old, new, target.subresource)
    meta, old_meta = merged["metadata"], old["metadata"]
    for name in _KEPT:
        if name in old_meta:
            meta[name] = old_meta[name]
        else:
            meta.pop(name, None)
    meta["resourceVersion"] = old_meta["resourceVersion"]
    drop_empty_meta(meta)
    causes = (validate_meta(rtype, merged, updating=True)
              + hooks_for(rtype).admit_update(cluster, rtype, merged, old))
    if old_meta.get("deletionTimestamp"):
        added = set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
        if added:
            causes.append(Cause("metadata.finalizers", "Forbidden: no new finalizers can be "
                                "added if the object is being deleted", "FieldValueForbidden"))
    raise_if_invalid(rtype, target.name, causes)
    if tracks_generation(rtype) and _versioned(rtype, merged) != _versioned(rtype, old):
        meta["generation"] = int(old_meta.get("generation", 1)) + 1
    return merged


def store_update(cluster: Cluster, target: Target, old: dict[str, Any], merged: dict[str, Any],
                 *, dry_run: bool = False) -> tuple[int, bytes]:
    """Store a prepared next state: nothing when it changes nothing (no new revision, no
    event), removal when the last finalizer of a deleted object went."""
    if merged == old:
        return 200, orjson.dumps(old)
    if dry_run:
        return 200, orjson.dumps(merged)
    meta = merged["metadata"]
    if meta.get("deletionTimestamp") and not meta.get("finalizers"):
        return 200, remove(cluster, target.rtype, merged)
    stored = cluster.store.put(target.rtype, merged, "MODIFIED")
    hooks_for(target.rtype).stored(cluster, merged)
    return 200, stored.raw


_NO_GENERATION = frozenset({
    ("", "configmaps"), ("", "secrets"), ("", "services"), ("", "namespaces"),
    ("", "serviceaccounts"), ("", "events"), ("events.k8s.io", "events"),
    ("coordination.k8s.io", "leases"), ("", "limitranges"), ("", "nodes"), ("", "endpoints"),
    ("", "persistentvolumeclaims"), ("", "persistentvolumes"), ("storage.k8s.io", "storageclasses"),
    ("autoscaling", "horizontalpodautoscalers"), ("apiregistration.k8s.io", "apiservices"),
})
"""Kinds whose kube-apiserver strategy neither sets nor moves ``metadata.generation`` (it
stays unset): a ConfigMap's data change, say, never passes a GenerationChanged predicate."""


def tracks_generation(rtype: ResourceType) -> bool:
    """Whether the server sets and moves ``metadata.generation`` for the kind."""
    return (rtype.group, rtype.plural) not in _NO_GENERATION


def _versioned(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """What moves the generation: all but metadata and status — status too for a custom
    resource without a status subresource (kube-apiserver counts all but metadata then)."""
    part = spec_part(obj)
    if not rtype.builtin and "status" not in rtype.subresources and "status" in obj:
        part["status"] = obj["status"]
    return part


def _split_status(rtype: ResourceType, old: dict[str, Any], new: dict[str, Any],
                  subresource: str) -> dict[str, Any]:
    """With a status subresource, the main resource ignores status and /status the rest.

    The result shares what it keeps with ``old`` (as the main resource shares ``old``'s
    status): both are private to the request, and what changes the result in place afterwards
    (defaulting, pruning) would change a stored object read back as kube-apiserver reads it
    (defaulted, pruned) alike. Only the metadata, which the update rewrites, is its own.
    """
    if subresource == "status":
        merged = dict(old, metadata=dict(old["metadata"]))
        merged["metadata"]["managedFields"] = (new.get("metadata") or {}).get(
            "managedFields", old["metadata"].get("managedFields"))
        if merged["metadata"]["managedFields"] is None:
            del merged["metadata"]["managedFields"]
        if "status" in new:
            merged["status"] = new["status"]
        else:
            merged.pop("status", None)
        return merged
    if "status" in rtype.subresources:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    return new
