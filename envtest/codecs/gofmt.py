"""Values rendered as Go renders them, where clients match on the text: ``%q`` of a string,
``%v`` of a float64, and ``encoding/json`` of a JSON value (sorted keys, HTML-safe escapes).
Field errors quote values so (``envtest.schema.causes``), and so does the JSONPath of printer
columns (``envtest.printing.jsonpath``)."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from types import MappingProxyType
from typing import Any

_GO_ESCAPES = MappingProxyType({
    '"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
    "\r": "\\r", "\t": "\\t", "\v": "\\v"})


def quote(text: str) -> str:
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


def go_float(number: float) -> str:
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


def go_json(value: Any) -> str:
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
        return "[" + ",".join(go_json(item) for item in value) + "]"
    pairs = (f"{_go_json_string(k)}:{go_json(value[k])}" for k in sorted(value))
    return "{" + ",".join(pairs) + "}"
