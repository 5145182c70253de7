"""The workqueue: a state machine against a model (with priorities and without), the delay and
rate-limit rules on a fake clock, priorities, draining shutdown, metrics read at scrape time,
and real threads contending for keys."""

from __future__ import annotations

import itertools
import random
import sys
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ambient_ctrl.ratelimit import ItemExponentialRateLimiter, default_controller_rate_limiter
from ambient_ctrl.testing import eventually
from ambient_ctrl.workqueue import LOW_PRIORITY, NORMAL_PRIORITY, WorkQueue
from foundation.clock import FakeClock
from metrics.recorder import Recorder
from metrics.registry import new_registry

ITEMS = st.sampled_from("abcd")
PRIORITIES = st.sampled_from([LOW_PRIORITY, NORMAL_PRIORITY, 7])


class WorkQueueMachine(RuleBasedStateMachine):
    """The queue against a model: the waiting items in arrival order, each dirty item's
    priority (the highest it was added at), the held set and the delayed items with their due
    time, push order (ties are handed out in push order) and priority. The next item handed
    out is the first waiting one of the highest priority; one raised goes to the back."""

    USE_PRIORITIES = True

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.queue: WorkQueue[str] = WorkQueue(name="machine", clock=self.clock,
                                               rate_limiter=ItemExponentialRateLimiter(),
                                               priorities=self.USE_PRIORITIES)
        self.waiting: list[str] = []
        self.dirty: dict[str, int] = {}
        self.held: set[str] = set()
        self.delayed: dict[str, tuple[float, int, int]] = {}
        self.pushes = itertools.count()
        self.shut = False
        self.delay_thread = False

    def _add(self, item: str, priority: int) -> None:
        if self.shut:
            return
        priority = priority if self.USE_PRIORITIES else NORMAL_PRIORITY
        if item in self.dirty:
            if priority > self.dirty[item]:
                self.dirty[item] = priority
                if item in self.waiting:
                    self.waiting.remove(item)
                    self.waiting.append(item)
            return
        self.dirty[item] = priority
        if item not in self.held:
            self.waiting.append(item)

    @rule(item=ITEMS, priority=PRIORITIES)
    def add(self, item: str, priority: int) -> None:
        self.queue.add(item, priority)
        self._add(item, priority)

    @rule()
    def get(self) -> None:
        got = self.queue.get_with_priority(timeout=0)
        if self.shut or not self.waiting:
            assert got is None
            return
        top = max(self.dirty[item] for item in self.waiting)
        expected = next(item for item in self.waiting if self.dirty[item] == top)
        assert got == (expected, top)
        assert expected not in self.held, f"{expected!r} handed out while held"
        self.waiting.remove(expected)
        self.held.add(expected)
        del self.dirty[expected]

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def done(self, data: st.DataObject) -> None:
        item = data.draw(st.sampled_from(sorted(self.held)))
        self.queue.done(item)
        self.held.discard(item)
        if item in self.dirty and not self.shut:
            self.waiting.append(item)  # added while held: handed out again, once, at the back

    @rule(item=ITEMS)
    def done_without_holding(self, item: str) -> None:
        if item in self.held:
            return
        self.queue.done(item)  # a caller's mistake must not duplicate or resurrect the item

    @rule(item=ITEMS, delay=st.integers(-1, 3), priority=PRIORITIES)
    def add_after(self, item: str, delay: int, priority: int) -> None:
        self.queue.add_after(item, delay, priority)
        if delay <= 0:
            self._add(item, priority)
            return
        if self.shut:
            return
        self.delay_thread = True
        ready = self.clock.monotonic() + delay
        if item in self.delayed:
            due, push, was = self.delayed[item]
            priority = max(priority, was)  # the higher priority wins
            if due <= ready:  # and the earlier time
                self.delayed[item] = (due, push, priority)
                return
        self.delayed[item] = (ready, next(self.pushes), priority)

    @rule(seconds=st.integers(1, 2))
    def step(self, seconds: int) -> None:
        self.clock.step(seconds, waiters=1 if self.delay_thread and not self.shut else 0)
        now = self.clock.monotonic()
        due = sorted((when, item) for item, when in self.delayed.items() if when[0] <= now)
        for (_, _, priority), item in due:
            del self.delayed[item]
            self._add(item, priority)

    # Only once there is something to lose: a shutdown in the first steps would end most runs.
    @precondition(lambda self: len(self.delayed) + len(self.waiting) + len(self.held) > 2)
    @rule()
    def shutdown(self) -> None:
        idle = self.queue.shutdown(drain=True, timeout=0)
        assert idle == (not self.held)
        assert self.queue.shutting_down
        self.shut = True

    @invariant()
    def matches_model(self) -> None:
        assert self.queue.depth() == len(self.waiting) == len(self.queue)
        assert len(list(self.queue.processing_seconds())) == len(self.held)
        by_priority = self.queue.depth_by_priority()
        if by_priority is not None:
            assert {p: n for p, n in by_priority.items() if n} == dict(
                Counter(self.dirty[item] for item in self.waiting))

    def teardown(self) -> None:
        self.queue.shutdown(timeout=5)


class FifoWorkQueueMachine(WorkQueueMachine):
    """The same without priorities (``priorities=False``): every add is a normal one."""

    USE_PRIORITIES = False


WorkQueueMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=30,
                                              deadline=None)
FifoWorkQueueMachine.TestCase.settings = WorkQueueMachine.TestCase.settings
TestWorkQueueMachine = WorkQueueMachine.TestCase
TestFifoWorkQueueMachine = FifoWorkQueueMachine.TestCase


@pytest.fixture()
def busy_switching() -> Iterator[None]:
    """Switch threads often, so they interleave inside the queue's short critical sections."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(interval)


# --- delays on a fake clock ---------------------------------------------------------------------

@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def queue(clock: FakeClock) -> Iterator[WorkQueue[str]]:
    q: WorkQueue[str] = WorkQueue(name="q", clock=clock,
                                  rate_limiter=default_controller_rate_limiter(clock))
    yield q
    q.shutdown(timeout=5)


def test_delayed_items_are_handed_out_in_due_order(clock: FakeClock,
                                                   queue: WorkQueue[str]) -> None:
    queue.add_after("late", 3)
    queue.add_after("early", 1)
    queue.add_after("middle", 2)
    clock.step(0.5, waiters=1)
    assert queue.depth() == 0
    clock.step(3, waiters=1)
    assert [queue.get(timeout=5) for _ in range(3)] == ["early", "middle", "late"]


def test_a_later_item_added_while_the_delay_thread_waits_comes_out_in_turn(
        clock: FakeClock, queue: WorkQueue[str]) -> None:
    """A later item does not wake the delay thread (it wakes for the earlier one first and
    then waits for the next): neither is lost nor early."""
    queue.add_after("early", 1)
    clock.step(0, waiters=1)  # the delay thread sleeps until "early" is due
    queue.add_after("late", 3)
    clock.step(1.5, waiters=1)
    assert queue.get(timeout=5) == "early"
    assert queue.depth() == 0
    clock.step(2, waiters=1)
    assert queue.get(timeout=5) == "late"


@pytest.mark.parametrize("first, second", [(5, 2), (2, 5)], ids=["earlier-second", "later-second"])
def test_add_after_keeps_the_earliest_time(clock: FakeClock, queue: WorkQueue[str],
                                           first: int, second: int) -> None:
    queue.add_after("x", first)
    queue.add_after("x", second)
    clock.step(1.9, waiters=1)
    assert queue.depth() == 0
    clock.step(0.2, waiters=1)
    assert queue.get(timeout=5) == "x"
    queue.done("x")
    # The later time was dropped, not kept as a second delivery.
    nothing_else_comes(queue, clock, within=4)


def nothing_else_comes(queue: WorkQueue[str], clock: FakeClock, *, within: float) -> None:
    """Nothing is due within ``within`` seconds: a sentinel due then comes out alone (which
    tells "never" apart from "not yet")."""
    queue.add_after("sentinel", within)
    clock.step(within + 1, waiters=1)
    assert queue.get(timeout=5) == "sentinel"
    queue.done("sentinel")
    assert queue.depth() == 0


def test_add_after_without_delay_adds_now(queue: WorkQueue[str]) -> None:
    queue.add_after("x", 0)
    queue.add_after("y", -1)
    assert queue.depth() == 2


def test_add_rate_limited_backs_off_exponentially_until_forgotten(
        clock: FakeClock, queue: WorkQueue[str]) -> None:
    def requeue_after(delay: float) -> None:
        queue.add_rate_limited("x")
        clock.step(delay * 0.9, waiters=1)
        assert queue.depth() == 0, f"handed out before {delay} s"
        clock.step(delay * 0.2, waiters=1)
        assert queue.get(timeout=5) == "x"
        queue.done("x")

    for failures, delay in enumerate([0.005, 0.01, 0.02, 0.04], start=1):
        requeue_after(delay)
        assert queue.num_requeues("x") == failures
    queue.forget("x")
    assert queue.num_requeues("x") == 0
    requeue_after(0.005)


# --- priorities ---------------------------------------------------------------------------------

def drain(queue: WorkQueue[str]) -> list[tuple[str, int]]:
    """Everything waiting, as handed out (each item done at once)."""
    out = []
    while (got := queue.get_with_priority(timeout=0)) is not None:
        out.append(got)
        queue.done(got[0])
    return out


def test_higher_priority_first_and_fifo_within_a_priority(queue: WorkQueue[str]) -> None:
    for item in ("old-1", "old-2", "old-3"):
        queue.add(item, LOW_PRIORITY)
    queue.add("fresh-1")
    queue.add("urgent", 10)
    queue.add("fresh-2")
    assert drain(queue) == [("urgent", 10), ("fresh-1", 0), ("fresh-2", 0),
                            ("old-1", LOW_PRIORITY), ("old-2", LOW_PRIORITY),
                            ("old-3", LOW_PRIORITY)]


def test_adding_again_raises_the_priority_and_never_lowers_it(queue: WorkQueue[str]) -> None:
    for item in ("a", "b", "c"):
        queue.add(item, LOW_PRIORITY)
    queue.add("x")
    queue.add("b")  # raised: to the back of the normal items
    queue.add("x", LOW_PRIORITY)  # not lowered, and not moved
    assert queue.depth() == 4
    assert queue.depth_by_priority() == {NORMAL_PRIORITY: 2, LOW_PRIORITY: 2}
    assert drain(queue) == [("x", 0), ("b", 0), ("a", LOW_PRIORITY), ("c", LOW_PRIORITY)]


def test_an_item_added_while_held_comes_back_once_at_its_highest_priority(
        queue: WorkQueue[str]) -> None:
    queue.add("x", LOW_PRIORITY)
    assert queue.get_with_priority() == ("x", LOW_PRIORITY)
    queue.add("x", LOW_PRIORITY)
    queue.add("x")  # raised while held
    queue.add("y")
    assert queue.get_with_priority(timeout=0) == ("y", 0)
    assert queue.get(timeout=0) is None, "x handed out while held"
    queue.add("z", LOW_PRIORITY)
    queue.done("x")  # back behind y's priority peers, ahead of the low z
    queue.done("y")
    assert drain(queue) == [("x", 0), ("z", LOW_PRIORITY)]


def test_delayed_twice_is_due_at_the_earlier_time_with_the_higher_priority(
        clock: FakeClock, queue: WorkQueue[str]) -> None:
    queue.add_after("x", 1, LOW_PRIORITY)
    queue.add_after("x", 5, 3)  # later, higher: the time stays, the priority rises
    queue.add_after("y", 2)
    queue.add_after("y", 1, LOW_PRIORITY)  # earlier, lower: the time moves, the priority stays
    clock.step(1.5, waiters=1)
    assert drain(queue) == [("x", 3), ("y", 0)]


def test_rate_limited_adds_keep_their_priority(clock: FakeClock, queue: WorkQueue[str]) -> None:
    queue.add_rate_limited("low", priority=LOW_PRIORITY)
    queue.add_rate_limited("normal")
    clock.step(0.005, waiters=1)
    assert drain(queue) == [("normal", 0), ("low", LOW_PRIORITY)]
    assert queue.num_requeues("low") == 1


def test_a_delayed_item_falling_due_goes_behind_its_priority_peers(
        clock: FakeClock, queue: WorkQueue[str]) -> None:
    queue.add_after("late", 1)
    queue.add("waiting")
    clock.step(1, waiters=1)
    queue.add("after")
    assert drain(queue) == [("waiting", 0), ("late", 0), ("after", 0)]


def test_without_priorities_everything_is_one_fifo(clock: FakeClock) -> None:
    q: WorkQueue[str] = WorkQueue(name="fifo", clock=clock, priorities=False)
    q.add("a", LOW_PRIORITY)
    q.add("b", 10)
    q.add("a", 20)  # collapses, no raise
    assert q.depth_by_priority() is None
    assert drain(q) == [("a", 0), ("b", 0)]
    q.shutdown(timeout=5)


@pytest.mark.parametrize("priority", [1.5, "1", None])
def test_a_priority_must_be_an_integer(queue: WorkQueue[str], priority: object) -> None:
    with pytest.raises(TypeError):
        queue.add("x", priority)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        queue.add_after("x", 1, priority)  # type: ignore[arg-type]
    assert queue.depth() == 0


def test_shutdown_hands_out_nothing_of_any_priority() -> None:
    q: WorkQueue[str] = WorkQueue(name="q")
    q.add("a", 10)
    q.add("b", LOW_PRIORITY)
    q.shutdown(timeout=5)
    q.add("c", 100)
    assert q.get_with_priority(timeout=0) is None
    assert q.depth_by_priority() == {10: 1, NORMAL_PRIORITY: 0, LOW_PRIORITY: 1}


def test_stale_entries_of_raised_items_do_not_pile_up(queue: WorkQueue[str]) -> None:
    # Raise after raise while the low items never drain: the heap stays proportional.
    for item in range(10):
        queue.add(f"low-{item}", LOW_PRIORITY)
    for round_ in range(1000):
        queue.add(f"r{round_}", LOW_PRIORITY)
        queue.add(f"r{round_}")
        assert queue.get_with_priority(timeout=0) == (f"r{round_}", 0)
        queue.done(f"r{round_}")
    assert len(queue._ready) <= 2 * queue.depth() + 64 + 1
    assert [item for item, _ in drain(queue)] == [f"low-{i}" for i in range(10)]


# --- shutdown -----------------------------------------------------------------------------------

def test_shutdown_hands_out_and_takes_nothing() -> None:
    q: WorkQueue[str] = WorkQueue(name="q")
    q.add("held")
    q.add("waiting")
    assert q.get() == "held"
    q.add("held")  # dirty while held
    assert q.shutdown(timeout=5) is False  # without drain it does not wait for "held"
    assert q.get() is None
    assert q.get(timeout=0) is None
    q.add("new")
    q.add_after("later", 0)
    q.add_after("later", 1)
    q.add_rate_limited("x")
    q.done("held")  # not handed out again after shutdown
    assert q.get() is None
    assert q.depth() == 1  # "waiting" stays where it was


def test_draining_shutdown_waits_for_a_held_item() -> None:
    q: WorkQueue[str] = WorkQueue(name="q")
    q.add("x")
    assert q.get() == "x"
    results: list[bool] = []
    stopper = threading.Thread(target=lambda: results.append(q.shutdown(drain=True, timeout=10)))
    stopper.start()
    try:
        eventually(lambda: q.shutting_down, timeout=5)
        assert q.get(timeout=0) is None
        assert stopper.is_alive(), "shutdown returned while an item was held"
        q.done("x")
    finally:
        stopper.join(10)
    assert not stopper.is_alive()
    assert results == [True]


def test_draining_shutdown_gives_up_after_its_timeout() -> None:
    q: WorkQueue[str] = WorkQueue(name="q")
    q.add("x")
    assert q.get() == "x"
    assert q.shutdown(drain=True, timeout=0.05) is False
    q.done("x")
    assert q.shutdown(drain=True, timeout=0) is True


def test_shutdown_joins_the_delay_thread_even_without_drain_time(clock: FakeClock) -> None:
    q: WorkQueue[str] = WorkQueue(name="joined", clock=clock)
    q.add_after("x", 10)
    clock.step(1, waiters=1)
    assert q.shutdown(drain=True, timeout=0)
    assert not [t for t in threading.enumerate() if t.name == "workqueue-joined-delay"]


@pytest.mark.usefixtures("busy_switching")
def test_shutdown_wakes_a_delay_thread_that_just_started() -> None:
    # A shutdown landing while the delay thread is between its checks must still end it.
    for attempt in range(100):
        q: WorkQueue[str] = WorkQueue(name=f"race-{attempt}")
        q.add_after("x", 3600)
        q.shutdown(timeout=0)
        assert not [t for t in threading.enumerate() if t.name == f"workqueue-race-{attempt}-delay"]


# --- metrics ------------------------------------------------------------------------------------

def test_metrics(clock: FakeClock) -> None:
    recorder = Recorder(new_registry(runtime_collectors=False), monotonic=clock.monotonic)
    q: WorkQueue[str] = WorkQueue(name="wq", clock=clock, metrics=recorder.workqueue,
                                  rate_limiter=ItemExponentialRateLimiter())
    labels = {"name": "wq", "controller": "wq"}

    def sample(name: str, **extra: str) -> float | None:
        return recorder.registry.get_sample_value(name, {**labels, **extra})

    assert sample("workqueue_adds_total") == 0
    assert sample("workqueue_retries_total") == 0
    q.add("a")
    q.add("a")  # collapses into the waiting one, not counted
    q.add("b")
    assert sample("workqueue_adds_total") == 2
    assert sample("workqueue_depth", priority="0") == 2
    assert sample("workqueue_unfinished_work_seconds") == 0
    assert sample("workqueue_longest_running_processor_seconds") == 0

    clock.step(2)
    assert q.get() == "a"
    clock.step(3)
    assert q.get() == "b"
    assert sample("workqueue_queue_duration_seconds_count") == 2
    assert sample("workqueue_queue_duration_seconds_sum") == 2 + 5
    assert sample("workqueue_depth", priority="0") == 0
    clock.step(1)
    # read at scrape time: a held since its get 4 s ago, b 1 s ago
    assert sample("workqueue_unfinished_work_seconds") == 4 + 1
    assert sample("workqueue_longest_running_processor_seconds") == 4

    q.done("a")
    assert sample("workqueue_work_duration_seconds_count") == 1
    assert sample("workqueue_work_duration_seconds_sum") == 4
    assert sample("workqueue_unfinished_work_seconds") == 1
    assert sample("workqueue_longest_running_processor_seconds") == 1

    q.add_rate_limited("c")
    q.add_after("d", 5)
    q.add_after("e", 0)  # no delay: added at once, and a retry all the same (client-go's)
    assert sample("workqueue_retries_total") == 3
    assert sample("workqueue_adds_total") == 3

    q.shutdown(timeout=5)
    q.add_rate_limited("c")
    q.add_after("f", 0)
    assert sample("workqueue_retries_total") == 3  # not counted once shut down
    assert sample("workqueue_depth", priority="") is None  # gauges leave with the queue
    assert sample("workqueue_adds_total") == 3


def test_depth_is_labelled_by_priority(clock: FakeClock) -> None:
    recorder = Recorder(new_registry(runtime_collectors=False), monotonic=clock.monotonic)
    q: WorkQueue[str] = WorkQueue(name="wq", clock=clock, metrics=recorder.workqueue)
    fifo: WorkQueue[str] = WorkQueue(name="fifo", clock=clock, metrics=recorder.workqueue,
                                     priorities=False)

    def depths(name: str = "wq") -> dict[str, float]:
        return {s.labels["priority"]: s.value
                for family in recorder.registry.collect() if family.name == "workqueue_depth"
                for s in family.samples if s.labels["name"] == name}

    assert depths() == {"0": 0}  # the normal priority is there before any add
    assert depths("fifo") == {"": 0}  # a queue without priorities: one series, as before
    for item in ("a", "b"):
        q.add(item, LOW_PRIORITY)
    q.add("c")
    fifo.add("a", LOW_PRIORITY)
    assert depths() == {"-100": 2, "0": 1}
    assert depths("fifo") == {"": 1}
    q.add("a")  # raised: moves from one series to the other
    q.add("d", 1)
    assert depths() == {"-100": 1, "0": 2, "1": 1}
    drain(q)
    assert depths() == {"-100": 0, "0": 0, "1": 0}  # a priority seen stays, at 0
    adds = recorder.registry.get_sample_value("workqueue_adds_total",
                                              {"name": "wq", "controller": "wq"})
    assert adds == 4  # the raise was no add
    for priority in range(2, 30):  # past 25 priorities: one series with the whole depth
        q.add(f"p{priority}", priority)
    assert depths() == {"exceeded_cardinality_limit": 28}
    q.shutdown(timeout=5)
    fifo.shutdown(timeout=5)


def test_every_rate_limited_add_is_a_retry_whatever_the_delay() -> None:
    """Regression: a rate limiter answering 0 (e.g. a bucket with tokens left, in a custom
    combination) made a rate-limited add an uncounted plain add."""

    class Immediate:
        def when(self, item: object) -> float:
            return 0.0

        def forget(self, item: object) -> None:
            pass

        def num_requeues(self, item: object) -> int:
            return 0

    recorder = Recorder(new_registry(runtime_collectors=False), monotonic=FakeClock().monotonic)
    q: WorkQueue[str] = WorkQueue(name="wq", metrics=recorder.workqueue,
                                  rate_limiter=Immediate())
    q.add_rate_limited("a")
    q.add_rate_limited("b")
    labels = {"name": "wq", "controller": "wq"}
    assert recorder.registry.get_sample_value("workqueue_retries_total", labels) == 2
    assert q.get(timeout=0) == "a"
    q.shutdown(timeout=0)


# --- real threads -------------------------------------------------------------------------------

@pytest.mark.usefixtures("busy_switching")
def test_threads_never_hold_the_same_key_at_once() -> None:
    q: WorkQueue[int] = WorkQueue(name="contended")
    keys = range(6)
    lock = threading.Lock()
    held: set[int] = set()
    clashes: list[int] = []
    tick = itertools.count()
    last_added: dict[int, int] = {}
    last_taken: dict[int, int] = {}
    adding = threading.Event()
    adding.set()

    def add(rng: random.Random) -> None:
        key = rng.choice(keys)
        with lock:
            last_added[key] = next(tick)
        q.add(key)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while (key := q.get(timeout=5)) is not None:
            with lock:
                if key in held:
                    clashes.append(key)
                held.add(key)
                last_taken[key] = next(tick)
            if adding.is_set():
                add(rng)  # often the key being held
            with lock:
                held.discard(key)
            q.done(key)

    def adder(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(3000):
            add(rng)

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    adders = [threading.Thread(target=adder, args=(100 + i,)) for i in range(2)]
    for thread in workers + adders:
        thread.start()
    try:
        for thread in adders:
            thread.join(10)
        adding.clear()
        eventually(lambda: q.depth() == 0 and not list(q.processing_seconds()), timeout=10,
                   interval=0.001)
    finally:
        adding.clear()
        q.shutdown(drain=True, timeout=5)
        for thread in workers + adders:
            thread.join(10)
    assert not any(thread.is_alive() for thread in workers + adders)
    assert clashes == []
    # nothing lost: every key was handed out after the last time it was added
    assert {key: last_taken.get(key, -1) > at for key, at in last_added.items()} == {
        key: True for key in last_added}


def test_a_dropped_delayed_add_never_comes(clock: FakeClock, queue: WorkQueue[str]) -> None:
    queue.add_after("x", 2)
    assert queue.drop_delayed("x") and not queue.drop_delayed("x")
    queue.add_after("x", 5)  # later than the dropped one: this time stands
    clock.step(3, waiters=1)
    assert queue.depth() == 0
    clock.step(2.5, waiters=1)
    assert queue.get(timeout=5) == "x"
    queue.done("x")
    queue.add("y")
    assert not queue.drop_delayed("y")  # waiting, not delayed: it stays
    assert queue.get(timeout=5) == "y"
    queue.done("y")
    nothing_else_comes(queue, clock, within=10)


def test_a_delayed_add_made_after_the_mark_is_not_taken_back(clock: FakeClock,
                                                             queue: WorkQueue[str]) -> None:
    """``drop_delayed(asked_by=mark)`` takes back what was asked by the mark (a reconcile's
    start), not what came after it (an event seen meanwhile), even merged into one entry."""
    queue.add_after("x", 5)
    mark = queue.asked()
    assert queue.drop_delayed("x", asked_by=mark)
    queue.add_after("x", 5)
    mark = queue.asked()
    queue.add_after("x", 9)  # after the mark: merged (due at 5), and it keeps the entry
    queue.add_after("y", 1)
    assert not queue.drop_delayed("x", asked_by=mark)
    assert queue.drop_delayed("y", asked_by=queue.asked())
    clock.step(5.5, waiters=1)
    assert queue.get(timeout=5) == "x"
    queue.done("x")
    nothing_else_comes(queue, clock, within=10)


def test_drop_and_delay_again_does_not_pile_up_the_heap(clock: FakeClock,
                                                        queue: WorkQueue[str]) -> None:
    for i in range(1000):  # what a reconcile per event does to a long requeue
        queue.drop_delayed("x")
        queue.add_after("x", 3600 + i)
    queue.add_after("y", 1)
    assert len(queue._waiting) <= 2 * 2 + 64 + 1  # the bound is the point
    clock.step(2, waiters=1)
    assert queue.get(timeout=5) == "y"
    queue.done("y")
    clock.step(3600 + 996, waiters=1)  # 1 s before the last delay ends
    assert queue.depth() == 0
    clock.step(2, waiters=1)
    assert queue.get(timeout=5) == "x"
