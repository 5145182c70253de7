"""The OpenAPI v3 documents carry every kind's schema, as ``kubectl explain`` reads them: found
by ``x-kubernetes-group-version-kind``, built-in kinds' fields from their field tables, and
every ``$ref`` resolvable in the document that makes it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

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
    assert spec["nodeSelector"] == {"type": "object", "additionalProperties": {"type": "string"},
                                    "description": spec["nodeSelector"]["description"]}
    meta = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
    assert meta["generation"] == {"type": "integer", "format": "int64",
                                  "description": meta["generation"]["description"]}
    assert meta["creationTimestamp"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Time"}]
    assert schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"] == "date-time"
    assert "io.k8s.apimachinery.pkg.api.resource.Quantity" in schemas


# descriptions and v2 -----------------------------------------------------------------------------
def test_kubectl_explain_prints_kubes_descriptions(api: Any) -> None:
    """The comments of kube's Go types, as the official client ships them: a field's own, or
    for a field holding another type (the client drops those), that type's."""
    import subprocess

    from tests.conftest import KUBECTL

    def explain(field: str) -> str:
        done = subprocess.run([str(KUBECTL), "--kubeconfig", api.kubeconfig, "explain", field],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return " ".join(done.stdout.split())

    assert "Container image name." in explain("pods.spec.containers.image")
    strategy = explain("deployments.spec.strategy")
    assert "DeploymentStrategy describes how to replace existing pods with new ones." in strategy
    assert 'Type of deployment. Can be "Recreate" or "RollingUpdate".' in strategy
    assert "Specifies the number of retries before marking this job failed." in explain(
        "jobs.spec.backoffLimit")
    assert "APIVersion defines the versioned schema" in explain("configmaps.apiVersion")


def test_openapi_v2_holds_every_kind_for_schema_readers(api: Any, client: RawClient) -> None:
    from kubernetes import client as k8s

    from tests.conftest import typed_client

    configuration = k8s.Configuration()
    configuration.host = api.url
    with typed_client(configuration) as http:
        answer = http.call_api(*http.param_serialize("GET", "/openapi/v2",
                                                     header_params={"Accept": "application/json"}))
        answer.read()
        doc = orjson.loads(answer.data)
    assert (doc["swagger"], doc["paths"]) == ("2.0", {})
    definitions = doc["definitions"]
    kinds = {(g["group"], g["version"], g["kind"]) for schema in definitions.values()
             for g in schema.get("x-kubernetes-group-version-kind", ())}
    assert {("", "v1", "Pod"), ("apps", "v1", "Deployment"), ("batch", "v1", "Job")} <= kinds
    assert all(ref.startswith("#/definitions/") and ref.removeprefix("#/definitions/")
               in definitions for ref in refs(doc))
    assert '"nullable"' not in orjson.dumps(doc).decode()
    pod = definitions["io.k8s.api.core.v1.Pod"]
    assert pod["description"].startswith("Pod is a collection of containers")
    # kubectl's v2 client asks for protobuf only: said plainly, not answered with JSON.
    status, refused = client.get("/openapi/v2", headers={
        "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert (status, refused["reason"]) == (406, "NotAcceptable")


def test_the_descriptions_cover_what_the_client_describes() -> None:
    """The committed data file is what the installed client's models say (regenerate with
    ``python -m envtest.discovery.regenerate`` when the client's minor version moves)."""
    from envtest.discovery import descriptions
    from envtest.discovery.openapi import packages_of_messages

    generated = descriptions.generate(packages_of_messages())
    committed = descriptions._loaded()
    assert len(set(generated) & set(committed)) >= 0.95 * len(generated)
    assert descriptions.message("io.k8s.api.core.v1.Container") == (
        "A single application container that you want to run within a pod.")
