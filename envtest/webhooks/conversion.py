"""Calling a CRD's conversion webhook, as kube-apiserver's ``webhookConverter`` does.

One ConversionReview carries every object of a request that is not at the desired version
already (objects at it are not sent; none left: no call). The answer is checked as kube checks
it: the review's kind and ``response.uid`` (v1 only: kube skips both for v1beta1),
``result.status`` (anything but Success fails with its message), one converted object per
object sent, each with the desired ``apiVersion``, the same ``kind`` and the same name,
namespace and uid. Of the metadata a webhook returns only labels and annotations are kept
(validated); the rest is restored from the object sent, and fields the version's schema does
not declare are pruned (kube's schema coercion). Every failure is a 500 whose message
is kube's (``conversion webhook for GROUP/VERSION, Kind=KIND failed: ...``), naming the version
the objects were converted from. The call has kube's fixed 30 s timeout.

The review building and checking are pure functions (:func:`review_request`,
:func:`converted_objects`); :func:`convert` sends the review through the shared webhook
client (:mod:`envtest.webhooks.client`) without blocking the server's loop.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from envtest import errors
from envtest.cluster import Cluster
from envtest.kinds.objects import annotations_causes, labels_causes
from envtest.kinds.registry import ResourceType, WebhookConversion
from envtest.schema import prune
from envtest.webhooks.client import WebhookCallError, post_review

log = logging.getLogger(__name__)

TIMEOUT = 30.0
"""kube-apiserver's conversion webhook timeout: fixed, not configurable per CRD."""
_V1 = "apiextensions.k8s.io/v1"


class ConversionFailed(Exception):
    """A conversion that failed; the message is kube-apiserver's, ready for the Status."""


def group_version_kind(api_version: str, kind: str) -> str:
    """Go's ``GroupVersionKind.String()``: ``group/version, Kind=kind``."""
    group, _, version = api_version.rpartition("/")
    return f"{group}/{version}, Kind={kind}"


def review_request(webhook: WebhookConversion, uid: str, desired: str,
                   objects: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ConversionReview sent, in the first version the CRD lists that the server knows."""
    version = webhook.review_version
    return {"kind": "ConversionReview", "apiVersion": f"apiextensions.k8s.io/{version}",
            "request": {"uid": uid, "desiredAPIVersion": desired, "objects": list(objects)}}


def converted_objects(review: Any, *, uid: str, sent: Sequence[dict[str, Any]], desired: str,
                      source: str, listing: bool, review_version: str = "v1"
                      ) -> list[dict[str, Any]]:
    """The converted objects of a webhook's answer, metadata restored; ConversionFailed with
    kube's message otherwise. ``source`` names the kind converted from (its GVK string);
    ``listing``: the objects of a list (kube words its index errors differently then);
    ``review_version``: the ConversionReview version sent (v1beta1 answers are not checked
    for kind or uid)."""
    try:
        objects = _response_objects(review, uid, checked=review_version == "v1")
    except ConversionFailed as exc:
        raise ConversionFailed(f"conversion webhook for {source} failed: {exc}") from None
    if len(objects) != len(sent):
        raise ConversionFailed(f"conversion webhook for {source} returned {len(objects)} "
                               f"objects, expected {len(sent)}")
    return [_checked(original, converted, index, desired, source, listing)
            for index, (original, converted) in enumerate(zip(sent, objects, strict=True))]


def _response_objects(review: Any, uid: str, *, checked: bool) -> list[Any]:
    """``getConvertedObjectsFromResponse``: the review's kind and uid, then its result."""
    if not isinstance(review, dict):
        raise ConversionFailed("no response provided")
    api_version, kind = review.get("apiVersion"), review.get("kind")
    if checked and (api_version, kind) != (_V1, "ConversionReview"):
        raise ConversionFailed(
            f"expected webhook response of {group_version_kind(_V1, 'ConversionReview')}, "
            f"got {group_version_kind(str(api_version or ''), str(kind or ''))}")
    response = review.get("response")
    if not isinstance(response, dict):
        raise ConversionFailed("no response provided")
    if checked and response.get("uid") != uid:
        raise ConversionFailed(f'expected response.uid="{uid}", got '
                               f'"{response.get("uid") or ""}"')
    result = response.get("result")
    result = result if isinstance(result, dict) else {}
    if result.get("status") != "Success":
        if result.get("message"):
            raise ConversionFailed(str(result["message"]))
        raise ConversionFailed(f"response.result.status was '{result.get('status') or ''}', "
                               "not 'Success'")
    objects = response.get("convertedObjects")
    return objects if isinstance(objects, list) else []


def _checked(original: dict[str, Any], converted: Any, index: int, desired: str, source: str,
             listing: bool) -> dict[str, Any]:
    """One converted object, checked against the one sent and with its metadata restored.

    kube numbers a list's bad object from one (it counts before checking), a single one
    "at index 0"."""
    shown = index + 1 if listing else index
    what = (f"conversion webhook for {source} returned invalid converted object at index "
            f"{shown}" if listing else f"conversion webhook for {source} returned invalid "
            "object")
    if not isinstance(converted, dict):
        raise ConversionFailed(f"{what}: invalid type, expected an object")
    version, kind = converted.get("apiVersion"), converted.get("kind")
    if version != desired:
        where = what if listing else f"{what} at index 0"
        raise ConversionFailed(f"{where}: invalid groupVersion (expected {desired}, received "
                               f"{version or '/'})")
    if kind != original.get("kind"):
        where = what if listing else f"{what} at index 0"
        raise ConversionFailed(f"{where}: invalid kind (expected {original.get('kind')}, "
                               f"received {kind or ''})")
    problem = _identity_change(original, converted)
    if problem:
        raise ConversionFailed(f"{what}: {problem}")
    try:
        return restore_meta(original, converted)
    except ConversionFailed as exc:
        where = (f"conversion webhook for {source} returned invalid metadata in object at "
                 f"index {shown}" if listing else
                 f"conversion webhook for {source} returned invalid metadata")
        raise ConversionFailed(f"{where}: {exc}") from None


def _identity_change(original: dict[str, Any], converted: dict[str, Any]) -> str:
    before, after = original.get("metadata") or {}, converted.get("metadata")
    after = after if isinstance(after, dict) else {}
    for field, label in (("name", "name"), ("namespace", "namespace"), ("uid", "UID")):
        if (before.get(field) or "") != (after.get(field) or ""):
            return (f"must have the same {label}: {before.get(field) or ''} != "
                    f"{after.get(field) or ''}")
    return ""


def restore_meta(original: dict[str, Any], converted: dict[str, Any]) -> dict[str, Any]:
    """kube's ``restoreObjectMeta``: the original's metadata, with the converted object's
    labels and annotations (validated when they changed)."""
    meta = converted.get("metadata")
    if meta is None:
        raise ConversionFailed("missing metadata in converted object")
    if not isinstance(meta, dict):
        raise ConversionFailed(f"invalid metadata of type {_go_type(meta)} in converted object")
    restored = orjson.loads(orjson.dumps(original.get("metadata") or {}))
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is None:
            restored.pop(field, None)
            continue
        if not isinstance(value, dict):
            raise ConversionFailed(f"invalid metadata.{field} of type {_go_type(value)} in "
                                   "converted object")
        for key, item in value.items():
            if not isinstance(item, str):
                raise ConversionFailed(f"metadata.{field}[{key}] must be a string, but is "
                                       f"{_go_type(item)} in converted object")
        if value != (restored.get(field) or {}):
            causes = labels_causes(value) if field == "labels" else annotations_causes(value)
            if causes:
                raise ConversionFailed(", ".join(c.summary() for c in causes))
        restored[field] = value
    converted["metadata"] = restored
    return converted


def _go_type(value: Any) -> str:
    return {dict: "map[string]interface {}", list: "[]interface {}", str: "string",
            bool: "bool", int: "int64", float: "float64"}.get(type(value), "<nil>")


async def convert(cluster: Cluster, to: ResourceType, objects: list[dict[str, Any]], *,
                  listing: bool = False) -> list[dict[str, Any]]:
    """``objects`` at ``to``'s version: those at another version converted by one call to
    the CRD's webhook (none: no call), then pruned by ``to``'s schema as kube's schema
    coercion prunes them; 500 with kube's message when the webhook fails."""
    webhook, desired = to.webhook, to.api_version
    assert webhook is not None
    sent = [obj for obj in objects if obj.get("apiVersion") != desired]
    if not sent:
        return objects
    source = group_version_kind(str(sent[0].get("apiVersion", "")), str(sent[0].get("kind")))
    uid = str(uuid.uuid4())
    body = orjson.dumps(review_request(webhook, uid, desired, sent))
    try:
        try:
            review = await post_review(cluster, webhook.client_config, body, timeout=TIMEOUT)
        except WebhookCallError as exc:
            raise ConversionFailed(f"conversion webhook for {source} failed: {exc}") from None
        converted = converted_objects(review, uid=uid, sent=sent, desired=desired,
                                      source=source, listing=listing,
                                      review_version=webhook.review_version)
    except ConversionFailed as exc:
        log.warning("%s (CRD %s)", exc, webhook.crd_name)
        raise errors.APIError(500, "", str(exc)) from None
    if to.schema is not None:
        for obj in converted:
            prune(to.schema, obj)
    done = iter(converted)
    return [obj if obj.get("apiVersion") == desired else next(done) for obj in objects]
