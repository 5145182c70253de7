"""What server-side apply needs to know of a kind's schema: which lists are associative (and by
which keys), which are sets, which lists and maps are atomic.

kube-apiserver reads this from its OpenAPI models (``x-kubernetes-list-type``,
``x-kubernetes-list-map-keys``, ``x-kubernetes-map-type``, and for built-in types without
markers the ``patchStrategy``/``patchMergeKey`` tags). Here:

* built-in kinds: the strategic-merge table (:func:`envtest.patch.strategic.kind_tags`), with
  the list-map keys kube's markers add (ports by port *and* protocol, protocol defaulting to
  TCP);
* custom resources: the structural schema's markers; ``metadata`` is ObjectMeta's tags;
* anything without a schema (a built-in kind without a table, a field the table or schema does
  not describe, ``x-kubernetes-preserve-unknown-fields``): structured-merge-diff's *deduced*
  type -- maps merge field by field, every list is atomic (owned and replaced whole).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol

from envtest.patch.strategic import OBJECT_META_TAGS, FieldTags, kind_tags

_NONE: Mapping[str, Any] = MappingProxyType({})


class Shape(Protocol):
    """One node of a schema, as server-side apply sees it."""

    list_type: str
    """``map``, ``set`` or ``atomic`` (for a list at this node)."""
    keys: tuple[str, ...]
    key_defaults: Mapping[str, Any]
    atomic_map: bool

    def field(self, name: str) -> Shape: ...
    def item(self) -> Shape: ...


class _Deduced:
    list_type = "atomic"
    keys: tuple[str, ...] = ()
    key_defaults = _NONE
    atomic_map = False

    def field(self, name: str) -> Shape:
        return self

    def item(self) -> Shape:
        return self


DEDUCED: Shape = _Deduced()


class _Tagged:
    """A built-in type's node, from its strategic-merge tags."""

    list_type: str
    keys: tuple[str, ...]
    key_defaults: Mapping[str, Any]
    atomic_map = False

    def __init__(self, tags: FieldTags) -> None:
        self._tags = tags
        self.list_type = tags.list_type
        self.keys = tags.list_keys
        self.key_defaults = tags.key_defaults
        self._children: dict[str, Shape] = {}
        self._item: Shape | None = None

    def field(self, name: str) -> Shape:
        shape = self._children.get(name)
        if shape is None:
            child = self._tags.fields.get(name)
            shape = self._children[name] = _Tagged(child) if child is not None else DEDUCED
        return shape

    def item(self) -> Shape:
        if self._item is None:
            fields = self._tags.fields
            self._item = _Tagged(FieldTags(fields=fields)) if fields else DEDUCED
        return self._item


class _Structural:
    """A custom resource's node, from its structural schema."""

    list_type: str
    keys: tuple[str, ...]
    key_defaults: Mapping[str, Any]
    atomic_map: bool

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._schema = schema
        list_type = schema.get("x-kubernetes-list-type")
        self.list_type = list_type if list_type in ("map", "set") else "atomic"
        self.keys = tuple(schema.get("x-kubernetes-list-map-keys") or ()) \
            if self.list_type == "map" else ()
        self.atomic_map = schema.get("x-kubernetes-map-type") == "atomic"
        item_props = _mapping(_mapping(schema.get("items")).get("properties"))
        self.key_defaults = {k: _mapping(item_props.get(k))["default"] for k in self.keys
                             if "default" in _mapping(item_props.get(k))}
        self._children: dict[str, Shape] = {}
        self._item: Shape | None = None

    def field(self, name: str) -> Shape:
        shape = self._children.get(name)
        if shape is None:
            shape = self._children[name] = self._field(name)
        return shape

    def _field(self, name: str) -> Shape:
        props = _mapping(self._schema.get("properties"))
        if name in props:
            return _Structural(_mapping(props[name]))
        extra = self._schema.get("additionalProperties")
        return _Structural(extra) if isinstance(extra, Mapping) else DEDUCED

    def item(self) -> Shape:
        if self._item is None:
            items = self._schema.get("items")
            self._item = _Structural(items) if isinstance(items, Mapping) else DEDUCED
        return self._item


class _CustomRoot(_Structural):
    def _field(self, name: str) -> Shape:
        return _builtin_meta() if name == "metadata" else super()._field(name)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _NONE


def shape_of(kind: str, *, builtin: bool, schema: Mapping[str, Any] | None) -> Shape:
    """The root shape of an object of ``kind``."""
    if builtin:
        return _builtin(kind)
    return _CustomRoot(schema or {})


@functools.cache
def _builtin_meta() -> Shape:
    return _Tagged(OBJECT_META_TAGS)


@functools.cache
def _builtin(kind: str) -> Shape:
    """One shape per built-in kind, its nodes made once (the tables never change)."""
    tags = kind_tags(kind)
    return _Tagged(tags if tags is not None else _META_ONLY)


_META_ONLY = FieldTags(fields=MappingProxyType({"metadata": OBJECT_META_TAGS}))
"""A built-in kind without a table: ObjectMeta's lists keyed, all else deduced."""
