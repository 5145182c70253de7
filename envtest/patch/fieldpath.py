"""Field paths and sets of them, as structured-merge-diff (``sigs.k8s.io/structured-merge-diff``
``fieldpath``) writes them in ``metadata.managedFields[].fieldsV1``.

A path is a tuple of path elements, each in its serialized form (``serialize-pe.go``):

* ``f:<name>`` -- a field of a map;
* ``k:{"name":"x"}`` -- the item of an associative list (``listType=map`` or a strategic
  ``patchMergeKey``) whose key fields have these values (sorted, compact Go JSON);
* ``v:<json>`` -- the element of a ``listType=set`` list with this value;
* ``i:<n>`` -- kube's index element; never produced here (lists without keys are atomic).

A field set is a plain ``frozenset`` of paths: each path is a *member* (owned). In fieldsV1 a
member with members below it carries ``".": {}``, a member without them is ``{}``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from envtest.codecs.gofmt import go_json

Path = tuple[str, ...]
FieldSet = frozenset[Path]
EMPTY: FieldSet = frozenset()


def field(name: str) -> str:
    return f"f:{name}"


def key(fields: Mapping[str, Any]) -> str:
    """The element of a map-list item whose key fields hold ``fields``."""
    if all(type(v) in (str, int) for v in fields.values()):
        return _scalar_key(tuple((k, type(v), v) for k, v in fields.items()))
    return "k:" + _json(dict(fields))


@functools.lru_cache(maxsize=4096)
def _scalar_key(fields: tuple[tuple[str, type, Any], ...]) -> str:
    """Keys of strings and integers (nearly all), made once: an object's items are addressed
    several times a write, and the same names and ports recur across objects."""
    return "k:" + _json({name: value for name, _, value in fields})


def value(item: Any) -> str:
    """The element of a set-list member with this value."""
    return "v:" + _json(item)


def _json(item: Any) -> str:
    """Go's encoding/json text of a value: orjson's (ten times faster) where the two agree --
    no floats, and none of the characters Go escapes and orjson does not."""
    values = item.values() if isinstance(item, dict) else (item,)
    if all(isinstance(v, str | int) for v in values):  # no floats, lists, maps
        text = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
        if _GO_SAFE.isdisjoint(text):
            return text.decode()
    return go_json(item)


_GO_SAFE = frozenset(b"<>&\xe2")
"""Bytes that may need Go's escaping: HTML characters and the first byte of U+2028/U+2029."""


def render(path: Path) -> str:
    """A path as kube prints it in conflict messages: ``.spec.ports[port=80,protocol="TCP"]``."""
    out = []
    for element in path:
        kind, body = element[:2], element[2:]
        if kind == "f:":
            out.append(f".{body}")
        elif kind == "k:":
            pairs = _decode(body)
            out.append("[" + ",".join(f"{k}={go_json(v)}" for k, v in pairs.items()) + "]")
        else:
            out.append(f"[={body}]")
    return "".join(out)


def _decode(text: str) -> dict[str, Any]:
    decoded = orjson.loads(text)
    return decoded if isinstance(decoded, dict) else {}


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """The fieldsV1 tree of a set, children in sorted order (kube's order but for numbers in
    keys, which it compares as numbers)."""
    root: dict[str, Any] = {}
    members: set[int] = set()
    for path in sorted(paths):  # a member before its descendants, siblings in order
        node = root
        for element in path:
            child = node.get(element)
            if child is None:
                if id(node) in members and not node:
                    node["."] = {}
                child = node[element] = {}
            node = child
        members.add(id(node))
    return root


def from_fields_v1(fields: Any, prefix: Path = ()) -> set[Path]:
    """The set a fieldsV1 tree holds; anything malformed in it owns nothing."""
    paths: set[Path] = set()
    if not isinstance(fields, Mapping):
        return paths
    for element, child in fields.items():
        if element == ".":
            if prefix:
                paths.add(prefix)
        elif isinstance(element, str) and element[:2] in ("f:", "k:", "v:", "i:"):
            if not child:
                paths.add((*prefix, element))
            else:
                paths |= from_fields_v1(child, (*prefix, element))
    return paths


def holds(fields: Any, path: Path) -> bool:
    """Whether a fieldsV1 tree has ``path`` as a member (without parsing all of it)."""
    node = fields
    for element in path:
        if not isinstance(node, Mapping) or element not in node:
            return False
        node = node[element]
    return isinstance(node, Mapping) and (not node or "." in node)


def added(fields: dict[str, Any], paths: Iterable[Path]) -> dict[str, Any]:
    """A fieldsV1 tree with ``paths`` made members; nodes off their way are shared."""
    for path in paths:
        fields = _insert(fields, path)
    return fields


def _insert(node: dict[str, Any], path: Path) -> dict[str, Any]:
    head, rest = path[0], path[1:]
    child = node.get(head)
    if not rest:
        if child is None:
            return {**node, head: {}}
        if child and "." not in child:
            return {**node, head: {".": {}, **child}}
        return node
    if child is None:
        child = {}
    elif not child:
        child = {".": {}}  # a member gains members below it
    grown = _insert(child, rest)
    return node if grown is child else {**node, head: grown}


def discarded(fields: dict[str, Any], paths: Iterable[Path]) -> dict[str, Any]:
    """A fieldsV1 tree without the members ``paths``; nodes off their way are shared."""
    for path in paths:
        fields = _discard(fields, path)
    return fields


def _discard(node: dict[str, Any], path: Path) -> dict[str, Any]:
    head = path[0]
    child = node.get(head)
    if not isinstance(child, dict):
        return node
    if len(path) == 1:
        if not child:
            return {k: v for k, v in node.items() if k != head}
        if "." not in child:
            return node
        rest = {k: v for k, v in child.items() if k != "."}
        return {**node, head: rest}
    shrunk = _discard(child, path[1:])
    if shrunk is child:
        return node
    if not shrunk:
        return {k: v for k, v in node.items() if k != head}
    return {**node, head: {} if shrunk == {".": {}} else shrunk}


def with_parents(paths: Iterable[Path]) -> set[Path]:
    """``paths`` and every prefix ending in a field: structured-merge-diff's
    ``EnsureNamedFieldsAreMembers``, with every field of a map counted as a named field (the
    server does not tell struct fields from map keys)."""
    out: set[Path] = set()
    for path in paths:
        out.add(path)
        for end in range(1, len(path)):
            if path[end - 1].startswith("f:"):
                out.add(path[:end])
    return out


def trie(paths: Iterable[Path]) -> dict[str, Any]:
    """A lookup tree: each path's node carries ``"."`` (the same shape as fieldsV1)."""
    root: dict[str, Any] = {}
    for path in paths:
        node = root
        for element in path:
            node = node.setdefault(element, {})
        node["."] = {}
    return root
