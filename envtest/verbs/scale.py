"""The ``scale`` subresource of Deployments, StatefulSets, ReplicaSets and
ReplicationControllers: their replica count as an ``autoscaling/v1`` Scale.

GET answers the Scale (``spec.replicas`` from the object's spec, ``status.replicas`` and the
selector as a string from its status and spec, as kube-apiserver's scale storage does); PUT
and PATCH (merge, JSON and strategic merge patch, applied to the Scale) set the object's
``spec.replicas`` through the one write path, so the object gets a new generation and watchers
see it changed. A Scale that names a resourceVersion must name the object's current one (409).
``kubectl scale`` and the autoscaling clients use it.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import orjson

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.codecs.body import decode_body, decode_patch
from envtest.commit import current, prepare_update, store_update
from envtest.errors import Cause
from envtest.http.protocol import Answer, Request, Response
from envtest.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from envtest.verbs.admit import Plan, admit
from foundation.selectors import SelectorError, label_selector_from_dict


def selector_text(selector: Any) -> str:
    """A workload's selector as the Scale's ``status.selector`` string: a LabelSelector's
    requirements (apps/v1), or a ReplicationController's map of labels."""
    if isinstance(selector, dict) and "matchLabels" not in selector and (
            "matchExpressions" not in selector):
        selector = {"matchLabels": selector}  # core/v1's map, or {}
    try:
        return str(label_selector_from_dict(selector)) if selector is not None else ""
    except SelectorError:
        return ""


def as_scale(obj: dict[str, Any]) -> dict[str, Any]:
    """The Scale of a workload object."""
    meta = obj["metadata"]
    spec, status = _part(obj, "spec"), _part(obj, "status")
    scale_spec = {"replicas": spec["replicas"]} if spec.get("replicas") else {}
    scale_status: dict[str, Any] = {"replicas": status.get("replicas", 0)}
    selector = selector_text(spec.get("selector"))
    if selector:
        scale_status["selector"] = selector
    kept = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in kept if k in meta},
            "spec": scale_spec, "status": scale_status}


def get(cluster: Cluster, target: Target, request: Request) -> Response:
    return Response(200, orjson.dumps(as_scale(current(cluster, target))))


def update(cluster: Cluster, target: Target, request: Request) -> Answer | asyncio.Future[Answer]:
    return admit(cluster, target, request, lambda: _update(cluster, target, request))


def _update(cluster: Cluster, target: Target, request: Request) -> Plan:
    scale = decode_body(request)
    if not isinstance(scale, dict):
        raise errors.bad_request("the body must be a Scale object")
    return _set_replicas(cluster, target, request, current(cluster, target), scale)


def patch(cluster: Cluster, target: Target, request: Request) -> Answer | asyncio.Future[Answer]:
    return admit(cluster, target, request, lambda: _patch(cluster, target, request))


def _patch(cluster: Cluster, target: Target, request: Request) -> Plan:
    kind, document = decode_patch(request)
    if kind == "apply":
        raise errors.unsupported_media_type(["application/json-patch+json",
                                             "application/merge-patch+json",
                                             "application/strategic-merge-patch+json"])
    old = current(cluster, target)
    try:
        if kind == "merge":
            scale = merge_patch(as_scale(old), document)
        elif kind == "json":
            scale = json_patch(as_scale(old), document)
        else:
            scale = strategic_merge_patch(as_scale(old), document, "Scale")
    except PatchError as exc:
        raise errors.invalid("Scale", "autoscaling", target.name,
                             [Cause("patch", f"Invalid value: {exc}")]) from exc
    if not isinstance(scale, dict):
        raise errors.bad_request("the patch must produce a Scale object")
    return _set_replicas(cluster, target, request, old, scale)


def _set_replicas(cluster: Cluster, target: Target, request: Request, old: dict[str, Any],
                  scale: dict[str, Any]) -> Plan:
    """The plan of setting ``old``'s replicas from ``scale``: webhooks see Scales."""
    version = _part(scale, "metadata").get("resourceVersion")
    if version and str(version) != str(old["metadata"]["resourceVersion"]):
        raise errors.conflict(target.rtype.plural, target.rtype.group, target.name,
                              errors.STALE)
    main = Target(target.rtype, target.namespace, target.name)

    def prepare(admitted: dict[str, Any] | None) -> dict[str, Any]:
        assert admitted is not None
        return prepare_update(cluster, main, old, _scaled(target, old, admitted))

    def store(prepared: dict[str, Any] | None) -> Response:
        assert prepared is not None
        _, body = store_update(cluster, main, old, prepared,
                               dry_run=request.param("dryRun") == "All")
        return Response(200, orjson.dumps(as_scale(orjson.loads(body))))

    return Plan("UPDATE", scale, old, prepare, store, view=as_scale,
                kind=("autoscaling", "v1", "Scale"))


def _scaled(target: Target, old: dict[str, Any], scale: dict[str, Any]) -> dict[str, Any]:
    """``old`` with the Scale's replicas (422 when they are not a count)."""
    replicas = _part(scale, "spec").get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.invalid("Scale", "autoscaling", target.name, [Cause(
            "spec.replicas", f"Invalid value: {orjson.dumps(replicas).decode()}: must be "
            "greater than or equal to 0")])
    new = copy.deepcopy(old)
    new.setdefault("spec", {})["replicas"] = replicas
    return new


def _part(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}
