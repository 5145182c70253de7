"""Async reconcilers: the threaded controller's queue semantics, on the manager's event loop.

The first tests drive a Controller and an EventLoop directly (no API server: requests go into
the controller's own workqueue); the last runs sync and async controllers in one manager
against the local API server, writing through the AsyncClient.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ambient_ctrl import Manager, ManagerOptions
from ambient_ctrl.aio import AsyncClient, EventLoop, is_async
from ambient_ctrl.controller import Controller, ControllerOptions
from ambient_ctrl.logcontext import ContextFilter
from ambient_ctrl.reconcile import Request, Result, TerminalError, check_deadline
from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from informers.resource import CONFIGMAPS, SECRETS
from metrics.recorder import Recorder
from metrics.registry import new_registry


@pytest.fixture()
def loop() -> Iterator[EventLoop]:
    event_loop = EventLoop("test-loop")
    event_loop.reserve(4)
    event_loop.start()
    yield event_loop
    assert event_loop.stop(5)


class Tracking:
    """An async reconciler that records what ran, how many at once, and per key."""

    def __init__(self, pause: float = 0.02) -> None:
        self.pause = pause
        self.done: list[Request] = []
        self.running: set[Request] = set()
        self.most = 0
        self.overlaps = 0
        self.lock = threading.Lock()

    async def reconcile(self, request: Request) -> Result:
        with self.lock:
            if request in self.running:
                self.overlaps += 1
            self.running.add(request)
            self.most = max(self.most, len(self.running))
        try:
            await asyncio.sleep(self.pause)
        finally:
            with self.lock:
                self.running.discard(request)
                self.done.append(request)
        return Result()


def running(controller: Controller) -> Controller:
    controller.start()
    return controller


def test_an_async_reconciler_needs_the_loop() -> None:
    assert is_async(Tracking()) and not is_async(object())
    with pytest.raises(ValueError, match="runs on the manager's event loop"):
        Controller("orphan", Tracking())


def test_requests_run_as_tasks_at_most_max_concurrent_and_never_twice_at_once(
        loop: EventLoop) -> None:
    reconciler = Tracking(pause=0.05)
    controller = running(Controller("async", reconciler, loop=loop,
                                    options=ControllerOptions(max_concurrent_reconciles=3)))
    try:
        requests = [Request("ns", f"o{i}") for i in range(12)]
        for request in requests:
            controller.queue.add(request)
        # Added again while queued or in flight: coalesced, or back once after (dirty).
        for request in requests[:4]:
            controller.queue.add(request)
        eventually(lambda: set(reconciler.done) == set(requests), timeout=10)
        assert reconciler.most == 3
        assert reconciler.overlaps == 0
        assert len(reconciler.done) <= len(requests) + 4
        assert [t.name for t in threading.enumerate() if t.name.startswith("async-")] == [
            "async-pump"]  # one thread, not one per worker
    finally:
        assert controller.stop(5)


def test_a_request_added_while_in_flight_comes_back_once_after(loop: EventLoop) -> None:
    gate = asyncio.Event()
    calls: list[int] = []

    class Held:
        async def reconcile(self, request: Request) -> Result:
            calls.append(len(calls))
            if len(calls) == 1:
                await gate.wait()
            return Result()

    controller = running(Controller("dirty", Held(), loop=loop))
    try:
        request = Request("ns", "x")
        controller.queue.add(request)
        eventually(lambda: calls == [0], timeout=5)
        controller.queue.add(request)
        controller.queue.add(request)
        loop.loop.call_soon_threadsafe(gate.set)
        eventually(lambda: calls == [0, 1], timeout=5)
        assert len(controller.queue) == 0
    finally:
        assert controller.stop(5)


def test_outcomes_settle_as_in_the_threaded_controller(loop: EventLoop) -> None:
    recorder = Recorder(new_registry(runtime_collectors=False), monotonic=time.monotonic)
    seen: dict[str, int] = {}

    class Mixed:
        async def reconcile(self, request: Request) -> Result:
            seen[request.name] = seen.get(request.name, 0) + 1
            if request.name == "flaky" and seen["flaky"] < 3:
                raise RuntimeError("not yet")
            if request.name == "bad":
                raise TerminalError("bad input")
            if request.name == "slow":
                await asyncio.sleep(30)  # cancelled by the timeout
            return Result()

    controller = running(Controller("outcomes", Mixed(), loop=loop, recorder=recorder,
                                    options=ControllerOptions(max_concurrent_reconciles=2,
                                                              reconcile_timeout=0.2)))
    try:
        for name in ("flaky", "bad", "ok"):
            controller.queue.add(Request("ns", name))
        eventually(lambda: seen.get("flaky") == 3 and seen.get("ok") == 1, timeout=10)
        assert seen["bad"] == 1  # terminal: not retried
        slow = asyncio.run_coroutine_threadsafe(
            controller.reconcile_once_async(Request("ns", "slow")), loop.loop).result(5)
        assert slow.value == "error"
        totals = recorder.registry.get_sample_value(
            "controller_runtime_reconcile_timeouts_total", {"controller": "outcomes"})
        assert totals == 1
    finally:
        controller.stop(5)


def test_the_reconciles_context_reaches_its_blocking_calls(
        loop: EventLoop, caplog: pytest.LogCaptureFixture) -> None:
    """Log fields and the reconcile's deadline travel into the executor with the call: a
    client check there sees the deadline the controller set."""
    caplog.handler.addFilter(ContextFilter())
    caplog.set_level(logging.INFO)
    log = logging.getLogger("tests.async")
    left: list[float | None] = []

    def blocking() -> None:
        log.info("in the executor")
        left.append(check_deadline(time.monotonic()))

    class Calls:
        async def reconcile(self, request: Request) -> Result:
            await loop.run_blocking(blocking)
            return Result()

    controller = running(Controller("context", Calls(), loop=loop,
                                    options=ControllerOptions(reconcile_timeout=30)))
    try:
        controller.queue.add(Request("ns", "ctx"))
        eventually(lambda: left, timeout=5)
    finally:
        controller.stop(5)
    assert left[0] is not None and 0 < left[0] <= 30
    [record] = [r for r in caplog.records if r.name == "tests.async"]
    assert (record.controller, record.request) == ("context", "ns/ctx")  # type: ignore[attr-defined]


def test_sync_and_async_controllers_in_one_manager() -> None:
    """An async controller mirrors ConfigMaps into Secrets through the AsyncClient while a
    threaded one annotates the same ConfigMaps; both converge, and the manager stops
    cleanly (the loop after the controllers)."""
    class AsyncMirror:
        def __init__(self, client: AsyncClient) -> None:
            self.client = client

        async def reconcile(self, request: Request) -> Result:
            cm = await self.client.get(CONFIGMAPS, request.name, request.namespace)
            if cm is None:
                return Result()
            if await self.client.get(SECRETS, request.name, request.namespace) is None:
                await self.client.create(SECRETS, {"metadata": {
                    "name": request.name, "namespace": request.namespace},
                    "stringData": dict(cm.get("data") or {})})
            return Result()

    class Annotate:
        def __init__(self, manager: Manager) -> None:
            self.client = manager.client

        def reconcile(self, request: Request) -> Result:
            cm = self.client.get(CONFIGMAPS, request.name, request.namespace)
            if cm is not None and not (cm["metadata"].get("annotations") or {}).get("seen"):
                self.client.patch(CONFIGMAPS, request.name, {"metadata": {"annotations": {
                    "seen": "yes"}}}, request.namespace)
            return Result()

    with LocalAPIServer() as api:
        manager = Manager(kubeconfig=api.kubeconfig, options=ManagerOptions(
            metrics_address="0", probe_address="0", graceful_shutdown_timeout=5))
        (manager.builder("mirror").for_(CONFIGMAPS).owns(SECRETS)
         .with_options(ControllerOptions(max_concurrent_reconciles=4))
         .complete(AsyncMirror(manager.async_client)))
        manager.builder("annotate").for_(CONFIGMAPS).complete(Annotate(manager))
        result: list[int] = []
        runner = threading.Thread(target=lambda: result.append(manager.run()))
        runner.start()
        try:
            for i in range(20):
                manager.client.create(CONFIGMAPS, {"metadata": {"name": f"c{i}",
                                                                "namespace": "default"},
                                                   "data": {"k": str(i)}})
            transport_secrets = manager.client.resource(SECRETS)
            eventually(lambda: len([s for s in transport_secrets.list("default")["items"]
                                    if s["metadata"]["name"].startswith("c")]) == 20,
                       timeout=20, message="the async controller did not mirror them all")
            cms = manager.client.resource(CONFIGMAPS).list("default")["items"]
            eventually(lambda: all((c["metadata"].get("annotations") or {}).get("seen")
                                   for c in manager.client.resource(CONFIGMAPS).list(
                                       "default")["items"] if c["metadata"]["name"] != (
                                       "kube-root-ca.crt")), timeout=20)
            assert len(cms) >= 20
        finally:
            manager.stop()
            runner.join(30)
        assert result == [0]
        assert not [t.name for t in threading.enumerate() if t.name.startswith("event-loop")]


def test_readme_async_example(tmp_path: Path) -> None:
    """The README's async reconciler, run exactly as written."""
    from informers.rest import ResourceClient, Transport, load_configuration
    from tests.ambient_ctrl.test_readme_example import running_example, stops_cleanly

    with LocalAPIServer() as api:
        transport = Transport(load_configuration(api.kubeconfig))
        configmaps = ResourceClient(transport, CONFIGMAPS)
        try:
            with running_example("async", tmp_path, api.kubeconfig) as process:
                for i in range(10):
                    configmaps.create({"metadata": {"name": f"team-{i}", "namespace": "default",
                                                    "labels": {"team": f"t{i % 3}"}}})

                def owners() -> dict[str, str]:
                    return {c["metadata"]["name"]: (c["metadata"].get("annotations") or {}).get(
                        "example.com/owner", "") for c in configmaps.list("default")["items"]
                        if c["metadata"]["name"].startswith("team-")}

                eventually(lambda: owners() == {f"team-{i}": f"t{i % 3}" for i in range(10)},
                           timeout=20, message="the async example did not annotate them all")
                configmaps.patch("team-0", {"metadata": {"labels": {"team": "platform"}}},
                                 "default")
                eventually(lambda: owners()["team-0"] == "platform", timeout=20)
                assert stops_cleanly(process)
        finally:
            transport.close()
