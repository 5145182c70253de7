"""Kubernetes JSONPath, as kube-apiserver evaluates a CRD's ``additionalPrinterColumns``.

kube-apiserver parses each column's ``jsonPath`` as the template ``{<jsonPath>}`` of client-go's
``util/jsonpath`` with missing keys allowed, and fills the cell from the **first** value found
(apiextensions-apiserver ``registry/customresource/tableconvertor``). This module implements that
language for one action, and :func:`column_cell` the cell conversion:

- fields ``.a.b`` (``\\.`` escapes a dot in a name), ``['a']`` (re-read as ``.a``), ``*`` and
  ``[*]`` wildcards, ``..`` recursive descent, indexes and slices ``[0]``, ``[-1]``, ``[1:3]``,
  ``[::2]``, unions ``[0,2]``, ``['a','b']``; ``@`` and ``$`` are ignored (paths are relative to
  the current value);
- filters ``[?(@.type=="Ready")]`` with ``==``, ``!=``, ``<``, ``>``, ``<=``, ``>=`` against string
  (double or single quoted), integer, float and boolean literals or other paths, and existence
  filters ``[?(@.reason)]``. An item whose left or right side is missing is skipped; comparing
  values of different kinds (a string with a number, an integer with a float) or ordering
  booleans is an error, as in Go's text/template comparisons.

A missing key gives no value (not an error); a JSON ``null`` is a value. Indexing or filtering a
non-array, an index out of range and failed comparisons are errors, and an error leaves the cell
empty. Deviations: map values (wildcard, recursive descent) come in key order (kube's order is
Go's map order); range/end templates and text outside the action are not supported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from envtest.codecs.gofmt import go_float, go_json

__all__ = ["JSONPath", "JSONPathError", "column_cell", "compile_column", "parse"]


class JSONPathError(ValueError):
    """An expression that does not parse, or that fails on the data it is applied to."""


# --------------------------------------------------------------------------------------------
# Nodes: each maps the current values to the next ones
# --------------------------------------------------------------------------------------------

Step = Callable[[list[Any]], list[Any]]


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value[key] for key in sorted(value)]
    if isinstance(value, list):
        return list(value)
    return []


def _field(name: str) -> Step:
    def step(values: list[Any]) -> list[Any]:
        if not name:
            return values
        return [v[name] for v in values if isinstance(v, dict) and name in v]
    return step


def _wildcard(values: list[Any]) -> list[Any]:
    return [child for v in values for child in _children(v)]


def _recursive(values: list[Any]) -> list[Any]:
    found: list[Any] = []
    for value in values:
        children = _children(value)
        if children:
            found.append(value)
            found.extend(_recursive(children))
    return found


@dataclass(frozen=True)
class _Slice:
    start: int | None
    end: int | None
    step: int | None
    derived_end: bool  # [i] is [i:i+1]

    def __call__(self, values: list[Any]) -> list[Any]:
        found: list[Any] = []
        for value in values:
            if value is None:
                continue
            if not isinstance(value, list):
                raise JSONPathError(f"{_go_type(value)} is not array or slice")
            length = len(value)
            start = self.start or 0
            if start < 0:
                start += length
            end = length if self.end is None else self.end
            if end < 0 or (end == 0 and self.derived_end):
                end += length
            if start == end:
                return found  # zero elements asked for (kube stops here, too)
            if start >= length or start < 0:
                raise JSONPathError(f"array index out of bounds: index {start}, length {length}")
            if end > length or end < 0:
                raise JSONPathError(f"array index out of bounds: index {end - 1}, length {length}")
            if start > end:
                raise JSONPathError(f"starting index {start} is greater than ending index {end}")
            step = 1
            if self.step is not None:
                if self.step <= 0:
                    raise JSONPathError("step must be > 0")
                step = self.step
            found.extend(value[start:end:step])
        return found


def _union(branches: list[JSONPath]) -> Step:
    def step(values: list[Any]) -> list[Any]:
        return [found for branch in branches for found in branch.apply(values)]
    return step


def _literal(value: Any) -> Step:
    return lambda values: [value for _ in values]


def _text(value: str) -> Step:
    return lambda values: [value]


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return "interface {}"


def _kind(value: Any) -> str:
    """text/template's basic kinds; anything else cannot be compared."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    raise JSONPathError("invalid type for comparison")


_ORDERS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
}


def _compare(operator: str, left: Any, right: Any) -> bool:
    kinds = (_kind(left), _kind(right))
    if operator in ("==", "!="):
        if kinds[0] != kinds[1]:
            raise JSONPathError("incompatible types for comparison")
        return (left == right) == (operator == "==")
    order = _ORDERS.get(operator)
    if order is None:
        raise JSONPathError(f"unrecognized filter operator {operator}")
    if kinds[0] != kinds[1]:
        raise JSONPathError("incompatible types for comparison")
    if kinds[0] == "bool":
        raise JSONPathError("invalid type for comparison")
    return order(left, right)


@dataclass(frozen=True)
class _Filter:
    left: JSONPath
    right: JSONPath | None  # None: an existence test
    operator: str

    def __call__(self, values: list[Any]) -> list[Any]:
        found: list[Any] = []
        for value in values:
            if not isinstance(value, list):
                raise JSONPathError(f"{go_json(value)} is not array or slice and cannot be "
                                    "filtered")
            for item in value:
                if self.right is None:
                    try:
                        if self.left.apply([item]):
                            found.append(item)
                    except JSONPathError:
                        pass
                    continue
                lefts = self.left.apply([item])
                if not lefts:
                    continue
                if len(lefts) > 1:
                    raise JSONPathError("can only compare one element at a time")
                rights = self.right.apply([item])
                if not rights:
                    continue
                if len(rights) > 1:
                    raise JSONPathError("can only compare one element at a time")
                if _compare(self.operator, lefts[0], rights[0]):
                    found.append(item)
        return found


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

_TERMINATORS = frozenset(" \t\r\n.,[]$@{}")
_SLICE = re.compile(r"(-?\d*)(:-?\d*)?(:-?\d*)?")
_DICT_KEY = re.compile(r"'([^']*)'")
_COMPARISON = re.compile(r"([^!<>=]+)([!<>=]+)(.+?)", re.DOTALL)
_NUMBER = re.compile(r"[-+.0-9eE]+")


@dataclass(frozen=True)
class JSONPath:
    """One parsed expression: :meth:`find` applies it to a JSON value."""

    expression: str
    steps: tuple[Step, ...]

    def apply(self, values: list[Any]) -> list[Any]:
        for step in self.steps:
            values = step(values)
        return values

    def find(self, data: Any) -> list[Any]:
        """Every value the expression reaches in ``data``, in order; raises JSONPathError."""
        return self.apply([data])


def parse(expression: str) -> JSONPath:
    """Parse the inside of one ``{...}`` action (a printer column's ``jsonPath``)."""
    return JSONPath(expression, tuple(_Parser(expression).steps()))


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def steps(self) -> Iterator[Step]:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t" or char in "@$":
                self.pos += 1
            elif text.startswith("..", self.pos):
                self.pos += 2
                yield _recursive
                if self.pos < len(text) and text[self.pos] not in _TERMINATORS:
                    yield self._name()
            elif char == ".":
                self.pos += 1
                yield self._name()
            elif text.startswith("[?(", self.pos):
                yield self._filter()
            elif char == "[":
                yield self._brackets()
            elif char in "\"'":
                yield _text(self._quoted(char))
            elif char == "-" or char.isdigit():
                yield self._number()
            elif text.startswith("true", self.pos) or text.startswith("false", self.pos):
                word = "true" if text.startswith("true", self.pos) else "false"
                self.pos += len(word)
                yield _literal(word == "true")
            else:
                raise JSONPathError(f"unrecognized character in action: {char!r}")

    def _name(self) -> Step:
        start = self.pos
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\":
                self.pos += 2
                continue
            if char in _TERMINATORS:
                break
            self.pos += 1
        name = self.text[start:self.pos]
        if name == "*":
            return _wildcard
        return _field(name.replace("\\", ""))

    def _quoted(self, quote: str) -> str:
        start = self.pos
        self.pos += 1
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\":
                self.pos += 2
                continue
            self.pos += 1
            if char == quote:
                body = self.text[start + 1:self.pos - 1]
                if quote == "'":
                    body = body.replace('\\"', '"').replace("\\'", "'").replace('"', '\\"')
                try:
                    return str(json.loads(f'"{body}"'))
                except ValueError as exc:
                    raise JSONPathError(f"invalid quoted string {self.text[start:self.pos]}"
                                        ) from exc
        raise JSONPathError("unterminated quoted string")

    def _number(self) -> Step:
        found = _NUMBER.match(self.text, self.pos)
        assert found is not None
        self.pos = found.end()
        word = found.group()
        try:
            return _literal(float(word) if "." in word else int(word))
        except ValueError as exc:
            raise JSONPathError(f"cannot parse number {word}") from exc

    def _closing(self, start: int) -> int:
        """The position just after the ``]`` closing the bracket at ``start``."""
        end = self.text.find("]", start)
        if end < 0:
            raise JSONPathError("unterminated array")
        return end + 1

    def _brackets(self) -> Step:
        end = self._closing(self.pos)
        inner = self.text[self.pos + 1:end - 1]
        self.pos = end
        if inner == "*":
            inner = ":"
        parts = inner.split(",")
        if len(parts) > 1:
            return _union([parse(f"[{part.strip()}]") for part in parts])
        key = _DICT_KEY.fullmatch(inner)
        if key is not None:
            path = parse(f".{key[1]}")
            return path.apply
        found = _SLICE.fullmatch(inner)
        if found is None:
            raise JSONPathError(f"invalid array index {inner}")
        start, end_part, step_part = found.groups()
        first = int(start) if start not in ("", "-") else None
        if start == "-":
            raise JSONPathError("array index - is not a number")
        if end_part is None:
            return _Slice(first, (first or 0) + 1, None, True)
        second = _number_or_none(end_part[1:])
        third = _number_or_none(step_part[1:]) if step_part else None
        return _Slice(first, second, third, False)

    def _filter(self) -> Step:
        start = self.pos + len("[?(")
        pos, opened, closed, pair = start, False, False, ""
        while True:
            if pos >= len(self.text) or self.text[pos] == "\n":
                raise JSONPathError("unterminated filter")
            char = self.text[pos]
            pos += 1
            if char in "\"'":
                if not opened:
                    opened, pair = True, char
                elif char == pair and self.text[pos - 2] != "\\":
                    closed = True
            elif char == ")" and opened == closed:
                break
        if pos >= len(self.text) or self.text[pos] != "]":
            raise JSONPathError("unclosed array expect ]")
        self.pos = pos + 1
        body = self.text[start:pos - 1]
        comparison = _COMPARISON.fullmatch(body)
        if comparison is None:
            return _Filter(parse(body), None, "exists")
        return _Filter(parse(comparison[1]), parse(comparison[3]), comparison[2])


def _number_or_none(text: str) -> int | None:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError as exc:
        raise JSONPathError(f"array index {text} is not a number") from exc


# --------------------------------------------------------------------------------------------
# Printer column cells
# --------------------------------------------------------------------------------------------


def _text_of(value: Any) -> str:
    """What client-go's PrintResults writes for one value: JSON for maps and arrays, else Go's
    fmt.Print form."""
    if isinstance(value, dict | list):
        return go_json(value)
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    return str(value)


def column_cell(column_type: str, path: JSONPath | None, obj: Any) -> Any:
    """A custom resource's table cell, as kube-apiserver's CRD table convertor makes it.

    ``None`` (kubectl shows a blank cell) when the path did not parse, fails, or finds nothing;
    otherwise the first value found: as text for ``string`` columns, a number for ``integer``
    (truncated) and ``number``, a boolean for ``boolean``; a ``date`` cell is the timestamp
    string, which the caller turns into an age. A value of the wrong type gives ``None``.
    """
    if path is None:
        return None
    try:
        found = path.find(obj)
    except JSONPathError:
        return None
    if not found:
        return None
    value = found[0]
    if column_type == "string":
        return _text_of(value)
    if value is None or isinstance(value, bool):
        return value if column_type == "boolean" else None
    if column_type == "integer" and isinstance(value, int | float):
        return int(value)
    if column_type == "number" and isinstance(value, int | float):
        return value
    if column_type == "date" and isinstance(value, str):
        return value
    return None


def compile_column(expression: str) -> JSONPath | None:
    """The parsed column path, or None when kube would not accept it either."""
    try:
        return parse(expression)
    except JSONPathError:
        return None
