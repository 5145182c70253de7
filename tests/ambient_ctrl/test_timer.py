"""Per-object timers without a server, on a fake clock: a tick per interval for a live object
(jitter within its bound), none for an object out of the cache, no pile-up, errors owning the
schedule, and the timer stopping when the object goes."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest

from ambient_ctrl.controller import Controller, ControllerOptions
from ambient_ctrl.notfound import Primary
from ambient_ctrl.reconcile import Request, Result, TerminalError
from ambient_ctrl.retry import RetryPolicy
from ambient_ctrl.timer import Timer
from ambient_ctrl.workqueue import LOW_PRIORITY, NORMAL_PRIORITY
from foundation.clock import FakeClock
from informers.resource import CONFIGMAPS
from tests.ambient_ctrl.test_controller import REQUEST, SENTINEL, Scripted

OTHER = Request("ns", "other")


@pytest.mark.parametrize("timer", [
    {"interval": 0}, {"interval": -1}, {"interval": math.inf}, {"interval": math.nan},
    {"interval": 1, "jitter": -0.1}, {"interval": 1, "jitter": math.nan},
    {"interval": 1, "idle": -1}, {"interval": 1, "idle": math.inf},
], ids=["zero", "negative", "infinite", "nan", "negative-jitter", "nan-jitter", "negative-idle",
        "infinite-idle"])
def test_a_timer_refuses_what_cannot_tick(timer: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Timer(**timer)


def test_jitter_only_ever_stretches_the_interval() -> None:
    timer = Timer(10.0, jitter=0.5)
    assert timer.delay(0.0) == 10.0
    assert timer.delay(0.999) < 15.0
    assert Timer(10.0, jitter=0).delay(0.999) == 10.0
    idle = Timer(10.0, jitter=0.5, idle=30.0)
    assert idle.delay(0.0, unchanged_for=5.0) == 25.0  # until it has been idle 30 s
    assert idle.delay(0.999, unchanged_for=5.0) < 37.5
    assert idle.delay(0.0, unchanged_for=30.0) == 10.0  # idle: every interval


def test_a_timer_needs_the_primary_kind() -> None:
    with pytest.raises(ValueError, match="for_"):
        Controller("ctl", Scripted(lambda r: Result()), options=ControllerOptions(
            timer=Timer(1.0)))
    with pytest.raises(ValueError, match="for_"):
        Controller("ctl", Scripted(lambda r: Result()), options=ControllerOptions(
            timer=Timer(1.0)), primary=Primary(CONFIGMAPS, exists=lambda r: True))
    # with the cache's versions it ticks
    Controller("ctl", Scripted(lambda r: Result()), options=ControllerOptions(
        timer=Timer(1.0)), primary=Primary(CONFIGMAPS, exists=lambda r: True,
                                           cached_version=lambda r: "1")).stop(timeout=1)


class World:
    """A controller with a 10 s timer over a fake cache (``versions``: the resourceVersion of
    each live object) on a fake clock."""

    def __init__(self, clock: FakeClock, behaviour: Callable[[Request], Result], *,
                 idle: float = 0.0, **options: object) -> None:
        self.clock = clock
        self.versions = {REQUEST: "1", OTHER: "1"}
        primary = Primary(CONFIGMAPS, exists=lambda r: r in self.versions,
                          cached_version=self.versions.get)
        self.controller = Controller("ticking", Scripted(behaviour), clock=clock,
                                     primary=primary, options=ControllerOptions(
                                         timer=Timer(10.0, jitter=0, idle=idle),
                                         **options))  # type: ignore[arg-type]
        self.queue = self.controller.queue

    def due(self, after: float) -> list[Request]:
        """What the queue hands out once ``after`` more seconds have passed (each done)."""
        self.clock.step(after, waiters=1)
        out = []
        while (request := self.queue.get(timeout=0)) is not None:
            out.append(request)
            self.queue.done(request)
        return out


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def world(clock: FakeClock) -> Iterator[Callable[..., World]]:
    made: list[World] = []

    def make(behaviour: Callable[[Request], Result] = lambda r: Result(),
             **options: object) -> World:
        made.append(World(clock, behaviour, **options))
        made[-1].queue.add_after(SENTINEL, 1000.0)  # keeps the delay thread parked
        return made[-1]

    yield make
    for each in made:
        assert each.controller.stop(timeout=5)


def test_a_live_object_ticks_every_interval_and_one_out_of_the_cache_does_not(
        world: Callable[..., World]) -> None:
    w = world()
    w.controller.reconcile_once(REQUEST)
    w.controller.reconcile_once(Request("ns", "not-in-the-cache"))  # e.g. a watches() mapping
    assert w.due(9.9) == []
    assert w.due(0.1) == [REQUEST]
    w.controller.reconcile_once(REQUEST)  # the tick's reconcile arms the next one
    assert w.due(10.0) == [REQUEST]


def test_a_tick_comes_behind_fresh_events(world: Callable[..., World]) -> None:
    w = world()
    w.controller.reconcile_once(REQUEST)
    w.clock.step(10.0, waiters=1)
    w.queue.add(OTHER)  # a watch event
    assert w.queue.get_with_priority(timeout=5) == (OTHER, NORMAL_PRIORITY)
    assert w.queue.get_with_priority(timeout=5) == (REQUEST, LOW_PRIORITY)
    w.queue.done(OTHER)
    w.queue.done(REQUEST)


def test_reconciles_in_between_do_not_pile_up_or_push_the_tick_back(
        world: Callable[..., World]) -> None:
    w = world()
    w.controller.reconcile_once(REQUEST)
    w.clock.step(4.0, waiters=1)
    w.controller.reconcile_once(REQUEST)  # an event's reconcile: the tick stays due at 10 s
    w.controller.reconcile_once(REQUEST)
    assert w.due(6.0) == [REQUEST]  # once
    assert w.due(20.0) == []  # nothing else was waiting


def test_a_requeue_after_sooner_than_the_tick_wins(world: Callable[..., World]) -> None:
    w = world(lambda r: Result(requeue_after=3.0))
    w.controller.reconcile_once(REQUEST)
    assert w.due(3.0) == [REQUEST]
    assert w.due(7.0) == []


def test_errors_own_the_schedule(world: Callable[..., World]) -> None:
    script: list[BaseException | None] = [RuntimeError("boom"), None]

    def reconcile(request: Request) -> Result:
        error = script.pop(0) if request == REQUEST else TerminalError("bad")
        if error is not None:
            raise error
        return Result()

    w = world(reconcile, retry=RetryPolicy(backoff={RuntimeError: 30.0}))
    w.controller.reconcile_once(REQUEST)  # fails: retried in 30 s, no tick at 10 s
    w.controller.reconcile_once(OTHER)  # terminal: no tick, no retry
    assert w.due(10.0) == []
    assert w.due(20.0) == [REQUEST]
    w.controller.reconcile_once(REQUEST)  # the retry succeeds: ticking again
    assert w.due(10.0) == [REQUEST]
    assert w.due(100.0) == []  # OTHER never came back


def test_the_timer_stops_when_the_object_goes(world: Callable[..., World]) -> None:
    w = world()
    w.controller.reconcile_once(REQUEST)
    w.controller.reconcile_once(OTHER)
    del w.versions[REQUEST]  # deleted: gone from the cache
    # The tick armed before the deletion still falls due (a delayed add cannot be taken back);
    # its reconcile finds the object gone and arms nothing.
    assert w.due(10.0) == [REQUEST, OTHER]
    w.controller.reconcile_once(REQUEST)
    w.controller.reconcile_once(OTHER)
    assert w.due(10.0) == [OTHER]
    assert w.due(100.0) == []


def test_with_idle_an_object_ticks_only_once_it_has_been_unchanged_that_long(
        world: Callable[..., World]) -> None:
    w = world(idle=30.0)
    w.controller.reconcile_once(REQUEST)  # first seen: a change, as its creation is
    assert w.due(29.9) == []
    assert w.due(0.1) == [REQUEST]
    w.controller.reconcile_once(REQUEST)  # idle 30 s now: every interval
    assert w.due(10.0) == [REQUEST]
    w.controller.reconcile_once(REQUEST)  # the tick's reconcile: the next tick in 10 s
    w.versions[REQUEST] = "2"  # changed; the change's own reconcile sees it
    w.controller.reconcile_once(REQUEST)
    assert w.due(10.0) == [REQUEST]  # the tick armed before the change: one comes early
    w.controller.reconcile_once(REQUEST)  # and arms the next one at the end of the idle time
    assert w.due(19.9) == []
    assert w.due(0.1) == [REQUEST]
    assert len(w.controller.ticker or ()) == 1
    del w.versions[REQUEST]
    w.controller.reconcile_once(REQUEST)  # gone: what the timer kept of it goes too
    assert len(w.controller.ticker or ()) == 0
    assert w.due(100.0) == []
