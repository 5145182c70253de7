"""Finalizers: add and remove one without ever losing another controller's.

``metadata.finalizers`` is a list several controllers write. A read-modify-write of the whole
list from a (possibly stale) cache would silently drop a finalizer another controller added in
the meantime, and a merge patch replaces lists wholesale. So both helpers send a JSON patch
whose first operation *tests* that the list is still what we read, then writes the new list:

    [{"op": "test", "path": "/metadata/finalizers", "value": <the list we read, or null>},
     {"op": "add",  "path": "/metadata/finalizers", "value": <the list with our change>}]

The server applies it atomically to its current object. If the list changed, the test fails
(422 Invalid; a 409 Conflict is handled the same way) and we re-read the object from the server
— not from the cache, which may still be stale — and try again, a bounded number of times.
Testing the list rather than ``resourceVersion`` means unrelated writes (status updates) do
not cost a retry.

Use a finalizer only for cleanup outside the cluster; owner references clean up the inside.

:func:`with_finalizer` is the whole flow around a reconcile, as kube-rs's ``finalizer()``:

* not being deleted, without our finalizer: add it, then ``apply`` the object the server
  answered (if the server refuses the finalizer because deletion started meanwhile, nothing);
* not being deleted, with it: ``apply``;
* being deleted, with it: ``cleanup``; once it returns, remove the finalizer (the server then
  deletes the object when no other finalizer holds it);
* being deleted, without it: nothing — not ours (any more), never touched;
* gone (None): nothing.

Guarantee: once ``apply`` has started, the object is not deleted before ``cleanup`` has
returned normally — the finalizer is added before ``apply`` and removed only after
``cleanup``. An exception from ``cleanup`` keeps the finalizer (the controller retries with
backoff); from ``apply``, it propagates as from any reconcile. Both must be idempotent (they
run again after a restart, a failure, an update), and ``cleanup`` must cope with ``apply``
never having run or never having finished. Deletion waits while the controller is not running
or ``cleanup`` keeps failing. The finalizer name must be unique among the controllers of the
object (``example.com/cleanup``, a domain you own).

One deliberate difference from kube-rs: after adding the finalizer, ``apply`` runs at once with
the object the server answered, instead of waiting for the watch event of our own patch — a
controller whose predicate ignores metadata-only changes (``GenerationChanged``) would otherwise
wait for the next spec change to apply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from informers.errors import Conflict, Invalid, NotFound
from informers.resource import Resource

from .client import Client
from .reconcile import Result

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def has_finalizer(obj: Mapping[str, Any], name: str) -> bool:
    """Whether ``obj`` carries the finalizer ``name``."""
    return name in _finalizers(obj)


def add_finalizer(client: Client, resource: Resource, obj: Mapping[str, Any], name: str, *,
                  attempts: int = 5) -> Mapping[str, Any]:
    """Ensure ``obj`` carries the finalizer ``name``; return the object as the server has it.

    No request is made (and ``obj`` itself is returned) when it already carries it. Others'
    finalizers are never dropped, even if ``obj`` is stale (see the module docstring). An
    object being deleted gets no new finalizer (the server forbids it): the object is returned
    without it — also when a stale ``obj`` hid that deletion had started (the failed patch's
    re-read shows it). Raises the last Conflict/Invalid after ``attempts`` failed tries, and
    any other API error (NotFound) at once.
    """
    return _ensure(client, resource, obj, lambda fins: fins if name in fins else [*fins, name],
                   attempts=attempts)


def remove_finalizer(client: Client, resource: Resource, obj: Mapping[str, Any], name: str, *,
                     attempts: int = 5) -> Mapping[str, Any]:
    """Ensure ``obj`` no longer carries the finalizer ``name``; return the server's object.

    No request is made when it is absent. Every occurrence is removed; the other finalizers
    stay. Removing the last finalizer of an object being deleted lets the server delete it:
    the returned object is then its final state. Raises like :func:`add_finalizer`.
    """
    return _ensure(client, resource, obj, lambda fins: [f for f in fins if f != name],
                   attempts=attempts)


Step = Callable[[Mapping[str, Any]], Result | None]
"""``apply`` or ``cleanup``: given the object (read-only), returns a Result (None: done)."""


def with_finalizer(client: Client, resource: Resource, obj: Mapping[str, Any] | None,
                   name: str, *, apply: Step, cleanup: Step) -> Result:
    """Run ``apply`` or ``cleanup`` for ``obj`` with the finalizer ``name`` managed around
    them (the table in the module docstring); returns the step's Result, or ``Result()`` when
    neither ran. Finalizer writes are conflict-safe JSON patches (see the module)."""
    if obj is None:
        return Result()
    deleting = bool((obj.get("metadata") or {}).get("deletionTimestamp"))
    ours = has_finalizer(obj, name)
    where = {"resource": resource.group_resource, "finalizer": name,
             "object": _key(obj)}
    if deleting and not ours:
        return Result()
    if not deleting:
        if not ours:
            obj = add_finalizer(client, resource, obj, name)
            if not has_finalizer(obj, name):
                return Result()  # deletion started meanwhile: not ours to hold
            log.info("finalizer added", extra=where)
        return apply(obj) or Result()
    outcome = cleanup(obj) or Result()
    try:
        remove_finalizer(client, resource, obj, name)
    except NotFound:
        return outcome  # gone already: nothing is left to hold
    log.info("cleanup done; finalizer removed", extra=where)
    return outcome


def _key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name', '')}".lstrip("/")


def _finalizers(obj: Mapping[str, Any]) -> list[str]:
    return list((obj.get("metadata") or {}).get("finalizers") or [])


def _ensure(client: Client, resource: Resource, obj: Mapping[str, Any],
            change: Callable[[list[str]], list[str]], *, attempts: int) -> Mapping[str, Any]:
    meta = obj.get("metadata") or {}
    name, namespace = meta.get("name", ""), meta.get("namespace")
    current: Mapping[str, Any] = obj
    for attempt in range(1, attempts + 1):
        before = _finalizers(current)
        after = change(before)
        if after == before:
            return current
        if set(after) - set(before) and (current.get("metadata") or {}).get("deletionTimestamp"):
            return current  # the server refuses new finalizers once deletion has started
        try:
            return client.patch(resource, name, _patch(current, after), namespace,
                                patch_type="json")
        except (Conflict, Invalid) as exc:
            if attempt == attempts:
                raise
            log.debug("finalizers changed under us; re-reading",
                      extra={"resource": resource.group_resource,
                             "object": f"{namespace or ''}/{name}", "error": str(exc)})
            # The cache may be as stale as ``obj`` was: read the server's object.
            current = client.resource(resource).get(name, namespace)
    raise AssertionError("unreachable")  # the loop returns or raises


def _patch(current: Mapping[str, Any], after: list[str]) -> list[dict[str, Any]]:
    listed = (current.get("metadata") or {}).get("finalizers")
    # An absent list tests as null (a missing member equals null in the server's JSON patch).
    return [{"op": "test", "path": "/metadata/finalizers", "value": listed},
            {"op": "add", "path": "/metadata/finalizers", "value": after}]
