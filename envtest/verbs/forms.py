"""The form a read answers in, from its ``Accept`` header, as kube-apiserver negotiates it.

A client names forms with media-type parameters: ``application/json;as=Table;g=meta.k8s.io;
v=v1`` (kubectl get's server-side printing), ``as=PartialObjectMetadata`` for one object or a
watch and ``as=PartialObjectMetadataList`` for a list (client-go's metadata client,
controller-runtime's metadata-only caches), each usually followed by a plain
``application/json`` fallback. The first range the server can serve wins; a header that asks
only for forms it cannot serve is 406 Not Acceptable, as kube-apiserver answers it.
"""

from __future__ import annotations

import enum
from typing import Any

import orjson

from envtest import errors
from envtest.http.protocol import Request

META_V1 = "meta.k8s.io/v1"


class Form(enum.Enum):
    OBJECT = "object"
    TABLE = "Table"
    METADATA = "PartialObjectMetadata"


def read_form(request: Request, *, listing: bool) -> Form:
    """The form of the answer to a get or watch (``listing=False``) or a list."""
    header = request.headers.get("accept", "")
    if not header.strip():
        return Form.OBJECT
    asked_only_forms = True
    for media_range in header.split(","):
        kind, *parameters = (part.strip() for part in media_range.split(";"))
        params = dict(p.partition("=")[::2] for p in parameters)
        form = params.get("as")
        if form is None:
            if kind in ("application/json", "application/*", "*/*", ""):
                return Form.OBJECT
            asked_only_forms = False
            continue
        group, version = params.get("g"), params.get("v")
        if form == "Table" and group == "meta.k8s.io" and version in ("v1", "v1beta1"):
            return Form.TABLE
        wanted = "PartialObjectMetadataList" if listing else "PartialObjectMetadata"
        if form == wanted and group == "meta.k8s.io" and version in ("v1", "v1beta1"):
            return Form.METADATA
    if asked_only_forms:
        raise errors.APIError(406, "NotAcceptable", "the server was unable to respond with a "
                              "content type that the client supports")
    return Form.OBJECT  # other media types (protobuf, YAML) get JSON, as before


def partial(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as ``PartialObjectMetadata``: its metadata, nothing else."""
    return {"kind": "PartialObjectMetadata", "apiVersion": META_V1,
            "metadata": obj.get("metadata") or {}}


def partial_raw(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(partial(obj))
