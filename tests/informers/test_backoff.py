"""The reflector's backoff: its delays, its cap, Retry-After, and its one reset rule."""

from __future__ import annotations

import random

import pytest

from informers.backoff import Backoff


class HalfJitter(random.Random):
    """Jitter of exactly half its range, so delays can be asserted to the digit."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


def backoff(rng: random.Random | None = None) -> Backoff:
    return Backoff(initial=0.8, maximum=30.0, rng=rng or HalfJitter())


def test_delays_double_from_initial_plus_jitter_up_to_the_cap() -> None:
    b = backoff()
    assert [round(b.next_delay(), 6) for _ in range(8)] == [
        1.2, 2.0, 3.6, 6.8, 13.2, 26.0, 30.0, 30.0]


def test_a_reset_makes_the_next_failure_wait_only_the_jitter_then_doubles_again() -> None:
    b = backoff()
    for _ in range(5):
        b.next_delay()
    b.reset()
    assert [round(b.next_delay(), 6) for _ in range(3)] == [0.4, 1.2, 2.0]


def test_jitter_stays_within_initial() -> None:
    b = backoff(random.Random(3))
    first = b.next_delay()
    b.reset()
    after_reset = b.next_delay()
    assert 0.8 <= first <= 1.6 and 0 <= after_reset <= 0.8


@pytest.mark.parametrize(("retry_after", "expected"), [(20.0, 20.0), (0.0, 1.2), (None, 1.2),
                                                      (1.0, 1.2)],
                         ids=["longer", "zero", "none", "shorter"])
def test_retry_after_wins_when_longer(retry_after: float | None, expected: float) -> None:
    assert backoff().next_delay(retry_after) == pytest.approx(expected)


def test_thousands_of_failures_stay_at_the_cap() -> None:
    """A reflector failing for days must not overflow ``2 ** n`` into an exception."""
    b = backoff()
    delays = [b.next_delay() for _ in range(5000)]
    assert delays[-1] == 30.0
