"""OpenAPI v3 schemas of the built-in kinds, generated from the protobuf field tables.

``kubectl explain configmap.metadata`` reads ``/openapi/v3/api/v1``: it picks the schema whose
``x-kubernetes-group-version-kind`` names the kind, walks ``properties`` and follows ``$ref``s
(``#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta``) and ``allOf``s, and
prints each field's type and description. The field tables of :mod:`.protobuf` mirror the Go
types, so they give every field's JSON name, type, list or map shape and referenced message;
schemas are named as kube-apiserver names them (``io.k8s.api.core.v1.PodSpec``). Descriptions
are kube's, shortened, for the kinds, the fields every object has and the fields users look up
first (:mod:`.openapi_text`); the other fields have their type only.

No ``x-kubernetes-patch-*`` extensions, and the patch operations declare no request body:
kubectl's apply computes strategic merge patches from its compiled-in types, as before.
The schemas are built once per message and shared; callers must not modify them.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from envtest.codecs.protobuf import FIELDS, SUPPORTED_KINDS
from envtest.codecs.protobuf import admission as protobuf_admission
from envtest.codecs.protobuf import apps as protobuf_apps
from envtest.codecs.protobuf import authentication as protobuf_authentication
from envtest.codecs.protobuf import authorization as protobuf_authorization
from envtest.codecs.protobuf import autoscaling as protobuf_autoscaling
from envtest.codecs.protobuf import batch as protobuf_batch
from envtest.codecs.protobuf import networking as protobuf_networking
from envtest.codecs.protobuf import policy as protobuf_policy
from envtest.codecs.protobuf import rbac as protobuf_rbac
from envtest.codecs.protobuf import storage as protobuf_storage
from envtest.discovery import openapi_text

__all__ = ["builtin_schemas", "custom_resource_schemas", "has_builtin_schema"]

_META: Final = "io.k8s.apimachinery.pkg.apis.meta.v1"
_META_MESSAGES: Final = frozenset({
    "TypeMeta", "ObjectMeta", "OwnerReference", "ManagedFieldsEntry", "LabelSelector",
    "LabelSelectorRequirement", "FieldSelectorRequirement", "Condition", "Time", "MicroTime",
    "FieldsV1"})
_PACKAGES: Final = {
    **{name: "io.k8s.api.apps.v1" for name in protobuf_apps.MESSAGES},
    **{name: "io.k8s.api.rbac.v1" for name in protobuf_rbac.MESSAGES},
    **{name: "io.k8s.api.networking.v1" for name in protobuf_networking.MESSAGES},
    **{name: "io.k8s.api.authentication.v1" for name in protobuf_authentication.MESSAGES},
    **{name: "io.k8s.api.authorization.v1" for name in protobuf_authorization.MESSAGES},
    **{name: "io.k8s.api.batch.v1" for name in protobuf_batch.MESSAGES},
    **{name: "io.k8s.api.autoscaling.v2" for name in protobuf_autoscaling.MESSAGES},
    **{name: "io.k8s.api.policy.v1" for name in protobuf_policy.MESSAGES},
    **{name: "io.k8s.api.storage.v1" for name in protobuf_storage.MESSAGES},
    **{name: "io.k8s.api.admissionregistration.v1" for name in protobuf_admission.MESSAGES},
    "ExtraValue": "io.k8s.api.authorization.v1",
    "Quantity": "io.k8s.apimachinery.pkg.api.resource",
    "IntOrString": "io.k8s.apimachinery.pkg.util.intstr",
}
_KINDS: Final = frozenset(kind for _, kind in SUPPORTED_KINDS)
_SCALARS: Final = {
    "string": {"type": "string"}, "bytes": {"type": "string", "format": "byte"},
    "int32": {"type": "integer", "format": "int32"},
    "int64": {"type": "integer", "format": "int64"}, "bool": {"type": "boolean"},
}
# Messages with a JSON form of their own rather than their fields (their Go types marshal
# themselves).
_LEAVES: Final[dict[str, dict[str, Any]]] = {
    "Time": {"type": "string", "format": "date-time"},
    "MicroTime": {"type": "string", "format": "date-time"},
    "Quantity": {"type": "string"},
    "IntOrString": {"type": "string", "format": "int-or-string",
                    "x-kubernetes-int-or-string": True},
    "FieldsV1": {"type": "object"},
    "ExtraValue": {"type": "array", "items": {"type": "string"}},
}


def schema_name(message: str) -> str:
    """The name kube-apiserver gives the message's schema."""
    if message in _META_MESSAGES:
        return f"{_META}.{message}"
    return f"{_PACKAGES.get(message, 'io.k8s.api.core.v1')}.{message}"


def _ref(message: str, description: str | None) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema_name(message)}"}
    # kube-apiserver wraps a described reference in allOf (a $ref has no siblings in 3.0).
    return {"allOf": [ref], "description": description} if description else ref


def _property(message: str, name: str, type_: str, repeated: bool, is_map: bool,
              ) -> dict[str, Any]:
    description = openapi_text.field(message, name, top_level=message in _KINDS)
    if type_ in _SCALARS:
        item: dict[str, Any] = dict(_SCALARS[type_])
    else:
        item = _ref(type_, None)
    if repeated:
        item = {"type": "array", "items": item}
    elif is_map:
        item = {"type": "object", "additionalProperties": item}
    elif type_ not in _SCALARS:
        return _ref(type_, description)
    return {**item, "description": description} if description else item


def _properties(message: str) -> dict[str, Any]:
    """A message's properties by JSON name; an embedded (inline) struct's merged in."""
    properties: dict[str, Any] = {}
    for field in FIELDS[message].values():
        if field.rule == "^":
            properties.update(_properties(field.type))
        else:
            properties[field.name] = _property(message, field.name, field.type,
                                               field.repeated, field.is_map)
    return properties


@functools.cache
def _schema(message: str) -> dict[str, Any]:
    if message in _LEAVES:
        schema = dict(_LEAVES[message])
    else:
        schema = {"type": "object", "properties": _properties(message)}
    description = openapi_text.message(message)
    return {"description": description, **schema} if description else schema


def _references(message: str) -> set[str]:
    found: set[str] = set()
    for field in FIELDS.get(message, {}).values():
        if field.type not in _SCALARS:
            found.add(field.type)
    return found


@functools.cache
def _closure(message: str) -> tuple[str, ...]:
    """``message`` and every message its schema reaches, in a stable order."""
    seen = [message]
    i = 0
    while i < len(seen):
        for ref in sorted(_references(seen[i])):
            if ref not in seen:
                seen.append(ref)
        i += 1
    return tuple(seen)


def _top_level(kind: str, schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the fields every object has: apiVersion, kind, metadata."""
    common = {"apiVersion": {"type": "string", "description": openapi_text.API_VERSION},
              "kind": {"type": "string", "description": openapi_text.KIND},
              "metadata": _ref("ObjectMeta", openapi_text.METADATA)}
    return {**schema, "properties": {**common, **(schema.get("properties") or {}),
                                     "metadata": common["metadata"]}}


def has_builtin_schema(api_version: str, kind: str) -> bool:
    return (api_version, kind) in SUPPORTED_KINDS


def builtin_schemas(kind: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """The schema name of a built-in ``kind`` with a field table, and the schemas its
    document needs (the kind's own first, with apiVersion and kind added)."""
    names = _closure(kind)
    schemas = {schema_name(m): _schema(m) for m in (*names, *_closure("ObjectMeta"))}
    schemas[schema_name(kind)] = _top_level(kind, _schema(kind))
    return schema_name(kind), schemas


def custom_resource_schemas(schema: dict[str, Any] | None, kind: str,
                            ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A custom resource's (or a built-in kind's without a field table) schema as
    kube-apiserver publishes it: apiVersion, kind and metadata (ObjectMeta's schema, returned
    with what it references) added to the stored one; without one, any fields."""
    base = dict(schema) if schema else {"type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True}
    return _top_level(kind, base), {schema_name(m): _schema(m) for m in _closure("ObjectMeta")}
