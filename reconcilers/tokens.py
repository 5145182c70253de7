"""The runner's identity: its ServiceAccount, Role, RoleBinding and the token Secret.

Upstream provisions them when a run starts and the Secret ``ambient-runner-token-<n>`` is
missing (``shared/UPSTREAM-CONTRACT.md`` §4.9-4.11): the ServiceAccount
``ambient-session-<n>`` with its Role and RoleBinding, a ``k8s-token`` from a TokenRequest for
that ServiceAccount, a random ``agui-token``, and the session annotations ``runner-token-secret``
and ``runner-sa``. While a run lasts, ``k8s-token`` is refreshed every 45 minutes (and, unlike
upstream, before a new run whose token has gone stale).

What is not the session's is never changed: an object of one of these names that the session
does not own makes provisioning fail (:class:`TokenError`, permanent), where upstream would
overwrite it. An answer that says the request is wrong (4xx) is permanent; one that says the
server is in trouble (429, 5xx, no answer) is not, and the reconcile is retried with backoff.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ambient_ctrl.client import Client
from foundation.clock import rfc3339
from informers.errors import AlreadyExists, APIError, NotFound, ServerError, TooManyRequests
from informers.resource import SECRETS, Resource

from . import children
from .resources import (
    CREATED_BY_USER_ID,
    ROLE_BINDINGS,
    ROLES,
    RUNNER_SA,
    RUNNER_TOKEN_SECRET,
    SERVICE_ACCOUNTS,
    service_account_name,
    token_secret_name,
)

log = logging.getLogger(__name__)


class TokenError(Exception):
    """Provisioning or refreshing the runner's token failed; ``permanent`` when asking again
    cannot help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


def transient(error: APIError) -> bool:
    """Whether an API error may go away by itself (the request itself was fine)."""
    return isinstance(error, ServerError | TooManyRequests)


def provision(client: Client, session: Mapping[str, Any], *, now: dt.datetime,
              new_token: Callable[[], str] = lambda: str(uuid.uuid4())) -> dict[str, str]:
    """Create the runner's identity and its token Secret; the session annotations to set."""
    namespace, name = children.meta(session)
    ensure_identity(client, session)
    account = service_account_name(name)
    k8s_token = request_token(client, namespace, account)
    secret = children.token_secret(session, k8s_token=k8s_token, agui_token=new_token(),
                                   refreshed_at=rfc3339(now))
    secret_name = secret["metadata"]["name"]
    try:
        _call(lambda: client.create(SECRETS, secret), f"create Secret {secret_name}")
    except AlreadyExists:
        actual = _call(lambda: client.resource(SECRETS).get(secret_name, namespace),
                       f"read Secret {secret_name}")
        _check_owner(actual, session, "Secret", secret_name)
        _call(lambda: client.patch(SECRETS, secret_name, {
            "metadata": {"annotations": secret["metadata"]["annotations"]},
            "data": secret["data"]}, namespace), f"update Secret {secret_name}")
    log.debug("runner token provisioned", extra={"secret": secret_name,
                                                 "service_account": account})
    return {RUNNER_TOKEN_SECRET: secret_name, RUNNER_SA: account}


def refresh(client: Client, session: Mapping[str, Any], *, secret_name: str,
            account: str, now: dt.datetime) -> None:
    """Put a new ``k8s-token`` into the token Secret (the AG-UI token stays)."""
    namespace, _ = children.meta(session)
    try:
        k8s_token = request_token(client, namespace, account)
    except NotFound:
        ensure_identity(client, session)  # the ServiceAccount went: make it again
        k8s_token = request_token(client, namespace, account)
    _call(lambda: client.patch(SECRETS, secret_name,
                               children.refreshed_token_patch(k8s_token, rfc3339(now)),
                               namespace), f"update Secret {secret_name}")
    log.info("runner token refreshed", extra={"secret": secret_name})


def ensure_identity(client: Client, session: Mapping[str, Any]) -> None:
    """The ServiceAccount, Role and RoleBinding, created or brought to what they must be."""
    for resource, desired in ((SERVICE_ACCOUNTS, children.service_account(session)),
                              (ROLES, children.role(session)),
                              (ROLE_BINDINGS, children.role_binding(session))):
        _ensure(client, session, resource, desired)


def _ensure(client: Client, session: Mapping[str, Any], resource: Resource,
            desired: Mapping[str, Any]) -> None:
    name, namespace = desired["metadata"]["name"], desired["metadata"]["namespace"]
    try:
        _call(lambda: client.create(resource, desired), f"create {resource.kind} {name}")
        return
    except AlreadyExists:
        pass
    actual = _call(lambda: client.resource(resource).get(name, namespace),
                   f"read {resource.kind} {name}")
    _check_owner(actual, session, resource.kind, name)
    patch: dict[str, Any] = {}
    if resource == ROLES and actual.get("rules") != desired["rules"]:
        patch["rules"] = desired["rules"]
    wanted = (desired["metadata"].get("annotations") or {}).get(CREATED_BY_USER_ID)
    have = ((actual.get("metadata") or {}).get("annotations") or {}).get(CREATED_BY_USER_ID)
    if resource == SERVICE_ACCOUNTS and wanted and have != wanted:
        patch["metadata"] = {"annotations": {CREATED_BY_USER_ID: wanted}}
    if patch:
        _call(lambda: client.patch(resource, name, patch, namespace),
              f"update {resource.kind} {name}")


def request_token(client: Client, namespace: str, account: str) -> str:
    """A token for ``account`` from a TokenRequest with an empty spec (the API server's
    default audience and lifetime, as upstream asks). NotFound passes through."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    try:
        answer = client.create_subresource(SERVICE_ACCOUNTS, account, "token", body, namespace)
    except NotFound:
        raise
    except APIError as error:
        raise TokenError(f"TokenRequest for ServiceAccount {account}: {error.message}",
                         permanent=not transient(error)) from error
    token = str(((answer.get("status") or {}).get("token")) or "").strip()
    if not token:
        raise TokenError(f"TokenRequest for ServiceAccount {account} returned no token",
                         permanent=False)
    return token


def _check_owner(actual: Mapping[str, Any], session: Mapping[str, Any], kind: str,
                 name: str) -> None:
    uid = session["metadata"]["uid"]
    if not children.owned_by(actual, uid) and children.owned_by_predecessor(actual, session):
        raise TokenError(f"{kind} {name} still belongs to an earlier session of this name; "
                         "waiting for garbage collection to remove it", permanent=False)
    if not children.owned_by(actual, uid):
        raise TokenError(f"{kind} {name} already exists and does not belong to this session; "
                         "it is left alone", permanent=True)


def _call(request: Callable[[], Any], what: str) -> Any:
    """``request()``; an API refusal becomes a :class:`TokenError` naming ``what``
    (AlreadyExists and NotFound pass through for the caller to handle)."""
    try:
        return request()
    except (AlreadyExists, NotFound):
        raise
    except APIError as error:
        raise TokenError(f"{what}: {error.message}", permanent=not transient(error)) from error


def default_names(session: Mapping[str, Any]) -> tuple[str, str]:
    """(token Secret, ServiceAccount) of a session: its annotations, else the defaults."""
    meta = session.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    name = str(meta.get("name", ""))
    secret = str(annotations.get(RUNNER_TOKEN_SECRET) or "").strip() or token_secret_name(name)
    account = str(annotations.get(RUNNER_SA) or "").strip() or service_account_name(name)
    return secret, account
