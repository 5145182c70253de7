"""Creating an object: placement, server-owned metadata, generated names, admission, storage."""

from __future__ import annotations

from typing import Any

import orjson

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.commit.hooks import hooks_for
from envtest.commit.update import tracks_generation
from envtest.errors import Cause
from envtest.kinds.objects import (
    SYSTEM_FIELDS,
    check_type_meta,
    drop_empty_meta,
    generated_name,
    new_uid,
    raise_if_invalid,
    validate_meta,
)
from envtest.kinds.registry import ResourceType


def commit_create(cluster: Cluster, target: Target, obj: Any, *, dry_run: bool = False) -> bytes:
    """Store ``obj`` as a new object of ``target``'s kind; its bytes as stored (with
    ``dry_run``, as they would be)."""
    prepared = prepare_create(cluster, target, check_create(cluster, target, obj))
    return store_create(cluster, target, prepared, dry_run=dry_run)


def check_create(cluster: Cluster, target: Target, obj: Any) -> dict[str, Any]:
    """What is refused before admission: a body that is no object of the kind, a kind that
    takes no object now, a namespace that is missing or terminating, or not the URL's."""
    rtype = target.rtype
    meta = check_type_meta(rtype, obj)
    hooks_for(rtype).allow_create(cluster, rtype)
    _place(cluster, target, meta)
    assert isinstance(obj, dict)
    return obj


def prepare_create(cluster: Cluster, target: Target, obj: dict[str, Any]) -> dict[str, Any]:
    """Complete a checked object as kube's ``BeforeCreate`` does — server-owned metadata, a
    generated name, uid, creation time, generation — and validate it (422)."""
    rtype, meta = target.rtype, obj["metadata"]
    for name in SYSTEM_FIELDS:
        meta.pop(name, None)
    if meta.get("resourceVersion"):
        raise errors.bad_request("resourceVersion should not be set on objects to be created")
    drop_empty_meta(meta)
    if not meta.get("name"):
        if not meta.get("generateName"):
            raise errors.invalid(rtype.kind, rtype.group, "", [Cause(
                "metadata.name", "Required value: name or generateName is required",
                "FieldValueRequired")])
        meta["name"] = _free_name(cluster, rtype, meta)
    # Before admission, as kube-apiserver fills them: a Job's generated selector names its uid.
    meta.update(uid=new_uid(), creationTimestamp=cluster.now())
    causes = validate_meta(rtype, obj, updating=False) + hooks_for(rtype).admit_create(
        cluster, rtype, obj)
    raise_if_invalid(rtype, meta["name"], causes)
    if tracks_generation(rtype):
        meta["generation"] = 1
    return obj


def store_create(cluster: Cluster, target: Target, obj: dict[str, Any], *,
                 dry_run: bool = False) -> bytes:
    """Store a prepared object unless its name is taken (409)."""
    rtype, meta = target.rtype, obj["metadata"]
    if cluster.store.get(rtype.store, (meta.get("namespace", ""), meta["name"])) is not None:
        raise errors.already_exists(rtype.plural, rtype.group, meta["name"])
    if dry_run:
        meta["resourceVersion"] = str(cluster.store.revision)
        return orjson.dumps(obj)
    stored = cluster.store.put(rtype, obj, "ADDED")
    hooks_for(rtype).stored(cluster, obj)
    return stored.raw


def _place(cluster: Cluster, target: Target, meta: dict[str, Any]) -> None:
    """Check the object's namespace against the URL's and the namespace's existence."""
    rtype = target.rtype
    if not rtype.namespaced:
        meta.pop("namespace", None)
        return
    given = meta.get("namespace")
    if given and given != target.namespace:
        raise errors.bad_request("the namespace of the provided object does not match the "
                                 "namespace sent on the request")
    meta["namespace"] = target.namespace
    phase = cluster.namespace_phase(target.namespace)
    if phase is None:
        raise errors.not_found("namespaces", "", target.namespace)
    if phase == "Terminating":
        raise errors.forbidden(
            f'{rtype.plural} "{meta.get("name") or meta.get("generateName", "")}" is forbidden: '
            f"unable to create new content in namespace {target.namespace} because it is "
            "being terminated", resource=rtype.plural, group=rtype.group)


def _free_name(cluster: Cluster, rtype: ResourceType, meta: dict[str, Any]) -> str:
    for _ in range(8):
        name = generated_name(str(meta["generateName"]))
        if cluster.store.get(rtype.store, (meta.get("namespace", ""), name)) is None:
            return name
    raise errors.already_exists(rtype.plural, rtype.group, name)
