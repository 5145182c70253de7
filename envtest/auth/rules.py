"""SelfSubjectRulesReviews: what the caller may do in a namespace, as a list of rules
(``kubectl auth can-i --list``).

``POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews`` with ``spec.namespace`` answers
the review with ``status.resourceRules`` and ``status.nonResourceRules``: for ``system:masters``
(the administrator, which every request without a token this server knows is) everything, as
kube's privileged-group authorizer says; otherwise the rules of every ClusterRoleBinding and of
the namespace's RoleBindings that name the caller (:func:`.authz.rules_for`), split as kube's
RBAC ``RulesFor`` splits them; a binding to a missing role makes the answer ``incomplete``
with the reason in ``evaluationError``. Like the access reviews, it is asked, never enforced.
"""

from __future__ import annotations

from typing import Any

import orjson

from envtest import errors
from envtest.auth.authn import MASTERS
from envtest.auth.authz import caller, rules_for
from envtest.cluster import Cluster, Target
from envtest.codecs.body import decode_body
from envtest.http.protocol import Request, Response
from envtest.kinds.objects import check_type_meta

_EVERYTHING = {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
               "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}


def create_self_subject_rules_review(cluster: Cluster, target: Target, request: Request
                                     ) -> Response:
    review = decode_body(request)
    check_type_meta(target.rtype, review)
    spec = review.get("spec")
    namespace = spec.get("namespace") if isinstance(spec, dict) else None
    if not namespace or not isinstance(namespace, str):
        raise errors.bad_request("no namespace on request")
    user = caller(cluster, request)
    if MASTERS in user.groups:
        status: dict[str, Any] = {**orjson.loads(orjson.dumps(_EVERYTHING)),
                                  "incomplete": False}
    else:
        problems: list[str] = []
        resource_rules, non_resource_rules = [], []
        for _, rule in rules_for(cluster, user, namespace, problems):
            verbs = list(rule.get("verbs") or ())
            if rule.get("resources"):
                entry = {"verbs": verbs, "apiGroups": list(rule.get("apiGroups") or ()),
                         "resources": list(rule["resources"])}
                if rule.get("resourceNames"):
                    entry["resourceNames"] = list(rule["resourceNames"])
                resource_rules.append(entry)
            if rule.get("nonResourceURLs"):
                non_resource_rules.append({"verbs": verbs,
                                           "nonResourceURLs": list(rule["nonResourceURLs"])})
        status = {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
                  "incomplete": bool(problems)}
        if problems:
            status["evaluationError"] = ", ".join(problems)
    review["metadata"] = {"creationTimestamp": None}
    review["status"] = status
    return Response(201, orjson.dumps(review))
