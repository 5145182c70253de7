"""The AdmissionReview a webhook is sent and what its answer means — kube-apiserver's
``request/admissionreview.go`` and ``errors/statuserror.go`` — as pure functions.

* :func:`review_version` — the first of the webhook's ``admissionReviewVersions`` the server
  speaks (``v1``, ``v1beta1``);
* :func:`review` — the request: uid, kind/resource/subResource as the webhook's rule names
  them, requestKind/requestResource/requestSubResource as the client asked, name, namespace,
  operation, userInfo, object, oldObject, dryRun and options (Create/Update/DeleteOptions);
* :func:`verdict` — the answer checked as ``VerifyAdmissionResponse`` checks it (a v1 answer
  must echo the uid and be an ``admission.k8s.io/v1`` AdmissionReview; a patch needs
  ``patchType: JSONPatch``; a validating webhook may not patch), its patch decoded;
* kube's errors: :func:`denied` (``admission webhook "X" denied the request: MESSAGE``, the
  webhook's code when at least 400, else 400), :func:`call_failed` (500 ``Internal error
  occurred: failed calling webhook "X": ...``), :func:`dry_run_unsupported` (400).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from envtest import errors
from envtest.errors import Cause
from envtest.webhooks.matching import Attributes, Invocation

V1 = "admission.k8s.io/v1"
V1BETA1 = "admission.k8s.io/v1beta1"
_VERSIONS = {"v1": V1, "v1beta1": V1BETA1}
_OPTION_KINDS = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions",
                 "DELETE": "DeleteOptions"}


class InvalidAnswer(ValueError):
    """The webhook answered, but not a usable review (kube: ``ErrCallingWebhook``)."""


class UndecodablePatch(InvalidAnswer):
    """The answer's patch is not base64 of a JSON list of operations."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A webhook's decision."""

    allowed: bool
    status: Mapping[str, Any] | None
    patch: list[Any] | None
    warnings: tuple[str, ...]


def review_version(spec: Mapping[str, Any]) -> str:
    """The review apiVersion to send (the webhook's first known one)."""
    for version in spec.get("admissionReviewVersions") or ():
        if version in _VERSIONS:
            return _VERSIONS[version]
    raise InvalidAnswer("webhook does not accept known AdmissionReview versions")


def options_object(operation: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The request's options as the review's ``options`` (meta.k8s.io/v1)."""
    return {**options, "kind": _OPTION_KINDS[operation], "apiVersion": "meta.k8s.io/v1"}


def review(attrs: Attributes, invocation: Invocation, uid: str, version: str) -> dict[str, Any]:
    """The AdmissionReview sent to ``invocation``'s webhook."""
    sent, asked = invocation.resource, attrs.resource
    kind = _kind(attrs.kind or (sent.group, sent.version, sent.kind))
    request: dict[str, Any] = {
        "uid": uid,
        "kind": kind,
        "resource": {"group": sent.group, "version": sent.version, "resource": sent.resource},
        "requestKind": _kind(attrs.kind or (asked.group, asked.version, asked.kind)),
        "requestResource": {"group": asked.group, "version": asked.version,
                            "resource": asked.resource},
    }
    if attrs.subresource:
        request["subResource"] = request["requestSubResource"] = attrs.subresource
    if attrs.name:
        request["name"] = attrs.name
    if attrs.namespace:
        request["namespace"] = attrs.namespace
    request.update(operation=attrs.operation, userInfo=attrs.user,
                   object=as_version(attrs.object, attrs, invocation),
                   oldObject=as_version(attrs.old_object, attrs, invocation),
                   dryRun=attrs.dry_run,
                   options=options_object(attrs.operation, attrs.options))
    return {"kind": "AdmissionReview", "apiVersion": version, "request": request}


def _kind(gvk: tuple[str, str, str]) -> dict[str, str]:
    return {"group": gvk[0], "version": gvk[1], "kind": gvk[2]}


def as_version(obj: dict[str, Any] | None, attrs: Attributes,
               invocation: Invocation) -> dict[str, Any] | None:
    """``obj`` in the version the webhook's rule names (a custom resource's versions differ
    only in ``apiVersion`` here: conversion ``None``)."""
    sent, asked = invocation.resource, attrs.resource
    if obj is None or sent == asked or obj.get("kind") != asked.kind:
        return obj
    return {**obj, "apiVersion": f"{sent.group}/{sent.version}" if sent.group else sent.version}


def verdict(answer: Mapping[str, Any], uid: str, version: str, *, mutating: bool) -> Verdict:
    """Check a webhook's answer (``VerifyAdmissionResponse``) and read its decision."""
    response = answer.get("response")
    if not isinstance(response, Mapping):
        raise InvalidAnswer("webhook response was absent")
    if version == V1:
        if response.get("uid") != uid:
            raise InvalidAnswer(f'expected response.uid="{uid}", got "{response.get("uid", "")}"')
        got = (answer.get("apiVersion"), answer.get("kind"))
        if got != (V1, "AdmissionReview"):
            raise InvalidAnswer(f"expected webhook response of {V1}, Kind=AdmissionReview, "
                                f"got {got[0] or ''}, Kind={got[1] or ''}")
    patch_type, patch = response.get("patchType") or "", response.get("patch") or ""
    if patch and not patch_type:
        raise InvalidAnswer("webhook returned response.patch but not response.patchType")
    if patch_type and not patch:
        raise InvalidAnswer("webhook returned response.patchType but not response.patch")
    if not mutating and patch:
        raise InvalidAnswer("validating webhook may not return response.patch")
    if patch_type and patch_type != "JSONPatch":
        raise InvalidAnswer(f'webhook returned invalid response.patchType of "{patch_type}"')
    status = response.get("status")
    warnings = tuple(str(w) for w in response.get("warnings") or ())
    return Verdict(response.get("allowed") is True,
                   status if isinstance(status, Mapping) else None,
                   _decoded_patch(patch) if patch else None, warnings)


def _decoded_patch(patch: Any) -> list[Any]:
    try:
        operations = orjson.loads(base64.b64decode(str(patch), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise UndecodablePatch(f"received undecodable patch in webhook response: {exc}") from exc
    if not isinstance(operations, list):
        raise UndecodablePatch("received undecodable patch in webhook response: json: cannot "
                            "unmarshal object into Go value of type jsonpatch.Patch")
    return operations


def denied(name: str, status: Mapping[str, Any] | None) -> errors.APIError:
    """``ToStatusErr``: the webhook's status, its message prefixed, its code at least 400."""
    status = status or {}
    code = status.get("code")
    code = code if isinstance(code, int) and code >= 400 else 400
    denied_by = f'admission webhook "{name}" denied the request'
    if status.get("message"):
        message = f"{denied_by}: {status['message']}"
    elif status.get("reason"):
        message = f"{denied_by}: {status['reason']}"
    else:
        message = f"{denied_by} without explanation"
    found = status.get("details")
    details: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    causes = tuple(Cause(str(c.get("field", "")), str(c.get("message", "")),
                         str(c.get("reason", ""))) for c in details.get("causes") or ()
                   if isinstance(c, Mapping))
    return errors.APIError(code, str(status.get("reason") or ""), message,
                           name=str(details.get("name") or ""),
                           group=str(details.get("group") or ""),
                           kind=str(details.get("kind") or ""), causes=causes)


def call_failed(name: str, reason: str) -> errors.APIError:
    """A webhook that could not be called, under ``failurePolicy: Fail``."""
    return internal(f'failed calling webhook "{name}": {reason}')


def internal(message: str) -> errors.APIError:
    return errors.APIError(500, "InternalError", f"Internal error occurred: {message}")


def dry_run_unsupported(name: str) -> errors.APIError:
    return errors.bad_request(f'admission webhook "{name}" does not support dry run')
