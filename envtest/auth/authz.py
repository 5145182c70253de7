"""SubjectAccessReviews: the stored RBAC objects evaluated, as kube-apiserver's RBAC authorizer
evaluates them — asked, never enforced (every client of this server is still an
administrator).

``POST /apis/authorization.k8s.io/v1/subjectaccessreviews`` (a user, its groups, uid and
extra, and what it wants to do), ``.../namespaces/{ns}/localsubjectaccessreviews`` (the same,
in the URL's namespace) and ``.../selfsubjectaccessreviews`` (the caller, as its bearer token
says — :mod:`.authn`; a request without a token this server knows is the administrator's, as
every request is here). The answer is the review with ``status.allowed`` and ``status.reason``.

The evaluation is the RBAC authorizer's (``plugin/pkg/auth/authorizer/rbac``): the group
``system:masters`` is allowed everything (the privileged-group authorizer before RBAC, reason
empty); otherwise every ClusterRoleBinding, and for a namespaced request every RoleBinding of
its namespace, whose subjects name the user — ``User`` by name, ``Group`` by one of its
groups, ``ServiceAccount`` by ``system:serviceaccount:<ns>:<name>`` (a RoleBinding's subject
without a namespace: the binding's) — lends the rules of its role (a RoleBinding's ClusterRole
applies in the binding's namespace only). A rule allows a resource request when its verbs,
apiGroups and resources (``resource/subresource``, ``*``, ``*/subresource``) match and its
resourceNames are empty or hold the name; a non-resource request when its verbs match and a
nonResourceURL equals the path or is a prefix ending in ``*``. Allowed: ``RBAC: allowed by
ClusterRoleBinding "b" of ClusterRole "r" to ServiceAccount "name/ns"``. Denied: no reason,
unless a binding names a role that does not exist (``RBAC: clusterrole.rbac.authorization.k8s.io
"x" not found``), as kube answers.

Not here: the bootstrap roles kube-apiserver creates (``system:basic-user``,
``system:discovery``, ``cluster-admin`` ...; only what is stored counts), aggregated
ClusterRoles (no controller fills their rules), and the other authorizers (Node, webhooks).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from envtest import errors
from envtest.auth.authn import ADMIN, MASTERS, UserInfo, authenticate
from envtest.cluster import Cluster, Target
from envtest.codecs.body import decode_body
from envtest.errors import Cause
from envtest.http.protocol import Request, Response
from envtest.kinds.objects import check_type_meta
from envtest.kinds.registry import ResourceType

_RBAC = "rbac.authorization.k8s.io"
_STORES = {kind: f"{kind.lower()}s.{_RBAC}"
           for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")}


@dataclass(frozen=True)
class Attributes:
    """What a review asks about: a resource request, or a non-resource one (``path``)."""

    verb: str
    resource_request: bool
    namespace: str = ""
    group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


def authorize(cluster: Cluster, user: UserInfo, attributes: Attributes) -> Decision:
    """The RBAC authorizer's answer (see the module docstring)."""
    if MASTERS in user.groups:
        return Decision(True)
    problems: list[str] = []
    for source, rule in rules_for(cluster, user, attributes.namespace, problems):
        if rule_allows(rule, attributes):
            return Decision(True, f"RBAC: allowed by {source}")
    if not problems:
        return Decision(False)
    joined = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
    return Decision(False, f"RBAC: {joined}")


def rule_allows(rule: dict[str, Any], attributes: Attributes) -> bool:
    """``RuleAllows``: whether one PolicyRule grants the request."""
    verbs = rule.get("verbs") or ()
    if "*" not in verbs and attributes.verb not in verbs:
        return False
    if not attributes.resource_request:
        return any(url == "*" or url == attributes.path
                   or (url.endswith("*") and attributes.path.startswith(url.rstrip("*")))
                   for url in rule.get("nonResourceURLs") or ())
    groups = rule.get("apiGroups") or ()
    if "*" not in groups and attributes.group not in groups:
        return False
    combined = attributes.resource
    if attributes.subresource:
        combined = f"{attributes.resource}/{attributes.subresource}"
    if not any(r == "*" or r == combined
               or (attributes.subresource and r == f"*/{attributes.subresource}")
               for r in rule.get("resources") or ()):
        return False
    names = rule.get("resourceNames") or ()
    return not names or attributes.name in names


def rules_for(cluster: Cluster, user: UserInfo, namespace: str,
               problems: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(description of the binding, rule) of every rule the user holds for ``namespace``, in
    kube's order: ClusterRoleBindings, then the namespace's RoleBindings."""
    scopes = [("ClusterRoleBinding", "")] + ([("RoleBinding", namespace)] if namespace else [])
    for kind, scope in scopes:
        for _, stored in cluster.store.items(_STORES[kind], scope if kind == "RoleBinding"
                                             else None):
            binding = stored.load()
            subject = next((s for s in binding.get("subjects") or ()
                            if _applies(s, user, scope)), None)
            if subject is None:
                continue
            ref = binding.get("roleRef") or {}
            role = _role(cluster, ref, scope, problems)
            if role is None:
                continue
            name = binding["metadata"]["name"]
            label = f"{name}/{scope}" if scope else name
            source = (f'{kind} "{label}" of {ref.get("kind")} "{ref.get("name")}" to '
                      f"{_describe(subject, scope)}")
            for rule in role.get("rules") or ():
                if isinstance(rule, dict):
                    yield source, rule


def _role(cluster: Cluster, ref: dict[str, Any], namespace: str,
          problems: list[str]) -> dict[str, Any] | None:
    kind, name = ref.get("kind"), str(ref.get("name", ""))
    if kind == "ClusterRole":
        stored = cluster.store.get(_STORES["ClusterRole"], ("", name))
    elif kind == "Role" and namespace:
        stored = cluster.store.get(_STORES["Role"], (namespace, name))
    else:
        problems.append(f"unsupported role reference kind: {kind!r}")
        return None
    if stored is None:
        problems.append(f'{str(kind).lower()}.{_RBAC} "{name}" not found')
        return None
    return stored.load()


def _applies(subject: dict[str, Any], user: UserInfo, namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(user.username == name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        account_namespace = subject.get("namespace") or namespace
        return bool(account_namespace) and (
            user.username == f"system:serviceaccount:{account_namespace}:{name}")
    return False


def _describe(subject: dict[str, Any], namespace: str) -> str:
    name = subject.get("name", "")
    if subject.get("kind") == "ServiceAccount":
        name = f"{name}/{subject.get('namespace') or namespace}"
    return f'{subject.get("kind")} "{name}"'


# the three review kinds ---------------------------------------------------------------------
def create_subject_access_review(cluster: Cluster, target: Target, request: Request
                                 ) -> Response:
    """``create`` of ``subjectaccessreviews`` (and, with the URL's namespace,
    ``localsubjectaccessreviews``)."""
    rtype = target.rtype
    review, spec = _decode(rtype, request)
    causes = _spec_causes(spec)
    if rtype.namespaced:  # localsubjectaccessreviews
        given = (spec.get("resourceAttributes") or {}).get("namespace", "")
        if spec.get("nonResourceAttributes"):
            causes.append(Cause("spec.nonResourceAttributes", "Invalid value: \"object\": "
                                "disallowed on this kind of request"))
        if given and given != target.namespace:
            causes.append(Cause("spec.resourceAttributes.namespace",
                                f'Invalid value: "{given}": must match metadata.namespace'))
    if not spec.get("user") and not spec.get("groups"):
        causes.append(Cause("spec.user", 'Invalid value: "": at least one of user or group '
                                         "must be specified"))
    if causes:
        raise errors.invalid(rtype.kind, rtype.group, "", causes)
    extra = spec.get("extra") or {}
    user = UserInfo(str(spec.get("user") or ""), str(spec.get("uid") or ""),
                    tuple(str(g) for g in spec.get("groups") or ()),
                    {str(k): [str(v) for v in vs or ()] for k, vs in extra.items()})
    return _answer(cluster, review, user, target.namespace)


def create_self_subject_access_review(cluster: Cluster, target: Target, request: Request
                                      ) -> Response:
    """``create`` of ``selfsubjectaccessreviews``: the caller's own permissions."""
    review, spec = _decode(target.rtype, request)
    causes = _spec_causes(spec)
    if causes:
        raise errors.invalid(target.rtype.kind, target.rtype.group, "", causes)
    return _answer(cluster, review, caller(cluster, request), "")


def caller(cluster: Cluster, request: Request) -> UserInfo:
    """Who sent ``request``, as its bearer token says; a request without a token this server
    knows is the administrator's, as every request is."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    user = None
    if scheme.lower() == "bearer" and token:
        user = authenticate(cluster, token.strip()).user
    return user or ADMIN


def _decode(rtype: ResourceType, request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    review = decode_body(request)
    check_type_meta(rtype, review)
    spec = review.get("spec")
    if not isinstance(spec, dict):
        raise errors.bad_request(f'{rtype.kind} in version "v1" cannot be handled as a '
                                 f"{rtype.kind}: spec: must be an object")
    for key in ("resourceAttributes", "nonResourceAttributes", "extra"):
        value = spec.get(key)
        if value is not None and not isinstance(value, dict):
            raise errors.bad_request(f'{rtype.kind} in version "v1" cannot be handled as a '
                                     f"{rtype.kind}: spec.{key}: must be an object")
    groups = spec.get("groups")
    if groups is not None and (not isinstance(groups, list)
                               or not all(isinstance(g, str) for g in groups)):
        raise errors.bad_request(f'{rtype.kind} in version "v1" cannot be handled as a '
                                 f"{rtype.kind}: spec.groups: must be a list of strings")
    return review, spec


def _spec_causes(spec: dict[str, Any]) -> list[Cause]:
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if resource is not None and non_resource is not None:
        return [Cause("spec.nonResourceAttributes", 'Invalid value: "object": cannot be '
                      "specified in combination with resourceAttributes")]
    if resource is None and non_resource is None:
        return [Cause("spec.resourceAttributes", 'Invalid value: "null": exactly one of '
                      "nonResourceAttributes or resourceAttributes must be specified")]
    return []


def _attributes(spec: dict[str, Any], namespace: str) -> Attributes:
    resource = spec.get("resourceAttributes")
    if resource is None:
        non_resource = spec["nonResourceAttributes"]
        return Attributes(verb=str(non_resource.get("verb") or ""), resource_request=False,
                          path=str(non_resource.get("path") or ""))
    return Attributes(verb=str(resource.get("verb") or ""), resource_request=True,
                      namespace=namespace or str(resource.get("namespace") or ""),
                      group=str(resource.get("group") or ""),
                      resource=str(resource.get("resource") or ""),
                      subresource=str(resource.get("subresource") or ""),
                      name=str(resource.get("name") or ""))


def _answer(cluster: Cluster, review: dict[str, Any], user: UserInfo,
            namespace: str) -> Response:
    decision = authorize(cluster, user, _attributes(review["spec"], namespace))
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    metadata: dict[str, Any] = {"creationTimestamp": None}
    if namespace:
        metadata["namespace"] = namespace
    review["metadata"] = metadata
    review["status"] = status
    return Response(201, orjson.dumps(review))
