"""The leader elector on a fake clock against an in-memory Lease: acquire, renew, standby
takeover, loss at the renew deadline, a hung renewal cut at the deadline, release on cancel.

The elector runs on its own thread; :class:`Candidate` steps the fake clock one of its waits
at a time (a hung request is a wait too: it takes all the time it is given), so every moment
below is exact.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest

from ambient_ctrl.leaderelection import LeaderElectionOptions, LeaderElector
from ambient_ctrl.testing import eventually
from foundation.clock import FakeClock
from informers.errors import TransportError, error_from

T0 = 1000.0
"""The fake clock's monotonic time at the start."""


class FakeLeases:
    """A Lease store with optimistic concurrency. ``fail`` answers 503 at once; ``hang``
    makes each request take all the time it is given on the fake clock, then time out."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.fail = False
        self.hang = False
        self.calls: list[tuple[str, float | None, float]] = []
        """(verb, timeout given, fake time)."""
        self._never = threading.Event()

    def _enter(self, verb: str, timeout: float | None) -> None:
        self.calls.append((verb, timeout, self.clock.monotonic()))
        if self.hang:
            assert timeout is not None, "a request without a cap would hang for 30 s"
            self.clock.wait(self._never, timeout)
            raise TransportError("read timed out")
        if self.fail:
            raise error_from(503, b"", {})

    def _store(self, lease: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        lease = copy.deepcopy(lease)
        lease["metadata"]["resourceVersion"] = str(self.version)
        self.lease = lease
        return copy.deepcopy(lease)

    def get(self, name: str, namespace: str | None = None, *,
            timeout: float | None = None) -> dict[str, Any]:
        self._enter("get", timeout)
        if self.lease is None:
            raise error_from(404, b'{"reason": "NotFound"}', {})
        return copy.deepcopy(self.lease)

    def create(self, obj: dict[str, Any], namespace: str | None = None, *,
               timeout: float | None = None) -> dict[str, Any]:
        self._enter("create", timeout)
        if self.lease is not None:
            raise error_from(409, b'{"reason": "AlreadyExists"}', {})
        return self._store(obj)

    def update(self, obj: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        self._enter("update", timeout)
        assert self.lease is not None
        if obj["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise error_from(409, b'{"reason": "Conflict"}', {})
        return self._store(obj)

    @property
    def holder(self) -> str | None:
        return None if self.lease is None else self.lease["spec"]["holderIdentity"]

    def verbs(self) -> list[str]:
        return [verb for verb, _, _ in self.calls]


OPTIONS = LeaderElectionOptions(name="lease", namespace="ns", identity="me",
                                lease_duration=15.0, renew_deadline=10.0, retry_period=2.0)


class Candidate:
    """An elector running on a thread, its callbacks recorded with their fake time."""

    def __init__(self, leases: FakeLeases, options: LeaderElectionOptions = OPTIONS) -> None:
        self.clock = leases.clock
        self.leases = leases
        self.events: list[tuple[str, float]] = []
        self.elector = LeaderElector(
            leases, options, clock=self.clock,  # type: ignore[arg-type]
            on_started_leading=lambda: self.events.append(("started", self.clock.monotonic())),
            on_stopped_leading=lambda: self.events.append(("stopped", self.clock.monotonic())))
        self.stop = threading.Event()
        self.result: list[bool] = []
        self.thread = threading.Thread(target=lambda: self.result.append(
            self.elector.run(self.stop)), name="test-elector")
        self._waits = 0

    def __enter__(self) -> Candidate:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.leases.hang = False
        self.thread.join(10)
        assert not self.thread.is_alive()

    def _parked(self, number: int) -> bool:
        return len(self.clock.requested) >= number and self.clock.waiters == 1

    def next_wait(self) -> float:
        """Let the elector's next wait begin, step the clock to its end, and return once the
        elector waits again (or has returned). Returns the wait's length."""
        self._waits += 1
        number = self._waits
        eventually(lambda: self._parked(number), timeout=5,
                   message=f"the elector never waited a {number}th time")
        seconds = self.clock.requested[number - 1]
        self.clock.step(seconds)
        eventually(lambda: self._parked(number + 1) or not self.thread.is_alive(), timeout=5)
        return seconds

    def until(self, event: str) -> float:
        """Step wait after wait until ``event`` is recorded; its fake time."""
        for _ in range(100):
            for name, moment in self.events:
                if name == event:
                    return moment
            self.next_wait()
        raise AssertionError(f"no {event} after 100 waits: {self.events}")


def test_acquires_a_missing_lease_and_renews_every_retry_period() -> None:
    leases = FakeLeases(FakeClock())
    with Candidate(leases) as me:
        eventually(lambda: me.events == [("started", T0)], timeout=5)
        assert me.elector.holds_lease() and leases.holder == "me"
        assert leases.verbs() == ["get", "create"]
        first = leases.lease["spec"]["renewTime"]  # type: ignore[index]
        assert [me.next_wait() for _ in range(3)] == [2.0, 2.0, 2.0]
        assert leases.verbs() == ["get", "create"] + ["get", "update"] * 3
        assert leases.lease["spec"]["renewTime"] > first  # type: ignore[index]
        assert leases.lease["spec"]["leaseTransitions"] == 0  # type: ignore[index]
        # Each request may take at most what is left before the deadline (10 s after the
        # last renewal, which was 2 s ago).
        assert {timeout for verb, timeout, _ in leases.calls[2:]} == {8.0}
        assert me.elector.holds_lease()


def test_loses_leadership_exactly_at_the_renew_deadline() -> None:
    leases = FakeLeases(FakeClock())
    with Candidate(leases) as me:
        eventually(lambda: me.events == [("started", T0)], timeout=5)
        leases.fail = True  # every renewal from now on fails at once
        lost = me.until("stopped")
        me.thread.join(5)
        assert me.result == [False]
    assert lost == T0 + OPTIONS.renew_deadline
    assert not me.elector.holds_lease() and me.elector.lease_lost()
    assert leases.holder == "me", "a lost lease is not released (it may be someone else's)"
    assert leases.verbs()[-1] == "get"  # the failed renewals; no write after the loss


def test_a_hung_renewal_is_cut_at_the_deadline() -> None:
    """Regression: each renewal request had the transport's 30 s timeout and the deadline
    was checked after it returned, so a hung API server made the leader notice its loss up to
    a minute late."""
    leases = FakeLeases(FakeClock())
    with Candidate(leases) as me:
        eventually(lambda: me.events == [("started", T0)], timeout=5)
        me.next_wait()  # renewed at T0 + 2: the deadline is now T0 + 12
        leases.hang = True
        lost = me.until("stopped")
        me.thread.join(5)
    hung = leases.calls[-1]
    assert hung[0] == "get" and hung[2] == T0 + 4  # the next renewal's GET...
    assert hung[1] == 8.0  # ...may take only the 8 s left before the deadline
    assert lost == T0 + 2 + OPTIONS.renew_deadline


def test_holds_lease_answers_from_the_clock_while_a_renewal_hangs() -> None:
    """A write guard asks ``holds_lease`` from other threads; it must turn False at the
    deadline even while the renewing thread is stuck (or the process was frozen)."""
    leases = FakeLeases(FakeClock())
    with Candidate(leases) as me:
        eventually(lambda: me.events == [("started", T0)], timeout=5)
        leases.hang = True
        me.next_wait()  # the renewal at T0 + 2 hangs until the deadline, T0 + 10
        eventually(lambda: len(leases.calls) == 3, timeout=5)
        me.clock.step(7.9)
        assert me.elector.holds_lease() and not me.elector.lease_lost()
        me.clock.step(0.1)
        assert not me.elector.holds_lease() and me.elector.lease_lost()
        eventually(lambda: ("stopped", T0 + 10) in me.events, timeout=5)


def test_a_standby_takes_over_only_once_the_lease_expired_on_its_own_clock() -> None:
    clock = FakeClock()
    leases = FakeLeases(clock)
    leases._store({"metadata": {"name": "lease", "namespace": "ns"},
                   "spec": {"holderIdentity": "other", "renewTime": "r1",
                            "leaseDurationSeconds": 15, "leaseTransitions": 4}})
    with Candidate(leases) as me:
        for _ in range(3):
            me.next_wait()  # T0 + 6: the other still holds it, seen unchanged since T0
        assert me.events == []
        leases.lease["spec"]["renewTime"] = "r2"  # type: ignore[index]  # the other renews
        started = me.until("started")
        assert leases.holder == "me"
        assert leases.lease["spec"]["leaseTransitions"] == 5  # type: ignore[index]
    # Seen renewed at T0 + 8 (the next attempt): expired 15 s later, taken at the next attempt.
    assert started == T0 + 8 + 16


@pytest.mark.parametrize("release", [True, False], ids=["release", "keep"])
def test_a_clean_stop_releases_the_lease_unless_told_not_to(release: bool) -> None:
    leases = FakeLeases(FakeClock())
    options = LeaderElectionOptions(name="lease", namespace="ns", identity="me",
                                    release_on_cancel=release)
    with Candidate(leases, options) as me:
        eventually(lambda: me.events == [("started", T0)], timeout=5)
    assert me.result == [True]
    assert [name for name, _ in me.events] == ["started", "stopped"]
    assert leases.holder == ("" if release else "me")
    assert not me.elector.holds_lease()
