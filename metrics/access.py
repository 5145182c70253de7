"""Who may read ``/metrics``: bearer tokens the API server vouches for, and only those it allows.

What controller-runtime's ``filters.WithAuthenticationAndAuthorization`` does around its metrics
handler, with the same caching as the k8s.io/apiserver delegating authenticator and authorizer
it configures:

1. **Authentication.** The request's ``Authorization: Bearer <token>`` (parsed as
   k8s.io/apiserver's bearer-token authenticator does) goes to the API server as a TokenReview.
   No token, or one the server does not authenticate: **401**. Answers (authenticated or not)
   are cached for :attr:`AccessOptions.authentication_ttl` (1 minute, controller-runtime's
   ``CacheTTL``), keyed by a keyed hash of the token — tokens are never kept, logged or echoed.
2. **Authorization.** The user, groups, uid and extra the review returned go to the API server
   as a SubjectAccessReview of ``nonResourceAttributes {path, verb}`` (the request's path and
   lower-cased method: ``get /metrics``). Not allowed: **403**. Allowed answers are cached
   for 5 minutes, denials for 30 seconds (controller-runtime's ``AllowCacheTTL`` and
   ``DenyCacheTTL``).
3. A review the API server could not answer (unreachable, 5xx, a refusal of the review itself)
   is **500**, never cached, and logged without the token.

Both caches are bounded (:attr:`AccessOptions.max_entries`, least recently used out first), so
a stream of made-up tokens costs one review each and evicts, never grows the process.

This module only decides; the reviews are asked through a :class:`Reviewer` (the framework's,
:mod:`ambient_ctrl.reviews`, sends them with the operator's own credentials).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

from cachetools import TLRUCache

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class User:
    """An authenticated identity, as a TokenReview's ``status.user`` gives it."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """``status.user.extra`` as sorted (key, values) pairs (hashable: part of a cache key)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """A SubjectAccessReview's answer."""

    allowed: bool
    reason: str = ""


class ReviewError(Exception):
    """The API server did not answer a review (unreachable, 5xx, the review refused)."""


class Reviewer(Protocol):
    """Asks the API server. Both methods raise :class:`ReviewError` when it cannot answer."""

    def authenticate(self, token: str) -> User | None:
        """The user a bearer token belongs to, or None if the server does not accept it."""
        ...

    def authorize(self, user: User, verb: str, path: str) -> Decision:
        """Whether ``user`` may ``verb`` the non-resource URL ``path``."""
        ...


@dataclass(frozen=True, slots=True)
class AccessOptions:
    """Cache lifetimes and bounds (defaults: controller-runtime's)."""

    authentication_ttl: float = 60.0
    """Seconds a TokenReview's answer (authenticated or not) is reused."""
    allow_ttl: float = 300.0
    """Seconds an allowing SubjectAccessReview is reused."""
    deny_ttl: float = 30.0
    """Seconds a denying SubjectAccessReview is reused."""
    max_entries: int = 4096
    """Answers each cache keeps at most (least recently used evicted first)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is not served: the HTTP status and a short plain-text body."""

    status: int
    message: str


UNAUTHORIZED = Refusal(401, "Unauthorized")
_NO_USER = object()
"""Cached for a token the server did not authenticate (None would read as a cache miss)."""


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization`` header value, as k8s.io/apiserver's bearer-token
    authenticator reads it: ``Bearer`` (any case), one space, a non-empty token."""
    parts = (header or "").strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


class AccessFilter:
    """Decides whether a ``/metrics`` request is served (see the module docstring).

    Thread-safe: the observability server calls :meth:`check` from a thread per connection.
    Reviews run outside the lock, so one slow review delays only its own request.
    """

    def __init__(self, reviewer: Reviewer, *, options: AccessOptions = AccessOptions(),
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if options.max_entries < 1:
            raise ValueError("the caches need room for at least one answer")
        self._reviewer = reviewer
        self._options = options
        self._lock = threading.Lock()
        self._key = secrets.token_bytes(32)
        """Per-process key of the token hashes: the cache holds no token, nor a plain digest
        of one that could be checked against a leaked token offline."""
        self._tokens: TLRUCache[bytes, Any] = TLRUCache(
            options.max_entries, lambda _k, _v, now: now + options.authentication_ttl,
            timer=monotonic)
        self._decisions: TLRUCache[Hashable, Decision] = TLRUCache(
            options.max_entries,
            lambda _k, d, now: now + (options.allow_ttl if d.allowed else options.deny_ttl),
            timer=monotonic)

    def check(self, method: str, path: str, authorization: str | None) -> Refusal | None:
        """None to serve the request, else the refusal to answer with."""
        token = bearer_token(authorization)
        if token is None:
            return UNAUTHORIZED
        try:
            user = self._authenticate(token)
        except Exception as error:
            log.error("authenticating a metrics request failed",
                      extra={"error": _scrub(error, token)})
            return Refusal(500, "Authentication failed")
        if user is None:
            log.debug("metrics request refused: the token was not authenticated")
            return UNAUTHORIZED
        verb = method.lower()
        try:
            decision = self._authorize(user, verb, path)
        except Exception as error:
            log.error("authorizing a metrics request failed",
                      extra={"user": user.name, "error": _scrub(error, token)})
            return Refusal(500, f"Authorization for user {user.name} failed")
        if not decision.allowed:
            log.debug("metrics request refused", extra={"user": user.name, "verb": verb,
                                                         "path": path,
                                                         "reason": decision.reason})
            return Refusal(403, f"Authorization denied for user {user.name}")
        return None

    def _authenticate(self, token: str) -> User | None:
        key = hmac.new(self._key, token.encode(), hashlib.sha256).digest()
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None:
            return None if cached is _NO_USER else cached
        user = self._reviewer.authenticate(token)
        with self._lock:
            self._tokens[key] = _NO_USER if user is None else user
        return user

    def _authorize(self, user: User, verb: str, path: str) -> Decision:
        key = (user, verb, path)
        with self._lock:
            cached = self._decisions.get(key)
        if cached is not None:
            return cached
        decision = self._reviewer.authorize(user, verb, path)
        with self._lock:
            self._decisions[key] = decision
        return decision


def _scrub(error: BaseException, token: str) -> str:
    """The error's text, with the token cut out should anything have echoed it."""
    return f"{type(error).__name__}: {error}".replace(token, "<token>")
