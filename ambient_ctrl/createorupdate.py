"""create_or_update and create_or_patch: controller-runtime's ``controllerutil`` helpers.

Both read the object, let a ``mutate`` function set the fields the controller decides, and
write only when something changed — the whole "get; if not found create, else compare and
write" dance in one call::

    result, cm = create_or_update(client, CONFIGMAPS, ("default", "settings"),
                                  lambda cm: cm.update(data={"mode": "fast"}))
    # result is OperationResult.CREATED, UPDATED or UNCHANGED

The semantics are controller-runtime's (``CreateOrUpdate``, ``CreateOrPatch``):

* The object is read through the client — from the informer cache by default (``cached=False``
  reads the server). Absent: ``mutate`` is applied to the object given (or, for a key, to a
  bare ``apiVersion``/``kind``/``metadata``) and it is created. Present: ``mutate`` is applied
  to a copy of the object read — fields of the given object other than its name and namespace
  are *not* carried over: set them in ``mutate``.
* ``mutate`` edits its argument in place or returns a new object; it must not change the name
  or namespace (:class:`MutateKeyError`, nothing written). Its exceptions propagate, nothing
  written.
* Nothing is written when the mutated object equals the one read (``UNCHANGED``). A
  ``mutate`` that clears a field the server defaults writes every time, as in Go.
* ``create_or_update`` writes with PUT carrying the resourceVersion read: a stale cache or a
  concurrent writer makes it fail with :class:`~informers.errors.Conflict`, and a create
  racing another with :class:`~informers.errors.AlreadyExists`. Neither is retried here: as in
  controller-runtime, the error goes back to the controller, whose queue requeues the request
  with backoff and the next reconcile starts from fresher state. Status changes are discarded
  by the server (the status subresource owns them).
* ``create_or_patch`` sends a JSON merge patch of what ``mutate`` changed outside ``status``
  (no resourceVersion precondition unless ``optimistic_lock=True``, controller-runtime's
  ``MergeFromWithOptimisticLock``), then, if status changed, a merge patch of the status
  through the status subresource: ``UPDATED``, ``UPDATED_STATUS`` (both) or
  ``UPDATED_STATUS_ONLY``. A kind that discovery says has no status subresource gets its
  status in the main patch. On create, status is dropped by the server; requeue (the result
  says ``CREATED``) to set it, as controller-runtime advises.

Both return ``(OperationResult, object)``: the server's answer after the last write, or the
object read when nothing was written (read-only when it came from the cache).
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Mapping
from typing import Any

from informers.errors import NotFound
from informers.resource import Resource

from .client import Client

Obj = dict[str, Any]
Mutate = Callable[[Obj], Obj | None]
"""Sets the desired fields on the object it is given (in place, or returns a new object)."""
Key = Mapping[str, Any] | tuple[str | None, str]
"""An object (its name and namespace are used) or a ``(namespace, name)`` pair."""


class OperationResult(enum.StrEnum):
    """What a create-or-update did; the values complete "ConfigMap default/x has been ..."."""

    UNCHANGED = "unchanged"
    CREATED = "created"
    UPDATED = "updated"
    UPDATED_STATUS = "updatedStatus"
    """The object and its status were patched (create_or_patch only)."""
    UPDATED_STATUS_ONLY = "updatedStatusOnly"
    """Only the status was patched (create_or_patch only)."""


class MutateKeyError(ValueError):
    """``mutate`` changed the object's name or namespace."""


def create_or_update(client: Client, resource: Resource, obj_or_key: Key, mutate: Mutate, *,
                     cached: bool = True) -> tuple[OperationResult, Obj]:
    """Create the object, or update it (PUT) if ``mutate`` changed it; see the module."""
    key = _key(resource, obj_or_key)
    current, desired = _read_and_mutate(client, resource, obj_or_key, key, mutate,
                                        cached=cached)
    if current is None:
        return OperationResult.CREATED, desired
    if desired == current:
        return OperationResult.UNCHANGED, current
    return OperationResult.UPDATED, client.update(resource, desired)


def create_or_patch(client: Client, resource: Resource, obj_or_key: Key, mutate: Mutate, *,
                    cached: bool = True, optimistic_lock: bool = False
                    ) -> tuple[OperationResult, Obj]:
    """Create the object, or merge-patch what ``mutate`` changed (the object, then its
    status through the status subresource); see the module."""
    key = _key(resource, obj_or_key)
    current, desired = _read_and_mutate(client, resource, obj_or_key, key, mutate,
                                        cached=cached)
    if current is None:
        return OperationResult.CREATED, desired
    separate = resource.has_subresource("status")
    before, before_status = _split(current, separate)
    after, after_status = _split(desired, separate)
    namespace, name = key
    result, answer = OperationResult.UNCHANGED, current
    if before != after:
        patch = merge_patch_between(before, after)
        if optimistic_lock:
            version = current["metadata"].get("resourceVersion")
            patch.setdefault("metadata", {})["resourceVersion"] = version
        answer = client.patch(resource, name, patch, namespace)
        result = OperationResult.UPDATED
    if before_status != after_status:
        answer = client.patch_status(resource, name, merge_patch_between(
            before_status, after_status), namespace)
        result = (OperationResult.UPDATED_STATUS if result is OperationResult.UPDATED
                  else OperationResult.UPDATED_STATUS_ONLY)
    return result, answer


def merge_patch_between(before: Mapping[str, Any], after: Mapping[str, Any]) -> Obj:
    """The JSON merge patch (RFC 7386) that turns ``before`` into ``after``: changed and new
    members, ``null`` for removed ones, nested objects recursed, lists replaced whole.
    (A member set to ``null`` in ``after`` cannot be told from a removed one: both remove.)"""
    patch: Obj = {key: None for key in before if key not in after}
    for key, value in after.items():
        old = before.get(key)
        if key in before and old == value:
            continue
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            patch[key] = merge_patch_between(old, value)
        else:
            patch[key] = copy.deepcopy(value)
    return patch


def _key(resource: Resource, obj_or_key: Key) -> tuple[str | None, str]:
    if isinstance(obj_or_key, tuple):
        namespace, name = obj_or_key
    else:
        meta = obj_or_key.get("metadata") or {}
        namespace, name = meta.get("namespace"), meta.get("name", "")
    if not name:
        raise ValueError("name the object to create or update")
    if resource.namespaced and not namespace:
        raise ValueError(f"{resource.group_resource} is namespaced: name a namespace")
    return (namespace or None) if resource.namespaced else None, name


def _read_and_mutate(client: Client, resource: Resource, obj_or_key: Key,
                     key: tuple[str | None, str], mutate: Mutate, *, cached: bool
                     ) -> tuple[Obj | None, Obj]:
    """(the object read, the mutated copy) — or, when there is none, (None, the object
    created from the mutated blank)."""
    namespace, name = key
    current: Obj | None
    if cached:
        current = client.get(resource, name, namespace)
    else:
        try:
            current = client.resource(resource).get(name, namespace)
        except NotFound:
            current = None
    if current is None:
        return None, client.create(resource, _mutated(mutate, _blank(resource, obj_or_key, key),
                                                      key))
    return current, _mutated(mutate, copy.deepcopy(current), key)


def _blank(resource: Resource, obj_or_key: Key, key: tuple[str | None, str]) -> Obj:
    """What to create from: a copy of the object given, or a bare one for a key."""
    obj: Obj = {} if isinstance(obj_or_key, tuple) else copy.deepcopy(dict(obj_or_key))
    obj.setdefault("apiVersion", resource.api_version)
    obj.setdefault("kind", resource.kind)
    meta = obj.setdefault("metadata", {})
    namespace, meta["name"] = key
    if namespace:
        meta["namespace"] = namespace
    return obj


def _mutated(mutate: Mutate, obj: Obj, key: tuple[str | None, str]) -> Obj:
    changed = mutate(obj)
    result = obj if changed is None else changed
    if not isinstance(result, dict):
        raise TypeError("mutate must edit the object in place or return the object, not "
                        f"{type(result).__name__}")
    meta = result.get("metadata") or {}
    if ((meta.get("namespace") or None) if key[0] else None, meta.get("name")) != key:
        raise MutateKeyError("mutate must not change the object's name or namespace "
                             f"(was {'/'.join(filter(None, key))})")
    return result


def _split(obj: Mapping[str, Any], separate: bool) -> tuple[Obj, Obj]:
    """The object without its status, and ``{"status": ...}`` (empty when it has none), when
    status is written separately; else the whole object and nothing."""
    if not separate:
        return dict(obj), {}
    rest = {k: v for k, v in obj.items() if k != "status"}
    return rest, ({"status": obj["status"]} if "status" in obj else {})
