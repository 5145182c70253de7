"""Label and field selectors, parsed and evaluated as kube-apiserver does.

The label selector grammar is apimachinery's ``pkg/labels``: comma-separated requirements
``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists), ``!k`` (does not
exist), ``k>n`` and ``k<n`` (integer comparisons), with keys and values validated as label keys
and values. The same requirements come from a ``metav1.LabelSelector`` dict
(``matchLabels``/``matchExpressions``) through :func:`label_selector_from_dict`.

Field selectors are ``pkg/fields``: comma-separated ``f=v``, ``f==v`` or ``f!=v`` with ``\\``
escaping ``\\``, ``,`` and ``=`` in values; a field missing from an object selects as ``""``.

Parse errors raise :class:`SelectorError`; the server answers them with 400 Bad Request.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "EVERYTHING",
    "NOTHING",
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Operator",
    "Requirement",
    "SelectorError",
    "escape_field_value",
    "label_key_errors",
    "label_selector_from_dict",
    "label_value_errors",
    "parse_field_selector",
    "parse_label_selector",
]


class SelectorError(ValueError):
    """A label or field selector that does not parse or validate."""


class Operator(enum.StrEnum):
    """Requirement operators, spelled as apimachinery's ``selection.Operator``."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


# --------------------------------------------------------------------------------------------
# Label keys and values (k8s.io/apimachinery pkg/api/validate/content)
# --------------------------------------------------------------------------------------------

_NAME_FORMAT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME = re.compile(_NAME_FORMAT)
_VALUE = re.compile(f"({_NAME_FORMAT})?")
_DNS_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
_MAX_NAME = 63
_MAX_PREFIX = 253
_NAME_RULE = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and "
              "end with an alphanumeric character")
# strconv.ParseInt(s, 10, 64): optional sign, ASCII digits, within int64.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INT64 = range(-(2**63), 2**63)


def _length(text: str) -> int:
    return len(text.encode())  # upstream limits count bytes


def label_key_errors(key: str) -> list[str]:
    """Why ``key`` is not a valid label key (an empty list when it is)."""
    parts = key.split("/")
    if len(parts) > 2:
        return [f"a valid label key {_NAME_RULE}, with an optional DNS subdomain prefix and "
                f"'/' (e.g. 'example.com/MyName')"]
    errors = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        elif _length(prefix) > _MAX_PREFIX or not _DNS_SUBDOMAIN.fullmatch(prefix):
            errors.append("prefix part a lowercase RFC 1123 subdomain of at most 253 bytes "
                          "must consist of lower case alphanumeric characters, '-' or '.', "
                          "and must start and end with an alphanumeric character")
    if not name:
        errors.append("name part must be non-empty")
    elif _length(name) > _MAX_NAME:
        errors.append(f"name part must be no more than {_MAX_NAME} bytes")
    if not _NAME.fullmatch(name):
        errors.append(f"name part {_NAME_RULE}")
    return errors


def label_value_errors(value: str) -> list[str]:
    """Why ``value`` is not a valid label value (an empty list when it is)."""
    errors = []
    if _length(value) > _MAX_NAME:
        errors.append(f"must be no more than {_MAX_NAME} bytes")
    if not _VALUE.fullmatch(value):
        errors.append(f"a valid label must be an empty string or {_NAME_RULE}")
    return errors


def _parse_int64(text: str) -> int | None:
    if not _INTEGER.fullmatch(text):
        return None
    number = int(text)
    return number if number in _INT64 else None


# --------------------------------------------------------------------------------------------
# Label selectors
# --------------------------------------------------------------------------------------------

_SET_OPERATORS = frozenset({Operator.IN, Operator.NOT_IN})
_EXACT_OPERATORS = frozenset({Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS})
_UNARY_OPERATORS = frozenset({Operator.EXISTS, Operator.DOES_NOT_EXIST})
_NUMERIC_OPERATORS = frozenset({Operator.GREATER_THAN, Operator.LESS_THAN})


@dataclass(frozen=True)
class Requirement:
    """One validated label requirement; ``values`` are kept sorted and unique.

    Construction validates like apimachinery's ``NewRequirement`` and raises
    :class:`SelectorError` listing every problem.
    """

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        try:
            operator = Operator(self.operator)
        except ValueError:
            raise SelectorError(f"{self.operator!r} is not a valid label selector "
                                f"operator") from None
        values = tuple(self.values)
        if not isinstance(self.key, str) or not all(isinstance(v, str) for v in values):
            raise SelectorError("label selector keys and values must be strings")
        problems = _requirement_problems(self.key, operator, values)
        if problems:
            raise SelectorError("; ".join(problems))
        object.__setattr__(self, "operator", operator)
        object.__setattr__(self, "values", tuple(sorted(set(values))))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement (absent keys satisfy != and notin)."""
        present = self.key in labels
        op = self.operator
        if op is Operator.EXISTS:
            return present
        if op is Operator.DOES_NOT_EXIST:
            return not present
        if op in (Operator.NOT_EQUALS, Operator.NOT_IN):
            return not present or labels[self.key] not in self.values
        if not present:
            return False
        if op in _NUMERIC_OPERATORS:
            actual = _parse_int64(labels[self.key])
            if actual is None:
                return False  # a non-integer label value never compares
            bound = int(self.values[0])
            return actual > bound if op is Operator.GREATER_THAN else actual < bound
        return labels[self.key] in self.values

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        joined = ",".join(self.values)
        if op in _SET_OPERATORS:
            return f"{self.key} {op.value} ({joined})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{joined}"


def _requirement_problems(key: str, op: Operator, values: tuple[str, ...]) -> list[str]:
    problems = [f'invalid label key "{key}": {e}' for e in label_key_errors(key)]
    if op in _SET_OPERATORS and not values:
        problems.append("for 'in', 'notin' operators, values set can't be empty")
    elif op in _EXACT_OPERATORS and len(values) != 1:
        problems.append("exact-match compatibility requires one single value")
    elif op in _UNARY_OPERATORS and values:
        problems.append("values set must be empty for exists and does not exist")
    elif op in _NUMERIC_OPERATORS:
        if len(values) != 1:
            problems.append("for 'Gt', 'Lt' operators, exactly one value is required")
        problems += [f'for \'Gt\', \'Lt\' operators, the value must be an integer, not "{v}"'
                     for v in values if _parse_int64(v) is None]
    for value in values:
        problems += [f'invalid label value "{value}" for key "{key}": {e}'
                     for e in label_value_errors(value)]
    return problems


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements, kept sorted by key (stably, as upstream sorts).

    ``selects_nothing`` is the nil ``metav1.LabelSelector``, which matches no object; its
    string form is empty, like upstream's, so it alone does not round-trip through
    :func:`parse_label_selector`.
    """

    requirements: tuple[Requirement, ...] = ()
    selects_nothing: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.requirements, key=lambda r: r.key))
        object.__setattr__(self, "requirements", ordered)

    @property
    def empty(self) -> bool:
        """Whether the selector does not restrict anything (it matches every object)."""
        return not self.requirements and not self.selects_nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.selects_nothing:
            return False
        present = labels if labels is not None else {}
        return all(r.matches(present) for r in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The one value the selector demands for ``key``, if its first rule on it does."""
        for requirement in self.requirements:
            if requirement.key == key:
                exact = requirement.operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS,
                                                 Operator.IN)
                return requirement.values[0] if exact and len(requirement.values) == 1 else None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(selects_nothing=True)

_LABEL_OPERATORS: Mapping[str, Operator] = MappingProxyType({
    "In": Operator.IN, "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS, "DoesNotExist": Operator.DOES_NOT_EXIST,
})


def label_selector_from_dict(selector: Mapping[str, Any] | None) -> LabelSelector:
    """Convert a ``metav1.LabelSelector`` (as decoded JSON) like ``LabelSelectorAsSelector``.

    ``None`` (an absent selector) matches nothing; ``{}`` matches everything.
    """
    if selector is None:
        return NOTHING
    if not isinstance(selector, Mapping):
        raise SelectorError("a label selector must be an object")
    labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(labels, Mapping) or not isinstance(expressions, list):
        raise SelectorError("matchLabels must be an object and matchExpressions a list")
    requirements = [Requirement(k, Operator.EQUALS, (v,)) for k, v in labels.items()]
    requirements += [_expression_requirement(e) for e in expressions]
    return LabelSelector(tuple(requirements))


def _expression_requirement(expression: Any) -> Requirement:
    if not isinstance(expression, Mapping):
        raise SelectorError("each matchExpressions entry must be an object")
    key, name = expression.get("key"), expression.get("operator")
    operator = _LABEL_OPERATORS.get(name) if isinstance(name, str) else None
    if operator is None:
        raise SelectorError(f'"{name}" is not a valid label selector operator')
    values = expression.get("values") or []
    if not isinstance(key, str) or not isinstance(values, list):
        raise SelectorError("a matchExpressions entry needs a string key and a list of values")
    return Requirement(key, operator, tuple(values))


# --------------------------------------------------------------------------------------------
# Label selector lexer and parser (k8s.io/apimachinery pkg/labels/selector.go)
# --------------------------------------------------------------------------------------------


class _Tok(enum.Enum):
    END = "end of string"
    IDENTIFIER = "identifier"
    OPEN = "("
    CLOSE = ")"
    COMMA = ","
    NOT = "!"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    GREATER = ">"
    LESS = "<"
    IN = "in"
    NOT_IN = "notin"


_SYMBOLS: Mapping[str, _Tok] = MappingProxyType({
    t.value: t for t in _Tok if t not in (_Tok.END, _Tok.IDENTIFIER)})
_SPECIAL = frozenset("=!(),><")
_BLANK = frozenset(" \t\r\n")
_BINARY: Mapping[_Tok, Operator] = MappingProxyType({
    _Tok.IN: Operator.IN, _Tok.NOT_IN: Operator.NOT_IN, _Tok.EQUALS: Operator.EQUALS,
    _Tok.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS, _Tok.NOT_EQUALS: Operator.NOT_EQUALS,
    _Tok.GREATER: Operator.GREATER_THAN, _Tok.LESS: Operator.LESS_THAN,
})

_Token = tuple[_Tok, str]


def _lex(text: str) -> list[_Token]:
    # Upstream's lexer reads a NUL byte as the end of input, so anything after one is ignored.
    text = text.split("\x00", 1)[0]
    tokens: list[_Token] = []
    i = 0
    while True:
        while i < len(text) and text[i] in _BLANK:
            i += 1
        if i == len(text):
            tokens.append((_Tok.END, ""))
            return tokens
        if text[i] in _SPECIAL:
            # Longest operator first: "==" and "!=" are the only two-character symbols.
            symbol = text[i:i + 2] if text[i:i + 2] in ("==", "!=") else text[i]
            tokens.append((_SYMBOLS[symbol], symbol))
            i += len(symbol)
            continue
        start = i
        while i < len(text) and text[i] not in _SPECIAL and text[i] not in _BLANK:
            i += 1
        word = text[start:i]
        tokens.append((_SYMBOLS.get(word, _Tok.IDENTIFIER), word))


class _Parser:
    """Recursive descent over the token list, with upstream's messages."""

    def __init__(self, text: str) -> None:
        self._tokens = _lex(text)
        self._position = 0

    def _peek(self, *, values: bool = True) -> _Token:
        return self._as_value(self._tokens[self._position], values)

    def _next(self, *, values: bool = True) -> _Token:
        token = self._tokens[self._position]
        self._position += 1
        return self._as_value(token, values)

    @staticmethod
    def _as_value(token: _Token, values: bool) -> _Token:
        # "in" and "notin" are plain words wherever a key or value may stand.
        if values and token[0] in (_Tok.IN, _Tok.NOT_IN):
            return _Tok.IDENTIFIER, token[1]
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, literal = self._peek()
            if tok is _Tok.END:
                return requirements
            if tok not in (_Tok.IDENTIFIER, _Tok.NOT):
                raise SelectorError(f"found '{literal}', expected: !, identifier, or "
                                    f"'end of string'")
            try:
                requirements.append(self._requirement())
            except SelectorError as exc:
                raise SelectorError(f"unable to parse requirement: {exc}") from None
            tok, literal = self._next()
            if tok is _Tok.END:
                return requirements
            if tok is not _Tok.COMMA:
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            tok, literal = self._peek()
            if tok not in (_Tok.IDENTIFIER, _Tok.NOT):
                raise SelectorError(f"found '{literal}', expected: identifier after ','")

    def _requirement(self) -> Requirement:
        key, unary = self._key()
        if unary is not None:
            return Requirement(key, unary)
        tok, literal = self._next(values=False)
        operator = _BINARY.get(tok)
        if operator is None:
            raise SelectorError(f"found '{literal}', expected: "
                                f"{', '.join(op.value for op in _BINARY.values())}")
        values = self._set() if operator in _SET_OPERATORS else self._exact_value()
        return Requirement(key, operator, values)

    def _key(self) -> tuple[str, Operator | None]:
        """The key, and the unary operator when no binary one follows."""
        tok, literal = self._next()
        unary = None
        if tok is _Tok.NOT:
            unary = Operator.DOES_NOT_EXIST
            tok, literal = self._next()
        if tok is not _Tok.IDENTIFIER:
            raise SelectorError(f"found '{literal}', expected: identifier")
        if errors := label_key_errors(literal):
            raise SelectorError(f'invalid label key "{literal}": {"; ".join(errors)}')
        if unary is None and self._peek()[0] in (_Tok.END, _Tok.COMMA):
            unary = Operator.EXISTS
        return literal, unary

    def _set(self) -> tuple[str, ...]:
        tok, literal = self._next()
        if tok is not _Tok.OPEN:
            raise SelectorError(f"found '{literal}' expected: '('")
        tok, literal = self._peek()
        if tok is _Tok.CLOSE:  # "()" is the set holding the empty value
            self._next()
            return ("",)
        if tok not in (_Tok.IDENTIFIER, _Tok.COMMA):
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self._set_members()
        if self._next()[0] is not _Tok.CLOSE:
            raise SelectorError(f"found '{literal}', expected: ')'")
        return values

    def _set_members(self) -> tuple[str, ...]:
        """Comma-separated values up to ")"; a missing value between commas is ""."""
        values: list[str] = []
        while True:
            tok, literal = self._next()
            if tok is _Tok.IDENTIFIER:
                values.append(literal)
                after, after_literal = self._peek()
                if after is _Tok.CLOSE:
                    return tuple(values)
                if after is not _Tok.COMMA:
                    raise SelectorError(f"found '{after_literal}', expected: ',' or ')'")
            elif tok is _Tok.COMMA:
                if not values or self._peek()[0] in (_Tok.CLOSE, _Tok.COMMA):
                    values.append("")
                if self._peek()[0] is _Tok.CLOSE:
                    return tuple(values)
            else:
                raise SelectorError(f"found '{literal}', expected: ',', or identifier")

    def _exact_value(self) -> tuple[str, ...]:
        if self._peek()[0] in (_Tok.END, _Tok.COMMA):
            return ("",)
        tok, literal = self._next()
        if tok is not _Tok.IDENTIFIER:
            raise SelectorError(f"found '{literal}', expected: identifier")
        return (literal,)


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a ``labelSelector`` query parameter; ``""`` selects everything."""
    return LabelSelector(tuple(_Parser(text).parse()))


# --------------------------------------------------------------------------------------------
# Field selectors (k8s.io/apimachinery pkg/fields/selector.go)
# --------------------------------------------------------------------------------------------

# Checked in this order at each position, so "a==b" splits at "==" and keeps no "=" in b.
_FIELD_OPERATORS = ("!=", "==", "=")


@dataclass(frozen=True)
class FieldRequirement:
    """``field = value`` or ``field != value`` (``==`` is stored as ``=``)."""

    field: str
    operator: Operator
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return equal if self.operator is Operator.EQUALS else not equal

    def __str__(self) -> str:
        symbol = "=" if self.operator is Operator.EQUALS else "!="
        return f"{self.field}{symbol}{escape_field_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of field requirements, in the order upstream sorts their terms."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        """Whether the object's selectable ``fields`` satisfy every term; absent ones are ""."""
        return all(r.matches(fields) for r in self.requirements)

    def requires_exact_match(self, name: str) -> str | None:
        for requirement in self.requirements:
            if requirement.field == name and requirement.operator is Operator.EQUALS:
                return requirement.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def escape_field_value(value: str) -> str:
    """Escape ``\\``, ``,`` and ``=`` so ``value`` can stand in a field selector."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def parse_field_selector(text: str, *, allowed: Collection[str]) -> FieldSelector:
    """Parse a ``fieldSelector`` query parameter; every field must be in ``allowed``.

    Terms are sorted and empty ones skipped, as upstream does; nothing is trimmed, so
    ``"a = b"`` selects field ``"a "``. The first unsupported field, in sorted order, is
    reported as kube-apiserver does: ``field label not supported: <field>``.
    """
    requirements = [_field_requirement(text, term)
                    for term in sorted(_split_terms(text)) if term]
    for requirement in requirements:
        if requirement.field not in allowed:
            raise SelectorError(f"field label not supported: {requirement.field}")
    return FieldSelector(tuple(requirements))


def _split_terms(text: str) -> list[str]:
    """Split at commas that no backslash escapes (escapes stay in the terms)."""
    if not text:
        return []
    terms, start, escaped = [], 0, False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return terms


def _field_requirement(text: str, term: str) -> FieldRequirement:
    for index in range(len(term)):
        for symbol in _FIELD_OPERATORS:
            if term.startswith(symbol, index):
                operator = Operator.NOT_EQUALS if symbol == "!=" else Operator.EQUALS
                value = _unescape_field_value(term[index + len(symbol):])
                return FieldRequirement(term[:index], operator, value)
    raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")


def _unescape_field_value(raw: str) -> str:
    out: list[str] = []
    escaped = False
    for char in raw:
        if escaped:
            if char not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{char}")
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            raise SelectorError(f"invalid field selector: unescaped character in value: "
                                f"{char!r}")
        else:
            out.append(char)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)

