"""The RFC 6902 JSON patch from one JSON document to another: what a mutating webhook answers.

A defaulter edits the object in place; the API server wants the difference as a JSON patch
(controller-runtime computes it with ``jsonpatch.CreatePatch`` the same way). :func:`diff`
walks both documents together:

* objects: ``remove`` for members gone, ``add`` for new ones, a recursion into members both
  have (in sorted key order, so a patch is reproducible);
* arrays of the same length: element by element; an array that only grew at its end: ``add``
  of the new elements (``/-`` semantics, written with their indices); any other array change:
  one ``replace`` of the whole array (no edit distance: a defaulter rarely reorders);
* scalars: ``replace`` when the value or its JSON type differs (``1`` and ``1.0``, ``true`` and
  ``1`` are different JSON, though equal in Python).

Applying the result to the original yields the mutated document (a property the tests check
with an independent RFC 6902 implementation). Unchanged subtrees are recognised at C speed
(Python's ``==``, confirmed by their canonical JSON), so a defaulter that sets one field of a
large object costs a walk down that field's path, not of the whole object.
"""

from __future__ import annotations

from typing import Any

import orjson

Operation = dict[str, Any]
_CANONICAL = orjson.OPT_SORT_KEYS


def escape(token: str) -> str:
    """A member name as a JSON pointer token (RFC 6901: ``~`` → ``~0``, ``/`` → ``~1``)."""
    return token.replace("~", "~0").replace("/", "~1")


def same(a: Any, b: Any) -> bool:
    """JSON equality: equal values of the same JSON type (``True`` is not ``1``, nor ``1.0``),
    whatever the order of object members."""
    return bool(a == b) and orjson.dumps(a, option=_CANONICAL) == orjson.dumps(b,
                                                                               option=_CANONICAL)


def diff(original: Any, mutated: Any) -> list[Operation]:
    """The operations that turn ``original`` into ``mutated`` (empty when they are the same)."""
    ops: list[Operation] = []
    _diff(original, mutated, "", ops)
    return ops


def _diff(a: Any, b: Any, path: str, ops: list[Operation]) -> None:
    if same(a, b):
        return
    if isinstance(a, dict) and isinstance(b, dict):
        _diff_objects(a, b, path, ops)
    elif isinstance(a, list) and isinstance(b, list):
        _diff_arrays(a, b, path, ops)
    else:
        ops.append({"op": "replace", "path": path, "value": b})


def _diff_objects(a: dict[str, Any], b: dict[str, Any], path: str,
                  ops: list[Operation]) -> None:
    for key in sorted(a.keys() - b.keys()):
        ops.append({"op": "remove", "path": f"{path}/{escape(key)}"})
    for key in sorted(b.keys()):
        child = f"{path}/{escape(key)}"
        if key in a:
            _diff(a[key], b[key], child, ops)
        else:
            ops.append({"op": "add", "path": child, "value": b[key]})


def _diff_arrays(a: list[Any], b: list[Any], path: str, ops: list[Operation]) -> None:
    if len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}/{index}", ops)
    elif len(b) > len(a) and same(a, b[:len(a)]):
        ops.extend({"op": "add", "path": f"{path}/{index}", "value": b[index]}
                   for index in range(len(a), len(b)))
    else:
        ops.append({"op": "replace", "path": path, "value": b})
