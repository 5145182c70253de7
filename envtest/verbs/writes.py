"""Write verbs: create, update (PUT), patch, delete and deletecollection.

All writes funnel into :func:`commit_create`, :func:`commit_update` and :func:`remove`, which
carry kube-apiserver's rules: server-owned metadata, generation, status subresource split,
optimistic concurrency, no-op detection (an unchanged write gets no new resourceVersion and no
event), finalizers, and the side effects of CRDs and namespaces.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.codecs.body import check_depth, decode_body, decode_patch, media_type
from envtest.errors import Cause
from envtest.http.protocol import Request, Response
from envtest.kinds import builtins, crds
from envtest.kinds.objects import (
    SYSTEM_FIELDS,
    check_type_meta,
    drop_empty_meta,
    generated_name,
    new_uid,
    raise_if_invalid,
    spec_part,
    validate_meta,
)
from envtest.kinds.registry import ResourceType
from envtest.patch.dialects import (
    PatchError,
    TooManyOperations,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from envtest.schema import fieldvalidation
from envtest.schema import structural as schema
from envtest.verbs.reads import make_filter

CRD_STORE = "customresourcedefinitions.apiextensions.k8s.io"
NAMESPACE_STORE = "namespaces"
IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
"""Namespaces the NamespaceLifecycle admission plugin refuses to delete (403)."""
RETURNS_DELETED_OBJECT = frozenset({"pods", "services", "serviceaccounts", NAMESPACE_STORE,
                                    CRD_STORE})
"""Kinds whose DELETE answers with the object (ReturnDeletedObject); the rest get a Status."""


def _dry_run(request: Request) -> bool:
    return request.param("dryRun") == "All"


def _json(status: int, obj: dict[str, Any] | bytes) -> Response:
    return Response(status, obj if isinstance(obj, bytes) else orjson.dumps(obj))


# create --------------------------------------------------------------------------------------
def create(cluster: Cluster, target: Target, request: Request) -> Response:
    mode = fieldvalidation.directive(request, "CreateOptions")
    obj = decode_body(request, builtin=target.rtype.builtin)
    warnings = _unknown_fields(target.rtype, obj, mode, request)
    created = commit_create(cluster, target, obj, dry_run=_dry_run(request))
    return fieldvalidation.with_warnings(_json(201, crds.served_raw(target.rtype, created)),
                                         warnings)


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


def commit_create(cluster: Cluster, target: Target, obj: Any, *, dry_run: bool = False,
                  managed: list[dict[str, Any]] | None = None) -> bytes:
    rtype = target.rtype
    meta = check_type_meta(rtype, obj)
    if not rtype.builtin:
        crd = cluster.store.get(CRD_STORE, ("", rtype.store))
        if crd is not None and crd.deleting:
            raise errors.APIError(405, "MethodNotAllowed", "create not allowed while custom "
                                  "resource definition is terminating", group=rtype.group,
                                  kind=rtype.plural)
    _place(cluster, target, meta)
    for field in SYSTEM_FIELDS:
        meta.pop(field, None)
    if meta.get("resourceVersion"):
        raise errors.bad_request("resourceVersion should not be set on objects to be created")
    if managed is not None:
        meta["managedFields"] = managed
    drop_empty_meta(meta)
    if not meta.get("name"):
        if not meta.get("generateName"):
            raise errors.invalid(rtype.kind, rtype.group, "", [Cause(
                "metadata.name", "Required value: name or generateName is required",
                "FieldValueRequired")])
        meta["name"] = _free_name(cluster, rtype, meta)
    causes = validate_meta(rtype, obj, updating=False) + _prepare_create(cluster, rtype, obj)
    raise_if_invalid(rtype, meta["name"], causes)
    if cluster.store.get(rtype.store, (meta.get("namespace", ""), meta["name"])) is not None:
        raise errors.already_exists(rtype.plural, rtype.group, meta["name"])
    meta.update(uid=new_uid(), creationTimestamp=cluster.now())
    if _tracks_generation(rtype):
        meta["generation"] = 1
    if dry_run:
        meta["resourceVersion"] = str(cluster.store.revision)
        return orjson.dumps(obj)
    stored = cluster.store.put(rtype, obj, "ADDED")
    if rtype.store == CRD_STORE:
        _register_crd(cluster, obj)
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


def _prepare_create(cluster: Cluster, rtype: ResourceType, obj: dict[str, Any]) -> list[Cause]:
    if not rtype.builtin and "status" in rtype.subresources:
        obj.pop("status", None)
    if rtype.store == CRD_STORE:
        causes = crds.validate(obj, cluster.kinds)
        if not causes:
            obj["status"] = crds.established_status(obj, cluster.now())
        return causes
    if rtype.builtin:
        return builtins.prepare_create(rtype.group_resource, obj, cluster.ips)
    return schema.admit(rtype.schema, obj)


def _register_crd(cluster: Cluster, crd: dict[str, Any]) -> None:
    store = crds.store_of(crd)
    cluster.kinds.remove_store(store)
    for rtype in crds.resource_types(crd):
        cluster.kinds.add(rtype)


# update and patch ----------------------------------------------------------------------------
def update(cluster: Cluster, target: Target, request: Request) -> Response:
    mode = fieldvalidation.directive(request, "UpdateOptions")
    old = _current(cluster, target)
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
    status, body = commit_update(cluster, target, old, new, dry_run=_dry_run(request))
    return fieldvalidation.with_warnings(_json(status, crds.served_raw(target.rtype, body)),
                                         warnings)


def patch(cluster: Cluster, target: Target, request: Request) -> Response:
    mode = fieldvalidation.directive(request, "PatchOptions")
    kind, document = decode_patch(request, builtin=target.rtype.builtin)
    if kind == "apply":
        from envtest.verbs.apply import server_side_apply

        return server_side_apply(cluster, target, request, document, mode)
    old = _current(cluster, target)
    try:
        if kind == "merge":
            new = merge_patch(old, document)
        elif kind == "json":
            new = json_patch(old, document)
        else:
            new = strategic_merge_patch(old, document, target.rtype.kind)
    except TooManyOperations as exc:
        raise errors.APIError(413, "RequestEntityTooLarge", str(exc)) from exc
    except PatchError as exc:
        raise errors.invalid(target.rtype.kind, target.rtype.group, target.name,
                             [Cause("patch", f"Invalid value: {exc}")]) from exc
    if not isinstance(new, dict):
        raise errors.bad_request("the patch must produce a JSON object")
    # Patches compose: each within the depth bound can still stack an object beyond it.
    check_depth(new, "the patched object")
    warnings = _unknown_fields(target.rtype, new, mode, request, patched=True)
    check_type_meta(target.rtype, new)
    version = (new.get("metadata") or {}).get("resourceVersion")
    if version and str(version) != str(old["metadata"]["resourceVersion"]):
        raise errors.conflict(target.rtype.plural, target.rtype.group, target.name, errors.STALE)
    status, body = commit_update(cluster, target, old, new, dry_run=_dry_run(request))
    return fieldvalidation.with_warnings(_json(status, crds.served_raw(target.rtype, body)),
                                         warnings)


def _current(cluster: Cluster, target: Target) -> dict[str, Any]:
    """The stored object, at the version the request names."""
    stored = cluster.store.get(target.rtype.store, (target.namespace, target.name))
    if stored is None:
        raise errors.not_found(target.rtype.plural, target.rtype.group, target.name)
    return crds.served(target.rtype, stored.load())


def commit_update(cluster: Cluster, target: Target, old: dict[str, Any], new: dict[str, Any],
                  *, dry_run: bool = False) -> tuple[int, bytes]:
    """Store ``new`` as the next state of ``old``; (HTTP status, body)."""
    rtype = target.rtype
    merged = _split_status(rtype, old, new, target.subresource)
    meta, old_meta = merged["metadata"], old["metadata"]
    for field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "generation", "name", "namespace"):
        if field in old_meta:
            meta[field] = old_meta[field]
        else:
            meta.pop(field, None)
    meta["resourceVersion"] = old_meta["resourceVersion"]
    drop_empty_meta(meta)
    causes = validate_meta(rtype, merged, updating=True) + _prepare_update(cluster, rtype,
                                                                            merged, old)
    if old_meta.get("deletionTimestamp"):
        added = set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
        if added:
            causes.append(Cause("metadata.finalizers", "Forbidden: no new finalizers can be "
                                "added if the object is being deleted", "FieldValueForbidden"))
    raise_if_invalid(rtype, target.name, causes)
    if _tracks_generation(rtype) and _versioned(rtype, merged) != _versioned(rtype, old):
        meta["generation"] = int(old_meta.get("generation", 1)) + 1
    if merged == old:
        return 200, orjson.dumps(old)  # a no-op write: no new revision, no event
    if dry_run:
        return 200, orjson.dumps(merged)
    if meta.get("deletionTimestamp") and not meta.get("finalizers"):
        return 200, remove(cluster, rtype, merged)
    stored = cluster.store.put(rtype, merged, "MODIFIED")
    if rtype.store == CRD_STORE:
        _register_crd(cluster, merged)
    return 200, stored.raw


_NO_GENERATION = frozenset({
    ("", "configmaps"), ("", "secrets"), ("", "services"), ("", "namespaces"),
    ("", "serviceaccounts"), ("", "events"), ("events.k8s.io", "events"),
    ("coordination.k8s.io", "leases"), ("", "limitranges"),
})
"""Kinds whose kube-apiserver strategy neither sets nor moves ``metadata.generation`` (it
stays unset): a ConfigMap's data change, say, never passes a GenerationChanged predicate."""


def _tracks_generation(rtype: ResourceType) -> bool:
    return (rtype.group, rtype.plural) not in _NO_GENERATION


def _versioned(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """What moves the generation: all but metadata and status — status too for a custom
    resource without a status subresource (kube-apiserver counts all but metadata then)."""
    part = spec_part(obj)
    if not rtype.builtin and "status" not in rtype.subresources and "status" in obj:
        part["status"] = obj["status"]
    return part


def _split_status(rtype: ResourceType, old: dict[str, Any], new: dict[str, Any],
                  subresource: str) -> dict[str, Any]:
    """With a status subresource, the main resource ignores status and /status the rest."""
    if subresource == "status":
        merged = copy.deepcopy(old)
        merged["metadata"]["managedFields"] = (new.get("metadata") or {}).get(
            "managedFields", old["metadata"].get("managedFields"))
        if merged["metadata"]["managedFields"] is None:
            del merged["metadata"]["managedFields"]
        if "status" in new:
            merged["status"] = new["status"]
        else:
            merged.pop("status", None)
        return merged
    if "status" in rtype.subresources:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    return new


def _prepare_update(cluster: Cluster, rtype: ResourceType, new: dict[str, Any],
                    old: dict[str, Any]) -> list[Cause]:
    if rtype.store == CRD_STORE:
        causes = crds.validate(new, cluster.kinds) + crds.immutable_causes(new, old)
        if not causes:
            new["status"] = crds.established_status(new, cluster.now())
        return causes
    if rtype.builtin:
        return builtins.check_update(rtype.group_resource, new, old)
    return schema.admit(rtype.schema, new)


# delete --------------------------------------------------------------------------------------
def delete(cluster: Cluster, target: Target, request: Request) -> Response:
    options = _delete_options(request)
    obj = _current(cluster, target)
    if target.rtype.store == NAMESPACE_STORE and target.name in IMMORTAL_NAMESPACES:
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
    if _dry_run(request) or options.get("dryRun") == ["All"]:
        return _json(200, obj)
    body = begin_delete(cluster, target.rtype, obj, policy=options.get("propagationPolicy"))
    if (target.rtype.store not in RETURNS_DELETED_OBJECT and cluster.store.get(
            target.rtype.store, (target.namespace, target.name)) is None):
        # kube-apiserver answers an immediate delete with a Status unless the kind's storage
        # sets ReturnDeletedObject; clients written against it read details.uid from it.
        return _json(200, errors.success_status(name=target.name, group=target.rtype.group,
                                                kind=target.rtype.plural, uid=meta["uid"]))
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


def begin_delete(cluster: Cluster, rtype: ResourceType, obj: dict[str, Any], *,
                 policy: str | None = None) -> bytes:
    """Delete now, or mark for deletion when finalizers remain; returns the object's bytes.

    ``Foreground`` and ``Orphan`` propagation add the finalizer the garbage collector acts on.
    """
    meta = obj["metadata"]
    if rtype.store == NAMESPACE_STORE:
        return _delete_namespace(cluster, rtype, obj)
    if rtype.store == CRD_STORE:
        return _delete_crd(cluster, rtype, obj)
    special = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(policy or "")
    if special and not meta.get("deletionTimestamp"):
        others = [f for f in meta.get("finalizers") or () if f not in ("foregroundDeletion",
                                                                       "orphan")]
        meta["finalizers"] = [*others, special]
    if not meta.get("finalizers"):
        return remove(cluster, rtype, obj)
    if meta.get("deletionTimestamp"):
        return orjson.dumps(obj)
    meta["deletionTimestamp"] = cluster.now()
    meta["deletionGracePeriodSeconds"] = 0
    return cluster.store.put(rtype, obj, "MODIFIED").raw


def remove(cluster: Cluster, rtype: ResourceType, obj: dict[str, Any]) -> bytes:
    """Take the object out of storage (DELETED), then what its going implies."""
    stored = cluster.store.delete(rtype, obj)
    if rtype.store == CRD_STORE:
        _unregister_crd(cluster, obj)
    elif not rtype.builtin:
        _finish_crd(cluster, rtype.store)  # if its CRD waited for this one to go
    namespace = obj["metadata"].get("namespace")
    if namespace and cluster.namespace_phase(namespace) == "Terminating":
        _finish_namespace(cluster, namespace)
    return stored.raw


def _unregister_crd(cluster: Cluster, crd: dict[str, Any]) -> None:
    """Stop serving the kind. Objects still there (the cleanup finalizer was removed by hand)
    go with it."""
    store = crds.store_of(crd)
    gone = cluster.kinds.remove_store(store)
    if not gone:
        return
    for _, stored in list(cluster.store.items(store)):
        cluster.store.delete(gone[0], stored.load())
    for subscriber in cluster.store.subscribers(store):
        finish = getattr(subscriber, "finish", None)
        if finish is not None:
            finish()
    cluster.store.drop_store(store)


def _delete_crd(cluster: Cluster, rtype: ResourceType, crd: dict[str, Any]) -> bytes:
    """Mark Terminating and delete the custom resources; the CRD goes once none is left.

    Answers with the marked CRD, as kube-apiserver does (its cleanup runs after the answer).
    """
    meta = crd["metadata"]
    if meta.get("deletionTimestamp"):
        return orjson.dumps(crd)
    meta["deletionTimestamp"] = cluster.now()
    meta["deletionGracePeriodSeconds"] = 0
    meta["finalizers"] = [*(meta.get("finalizers") or ()), crds.CLEANUP_FINALIZER]
    crds.set_terminating(crd, cluster.now(), done=False)
    marked = cluster.store.put(rtype, crd, "MODIFIED").raw
    store = crds.store_of(crd)
    cr_type = cluster.kinds.by_store(store)
    if cr_type is not None:
        for _, stored in list(cluster.store.items(store)):
            if not stored.deleting:
                begin_delete(cluster, cr_type, stored.load())
    _finish_crd(cluster, meta["name"])  # nothing was there, or nothing waited
    return marked


def _finish_crd(cluster: Cluster, name: str) -> None:
    """Drop the cleanup finalizer of a deleting CRD once its last custom resource is gone."""
    stored = cluster.store.get(CRD_STORE, ("", name))
    if stored is None or not stored.deleting or crds.CLEANUP_FINALIZER not in stored.finalizers:
        return
    if next(iter(cluster.store.items(name)), None) is not None:
        return
    crd = stored.load()
    meta = crd["metadata"]
    meta["finalizers"] = [f for f in meta["finalizers"] if f != crds.CLEANUP_FINALIZER]
    crds.set_terminating(crd, cluster.now(), done=True)
    crd_type = cluster.kinds.by_store(CRD_STORE)
    assert crd_type is not None
    if meta["finalizers"]:
        cluster.store.put(crd_type, crd, "MODIFIED")
    else:
        remove(cluster, crd_type, crd)


def _delete_namespace(cluster: Cluster, rtype: ResourceType, ns: dict[str, Any]) -> bytes:
    """Mark Terminating, delete the contents; the namespace goes when nothing is left."""
    name = ns["metadata"]["name"]
    if (ns.get("status") or {}).get("phase") != "Terminating":
        ns["metadata"]["deletionTimestamp"] = cluster.now()
        ns["metadata"]["deletionGracePeriodSeconds"] = 0
        ns["status"] = {"phase": "Terminating"}
        cluster.store.put(rtype, ns, "MODIFIED")
        for content_type in {t.store: t for t in cluster.kinds if t.namespaced}.values():
            for _, stored in list(cluster.store.items(content_type.store, name)):
                begin_delete(cluster, content_type, stored.load())
    return _finish_namespace(cluster, name) or orjson.dumps(ns)


def _finish_namespace(cluster: Cluster, name: str) -> bytes | None:
    kinds = {t.store: t for t in cluster.kinds}
    if any(next(iter(cluster.store.items(store, name)), None) for store, t in kinds.items()
           if t.namespaced):
        return None
    stored = cluster.store.get(NAMESPACE_STORE, ("", name))
    if stored is None or (stored.load().get("metadata") or {}).get("finalizers"):
        return None
    return cluster.store.delete(kinds[NAMESPACE_STORE], stored.load()).raw


def delete_collection(cluster: Cluster, target: Target, request: Request) -> Response:
    select = make_filter(target, request)
    _delete_options(request)
    deleted = []
    for key, stored in list(cluster.store.items(target.rtype.store, target.namespace or None)):
        if select.matches(key[0], stored.labels, stored.fields):
            if _dry_run(request):
                deleted.append(crds.served_raw(target.rtype, stored.raw))
            else:
                deleted.append(crds.served_raw(target.rtype, begin_delete(
                    cluster, target.rtype, stored.load())))
    head = orjson.dumps({"kind": target.rtype.list_kind, "apiVersion": target.rtype.api_version,
                         "metadata": {"resourceVersion": str(cluster.store.revision)}})
    return Response(200, head[:-1] + b',"items":[' + b",".join(deleted) + b"]}")


# pod binding ---------------------------------------------------------------------------------
def commit_binding(cluster: Cluster, target: Target, node_name: str, *, uid: str = "") -> bytes:
    """Assign the pod ``target`` names to ``node_name``, as ``POST pods/{name}/binding`` does.

    A pod's spec is immutable through update and patch (``builtins.check_update``); in
    kube-apiserver only the binding subresource sets ``spec.nodeName`` — once — and marks the pod
    ``PodScheduled=True`` in the same write. The simulated scheduler (the kubelet simulator) needs
    exactly that, so it is this separate path rather than an exception in ``commit_update``,
    which keeps the immutability rule whole for every client. ``uid`` is the binding's UID
    precondition: a pod recreated under the same name is not bound by mistake.
    """
    rtype = target.rtype
    pod = _current(cluster, target)
    meta, spec = pod["metadata"], pod.setdefault("spec", {})
    refuse = None
    if uid and meta.get("uid") != uid:
        refuse = (f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
                  f"{meta.get('uid')}")
    elif meta.get("deletionTimestamp"):
        refuse = f"pod {target.name} is being deleted, cannot be assigned to a host"
    elif spec.get("nodeName"):
        refuse = f'pod {target.name} is already assigned to node "{spec["nodeName"]}"'
    if refuse:
        raise errors.conflict("pods/binding", rtype.group, target.name, refuse)
    spec["nodeName"] = node_name
    status = pod.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or ()
                  if isinstance(c, dict) and c.get("type") != "PodScheduled"]
    conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                       "lastTransitionTime": cluster.now()})
    status["conditions"] = conditions
    return cluster.store.put(rtype, pod, "MODIFIED").raw
