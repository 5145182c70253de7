"""Clock helpers for tests of the workqueue's delay thread.

The delay thread computes its pause from the clock, releases the queue's lock and then calls
``clock.wait(event, pause)``, which turns the pause into a deadline. A test that steps a fake
clock between those two moments pushes the deadline back by the step and the delayed item is
late; so a test steps only while the thread is blocked in ``wait``.
"""

from __future__ import annotations

import datetime as _dt
import threading

from ambient_ctrl.testing import eventually
from informers.clock import FakeClock


def step_parked(clock: FakeClock, seconds: float, *, waiters: int = 1) -> None:
    """Step ``clock`` once ``waiters`` threads (the queue's delay thread) are blocked in it."""
    eventually(lambda: clock.waiters == waiters, timeout=5.0, interval=0.001,
               message=f"{waiters} thread(s) waiting on the fake clock")
    clock.step(seconds)


class ParkingClock:
    """A fake :class:`~informers.clock.Clock` that knows who waits on it, and for what.

    :meth:`step` moves time only while every expected waiter is *parked* (blocked in
    :meth:`wait`, its event not set), then waits until each waiter the step woke has parked
    again: it has handled everything that fell due. So a state machine sees the delay thread's
    work as if it ran synchronously, without sleeping and without reading the queue's state.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._now = 1000.0
        self._parked: dict[int, tuple[threading.Event, float]] = {}
        self._parks = 0

    def monotonic(self) -> float:
        with self._cond:
            return self._now

    def now(self) -> _dt.datetime:
        return _dt.datetime(2026, 1, 1, tzinfo=_dt.UTC) + _dt.timedelta(seconds=self.monotonic())

    def wait(self, event: threading.Event, timeout: float) -> bool:
        me = threading.get_ident()
        with self._cond:
            deadline = self._now + timeout
            self._parked[me] = (event, deadline)
            self._parks += 1
            self._cond.notify_all()
            try:
                while not event.is_set() and self._now < deadline:
                    self._cond.wait(0.001)  # short, so an event set elsewhere is noticed
            finally:
                del self._parked[me]
                self._cond.notify_all()
        return event.is_set()

    def step(self, seconds: float, *, waiters: int, timeout: float = 5.0) -> None:
        """Advance by ``seconds`` once exactly ``waiters`` threads are parked; return once those
        the step woke are parked again."""
        with self._cond:
            self._settle(waiters, timeout)
            self._now += seconds
            woken = sum(1 for _, deadline in self._parked.values() if deadline <= self._now)
            parks = self._parks
            self._cond.notify_all()
            if woken:
                self._settle(waiters, timeout, parks=parks + woken)

    def _settle(self, waiters: int, timeout: float, *, parks: int = 0) -> None:
        def settled() -> bool:
            return (self._parks >= parks and len(self._parked) == waiters
                    and not any(event.is_set() for event, _ in self._parked.values()))

        if not self._cond.wait_for(settled, timeout):
            raise AssertionError(f"expected {waiters} parked waiter(s), have {self._parked}")
