"""Reflector and shared informer against the local API server, under faults."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer, ServerOptions
from foundation.clock import FakeClock
from informers.errors import TransportError
from informers.factory import InformerFactory
from informers.informer import DeletedFinalStateUnknown, Handlers, SharedInformer
from informers.reflector import ReflectorOptions
from informers.resource import CONFIGMAPS
from informers.rest import ResourceClient, Transport
from informers.store import Store, stripping_managed_fields
from tests.informers.conftest import transport_for

FAST = ReflectorOptions(min_watch_timeout=1, max_watch_timeout=2, read_grace=1.0,
                        backoff_initial=0.05, backoff_max=0.2)


class Recorder:
    """Collects notifications per object and checks their order is consistent."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.alive: dict[str, bool] = {}
        self.lock = threading.Lock()
        self.handlers = Handlers(add=self._add, update=self._update, delete=self._delete)

    def _name(self, obj: Any) -> str:
        if isinstance(obj, DeletedFinalStateUnknown):
            obj = obj.obj
        return str(obj["metadata"]["name"])

    def _add(self, obj: Any) -> None:
        with self.lock:
            name = self._name(obj)
            assert not self.alive.get(name), f"add of live {name}"
            self.alive[name] = True
            self.events.append(("add", name))

    def _update(self, old: Any, new: Any) -> None:
        with self.lock:
            name = self._name(new)
            assert self.alive.get(name), f"update before add of {name}"
            self.events.append(("update", name))

    def _delete(self, obj: Any) -> None:
        with self.lock:
            name = self._name(obj)
            assert self.alive.get(name), f"delete of unknown {name}"
            self.alive[name] = False
            kind = "tombstone" if isinstance(obj, DeletedFinalStateUnknown) else "delete"
            self.events.append((kind, name))


@pytest.fixture()
def cms(transport: Transport) -> ResourceClient:
    return ResourceClient(transport, CONFIGMAPS)


@pytest.fixture()
def informer(transport: Transport) -> Iterator[SharedInformer]:
    inf = SharedInformer(ResourceClient(transport, CONFIGMAPS), namespace="default",
                         options=FAST)
    yield inf
    inf.stop()


def _make(cms: ResourceClient, name: str, **data: str) -> dict:
    return cms.create({"metadata": {"name": name, "namespace": "default"}, "data": data})


def test_sync_then_follow_changes(informer: SharedInformer, cms: ResourceClient) -> None:
    _make(cms, "before")
    recorder = Recorder()
    registration = informer.add_handler(recorder.handlers)
    informer.start()
    assert informer.wait_for_sync(10) and registration.wait_for_sync(10)
    _make(cms, "after")
    cms.patch("before", {"data": {"x": "1"}}, "default")
    cms.delete("after", "default")
    eventually(lambda: recorder.events == [("add", "before"), ("add", "after"),
                                           ("update", "before"), ("delete", "after")])
    assert informer.store.get("default/before")["data"] == {"x": "1"}
    assert informer.store.get("default/after") is None


def test_late_handler_gets_current_contents(informer: SharedInformer, cms: ResourceClient) -> None:
    _make(cms, "a")
    informer.start()
    assert informer.wait_for_sync(10)
    late = Recorder()
    registration = informer.add_handler(late.handlers)
    assert registration.wait_for_sync(10)
    assert late.events == [("add", "a")]


def test_relist_after_410_emits_tombstones(server: LocalAPIServer, informer: SharedInformer,
                                           cms: ResourceClient) -> None:
    _make(cms, "doomed")
    _make(cms, "kept")
    recorder = Recorder()
    informer.add_handler(recorder.handlers)
    informer.start()
    assert informer.wait_for_sync(10)
    eventually(lambda: len(recorder.events) == 2)
    server.faults.pause()  # the deletion below happens while the informer cannot see it
    server.faults.drop_watches()
    server.call(lambda c: _delete_behind_the_back(c, "doomed"))
    server.faults.restart()  # history gone: resuming the watch gets 410 and a relist
    server.faults.resume()
    eventually(lambda: ("tombstone", "doomed") in recorder.events, timeout=15)
    assert informer.store.get("default/doomed") is None
    assert informer.store.get("default/kept") is not None


def _names(informer: SharedInformer) -> list[str]:
    return sorted(informer.store.keys())


def test_a_server_restored_from_a_backup_is_relisted() -> None:
    """Issue 15 item 2: restored from a backup, the server's revision is behind the informer's
    version. Its watch from that version would be accepted and silent (as kube-apiserver's),
    so the informer checks the version after the broken stream, hears "Too large resource
    version", and relists: what was created since the backup is delivered as deleted, what
    was deleted since is back, and what is created next arrives."""
    with LocalAPIServer(options=ServerOptions(bookmark_interval=0.2,
                                              resource_version_wait=0.2)) as server:
        transport = transport_for(server)
        cms = ResourceClient(transport, CONFIGMAPS)
        informer = SharedInformer(cms, namespace="default", options=FAST)
        recorder = Recorder()
        informer.add_handler(recorder.handlers)
        try:
            _make(cms, "before")
            informer.start()
            assert informer.wait_for_sync(10)
            backup = server.faults.backup()
            _make(cms, "after-backup")
            cms.delete("before", "default")
            eventually(lambda: _names(informer) == ["default/after-backup"])
            server.faults.restore(backup)
            _make(cms, "after-restore")  # below the versions the informer saw
            eventually(lambda: _names(informer) == ["default/after-restore", "default/before"],
                       timeout=15, message="the informer did not relist the restored server")
            eventually(lambda: ("tombstone", "after-backup") in recorder.events, timeout=10,
                       message="the vanished object was not delivered as deleted")
            assert informer.health.lost_version is None
        finally:
            informer.stop()
            transport.close()


def test_a_server_restarted_without_its_storage_is_relisted() -> None:
    """The same with a new, empty server on the same port (the e2e run does it with
    processes): old objects are delivered as deleted, new ones as added."""
    first = LocalAPIServer(options=ServerOptions(bookmark_interval=0.2,
                                                 resource_version_wait=0.2)).start()
    port = int(first.url.rsplit(":", 1)[1])
    transport = transport_for(first)
    cms = ResourceClient(transport, CONFIGMAPS)
    informer = SharedInformer(cms, namespace="default", options=FAST)
    recorder = Recorder()
    informer.add_handler(recorder.handlers)
    second: LocalAPIServer | None = None
    try:
        for n in range(20):  # move the first server's revision well past the second's
            _make(cms, f"old-{n}")
        informer.start()
        assert informer.wait_for_sync(10)
        first.stop()
        second = LocalAPIServer(port=port, options=ServerOptions(
            bookmark_interval=0.2, resource_version_wait=0.2)).start()
        eventually(lambda: _make(cms, "new"), ignoring=(TransportError,), timeout=10)
        eventually(lambda: _names(informer) == ["default/new"], timeout=15,
                   message="the informer did not relist the restarted server")
        # The store changes before the handlers hear of it (they run on their own thread).
        eventually(lambda: sum(kind == "tombstone" for kind, _ in recorder.events) >= 20,
                   timeout=10, message="the vanished objects were not delivered as deleted")
        assert sorted(name for kind, name in recorder.events if kind == "tombstone") == sorted(
            f"old-{n}" for n in range(20))
    finally:
        informer.stop()
        transport.close()
        first.stop()
        if second is not None:
            second.stop()


def _delete_behind_the_back(cluster: Any, name: str) -> None:
    from envtest.commit import begin_delete

    rtype = cluster.kinds.lookup("", "v1", "configmaps")
    stored = cluster.store.get(rtype.store, ("default", name))
    begin_delete(cluster, rtype, stored.load())


def test_bookmarks_advance_resource_version(server: LocalAPIServer, informer: SharedInformer,
                                            transport: Transport) -> None:
    informer.start()
    assert informer.wait_for_sync(10)
    before = int(informer.resource_version)
    secrets = ResourceClient(transport, CONFIGMAPS)
    secrets.create({"metadata": {"name": "elsewhere", "namespace": "kube-system"}})
    # Nothing in "default" changed; only a bookmark can move the version forward.
    eventually(lambda: int(informer.resource_version) > before, timeout=10)


def test_pagination(server: LocalAPIServer, transport: Transport, cms: ResourceClient) -> None:
    for i in range(7):
        _make(cms, f"p{i}")
    paged = SharedInformer(ResourceClient(transport, CONFIGMAPS), namespace="default",
                           options=ReflectorOptions(page_size=2))
    try:
        paged.start()
        assert paged.wait_for_sync(10)
        assert len(paged.store) == 7
        assert server.cluster.requests[("list", "", "configmaps")] == 4
    finally:
        paged.stop()


def test_silent_stream_is_noticed_and_reconnected(server: LocalAPIServer,
                                                  informer: SharedInformer,
                                                  cms: ResourceClient) -> None:
    informer.start()
    assert informer.wait_for_sync(10)
    server.faults.pause()  # every request, the next watch included, gets no answer at all

    def asked() -> int:  # after a broken stream the version is checked (a list) first
        requests = server.cluster.requests
        return requests[("watch", "", "configmaps")] + requests[("list", "", "configmaps")]

    server.faults.drop_watches()
    before = asked()
    eventually(lambda: asked() >= before + 2, timeout=30,
               message="the reflector did not give up on silent requests")
    server.faults.resume()
    _make(cms, "late")
    eventually(lambda: informer.store.get("default/late") is not None, timeout=15)


def test_retry_after_is_honoured(server: LocalAPIServer, transport: Transport) -> None:
    clock = FakeClock()
    server.faults.fail(code=429, count=1, retry_after=20, verbs=["list"])
    inf = SharedInformer(ResourceClient(transport, CONFIGMAPS), namespace="default",
                         options=FAST, clock=clock)
    inf.start()
    try:
        eventually(lambda: clock.waiters == 1)
        clock.step(19)  # backoff alone would be < 1 s; Retry-After says 20
        assert not inf.wait_for_sync(0.3)
        clock.step(2)
        assert inf.wait_for_sync(10)
        assert server.cluster.requests[("list", "", "configmaps")] == 2
    finally:
        inf.stop()


def test_slow_handler_does_not_stall_others(informer: SharedInformer,
                                            cms: ResourceClient) -> None:
    release = threading.Event()
    fast = Recorder()
    informer.add_handler(Handlers(add=lambda obj: release.wait(20)))
    informer.add_handler(fast.handlers)
    informer.start()
    assert informer.wait_for_sync(10)
    for i in range(5):
        _make(cms, f"f{i}")
    eventually(lambda: len(fast.events) == 5)
    release.set()


def test_consistency_under_repeated_faults(server: LocalAPIServer, informer: SharedInformer,
                                           cms: ResourceClient) -> None:
    recorder = Recorder()
    informer.add_handler(recorder.handlers)
    informer.start()
    assert informer.wait_for_sync(10)
    counts: dict[str, int] = defaultdict(int)
    for round_ in range(6):
        for i in range(5):
            name = f"c{i}"
            if counts[name] % 2 == 0:
                _make(cms, name, r=str(round_))
            else:
                cms.delete(name, "default")
            counts[name] += 1
        if round_ % 2:
            server.faults.restart()
        else:
            server.faults.drop_watches()
    expected = sorted(f"default/c{i}" for i in range(5) if counts[f"c{i}"] % 2)
    eventually(lambda: sorted(informer.store.keys()) == expected, timeout=15)


def test_resync_replays_the_cache_as_updates(transport: Transport, cms: ResourceClient) -> None:
    _make(cms, "steady")
    clock = FakeClock()
    updates: list[tuple[Any, Any]] = []
    inf = SharedInformer(ResourceClient(transport, CONFIGMAPS), namespace="default",
                         options=FAST, clock=clock, resync_period=60)
    inf.add_handler(Handlers(update=lambda old, new: updates.append((old, new))))
    inf.start()
    try:
        assert inf.wait_for_sync(10)
        eventually(lambda: clock.waiters == 1)  # the resync loop waits for its period
        assert updates == []
        clock.step(60)
        eventually(lambda: len(updates) == 1)
        old, new = updates[0]
        assert old is new and new["metadata"]["name"] == "steady"  # replayed, not relisted
        assert inf.store.get("default/steady") == new
    finally:
        inf.stop()


class ChangeRecorder:
    """A change handler that reads keys and versions only (what a controller's ``for_`` does)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool]] = []
        self.changes: list[Any] = []

    def on_change(self, change: Any) -> None:
        self.changes.append(change)
        self.seen.append((change.type, change.key, change.tombstone))


def test_initial_list_and_late_replays_are_marked_initial(transport: Transport,
                                                          cms: ResourceClient) -> None:
    # client-go's isInInitialList: what a controller queues behind fresh events.
    _make(cms, "listed")
    clock = FakeClock()
    inf = SharedInformer(ResourceClient(transport, CONFIGMAPS), namespace="default",
                         options=FAST, clock=clock, resync_period=60)
    first = ChangeRecorder()
    inf.add_handler(first)
    inf.start()
    try:
        assert inf.wait_for_sync(10)
        _make(cms, "watched")
        eventually(lambda: len(first.changes) == 2)
        late = ChangeRecorder()
        assert inf.add_handler(late).wait_for_sync(10)
        eventually(lambda: clock.waiters == 1)
        clock.step(60)  # a resync: updates that changed nothing
        eventually(lambda: len(first.changes) == 4)

        def flags(recorder: ChangeRecorder) -> list[tuple[str, str, bool, bool]]:
            return [(c.type, c.key, c.initial, c.unchanged) for c in recorder.changes]

        assert flags(first) == [("add", "default/listed", True, False),
                                ("add", "default/watched", False, False),
                                ("update", "default/listed", False, True),
                                ("update", "default/watched", False, True)]
        assert flags(late)[:2] == [("add", "default/listed", True, False),
                                   ("add", "default/watched", True, False)]
    finally:
        inf.stop()


def test_change_handler_sees_every_kind_without_decoding(server: LocalAPIServer,
                                                         informer: SharedInformer,
                                                         cms: ResourceClient) -> None:
    _make(cms, "old")
    recorder = ChangeRecorder()
    informer.add_handler(recorder)
    informer.start()
    assert informer.wait_for_sync(10)
    _make(cms, "new")
    cms.patch("new", {"data": {"k": "v"}}, "default")
    cms.delete("new", "default")
    eventually(lambda: len(recorder.seen) == 4)
    server.faults.pause()  # gone while the informer cannot see it: learnt from the relist
    server.faults.drop_watches()
    server.call(lambda c: _delete_behind_the_back(c, "old"))
    server.faults.restart()
    server.faults.resume()
    eventually(lambda: len(recorder.seen) == 5, timeout=15)
    assert recorder.seen == [("add", "default/old", False), ("add", "default/new", False),
                             ("update", "default/new", False),
                             ("delete", "default/new", False),
                             ("delete", "default/old", True)]
    # No handler asked for the objects, so none was decoded; the tombstone still has them.
    assert all(c._new is None and c._old is None for c in recorder.changes)
    assert recorder.changes[-1].old["metadata"]["name"] == "old"


def test_deletions_carry_the_final_state_from_the_server(informer: SharedInformer,
                                                         cms: ResourceClient) -> None:
    """The DELETED event's object, not the cache's last state: here the last update removed
    the finalizer that held the object, and only the DELETED event shows that."""
    cms.create({"metadata": {"name": "held", "namespace": "default",
                             "finalizers": ["example.com/hold"]}, "data": {"k": "v"}})
    deleted: list[Any] = []
    informer.add_handler(Handlers(delete=deleted.append))
    informer.start()
    assert informer.wait_for_sync(10)
    cms.delete("held", "default")  # deletionTimestamp set; the finalizer holds it
    eventually(lambda: (informer.store.get("default/held") or {}).get("metadata", {})
               .get("deletionTimestamp"))
    final = cms.patch("held", {"metadata": {"finalizers": None}}, "default")
    eventually(lambda: len(deleted) == 1)
    assert not isinstance(deleted[0], DeletedFinalStateUnknown)
    assert not deleted[0]["metadata"].get("finalizers")
    assert deleted[0]["metadata"]["resourceVersion"] == final["metadata"]["resourceVersion"]


def test_a_transform_that_raises_once_is_survived_by_a_relist(server: LocalAPIServer,
                                                               transport: Transport,
                                                               cms: ResourceClient) -> None:
    """Regression: an exception other than an API error ended the reflector's thread; the
    informer stayed synced and never saw another change."""
    raised: list[str] = []

    def flaky(obj: dict[str, Any]) -> dict[str, Any]:
        if obj["metadata"]["name"] == "poison" and not raised:
            raised.append("poison")
            raise RuntimeError("transform bug")
        return obj

    inf = SharedInformer(ResourceClient(transport, CONFIGMAPS), namespace="default",
                         store=Store(transform=flaky), options=FAST)
    recorder = Recorder()
    inf.add_handler(recorder.handlers)
    inf.start()
    try:
        assert inf.wait_for_sync(10)
        lists = server.cluster.requests[("list", "", "configmaps")]
        _make(cms, "poison")
        eventually(lambda: ("add", "poison") in recorder.events, timeout=10)
        assert raised == ["poison"]
        assert server.cluster.requests[("list", "", "configmaps")] == lists + 1, "relisted"
        _make(cms, "after")
        eventually(lambda: ("add", "after") in recorder.events, timeout=10)
        assert inf.health.consecutive_failures == 0 and inf.health.last_success is not None
    finally:
        inf.stop()


def _threads() -> set[threading.Thread]:
    return set(threading.enumerate())


def test_stop_leaves_no_threads_behind(transport: Transport, cms: ResourceClient) -> None:
    before = _threads()
    factory = InformerFactory(transport, options=FAST, resync_period=60)
    informers = [factory.informer(CONFIGMAPS, namespace=ns) for ns in ("default", "other")]
    for informer in informers:
        informer.add_handler(Recorder().handlers)
        informer.add_handler(ChangeRecorder())
    factory.start()
    assert factory.wait_for_sync(10)
    # reflector, resync and two handler threads per informer
    assert len(_threads() - before) == 2 * 4
    factory.stop(timeout=10)
    assert _threads() - before == set()


def test_stop_logs_threads_that_outlive_their_join(informer: SharedInformer,
                                                   cms: ResourceClient,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    entered, release = threading.Event(), threading.Event()
    _make(cms, "stuck")
    informer.add_handler(Handlers(add=lambda obj: (entered.set(), release.wait(30))))
    informer.start()
    assert entered.wait(10)
    try:
        informer.stop(timeout=0.2)
        outlived = [r for r in caplog.records if r.getMessage().startswith("threads outlived")]
        assert len(outlived) == 1
        assert outlived[0].threads == [f"{informer.name}-handler-0"]  # type: ignore[attr-defined]
    finally:
        release.set()
    informer.stop(timeout=10)  # now it ends


class InlineRecorder:
    """An inline change handler: records where it ran and what it was lent."""

    inline = True

    def __init__(self, *, fail_on: str | None = None) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.lent: list[Any] = []
        self.threads: set[str] = set()
        self._fail_on = fail_on

    def on_change(self, change: Any) -> None:
        self.threads.add(threading.current_thread().name)
        if change.key == self._fail_on:
            raise RuntimeError("a faulty inline handler")
        new = change.new
        self.lent.append((change, new))
        self.seen.append((change.type, change.key,
                          "" if new is None else new.get("data", {}).get("k", "")))


def test_inline_handlers_run_on_the_reflector_thread(informer: SharedInformer,
                                                     cms: ResourceClient) -> None:
    """In order, with the parsed object lent, which queued handlers never see (they decode
    their own copy); one that raises is logged and keeps receiving; no thread of its own."""
    _make(cms, "listed")
    inline, faulty, queued = InlineRecorder(), InlineRecorder(fail_on="default/b"), Recorder()
    for handler in (inline, faulty, queued.handlers):
        informer.add_handler(handler)
    threads_before = _threads()
    informer.start()
    assert informer.wait_for_sync(10)
    _make(cms, "a", k="1")
    _make(cms, "b", k="2")
    cms.patch("a", {"data": {"k": "3"}}, "default")
    cms.delete("b", "default")
    expected = [("add", "default/listed", ""), ("add", "default/a", "1"),
                ("add", "default/b", "2"), ("update", "default/a", "3"),
                ("delete", "default/b", "")]
    eventually(lambda: inline.seen == expected)
    eventually(lambda: len(queued.events) == 5)
    assert faulty.seen == [e for e in expected if e[1] != "default/b"]
    assert inline.threads == {f"{informer.name}-reflector"}
    # Updates applied from the watch lent the reflector's object; the queued handler got
    # the change after the loan ended and decoded a copy of its own.
    change, new = inline.lent[3]
    assert change.type == "update" and change.new == new and change.new is not new
    # Only the reflector's own thread (and the queued handler's) were started.
    started = {t.name for t in _threads() - threads_before}
    assert not any(name.endswith(("-handler-0", "-handler-1")) for name in started)
    assert informer.dead_threads() == []



def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items()
                                if k != "managedFields"}}


def test_watched_objects_are_the_servers_without_managed_fields_unless_kept(
        transport: Transport, cms: ResourceClient) -> None:
    """The default store drops ``managedFields``, so the watch cuts them from each event's
    bytes before parsing: what it stores, lends to inline handlers and hands to deletion
    handlers is the server's object without them; so does a transform composed with the
    default. A transform of its own sees them whole."""
    seen_by_transform: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def keep(obj: dict[str, Any]) -> dict[str, Any]:
        seen_by_transform["kept"].append(obj)
        return obj

    def without_data(obj: dict[str, Any]) -> dict[str, Any]:
        seen_by_transform["composed"].append(obj)
        return {k: v for k, v in obj.items() if k != "data"}

    informers = {"default": SharedInformer(cms, namespace="default", options=FAST),
                 "kept": SharedInformer(cms, namespace="default", options=FAST,
                                        store=Store(transform=keep)),
                 "composed": SharedInformer(cms, namespace="default", options=FAST, store=Store(
                     transform=stripping_managed_fields(without_data)))}
    deleted: dict[str, list[Any]] = defaultdict(list)
    inline = InlineRecorder()
    informers["default"].add_handler(inline)
    try:
        for name, informer in informers.items():
            informer.add_handler(Handlers(delete=deleted[name].append))
            informer.start()
            assert informer.wait_for_sync(10)
        created = _make(cms, "watched", k="v")  # after the list: learnt from the watch
        updated = cms.patch("watched", {"data": {"k": "w"}}, "default")
        assert updated["metadata"]["managedFields"]  # the server sends them
        version = updated["metadata"]["resourceVersion"]
        for informer in informers.values():
            eventually(lambda i=informer: i.store.resource_version("default/watched")
                       == version)
        assert informers["default"].store.get("default/watched") == _without_managed_fields(
            updated)
        assert informers["kept"].store.get("default/watched") == updated
        assert informers["composed"].store.get("default/watched") == {
            k: v for k, v in _without_managed_fields(updated).items() if k != "data"}
        lent = [new["metadata"] for change, new in inline.lent
                if change.key == "default/watched" and change.type != "delete"]
        assert [meta["resourceVersion"] for meta in lent] == [
            created["metadata"]["resourceVersion"], version]
        assert not any("managedFields" in meta for meta in lent)
        assert all(obj["metadata"]["managedFields"] for obj in seen_by_transform["kept"])
        # Composed with the default, the watch cut them before parsing: never seen at all.
        composed = [obj["metadata"] for obj in seen_by_transform["composed"]
                    if obj["metadata"]["name"] == "watched"]
        assert composed and not any("managedFields" in meta for meta in composed)
        cms.delete("watched", "default")
        eventually(lambda: all(len(d) == 1 for d in deleted.values()) and len(deleted) == 3)
        assert "managedFields" not in deleted["default"][0]["metadata"]
        assert deleted["kept"][0]["metadata"]["managedFields"]
    finally:
        for informer in informers.values():
            informer.stop()
