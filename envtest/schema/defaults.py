"""Nulls and defaults (apiextensions-apiserver ``schema/defaulting``): a ``null`` for a field
that is neither nullable nor defaulted is dropped, then ``default`` fills absent fields,
top-down, with default values pruned against their schema."""

from __future__ import annotations

import copy
from typing import Any

from envtest.schema.prune import CONTAINERS, prune_value
from envtest.schema.tree import Schema, additional_of, field_schema, items_of, properties_of


def _non_nullable_null(value: Any, s: Schema | None) -> bool:
    return value is None and s is not None and not s.get("nullable")


def drop_nulls(value: Any, s: Schema | None) -> None:
    if s is None:
        # Nothing without a schema is dropped, nor anything below it: the walk would find
        # no schema there either. Returning here skips what the root's schema does not
        # describe, metadata.managedFields above all (an update's stored trees of fieldsV1:
        # two thirds of this walk's time on a session's status write).
        return
    if isinstance(value, dict):
        for key in list(value):
            child = value[key]
            if child is None:
                sub = field_schema(s, key)
                if sub is not None and not sub.get("nullable") and sub.get("default") is None:
                    del value[key]
            elif isinstance(child, CONTAINERS):  # a scalar holds no null
                drop_nulls(child, field_schema(s, key))
    elif isinstance(value, list):
        items = items_of(s)
        for item in value:
            if isinstance(item, CONTAINERS):
                drop_nulls(item, items)


def _default_copy(s: Schema) -> Any:
    value = copy.deepcopy(s.get("default"))
    prune_value(value, s)
    return value


def default_value(value: Any, s: Schema | None) -> None:
    if s is None:
        return
    if isinstance(value, dict):
        _default_object(value, s)
    elif isinstance(value, list):
        items = items_of(s)
        for i, item in enumerate(value):
            if items is not None and _non_nullable_null(item, items):
                value[i] = _default_copy(items)
            if isinstance(value[i], CONTAINERS):  # a scalar has nothing to default
                default_value(value[i], items)


def _default_object(obj: dict[str, Any], s: Schema) -> None:
    props = properties_of(s)
    for key, prop in props.items():
        if prop.get("default") is not None and (
                key not in obj or _non_nullable_null(obj[key], prop)):
            obj[key] = _default_copy(prop)
    extra = additional_of(s)[1]
    for key in list(obj):
        if key in props:
            if isinstance(obj[key], CONTAINERS):
                default_value(obj[key], props[key])
        elif extra is not None:
            if _non_nullable_null(obj[key], extra):
                obj[key] = _default_copy(extra)
            if isinstance(obj[key], CONTAINERS):
                default_value(obj[key], extra)
