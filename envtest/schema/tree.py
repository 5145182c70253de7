"""A structural schema as a tree to walk: its properties, items and additionalProperties, and the
field paths kube reports errors at."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

Schema = Mapping[str, Any]

NO_FIELD = "<nil>"
"""The field kube reports for errors without a path (it prints a nil field.Path)."""

META_FIELDS = frozenset({"apiVersion", "kind", "metadata"})
"""Never pruned at the root nor in embedded resources."""
ROOT_META_KEYS = ("name", "generateName")
"""The only root ``metadata`` fields a CRD's schema may declare."""


def root_schema(schema: Schema) -> Schema:
    """The root schema with ``metadata`` reduced to its name/generateName declarations."""
    props = schema.get("properties")
    if not isinstance(props, Mapping) or not isinstance(props.get("metadata"), Mapping):
        return schema
    declared = props["metadata"].get("properties") or {}
    kept = {k: v for k, v in declared.items() if k in ROOT_META_KEYS}
    return {**schema, "properties": {**props, "metadata": {"properties": kept}}}


def is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """``isinstance(value, Mapping)``, without the ABC's check for the common cases, a dict
    and None (validation asks this of every schema node it passes, and of the absent
    ``properties`` of each leaf's)."""
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def properties_of(s: Schema | None) -> Mapping[str, Schema]:
    props = s.get("properties") if s is not None else None
    return props if is_mapping(props) else {}


def items_of(s: Schema | None) -> Schema | None:
    items = s.get("items") if s is not None else None
    return items if is_mapping(items) else None


def additional_of(s: Schema | None) -> tuple[bool, Schema | None]:
    """Whether undeclared keys are map values, and their schema (None for ``true``)."""
    extra = s.get("additionalProperties") if s is not None else None
    if is_mapping(extra):
        return True, extra
    return extra is True, None


def field_schema(s: Schema | None, key: str) -> Schema | None:
    props = properties_of(s)
    if key in props:
        return props[key]
    return additional_of(s)[1]


def child_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def field_path(path: str) -> str:
    return path or NO_FIELD
