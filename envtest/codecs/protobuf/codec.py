"""Decode Kubernetes protobuf request bodies into the dicts a JSON request would produce.

kubectl's typed clients (``kubectl create namespace|configmap|secret|serviceaccount|service``,
``kubectl create deployment|role|rolebinding|clusterrole|clusterrolebinding``, ``kubectl
debug``, ``kubectl create token``) POST ``application/vnd.kubernetes.protobuf`` and never fall
back to JSON (``kubectl run`` and ``kubectl expose`` send JSON), so the envtest API server turns
such a body into the same JSON-shaped dict it would have parsed from ``application/json``.

Wire format: the body is the magic ``k8s\\x00`` followed by a ``runtime.Unknown`` message whose
``typeMeta`` names the kind and whose ``raw`` bytes are the object's own message.  A message is a
sequence of fields, each a varint key (field number << 3 | wire type) followed by a varint, a
little-endian 64- or 32-bit value, or a varint length and that many bytes (strings, bytes,
nested messages, map entries and packed repeated numbers).

The schema is data, not code (:mod:`.tables`, merging each group's tables). Rendering follows
``encoding/json`` over upstream's Go structs, so a field is dropped or kept exactly when
kubectl's own ``-o json`` would drop or keep it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any, Final, NamedTuple

from envtest.codecs.protobuf.tables import FIELDS, SUPPORTED_KINDS, Field

__all__ = ["MAGIC", "ProtobufError", "decode_object"]

MAGIC: Final = b"k8s\x00"



class ProtobufError(ValueError):
    """A protobuf body that is malformed or holds a kind this decoder does not know."""


_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
_WIRE_NAMES: Final = {_VARINT: "varint", _FIXED64: "64-bit", _BYTES: "length-delimited",
                      _FIXED32: "32-bit"}
_MAX_FIELD_NUMBER: Final = (1 << 29) - 1
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# Go's zero time.Time, which metav1.Time and MicroTime render as JSON null.
_GO_ZERO_TIME: Final = dt.datetime(1, 1, 1, tzinfo=dt.UTC)


class _Occurrence(NamedTuple):
    wire: int
    # A varint or fixed-width value, or for length-delimited fields the [value, end) span of
    # the payload within the body; spans keep error offsets absolute and avoid copying.
    value: int
    end: int
    offset: int


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    start = pos
    result = 0
    for shift in range(0, 70, 7):
        if pos >= end:
            raise ProtobufError(f"truncated varint at offset {start}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if result >> 64:
                raise ProtobufError(f"varint overflows 64 bits at offset {start}")
            return result, pos
    raise ProtobufError(f"varint longer than 10 bytes at offset {start}")


def _scan(buf: bytes, start: int, end: int) -> dict[int, list[_Occurrence]]:
    """Split one message into its fields; unknown fields are checked for shape, then ignored."""
    fields: dict[int, list[_Occurrence]] = {}
    pos = start
    while pos < end:
        key_at = pos
        key, pos = _read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if not 0 < number <= _MAX_FIELD_NUMBER:
            raise ProtobufError(f"invalid field number {number} at offset {key_at}")
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos, end)
            occurrence = _Occurrence(wire, value, pos, key_at)
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if end - pos < size:
                raise ProtobufError(
                    f"truncated {size * 8}-bit field {number} at offset {key_at}"
                )
            value = int.from_bytes(buf[pos:pos + size], "little")
            pos += size
            occurrence = _Occurrence(wire, value, pos, key_at)
        elif wire == _BYTES:
            length, pos = _read_varint(buf, pos, end)
            if length > end - pos:
                raise ProtobufError(
                    f"truncated length-delimited field {number} at offset {key_at}: "
                    f"needs {length} bytes, {end - pos} left"
                )
            occurrence = _Occurrence(wire, pos, pos + length, key_at)
            pos += length
        else:
            # Groups (3, 4) are never used by Kubernetes and 6, 7 do not exist.
            raise ProtobufError(f"unsupported wire type {wire} at offset {key_at}")
        fields.setdefault(number, []).append(occurrence)
    return fields


def _expect(occurrence: _Occurrence, wire: int, owner: str, field: Field) -> None:
    if occurrence.wire != wire:
        raise ProtobufError(
            f"{owner}.{field.name or field.type} (field {field.number}) at offset "
            f"{occurrence.offset} is {_WIRE_NAMES.get(occurrence.wire, occurrence.wire)}, "
            f"expected {_WIRE_NAMES[wire]}"
        )


def _signed(value: int, bits: int) -> int:
    # Go's generated code accumulates int32 fields in an int32, keeping only the low bits.
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _message(buf: bytes, spans: list[tuple[int, int]], name: str) -> dict[str, Any]:
    """Render one message; several spans are merged, as protobuf does for repeated singulars."""
    found: dict[int, list[_Occurrence]] = {}
    for start, end in spans:
        for number, scanned in _scan(buf, start, end).items():
            found.setdefault(number, []).extend(scanned)
    out: dict[str, Any] = {}
    for field in FIELDS[name].values():
        occurrences = found.get(field.number)
        if field.rule == "^":
            inner = [_span(o, name, field) for o in occurrences or ()]
            out.update(_message(buf, inner, field.type))
        elif occurrences is None:
            if field.rule in "kn":
                out[field.name] = _zero(field)
        else:
            value = _value(buf, occurrences, name, field)
            # "o" mirrors omitempty: Go writes zero scalars on the wire but JSON drops them.
            if (field.rule == "o" and not value) or (field.rule == "z" and value is None):
                continue
            out[field.name] = value
    return out


def _span(occurrence: _Occurrence, owner: str, field: Field) -> tuple[int, int]:
    _expect(occurrence, _BYTES, owner, field)
    return occurrence.value, occurrence.end


def _value(buf: bytes, occurrences: list[_Occurrence], owner: str, field: Field) -> Any:
    if field.is_map:
        return _map(buf, occurrences, owner, field)
    if field.repeated:
        return [item for o in occurrences for item in _elements(buf, o, owner, field)]
    if field.type in FIELDS:
        return _message(buf, [_span(o, owner, field) for o in occurrences], field.type)
    return _scalar(buf, occurrences[-1], owner, field)


def _elements(buf: bytes, occurrence: _Occurrence, owner: str, field: Field) -> Iterator[Any]:
    if field.type in _NUMERIC and occurrence.wire == _BYTES:
        # Packed encoding: proto2 parsers must accept it even though gogo never writes it.
        pos, end = occurrence.value, occurrence.end
        while pos < end:
            at = pos
            value, pos = _read_varint(buf, pos, end)
            yield _scalar(buf, _Occurrence(_VARINT, value, pos, at), owner, field)
    else:
        yield _scalar(buf, occurrence, owner, field)


def _map(
    buf: bytes, occurrences: list[_Occurrence], owner: str, field: Field
) -> dict[str, Any]:
    # Map entries are messages {1: key, 2: value}; encoding/json sorts map keys.
    key_field = Field(1, field.name + " key", "string", False, False, "k")
    value_field = Field(2, field.name + " value", field.type, False, False, "k")
    entries: dict[str, Any] = {}
    for occurrence in occurrences:
        entry = _scan(buf, *_span(occurrence, owner, field))
        key = entry.get(1)
        value = entry.get(2)
        entries[_scalar(buf, key[-1], owner, key_field) if key else ""] = (
            _scalar(buf, value[-1], owner, value_field) if value else _zero(value_field)
        )
    return dict(sorted(entries.items()))


def _scalar(buf: bytes, occurrence: _Occurrence, owner: str, field: Field) -> Any:
    if field.type in _NUMERIC:
        _expect(occurrence, _VARINT, owner, field)
        if field.type == "bool":
            return occurrence.value != 0
        return _signed(occurrence.value, 32 if field.type == "int32" else 64)
    start, end = _span(occurrence, owner, field)
    if field.type == "string":
        # Go's encoding/json also replaces invalid UTF-8 with U+FFFD.
        return buf[start:end].decode("utf-8", "replace")
    if field.type == "bytes":
        return base64.b64encode(buf[start:end]).decode("ascii")
    if field.type in FIELDS:
        return _message(buf, [(start, end)], field.type)
    return _SPECIAL[field.type](buf, start, end)


def _zero(field: Field) -> Any:
    """The JSON encoding of an unset Go field (nil for pointers, slices and maps)."""
    if field.rule == "n" or field.repeated or field.is_map:
        return None
    if field.type in FIELDS:
        return _message(b"", [], field.type)
    return _ZEROS[field.type]


def _only(buf: bytes, start: int, end: int, owner: str, *fields: Field) -> list[Any]:
    """Decode a small fixed message into a list of values (None where unset)."""
    found = _scan(buf, start, end)
    return [
        _scalar(buf, found[f.number][-1], owner, f) if f.number in found else None
        for f in fields
    ]


_SECONDS = Field(1, "seconds", "int64", False, False, "k")
_NANOS = Field(2, "nanos", "int32", False, False, "k")


def _timestamp(buf: bytes, start: int, end: int, micro: bool) -> str | None:
    if start == end:
        return None
    seconds, nanos = _only(buf, start, end, "Timestamp", _SECONDS, _NANOS)
    seconds = seconds or 0
    # metav1.Time drops nanos; MicroTime truncates them toward zero, like Duration.Truncate.
    micros = int((nanos or 0) / 1000) if micro else 0
    try:
        moment = _EPOCH + dt.timedelta(seconds=seconds, microseconds=micros)
    except OverflowError:
        raise ProtobufError(f"timestamp at offset {start} is out of range") from None
    if moment == _GO_ZERO_TIME:
        return None
    # Formatted by hand: strftime("%Y") does not zero-pad years below 1000 on glibc.
    text = (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
            f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}")
    return f"{text}.{moment.microsecond:06d}Z" if micro else f"{text}Z"


def _time(buf: bytes, start: int, end: int) -> str | None:
    return _timestamp(buf, start, end, micro=False)


def _micro_time(buf: bytes, start: int, end: int) -> str | None:
    return _timestamp(buf, start, end, micro=True)


_QUANTITY = Field(1, "string", "string", False, False, "k")


def _quantity(buf: bytes, start: int, end: int) -> str:
    (text,) = _only(buf, start, end, "Quantity", _QUANTITY)
    if text is None:
        # resource.Quantity's Unmarshal rejects this too (ParseQuantity of "").
        raise ProtobufError(f"quantity at offset {start} has no value")
    return str(text)


_INTSTR_FIELDS = (
    Field(1, "type", "int64", False, False, "k"),
    Field(2, "intVal", "int32", False, False, "k"),
    Field(3, "strVal", "string", False, False, "k"),
)


def _int_or_string(buf: bytes, start: int, end: int) -> int | str:
    kind, int_val, str_val = _only(buf, start, end, "IntOrString", *_INTSTR_FIELDS)
    if not kind:
        return int(int_val or 0)
    if kind == 1:
        return str(str_val or "")
    raise ProtobufError(f"IntOrString at offset {start} has unknown type {kind}")


_FIELDS_V1_RAW = Field(1, "Raw", "bytes", False, False, "k")


def _fields_v1(buf: bytes, start: int, end: int) -> Any:
    found = _scan(buf, start, end).get(1)
    if not found:
        return None
    raw_start, raw_end = _span(found[-1], "FieldsV1", _FIELDS_V1_RAW)
    try:
        # FieldsV1 holds JSON that encoding/json embeds verbatim.
        return json.loads(buf[raw_start:raw_end])
    except (ValueError, RecursionError):
        raise ProtobufError(f"FieldsV1 at offset {start} is not valid JSON") from None


_ITEMS = Field(1, "items", "string", True, False, "k")


def _extra_value(buf: bytes, start: int, end: int) -> list[str]:
    """authorization's and authentication's ExtraValue: a ``[]string`` on the wire as a
    message with one repeated field, in JSON the bare list."""
    return [_scalar(buf, o, "ExtraValue", _ITEMS) for o in _scan(buf, start, end).get(1, [])]


_NUMERIC: Final = frozenset(("int32", "int64", "bool"))
_SPECIAL: Final[dict[str, Callable[[bytes, int, int], Any]]] = {
    "Time": _time, "MicroTime": _micro_time, "Quantity": _quantity,
    "IntOrString": _int_or_string, "FieldsV1": _fields_v1, "ExtraValue": _extra_value,
}
_ZEROS: Final[dict[str, Any]] = {
    "string": "", "int32": 0, "int64": 0, "bool": False, "bytes": "",
    "Time": None, "MicroTime": None, "Quantity": "0", "IntOrString": 0, "FieldsV1": None,
    "ExtraValue": None,
}
_ENVELOPE_FIELDS = (
    Field(1, "typeMeta", "TypeMeta", False, False, "k"),
    Field(3, "contentEncoding", "string", False, False, "k"),
)


def decode_object(body: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Decode a ``application/vnd.kubernetes.protobuf`` body into its JSON-shaped dict.

    The result carries ``kind`` and ``apiVersion`` and omits what encoding/json would omit.
    Raises ProtobufError for a malformed body or an unsupported kind.
    """
    buf = bytes(body)
    if not buf.startswith(MAGIC):
        raise ProtobufError(
            f"protobuf body must start with {MAGIC!r}, got {buf[:len(MAGIC)]!r}"
        )
    start = len(MAGIC)
    type_meta, encoding = _only(buf, start, len(buf), "Unknown", *_ENVELOPE_FIELDS)
    if encoding:
        raise ProtobufError(f"unsupported content encoding {encoding!r} in protobuf body")
    api_version = (type_meta or {}).get("apiVersion", "")
    kind = (type_meta or {}).get("kind", "")
    if (api_version, kind) not in SUPPORTED_KINDS:
        raise ProtobufError(
            f"unsupported kind {api_version or '<no apiVersion>'} {kind or '<no kind>'} "
            "in protobuf body"
        )
    raw = _scan(buf, start, len(buf)).get(2, [])
    raw_field = Field(2, "raw", "bytes", False, False, "k")
    spans = [_span(raw[-1], "Unknown", raw_field)] if raw else []
    return {"kind": kind, "apiVersion": api_version, **_message(buf, spans, kind)}
