"""Creation expectations: satisfied once every expected name is observed, or after the TTL;
and, against the local server, what they are for: no second create from a stale cache."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ambient_ctrl.client import Client
from ambient_ctrl.expectations import Expectations
from ambient_ctrl.manager import Manager, ManagerOptions
from ambient_ctrl.reconcile import Request, Result
from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from foundation.clock import FakeClock
from informers.errors import AlreadyExists
from informers.informer import Handlers
from informers.resource import CONFIGMAPS, SECRETS
from informers.store import CONTROLLER_INDEX

KEY = "ns/session"
NS = "default"


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


def test_how_long_a_key_has_waited() -> None:
    clock = FakeClock()
    expectations = Expectations(ttl=300, clock=clock)
    assert expectations.waited(KEY) == 0.0
    expectations.expect_creations(KEY, ["a", "b"])
    clock.step(4)
    expectations.observed(KEY, "a")  # still waiting for b, since the same moment
    assert expectations.waited(KEY) == 4.0
    expectations.expect_creations(KEY, ["b", "c"])  # set again: counted from now
    clock.step(1)
    assert expectations.waited(KEY) == 1.0
    for name in ("b", "c"):
        expectations.observed(KEY, name)
    assert expectations.waited(KEY) == 0.0


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


# --- against the local server: a stale child cache -------------------------------------------

class Parent:
    """Creates one Secret per ConfigMap, then notes it on the ConfigMap (an update of the
    parent: the next wake-up, which comes while the Secret informer may not have seen the
    Secret yet). With ``expectations``, it waits for the cache instead of creating again."""

    def __init__(self, client: Client, expectations: Expectations | None) -> None:
        self.client = client
        self.expectations = expectations
        self.saw_child = threading.Event()

    def reconcile(self, request: Request) -> Result:
        key = f"{request.namespace}/{request.name}"
        if self.expectations is not None and not self.expectations.satisfied(key):
            return Result(requeue_after=0.05)  # the cache is behind our own create
        parent = self.client.get(CONFIGMAPS, request.name, request.namespace)
        if parent is None:
            return Result()
        children = self.client.list(SECRETS, request.namespace,
                                    index=(CONTROLLER_INDEX, parent["metadata"]["uid"]))
        if children:
            self.saw_child.set()
            return Result()
        name = f"{request.name}-child"
        if self.expectations is not None:
            self.expectations.expect_creations(key, [name])
        owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": request.name,
                 "uid": parent["metadata"]["uid"], "controller": True}
        try:
            self.client.create(SECRETS, {"metadata": {"name": name, "namespace": NS,
                                                      "ownerReferences": [owner]}})
        except AlreadyExists:
            pass  # the stale cache made us try twice; the deterministic name saved us
        except Exception:
            if self.expectations is not None:
                self.expectations.observed(key, name)  # it will never appear
            raise
        self.client.patch(CONFIGMAPS, request.name,
                          {"metadata": {"annotations": {"child": name}}}, request.namespace)
        return Result()


def _observe_children(expectations: Expectations) -> Handlers:
    def added(child: dict[str, Any]) -> None:
        meta = child["metadata"]
        for ref in meta.get("ownerReferences") or ():
            if ref.get("controller"):
                expectations.observed(f"{meta['namespace']}/{ref['name']}", meta["name"])

    return Handlers(add=added)


@pytest.mark.parametrize("expecting", [True, False], ids=["with-expectations", "without"])
def test_expectations_prevent_a_second_create_from_a_stale_cache(expecting: bool) -> None:
    """The Secret informer's watch is held back 2 s by the server, so the parent's second
    reconcile (woken by its own annotation) reads a cache without the child it just made.
    Without expectations it POSTs again (AlreadyExists thanks to the deterministic name);
    with them it waits for the cache, and the server sees exactly one create."""
    with LocalAPIServer() as api:
        manager = Manager(kubeconfig=api.kubeconfig, options=ManagerOptions(
            metrics_address="0", probe_address="0"))
        expectations = Expectations(ttl=30) if expecting else None
        parent = Parent(manager.client, expectations)
        manager.builder("parent").for_(CONFIGMAPS).owns(SECRETS).complete(parent)
        if expectations is not None:
            manager.client.expect(SECRETS).add_handler(_observe_children(expectations))
        api.faults.add_latency(2.0, verbs=["watch"], resources=["secrets"])
        runner = threading.Thread(target=manager.run, name="test-manager-run")
        runner.start()
        try:
            eventually(lambda: manager.informers.wait_for_sync(0), timeout=15)
            manager.client.create(CONFIGMAPS, {"metadata": {"name": "p", "namespace": NS}})
            assert parent.saw_child.wait(15), "the child reached the cache and was seen"
            creates = api.call(lambda c: c.requests[("create", "", "secrets")])
            children = manager.client.resource(SECRETS).list(NS)["items"]
        finally:
            manager.stop()
            runner.join(30)
    assert [c["metadata"]["name"] for c in children] == ["p-child"]
    assert creates == (1 if expecting else 2)
