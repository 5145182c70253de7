"""Named health checks behind ``/healthz`` and ``/readyz``, answered as controller-runtime does
(``pkg/healthz/healthz.go``, itself Kubernetes' format):

- ``GET /readyz``: ``200 ok`` when every check passes; otherwise ``500`` and one line per check,
  ``[+]name ok`` or ``[-]name failed: reason withheld``, then ``readyz check failed``. With
  ``?verbose`` the list is written on success too; ``?exclude=name`` skips a check.
- ``GET /readyz/<name>``: that check alone: ``200 ok``, or ``500 internal server error: <why>``;
  ``404`` for an unknown name.
- No check registered: a built-in ``ping`` that always passes.

The aggregate never shows why a check failed (the endpoint is unauthenticated); the single-check
path does, as in controller-runtime.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass

log = logging.getLogger(__name__)

Check = Callable[[], None]
"""A health check: returns when healthy, raises any ``Exception`` when not (its message is
logged and shown on the check's own path). Called on a server thread; keep it quick."""

PING = "ping"


def ping() -> None:
    """The check that always passes."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer to a health request."""

    status: int
    body: str


class HealthChecks:
    """The named checks of one endpoint (``healthz`` or ``readyz``). Checks may be added from
    any thread at any time (the manager adds ``informers-synced`` once caches sync, say)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        """Register ``check`` as ``name`` (a path segment: non-empty, no ``/``, unique)."""
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"{name!r} is not a valid {self.endpoint} check name")
        with self._lock:
            if name in self._checks:
                raise ValueError(f"{self.endpoint} check {name!r} is already registered")
            self._checks[name] = check

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._checks)

    def _snapshot(self) -> dict[str, Check]:
        with self._lock:
            return dict(self._checks) if self._checks else {PING: ping}

    def _passes(self, name: str, check: Check) -> bool:
        try:
            check()
        except Exception as exc:
            log.info("health check failed", extra={"endpoint": self.endpoint, "check": name,
                                                   "error": str(exc)})
            return False
        return True

    def aggregate(self, *, verbose: bool = False, exclude: Collection[str] = ()) -> Answer:
        """Run every check (except ``exclude``) and answer for the endpoint's root path."""
        checks = self._snapshot()
        lines: list[str] = []
        failed = False
        for name in sorted(checks):
            if name in exclude:
                lines.append(f"[+]{name} excluded: ok")
            elif self._passes(name, checks[name]):
                lines.append(f"[+]{name} ok")
            else:
                lines.append(f"[-]{name} failed: reason withheld")
                failed = True
        if not failed and not verbose:
            return Answer(200, "ok")
        unknown = sorted(set(exclude) - checks.keys())
        if unknown:
            names = ",".join(f'"{name}"' for name in unknown)
            lines.append(f"warn: some health checks cannot be excluded: no matches for {names}")
        verdict = "failed" if failed else "passed"
        lines.append(f"{self.endpoint} check {verdict}")
        return Answer(500 if failed else 200, "\n".join(lines) + "\n")

    def single(self, name: str) -> Answer | None:
        """Run the check ``name`` alone; ``None`` if there is no such check."""
        check = self._snapshot().get(name)
        if check is None:
            return None
        try:
            check()
        except Exception as exc:
            return Answer(500, f"internal server error: {exc}\n")
        return Answer(200, "ok")
