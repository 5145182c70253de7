"""Own writes are not news: the event that only shows a controller what its reconcile wrote.

A reconcile creates a child, labels it, and a moment later the watch delivers those very
writes, which wake the controller to look at what it has just made. In the session operator's
steady run (``bench/latency_trace.py``, 100 sessions/s) that was about one in six of its
reconciles, each finding nothing to do and holding a worker the next session waited for.

With :attr:`ControllerOptions.skip_own_writes <ambient_ctrl.controller.ControllerOptions>`, a
controller keeps an :class:`OwnWrites`: while one of its reconciles runs, each write the
:class:`~ambient_ctrl.client.Client` makes (create, update, patch, apply, of an object or its
status) is marked in flight and, once answered, noted with the resourceVersion the server gave
it; the controller's event sources drop the event that brings exactly such a version — the
object as the reconcile left it. Every other event wakes it as before: a kubelet's status, a
user's edit, a deletion, another controller's write, the informer's initial list, and our
write's event when something else changed the object first (its version is not ours).

The watch may deliver a write before its answer reaches the writer. An event of an object with
a write of ours in flight is held (never the reflector's thread: the event is parked) until the
write ends, then dropped if it brought that write's version and delivered otherwise — later by
at most the rest of one request.

Opt-in, as it changes what wakes a reconciler: one that writes and returns counting on its
write's event to continue (controller-runtime's "add the finalizer, update, return") must not
use it. Only writes made in the reconcile's context are its own: on its worker thread, or,
for an async reconcile, through ``manager.async_client`` (its executor calls run in the
reconcile's context); a thread of the reconciler's own does not carry it. Versions are
bounded (``maxsize`` objects, :data:`KEPT` versions each) and expire (``ttl``): a write whose
event never came costs memory for a while, never a missed event.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from foundation.clock import Clock, RealClock
from informers.resource import Resource

KEPT = 8
"""Versions kept per object: its writes whose events have not come yet."""

Entry = tuple[str, str, str]
"""(group, plural, store key): one object."""

_NOTING: contextvars.ContextVar[OwnWrites | None] = contextvars.ContextVar(
    "own_writes", default=None)


def store_key(resource: Resource, name: str, namespace: str | None) -> str:
    """The key an informer's store gives the object (``namespace/name``, or ``name``)."""
    return f"{namespace}/{name}" if resource.namespaced and namespace else name


class OwnWrites:
    """The versions one controller's writes produced, per object, until their events come;
    the writes in flight, and the events held until they end. Thread-safe."""

    def __init__(self, *, ttl: float = 60.0, maxsize: int = 65536,
                 clock: Clock | None = None) -> None:
        self._clock = clock or RealClock()
        self._ttl, self._maxsize = ttl, maxsize
        # A plain dict (in write order) with each entry's expiry, swept now and then: a
        # cachetools TTLCache's Python-level bookkeeping on every write and event was a
        # visible share of the operator's CPU in a burst (bench/wire_floor.py's profile).
        self._versions: dict[Entry, tuple[float, tuple[str, ...]]] = {}
        self._since_sweep = 0
        self._in_flight: dict[Entry, int] = {}
        self._held: dict[Entry, list[tuple[str, Callable[[], None]]]] = {}
        self._lock = threading.Lock()
        self.skipped = 0
        """Events dropped so far (for tests and benchmarks)."""

    # the writer's side -------------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self, resource: Resource, name: str | None, namespace: str | None
                ) -> Iterator[Callable[[Any], None]]:
        """Around one write of the object ``name`` (None: a create with ``generateName``,
        unknown until answered): the block calls the yielded function with the answer."""
        entry = (resource.group, resource.plural, store_key(resource, name, namespace)) \
            if name else None
        answered: list[Any] = []
        if entry is not None:
            with self._lock:
                self._in_flight[entry] = self._in_flight.get(entry, 0) + 1
        try:
            yield answered.append
        finally:
            self._ended(resource, entry, answered[0] if answered else None)

    def _ended(self, resource: Resource, entry: Entry | None, answer: Any) -> None:
        noted = _entry(resource, answer)
        version = _version(answer) if noted is not None else None
        release: list[Callable[[], None]] = []
        with self._lock:
            if noted is not None and version:
                self._note(noted, version)
            if entry is not None:
                left = self._in_flight.pop(entry) - 1
                if left:
                    self._in_flight[entry] = left
                else:
                    release = [deliver for held, deliver in self._held.pop(entry, ())
                               if not self._consume(entry, held)]
        for deliver in release:
            deliver()

    def wrote(self, resource: Resource, answer: Mapping[str, Any]) -> None:
        """A write of ``resource`` answered ``answer`` (the object as stored)."""
        self._ended(resource, None, answer)

    # the event's side --------------------------------------------------------------------------
    def caused(self, resource: Resource, key: str, version: str | None,
               deliver: Callable[[], None] | None = None) -> bool:
        """Whether the event bringing ``version`` of the object at store ``key`` is left to
        this bookkeeping: one of our writes (dropped; forgotten once asked), or — with
        ``deliver`` — an object with a write of ours in flight (held: ``deliver`` is called
        when the writes end, unless the event proves ours). False: deliver it now."""
        if not version:
            return False
        entry = (resource.group, resource.plural, key)
        with self._lock:
            if self._consume(entry, version):
                return True
            if deliver is None or entry not in self._in_flight:
                return False
            self._held.setdefault(entry, []).append((version, deliver))
            return True

    def _note(self, entry: Entry, version: str) -> None:
        """(Under the lock.) ``version`` of ``entry`` is ours. A pass may write an object twice
        (create, then label) before the first event comes: each version it wrote is."""
        now = self._clock.monotonic()
        known = self._versions.pop(entry, None)  # re-inserted last: the dict stays in write order
        kept = known[1][1 - KEPT:] if known is not None and known[0] > now else ()
        self._versions[entry] = (now + self._ttl, (*kept, version))
        self._since_sweep += 1
        if self._since_sweep >= 1024 or len(self._versions) > self._maxsize:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        """(Under the lock.) Drop what expired, then the oldest beyond ``maxsize``. Entries
        are in write order, so in order of expiry (one ``ttl`` for all, a monotonic clock):
        the sweep stops at the first that lives, O(what it drops). It walked every entry
        before, in one pause under the lock: ~50,000 at 100 sessions/s (writes to kinds whose
        events never come live out their ``ttl``), 1.2 % of the operator's CPU."""
        versions = self._versions
        expired = [entry for entry, _ in itertools.takewhile(
            lambda item: item[1][0] <= now, versions.items())]
        for entry in expired:
            del versions[entry]
        for entry in list(itertools.islice(versions, max(0, len(versions) - self._maxsize))):
            del versions[entry]
        self._since_sweep = 0

    def _consume(self, entry: Entry, version: str) -> bool:
        """(Under the lock.) Forget ``version`` of ``entry`` if it is ours; whether it was."""
        known = self._versions.get(entry)
        if known is None or version not in known[1]:
            return False
        if known[0] <= self._clock.monotonic():
            del self._versions[entry]  # expired: the event came too late to be told apart
            return False
        rest = tuple(v for v in known[1] if v != version)
        if rest:
            self._versions[entry] = (known[0], rest)
        else:
            del self._versions[entry]
        self.skipped += 1
        return True

    def of(self, resource: Resource) -> OwnWritesOf:
        return OwnWritesOf(self, resource)


@dataclass(frozen=True, slots=True)
class OwnWritesOf:
    """One watched kind's view of a controller's :class:`OwnWrites` (an event source's)."""

    writes: OwnWrites
    resource: Resource

    def caused(self, key: str, version: str | None,
               deliver: Callable[[], None] | None = None) -> bool:
        return self.writes.caused(self.resource, key, version, deliver)


@contextlib.contextmanager
def noting(writes: OwnWrites | None) -> Iterator[None]:
    """The client's writes during the block are ``writes``' (none with None)."""
    token = _NOTING.set(writes)
    try:
        yield
    finally:
        _NOTING.reset(token)


def write(resource: Resource, name: str | None, namespace: str | None,
          request: Callable[[], Any]) -> Any:
    """``request()``, a write of the object ``name``: the running reconcile's own, if its
    controller notes them."""
    writes = _NOTING.get()
    if writes is None:
        return request()
    with writes.writing(resource, name, namespace) as answered:
        answer = request()
        answered(answer)
        return answer


def _entry(resource: Resource, answer: Any) -> Entry | None:
    meta = answer.get("metadata") if isinstance(answer, Mapping) else None
    if not isinstance(meta, Mapping) or not meta.get("name"):
        return None
    return (resource.group, resource.plural,
            store_key(resource, str(meta["name"]), meta.get("namespace")))


def _version(answer: Mapping[str, Any]) -> str:
    return str((answer.get("metadata") or {}).get("resourceVersion") or "")
