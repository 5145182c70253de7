"""Validation in field.Path form: ``x-kubernetes-embedded-resource`` (apiVersion and kind
required) and ``x-kubernetes-list-type`` ``set``/``map`` uniqueness."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from envtest.codecs.gofmt import go_json, quote
from envtest.errors import Cause
from envtest.schema.causes import bad, duplicate
from envtest.schema.tree import Schema, additional_of, child_path, items_of, properties_of


def walk(s: Schema, value: Any, path: str) -> Iterator[tuple[Schema, Any, str]]:
    """Every value the structural schema reaches, with its field.Path-style path."""
    yield s, value, path
    if isinstance(value, dict):
        props = properties_of(s)
        extra = additional_of(s)[1]
        for key, item in value.items():
            if key in props:
                yield from walk(props[key], item, child_path(path, key))
            elif extra is not None:
                yield from walk(extra, item, f"{path}[{key}]")
    elif isinstance(value, list):
        items = items_of(s)
        if items is not None:
            for i, item in enumerate(value):
                yield from walk(items, item, f"{path}[{i}]")


def check_embedded(obj: dict[str, Any], path: str) -> list[Cause]:
    causes = [Cause(child_path(path, key), "Required value", "FieldValueRequired")
              for key in ("apiVersion", "kind") if key not in obj]
    if "apiVersion" in obj:
        causes += _check_api_version(obj["apiVersion"], child_path(path, "apiVersion"))
    if "kind" in obj:
        causes += _check_kind(obj["kind"], child_path(path, "kind"))
    return causes


def _check_api_version(value: Any, path: str) -> list[Cause]:
    if not isinstance(value, str):
        return [Cause(path, f"Invalid value: {bad(value)}: must be a string")]
    if not value:
        return [Cause(path, 'Invalid value: "": must not be empty')]
    if value != "/" and value.count("/") > 1:
        return [Cause(path, f"Invalid value: {quote(value)}: "
                            f"unexpected GroupVersion string: {value}")]
    return []


_DNS1035 = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    f"'abc-123', regex used for validation is '{_DNS1035}')")


def _check_kind(value: Any, path: str) -> list[Cause]:
    if not isinstance(value, str):
        return [Cause(path, f"Invalid value: {bad(value)}: must be a string")]
    if not value:
        return [Cause(path, 'Invalid value: "": must not be empty')]
    lowered = value.lower()
    problems = []
    if len(lowered.encode()) > 63:
        problems.append("must be no more than 63 characters")
    if not re.fullmatch(_DNS1035, lowered):
        problems.append(_DNS1035_MESSAGE)
    if not problems:
        return []
    return [Cause(path, f"Invalid value: {quote(value)}: may have mixed case, but should "
                        f"otherwise match: {','.join(problems)}")]


def check_list_type(s: Schema, items: list[Any], path: str) -> list[Cause]:
    list_type = s.get("x-kubernetes-list-type")
    if list_type == "set":
        repeated = _second_occurrences([canonical(item) for item in items])
        return [duplicate(f"{path}[{i}]", bad(items[i])) for i in repeated]
    if list_type != "map":
        return []
    for i, item in enumerate(items):
        if item is not None and not isinstance(item, dict):
            return [Cause(f"{path}[{i}]", f"Invalid value: {bad(item)}: "
                                          "must be an object for an array of list-type map")]
    names = list(s.get("x-kubernetes-list-map-keys") or ())
    keys = [{name: item[name] for name in names if item is not None and name in item}
            for item in items]
    repeated = _second_occurrences([canonical(key) for key in keys])
    return [duplicate(f"{path}[{i}]", go_json(keys[i])) for i in repeated]


def _second_occurrences(keys: list[Any]) -> list[int]:
    """Indices where a key shows up for the second time (kube reports each repeat once)."""
    seen: dict[Any, int] = {}
    found = []
    for i, key in enumerate(keys):
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            found.append(i)
    return found


def canonical(value: Any) -> Any:
    """A hashable form for equality of JSON values (booleans are not numbers)."""
    if isinstance(value, dict):
        return "object", tuple(sorted((k, canonical(v)) for k, v in value.items()))
    if isinstance(value, list):
        return "array", tuple(canonical(v) for v in value)
    if isinstance(value, bool):
        return "boolean", value
    if isinstance(value, int | float):
        return "number", value
    return type(value).__name__, value
