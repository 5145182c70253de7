"""Request bodies: JSON, YAML and Kubernetes protobuf objects; the four patch media types.

A POST or PUT without Content-Type is JSON (the typed python client sends none); a PATCH must
say which patch it is.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from . import errors
from .http import Request
from .protobuf import ProtobufError, decode_object

PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def decode_body(request: Request) -> Any:
    kind = media_type(request) or "application/json"
    if kind == "application/json":
        return _json(request.body)
    if kind in ("application/yaml", "application/x-yaml", "text/yaml"):
        return _yaml(request.body)
    if kind == "application/vnd.kubernetes.protobuf":
        try:
            return decode_object(request.body)
        except ProtobufError as exc:
            raise errors.bad_request(f"unable to decode protobuf body: {exc}") from exc
    raise errors.unsupported_media_type(kind)


def decode_patch(request: Request) -> tuple[str, Any]:
    """(patch kind, document) where kind is merge, json, strategic or apply."""
    kind = PATCH_TYPES.get(media_type(request))
    if kind is None:
        raise errors.unsupported_media_type(media_type(request))
    document = _yaml(request.body) if kind == "apply" else _json(request.body)
    return kind, document


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"error decoding JSON body: {exc}") from exc


def _yaml(body: bytes) -> Any:
    try:
        return yaml.load(body, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error decoding YAML body: {exc}") from exc


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe YAML without implicit timestamps: Kubernetes keeps times as strings."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers
                if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
