"""The OpenAPI v3 documents carry every kind's schema, as ``kubectl explain`` reads them: found
by ``x-kubernetes-group-version-kind``, built-in kinds' fields from their field tables, and
every ``$ref`` resolvable in the document that makes it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from envtest.codecs.protobuf import FIELDS, SUPPORTED_KINDS
from tests.conftest import RawClient

OBJECT_META = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def documents(client: RawClient) -> Iterator[tuple[str, dict[str, Any]]]:
    status, root = client.get("/openapi/v3")
    assert status == 200
    for gv, entry in root["paths"].items():
        status, doc = client.get(entry["serverRelativeURL"])
        assert status == 200, gv
        yield gv, doc


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def by_kind(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for schema in doc["components"]["schemas"].values():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            found[(api_version, gvk["kind"])] = schema
    return found


def json_names(message: str) -> set[str]:
    names: set[str] = set()
    for field in FIELDS[message].values():
        names |= json_names(field.type) if field.rule == "^" else {field.name}
    return names


def test_every_ref_resolves_in_its_document(client: RawClient) -> None:
    for gv, doc in documents(client):
        schemas = doc["components"]["schemas"]
        dangling = {ref for ref in refs(doc) if ref.removeprefix("#/components/schemas/")
                    not in schemas}
        assert not dangling, (gv, sorted(dangling))


def test_every_kind_has_a_schema_with_apiversion_kind_and_object_meta(
        client: RawClient) -> None:
    kinds: dict[tuple[str, str], dict[str, Any]] = {}
    for _, doc in documents(client):
        kinds.update(by_kind(doc))
    # Every kind served with a field table (TokenRequest is a subresource's).
    assert SUPPORTED_KINDS - {("authentication.k8s.io/v1", "TokenRequest")} <= set(kinds)
    for key, schema in kinds.items():
        properties = schema["properties"]
        assert properties["apiVersion"]["type"] == "string", key
        assert properties["kind"]["description"], key
        assert properties["metadata"]["allOf"] == [{"$ref": OBJECT_META}], key
        if key in SUPPORTED_KINDS:  # the field table's fields, by their JSON names
            assert set(properties) == json_names(key[1]) | {"apiVersion", "kind"}, key
            assert schema["description"], key


def test_fields_have_their_shapes(client: RawClient) -> None:
    _, doc = next((gv, d) for gv, d in documents(client) if gv == "api/v1")
    schemas = doc["components"]["schemas"]
    spec = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert spec["containers"]["type"] == "array"
    assert spec["containers"]["items"] == {
        "$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert spec["nodeSelector"] == {"type": "object", "additionalProperties": {"type": "string"}}
    meta = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
    assert meta["generation"] == {"type": "integer", "format": "int64",
                                  "description": meta["generation"]["description"]}
    assert meta["creationTimestamp"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Time"}]
    assert schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"] == "date-time"
    assert "io.k8s.apimachinery.pkg.api.resource.Quantity" in schemas
