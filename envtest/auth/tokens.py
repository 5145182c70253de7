"""TokenRequest: ``POST .../serviceaccounts/{name}/token`` mints a service account token.

As kube-apiserver's TokenREST (``pkg/registry/core/serviceaccount/storage/token.go``) does, in
its order: the body is an ``authentication.k8s.io/v1`` TokenRequest (JSON, or protobuf from
``kubectl create token``); a ``metadata.name``/``namespace`` that differs from the URL's is
invalid (422); the ServiceAccount must exist (404 ``serviceaccounts "x" not found``); an empty
``spec.audiences`` becomes the server's audience (:data:`ISSUER`), an absent
``spec.expirationSeconds`` one hour; ``expirationSeconds`` below 600 or above 2^32 is invalid
(422, ``TokenRequest.authentication.k8s.io "" is invalid``); a ``boundObjectRef`` must name a Pod
(running as this service account) or Secret that exists, with its UID when one is given (409
otherwise). ``ServerOptions.max_token_expiration`` plays ``--service-account-max-token-expiration``:
longer requests are shortened to it, with a warning (0, kube's default, caps nothing).

The answer is 201 with the TokenRequest: metadata name, namespace and creationTimestamp, the
defaulted spec, and ``status.token`` with ``status.expirationTimestamp`` (second precision,
UTC). The token is a compact JWT with kube's claims — ``iss``, ``sub``
(``system:serviceaccount:<ns>:<name>``), ``aud``, ``exp``, ``iat``, ``nbf``, a unique ``jti``
(so every call mints a different token) and ``kubernetes.io`` (namespace, service account name
and uid, the bound pod or secret) — signed HS256 with a key random per server
(``Cluster.signing_key``; kube signs RS256 with the service-account key, for which this
standard-library-only server has no RSA). :func:`verify` checks one. Nothing here
authenticates requests: every client of this server is an administrator.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from typing import Any

import orjson

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.codecs.body import decode_body
from envtest.errors import Cause
from envtest.http.protocol import Request, Response
from envtest.kinds.objects import check_type_meta, new_uid
from envtest.kinds.registry import ResourceType
from envtest.schema import fieldvalidation
from foundation.clock import rfc3339

TOKEN_REQUEST = ResourceType("authentication.k8s.io", "v1", "tokenrequests", "TokenRequest",
                             True)
"""The kind the subresource takes and gives (not a resource of its own: nothing lists it)."""
ISSUER = "https://kubernetes.default.svc.cluster.local"
"""The issuer, and the default audience (a kubeadm or kind cluster's)."""
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 10 * 60
MAX_EXPIRATION = 1 << 32
_INT64 = range(-(1 << 63), 1 << 63)
_QUALIFIED_KIND = f"{TOKEN_REQUEST.kind}.{TOKEN_REQUEST.group}"


def create(cluster: Cluster, target: Target, request: Request) -> Response:
    """The ``create`` verb of ``serviceaccounts/token``."""
    mode = fieldvalidation.directive(request, "CreateOptions")
    body = decode_body(request)
    warnings = fieldvalidation.check(TOKEN_REQUEST, body, mode) if isinstance(body, dict) else []
    meta = check_type_meta(TOKEN_REQUEST, body)
    name, namespace = target.name, target.namespace
    for field, wanted in (("name", name), ("namespace", namespace)):
        given = meta.get(field)
        if given and given != wanted:
            raise _invalid(name, Cause(f"metadata.{field}", f'Invalid value: "{given}": must '
                                       f"match the service account {field} if specified"))
    account = cluster.store.get(target.rtype.store, (namespace, name))
    if account is None:
        raise errors.not_found(target.rtype.plural, target.rtype.group, name)
    spec = _spec(body.get("spec"))
    causes = expiration_causes(spec["expirationSeconds"])
    if causes:
        raise _invalid("", *causes)
    bound = _bound(cluster, namespace, name, spec["boundObjectRef"])
    cap = cluster.options.max_token_expiration
    if 0 < cap < spec["expirationSeconds"]:
        warnings.append(f"requested expiration of {spec['expirationSeconds']} seconds "
                        f"shortened to {cap} seconds")
        spec["expirationSeconds"] = cap
    moment = cluster.clock.now().replace(microsecond=0)
    issued = int(moment.timestamp())
    claims = {
        "aud": spec["audiences"], "exp": issued + spec["expirationSeconds"], "iat": issued,
        "iss": ISSUER, "jti": new_uid(), "nbf": issued,
        "sub": f"system:serviceaccount:{namespace}:{name}",
        "kubernetes.io": {"namespace": namespace, **bound,
                          "serviceaccount": {"name": name, "uid": account.uid}},
    }
    meta.update(name=name, namespace=namespace, creationTimestamp=rfc3339(moment))
    answer = {"kind": TOKEN_REQUEST.kind, "apiVersion": TOKEN_REQUEST.api_version,
              "metadata": meta, "spec": spec, "status": {
                  "token": sign(claims, cluster.signing_key),
                  "expirationTimestamp": rfc3339(
                      moment + dt.timedelta(seconds=spec["expirationSeconds"]))}}
    return fieldvalidation.with_warnings(Response(201, orjson.dumps(answer)), warnings)


def expiration_causes(seconds: int) -> list[Cause]:
    """``ValidateTokenRequest``: at least ten minutes, at most 2^32 seconds."""
    if seconds < MIN_EXPIRATION:
        return [Cause("spec.expirationSeconds", f"Invalid value: {seconds}: may not specify a "
                      "duration less than 10 minutes")]
    if seconds > MAX_EXPIRATION:
        return [Cause("spec.expirationSeconds", f"Invalid value: {seconds}: may not specify a "
                      "duration larger than 2^32 seconds")]
    return []


def _spec(spec: Any) -> dict[str, Any]:
    """The defaulted spec; 400 for what Go's decoder would refuse (wrong types, overflow)."""
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise _undecodable("spec", "must be an object")
    audiences = spec.get("audiences")
    if audiences is not None and (not isinstance(audiences, list)
                                  or not all(isinstance(a, str) for a in audiences)):
        raise _undecodable("spec.audiences", "must be a list of strings")
    seconds = spec.get("expirationSeconds")
    if seconds is None:
        seconds = DEFAULT_EXPIRATION
    elif not isinstance(seconds, int) or isinstance(seconds, bool) or seconds not in _INT64:
        raise _undecodable("spec.expirationSeconds", "must be a 64-bit integer")
    ref = spec.get("boundObjectRef")
    if ref is not None and (not isinstance(ref, dict)
                            or not all(isinstance(v, str) for v in ref.values())):
        raise _undecodable("spec.boundObjectRef", "must be an object of strings")
    return {**spec, "audiences": audiences or [ISSUER], "expirationSeconds": seconds,
            "boundObjectRef": ref}


def _bound(cluster: Cluster, namespace: str, account: str,
           ref: dict[str, str] | None) -> dict[str, Any]:
    """The ``kubernetes.io`` claims of the object a token is bound to; refusals as kube's."""
    if ref is None:
        return {}
    version, kind, name = ref.get("apiVersion", ""), ref.get("kind", ""), ref.get("name", "")
    group = version.rpartition("/")[0] if "/" in version else ""
    if group or kind not in ("Pod", "Secret", "Node"):
        raise errors.bad_request(f'cannot bind token for serviceaccount "{account}" to object '
                                 f'of kind "{group}/{version.rpartition("/")[2]}, '
                                 f'Kind={kind}"')
    if kind == "Node":  # no Node objects are served here
        raise errors.not_found("nodes", "", name)
    plural = kind.lower() + "s"
    stored = cluster.store.get(plural, (namespace, name))
    if stored is None:
        raise errors.not_found(plural, "", name)
    if kind == "Pod":
        pod = stored.load()
        if (pod.get("spec") or {}).get("serviceAccountName", "default") != account:
            raise errors.bad_request(f'cannot bind token for serviceaccount "{account}" to pod '
                                     "running with different serviceaccount name.")
    if ref.get("uid") and ref["uid"] != stored.uid:
        raise errors.conflict(kind, "", name, f"the UID in the bound object reference "
                              f"({ref['uid']}) does not match the UID in record. The object "
                              "might have been deleted and then recreated")
    return {kind.lower(): {"name": name, "uid": stored.uid}}


def _invalid(name: str, *causes: Cause) -> errors.APIError:
    """kube's ``NewInvalid`` for the TokenRequest group-kind (its message names both)."""
    error = errors.invalid(TOKEN_REQUEST.kind, TOKEN_REQUEST.group, name, list(causes))
    error.message = error.message.replace(TOKEN_REQUEST.kind, _QUALIFIED_KIND, 1)
    return error


def _undecodable(field: str, problem: str) -> errors.APIError:
    return errors.bad_request(f'TokenRequest in version "v1" cannot be handled as a '
                              f"TokenRequest: {field}: {problem}")


# JWT (RFC 7519, compact JWS with HMAC-SHA256) -------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(key: bytes) -> str:
    """The ``kid`` header: a digest of the key, as kube names its keys by digest."""
    return _b64(hashlib.sha256(b"kid:" + key).digest())


def sign(claims: dict[str, Any], key: bytes) -> str:
    """``header.payload.signature``; claims serialised with sorted keys, as go-jose does."""
    header = _b64(orjson.dumps({"alg": "HS256", "kid": key_id(key)}))
    payload = _b64(orjson.dumps(claims, option=orjson.OPT_SORT_KEYS))
    signed = f"{header}.{payload}"
    return f"{signed}.{_b64(hmac.new(key, signed.encode(), hashlib.sha256).digest())}"


def verify(token: str, key: bytes) -> dict[str, Any] | None:
    """The claims of a token this key signed (expiry not checked), else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    expected = hmac.new(key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(_unb64(parts[2]), expected):
            return None
        claims = orjson.loads(_unb64(parts[1]))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return claims if isinstance(claims, dict) else None
