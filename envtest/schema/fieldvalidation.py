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

A member a JSON body names twice in one object is a strict decoding error too
(``duplicate field "spec.paused"``, before the unknown fields), found under ``Strict``: the
request fails with 400 and nothing is stored. In a patch, the patch body's duplicates count.

Deliberate gaps: under ``Warn`` duplicates are not reported (kube warns; finding them needs a
second, slower parse of every body, and the last value is kept as kube keeps it); YAML bodies
are not checked for them; server-side apply follows the same directive, where kube's apply
fails on fields its schema lacks whatever the directive (``field not declared in schema``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from envtest import errors, schema
from envtest.codecs.protobuf import FIELDS as _MESSAGE_FIELDS
from envtest.codecs.protobuf import SUPPORTED_KINDS
from envtest.errors import Cause
from envtest.http.protocol import Request, Response
from envtest.kinds.registry import ResourceType

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
          patched: bool = False, body: bytes | None = None) -> list[str]:
    """Drop ``obj``'s unknown fields; 400 under Strict (also for a member the JSON ``body``
    names twice), else the warnings to send (Warn)."""
    unknown = drop_unknown(rtype, obj)
    duplicates = duplicate_fields(body) if mode == "Strict" and body else []
    if not (unknown or duplicates) or mode == "Ignore":
        return []
    messages = [f'duplicate field "{path}"' for path in duplicates]
    messages += [f'unknown field "{path}"' for path in unknown]
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


class _Duplicated(dict[str, Any]):
    """A decoded JSON object that named some members more than once (the last value kept)."""

    names: list[str]


def duplicate_fields(body: bytes) -> list[str]:
    """The paths (``spec.template.spec.containers[0].name``) of members a JSON ``body`` names
    twice in one object, in document order; [] when there are none or it is not JSON (its
    decoder says so). A second parse, with Python's decoder: orjson keeps the last silently."""
    found = False

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal found
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        found = True
        seen: set[str] = set()
        twice: dict[str, None] = {}
        for name, _ in pairs:
            if name in seen:
                twice[name] = None
            seen.add(name)
        duplicated = _Duplicated(obj)
        duplicated.names = list(twice)
        return duplicated

    try:
        value = json.loads(body, object_pairs_hook=pairs_hook)
    except (ValueError, RecursionError):
        return []
    if not found:
        return []
    paths: list[str] = []
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            if isinstance(node, _Duplicated):
                paths.extend(f"{path}.{name}" if path else name for name in node.names)
            children = [(v, f"{path}.{k}" if path else k) for k, v in node.items()]
        elif isinstance(node, list):
            children = [(v, f"{path}[{i}]") for i, v in enumerate(node)]
        else:
            continue
        stack.extend(reversed(children))
    return paths
