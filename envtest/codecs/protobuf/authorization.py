"""Protobuf field tables for authorization.k8s.io/v1, the reviews: ``kubectl auth can-i``
sends its SelfSubjectAccessReview (and, with ``--list``, its SelfSubjectRulesReview) as protobuf.

Data for :mod:`.tables`, in its table format (field number -> (JSON name, type, flags)): field
numbers from upstream ``k8s.io/api/authorization/v1/generated.proto``, names and rules from the
json struct tags in ``types.go``. ``ExtraValue`` (a list of strings on the wire wrapped in a
message of its own) is one of the codec's special types; FieldSelectorRequirement is meta/v1's.
"""

from __future__ import annotations

from typing import Final

KINDS: Final = frozenset(("authorization.k8s.io/v1", kind) for kind in (
    "SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview",
    "SelfSubjectRulesReview"))

# fmt: off
MESSAGES: Final[dict[str, dict[int, tuple[str, str, str]]]] = {
    "SelfSubjectAccessReview": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "SelfSubjectAccessReviewSpec", "k"),
        3: ("status", "SubjectAccessReviewStatus", "k"),
    },
    "SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes", "p"),
        2: ("nonResourceAttributes", "NonResourceAttributes", "p"),
    },
    "SubjectAccessReview": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "SubjectAccessReviewSpec", "k"),
        3: ("status", "SubjectAccessReviewStatus", "k"),
    },
    "SubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes", "p"),
        2: ("nonResourceAttributes", "NonResourceAttributes", "p"), 3: ("user", "string", ""),
        4: ("groups", "string", "*"), 5: ("extra", "ExtraValue", "%"), 6: ("uid", "string", ""),
    },
    "LocalSubjectAccessReview": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "SubjectAccessReviewSpec", "k"),
        3: ("status", "SubjectAccessReviewStatus", "k"),
    },
    "SubjectAccessReviewStatus": {
        1: ("allowed", "bool", "k"), 4: ("denied", "bool", ""), 2: ("reason", "string", ""),
        3: ("evaluationError", "string", ""),
    },
    "ResourceAttributes": {
        1: ("namespace", "string", ""), 2: ("verb", "string", ""), 3: ("group", "string", ""),
        4: ("version", "string", ""), 5: ("resource", "string", ""),
        6: ("subresource", "string", ""), 7: ("name", "string", ""),
        8: ("fieldSelector", "FieldSelectorAttributes", "p"),
        9: ("labelSelector", "LabelSelectorAttributes", "p"),
    },
    "NonResourceAttributes": {
        1: ("path", "string", ""), 2: ("verb", "string", ""),
    },
    "FieldSelectorAttributes": {
        1: ("rawSelector", "string", ""), 2: ("requirements", "FieldSelectorRequirement", "*"),
    },
    "LabelSelectorAttributes": {
        1: ("rawSelector", "string", ""), 2: ("requirements", "LabelSelectorRequirement", "*"),
    },
    "FieldSelectorRequirement": {
        1: ("key", "string", "k"), 2: ("operator", "string", "k"), 3: ("values", "string", "*"),
    },
    "SelfSubjectRulesReview": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "SelfSubjectRulesReviewSpec", "k"),
        3: ("status", "SubjectRulesReviewStatus", "k"),
    },
    "SelfSubjectRulesReviewSpec": {
        1: ("namespace", "string", ""),
    },
    "SubjectRulesReviewStatus": {
        1: ("resourceRules", "ResourceRule", "*n"),
        2: ("nonResourceRules", "NonResourceRule", "*n"), 3: ("incomplete", "bool", "k"),
        4: ("evaluationError", "string", ""),
    },
    "ResourceRule": {
        1: ("verbs", "string", "*n"), 2: ("apiGroups", "string", "*"),
        3: ("resources", "string", "*"), 4: ("resourceNames", "string", "*"),
    },
    "NonResourceRule": {
        1: ("verbs", "string", "*n"), 2: ("nonResourceURLs", "string", "*"),
    },
}
# fmt: on
