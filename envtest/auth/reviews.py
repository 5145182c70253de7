"""The review kinds: resources that take a POST and answer it, storing nothing.

``tokenreviews`` (:mod:`.authn`), ``subjectaccessreviews``, ``localsubjectaccessreviews`` and
``selfsubjectaccessreviews`` (:mod:`.authz`), ``selfsubjectrulesreviews`` (:mod:`.rules`).
Their kinds are in :data:`.kinds.BUILTIN_TYPES`
with the single verb ``create``; the router sends a POST of their collection URL here and
answers any other request of them 405, as kube-apiserver does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from envtest.auth import authn, authz, rules
from envtest.cluster import Cluster, Target
from envtest.http.protocol import Request, Response

Create = Callable[[Cluster, Target, Request], Response]

CREATE: Mapping[str, Create] = MappingProxyType({
    "tokenreviews.authentication.k8s.io": authn.create,
    "subjectaccessreviews.authorization.k8s.io": authz.create_subject_access_review,
    "localsubjectaccessreviews.authorization.k8s.io": authz.create_subject_access_review,
    "selfsubjectaccessreviews.authorization.k8s.io": authz.create_self_subject_access_review,
    "selfsubjectrulesreviews.authorization.k8s.io": rules.create_self_subject_rules_review,
})
"""group-resource -> the create verb of that review kind."""
