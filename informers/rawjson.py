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

Cheaper still, when the consumer drops ``managedFields`` anyway (the store's default
transform): :func:`parse_without_managed_fields` cuts them from the line *before* parsing it.
They are half a Pod's bytes and most of its small objects, so parsing the rest costs 40 % of
parsing the line (bench/informer_ingest.py). Without the parse to check against, the cut is
checked by the parse of what is left: the array is replaced by a ``0`` first, and the cut holds
only if the parsed object's own ``metadata.managedFields`` is that ``0`` — which a cut anywhere
else (a ``managedFields`` nested in a spec, one inside metadata's members, a second
``"metadata"`` key) cannot produce, since the server never sends a number there.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

_OBJECT = b'","object":'
_MANAGED = b',"managedFields":['
_METADATA = b'"metadata":{'
_TYPE_META = frozenset({"kind", "apiVersion"})
_TYPE = b'{"type":"'
_OBJECT_TYPES = {b"ADDED": "ADDED", b"MODIFIED": "MODIFIED", b"DELETED": "DELETED"}
_STAND_IN = b',"managedFields":0'
_AFTER_MEMBER = frozenset(b',} \t\r\n')
"""What may follow a ``]`` that closes an array which is an object's member (compact: ``,``
or ``}``)."""
_NOT_A_KEY = frozenset(b'":,}] \t\r\n')
"""What cannot follow ``,"``  where that quote opens a key (a quote closing a string can only
be followed by these)."""


class RawObject(NamedTuple):
    """Where an object's compact JSON lies in the line it arrived in: ``line[first:last]``
    (``line`` may hold other lines around it: a watch response's buffer)."""

    line: bytes
    first: int
    last: int


def event_object(line: bytes, event: dict[str, Any], begin: int = 0,
                 end: int | None = None) -> RawObject | None:
    """Where ``event["object"]`` lies in ``line[begin:end]``, the event it was parsed from;
    None when the line is not laid out as ``{"type":"T","object":{...}}``."""
    end = len(line) if end is None else end
    event_type = event.get("type")
    if (not isinstance(event_type, str) or len(event) != 2 or "object" not in event
            or not event_type.isalpha() or not line.endswith(b"}", begin, end)):
        return None
    prefix = b'{"type":"' + event_type.encode() + _OBJECT
    first = begin + len(prefix)
    if not line.startswith(prefix, begin, end) or line[first:first + 1] != b"{":
        return None
    return RawObject(line, first, end - 1)


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
        end = _closing(line, start, last, b"],", names[field + 1])
    elif at + 1 < len(keys):  # metadata closes, another member of the object follows
        end = _closing(line, start, last, b"]},", keys[at + 1])
    else:  # metadata is the object's last member
        end = last - 3 if line[last - 3:last] == b"]}}" else -1
    if end < 0 or end >= last:
        return None
    return line[first:start] + line[end + 1:last]


def _closing(line: bytes, start: int, last: int, before: bytes, key: str) -> int:
    """The first ``]`` after ``start`` that ``before`` and the member ``key`` follow; -1 when
    there is none, or the key would need escaping (the pattern would not be the bytes sent).
    Each ``]`` is found with ``memchr`` (inside ``managedFields`` a ``]`` is rare: only in a
    string), far cheaper than searching the whole pattern through the bytes."""
    if not key.isascii() or not key.isidentifier():
        return -1
    pattern = before + b'"' + key.encode() + b'":'
    at = line.find(b"]", start, last)
    while at >= 0 and not line.startswith(pattern, at):
        at = line.find(b"]", at + 1, last)
    return at


def parse_without_managed_fields(line: bytes, begin: int = 0, end: int | None = None
                                 ) -> tuple[dict[str, Any], bytes] | None:
    """The watch event of ``line[begin:end]`` with its object's ``metadata.managedFields`` cut
    from the bytes before parsing, and that object's compact bytes without them (exact size);
    None where the line is not an ADDED/MODIFIED/DELETED event laid out as kube-apiserver
    sends it with ``managedFields`` in its object's metadata, or the cut cannot be shown to be
    theirs (the caller then parses the whole line). The bytes dropped are delimited exactly
    but not parsed: an error inside them goes unnoticed (no one was going to read them)."""
    end = len(line) if end is None else end
    named = begin + len(_TYPE)
    typed = line.find(_OBJECT, named, min(named + 30, end)) if line.startswith(
        _TYPE, begin, end) else -1
    if typed < 0:
        return None
    kind = _OBJECT_TYPES.get(line[named:typed])
    first, last = typed + len(_OBJECT), end - 1
    if kind is None or first >= last or line[first] != 0x7B or line[last] != 0x7D:  # { }
        return None
    cut = _cut(line, first, last)  # the object ends before the event's closing brace
    if cut is None:
        return None
    obj, head, tail = cut
    return {"type": kind, "object": obj}, b"".join((head, tail))


def parse_object_without_managed_fields(data: bytes) -> dict[str, Any] | None:
    """One object as the API server answers a write (``{"kind":...,"metadata":{...,
    "managedFields":[...]},...}``) parsed with its ``metadata.managedFields`` cut from the bytes
    first, as :func:`parse_without_managed_fields` does for a watch event: a created runner
    Pod's answer (11.4 KB, half of it ``managedFields``) parses in 17 instead of 37 µs. None
    where there is nothing to cut or the cut cannot be shown to be the object's own (the
    caller then parses it whole)."""
    last = len(data) - 1
    while last > 0 and data[last] in b" \t\r\n":
        last -= 1
    if last <= 0 or data[0] != 0x7B or data[last] != 0x7D:  # { }
        return None
    cut = _cut(data, 0, last + 1)
    return None if cut is None else cut[0]


def _cut(line: bytes, first: int, stop: int
         ) -> tuple[dict[str, Any], memoryview, memoryview] | None:
    """The object of ``line[first:stop]`` (``{`` to ``}``) parsed without its
    ``metadata.managedFields``, and its bytes before and after them; None where the cut
    cannot be shown to be theirs."""
    start = line.find(_MANAGED, first, stop)
    end = _array_end(line, start + len(_MANAGED) - 1, stop) if start >= 0 else -1
    if end < 0:
        return None
    view = memoryview(line)
    head, tail = view[first:start], view[end + 1:stop]
    try:
        obj = orjson.loads(b"".join((head, _STAND_IN, tail)))
    except orjson.JSONDecodeError:
        return None  # the caller's parse of the whole line tells what is wrong
    meta = obj.get("metadata") if type(obj) is dict else None
    if type(meta) is not dict or type(meta.pop("managedFields", None)) is not int:
        return None  # what was cut was not metadata's own managedFields
    return obj, head, tail


def parse_list_without_managed_fields(data: bytes) -> dict[str, Any] | None:
    """A list page (``{"kind":"PodList",...,"items":[...]}``) parsed with each item's
    ``metadata.managedFields`` cut from the bytes first (as :func:`parse_without_managed_fields`
    does for one watch event): half a Pod list's bytes and most of its small objects are never
    parsed. None where there is nothing to cut or a cut cannot be shown to be an item's own
    (the caller then parses the whole page): every cut must come back as the ``0`` stand-in in
    exactly one item's metadata, so a ``managedFields`` array anywhere else (a spec's, one of an
    item with no metadata of its own) leaves a cut unaccounted for."""
    last = len(data) - 1
    while last > 0 and data[last] in b" \t\r\n":
        last -= 1
    start = data.find(_MANAGED, 0, last)
    if start < 0 or data[last] != 0x7D:  # }
        return None
    view, at, cuts = memoryview(data), 0, 0
    pieces: list[bytes | memoryview] = []
    while start >= 0:
        end = _array_end(data, start + len(_MANAGED) - 1, last)
        if end < 0:
            return None
        pieces += (view[at:start], _STAND_IN)
        at, cuts = end + 1, cuts + 1
        start = data.find(_MANAGED, at, last)
    pieces.append(view[at:last + 1])
    try:
        page = orjson.loads(b"".join(pieces))
    except orjson.JSONDecodeError:
        return None  # the caller's parse of the whole page tells what is wrong
    items = page.get("items") if type(page) is dict else None
    if type(items) is not list:
        return None
    found = 0
    for item in items:
        meta = item.get("metadata") if type(item) is dict else None
        if type(meta) is dict and type(meta.get("managedFields")) is int:
            del meta["managedFields"]
            found += 1
    return page if found == cuts else None


def _array_end(line: bytes, opened: int, last: int) -> int:
    """The ``]`` that closes metadata's ``managedFields`` array, opened at ``opened``; -1 when
    it cannot be told.

    No array opens inside it (its entries' ``fieldsV1`` are objects only), so it ends at the
    first ``]`` outside a string. A ``]`` followed by a byte that cannot follow an array that
    is an object's member, or by one that can and then a backslash (only ever in a string),
    is inside a string: skipped (each found with ``memchr``; rare there). The first one that
    could close the array must be followed by what follows a member of metadata: the next key,
    or metadata's end and the object's next key or end. Inside a string it cannot be (the
    quote after ``],`` would close the string, and a key cannot follow that). Anything else
    answers -1 rather than look further: a later ``]`` may be outside ``managedFields``.
    """
    at = line.find(b"]", opened, last)
    while at >= 0 and (line[at + 1] not in _AFTER_MEMBER or line[at + 2:at + 3] == b"\\"):
        at = line.find(b"]", at + 1, last)
    if at < 0:
        return -1
    after = at + 2 if line.startswith(b',"', at + 1) else (
        at + 3 if line.startswith(b'},"', at + 1) else -1)
    if after > 0 and after + 1 < last and line[after + 1] not in _NOT_A_KEY:
        return at
    return at if at + 3 == last and line[at + 1:last] == b"}}" else -1
