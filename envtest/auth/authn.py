"""TokenReview: ``POST /apis/authentication.k8s.io/v1/tokenreviews`` says whose a token is.

The server still authenticates no request of its own (every client is an administrator); this
answers the question for those that delegate it, as a metrics endpoint behind controller-runtime's
``WithAuthenticationAndAuthorization`` does. Two kinds of token are known:

* the **administrator's**, ``Cluster.admin_token``, which the server writes into its kubeconfig:
  user ``kubernetes-admin`` (kubeadm's and kind's name), groups ``system:masters`` and
  ``system:authenticated``;
* **service account tokens** this server minted (``serviceaccounts/{name}/token``,
  :mod:`.tokens`: HS256 with the server's key), checked as kube-apiserver's service account
  authenticator checks them: the signature, the issuer, the time (``nbf`` ≤ now < ``exp``, by
  the server's clock, no leeway), the audiences (the review's ``spec.audiences``, else the
  server's own, :data:`.tokens.ISSUER`; the answer's ``status.audiences`` are those the token
  holds), the ServiceAccount still there with the token's uid, and the Pod or Secret it is bound
  to still there with its uid. The user is ``system:serviceaccount:<ns>:<name>`` with the
  account's uid, groups ``system:serviceaccounts``, ``system:serviceaccounts:<ns>`` and
  ``system:authenticated``, and extra ``authentication.kubernetes.io/credential-id``
  (``JTI=<jti>``) plus the bound pod's name and uid, as kube gives them.

Anything else is not authenticated (``status.error`` says why, in kube's words). The answer is
the review with its ``status`` (201), the spec echoed as kube echoes it. :func:`authenticate`
is also what :mod:`.authz` uses to tell who asks a SelfSubjectAccessReview.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

import orjson

from envtest import errors
from envtest.auth.tokens import ISSUER, verify
from envtest.cluster import Cluster, Target
from envtest.codecs.body import decode_body
from envtest.http.protocol import Request, Response
from envtest.kinds.objects import check_type_meta

ADMIN_USER = "kubernetes-admin"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
POD_NAME = "authentication.kubernetes.io/pod-name"
POD_UID = "authentication.kubernetes.io/pod-uid"
_INVALID = "invalid bearer token"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated user, as ``status.user`` of a TokenReview renders it."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"username": self.username}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


ADMIN = UserInfo(ADMIN_USER, groups=(MASTERS, AUTHENTICATED))


@dataclass(frozen=True)
class Authentication:
    """What a token proves: the user (None: not authenticated), the audiences it was accepted
    for, and why not when it was not."""

    user: UserInfo | None
    audiences: tuple[str, ...] = ()
    error: str = ""


def authenticate(cluster: Cluster, token: str,
                 audiences: tuple[str, ...] = ()) -> Authentication:
    """Who ``token`` belongs to, for ``audiences`` (empty: the server's own)."""
    wanted = audiences or (ISSUER,)
    if token and hmac.compare_digest(token.encode(), cluster.admin_token.encode()):
        return Authentication(ADMIN, wanted)
    claims = verify(token, cluster.signing_key)
    if claims is None or claims.get("iss") != ISSUER:
        return Authentication(None, error=_INVALID)
    problem = _time_problem(cluster, claims) or _audience_problem(claims, wanted)
    if problem:
        return Authentication(None, error=f"[{_INVALID}, {problem}]")
    user, problem = _service_account_user(cluster, claims)
    if user is None:
        return Authentication(None, error=f"[{_INVALID}, {problem}]")
    held = _audiences(claims)
    return Authentication(user, tuple(a for a in wanted if a in held))


def create(cluster: Cluster, target: Target, request: Request) -> Response:
    """The ``create`` verb of ``tokenreviews``."""
    review = decode_body(request)
    check_type_meta(target.rtype, review)
    spec = review.get("spec")
    if spec is None:
        spec = review["spec"] = {}
    if not isinstance(spec, dict):
        raise errors.bad_request('TokenReview in version "v1" cannot be handled as a '
                                 "TokenReview: spec: must be an object")
    token, audiences = spec.get("token"), spec.get("audiences")
    if token is not None and not isinstance(token, str):
        raise errors.bad_request('TokenReview in version "v1" cannot be handled as a '
                                 "TokenReview: spec.token: must be a string")
    if audiences is not None and (not isinstance(audiences, list)
                                  or not all(isinstance(a, str) for a in audiences)):
        raise errors.bad_request('TokenReview in version "v1" cannot be handled as a '
                                 "TokenReview: spec.audiences: must be a list of strings")
    if not token:
        raise errors.bad_request("token is required for TokenReview in authentication")
    result = authenticate(cluster, token, tuple(audiences or ()))
    status: dict[str, Any] = {"user": {}}
    if result.user is not None:
        status = {"authenticated": True, "user": result.user.render(),
                  "audiences": list(result.audiences)}
    elif result.error:
        status["error"] = result.error
    review["metadata"] = {"creationTimestamp": None}
    review["status"] = status
    return Response(201, orjson.dumps(review))


def _time_problem(cluster: Cluster, claims: dict[str, Any]) -> str:
    now = cluster.clock.now().timestamp()
    expires, not_before = claims.get("exp"), claims.get("nbf")
    if not isinstance(expires, int) or now >= expires:
        return "service account token has expired"
    if isinstance(not_before, int) and now < not_before:
        return "service account token is not valid yet"
    return ""


def _audiences(claims: dict[str, Any]) -> list[str]:
    held = claims.get("aud")
    return [held] if isinstance(held, str) else [a for a in held or () if isinstance(a, str)]


def _audience_problem(claims: dict[str, Any], wanted: tuple[str, ...]) -> str:
    held = _audiences(claims)
    if any(a in held for a in wanted):
        return ""
    return (f"token audiences {_go_quote(held)} is invalid for the target audiences "
            f"{_go_quote(list(wanted))}")


def _service_account_user(cluster: Cluster,
                          claims: dict[str, Any]) -> tuple[UserInfo | None, str]:
    private = claims.get("kubernetes.io")
    if not isinstance(private, dict):
        return None, "token lacks the kubernetes.io claims"
    namespace = str(private.get("namespace", ""))
    account = private.get("serviceaccount") or {}
    name, uid = str(account.get("name", "")), str(account.get("uid", ""))
    if claims.get("sub") != f"system:serviceaccount:{namespace}:{name}":
        return None, "token subject does not match its service account"
    stored = cluster.store.get("serviceaccounts", (namespace, name))
    if stored is None:
        return None, f"service account {namespace}/{name} has been deleted"
    if stored.uid != uid:
        return None, f"service account UID ({stored.uid}) does not match claim ({uid})"
    extra = {CREDENTIAL_ID: [f"JTI={claims.get('jti', '')}"]}
    for kind in ("pod", "secret"):
        bound = private.get(kind)
        if not isinstance(bound, dict):
            continue
        obj = cluster.store.get(f"{kind}s", (namespace, str(bound.get("name", ""))))
        if obj is None:
            return None, f"{kind} {namespace}/{bound.get('name')} has been deleted"
        if obj.uid != bound.get("uid"):
            return None, (f"{kind} UID ({obj.uid}) does not match claim "
                          f"({bound.get('uid')})")
        if kind == "pod":
            extra.update({POD_NAME: [str(bound["name"])], POD_UID: [obj.uid]})
    groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED)
    return UserInfo(f"system:serviceaccount:{namespace}:{name}", uid, groups, extra), ""


def _go_quote(values: list[str]) -> str:
    """A list of strings as Go's ``%q`` prints a ``[]string``: ``["a" "b"]``."""
    return "[" + " ".join(orjson.dumps(v).decode() for v in values) + "]"
