"""Descriptions of the built-in kinds and their fields, as ``kubectl explain`` prints them.

kube-apiserver's OpenAPI carries each Go type's and field's doc comment. The same text ships
with the official Python client: every model of ``kubernetes.client.models`` (``V1Container``,
``V2HorizontalPodAutoscalerSpec``, ``CoreV1ResourceClaim``...) has the type's comment as its
docstring and each field's as its description, keyed by the JSON name in ``attribute_map``.
:func:`generate` reads them for every message of the protobuf field tables into
``descriptions.json.gz`` beside this module (``python -m envtest.discovery.regenerate``
writes it); the server loads that file on the first OpenAPI request — importing the client's
826 models would cost the server a second — and :func:`field` and :func:`message` answer from
it. Nothing here is typed by hand.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from pathlib import Path
from typing import Any, Final

DATA: Final = Path(__file__).with_name("descriptions.json.gz")

_GROUP_PREFIX: Final = re.compile(r"^io\.k8s\.(?:api\.([a-z]+)|apimachinery\.pkg\.apis\.(meta))"
                                  r"\.(v\d\w*)$")


def model_names(package: str, message: str) -> list[str]:
    """The client's model class names that may hold ``package.message``: ``V1Container``, or
    with the group when two groups share a name (``CoreV1ResourceClaim``)."""
    found = _GROUP_PREFIX.match(package)
    if found is None:
        return []
    group, meta, version = found.groups()
    plain = f"{version.capitalize()}{message}"
    return [plain, f"{(group or meta).capitalize()}{plain}"]


def _summary(doc: str | None) -> str:
    """A model's docstring without the generator's boilerplate (its "Attributes:" part and
    the "NOTE: This class is auto generated" lines)."""
    text = (doc or "").split("Attributes:")[0]
    lines = [line.strip() for line in text.strip().splitlines()
             if line.strip() and "auto generated" not in line and "Do not edit" not in line]
    return " ".join(lines)


def generate(messages: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``{schema name: {"": type description, json name: field description}}`` for
    ``messages`` (message → package), from the installed kubernetes client."""
    from kubernetes.client import models

    out: dict[str, dict[str, Any]] = {}
    for message, package in sorted(messages.items()):
        model = next((getattr(models, name) for name in model_names(package, message)
                      if hasattr(models, name)), None)
        if model is None:
            continue
        entry: dict[str, Any] = {}
        if summary := _summary(model.__doc__):
            entry[""] = summary
        fields = getattr(model, "model_fields", {})
        for attribute, json_name in getattr(model, "attribute_map", {}).items():
            info = fields.get(attribute)
            if info is not None and info.description:
                entry[json_name] = " ".join(info.description.split())
        if entry:
            out[f"{package}.{message}"] = entry
    return out


@functools.cache
def _loaded() -> dict[str, dict[str, str]]:
    if not DATA.exists():
        return {}
    with gzip.open(DATA, "rt", encoding="utf-8") as data:
        loaded: dict[str, dict[str, str]] = json.load(data)
    return loaded


def message(schema: str) -> str | None:
    """The description of the type named ``schema`` (``io.k8s.api.core.v1.Container``)."""
    return _loaded().get(schema, {}).get("") or None


def field(schema: str, name: str) -> str | None:
    """The description of field ``name`` (its JSON name) of the type named ``schema``."""
    return _loaded().get(schema, {}).get(name) or None


def write(messages: dict[str, str]) -> int:
    """Write :data:`DATA` for ``messages``; how many types it describes."""
    described = generate(messages)
    payload = json.dumps(described, sort_keys=True, separators=(",", ":")).encode()
    DATA.write_bytes(gzip.compress(payload, mtime=0))
    _loaded.cache_clear()
    return len(described)
