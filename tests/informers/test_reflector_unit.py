"""The reflector's protocol corners against a scripted client and a fake clock (no server).

Each test scripts the answers of the reflector's list and watch calls in the order it makes
them, runs the reflector on a thread, and steps a :class:`FakeClock` through its backoff waits,
so timing is asserted exactly without sleeping.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from ambient_ctrl.testing import eventually
from foundation.clock import FakeClock
from informers.errors import TransportError, error_from
from informers.rawjson import RawObject
from informers.reflector import Reflector, ReflectorOptions
from informers.resource import CONFIGMAPS

OPTIONS = ReflectorOptions(min_watch_timeout=300, max_watch_timeout=300)
"""The defaults that matter here: backoff 0.8 s doubling to 30 s, a watch worked after 1 s."""

LONG_WATCH = 31.0
"""Seconds a watch stays open in the tests of a long healthy stretch."""


# the script ------------------------------------------------------------------------------------
def cm(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": rv}}


def page(rv: str, *names: str, cont: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": rv}
    if cont:
        meta["continue"] = cont
    return {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": meta,
            "items": [cm(name, str(i + 1)) for i, name in enumerate(names)]}


def event(event_type: str, name: str, rv: str) -> dict[str, Any]:
    return {"type": event_type, "object": cm(name, rv)}


def bookmark(rv: str) -> dict[str, Any]:
    return {"type": "BOOKMARK", "object": {"kind": "ConfigMap", "apiVersion": "v1",
                                           "metadata": {"resourceVersion": rv}}}


def gone() -> Exception:
    return error_from(410, b'{"kind":"Status","code":410,"reason":"Expired"}', {})


def server_error(code: int = 500, retry_after: str | None = None) -> Exception:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return error_from(code, b"", headers)


TOO_LARGE = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 504,
             "reason": "Timeout", "message": "Timeout: Too large resource version: 40, current: 7",
             "details": {"retryAfterSeconds": 1, "causes": [
                 {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]}}
"""kube-apiserver's answer for a version it has not reached (NewTooLargeResourceVersionError)."""


def too_large() -> Exception:
    return error_from(504, orjson.dumps(TOO_LARGE), {"Retry-After": "1"})


@dataclass
class List:
    """The answer to a list call: a page or an error."""

    answer: dict[str, Any] | Exception


def probe(rv: str) -> List:
    """The answer to the reflector's check of its resourceVersion (a one-item list not older
    than it): the server is at ``rv``."""
    return List(page(rv))


@dataclass
class Watch:
    """The answer to a watch call: an error, or a stream of ``events`` that then ends normally,
    raises ``then``, or (with ``gate``) blocks until the gate opens before doing so."""

    events: list[dict[str, Any]] = field(default_factory=list)
    then: Exception | None = None
    error: Exception | None = None
    gate: threading.Event | None = None


class _Stream:
    def __init__(self, script: Watch, over: threading.Event) -> None:
        self._script = script
        self._over = over
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from self._script.events
        gate = self._script.gate
        while gate is not None and not gate.is_set():
            if self._closed.is_set() or self._over.is_set():
                raise TransportError("stream closed")
            gate.wait(0.01)
        if self._script.then is not None:
            raise self._script.then

    def object_bytes(self, event: dict[str, Any]) -> RawObject | None:
        return None  # scripted events have no bytes as sent: the store serialises them

    def close(self) -> None:
        self._closed.set()


class ScriptedClient:
    """Stands in for a ResourceClient: answers calls from a script, records their arguments.

    When the script runs out, a call blocks until the test ends (a watch with no events).
    """

    resource = CONFIGMAPS

    def __init__(self, *script: List | Watch) -> None:
        self._script = deque(script)
        self._lock = threading.Lock()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.mismatch: str | None = None
        self.over = threading.Event()

    def _next(self, verb: str, kwargs: dict[str, Any]) -> List | Watch | None:
        with self._lock:
            self.calls.append((verb, kwargs))
            if not self._script:
                return None
            step = self._script.popleft()
            if isinstance(step, List) != (verb == "list"):
                self.mismatch = f"call {len(self.calls)} was a {verb}, the script had {step}"
                return None
            return step

    def list(self, namespace: str | None = None, **kwargs: Any) -> dict[str, Any]:
        step = self._next("list", kwargs)
        if not isinstance(step, List):
            self.over.wait(10)
            raise TransportError("the test is over")
        if isinstance(step.answer, Exception):
            raise step.answer
        return {**step.answer, "items": [dict(i) for i in step.answer["items"]]}

    def watch(self, namespace: str | None = None, **kwargs: Any) -> _Stream:
        step = self._next("watch", kwargs)
        if not isinstance(step, Watch):
            step = Watch(gate=threading.Event())  # silent until the test ends
        if step.error is not None:
            raise step.error
        return _Stream(step, self.over)

    def verbs(self) -> list[str]:
        with self._lock:
            return [verb for verb, _ in self.calls]


# the harness -----------------------------------------------------------------------------------
class Sink:
    def __init__(self) -> None:
        self.replaced: list[tuple[list[str], str]] = []
        self.prepared: list[list[str]] = []
        self.applied: list[tuple[str, str, str]] = []
        self.drops_managed_fields = False

    def prepare(self, objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        page = list(objects)
        self.prepared.append([o["metadata"]["name"] for o in page])
        return page

    def replace(self, objects: list[dict[str, Any]], resource_version: str) -> None:
        self.replaced.append(([o["metadata"]["name"] for o in objects], resource_version))

    def apply(self, event_type: str, obj: dict[str, Any], raw: bytes | None = None) -> None:
        meta = obj["metadata"]
        self.applied.append((event_type, meta["name"], meta["resourceVersion"]))


class Run:
    """A reflector running on its own thread against a scripted client and a fake clock."""

    def __init__(self, client: ScriptedClient, options: ReflectorOptions = OPTIONS) -> None:
        self.client = client
        self.clock = FakeClock()
        self.sink = Sink()
        self.reflector = Reflector(client, self.sink, options=options,  # type: ignore[arg-type]
                                   clock=self.clock, seed=7)
        self._waits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.reflector.run, args=(self._stop,),
                                        name="test-reflector")

    def __enter__(self) -> Run:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self.reflector.stop()
        self.client.over.set()
        self._thread.join(10)
        assert not self._thread.is_alive(), "the reflector did not stop"
        assert self.client.mismatch is None, self.client.mismatch

    def next_wait(self) -> float:
        """Wait for the reflector's next backoff wait to begin, step past it, return its length."""
        self._waits += 1
        number = self._waits
        eventually(lambda: len(self.clock.requested) >= number and self.clock.waiters == 1,
                   timeout=5, message=f"the reflector never waited a {number}th time")
        seconds = self.clock.requested[number - 1]
        self.clock.step(seconds)
        return seconds

    def calls(self, count: int) -> list[tuple[str, dict[str, Any]]]:
        """The first ``count`` calls, once they have been made."""
        eventually(lambda: len(self.client.calls) >= count, timeout=5,
                   message=f"expected {count} calls, saw {self.client.verbs()}")
        return self.client.calls[:count]


def backoff_bounds(failure: int) -> tuple[float, float]:
    """0.8 s doubling per consecutive failure, plus up to 0.8 s of jitter, capped at 30 s."""
    base = 0.8 * 2 ** (failure - 1)
    return min(base, 30.0), min(base + 0.8, 30.0)


# backoff ---------------------------------------------------------------------------------------
def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    failures = 9
    client = ScriptedClient(*[List(server_error(503)) for _ in range(failures)],
                            List(page("10", "a")))
    with Run(client) as run:
        waits = [run.next_wait() for _ in range(failures)]
        eventually(lambda: run.sink.replaced == [(["a"], "10")])
    for n, seconds in enumerate(waits, start=1):
        low, high = backoff_bounds(n)
        assert low <= seconds <= high, (n, seconds, waits)
    assert waits[-3:] == [30.0, 30.0, 30.0]  # the cap holds whatever the jitter
    assert any(seconds != backoff_bounds(n)[0] for n, seconds in enumerate(waits[:5], start=1))
    assert client.verbs() == ["list"] * (failures + 1) + ["watch"]


@pytest.mark.parametrize(("error", "low", "high"), [
    (server_error(429, retry_after="20"), 20.0, 20.0),
    (server_error(503, retry_after="20"), 20.0, 20.0),
    (server_error(429, retry_after="0"), 0.8, 1.6),
], ids=["429-longer-retry-after", "503-longer-retry-after", "backoff-longer-than-retry-after"])
def test_retry_after_is_honoured_when_longer(error: Exception, low: float, high: float) -> None:
    client = ScriptedClient(List(error), List(page("10")))
    with Run(client) as run:
        seconds = run.next_wait()
        run.calls(3)
    assert low <= seconds <= high
    assert client.verbs() == ["list", "list", "watch"]


def _failing_start() -> list[List]:
    return [List(server_error(500)) for _ in range(3)] + [List(page("10", "a"))]


RESET = TransportError("connection reset")


@pytest.mark.parametrize(("ends", "then", "verbs", "resumed_from"), [
    ("with-an-error", [probe("11")], ["watch", "list", "watch"], "11"),
    ("normally", [Watch(error=RESET), probe("11")], ["watch", "watch", "list", "watch"], "11"),
    ("in-a-failed-relist", [List(server_error(500)), List(page("40", "a"))],
     ["watch", "list", "list", "watch"], "40"),
], ids=lambda v: v if isinstance(v, str) and "-" in v else "")
def test_backoff_restarts_after_a_healthy_watch(ends: str, then: list[List | Watch],
                                                verbs: list[str], resumed_from: str) -> None:
    """However the healthy stretch ends (a broken stream, then a check of the version; a
    normal end, then a failed reconnect and a check; a 410, then a failed relist), the next
    failure starts the backoff over."""
    gate = threading.Event()
    last = {"with-an-error": RESET, "normally": None, "in-a-failed-relist": gone()}[ends]
    healthy = Watch([event("MODIFIED", "a", "11")], gate=gate, then=last)
    client = ScriptedClient(*_failing_start(), healthy, *then, Watch(error=RESET))
    with Run(client) as run:
        startup = [run.next_wait() for _ in range(3)]
        run.calls(5)  # the healthy watch is open
        run.clock.step(LONG_WATCH)
        gate.set()
        after = [run.next_wait() for _ in range(2)]
        calls = run.calls(4 + len(verbs))
    for n, seconds in enumerate(startup, start=1):
        low, high = backoff_bounds(n)
        assert low <= seconds <= high
    # Without the reset, the next wait would be the fourth of a series: 6.4 s or more.
    assert after[0] <= OPTIONS.backoff_initial, after
    low, high = backoff_bounds(1)
    assert low <= after[1] <= high, after
    assert [verb for verb, _ in calls[4:]] == verbs
    assert calls[-1][1]["resource_version"] == resumed_from


def test_a_watch_failing_quickly_keeps_backing_off() -> None:
    broken = TransportError("connection reset")
    client = ScriptedClient(*_failing_start(), Watch(error=broken))
    with Run(client) as run:
        waits = [run.next_wait() for _ in range(4)]
    low, high = backoff_bounds(4)
    assert low <= waits[3] <= high  # the failures are consecutive: no healthy stretch between


# resourceVersion handling ----------------------------------------------------------------------
def test_watch_ending_normally_resumes_without_relisting() -> None:
    client = ScriptedClient(List(page("10", "a", "b")),
                            Watch([event("ADDED", "c", "11"), event("MODIFIED", "a", "12")]))
    with Run(client) as run:
        calls = run.calls(3)
    assert [verb for verb, _ in calls] == ["list", "watch", "watch"]
    assert [kw["resource_version"] for _, kw in calls[1:]] == ["10", "12"]
    assert run.sink.replaced == [(["a", "b"], "10")]
    assert run.sink.applied == [("ADDED", "c", "11"), ("MODIFIED", "a", "12")]
    assert run.clock.requested == []  # no backoff for a normal end


def test_bookmark_only_advances_the_resource_version() -> None:
    client = ScriptedClient(List(page("10", "a")), Watch([bookmark("20")]))
    with Run(client) as run:
        calls = run.calls(3)
        assert run.reflector.resource_version == "20"
    assert calls[2][1]["resource_version"] == "20"
    assert calls[1][1]["allow_bookmarks"] is True
    assert run.sink.applied == []
    assert run.sink.replaced == [(["a"], "10")]


@pytest.mark.parametrize("how", ["error-event", "http-410"])
def test_expired_resource_version_relists_from_scratch(how: str) -> None:
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410,
              "reason": "Expired", "message": "too old resource version: 11 (40)"}
    expired = (Watch([event("MODIFIED", "a", "11"), {"type": "ERROR", "object": status}])
               if how == "error-event" else Watch(error=gone()))
    client = ScriptedClient(List(page("10", "a", "gone-meanwhile")), expired,
                            List(page("40", "a", "b")))
    with Run(client) as run:
        calls = run.calls(4)
    assert [verb for verb, _ in calls] == ["list", "watch", "list", "watch"]
    relist = calls[2][1]
    assert relist.get("resource_version") in (None, "")  # "" or unset: the latest state
    assert relist["continue_"] is None
    assert calls[3][1]["resource_version"] == "40"
    assert run.sink.replaced[-1] == (["a", "b"], "40")
    assert run.clock.requested == []  # a 410 is not a failure: relist at once


def test_other_error_events_back_off_and_resume_from_the_same_version() -> None:
    status = {"kind": "Status", "code": 500, "reason": "InternalError", "message": "boom"}
    client = ScriptedClient(List(page("10", "a")),
                            Watch([event("MODIFIED", "a", "11"), {"type": "ERROR",
                                                                  "object": status}]),
                            probe("11"))
    with Run(client) as run:
        seconds = run.next_wait()
        calls = run.calls(4)
    # After a failure, the version is checked first: a one-item list not older than it.
    assert [verb for verb, _ in calls] == ["list", "watch", "list", "watch"]
    check = calls[2][1]
    assert (check["resource_version"], check["resource_version_match"], check["limit"]) == (
        "11", "NotOlderThan", 1)
    assert calls[3][1]["resource_version"] == "11"
    assert run.sink.replaced == [(["a"], "10")]  # the check is no relist
    low, high = backoff_bounds(1)
    assert low <= seconds <= high


@pytest.mark.parametrize("how", ["error-event", "http-504", "check"])
def test_a_too_large_resource_version_relists_from_scratch(how: str) -> None:
    """Issue 15 item 2: a server restored from a backup (or restarted without its storage)
    has not reached our version. kube-apiserver says so with 504 "Too large resource version"
    — in a watch-list's stream, as a list's answer, or to our check after a broken stream —
    and the reflector relists from scratch instead of waiting for a version that may never
    come."""
    broken = TransportError("watch stream broke: connection reset")
    first = {"error-event": [Watch([{"type": "ERROR", "object": TOO_LARGE}])],
             "http-504": [Watch(error=too_large())],
             "check": [Watch([event("ADDED", "b", "40")], then=broken), List(too_large())],
             }[how]
    client = ScriptedClient(List(page("30", "a", "gone-meanwhile")), *first,
                            List(page("7", "a", "new")))
    with Run(client) as run:
        if how == "check":
            run.next_wait()  # the jitter after a stream that worked
        calls = run.calls(3 + len(first))
        eventually(lambda: run.reflector.health.lost_version is None, timeout=5)
    relist = calls[-2][1]
    assert relist.get("resource_version") in (None, "") and relist["continue_"] is None
    assert calls[-1][0] == "watch" and calls[-1][1]["resource_version"] == "7"
    assert run.sink.replaced[-1] == (["a", "new"], "7")
    if how != "check":
        assert run.clock.requested == []  # not a failure: relist at once


@pytest.mark.parametrize("how", ["event", "bookmark", "check"])
def test_a_history_reset_relists_from_scratch(how: str) -> None:
    """An event (or BOOKMARK) older than one already seen, or a check answered by a server
    behind our version: the history is not the one we followed (a restart that lost etcd)."""
    broken = TransportError("watch stream broke: connection reset")
    first = {"event": [Watch([event("MODIFIED", "a", "31"), event("ADDED", "x", "5")])],
             "bookmark": [Watch([bookmark("31"), bookmark("5")])],
             "check": [Watch([event("MODIFIED", "a", "31")], then=broken), probe("6")],
             }[how]
    client = ScriptedClient(List(page("30", "a")), *first, List(page("8", "b")))
    with Run(client) as run:
        if how == "check":
            run.next_wait()
        calls = run.calls(3 + len(first))
    assert [verb for verb, _ in calls[-2:]] == ["list", "watch"]
    assert calls[-1][1]["resource_version"] == "8"
    assert run.sink.replaced[-1] == (["b"], "8")
    assert ("ADDED", "x", "5") not in run.sink.applied  # the stale event is not taken in


def test_watches_the_server_ends_at_once_and_empty_back_off_then_relist() -> None:
    """client-go's "very short watch": a watch ended normally, at once, with nothing — a
    server that will not watch from our version. Each is a failure (no hot loop); the second
    in a row relists."""
    client = ScriptedClient(List(page("30", "a")), Watch(), probe("30"), Watch(),
                            List(page("4", "b")))
    with Run(client) as run:
        waits = [run.next_wait() for _ in range(2)]
        calls = run.calls(6)
    assert [verb for verb, _ in calls] == ["list", "watch", "list", "watch", "list", "watch"]
    assert calls[4][1].get("resource_version") in (None, "")  # the relist, from scratch
    assert calls[5][1]["resource_version"] == "4"
    for n, seconds in enumerate(waits, start=1):
        low, high = backoff_bounds(n)
        assert low <= seconds <= high, waits


def test_a_whole_watch_without_a_bookmark_checks_the_version_before_the_next() -> None:
    """kube-apiserver accepts a watch from a version it has not reached and says nothing, not
    even a BOOKMARK: after a whole silent watch, the version is checked before watching again
    (and a watch that delivered anything resumes without a check)."""
    gate = threading.Event()
    client = ScriptedClient(List(page("30", "a")), Watch(gate=gate), List(too_large()),
                            List(page("3")))
    with Run(client) as run:
        run.calls(2)  # the silent watch is open
        run.clock.step(OPTIONS.min_healthy_watch + 1)
        gate.set()  # it ends normally, having said nothing
        calls = run.calls(5)
    assert [verb for verb, _ in calls] == ["list", "watch", "list", "list", "watch"]
    assert calls[2][1]["resource_version_match"] == "NotOlderThan"
    assert calls[4][1]["resource_version"] == "3"
    assert run.clock.requested == []


def test_health_says_the_version_is_lost_until_the_relist_completes() -> None:
    """``lost_version`` (the manager's /readyz) is set from the moment the reflector learns its
    version is not the server's until its relist has replaced the store."""
    client = ScriptedClient(List(page("30", "a")), Watch(error=too_large()),
                            List(server_error(503)), List(page("3", "a")))
    run = Run(client)
    assert run.reflector.health.lost_version is None  # never listed: not "lost"
    with run:
        eventually(lambda: run.clock.waiters == 1, timeout=5)  # the relist failed: backing off
        lost = run.reflector.health.lost_version
        run.next_wait()
        run.calls(5)
        eventually(lambda: run.reflector.health.lost_version is None, timeout=5)
    assert lost is not None and "too large" in lost.lower()


def test_expired_continue_token_restarts_the_paginated_list() -> None:
    client = ScriptedClient(List(page("10", "a", "b", cont="t1")), List(gone()),
                            List(page("12", "a", "b", cont="t2")), List(page("12", "c")))
    options = ReflectorOptions(page_size=2, min_watch_timeout=300, max_watch_timeout=300)
    with Run(client, options) as run:
        calls = run.calls(5)
    assert [verb for verb, _ in calls] == ["list"] * 4 + ["watch"]
    assert [kw["continue_"] for _, kw in calls[:4]] == [None, "t1", None, "t2"]
    assert {kw["limit"] for _, kw in calls[:4]} == {2}
    # Only the complete, consistent second listing reaches the sink, each page prepared as it
    # came (not held as parsed objects until the last one); list items get their kind back.
    assert run.sink.replaced == [(["a", "b", "c"], "12")]
    assert run.sink.prepared == [["a", "b"], ["a", "b"], ["c"]]
    assert calls[4][1]["resource_version"] == "12"
    assert run.clock.requested == []


def test_gone_on_the_first_page_is_retried_with_backoff() -> None:
    client = ScriptedClient(List(gone()), List(page("10", "a")))
    with Run(client) as run:
        seconds = run.next_wait()
        run.calls(3)
    low, high = backoff_bounds(1)
    assert low <= seconds <= high
    assert run.sink.replaced == [(["a"], "10")]


# streams that break after they worked ------------------------------------------------------------
def test_streams_cut_after_delivering_events_resume_promptly_without_relisting() -> None:
    """Regression (chaos run: watches dropped every 2 s): each cut counted as one more failure
    in a series, so the backoff reached its 30 s cap and the cache went blind for half a
    minute at a time. A stream that delivered something worked: resume after a short jitter,
    from the last resourceVersion."""
    cut = TransportError("watch stream broke: Response ended prematurely")
    streams = [step for n in range(6) for step in (
        Watch([event("MODIFIED", "a", str(21 + 2 * n)), bookmark(str(22 + 2 * n))], then=cut),
        probe(str(22 + 2 * n)))]
    client = ScriptedClient(List(page("10", "a")), *streams)
    with Run(client) as run:
        waits = [run.next_wait() for _ in range(6)]
        calls = run.calls(14)
    assert all(seconds <= OPTIONS.backoff_initial for seconds in waits), waits
    assert [verb for verb, _ in calls] == ["list"] + ["watch", "list"] * 6 + ["watch"]
    # Each check asks from the last version seen, and each watch resumes from it.
    assert [kw["resource_version"] for _, kw in calls[2:]] == [
        str(22 + 2 * (n // 2)) for n in range(12)]
    assert len(run.sink.replaced) == 1


def test_a_silent_stream_cut_after_min_healthy_watch_resumes_promptly() -> None:
    gate = threading.Event()
    cut = TransportError("watch stream broke: Response ended prematurely")
    client = ScriptedClient(List(page("10", "a")), Watch(gate=gate, then=cut), probe("10"),
                            Watch(error=TransportError("connection refused")))
    with Run(client) as run:
        run.calls(2)  # the first watch is open
        run.clock.step(OPTIONS.min_healthy_watch)
        gate.set()
        first, second = run.next_wait(), run.next_wait()
        calls = run.calls(4)
    assert first <= OPTIONS.backoff_initial
    low, high = backoff_bounds(1)  # a new series: the refused reconnect is its first failure
    assert low <= second <= high
    assert [verb for verb, _ in calls] == ["list", "watch", "list", "watch"]


def test_a_stream_cut_at_once_and_silent_is_a_failure() -> None:
    cut = TransportError("watch stream broke: Response ended prematurely")
    client = ScriptedClient(List(page("10", "a")), Watch(then=cut), probe("10"),
                            Watch(then=cut), probe("10"), Watch(then=cut))
    with Run(client) as run:
        waits = [run.next_wait() for _ in range(3)]
    for n, seconds in enumerate(waits, start=1):
        low, high = backoff_bounds(n)
        assert low <= seconds <= high, waits


def test_retry_after_is_honoured_after_a_healthy_stretch() -> None:
    """Regression: the failure that ends a healthy stretch waited a random 0-0.8 s even when
    the server answered 429 with Retry-After: 20."""
    gate = threading.Event()
    client = ScriptedClient(List(page("10", "a")),
                            Watch([event("MODIFIED", "a", "11")], gate=gate),
                            Watch(error=server_error(429, retry_after="20")), probe("11"))
    with Run(client) as run:
        run.calls(2)  # the healthy watch is open
        run.clock.step(LONG_WATCH)
        gate.set()  # it ends normally; reconnecting is answered 429, Retry-After: 20
        seconds = run.next_wait()
        calls = run.calls(5)
    assert seconds == 20.0
    assert [verb for verb, _ in calls] == ["list", "watch", "watch", "list", "watch"]
    assert calls[4][1]["resource_version"] == "11"


# anything else that goes wrong -----------------------------------------------------------------
def _not_json() -> Exception:
    try:
        orjson.loads(b"<html>502 Bad Gateway</html>")
    except orjson.JSONDecodeError as exc:
        return exc
    raise AssertionError("unreachable")


@pytest.mark.parametrize("script", [
    [List(_not_json()), List(page("12", "a"))],
    [List(page("10", "a")), Watch([{"type": "ADDED", "object": "not an object"}]),
     List(page("12", "a"))],
    [List(page("10", "a")), Watch([event("MODIFIED", "a", "11")], then=_not_json()),
     List(page("12", "a"))],
], ids=["list-body-not-json", "malformed-event", "event-line-not-json"])
def test_unexpected_errors_back_off_and_relist_instead_of_killing_the_reflector(
        script: list[List | Watch], caplog: pytest.LogCaptureFixture) -> None:
    """Regression: an exception that is not an API or transport error ended the reflector's
    thread for good, and the informer stayed "synced" on a cache nobody updated any more."""
    client = ScriptedClient(*script)
    with Run(client) as run:
        eventually(lambda: run.clock.waiters == 1, timeout=5)  # backing off
        failing = run.reflector.health
        seconds = run.next_wait()
        calls = run.calls(len(script) + 1)
        eventually(lambda: run.reflector.health.consecutive_failures == 0, timeout=5)
        healthy = run.reflector.health
    low, high = backoff_bounds(1)
    assert low <= seconds <= high
    # It relists (the store may lack what failed) and then watches from the new list.
    assert [verb for verb, _ in calls[-2:]] == ["list", "watch"]
    assert calls[-1][1]["resource_version"] == "12"
    assert run.sink.replaced[-1] == (["a"], "12")
    assert failing.consecutive_failures == 1 and failing.failing_since == 1000.0
    assert failing.last_error and failing.failing_for(1000.0 + 5) == 5
    assert healthy.failing_since is None and healthy.last_success is not None
    assert any(r.levelname == "ERROR" and r.exc_info for r in caplog.records), \
        "logged with its traceback"


def test_health_counts_consecutive_failures_until_a_success() -> None:
    client = ScriptedClient(*[List(server_error(503)) for _ in range(3)], List(page("10")))
    with Run(client) as run:
        assert run.reflector.health.last_success is None
        for failures in (1, 2, 3):
            eventually(lambda: len(run.clock.requested) == failures  # noqa: B023
                       and run.clock.waiters == 1, timeout=5)
            health = run.reflector.health
            assert health.consecutive_failures == failures
            assert health.failing_since == 1000.0  # where the series began
            run.next_wait()
        run.calls(5)
        eventually(lambda: run.reflector.health.consecutive_failures == 0, timeout=5)
        assert run.reflector.health.failing_for(run.clock.monotonic()) == 0.0
