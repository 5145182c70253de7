"""The webhook configurations a server holds, as the write path reads them: every webhook of
every Mutating/ValidatingWebhookConfiguration, in kube's order (configurations by name, then
each one's webhooks in order).

The commit hooks of the two configuration kinds keep it current (:mod:`envtest.commit.webhooks`)
— nothing scans storage per request. An empty index is the usual case, and the write path's
only cost then is ``bool(cluster.webhooks)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Hook:
    """One webhook of a configuration, as stored (kube's defaults filled)."""

    configuration: str
    position: int
    spec: Mapping[str, Any]
    mutating: bool

    @property
    def name(self) -> str:
        return str(self.spec.get("name") or "")

    @property
    def key(self) -> tuple[bool, str, int]:
        """Tells webhooks apart across configurations (reinvocation bookkeeping)."""
        return self.mutating, self.configuration, self.position


class WebhookIndex:
    """The webhooks of the stored configurations; touched only from the server's loop."""

    def __init__(self) -> None:
        self._configurations: dict[tuple[bool, str], tuple[Hook, ...]] = {}
        self.mutating: tuple[Hook, ...] = ()
        self.validating: tuple[Hook, ...] = ()
        self.relevant: dict[tuple[str, str, str, str], bool] = {}
        """(operation, group, resource, subresource) -> whether any webhook's rules can match
        it; filled by the write path, emptied whenever a configuration changes."""
        self.in_flight: set[asyncio.Future[Any]] = set()
        """Requests awaiting webhooks (the server cancels them when it stops)."""

    def __bool__(self) -> bool:
        return bool(self.mutating or self.validating)

    def put(self, obj: Mapping[str, Any], *, mutating: bool) -> None:
        """A configuration was created or changed."""
        name = str((obj.get("metadata") or {}).get("name") or "")
        hooks = tuple(Hook(name, i, spec, mutating)
                      for i, spec in enumerate(obj.get("webhooks") or ())
                      if isinstance(spec, Mapping))
        conditional = [hook.name for hook in hooks if hook.spec.get("matchConditions")]
        if conditional and self._configurations.get((mutating, name)) != hooks:
            log.warning("webhook matchConditions are not evaluated here (no CEL): the "
                        "webhooks are called as if their conditions held",
                        extra={"configuration": name, "webhooks": conditional})
        self._configurations[(mutating, name)] = hooks
        self._reindex()

    def remove(self, name: str, *, mutating: bool) -> None:
        """A configuration was deleted."""
        self._configurations.pop((mutating, name), None)
        self._reindex()

    def _reindex(self) -> None:
        self.relevant.clear()
        ordered = sorted(self._configurations.items())
        self.mutating = tuple(h for (m, _), hooks in ordered if m for h in hooks)
        self.validating = tuple(h for (m, _), hooks in ordered if not m for h in hooks)
