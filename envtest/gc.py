"""The garbage collector: kube-controller-manager's owner-reference semantics, inside the server.

It watches every event through :meth:`ObjectStore.observe`, keeps a graph of owners and
dependents by UID, and acts like the real collector:

* **background** — a dependent all of whose owners are gone is deleted; one that still has a live
  owner loses only its dangling references. A reference whose UID matches no live object is
  dangling, even when an object of that name exists (it is a different incarnation);
* **foreground** — an owner deleted with ``propagationPolicy: Foreground`` carries the
  ``foregroundDeletion`` finalizer; its dependents are deleted, and once none that sets
  ``blockOwnerDeletion`` remains, the finalizer is removed and the owner goes;
* **orphan** — an owner deleted with ``Orphan`` carries the ``orphan`` finalizer; its references
  are removed from the dependents, then the finalizer.

Chains (session → pod → service) follow from deletions producing events. Work never runs inside
the event delivery (a write there would reach some watchers before the event being delivered):
it is queued and drained on the next loop iteration.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.commit import begin_delete, commit_update
from envtest.kinds.registry import ResourceType
from envtest.storage.store import Event, Key

log = logging.getLogger(__name__)

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


class GarbageCollector:
    """Owner-reference garbage collection for one server. Lives on the loop thread."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._where: dict[str, tuple[str, Key]] = {}
        """Live objects: uid → (store, key)."""
        self._owners: dict[str, tuple[str, ...]] = {}
        self._dependents: dict[str, set[str]] = {}
        self._pending: dict[str, None] = {}  # insertion-ordered set of UIDs to examine
        self._scheduled = False
        cluster.store.observe(self._observe)

    # graph upkeep ------------------------------------------------------------------------------
    def _observe(self, event: Event) -> None:
        stored = event.new
        uid = stored.uid
        if not uid:
            return
        if event.type == "DELETED":
            self._where.pop(uid, None)
            self._link(uid, ())
            self._queue(self._dependents.get(uid, ()))
            self._queue(stored.owners)  # an owner in foreground deletion may now be unblocked
            return
        self._where[uid] = (event.store, (event.namespace, stored.fields["metadata.name"]))
        self._link(uid, stored.owners)
        if stored.owners and any(owner not in self._where for owner in stored.owners):
            self._queue((uid,))
        if stored.deleting and (FOREGROUND in stored.finalizers or ORPHAN in stored.finalizers):
            self._queue((uid,))

    def _link(self, uid: str, owners: tuple[str, ...]) -> None:
        for owner in self._owners.pop(uid, ()):
            dependents = self._dependents.get(owner)
            if dependents is not None:
                dependents.discard(uid)
                if not dependents:
                    del self._dependents[owner]
        if owners:
            self._owners[uid] = owners
            for owner in owners:
                self._dependents.setdefault(owner, set()).add(uid)

    def _queue(self, uids: Any) -> None:
        for uid in uids:
            self._pending[uid] = None
        if self._pending and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        while self._pending:
            uid = next(iter(self._pending))
            del self._pending[uid]
            try:
                self._examine(uid)
            except errors.APIError as exc:  # e.g. a conflict with a concurrent writer: retry
                log.info("garbage collector will retry %s: %s", uid, exc)
                asyncio.get_running_loop().call_later(0.1, self._queue, (uid,))

    # decisions ---------------------------------------------------------------------------------
    def _load(self, uid: str) -> tuple[ResourceType, dict[str, Any]] | None:
        location = self._where.get(uid)
        if location is None:
            return None
        store, key = location
        rtype = self._cluster.kinds.by_store(store)
        stored = self._cluster.store.get(store, key)
        if rtype is None or stored is None:
            return None
        return rtype, stored.load()

    def _examine(self, uid: str) -> None:
        loaded = self._load(uid)
        if loaded is None:
            return
        rtype, obj = loaded
        meta = obj["metadata"]
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp") and ORPHAN in finalizers:
            self._orphan(uid, rtype, obj)
        elif meta.get("deletionTimestamp") and FOREGROUND in finalizers:
            self._foreground(uid, rtype, obj)
        elif meta.get("ownerReferences") and not meta.get("deletionTimestamp"):
            self._check_owners(rtype, obj)

    def _check_owners(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        refs = obj["metadata"]["ownerReferences"]
        live = [ref for ref in refs if ref.get("uid") in self._where]
        if len(live) == len(refs):
            return
        if not live:
            begin_delete(self._cluster, rtype, obj)
            return
        new = copy.deepcopy(obj)
        new["metadata"]["ownerReferences"] = live
        commit_update(self._cluster, _target(rtype, obj), obj, new)

    def _foreground(self, uid: str, rtype: ResourceType, obj: dict[str, Any]) -> None:
        blocking = False
        for dependent_uid in list(self._dependents.get(uid, ())):
            loaded = self._load(dependent_uid)
            if loaded is None:
                continue
            dep_type, dependent = loaded
            if not dependent["metadata"].get("deletionTimestamp"):
                policy = "Foreground" if self._dependents.get(dependent_uid) else "Background"
                begin_delete(self._cluster, dep_type, dependent, policy=policy)
            refs = dependent["metadata"].get("ownerReferences") or ()
            blocking |= any(r.get("uid") == uid and r.get("blockOwnerDeletion") for r in refs)
        if not blocking:
            self._drop_finalizer(rtype, obj, FOREGROUND)

    def _orphan(self, uid: str, rtype: ResourceType, obj: dict[str, Any]) -> None:
        for dependent_uid in list(self._dependents.get(uid, ())):
            loaded = self._load(dependent_uid)
            if loaded is None:
                continue
            dep_type, dependent = loaded
            new = copy.deepcopy(dependent)
            refs = [r for r in new["metadata"].get("ownerReferences") or ()
                    if r.get("uid") != uid]
            if refs:
                new["metadata"]["ownerReferences"] = refs
            else:
                new["metadata"].pop("ownerReferences", None)
            commit_update(self._cluster, _target(dep_type, dependent), dependent, new)
        self._drop_finalizer(rtype, obj, ORPHAN)

    def _drop_finalizer(self, rtype: ResourceType, obj: dict[str, Any], finalizer: str) -> None:
        new = copy.deepcopy(obj)
        remaining = [f for f in new["metadata"].get("finalizers") or () if f != finalizer]
        new["metadata"]["finalizers"] = remaining
        commit_update(self._cluster, _target(rtype, obj), obj, new)


def _target(rtype: ResourceType, obj: dict[str, Any]) -> Target:
    meta = obj["metadata"]
    return Target(rtype, meta.get("namespace", ""), meta["name"])
