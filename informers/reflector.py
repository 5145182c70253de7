"""The reflector: keep a sink in step with the server by listing, then watching.

Protocol corners it handles, because each one has bitten Python operators:

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
  Retry-After honoured), reset once a watch has been healthy for a while (tenacity);
* a watch stream that breaks after it worked (it delivered an event, BOOKMARKs included, or
  stayed open ``min_healthy_watch``) is resumed after a short jitter from the last
  resourceVersion (or after the server's Retry-After, when it sent one): an apiserver or a
  load balancer cutting long connections every few seconds must not drive the backoff to its
  cap and leave the cache blind for 30 s at a time;
* anything else that goes wrong — a 200 answer that is not JSON, a malformed event, a transform
  or handler-side store error — is logged with its traceback, backed off like a failure, and
  followed by a relist (the store may have missed what failed). The reflector thread never
  dies of it: a dead reflector would leave the informer "synced" and silently stale.
  :attr:`Reflector.health` tells how long it has been failing (the manager's ``/healthz``) and
  whether it lost its resourceVersion and is relisting (``lost_version``: the manager's
  ``/readyz``).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson
import tenacity

from .clock import Clock, RealClock
from .errors import (
    APIError,
    ServerError,
    TooManyRequests,
    TransportError,
    error_from,
    expired,
    too_large_resource_version,
)
from .rest import ResourceClient

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where a reflector delivers what it learns (the shared informer)."""

    def prepare(self, objects: Iterable[dict[str, Any]]) -> list[Any]:
        """One list page's objects in the form :meth:`replace` takes (the store's: compact
        bytes), so a long list is not held as parsed dicts until its last page."""
        ...

    def replace(self, objects: list[Any], resource_version: str) -> None:
        """Hold exactly ``objects`` (every page's :meth:`prepare` result) as of the version."""
        ...

    def apply(self, event_type: str, obj: dict[str, Any]) -> None: ...


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
    healthy_after: float = 30.0
    """A watch that lived this long resets the backoff."""
    min_healthy_watch: float = 1.0
    """A watch stream that breaks after this many seconds open, or after delivering an event,
    worked: it is resumed after a short jitter, with the backoff started over (client-go's
    "very short watch" rule). Only streams that break at once, silent, count as failures."""
    short_watches_before_relist: int = 2
    """Watches in a row that the server ends normally but at once (before
    ``min_healthy_watch``) and empty after which the reflector relists from scratch: a server
    that will not watch from our resourceVersion. Each one also backs off like a failure."""


_RETRIED = (TransportError, ServerError, TooManyRequests, APIError)
"""What the API boundary raises; anything else is unexpected and also forces a relist."""


@dataclass(frozen=True, slots=True)
class ReflectorHealth:
    """A snapshot of how a reflector is doing (times on its clock's ``monotonic``)."""

    last_success: float | None
    """When a list completed, a watch opened or a watch event arrived last (None: never)."""
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


class _HealthyFailure(Exception):
    """A failure after a healthy period: start the backoff over."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _ShortWatch(TransportError):
    """The server ended a watch at once, empty: a failure (backed off), and a sign that it
    does not serve our resourceVersion once it repeats."""


class _HistoryReset(Exception):
    """An event older than what we saw: the server's history is not the one we followed."""


def _older(version: str, than: str) -> bool:
    """Whether resourceVersion ``version`` is older than ``than`` — only when both are
    integers (they are opaque strings to clients; every kube-apiserver's are etcd revisions)."""
    try:
        return int(version) < int(than)
    except ValueError:
        return False


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
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stream: Any = None
        self.resource_version = ""
        self.resource = client.resource.group_resource
        self._health = ReflectorHealth(None, 0, None, None)
        self._verify = False
        """Check our resourceVersion with the server before the next watch from it."""
        self._short_watches = 0
        self._lost: str | None = None
        self._before_loss = ""
        """The last resourceVersion seen before it was given up (to spot a history reset)."""

    # lifecycle ---------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Block, keeping the sink in step, until ``stop`` is set (or :meth:`stop` is called)."""
        self._stop = stop
        while not stop.is_set():
            try:
                self._retrying()(self._list_and_watch)
            except tenacity.RetryError:
                return  # stopped while backing off
            except _HealthyFailure as failure:
                self._failed(failure.cause)
                if isinstance(failure.cause, _RETRIED):
                    log.info("watch of %s failed after a healthy period: %s", self.resource,
                             failure.cause)
                else:
                    log.error("watch of %s failed unexpectedly after a healthy period; will "
                              "relist", self.resource, exc_info=failure.cause)
                # A new series: a short jitter, not the next step of the old backoff — but
                # never sooner than the server asked (429/503 with Retry-After).
                pause = self._random.uniform(0, self._options.backoff_initial)
                retry_after = getattr(failure.cause, "retry_after", None)
                self._clock.wait(stop, max(pause, float(retry_after or 0.0)))
            except Exception:  # the last line: whatever got here, the thread goes on
                log.exception("reflector of %s failed outside its list/watch; relisting",
                              self.resource)
                self.resource_version = ""
                self._clock.wait(stop, self._options.backoff_max)

    @property
    def health(self) -> ReflectorHealth:
        """How this reflector is doing (a snapshot; thread-safe)."""
        with self._lock:
            return self._health

    def _succeeded(self) -> None:
        now = self._clock.monotonic()
        with self._lock:
            self._health = ReflectorHealth(now, 0, None, None, self._lost)

    def _failed(self, exc: BaseException) -> None:
        now = self._clock.monotonic()
        with self._lock:
            health = self._health
            self._health = ReflectorHealth(
                health.last_success, health.consecutive_failures + 1,
                now if health.failing_since is None else health.failing_since,
                f"{type(exc).__name__}: {exc}", self._lost)

    def _lose(self, why: str) -> None:
        """Give our resourceVersion up: the next step lists from scratch."""
        log.info("resourceVersion %s of %s is not the server's (%s): relisting",
                 self.resource_version, self.resource, why)
        if self.resource_version:
            self._before_loss = self.resource_version
        self.resource_version = ""
        self._verify = False
        self._short_watches = 0
        with self._lock:
            self._lost = why
            self._health = replace(self._health, lost_version=why)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()  # unblocks a read in progress

    def _retrying(self) -> tenacity.Retrying:
        backoff = tenacity.wait_exponential_jitter(multiplier=self._options.backoff_initial,
                                                   max=self._options.backoff_max,
                                                   jitter=self._options.backoff_initial)

        def wait(state: tenacity.RetryCallState) -> float:
            delay = float(backoff(state))
            assert state.outcome is not None
            exc = state.outcome.exception()
            retry_after = getattr(exc, "retry_after", None)
            return max(delay, float(retry_after)) if retry_after else delay

        def sleep(seconds: float) -> None:
            self._clock.wait(self._stop, seconds)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            assert state.outcome is not None
            exc = state.outcome.exception()
            assert exc is not None
            self._failed(exc)
            if isinstance(exc, _RETRIED):
                log.warning("list/watch of %s failed (attempt %d): %s", self.resource,
                            state.attempt_number, exc)
            else:
                log.error("list/watch of %s failed unexpectedly (attempt %d); will relist",
                          self.resource, state.attempt_number, exc_info=exc)

        # Every Exception is retried (a reflector that gives up leaves a stale cache behind);
        # a _HealthyFailure leaves the series so that run() can start a new one.
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda e: not isinstance(e, _HealthyFailure)),
            wait=wait, sleep=sleep, before_sleep=before_sleep,
            stop=lambda _: self._stop.is_set(), reraise=False)

    # one healthy stretch -----------------------------------------------------------------------
    def _list_and_watch(self) -> None:
        # Healthy since this call began: watches that end normally (every timeoutSeconds) and
        # relists are progress too, so the failure that ends this stretch restarts the backoff
        # instead of continuing the series of failures from before it.
        started = self._clock.monotonic()
        while not self._stop.is_set():
            try:
                if not self.resource_version:
                    self._list()
                    continue
                try:
                    if self._verify:
                        self._check_version()
                        continue  # it may have given the version up: list first, then
                    self._watch()
                except APIError as exc:  # a 410 or a "too large" about *our* version
                    if expired(exc):
                        self._lose(f"expired: {exc.message}")
                    elif too_large_resource_version(exc):
                        self._lose(f"too large: {exc.message}")
                    else:
                        raise
                except _HistoryReset as exc:
                    self._lose(str(exc))
            except _HealthyFailure:
                self._verify = True  # a broken stream may have been a server losing its state
                raise
            except Exception as exc:
                self._verify = True  # whatever broke may have been a server losing its state
                if not isinstance(exc, _RETRIED):
                    # Not the API's answer but ours: an event we could not take in. The store
                    # may lack it, so the next attempt relists instead of resuming.
                    self._lose(f"{type(exc).__name__} taking in what the server sent")
                if self._clock.monotonic() - started >= self._options.healthy_after:
                    raise _HealthyFailure(exc) from exc
                raise

    def _check_version(self) -> None:
        """Ask the server whether it still serves our resourceVersion: a list of at most one
        object, not older than it. kube-apiserver waits up to 3 s for a version it has not
        reached, then answers "Too large resource version"."""
        page = self._client.list(self._namespace, label_selector=self._labels,
                                 field_selector=self._fields, limit=1,
                                 resource_version=self.resource_version,
                                 resource_version_match="NotOlderThan")
        current = str((page.get("metadata") or {}).get("resourceVersion", ""))
        if current and _older(current, self.resource_version):
            self._lose(f"history reset: the server is at {current}, we saw "
                       f"{self.resource_version}")
            return
        self._verify = False

    def _list(self) -> None:
        if self._observer is not None:
            self._observer.relist(self.resource)
        objects: list[Any] = []
        token: str | None = None
        while True:
            try:
                page = self._client.list(self._namespace, label_selector=self._labels,
                                         field_selector=self._fields,
                                         limit=self._options.page_size, continue_=token)
            except APIError as exc:
                if token is None or not expired(exc):
                    raise
                objects, token = [], None  # the continue token expired: list afresh
                continue
            objects.extend(self._sink.prepare(_items(page)))
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                break
        version = str((page.get("metadata") or {}).get("resourceVersion", ""))
        self._sink.replace(objects, version)
        if self._before_loss and _older(version, self._before_loss):
            log.warning("%s relisted at resourceVersion %s, older than the %s seen before: "
                        "the server's history was reset (a restore, or a restart without its "
                        "storage)", self.resource, version, self._before_loss)
        self.resource_version, self._before_loss = version, ""
        self._verify, self._short_watches = False, 0
        with self._lock:
            self._lost = None
        self._succeeded()

    def _watch(self) -> None:
        options = self._options
        timeout = self._random.randint(options.min_watch_timeout, options.max_watch_timeout)
        if self._observer is not None:
            self._observer.watch_restart(self.resource)
        stream = self._client.watch(self._namespace, resource_version=self.resource_version,
                                    timeout_seconds=timeout, allow_bookmarks=True,
                                    label_selector=self._labels, field_selector=self._fields,
                                    read_timeout=timeout + options.read_grace)
        with self._lock:
            self._stream = stream
        if self._stop.is_set():  # stopped while connecting: stop() found no stream to close
            stream.close()
            return
        self._succeeded()
        opened, delivered = self._clock.monotonic(), False
        try:
            for event in stream:
                if self._stop.is_set():
                    return
                self._handle(event)
                delivered = True
        except TransportError as exc:
            if self._stop.is_set():
                return
            if delivered or self._clock.monotonic() - opened >= options.min_healthy_watch:
                raise _HealthyFailure(exc) from exc
            raise
        except Exception:
            stream.close()  # an event we could not take in: end the stream now, not at GC
            raise
        finally:
            with self._lock:
                self._stream = None
        if self._stop.is_set() or delivered:
            self._short_watches = 0
            return
        if self._clock.monotonic() - opened < options.min_healthy_watch:
            self._short_watches += 1
            why = (f"the server ended {self._short_watches} watches from "
                   f"{self.resource_version} at once, empty")
            if self._short_watches >= options.short_watches_before_relist:
                self._lose(why)
            raise _ShortWatch(f"very short watch of {self.resource}: {why}")
        # A whole watch without an event or a BOOKMARK: a server that has not reached our
        # version says nothing either, so ask before watching from it again.
        self._short_watches = 0
        self._verify = True

    def _handle(self, event: dict[str, Any]) -> None:
        event_type = event.get("type", "")
        obj = event.get("object") or {}
        if self._observer is not None:
            self._observer.event(self.resource, event_type)
        if event_type == "ERROR":
            raise error_from(int(obj.get("code", 500)), orjson.dumps(obj), {})
        version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        if version and _older(version, self.resource_version):
            raise _HistoryReset(f"history reset: a {event_type} event at {version} after "
                                f"{self.resource_version}")
        if event_type != "BOOKMARK":
            self._sink.apply(event_type, obj)
        if version:
            self.resource_version = version


def _items(page: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Items of a list page; lists omit kind/apiVersion on items, so restore them."""
    kind = str(page.get("kind", ""))
    kind = kind[:-4] if kind.endswith("List") else kind
    api_version = page.get("apiVersion")
    for item in page.get("items") or ():
        item.setdefault("kind", kind)
        item.setdefault("apiVersion", api_version)
        yield item
