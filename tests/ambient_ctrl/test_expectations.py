"""Creation expectations: satisfied once every expected name is observed, or after the TTL."""

from __future__ import annotations

import threading

from ambient_ctrl.clock import FakeClock
from ambient_ctrl.expectations import Expectations

KEY = "ns/session"


def test_unknown_key_is_satisfied() -> None:
    assert Expectations(clock=FakeClock()).satisfied(KEY)


def test_satisfied_once_every_name_is_observed() -> None:
    expectations = Expectations(clock=FakeClock())
    expectations.expect_creations(KEY, ["a", "b"])
    assert not expectations.satisfied(KEY)
    expectations.observed(KEY, "a")
    expectations.observed(KEY, "unrelated")
    expectations.observed("other/key", "b")
    assert not expectations.satisfied(KEY)
    assert expectations.pending(KEY) == {"b"}
    expectations.observed(KEY, "b")
    assert expectations.satisfied(KEY)
    assert expectations.pending(KEY) == frozenset()


def test_expectations_expire_after_ttl() -> None:
    clock = FakeClock()
    expectations = Expectations(ttl=300, clock=clock)
    expectations.expect_creations(KEY, ["a", "b"])
    clock.step(200)
    expectations.observed(KEY, "a")  # an observation does not extend the deadline
    clock.step(99)
    assert not expectations.satisfied(KEY)
    clock.step(1)
    assert expectations.satisfied(KEY)


def test_expecting_again_replaces_and_restarts_the_ttl() -> None:
    clock = FakeClock()
    expectations = Expectations(ttl=10, clock=clock)
    expectations.expect_creations(KEY, ["a"])
    clock.step(8)
    expectations.expect_creations(KEY, ["b"])
    clock.step(8)
    assert expectations.pending(KEY) == {"b"}
    expectations.observed(KEY, "b")
    assert expectations.satisfied(KEY)


def test_forget_and_empty_expectations() -> None:
    expectations = Expectations(clock=FakeClock())
    expectations.expect_creations(KEY, ["a"])
    expectations.forget(KEY)
    assert expectations.satisfied(KEY)
    expectations.expect_creations(KEY, [])
    assert expectations.satisfied(KEY)


def test_concurrent_observations() -> None:
    expectations = Expectations(clock=FakeClock())
    names = [f"child-{i}" for i in range(200)]
    expectations.expect_creations(KEY, names)

    def observe(part: list[str]) -> None:
        for name in part:
            expectations.observed(KEY, name)

    threads = [threading.Thread(target=observe, args=(names[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert expectations.satisfied(KEY)
