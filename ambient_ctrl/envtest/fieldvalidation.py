"""Unknown fields in what a client writes, and the ``fieldValidation`` parameter.

kube-apiserver decodes every create, update and patch into its typed object (built-in kinds) or
prunes it with the CRD's structural schema (custom resources); fields neither knows are unknown,
and ``fieldValidation`` says what happens to them:

* ``Ignore``: dropped silently;
* ``Warn`` (the default since 1.27 when the parameter is absent, which is what the typed
  python client and kopf send): dropped, and each reported in a ``Warning: 299 - "unknown
  field \\"spec.x\\""`` response header;
* ``Strict`` (kubectl's default): the request fails with 400 BadRequest, ``<Kind> in version
  "<v>" cannot be handled as a <Kind>: strict decoding error: unknown field "spec.x", ...``
  (for a patch ``strict decoding error: ...`` alone; the patched result is what is checked);
* anything else: 422 for the request's options (``CreateOptions``, ``UpdateOptions``,
  ``PatchOptions``).

Which fields a built-in kind knows comes from the protobuf field tables (:mod:`.protobuf`,
read only), which mirror the Go types; kinds without a table there (Lease, events.k8s.io Event,
CustomResourceDefinition) have only their ``metadata`` checked. A custom resource's unknown
fields are those its schema prunes, ``x-kubernetes-preserve-unknown-fields`` subtrees excepted,
plus unknown ``metadata`` fields.

Deliberate gaps: duplicate fields in a JSON body (kube reports them too) are not detected, the
JSON decoder keeping the last; server-side apply follows the same directive, where kube's apply
fails on fields its schema lacks whatever the directive (``field not declared in schema``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from . import errors, schema
from .errors import Cause
from .http import Request, Response
from .kinds import ResourceType
from .protobuf import _FIELDS as _MESSAGE_FIELDS
from .protobuf import SUPPORTED_KINDS

DIRECTIVES = ("Ignore", "Strict", "Warn")
DEFAULT = "Warn"
_TYPE_META = frozenset({"apiVersion", "kind"})


def directive(request: Request, options_kind: str) -> str:
    """The request's ``fieldValidation``; 422 for a value kube does not know."""
    value = request.param("fieldValidation")
    if not value:
        return DEFAULT
    if value not in DIRECTIVES:
        supported = ", ".join(f'"{d}"' for d in ("", *DIRECTIVES))
        raise errors.invalid(options_kind, "meta.k8s.io", "", [Cause(
            "fieldValidation", f'Unsupported value: "{value}": supported values: {supported}',
            "FieldValueNotSupported")])
    return value


def check(rtype: ResourceType, obj: dict[str, Any], mode: str, *,
          patched: bool = False) -> list[str]:
    """Drop ``obj``'s unknown fields; 400 under Strict, else the warnings to send (Warn)."""
    unknown = drop_unknown(rtype, obj)
    if not unknown or mode == "Ignore":
        return []
    messages = [f'unknown field "{path}"' for path in unknown]
    if mode == "Strict":
        detail = "strict decoding error: " + ", ".join(messages)
        if not patched:
            detail = (f'{rtype.kind} in version "{rtype.version}" cannot be handled as a '
                      f"{rtype.kind}: {detail}")
        raise errors.bad_request(detail)
    return messages


def with_warnings(response: Response, warnings: list[str]) -> Response:
    """``response`` with the warnings in a ``Warning`` header (RFC 7234, code 299, agent -)."""
    if warnings:
        values = ", ".join('299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"'
                           for w in warnings)
        response.headers["Warning"] = values
    return response


def drop_unknown(rtype: ResourceType, obj: dict[str, Any]) -> list[str]:
    """Remove the fields ``rtype`` does not know from ``obj``; return their paths."""
    unknown: list[str] = []
    if rtype.builtin and (rtype.api_version, rtype.kind) in SUPPORTED_KINDS:
        _walk(obj, rtype.kind, "", unknown, skip=_TYPE_META)  # in document order, as Go's
        return unknown
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        _walk(meta, "ObjectMeta", "metadata", unknown)
    if not rtype.builtin and rtype.schema is not None:
        unknown += schema.prune(rtype.schema, obj)
    return unknown


@functools.cache
def _json_fields(message: str) -> Mapping[str, Any]:
    """A message's fields by JSON name, embedded (inline) structs merged in."""
    fields: dict[str, Any] = {}
    for field in _MESSAGE_FIELDS[message].values():
        if field.rule == "^":
            fields.update(_json_fields(field.type))
        else:
            fields[field.name] = field
    return fields


def _walk(obj: dict[str, Any], message: str, path: str, unknown: list[str], *,
          skip: frozenset[str] = frozenset()) -> None:
    """Depth-first over ``obj`` as an instance of ``message``; wrong JSON types are left to
    validation (kube's decoder would fail on them with its own error)."""
    known = _json_fields(message)
    for key in list(obj):
        if key in skip:
            continue
        field = known.get(key)
        here = f"{path}.{key}" if path else key
        if field is None:
            unknown.append(here)
            del obj[key]
            continue
        if field.type not in _MESSAGE_FIELDS:
            continue  # a scalar, or Time, Quantity, IntOrString, FieldsV1 (free-form)
        value = obj[key]
        if field.is_map and isinstance(value, dict):
            for name, item in value.items():
                if isinstance(item, dict):
                    _walk(item, field.type, f"{here}.{name}", unknown)
        elif field.repeated and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    _walk(item, field.type, f"{here}[{i}]", unknown)
        elif isinstance(value, dict):
            _walk(value, field.type, here, unknown)
