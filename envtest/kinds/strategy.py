"""A built-in kind's strategy as data: what kube-apiserver's defaulting and REST strategy do to
its objects, as four pure functions on the JSON object.

``default`` runs on every write (kube defaults on every decode, updates included);
``prepare_create`` after it on a create only (a fresh status, generated selectors — the
object's ``metadata.uid`` is already set); ``validate`` on every write; ``validate_update``
on updates (fields that are immutable). Kind modules (:mod:`.apps`, :mod:`.batch`...) give
a table of them by group-resource; :mod:`.builtins` runs them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envtest.errors import Cause

Object = dict[str, Any]


def _nothing(obj: Object) -> None:
    return None


def _valid(obj: Object) -> list[Cause]:
    return []


def _no_change_rules(new: Object, old: Object) -> list[Cause]:
    return []


@dataclass(frozen=True, slots=True)
class Strategy:
    """One kind's defaulting and validation (see the module docstring)."""

    default: Callable[[Object], None] = _nothing
    prepare_create: Callable[[Object], None] = _nothing
    validate: Callable[[Object], list[Cause]] = _valid
    validate_update: Callable[[Object, Object], list[Cause]] = _no_change_rules


def fresh_status(**status: Any) -> Callable[[Object], None]:
    """A ``prepare_create`` that gives a new object the status it starts with (kube's
    strategies reset it: what a client sends in ``status`` on create is dropped)."""
    def prepare(obj: Object) -> None:
        obj["status"] = copy.deepcopy(status)
    return prepare


def immutable(new: Object, old: Object, *paths: str) -> list[Cause]:
    """``field is immutable`` for each dotted path whose value differs between the states."""
    causes = []
    for path in paths:
        if lookup(new, path) != lookup(old, path):
            causes.append(Cause(path, "Invalid value: field is immutable"))
    return causes


def lookup(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def child(obj: Object, *path: str) -> Object | None:
    """The object at ``path``, created empty where missing; None where a value on the way is
    not an object (validation reports it)."""
    for part in path:
        value = obj.setdefault(part, {})
        if not isinstance(value, dict):
            return None
        obj = value
    return obj
