"""Rate limiters: per-item exponential backoff, the shared token bucket, the max of several and
controller-runtime's default composition."""

from __future__ import annotations

from collections.abc import Hashable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ambient_ctrl.ratelimit import (
    BucketRateLimiter,
    ItemExponentialRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)
from foundation.clock import FakeClock

ITEMS = st.sampled_from(["a", "b", "c"])
QPS = st.sampled_from([0.5, 1.0, 2.0, 10.0, 50.0])

# --- exponential --------------------------------------------------------------------------------


@given(base=st.floats(1e-3, 1.0), maximum=st.floats(1.0, 1e6), failures=st.integers(1, 80))
def test_exponential_nth_failure_waits_base_times_two_to_the_n(base: float, maximum: float,
                                                               failures: int) -> None:
    limiter = ItemExponentialRateLimiter(base, maximum)
    waits = [limiter.when("x") for _ in range(failures)]
    assert waits == [min(base * 2**n, maximum) for n in range(failures)]
    assert limiter.num_requeues("x") == failures


def test_exponential_defaults_are_client_gos() -> None:
    limiter = ItemExponentialRateLimiter()
    waits = [limiter.when("x") for _ in range(20)]
    assert waits[:4] == [0.005, 0.01, 0.02, 0.04]
    assert waits[-1] == 1000.0
    assert max(waits) == 1000.0


@given(ops=st.lists(st.tuples(st.sampled_from(["when", "forget"]), ITEMS), max_size=60))
def test_exponential_counts_per_item_and_forget_resets(ops: list[tuple[str, str]]) -> None:
    limiter = ItemExponentialRateLimiter(0.005, 1000.0)
    failures = {"a": 0, "b": 0, "c": 0}
    for op, item in ops:
        if op == "when":
            assert limiter.when(item) == min(0.005 * 2 ** failures[item], 1000.0)
            failures[item] += 1
        else:
            limiter.forget(item)
            failures[item] = 0
        assert {i: limiter.num_requeues(i) for i in failures} == failures


# --- bucket -------------------------------------------------------------------------------------


@given(qps=QPS, burst=st.integers(1, 200), extra=st.integers(0, 50))
def test_bucket_lets_a_burst_through_then_spaces_by_one_over_qps(qps: float, burst: int,
                                                                 extra: int) -> None:
    limiter = BucketRateLimiter(qps, burst, clock=FakeClock())
    waits = [limiter.when(n) for n in range(burst + extra)]
    assert waits[:burst] == [0.0] * burst
    assert waits[burst:] == pytest.approx([k / qps for k in range(1, extra + 1)])
    assert limiter.num_requeues(0) == 0


@given(qps=QPS, burst=st.integers(1, 50), debt=st.integers(0, 20), ticks=st.integers(0, 200))
def test_bucket_refills_with_time_up_to_the_burst(qps: float, burst: int, debt: int,
                                                  ticks: int) -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps, burst, clock=clock)
    for n in range(burst + debt):  # empty the bucket and borrow ``debt`` tokens
        limiter.when(n)
    clock.step(ticks / (4 * qps))  # a quarter token per tick
    tokens = min(float(burst), ticks / 4 - debt)
    assert limiter.when("next") == pytest.approx(max(0.0, 1 - tokens) / qps)


@given(qps=QPS, burst=st.integers(1, 50))
def test_bucket_after_a_long_idle_holds_exactly_a_burst(qps: float, burst: int) -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(qps, burst, clock=clock)
    for n in range(2 * burst):
        limiter.when(n)
    clock.step(1e4)
    waits = [limiter.when(n) for n in range(burst + 1)]
    assert waits == [0.0] * burst + [pytest.approx(1 / qps)]


def test_bucket_forget_changes_nothing() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter(1.0, 1, clock=clock)
    assert limiter.when("x") == 0
    limiter.forget("x")
    assert limiter.when("x") == pytest.approx(1.0)


# --- max of -------------------------------------------------------------------------------------


class Fixed:
    """A limiter with a set answer, counting calls like a real one."""

    def __init__(self, wait: float, requeues: int) -> None:
        self.wait, self.requeues, self.forgotten = wait, requeues, 0

    def when(self, item: Hashable) -> float:
        return self.wait

    def forget(self, item: Hashable) -> None:
        self.forgotten += 1

    def num_requeues(self, item: Hashable) -> int:
        return self.requeues


@given(parts=st.lists(st.tuples(st.floats(0, 1e3), st.integers(0, 100)), min_size=1,
                      max_size=5))
def test_max_of_answers_the_max_of_its_parts(parts: list[tuple[float, int]]) -> None:
    limiters = [Fixed(wait, requeues) for wait, requeues in parts]
    combined = MaxOfRateLimiter(*limiters)
    assert combined.when("x") == max(wait for wait, _ in parts)
    assert combined.num_requeues("x") == max(requeues for _, requeues in parts)
    combined.forget("x")
    assert [limiter.forgotten for limiter in limiters] == [1] * len(parts)


def _parts(clock: FakeClock) -> tuple[BucketRateLimiter, ItemExponentialRateLimiter,
                                      ItemExponentialRateLimiter]:
    return (BucketRateLimiter(2.0, 3, clock=clock), ItemExponentialRateLimiter(0.01, 5.0),
            ItemExponentialRateLimiter(0.001, 60.0))


@settings(max_examples=50)
@given(ops=st.lists(st.one_of(st.tuples(st.sampled_from(["when", "forget"]), ITEMS),
                              st.tuples(st.just("step"), st.integers(1, 8))), max_size=60))
def test_max_of_tracks_real_parts(ops: list[tuple[str, str | int]]) -> None:
    clock = FakeClock()
    combined_parts = _parts(clock)
    combined = MaxOfRateLimiter(*combined_parts)
    shadows = _parts(clock)  # the same limiters, fed the same calls one by one
    for op, arg in ops:
        if op == "step":
            assert isinstance(arg, int)
            clock.step(arg / 4)
        elif op == "when":
            assert combined.when(arg) == max(shadow.when(arg) for shadow in shadows)
        else:
            combined.forget(arg)
            for shadow in shadows:
                shadow.forget(arg)
            assert all(part.num_requeues(arg) == 0 for part in combined_parts)
        for item in "abc":
            assert combined.num_requeues(item) == max(s.num_requeues(item) for s in shadows)


def test_max_of_needs_a_limiter() -> None:
    with pytest.raises(ValueError):
        MaxOfRateLimiter()


# --- default ------------------------------------------------------------------------------------


def test_default_limiter_backs_off_per_item_and_caps_the_overall_rate() -> None:
    clock = FakeClock()
    limiter: RateLimiter = default_controller_rate_limiter(clock)
    assert [limiter.when("x") for _ in range(3)] == [0.005, 0.01, 0.02]
    assert limiter.num_requeues("x") == 3
    limiter.forget("x")
    assert limiter.num_requeues("x") == 0
    # 3 tokens of the 100 are used; 97 more first failures pass at 5 ms, then 10 qps rules
    assert [limiter.when(n) for n in range(97)] == [0.005] * 97
    assert [limiter.when(n) for n in range(100, 103)] == pytest.approx([0.1, 0.2, 0.3])
    clock.step(10.0)  # refills 100 tokens, less the 3 borrowed
    assert limiter.when("y") == 0.005
    assert limiter.when("y") == 0.01
    for _ in range(30):
        last = limiter.when("z")
    assert last == 1000.0
