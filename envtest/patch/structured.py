"""Structured merge of decoded JSON by a :class:`~envtest.patch.shapes.Shape`, as
structured-merge-diff's ``typed`` package does it for server-side apply: the field set of a
value (``ToFieldSet``), merging an applied configuration into a live object (``Merge``),
removing a set of fields (``RemoveItems``) and comparing two values (``Compare``).

Associative lists (``listType=map``, ``listType=set``) are addressed per item (``k:``/``v:``
path elements); every other list, and maps marked ``x-kubernetes-map-type: atomic``, are one
leaf. Like the rest of :mod:`envtest.patch`, nothing here mutates its arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from envtest.patch import fieldpath as fp
from envtest.patch.errors import PatchError
from envtest.patch.fieldpath import FieldSet, Path
from envtest.patch.shapes import Shape

NODE: Any = object()
"""The value :func:`leaves` gives a list item that has fields of its own below it."""


def _associative(shape: Shape) -> bool:
    return shape.list_type == "set" or (shape.list_type == "map" and bool(shape.keys))


def element(shape: Shape, item: Any, where: Path, index: int) -> str:
    """The path element of a list item (``k:{...}`` or ``v:...``)."""
    if shape.list_type == "set":
        return fp.value(item)
    if not isinstance(item, dict):
        raise PatchError(f"{fp.render(where)}: element {index}: associative list with keys "
                         "may not have non-map elements")
    fields = {}
    for name in shape.keys:
        if name in item and item[name] is not None:
            fields[name] = item[name]
        elif name in shape.key_defaults:
            fields[name] = shape.key_defaults[name]
        else:
            raise PatchError(f"{fp.render(where)}: element {index}: associative list with keys "
                             f'has an element that omits key field "{name}" (and doesn\'t '
                             "have default value)")
    return fp.key(fields)


# ToFieldSet ----------------------------------------------------------------------------------
def leaves(value: Mapping[str, Any], shape: Shape, *, unique: bool = False) -> dict[Path, Any]:
    """Every member of the value's field set with its value (:data:`NODE` for list items with
    fields below them): scalars, atomic lists and maps, empty maps, nulls and list items (an
    empty keyed list owns nothing). ``unique``: two items with one key are an error (an
    applied configuration; a live object may hold them)."""
    out: dict[Path, Any] = {}
    _walk_map(value, shape, (), out, unique)
    return out


def _walk_map(value: Mapping[str, Any], shape: Shape, prefix: Path, out: dict[Path, Any],
              unique: bool) -> None:
    for name, child in value.items():
        _walk(child, shape.field(name), (*prefix, fp.field(name)), out, unique)


def _walk(value: Any, shape: Shape, path: Path, out: dict[Path, Any], unique: bool) -> None:
    if isinstance(value, dict) and value and not shape.atomic_map:
        _walk_map(value, shape, path, out, unique)
    elif isinstance(value, list) and _associative(shape):
        item_shape = shape.item()
        for index, item in enumerate(value):
            item_path = (*path, element(shape, item, path, index))
            if unique and item_path in out:
                raise PatchError(f"{fp.render(path)}: element {index}: duplicate entries for "
                                 f"key {item_path[-1][2:]}")
            if shape.list_type == "map":
                out[item_path] = NODE
                _walk_map(item, item_shape, item_path, out, unique)
            else:
                out[item_path] = item
    else:
        out[path] = value


def fields_v1(value: dict[str, Any], shape: Shape) -> dict[str, Any]:
    """The fieldsV1 tree of :func:`leaves` (what a creator owns), built in one walk."""
    return _map_tree(value, shape, ())


def _map_tree(value: dict[str, Any], shape: Shape, path: Path) -> dict[str, Any]:
    node: dict[str, Any] = {}
    for name, child in value.items():
        element_ = "f:" + name
        if isinstance(child, dict) and child:
            child_shape = shape.field(name)
            if child_shape.atomic_map:
                node[element_] = {}
            elif sub := _map_tree(child, child_shape, (*path, element_)):
                node[element_] = sub  # a map of only empty keyed lists owns nothing
        elif isinstance(child, list):
            child_shape = shape.field(name)
            if not _associative(child_shape):
                node[element_] = {}
            elif sub := _list_tree(child, child_shape, (*path, element_)):
                node[element_] = sub
        else:
            node[element_] = {}
    return node


def _list_tree(items: list[Any], shape: Shape, path: Path) -> dict[str, Any]:
    node: dict[str, Any] = {}
    item_shape = shape.item()
    for index, item in enumerate(items):
        pe = element(shape, item, path, index)
        node[pe] = ({".": {}, **_map_tree(item, item_shape, (*path, pe))}
                    if shape.list_type == "map" else {})
    return node


# Merge ---------------------------------------------------------------------------------------
def merge(live: Any, config: Any, shape: Shape, where: Path = ()) -> Any:
    """``config`` merged into ``live``: maps field by field, associative lists item by item
    (live items in place, shared items merged, new items where the config puts them relative
    to the shared ones), everything else replaced. A ``null`` in the config removes the field,
    as decoding into kube's typed object drops it."""
    if isinstance(live, dict) and isinstance(config, dict) and not shape.atomic_map:
        out = dict(live)
        for name, value in config.items():
            if value is None:
                out.pop(name, None)
            elif name in out:
                out[name] = merge(out[name], value, shape.field(name), (*where, fp.field(name)))
            else:
                out[name] = _clean(value)
        return out
    if isinstance(live, list) and isinstance(config, list) and _associative(shape):
        return _merge_list(live, config, shape, where)
    return _clean(config)


def _clean(value: Any) -> Any:
    """A copy of a value taken from the config, without its null members."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _merge_list(live: list[Any], config: list[Any], shape: Shape, where: Path) -> list[Any]:
    """structured-merge-diff's ``mergingWalker.visitListItems``, element order included."""
    lpe = [element(shape, item, where, i) for i, item in enumerate(live)]
    rpe = [element(shape, item, where, i) for i, item in enumerate(config)]
    rhs: dict[str, Any] = {}
    for index, (pe, item) in enumerate(zip(rpe, config, strict=True)):
        if pe in rhs:
            raise PatchError(f"{fp.render(where)}: element {index}: duplicate entries for key "
                             f"{pe[2:]}")
        rhs[pe] = item
    lhs: dict[str, Any] = {}
    for pe, item in zip(lpe, live, strict=True):
        lhs.setdefault(pe, item)
    shared = iter([pe for pe in rpe if pe in lhs])
    next_shared = next(shared, None)
    item_shape = shape.item()
    out: list[Any] = []
    done: set[str] = set()
    li = ri = 0
    while li < len(lpe) or ri < len(rpe):
        if li < len(lpe) and ri < len(rpe):
            pe = lpe[li]
            if pe == rpe[ri]:
                done.add(pe)
                out.append(_merge_item(lhs[pe], rhs[pe], item_shape, (*where, pe)))
                li, ri = li + 1, ri + 1
                next_shared = next(shared, None)
                continue
            if pe in rhs and next_shared is not None and next_shared != pe:
                li += 1  # shared with the config, but not the one due now
                continue
        if li < len(lpe):
            pe = lpe[li]
            if pe not in rhs:
                out.append(live[li])
                li += 1
                continue
            if pe in done:
                li += 1  # merged already; the config's next item is still due
        if ri < len(rpe):
            pe = rpe[ri]
            done.add(pe)
            out.append(_merge_item(lhs.get(pe), rhs[pe], item_shape, (*where, pe)))
            ri += 1
            if next_shared == pe:
                next_shared = next(shared, None)
    return out


def _merge_item(live: Any, config: Any, shape: Shape, where: Path) -> Any:
    return _clean(config) if live is None else merge(live, config, shape, where)


# RemoveItems ---------------------------------------------------------------------------------
def remove(value: dict[str, Any], paths: Iterable[Path], shape: Shape, *,
           kept: FieldSet = fp.EMPTY) -> dict[str, Any]:
    """``value`` without the fields and items at ``paths`` (each with everything below it).
    A map left empty by the removal goes too unless its path is in ``kept``."""
    out = _remove(value, fp.trie(paths), shape, (), kept)
    return out if isinstance(out, dict) else {}


def _remove(value: Any, node: Mapping[str, Any], shape: Shape, path: Path,
            kept: FieldSet) -> Any:
    if isinstance(value, dict) and not shape.atomic_map:
        out = {}
        for name, child in value.items():
            element_ = fp.field(name)
            sub = node.get(element_)
            if sub is None:
                out[name] = child
            elif "." not in sub:
                child_path = (*path, element_)
                pruned = _remove(child, sub, shape.field(name), child_path, kept)
                if pruned != {} or child == {} or child_path in kept:
                    out[name] = pruned
        return out
    if isinstance(value, list) and _associative(shape):
        items = []
        for index, item in enumerate(value):
            pe = element(shape, item, path, index)
            sub = node.get(pe)
            if sub is None:
                items.append(item)
            elif "." not in sub:
                items.append(_remove(item, sub, shape.item(), (*path, pe), kept))
        return items
    return value


# Compare -------------------------------------------------------------------------------------
_ABSENT: Any = object()


class Comparison:
    """What changed from one value to another, as field sets: ``added`` (members only the new
    value has), ``removed`` (only the old), ``modified`` (leaves on both sides with different
    values). Equal subtrees are skipped, so the cost follows the change, not the object."""

    def __init__(self, old: Mapping[str, Any], new: Mapping[str, Any], shape: Shape) -> None:
        self.added: set[Path] = set()
        self.modified: set[Path] = set()
        self.removed: set[Path] = set()
        self._maps(old, new, shape, ())

    def _maps(self, old: Mapping[str, Any], new: Mapping[str, Any], shape: Shape,
              path: Path) -> None:
        for name in old.keys() | new.keys():
            self._values(old.get(name, _ABSENT), new.get(name, _ABSENT), shape.field(name),
                         (*path, fp.field(name)))

    def _values(self, old: Any, new: Any, shape: Shape, path: Path) -> None:
        if old is new or (type(old) is type(new) and old == new):
            return
        if old is _ABSENT or new is _ABSENT:
            self._one_side(new if old is _ABSENT else old, shape, path, old is _ABSENT)
        elif (isinstance(old, dict) and isinstance(new, dict) and old and new
              and not shape.atomic_map):
            self._maps(old, new, shape, path)
        elif isinstance(old, list) and isinstance(new, list) and old and new \
                and _associative(shape):
            self._lists(old, new, shape, path)
        else:
            before: dict[Path, Any] = {}
            after: dict[Path, Any] = {}
            _walk(old, shape, path, before, False)
            _walk(new, shape, path, after, False)
            added, modified, removed = _compare(before, after)
            self.added |= added
            self.modified |= modified
            self.removed |= removed

    def _one_side(self, value: Any, shape: Shape, path: Path, added: bool) -> None:
        members: dict[Path, Any] = {}
        _walk(value, shape, path, members, False)
        (self.added if added else self.removed).update(members)

    def _lists(self, old: list[Any], new: list[Any], shape: Shape, path: Path) -> None:
        before = {element(shape, item, path, i): item for i, item in enumerate(old)}
        after = {element(shape, item, path, i): item for i, item in enumerate(new)}
        item_shape = shape.item()
        for pe in before.keys() | after.keys():
            item_path = (*path, pe)
            left, right = before.get(pe, _ABSENT), after.get(pe, _ABSENT)
            if left is _ABSENT or right is _ABSENT:
                target = self.added if left is _ABSENT else self.removed
                target.add(item_path)
                if shape.list_type == "map":
                    members: dict[Path, Any] = {}
                    _walk_map(right if left is _ABSENT else left, item_shape, item_path,
                              members, False)
                    target.update(members)
            elif shape.list_type == "map" and left != right:
                self._maps(left, right, item_shape, item_path)


def _compare(old: Mapping[Path, Any],
             new: Mapping[Path, Any]) -> tuple[FieldSet, FieldSet, FieldSet]:
    """(added, modified, removed) between two :func:`leaves` maps; modified are the leaves
    present on both sides with different values."""
    added = frozenset(new.keys() - old.keys())
    removed = frozenset(old.keys() - new.keys())
    modified = frozenset(p for p in old.keys() & new.keys()
                         if old[p] is not NODE and new[p] is not NODE
                         and not _same(old[p], new[p]))
    return added, modified, removed


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)
