"""CRD deletion through its cleanup finalizer, immutable fields, versions, required schemas."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import RawClient
from tests.envtest.test_crd import CRD_PATH, widget_crd

CLEANUP = "customresourcecleanup.apiextensions.k8s.io"


def conditions(crd: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c.get("reason", "")) for c in crd["status"]["conditions"]}


def create_crd(client: RawClient, plural: str, **changes: Any) -> str:
    crd = widget_crd(plural)
    crd["spec"].update(changes)
    status, body = client.post(CRD_PATH, crd)
    assert status == 201, body
    return f"{CRD_PATH}/{plural}.example.com"


# deletion ----------------------------------------------------------------------------------
def test_deleting_a_crd_goes_through_its_cleanup_finalizer(client: RawClient,
                                                           namespace: str) -> None:
    crd_path = create_crd(client, "sprockets")
    items = f"/apis/example.com/v1/namespaces/{namespace}/sprockets"
    for name in ("a", "b"):
        assert client.post(items, {"metadata": {"name": name}, "spec": {}})[0] == 201
    _, listed = client.get(CRD_PATH)
    with client.watch(f"{CRD_PATH}?watch=1&resourceVersion="
                      f"{listed['metadata']['resourceVersion']}"
                      "&fieldSelector=metadata.name%3Dsprockets.example.com") as crd_watch, \
            client.watch(f"{items}?watch=1&resourceVersion="
                         f"{listed['metadata']['resourceVersion']}") as cr_watch:
        status, answer = client.delete(crd_path)
        assert status == 200, answer
        # The answer is the marked CRD: its cleanup runs after the answer in kube-apiserver.
        assert answer["metadata"]["deletionTimestamp"]
        assert answer["metadata"]["finalizers"] == [CLEANUP]
        assert conditions(answer)["Terminating"][0] == "True"

        marked, gone = crd_watch.take(2)
        assert marked["type"] == "MODIFIED"
        assert CLEANUP in marked["object"]["metadata"]["finalizers"]
        assert gone["type"] == "DELETED"
        assert conditions(gone["object"])["Terminating"] == ("False",
                                                             "InstanceDeletionCompleted")
        assert not gone["object"]["metadata"].get("finalizers")
        deleted = cr_watch.take(2)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in deleted] == [
            ("DELETED", "a"), ("DELETED", "b")]
    assert client.get(crd_path)[0] == 404
    assert client.get(items)[0] == 404


def test_a_custom_resource_with_a_finalizer_keeps_its_crd_terminating(
        client: RawClient, namespace: str) -> None:
    crd_path = create_crd(client, "flanges")
    items = f"/apis/example.com/v1/namespaces/{namespace}/flanges"
    assert client.post(items, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]},
                               "spec": {}})[0] == 201
    assert client.post(items, {"metadata": {"name": "free"}, "spec": {}})[0] == 201

    assert client.delete(crd_path)[0] == 200
    status, crd = client.get(crd_path)
    assert status == 200, "the CRD waits for its custom resources"
    assert crd["metadata"]["finalizers"] == [CLEANUP]
    assert conditions(crd)["Terminating"] == ("True", "InstanceDeletionInProgress")
    assert client.get(f"{items}/free")[0] == 404
    status, held = client.get(f"{items}/held")
    assert status == 200 and held["metadata"]["deletionTimestamp"], "still served meanwhile"
    status, refused = client.post(items, {"metadata": {"name": "late"}, "spec": {}})
    assert status == 405 and refused["reason"] == "MethodNotAllowed", refused
    assert refused["message"] == ("create not allowed while custom resource definition is "
                                  "terminating")
    assert client.delete(crd_path)[0] == 200, "deleting again changes nothing"

    status, _ = client.patch(f"{items}/held", {"metadata": {"finalizers": None}})
    assert status == 200
    assert client.get(crd_path)[0] == 404
    assert client.get(items)[0] == 404
    _, resources = client.get("/apis/example.com/v1")
    assert "flanges" not in [r["name"] for r in resources.get("resources", [])]


def test_a_crd_without_custom_resources_goes_at_once(client: RawClient) -> None:
    crd_path = create_crd(client, "grommets")
    status, answer = client.delete(crd_path)
    assert status == 200 and answer["metadata"]["finalizers"] == [CLEANUP]
    assert client.get(crd_path)[0] == 404


def test_a_crd_with_its_own_finalizer_stays_after_cleanup(client: RawClient,
                                                          namespace: str) -> None:
    crd = widget_crd("rivets")
    crd["metadata"]["finalizers"] = ["example.com/keep"]
    assert client.post(CRD_PATH, crd)[0] == 201
    crd_path = f"{CRD_PATH}/rivets.example.com"
    assert client.post(f"/apis/example.com/v1/namespaces/{namespace}/rivets",
                       {"metadata": {"name": "r"}})[0] == 201
    assert client.delete(crd_path)[0] == 200
    _, left = client.get(crd_path)
    assert left["metadata"]["finalizers"] == ["example.com/keep"]
    assert conditions(left)["Terminating"] == ("False", "InstanceDeletionCompleted")
    assert client.get(f"/apis/example.com/v1/namespaces/{namespace}/rivets/r")[0] == 404
    assert client.patch(crd_path, {"metadata": {"finalizers": None}})[0] == 200
    assert client.get(crd_path)[0] == 404


# immutable fields ----------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "value", "message"), [
    (("scope",), "Cluster", 'Invalid value: "Cluster": field is immutable'),
    (("names", "kind"), "Other", 'Invalid value: "Other": field is immutable'),
], ids=["scope", "kind"])
def test_established_crd_fields_are_immutable(client: RawClient, path: tuple[str, ...],
                                              value: str, message: str) -> None:
    crd_path = create_crd(client, f"washers{len(path)}")
    _, crd = client.get(crd_path)
    spec = crd["spec"]
    for key in path[:-1]:
        spec = spec[key]
    spec[path[-1]] = value
    status, result = client.put(crd_path, crd)
    assert status == 422, result
    assert result["details"]["causes"] == [{"reason": "FieldValueInvalid", "message": message,
                                            "field": "spec." + ".".join(path)}]
    assert client.get(crd_path)[1]["spec"]["scope"] == "Namespaced"


# versions ------------------------------------------------------------------------------------
def two_versions(plural: str) -> dict[str, Any]:
    crd = widget_crd(plural)
    v1 = crd["spec"]["versions"][0]
    crd["spec"]["versions"] = [v1, {**v1, "name": "v2", "storage": False}]
    return crd


def test_a_custom_resource_is_served_at_the_version_asked_for(client: RawClient,
                                                              namespace: str) -> None:
    assert client.post(CRD_PATH, two_versions("nuts"))[0] == 201
    v1 = f"/apis/example.com/v1/namespaces/{namespace}/nuts"
    v2 = f"/apis/example.com/v2/namespaces/{namespace}/nuts"
    status, created = client.post(v1, {"apiVersion": "example.com/v1", "kind": "Nut",
                                       "metadata": {"name": "n"}, "spec": {"size": 1}})
    assert status == 201 and created["apiVersion"] == "example.com/v1"
    rv = created["metadata"]["resourceVersion"]

    status, got = client.get(f"{v2}/n")
    assert status == 200 and got["apiVersion"] == "example.com/v2"
    assert got["spec"] == {"size": 1} and got["metadata"]["resourceVersion"] == rv
    _, listed = client.get(v2)
    assert [i["apiVersion"] for i in listed["items"]] == ["example.com/v2"]
    with client.watch(f"{v2}?watch=1&resourceVersion=0") as watch:
        assert watch.next()["object"]["apiVersion"] == "example.com/v2"

    status, patched = client.patch(f"{v2}/n", {"spec": {"size": 2}})
    assert status == 200, patched
    assert patched["apiVersion"] == "example.com/v2" and patched["spec"] == {"size": 2}
    status, same = client.patch(f"{v2}/n", {"spec": {"size": 2}})
    assert same["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]
    status, back = client.get(f"{v1}/n")
    assert back["apiVersion"] == "example.com/v1" and back["spec"] == {"size": 2}
    status, deleted = client.delete(f"{v2}/n")
    assert status == 200 and deleted["details"]["name"] == "n"


# schemas -------------------------------------------------------------------------------------
def test_a_version_without_a_schema_is_refused(client: RawClient) -> None:
    crd = two_versions("bolts")
    del crd["spec"]["versions"][1]["schema"]
    status, result = client.post(CRD_PATH, crd)
    assert status == 422, result
    assert {"reason": "FieldValueRequired", "message": "Required value: schemas are required",
            "field": "spec.versions[1].schema.openAPIV3Schema"} in result["details"]["causes"]
    assert client.get(f"{CRD_PATH}/bolts.example.com")[0] == 404
