"""Discovery and OpenAPI documents as clients read them."""

from __future__ import annotations

from tests.conftest import RawClient


def test_version_and_core_discovery(client: RawClient) -> None:
    status, version = client.get("/version")
    assert status == 200 and version["major"] == "1" and version["minor"] == "37"
    status, apis = client.get("/api")
    assert apis["kind"] == "APIVersions" and apis["versions"] == ["v1"]
    status, core = client.get("/api/v1")
    names = {r["name"]: r for r in core["resources"]}
    assert names["pods"]["namespaced"] and names["pods"]["kind"] == "Pod"
    assert "pods/status" in names and names["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert not names["namespaces"]["namespaced"]
    assert names["configmaps"]["shortNames"] == ["cm"]


def test_group_discovery_lists_builtin_groups(client: RawClient) -> None:
    status, groups = client.get("/apis")
    assert status == 200 and groups["kind"] == "APIGroupList"
    names = [g["name"] for g in groups["groups"]]
    for group in ("events.k8s.io", "coordination.k8s.io", "apiextensions.k8s.io"):
        assert group in names
    status, leases = client.get("/apis/coordination.k8s.io/v1")
    assert [r["name"] for r in leases["resources"]] == ["leases"]
    assert client.get("/apis/coordination.k8s.io")[1]["preferredVersion"]["version"] == "v1"
    assert client.get("/apis/nope.example.com/v1")[0] == 404


def test_openapi_v3_marks_item_paths_patchable(client: RawClient) -> None:
    status, root = client.get("/openapi/v3")
    url = root["paths"]["api/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/api/v1?hash=")
    status, doc = client.get(url)
    assert status == 200 and doc["openapi"].startswith("3.")
    item = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert item["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert any(p["name"] == "fieldValidation" for p in item["parameters"])
    # v2 exists too (test_openapi.py reads it): one document of definitions, no paths.
    status, v2 = client.get("/openapi/v2")
    assert (status, v2["swagger"], v2["paths"]) == (200, "2.0", {})


def test_health_endpoints(client: RawClient) -> None:
    for path in ("/healthz", "/livez", "/readyz"):
        assert client.get(path) == (200, "ok")


def test_unknown_paths_are_404_status(client: RawClient) -> None:
    status, body = client.get("/api/v1/widgets")
    assert status == 404 and body["kind"] == "Status" and body["reason"] == "NotFound"
    assert client.get("/nonsense")[0] == 404
