"""The controller without a server: each row of its outcome table (and what each logs), the log
context bound per reconcile, tracebacks once per object and error, its metrics, real workers
(never one request twice at once, different ones in parallel), a draining stop and the
cooperative reconcile timeout."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from ambient_ctrl.controller import Controller, ControllerOptions
from ambient_ctrl.logcontext import ContextFilter
from ambient_ctrl.notfound import Primary
from ambient_ctrl.ratelimit import ItemExponentialRateLimiter
from ambient_ctrl.reconcile import (
    Request,
    Result,
    TerminalError,
    check_deadline,
    ignore_not_found,
)
from ambient_ctrl.testing import eventually
from ambient_ctrl.workqueue import LOW_PRIORITY, NORMAL_PRIORITY
from foundation.clock import FakeClock, RealClock
from informers.errors import NotFound, TooManyRequests
from informers.resource import CONFIGMAPS
from metrics.controller import ReconcileResult
from metrics.recorder import Recorder
from metrics.registry import new_registry

REQUEST = Request("ns", "obj")
SENTINEL = Request("ns", "sentinel")
NAME = "ctl"
GONE = Request("ns", "gone")
"""The one object the server of :data:`PRIMARY` no longer has."""
PRIMARY = Primary(CONFIGMAPS, exists=lambda request: request != GONE)
"""The controllers here reconcile ConfigMaps (as the builder's ``for_(CONFIGMAPS)`` says)."""


class Panic(BaseException):
    """Neither an Exception nor an interpreter exit: the controller recovers it as a panic."""


class Scripted:
    """A reconciler that runs ``behaviour`` for every request."""

    def __init__(self, behaviour: Callable[[Request], Result]) -> None:
        self.behaviour = behaviour

    def reconcile(self, request: Request) -> Result:
        return self.behaviour(request)


def returning(result: Result) -> Callable[[Request], Result]:
    return lambda request: result


def raising(error: type[BaseException], *args: object) -> Callable[[Request], Result]:
    def reconcile(request: Request) -> Result:
        raise error(*args)  # a fresh exception each time

    return reconcile


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def recorder(clock: FakeClock) -> Recorder:
    return Recorder(new_registry(runtime_collectors=False), monotonic=clock.monotonic)


Build = Callable[..., Controller]


@pytest.fixture()
def build(clock: FakeClock, recorder: Recorder) -> Iterator[Build]:
    """Makes controllers named ``NAME`` on the fake clock; stops (and joins) them afterwards."""
    made: list[Controller] = []

    def build(behaviour: Callable[[Request], Result], *, primary: Primary | None = PRIMARY,
              **options: object) -> Controller:
        controller = Controller(NAME, Scripted(behaviour), clock=clock, recorder=recorder,
                                options=ControllerOptions(**options),  # type: ignore[arg-type]
                                primary=primary)
        made.append(controller)
        return controller

    yield build
    for controller in made:
        assert controller.stop(timeout=5)
    assert not [t for t in threading.enumerate() if t.name.startswith(f"{NAME}-worker-")]


def sample(recorder: Recorder, family: str, **labels: str) -> float | None:
    return recorder.registry.get_sample_value(family, {"controller": NAME, **labels})


def reconcile_totals(recorder: Recorder) -> dict[str, float | None]:
    return {result.value: sample(recorder, "controller_runtime_reconcile_total",
                                 result=result.value) for result in ReconcileResult}


def counts(recorder: Recorder) -> dict[str, float | None]:
    return {kind: sample(recorder, f"controller_runtime_{kind}_total")
            for kind in ("reconcile_errors", "terminal_reconcile_errors", "reconcile_panics",
                         "reconcile_timeouts")}


# --- the outcome table --------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    name: str
    behaviour: Callable[[Request], Result]
    result: ReconcileResult
    requeues: int
    """``num_requeues`` afterwards, given one earlier failure: 0 forgotten, 2 rate-limited."""
    delay: float | None
    """When the request comes back (None: not until the object changes)."""
    errors: int = 0
    terminal: int = 0
    panics: int = 0
    logged: tuple[int, ...] = ()
    """The levels of the controller's log lines at INFO and above."""
    traceback: bool = False
    """Whether one of them carries the traceback."""
    request: Request = REQUEST


def not_found(resource: str, group: str, name: str) -> Callable[[Request], Result]:
    """A 404 as the server answers it: the Status details name the object."""
    def reconcile(request: Request) -> Result:
        raise NotFound(404, {"reason": "NotFound", "message": f'{resource} "{name}" not found',
                             "details": {"name": name, "group": group, "kind": resource}})

    return reconcile


def throttled(retry_after: float) -> Callable[[Request], Result]:
    """The server answered 429 with a Retry-After the transport did not wait for itself."""
    def reconcile(request: Request) -> Result:
        raise TooManyRequests(429, {"reason": "TooManyRequests"}, retry_after=retry_after)

    return reconcile


ROWS = [
    Row("success", returning(Result()), ReconcileResult.SUCCESS, 0, None),
    Row("requeue-after", returning(Result(requeue_after=7.0)), ReconcileResult.REQUEUE_AFTER,
        0, 7.0),
    Row("requeue-after-wins", returning(Result(requeue_after=7.0, requeue=True)),
        ReconcileResult.REQUEUE_AFTER, 0, 7.0),
    Row("requeue", returning(Result(requeue=True)), ReconcileResult.REQUEUE, 2, 0.01),
    # Issue 16 item 2: NotFound about the request's own object (a status patch of an object
    # deleted meanwhile), or about anything once that object is gone, is the end of the work.
    Row("not-found-own-object", not_found("configmaps", "", "obj"), ReconcileResult.SUCCESS,
        0, None),
    Row("not-found-own-object-by-kind", not_found("ConfigMap", "", "obj"),
        ReconcileResult.SUCCESS, 0, None),
    Row("not-found-after-the-object-went", not_found("serviceaccounts", "", "gone-sa"),
        ReconcileResult.SUCCESS, 0, None, request=GONE),
    Row("not-found-another-object", not_found("serviceaccounts", "", "sa"),
        ReconcileResult.ERROR, 2, 0.01, errors=1, logged=(logging.ERROR,), traceback=True),
    Row("not-found-same-name-another-kind", not_found("secrets", "", "obj"),
        ReconcileResult.ERROR, 2, 0.01, errors=1, logged=(logging.ERROR,), traceback=True),
    Row("not-found-same-name-another-group", not_found("configmaps", "example.com", "obj"),
        ReconcileResult.ERROR, 2, 0.01, errors=1, logged=(logging.ERROR,), traceback=True),
    # Issue 16 item 6: bad input is one warning line with the reason, no traceback.
    Row("terminal-error", raising(TerminalError, "bad spec"), ReconcileResult.ERROR, 0, None,
        errors=1, terminal=1, logged=(logging.WARNING,)),
    Row("error", raising(RuntimeError, "boom"), ReconcileResult.ERROR, 2, 0.01, errors=1,
        logged=(logging.ERROR,), traceback=True),
    # Issue 15 item 8: never sooner than the server's Retry-After (the backoff was 10 ms).
    Row("error-with-retry-after", throttled(30.0), ReconcileResult.ERROR, 2, 30.0, errors=1,
        logged=(logging.ERROR,), traceback=True),
    Row("panic", raising(Panic, "blew up"), ReconcileResult.ERROR, 2, 0.01, errors=1,
        panics=1, logged=(logging.ERROR,), traceback=True),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_outcome_table(row: Row, clock: FakeClock, recorder: Recorder, build: Build,
                       caplog: pytest.LogCaptureFixture) -> None:
    limiter = ItemExponentialRateLimiter()
    controller = build(row.behaviour, rate_limiter=limiter)
    queue = controller.queue
    request = row.request
    limiter.when(request)  # an earlier failure: forgetting resets it, a retry doubles it
    caplog.set_level(logging.INFO)

    assert controller.reconcile_once(request) == row.result
    assert queue.num_requeues(request) == row.requeues
    assert reconcile_totals(recorder) == {
        result.value: float(result is row.result) for result in ReconcileResult}
    assert counts(recorder) == {"reconcile_errors": row.errors,
                                "terminal_reconcile_errors": row.terminal,
                                "reconcile_panics": row.panics, "reconcile_timeouts": 0}
    # every delayed add (rate-limited or requeue_after) is a retry
    assert sample(recorder, "workqueue_retries_total", name=NAME) == float(row.delay is not None)
    logged = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert tuple(r.levelno for r in logged) == row.logged  # once, by the controller
    assert any(r.exc_info for r in logged) == row.traceback

    # When does it come back? A sentinel due after every row's delay tells "never" apart
    # from "not yet".
    queue.add_after(SENTINEL, 100.0)
    if row.delay is not None:
        clock.step(row.delay * 0.9, waiters=1)
        assert queue.depth() == 0
        clock.step(row.delay * 0.2, waiters=1)
        assert queue.get(timeout=5) == request
        queue.done(request)
    clock.step(100.0, waiters=1)
    assert queue.get(timeout=5) == SENTINEL
    queue.done(SENTINEL)
    assert queue.depth() == 0


DELAYED = [row for row in ROWS if row.delay is not None]


@pytest.mark.parametrize("row", DELAYED, ids=[row.name for row in DELAYED])
def test_a_requeue_or_retry_keeps_the_priority_handed_out(row: Row, clock: FakeClock,
                                                          build: Build) -> None:
    # As controller-runtime: a request of an initial list (low) stays behind fresh events
    # when it comes back, whatever the outcome.
    controller = build(row.behaviour, rate_limiter=ItemExponentialRateLimiter())
    controller.reconcile_once(row.request, LOW_PRIORITY)
    assert row.delay is not None
    clock.step(row.delay * 1.1, waiters=1)
    assert controller.queue.get_with_priority(timeout=5) == (row.request, LOW_PRIORITY)
    controller.queue.done(row.request)


@pytest.mark.parametrize("result", [Result(requeue_after=1.0, priority=5),
                                    Result(requeue=True, priority=5)], ids=["after", "requeue"])
def test_a_result_may_name_the_priority_of_its_requeue(result: Result, clock: FakeClock,
                                                       build: Build) -> None:
    controller = build(returning(result), rate_limiter=ItemExponentialRateLimiter())
    controller.reconcile_once(REQUEST, LOW_PRIORITY)
    clock.step(1.1, waiters=1)
    assert controller.queue.get_with_priority(timeout=5) == (REQUEST, 5)
    controller.queue.done(REQUEST)


def test_workers_reconcile_higher_priorities_first(build: Build) -> None:
    seen: list[str] = []
    gate = threading.Event()

    def record(request: Request) -> Result:
        seen.append(request.name)
        gate.wait(10)
        return Result()

    controller = build(record)
    queue = controller.queue
    queue.add(Request("ns", "first"), LOW_PRIORITY)
    controller.start()
    eventually(lambda: seen == ["first"])
    for name in ("old-1", "old-2"):
        queue.add(Request("ns", name), LOW_PRIORITY)
    queue.add(Request("ns", "fresh"))
    gate.set()
    eventually(lambda: len(seen) == 4)
    assert seen == ["first", "fresh", "old-1", "old-2"]


def test_priorities_can_be_turned_off(build: Build) -> None:
    controller = build(returning(Result()), use_priority_queue=False)
    assert not controller.queue.priorities
    controller.queue.add(REQUEST, LOW_PRIORITY)
    assert controller.queue.get_with_priority(timeout=0) == (REQUEST, NORMAL_PRIORITY)
    controller.queue.done(REQUEST)


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit],
                         ids=["keyboard-interrupt", "system-exit"])
def test_interpreter_exits_are_not_swallowed(error: type[BaseException], recorder: Recorder,
                                             build: Build) -> None:
    controller = build(raising(error))
    with pytest.raises(error):
        controller.reconcile_once(REQUEST)
    assert set(reconcile_totals(recorder).values()) == {0}
    assert set(counts(recorder).values()) == {0}
    assert controller.queue.num_requeues(REQUEST) == 0
    assert controller.queue.depth() == 0


def test_counters_exist_at_zero_from_construction(recorder: Recorder, build: Build) -> None:
    assert sample(recorder, "controller_runtime_reconcile_total", result="success") is None
    build(returning(Result()), max_concurrent_reconciles=3)
    assert reconcile_totals(recorder) == {result.value: 0 for result in ReconcileResult}
    assert set(counts(recorder).values()) == {0}
    assert sample(recorder, "controller_runtime_max_concurrent_reconciles") == 3
    assert sample(recorder, "controller_runtime_active_workers") == 0
    assert sample(recorder, "workqueue_adds_total", name=NAME) == 0


# --- log context --------------------------------------------------------------------------------

def test_log_records_carry_the_reconcile_context(build: Build,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.handler.addFilter(ContextFilter())
    caplog.set_level(logging.INFO)
    log = logging.getLogger("tests.reconciler")

    def reconcile(request: Request) -> Result:
        log.info("reconciling")
        raise RuntimeError("boom")

    controller = build(reconcile)
    controller.reconcile_once(REQUEST)
    controller.reconcile_once(REQUEST)
    log.info("outside")

    records = [r for r in caplog.records
               if r.name in ("tests.reconciler", "ambient_ctrl.controller")]
    assert [(r.name, r.levelno) for r in records] == [
        ("tests.reconciler", logging.INFO), ("ambient_ctrl.controller", logging.ERROR)] * 2 + [
        ("tests.reconciler", logging.INFO)]
    *inside, outside = records
    for record in inside:
        assert (record.controller, record.request) == (NAME, "ns/obj")  # type: ignore[attr-defined]
    ids = [record.reconcile_id for record in inside]  # type: ignore[attr-defined]
    assert ids[0] == ids[1] != ids[2] == ids[3]
    assert all(len(i) == 12 and int(i, 16) >= 0 for i in ids), "twelve hex digits"
    assert not hasattr(outside, "reconcile_id")


# --- NotFound: the end of the work, or an error ------------------------------------------------

def test_without_a_primary_kind_every_not_found_is_an_error(build: Build,
                                                            recorder: Recorder) -> None:
    controller = build(not_found("configmaps", "", "obj"), primary=None)
    assert controller.reconcile_once(REQUEST) == ReconcileResult.ERROR
    assert counts(recorder)["reconcile_errors"] == 1


def test_a_not_found_is_an_error_when_the_server_cannot_tell_the_object_went(
        build: Build, recorder: Recorder) -> None:
    def unreachable(request: Request) -> bool:
        raise ConnectionError("the API server is unreachable")

    controller = build(not_found("serviceaccounts", "", "sa"),
                       primary=Primary(CONFIGMAPS, exists=unreachable))
    assert controller.reconcile_once(REQUEST) == ReconcileResult.ERROR
    assert counts(recorder)["reconcile_errors"] == 1


@pytest.mark.parametrize(("namespace", "outcome"), [
    ("ns", ReconcileResult.SUCCESS), ("other", ReconcileResult.ERROR)])
def test_a_not_found_names_the_requests_object_only_in_its_namespace(
        build: Build, namespace: str, outcome: ReconcileResult) -> None:
    """The Status of a 404 carries no namespace; the request's URL does: the same name of the
    primary's kind in another namespace is not the request's object (which still exists)."""
    def reconcile(request: Request) -> Result:
        raise NotFound(404, {"reason": "NotFound", "details": {
            "name": "obj", "group": "", "kind": "configmaps"}},
            path=f"/api/v1/namespaces/{namespace}/configmaps/obj")

    controller = build(reconcile, primary=Primary(CONFIGMAPS, exists=lambda request: True))
    assert controller.reconcile_once(REQUEST) == outcome


def test_ignore_not_found_ends_the_block_and_lets_other_errors_through() -> None:
    done: list[str] = []
    with ignore_not_found():
        done.append("read")
        not_found("configmaps", "", "obj")(REQUEST)
        done.append("never")
    assert done == ["read"]

    @ignore_not_found()
    def write() -> str:
        not_found("secrets", "", "s")(REQUEST)
        return "written"

    assert write() is None
    with pytest.raises(TooManyRequests), ignore_not_found():
        throttled(1.0)(REQUEST)


# --- tracebacks: once per object and error ------------------------------------------------------

def test_a_repeated_error_shows_its_traceback_once_per_object_until_it_changes(
        build: Build, caplog: pytest.LogCaptureFixture) -> None:
    script: dict[Request, list[BaseException | None]] = {
        REQUEST: [RuntimeError("boom"), RuntimeError("boom"), RuntimeError("boom"),
                  ValueError("boom"), RuntimeError("boom"), None, RuntimeError("boom"),
                  TerminalError("bad spec"), RuntimeError("boom")],
        SENTINEL: [RuntimeError("boom"), RuntimeError("boom")]}

    def reconcile(request: Request) -> Result:
        error = script[request].pop(0)
        if error is not None:
            raise error
        return Result()

    controller = build(reconcile)
    caplog.set_level(logging.INFO)
    shown: list[tuple[str, str, bool]] = []
    for request in [REQUEST] * 5 + [SENTINEL] * 2 + [REQUEST] * 4:
        caplog.clear()
        controller.reconcile_once(request)
        shown += [(request.name, logging.getLevelName(r.levelno), bool(r.exc_info))
                  for r in caplog.records if r.levelno >= logging.INFO]
    assert shown == [
        ("obj", "ERROR", True),  # the first failure
        ("obj", "ERROR", False), ("obj", "ERROR", False),  # the same again: one line each
        ("obj", "ERROR", True),  # another error
        ("obj", "ERROR", True),  # the first one again: it changed
        ("sentinel", "ERROR", True), ("sentinel", "ERROR", False),  # another object
        # a success, then the same failure: news again
        ("obj", "ERROR", True),
        ("obj", "WARNING", False),  # bad input: one line, never a traceback
        ("obj", "ERROR", True)]
    assert not script[REQUEST] and not script[SENTINEL]


# --- real workers -------------------------------------------------------------------------------

def test_a_request_is_never_reconciled_twice_at_once(build: Build) -> None:
    a, b, c = (Request("ns", name) for name in "abc")
    lock = threading.Lock()
    in_flight: set[Request] = set()
    overlaps: list[Request] = []
    calls: Counter[Request] = Counter()
    a_entered, a_release = threading.Event(), threading.Event()

    def reconcile(request: Request) -> Result:
        with lock:
            if request in in_flight:
                overlaps.append(request)
            in_flight.add(request)
            calls[request] += 1
            first_a = request == a and calls[a] == 1
        try:
            if first_a:
                a_entered.set()
                a_release.wait(5)
        finally:
            with lock:
                in_flight.discard(request)
        return Result()

    controller = build(reconcile, max_concurrent_reconciles=3)
    queue = controller.queue

    def quiet(held: int) -> bool:
        return queue.depth() == 0 and len(list(queue.processing_seconds())) == held

    controller.start()
    try:
        queue.add(a)
        assert a_entered.wait(5)
        for _ in range(20):
            for request in (a, b, c):
                queue.add(request)
        # b and c ran on the two free workers; a stayed with its first worker only
        eventually(lambda: calls[b] and calls[c] and quiet(held=1), timeout=5, interval=0.001)
        assert calls[a] == 1
    finally:
        a_release.set()
    eventually(lambda: quiet(held=0), timeout=5, interval=0.001)
    assert calls[a] == 2  # the adds made while it was held: one more reconcile, collapsed
    assert overlaps == []


def test_different_requests_are_reconciled_in_parallel(recorder: Recorder,
                                                       build: Build) -> None:
    together = threading.Barrier(3, timeout=5)  # breaks unless three run at once
    active: list[float | None] = []

    def reconcile(request: Request) -> Result:
        together.wait()
        active.append(sample(recorder, "controller_runtime_active_workers"))
        together.wait()
        return Result()

    controller = build(reconcile, max_concurrent_reconciles=3)
    controller.start()
    for name in "xyz":
        controller.queue.add(Request("ns", name))
    eventually(lambda: sum(filter(None, reconcile_totals(recorder).values())) == 3, timeout=10,
               interval=0.001)
    assert reconcile_totals(recorder)["success"] == 3
    assert active == [3, 3, 3]
    eventually(lambda: sample(recorder, "controller_runtime_active_workers") == 0, timeout=5)


def test_stop_drains_an_in_flight_reconcile(recorder: Recorder, build: Build) -> None:
    entered, release = threading.Event(), threading.Event()
    finished: list[Request] = []

    def reconcile(request: Request) -> Result:
        entered.set()
        release.wait(5)
        finished.append(request)
        return Result()

    controller = build(reconcile, max_concurrent_reconciles=2)
    controller.start()
    controller.queue.add(REQUEST)
    assert entered.wait(5)
    stopped: list[bool] = []
    stopper = threading.Thread(target=lambda: stopped.append(controller.stop(timeout=10)))
    stopper.start()
    try:
        eventually(lambda: controller.queue.shutting_down, timeout=5)
        controller.queue.add(SENTINEL)  # too late: not taken
        assert stopper.is_alive(), "stop returned while a reconcile was in flight"
        assert finished == []
    finally:
        release.set()
        stopper.join(10)
    assert not stopper.is_alive()
    assert stopped == [True]
    assert finished == [REQUEST]
    assert reconcile_totals(recorder)["success"] == 1
    assert not [t for t in threading.enumerate() if t.name.startswith(f"{NAME}-worker-")]


def test_stop_reports_a_reconcile_that_outlives_its_timeout(build: Build) -> None:
    entered, release = threading.Event(), threading.Event()

    def reconcile(request: Request) -> Result:
        entered.set()
        release.wait(5)
        return Result()

    controller = build(reconcile)
    controller.start()
    controller.queue.add(REQUEST)
    assert entered.wait(5)
    try:
        assert controller.stop(timeout=0.05) is False
    finally:
        release.set()
    assert controller.stop(timeout=5) is True  # and joins the worker now


def test_stop_waits_for_one_timeout_in_all(build: Build,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """Regression: the drain and then each worker's join got the whole timeout (here three
    times 0.5 s). One deadline covers them all; workers that outlive it are logged."""
    entered, release = threading.Barrier(3), threading.Event()

    def reconcile(request: Request) -> Result:
        entered.wait(5)
        release.wait(10)
        return Result()

    controller = build(reconcile, max_concurrent_reconciles=2)
    controller.start()
    controller.queue.add(REQUEST)
    controller.queue.add(SENTINEL)
    entered.wait(5)  # both workers hold a request
    try:
        started = RealClock().monotonic()
        assert controller.stop(timeout=0.5) is False
        # 0.5 s, with slack for a busy machine: well below the 1.5 s of three full timeouts.
        assert RealClock().monotonic() - started < 1.2
    finally:
        release.set()
    outlived = [r for r in caplog.records if r.getMessage().startswith("threads outlived")]
    assert [r.threads for r in outlived] == [  # type: ignore[attr-defined]
        [f"{NAME}-worker-0", f"{NAME}-worker-1"]]


def test_stop_without_drain_leaves_queued_requests_alone(build: Build) -> None:
    """``stop(timeout=0)`` (leadership lost): no waiting, and nothing queued is started."""
    entered, release = threading.Event(), threading.Event()
    reconciled: list[Request] = []

    def reconcile(request: Request) -> Result:
        reconciled.append(request)
        entered.set()
        release.wait(10)
        return Result()

    controller = build(reconcile)
    controller.start()
    controller.queue.add(REQUEST)
    assert entered.wait(5)
    controller.queue.add(SENTINEL)  # waiting behind the held request
    try:
        assert controller.stop(timeout=0) is False
    finally:
        release.set()
    assert controller.stop(timeout=5) is True
    assert reconciled == [REQUEST]


# --- the cooperative timeout --------------------------------------------------------------------

def test_a_reconcile_past_its_timeout_fails_as_timed_out(clock: FakeClock, recorder: Recorder,
                                                         build: Build,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    left: list[float | None] = []

    def reconcile(request: Request) -> Result:
        left.append(check_deadline(clock.monotonic()))
        clock.step(6.0)  # a slow call
        check_deadline(clock.monotonic())  # what the client does before each request
        return Result()

    controller = build(reconcile, reconcile_timeout=5.0,
                       rate_limiter=ItemExponentialRateLimiter())
    assert controller.reconcile_once(REQUEST) == ReconcileResult.ERROR
    assert left == [5.0]
    assert counts(recorder) == {"reconcile_errors": 1, "terminal_reconcile_errors": 0,
                                "reconcile_panics": 0, "reconcile_timeouts": 1}
    assert reconcile_totals(recorder)["error"] == 1
    assert sample(recorder, "controller_runtime_reconcile_time_seconds_sum") == 6.0
    assert controller.queue.num_requeues(REQUEST) == 1  # retried through the rate limiter
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "reconcile timed out; will retry"]
    assert check_deadline(clock.monotonic()) is None  # the deadline ended with the reconcile


def test_without_a_timeout_there_is_no_deadline(clock: FakeClock, build: Build) -> None:
    left: list[float | None] = []

    def reconcile(request: Request) -> Result:
        clock.step(1e6)
        left.append(check_deadline(clock.monotonic()))
        return Result()

    controller = build(reconcile)
    assert controller.reconcile_once(REQUEST) == ReconcileResult.SUCCESS
    assert left == [None]


@pytest.mark.parametrize("wins", [False, True])
def test_with_latest_result_wins_a_pass_takes_back_the_last_ones_requeue(
        wins: bool, clock: FakeClock, build: Build) -> None:
    results = iter([Result(requeue_after=2.0), Result(requeue_after=60.0), Result()])
    controller = build(lambda request: next(results), latest_result_wins=wins)
    controller.reconcile_once(REQUEST)  # asks to look again in 2 s
    controller.reconcile_once(REQUEST)  # an event's pass: in 60 s is soon enough
    clock.step(3, waiters=1)
    if wins:  # the 2 s requeue was taken back: the pass comes at 60 s
        assert controller.queue.depth() == 0
        clock.step(58, waiters=1)
    # (without it, at 2 s: the queue keeps a request's earliest delay, the 60 s is dropped)
    assert controller.queue.get(timeout=5) == REQUEST
    controller.queue.done(REQUEST)
    controller.reconcile_once(REQUEST)  # nothing more to do: nothing is left waiting
    controller.queue.add_after(SENTINEL, 100.0)
    clock.step(101, waiters=1)
    assert controller.queue.get(timeout=5) == SENTINEL
    controller.queue.done(SENTINEL)
    assert controller.queue.depth() == 0


def test_a_batched_event_seen_during_a_pass_outlives_it(clock: FakeClock, build: Build) -> None:
    """With latest_result_wins, a pass takes back the delayed adds asked before it began (it
    read at least what they would have brought), not one a batched event source made while
    it ran: that event may bring what the pass did not read."""
    meanwhile = [False, True]  # popped: the first pass sees an event, the second does not

    def reconcile(request: Request) -> Result:
        if meanwhile.pop():
            controller.queue.add_after(request, 1.0)  # an event batched while the pass runs
        return Result()

    controller = build(reconcile, latest_result_wins=True)
    controller.queue.add_after(REQUEST, 1.0)  # an event batched before the pass
    controller.reconcile_once(REQUEST)
    clock.step(1.5, waiters=1)
    assert controller.queue.get(timeout=5) == REQUEST, "the event seen during the pass"
    controller.queue.done(REQUEST)
    controller.queue.add_after(REQUEST, 1.0)
    controller.reconcile_once(REQUEST)  # began after that add: takes it back
    controller.queue.add_after(SENTINEL, 5.0)
    clock.step(6, waiters=1)
    assert controller.queue.get(timeout=5) == SENTINEL
    controller.queue.done(SENTINEL)
    assert controller.queue.depth() == 0
