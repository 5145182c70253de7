"""Request bodies: JSON, YAML and Kubernetes protobuf objects; the four patch media types.

A POST or PUT without Content-Type is JSON (the typed python client sends none); a PATCH must
say which patch it is. Protobuf bodies and strategic merge patches are for built-in kinds only:
for a custom resource kube-apiserver answers 415 and lists what it accepts instead, as here.

Every decoded body is bounded (:mod:`limits`): nesting depth, and for YAML the expansion of
aliases; a body beyond a bound gets 400.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from envtest import errors
from envtest.codecs import limits
from envtest.codecs.protobuf import ProtobufError, decode_object
from envtest.http.protocol import Request

PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}
# In the order kube-apiserver lists them in its 415 answers.
_BUILTIN_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                        "application/strategic-merge-patch+json", "application/apply-patch+yaml")
_CUSTOM_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                       "application/apply-patch+yaml")
_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
_PROTOBUF = "application/vnd.kubernetes.protobuf"


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def decode_body(request: Request, *, builtin: bool = True) -> Any:
    """The object a POST, PUT or DELETE body holds; ``builtin`` kinds also accept protobuf."""
    kind = media_type(request) or "application/json"
    if kind == "application/json":
        return _json(request.body)
    if kind in _YAML_TYPES:
        return _yaml(request.body)
    if kind == _PROTOBUF and builtin:
        try:
            return decode_object(request.body)
        except ProtobufError as exc:
            raise errors.bad_request(f"unable to decode protobuf body: {exc}") from exc
    accepted = ["application/json", "application/yaml"] + ([_PROTOBUF] if builtin else [])
    raise errors.unsupported_media_type(accepted)


def decode_patch(request: Request, *, builtin: bool = True) -> tuple[str, Any]:
    """(patch kind, document) where kind is merge, json, strategic (built-ins) or apply."""
    accepted = _BUILTIN_PATCH_TYPES if builtin else _CUSTOM_PATCH_TYPES
    if media_type(request) not in accepted:
        raise errors.unsupported_media_type(accepted)
    kind = PATCH_TYPES[media_type(request)]
    document = _yaml(request.body) if kind == "apply" else _json(request.body)
    return kind, document


def check_depth(value: Any, what: str) -> None:
    """400 for an object nested beyond :data:`limits.MAX_DEPTH` (a patch result, say)."""
    try:
        limits.check_depth(value)
    except limits.LimitExceeded as exc:
        raise errors.bad_request(f"{what}: {exc}") from exc


def _json(body: bytes) -> Any:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"error decoding JSON body: {exc}") from exc
    if limits.may_nest_deeper_than(body):
        check_depth(value, "error decoding JSON body")
    return value


def _yaml(body: bytes) -> Any:
    loader = _Loader(body)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if b"*" in body:  # no alias without an asterisk
            limits.check_yaml_aliasing(node)
        value = loader.construct_document(node)
        limits.check_depth(value)
        # Through JSON, as kube-apiserver converts YAML to JSON before decoding: aliases become
        # copies (the handlers mutate what they are given), map keys strings, and YAML-only
        # types (sets, binary) a 400 rather than a failure when the object is stored.
        value = orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error decoding YAML body: {exc}") from exc
    except limits.ExpansionTooLarge as exc:
        raise errors.APIError(413, "RequestEntityTooLarge",
                              f"Request entity too large: {exc}") from exc
    except limits.LimitExceeded as exc:
        raise errors.bad_request(f"error decoding YAML body: {exc}") from exc
    except orjson.JSONEncodeError as exc:
        raise errors.bad_request(f"error decoding YAML body: cannot convert to JSON: "
                                 f"{exc}") from exc
    finally:
        loader.dispose()
    return value


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe YAML without implicit timestamps: Kubernetes keeps times as strings."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers
                if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
