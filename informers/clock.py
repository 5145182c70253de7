"""The one place that reads time (re-exported as ``ambient_ctrl.clock``).

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


class FakeClock:
    """A clock tests move by hand: :meth:`step` advances time and wakes due waiters.

    ``wait`` blocks the calling thread until the event is set or the fake time passes the
    deadline, so code under test runs its real control flow without real sleeping.
    """

    def __init__(self, start: _dt.datetime | None = None) -> None:
        self._now = start or _dt.datetime(2026, 1, 1, tzinfo=_dt.UTC)
        self._monotonic = 1000.0
        self._cond = threading.Condition()
        self._waiters = 0
        self.requested: list[float] = []
        """The timeout of every :meth:`wait`, in call order (what a backoff asked for)."""

    def monotonic(self) -> float:
        with self._cond:
            return self._monotonic

    def now(self) -> _dt.datetime:
        with self._cond:
            return self._now

    def step(self, seconds: float) -> None:
        with self._cond:
            self._monotonic += seconds
            self._now += _dt.timedelta(seconds=seconds)
            self._cond.notify_all()

    @property
    def waiters(self) -> int:
        """Threads currently blocked in :meth:`wait` (lets a test step only once they are)."""
        with self._cond:
            return self._waiters

    def wait(self, event: threading.Event, timeout: float) -> bool:
        deadline = self.monotonic() + timeout
        with self._cond:
            self.requested.append(timeout)
            self._waiters += 1
            try:
                while not event.is_set() and self._monotonic < deadline:
                    # Short real waits so an event set from another thread is noticed.
                    self._cond.wait(0.01)
            finally:
                self._waiters -= 1
        return event.is_set()
