"""CRD structural schemas applied to custom resources: pruning, defaulting, validation.

kube-apiserver handles every custom resource body it is about to store (create, update,
patch) in three steps, and :func:`admit` repeats them, in the same order, on the private
copy the caller hands in:

1. **Pruning** (apiextensions-apiserver ``schema/pruning``): fields not declared in
   ``properties`` (or as ``additionalProperties`` map values) are dropped. A node with
   ``x-kubernetes-preserve-unknown-fields`` keeps its *unknown* fields, but fields it does
   declare are still pruned by their own schema. ``apiVersion``, ``kind`` and ``metadata``
   are never pruned at the root nor in ``x-kubernetes-embedded-resource`` objects.
2. **Nulls and defaults** (``schema/defaulting``): a ``null`` for a field that is not
   ``nullable`` and has no ``default`` is removed, as if absent; then ``default`` fills absent
   fields, and non-nullable nulls, in objects that exist. Defaults are applied top-down, so
   a default inside an absent object only appears if the object itself is defaulted.
   Default values are pruned against their schema (kube prunes them when it loads the CRD).
3. **Validation** (kube-openapi ``validate``, converted to field errors by apiextensions
   ``apiserver/validation``; then ``schema/objectmeta`` for embedded resources and
   ``schema/listtype``): ``type``/``nullable``/``format``, ``x-kubernetes-int-or-string``,
   ``allOf``/``anyOf``/``oneOf``/``not``, string, number, array and object keywords,
   ``enum``, ``required``, ``x-kubernetes-embedded-resource`` (apiVersion and kind) and
   ``x-kubernetes-list-type`` ``set``/``map`` uniqueness.

``x-kubernetes-validations`` (CEL rules) are **not evaluated**: there is no CEL interpreter
here, so objects that only a CEL rule would reject are accepted.

Root ``metadata`` belongs to the API server's ObjectMeta handling, not to this module: it is
never pruned here, and of its schema only the ``name``/``generateName`` declarations (the only
ones a CRD may make) are used, for nulls, defaults and checks.

Errors are :class:`~envtest.errors.Cause` values carrying kube's field path,
reason and message body, because clients (kubectl, controller tests) match on them. Their
shapes follow kube exactly, quirks included: keyword failures use kube-openapi's paths
(``spec.items[2].name``; map values as ``spec.labels.key``, since kube-openapi joins map keys
with a dot), while the list-type and embedded-resource checks use field.Path form
(``spec.labels[key]``); failures kube reports without a path (``anyOf``/``oneOf``/``allOf``/
``not``, numeric range overflows) carry the field ``<nil>``, as kube prints it; a value can
fail several keywords and then yields several causes (kube reports a wrong type and a failed
``enum`` separately); ``null`` never satisfies an ``enum``, as in kube-openapi.

Why an own validator rather than ``jsonschema``/``fastjsonschema``: those implement JSON
Schema drafts, not OpenAPI 3.0 as kube reads it (``nullable``, boolean
``exclusiveMinimum``, the ``x-kubernetes-*`` extensions, kube's lenient integer/float and
format rules), and their error paths and texts are not kube's; mapping their output back to
kube's wording per keyword would be as large as checking the keywords directly, and pruning
and defaulting are outside their scope anyway.

Deliberate deviations: numeric bounds and ``multipleOf`` are compared exactly (kube truncates
a fractional bound to an integer when the value is a JSON integer); ``anyOf``/``oneOf``
report the failures of the alternative with the fewest errors (kube's "best match" counts
passed checks); ``pattern`` uses Python's ``re`` (RE2 syntax mostly agrees); the ``email``,
``uri`` and ``hostname`` formats approximate Go's parsers; integers and floats of equal value
compare equal in ``enum``, ``uniqueItems`` and list-type checks; metadata of embedded
resources is not pruned or validated; on updates kube "ratchets" (ignores failures in values
unchanged from the stored object), while :func:`admit` sees only the new object and reports
every failure.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from decimal import Decimal
from email.utils import parseaddr
from types import MappingProxyType
from typing import Any

from envtest.errors import Cause

__all__ = ["admit", "apply_defaults", "prune", "validate"]

Schema = Mapping[str, Any]

NO_FIELD = "<nil>"
"""The field kube reports for errors without a path (it prints a nil field.Path)."""

_META_FIELDS = frozenset({"apiVersion", "kind", "metadata"})
_ROOT_META_KEYS = ("name", "generateName")
_INT64 = (-(2**63), 2**63 - 1)
_INT32 = (-(2**31), 2**31 - 1)
# float32 overflow starts half an ulp above MaxFloat32 (that is where rounding reaches +Inf).
_FLOAT32_LIMIT = (2 - 2**-23) * 2**127 + 2**103
_JSON_INT_LIMIT = 2**53 - 1


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def admit(schema: Schema | None, obj: dict[str, Any]) -> list[Cause]:
    """Prune, default and validate ``obj`` (mutated in place) like kube-apiserver.

    ``schema`` is a CRD version's ``openAPIV3Schema``; without one nothing is done. Returns the
    validation failures, empty when the object may be stored.
    """
    if schema is None:
        return []
    _prune(obj, schema, embedded=True)
    apply_defaults(schema, obj)
    return validate(schema, obj)


def prune(schema: Schema, obj: dict[str, Any]) -> list[str]:
    """Drop the fields of ``obj`` that ``schema`` does not declare (in place); return their
    paths (what ``fieldValidation`` calls unknown fields)."""
    pruned: list[str] = []
    _prune(obj, schema, True, pruned)  # kube treats the root as an embedded resource
    return pruned


def apply_defaults(schema: Schema, obj: dict[str, Any]) -> None:
    """Remove non-nullable nulls without default, then apply defaults (in place)."""
    root = _root_schema(schema)
    _drop_nulls(obj, root)
    _default(obj, root)


def validate(schema: Schema, obj: dict[str, Any]) -> list[Cause]:
    """Check ``obj`` against ``schema``; one cause per failed check, in kube's terms."""
    root = _root_schema(schema)
    causes = _validate(root, obj, "")
    nodes = list(_walk(root, obj, ""))
    for node, value, path in nodes:
        if isinstance(value, dict) and node.get("x-kubernetes-embedded-resource"):
            causes.extend(_check_embedded(value, path))
    for node, value, path in nodes:
        if isinstance(value, list):
            causes.extend(_check_list_type(node, value, path))
    return causes


# --------------------------------------------------------------------------------------------
# Schema access
# --------------------------------------------------------------------------------------------


def _root_schema(schema: Schema) -> Schema:
    """The root schema with ``metadata`` reduced to its name/generateName declarations."""
    props = schema.get("properties")
    if not isinstance(props, Mapping) or not isinstance(props.get("metadata"), Mapping):
        return schema
    declared = props["metadata"].get("properties") or {}
    kept = {k: v for k, v in declared.items() if k in _ROOT_META_KEYS}
    return {**schema, "properties": {**props, "metadata": {"properties": kept}}}


def _properties(s: Schema | None) -> Mapping[str, Schema]:
    props = s.get("properties") if s is not None else None
    return props if isinstance(props, Mapping) else {}


def _items(s: Schema | None) -> Schema | None:
    items = s.get("items") if s is not None else None
    return items if isinstance(items, Mapping) else None


def _additional(s: Schema | None) -> tuple[bool, Schema | None]:
    """Whether undeclared keys are map values, and their schema (None for ``true``)."""
    extra = s.get("additionalProperties") if s is not None else None
    if isinstance(extra, Mapping):
        return True, extra
    return extra is True, None


def _field_schema(s: Schema | None, key: str) -> Schema | None:
    props = _properties(s)
    if key in props:
        return props[key]
    return _additional(s)[1]


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _field(path: str) -> str:
    return path or NO_FIELD


# --------------------------------------------------------------------------------------------
# Pruning
# --------------------------------------------------------------------------------------------


def _prune(value: Any, s: Schema | None, embedded: bool = False,
           pruned: list[str] | None = None, path: str = "") -> None:
    """``pruned``, when given, collects the paths of what is dropped, as kube reports them for
    ``fieldValidation`` (``spec.items[0].extra``); ``path`` is ``value``'s."""
    if s is not None and s.get("x-kubernetes-preserve-unknown-fields"):
        _prune_declared(value, s, embedded, pruned, path)
    elif isinstance(value, dict):
        _prune_object(value, s, embedded, pruned, path)
    elif isinstance(value, list):
        items = _items(s)
        for i, item in enumerate(value):
            _prune(item, items, False, pruned, f"{path}[{i}]" if pruned is not None else "")


def _prune_object(obj: dict[str, Any], s: Schema | None, embedded: bool,
                  pruned: list[str] | None, path: str) -> None:
    if s is None:
        if pruned is not None:
            pruned.extend(_child(path, key) for key in obj)
        obj.clear()
        return
    embedded = embedded or bool(s.get("x-kubernetes-embedded-resource"))
    props = _properties(s)
    has_extra, extra = _additional(s)
    for key in list(obj):
        if embedded and key in _META_FIELDS:
            continue
        if key in props or has_extra:
            sub = props.get(key, extra)
            _prune(obj[key], sub, False, pruned, _child(path, key) if pruned is not None else "")
        else:
            if pruned is not None:
                pruned.append(_child(path, key))
            del obj[key]


def _prune_declared(value: Any, s: Schema, embedded: bool, pruned: list[str] | None,
                    path: str) -> None:
    """Under preserve-unknown-fields: keep unknown fields, prune the declared ones."""
    if isinstance(value, dict):
        embedded = embedded or bool(s.get("x-kubernetes-embedded-resource"))
        props = _properties(s)
        has_extra, extra = _additional(s)
        for key, item in value.items():
            if embedded and key in _META_FIELDS:
                continue
            if key in props or has_extra:
                sub = props.get(key, extra)
                _prune(item, sub, False, pruned, _child(path, key) if pruned is not None else "")
    elif isinstance(value, list):
        items = _items(s)
        if items is not None:
            for i, item in enumerate(value):
                _prune_declared(item, items, False, pruned,
                                f"{path}[{i}]" if pruned is not None else "")


# --------------------------------------------------------------------------------------------
# Nulls and defaults
# --------------------------------------------------------------------------------------------


def _non_nullable_null(value: Any, s: Schema | None) -> bool:
    return value is None and s is not None and not s.get("nullable")


def _drop_nulls(value: Any, s: Schema | None) -> None:
    if isinstance(value, dict):
        for key in list(value):
            sub = _field_schema(s, key)
            if value[key] is None and sub is not None and not sub.get(
                    "nullable") and sub.get("default") is None:
                del value[key]
            else:
                _drop_nulls(value[key], sub)
    elif isinstance(value, list):
        items = _items(s)
        for item in value:
            _drop_nulls(item, items)


def _default_copy(s: Schema) -> Any:
    value = copy.deepcopy(s.get("default"))
    _prune(value, s)
    return value


def _default(value: Any, s: Schema | None) -> None:
    if s is None:
        return
    if isinstance(value, dict):
        _default_object(value, s)
    elif isinstance(value, list):
        items = _items(s)
        for i, item in enumerate(value):
            if items is not None and _non_nullable_null(item, items):
                value[i] = _default_copy(items)
            _default(value[i], items)


def _default_object(obj: dict[str, Any], s: Schema) -> None:
    props = _properties(s)
    for key, prop in props.items():
        if prop.get("default") is not None and (
                key not in obj or _non_nullable_null(obj[key], prop)):
            obj[key] = _default_copy(prop)
    extra = _additional(s)[1]
    for key in list(obj):
        if key in props:
            _default(obj[key], props[key])
        elif extra is not None:
            if _non_nullable_null(obj[key], extra):
                obj[key] = _default_copy(extra)
            _default(obj[key], extra)


# --------------------------------------------------------------------------------------------
# Validation: kube-openapi keywords
# --------------------------------------------------------------------------------------------


def _validate(s: Schema, value: Any, path: str) -> list[Cause]:
    """kube-openapi's SchemaValidator: each check applies by the kind of the value."""
    if isinstance(value, int) and not isinstance(value, bool) and not (
            _INT64[0] <= value <= _INT64[1]):
        value = float(value)  # kube decodes integers beyond int64 as float64
    causes = _check_type(s, value, path)
    if value is None:
        return causes + _check_enum(s, value, path)
    causes += _check_composition(s, value, path)
    if isinstance(value, str):
        causes += _check_string(s, value, path)
        causes += _check_format(s, value, path)
    elif _is_number(value):
        causes += _check_number(s, value, path)
    elif isinstance(value, list):
        causes += _check_array(s, value, path)
    causes += _check_enum(s, value, path)
    if isinstance(value, dict):
        causes += _check_object(s, value, path)
    return causes


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _types(s: Schema) -> list[str]:
    if s.get("x-kubernetes-int-or-string"):
        return ["integer", "string"]
    declared = s.get("type")
    return [declared] if isinstance(declared, str) and declared else []


def _format(s: Schema) -> str:
    """The format kube keeps: unsupported ones are stripped from CRD schemas."""
    fmt = s.get("format")
    if not isinstance(fmt, str) or not fmt:
        return ""
    types = _types(s)
    single = types[0] if len(types) == 1 else ""
    if single in ("", "string"):
        return fmt if fmt.replace("-", "") in _FORMATS else ""
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


def _check_type(s: Schema, value: Any, path: str) -> list[Cause]:
    types, fmt = _types(s), _format(s)
    if not types and not fmt:
        return []
    if value is None:
        if types and "null" not in types and not s.get("nullable"):
            return [_type_invalid(path, ",".join(types), "null")]
        return []
    kind, value_format = _json_kind(value)
    # kube accepts integral floats as integers and integers as numbers.
    fits = (kind in types or (kind == "integer" and "number" in types)
            or (kind == "number" and "integer" in types and _is_json_integer(value)))
    textual = kind in ("string", "array")
    if fmt and not textual and not (fits or value_format == fmt):
        return [_type_invalid(path, fmt, value_format)]
    if fmt and textual and "number" not in types and "integer" not in types:
        return []  # kube skips the type check of formatted strings for strings and arrays
    if not fits:
        return [_type_invalid(path, ",".join(types), kind)]
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
    if isinstance(negated, Mapping) and not _validate(negated, value, path):
        causes.append(_composite(f"{_quote(path)} must not validate the schema (not)"))
    return causes


def _any_of(subs: list[Schema], value: Any, path: str) -> list[Cause]:
    results = []
    for sub in subs:
        result = _validate(sub, value, path)
        if not result:
            return []
        results.append(result)
    best = min(results, key=len)
    return [_composite(f"{_quote(path)} must validate at least one schema (anyOf)"), *best]


def _one_of(subs: list[Schema], value: Any, path: str) -> list[Cause]:
    results = [_validate(sub, value, path) for sub in subs]
    valid = sum(1 for result in results if not result)
    if valid == 1:
        return []
    found = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
    causes = [_composite(
        f"{_quote(path)} must validate one and only one schema (oneOf). {found}")]
    if valid == 0:
        best: list[Cause] = min(results, key=len)
        causes += best
    return causes


def _all_of(subs: list[Schema], value: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    valid = 0
    for sub in subs:
        result = _validate(sub, value, path)
        valid += not result
        causes += result
    if valid != len(subs):
        none = ". None validated" if valid == 0 else ""
        causes.append(_composite(f"{_quote(path)} must validate all the schemas (allOf){none}"))
    return causes


def _check_string(s: Schema, value: str, path: str) -> list[Cause]:
    """maxLength, minLength, pattern: kube stops at the first failure."""
    longest, shortest, pattern = s.get("maxLength"), s.get("minLength"), s.get("pattern")
    if longest is not None and len(value) > longest:
        unit = "byte" if longest == 1 else "bytes"
        return [Cause(_field(path), f"Too long: may not be more than {longest} {unit}",
                      "FieldValueTooLong")]
    if shortest is not None and len(value) < shortest:
        return [_invalid(path, value, f"{path} in body should be at least {shortest} chars long")]
    if pattern:
        try:
            matched = re.search(pattern, value) is not None
        except re.error as err:
            return [_invalid(path, value, f"{path} in body should match '{pattern}, "
                                          f"but pattern is invalid: {err}'")]
        if not matched:
            return [_invalid(path, value, f"{path} in body should match '{pattern}'")]
    return []


def _check_format(s: Schema, value: str, path: str) -> list[Cause]:
    fmt = _format(s)
    check = _FORMATS.get(fmt.replace("-", "")) if fmt else None
    if check is None or check(value):
        return []
    return [_type_invalid(path, fmt, value)]


def _check_number(s: Schema, value: int | float, path: str) -> list[Cause]:
    types = _types(s)
    kind = types[0] if len(types) == 1 and types[0] in ("integer", "number") else ""
    fmt = _format(s) if kind else ""
    causes: list[Cause] = []
    overflow = _out_of_range(value, kind, fmt, "Checked", path)
    if overflow:
        causes.append(_composite(overflow))
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
        causes.append(_composite(overflow))
    if factor <= 0:
        detail = f"factor MultipleOf declared for {path} must be positive: {_bad(factor)}"
        causes.append(_invalid(path, factor, detail))
    elif not _is_multiple(value, factor):
        detail = f"{path} in body should be a multiple of {_bound_text(factor, value)}"
        causes.append(_invalid(path, value, detail))
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
        causes.append(_composite(overflow))
    exclusive = bool(s.get("exclusiveMinimum" if which == "minimum" else "exclusiveMaximum"))
    beyond = value < limit if which == "minimum" else value > limit
    if beyond or (exclusive and value == limit):
        word = "greater than" if which == "minimum" else "less than"
        inclusive = "" if exclusive else " or equal to"
        detail = f"{path} in body should be {word}{inclusive} {_bound_text(limit, value)}"
        causes.append(_invalid(path, value, detail))
    return causes


def _bound_text(limit: int | float, value: int | float) -> str:
    """How kube prints a bound: as an int64 beside integer values, else as a Go float."""
    if isinstance(value, int) and float(limit).is_integer():
        return str(int(limit))
    return _go_float(float(limit))


def _check_array(s: Schema, value: list[Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    items = _items(s)
    if items is not None:
        for i, item in enumerate(value):
            causes += _validate(items, item, f"{path}[{i}]")
    fewest, most = s.get("minItems"), s.get("maxItems")
    if fewest is not None and len(value) < fewest:
        causes.append(_invalid(path, len(value),
                               f"{path} in body should have at least {fewest} items"))
    if most is not None and len(value) > most:
        causes.append(_too_many(path, len(value), most))
    if s.get("uniqueItems") and len({_canon(item) for item in value}) < len(value):
        causes.append(_invalid(path, "", f"{path} in body shouldn't contain duplicates"))
    return causes


def _check_enum(s: Schema, value: Any, path: str) -> list[Cause]:
    allowed = s.get("enum")
    if not allowed:
        return []
    # kube-openapi cannot match a null value against any enum entry, null included.
    if value is not None and _canon(value) in {_canon(option) for option in allowed}:
        return []
    supported = ", ".join(
        _quote(option if isinstance(option, str) else _go_json(option)) for option in allowed)
    return [Cause(_field(path), f"Unsupported value: {_bad(value)}: supported values: "
                                f"{supported}", "FieldValueNotSupported")]


def _check_object(s: Schema, obj: dict[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    fewest, most = s.get("minProperties"), s.get("maxProperties")
    if fewest is not None and len(obj) < fewest:
        causes.append(_invalid(path, len(obj),
                               f"{path} in body should have at least {fewest} properties"))
    if most is not None and len(obj) > most:
        causes.append(_too_many(path, len(obj), most))
    props = _properties(s)
    extra = s.get("additionalProperties")
    for key, item in obj.items():
        if key in props:
            continue
        if extra is False:
            causes.append(_invalid(path, key, f"{path}.{key} in body is a forbidden property"))
        elif isinstance(extra, Mapping):
            causes += _validate(extra, item, _child(path, key))
    for key, prop in props.items():
        if key in obj:
            causes += _validate(prop, obj[key], _child(path, key))
    for key in s.get("required") or ():
        if key not in obj:
            causes.append(Cause(_child(path, key), "Required value", "FieldValueRequired"))
    return causes


# --------------------------------------------------------------------------------------------
# Validation: embedded resources and list types (field.Path addressing)
# --------------------------------------------------------------------------------------------


def _walk(s: Schema, value: Any, path: str) -> Iterator[tuple[Schema, Any, str]]:
    """Every value the structural schema reaches, with its field.Path-style path."""
    yield s, value, path
    if isinstance(value, dict):
        props = _properties(s)
        extra = _additional(s)[1]
        for key, item in value.items():
            if key in props:
                yield from _walk(props[key], item, _child(path, key))
            elif extra is not None:
                yield from _walk(extra, item, f"{path}[{key}]")
    elif isinstance(value, list):
        items = _items(s)
        if items is not None:
            for i, item in enumerate(value):
                yield from _walk(items, item, f"{path}[{i}]")


def _check_embedded(obj: dict[str, Any], path: str) -> list[Cause]:
    causes = [Cause(_child(path, key), "Required value", "FieldValueRequired")
              for key in ("apiVersion", "kind") if key not in obj]
    if "apiVersion" in obj:
        causes += _check_api_version(obj["apiVersion"], _child(path, "apiVersion"))
    if "kind" in obj:
        causes += _check_kind(obj["kind"], _child(path, "kind"))
    return causes


def _check_api_version(value: Any, path: str) -> list[Cause]:
    if not isinstance(value, str):
        return [Cause(path, f"Invalid value: {_bad(value)}: must be a string")]
    if not value:
        return [Cause(path, 'Invalid value: "": must not be empty')]
    if value != "/" and value.count("/") > 1:
        return [Cause(path, f"Invalid value: {_quote(value)}: "
                            f"unexpected GroupVersion string: {value}")]
    return []


_DNS1035 = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    f"'abc-123', regex used for validation is '{_DNS1035}')")


def _check_kind(value: Any, path: str) -> list[Cause]:
    if not isinstance(value, str):
        return [Cause(path, f"Invalid value: {_bad(value)}: must be a string")]
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
    return [Cause(path, f"Invalid value: {_quote(value)}: may have mixed case, but should "
                        f"otherwise match: {','.join(problems)}")]


def _check_list_type(s: Schema, items: list[Any], path: str) -> list[Cause]:
    list_type = s.get("x-kubernetes-list-type")
    if list_type == "set":
        repeated = _second_occurrences([_canon(item) for item in items])
        return [_duplicate(f"{path}[{i}]", _bad(items[i])) for i in repeated]
    if list_type != "map":
        return []
    for i, item in enumerate(items):
        if item is not None and not isinstance(item, dict):
            return [Cause(f"{path}[{i}]", f"Invalid value: {_bad(item)}: "
                                          "must be an object for an array of list-type map")]
    names = list(s.get("x-kubernetes-list-map-keys") or ())
    keys = [{name: item[name] for name in names if item is not None and name in item}
            for item in items]
    repeated = _second_occurrences([_canon(key) for key in keys])
    return [_duplicate(f"{path}[{i}]", _go_json(keys[i])) for i in repeated]


def _second_occurrences(keys: list[Any]) -> list[int]:
    """Indices where a key shows up for the second time (kube reports each repeat once)."""
    seen: dict[Any, int] = {}
    found = []
    for i, key in enumerate(keys):
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            found.append(i)
    return found


def _canon(value: Any) -> Any:
    """A hashable form for equality of JSON values (booleans are not numbers)."""
    if isinstance(value, dict):
        return "object", tuple(sorted((k, _canon(v)) for k, v in value.items()))
    if isinstance(value, list):
        return "array", tuple(_canon(v) for v in value)
    if isinstance(value, bool):
        return "boolean", value
    if isinstance(value, int | float):
        return "number", value
    return type(value).__name__, value


# --------------------------------------------------------------------------------------------
# Causes, worded as apimachinery's field errors render them
# --------------------------------------------------------------------------------------------


def _invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(_field(path), f"Invalid value: {_bad(value)}: {detail}")


def _type_invalid(path: str, type_name: str, value: str) -> Cause:
    detail = f"{path} in body must be of type {type_name}: {_quote(value)}"
    return Cause(_field(path), f"Invalid value: {_quote(value)}: {detail}",
                 "FieldValueTypeInvalid")


def _composite(message: str) -> Cause:
    return Cause(NO_FIELD, f'Invalid value: "": {message}')


def _too_many(path: str, count: int, most: int) -> Cause:
    unit = "item" if most == 1 else "items"
    return Cause(_field(path), f"Too many: {count}: must have at most {most} {unit}",
                 "FieldValueTooMany")


def _duplicate(path: str, shown: str) -> Cause:
    return Cause(path, f"Duplicate value: {shown}", "FieldValueDuplicate")


def _bad(value: Any) -> str:
    """A bad value as field.Error prints it: %v for scalars, %q for strings, else JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return _quote(value)
    return _go_json(value)


_GO_ESCAPES = MappingProxyType({
    '"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
    "\r": "\\r", "\t": "\\t", "\v": "\\v"})


def _quote(text: str) -> str:
    """Go's strconv.Quote (printable Unicode stays as is)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _shortest_digits(number: float) -> tuple[str, str, int]:
    """Sign, shortest round-trip digits and decimal point position of a non-zero float."""
    sign, digits, exponent = Decimal(repr(number)).normalize().as_tuple()
    text = "".join(map(str, digits))
    assert isinstance(exponent, int)
    return ("-" if sign else ""), text, len(text) + exponent


def _plain(sign: str, digits: str, point: int) -> str:
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _scientific(sign: str, digits: str, point: int, width: int) -> str:
    exponent = point - 1
    mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):0{width}d}"


def _go_float(number: float) -> str:
    """Go's %v for a float64: shortest digits, exponent form below 1e-4 or from 1e+06."""
    if number == 0:
        return "-0" if math.copysign(1, number) < 0 else "0"
    if not math.isfinite(number):
        return "NaN" if math.isnan(number) else ("+Inf" if number > 0 else "-Inf")
    sign, digits, point = _shortest_digits(number)
    if point - 1 < -4 or point - 1 >= 6:
        return _scientific(sign, digits, point, 2)
    return _plain(sign, digits, point)


def _go_json_float(number: float) -> str:
    """encoding/json's float form: plain between 1e-6 and 1e21, else a short exponent."""
    if number == 0:
        return "-0" if math.copysign(1, number) < 0 else "0"
    sign, digits, point = _shortest_digits(number)
    if 1e-6 <= abs(number) < 1e21:
        return _plain(sign, digits, point)
    return _scientific(sign, digits, point, 1 if point - 1 < 0 else 2)


def _go_json_string(text: str) -> str:
    escaped = json.dumps(text, ensure_ascii=False)
    for raw, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                      ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        escaped = escaped.replace(raw, code)
    return escaped


def _go_json(value: Any) -> str:
    """encoding/json.Marshal of a JSON value (sorted keys, no spaces, HTML-safe)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_json_float(value)
    if isinstance(value, str):
        return _go_json_string(value)
    if isinstance(value, list):
        return "[" + ",".join(_go_json(item) for item in value) + "]"
    pairs = (f"{_go_json_string(k)}:{_go_json(value[k])}" for k in sorted(value))
    return "{" + ",".join(pairs) + "}"


# --------------------------------------------------------------------------------------------
# String formats CRDs support (kube-openapi strfmt), keyed by name without dashes
# --------------------------------------------------------------------------------------------


def _matches(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern, re.ASCII)  # Go's \d and \s are ASCII-only
    return lambda text: compiled.fullmatch(text) is not None


def _is_date(text: str) -> bool:
    found = re.fullmatch(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", text)
    if found is None:
        return False
    try:
        date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return False
    return True


_CLOCK = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))")


def _is_date_time(text: str) -> bool:
    parts = text.lower().split("t")
    if len(text) < 4 or len(parts) < 2 or not _is_date(parts[0]):
        return False
    clock = _CLOCK.fullmatch(parts[1])
    return clock is not None and clock[1] <= "23" and clock[2] <= "59" and clock[3] <= "59"


_GO_DURATION = re.compile(
    r"[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)")
_DURATION_UNITS = (("ns", "nano"), ("us", "\u00b5s", "micro"), ("ms", "milli"), ("s", "sec"),
                   ("m", "min"), ("h", "hr", "hour"), ("d", "day"), ("w", "wk", "week"))


def _is_duration(text: str) -> bool:
    """Go's time.ParseDuration, or strfmt's lenient "<n> <unit>" fallback."""
    if _GO_DURATION.fullmatch(text):
        return True
    for _, unit in re.findall(r"([0-9]+)\s*([A-Za-z\u00b5]+)", text, re.ASCII):
        unit = unit.strip().lower()
        for variants in _DURATION_UNITS:
            if unit.startswith(variants[-1]) or unit in variants:
                return True
    return False


def _is_ip(text: str) -> bool:
    """net.ParseIP, sloppy about IPv4 leading zeros as Kubernetes is."""
    if re.fullmatch(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", text):
        return all(int(part) <= 255 for part in text.split("."))
    if ":" not in text or "%" in text:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _is_cidr(text: str) -> bool:
    address, slash, prefix = text.partition("/")
    if not slash or not _is_ip(address) or not re.fullmatch("[0-9]+", prefix):
        return False
    return int(prefix) <= (128 if ":" in address else 32)


def _is_mac(text: str) -> bool:
    for separator, width in ((":", 2), ("-", 2), (".", 4)):
        groups = text.split(separator)
        if len(groups) * width // 2 in (6, 8, 20) and all(
                re.fullmatch(f"[0-9A-Fa-f]{{{width}}}", group) for group in groups):
            return True
    return False


_HOST_CHAR = "a-zA-Z0-9$+<=>^`|~\u0080-\U0010ffff"  # \p{L}\p{S}, approximated
_HOSTNAME = re.compile(
    f"[{_HOST_CHAR}]((-?[{_HOST_CHAR}]{{0,62}})?)|([{_HOST_CHAR}](([{_HOST_CHAR}-]{{0,61}}"
    f"[{_HOST_CHAR}])?)(\\.)){{1,}}([a-zA-Z\u0080-\U0010ffff]){{2,63}}")


def _is_hostname(text: str) -> bool:
    return (_HOSTNAME.fullmatch(text) is not None and len(text.encode()) <= 255
            and all(len(part.encode()) <= 63 for part in text.split(".")))


def _is_email(text: str) -> bool:
    """Approximates net/mail.ParseAddress: "addr" or "Name <addr>" with a dot-atom addr."""
    _, address = parseaddr(text)
    atom = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
    return bool(address) and re.fullmatch(rf"{atom}(\.{atom})*@{atom}(\.{atom})*",
                                          address) is not None


def _is_uri(text: str) -> bool:
    """Approximates url.ParseRequestURI: an absolute path, or scheme:// or scheme:/ URI."""
    if not text or re.search("[\x00-\x1f\x7f]", text) or re.search("%(?![0-9A-Fa-f]{2})", text):
        return False
    if text.startswith("/"):
        return True
    found = re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:(/.*)", text, re.DOTALL)
    if found is None:
        return False
    if not found[1].startswith("//"):
        return True
    authority = re.split("[/?]", found[1][2:], maxsplit=1)[0].rpartition("@")[2]
    return re.fullmatch(r"([^\s\[\]<>\"{}|\\^`:]*|\[[0-9A-Fa-f:.]+\])(:[0-9]*)?",
                        authority) is not None


def _is_isbn10(text: str) -> bool:
    digits = re.sub(r"[\s-]+", "", text, flags=re.ASCII)
    if not re.fullmatch("[0-9]{9}X|[0-9]{10}", digits):
        return False
    total = sum((i + 1) * int(d) for i, d in enumerate(digits[:9]))
    return (total + 10 * (10 if digits[9] == "X" else int(digits[9]))) % 11 == 0


def _is_isbn13(text: str) -> bool:
    digits = re.sub(r"[\s-]+", "", text, flags=re.ASCII)
    if not re.fullmatch("[0-9]{13}", digits):
        return False
    total = sum((3 if i % 2 else 1) * int(d) for i, d in enumerate(digits[:12]))
    return int(digits[12]) == (10 - total % 10) % 10


_CREDIT_CARD = re.compile(
    "4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|"
    "3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35[0-9]{3})[0-9]{11}")


def _is_credit_card(text: str) -> bool:
    digits = re.sub("[^0-9]+", "", text)
    if not _CREDIT_CARD.fullmatch(digits):
        return False
    total = 0
    for i, digit in enumerate(int(d) for d in reversed(digits)):
        doubled = digit * 2 if i % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


_UUID = "[0-9a-f]{8}-?[0-9a-f]{4}-?%s[0-9a-f]{3}-?%s[0-9a-f]{3}-?[0-9a-f]{12}"
_SHORT_NAME = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_OCTET = "(0|[1-9][0-9]?|1[0-9][0-9]?|2[0-4][0-9]|25[0-5])"

_FORMATS: Mapping[str, Callable[[str], bool]] = MappingProxyType({
    "bsonobjectid": _matches("[0-9a-fA-F]{24}"),
    "uri": _is_uri,
    "email": _is_email,
    "hostname": _is_hostname,
    "ipv4": lambda text: "." in text and _is_ip(text),
    "ipv6": lambda text: ":" in text and _is_ip(text),
    "cidr": _is_cidr,
    "mac": _is_mac,
    "uuid": _matches("(?i)" + _UUID % ("[0-9a-f]", "[0-9a-f]")),
    "uuid3": _matches("(?i)" + _UUID % ("3", "[0-9a-f]")),
    "uuid4": _matches("(?i)" + _UUID % ("4", "[89ab]")),
    "uuid5": _matches("(?i)" + _UUID % ("5", "[89ab]")),
    "isbn": lambda text: _is_isbn10(text) or _is_isbn13(text),
    "isbn10": _is_isbn10,
    "isbn13": _is_isbn13,
    "creditcard": _is_credit_card,
    "ssn": lambda text: len(text) == 11 and re.fullmatch(
        "[0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{4}", text) is not None,
    "hexcolor": _matches("#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})"),
    "rgbcolor": _matches(rf"rgb\(\s*{_OCTET}\s*,\s*{_OCTET}\s*,\s*{_OCTET}\s*\)"),
    "byte": _matches("(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|"
                     "[A-Za-z0-9+/]{4})"),
    "password": lambda text: True,
    "date": _is_date,
    "duration": _is_duration,
    "datetime": _is_date_time,
    "k8sshortname": lambda text: len(text) <= 63 and re.fullmatch(_SHORT_NAME, text) is not None,
    "k8slongname": lambda text: len(text) <= 253 and re.fullmatch(
        rf"{_SHORT_NAME}(\.{_SHORT_NAME})*", text) is not None,
})
