"""In-process reads and writes for simulators, through the server's own commit path.

Simulators act like controllers in a cluster: they create children, write status through the
status subresource, bind pods and delete — with the same validation, events and
resourceVersions as a request, but without HTTP. They run on the server's loop, so no write
races another; what can still fail (the object went away, a rule refuses the write, an
injected fault) comes back as an :data:`Outcome`, logged here once and never raised into the
loop. The caller decides whether to retry (with a timer) or to forget the object.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import orjson

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.commit import begin_delete, commit_binding, commit_create, commit_update
from envtest.kinds.registry import ResourceType
from envtest.storage.store import Stored

log = logging.getLogger("envtest.simulators")

Outcome = Literal["ok", "gone", "failed"]
"""``ok``: written (or nothing to write); ``gone``: the object (that UID) no longer exists;
``failed``: refused for another reason — retry later."""


def find(cluster: Cluster, rtype: ResourceType, namespace: str, name: str,
         uid: str = "") -> Stored | None:
    """The stored object (its labels and selectable fields at hand, the rest unparsed), or
    None (also when it has another UID than ``uid``)."""
    stored = cluster.store.get(rtype.store, (namespace, name))
    if stored is None or (uid and stored.uid and stored.uid != uid):
        return None
    return stored


def get(cluster: Cluster, rtype: ResourceType, namespace: str, name: str,
        uid: str = "") -> dict[str, Any] | None:
    """A private copy of the object, or None (also when it has another UID than ``uid``)."""
    stored = find(cluster, rtype, namespace, name, uid)
    return None if stored is None else stored.load()


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
                  status: dict[str, Any]) -> Outcome:
    """Write ``status`` over ``current`` (loaded in this loop turn) via the status subresource.

    An unchanged status is a no-op in the commit path: no new resourceVersion, no event.
    """
    meta = current["metadata"]
    new = dict(current, status=status)
    target = Target(rtype, meta.get("namespace", ""), meta["name"], "status")
    try:
        commit_update(cluster, target, current, new)
    except errors.APIError as exc:
        return _outcome("update status", rtype, target, exc)
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
         node_name: str) -> Outcome:
    """Bind a pod to ``node_name`` (the scheduler's ``pods/binding``)."""
    target = Target(rtype, namespace, name, "binding")
    try:
        commit_binding(cluster, target, node_name, uid=uid)
    except errors.APIError as exc:
        return _outcome("bind", rtype, target, exc)
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
