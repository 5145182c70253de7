"""JSON merge patch (RFC 7386, ``application/merge-patch+json``), as kube-apiserver applies it
with ``gopkg.in/evanphx/json-patch.v4``.

The result is new containers along every path the patch touches, sharing the subtrees of
``target`` it leaves alone; values taken from the patch are copied.
"""

from __future__ import annotations

from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch to ``target``.

    An object patch merges member by member (``null`` removes a member) into ``target``, or
    into ``{}`` when ``target`` is not an object; any other patch replaces ``target``.

    Like evanphx/json-patch, a value copied from the patch (rather than merged) has its
    ``null`` object members dropped at every depth, including inside arrays; RFC 7386 would
    keep nulls inside arrays. kube-apiserver rejects a top-level patch that is not an object
    before applying it; this function follows the RFC there (the caller decides).
    """
    if not isinstance(patch, dict):
        return _without_null_members(patch)
    base = target if isinstance(target, dict) else {}
    result = dict(base)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            result[key] = merge_patch(base[key], value)
        else:
            result[key] = _without_null_members(value)
    return result


def _without_null_members(value: Any) -> Any:
    """A copy of ``value`` without null object members; null array elements stay."""
    if isinstance(value, dict):
        return {k: _without_null_members(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_null_members(v) for v in value]
    return value
