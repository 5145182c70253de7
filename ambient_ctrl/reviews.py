"""TokenReview and SubjectAccessReview through the API server: who a bearer token is, and
whether that user may do something.

:class:`APIServerReviewer` is the :class:`metrics.access.Reviewer` of the manager's secure
metrics (controller-runtime's ``filters.WithAuthenticationAndAuthorization`` asks the same two
reviews through its authentication.k8s.io/v1 and authorization.k8s.io/v1 clients). It sends
them with the operator's own credentials, which need ``create`` on ``tokenreviews`` and
``subjectaccessreviews`` (config/rbac's metrics-auth ClusterRole).

Each review gets :data:`REVIEW_TIMEOUT` seconds (controller-runtime's
``TokenAccessReviewTimeout``), 429 and 5xx with a Retry-After retried within it by the
transport. A review the server does not answer raises :class:`metrics.access.ReviewError`
with the status or the transport's reason — never the request body, which holds the token.
"""

from __future__ import annotations

import logging
from typing import Any

from informers.errors import APIError, TransportError
from informers.rest import Transport
from metrics.access import Decision, ReviewError, User

log = logging.getLogger(__name__)

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
REVIEW_TIMEOUT = 10.0


class APIServerReviewer:
    """Asks the API server behind ``transport`` (thread-safe, as the transport is)."""

    def __init__(self, transport: Transport, *, timeout: float = REVIEW_TIMEOUT) -> None:
        self._transport = transport
        self._timeout = timeout

    def authenticate(self, token: str) -> User | None:
        review = self._create(TOKEN_REVIEWS, {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": token}}, "TokenReview")
        status = review.get("status") or {}
        if not status.get("authenticated"):
            log.debug("token not authenticated", extra={"error": status.get("error", "")})
            return None
        user = status.get("user") or {}
        extra = user.get("extra") or {}
        return User(name=str(user.get("username", "")), uid=str(user.get("uid", "")),
                    groups=tuple(str(g) for g in user.get("groups") or ()),
                    extra=tuple(sorted((str(k), tuple(str(v) for v in values or ()))
                                       for k, values in extra.items())))

    def authorize(self, user: User, verb: str, path: str) -> Decision:
        spec: dict[str, Any] = {"user": user.name,
                                "nonResourceAttributes": {"path": path, "verb": verb}}
        if user.uid:
            spec["uid"] = user.uid
        if user.groups:
            spec["groups"] = list(user.groups)
        if user.extra:
            spec["extra"] = {key: list(values) for key, values in user.extra}
        review = self._create(SUBJECT_ACCESS_REVIEWS, {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": spec}, "SubjectAccessReview")
        status = review.get("status") or {}
        allowed = bool(status.get("allowed")) and not status.get("denied")
        return Decision(allowed, str(status.get("reason") or status.get("evaluationError")
                                     or ""))

    def _create(self, path: str, body: dict[str, Any], kind: str) -> dict[str, Any]:
        try:
            return self._transport.json("POST", path, verb="POST", body=body,
                                        timeout=self._timeout)
        except APIError as error:  # the server's Status: code, reason, message (no token)
            raise ReviewError(f"{kind} refused: {error}") from None
        except TransportError as error:
            raise ReviewError(f"{kind} not answered: {error}") from None
        except ValueError as error:  # an answer that is not JSON
            raise ReviewError(f"{kind} answer unreadable: {error}") from None
