"""In-process reads and writes for simulators, through the server's own commit path.

Simulators act like controllers in a cluster: they create children, write status through the
status subresource, bind pods and delete — with the same validation, events and
resourceVersions as a request, but without HTTP. They run on the server's loop, so no write
races another; what can still fail (the object went away, a rule refuses the write, an
injected fault) comes back as an :data:`Outcome`, logged here once and never raised into the
loop. The caller decides whether to retry (with a timer) or to forget the object.

A simulator that writes one object again and again (the kubelet: a binding and three or more
statuses per pod) keeps it in a :class:`Kept`: the object as its last read or write left it,
decoded again only when someone else wrote it since. Decoding a stored pod (~12 KB with its
``managedFields``) took 0.1-0.2 ms, five times per pod, a tenth of the server's CPU at 100
sessions/s (``bench/latency_trace.py``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Literal

import orjson

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.commit import begin_delete, commit_binding, commit_create, commit_update
from envtest.commit.update import prepare_update, store_update
from envtest.kinds.registry import ResourceType
from envtest.storage.store import Stored

log = logging.getLogger("envtest.simulators")

Outcome = Literal["ok", "gone", "failed"]
"""``ok``: written (or nothing to write); ``gone``: the object (that UID) no longer exists;
``failed``: refused for another reason — retry later."""


class Kept:
    """Objects as a simulator last read or wrote them, by UID, each at the revision storage
    gave it: the most recent ``maxsize`` (the ones it is working on; a kubelet's Pod is done
    with within a second of its create, and then needs no decoded copy held for it).

    What :func:`get` returns from it is shared with the next call: read it, hand it to
    :func:`update_status` or :func:`bind`, never change it otherwise. A refused write forgets
    it (the write may have changed it half-way)."""

    def __init__(self, maxsize: int = 64) -> None:
        self._objects: OrderedDict[str, tuple[int, dict[str, Any]]] = OrderedDict()
        self._maxsize = maxsize

    def take(self, stored: Stored) -> dict[str, Any]:
        """``stored`` decoded: the kept object when it is that revision, else a fresh load
        (kept from now on)."""
        known = self._objects.get(stored.uid)
        if known is None or known[0] != stored.rv:
            known = (stored.rv, stored.load())
        self._keep(stored.uid, known)
        return known[1]

    def holds(self, stored: Stored) -> bool:
        """Whether :meth:`take` would give the kept object for ``stored``."""
        known = self._objects.get(stored.uid)
        return known is not None and known[0] == stored.rv

    def wrote(self, cluster: Cluster, rtype: ResourceType, obj: dict[str, Any]) -> None:
        """``obj`` went through a commit that stamps in place: keep it, if storage holds
        exactly that revision of it now (a no-op write stored nothing; a removal, nothing)."""
        meta = obj["metadata"]
        stored = find(cluster, rtype, meta.get("namespace", ""), meta["name"])
        if stored is not None and str(stored.rv) == meta.get("resourceVersion"):
            self._keep(stored.uid, (stored.rv, obj))
        else:
            self.forget(str(meta.get("uid") or ""))

    def forget(self, uid: str) -> None:
        self._objects.pop(uid, None)

    def _keep(self, uid: str, known: tuple[int, dict[str, Any]]) -> None:
        if not uid:
            return  # nothing to tell it from a namesake by
        self._objects[uid] = known
        self._objects.move_to_end(uid)
        if len(self._objects) > self._maxsize:
            self._objects.popitem(last=False)


def find(cluster: Cluster, rtype: ResourceType, namespace: str, name: str,
         uid: str = "") -> Stored | None:
    """The stored object (its labels and selectable fields at hand, the rest unparsed), or
    None (also when it has another UID than ``uid``)."""
    stored = cluster.store.get(rtype.store, (namespace, name))
    if stored is None or (uid and stored.uid and stored.uid != uid):
        return None
    return stored


def get(cluster: Cluster, rtype: ResourceType, namespace: str, name: str,
        uid: str = "", *, kept: Kept | None = None) -> dict[str, Any] | None:
    """A private copy of the object, or None (also when it has another UID than ``uid``);
    with ``kept``, the kept one when storage still holds that revision (see :class:`Kept`)."""
    stored = find(cluster, rtype, namespace, name, uid)
    if stored is None:
        return None
    return stored.load() if kept is None else kept.take(stored)


def create(cluster: Cluster, rtype: ResourceType, namespace: str,
           obj: dict[str, Any]) -> dict[str, Any] | None:
    """Create ``obj``; the stored object, or None when refused (logged)."""
    try:
        raw = commit_create(cluster, Target(rtype, namespace), obj)
    except errors.APIError as exc:
        _log_refusal("create", rtype, namespace, obj["metadata"].get("name", ""), exc)
        return None
    created: dict[str, Any] = orjson.loads(raw)
    return created


def update_status(cluster: Cluster, rtype: ResourceType, current: dict[str, Any],
                  status: dict[str, Any], *, kept: Kept | None = None) -> Outcome:
    """Write ``status`` over ``current`` (loaded in this loop turn) via the status subresource;
    with ``kept`` (where ``current`` came from), keep what was stored.

    An unchanged status is a no-op in the commit path: no new resourceVersion, no event.
    ``current`` is not changed: the stored object shares its unchanged parts (a status write
    keeps the stored spec itself), and only ``kept`` holds it on.
    """
    meta = current["metadata"]
    new = dict(current, status=status)
    target = Target(rtype, meta.get("namespace", ""), meta["name"], "status")
    try:
        merged = prepare_update(cluster, target, current, new)
        store_update(cluster, target, current, merged)
    except errors.APIError as exc:
        if kept is not None:
            kept.forget(str(meta.get("uid") or ""))
        return _outcome("update status", rtype, target, exc)
    if kept is not None:
        kept.wrote(cluster, rtype, merged)
    return "ok"


def remove_finalizer(cluster: Cluster, rtype: ResourceType, current: dict[str, Any],
                     finalizer: str) -> Outcome:
    """Drop ``finalizer`` from ``current`` (loaded in this loop turn); the object goes when it
    was being deleted and no finalizer remains."""
    meta = current["metadata"]
    if finalizer not in (meta.get("finalizers") or ()):
        return "ok"
    new = dict(current, metadata=dict(meta, finalizers=[
        f for f in meta["finalizers"] if f != finalizer]))
    target = Target(rtype, meta.get("namespace", ""), meta["name"])
    try:
        commit_update(cluster, target, current, new)
    except errors.APIError as exc:
        return _outcome("remove finalizer", rtype, target, exc)
    return "ok"


def bind(cluster: Cluster, rtype: ResourceType, namespace: str, name: str, uid: str,
         node_name: str, *, kept: Kept | None = None) -> Outcome:
    """Bind a pod to ``node_name`` (the scheduler's ``pods/binding``); with ``kept``, from
    and into it."""
    target = Target(rtype, namespace, name, "binding")
    pod = None if kept is None else get(cluster, rtype, namespace, name, uid, kept=kept)
    try:
        commit_binding(cluster, target, node_name, uid=uid, pod=pod)
    except errors.APIError as exc:
        if kept is not None:
            kept.forget(uid)
        return _outcome("bind", rtype, target, exc)
    if kept is not None and pod is not None:
        kept.wrote(cluster, rtype, pod)
    return "ok"


def delete(cluster: Cluster, rtype: ResourceType, namespace: str, name: str,
           uid: str = "") -> Outcome:
    """Delete the object (the one with ``uid`` when given); ``gone`` when it already is."""
    current = get(cluster, rtype, namespace, name, uid)
    if current is None:
        return "gone"
    if current["metadata"].get("deletionTimestamp"):
        return "ok"
    try:
        begin_delete(cluster, rtype, current)
    except errors.APIError as exc:
        return _outcome("delete", rtype, Target(rtype, namespace, name), exc)
    return "ok"


def _outcome(action: str, rtype: ResourceType, target: Target, exc: errors.APIError) -> Outcome:
    if exc.code == 404:
        return "gone"
    _log_refusal(action, rtype, target.namespace, target.name, exc)
    return "failed"


def _log_refusal(action: str, rtype: ResourceType, namespace: str, name: str,
                 exc: errors.APIError) -> None:
    log.warning("simulator write refused", extra={
        "action": action, "resource": rtype.group_resource, "object": f"{namespace}/{name}",
        "code": exc.code, "reason": exc.reason, "error": exc.message})
