"""The /metrics access filter: bearer tokens, 401/403/500/None, and its two caches (lifetimes
on a fake clock, bounds, what is never cached), with a reviewer that records what it is
asked."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest

from foundation.clock import FakeClock
from metrics.access import (
    AccessFilter,
    AccessOptions,
    Decision,
    ReviewError,
    User,
    bearer_token,
)

ALICE = User("system:serviceaccount:monitoring:prometheus", uid="u-1",
             groups=("system:serviceaccounts", "system:authenticated"),
             extra=(("authentication.kubernetes.io/credential-id", ("JTI=1",)),))
BOB = User("bob", groups=("system:authenticated",))
SECRET = "s3cr3t-token-value"


@dataclass
class FakeReviewer:
    users: dict[str, User] = field(default_factory=lambda: {SECRET: ALICE, "bob": BOB})
    allowed: set[str] = field(default_factory=lambda: {ALICE.name})
    fail_authn: Exception | None = None
    fail_authz: Exception | None = None
    authentications: list[str] = field(default_factory=list)
    authorizations: list[tuple[User, str, str]] = field(default_factory=list)

    def authenticate(self, token: str) -> User | None:
        self.authentications.append(token)
        if self.fail_authn is not None:
            raise self.fail_authn
        return self.users.get(token)

    def authorize(self, user: User, verb: str, path: str) -> Decision:
        self.authorizations.append((user, verb, path))
        if self.fail_authz is not None:
            raise self.fail_authz
        ok = user.name in self.allowed and verb == "get"
        return Decision(ok, "RBAC: allowed by test" if ok else "")


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def reviewer() -> FakeReviewer:
    return FakeReviewer()


@pytest.fixture()
def access(reviewer: FakeReviewer, clock: FakeClock) -> AccessFilter:
    return AccessFilter(reviewer, monotonic=clock.monotonic)


def status(refusal: object) -> int:
    return 200 if refusal is None else refusal.status  # type: ignore[attr-defined]


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER abc", "abc"),
    ("  Bearer abc  ", "abc"), ("Bearer abc extra", "abc"),
    (None, None), ("", None), ("Bearer", None), ("Bearer ", None), ("Basic abc", None),
    ("Bearer  abc", None),  # two spaces: the token would be empty, as Go's SplitN sees it
    ("Token abc", None),
])
def test_bearer_token_is_read_as_kubernetes_reads_it(header: str | None,
                                                     token: str | None) -> None:
    assert bearer_token(header) == token


def test_no_token_is_401_without_asking_the_server(access: AccessFilter,
                                                   reviewer: FakeReviewer) -> None:
    for header in (None, "", "Basic dXNlcjpwYXNz", "Bearer "):
        refusal = access.check("GET", "/metrics", header)
        assert refusal is not None and (refusal.status, refusal.message) == (401,
                                                                             "Unauthorized")
    assert reviewer.authentications == [] and reviewer.authorizations == []


def test_an_unknown_token_is_401_and_never_authorized(access: AccessFilter,
                                                      reviewer: FakeReviewer) -> None:
    assert status(access.check("GET", "/metrics", "Bearer garbage")) == 401
    assert reviewer.authentications == ["garbage"]
    assert reviewer.authorizations == []


def test_allowed_user_passes_with_its_whole_identity(access: AccessFilter,
                                                     reviewer: FakeReviewer) -> None:
    assert access.check("GET", "/metrics", f"Bearer {SECRET}") is None
    # The SubjectAccessReview gets the user as the TokenReview gave it, the lower-cased
    # method as the verb and the path.
    assert reviewer.authorizations == [(ALICE, "get", "/metrics")]


def test_denied_user_is_403_naming_the_user(access: AccessFilter) -> None:
    refusal = access.check("GET", "/metrics", "Bearer bob")
    assert refusal is not None
    assert (refusal.status, refusal.message) == (403, "Authorization denied for user bob")


def test_the_method_is_the_verb(access: AccessFilter, reviewer: FakeReviewer) -> None:
    assert status(access.check("HEAD", "/metrics", f"Bearer {SECRET}")) == 403
    assert reviewer.authorizations[-1] == (ALICE, "head", "/metrics")


def test_answers_are_cached_for_their_lifetimes(access: AccessFilter, reviewer: FakeReviewer,
                                                clock: FakeClock) -> None:
    for _ in range(3):
        assert access.check("GET", "/metrics", f"Bearer {SECRET}") is None
        assert status(access.check("GET", "/metrics", "Bearer bob")) == 403
        assert status(access.check("GET", "/metrics", "Bearer garbage")) == 401
    assert sorted(reviewer.authentications) == sorted([SECRET, "bob", "garbage"])
    assert len(reviewer.authorizations) == 2
    # 31 s: the denial expired (30 s), the allow (5 min) and the tokens (1 min) did not.
    clock.step(31)
    access.check("GET", "/metrics", f"Bearer {SECRET}")
    access.check("GET", "/metrics", "Bearer bob")
    access.check("GET", "/metrics", "Bearer garbage")
    assert len(reviewer.authentications) == 3
    assert reviewer.authorizations[2:] == [(BOB, "get", "/metrics")]
    # 61 s: every token is reviewed again (the unauthenticated one too); the allow holds.
    clock.step(30)
    access.check("GET", "/metrics", f"Bearer {SECRET}")
    access.check("GET", "/metrics", "Bearer garbage")
    assert reviewer.authentications[3:] == [SECRET, "garbage"]
    assert len(reviewer.authorizations) == 3
    # 5 min after the first: the allow expires.
    clock.step(301 - 61)
    access.check("GET", "/metrics", f"Bearer {SECRET}")
    assert reviewer.authorizations[3:] == [(ALICE, "get", "/metrics")]


def test_a_revoked_permission_takes_effect_once_the_allow_expires(
        access: AccessFilter, reviewer: FakeReviewer, clock: FakeClock) -> None:
    assert access.check("GET", "/metrics", f"Bearer {SECRET}") is None
    reviewer.allowed.clear()
    clock.step(299)
    assert access.check("GET", "/metrics", f"Bearer {SECRET}") is None  # still cached
    clock.step(2)
    assert status(access.check("GET", "/metrics", f"Bearer {SECRET}")) == 403


def test_caches_are_bounded(reviewer: FakeReviewer, clock: FakeClock) -> None:
    access = AccessFilter(reviewer, options=AccessOptions(max_entries=3), monotonic=clock.monotonic)
    for i in range(100):
        assert status(access.check("GET", "/metrics", f"Bearer made-up-{i}")) == 401
    assert access.check("GET", "/metrics", f"Bearer {SECRET}") is None
    assert len(access._tokens) == 3  # the cache of token answers never outgrows its bound
    # The least recently used went first: the oldest made-up token is asked about again.
    access.check("GET", "/metrics", "Bearer made-up-0")
    assert reviewer.authentications[-1] == "made-up-0"
    with pytest.raises(ValueError):
        AccessFilter(reviewer, options=AccessOptions(max_entries=0))


def test_the_cache_holds_no_token(access: AccessFilter) -> None:
    access.check("GET", "/metrics", f"Bearer {SECRET}")
    assert all(SECRET.encode() not in key for key in access._tokens)


@pytest.mark.parametrize("stage", ["authn", "authz"])
def test_an_api_server_error_is_500_uncached_and_never_logs_the_token(
        access: AccessFilter, reviewer: FakeReviewer, stage: str,
        caplog: pytest.LogCaptureFixture) -> None:
    # An error whose text carries the token (as a careless client library's could).
    error = ReviewError(f"POST tokenreviews: 503 for token {SECRET}")
    setattr(reviewer, f"fail_{stage}", error)
    with caplog.at_level(logging.DEBUG, logger="metrics.access"):
        refusal = access.check("GET", "/metrics", f"Bearer {SECRET}")
        assert refusal is not None and refusal.status == 500
        assert refusal.message == ("Authentication failed" if stage == "authn" else
                                   f"Authorization for user {ALICE.name} failed")
        assert SECRET not in refusal.message
        # Not cached: once the server answers again, so does the filter.
        setattr(reviewer, f"fail_{stage}", None)
        assert access.check("GET", "/metrics", f"Bearer {SECRET}") is None
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "<token>" in logged and SECRET not in logged
