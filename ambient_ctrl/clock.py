"""The one place that reads time.

Everything else takes a :class:`Clock` so tests can substitute a fake one instead of sleeping.
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic time for intervals, wall time for timestamps, and interruptible waits."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""

    def now(self) -> _dt.datetime:
        """The current wall-clock time, timezone-aware, in UTC."""

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``event``; return whether it was set."""


class RealClock:
    """The system clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> _dt.datetime:
        return _dt.datetime.now(_dt.UTC)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(timeout)


def rfc3339(moment: _dt.datetime) -> str:
    """Kubernetes' timestamp format: second precision, UTC, ``Z`` suffix."""
    return moment.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(moment: _dt.datetime) -> str:
    """Kubernetes' MicroTime format (leases, events.k8s.io): microseconds, ``Z`` suffix."""
    return moment.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
