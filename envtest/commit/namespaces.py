"""The lifecycle of Namespaces, as kube-apiserver and its controllers run it.

A new namespace gets its ``default`` ServiceAccount (kube-controller-manager's service account
controller), and the ``default`` namespace the ``kubernetes`` Service (kube-apiserver's
bootstrap controller): :mod:`.bootstrap`. Deleting a namespace marks it Terminating and
deletes everything in it; it goes when nothing is left (and no finalizer of its own remains).
Three namespaces cannot be deleted at all (the NamespaceLifecycle admission plugin's immortal
ones).
"""

from __future__ import annotations

from typing import Any

import orjson

from envtest.cluster import Cluster
from envtest.commit import bootstrap
from envtest.commit.delete import begin_delete, mark_deleting
from envtest.commit.hooks import BuiltinHooks
from envtest.kinds.registry import ResourceType

STORE = "namespaces"
IMMORTAL = frozenset({"default", "kube-system", "kube-public"})
"""Namespaces the NamespaceLifecycle admission plugin refuses to delete (403)."""


class NamespaceHooks(BuiltinHooks):
    """Namespace: what a new one holds from the start; a deletion that empties it first."""

    def stored(self, cluster: Cluster, obj: dict[str, Any]) -> None:
        if (obj.get("status") or {}).get("phase", "Active") == "Active":
            bootstrap.populate(cluster, obj["metadata"]["name"])

    def delete(self, cluster: Cluster, rtype: ResourceType, obj: dict[str, Any]) -> bytes:
        """Mark Terminating, delete the contents; the namespace goes when nothing is left."""
        name = obj["metadata"]["name"]
        if (obj.get("status") or {}).get("phase") != "Terminating":
            mark_deleting(cluster, obj)
            obj["status"] = {"phase": "Terminating"}
            cluster.store.put(rtype, obj, "MODIFIED")
            for content_type in {t.store: t for t in cluster.kinds if t.namespaced}.values():
                for _, stored in list(cluster.store.items(content_type.store, name)):
                    begin_delete(cluster, content_type, stored.load())
        return _finish(cluster, name) or orjson.dumps(obj)


def content_removed(cluster: Cluster, obj: dict[str, Any]) -> None:
    """An object left storage: if its namespace terminates, it may now go too."""
    namespace = obj["metadata"].get("namespace")
    if namespace and cluster.namespace_phase(namespace) == "Terminating":
        _finish(cluster, namespace)


def _finish(cluster: Cluster, name: str) -> bytes | None:
    kinds = {t.store: t for t in cluster.kinds}
    if any(next(iter(cluster.store.items(store, name)), None) for store, t in kinds.items()
           if t.namespaced):
        return None
    stored = cluster.store.get(STORE, ("", name))
    if stored is None or (stored.load().get("metadata") or {}).get("finalizers"):
        return None
    return cluster.store.delete(kinds[STORE], stored.load()).raw


HOOKS = NamespaceHooks()
