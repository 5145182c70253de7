"""Issue 15 item 1: one bad number must not stop every timer. Delays saturate; the framework's
long-lived threads survive what their work raises; a thread that dies anyway turns the
manager's ``/healthz`` red with the ``threads`` check, which names it.

The seams are the framework's own: an injected clock, rate limiter or reconciler (no mock
library, no patched private names).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Hashable, Iterator
from typing import Any

import pytest
import urllib3

from ambient_ctrl.controller import Controller, ControllerOptions
from ambient_ctrl.manager import Manager, ManagerOptions
from ambient_ctrl.reconcile import Request, Result
from ambient_ctrl.testing import eventually
from ambient_ctrl.workqueue import WorkQueue
from envtest import LocalAPIServer
from foundation.clock import MAX_DELAY, FakeClock, RealClock, saturate
from foundation.threads import Threads
from informers.resource import CONFIGMAPS

NS = "default"


@pytest.mark.parametrize(("seconds", "saturated"), [
    (1e10, MAX_DELAY), (math.inf, MAX_DELAY), (math.nan, 0.0), (-5.0, 0.0), (0.0, 0.0),
    (2.5, 2.5)], ids=["huge", "infinite", "nan", "negative", "zero", "ordinary"])
def test_delays_saturate(seconds: float, saturated: float) -> None:
    assert saturate(seconds) == saturated


# the workqueue's delay thread ------------------------------------------------------------------
def test_huge_and_infinite_delays_do_not_stop_a_short_one_fake_clock() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(name="t", clock=clock)
    try:
        queue.add_after("far", 1e10)
        queue.add_after("forever", math.inf)
        queue.add_after("not-a-number", math.nan)  # NaN is "now": it must not poison the heap
        assert queue.get(timeout=1) == "not-a-number"
        queue.add_after("soon", 2.0)
        clock.step(2.0, waiters=1)
        assert queue.get(timeout=5) == "soon"
        # No wait asked the clock for more than a real Event.wait accepts.
        assert max(clock.requested) <= MAX_DELAY
        assert queue.dead_threads() == []
    finally:
        queue.shutdown()


def test_a_huge_delay_does_not_kill_the_delay_thread_real_clock() -> None:
    """Regression: ``threading.Event.wait(1e10)`` raises OverflowError; the delay thread died
    of it and no delayed item ever fired again."""
    queue: WorkQueue[str] = WorkQueue(name="t", clock=RealClock())
    try:
        queue.add_after("far", 1e10)
        for n in range(5):  # each one after the thread went back to waiting for "far"
            queue.add_after(f"soon-{n}", 0.02)
            assert queue.get(timeout=10) == f"soon-{n}"
        assert queue.dead_threads() == []
    finally:
        queue.shutdown()


class Infinite:
    """A rate limiter of an operator's own that answers nonsense."""

    def __init__(self, answer: float) -> None:
        self.answer = answer

    def when(self, item: Hashable) -> float:
        return self.answer

    def forget(self, item: Hashable) -> None:
        pass

    def num_requeues(self, item: Hashable) -> int:
        return 0


@pytest.mark.parametrize("answer", [math.inf, math.nan, -1.0], ids=["inf", "nan", "negative"])
def test_a_rate_limiter_answering_nonsense_is_saturated(answer: float) -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(name="t", clock=clock, rate_limiter=Infinite(answer))
    try:
        queue.add_rate_limited("x")
        queue.add_after("soon", 1.0)
        clock.step(1.0, waiters=1)
        first = queue.get(timeout=5)
        assert first in ("x", "soon")
        if answer == math.inf:
            assert first == "soon" and queue.get(timeout=0) is None
        assert queue.dead_threads() == []
    finally:
        queue.shutdown()


class Die(BaseException):
    """What no loop catches (not an Exception): the seam that kills a thread anyway."""


class DyingClock(RealClock):
    """The real clock, except that a workqueue's delay thread dies in ``wait``."""

    def wait(self, event: threading.Event, timeout: float) -> bool:
        if threading.current_thread().name.endswith("-delay"):
            raise Die("injected")
        return super().wait(event, timeout)


def test_a_delay_thread_survives_errors_in_its_work() -> None:
    class FailingOnce(RealClock):
        failed = False

        def wait(self, event: threading.Event, timeout: float) -> bool:
            if not self.failed and threading.current_thread().name.endswith("-delay"):
                self.failed = True
                raise OverflowError("timestamp out of range for platform time_t")
            return super().wait(event, timeout)

    queue: WorkQueue[str] = WorkQueue(name="t", clock=FailingOnce())
    try:
        queue.add_after("later", 0.05)
        assert queue.get(timeout=10) == "later"  # after the failure and a second's pause
        assert queue.dead_threads() == []
    finally:
        queue.shutdown()


# Threads ---------------------------------------------------------------------------------------
def test_threads_report_deaths_and_early_returns_but_not_an_orderly_stop() -> None:
    threads = Threads("test")
    stop = threading.Event()

    def dies() -> None:
        raise Die("boom")

    threads.start(dies, name="dies")
    threads.start(lambda: None, name="returns")
    threads.start(stop.wait, name="stopped")
    eventually(lambda: len(threads.dead()) == 2)
    threads.stopping()
    stop.set()
    assert threads.join(5) == []
    assert sorted(threads.dead()) == ["dies: died of Die: boom",
                                      "returns: returned while it should run"]


def test_a_worker_survives_a_failure_around_its_reconcile() -> None:
    """A rate limiter that raises (the controller's, not the reconcile's failure) must not
    cost a worker: the request comes back and the worker takes the next one."""
    class Raising(Infinite):
        def when(self, item: Hashable) -> float:
            raise ValueError("limiter broken")

    seen: Counter[str] = Counter()

    class FailsOnce:
        def reconcile(self, request: Request) -> Result:
            seen[request.name] += 1
            if seen[request.name] == 1:
                raise RuntimeError("first attempt fails")
            return Result()

    controller = Controller("c", FailsOnce(), options=ControllerOptions(
        rate_limiter=Raising(0.0)), clock=RealClock())
    controller.start()
    try:
        controller.queue.add(Request(NS, "a"))
        eventually(lambda: seen["a"] == 2, timeout=10)  # put back after its failure
        controller.queue.add(Request(NS, "b"))
        eventually(lambda: seen["b"] == 2, timeout=10)
        assert controller.dead_threads() == []
    finally:
        controller.stop(5)


# the manager's /healthz ------------------------------------------------------------------------
@pytest.fixture()
def api() -> Iterator[LocalAPIServer]:
    with LocalAPIServer() as server:
        yield server


class Probes:
    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self.http = urllib3.PoolManager(retries=False)

    def get(self, path: str) -> tuple[int, str]:
        answer = self.http.request("GET", self.manager.server.probe_url + path)
        return answer.status, answer.data.decode()


class Running:
    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self.code: list[int] = []
        self.thread = threading.Thread(target=lambda: self.code.append(manager.run()),
                                       name="test-manager-run")

    def __enter__(self) -> Probes:
        self.thread.start()
        eventually(lambda: self.manager.server.probe_address is not None, timeout=10)
        return Probes(self.manager)

    def __exit__(self, *exc: Any) -> None:
        self.manager.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


def _manager(api: LocalAPIServer, clock: RealClock | None = None) -> Manager:
    return Manager(kubeconfig=api.kubeconfig, clock=clock, options=ManagerOptions(
        metrics_address="0", probe_address="127.0.0.1:0", tune_gc=False))


def test_a_thread_that_dies_anyway_turns_healthz_red_and_names_it(api: LocalAPIServer) -> None:
    class Requeues:
        def reconcile(self, request: Request) -> Result:
            return Result(requeue_after=0.1)  # the first delayed add starts the delay thread

    manager = _manager(api, clock=DyingClock())
    manager.builder("dying").for_(CONFIGMAPS).complete(Requeues())
    manager.client.create(CONFIGMAPS, {"metadata": {"name": "x", "namespace": NS}})
    with Running(manager) as probes:
        status, body = eventually(lambda: (a := probes.get("/healthz"))[0] == 500 and a,
                                  timeout=15, message="/healthz stayed green")
        assert "[-]threads failed" in body
        status, why = probes.get("/healthz/threads")
        assert status == 500 and "workqueue-dying-delay: died of Die: injected" in why


def test_a_huge_requeue_after_does_not_stop_other_requeues(api: LocalAPIServer) -> None:
    """Regression (issue 15 item 1): a session's 1e10 s timeout became a requeue the delay
    thread could not wait for; it died, and no timeout, backoff or recheck fired again while
    /healthz stayed 200."""
    ticks: Counter[str] = Counter()

    class Mixed:
        def reconcile(self, request: Request) -> Result:
            ticks[request.name] += 1
            return Result(requeue_after=1e10 if request.name == "huge" else 0.05)

    manager = _manager(api)
    manager.builder("mixed").for_(CONFIGMAPS).complete(Mixed())
    with Running(manager) as probes:
        manager.client.create(CONFIGMAPS, {"metadata": {"name": "huge", "namespace": NS}})
        eventually(lambda: ticks["huge"] >= 1, timeout=10)
        manager.client.create(CONFIGMAPS, {"metadata": {"name": "tick", "namespace": NS}})
        eventually(lambda: ticks["tick"] >= 5, timeout=15,
                   message="requeues stopped firing after a huge requeue_after")
        assert probes.get("/healthz")[0] == 200
        assert manager.dead_threads() == []
    assert ticks["huge"] == 1
