"""Predicates: which changes are worth a reconcile.

A predicate looks at an event (create, update with old and new, delete) and answers whether to
enqueue. Combine with :func:`and_`, :func:`or_`, :func:`not_`; build from plain functions with
:class:`Funcs`. They filter wake-ups only: a reconcile must still be correct whatever woke it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

Obj = Mapping[str, Any]


class Predicate(Protocol):
    def create(self, obj: Obj) -> bool: ...

    def update(self, old: Obj, new: Obj) -> bool: ...

    def delete(self, obj: Obj) -> bool: ...


def _meta(obj: Obj, key: str) -> Any:
    return (obj.get("metadata") or {}).get(key)


@dataclass(frozen=True, slots=True)
class Funcs:
    """A predicate from functions; a missing one lets its events through.

    ``inline``: the functions are quick (microseconds: no I/O, no lock held long), never block
    and raise nothing, so an event source may call them on the informer's reflector thread, as
    it does the built-in predicates, instead of handing each event to a thread of its own."""

    on_create: Callable[[Obj], bool] | None = None
    on_update: Callable[[Obj, Obj], bool] | None = None
    on_delete: Callable[[Obj], bool] | None = None
    inline: bool = False

    def create(self, obj: Obj) -> bool:
        return self.on_create(obj) if self.on_create else True

    def update(self, old: Obj, new: Obj) -> bool:
        return self.on_update(old, new) if self.on_update else True

    def delete(self, obj: Obj) -> bool:
        return self.on_delete(obj) if self.on_delete else True


def _on_update(changed: Callable[[Obj, Obj], bool]) -> Funcs:
    return Funcs(on_update=changed)


GenerationChanged = _on_update(lambda old, new: _meta(old, "generation") != _meta(new,
                                                                                  "generation"))
"""Updates whose ``metadata.generation`` moved (spec changes; not status or metadata). Only for
kinds that have a generation (custom resources, Deployments, Pods): ConfigMaps, Secrets and
Services have none, and this would filter out every update of theirs."""
ResourceVersionChanged = _on_update(
    lambda old, new: _meta(old, "resourceVersion") != _meta(new, "resourceVersion"))
"""Updates that are real changes (not resyncs)."""
LabelsChanged = _on_update(lambda old, new: (_meta(old, "labels") or {}) != (
    _meta(new, "labels") or {}))
AnnotationsChanged = _on_update(lambda old, new: (_meta(old, "annotations") or {}) != (
    _meta(new, "annotations") or {}))


@dataclass(frozen=True, slots=True)
class _And:
    parts: tuple[Predicate, ...]

    def create(self, obj: Obj) -> bool:
        return all(p.create(obj) for p in self.parts)

    def update(self, old: Obj, new: Obj) -> bool:
        return all(p.update(old, new) for p in self.parts)

    def delete(self, obj: Obj) -> bool:
        return all(p.delete(obj) for p in self.parts)


@dataclass(frozen=True, slots=True)
class _Or:
    parts: tuple[Predicate, ...]

    def create(self, obj: Obj) -> bool:
        return any(p.create(obj) for p in self.parts)

    def update(self, old: Obj, new: Obj) -> bool:
        return any(p.update(old, new) for p in self.parts)

    def delete(self, obj: Obj) -> bool:
        return any(p.delete(obj) for p in self.parts)


@dataclass(frozen=True, slots=True)
class _Not:
    part: Predicate

    def create(self, obj: Obj) -> bool:
        return not self.part.create(obj)

    def update(self, old: Obj, new: Obj) -> bool:
        return not self.part.update(old, new)

    def delete(self, obj: Obj) -> bool:
        return not self.part.delete(obj)


BUILTIN: frozenset[Predicate] = frozenset({GenerationChanged, ResourceVersionChanged,
                                           LabelsChanged, AnnotationsChanged})
"""The predicates defined here: each compares a metadata field of two states and is quick."""


def runs_inline(predicate: Predicate) -> bool:
    """Whether ``predicate`` is made of :data:`BUILTIN` predicates and ``inline`` :class:`Funcs`
    only (then it is quick and never blocks: an event source may run it on the informer's
    thread)."""
    if isinstance(predicate, _And | _Or):
        return all(runs_inline(part) for part in predicate.parts)
    if isinstance(predicate, _Not):
        return runs_inline(predicate.part)
    return predicate in BUILTIN or (isinstance(predicate, Funcs) and predicate.inline)


def settled(predicate: Predicate, event: str) -> bool | None:
    """What ``predicate`` answers for every ``event`` ("create" or "delete") whatever the
    object, when that is known without calling it: the built-in predicates look at updates
    only, so they pass creates and deletes (``not_`` of one refuses them). None: it depends on
    the object (a user's function, or an unknown predicate). :class:`Funcs` without a function
    for the event passes it whatever the object. An event source skips decoding an object no
    predicate needs to see."""
    if isinstance(predicate, _And | _Or):
        answers = [settled(part, event) for part in predicate.parts]
        if isinstance(predicate, _And):
            return False if False in answers else (None if None in answers else True)
        return True if True in answers else (None if None in answers else False)
    if isinstance(predicate, _Not):
        inner = settled(predicate.part, event)
        return None if inner is None else not inner
    if isinstance(predicate, Funcs):
        return True if (predicate.on_create if event == "create" else predicate.on_delete
                        ) is None else None
    return None


def and_(*predicates: Predicate) -> Predicate:
    return _And(predicates)


def or_(*predicates: Predicate) -> Predicate:
    return _Or(predicates)


def not_(predicate: Predicate) -> Predicate:
    return _Not(predicate)
