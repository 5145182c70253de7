"""Read-your-writes: stale while the cache shows the version we wrote over, then not."""

from __future__ import annotations

from ambient_ctrl.readyourwrites import ReadYourWrites
from foundation.clock import FakeClock


def test_stale_until_the_cache_shows_another_version() -> None:
    writes = ReadYourWrites()
    assert not writes.stale("a", "10")  # nothing written: never stale
    writes.wrote("a", before="10", after="11")
    assert writes.stale("a", "10")
    assert writes.stale("a", "10")  # still behind
    assert not writes.stale("a", "11")  # caught up
    assert not writes.stale("a", "10")  # forgotten once caught up: a relist may go anywhere
    assert not writes.stale("b", "10")


def test_a_later_version_than_ours_also_ends_it() -> None:
    writes = ReadYourWrites()
    writes.wrote("a", before="10", after="11")
    assert not writes.stale("a", "12")  # someone wrote after us: the cache moved past


def test_entries_expire() -> None:
    clock = FakeClock()
    writes = ReadYourWrites(ttl=5, clock=clock)
    writes.wrote("a", before="1", after="2")
    clock.step(6)
    assert not writes.stale("a", "1")  # a lost event delays, never blocks


def test_writes_that_changed_nothing_are_not_tracked() -> None:
    writes = ReadYourWrites()
    writes.wrote("a", before="3", after="3")  # a no-op write keeps the version
    writes.wrote("b", before="", after="4")
    assert not writes.stale("a", "3") and not writes.stale("b", "")
