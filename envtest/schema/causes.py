"""Causes worded as apimachinery's field errors render them (``Invalid value: ...``,
``Duplicate value``, ``Too many``), quoting values as Go renders them (``envtest.codecs.gofmt``)."""

from __future__ import annotations

from typing import Any

from envtest.codecs.gofmt import go_float, go_json, quote
from envtest.errors import Cause
from envtest.schema.tree import NO_FIELD, field_path


def invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(field_path(path), f"Invalid value: {bad(value)}: {detail}")


def type_invalid(path: str, type_name: str, value: str) -> Cause:
    detail = f"{path} in body must be of type {type_name}: {quote(value)}"
    return Cause(field_path(path), f"Invalid value: {quote(value)}: {detail}",
                 "FieldValueTypeInvalid")


def composite(message: str) -> Cause:
    return Cause(NO_FIELD, f'Invalid value: "": {message}')


def too_many(path: str, count: int, most: int) -> Cause:
    unit = "item" if most == 1 else "items"
    return Cause(field_path(path), f"Too many: {count}: must have at most {most} {unit}",
                 "FieldValueTooMany")


def duplicate(path: str, shown: str) -> Cause:
    return Cause(path, f"Duplicate value: {shown}", "FieldValueDuplicate")


def bad(value: Any) -> str:
    """A bad value as field.Error prints it: %v for scalars, %q for strings, else JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return quote(value)
    return go_json(value)
