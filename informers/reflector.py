"""The reflector: keep a sink in step with the server by listing, then watching.

It is a thin driver around a pure state machine (:mod:`informers.reflector_state`, whose
docstring has the whole transition table): it makes the request the current state asks for,
feeds the outcome to :func:`~informers.reflector_state.step` and carries out the actions it
returns. Protocol corners the machine handles, because each one has bitten Python operators:

* the list is paginated (``limit=500``) and the watch starts from the list's resourceVersion;
* a watch asks for BOOKMARK events (they only advance the resourceVersion) and a randomised
  ``timeoutSeconds`` (5-10 min) so all clients do not reconnect at once, and reads with a
  timeout a little longer than that, so a stream that goes silent without closing is noticed;
* a watch that ends normally is resumed from the last resourceVersion seen, without a relist;
* our resourceVersion may stop being the server's, and every sign of it relists from scratch
  (``resourceVersion=""``; the sink then replaces its contents, reports objects that vanished
  meanwhile as deletions and new ones as adds): 410 Gone (too old: the history is compacted),
  and "Too large resource version" (504 Timeout with the cause ``ResourceVersionTooLarge``:
  newer than anything the server has — restored from a backup, or restarted without its
  storage), each as an HTTP answer or as an ERROR event in the stream; an event whose
  resourceVersion is older than one already seen (a history reset: only compared when both
  are integers, as every kube-apiserver's are); and watches that the server ends at once and
  empty, twice in a row (client-go's "very short watch");
* kube-apiserver accepts a watch from a resourceVersion it has not reached yet and sends
  nothing until it does, so after anything went wrong (a broken stream, a failed request) or
  after a watch that delivered nothing at all, not even a BOOKMARK, the version is checked
  before watching from it again: a one-item list ``resourceVersionMatch=NotOlderThan`` from it
  (what client-go's relist from its last version does, at the cost of one object). "Too
  large", 410, or a list older than our version relist; otherwise the watch resumes;
* connection errors, 5xx and 429 back off exponentially with jitter (0.8 s doubling to 30 s,
  Retry-After honoured: :mod:`informers.backoff`);
* one reset rule: a watch that *worked* (it delivered an event, BOOKMARKs included, or stayed
  open ``min_healthy_watch``) starts the backoff over, so the failure after it — typically
  its stream being cut — is retried after a short jitter from the last resourceVersion (or
  after the server's Retry-After, when it sent one): an apiserver or a load balancer cutting
  long connections every few seconds must not drive the backoff to its cap and leave the cache
  blind for 30 s at a time. A list that completed or a watch that merely opened does not;
* anything else that goes wrong — a 200 answer that is not JSON, a malformed event, a transform
  or handler-side store error — is logged with its traceback, backed off like a failure, and
  followed by a relist (the store may have missed what failed). The reflector thread never
  dies of it: a dead reflector would leave the informer "synced" and silently stale.
  :attr:`Reflector.health` tells how long it has been failing (the manager's ``/healthz``) and
  whether it lost its resourceVersion and is relisting (``lost_version``: the manager's
  ``/readyz``). Healthy has one meaning: the server answered the last request as asked (a
  list completed, a watch opened) — the machine's ``Succeeded`` action.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from foundation.clock import Clock, RealClock

from .backoff import Backoff
from .rawjson import RawObject
from .reflector_state import (
    APPLY,
    STOP_REQUESTED,
    WATCH_OPENED,
    Actions,
    Checking,
    Empty,
    Event,
    Failed,
    Listed,
    Listing,
    PageListed,
    Replace,
    ResetBackoff,
    Retry,
    State,
    Stopped,
    StreamEnded,
    Succeeded,
    VersionChecked,
    VersionLost,
    Watching,
    lost_of,
    step,
    version_of,
)
from .rest import ResourceClient
from .watchstream import WatchEvents

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where a reflector delivers what it learns (the shared informer)."""

    @property
    def drops_managed_fields(self) -> bool:
        """Whether the sink drops every object's ``metadata.managedFields``: the watch then
        cuts them from each event's bytes before parsing it, and they are never seen."""
        ...

    def prepare(self, objects: Iterable[dict[str, Any]]) -> list[Any]:
        """One list page's objects in the form :meth:`replace` takes (the store's: compact
        bytes), so a long list is not held as parsed dicts until its last page."""
        ...

    def replace(self, objects: list[Any], resource_version: str) -> None:
        """Hold exactly ``objects`` (every page's :meth:`prepare` result) as of the version."""
        ...

    def apply(self, event_type: str, obj: dict[str, Any], raw: RawObject | None = None) -> None:
        """Take in one watch event's object; ``raw``, when known, is its bytes as sent."""
        ...


class ReflectorObserver(Protocol):
    """Health hooks (metrics): events by type, relists, watch restarts."""

    def event(self, resource: str, event_type: str) -> None: ...

    def relist(self, resource: str) -> None: ...

    def watch_restart(self, resource: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ReflectorOptions:
    """Timing and paging of a reflector."""

    page_size: int = 500
    """Objects per list page."""
    min_watch_timeout: int = 300
    """Lower bound of the randomised ``timeoutSeconds`` of each watch."""
    max_watch_timeout: int = 600
    """Upper bound of the randomised ``timeoutSeconds``."""
    read_grace: float = 30.0
    """Seconds past ``timeoutSeconds`` without a byte before the stream counts as dead."""
    backoff_initial: float = 0.8
    """Seconds of the first backoff after a failure (and of the jitter added to each); the
    backoff doubles per consecutive failure."""
    backoff_max: float = 30.0
    """Cap of the backoff between consecutive failures (a Retry-After may ask for longer)."""
    min_healthy_watch: float = 1.0
    """A watch stream open this many seconds, or that delivered an event, worked: the backoff
    starts over (its one reset rule), so the failure after it waits only a short jitter
    (client-go's "very short watch" rule). A stream that ends at once, silent, did not."""
    short_watches_before_relist: int = 2
    """Watches in a row that the server ends normally but at once (before
    ``min_healthy_watch``) and empty after which the reflector relists from scratch: a server
    that will not watch from our resourceVersion. Each one also backs off like a failure."""


@dataclass(frozen=True, slots=True)
class ReflectorHealth:
    """A snapshot of how a reflector is doing (times on its clock's ``monotonic``)."""

    last_success: float | None
    """When a list completed or a watch opened last (None: never)."""
    consecutive_failures: int
    """Failed lists/watches since the last success."""
    failing_since: float | None
    """When the current series of failures began (None while healthy)."""
    last_error: str | None
    """The last failure, for humans (``/healthz`` output, logs)."""
    lost_version: str | None = None
    """Why the reflector's resourceVersion is not the server's, from the moment it learnt so
    until its relist completed (None: in step, or never listed yet). ``/readyz``."""

    def failing_for(self, now: float) -> float:
        """Seconds this reflector has been failing without a success in between (0 if not)."""
        return 0.0 if self.failing_since is None else max(now - self.failing_since, 0.0)


class Reflector:
    """List and watch one resource (namespace, selectors) into a sink until stopped."""

    def __init__(self, client: ResourceClient, sink: Sink, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 options: ReflectorOptions = ReflectorOptions(), clock: Clock | None = None,
                 observer: ReflectorObserver | None = None, seed: int | None = None) -> None:
        self._client = client
        self._sink = sink
        self._namespace = namespace
        self._labels = label_selector
        self._fields = field_selector
        self._options = options
        self._clock = clock or RealClock()
        self._observer = observer
        self._random = random.Random(seed)
        self._backoff = Backoff(initial=options.backoff_initial, maximum=options.backoff_max,
                                rng=self._random)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stream: WatchEvents | None = None
        self._state: State = Empty()
        """Written by the reflector thread only; read (one reference) by any."""
        self._pages: list[Any] = []
        """The prepared objects of the list under way (``Listing``)."""
        self.resource = client.resource.group_resource
        self._health = ReflectorHealth(None, 0, None, None)

    # lifecycle ---------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Block, keeping the sink in step, until ``stop`` is set (or :meth:`stop` is called)."""
        self._stop = stop
        while not isinstance(self._state, Stopped):
            try:
                self._request()
            except Exception as exc:  # the last line: whatever got here, the thread goes on
                log.exception("reflector of %s failed outside its list/watch; relisting",
                              self.resource)
                state = self._state
                self._state = Empty(f"{type(exc).__name__} in the reflector", version_of(state))
                self._clock.wait(stop, self._options.backoff_max)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()  # unblocks a read in progress

    @property
    def resource_version(self) -> str:
        """The resourceVersion the sink is in step with ("" while listing from scratch)."""
        return version_of(self._state)

    @resource_version.setter
    def resource_version(self, version: str) -> None:
        """Start from ``version`` as if a list had ended there ("" lists from scratch). Only
        before :meth:`run`, by a caller whose sink already holds that list (a benchmark)."""
        self._state = Listed(version) if version else Empty()

    @property
    def health(self) -> ReflectorHealth:
        """How this reflector is doing (a snapshot; thread-safe)."""
        lost = lost_of(self._state)
        with self._lock:
            health = self._health
        return health if lost is None else replace(health, lost_version=lost)

    # the machine -------------------------------------------------------------------------------
    def _request(self) -> None:
        """Make the request the state asks for and step on its outcome."""
        state = self._state
        if self._stop.is_set():
            self._step(STOP_REQUESTED)
        elif isinstance(state, (Empty, Listing)):
            self._list_page(state)
        elif isinstance(state, Checking):
            self._check_version(state)
        elif isinstance(state, Listed):
            self._watch(state)
        else:  # Watching is left inside _watch, Stopped ends run()
            raise RuntimeError(f"no request to make in {state}")

    def _step(self, event: Event) -> None:
        if self._stop.is_set():
            event = STOP_REQUESTED  # nothing is recorded or waited for once stopping
        self._state, actions = step(self._state, event, short_watches_before_relist=(
            self._options.short_watches_before_relist))
        self._carry_out(actions)

    def _carry_out(self, actions: Actions) -> None:
        for action in actions:
            if isinstance(action, Replace):
                try:
                    self._replace(action)
                except Exception as exc:  # the sink could not take the list in
                    self._step(Failed(exc))
                    return
            elif isinstance(action, Succeeded):
                self._succeeded()
            elif isinstance(action, ResetBackoff):
                self._backoff.reset()
            elif isinstance(action, VersionLost):
                log.info("resourceVersion of %s is not the server's (%s): relisting",
                         self.resource, action.why)
            elif isinstance(action, Retry):
                self._retry(action)
            else:  # Apply: only while watching, where _watch carries it out
                raise RuntimeError(f"{action} outside a watch")

    # requests ----------------------------------------------------------------------------------
    def _list_page(self, state: Empty | Listing) -> None:
        token = state.token if isinstance(state, Listing) else None
        if token is None:
            self._pages = []
        if isinstance(state, Empty) and self._observer is not None:
            self._observer.relist(self.resource)
        try:
            page = self._client.list(self._namespace, label_selector=self._labels,
                                     field_selector=self._fields,
                                     limit=self._options.page_size, continue_=token,
                                     without_managed_fields=self._sink.drops_managed_fields)
            self._pages.extend(self._sink.prepare(_items(page)))
            meta = page.get("metadata") or {}
            event: Event = PageListed(str(meta.get("resourceVersion", "")),
                                      meta.get("continue") or None)
        except Exception as exc:
            event = Failed(exc)
        self._step(event)

    def _replace(self, action: Replace) -> None:
        pages, self._pages = self._pages, []
        self._sink.replace(pages, action.version)
        if action.reset_from:
            log.warning("%s relisted at resourceVersion %s, older than the %s seen before: "
                        "the server's history was reset (a restore, or a restart without its "
                        "storage)", self.resource, action.version, action.reset_from)

    def _check_version(self, state: Checking) -> None:
        """Ask the server whether it still serves our resourceVersion: a list of at most one
        object, not older than it. kube-apiserver waits up to 3 s for a version it has not
        reached, then answers "Too large resource version"."""
        try:
            page = self._client.list(self._namespace, label_selector=self._labels,
                                     field_selector=self._fields, limit=1,
                                     resource_version=state.version,
                                     resource_version_match="NotOlderThan")
            event: Event = VersionChecked(
                str((page.get("metadata") or {}).get("resourceVersion", "")))
        except Exception as exc:
            event = Failed(exc)
        self._step(event)

    def _watch(self, state: Listed) -> None:
        options = self._options
        timeout = self._random.randint(options.min_watch_timeout, options.max_watch_timeout)
        if self._observer is not None:
            self._observer.watch_restart(self.resource)
        try:
            stream = self._client.watch(self._namespace, resource_version=state.version,
                                        timeout_seconds=timeout, allow_bookmarks=True,
                                        label_selector=self._labels,
                                        field_selector=self._fields,
                                        read_timeout=timeout + options.read_grace,
                                        without_managed_fields=self._sink.drops_managed_fields)
        except Exception as exc:
            self._step(Failed(exc))
            return
        with self._lock:
            self._stream = stream
        try:
            self._step(WATCH_OPENED)
            if isinstance(self._state, Watching):
                ending: Event | Actions = self._read(stream)
            else:  # stopped while connecting: stop() found no stream to close
                stream.close()
                ending = STOP_REQUESTED
        finally:
            with self._lock:
                self._stream = None
        # Outside the stream: a failure's backoff waits with no connection held.
        if isinstance(ending, tuple):
            self._carry_out(ending)
        else:
            self._step(ending)

    def _read(self, stream: WatchEvents) -> Event | Actions:
        """Step through the stream's events; return how the watch ended: the event to step
        on, or the actions of the event that ended it."""
        opened = self._clock.monotonic()
        stop, sink, observer, resource = self._stop, self._sink, self._observer, self.resource
        limit = self._options.short_watches_before_relist
        state = self._state
        try:
            for event in stream:
                if stop.is_set():
                    stream.close()
                    return STOP_REQUESTED
                if observer is not None:
                    observer.event(resource, event.get("type", ""))
                state, actions = step(state, event, short_watches_before_relist=limit)
                self._state = state
                if type(state) is not Watching:
                    stream.close()  # an ERROR, a history reset: the rest is not ours to take
                    return actions
                if actions:  # staying in Watching, the only action is Apply
                    assert actions[0] is APPLY
                    sink.apply(event["type"], event["object"], stream.object_bytes(event))
        except Exception as exc:
            stream.close()  # an event we could not take in: end the stream now, not at GC
            return STOP_REQUESTED if stop.is_set() else Failed(exc, self._quick(opened))
        return STOP_REQUESTED if stop.is_set() else StreamEnded(self._quick(opened))

    def _quick(self, opened: float) -> bool:
        return self._clock.monotonic() - opened < self._options.min_healthy_watch

    # health and backoff ------------------------------------------------------------------------
    def _succeeded(self) -> None:
        now = self._clock.monotonic()
        with self._lock:
            self._health = ReflectorHealth(now, 0, None, None)

    def _retry(self, action: Retry) -> None:
        now = self._clock.monotonic()
        with self._lock:
            health = self._health
            self._health = health = ReflectorHealth(
                health.last_success, health.consecutive_failures + 1,
                now if health.failing_since is None else health.failing_since, action.reason)
        if action.unexpected:
            log.error("list/watch of %s failed unexpectedly (%d in a row); will relist",
                      self.resource, health.consecutive_failures, exc_info=action.error)
        else:
            log.warning("list/watch of %s failed (%d in a row): %s", self.resource,
                        health.consecutive_failures, action.error)
        retry_after = getattr(action.error, "retry_after", None)
        self._clock.wait(self._stop, self._backoff.next_delay(retry_after))


def _items(page: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Items of a list page; lists omit kind/apiVersion on items, so restore them."""
    kind = str(page.get("kind", ""))
    kind = kind[:-4] if kind.endswith("List") else kind
    api_version = page.get("apiVersion")
    for item in page.get("items") or ():
        item.setdefault("kind", kind)
        item.setdefault("apiVersion", api_version)
        yield item
