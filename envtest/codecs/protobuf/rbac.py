"""Protobuf field tables for rbac.authorization.k8s.io/v1 (``kubectl create role``,
``rolebinding``, ``clusterrole``, ``clusterrolebinding``).

Data for :mod:`.tables`, in its table format (field number -> (JSON name, type, flags)):
field numbers from upstream ``k8s.io/api/rbac/v1/generated.proto``, names and rules from the
json struct tags in ``types.go``.  ``rules`` and ``verbs`` have no omitempty, so a ClusterRole
made only of an aggregation rule renders ``"rules": null``, as kubectl's own JSON does.
"""

from __future__ import annotations

from typing import Final

KINDS: Final = frozenset(
    ("rbac.authorization.k8s.io/v1", kind)
    for kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
)

# fmt: off
MESSAGES: Final[dict[str, dict[int, tuple[str, str, str]]]] = {
    "Role": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("rules", "PolicyRule", "*n"),
    },
    "ClusterRole": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("rules", "PolicyRule", "*n"),
        3: ("aggregationRule", "AggregationRule", "p"),
    },
    "PolicyRule": {
        1: ("verbs", "string", "*n"), 2: ("apiGroups", "string", "*"),
        3: ("resources", "string", "*"), 4: ("resourceNames", "string", "*"),
        5: ("nonResourceURLs", "string", "*"),
    },
    "AggregationRule": {
        1: ("clusterRoleSelectors", "LabelSelector", "*"),
    },
    "RoleBinding": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("subjects", "Subject", "*"),
        3: ("roleRef", "RoleRef", "k"),
    },
    "ClusterRoleBinding": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("subjects", "Subject", "*"),
        3: ("roleRef", "RoleRef", "k"),
    },
    "Subject": {
        1: ("kind", "string", "k"), 2: ("apiGroup", "string", ""), 3: ("name", "string", "k"),
        4: ("namespace", "string", ""),
    },
    "RoleRef": {
        1: ("apiGroup", "string", "k"), 2: ("kind", "string", "k"), 3: ("name", "string", "k"),
    },
}
# fmt: on
