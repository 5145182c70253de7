"""Which webhooks a request calls and what their answers mean: the pure functions of
envtest.webhooks.matching and envtest.webhooks.review, against kube's rules."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from envtest.errors import APIError
from envtest.webhooks import review
from envtest.webhooks.index import Hook, WebhookIndex
from envtest.webhooks.matching import (
    Attributes,
    Invocation,
    Resource,
    exempt,
    matched_resource,
    namespace_selected,
    object_selected,
    rule_matches,
)

PODS = Resource("", "v1", "pods", "Pod")
WIDGETS_V1 = Resource("example.com", "v1", "widgets", "Widget")
WIDGETS_V2 = Resource("example.com", "v2", "widgets", "Widget")
names = st.sampled_from(["pods", "configmaps", "widgets", "deployments"])
subresources = st.sampled_from(["", "status", "scale", "log"])
operations = st.sampled_from(["CREATE", "UPDATE", "DELETE"])


def attrs(resource: Resource = PODS, *, subresource: str = "", operation: str = "CREATE",
          namespace: str = "ns", obj: dict[str, Any] | None = None,
          old: dict[str, Any] | None = None, equivalents: tuple[Resource, ...] = ()
          ) -> Attributes:
    return Attributes(operation, resource, subresource, namespace, "x", obj, old,
                      equivalents=equivalents)


def rule(resources: list[str], operations: tuple[str, ...] = ("*",), group: str = "",
         versions: tuple[str, ...] = ("*",), scope: str = "*") -> dict[str, Any]:
    return {"apiGroups": [group], "apiVersions": list(versions), "operations": list(operations),
            "resources": resources, "scope": scope}


@given(names, subresources, operations)
def test_resource_patterns(resource: str, subresource: str, operation: str) -> None:
    request = attrs(Resource("", "v1", resource, "K"), subresource=subresource,
                    operation=operation)
    seen = request.resource

    def matches(pattern: str) -> bool:
        return rule_matches(rule([pattern]), request, seen)

    assert matches("*/*")
    assert matches("*") == (subresource == "")  # "*" is every main resource, no subresource
    assert matches(f"{resource}/*")  # a resource and all its subresources
    assert matches(resource) == (subresource == "")
    assert matches(f"{resource}/{subresource}")  # "pods/" is pods itself, as kube splits it
    assert matches(f"*/{subresource}")
    assert not matches("other") and not matches("other/*")
    assert matches("*/status") == (subresource == "status")


@given(operations, st.lists(operations | st.just("*"), max_size=3))
def test_operations(operation: str, listed: list[str]) -> None:
    request = attrs(operation=operation)
    matched = rule_matches(rule(["pods"], tuple(listed)), request, PODS)
    assert matched == ("*" in listed or operation in listed)


@pytest.mark.parametrize(("scope", "namespace", "resource", "expected"), [
    ("*", "ns", PODS, True), ("Namespaced", "ns", PODS, True), ("Cluster", "ns", PODS, False),
    ("Namespaced", "", Resource("", "v1", "nodes", "Node"), False),
    ("Cluster", "", Resource("", "v1", "nodes", "Node"), True),
    # a Namespace is cluster-scoped, though its own requests carry its name as namespace
    ("Cluster", "team", Resource("", "v1", "namespaces", "Namespace"), True),
    ("Namespaced", "team", Resource("", "v1", "namespaces", "Namespace"), False),
])
def test_scope(scope: str, namespace: str, resource: Resource, expected: bool) -> None:
    request = attrs(resource, namespace=namespace)
    assert rule_matches(rule(["*"], scope=scope), request, resource) is expected


def test_match_policy_equivalent_matches_other_served_versions() -> None:
    spec: dict[str, Any] = {"rules": [rule(["widgets"], group="example.com", versions=("v1",))]}
    request = attrs(WIDGETS_V2, equivalents=(WIDGETS_V1, WIDGETS_V2))
    assert matched_resource(spec, request) == WIDGETS_V1  # sent as v1, its rule's version
    assert matched_resource({**spec, "matchPolicy": "Exact"}, request) is None
    assert matched_resource(spec, attrs(WIDGETS_V1, equivalents=(WIDGETS_V1,))) == WIDGETS_V1


def labelled(**labels: str) -> dict[str, Any]:
    return {"kind": "Pod", "metadata": {"labels": labels}}


@given(st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from(["1", "2"])),
       st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from(["1", "2"])))
def test_object_selector_takes_new_or_old_labels(new: dict[str, str],
                                                 old: dict[str, str]) -> None:
    spec = {"objectSelector": {"matchLabels": {"a": "1"}}}
    request = attrs(operation="UPDATE", obj=labelled(**new), old=labelled(**old))
    assert object_selected(spec, request) == (new.get("a") == "1" or old.get("a") == "1")
    assert object_selected({}, request)  # absent: everything


def test_namespace_selector() -> None:
    spec = {"namespaceSelector": {"matchExpressions": [
        {"key": "env", "operator": "In", "values": ["prod"]}]}}
    assert namespace_selected(spec, attrs(), {"env": "prod"})
    assert not namespace_selected(spec, attrs(), {"env": "dev"})
    # cluster-scoped objects are never filtered; a Namespace by its own new labels
    assert namespace_selected(spec, attrs(Resource("", "v1", "nodes", "Node"), namespace=""),
                              None)
    ns = Resource("", "v1", "namespaces", "Namespace")
    assert namespace_selected(spec, attrs(ns, namespace="", obj=labelled(env="prod")), None)
    assert not namespace_selected(spec, attrs(ns, namespace="", obj=labelled()), None)
    with pytest.raises(APIError) as caught:
        namespace_selected({"namespaceSelector": {"matchExpressions": [
            {"key": "env", "operator": "Near"}]}}, attrs(), {})
    assert caught.value.code == 500


def test_the_configuration_kinds_are_exempt() -> None:
    for plural in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        assert exempt(attrs(Resource("admissionregistration.k8s.io", "v1", plural, "X"),
                            namespace=""))
    assert not exempt(attrs())


def test_the_index_orders_by_configuration_then_webhook() -> None:
    index = WebhookIndex()
    assert not index
    index.put({"metadata": {"name": "b"}, "webhooks": [{"name": "b1"}, {"name": "b2"}]},
              mutating=True)
    index.put({"metadata": {"name": "a"}, "webhooks": [{"name": "a1"}]}, mutating=True)
    index.put({"metadata": {"name": "c"}, "webhooks": [{"name": "c1"}]}, mutating=False)
    assert [h.name for h in index.mutating] == ["a1", "b1", "b2"]
    assert [h.name for h in index.validating] == ["c1"]
    index.remove("a", mutating=True)
    assert [h.name for h in index.mutating] == ["b1", "b2"]


# the review ----------------------------------------------------------------------------------
def invocation(resource: Resource = PODS, **spec: Any) -> Invocation:
    return Invocation(Hook("config", 0, {"name": "w.example.com", **spec}, True), resource)


def test_the_review_names_the_webhooks_version_and_the_requested_one() -> None:
    obj = {"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {"name": "x"}}
    request = attrs(WIDGETS_V2, obj=obj, equivalents=(WIDGETS_V1, WIDGETS_V2))
    sent = review.review(request, invocation(WIDGETS_V1), "uid-1", review.V1)["request"]
    assert sent["kind"] == {"group": "example.com", "version": "v1", "kind": "Widget"}
    assert sent["requestKind"] == {"group": "example.com", "version": "v2", "kind": "Widget"}
    assert sent["requestResource"]["version"] == "v2"
    assert sent["object"]["apiVersion"] == "example.com/v1"
    assert sent["oldObject"] is None and sent["dryRun"] is False
    assert sent["options"] == {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
    assert "subResource" not in sent


def test_review_versions() -> None:
    assert review.review_version({"admissionReviewVersions": ["v1beta1", "v1"]}) == \
        review.V1BETA1
    assert review.review_version({"admissionReviewVersions": ["v2", "v1"]}) == review.V1
    with pytest.raises(review.InvalidAnswer):
        review.review_version({"admissionReviewVersions": ["v2"]})


def answer(**response: Any) -> dict[str, Any]:
    return {"apiVersion": review.V1, "kind": "AdmissionReview",
            "response": {"uid": "u", **response}}


@pytest.mark.parametrize(("body", "problem"), [
    ({"apiVersion": review.V1, "kind": "AdmissionReview"}, "webhook response was absent"),
    (answer(uid="other", allowed=True), 'expected response.uid="u", got "other"'),
    ({**answer(allowed=True), "apiVersion": "v1"},
     "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got v1, "
     "Kind=AdmissionReview"),
    (answer(allowed=True, patch="W10="), "webhook returned response.patch but not "
     "response.patchType"),
    (answer(allowed=True, patchType="JSONPatch"), "webhook returned response.patchType but "
     "not response.patch"),
    (answer(allowed=True, patchType="Merge", patch="W10="),
     'webhook returned invalid response.patchType of "Merge"'),
    (answer(allowed=True, patchType="JSONPatch", patch="!!"), "received undecodable patch"),
])
def test_answers_kube_refuses(body: dict[str, Any], problem: str) -> None:
    with pytest.raises(review.InvalidAnswer, match=problem.replace("(", r"\(")):
        review.verdict(body, "u", review.V1, mutating=True)


def test_a_validating_webhook_may_not_patch_and_v1beta1_is_lenient() -> None:
    patch = base64.b64encode(orjson.dumps([{"op": "add", "path": "/x", "value": 1}])).decode()
    with pytest.raises(review.InvalidAnswer, match="validating webhook may not return"):
        review.verdict(answer(allowed=True, patchType="JSONPatch", patch=patch), "u",
                       review.V1, mutating=False)
    lenient = {"response": {"allowed": True, "patchType": "JSONPatch", "patch": patch,
                            "warnings": ["w"]}}
    verdict = review.verdict(lenient, "u", review.V1BETA1, mutating=True)
    assert (verdict.allowed, verdict.patch, verdict.warnings) == (
        True, [{"op": "add", "path": "/x", "value": 1}], ("w",))


@given(st.one_of(st.none(), st.integers(min_value=0, max_value=599)),
       st.sampled_from(["", "nope"]), st.sampled_from(["", "Forbidden"]))
def test_denials_as_kube_words_them(code: int | None, message: str, reason: str) -> None:
    status: dict[str, Any] = {"code": code, "message": message, "reason": reason}
    error = review.denied("w.example.com", status)
    assert error.code == (code if code is not None and code >= 400 else 400)
    prefix = 'admission webhook "w.example.com" denied the request'
    assert error.message == (f"{prefix}: {message}" if message else
                             f"{prefix}: {reason}" if reason else f"{prefix} without explanation")
    assert error.status()["status"] == "Failure"
