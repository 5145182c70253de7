"""AdmissionReview v1: a request in, a handler's verdict, a response out — pure functions on
the raw JSON the API server sends.

As controller-runtime's ``admission.Webhook`` with ``CustomDefaulter`` and
``CustomValidator``:

* a **defaulter** ``fn(obj)`` edits the object in place (CREATE and UPDATE); the answer carries
  the RFC 6902 patch from the object sent to the edited one (base64, ``patchType:
  JSONPatch``), none when nothing changed;
* a **validator** ``fn(obj, old)`` gets the new object and, for an UPDATE, the old one (CREATE:
  ``old`` is None; DELETE: ``obj`` is None and ``old`` is the object being deleted);
* either refuses by raising or returning :class:`Denied` (code 403, reason ``Forbidden``
  unless given others), allows with warnings by returning :class:`Allowed`, or allows
  silently by returning None;
* either may read the whole review request with :func:`current_request` (``userInfo``,
  ``dryRun``, ``subResource``, ``options``...), as controller-runtime's handlers read
  ``admission.RequestFromContext(ctx)``.

The response echoes the request's ``uid`` and ``apiVersion`` (``admission.k8s.io/v1``, or
``v1beta1`` for an old configuration). A handler that raises anything else answers
``allowed: false`` with code 500 and the error (controller-runtime's recovered panic): the API
server refuses the request with that message whatever the failurePolicy, since the webhook
answered. A review that cannot be read answers ``allowed: false`` with code 400.
"""

from __future__ import annotations

import base64
import contextvars
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson

from .jsonpatch import diff

log = logging.getLogger(__name__)

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
CREATE, UPDATE, DELETE, CONNECT = "CREATE", "UPDATE", "DELETE", "CONNECT"

Obj = dict[str, Any]

_REQUEST: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("admission_request")


def current_request() -> Mapping[str, Any]:
    """The AdmissionReview ``request`` being decided (read-only), inside a defaulter or a
    validator; outside one, a LookupError."""
    try:
        return _REQUEST.get()
    except LookupError:
        raise LookupError("current_request() is only known inside a webhook handler") from None


class Denied(Exception):
    """The request is refused: ``message`` is what the user sees after "admission webhook
    ... denied the request:"."""

    def __init__(self, message: str, *, code: int = 403, reason: str = "Forbidden",
                 warnings: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.warnings = tuple(warnings)


@dataclass(frozen=True, slots=True)
class Allowed:
    """The request is allowed; ``warnings`` reach the client (kubectl prints them)."""

    warnings: tuple[str, ...] = ()


Verdict = Allowed | Denied | None
Defaulter = Callable[[Obj], Verdict]
Validator = Callable[[Obj | None, Obj | None], Verdict]


@dataclass(frozen=True, slots=True)
class Answer:
    """What a handler decided, before it is written as a response."""

    allowed: bool
    code: int = 200
    reason: str = ""
    message: str = ""
    patch: list[dict[str, Any]] = field(default_factory=list)
    warnings: tuple[str, ...] = ()


Handler = Callable[[Mapping[str, Any]], Answer]
"""Decides on one review's ``request``."""


def _verdict(value: object) -> Answer:
    if value is None:
        return Answer(True)
    if isinstance(value, Allowed):
        return Answer(True, warnings=value.warnings)
    if isinstance(value, Denied):
        return _denial(value)
    raise TypeError(f"a webhook handler returned {type(value).__name__}: return None, "
                    f"Allowed(...) or Denied(...)")


def _denial(denied: Denied) -> Answer:
    return Answer(False, code=denied.code, reason=denied.reason, message=denied.message,
                  warnings=denied.warnings)


def defaulting(fn: Defaulter) -> Handler:
    """A mutating handler from a defaulter that edits the object in place."""
    def handle(request: Mapping[str, Any]) -> Answer:
        if request.get("operation") not in (CREATE, UPDATE):
            return Answer(True)
        original = request.get("object")
        if not isinstance(original, dict):
            return Answer(False, code=400, message="the request carries no object")
        mutated = orjson.loads(orjson.dumps(original))  # a deep copy, at C speed
        answer = _verdict(fn(mutated))
        if not answer.allowed:
            return answer
        return Answer(True, patch=diff(original, mutated), warnings=answer.warnings)
    return handle


def validating(fn: Validator) -> Handler:
    """A validating handler from a validator of ``(obj, old)``."""
    def handle(request: Mapping[str, Any]) -> Answer:
        operation = request.get("operation")
        if operation == CREATE:
            return _verdict(fn(request.get("object"), None))
        if operation == UPDATE:
            return _verdict(fn(request.get("object"), request.get("oldObject")))
        if operation == DELETE:
            return _verdict(fn(None, request.get("oldObject")))
        return Answer(True)
    return handle


def review(body: object, handler: Handler, *, name: str = "") -> dict[str, Any]:
    """The AdmissionReview answering ``body`` (the review the API server posted, parsed)."""
    request = body.get("request") if isinstance(body, dict) else None
    api_version = body.get("apiVersion") if isinstance(body, dict) else None
    if api_version not in API_VERSIONS:
        return response("", Answer(False, code=400, message=(
            f"expected an AdmissionReview of {' or '.join(API_VERSIONS)}, "
            f"got apiVersion {api_version!r}")))
    if not isinstance(request, dict) or not request.get("uid"):
        return response("", Answer(False, code=400, message="the AdmissionReview has no "
                                   "request, or its request no uid"), str(api_version))
    token = _REQUEST.set(MappingProxyType(request))
    try:
        answer = handler(request)
    except Denied as denied:
        answer = _denial(denied)
    except Exception as error:
        log.exception("admission webhook handler failed",
                      extra={"webhook": name, "uid": request["uid"],
                             "operation": request.get("operation"),
                             "object": _named(request)})
        answer = Answer(False, code=500, message=f"internal error in webhook {name}: "
                        f"{type(error).__name__}: {error}")
    finally:
        _REQUEST.reset(token)
    return response(str(request["uid"]), answer, str(api_version))


def response(uid: str, answer: Answer,
             api_version: str = API_VERSIONS[0]) -> dict[str, Any]:
    """The AdmissionReview carrying ``answer`` for the request ``uid``."""
    status: dict[str, Any] = {"metadata": {}, "code": answer.code}
    if not answer.allowed:
        status["status"] = "Failure"
    if answer.reason:
        status["reason"] = answer.reason
    if answer.message:
        status["message"] = answer.message
    body: dict[str, Any] = {"uid": uid, "allowed": answer.allowed, "status": status}
    if answer.patch:
        body["patchType"] = "JSONPatch"
        body["patch"] = base64.b64encode(orjson.dumps(answer.patch)).decode()
    if answer.warnings:
        body["warnings"] = list(answer.warnings)
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": body}


def _named(request: Mapping[str, Any]) -> str:
    namespace, name = request.get("namespace") or "", request.get("name") or ""
    return f"{namespace}/{name}" if namespace else name
