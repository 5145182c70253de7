"""Field ownership: ``metadata.managedFields`` through an apply or an update, as
structured-merge-diff's ``merge.Updater`` (``Apply`` and ``Update``) and kube-apiserver's field
manager keep it.

* **Apply** merges the configuration into the live object (:func:`envtest.patch.structured.
  merge`); the applier then owns exactly the configuration's fields; what it owned before and
  no longer applies is removed unless another manager (applier or updater) owns it; a field
  another manager owns whose value the apply changes is a conflict, unless ``force`` moves it.
* **Update** (create, update, patch) never conflicts: its manager takes every field it added
  or changed, other managers lose those fields, and every manager loses removed fields.

Managers are told apart as kube does: by name, operation and subresource, and for updaters by
API version as well. Entries are ordered as kube stores them (operation, time, manager).

Deliberate deviations, where the server knows less than kube's OpenAPI models:

* struct fields and map keys look alike here, so a field is removed as structured-merge-diff
  removes a map key: what the applier owned goes, and a map that empties goes unless someone
  owns it -- upstream drops a struct field the applier owned below together with any unowned
  fields beside it (here those stay: they came from writes nobody was recorded for);
* ``Update`` entries own the maps they add only through their fields (kube also lists a map
  type's own node, ``f:labels: {".": {}}``);
* no cap on ``Update`` entries (kube folds all past ten into ``ancient-changes``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from envtest.patch import fieldpath as fp
from envtest.patch import structured
from envtest.patch.fieldpath import FieldSet, Path
from envtest.patch.shapes import Shape

STRIPPED: FieldSet = frozenset(
    (fp.field(k),) for k in ("apiVersion", "kind", "metadata")) | frozenset(
    (fp.field("metadata"), fp.field(k)) for k in (
        "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName", "generation",
        "managedFields", "resourceVersion"))
"""Paths no manager owns (kube-apiserver's ``stripMetaManager``)."""


@dataclass(frozen=True)
class Conflict:
    manager: str
    path: Path


class Conflicts(Exception):
    """An apply changes fields other managers own (without ``force``)."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        super().__init__(message(conflicts))


def message(conflicts: list[Conflict]) -> str:
    """kube's ``Apply failed with N conflict(s): conflict with "m": .a.b`` text."""
    count = len(conflicts)
    if count == 1:
        return (f'Apply failed with 1 conflict: conflict with "{conflicts[0].manager}": '
                f"{fp.render(conflicts[0].path)}")
    return f"Apply failed with {count} conflicts: " + "; ".join(
        f'conflict with "{c.manager}": {fp.render(c.path)}' for c in conflicts)


class Owner:
    """One managedFields entry: its identifying attributes and its field set, held either as
    the fieldsV1 tree it was read as (updates edit that tree, parsing none of the rest) or as a
    set of paths (what an apply computes)."""

    def __init__(self, entry: dict[str, Any], fields: set[Path] | None = None, *,
                 tree: dict[str, Any] | None = None) -> None:
        self.entry = entry
        self._tree = tree if fields is None else None
        self._fields = fields

    @property
    def fields(self) -> set[Path]:
        if self._fields is None:
            self._fields = fp.from_fields_v1(self._tree)
        return self._fields

    @fields.setter
    def fields(self, value: set[Path]) -> None:
        self._fields, self._tree = value, None

    @property
    def identity(self) -> tuple[str, str, str, str]:
        operation = str(self.entry.get("operation", ""))
        version = "" if operation == "Apply" else str(self.entry.get("apiVersion", ""))
        return (str(self.entry.get("manager", "")), operation,
                str(self.entry.get("subresource", "")), version)

    def without(self, paths: set[Path]) -> Owner:
        """This manager without ``paths`` (itself when it holds none of them)."""
        if self._tree is not None:
            tree = fp.discarded(self._tree, paths)
            return self if tree is self._tree else Owner(self.entry, tree=tree)
        return self if self.fields.isdisjoint(paths) else Owner(self.entry, self.fields - paths)

    def plus(self, paths: set[Path], entry: dict[str, Any]) -> Owner:
        """This manager's fields and ``paths``, under ``entry`` (the manager's next write)."""
        if self._tree is not None:
            return Owner(entry, tree=fp.added(self._tree, paths))
        return Owner(entry, self.fields | paths)

    def fields_v1(self) -> dict[str, Any]:
        return self._tree if self._tree is not None else fp.to_fields_v1(self.fields)


def owners(entries: Any) -> list[Owner]:
    """The managers of a stored object (malformed entries own nothing and are dropped)."""
    out = []
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, Mapping):
            tree = entry.get("fieldsV1")
            out.append(Owner({k: v for k, v in entry.items() if k != "fieldsV1"},
                             tree=tree if isinstance(tree, dict) else {}))
    return out


def entries(managers: Iterable[Owner]) -> list[dict[str, Any]]:
    """managedFields of the managers that still own something, in kube's order."""
    kept = [(m, m.fields_v1()) for m in managers]
    kept = [(m, tree) for m, tree in kept if tree]
    kept.sort(key=lambda pair: (str(pair[0].entry.get("operation", "")),
                                str(pair[0].entry.get("time", "")), *pair[0].identity))
    return [{**m.entry, "fieldsType": "FieldsV1", "fieldsV1": tree} for m, tree in kept]


Ignored = Callable[[Path], bool]
"""Whether a path is outside what the request may own (status through the main resource); it
decides by the path's first element."""


def _nothing_ignored(path: Path) -> bool:
    return False


def apply(live: dict[str, Any], config: dict[str, Any], shape: Shape, managers: list[Owner],
          me: Owner, *, force: bool,
          ignored: Ignored = _nothing_ignored) -> tuple[dict[str, Any], list[Owner]]:
    """(new object, new managers) for ``me`` (its entry, fields unset) applying ``config``."""
    merged = structured.merge(live, config, shape)
    mine = {p for p in structured.leaves(config, shape, unique=True)
            if p not in STRIPPED and not ignored(p)}
    previous = next((m for m in managers if m.identity == me.identity), None)
    others = [m for m in managers if m.identity != me.identity]
    if previous is not None:
        merged = _prune(merged, shape, previous.fields, mine, others)
    others = _take(live, merged, shape, others, force=force, ignored=ignored)
    me.fields = mine
    if previous is not None and previous.fields == mine and merged == live:
        me.entry["time"] = previous.entry.get("time", me.entry.get("time"))
    return merged, [*others, me]


def _prune(merged: dict[str, Any], shape: Shape, last: set[Path], mine: set[Path],
           others: list[Owner]) -> dict[str, Any]:
    """Remove what the applier owned and no longer applies, unless someone else owns it (or
    something below it); maps the removal empties go too, unless someone owns them."""
    owned = fp.with_parents(mine.union(*(m.fields for m in others)))
    gone = [p for p in last if p not in owned]
    return structured.remove(merged, gone, shape, kept=frozenset(owned)) if gone else merged


def _take(live: dict[str, Any], new: dict[str, Any], shape: Shape, others: list[Owner], *,
          force: bool, ignored: Ignored) -> list[Owner]:
    """Other managers after a write from ``live`` to ``new``: they lose removed fields, and
    the fields the write changed (conflicts, unless ``force``)."""
    diff = structured.Comparison(live, new, shape)
    changed = {p for p in diff.added | diff.modified if not ignored(p)}
    removed = diff.removed
    conflicts = [Conflict(str(m.entry.get("manager", "")), p)
                 for m in others for p in sorted(m.fields & changed)]
    if conflicts and not force:
        raise Conflicts(conflicts)
    return [m.without(changed | removed) for m in others]


def update(old: dict[str, Any], new: dict[str, Any], shape: Shape, managers: list[Owner],
           me: Owner, *, ignored: Ignored = _nothing_ignored) -> list[Owner]:
    """Managers after ``me`` (an ``Update`` entry) wrote ``new`` over ``old``."""
    if not old and not managers:  # a creation: every field is the creator's
        tree = structured.fields_v1(new, shape)
        tree = {k: v for k, v in fp.discarded(tree, STRIPPED).items() if not ignored((k,))}
        return [Owner(me.entry, tree=tree)]
    diff = structured.Comparison(old, new, shape)
    added, modified, removed = diff.added, diff.modified, diff.removed
    previous = next((m for m in managers if m.identity == me.identity), None)
    changed = added | modified
    others = [m.without(changed | removed) for m in managers if m.identity != me.identity]
    mine = {p for p in changed if p not in STRIPPED and not ignored(p)}
    if previous is None:
        me.fields = mine
        return [*others, me]
    if not (added or modified or removed):
        me.entry["time"] = previous.entry.get("time", me.entry.get("time"))
    me = previous.without(removed).plus(mine, me.entry)
    return [*others, me]
