"""The reflector's transition function as a table: from-state, event, to-state, actions.

:func:`informers.reflector_state.step` is pure, so each row is one call; the reflector's own
tests (``test_reflector_unit.py``) drive the same machine through a scripted client.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from informers.errors import TransportError, error_from
from informers.reflector_state import (
    APPLY,
    RESET_BACKOFF,
    STOP_REQUESTED,
    SUCCEEDED,
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
    Retry,
    ShortWatch,
    State,
    Stopped,
    StreamEnded,
    VersionChecked,
    VersionLost,
    Watching,
    lost_of,
    step,
    version_of,
)


def status(code: int, reason: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "reason": reason, "message": message, **extra}


EXPIRED = status(410, "Expired", "too old resource version: 5 (40)")
TOO_LARGE = status(504, "Timeout", "Too large resource version: 40, current: 7",
                   details={"causes": [{"reason": "ResourceVersionTooLarge",
                                        "message": "Too large resource version"}]})
INTERNAL = status(500, "InternalError", "boom")

GONE = error_from(410, orjson.dumps(EXPIRED), {})
LARGE = error_from(504, orjson.dumps(TOO_LARGE), {})
BOOM = error_from(500, orjson.dumps(INTERNAL), {})
BUSY = error_from(429, b"", {"Retry-After": "20"})
CUT = TransportError("watch stream broke: connection reset")


def _not_json() -> Exception:
    try:
        orjson.loads(b"<html>502 Bad Gateway</html>")
    except orjson.JSONDecodeError as exc:
        return exc
    raise AssertionError("unreachable")


NOT_JSON = _not_json()
"""A list answer or an event line that is not JSON."""
TAKING_IN = "JSONDecodeError taking in what the server sent"
MALFORMED = AttributeError("'str' object has no attribute 'get'")
"""What reading ``{"type": "ADDED", "object": "not an object"}`` raises."""

WHY_EXPIRED = "expired: too old resource version: 5 (40)"
WHY_TOO_LARGE = "too large: Too large resource version: 40, current: 7"


def ev(kind: str, rv: str | None, obj: Any = None) -> dict[str, Any]:
    """A watch event as the server sends it (an object with ``rv``, or ``obj``)."""
    if obj is None:
        obj = {"metadata": {"name": "a", "namespace": "default"}}
        if rv is not None:
            obj["metadata"]["resourceVersion"] = rv
    return {"type": kind, "object": obj}


def short(n: int, rv: str) -> str:
    return f"the server ended {n} watches from {rv} at once, empty"


def short_watch(n: int, rv: str) -> Retry:
    return Retry.of(ShortWatch(f"very short watch: {short(n, rv)}"))


Row = tuple[State, Event | dict[str, Any], State, Actions]

ROWS: dict[str, Row] = {
    # listing from scratch ------------------------------------------------------------------
    "empty, a page with a continue token: next page":
        (Empty(), PageListed("10", "t1"), Listing("t1"), ()),
    "empty, the only page: listed, the sink replaced":
        (Empty(), PageListed("10"), Listed("10"), (Replace("10"), SUCCEEDED)),
    "listing, the last page: listed":
        (Listing("t1"), PageListed("12"), Listed("12"), (Replace("12"), SUCCEEDED)),
    "listing after a loss keeps why until the last page":
        (Empty(WHY_EXPIRED, "30"), PageListed("40", "t"), Listing("t", WHY_EXPIRED, "30"), ()),
    "a relist newer than the version lost: in step again":
        (Listing("t", WHY_EXPIRED, "30"), PageListed("40"), Listed("40"),
         (Replace("40"), SUCCEEDED)),
    "a relist older than the version lost: a history reset, said":
        (Listing("t", WHY_TOO_LARGE, "30"), PageListed("7"), Listed("7"),
         (Replace("7", reset_from="30"), SUCCEEDED)),
    "the continue token expired: the first page again, at once":
        (Listing("t1", WHY_EXPIRED, "30"), Failed(GONE), Listing(None, WHY_EXPIRED, "30"), ()),
    "410 on the first page: a failure, backed off":
        (Empty(), Failed(GONE), Empty(), (Retry.of(GONE),)),
    "410 on the first page again: a failure":
        (Listing(None), Failed(GONE), Empty(), (Retry.of(GONE),)),
    "a page failed: start the list over after the backoff":
        (Listing("t1"), Failed(BOOM), Empty(), (Retry.of(BOOM),)),
    "a list failed after a loss: still lost":
        (Empty(WHY_EXPIRED, "30"), Failed(BOOM), Empty(WHY_EXPIRED, "30"), (Retry.of(BOOM),)),
    "a list answer that is not JSON: unexpected":
        (Empty(), Failed(NOT_JSON), Empty(TAKING_IN),
         (VersionLost(TAKING_IN), Retry.of(NOT_JSON))),
    # opening a watch -----------------------------------------------------------------------
    "listed, the watch opened: healthy":
        (Listed("10"), WATCH_OPENED, Watching("10"), (SUCCEEDED,)),
    "listed, the watch answered 410: relist at once":
        (Listed("10"), Failed(GONE), Empty(WHY_EXPIRED, "10"), (VersionLost(WHY_EXPIRED),)),
    "listed, the watch answered too large: relist at once":
        (Listed("10"), Failed(LARGE), Empty(WHY_TOO_LARGE, "10"),
         (VersionLost(WHY_TOO_LARGE),)),
    "listed, the watch was refused: check the version after the backoff":
        (Listed("10", 1), Failed(CUT), Checking("10", 1), (Retry.of(CUT),)),
    "listed, the watch answered 429: check after the backoff":
        (Listed("10"), Failed(BUSY), Checking("10"), (Retry.of(BUSY),)),
    # watch events --------------------------------------------------------------------------
    "ADDED: applied, the version advances":
        (Watching("10"), ev("ADDED", "11"), Watching("11", 0, True), (APPLY,)),
    "MODIFIED: applied":
        (Watching("11", 0, True), ev("MODIFIED", "12"), Watching("12", 0, True), (APPLY,)),
    "DELETED: applied":
        (Watching("12", 1), ev("DELETED", "13"), Watching("13", 1, True), (APPLY,)),
    "an event without a version: applied, the version stays":
        (Watching("10"), ev("MODIFIED", None), Watching("10", 0, True), (APPLY,)),
    "BOOKMARK: only the version advances":
        (Watching("10"), ev("BOOKMARK", "20"), Watching("20", 0, True), ()),
    "versions that are not integers are not compared":
        (Watching("b7"), ev("MODIFIED", "a3"), Watching("a3", 0, True), (APPLY,)),
    "an event older than one seen: history reset, relist":
        (Watching("31", 0, True), ev("ADDED", "5"),
         Empty("history reset: a ADDED event at 5 after 31", "31"),
         (RESET_BACKOFF, VersionLost("history reset: a ADDED event at 5 after 31"))),
    "a BOOKMARK older than the list, first thing: relist, nothing had worked":
        (Watching("31"), ev("BOOKMARK", "5"),
         Empty("history reset: a BOOKMARK event at 5 after 31", "31"),
         (VersionLost("history reset: a BOOKMARK event at 5 after 31"),)),
    "ERROR 410 after events: relist at once":
        (Watching("11", 0, True), ev("ERROR", None, EXPIRED), Empty(WHY_EXPIRED, "11"),
         (RESET_BACKOFF, VersionLost(WHY_EXPIRED))),
    "ERROR too large, first thing: relist at once":
        (Watching("30"), ev("ERROR", None, TOO_LARGE), Empty(WHY_TOO_LARGE, "30"),
         (VersionLost(WHY_TOO_LARGE),)),
    "ERROR 500 after events: a failure, no reset; check the version":
        (Watching("11", 0, True), ev("ERROR", None, INTERNAL), Checking("11"),
         (Retry.of(BOOM),)),
    "a malformed event: unexpected, relist":
        (Watching("10"), ev("ADDED", None, "not an object"),
         Empty("AttributeError taking in what the server sent", "10"),
         (VersionLost("AttributeError taking in what the server sent"), Retry.of(MALFORMED))),
    # the stream ends -----------------------------------------------------------------------
    "ended after events: watch again from the last, a new backoff series":
        (Watching("12", 0, True), StreamEnded(quick=True), Listed("12"), (RESET_BACKOFF,)),
    "ended after events: the short watches are forgotten":
        (Watching("12", 1, True), StreamEnded(quick=False), Listed("12"), (RESET_BACKOFF,)),
    "ended late without a word: check the version first":
        (Watching("30"), StreamEnded(quick=False), Checking("30"), (RESET_BACKOFF,)),
    "ended at once, empty: a failure, check the version":
        (Watching("30"), StreamEnded(quick=True), Checking("30", 1),
         (short_watch(1, "30"),)),
    "ended at once, empty, the second in a row: relist":
        (Watching("30", 1), StreamEnded(quick=True), Empty(short(2, "30"), "30"),
         (VersionLost(short(2, "30")), short_watch(2, "30"))),
    # the stream breaks ---------------------------------------------------------------------
    "cut after events: jitter only, check the version":
        (Watching("22", 0, True), Failed(CUT, quick=True), Checking("22"),
         (RESET_BACKOFF, Retry.of(CUT))),
    "cut silent after min_healthy_watch: jitter only":
        (Watching("10"), Failed(CUT, quick=False), Checking("10"),
         (RESET_BACKOFF, Retry.of(CUT))),
    "cut at once and silent: the backoff goes on":
        (Watching("10", 1), Failed(CUT, quick=True), Checking("10", 1), (Retry.of(CUT),)),
    "410 from the stream after it worked: relist at once, a new series":
        (Watching("11", 0, True), Failed(GONE, quick=False), Empty(WHY_EXPIRED, "11"),
         (RESET_BACKOFF, VersionLost(WHY_EXPIRED))),
    "an event line that is not JSON: unexpected, no reset, relist":
        (Watching("11", 0, True), Failed(NOT_JSON, quick=False),
         Empty(TAKING_IN, "11"),
         (VersionLost(TAKING_IN), Retry.of(NOT_JSON))),
    "the sink failed: unexpected, relist":
        (Watching("11", 0, True), Failed(KeyError("metadata"), quick=True),
         Empty("KeyError taking in what the server sent", "11"),
         (VersionLost("KeyError taking in what the server sent"),
          Retry.of(KeyError("metadata")))),
    # checking the version ------------------------------------------------------------------
    "checked, the server is at our version: watch":
        (Checking("11"), VersionChecked("11"), Listed("11"), ()),
    "checked, the server is ahead: watch, the short watches kept":
        (Checking("11", 1), VersionChecked("15"), Listed("11", 1), ()),
    "checked, no version in the answer: watch":
        (Checking("11"), VersionChecked(""), Listed("11"), ()),
    "checked, the server is behind us: history reset, relist":
        (Checking("31"), VersionChecked("6"),
         Empty("history reset: the server is at 6, we saw 31", "31"),
         (VersionLost("history reset: the server is at 6, we saw 31"),)),
    "the check answered too large: relist at once":
        (Checking("40"), Failed(LARGE), Empty(WHY_TOO_LARGE, "40"),
         (VersionLost(WHY_TOO_LARGE),)),
    "the check answered 410: relist at once":
        (Checking("40"), Failed(GONE), Empty(WHY_EXPIRED, "40"), (VersionLost(WHY_EXPIRED),)),
    "the check failed: check again after the backoff":
        (Checking("11", 1), Failed(BOOM), Checking("11", 1), (Retry.of(BOOM),)),
    "the check's answer is not JSON: unexpected, relist":
        (Checking("11"), Failed(NOT_JSON), Empty(TAKING_IN, "11"),
         (VersionLost(TAKING_IN), Retry.of(NOT_JSON))),
    # stop ----------------------------------------------------------------------------------
    **{f"stop while {type(state).__name__.lower()}": (state, STOP_REQUESTED, Stopped(), ())
       for state in (Empty(), Listing("t"), Listed("1"), Watching("1", 0, True), Checking("1"))},
}


@pytest.mark.parametrize(("before", "event", "after", "actions"), ROWS.values(), ids=ROWS.keys())
def test_step(before: State, event: Event | dict[str, Any], after: State,
              actions: Actions) -> None:
    assert step(before, event) == (after, actions)


def test_retries_say_whether_the_error_was_unexpected() -> None:
    """What the driver logs with a traceback and what it relists after."""
    assert [Retry.of(e).unexpected for e in (GONE, BOOM, BUSY, CUT, NOT_JSON, MALFORMED)] == [
        False, False, False, False, True, True]
    assert Retry.of(BOOM).reason == "ServerError: 500 InternalError: boom"


def test_the_short_watch_limit_is_an_option() -> None:
    three = step(Watching("30", 1), StreamEnded(quick=True), short_watches_before_relist=3)
    assert three[0] == Checking("30", 2)


@pytest.mark.parametrize(("state", "event"), [
    (Empty(), WATCH_OPENED),
    (Listed("1"), ev("ADDED", "2")),
    (Watching("1"), PageListed("2")),
    (Checking("1"), StreamEnded(quick=True)),
    (Stopped(), PageListed("2")),
], ids=["empty-watch-opened", "listed-event", "watching-page", "checking-stream-ended",
        "stopped-page"])
def test_what_the_driver_never_sends_is_refused(state: State, event: Event | dict[str, Any]
                                                ) -> None:
    with pytest.raises(ValueError, match="no transition"):
        step(state, event)


@pytest.mark.parametrize(("state", "version", "lost"), [
    (Empty(), "", None),
    (Empty(WHY_EXPIRED, "30"), "", WHY_EXPIRED),
    (Listing("t", WHY_TOO_LARGE, "30"), "", WHY_TOO_LARGE),
    (Listed("10"), "10", None),
    (Watching("11", 0, True), "11", None),
    (Checking("12"), "12", None),
    (Stopped(), "", None),
], ids=["never-listed", "lost", "relisting", "listed", "watching", "checking", "stopped"])
def test_version_and_loss_read_from_the_state(state: State, version: str,
                                              lost: str | None) -> None:
    """What ``Reflector.resource_version`` and ``ReflectorHealth.lost_version`` say."""
    assert (version_of(state), lost_of(state)) == (version, lost)
