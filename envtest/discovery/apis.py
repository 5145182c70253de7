"""Discovery and OpenAPI documents, computed from the kind registry on every request.

Clients map kinds to URLs with these: kubectl cannot work without ``/apis``, kopf reads the
subresource entries (``pods/status``) to decide where to patch status, and ``kubectl apply``
needs an OpenAPI v3 document per group-version that marks item paths as patchable.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from envtest.discovery import openapi
from envtest.kinds.registry import KindRegistry, ResourceType

VERSION_INFO = {
    "major": "1", "minor": "37", "gitVersion": "v1.37.0+ambient-envtest",
    "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
    "buildDate": "2026-11-24T00:00:00Z", "goVersion": "go1.25.0", "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                            "serverAddress": server_address}]}


def _group(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: KindRegistry) -> dict[str, Any]:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group(g, vs) for g, vs in registry.groups()]}


def api_group(registry: KindRegistry, group: str) -> dict[str, Any] | None:
    for name, versions in registry.groups():
        if name == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}
    return None


def api_resource_list(registry: KindRegistry, group: str, version: str) -> dict[str, Any]:
    resources = []
    for rtype in sorted(registry.resources(group, version), key=lambda t: t.plural):
        resources.extend(rtype.discovery_entries())
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


# OpenAPI v3 ----------------------------------------------------------------------------------
def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_root(registry: KindRegistry) -> dict[str, Any]:
    paths = {}
    for group, version in registry.group_versions():
        doc = openapi_group_version(registry, group, version)
        digest = hashlib.sha512(orjson.dumps(doc)).hexdigest()[:64].upper()
        paths[_gv_path(group, version)] = {
            "serverRelativeURL": f"/openapi/v3/{_gv_path(group, version)}?hash={digest}"}
    return {"paths": paths}


def _item_path(rtype: ResourceType) -> str:
    prefix = "/" + _gv_path(rtype.group, rtype.version)
    if rtype.namespaced:
        return f"{prefix}/namespaces/{{namespace}}/{rtype.plural}/{{name}}"
    return f"{prefix}/{rtype.plural}/{{name}}"


def _schema_name(rtype: ResourceType) -> str:
    prefix = ".".join(reversed(rtype.group.split("."))) if rtype.group else "io.k8s.api.core"
    return f"{prefix}.{rtype.version}.{rtype.kind}"


def openapi_group_version(registry: KindRegistry, group: str, version: str) -> dict[str, Any]:
    """Every item path is patchable and names its GVK (the review kinds, POST only, have a
    schema and no item path). Each kind's schema names its GVK, as ``kubectl explain`` looks it
    up: a built-in kind's is generated from its field table (:mod:`.openapi`), a custom
    resource's is its CRD's with apiVersion, kind and metadata added (kube-apiserver's), and
    ObjectMeta's and what the schemas reference come along."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rtype in registry.resources(group, version):
        gvk = {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
        if rtype.builtin and openapi.has_builtin_schema(rtype.api_version, rtype.kind):
            name, needed = openapi.builtin_schemas(rtype.kind)
            schema = dict(needed[name])
        else:
            name = _schema_name(rtype)
            schema, needed = openapi.custom_resource_schemas(rtype.schema, rtype.kind)
        schemas.update(needed)
        schema["x-kubernetes-group-version-kind"] = [gvk]
        schemas[name] = schema
        if "patch" not in rtype.verbs:
            continue
        ref = {"$ref": f"#/components/schemas/{name}"}
        operation = {
            "tags": [rtype.plural], "operationId": f"patch{rtype.kind}",
            "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk,
            "parameters": [{"name": "fieldValidation", "in": "query",
                            "schema": {"type": "string", "uniqueItems": True}},
                           {"name": "fieldManager", "in": "query",
                            "schema": {"type": "string", "uniqueItems": True}}],
            "responses": {"200": {"description": "OK",
                                  "content": {"application/json": {"schema": ref}}}},
        }
        paths[_item_path(rtype)] = {"patch": operation}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.37.0"},
            "paths": paths, "components": {"schemas": schemas}}


V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
"""The form kubectl's OpenAPI v2 client asks for; this server has JSON only."""


def openapi_v2(registry: KindRegistry) -> dict[str, Any]:
    """``/openapi/v2``: one Swagger 2.0 document with every served kind's schema (the v3
    documents' schemas, references and nullability in v2's terms) under ``definitions``.
    Its ``paths`` are empty: clients read v2 for the schemas (validation, explain)."""
    definitions: dict[str, Any] = {}
    for group, version in registry.group_versions():
        schemas = openapi_group_version(registry, group, version)["components"]["schemas"]
        definitions.update({name: _as_v2(schema) for name, schema in schemas.items()})
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.37.0"},
            "paths": {}, "definitions": dict(sorted(definitions.items()))}


def _as_v2(schema: Any) -> Any:
    """An OpenAPI 3.0 schema in Swagger 2.0's terms: ``#/definitions/`` references, no
    ``nullable`` (2.0 has none: kube-apiserver drops it too)."""
    if isinstance(schema, list):
        return [_as_v2(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "nullable":
            continue
        if key == "$ref" and isinstance(value, str):
            value = value.replace("#/components/schemas/", "#/definitions/")
        out[key] = _as_v2(value)
    return out
