"""The lifecycle of CustomResourceDefinitions and of the custom resources they define.

A CRD stored is a kind served (``kinds.crds`` turns it into resource types); a CRD deleted is
marked Terminating, deletes its custom resources, and goes when the last one has (its cleanup
finalizer); a CRD gone stops serving the kind. Custom resources are admitted by their CRD's
structural schema, refused while their CRD terminates, and finish its deletion as they go.
"""

from __future__ import annotations

from typing import Any

import orjson

from envtest import errors, schema
from envtest.cluster import Cluster
from envtest.commit.delete import begin_delete, mark_deleting, remove
from envtest.commit.hooks import BuiltinHooks
from envtest.errors import Cause
from envtest.kinds import crds
from envtest.kinds.registry import ResourceType

STORE = "customresourcedefinitions.apiextensions.k8s.io"


class CRDHooks(BuiltinHooks):
    """CustomResourceDefinition: validated and Established as it is written; serving its kind
    follows what is stored."""

    def admit_create(self, cluster: Cluster, rtype: ResourceType,
                     obj: dict[str, Any]) -> list[Cause]:
        causes = crds.validate(obj, cluster.kinds)
        if not causes:
            obj["status"] = crds.established_status(obj, cluster.now())
        return causes

    def admit_update(self, cluster: Cluster, rtype: ResourceType, new: dict[str, Any],
                     old: dict[str, Any]) -> list[Cause]:
        causes = crds.validate(new, cluster.kinds) + crds.immutable_causes(new, old)
        if not causes:
            new["status"] = crds.established_status(new, cluster.now())
        return causes

    def stored(self, cluster: Cluster, obj: dict[str, Any]) -> None:
        store = crds.store_of(obj)
        cluster.kinds.remove_store(store)
        for rtype in crds.resource_types(obj):
            cluster.kinds.add(rtype)

    def delete(self, cluster: Cluster, rtype: ResourceType, obj: dict[str, Any]) -> bytes:
        """Mark Terminating and delete the custom resources; the CRD goes once none is left.

        Answers with the marked CRD, as kube-apiserver does (its cleanup runs after the
        answer)."""
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            return orjson.dumps(obj)
        mark_deleting(cluster, obj)
        meta["finalizers"] = [*(meta.get("finalizers") or ()), crds.CLEANUP_FINALIZER]
        crds.set_terminating(obj, cluster.now(), done=False)
        marked = cluster.store.put(rtype, obj, "MODIFIED").raw
        store = crds.store_of(obj)
        cr_type = cluster.kinds.by_store(store)
        if cr_type is not None:
            for _, stored in list(cluster.store.items(store)):
                if not stored.deleting:
                    begin_delete(cluster, cr_type, stored.load())
        finish(cluster, meta["name"])  # nothing was there, or nothing waited
        return marked

    def removed(self, cluster: Cluster, rtype: ResourceType, obj: dict[str, Any]) -> None:
        """Stop serving the kind. Objects still there (the cleanup finalizer was removed by
        hand) go with it."""
        store = crds.store_of(obj)
        gone = cluster.kinds.remove_store(store)
        if not gone:
            return
        for _, stored in list(cluster.store.items(store)):
            cluster.store.delete(gone[0], stored.load())
        for subscriber in cluster.store.subscribers(store):
            end = getattr(subscriber, "finish", None)
            if end is not None:
                end()
        cluster.store.drop_store(store)


class CustomResourceHooks(BuiltinHooks):
    """A custom resource: its CRD's schema; status only through /status when the CRD says so;
    no creation while the CRD is terminating, and the CRD's finalisation when the last one
    goes."""

    def allow_create(self, cluster: Cluster, rtype: ResourceType) -> None:
        crd = cluster.store.get(STORE, ("", rtype.store))
        if crd is not None and crd.deleting:
            raise errors.APIError(405, "MethodNotAllowed", "create not allowed while custom "
                                  "resource definition is terminating", group=rtype.group,
                                  kind=rtype.plural)

    def admit_create(self, cluster: Cluster, rtype: ResourceType,
                     obj: dict[str, Any]) -> list[Cause]:
        if "status" in rtype.subresources:
            obj.pop("status", None)
        return schema.admit(rtype.schema, obj)

    def admit_update(self, cluster: Cluster, rtype: ResourceType, new: dict[str, Any],
                     old: dict[str, Any]) -> list[Cause]:
        return schema.admit(rtype.schema, new, old)

    def removed(self, cluster: Cluster, rtype: ResourceType, obj: dict[str, Any]) -> None:
        finish(cluster, rtype.store)  # if its CRD waited for this one to go


def finish(cluster: Cluster, name: str) -> None:
    """Drop the cleanup finalizer of a deleting CRD once its last custom resource is gone."""
    stored = cluster.store.get(STORE, ("", name))
    if stored is None or not stored.deleting or crds.CLEANUP_FINALIZER not in stored.finalizers:
        return
    if next(iter(cluster.store.items(name)), None) is not None:
        return
    crd = stored.load()
    meta = crd["metadata"]
    meta["finalizers"] = [f for f in meta["finalizers"] if f != crds.CLEANUP_FINALIZER]
    crds.set_terminating(crd, cluster.now(), done=True)
    crd_type = cluster.kinds.by_store(STORE)
    assert crd_type is not None
    if meta["finalizers"]:
        cluster.store.put(crd_type, crd, "MODIFIED")
    else:
        remove(cluster, crd_type, crd)


HOOKS = CRDHooks()
CUSTOM_RESOURCES = CustomResourceHooks()
