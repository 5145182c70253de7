"""A retry policy and a per-object timer in a Manager against the local API server.

A reconciler that keeps failing goes terminal after its retries, with the condition on the
object (``record_condition``) and the terminal error counted; a change that fixes the object
ends the streak. A timer reconciles each live ConfigMap over and over, and stops for one once
it is deleted while the other keeps ticking; with ``idle``, a new Secret is not ticked."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ambient_ctrl.conditions import find_condition, set_condition
from ambient_ctrl.controller import Controller, ControllerOptions
from ambient_ctrl.manager import Manager, ManagerOptions
from ambient_ctrl.predicate import GenerationChanged
from ambient_ctrl.reconcile import Request, Result
from ambient_ctrl.retry import RetryPolicy, record_condition
from ambient_ctrl.testing import eventually, settled
from ambient_ctrl.timer import Timer
from envtest import LocalAPIServer
from foundation.clock import RealClock, rfc3339
from informers.resource import CONFIGMAPS, SECRETS
from tests.ambient_ctrl.test_component import CRDS, WIDGET_CRD, WIDGETS, Counted

NS = "default"


class Checker(Counted):
    """Says Ready=True on a widget, unless its ``spec.broken``: then its upstream refuses."""

    def reconcile(self, request: Request) -> Result:
        self.count(request)
        widget = self.client.get(WIDGETS, request.name, request.namespace)
        if widget is None:
            return Result()
        if widget["spec"].get("broken"):
            raise ConnectionError("upstream refused")
        conditions = set_condition(
            (widget.get("status") or {}).get("conditions"), type="Ready", status="True",
            reason="Checked", message="upstream answered",
            observed_generation=widget["metadata"]["generation"], now=rfc3339(RealClock().now()))
        self.client.patch_status(WIDGETS, request.name, {"status": {"conditions": conditions}},
                                 request.namespace)
        return Result()


class Counting:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def reconcile(self, request: Request) -> Result:
        with self.lock:
            self.calls[request.name] += 1
        return Result()


@dataclass
class World:
    manager: Manager
    checker: Checker
    checking: Controller
    ticking: Controller
    ticks: Counting
    idle_ticks: Counting


@pytest.fixture(scope="module")
def world(api: LocalAPIServer) -> Iterator[World]:
    manager = Manager(kubeconfig=api.kubeconfig, options=ManagerOptions(
        metrics_address="0", probe_address="0", graceful_shutdown_timeout=5))
    manager.client.create(CRDS, WIDGET_CRD)
    checker, ticks = Checker(manager.client), Counting()
    checking = (manager.builder("checker")
                .for_(WIDGETS, GenerationChanged)
                .with_retry(RetryPolicy(max_retries=2, backoff={ConnectionError: 0.05},
                                        on_give_up=record_condition(manager.client, WIDGETS)))
                .complete(checker))
    ticking = (manager.builder("ticker").for_(CONFIGMAPS).every(0.1, jitter=0.5)
               .with_options(ControllerOptions(max_concurrent_reconciles=2))  # keeps the timer
               .complete(ticks))
    idle_ticks = Counting()  # would tick every 50 ms, but only after a minute unchanged
    manager.builder("idler").for_(SECRETS).every(0.05, idle=60).complete(idle_ticks)
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(manager.run()))
    runner.start()
    try:
        yield World(manager, checker, checking, ticking, ticks, idle_ticks)
    finally:
        manager.stop()
        runner.join(30)
    assert result == [0]


def _widget(manager: Manager, name: str, **spec: Any) -> None:
    manager.client.create(WIDGETS, {"apiVersion": "example.com/v1", "kind": "Widget",
                                    "metadata": {"name": name, "namespace": NS}, "spec": spec})


def _ready(manager: Manager, name: str) -> dict[str, Any]:
    widget = manager.client.resource(WIDGETS).get(name, NS)
    return dict(find_condition((widget.get("status") or {}).get("conditions"), "Ready") or {})


def test_a_failing_reconcile_goes_terminal_with_the_condition_on_the_object(
        world: World) -> None:
    manager = world.manager
    _widget(manager, "broken", broken=True)
    ready = eventually(lambda: _ready(manager, "broken").get("reason") == "RetriesExhausted"
                       and _ready(manager, "broken"), timeout=20)
    assert ready["status"] == "False"
    assert ready["message"] == "RetriesExhausted: upstream refused"
    assert ready["observedGeneration"] == 1
    # one try and two retries, then nothing: the condition's own write does not wake it
    assert settled(lambda: world.checker.calls["broken"]) == 3
    terminal = manager.recorder.registry.get_sample_value(
        "controller_runtime_terminal_reconcile_errors_total", {"controller": "checker"})
    assert terminal == 1
    assert len(world.checking.retrier) == 0

    manager.client.patch(WIDGETS, "broken", {"spec": {"broken": False}}, NS)  # fixed: generation 2
    eventually(lambda: _ready(manager, "broken").get("reason") == "Checked", timeout=20)
    assert _ready(manager, "broken")["observedGeneration"] == 2


def test_a_timer_ticks_for_live_objects_and_stops_for_a_deleted_one(world: World) -> None:
    manager, calls = world.manager, world.ticks.calls
    for name in ("tick-a", "tick-b"):
        manager.client.create(CONFIGMAPS, {"metadata": {"name": name, "namespace": NS}})
    eventually(lambda: calls["tick-a"] >= 3 and calls["tick-b"] >= 3, timeout=20,
               message="no ticks")
    manager.client.delete(CONFIGMAPS, "tick-a", NS)
    eventually(lambda: "default/tick-a" not in manager.client.informer(CONFIGMAPS).store)
    stopped = settled(lambda: calls["tick-a"], quiet=1.0, timeout=20)  # ten intervals
    ticking = calls["tick-b"]
    eventually(lambda: calls["tick-b"] >= ticking + 3, timeout=20, message="b stopped too")
    assert calls["tick-a"] == stopped


def test_an_idle_timer_waits_for_the_object_to_be_unchanged_that_long(world: World) -> None:
    world.manager.client.create(SECRETS, {"metadata": {"name": "calm", "namespace": NS}})
    eventually(lambda: world.idle_ticks.calls["calm"] >= 1)  # its creation's reconcile
    # twenty intervals without a tick: it has not been unchanged for a minute yet
    assert settled(lambda: world.idle_ticks.calls["calm"], quiet=1.0) == 1


def test_the_builder_keeps_the_timer_whatever_the_order_and_needs_for(world: World) -> None:
    options = world.ticking.options
    assert (options.timer, options.max_concurrent_reconciles) == (Timer(0.1, 0.5), 2)
    assert world.checking.options.retry.max_retries == 2
    with pytest.raises(ValueError, match="for_"):
        world.manager.builder("no-kind").watches(SECRETS, lambda s: []).every(5).complete(
            Counting())
