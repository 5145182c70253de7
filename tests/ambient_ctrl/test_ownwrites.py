"""Own writes are not news (``ambient_ctrl.ownwrites``): the bookkeeping, the event source's
use of it, and a controller against the local API server — with ``skip_own_writes`` its own
create and patches of a child do not wake it, anybody else's change of that child does; without
it (the default) every one of them does."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ambient_ctrl import ownwrites
from ambient_ctrl.controller import ControllerOptions
from ambient_ctrl.handler import EnqueueForOwner, EventSource
from ambient_ctrl.manager import Manager, ManagerOptions
from ambient_ctrl.ownwrites import OwnWrites
from ambient_ctrl.reconcile import Request, Result
from ambient_ctrl.testing import eventually
from ambient_ctrl.workqueue import WorkQueue
from envtest import LocalAPIServer
from foundation.clock import FakeClock
from informers.change import Change
from informers.resource import CONFIGMAPS, NAMESPACES, SECRETS
from tests.ambient_ctrl.test_component import Counted

NS = "default"


def _obj(name: str, version: str, namespace: str | None = NS) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "resourceVersion": version}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta}


# the bookkeeping ---------------------------------------------------------------------------
def test_the_event_of_the_version_written_is_ours_once() -> None:
    writes = OwnWrites()
    writes.wrote(SECRETS, _obj("a", "7"))
    assert not writes.caused(SECRETS, "default/a", "6")  # an older state: news
    assert writes.caused(SECRETS, "default/a", "7")
    assert not writes.caused(SECRETS, "default/a", "7"), "forgotten once matched"
    assert writes.skipped == 1


def test_objects_kinds_and_scopes_are_told_apart() -> None:
    writes = OwnWrites()
    writes.wrote(SECRETS, _obj("a", "7"))
    writes.wrote(NAMESPACES, _obj("team", "9", namespace=None))
    assert not writes.caused(CONFIGMAPS, "default/a", "7"), "another kind"
    assert not writes.caused(SECRETS, "other/a", "7"), "another namespace"
    assert not writes.caused(SECRETS, "default/a", None)
    assert writes.caused(NAMESPACES, "team", "9"), "cluster-scoped: the name is the key"
    writes.wrote(SECRETS, _obj("a", "8"))
    writes.wrote(SECRETS, _obj("a", "9"))  # written twice before the first event came
    assert writes.caused(SECRETS, "default/a", "8")
    assert writes.caused(SECRETS, "default/a", "9")
    assert not writes.caused(SECRETS, "default/a", "8")


def test_a_bounded_number_of_versions_is_kept_per_object() -> None:
    writes = OwnWrites()
    for version in range(20):
        writes.wrote(SECRETS, _obj("a", str(version)))
    assert not writes.caused(SECRETS, "default/a", "0"), "the oldest are dropped"
    assert all(writes.caused(SECRETS, "default/a", str(v)) for v in range(12, 20))


def test_the_objects_remembered_are_bounded_the_newest_kept() -> None:
    clock = FakeClock()
    writes = OwnWrites(maxsize=10, ttl=60, clock=clock)
    for i in range(100):
        writes.wrote(SECRETS, _obj(f"o{i}", "1"))
    assert len(writes._versions) <= 10
    assert writes.caused(SECRETS, "default/o99", "1"), "the newest write is known"
    assert not writes.caused(SECRETS, "default/o0", "1"), "the oldest was let go"
    clock.step(61)
    for i in range(2000):  # enough writes for a sweep: what expired goes
        writes.wrote(SECRETS, _obj("again", str(i)))
    assert set(writes._versions) == {("", "secrets", "default/again")}


def test_answers_without_a_version_or_name_are_not_noted() -> None:
    writes = OwnWrites()
    for answer in ({}, {"metadata": None}, {"metadata": {"name": "a"}},
                   {"metadata": {"resourceVersion": "3"}}):
        writes.wrote(SECRETS, answer)
    assert not writes.caused(SECRETS, "a", "3")
    assert writes.skipped == 0


def test_entries_expire() -> None:
    clock = FakeClock()
    writes = OwnWrites(ttl=10, clock=clock)
    writes.wrote(SECRETS, _obj("a", "7"))
    clock.step(11)
    assert not writes.caused(SECRETS, "default/a", "7"), "an event that never came is forgotten"


def test_only_writes_made_while_noting_are_noted() -> None:
    writes = OwnWrites()

    def write(name: str, version: str) -> None:
        ownwrites.write(SECRETS, name, NS, lambda: _obj(name, version))

    write("a", "1")  # no reconcile is noting
    with ownwrites.noting(writes):
        write("b", "2")
        elsewhere = threading.Thread(target=write, args=("c", "3"))
        elsewhere.start()
        elsewhere.join()
    write("d", "4")
    assert [writes.caused(SECRETS, f"default/{n}", v) for n, v in
            (("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"))] == [False, True, False, False]


def test_an_event_that_overtakes_the_answer_is_held_until_the_write_ends() -> None:
    """The watch may deliver a write before the writer has its answer."""
    writes = OwnWrites()
    delivered: list[str] = []
    with writes.writing(SECRETS, "a", NS) as answered:
        assert writes.caused(SECRETS, "default/a", "5", lambda: delivered.append("5"))
        assert writes.caused(SECRETS, "default/a", "4", lambda: delivered.append("4"))
        assert not writes.caused(SECRETS, "default/b", "5", lambda: delivered.append("b")), \
            "another object: nothing in flight, delivered now"
        answered(_obj("a", "5"))
        assert delivered == [], "held while the write is in flight"
    assert delivered == ["4"], "ours dropped; another version (somebody else's) delivered"
    assert not writes.caused(SECRETS, "default/a", "5", lambda: delivered.append("again"))


def test_a_failed_write_delivers_what_it_held() -> None:
    writes = OwnWrites()
    delivered: list[str] = []
    with pytest.raises(RuntimeError), writes.writing(SECRETS, "a", NS):
        writes.caused(SECRETS, "default/a", "5", lambda: delivered.append("5"))
        raise RuntimeError("409")
    assert delivered == ["5"]


def test_held_events_wait_for_every_write_of_the_object_in_flight() -> None:
    writes = OwnWrites()
    delivered: list[str] = []
    first = writes.writing(SECRETS, "a", NS)
    second = writes.writing(SECRETS, "a", NS)
    answer_first, answer_second = first.__enter__(), second.__enter__()
    writes.caused(SECRETS, "default/a", "6", lambda: delivered.append("6"))
    writes.caused(SECRETS, "default/a", "9", lambda: delivered.append("9"))
    answer_first(_obj("a", "6"))
    first.__exit__(None, None, None)
    assert delivered == [], "the other write of it may still prove them ours"
    answer_second(_obj("a", "7"))
    second.__exit__(None, None, None)
    assert delivered == ["9"]


def test_a_create_with_generate_name_is_noted_once_answered() -> None:
    writes = OwnWrites()
    with ownwrites.noting(writes):
        ownwrites.write(SECRETS, None, NS, lambda: _obj("made-x1", "3"))
    assert writes.caused(SECRETS, "default/made-x1", "3")


# the event source --------------------------------------------------------------------------
def _owned(name: str, version: str) -> dict[str, Any]:
    obj = _obj(name, version)
    obj["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap",
                                           "name": "owner", "uid": "u1", "controller": True}]
    return obj


def _drain(queue: WorkQueue[Request]) -> list[Request]:
    out = []
    while len(queue):
        item = queue.get()
        assert item is not None
        out.append(item)
        queue.done(item)
    return out


def test_an_event_source_drops_only_the_event_of_our_write() -> None:
    queue: WorkQueue[Request] = WorkQueue(name="t")
    writes = OwnWrites()
    source = EventSource(EnqueueForOwner(CONFIGMAPS), queue, own_writes=writes.of(SECRETS))
    writes.wrote(SECRETS, _owned("child", "5"))
    source.on_change(Change("default/child", None, _owned("child", "5")))
    assert _drain(queue) == [], "our create, as we made it"
    source.on_change(Change("default/child", _owned("child", "5"), _owned("child", "6")))
    assert _drain(queue) == [Request(NS, "owner")], "somebody else's change"
    writes.wrote(SECRETS, _owned("child", "7"))
    source.on_change(Change("default/child", _owned("child", "6"), None))
    assert _drain(queue) == [Request(NS, "owner")], "a deletion is always news"
    queue.shutdown()


def test_the_initial_list_is_never_skipped() -> None:
    queue: WorkQueue[Request] = WorkQueue(name="t")
    writes = OwnWrites()
    source = EventSource(EnqueueForOwner(CONFIGMAPS), queue, own_writes=writes.of(SECRETS))
    writes.wrote(SECRETS, _owned("child", "5"))
    change = Change("default/child", None, _owned("child", "5"))
    change.initial = True  # a restart lists what it wrote before: the reconcile must look
    source.on_change(change)
    assert _drain(queue) == [Request(NS, "owner")]
    queue.shutdown()


# a controller ------------------------------------------------------------------------------
class Labeller(Counted):
    """Each labelled ConfigMap gets an owned Secret, then a label on it (two writes of the
    child per pass); counts its reconciles."""

    def reconcile(self, request: Request) -> Result:
        self.count(request)
        cm = self.client.get(CONFIGMAPS, request.name, request.namespace)
        if cm is None:
            return Result()
        name = f"{request.name}-child"
        if self.client.get(SECRETS, name, NS) is None:
            owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": request.name,
                     "uid": cm["metadata"]["uid"], "controller": True}
            self.client.create(SECRETS, {"metadata": {"name": name, "namespace": NS,
                                                      "ownerReferences": [owner]}})
            self.client.patch(SECRETS, name, {"metadata": {"labels": {"made": "yes"}}}, NS)
        return Result()


@pytest.fixture(params=[True, False], ids=["skip_own_writes", "default"])
def labelled(request: pytest.FixtureRequest) -> Iterator[tuple[Manager, Labeller, bool]]:
    with LocalAPIServer() as api:
        manager = Manager(kubeconfig=api.kubeconfig, options=ManagerOptions(
            metrics_address="0", probe_address="0", graceful_shutdown_timeout=5))
        labeller = Labeller(manager.client)
        controller = (manager.builder("labeller").for_(CONFIGMAPS).owns(SECRETS)
                      .with_options(ControllerOptions(skip_own_writes=request.param))
                      .complete(labeller))
        runner = threading.Thread(target=manager.run)
        runner.start()
        try:
            eventually(lambda: manager.client.informer(SECRETS).has_synced())
            yield manager, labeller, request.param
        finally:
            manager.stop()
            runner.join(30)
        assert (controller.own_writes is not None) == request.param


def _quiet(labeller: Labeller, name: str, seconds: float = 1.0) -> int:
    """The reconciles of ``name`` once they stopped coming for ``seconds``."""
    last, since = -1, time.monotonic()
    while time.monotonic() - since < seconds:
        if labeller.calls[name] != last:
            last, since = labeller.calls[name], time.monotonic()
        time.sleep(0.05)
    return last


def test_own_writes_do_not_wake_the_controller_others_do(labelled: Any) -> None:
    manager, labeller, skipping = labelled
    manager.client.create(CONFIGMAPS, {"metadata": {"name": "cm", "namespace": NS}})
    eventually(lambda: manager.client.get(SECRETS, "cm-child", NS) is not None)
    # The create event of the ConfigMap, then (default only) the Secret's create and label.
    first = _quiet(labeller, "cm")
    if skipping:
        assert first == 1, "the child's create and patch are what the pass just wrote"
    else:
        assert first >= 2, "without the option every write's event wakes the owner"
    # Somebody else labels the child: news either way.
    manager.client.resource(SECRETS).patch("cm-child", {"metadata": {"labels": {"x": "1"}}}, NS)
    eventually(lambda: labeller.calls["cm"] > first, message="a foreign change must wake it")
    # And the same patch by the reconcile's client outside a reconcile is foreign too.
    second = _quiet(labeller, "cm")
    manager.client.patch(SECRETS, "cm-child", {"metadata": {"labels": {"x": "2"}}}, NS)
    eventually(lambda: labeller.calls["cm"] > second,
               message="a write outside the controller's reconciles is not its own")


def test_a_sweep_drops_what_expired_and_keeps_the_rest_in_order() -> None:
    """Entries are in write order, so in order of expiry: a sweep drops the expired ones at
    the front and stops at the first that lives; a note moves its object to the back."""
    clock = FakeClock()
    writes = OwnWrites(ttl=60, clock=clock)
    for i in range(3000):
        writes.wrote(SECRETS, _obj(f"early{i}", "1"))
    clock.step(30)
    for i in range(3000):
        writes.wrote(SECRETS, _obj(f"late{i}", "1"))
    writes.wrote(SECRETS, _obj("early0", "2"))  # written again: it lives on, at the back
    clock.step(31)  # the early ones are 61 s old, the late ones 31 s
    for i in range(1024):  # a sweep's worth of writes
        writes.wrote(SECRETS, _obj("trigger", str(i)))
    keys = [key for _, _, key in writes._versions]
    assert not any(key.startswith("default/early") and key != "default/early0" for key in keys)
    assert keys[:3000] == [f"default/late{i}" for i in range(3000)]
    assert keys[3000:] == ["default/early0", "default/trigger"]
    assert writes.caused(SECRETS, "default/late2999", "1")
    assert writes.caused(SECRETS, "default/early0", "2")
