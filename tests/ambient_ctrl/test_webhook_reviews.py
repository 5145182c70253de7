"""Admission and conversion reviews as pure functions, with bodies shaped exactly as
kube-apiserver sends them; the JSON patch generator as a property (an independent RFC 6902
implementation — the local API server's — applies it); kubebuilder's paths and the
registration's rules."""

from __future__ import annotations

import base64
import copy
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ambient_ctrl.webhook import (
    Allowed,
    ConversionError,
    Denied,
    HubAndSpoke,
    WebhookOptions,
    Webhooks,
    admission,
    conversion,
    current_request,
    mutate_path,
    validate_path,
)
from ambient_ctrl.webhook.jsonpatch import diff, escape, same
from ambient_ctrl.webhook.registry import WebhookBuilder
from envtest.patch.jsonpatch import json_patch
from informers.resource import PODS, Resource

WIDGETS = Resource("example.com", "v1", "widgets", "Widget")


def admission_review(operation: str, obj: Any = None, old: Any = None, *,
                     uid: str = "705ab4f5-6393-11e8-b7cc-42010a800002") -> dict[str, Any]:
    """An AdmissionReview as kube-apiserver 1.37 posts it (v1, every field it fills)."""
    return {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {
        "uid": uid,
        "kind": {"group": "example.com", "version": "v1", "kind": "Widget"},
        "resource": {"group": "example.com", "version": "v1", "resource": "widgets"},
        "requestKind": {"group": "example.com", "version": "v1", "kind": "Widget"},
        "requestResource": {"group": "example.com", "version": "v1", "resource": "widgets"},
        "name": "w1", "namespace": "team-a", "operation": operation,
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters",
                                                                "system:authenticated"]},
        "object": obj, "oldObject": old, "dryRun": False,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1",
                    "fieldManager": "kubectl-client-side-apply"}}}


def widget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w1", "namespace": "team-a", "uid": "u-1"}, "spec": spec}


def default_widget(obj: dict[str, Any]) -> None:
    obj["spec"].setdefault("replicas", 1)
    obj["metadata"].setdefault("labels", {})["app.kubernetes.io/managed-by"] = "widgets"


def validate_widget(obj: dict[str, Any] | None, old: dict[str, Any] | None) -> Any:
    if obj is None:
        assert old is not None
        if old["spec"].get("protected"):
            raise Denied(f"widget {old['metadata']['name']} is protected")
        return None
    if obj["spec"].get("replicas", 0) > 10:
        return Denied("spec.replicas: at most 10", reason="Invalid", code=422)
    if old is not None and old["spec"].get("size") != obj["spec"].get("size"):
        return Denied("spec.size is immutable")
    if obj["spec"].get("replicas") == 0:
        return Allowed(warnings=("spec.replicas: 0 pauses the widget",))
    return None


def patch_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    assert response["patchType"] == "JSONPatch"
    ops: list[dict[str, Any]] = orjson.loads(base64.b64decode(response["patch"]))
    return ops


# -- admission: mutating -----------------------------------------------------------------------
def test_defaulter_answers_the_patch_from_the_sent_object_to_the_defaulted_one() -> None:
    sent = widget(size="large")
    body = admission.review(admission_review("CREATE", sent), admission.defaulting(default_widget))
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    response = body["response"]
    assert response["uid"] == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert response["allowed"] is True and response["status"]["code"] == 200
    patched = json_patch(sent, patch_of(response))
    expected = copy.deepcopy(sent)
    default_widget(expected)
    assert patched == expected
    assert {"op": "add", "path": "/metadata/labels",
            "value": {"app.kubernetes.io/managed-by": "widgets"}} in patch_of(response)


def test_defaulter_that_changes_nothing_answers_no_patch() -> None:
    sent = widget(replicas=3)
    sent["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "widgets"}
    response = admission.review(admission_review("UPDATE", sent, sent),
                                admission.defaulting(default_widget))["response"]
    assert response["allowed"] is True
    assert "patch" not in response and "patchType" not in response


def test_defaulter_is_not_called_on_delete() -> None:
    called = []
    response = admission.review(admission_review("DELETE", None, widget()),
                                admission.defaulting(called.append))["response"]
    assert response["allowed"] is True and not called


def test_defaulter_may_refuse_and_warn() -> None:
    def refuse(obj: dict[str, Any]) -> Any:
        raise Denied("no widgets on Sundays", warnings=("try Monday",))

    def warn(obj: dict[str, Any]) -> Any:
        obj["spec"]["replicas"] = 2
        return Allowed(warnings=("replicas defaulted to 2",))

    refused = admission.review(admission_review("CREATE", widget()),
                               admission.defaulting(refuse))["response"]
    assert refused == {"uid": refused["uid"], "allowed": False, "warnings": ["try Monday"],
                       "status": {"metadata": {}, "status": "Failure", "code": 403,
                                  "reason": "Forbidden", "message": "no widgets on Sundays"}}
    warned = admission.review(admission_review("CREATE", widget()),
                              admission.defaulting(warn))["response"]
    assert warned["warnings"] == ["replicas defaulted to 2"]
    assert patch_of(warned) == [{"op": "add", "path": "/spec/replicas", "value": 2}]


# -- admission: validating ---------------------------------------------------------------------
@pytest.mark.parametrize(("operation", "obj", "old", "allowed", "code", "message"), [
    ("CREATE", widget(replicas=3), None, True, 200, None),
    ("CREATE", widget(replicas=11), None, False, 422, "spec.replicas: at most 10"),
    ("UPDATE", widget(size="s"), widget(size="s"), True, 200, None),
    ("UPDATE", widget(size="l"), widget(size="s"), False, 403, "spec.size is immutable"),
    ("DELETE", None, widget(protected=True), False, 403, "widget w1 is protected"),
    ("DELETE", None, widget(), True, 200, None),
    ("CONNECT", None, None, True, 200, None),
])
def test_validator_gets_obj_and_old_per_operation(operation: str, obj: Any, old: Any,
                                                   allowed: bool, code: int,
                                                   message: str | None) -> None:
    response = admission.review(admission_review(operation, obj, old),
                                admission.validating(validate_widget))["response"]
    assert response["allowed"] is allowed
    assert response["status"]["code"] == code
    assert response["status"].get("message") == message
    assert "patch" not in response


def test_validator_warnings_reach_the_response() -> None:
    response = admission.review(admission_review("CREATE", widget(replicas=0)),
                                admission.validating(validate_widget))["response"]
    assert response["allowed"] is True
    assert response["warnings"] == ["spec.replicas: 0 pauses the widget"]


def test_handlers_read_the_whole_request() -> None:
    def only_admins(obj: Any, old: Any) -> Any:
        request = current_request()
        if "system:masters" not in request["userInfo"]["groups"] or request["dryRun"]:
            raise Denied(f"{request['userInfo']['username']} may not")
        return None

    review = admission_review("CREATE", widget())
    assert admission.review(review, admission.validating(only_admins))["response"]["allowed"]
    review["request"]["userInfo"] = {"username": "bob", "groups": ["system:authenticated"]}
    response = admission.review(review, admission.validating(only_admins))["response"]
    assert response["status"]["message"] == "bob may not"
    with pytest.raises(LookupError, match="only known inside a webhook handler"):
        current_request()


def test_a_handler_that_raises_answers_500_denied_and_is_logged_once(
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(obj: Any, old: Any) -> None:
        raise KeyError("spec")

    response = admission.review(admission_review("CREATE", widget()),
                                admission.validating(broken), name="vwidget")["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 500
    assert "KeyError" in response["status"]["message"]
    failures = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(failures) == 1 and failures[0].exc_info is not None


def test_a_handler_returning_something_else_is_an_error() -> None:
    response = admission.review(admission_review("CREATE", widget()),
                                admission.validating(lambda obj, old: "no"))["response"]
    assert response["allowed"] is False and response["status"]["code"] == 500
    assert "return None, Allowed(...) or Denied(...)" in response["status"]["message"]


@pytest.mark.parametrize("body", [
    None, [], {"apiVersion": "v1", "kind": "Pod"},
    {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"},
    {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"name": "x"}},
])
def test_malformed_reviews_are_answered_400(body: Any) -> None:
    response = admission.review(body, admission.validating(validate_widget))["response"]
    assert response["allowed"] is False and response["status"]["code"] == 400


def test_v1beta1_reviews_are_answered_in_v1beta1() -> None:
    body = admission_review("CREATE", widget())
    body["apiVersion"] = "admission.k8s.io/v1beta1"
    answered = admission.review(body, admission.validating(validate_widget))
    assert answered["apiVersion"] == "admission.k8s.io/v1beta1"
    assert answered["response"]["allowed"] is True


# -- the JSON patch ----------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False,
                                                               allow_infinity=False)
    | st.text(max_size=4),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["a", "b", "a/b", "~c", "", "spec"]), children,
                      max_size=4),
    max_leaves=20)
documents = st.dictionaries(st.sampled_from(["metadata", "spec", "x/y", "~"]), json_values,
                            max_size=4)


@settings(max_examples=150, deadline=None)
@given(documents, documents)
def test_the_patch_turns_the_original_into_the_mutated_document(a: Any, b: Any) -> None:
    ops = diff(a, b)
    assert same(json_patch(a, ops), b)
    assert (ops == []) == same(a, b)


@settings(max_examples=100, deadline=None)
@given(st.lists(json_values, max_size=5), st.lists(json_values, max_size=3))
def test_arrays_that_grew_at_the_end_get_adds(prefix: list[Any], tail: list[Any]) -> None:
    ops = diff({"l": prefix}, {"l": prefix + tail})
    assert all(op["op"] == "add" for op in ops) and len(ops) == len(tail)


def test_json_types_are_not_python_equality() -> None:
    assert diff({"a": 1}, {"a": True}) == [{"op": "replace", "path": "/a", "value": True}]
    assert diff({"a": 1}, {"a": 1.0}) == [{"op": "replace", "path": "/a", "value": 1.0}]
    assert escape("a/b~c") == "a~1b~0c"


# -- conversion --------------------------------------------------------------------------------
def conversion_review(desired: str, *objects: dict[str, Any]) -> dict[str, Any]:
    """A ConversionReview as kube-apiserver posts it."""
    return {"kind": "ConversionReview", "apiVersion": "apiextensions.k8s.io/v1",
            "request": {"uid": "0000-1111", "desiredAPIVersion": desired,
                        "objects": list(objects)}}


def v1_to_v2(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]
    spec["size"] = {"name": spec.pop("size", "small")}
    return obj


def v2_to_v1(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]
    size = spec.pop("size", None)
    if size is not None:
        spec["size"] = size["name"]
    return obj


WIDGET_CONVERTER = HubAndSpoke("v2", to_hub={"v1": v1_to_v2}, from_hub={"v1": v2_to_v1})


def test_conversion_converts_every_object_in_order() -> None:
    first, second = widget(size="large"), widget(size="small")
    second["metadata"]["name"] = "w2"
    answered = conversion.review(conversion_review("example.com/v2", first, second),
                                 {("example.com", "Widget"): WIDGET_CONVERTER})
    assert answered["apiVersion"] == "apiextensions.k8s.io/v1"
    response = answered["response"]
    assert response["uid"] == "0000-1111"
    assert response["result"] == {"metadata": {}, "status": "Success"}
    assert [o["apiVersion"] for o in response["convertedObjects"]] == ["example.com/v2"] * 2
    assert [o["spec"]["size"] for o in response["convertedObjects"]] == [
        {"name": "large"}, {"name": "small"}]
    back = conversion.review(conversion_review("example.com/v1",
                                               *response["convertedObjects"]),
                             {("example.com", "Widget"): WIDGET_CONVERTER})
    assert [o["spec"] for o in back["response"]["convertedObjects"]] == [
        {"size": "large"}, {"size": "small"}]


@pytest.mark.parametrize(("converter", "desired", "message"), [
    (lambda obj, desired: {**obj, "apiVersion": desired, "metadata": {"name": "other"}},
     "example.com/v2", "changed metadata.name"),
    (lambda obj, desired: obj, "example.com/v2", "expected 'example.com/v2'"),
    (lambda obj, desired: 1 / 0, "example.com/v2", "ZeroDivisionError"),
    (WIDGET_CONVERTER, "example.com/v3", "no conversion for version 'v3'"),
    (WIDGET_CONVERTER, "other.io/v2", "cannot convert group"),
    (WIDGET_CONVERTER, "v2", "is not group/version"),
])
def test_conversion_failures_fail_the_whole_review(converter: Any, desired: str,
                                                   message: str) -> None:
    response = conversion.review(conversion_review(desired, widget(size="s")),
                                 {("example.com", "Widget"): converter})["response"]
    assert response["result"]["status"] == "Failure"
    assert message in response["result"]["message"]
    assert "convertedObjects" not in response


def test_conversion_of_an_unregistered_kind_fails() -> None:
    response = conversion.review(conversion_review("example.com/v2", widget()), {})["response"]
    assert "no converter for Widget.example.com" in response["result"]["message"]


@pytest.mark.parametrize("body", [None, {"apiVersion": "apiextensions.k8s.io/v1"},
                                  admission_review("CREATE", widget())])
def test_a_body_that_is_no_conversion_review_is_a_value_error(body: Any) -> None:
    with pytest.raises(ValueError, match="expected a ConversionReview"):
        conversion.review(body, {})


def test_conversion_error_is_the_converters_way_to_refuse() -> None:
    def refuse(obj: dict[str, Any], desired: str) -> dict[str, Any]:
        raise ConversionError("v1 cannot hold more than one size")

    response = conversion.review(conversion_review("example.com/v1", widget()),
                                 {("example.com", "Widget"): refuse})["response"]
    assert response["result"]["message"] == "Widget team-a/w1: v1 cannot hold more than one size"


# -- registration ------------------------------------------------------------------------------
def test_kubebuilder_paths() -> None:
    assert mutate_path(WIDGETS) == "/mutate-example-com-v1-widget"
    assert validate_path(Resource("apps.example.io", "v1beta1", "bigwidgets", "BigWidget")) \
        == "/validate-apps-example-io-v1beta1-bigwidget"
    assert validate_path(PODS) == "/validate--v1-pod"


def test_registration_refuses_duplicates_and_bad_options() -> None:
    webhooks = Webhooks()
    WebhookBuilder(webhooks, WIDGETS).defaulter(default_widget).validator(validate_widget)
    assert sorted(webhooks.admission) == ["/mutate-example-com-v1-widget",
                                          "/validate-example-com-v1-widget"]
    with pytest.raises(ValueError, match="registered at /validate-example-com-v1-widget"):
        WebhookBuilder(webhooks, WIDGETS).validator(validate_widget)
    webhooks.add_conversion(WIDGETS, WIDGET_CONVERTER)
    with pytest.raises(ValueError, match="registered already"):
        webhooks.add_conversion(WIDGETS, WIDGET_CONVERTER)
    with pytest.raises(ValueError, match="custom resources"):
        webhooks.add_conversion(PODS, WIDGET_CONVERTER)
    with pytest.raises(ValueError, match="between 1 and 30"):
        WebhookOptions(timeout_seconds=31)
    with pytest.raises(ValueError, match="operations"):
        WebhookOptions(operations=("PATCH",))
