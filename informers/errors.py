"""Typed errors of the API boundary.

Every failed request raises a :class:`KubeError` (as httpx's ``HTTPError``: catch it for "the
request failed, however"), which is one of two things:

* :class:`APIError`: the server answered with an error ``Status`` object, as a subclass chosen
  by HTTP code and reason so callers can catch what they handle:

  :class:`NotFound` (404), :class:`AlreadyExists` (409, reason AlreadyExists),
  :class:`Conflict` (409, a stale resourceVersion or a failed precondition),
  :class:`Gone` (410, an expired resourceVersion: relist), :class:`Invalid` (422, with
  ``causes``), :class:`TooManyRequests` (429, with ``retry_after``), :class:`ServerError`
  (5xx, with ``retry_after`` when the server sent one); any other 4xx is a plain
  :class:`APIError`;
* :class:`TransportError`: no HTTP answer arrived at all (refused, reset, timed out).

Two answers mean "the resourceVersion you hold is not one this server can serve" (client-go's
``isExpiredError`` and ``isTooLargeResourceVersionError``): :func:`expired` (410, reasons
Expired and Gone: too old, compacted away) and :func:`too_large_resource_version` (504 Timeout
with the cause ``ResourceVersionTooLarge``: newer than anything the server has — a server
restored from a backup, or restarted without its storage). Either way, list from scratch.

``retry_after`` is always a finite number of seconds, at least 0 (a header of ``inf`` or
``nan`` is no Retry-After at all), or None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson


class KubeError(Exception):
    """A request to the API server failed: the root of :class:`APIError` (an error answer) and
    :class:`TransportError` (no answer)."""


class TransportError(KubeError):
    """The request got no HTTP answer (connection refused or reset, timeout)."""


class APIError(KubeError):
    """The server answered with an error status."""

    def __init__(self, code: int, status: Mapping[str, Any], *,
                 retry_after: float | None = None, path: str = "") -> None:
        self.code = code
        self.status = dict(status)
        self.reason = str(status.get("reason", ""))
        self.message = str(status.get("message", "")) or f"HTTP {code}"
        self.retry_after = retry_after
        self.path = path
        """The URL path the request went to, when the transport knows it ("" otherwise)."""
        super().__init__(f"{code} {self.reason}: {self.message}")

    @property
    def namespace(self) -> str | None:
        """The namespace of the request's URL (a Status carries none): "" for a
        cluster-scoped or all-namespaces path, None when the path is unknown."""
        if not self.path:
            return None
        parts = self.path.split("?", 1)[0].split("/")
        if "namespaces" not in parts:
            return ""
        at = parts.index("namespaces") + 1  # /namespaces/NS/... names one; /namespaces/NS is one
        return parts[at] if at + 1 < len(parts) else ""

    @property
    def causes(self) -> list[dict[str, Any]]:
        return list((self.status.get("details") or {}).get("causes") or [])


class NotFound(APIError):
    pass


class AlreadyExists(APIError):
    pass


class Conflict(APIError):
    pass


class Gone(APIError):
    pass


class Invalid(APIError):
    pass


class TooManyRequests(APIError):
    pass


class ServerError(APIError):
    pass


def _retry_after(headers: Mapping[str, str], status: Mapping[str, Any]) -> float | None:
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        value = (status.get("details") or {}).get("retryAfterSeconds")
    try:
        seconds = None if value is None else float(value)
    except (TypeError, ValueError):
        return None
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def error_from(code: int, body: bytes, headers: Mapping[str, str], *,
               path: str = "") -> APIError:
    """The typed error for an HTTP error answer (to a request for ``path``, when known)."""
    try:
        status = orjson.loads(body) if body else {}
        if not isinstance(status, dict):
            status = {}
    except orjson.JSONDecodeError:
        status = {}
    if not status.get("message"):
        text = body[:500].decode("utf-8", "replace").strip()
        status = {**status, "message": text or f"HTTP {code}"}
    retry = _retry_after(headers, status)
    reason = status.get("reason")
    cls: type[APIError]
    if code == 404:
        cls = NotFound
    elif code == 409:
        cls = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif code == 410:
        cls = Gone
    elif code == 422:
        cls = Invalid
    elif code == 429:
        cls = TooManyRequests
    elif code >= 500:
        cls = ServerError
    else:
        cls = APIError
    return cls(code, status, retry_after=retry, path=path)


TOO_LARGE_RESOURCE_VERSION = "ResourceVersionTooLarge"
"""kube-apiserver's cause type (``metav1.CauseTypeResourceVersionTooLarge``)."""


def expired(error: BaseException) -> bool:
    """Whether ``error`` says our resourceVersion is too old (410 Expired or Gone)."""
    return isinstance(error, Gone)


def too_large_resource_version(error: BaseException) -> bool:
    """Whether ``error`` says our resourceVersion is newer than the server's (as client-go's
    ``isTooLargeResourceVersionError``: the cause type, or — from servers before 1.18.6 — a
    Timeout whose cause or message reads "Too large resource version")."""
    if not isinstance(error, APIError):
        return False
    causes = error.causes
    if any(cause.get("type") == TOO_LARGE_RESOURCE_VERSION
           or cause.get("reason") == TOO_LARGE_RESOURCE_VERSION for cause in causes):
        return True
    if error.reason != "Timeout" and error.code != 504:
        return False
    return (any(cause.get("message") == "Too large resource version" for cause in causes)
            or "Too large resource version" in error.message)
