"""Server-side apply (``application/apply-patch+yaml``): create when absent, merge when present,
record each field manager's fields in ``metadata.managedFields``.

Simplified from kube-apiserver's structured-merge-diff: lists are owned atomically (as for custom
resources without list-type markers); a manager that stops applying a field it owned removes it
unless another manager owns it too; a field owned by another applier with a different value is a
conflict (409) unless ``force=true``, which moves ownership.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.codecs.body import check_depth
from envtest.commit import commit_create, commit_update
from envtest.errors import Cause
from envtest.http.protocol import Request, Response
from envtest.kinds import crds
from envtest.kinds.objects import check_type_meta
from envtest.patch import PatchError, merge_patch, strategic_merge_patch
from envtest.schema import fieldvalidation

Path = tuple[str, ...]
_UNTRACKED: frozenset[Path] = frozenset({("apiVersion",), ("kind",), ("metadata", "name"),
                                         ("metadata", "namespace"),
                                         ("metadata", "resourceVersion")})


def leaf_paths(obj: Any, prefix: Path = ()) -> set[Path]:
    """Paths of the leaves of ``obj``; lists and empty maps are leaves."""
    if isinstance(obj, Mapping) and obj:
        paths: set[Path] = set()
        for key, value in obj.items():
            paths |= leaf_paths(value, (*prefix, str(key)))
        return paths
    return {prefix} if prefix else set()


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return root


def from_fields_v1(fields: Mapping[str, Any], prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    children = {k: v for k, v in fields.items() if k.startswith("f:")}
    if not children:
        return {prefix} if prefix else set()
    for key, value in children.items():
        paths |= from_fields_v1(value if isinstance(value, Mapping) else {}, (*prefix, key[2:]))
    return paths


def _value(obj: Any, path: Path) -> Any:
    for part in path:
        if not isinstance(obj, Mapping) or part not in obj:
            return _MISSING
        obj = obj[part]
    return obj


_MISSING = object()


def _remove(obj: dict[str, Any], path: Path) -> None:
    """Delete the field at ``path`` and any map its removal leaves empty."""
    if len(path) == 1:
        obj.pop(path[0], None)
        return
    child = obj.get(path[0])
    if isinstance(child, dict):
        _remove(child, path[1:])
        if not child:
            del obj[path[0]]


def server_side_apply(cluster: Cluster, target: Target, request: Request,
                      applied: Any, mode: str = fieldvalidation.DEFAULT) -> Response:
    rtype = target.rtype
    manager = request.param("fieldManager")
    if not manager:
        raise errors.invalid("PatchOptions", "meta.k8s.io", "", [Cause(
            "fieldManager", "Required value: is required for apply patch", "FieldValueRequired")])
    meta = check_type_meta(rtype, applied)
    if meta.get("name", target.name) != target.name:
        raise errors.bad_request(f"the name of the object ({meta.get('name')}) does not match "
                                 f"the name on the URL ({target.name})")
    meta["name"] = target.name
    # Unknown fields are neither stored nor owned. (kube's apply refuses them whatever the
    # directive, "field not declared in schema"; here the directive decides, see
    # fieldvalidation.)
    warnings = fieldvalidation.check(rtype, applied, mode, patched=True)
    owned = leaf_paths(applied) - _UNTRACKED
    entry = {"manager": manager, "operation": "Apply", "apiVersion": rtype.api_version,
             "time": cluster.now(), "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(owned)}
    if target.subresource:
        entry["subresource"] = target.subresource
    stored = cluster.store.get(rtype.store, (target.namespace, target.name))
    if stored is None:
        if target.subresource:
            raise errors.not_found(rtype.plural, rtype.group, target.name)
        return fieldvalidation.with_warnings(Response(201, crds.served_raw(
            rtype, commit_create(cluster, target, applied, managed=[entry]))), warnings)
    old = crds.served(rtype, stored.load())
    managed = _reassign(old, applied, manager, owned, force=request.flag("force"), target=target)
    previous = next((from_fields_v1(m.get("fieldsV1") or {}) for m in
                     old["metadata"].get("managedFields") or () if m.get("manager") == manager
                     and m.get("operation") == "Apply"), set())
    others = set().union(*(from_fields_v1(m.get("fieldsV1") or {}) for m in managed))
    new = copy.deepcopy(old)
    for path in previous - owned - others:
        _remove(new, path)
    applied["metadata"].pop("resourceVersion", None)
    try:
        new = (strategic_merge_patch(new, applied, rtype.kind) if rtype.builtin
               else merge_patch(new, applied))
    except PatchError as exc:
        raise errors.invalid(rtype.kind, rtype.group, target.name,
                             [Cause("patch", f"Invalid value: {exc}")]) from exc
    check_depth(new, "the applied object")
    new["metadata"]["managedFields"] = [*managed, entry]
    status, body = commit_update(cluster, target, old, new,
                                 dry_run=request.param("dryRun") == "All")
    return fieldvalidation.with_warnings(Response(status, crds.served_raw(rtype, body)),
                                         warnings)


def _reassign(old: dict[str, Any], applied: Any, manager: str, owned: set[Path], *,
              force: bool, target: Target) -> list[dict[str, Any]]:
    """Other managers' entries, minus fields this apply takes from them (or 409 on conflict)."""
    keep = []
    conflicts: list[tuple[str, Path]] = []
    for entry in old["metadata"].get("managedFields") or ():
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            continue
        theirs = from_fields_v1(entry.get("fieldsV1") or {})
        contested = {p for p in theirs & owned if _value(old, p) != _value(applied, p)}
        if contested and not force and entry.get("operation") == "Apply":
            conflicts += [(str(entry.get("manager")), p) for p in sorted(contested)]
        remaining = theirs - contested if force or entry.get("operation") != "Apply" else theirs
        if remaining:
            keep.append({**entry, "fieldsV1": to_fields_v1(remaining)})
    if conflicts:
        causes = [Cause("." + ".".join(p), f'conflict with "{who}"', "FieldManagerConflict")
                  for who, p in conflicts]
        raise errors.APIError(409, "Conflict", f"Apply failed with {len(conflicts)} "
                              f"conflict{'s' if len(conflicts) > 1 else ''}: " + "; ".join(
                                  f'conflict with "{who}": .{".".join(p)}'
                                  for who, p in conflicts),
                              name=target.name, group=target.rtype.group,
                              kind=target.rtype.plural, causes=tuple(causes))
    return keep
