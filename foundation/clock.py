"""The one place that reads time: the :class:`Clock` protocol, the real clock and a fake one.

Everything else takes a :class:`Clock` so tests can substitute a fake one instead of sleeping.

Delays and deadlines saturate (:func:`saturate`): a wait of 1e10 s, of infinity or of NaN is
not an error that kills the thread asking for it (``threading.Event.wait`` raises
OverflowError above ``threading.TIMEOUT_MAX``, about 292 years, and a NaN deadline breaks
every comparison with it), but a wait of at most :data:`MAX_DELAY`, or none.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import threading
import time
from typing import Protocol

MAX_DELAY = 366 * 86400.0
"""The longest delay anything waits for at once: a year (and a day). Longer ones are cut to it;
whoever waits wakes up after it and finds the work not due, or waits again."""


def saturate(seconds: float, maximum: float = MAX_DELAY) -> float:
    """``seconds`` as a delay every wait and deadline can take: NaN, zero and negatives are 0
    (due now), anything above ``maximum`` — infinity included — is ``maximum``."""
    if not seconds > 0:  # NaN compares false with everything
        return 0.0
    return min(float(seconds), maximum)


class Clock(Protocol):
    """Monotonic time for intervals, wall time for timestamps, and interruptible waits."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""

    def now(self) -> _dt.datetime:
        """The current wall-clock time, timezone-aware, in UTC."""

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for ``event``; return whether it was set. The timeout
        saturates (:func:`saturate`): it never raises for a huge, infinite or NaN one."""


class RealClock:
    """The system clock. ``monotonic`` and ``now`` are the C functions themselves, not methods
    that call them: every event, queue operation and pass asks for the time (about 150 times
    per session in a burst), and a Python frame around each was a percent of the operator's
    calls."""

    monotonic = staticmethod(time.monotonic)
    now = staticmethod(functools.partial(_dt.datetime.now, _dt.UTC))

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(saturate(timeout))


_last_rfc3339: tuple[float, str] = (math.nan, "")
"""The last second formatted, and its text: a pass formats ``now`` several times (conditions'
transition times, Events, status times) and strftime was a percent of the operator's CPU."""


def rfc3339(moment: _dt.datetime) -> str:
    """Kubernetes' timestamp format: second precision, UTC, ``Z`` suffix."""
    global _last_rfc3339
    second = math.floor(moment.timestamp())
    last = _last_rfc3339  # one read: another thread may replace it meanwhile
    if last[0] == second:
        return last[1]
    text = moment.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _last_rfc3339 = (second, text)
    return text


def rfc3339_micro(moment: _dt.datetime) -> str:
    """Kubernetes' MicroTime format (leases, events.k8s.io): microseconds, ``Z`` suffix."""
    return moment.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeClock:
    """A clock tests move by hand: :meth:`step` advances time and wakes due waiters.

    ``wait`` blocks the calling thread until the event is set or the fake time passes the
    deadline, so code under test runs its real control flow without real sleeping.

    A thread is *parked* while it is blocked in :meth:`wait` and its event is not set. A thread
    that computes a pause from the clock and then waits turns the pause into a deadline only
    when it calls :meth:`wait`; a step between those two moments pushes the deadline back by the
    step. So a test steps once the code under test is parked: ``step(seconds, waiters=n)``
    waits for exactly ``n`` parked threads first, then for those the step woke to park again
    (they have handled everything that fell due), as if that work ran synchronously.
    """

    def __init__(self, start: _dt.datetime | None = None) -> None:
        self._now = start or _dt.datetime(2026, 1, 1, tzinfo=_dt.UTC)
        self._monotonic = 1000.0
        self._cond = threading.Condition()
        self._blocked: dict[int, tuple[threading.Event, float]] = {}  # thread → event, deadline
        self._parks = 0  # calls to wait so far
        self.requested: list[float] = []
        """The timeout of every :meth:`wait`, in call order (what a backoff asked for), as
        saturated (:func:`saturate`)."""

    def monotonic(self) -> float:
        with self._cond:
            return self._monotonic

    def now(self) -> _dt.datetime:
        with self._cond:
            return self._now

    @property
    def waiters(self) -> int:
        """Threads currently blocked in :meth:`wait` (lets a test step only once they are)."""
        with self._cond:
            return len(self._blocked)

    def wait(self, event: threading.Event, timeout: float) -> bool:
        timeout = saturate(timeout)
        me = threading.get_ident()
        with self._cond:
            deadline = self._monotonic + timeout
            self.requested.append(timeout)
            self._blocked[me] = (event, deadline)
            self._parks += 1
            self._cond.notify_all()
            try:
                while not event.is_set() and self._monotonic < deadline:
                    # Short real waits so an event set from another thread is noticed.
                    self._cond.wait(0.001)
            finally:
                del self._blocked[me]
                self._cond.notify_all()
        return event.is_set()

    def step(self, seconds: float, *, waiters: int | None = None, timeout: float = 5.0) -> None:
        """Advance time by ``seconds`` and wake the waiters that fell due.

        With ``waiters``, step only once exactly that many threads are parked and return once
        those the step woke are parked again; raise AssertionError if that takes longer than
        ``timeout`` real seconds.
        """
        with self._cond:
            if waiters is not None:
                self._settle(waiters, timeout)
            self._monotonic += seconds
            self._now += _dt.timedelta(seconds=seconds)
            woken = sum(1 for _, deadline in self._blocked.values()
                        if deadline <= self._monotonic)
            parks = self._parks
            self._cond.notify_all()
            if waiters is not None and woken:
                self._settle(waiters, timeout, parks=parks + woken)

    def _settle(self, waiters: int, timeout: float, *, parks: int = 0) -> None:
        def settled() -> bool:
            return (self._parks >= parks and len(self._blocked) == waiters
                    and not any(event.is_set() for event, _ in self._blocked.values()))

        if not self._cond.wait_for(settled, timeout):
            raise AssertionError(f"expected {waiters} parked waiter(s), have "
                                 f"{len(self._blocked)}")
