"""Owner references: who owns an object, and which owner is its controller.

Semantics follow controller-runtime's ``controllerutil`` and apimachinery's ``metav1``:

* Two references name the same owner when their API *group* (not version), kind and name are
  equal (``referSameObject``); setting a reference to an owner that is already referenced
  replaces that entry (so a re-created owner's new uid replaces the stale one) instead of
  adding a second one.
* At most one reference is the controller. :func:`set_controller_reference` refuses
  (:class:`AlreadyOwnedError`) when another owner already controls the object.
* A namespaced owner must live in the object's namespace, and a cluster-scoped object cannot
  have a namespaced owner (:class:`CrossNamespaceOwnerError`): the garbage collector would
  treat such a reference as dangling and delete the object.
* :func:`is_controlled_by` compares uids, like ``metav1.IsControlledBy``.

Objects are raw JSON dicts. Nothing here mutates its arguments: setters return a new object.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]


class OwnerReferenceError(Exception):
    """An owner reference that must not be set."""


class AlreadyOwnedError(OwnerReferenceError):
    """The object already has a controller reference to a different owner.

    ``owner`` is that existing reference.
    """

    def __init__(self, obj: Mapping[str, Any], owner: Mapping[str, Any]) -> None:
        self.owner = dict(owner)
        meta = obj.get("metadata") or {}
        super().__init__(f"object {meta.get('namespace', '')}/{meta.get('name', '')} is already "
                         f"owned by another {owner.get('kind')} controller {owner.get('name')}")


class CrossNamespaceOwnerError(OwnerReferenceError):
    """The owner is namespaced and the object is in another namespace or cluster-scoped."""


def controller_of(obj: Mapping[str, Any]) -> Obj | None:
    """The object's controller reference (the first with ``controller: true``), or None.

    The returned dict is the object's own entry: treat it as read-only.
    """
    for ref in _refs(obj):
        if ref.get("controller") is True:
            return ref
    return None


def is_controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    """Whether ``owner`` (by uid) is the controller of ``obj``."""
    ref = controller_of(obj)
    uid = (owner.get("metadata") or {}).get("uid")
    return ref is not None and bool(uid) and ref.get("uid") == uid


def set_controller_reference(owner: Mapping[str, Any], obj: Mapping[str, Any], *,
                             block_owner_deletion: bool = True) -> Obj:
    """A copy of ``obj`` whose controller reference is ``owner``.

    The reference carries apiVersion, kind, name, uid, ``controller: true`` and
    ``blockOwnerDeletion``; an existing reference to the same owner is replaced in place.
    Raises :class:`AlreadyOwnedError` if a different owner is already the controller,
    :class:`CrossNamespaceOwnerError` for a forbidden namespace combination, ValueError if
    ``owner`` lacks apiVersion, kind, name or uid.
    """
    _validate_namespaces(owner, obj)
    ref = _reference(owner)
    ref["controller"] = True
    ref["blockOwnerDeletion"] = block_owner_deletion
    existing = controller_of(obj)
    if existing is not None and not _same_owner(existing, ref):
        raise AlreadyOwnedError(obj, existing)
    return _upsert(obj, ref)


def set_owner_reference(owner: Mapping[str, Any], obj: Mapping[str, Any], *,
                        block_owner_deletion: bool | None = None) -> Obj:
    """A copy of ``obj`` with a (non-controller) reference to ``owner``.

    An existing reference to the same owner is replaced by the new one — as in
    controller-runtime's ``SetOwnerReference``, that includes dropping its controller flag, so
    do not call this for an owner that is the controller. ``blockOwnerDeletion`` is set only
    when given. Raises like :func:`set_controller_reference` (except AlreadyOwnedError).
    """
    _validate_namespaces(owner, obj)
    ref = _reference(owner)
    if block_owner_deletion is not None:
        ref["blockOwnerDeletion"] = block_owner_deletion
    return _upsert(obj, ref)


def _refs(obj: Mapping[str, Any]) -> list[Obj]:
    return list((obj.get("metadata") or {}).get("ownerReferences") or [])


def _reference(owner: Mapping[str, Any]) -> Obj:
    meta = owner.get("metadata") or {}
    ref = {"apiVersion": owner.get("apiVersion"), "kind": owner.get("kind"),
           "name": meta.get("name"), "uid": meta.get("uid")}
    missing = [key for key, value in ref.items() if not value]
    if missing:
        raise ValueError(f"the owner has no {', '.join(missing)}: it must be an object read "
                         "from the server")
    return ref


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def _same_owner(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return (_group(str(a.get("apiVersion", ""))) == _group(str(b.get("apiVersion", "")))
            and a.get("kind") == b.get("kind") and a.get("name") == b.get("name"))


def _validate_namespaces(owner: Mapping[str, Any], obj: Mapping[str, Any]) -> None:
    owner_ns = (owner.get("metadata") or {}).get("namespace") or ""
    obj_ns = (obj.get("metadata") or {}).get("namespace") or ""
    if not owner_ns:
        return  # a cluster-scoped owner may own anything
    if not obj_ns:
        raise CrossNamespaceOwnerError("cluster-scoped resource must not have a namespace-scoped "
                                       f"owner, owner's namespace {owner_ns}")
    if owner_ns != obj_ns:
        raise CrossNamespaceOwnerError("cross-namespace owner references are disallowed, owner's "
                                       f"namespace {owner_ns}, obj's namespace {obj_ns}")


def _upsert(obj: Mapping[str, Any], ref: Obj) -> Obj:
    result: Obj = copy.deepcopy(dict(obj))
    meta = result.setdefault("metadata", {})
    refs = list(meta.get("ownerReferences") or [])
    for index, existing in enumerate(refs):
        if _same_owner(existing, ref) or existing.get("uid") == ref["uid"]:
            refs[index] = ref
            break
    else:
        refs.append(ref)
    meta["ownerReferences"] = refs
    return result
