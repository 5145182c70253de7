"""JSON patch (RFC 6902, ``application/json-patch+json``), as kube-apiserver applies it with
``gopkg.in/evanphx/json-patch.v4`` (where that differs from the RFC, this follows the library;
the differences are listed on :func:`json_patch`). It works on a copy of ``target``.

Errors: :class:`~envtest.patch.errors.PatchError` when the patch cannot be applied (422);
:class:`PatchTestFailed` when a ``test`` operation did not hold (422);
:class:`TooManyOperations` past kube-apiserver's bound (413).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import orjson

from envtest.patch.errors import MISSING, PatchError, brief


class PatchTestFailed(PatchError):
    """A JSON-patch ``test`` operation found a different value."""


# Go's strconv.Atoi, which evanphx/json-patch uses for array indices, takes a sign and
# leading zeros ("+1", "01"); RFC 6901 would not.
_ARRAY_INDEX = re.compile(r"[+-]?[0-9]+")
_POINTER_ESCAPE = re.compile(r"~[01]")


MAX_JSON_PATCH_OPERATIONS = 10_000
"""Operations one JSON patch may hold (kube-apiserver's ``maxJSONPatchOperations``)."""
MAX_COPY_BYTES = 3 * 1024 * 1024
"""What ``copy`` operations may add to a document, in JSON bytes (kube-apiserver's
``JSONPatchMaxCopyBytes``, evanphx/json-patch's ``AccumulatedCopySizeLimit``)."""


class TooManyOperations(PatchError):
    """A JSON patch of more than :data:`MAX_JSON_PATCH_OPERATIONS` operations (413)."""


def json_patch(target: Any, ops: Any) -> Any:
    """Apply an RFC 6902 JSON patch (a list of operations) to ``target``.

    Semantics are those of evanphx/json-patch v4 as kube-apiserver runs it, which differ
    from the RFC in these corners:

    * an absent object member reads as ``null``: ``replace`` of an absent member adds it,
      ``test`` of an absent member against ``null`` succeeds, and ``copy`` from an absent
      member copies ``null``;
    * negative array indices count from the end (``-1`` is the last element; for ``add``,
      ``-1`` appends); indices may carry a sign or leading zeros;
    * ``add`` and ``remove`` at the root pointer ``""`` fail; ``replace`` there needs an
      object or array value; an operation without ``value`` uses ``null``;
    * ``test`` compares numbers by JSON type as well as value (``1`` is not ``1.0``),
      as the library compares serialized bytes;
    * an unknown ``~`` escape in a pointer is kept literally.

    Bounded as kube-apiserver bounds it: at most :data:`MAX_JSON_PATCH_OPERATIONS` operations
    (:class:`TooManyOperations`), and ``copy`` operations may add at most
    :data:`MAX_COPY_BYTES` of JSON in all (each copy doubling the document would otherwise
    grow it without limit). The operations change a private copy of ``target`` in place, so
    each costs the length of its pointers, not the size of the containers on the way.

    One deliberate deviation: a pointer must be empty or start with ``/`` (the library would
    silently ignore the first segment of ``"a/b"``).
    """
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a JSON array of operations")
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise TooManyOperations(f"The allowed maximum operations in a JSON patch is "
                                f"{MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}")
    state = _PatchState(_copy_json(target))
    for index, op in enumerate(ops):
        _apply_operation(state, op, index)
    return state.doc


@dataclass
class _PatchState:
    """The document being patched (changed in place) and what copies have added to it."""

    doc: Any
    copied: int = 0


def _apply_operation(state: _PatchState, op: Any, index: int) -> None:
    if not isinstance(op, dict):
        raise PatchError(f"JSON patch operation {index} is not a JSON object")
    name = op.get("op")
    handler = _OPERATIONS.get(name) if isinstance(name, str) else None
    if handler is None:
        raise PatchError(f"JSON patch operation {index} has unknown op {name!r} "
                         f"(expected add, remove, replace, move, copy or test)")
    handler(state, op, _locate(op, "path", index))


@dataclass(frozen=True)
class _Location:
    """A decoded JSON pointer of one operation, with what error messages need."""

    index: int
    label: str
    tokens: tuple[str, ...]

    def error(self, problem: str) -> PatchError:
        return PatchError(f"{self.label}: {problem}")


def _locate(op: Mapping[str, Any], member: str, index: int) -> _Location:
    pointer = op.get(member)
    label = f'JSON patch operation {index} ({op.get("op")}) {member}'
    if not isinstance(pointer, str):
        raise PatchError(f"{label} is missing or not a string")
    label = f'{label} "{pointer}"'
    if pointer and not pointer.startswith("/"):
        raise PatchError(f'{label}: a JSON pointer must be empty or start with "/"')
    return _Location(index, label, tuple(_unescape(t) for t in pointer.split("/")[1:]))


def _unescape(token: str) -> str:
    # One left-to-right pass, so "~01" decodes to "~1" and not to "/" (RFC 6901 section 4).
    return _POINTER_ESCAPE.sub(lambda m: "/" if m.group() == "~1" else "~", token)


def _array_index(token: str, length: int, *, inserting: bool, where: _Location) -> int:
    """Resolve ``token`` to an index of a list of ``length`` (one more slot when inserting)."""
    if not _ARRAY_INDEX.fullmatch(token):
        raise where.error(f'"{token}" is not an array index')
    size = length + 1 if inserting else length
    index = int(token)
    if index < 0:
        index += size
    if not 0 <= index < size:
        raise where.error(f"array index {token} is out of range for an array of {length}")
    return index


def _child(container: Any, token: str, where: _Location) -> Any:
    """The value an intermediate pointer token leads to; it must be an object or array."""
    if isinstance(container, dict):
        value = container.get(token)
    elif isinstance(container, list):
        value = container[_array_index(token, len(container), inserting=False, where=where)]
    else:
        value = None
    if not isinstance(value, (dict, list)):
        raise where.error("the document is missing this path")
    return value


def _parent(doc: Any, where: _Location) -> tuple[dict[str, Any] | list[Any], str]:
    """The container the pointer's last token is in, and that token."""
    if not where.tokens:
        raise where.error("the operation does not apply to the whole document")
    node = doc
    for token in where.tokens[:-1]:
        node = _child(node, token, where)
    if not isinstance(node, (dict, list)):
        raise where.error("the document is missing this path")
    return node, where.tokens[-1]


def _read(doc: Any, where: _Location) -> Any:
    """The value at the pointer; an absent object member reads as null (evanphx v4)."""
    if not where.tokens:
        return doc
    container, token = _parent(doc, where)
    if isinstance(container, dict):
        return container.get(token)
    return container[_array_index(token, len(container), inserting=False, where=where)]


def _insert(doc: Any, where: _Location, value: Any) -> None:
    container, token = _parent(doc, where)
    if isinstance(container, dict):
        container[token] = value
    elif token == "-":
        container.append(value)
    else:
        container.insert(_array_index(token, len(container), inserting=True, where=where), value)


def _delete(doc: Any, where: _Location) -> Any:
    """Remove the value at the pointer; return it."""
    container, token = _parent(doc, where)
    if isinstance(container, dict):
        if token not in container:
            raise where.error(f'cannot remove nonexistent member "{token}"')
        return container.pop(token)
    return container.pop(_array_index(token, len(container), inserting=False, where=where))


def _op_value(op: Mapping[str, Any]) -> Any:
    # evanphx v4 treats a missing "value" as null; copy so the result never aliases the patch.
    return _copy_json(op.get("value"))


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def _op_add(state: _PatchState, op: Mapping[str, Any], path: _Location) -> None:
    _insert(state.doc, path, _op_value(op))


def _op_remove(state: _PatchState, op: Mapping[str, Any], path: _Location) -> None:
    _delete(state.doc, path)


def _op_replace(state: _PatchState, op: Mapping[str, Any], path: _Location) -> None:
    value = _op_value(op)
    if not path.tokens:
        if not isinstance(value, (dict, list)):
            raise path.error("replacing the whole document needs an object or array value")
        state.doc = value
        return
    container, token = _parent(state.doc, path)
    if isinstance(container, dict):
        # An absent object member is created: the library looks it up as null, not missing.
        container[token] = value
    else:
        container[_array_index(token, len(container), inserting=False, where=path)] = value


def _op_move(state: _PatchState, op: Mapping[str, Any], path: _Location) -> None:
    value = _delete(state.doc, _source(op, path))
    # Removed first: a move into the source's own subtree finds its path gone (RFC 6902 4.4).
    _insert(state.doc, path, value)


def _op_copy(state: _PatchState, op: Mapping[str, Any], path: _Location) -> None:
    value = _read(state.doc, _source(op, path))
    state.copied += len(orjson.dumps(value))
    if state.copied > MAX_COPY_BYTES:
        raise path.error(f"Unable to complete the copy, the accumulated size increase of copy "
                         f"is {state.copied}, exceeding the limit {MAX_COPY_BYTES}")
    _insert(state.doc, path, _copy_json(value))


def _source(op: Mapping[str, Any], path: _Location) -> _Location:
    source = _locate(op, "from", path.index)
    if not source.tokens:
        raise source.error("cannot move or copy the whole document")
    return source


def _op_test(state: _PatchState, op: Mapping[str, Any], path: _Location) -> None:
    actual = _read(state.doc, path)
    expected = op.get("value", MISSING)
    if actual is None:
        passed = expected is MISSING or expected is None
    else:
        passed = expected is not MISSING and _json_equal(actual, expected)
    if not passed:
        raise PatchTestFailed(f"{path.label}: test failed, the document holds "
                              f"{brief(actual)}, not {brief(expected)}")


def _json_equal(left: Any, right: Any) -> bool:
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(v, right[k])
                                                   for k, v in left.items())
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    return _scalar_kind(left) == _scalar_kind(right) and left == right


def _scalar_kind(value: Any) -> str:
    # bool is an int subclass in Python but a different JSON type.
    return type(value).__name__


_Operation = Callable[[_PatchState, Mapping[str, Any], _Location], None]
_OPERATIONS: Mapping[str, _Operation] = MappingProxyType({
    "add": _op_add, "remove": _op_remove, "replace": _op_replace,
    "move": _op_move, "copy": _op_copy, "test": _op_test,
})
