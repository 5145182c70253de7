"""Which webhooks a request calls — kube-apiserver's ``generic.Webhook.ShouldCallHook`` and
its predicates (``predicates/rules``, ``predicates/namespace``, ``predicates/object``), as
pure functions:

* a **rule** matches on operation (or ``*``), API group, version and resource (or ``*``);
  ``resource/subresource`` names a subresource: ``*`` alone matches every main resource,
  ``*/*`` everything, ``pods/*`` pods and all their subresources, ``pods/status`` that one;
  ``scope`` ``Namespaced`` or ``Cluster`` (a Namespace counts as cluster-scoped) or ``*``;
* ``matchPolicy: Equivalent`` (the default) also matches a rule for another version of the
  same resource — here, the other served versions of a custom resource — and the webhook
  then receives the object in the version its rule names;
* ``namespaceSelector`` selects on the labels of the request's namespace (a Namespace's own
  labels when it is the object created or updated); cluster-scoped objects always pass;
* ``objectSelector`` selects on the new object's labels or the old one's (either will do);
* the configuration kinds themselves are never sent to webhooks (kube's exemption);
* ``matchConditions`` (CEL) are not evaluated: a webhook that has them is called as if they
  held (:mod:`.index` warns once per configuration).

A selector that cannot be parsed fails the request with 500, as kube's does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from envtest import errors
from envtest.webhooks.index import Hook
from foundation.selectors import LabelSelector, SelectorError, label_selector_from_dict

EXEMPT = frozenset({("admissionregistration.k8s.io", r) for r in (
    "validatingwebhookconfigurations", "mutatingwebhookconfigurations",
    "validatingadmissionpolicies", "validatingadmissionpolicybindings")})
"""Resources never sent to admission webhooks (``rules.IsExemptAdmissionConfigurationResource``)."""


@dataclass(frozen=True, slots=True)
class Resource:
    """A group/version/resource and its kind."""

    group: str
    version: str
    resource: str
    kind: str


@dataclass(slots=True)
class Attributes:
    """What kube's ``admission.Attributes`` carry: one request to admit."""

    operation: str
    """``CREATE``, ``UPDATE`` or ``DELETE``."""
    resource: Resource
    subresource: str
    namespace: str
    name: str
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None
    dry_run: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    user: dict[str, Any] = field(default_factory=dict)
    equivalents: Sequence[Resource] = ()
    """The served versions of the resource (for ``matchPolicy: Equivalent``)."""
    kind: tuple[str, str, str] | None = None
    """(group, version, kind) of the object when it is not the resource's own kind (a
    ``scale`` subresource's ``autoscaling/v1`` Scale)."""

    @property
    def is_namespace(self) -> bool:
        return self.resource.group == "" and self.resource.resource == "namespaces"


@dataclass(frozen=True, slots=True)
class Invocation:
    """A webhook to call, and the version of the resource it is sent (its rule's)."""

    hook: Hook
    resource: Resource


def exempt(attrs: Attributes) -> bool:
    return (attrs.resource.group, attrs.resource.resource) in EXEMPT


def rule_matches(rule: Mapping[str, Any], attrs: Attributes, resource: Resource) -> bool:
    """``rules.Matcher.Matches`` for ``attrs`` seen as ``resource``."""
    return (_scope(rule.get("scope"), attrs) and _any(rule.get("operations"), attrs.operation)
            and _any(rule.get("apiGroups"), resource.group)
            and _any(rule.get("apiVersions"), resource.version)
            and _resource(rule.get("resources"), resource.resource, attrs.subresource))


def _any(items: Any, requested: str) -> bool:
    return any(item in ("*", requested) for item in items or ())


def _scope(scope: Any, attrs: Attributes) -> bool:
    cluster_scoped = attrs.is_namespace or not attrs.namespace
    if scope in (None, "*"):
        return True
    if scope == "Namespaced":
        return not cluster_scoped
    return scope == "Cluster" and cluster_scoped


def _resource(items: Any, resource: str, subresource: str) -> bool:
    for item in items or ():
        res, _, sub = str(item).partition("/")
        if res in ("*", resource) and sub in ("*", subresource):
            return True
    return False


def could_match(spec: Mapping[str, Any], operation: str, group: str, resource: str,
                subresource: str) -> bool:
    """Whether a webhook's rules can match a request on ``group``/``resource`` whatever its
    version and scope (what ``matchPolicy: Equivalent`` may vary): a cheap first test."""
    return (group, resource) not in EXEMPT and any(
        isinstance(rule, Mapping) and _any(rule.get("operations"), operation)
        and _any(rule.get("apiGroups"), group)
        and _resource(rule.get("resources"), resource, subresource)
        for rule in spec.get("rules") or ())


def matched_resource(spec: Mapping[str, Any], attrs: Attributes) -> Resource | None:
    """The version of the resource a webhook's rules match (the request's own first; an
    equivalent one under ``matchPolicy: Equivalent``), or None."""
    rules = [r for r in spec.get("rules") or () if isinstance(r, Mapping)]
    if any(rule_matches(rule, attrs, attrs.resource) for rule in rules):
        return attrs.resource
    if spec.get("matchPolicy", "Equivalent") != "Equivalent":
        return None
    for rule in rules:  # earlier rules first, as kube honours them
        for other in attrs.equivalents:
            if other != attrs.resource and rule_matches(rule, attrs, other):
                return other
    return None


def selector(spec: Mapping[str, Any], key: str) -> LabelSelector:
    """A webhook's namespace or object selector (absent: everything); 500 when invalid."""
    try:
        return label_selector_from_dict(spec.get(key) or {})
    except SelectorError as exc:
        raise errors.APIError(500, "InternalError", f"Internal error occurred: {exc}") from exc


def needs_namespace_labels(spec: Mapping[str, Any], attrs: Attributes) -> bool:
    """Whether the namespace selector must look at a stored namespace's labels."""
    if not attrs.namespace and not attrs.is_namespace:
        return False  # cluster-scoped: never filtered by namespace
    if _own_labels(attrs):
        return False
    return not selector(spec, "namespaceSelector").empty


def _own_labels(attrs: Attributes) -> bool:
    """A Namespace created or updated is selected by its own (new) labels."""
    return attrs.is_namespace and not attrs.subresource and attrs.operation in ("CREATE",
                                                                                "UPDATE")


def namespace_selected(spec: Mapping[str, Any], attrs: Attributes,
                       stored_labels: Mapping[str, str] | None) -> bool:
    """``MatchNamespaceSelector``: ``stored_labels`` are the request namespace's labels."""
    if not attrs.namespace and not attrs.is_namespace:
        return True
    chosen = selector(spec, "namespaceSelector")
    if chosen.empty:
        return True
    if _own_labels(attrs):
        return chosen.matches(_labels(attrs.object))
    return chosen.matches(stored_labels or {})


def object_selected(spec: Mapping[str, Any], attrs: Attributes) -> bool:
    """``MatchObjectSelector``: the new object's labels or the old one's."""
    chosen = selector(spec, "objectSelector")
    if chosen.empty:
        return True
    return any(obj is not None and chosen.matches(_labels(obj))
               for obj in (attrs.object, attrs.old_object))


def _labels(obj: Mapping[str, Any] | None) -> Mapping[str, str]:
    labels = ((obj or {}).get("metadata") or {}).get("labels")
    return labels if isinstance(labels, Mapping) else {}
