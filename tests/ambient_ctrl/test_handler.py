"""Event sources: which requests a change enqueues, and what they decode to decide it."""

from __future__ import annotations

from typing import Any

import pytest

from ambient_ctrl.handler import (
    Batch,
    EnqueueForObject,
    EnqueueForOwner,
    EnqueueMapped,
    EventSource,
)
from ambient_ctrl.predicate import Funcs, GenerationChanged, LabelsChanged, not_, or_
from ambient_ctrl.reconcile import Request
from ambient_ctrl.workqueue import LOW_PRIORITY, NORMAL_PRIORITY, WorkQueue
from informers.change import Change
from informers.resource import PODS, Resource
from informers.store import Store

SESSIONS = Resource(group="example.com", version="v1", plural="sessions", kind="Session",
                    namespaced=True)


def obj(name: str, *, generation: int = 1, labels: dict[str, str] | None = None,
        owner: str | None = None, rv: str = "1") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "generation": generation,
                            "resourceVersion": rv, "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "example.com/v1", "kind": "Session",
                                    "name": owner, "uid": "u-" + owner, "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta}


def drain(queue: WorkQueue[Request]) -> list[Request]:
    out = []
    while len(queue):
        item = queue.get(timeout=0)
        assert item is not None
        out.append(item)
        queue.done(item)
    return out


def changes(*states: dict[str, Any] | None) -> list[Change]:
    """The changes a store reports for a sequence of states of one object (None: deleted)."""
    store, out = Store(), []
    for state in states:
        out.append(store.upsert(state) if state is not None else store.delete("ns/p"))
    return out


def test_for_without_predicates_enqueues_the_key_without_decoding() -> None:
    queue: WorkQueue[Request] = WorkQueue()
    source = EventSource(EnqueueForObject(), queue)
    seen = changes(obj("p"), obj("p", rv="2"), None)
    for change in seen:
        source.on_change(change)
    assert drain(queue) == [Request("ns", "p")]  # three changes, one key: collapsed
    assert all(c._new is None and c._old is None for c in seen)


@pytest.mark.parametrize(("predicate", "decoded", "enqueued"), [
    (or_(GenerationChanged, LabelsChanged), False, [Request("ns", "p")] * 2),
    (not_(GenerationChanged), False, []),  # refuses creates and deletes whatever they hold
    (Funcs(on_create=lambda o: True, on_delete=lambda o: True), True,
     [Request("ns", "p")] * 2),  # a user's function sees the object
], ids=["built-in", "negated", "user's"])
def test_creates_and_deletes_a_predicate_cannot_refuse_are_not_decoded(
        predicate: Any, decoded: bool, enqueued: list[Request]) -> None:
    """The built-in predicates look at updates only: a for_ source enqueues a create or a
    delete by its key (as the initial list of 10,000 sessions is, on the informer's thread)."""
    queue: WorkQueue[Request] = WorkQueue()
    source = EventSource(EnqueueForObject(), queue, predicates=[predicate])
    seen, requests = changes(obj("p"), None), []
    for change in seen:
        source.on_change(change)
        requests += drain(queue)
    assert requests == enqueued
    assert any(c._new is not None or c._old is not None for c in seen) == decoded


@pytest.mark.parametrize(("predicate", "second", "enqueued"), [
    (GenerationChanged, obj("p", generation=1, rv="2"), 1),
    (GenerationChanged, obj("p", generation=2, rv="2"), 2),
    (LabelsChanged, obj("p", labels={"a": "b"}, rv="2"), 2),
], ids=["generation-same", "generation-moved", "labels-moved"])
def test_predicates_decide_on_decoded_states(predicate: Any, second: dict[str, Any],
                                             enqueued: int) -> None:
    queue: WorkQueue[Request] = WorkQueue()
    source = EventSource(EnqueueForObject(), queue, predicates=[predicate])
    count = 0
    for change in changes(obj("p"), second):
        source.on_change(change)
        count += len(drain(queue))
    assert count == enqueued


def test_owns_enqueues_the_controller_owner_also_for_deletions() -> None:
    queue: WorkQueue[Request] = WorkQueue()
    source = EventSource(EnqueueForOwner(SESSIONS), queue)
    requests = []
    for change in changes(obj("p", owner="s1"), None):
        source.on_change(change)
        requests += drain(queue)
    assert requests == [Request("ns", "s1"), Request("ns", "s1")]


def test_watches_maps_the_object() -> None:
    queue: WorkQueue[Request] = WorkQueue()
    source = EventSource(EnqueueMapped(lambda o: [Request("elsewhere", o["metadata"]["name"])]),
                         queue)
    source.on_change(changes(obj("p"))[0])
    assert drain(queue) == [Request("elsewhere", "p")]


@pytest.mark.parametrize(("before", "after", "expected"), [
    ("s1", "s2", [Request("ns", "s2"), Request("ns", "s1")]),
    ("s1", None, [Request("ns", "s1")]),
    (None, "s2", [Request("ns", "s2")]),
    ("s1", "s1", [Request("ns", "s1")]),
], ids=["owner-moved", "owner-removed", "owner-added", "same-owner"])
def test_owns_maps_old_and_new_owner_on_update(before: str | None, after: str | None,
                                               expected: list[Request]) -> None:
    """controller-runtime's EnqueueRequestForOwner: an update wakes the owner the child had
    as well as the one it has, so an owner that lost a child notices."""
    queue: WorkQueue[Request] = WorkQueue()
    source = EventSource(EnqueueForOwner(SESSIONS), queue)
    _, second = changes(obj("p", owner=before), obj("p", owner=after, rv="2"))
    drain(queue)
    source.on_change(second)
    assert drain(queue) == expected


def test_watches_maps_old_and_new_object_on_update() -> None:
    queue: WorkQueue[Request] = WorkQueue()
    source = EventSource(EnqueueMapped(
        lambda o: [Request("ns", v) for v in (o["metadata"].get("labels") or {}).values()]),
        queue)
    _, second = changes(obj("p", labels={"poke": "a"}), obj("p", labels={"poke": "b"}, rv="2"))
    source.on_change(second)
    assert drain(queue) == [Request("ns", "b"), Request("ns", "a")]


def test_for_with_predicates_enqueues_the_new_object_only() -> None:
    queue: WorkQueue[Request] = WorkQueue()
    source = EventSource(EnqueueForObject(), queue, predicates=[LabelsChanged])
    _, second = changes(obj("p"), obj("p", labels={"a": "b"}, rv="2"))
    source.on_change(second)
    assert drain(queue) == [Request("ns", "p")]


def test_owns_reads_only_the_new_state_when_the_controller_index_shows_the_same_owner() -> None:
    queue: WorkQueue[Request] = WorkQueue()
    source = EventSource(EnqueueForOwner(SESSIONS), queue)
    _, same = changes(obj("p", owner="s1"), obj("p", owner="s1", labels={"x": "y"}, rv="2"))
    assert not same.owner_moved
    source.on_change(same)
    assert drain(queue) == [Request("ns", "s1")]
    assert same._old is None  # the old state was never decoded
    _, moved = changes(obj("p", owner="s1"), obj("p", owner="s2", rv="2"))
    assert moved.owner_moved


# --- priorities ---------------------------------------------------------------------------------

def initial(change: Change) -> Change:
    change.initial = True
    return change


SOURCES = {
    "for": lambda: EnqueueForObject(),
    "owns": lambda: EnqueueForOwner(SESSIONS),
    "watches": lambda: EnqueueMapped(lambda o: [Request("ns", "owner")]),
}


@pytest.mark.parametrize("predicates", [(), (LabelsChanged,)], ids=["plain", "predicate"])
@pytest.mark.parametrize("kind", SOURCES)
def test_old_news_is_low_priority_and_events_normal(kind: str, predicates: tuple) -> None:
    """controller-runtime's handlers on a priority queue: the initial list and updates that
    changed nothing (a resync) are low; creates, real updates and deletes are normal."""
    store = Store()
    listed = initial(store.upsert(obj("p", owner="owner", labels={"v": "1"})))
    resync = store.contents(as_updates=True)[0]
    changed = store.upsert(obj("p", owner="owner", labels={"v": "2"}, rv="2"))
    deleted = store.delete("ns/p")
    created = store.upsert(obj("p", owner="owner", rv="3"))
    request = Request("ns", "p" if kind == "for" else "owner")
    expected = [(listed, LOW_PRIORITY), (resync, LOW_PRIORITY), (changed, NORMAL_PRIORITY),
                (deleted, NORMAL_PRIORITY), (created, NORMAL_PRIORITY)]
    for change, priority in expected:
        queue: WorkQueue[Request] = WorkQueue()
        EventSource(SOURCES[kind](), queue, predicates).on_change(change)
        if change is resync and predicates:
            assert queue.depth() == 0  # no label changed: filtered out
            continue
        assert queue.get_with_priority(timeout=0) == (request, priority), change.type


def test_an_event_raises_a_listed_request_waiting_in_the_queue() -> None:
    store = Store()
    queue: WorkQueue[Request] = WorkQueue()
    source = EventSource(EnqueueForObject(), queue)
    for name in ("a", "b", "c"):
        source.on_change(initial(store.upsert(obj(name))))
    source.on_change(store.upsert(obj("c", rv="2")))  # a real update of a listed object
    assert [queue.get_with_priority(timeout=0) for _ in range(3)] == [
        (Request("ns", "c"), NORMAL_PRIORITY), (Request("ns", "a"), LOW_PRIORITY),
        (Request("ns", "b"), LOW_PRIORITY)]


def test_controller_sources_are_inline_unless_user_code_runs() -> None:
    """A source runs on the informer's thread when it is made of our handlers and built-in
    predicates only (quick, never blocking); a map function or a predicate of the user's runs
    on a handler thread of its own."""
    queue: WorkQueue[Request] = WorkQueue()
    try:
        inline = [EventSource(EnqueueForObject(), queue),
                  EventSource(EnqueueForOwner(PODS), queue,
                              [or_(GenerationChanged, not_(LabelsChanged))])]
        queued = [EventSource(EnqueueMapped(lambda obj: ()), queue),
                  EventSource(EnqueueForObject(), queue, [Funcs(on_update=lambda o, n: True)]),
                  EventSource(EnqueueForObject(), queue, [or_(GenerationChanged, Funcs())])]
        assert [s.inline for s in inline] == [True, True]
        assert [s.inline for s in queued] == [False, False, False]
    finally:
        queue.shutdown()


# --- batches ------------------------------------------------------------------------------------

class Recording(WorkQueue[Request]):
    """A queue that notes how each request was added."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Request, float]] = []

    def add(self, item: Request, priority: int = NORMAL_PRIORITY) -> None:
        self.calls.append(("add", item, 0.0))

    def add_after(self, item: Request, delay: float, priority: int = NORMAL_PRIORITY) -> None:
        self.calls.append(("after", item, delay))


@pytest.mark.parametrize("kind", ["owns", "watches"])
def test_a_batch_delays_updates_that_are_only_progress(kind: str) -> None:
    """Updates its ``urgent`` calls progress wait for the batch's period; urgent updates,
    creates, deletes, the initial list and resyncs are added at once; what a predicate
    refuses is not looked at."""
    asked: list[str] = []

    def urgent(old: dict[str, Any], new: dict[str, Any]) -> bool:
        asked.append(new["metadata"]["resourceVersion"])
        return new["metadata"]["labels"].get("step") == "news"

    queue = Recording()
    source = EventSource(SOURCES[kind](), queue, (LabelsChanged,),
                         batch=Batch(period=1.5, urgent=urgent))
    store = Store()
    steps = [initial(store.upsert(obj("p", owner="owner", labels={"step": "listed"}))),
             store.contents(as_updates=True)[0],
             store.upsert(obj("p", owner="owner", labels={"step": "progress"}, rv="2")),
             store.upsert(obj("p", owner="owner", labels={"step": "progress"}, rv="3")),
             store.upsert(obj("p", owner="owner", labels={"step": "news"}, rv="4")),
             store.delete("ns/p"),
             store.upsert(obj("p", owner="owner", rv="5"))]
    for change in steps:
        source.on_change(change)
    request = Request("ns", "owner")
    assert queue.calls == [("add", request, 0.0), ("after", request, 1.5),
                           ("add", request, 0.0), ("add", request, 0.0), ("add", request, 0.0)]
    assert asked == ["2", "4"], "only updates that passed the predicates are judged"
