"""LimitRange (core/v1): discovery, defaulting, validation, patches, printing; RBAC names.

The kubectl and python-client round trips are in e2e/test_limitranges.py; these pin the
server's rules one by one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes.utils.quantity import parse_quantity

from envtest.kinds.limitranges import quantity_value
from tests.conftest import RawClient

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
QUANTITY_ERROR = ('LimitRange in version "v1" cannot be handled as a LimitRange: quantities '
                  "must match the regular expression "
                  "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


def limit_range(name: str, *limits: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": name},
            "spec": {"limits": list(limits)}}


def path(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/limitranges" + (f"/{name}" if name else "")


def test_discovery_lists_limitranges(client: RawClient) -> None:
    status, core = client.get("/api/v1")
    assert status == 200
    [entry] = [r for r in core["resources"] if r["name"] == "limitranges"]
    assert entry == {"name": "limitranges", "singularName": "limitrange", "namespaced": True,
                     "kind": "LimitRange",
                     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch",
                               "update", "watch"], "shortNames": ["limits"]}


@pytest.mark.parametrize(("item", "expected"), [
    ({"type": "Container", "default": {"cpu": "2", "memory": "4Gi"},
      "defaultRequest": {"cpu": "250m", "memory": "256Mi"}},
     {"type": "Container", "default": {"cpu": "2", "memory": "4Gi"},
      "defaultRequest": {"cpu": "250m", "memory": "256Mi"}}),
    ({"type": "Container", "default": {"cpu": "1"}},
     {"type": "Container", "default": {"cpu": "1"}, "defaultRequest": {"cpu": "1"}}),
    ({"type": "Container", "max": {"memory": "1Gi"}, "min": {"cpu": "100m"}},
     {"type": "Container", "max": {"memory": "1Gi"}, "min": {"cpu": "100m"},
      "default": {"memory": "1Gi"}, "defaultRequest": {"memory": "1Gi", "cpu": "100m"}}),
    ({"type": "Container", "max": {"cpu": "4"}, "default": {"cpu": "2"},
      "defaultRequest": {}},
     {"type": "Container", "max": {"cpu": "4"}, "default": {"cpu": "2"},
      "defaultRequest": {"cpu": "2"}}),
    ({"type": "Container"}, {"type": "Container"}),
    ({"type": "Pod", "max": {"cpu": "4"}}, {"type": "Pod", "max": {"cpu": "4"}}),
    ({"type": "Container", "default": {"cpu": 2, "memory": 0.5}},
     {"type": "Container", "default": {"cpu": "2", "memory": "0.5"},
      "defaultRequest": {"cpu": "2", "memory": "0.5"}}),
], ids=["upstream-defaults", "request-from-default", "max-and-min", "empty-request-filled",
        "nothing-to-fill", "pod-untouched", "numbers-are-quantities"])
def test_create_defaults_as_kube(client: RawClient, namespace: str, item: dict[str, Any],
                                 expected: dict[str, Any]) -> None:
    status, created = client.post(path(namespace), limit_range("lr", item))
    assert status == 201, created
    assert created["spec"] == {"limits": [expected]}
    assert created["metadata"]["uid"] and "generation" not in created["metadata"]
    assert client.get(path(namespace, "lr"))[1] == created


def test_updates_and_patches_are_defaulted(client: RawClient, namespace: str) -> None:
    _, created = client.post(path(namespace), limit_range("lr", {"type": "Container"}))
    created["spec"]["limits"][0]["default"] = {"cpu": "500m"}
    status, updated = client.put(path(namespace, "lr"), created)
    assert status == 200, updated
    assert updated["spec"]["limits"] == [{"type": "Container", "default": {"cpu": "500m"},
                                          "defaultRequest": {"cpu": "500m"}}]
    # limits is untagged in the Go type: a strategic merge patch replaces it whole.
    status, patched = client.patch(path(namespace, "lr"), {"spec": {"limits": [
        {"type": "Container", "max": {"memory": "2Gi"}}]}}, kind="strategic")
    assert status == 200, patched
    assert patched["spec"]["limits"] == [{"type": "Container", "max": {"memory": "2Gi"},
                                          "default": {"memory": "2Gi"},
                                          "defaultRequest": {"memory": "2Gi"}}]
    status, merged = client.patch(path(namespace, "lr"), {"metadata": {"labels": {"a": "b"}}})
    assert status == 200 and merged["spec"] == patched["spec"]


@pytest.mark.parametrize(("item", "causes"), [
    ({"type": "Container", "default": {"cpu": "1"}, "defaultRequest": {"cpu": "2"}},
     [("spec.limits[0].defaultRequest[cpu]",
       'Invalid value: "2": default request value 2 is greater than default limit value 1')]),
    ({"type": "Container", "min": {"memory": "2Gi"}, "max": {"memory": "1Gi"}},
     [("spec.limits[0].min[memory]",
       'Invalid value: "2Gi": min value 2Gi is greater than max value 1Gi'),
      ("spec.limits[0].defaultRequest[memory]",  # defaulted from max through default
       'Invalid value: "1Gi": min value 2Gi is greater than default request value 1Gi'),
      ("spec.limits[0].default[memory]",
       'Invalid value: "2Gi": min value 2Gi is greater than default value 1Gi')]),
    ({"type": "Pod", "default": {"cpu": "1"}},
     [("spec.limits[0].default", "Forbidden: may not be specified when `type` is 'Pod'")]),
    ({"type": "Container", "max": {"gpu": "1"}},
     [(f"spec.limits[0].{section}[gpu]",
       'Invalid value: "gpu": must be a standard resource for containers')
      for section in ("max", "default", "defaultRequest")]),
    ({"type": "Sideways"},
     [("spec.limits[0].type",
       'Invalid value: "Sideways": must be a standard limit type or fully qualified')]),
    ({"type": "PersistentVolumeClaim", "max": {"cpu": "1"}},
     [("spec.limits[0].limits", "Required value: either minimum or maximum storage value is "
       "required, but neither was provided")]),
    ({"type": "Container", "maxLimitRequestRatio": {"cpu": "0.5"}},
     [("spec.limits[0].maxLimitRequestRatio[cpu]",
       'Invalid value: "0.5": ratio 0.5 is less than 1')]),
    ({"type": "Container", "min": {"cpu": "1"}, "max": {"cpu": "2"},
      "maxLimitRequestRatio": {"cpu": "3"}},
     [("spec.limits[0].maxLimitRequestRatio[cpu]",
       'Invalid value: "3": ratio 3 is greater than max/min = 2.000000')]),
    ({"type": "Container", "default": {"hugepages-2Mi": "4Mi"},
      "defaultRequest": {"hugepages-2Mi": "2Mi"}},
     [("spec.limits[0].defaultRequest[hugepages-2Mi]", 'Invalid value: "2Mi": default value '
       "4Mi must equal to defaultRequest value 2Mi in hugepages-2Mi")]),
], ids=["request-over-limit", "min-over-max", "pod-default", "resource-name", "type",
        "pvc-without-storage", "ratio-below-one", "ratio-over-max-min", "hugepages-overcommit"])
def test_invalid_limit_ranges_are_422_with_causes(client: RawClient, namespace: str,
                                                  item: dict[str, Any],
                                                  causes: list[tuple[str, str]]) -> None:
    status, result = client.post(path(namespace), limit_range("bad", item))
    assert status == 422, result
    assert result["reason"] == "Invalid" and result["details"]["kind"] == "LimitRange"
    assert [(c["field"], c["message"]) for c in result["details"]["causes"]] == causes
    assert client.get(path(namespace, "bad"))[0] == 404


def test_duplicate_types_are_refused(client: RawClient, namespace: str) -> None:
    status, result = client.post(path(namespace), limit_range(
        "bad", {"type": "Container"}, {"type": "Container", "max": {"cpu": "1"}}))
    assert status == 422, result
    assert [(c["field"], c["message"], c["reason"]) for c in result["details"]["causes"]] == [
        ("spec.limits[1].type", 'Duplicate value: "Container"', "FieldValueDuplicate")]


def test_valid_items_of_every_type(client: RawClient, namespace: str) -> None:
    status, created = client.post(path(namespace), limit_range(
        "ok", {"type": "Pod", "max": {"cpu": "8", "memory": "16Gi"}},
        {"type": "Container", "min": {"cpu": "100m"}, "max": {"cpu": "4"},
         "maxLimitRequestRatio": {"cpu": "10"}, "default": {"example.com/fpga": "1"},
         "defaultRequest": {"example.com/fpga": "1"}},
        {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}},
        {"type": "example.com/widget", "max": {"example.com/widget": "3"}}))
    assert status == 201, created


@pytest.mark.parametrize("quantity", ["lots", "1.5.0", "2 Gi", True, {"value": 1}],
                         ids=["word", "two-points", "space", "bool", "object"])
def test_quantities_that_do_not_parse_are_400(client: RawClient, namespace: str,
                                              quantity: Any) -> None:
    status, result = client.post(path(namespace), limit_range(
        "bad", {"type": "Container", "default": {"cpu": quantity}}))
    assert status == 400, result
    assert result["reason"] == "BadRequest" and result["message"] == QUANTITY_ERROR
    assert client.get(path(namespace, "bad"))[0] == 404


def test_unknown_fields_are_refused_under_strict(client: RawClient, namespace: str) -> None:
    body = limit_range("strict", {"type": "Container", "defaults": {"cpu": "1"}})
    status, result = client.post(path(namespace) + "?fieldValidation=Strict", body)
    assert status == 400, result
    assert result["message"] == ('LimitRange in version "v1" cannot be handled as a '
                                 'LimitRange: strict decoding error: unknown field '
                                 '"spec.limits[0].defaults"')
    resp = client.http.request("POST", client.url + path(namespace), body=orjson.dumps(body),
                               headers={"Content-Type": "application/json"})
    assert resp.status == 201
    assert resp.headers["Warning"] == '299 - "unknown field \\"spec.limits[0].defaults\\""'


def test_table_prints_the_creation_time(client: RawClient, namespace: str) -> None:
    _, created = client.post(path(namespace), limit_range("lr", {"type": "Container"}))
    status, table = client.get(path(namespace), headers={"Accept": TABLE})
    assert status == 200, table
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Created At"]
    assert [row["cells"] for row in table["rows"]] == [
        ["lr", created["metadata"]["creationTimestamp"]]]


def test_namespace_deletion_takes_its_limit_ranges(client: RawClient, namespace: str) -> None:
    client.post(path(namespace), limit_range("lr", {"type": "Container"}))
    status, listed = client.get("/api/v1/limitranges")
    assert status == 200 and listed["kind"] == "LimitRangeList"
    assert f"{namespace}/lr" in [f"{i['metadata']['namespace']}/{i['metadata']['name']}"
                                 for i in listed["items"]]
    assert client.delete(f"/api/v1/namespaces/{namespace}")[0] == 200
    assert client.get(path(namespace, "lr"))[0] == 404


# RBAC object names ------------------------------------------------------------------------------
def binding(name: str) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "view"},
            "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                          "name": "x"}]}


@pytest.mark.parametrize("name", ["Team A-view", "system:authenticated-edit", "x" * 300],
                         ids=["capitals-and-space", "colon", "long"])
def test_rbac_names_are_path_segments(client: RawClient, namespace: str, name: str) -> None:
    """kube-apiserver checks RBAC names with ``IsValidPathSegmentName`` alone (not as DNS
    subdomains): OpenShift and OIDC group names make valid RoleBinding names."""
    collection = f"{RBAC}/namespaces/{namespace}/rolebindings"
    status, created = client.post(collection, binding(name))
    assert status == 201, created
    assert created["metadata"]["name"] == name
    encoded = name.replace(" ", "%20")
    assert client.get(f"{collection}/{encoded}")[1]["metadata"]["uid"] == \
        created["metadata"]["uid"]


@pytest.mark.parametrize(("name", "message"), [
    ("team/a-view", "may not contain '/'"), ("50%-view", "may not contain '%'"),
    ("..", "may not be '..'")], ids=["slash", "percent", "dot-dot"])
def test_rbac_names_that_are_no_path_segment_are_refused(client: RawClient, namespace: str,
                                                         name: str, message: str) -> None:
    status, result = client.post(f"{RBAC}/namespaces/{namespace}/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": name}, "rules": []})
    assert status == 422, result
    assert [(c["field"], c["message"]) for c in result["details"]["causes"]] == [
        ("metadata.name", f'Invalid value: "{name}": {message}')]


QUANTITIES = st.builds(
    lambda sign, whole, fraction, suffix: f"{sign}{whole}{fraction}{suffix}",
    st.sampled_from(["", "+", "-"]), st.integers(0, 10**12).map(str),
    st.sampled_from(["", ".", ".5", ".125", ".000001"]),
    st.sampled_from(["", "e3", "E-2", "e+9", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
                     "n", "u", "m", "k", "M", "G", "T", "P", "E"]))


@settings(max_examples=300, deadline=None)
@given(QUANTITIES)
def test_quantity_values_are_the_official_clients(text: str) -> None:
    """The server reads quantities without the kubernetes package (it loads the whole client);
    its reading agrees with the client's on the grammar kube-apiserver accepts."""
    assert quantity_value(text) == Decimal(parse_quantity(text))


@pytest.mark.parametrize("text", ["", "1.5.5", "1Ki5", "Infinity", "NaN", "1_000", " 1", "ki"])
def test_what_is_no_quantity_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a quantity"):
        quantity_value(text)
