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


@dataclass
class Owner:
    """One managedFields entry: its identifying attributes and its field set."""

    entry: dict[str, Any]
    fields: set[Path]

    @property
    def identity(self) -> tuple[str, str, str, str]:
        operation = str(self.entry.get("operation", ""))
        version = "" if operation == "Apply" else str(self.entry.get("apiVersion", ""))
        return (str(self.entry.get("manager", "")), operation,
                str(self.entry.get("subresource", "")), version)


def owners(entries: Any) -> list[Owner]:
    """The managers of a stored object (malformed entries own nothing and are dropped)."""
    out = []
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, Mapping):
            fields = fp.from_fields_v1(entry.get("fieldsV1") or {})
            out.append(Owner({k: v for k, v in entry.items() if k != "fieldsV1"}, fields))
    return out


def entries(managers: Iterable[Owner]) -> list[dict[str, Any]]:
    """managedFields of the managers that still own something, in kube's order."""
    kept = [m for m in managers if m.fields]
    kept.sort(key=lambda m: (str(m.entry.get("operation", "")), str(m.entry.get("time", "")),
                             *m.identity))
    return [{**m.entry, "fieldsType": "FieldsV1", "fieldsV1": fp.to_fields_v1(m.fields)}
            for m in kept]


Ignored = Callable[[Path], bool]
"""Whether a path is outside what the request may own (status through the main resource)."""


def _nothing_ignored(path: Path) -> bool:
    return False


def apply(live: dict[str, Any], config: dict[str, Any], shape: Shape, managers: list[Owner],
          me: Owner, *, force: bool,
          ignored: Ignored = _nothing_ignored) -> tuple[dict[str, Any], list[Owner]]:
    """(new object, new managers) for ``me`` (its entry, fields unset) applying ``config``."""
    merged = structured.merge(live, config, shape)
    mine = {p for p in structured.leaves(config, shape, unique=True) if p not in STRIPPED and not ignored(p)}
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
    added, modified, removed = structured.compare(structured.leaves(live, shape),
                                                  structured.leaves(new, shape))
    changed = {p for p in added | modified if not ignored(p)}
    conflicts = [Conflict(str(m.entry.get("manager", "")), p)
                 for m in others for p in sorted(m.fields & changed)]
    if conflicts and not force:
        raise Conflicts(conflicts)
    return [Owner(m.entry, m.fields - changed - removed) for m in others]


def update(old: dict[str, Any], new: dict[str, Any], shape: Shape, managers: list[Owner],
           me: Owner, *, ignored: Ignored = _nothing_ignored) -> list[Owner]:
    """Managers after ``me`` (an ``Update`` entry) wrote ``new`` over ``old``."""
    before, after = structured.leaves(old, shape), structured.leaves(new, shape)
    added, modified, removed = structured.compare(before, after)
    previous = next((m for m in managers if m.identity == me.identity), None)
    others = [Owner(m.entry, m.fields - added - modified - removed) for m in managers
              if m.identity != me.identity]
    fields = (previous.fields - removed) if previous is not None else set()
    me.fields = {p for p in fields | added | modified if p not in STRIPPED and not ignored(p)}
    if previous is not None and not (added or modified or removed):
        me.entry["time"] = previous.entry.get("time", me.entry.get("time"))
    return [*others, me]
