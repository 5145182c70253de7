"""Per-kind lifecycle hooks: what a kind adds to the generic create, update and delete.

Every kind has hooks (:func:`hooks_for`): built-in kinds validate and default through their
strategies (``kinds.builtins``), custom resources through their CRD's structural schema, and
two kinds own more of their lifecycle — CustomResourceDefinitions (:mod:`.crds`) and
Namespaces (:mod:`.namespaces`). The generic path calls them at fixed points and knows no kind
by name; ``envtest.commit`` installs the table that says which kind has which hooks, so this
module imports none of them (no import cycle between the path and the kinds that use it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from envtest.cluster import Cluster
from envtest.errors import Cause
from envtest.kinds import builtins
from envtest.kinds.registry import ResourceType


class KindHooks(Protocol):
    """The points where a kind takes part in its objects' lifecycle."""

    def allow_create(self, cluster: Cluster, rtype: ResourceType) -> None:
        """Refuse (raise an API error) before anything else when no object of the kind may
        be created now."""

    def admit_create(self, cluster: Cluster, rtype: ResourceType,
                     obj: dict[str, Any]) -> list[Cause]:
        """Check and complete an object about to be created; the causes refuse it (422)."""

    def admit_update(self, cluster: Cluster, rtype: ResourceType, new: dict[str, Any],
                     old: dict[str, Any]) -> list[Cause]:
        """Check and complete the next state of an object; the causes refuse it (422)."""

    def stored(self, cluster: Cluster, obj: dict[str, Any]) -> None:
        """After an object of the kind was created or changed in storage."""

    def delete(self, cluster: Cluster, rtype: ResourceType, obj: dict[str, Any]) -> bytes | None:
        """Delete the kind's own way (the answer's bytes), or None for the generic way."""

    def removed(self, cluster: Cluster, rtype: ResourceType, obj: dict[str, Any]) -> None:
        """After an object of the kind left storage."""


class BuiltinHooks:
    """A built-in kind: its kube-apiserver strategy's defaulting and validation."""

    def allow_create(self, cluster: Cluster, rtype: ResourceType) -> None:
        return None

    def admit_create(self, cluster: Cluster, rtype: ResourceType,
                     obj: dict[str, Any]) -> list[Cause]:
        return builtins.prepare_create(rtype.group_resource, obj, cluster.ips)

    def admit_update(self, cluster: Cluster, rtype: ResourceType, new: dict[str, Any],
                     old: dict[str, Any]) -> list[Cause]:
        return builtins.check_update(rtype.group_resource, new, old)

    def stored(self, cluster: Cluster, obj: dict[str, Any]) -> None:
        return None

    def delete(self, cluster: Cluster, rtype: ResourceType, obj: dict[str, Any]) -> bytes | None:
        return None

    def removed(self, cluster: Cluster, rtype: ResourceType, obj: dict[str, Any]) -> None:
        return None


@dataclass(frozen=True, slots=True)
class HookTable:
    """Which hooks each kind has: by storage name, else the built-in or the custom default;
    and who hears of every removal (a terminating namespace waits for its last object)."""

    builtin: KindHooks
    custom: KindHooks
    by_store: Mapping[str, KindHooks] = field(default_factory=dict)
    on_removed: tuple[Callable[[Cluster, dict[str, Any]], None], ...] = ()

    def of(self, rtype: ResourceType) -> KindHooks:
        hooks = self.by_store.get(rtype.store)
        if hooks is not None:
            return hooks
        return self.builtin if rtype.builtin else self.custom


_table = HookTable(builtin=BuiltinHooks(), custom=BuiltinHooks())


def install(table: HookTable) -> None:
    """Set the hook table (``envtest.commit`` does, once, as it is imported)."""
    global _table
    _table = table


def hooks_for(rtype: ResourceType) -> KindHooks:
    """The hooks of ``rtype``'s kind."""
    return _table.of(rtype)


def removed_everywhere(cluster: Cluster, obj: dict[str, Any]) -> None:
    """Tell whoever listens for every removal that ``obj`` left storage."""
    for listener in _table.on_removed:
        listener(cluster, obj)
