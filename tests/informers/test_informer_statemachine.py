"""The shared informer converges on the server's contents under any mix of writes and faults.

A hypothesis state machine writes ConfigMaps (a small fixed pool of names in two namespaces) and
injects faults: cut watches, restarts that forget the event history (410 Gone on resume, so the
informer relists), failed list or watch requests (500, 503, 429) and short pauses. Once the faults
are cleared (at ``settle`` and at the end), the store must equal the server's contents exactly
(names, resourceVersions, data), and the handler must have been told a consistent story per
object that ends in the same state.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    multiple,
    precondition,
    rule,
)

from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer, ServerOptions
from informers.errors import AlreadyExists, TransportError
from informers.informer import DeletedFinalStateUnknown, Handlers, SharedInformer
from informers.reflector import ReflectorOptions
from informers.resource import CONFIGMAPS
from informers.rest import ResourceClient, Transport, TransportOptions, load_configuration
from informers.store import key_of

NAMESPACES = ("default", "kube-public")
KEYS = tuple(f"{ns}/{name}" for ns in NAMESPACES for name in ("a", "b", "c"))

FAST = ReflectorOptions(page_size=2, min_watch_timeout=1, max_watch_timeout=2, read_grace=1.0,
                        backoff_initial=0.02, backoff_max=0.1)
"""Small pages (every relist paginates), short watches and a short backoff."""

State = tuple[str, dict[str, str]]
"""What is compared of an object: (resourceVersion, data)."""


def _rv(obj: Any) -> str:
    return str(obj["metadata"]["resourceVersion"])


def _state(obj: Any) -> State:
    return _rv(obj), dict(obj.get("data") or {})


class Recorder:
    """A handler that checks, per object, that its notifications tell a consistent story.

    It runs on the informer's handler thread, where an exception would only be logged, so it
    records violations for the test thread to assert on.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._alive: dict[str, str] = {}
        """The objects it was told exist, with the last resourceVersion it was told of."""
        self._told: dict[str, list[str]] = defaultdict(list)
        self._violations: list[str] = []
        self.handlers = Handlers(add=self._add, update=self._update, delete=self._delete)

    def alive(self) -> dict[str, str]:
        with self._lock:
            return dict(self._alive)

    def violations(self) -> list[str]:
        with self._lock:
            return list(self._violations)

    def _violation(self, key: str, what: str) -> None:
        self._violations.append(f"{key}: {what} (told before: {self._told[key][:-1]})")

    def _add(self, obj: Any) -> None:
        key, rv = key_of(obj), _rv(obj)
        with self._lock:
            self._told[key].append(f"add@{rv}")
            if key in self._alive:
                self._violation(key, f"added at {rv} while alive at {self._alive[key]}")
            self._alive[key] = rv

    def _update(self, old: Any, new: Any) -> None:
        key, before, after = key_of(new), _rv(old), _rv(new)
        with self._lock:
            self._told[key].append(f"update@{before}->{after}")
            if key not in self._alive:
                self._violation(key, "updated before it was added")
            elif self._alive[key] != before:
                self._violation(key, f"update from {before}, but the last state it was told "
                                     f"of is {self._alive[key]}")
            if int(after) <= int(before):
                self._violation(key, f"update goes back from {before} to {after}")
            self._alive[key] = after

    def _delete(self, obj: Any) -> None:
        tombstone = isinstance(obj, DeletedFinalStateUnknown)
        key = obj.key if tombstone else key_of(obj)
        rv = _rv(obj.obj if tombstone else obj)
        with self._lock:
            self._told[key].append(f"{'tombstone' if tombstone else 'delete'}@{rv}")
            last = self._alive.pop(key, None)
            if last is None:
                self._violation(key, "deleted though it was never added (or already deleted)")
            elif tombstone and rv != last:
                self._violation(key, f"tombstone carries {rv}, the last state it was told of "
                                     f"is {last}")
            elif int(rv) < int(last):
                self._violation(key, f"deleted at {rv}, older than the last state {last}")


class InformerMachine(RuleBasedStateMachine):
    """One local API server and one shared informer (all namespaces) per run."""

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, State] = {}
        """What the server holds, as its answers to our writes told us."""
        self.touches = 0
        self.partitioned = False
        # A short history: a watch resumed after a few writes gets 410 Gone, not just after
        # a restart, so relists (and their tombstones) are common.
        self.server = LocalAPIServer(options=ServerOptions(bookmark_interval=0.2,
                                                           history_limit=8)).start()
        self.transports: list[Transport] = []
        self.informer: SharedInformer | None = None
        try:
            self.cms = ResourceClient(self._transport(), CONFIGMAPS)
            self.informer = SharedInformer(ResourceClient(self._transport(), CONFIGMAPS),
                                           options=FAST)
            self.recorder = Recorder()
            self.registration = self.informer.add_handler(self.recorder.handlers)
            self.informer.start()
            assert self.informer.wait_for_sync(10), "the informer did not sync"
        except BaseException:
            self._close()
            raise

    def _transport(self) -> Transport:
        transport = Transport(load_configuration(self.server.kubeconfig),
                              options=TransportOptions(pool_size=4, timeout=10.0))
        self.transports.append(transport)
        return transport

    def _close(self) -> None:
        self.server.faults.clear()
        if self.informer is not None:
            self.informer.stop(timeout=10)
        for transport in self.transports:
            transport.close()
        self.server.stop()

    # writes ------------------------------------------------------------------------------------
    objects = Bundle("objects")
    """Keys of the objects that exist (a created key until it is deleted)."""

    @rule(target=objects, key=st.sampled_from(KEYS), value=st.integers(0, 2))
    def create(self, key: str, value: int) -> Any:
        namespace, name = key.split("/")
        body = {"metadata": {"name": name, "namespace": namespace}, "data": {"v": str(value)}}
        try:
            created = self.cms.create(body)
        except AlreadyExists:
            assert key in self.model, f"{key} does not exist, yet the server says it does"
            return multiple()
        assert key not in self.model, f"{key} exists, yet the server created it again"
        self.model[key] = _state(created)
        return key

    @rule(key=objects, value=st.integers(0, 2))
    def update_data(self, key: str, value: int) -> None:
        """A merge patch of the data (an unchanged value is a no-op: no new version)."""
        namespace, name = key.split("/")
        self.model[key] = _state(self.cms.patch(name, {"data": {"v": str(value)}}, namespace))

    @rule(key=objects)
    def annotate(self, key: str) -> None:
        """An annotation-only change (kopf's touch): a new version, the same data."""
        namespace, name = key.split("/")
        self.touches += 1
        touch = {"metadata": {"annotations": {"touch": str(self.touches)}}}
        self.model[key] = _state(self.cms.patch(name, touch, namespace))

    @rule(key=consumes(objects))
    def delete(self, key: str) -> None:
        namespace, name = key.split("/")
        self.cms.delete(name, namespace)
        del self.model[key]

    # faults ------------------------------------------------------------------------------------
    @rule()
    def drop_watches(self) -> None:
        self.server.faults.drop_watches()

    @rule(downtime=st.sampled_from([0.0, 0.1]))
    def restart(self, downtime: float) -> None:
        """Forget the event history (resuming gets 410 Gone) and cut watches; with downtime,
        also refuse connections for a while."""
        self.server.faults.restart(downtime=downtime)
        if downtime:
            time.sleep(downtime)  # the fault itself: the server refuses connections this long
            eventually(lambda: self.cms.transport.request("GET", "/healthz", verb="GET"),
                       timeout=10, ignoring=(TransportError,))

    @rule(verb=st.sampled_from(["list", "watch"]), code=st.sampled_from([500, 503, 429]),
          count=st.integers(1, 3))
    def fail_next(self, verb: str, code: int, count: int) -> None:
        """Fail the next ``count`` list or watch requests, and cut watches so the informer has
        to ask again (list failures bite at its next relist)."""
        self.server.faults.fail(code=code, count=count, verbs=[verb], resources=["configmaps"],
                                retry_after=0 if code == 429 else None)
        self.server.faults.drop_watches()

    @precondition(lambda self: not self.partitioned)
    @rule()
    def disconnect(self) -> None:
        """Fail every list and watch of the informer until ``heal``: writes meanwhile are
        learnt from the resumed watch or, once the history has moved on, from a relist.

        It first lets the informer catch up, so what it saw before the cut does not depend on
        timing (and a failure replays the same way while shrinking)."""
        self._wait_for_revision(self._revision())
        self.server.faults.fail(code=503, verbs=["list", "watch"], resources=["configmaps"])
        self.server.faults.drop_watches()
        self.partitioned = True

    @precondition(lambda self: self.partitioned)
    @rule()
    def heal(self) -> None:
        """Clear every fault; the informer comes back on its own after its backoff."""
        self.server.faults.clear()
        self.partitioned = False

    @rule(key=consumes(objects))
    def delete_unseen(self, key: str) -> None:
        """Delete while the informer is cut off, then compact the history before it is back:
        it can learn of the deletion only from a relist (as a tombstone)."""
        partitioned = self.partitioned
        if not partitioned:
            self.disconnect()
        self.delete(key)
        self.server.faults.restart()
        if not partitioned:
            self.heal()

    @rule(seconds=st.sampled_from([0.02, 0.2]))
    def pause(self, seconds: float) -> None:
        """Hold every request for a while; watches are cut, so the informer waits too."""
        self.server.faults.pause()
        self.server.faults.drop_watches()
        time.sleep(seconds)  # the fault itself: requests are held this long
        self.server.faults.resume()

    # checks ------------------------------------------------------------------------------------
    @rule()
    def settle(self) -> None:
        """Clear the faults and wait for the informer to catch up."""
        self._expect_converged()

    def _expect_converged(self) -> None:
        """Once the informer has seen the server's latest revision, its store must equal the
        server's contents and its handler must have been told exactly that, consistently.

        Waiting for the revision first (not for equality) makes a wrong store fail at once
        rather than after a timeout, which keeps shrinking fast.
        """
        self.server.faults.clear()
        self.partitioned = False
        listed = self.cms.list()
        served = {key_of(o): _state(o) for o in listed["items"]}
        assert served == self.model, "the model does not match the server"
        self._wait_for_revision(int(listed["metadata"]["resourceVersion"]))
        assert self.informer is not None
        cached = {key_of(o): _state(o) for o in self.informer.store.list()}
        assert cached == served, f"store {cached} != server {served}"
        expected = {key: rv for key, (rv, _) in served.items()}

        def told_everything() -> bool:
            assert not self.recorder.violations(), "\n".join(self.recorder.violations())
            alive = self.recorder.alive()
            assert alive == expected, f"the handler was told of {alive}, the server has {expected}"
            return True

        eventually(lambda: self.registration.backlog == 0, timeout=5,
                   message="the handler did not drain its queue")
        eventually(told_everything, timeout=1)  # at most one notification is still in flight

    def _revision(self) -> int:
        """The server's latest revision, read on its loop (past any injected fault)."""
        return int(self.server.call(lambda cluster: cluster.store.revision))

    def _wait_for_revision(self, revision: int) -> None:
        """Until the informer has seen ``revision`` (an event, a bookmark or a relist): its store
        then reflects every write up to it."""
        informer = self.informer
        assert informer is not None
        eventually(lambda: int(informer.resource_version or 0) >= revision, timeout=10,
                   message=f"the informer did not reach revision {revision}")

    def teardown(self) -> None:
        try:
            if sys.exc_info()[0] is None:  # a step failed already: report that, not this
                self._expect_converged()
        finally:
            self._close()


InformerMachine.TestCase.settings = settings(
    max_examples=15, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestInformerStateMachine = InformerMachine.TestCase
