"""Typed errors of the API boundary.

Every failed request raises an :class:`APIError` carrying the server's ``Status`` object, as a
subclass chosen by HTTP code and reason so callers can catch what they handle:

* :class:`NotFound` (404), :class:`AlreadyExists` (409, reason AlreadyExists),
  :class:`Conflict` (409, a stale resourceVersion or a failed precondition),
  :class:`Gone` (410, an expired resourceVersion: relist), :class:`Invalid` (422, with
  ``causes``), :class:`TooManyRequests` (429, with ``retry_after``), :class:`ServerError`
  (5xx, with ``retry_after`` when the server sent one);
* any other 4xx is a plain :class:`APIError`;
* :class:`TransportError` is raised when no HTTP answer arrived at all (refused, reset, timed out).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson


class TransportError(Exception):
    """The request got no HTTP answer (connection refused or reset, timeout)."""


class APIError(Exception):
    """The server answered with an error status."""

    def __init__(self, code: int, status: Mapping[str, Any], *,
                 retry_after: float | None = None) -> None:
        self.code = code
        self.status = dict(status)
        self.reason = str(status.get("reason", ""))
        self.message = str(status.get("message", "")) or f"HTTP {code}"
        self.retry_after = retry_after
        super().__init__(f"{code} {self.reason}: {self.message}")

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
        return None if value is None else max(float(value), 0.0)
    except ValueError:
        return None


def error_from(code: int, body: bytes, headers: Mapping[str, str]) -> APIError:
    """The typed error for an HTTP error answer."""
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
    return cls(code, status, retry_after=retry)
