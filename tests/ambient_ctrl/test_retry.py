"""The retry policy without a server: its validation, the backoff per exception class, its limits
(max retries, the deadline's look-ahead), the on_error hook, the streak bookkeeping on a fake
clock, and the controller going terminal with it (queue, metrics, one WARNING, on_give_up)."""

from __future__ import annotations

import logging
import math
from types import MappingProxyType

import pytest

from ambient_ctrl.ratelimit import ItemExponentialRateLimiter
from ambient_ctrl.reconcile import Request, Result, TerminalError
from ambient_ctrl.retry import (
    DEADLINE_EXCEEDED,
    RETRIES_EXHAUSTED,
    TERMINAL_ERROR,
    Backoff,
    GiveUp,
    Retrier,
    Retry,
    RetryPolicy,
    Terminal,
    attempt,
)
from foundation.clock import FakeClock
from informers.errors import TooManyRequests
from metrics.recorder import Recorder
from tests.ambient_ctrl import test_controller
from tests.ambient_ctrl.test_controller import REQUEST, Build, counts, not_found, raising

clock = test_controller.clock
recorder = test_controller.recorder
build = test_controller.build
"""The controller tests' fixtures: a fake clock, a recorder on it, and controllers on both."""

OTHER = Request("ns", "other")


def retrier(clock: FakeClock, **policy: object) -> tuple[Retrier, ItemExponentialRateLimiter]:
    limiter = ItemExponentialRateLimiter(base=1.0, maximum=100.0)
    return Retrier(RetryPolicy(**policy), limiter, clock), limiter  # type: ignore[arg-type]


# --- the policy, pure ---------------------------------------------------------------------------

@pytest.mark.parametrize("policy", [
    {"max_retries": -1}, {"deadline": 0}, {"deadline": -5.0}, {"deadline": math.nan},
    {"backoff": {"RuntimeError": 1.0}}, {"backoff": {int: 1.0}},
    {"backoff": {RuntimeError: -1.0}}, {"backoff": {RuntimeError: math.inf}},
    {"backoff": {RuntimeError: math.nan}}, {"backoff": {RuntimeError: "1s"}},
    {"backoff": {RuntimeError: 0}},
], ids=["negative-retries", "zero-deadline", "negative-deadline", "nan-deadline",
        "key-not-a-class", "key-not-an-exception", "negative-backoff", "infinite-backoff",
        "nan-backoff", "backoff-of-a-string", "zero-backoff-for-ever"])
def test_a_policy_refuses_what_cannot_mean_anything(policy: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**policy)  # type: ignore[arg-type]


def test_a_zero_backoff_is_fine_within_limits() -> None:
    assert RetryPolicy(max_retries=1, backoff={RuntimeError: 0}).backoff_for(RuntimeError()) == 0
    assert RetryPolicy(deadline=5, backoff={RuntimeError: 0.0}).backoff_for(RuntimeError()) == 0


def test_the_most_specific_class_of_the_error_picks_the_backoff() -> None:
    policy = RetryPolicy(backoff={Exception: 1.0, OSError: 2.0, ConnectionError: 3.0})
    assert policy.backoff_for(ConnectionResetError()) == 3.0
    assert policy.backoff_for(FileNotFoundError()) == 2.0
    assert policy.backoff_for(ValueError()) == 1.0
    assert policy.backoff_for(KeyboardInterrupt()) is None  # a BaseException: the rate limiter


def test_a_policy_is_immutable_and_keeps_its_own_copy_of_the_backoffs() -> None:
    backoff: dict[type[BaseException], Backoff] = {RuntimeError: 1.0}
    policy = RetryPolicy(backoff=backoff)
    backoff[ValueError] = 2.0
    assert policy.backoff_for(ValueError()) is None
    assert isinstance(policy.backoff, MappingProxyType)
    with pytest.raises(TypeError):
        policy.backoff[KeyError] = 3.0  # type: ignore[index]
    assert RetryPolicy(max_retries=2) == RetryPolicy(max_retries=2)


@pytest.mark.parametrize(("policy", "attempts", "elapsed", "delay", "reason"), [
    (RetryPolicy(), 1000, 1e9, 1e9, None),
    (RetryPolicy(max_retries=0), 1, 0.0, 0.0, RETRIES_EXHAUSTED),
    (RetryPolicy(max_retries=2), 2, 0.0, 0.0, None),
    (RetryPolicy(max_retries=2), 3, 0.0, 0.0, RETRIES_EXHAUSTED),
    (RetryPolicy(deadline=10), 5, 5.0, 4.9, None),
    (RetryPolicy(deadline=10), 5, 5.0, 5.0, DEADLINE_EXCEEDED),  # the retry would start late
    (RetryPolicy(deadline=10), 1, 11.0, 0.0, DEADLINE_EXCEEDED),
    (RetryPolicy(max_retries=1, deadline=10), 2, 20.0, 0.0, RETRIES_EXHAUSTED),
], ids=["unlimited", "no-retries", "within-retries", "past-retries", "within-deadline",
        "retry-would-start-at-the-deadline", "past-the-deadline", "retries-checked-first"])
def test_exhausted(policy: RetryPolicy, attempts: int, elapsed: float, delay: float,
                   reason: str | None) -> None:
    assert policy.exhausted(attempts=attempts, elapsed=elapsed, delay=delay) == reason


# --- the streak bookkeeping ---------------------------------------------------------------------

def test_max_retries_counts_the_retries_after_the_first_failure(clock: FakeClock) -> None:
    retries, limiter = retrier(clock, max_retries=2)
    error = RuntimeError("boom")
    assert retries.failed(REQUEST, error, started=clock.monotonic()) == Retry(1.0)
    assert retries.attempt(REQUEST) == 1
    assert retries.failed(REQUEST, error, started=clock.monotonic()) == Retry(2.0)
    terminal = retries.failed(REQUEST, error, started=clock.monotonic())
    assert terminal == Terminal(REQUEST, error, RETRIES_EXHAUSTED, attempts=3, seconds=0.0)
    assert terminal.message == "RetriesExhausted: boom"
    assert (len(retries), retries.attempt(REQUEST), limiter.num_requeues(REQUEST)) == (0, 0, 0)


def test_the_deadline_runs_from_the_start_of_the_first_failing_reconcile(
        clock: FakeClock) -> None:
    retries, _ = retrier(clock, deadline=10.0, backoff={RuntimeError: 4.0})
    started = clock.monotonic()
    clock.step(1.0)  # the first failing reconcile took a second
    assert retries.failed(REQUEST, RuntimeError(), started=started) == Retry(4.0)  # 1 + 4 < 10
    clock.step(4.0)
    assert retries.failed(REQUEST, RuntimeError(), started=clock.monotonic()) == Retry(4.0)
    clock.step(4.0)  # 9 s in: a retry would start 13 s in
    terminal = retries.failed(REQUEST, RuntimeError(), started=clock.monotonic())
    assert isinstance(terminal, Terminal)
    assert (terminal.reason, terminal.attempts, terminal.seconds) == (DEADLINE_EXCEEDED, 3, 9.0)


def test_a_reconcile_that_does_not_fail_ends_the_streak(clock: FakeClock) -> None:
    retries, _ = retrier(clock, max_retries=1, deadline=5.0, backoff={RuntimeError: 1.0})
    assert isinstance(retries.failed(REQUEST, RuntimeError(), started=clock.monotonic()), Retry)
    clock.step(10.0)
    retries.ended(REQUEST)
    # a new streak: its own count and its own deadline
    assert isinstance(retries.failed(REQUEST, RuntimeError(), started=clock.monotonic()), Retry)
    assert retries.attempt(REQUEST) == 1
    assert retries.attempt(OTHER) == 0


def test_backoffs_by_function_by_limiter_and_the_servers_retry_after(clock: FakeClock) -> None:
    seen: list[int] = []

    def doubling(attempt: int) -> float:
        seen.append(attempt)
        return 2.0 ** attempt

    per_item = ItemExponentialRateLimiter(base=0.5, maximum=10.0)
    retries, limiter = retrier(clock, backoff={ValueError: doubling, KeyError: per_item,
                                               TooManyRequests: 0.1})
    now = clock.monotonic()
    assert [retries.failed(REQUEST, ValueError(), started=now) for _ in range(3)] == [
        Retry(2.0), Retry(4.0), Retry(8.0)]
    assert seen == [1, 2, 3]
    assert retries.failed(OTHER, KeyError(), started=now) == Retry(0.5)
    assert retries.failed(OTHER, KeyError(), started=now) == Retry(1.0)
    throttled = TooManyRequests(429, {"reason": "TooManyRequests"}, retry_after=30.0)
    assert retries.failed(OTHER, throttled, started=now) == Retry(30.0)  # never sooner
    assert limiter.num_requeues(REQUEST) == limiter.num_requeues(OTHER) == 0  # not consulted
    retries.ended(OTHER)
    assert per_item.num_requeues(OTHER) == 0  # a limiter of the policy forgets with the streak


def test_the_on_error_hook_decides_within_the_limits(clock: FakeClock,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    answers: list[object] = [Retry(7.0), None, "nonsense", Retry(7.0)]
    calls: list[tuple[Request, str, int]] = []

    def on_error(request: Request, error: BaseException, attempt: int) -> Retry | GiveUp | None:
        calls.append((request, str(error), attempt))
        answer = answers.pop(0)
        if answer == "raise":
            raise RuntimeError("the hook broke")
        return answer  # type: ignore[return-value]

    retries, limiter = retrier(clock, max_retries=3, on_error=on_error)
    now = clock.monotonic()
    assert retries.failed(REQUEST, RuntimeError("a"), started=now) == Retry(7.0)
    assert limiter.num_requeues(REQUEST) == 0  # the hook's delay: the limiter not consulted
    assert retries.failed(REQUEST, RuntimeError("b"), started=now) == Retry(1.0)  # policy's
    with caplog.at_level(logging.WARNING):
        assert retries.failed(REQUEST, RuntimeError("c"), started=now) == Retry(2.0)
    assert "not Retry, GiveUp or None" in caplog.text
    past = retries.failed(REQUEST, RuntimeError("d"), started=now)  # a Retry past the limit
    assert isinstance(past, Terminal) and past.reason == RETRIES_EXHAUSTED
    assert calls == [(REQUEST, "a", 1), (REQUEST, "b", 2), (REQUEST, "c", 3), (REQUEST, "d", 4)]

    answers[:] = ["raise", GiveUp("InvalidSpec")]
    with caplog.at_level(logging.ERROR):
        assert retries.failed(OTHER, RuntimeError("e"), started=now) == Retry(1.0)
    assert "on_error hook failed" in caplog.text
    gave_up = retries.failed(OTHER, RuntimeError("f"), started=now)
    assert isinstance(gave_up, Terminal)
    assert (gave_up.reason, gave_up.attempts, gave_up.message) == ("InvalidSpec", 2,
                                                                  "InvalidSpec: f")
    assert len(retries) == 0


def test_a_backoff_or_hook_that_breaks_leaves_it_to_the_rate_limiter(
        clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    def broken(attempt: int) -> float:
        raise ZeroDivisionError("oops")

    def on_error(request: Request, error: BaseException, attempt: int) -> Retry | None:
        return Retry(math.nan) if isinstance(error, KeyError) else None

    retries, limiter = retrier(clock, backoff={ValueError: broken,
                                               TypeError: lambda attempt: math.nan},
                               on_error=on_error)
    now = clock.monotonic()
    with caplog.at_level(logging.WARNING):
        assert retries.failed(REQUEST, ValueError(), started=now) == Retry(1.0)
        assert retries.failed(REQUEST, TypeError(), started=now) == Retry(2.0)
        assert retries.failed(REQUEST, KeyError(), started=now) == Retry(4.0)
    assert limiter.num_requeues(REQUEST) == 3
    assert "backoff failed" in caplog.text and "is NaN" in caplog.text


# --- the controller with a policy ---------------------------------------------------------------

def test_a_failing_request_goes_terminal_after_its_retries(
        clock: FakeClock, recorder: Recorder, build: Build,
        caplog: pytest.LogCaptureFixture) -> None:
    gave_up: list[Terminal] = []
    controller = build(raising(RuntimeError, "boom"), retry=RetryPolicy(
        max_retries=2, backoff={RuntimeError: 5.0}, on_give_up=gave_up.append))
    queue = controller.queue
    caplog.set_level(logging.INFO)
    for _ in range(2):
        controller.reconcile_once(REQUEST)
        clock.step(5.0, waiters=1)
        assert queue.get(timeout=5) == REQUEST
        queue.done(REQUEST)
    controller.reconcile_once(REQUEST)

    assert counts(recorder) == {"reconcile_errors": 3, "terminal_reconcile_errors": 1,
                                "reconcile_panics": 0, "reconcile_timeouts": 0}
    levels = [r.levelno for r in caplog.records if r.name == "ambient_ctrl.controller"]
    assert levels == [logging.ERROR, logging.ERROR, logging.WARNING]
    assert "RetriesExhausted" in caplog.records[-1].getMessage()
    assert not caplog.records[-1].exc_info
    assert [(t.request, t.reason, t.attempts) for t in gave_up] == [
        (REQUEST, RETRIES_EXHAUSTED, 3)]
    assert len(controller.retrier) == 0 and queue.num_requeues(REQUEST) == 0
    clock.step(1000.0, waiters=1)  # never comes back by itself
    assert queue.depth() == 0


def test_a_terminal_error_goes_to_the_give_up_hook_and_a_failing_hook_is_one_warning(
        recorder: Recorder, build: Build, caplog: pytest.LogCaptureFixture) -> None:
    gave_up: list[Terminal] = []

    def on_give_up(terminal: Terminal) -> None:
        gave_up.append(terminal)
        raise ConnectionError("cannot write the condition")

    controller = build(raising(TerminalError, "bad spec"),
                       retry=RetryPolicy(on_give_up=on_give_up))
    caplog.set_level(logging.INFO)
    controller.reconcile_once(REQUEST)
    assert [(t.reason, t.message) for t in gave_up] == [(TERMINAL_ERROR, "TerminalError: bad spec")]
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.WARNING]
    assert "on_give_up hook failed" in caplog.records[1].getMessage()
    assert counts(recorder)["terminal_reconcile_errors"] == 1


def test_the_reconciler_reads_its_attempt(clock: FakeClock, build: Build) -> None:
    seen: list[int] = []
    script = [RuntimeError, RuntimeError, None, RuntimeError]

    def reconcile(request: Request) -> Result:
        seen.append(attempt())
        error = script.pop(0)
        if error is not None:
            raise error("boom")
        return Result()

    controller = build(reconcile, retry=RetryPolicy(backoff={RuntimeError: 1.0}))
    for _ in range(4):
        controller.reconcile_once(REQUEST)
    assert seen == [0, 1, 2, 0]
    assert attempt() == 0  # outside a reconcile


def test_the_bookkeeping_holds_only_requests_in_a_streak(clock: FakeClock, build: Build) -> None:
    gone = Request("ns", "gone")  # PRIMARY's server no longer has it
    failures: dict[Request, int] = {}

    def reconcile(request: Request) -> Result:
        failures[request] = failures.get(request, 0) + 1
        if failures[request] == 1:
            raise RuntimeError("first time")
        if request == gone:  # deleted meanwhile: its NotFound ends the work
            return not_found("configmaps", "", "gone")(request)
        return Result()

    controller = build(reconcile, retry=RetryPolicy(backoff={RuntimeError: 1.0}))
    requests = [Request("ns", f"obj-{i}") for i in range(50)] + [gone]
    for request in requests:
        controller.reconcile_once(request)
    assert len(controller.retrier) == len(requests)
    for request in requests:
        controller.reconcile_once(request)
    assert len(controller.retrier) == 0
