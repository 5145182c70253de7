"""CustomResourceDefinitions: registration, status subresource, removal; server-side apply."""

from __future__ import annotations

import pytest

from tests.conftest import RawClient

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def widget_crd(plural: str = "widgets", scope: str = "Namespaced") -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.example.com"},
        "spec": {
            "group": "example.com", "scope": scope,
            "names": {"plural": plural, "singular": plural[:-1], "kind": plural[:-1].title(),
                      "shortNames": [plural[:2]]},
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "subresources": {"status": {}},
                          "additionalPrinterColumns": [
                              {"name": "Phase", "type": "string", "jsonPath": ".status.phase"}],
                          "schema": {"openAPIV3Schema": {
                              "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}],
        },
    }


@pytest.fixture()
def widgets(client: RawClient) -> str:
    status, crd = client.post(CRD_PATH, widget_crd())
    assert status in (201, 409), crd
    return "/apis/example.com/v1"


def test_crd_is_established_and_discoverable(client: RawClient, widgets: str) -> None:
    _, crd = client.get(f"{CRD_PATH}/widgets.example.com")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    _, groups = client.get("/apis")
    assert "example.com" in [g["name"] for g in groups["groups"]]
    _, resources = client.get(widgets)
    names = {r["name"]: r for r in resources["resources"]}
    assert names["widgets"]["shortNames"] == ["wi"] and "widgets/status" in names
    _, root = client.get("/openapi/v3")
    assert "apis/example.com/v1" in root["paths"]


def test_status_subresource_split(client: RawClient, widgets: str, namespace: str) -> None:
    path = f"{widgets}/namespaces/{namespace}/widgets"
    status, obj = client.post(path, {"apiVersion": "example.com/v1", "kind": "Widget",
                                     "metadata": {"name": "w"}, "spec": {"size": 1},
                                     "status": {"phase": "ignored"}})
    assert status == 201 and "status" not in obj
    obj["status"] = {"phase": "Running"}
    obj["spec"]["size"] = 2
    status, obj = client.put(f"{path}/w/status", obj)
    assert obj["status"] == {"phase": "Running"} and obj["spec"] == {"size": 1}
    assert obj["metadata"]["generation"] == 1
    status, obj = client.patch(f"{path}/w", {"spec": {"size": 3}, "status": {"phase": "X"}})
    assert obj["spec"] == {"size": 3} and obj["status"] == {"phase": "Running"}
    assert obj["metadata"]["generation"] == 2


def test_without_a_status_subresource_status_moves_the_generation(client: RawClient,
                                                                   namespace: str) -> None:
    """kube-apiserver counts every change but metadata for such custom resources."""
    crd = widget_crd("sprockets")
    del crd["spec"]["versions"][0]["subresources"]
    status, body = client.post(CRD_PATH, crd)
    assert status in (201, 409), body
    path = f"/apis/example.com/v1/namespaces/{namespace}/sprockets"
    status, obj = client.post(path, {"metadata": {"name": "g"}, "spec": {"size": 1}})
    assert status == 201 and obj["metadata"]["generation"] == 1
    _, obj = client.patch(f"{path}/g", {"metadata": {"labels": {"a": "b"}}})
    assert obj["metadata"]["generation"] == 1
    _, obj = client.patch(f"{path}/g", {"status": {"phase": "Running"}})
    assert obj["status"] == {"phase": "Running"} and obj["metadata"]["generation"] == 2


def test_custom_resources_refuse_strategic_merge(client: RawClient, widgets: str,
                                                 namespace: str) -> None:
    path = f"{widgets}/namespaces/{namespace}/widgets"
    client.post(path, {"metadata": {"name": "s"}, "spec": {}})
    status, result = client.patch(f"{path}/s", {"spec": {"a": 1}}, kind="strategic")
    assert status == 415 and result["reason"] == "UnsupportedMediaType"


def test_custom_resource_update_requires_resource_version(client: RawClient, widgets: str,
                                                          namespace: str) -> None:
    path = f"{widgets}/namespaces/{namespace}/widgets"
    _, obj = client.post(path, {"metadata": {"name": "rv"}, "spec": {}})
    del obj["metadata"]["resourceVersion"]
    status, _ = client.put(f"{path}/rv", obj)
    assert status == 422


def test_deleting_a_crd_removes_kind_and_objects(client: RawClient, namespace: str) -> None:
    assert client.post(CRD_PATH, widget_crd("gadgets"))[0] == 201
    path = f"/apis/example.com/v1/namespaces/{namespace}/gadgets"
    assert client.post(path, {"metadata": {"name": "g"}})[0] == 201
    assert client.delete(f"{CRD_PATH}/gadgets.example.com")[0] == 200
    assert client.get(path)[0] == 404
    _, resources = client.get("/apis/example.com/v1")
    assert "gadgets" not in [r["name"] for r in resources.get("resources", [])]


def test_invalid_crd_is_422(client: RawClient) -> None:
    crd = widget_crd("things")
    crd["metadata"]["name"] = "wrong.example.com"
    crd["spec"]["versions"][0]["storage"] = False
    status, result = client.post(CRD_PATH, crd)
    assert status == 422
    fields = {c["field"] for c in result["details"]["causes"]}
    assert {"metadata.name", "spec.versions"} <= fields


def test_server_side_apply(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/ssa"
    apply = "application/apply-patch+yaml"
    doc = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '1'\n  b: '2'\n"
    status, obj = client.request("PATCH", f"{path}?fieldManager=alice", raw=doc,
                                 content_type=apply)
    assert status == 201 and obj["data"] == {"a": "1", "b": "2"}
    assert obj["metadata"]["managedFields"][0]["manager"] == "alice"
    doc2 = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '1'\n"
    status, obj = client.request("PATCH", f"{path}?fieldManager=alice", raw=doc2,
                                 content_type=apply)
    assert status == 200 and obj["data"] == {"a": "1"}, "a field no longer applied is removed"
    bob = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: 'other'\n"
    status, result = client.request("PATCH", f"{path}?fieldManager=bob", raw=bob,
                                    content_type=apply)
    assert status == 409 and "alice" in result["message"]
    status, obj = client.request("PATCH", f"{path}?fieldManager=bob&force=true", raw=bob,
                                 content_type=apply)
    assert status == 200 and obj["data"] == {"a": "other"}
    status, result = client.request("PATCH", path, raw=doc, content_type=apply)
    assert status == 422, "fieldManager is required"


def test_schema_is_enforced_with_causes_pruning_and_defaults(client: RawClient,
                                                            namespace: str) -> None:
    crd = widget_crd("gizmos")
    crd["spec"]["versions"][0]["schema"] = {"openAPIV3Schema": {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1},
                "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"}}},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}
    assert client.post(CRD_PATH, crd)[0] == 201
    path = f"/apis/example.com/v1/namespaces/{namespace}/gizmos"
    status, result = client.post(path, {"metadata": {"name": "bad"},
                                        "spec": {"size": 0, "mode": "warp"}})
    assert status == 422
    causes = {(c["field"], c["reason"]) for c in result["details"]["causes"]}
    assert causes == {("spec.size", "FieldValueInvalid"), ("spec.mode", "FieldValueNotSupported")}
    status, result = client.post(path, {"metadata": {"name": "nosize"}, "spec": {}})
    assert status == 422 and result["details"]["causes"][0]["reason"] == "FieldValueRequired"
    status, obj = client.post(path, {"metadata": {"name": "ok"},
                                     "spec": {"size": 2, "extra": "pruned"}, "junk": 1})
    assert status == 201 and obj["spec"] == {"size": 2, "mode": "fast"} and "junk" not in obj
    status, _ = client.patch(f"{path}/ok", {"spec": {"size": "big"}})
    assert status == 422, "updates are validated too"


def test_a_tightened_schema_ratchets_what_objects_already_hold(client: RawClient,
                                                               namespace: str) -> None:
    """kube's validation ratcheting: once a CRD's schema is tightened, objects stored before
    can still be written — their status, their other fields — while the values that break the
    new schema stay as they are; a change to such a value must meet the schema."""
    crd = widget_crd("cogs")
    spec_schema = {"type": "object", "properties": {
        "name": {"type": "string"}, "size": {"type": "integer"}}}
    crd["spec"]["versions"][0]["schema"] = {"openAPIV3Schema": {"type": "object", "properties": {
        "spec": spec_schema,
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}
    status, stored_crd = client.post(CRD_PATH, crd)
    assert status == 201, stored_crd
    path = f"/apis/example.com/v1/namespaces/{namespace}/cogs"
    status, obj = client.post(path, {"metadata": {"name": "old"},
                                     "spec": {"name": "much-too-long", "size": 1}})
    assert status == 201, obj
    spec_schema["properties"]["name"]["maxLength"] = 4
    stored_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = (
        spec_schema)
    status, body = client.put(f"{CRD_PATH}/cogs.example.com", stored_crd)
    assert status == 200, body
    status, body = client.post(path, {"metadata": {"name": "new"},
                                      "spec": {"name": "much-too-long"}})
    assert status == 422, "a new object meets the new schema"

    status, body = client.patch(f"{path}/old/status", {"status": {"phase": "Running"}})
    assert status == 200, body
    status, body = client.patch(f"{path}/old", {"spec": {"size": 2}})
    assert status == 200, body
    assert body["spec"] == {"name": "much-too-long", "size": 2}
    status, body = client.patch(f"{path}/old", {"spec": {"name": "still-too-long"}})
    assert status == 422, body
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.name"]
