"""API errors as kube-apiserver reports them: an HTTP code plus a ``Status`` object.

Every failure a handler raises is an :class:`APIError`; the HTTP layer turns it into a response
whose body is the Status, so clients (kubectl, the python client, kopf) read the reason they expect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from envtest.http.protocol import Response, encode_status


@dataclass(frozen=True, slots=True)
class Cause:
    """One reason an object is invalid (``details.causes[]``)."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def as_dict(self) -> dict[str, str]:
        # Like kube-apiserver, the message does not repeat the field: clients print both. An
        # empty field is left out (metav1.StatusCause's omitempty).
        cause = {"reason": self.reason, "message": self.message, "field": self.field}
        if not self.field:
            del cause["field"]
        return cause

    def summary(self) -> str:
        """``field: message``, as the Status message lists it."""
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass(slots=True)
class APIError(Exception):
    """A failed request: ``code`` and ``reason`` as kube-apiserver would answer."""

    code: int
    reason: str
    message: str
    name: str = ""
    group: str = ""
    kind: str = ""
    causes: tuple[Cause, ...] = ()
    retry_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [cause.as_dict() for cause in self.causes]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        # metav1.Status's field order (clients compare bodies as text); StatusReasonUnknown
        # is "" and, like empty details, omitted.
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Failure", "message": self.message}
        if self.reason:
            body["reason"] = self.reason
        if details:
            body["details"] = details
        body["code"] = self.code
        return body


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> APIError:
    return APIError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                    name=name, group=group, kind=resource)


def already_exists(resource: str, group: str, name: str) -> APIError:
    return APIError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists',
                    name=name, group=group, kind=resource)


def conflict(resource: str, group: str, name: str, why: str) -> APIError:
    what = f'{_qualified(resource, group)} "{name}"'
    return APIError(409, "Conflict", f"Operation cannot be fulfilled on {what}: {why}",
                    name=name, group=group, kind=resource)


STALE = ("the object has been modified; please apply your changes to the latest version and "
         "try again")


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> APIError:
    messages = [cause.summary() for cause in causes]
    summary = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
    return APIError(422, "Invalid", f'{kind} "{name}" is invalid: {summary}',
                    name=name, group=group, kind=kind, causes=tuple(causes))


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def method_not_allowed(message: str) -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def gone(message: str) -> APIError:
    return APIError(410, "Expired", message)


TOO_LARGE_RETRY_SECONDS = 1
"""kube-apiserver's ``resourceVersionTooHighRetrySeconds``."""


def too_large_resource_version(requested: int, current: int) -> APIError:
    """kube-apiserver's answer for a resourceVersion it has not reached within its wait
    (``storage.NewTooLargeResourceVersionError``: a 504 Timeout with a Retry-After of 1 s and
    the cause ``ResourceVersionTooLarge``)."""
    return APIError(504, "Timeout",
                    f"Timeout: Too large resource version: {requested}, current: {current}",
                    causes=(Cause("", "Too large resource version", "ResourceVersionTooLarge"),),
                    retry_after=TOO_LARGE_RETRY_SECONDS)


def unsupported_media_type(accepted: Sequence[str]) -> APIError:
    """kube-apiserver's NewUnsupportedMediaTypeError: it lists what the endpoint accepts (for
    PATCH of a built-in kind strategic merge included, of a custom resource not)."""
    return APIError(415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types "
                    "include: " + ", ".join(accepted))


def too_large(limit: int) -> APIError:
    return APIError(413, "RequestEntityTooLarge",
                    f"Request entity too large: limit is {limit}")


def forbidden(message: str, *, resource: str = "", group: str = "", name: str = "") -> APIError:
    return APIError(403, "Forbidden", message, name=name, group=group, kind=resource)


def success_status(*, name: str, group: str, kind: str, uid: str) -> dict[str, Any]:
    """What a delete answers when the object is gone at once (metav1.StatusDetails' order;
    the core group's empty name omitted, as ``omitempty`` does)."""
    details = {"name": name, "group": group, "kind": kind, "uid": uid}
    if not group:
        del details["group"]
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": details}


def error_response(error: APIError) -> Response:
    """The HTTP response for a failed request: the Status as body, Retry-After when set."""
    headers = dict(error.headers)
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return Response(error.code, encode_status(error.status()), headers=headers)
