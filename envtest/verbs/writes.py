"""Write verbs: create, update (PUT), patch, delete and deletecollection.

Each parses its request (body, patch, options, ``fieldValidation``, ``dryRun``), checks the
preconditions the request carries (resourceVersion, UID, names on the URL), and hands the
object to the commit layer (:mod:`envtest.commit`), which every writer shares — through
admission (:mod:`.admit`), which calls the matching admission webhooks first, if any.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.codecs.body import check_depth, decode_body, decode_patch, media_type
from envtest.commit import (
    begin_delete,
    check_create,
    current,
    namespaces,
)
from envtest.commit import crds as crd_lifecycle
from envtest.errors import Cause
from envtest.http.protocol import Answer, Request, Response, encode_status
from envtest.kinds import crds
from envtest.kinds.objects import check_type_meta
from envtest.kinds.registry import ResourceType
from envtest.patch import (
    PatchError,
    TooManyOperations,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from envtest.schema import fieldvalidation
from envtest.verbs import ownership
from envtest.verbs.admit import (
    Obj,
    Plan,
    admit,
    attributes,
    create_plan,
    spawn,
    update_plan,
    wanted,
)
from envtest.verbs.reads import make_filter
from envtest.webhooks.chain import Chain, chain_for

RETURNS_DELETED_OBJECT = frozenset({"pods", "services", "serviceaccounts", namespaces.STORE,
                                    crd_lifecycle.STORE})
"""Kinds whose DELETE answers with the object (ReturnDeletedObject); the rest get a Status."""


def _dry_run(request: Request) -> bool:
    return request.param("dryRun") == "All"


def _json(status: int, obj: dict[str, Any] | bytes) -> Response:
    return Response(status, obj if isinstance(obj, bytes) else orjson.dumps(obj))


# create --------------------------------------------------------------------------------------
def create(cluster: Cluster, target: Target, request: Request) -> Answer | asyncio.Future[Answer]:
    def build() -> Plan:
        mode = fieldvalidation.directive(request, "CreateOptions")
        obj = decode_body(request, builtin=target.rtype.builtin)
        warnings = _unknown_fields(target.rtype, obj, mode, request)
        if isinstance(obj, dict):
            ownership.track_create(cluster, target, request, obj)
        return create_plan(cluster, target, request, check_create(cluster, target, obj),
                           warnings, lambda body: _json(201, body))

    return admit(cluster, target, request, build)


def _unknown_fields(rtype: ResourceType, obj: Any, mode: str, request: Request, *,
                    patched: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return []  # check_type_meta refuses it
    json_body = media_type(request) in _JSON_BODIES
    return fieldvalidation.check(rtype, obj, mode, patched=patched,
                                 body=request.body if json_body else None)


_JSON_BODIES = frozenset({"", "application/json", "application/merge-patch+json",
                          "application/json-patch+json", "application/strategic-merge-patch+json"})
"""Media types whose body is JSON text, checked for duplicate members under Strict."""


# update and patch ----------------------------------------------------------------------------
def update(cluster: Cluster, target: Target, request: Request) -> Answer | asyncio.Future[Answer]:
    return admit(cluster, target, request, lambda: _update(cluster, target, request))


def _update(cluster: Cluster, target: Target, request: Request) -> Plan:
    mode = fieldvalidation.directive(request, "UpdateOptions")
    old = current(cluster, target)
    new = decode_body(request, builtin=target.rtype.builtin)
    warnings = _unknown_fields(target.rtype, new, mode, request)
    meta = check_type_meta(target.rtype, new)
    if meta.get("name", target.name) != target.name:
        raise errors.bad_request(f"the name of the object ({meta.get('name')}) does not match "
                                 f"the name on the URL ({target.name})")
    if target.rtype.namespaced and meta.get("namespace", target.namespace) != target.namespace:
        raise errors.bad_request("the namespace of the provided object does not match the "
                                 "namespace sent on the request")
    version = meta.get("resourceVersion")
    if not version and not target.rtype.builtin:
        raise errors.invalid(target.rtype.kind, target.rtype.group, target.name, [Cause(
            "metadata.resourceVersion", "Invalid value: 0x0: must be specified for an update")])
    if version and version != str(old["metadata"]["resourceVersion"]):
        raise errors.conflict(target.rtype.plural, target.rtype.group, target.name, errors.STALE)
    ownership.track_update(cluster, target, request, old, new)
    return update_plan(cluster, target, request, old, new, warnings, _json)


def patch(cluster: Cluster, target: Target, request: Request) -> Answer | asyncio.Future[Answer]:
    kind, document = decode_patch(request, builtin=target.rtype.builtin)
    if kind == "apply":
        from envtest.verbs.apply import server_side_apply

        mode = fieldvalidation.directive(request, "PatchOptions")
        return server_side_apply(cluster, target, request, document, mode)
    return admit(cluster, target, request, lambda: _patch(cluster, target, request))


def _patch(cluster: Cluster, target: Target, request: Request) -> Plan:
    mode = fieldvalidation.directive(request, "PatchOptions")
    kind, document = decode_patch(request, builtin=target.rtype.builtin)
    old = current(cluster, target)
    return patch_plan(cluster, target, request, old, patched(target, old, kind, document), mode,
                      deepens=kind == "json")


def patched(target: Target, old: dict[str, Any], kind: str, document: Any) -> Any:
    """``old`` with a merge, JSON or strategic merge patch applied."""
    try:
        if kind == "merge":
            return merge_patch(old, document)
        if kind == "json":
            return json_patch(old, document)
        return strategic_merge_patch(old, document, target.rtype.kind)
    except TooManyOperations as exc:
        raise errors.APIError(413, "RequestEntityTooLarge", str(exc)) from exc
    except PatchError as exc:
        raise errors.invalid(target.rtype.kind, target.rtype.group, target.name,
                             [Cause("patch", f"Invalid value: {exc}")]) from exc


def patch_plan(cluster: Cluster, target: Target, request: Request, old: dict[str, Any],
               new: Any, mode: str, *, deepens: bool = True) -> Plan:
    """The write of a patch's result ``new`` over ``old``. ``deepens=False``: ``new`` nests
    no deeper than ``old`` or the patch document (a merge or strategic merge patch: each of
    its values is one of theirs or a merge of the two), so its depth need not be checked."""
    if not isinstance(new, dict):
        raise errors.bad_request("the patch must produce a JSON object")
    if deepens:
        # A JSON patch composes: an "add" within the depth bound, at a path within it, can
        # still stack an object beyond it.
        check_depth(new, "the patched object")
    warnings = _unknown_fields(target.rtype, new, mode, request, patched=True)
    check_type_meta(target.rtype, new)
    version = (new.get("metadata") or {}).get("resourceVersion")
    if version and str(version) != str(old["metadata"]["resourceVersion"]):
        raise errors.conflict(target.rtype.plural, target.rtype.group, target.name, errors.STALE)
    ownership.track_update(cluster, target, request, old, new)
    return update_plan(cluster, target, request, old, new, warnings, _json)


# delete --------------------------------------------------------------------------------------
def delete(cluster: Cluster, target: Target, request: Request) -> Answer | asyncio.Future[Answer]:
    return admit(cluster, target, request, lambda: _delete(cluster, target, request))


def _delete(cluster: Cluster, target: Target, request: Request) -> Plan:
    options = _delete_options(request)
    obj = current(cluster, target)
    if target.rtype.store == namespaces.STORE and target.name in namespaces.IMMORTAL:
        raise errors.forbidden(f'namespaces "{target.name}" is forbidden: this namespace may '
                               "not be deleted", resource="namespaces", name=target.name)
    preconditions = options.get("preconditions") or {}
    meta = obj["metadata"]
    for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
        wanted = preconditions.get(field)
        if wanted and wanted != meta.get(field):
            raise errors.conflict(target.rtype.plural, target.rtype.group, target.name,
                                  f"Precondition failed: {label} in precondition: {wanted}, "
                                  f"{label} in object meta: {meta.get(field)}")
    return Plan("DELETE", None, obj, lambda _: None,
                lambda _: _deleted(cluster, target, request, options, obj),
                options=options)


def _deleted(cluster: Cluster, target: Target, request: Request, options: dict[str, Any],
             obj: Obj) -> Response:
    """Delete the object (or mark it); kube's answer."""
    if _dry_run(request) or options.get("dryRun") == ["All"]:
        return _json(200, obj)
    meta = obj["metadata"]
    body = begin_delete(cluster, target.rtype, obj, policy=options.get("propagationPolicy"))
    if (target.rtype.store not in RETURNS_DELETED_OBJECT and cluster.store.get(
            target.rtype.store, (target.namespace, target.name)) is None):
        # kube-apiserver answers an immediate delete with a Status unless the kind's storage
        # sets ReturnDeletedObject; clients written against it read details.uid from it.
        return Response(200, encode_status(errors.success_status(
            name=target.name, group=target.rtype.group, kind=target.rtype.plural,
            uid=meta["uid"])))
    return _json(200, crds.served_raw(target.rtype, body))


def _delete_options(request: Request) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if request.body.strip():
        body = decode_body(request)
        if not isinstance(body, dict):
            raise errors.bad_request("DeleteOptions must be a JSON object")
        options = body
    if request.param("propagationPolicy"):
        options["propagationPolicy"] = request.param("propagationPolicy")
    if options.get("orphanDependents") is not None and "propagationPolicy" not in options:
        options["propagationPolicy"] = "Orphan" if options["orphanDependents"] else "Background"
    policy = options.get("propagationPolicy")
    if policy not in (None, "Orphan", "Background", "Foreground"):
        raise errors.bad_request(f'propagationPolicy: Unsupported value: "{policy}": supported '
                                 'values: "Foreground", "Background", "Orphan"')
    return options


def delete_collection(cluster: Cluster, target: Target,
                      request: Request) -> Answer | asyncio.Future[Answer]:
    """Delete what the selectors choose; with webhooks, each object is admitted as a DELETE
    (named as kube names it there: not at all — the old object says which)."""
    select = make_filter(target, request)
    options = _delete_options(request)
    chosen = [(key, stored.load()) for key, stored in list(cluster.store.items(
        target.rtype.store, target.namespace or None))
        if select.matches(key[0], stored.labels, stored.fields)]
    chains = [_item_chain(cluster, target, request, options, obj) for _, obj in chosen]
    if not any(chains):
        return _deleted_list(cluster, target, [
            _delete_item(cluster, target, request, key) for key, _ in chosen])
    return spawn(cluster, _delete_admitted(cluster, target, request, chosen, chains))


def _item_chain(cluster: Cluster, target: Target, request: Request, options: dict[str, Any],
                obj: Obj) -> Chain | None:
    plan = Plan("DELETE", None, obj, lambda _: None, lambda _: Response(200, b""),
                options=options)
    if not wanted(cluster, target, plan):
        return None
    return chain_for(cluster, attributes(cluster, target, request, plan))


async def _delete_admitted(cluster: Cluster, target: Target, request: Request,
                           chosen: list[tuple[tuple[str, str], Obj]],
                           chains: list[Chain | None]) -> Answer:
    deleted, warnings = [], []
    try:
        for (key, _), chain in zip(chosen, chains, strict=True):
            if chain is not None:
                await chain.mutate(None)
                await chain.validate(None)
                warnings += chain.warnings
            deleted.append(_delete_item(cluster, target, request, key))
    except errors.APIError as error:
        return fieldvalidation.with_warnings(errors.error_response(error), warnings)
    return fieldvalidation.with_warnings(_deleted_list(cluster, target, deleted), warnings)


def _delete_item(cluster: Cluster, target: Target, request: Request,
                 key: tuple[str, str]) -> bytes | None:
    """Delete one chosen object (if still there); its bytes as served."""
    stored = cluster.store.get(target.rtype.store, key)
    if stored is None:
        return None
    if _dry_run(request):
        return crds.served_raw(target.rtype, stored.raw)
    return crds.served_raw(target.rtype, begin_delete(cluster, target.rtype, stored.load()))


def _deleted_list(cluster: Cluster, target: Target, deleted: list[bytes | None]) -> Response:
    head = orjson.dumps({"kind": target.rtype.list_kind, "apiVersion": target.rtype.api_version,
                         "metadata": {"resourceVersion": str(cluster.store.revision)}})
    items = b",".join(item for item in deleted if item is not None)
    return Response(200, head[:-1] + b',"items":[' + items + b"]}")
