"""Who a write's fields belong to: the field manager a request names, the schema shape of its
kind, what the request may own (status through the main resource, or only status through
``/status``), and the ``managedFields`` an ``Update`` (create, update, patch) leaves behind.

The merge and ownership logic itself is pure (:mod:`envtest.patch.managed`); this module only
binds it to requests and resource types.
"""

from __future__ import annotations

from typing import Any

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.errors import Cause
from envtest.http.protocol import Request
from envtest.kinds.objects import drop_empty_meta
from envtest.kinds.registry import ResourceType
from envtest.patch import PatchError, managed
from envtest.patch.fieldpath import Path
from envtest.patch.managed import Ignored, Owner
from envtest.patch.shapes import Shape, shape_of

_MAX_MANAGER = 128
_STATUS = "f:status"
_METADATA = "f:metadata"


def shape(rtype: ResourceType) -> Shape:
    return shape_of(rtype.kind, builtin=rtype.builtin, schema=rtype.schema)


def ignored(target: Target) -> Ignored:
    """kube's reset fields: status when the kind has a status subresource and the request is on
    the main resource; all but status (and metadata) on ``/status``."""
    if target.subresource == "status":
        return _outside_status
    if "status" in target.rtype.subresources:
        return _in_status
    return _none


def _outside_status(path: Path) -> bool:
    return path[0] not in (_STATUS, _METADATA)


def _in_status(path: Path) -> bool:
    return path[0] == _STATUS


def _none(path: Path) -> bool:
    return False


def manager_name(request: Request, *, required: bool) -> str:
    """The ``fieldManager`` parameter; without it (not allowed for apply) the User-Agent up to
    its first ``/``, as kube-apiserver derives it."""
    name = request.param("fieldManager")
    if not name and required:
        raise errors.invalid("PatchOptions", "meta.k8s.io", "", [Cause(
            "fieldManager", "Required value: is required for apply patch", "FieldValueRequired")])
    if len(name) > _MAX_MANAGER:
        raise errors.invalid("PatchOptions", "meta.k8s.io", "", [Cause(
            "fieldManager", f"Too long: may not be more than {_MAX_MANAGER} bytes",
            "FieldValueTooLong")])
    if name:
        return name
    agent = request.headers.get("user-agent", "")
    return agent.split("/", 1)[0][:_MAX_MANAGER]


def entry(cluster: Cluster, target: Target, name: str, operation: str) -> Owner:
    """A new managedFields entry (its fields set later) for this request's manager."""
    fields: dict[str, Any] = {"manager": name, "operation": operation,
                              "apiVersion": target.rtype.api_version, "time": cluster.now()}
    if target.subresource:
        fields["subresource"] = target.subresource
    return Owner(fields, set())


def track_update(cluster: Cluster, target: Target, request: Request, old: dict[str, Any],
                 new: dict[str, Any]) -> None:
    """Set ``new``'s managedFields after an update or patch by this request's manager (over
    the entries the request sent, when it changed them, else the stored ones)."""
    sent = (new.get("metadata") or {}).get("managedFields")
    stored = old["metadata"].get("managedFields")
    base = sent if sent and sent != stored else stored
    _track(cluster, target, request, old, new, base)


def track_create(cluster: Cluster, target: Target, request: Request,
                 obj: dict[str, Any]) -> None:
    """Give a created object's fields to this request's manager (an ``Update`` entry), on top
    of the managedFields the request sent, if any."""
    _track(cluster, target, request, {}, obj, (obj.get("metadata") or {}).get("managedFields"))


def _track(cluster: Cluster, target: Target, request: Request, old: dict[str, Any],
           new: dict[str, Any], base: Any) -> None:
    me = entry(cluster, target, manager_name(request, required=False), "Update")
    meta = new.get("metadata")
    if not isinstance(meta, dict):
        return  # refused by the commit's checks
    drop_empty_meta(meta)  # as the commit will: ObjectMeta's empty maps are not fields
    try:
        owners = managed.update(old, new, shape(target.rtype), managed.owners(base), me,
                                ignored=ignored(target))
    except PatchError:
        # An object the schema's list keys cannot address (kube-apiserver's UpdateNoErrors):
        # its ownership is dropped rather than left wrong.
        meta.pop("managedFields", None)
        return
    fields = managed.entries(owners)
    if fields:
        meta["managedFields"] = fields
    else:
        meta.pop("managedFields", None)
