"""Byte-level cuts of a watch event as the API server sent it, so the store need not serialise
an object it was just handed as bytes.

A watch event arrives as one line of compact JSON, ``{"type":"MODIFIED","object":{...}}``. The
reflector parses it (it needs the metadata), and the store keeps the object as compact bytes
without ``metadata.managedFields`` (half a Pod's bytes as kube-apiserver serves it, and no
controller reads them). Serialising the stripped object again cost a fifth of the parse
(bench/informer_ingest.py); cutting the event's own bytes costs a few ``bytes.find`` calls.

A cut is made only where it is provably the same object, given the parsed event to check the
bytes against; anything else (whitespace between tokens, another key order, escaped key names,
a field the patterns cannot place) answers None, and the caller serialises as before. Why the
patterns cannot match inside a string: a JSON string holds a double quote only escaped
(``\\"``), and each pattern below contains an unescaped quote that could only close a string
if the text after it were not valid JSON.
"""

from __future__ import annotations

from typing import Any, NamedTuple

_OBJECT = b'","object":'
_MANAGED = b',"managedFields":['
_METADATA = b'"metadata":{'
_TYPE_META = frozenset({"kind", "apiVersion"})


class RawObject(NamedTuple):
    """Where an object's compact JSON lies in the line it arrived in: ``line[first:last]``."""

    line: bytes
    first: int
    last: int


def event_object(line: bytes, event: dict[str, Any]) -> RawObject | None:
    """Where ``event["object"]`` lies in ``line``, the event it was parsed from; None when the
    line is not laid out as ``{"type":"T","object":{...}}``."""
    event_type = event.get("type")
    if (not isinstance(event_type, str) or len(event) != 2 or "object" not in event
            or not event_type.isalpha() or not line.endswith(b"}")):
        return None
    prefix = b'{"type":"' + event_type.encode() + _OBJECT
    if not line.startswith(prefix) or line[len(prefix):len(prefix) + 1] != b"{":
        return None
    return RawObject(line, len(prefix), len(line) - 1)


def without_managed_fields(raw: RawObject, obj: dict[str, Any]) -> bytes | None:
    """The bytes of ``raw`` (the compact JSON of ``obj``) less ``metadata.managedFields``, as an
    exact-size copy; None when the cut cannot be shown to be exact.

    What makes the patterns safe: only ``kind``/``apiVersion`` (strings) may precede
    ``metadata``, so the first ``"metadata":{`` is the object's own; the members of metadata
    before ``managedFields`` are strings, string maps and owner references (ObjectMeta, which
    the server enforces, has no other nested object), so the first ``,"managedFields":[``
    after it is metadata's own; and inside ``managedFields`` no array opens (``fieldsV1`` is
    objects only), so the first ``]`` outside a string ends it — found as the first ``]``
    followed by the next member's key.
    """
    line, first, last = raw
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return line[first:last]
    keys, names = list(obj), list(meta)
    at, field = keys.index("metadata"), names.index("managedFields")
    if not _TYPE_META.issuperset(keys[:at]) or field == 0:
        return None
    opened = line.find(_METADATA, first, last)
    start = line.find(_MANAGED, opened, last) if opened >= 0 else -1
    if start < 0:
        return None
    if field + 1 < len(names):  # another member of metadata follows
        end = _closing(line, start, b"],", names[field + 1])
    elif at + 1 < len(keys):  # metadata closes, another member of the object follows
        end = _closing(line, start, b"]},", keys[at + 1])
    else:  # metadata is the object's last member
        end = last - 3 if line[last - 3:last] == b"]}}" else -1
    if end < 0 or end >= last:
        return None
    return line[first:start] + line[end + 1:last]


def _closing(line: bytes, start: int, before: bytes, key: str) -> int:
    """The first ``]`` after ``start`` that ``before`` and the member ``key`` follow; -1 when
    there is none, or the key would need escaping (the pattern would not be the bytes sent).
    Each ``]`` is found with ``memchr`` (inside ``managedFields`` a ``]`` is rare: only in a
    string), far cheaper than searching the whole pattern through the bytes."""
    if not key.isascii() or not key.isidentifier():
        return -1
    pattern = before + b'"' + key.encode() + b'":'
    at = line.find(b"]", start)
    while at >= 0 and not line.startswith(pattern, at):
        at = line.find(b"]", at + 1)
    return at
