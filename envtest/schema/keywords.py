"""Validation by kube-openapi's keywords, as apiextensions converts them to field errors:
type, nullable and format, int-or-string, allOf/anyOf/oneOf/not, string, number, array and
object keywords, enum and required; paths in kube-openapi's form (``spec.items[2].name``)."""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from envtest.codecs.gofmt import go_float, go_json, quote
from envtest.errors import Cause
from envtest.schema.causes import bad, composite, invalid, too_many, type_invalid
from envtest.schema.formats import FORMATS
from envtest.schema.listtypes import canonical
from envtest.schema.tree import Schema, child_path, field_path, is_mapping, items_of, properties_of

_INT64 = (-(2**63), 2**63 - 1)
_INT32 = (-(2**31), 2**31 - 1)
# float32 overflow starts half an ulp above MaxFloat32 (that is where rounding reaches +Inf).
_FLOAT32_LIMIT = (2 - 2**-23) * 2**127 + 2**103
_JSON_INT_LIMIT = 2**53 - 1


_NO_OLD: Any = object()
"""No old value to ratchet against: a create, or a value with no counterpart in the old
object."""


def validate_value(s: Schema, value: Any, path: str, old: Any = _NO_OLD) -> list[Cause]:
    """kube-openapi's SchemaValidator: each check applies by the kind of the value.

    ``old``: the value at the same place in the stored object, on an update. A value unchanged
    from it passes whatever it holds (kube's validation ratcheting); an object's properties
    and map values are compared with the old object's under the same key. List items, and
    the alternatives of ``anyOf``/``oneOf``/``allOf``/``not``, are checked without one.
    """
    if old is not _NO_OLD and _unchanged(value, old):
        return []
    if isinstance(value, int) and not isinstance(value, bool) and not (
            _INT64[0] <= value <= _INT64[1]):
        value = float(value)  # kube decodes integers beyond int64 as float64
    # Each check is skipped where the node lacks every keyword it reads (it would find
    # nothing): validation visits every value of every write, most nodes have one keyword.
    types = _types(s)
    fmt = _format(s, types) if "format" in s else ""
    causes = _check_type(s, value, path, types, fmt) if types or fmt else []
    enum = "enum" in s
    if value is None:
        return causes + _check_enum(s, value, path) if enum else causes
    if not _COMPOSITION.isdisjoint(s):
        causes += _check_composition(s, value, path)
    if isinstance(value, str):
        if not _STRING_KEYWORDS.isdisjoint(s):
            causes += _check_string(s, value, path)
        if fmt:
            causes += _check_format(fmt, value, path)
    elif _is_number(value):
        causes += _check_number(s, value, path, types, fmt)
    elif isinstance(value, list):
        causes += _check_array(s, value, path)
    if enum:
        causes += _check_enum(s, value, path)
    if isinstance(value, dict):
        causes += _check_object(s, value, path, old if isinstance(old, dict) else None)
    return causes


def _unchanged(value: Any, old: Any) -> bool:
    """Whether ``value`` is the same JSON as ``old`` (Go's DeepEqual of the decoded values:
    ``1`` is not ``1.0`` nor ``true``, which Python's ``==`` alone would take as equal)."""
    if value is old:
        return True
    if value != old:
        return False
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            old, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: check it
        return False


_COMPOSITION = frozenset({"anyOf", "oneOf", "allOf", "not"})
_STRING_KEYWORDS = frozenset({"maxLength", "minLength", "pattern"})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _types(s: Schema) -> list[str]:
    if s.get("x-kubernetes-int-or-string"):
        return ["integer", "string"]
    declared = s.get("type")
    return [declared] if isinstance(declared, str) and declared else []


def _format(s: Schema, types: list[str]) -> str:
    """The format kube keeps (``types``: :func:`_types`): unsupported ones are stripped from
    CRD schemas."""
    fmt = s.get("format")
    if not isinstance(fmt, str) or not fmt:
        return ""
    single = types[0] if len(types) == 1 else ""
    if single in ("", "string"):
        return fmt if fmt.replace("-", "") in FORMATS else ""
    if single == "integer":
        return fmt if fmt in ("int32", "int64") else ""
    if single == "number":
        return fmt if fmt in ("float", "double") else ""
    return ""


def _json_kind(value: Any) -> tuple[str, str]:
    """The JSON type of a value and the Go format kube infers for it."""
    if isinstance(value, bool):
        return "boolean", ""
    if isinstance(value, int):
        return "integer", "int64"
    if isinstance(value, float):
        return "number", "float64"
    if isinstance(value, str):
        return "string", ""
    if isinstance(value, list):
        return "array", ""
    return "object", ""


def _check_type(s: Schema, value: Any, path: str, types: list[str], fmt: str) -> list[Cause]:
    if not types and not fmt:
        return []
    if value is None:
        if types and "null" not in types and not s.get("nullable"):
            return [type_invalid(path, ",".join(types), "null")]
        return []
    kind, value_format = _json_kind(value)
    # kube accepts integral floats as integers and integers as numbers.
    fits = (kind in types or (kind == "integer" and "number" in types)
            or (kind == "number" and "integer" in types and _is_json_integer(value)))
    textual = kind in ("string", "array")
    if fmt and not textual and not (fits or value_format == fmt):
        return [type_invalid(path, fmt, value_format)]
    if fmt and textual and "number" not in types and "integer" not in types:
        return []  # kube skips the type check of formatted strings for strings and arrays
    if not fits:
        return [type_invalid(path, ",".join(types), kind)]
    return []


def _is_json_integer(f: float) -> bool:
    if not math.isfinite(f) or abs(f) > _JSON_INT_LIMIT:
        return False
    rounded = round(f)
    return f == rounded or (rounded != 0 and abs(f - rounded) < 1e-9 * abs(rounded))


def _check_composition(s: Schema, value: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if s.get("anyOf"):
        causes += _any_of(s["anyOf"], value, path)
    if s.get("oneOf"):
        causes += _one_of(s["oneOf"], value, path)
    if s.get("allOf"):
        causes += _all_of(s["allOf"], value, path)
    negated = s.get("not")
    if is_mapping(negated) and not validate_value(negated, value, path):
        causes.append(composite(f"{quote(path)} must not validate the schema (not)"))
    return causes


def _any_of(subs: list[Schema], value: Any, path: str) -> list[Cause]:
    results = []
    for sub in subs:
        result = validate_value(sub, value, path)
        if not result:
            return []
        results.append(result)
    best = min(results, key=len)
    return [composite(f"{quote(path)} must validate at least one schema (anyOf)"), *best]


def _one_of(subs: list[Schema], value: Any, path: str) -> list[Cause]:
    results = [validate_value(sub, value, path) for sub in subs]
    valid = sum(1 for result in results if not result)
    if valid == 1:
        return []
    found = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
    causes = [composite(
        f"{quote(path)} must validate one and only one schema (oneOf). {found}")]
    if valid == 0:
        best: list[Cause] = min(results, key=len)
        causes += best
    return causes


def _all_of(subs: list[Schema], value: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    valid = 0
    for sub in subs:
        result = validate_value(sub, value, path)
        valid += not result
        causes += result
    if valid != len(subs):
        none = ". None validated" if valid == 0 else ""
        causes.append(composite(f"{quote(path)} must validate all the schemas (allOf){none}"))
    return causes


def _check_string(s: Schema, value: str, path: str) -> list[Cause]:
    """maxLength, minLength, pattern: kube stops at the first failure."""
    longest, shortest, pattern = s.get("maxLength"), s.get("minLength"), s.get("pattern")
    if longest is not None and len(value) > longest:
        unit = "byte" if longest == 1 else "bytes"
        return [Cause(field_path(path), f"Too long: may not be more than {longest} {unit}",
                      "FieldValueTooLong")]
    if shortest is not None and len(value) < shortest:
        return [invalid(path, value, f"{path} in body should be at least {shortest} chars long")]
    if pattern:
        try:
            matched = re.search(pattern, value) is not None
        except re.error as err:
            return [invalid(path, value, f"{path} in body should match '{pattern}, "
                                          f"but pattern is invalid: {err}'")]
        if not matched:
            return [invalid(path, value, f"{path} in body should match '{pattern}'")]
    return []


def _check_format(fmt: str, value: str, path: str) -> list[Cause]:
    check = FORMATS.get(fmt.replace("-", "")) if fmt else None
    if check is None or check(value):
        return []
    return [type_invalid(path, fmt, value)]


def _check_number(s: Schema, value: int | float, path: str, types: list[str],
                  declared_format: str) -> list[Cause]:
    kind = types[0] if len(types) == 1 and types[0] in ("integer", "number") else ""
    fmt = declared_format if kind else ""
    causes: list[Cause] = []
    overflow = _out_of_range(value, kind, fmt, "Checked", path)
    if overflow:
        causes.append(composite(overflow))
    causes += _check_multiple_of(s, value, path, kind, fmt)
    causes += _check_bound(s, value, path, (kind, fmt), "minimum")
    causes += _check_bound(s, value, path, (kind, fmt), "maximum")
    return causes


def _out_of_range(value: int | float, kind: str, fmt: str, what: str, path: str) -> str:
    """kube's check that a number (value or bound) fits the declared type and format."""
    if kind == "integer":
        low, high = _INT32 if fmt == "int32" else _INT64
        fits = (isinstance(value, int) or float(value).is_integer()) and low <= value <= high
    elif kind == "number" and fmt == "float":
        fits = abs(value) < _FLOAT32_LIMIT
    else:
        return ""
    if fits:
        return ""
    if fmt:
        return f"{what} value must be of type {kind} with format {fmt} in {path}"
    return f"{what} value must be of type {kind} (default format) in {path}"


def _check_multiple_of(s: Schema, value: int | float, path: str, kind: str,
                       fmt: str) -> list[Cause]:
    factor: Any = s.get("multipleOf")
    if not _is_number(factor):
        return []
    causes: list[Cause] = []
    overflow = _out_of_range(factor, kind, fmt, "MultipleOf", path)
    if overflow:
        causes.append(composite(overflow))
    if factor <= 0:
        detail = f"factor MultipleOf declared for {path} must be positive: {bad(factor)}"
        causes.append(invalid(path, factor, detail))
    elif not _is_multiple(value, factor):
        detail = f"{path} in body should be a multiple of {_bound_text(factor, value)}"
        causes.append(invalid(path, value, detail))
    return causes


def _is_multiple(value: int | float, factor: int | float) -> bool:
    if isinstance(value, int) and float(factor).is_integer():
        return value % int(factor) == 0
    ratio = (1 / factor) * value if factor < 1 else value / factor
    return _is_json_integer(ratio)


def _check_bound(s: Schema, value: int | float, path: str, declared: tuple[str, str],
                 which: str) -> list[Cause]:
    limit: Any = s.get(which)
    if not _is_number(limit):
        return []
    causes: list[Cause] = []
    overflow = _out_of_range(limit, *declared, f"{which.capitalize()} boundary", path)
    if overflow:
        causes.append(composite(overflow))
    exclusive = bool(s.get("exclusiveMinimum" if which == "minimum" else "exclusiveMaximum"))
    beyond = value < limit if which == "minimum" else value > limit
    if beyond or (exclusive and value == limit):
        word = "greater than" if which == "minimum" else "less than"
        inclusive = "" if exclusive else " or equal to"
        detail = f"{path} in body should be {word}{inclusive} {_bound_text(limit, value)}"
        causes.append(invalid(path, value, detail))
    return causes


def _bound_text(limit: int | float, value: int | float) -> str:
    """How kube prints a bound: as an int64 beside integer values, else as a Go float."""
    if isinstance(value, int) and float(limit).is_integer():
        return str(int(limit))
    return go_float(float(limit))


def _check_array(s: Schema, value: list[Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    items = items_of(s)
    if items is not None:
        for i, item in enumerate(value):
            causes += validate_value(items, item, f"{path}[{i}]")
    fewest, most = s.get("minItems"), s.get("maxItems")
    if fewest is not None and len(value) < fewest:
        causes.append(invalid(path, len(value),
                               f"{path} in body should have at least {fewest} items"))
    if most is not None and len(value) > most:
        causes.append(too_many(path, len(value), most))
    if s.get("uniqueItems") and len({canonical(item) for item in value}) < len(value):
        causes.append(invalid(path, "", f"{path} in body shouldn't contain duplicates"))
    return causes


def _check_enum(s: Schema, value: Any, path: str) -> list[Cause]:
    allowed = s.get("enum")
    if not allowed:
        return []
    # kube-openapi cannot match a null value against any enum entry, null included.
    if value is not None and canonical(value) in {canonical(option) for option in allowed}:
        return []
    supported = ", ".join(
        quote(option if isinstance(option, str) else go_json(option)) for option in allowed)
    return [Cause(field_path(path), f"Unsupported value: {bad(value)}: supported values: "
                                f"{supported}", "FieldValueNotSupported")]


def _check_object(s: Schema, obj: dict[str, Any], path: str,
                  old: dict[str, Any] | None = None) -> list[Cause]:
    causes: list[Cause] = []
    fewest, most = s.get("minProperties"), s.get("maxProperties")
    if fewest is not None and len(obj) < fewest:
        causes.append(invalid(path, len(obj),
                               f"{path} in body should have at least {fewest} properties"))
    if most is not None and len(obj) > most:
        causes.append(too_many(path, len(obj), most))
    props = properties_of(s)
    extra = s.get("additionalProperties")
    for key, item in obj.items():
        if key in props:
            continue
        if extra is False:
            causes.append(invalid(path, key, f"{path}.{key} in body is a forbidden property"))
        elif is_mapping(extra):
            causes += validate_value(extra, item, child_path(path, key),
                                     _NO_OLD if old is None else old.get(key, _NO_OLD))
    for key, prop in props.items():
        if key in obj:
            causes += validate_value(prop, obj[key], child_path(path, key),
                                     _NO_OLD if old is None else old.get(key, _NO_OLD))
    for key in s.get("required") or ():
        if key not in obj:
            causes.append(Cause(child_path(path, key), "Required value", "FieldValueRequired"))
    return causes
