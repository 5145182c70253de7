"""Fault injection: make the local API server misbehave the way real clusters do, on demand.

Faults are rules consulted for every resource request (discovery and health are spared, as a
real outage rarely takes those alone): fail a number or a fraction of matching requests with
500, 503, 429 + Retry-After, or 403 (a role that lacks the verb); add latency; pause (hold every
request until resumed); drop open watches now or periodically; "restart" (forget the event
history so older resourceVersions get 410 Gone, drop every connection, optionally stop
listening for a while); "restore from a backup" (:meth:`Faults.backup`, then
:meth:`Faults.restore`: the objects and the revision counter as the backup saw them, so every
resourceVersion a client saw since is one the server has not reached). Randomness comes from
one seeded generator, so a test replays the same faults.

All methods run on the server's loop thread; :class:`~envtest.LocalAPIServer`
offers a thread-safe facade and the admin endpoint (``admin.py``) an HTTP one.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from envtest import errors
from envtest.cluster import Cluster
from envtest.http.protocol import Answer, Response
from envtest.storage.store import Backup
from envtest.storage.watch import WatchStream

log = logging.getLogger(__name__)

Run: TypeAlias = Callable[[], "Answer | asyncio.Future[Answer]"]
"""Serves a request; it may answer later (the Service proxy waits for the pod's answer)."""

_REASONS = {500: "InternalError", 503: "ServiceUnavailable", 429: "TooManyRequests",
            403: "Forbidden"}
_MESSAGES = {403: "injected fault: forbidden",
             500: "injected fault: internal error",
             503: "injected fault: the server is currently unable to handle the request",
             429: "injected fault: too many requests, please try again later"}


@dataclass
class FailRule:
    """Fail matching requests with ``code``: the next ``count`` of them, or a ``fraction``.

    ``verbs`` and ``resources`` narrow the rule: a resource matches by plural, group-resource
    or ``plural/subresource`` (``serviceaccounts/token``, ``pods/status``), so a rule for
    ``pods`` also fails writes to ``pods/status``, one for ``pods/status`` only those."""

    code: int = 500
    count: int | None = None
    fraction: float = 1.0
    verbs: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    retry_after: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "count": self.count, "fraction": self.fraction,
                "verbs": sorted(self.verbs), "resources": sorted(self.resources),
                "retryAfter": self.retry_after}


@dataclass
class LatencyRule:
    seconds: float
    verbs: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()


def _matches(verbs: frozenset[str], resources: frozenset[str], verb: str,
             names: Collection[str]) -> bool:
    return (not verbs or verb in verbs) and (not resources or any(n in resources for n in names))


@dataclass
class Faults:
    """The active faults of one server."""

    cluster: Cluster
    seed: int = 0
    reopen: Callable[[float], Coroutine[Any, Any, None]] | None = None
    """Closes the listening socket for the given seconds (set by the server)."""
    failures: list[FailRule] = field(default_factory=list)
    latencies: list[LatencyRule] = field(default_factory=list)
    paused: bool = False
    _held: list[tuple[asyncio.Future[Answer], Run]] = field(default_factory=list)
    _drop_timer: asyncio.TimerHandle | None = None
    _random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    # configuration -----------------------------------------------------------------------------
    def fail(self, *, code: int = 500, count: int | None = None, fraction: float = 1.0,
             verbs: Collection[str] = (), resources: Collection[str] = (),
             retry_after: int | None = None) -> FailRule:
        if code not in _REASONS:
            raise ValueError(f"code must be one of {sorted(_REASONS)}, not {code}")
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        if code == 429 and retry_after is None:
            retry_after = 1
        rule = FailRule(code, count, fraction, frozenset(verbs), frozenset(resources),
                        retry_after)
        self.failures.append(rule)
        return rule

    def add_latency(self, seconds: float, *, verbs: Collection[str] = (),
                    resources: Collection[str] = ()) -> None:
        self.latencies.append(LatencyRule(seconds, frozenset(verbs), frozenset(resources)))

    def clear(self) -> None:
        """Remove every fault (and resume a paused server)."""
        self.failures.clear()
        self.latencies.clear()
        self.drop_watches_every(None)
        self.resume()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        held, self._held = self._held, []
        for future, run in held:
            _settle(future, run)

    def drop_watches(self) -> int:
        """Cut every open watch connection now; returns how many were cut."""
        streams = [s for s in self.cluster.store.subscribers() if isinstance(s, WatchStream)]
        for stream in streams:
            stream.abort()
        return len(streams)

    def drop_watches_every(self, seconds: float | None) -> None:
        if self._drop_timer is not None:
            self._drop_timer.cancel()
            self._drop_timer = None
        if seconds:
            def tick() -> None:
                self.drop_watches()
                self._drop_timer = self.cluster.loop.call_later(seconds, tick)
            self._drop_timer = self.cluster.loop.call_later(seconds, tick)

    def restart(self, *, downtime: float = 0.0) -> None:
        """Act like a restarted kube-apiserver: history gone, watches dropped; with a
        ``downtime``, the listener also closes (every connection dropped, new ones refused)
        for that many seconds."""
        self.cluster.store.forget_history()
        self.drop_watches()
        if downtime > 0 and self.reopen is not None:
            self.cluster.loop.create_task(self.reopen(downtime))

    def backup(self) -> Backup:
        """The objects and the revision as they are now, for :meth:`restore`."""
        return self.cluster.store.backup()

    def restore(self, backup: Backup, *, downtime: float = 0.0) -> None:
        """Act like a kube-apiserver whose etcd was restored from ``backup``: objects and
        revision as they were then (kinds stay as they are now), history gone, watches
        dropped; with a ``downtime``, connections refused for that long as well."""
        self.cluster.store.restore(backup)
        self.drop_watches()
        if downtime > 0 and self.reopen is not None:
            self.cluster.loop.create_task(self.reopen(downtime))

    def state(self) -> dict[str, Any]:
        """The active faults, and ``held``: the requests a pause holds until :meth:`resume`."""
        return {"paused": self.paused, "failures": [r.as_dict() for r in self.failures],
                "latencies": [{"seconds": r.seconds, "verbs": sorted(r.verbs),
                               "resources": sorted(r.resources)} for r in self.latencies],
                "dropWatchesEvery": self._drop_timer is not None,
                "held": len(self._held)}

    # the request path --------------------------------------------------------------------------
    def hold(self, run: Callable[[], Answer]) -> Answer | asyncio.Future[Answer]:
        """Answer a non-resource request (discovery): only a pause affects it."""
        if not self.paused:
            return run()
        future: asyncio.Future[Answer] = self.cluster.loop.create_future()
        self._held.append((future, run))
        return future

    def intercept(self, verb: str, names: Collection[str],
                  run: Run) -> Answer | asyncio.Future[Answer]:
        """Answer a resource request through the active faults."""
        failure = self._failure(verb, names)
        if failure is not None:
            return failure
        delay = sum(r.seconds for r in self.latencies
                    if _matches(r.verbs, r.resources, verb, names))
        if not delay and not self.paused:
            return run()
        future: asyncio.Future[Answer] = self.cluster.loop.create_future()

        def later() -> None:
            if self.paused:
                self._held.append((future, run))
            else:
                _settle(future, run)

        if delay:
            self.cluster.loop.call_later(delay, later)
        else:
            later()
        return future

    def _failure(self, verb: str, names: Collection[str]) -> Response | None:
        for rule in list(self.failures):
            if not _matches(rule.verbs, rule.resources, verb, names):
                continue
            if rule.fraction < 1.0 and self._random.random() >= rule.fraction:
                continue
            if rule.count is not None:
                rule.count -= 1
                if rule.count <= 0:
                    self.failures.remove(rule)
            return errors.error_response(errors.APIError(rule.code, _REASONS[rule.code],
                                                  _MESSAGES[rule.code],
                                                  retry_after=rule.retry_after))
        return None


def _settle(future: asyncio.Future[Answer], run: Run) -> None:
    """Answer ``future`` with what ``run`` answers, now or when its own answer comes."""
    if future.done():
        return
    answer = run()
    if not isinstance(answer, asyncio.Future):
        future.set_result(answer)
        return

    def relay(done: asyncio.Future[Answer]) -> None:
        if future.done():
            return
        if done.cancelled():
            future.cancel()
        elif (exc := done.exception()) is not None:
            future.set_exception(exc)
        else:
            future.set_result(done.result())

    answer.add_done_callback(relay)


class FaultControl:
    """Thread-safe access to a server's :class:`Faults` from test code (any thread)."""

    def __init__(self, call: Callable[[Callable[[], Any]], Any]) -> None:
        self._call = call
        self._faults: Faults | None = None

    def bind(self, faults: Faults) -> None:
        self._faults = faults

    def _run(self, fn: Callable[[Faults], Any]) -> Any:
        faults = self._faults
        assert faults is not None, "the server is not running"
        return self._call(lambda: fn(faults))

    def fail(self, *, code: int = 500, count: int | None = None, fraction: float = 1.0,
             verbs: Collection[str] = (), resources: Collection[str] = (),
             retry_after: int | None = None) -> None:
        """Fail the next ``count`` (or a ``fraction`` of) matching requests with ``code``."""
        self._run(lambda f: f.fail(code=code, count=count, fraction=fraction, verbs=verbs,
                                   resources=resources, retry_after=retry_after))

    def add_latency(self, seconds: float, *, verbs: Collection[str] = (),
                    resources: Collection[str] = ()) -> None:
        self._run(lambda f: f.add_latency(seconds, verbs=verbs, resources=resources))

    def drop_watches(self) -> int:
        return int(self._run(lambda f: f.drop_watches()))

    def drop_watches_every(self, seconds: float | None) -> None:
        self._run(lambda f: f.drop_watches_every(seconds))

    def restart(self, *, downtime: float = 0.0) -> None:
        self._run(lambda f: f.restart(downtime=downtime))

    def backup(self) -> Backup:
        """A backup of the store, for :meth:`restore`."""
        backup: Backup = self._run(lambda f: f.backup())
        return backup

    def restore(self, backup: Backup, *, downtime: float = 0.0) -> None:
        """Restore the store from ``backup`` (see :meth:`Faults.restore`)."""
        self._run(lambda f: f.restore(backup, downtime=downtime))

    def pause(self) -> None:
        self._run(lambda f: f.pause())

    def resume(self) -> None:
        self._run(lambda f: f.resume())

    def clear(self) -> None:
        self._run(lambda f: f.clear())

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._run(lambda f: f.state())
        return result
