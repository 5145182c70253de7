"""Pruning (apiextensions-apiserver ``schema/pruning``): fields a structural schema does not
declare are dropped; ``x-kubernetes-preserve-unknown-fields`` keeps unknown ones, and
``apiVersion``, ``kind`` and ``metadata`` stay at the root and in embedded resources."""

from __future__ import annotations

from typing import Any

from envtest.schema.tree import (
    META_FIELDS,
    Schema,
    additional_of,
    child_path,
    items_of,
    properties_of,
)

CONTAINERS = (dict, list)
"""What pruning can change: a scalar is never pruned, so the walks below do not descend into
one (most of an object's values: a call saved for each)."""


def prune_value(value: Any, s: Schema | None, embedded: bool = False,
           pruned: list[str] | None = None, path: str = "") -> None:
    """``pruned``, when given, collects the paths of what is dropped, as kube reports them for
    ``fieldValidation`` (``spec.items[0].extra``); ``path`` is ``value``'s."""
    if s is not None and s.get("x-kubernetes-preserve-unknown-fields"):
        _prune_declared(value, s, embedded, pruned, path)
    elif isinstance(value, dict):
        _prune_object(value, s, embedded, pruned, path)
    elif isinstance(value, list):
        items = items_of(s)
        for i, item in enumerate(value):
            if isinstance(item, CONTAINERS):
                prune_value(item, items, False, pruned,
                            f"{path}[{i}]" if pruned is not None else "")


def _prune_object(obj: dict[str, Any], s: Schema | None, embedded: bool,
                  pruned: list[str] | None, path: str) -> None:
    if s is None:
        if pruned is not None:
            pruned.extend(child_path(path, key) for key in obj)
        obj.clear()
        return
    embedded = embedded or bool(s.get("x-kubernetes-embedded-resource"))
    props = properties_of(s)
    has_extra, extra = additional_of(s)
    for key in list(obj):
        if embedded and key in META_FIELDS:
            continue
        if key in props or has_extra:
            child = obj[key]
            if isinstance(child, CONTAINERS):
                where = child_path(path, key) if pruned is not None else ""
                prune_value(child, props.get(key, extra), False, pruned, where)
        else:
            if pruned is not None:
                pruned.append(child_path(path, key))
            del obj[key]


def _prune_declared(value: Any, s: Schema, embedded: bool, pruned: list[str] | None,
                    path: str) -> None:
    """Under preserve-unknown-fields: keep unknown fields, prune the declared ones."""
    if isinstance(value, dict):
        embedded = embedded or bool(s.get("x-kubernetes-embedded-resource"))
        props = properties_of(s)
        has_extra, extra = additional_of(s)
        for key, item in value.items():
            if embedded and key in META_FIELDS:
                continue
            if (key in props or has_extra) and isinstance(item, CONTAINERS):
                where = child_path(path, key) if pruned is not None else ""
                prune_value(item, props.get(key, extra), False, pruned, where)
    elif isinstance(value, list):
        items = items_of(s)
        if items is not None:
            for i, item in enumerate(value):
                if isinstance(item, CONTAINERS):
                    _prune_declared(item, items, False, pruned,
                                    f"{path}[{i}]" if pruned is not None else "")
