"""The reflector's states and its transition function (kube-rs's ``watcher`` state machine).

:func:`step` is pure: ``step(state, event) -> (state, actions)``. The reflector
(:mod:`informers.reflector`) makes the request each state asks for, feeds what came back in as
an event, and carries out the actions; it decides nothing itself. The states:

=================================  ===========================================================
``Empty(lost, previous)``          no resourceVersion: list from scratch (a relist starts here)
``Listing(token, lost, previous)`` a list under way: fetch the page after ``token`` (None: the
                                   first page again, its continue token having expired)
``Listed(version, short)``         in step at ``version``: open a watch from it
``Watching(version, short, ...)``  a watch from ``version`` is open; each event advances it
``Checking(version, short)``       unsure the server still serves ``version``: ask first (a
                                   one-item list ``resourceVersionMatch=NotOlderThan``)
``Stopped()``                      done
=================================  ===========================================================

``lost`` says why the previous version was given up (``/readyz``: until the relist completes),
``previous`` is that version (a relist that comes back older reveals a history reset), and
``short`` counts the watches in a row the server ended at once and empty.

The transitions (``*``: any state; "lost" below is 410 Expired/Gone or 504 "Too large resource
version", as an HTTP answer or an ERROR event; "unexpected" is anything that is neither an API
answer nor a transport error — a body that is not JSON, a malformed event, the sink failing):

=====================  =====================================  ===============================
from                   event                                  to, actions
=====================  =====================================  ===============================
\\*                     StopRequested                          Stopped
Empty, Listing         PageListed with a continue token       Listing(token)
Empty, Listing         PageListed, the last page              Listed(version): Replace,
                                                              Succeeded
Listing(token)         Failed: 410 (the token expired)        Listing(None): list afresh now
Empty, Listing         Failed: unexpected                     Empty: VersionLost, Retry
Empty, Listing         Failed: anything else                  Empty: Retry
Listed                 WatchOpened                            Watching: Succeeded
Listed, Checking       Failed: lost                           Empty: VersionLost
Listed, Checking       Failed: unexpected                     Empty: VersionLost, Retry
Listed, Checking       Failed: anything else                  Checking: Retry
Checking               VersionChecked, not older              Listed
Checking               VersionChecked, older than ours        Empty: VersionLost
Watching               ADDED/MODIFIED/DELETED                 Watching(its version): Apply
Watching               BOOKMARK                               Watching(its version)
Watching               an event older than ``version``        Empty: VersionLost
Watching               ERROR: lost                            Empty: VersionLost
Watching               ERROR: other                           Checking: Retry
Watching               StreamEnded, something delivered       Listed: ResetBackoff
Watching               StreamEnded late, nothing delivered    Checking: ResetBackoff
Watching               StreamEnded at once, empty             Checking(short + 1): Retry;
                                                              the 2nd in a row: Empty, also
                                                              VersionLost
Watching               Failed: lost                           Empty: VersionLost
Watching               Failed: transport (the stream broke)   Checking: Retry
Watching               Failed: unexpected                     Empty: VersionLost, Retry
Watching               Failed: other API error                Checking: Retry
=====================  =====================================  ===============================

Every transition out of ``Watching`` that is not a failure of the watch itself (a normal end,
a broken stream, a sign that our version is lost) also says ``ResetBackoff`` when the watch
*worked*: it delivered an event or a BOOKMARK, or stayed open ``min_healthy_watch`` (the
driver tells: ``quick``; an ERROR event or an event older than ours is judged by what came
before it, events not being timed). That is the backoff's one reset rule
(:mod:`informers.backoff`). An ERROR event other than "lost", a malformed event or a sink error
is a failure of the watch: no reset.

Why ``Checking`` after every failure and after a watch that said nothing at all:
kube-apiserver accepts a watch from a version it has not reached and says nothing until it
does (a server restored from a backup may never reach it); a one-item list not older than our
version costs one object and answers "Too large resource version" at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from .errors import (
    APIError,
    KubeError,
    TransportError,
    error_from,
    expired,
    too_large_resource_version,
)

# states -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Empty:
    """No resourceVersion: the next request lists from scratch (and counts as a relist)."""

    lost: str | None = None
    """Why the last version was given up (None: never listed yet)."""
    previous: str = ""
    """The version given up ("" if none), to spot a relist that comes back older."""


@dataclass(frozen=True, slots=True)
class Listing:
    """Between the pages of a list from scratch (the pages so far are the driver's)."""

    token: str | None
    """The continue token of the next page; None: the first page again (a fresh list)."""
    lost: str | None = None
    previous: str = ""


@dataclass(frozen=True, slots=True)
class Listed:
    """In step with the server at ``version``: the next request watches from it."""

    version: str
    short: int = 0
    """Watches in a row the server ended at once and empty."""


@dataclass(frozen=True, slots=True)
class Watching:
    """A watch from ``version`` is open (``version`` advances with each event)."""

    version: str
    short: int = 0
    delivered: bool = False
    """Whether this watch delivered an event or a BOOKMARK yet."""


@dataclass(frozen=True, slots=True)
class Checking:
    """Unsure the server serves ``version``: ask it (a one-item ``NotOlderThan`` list)."""

    version: str
    short: int = 0


@dataclass(frozen=True, slots=True)
class Stopped:
    """The reflector was asked to stop."""


State = Empty | Listing | Listed | Watching | Checking | Stopped


def version_of(state: State) -> str:
    """The resourceVersion the reflector is in step with ("" while it has none)."""
    return state.version if isinstance(state, (Listed, Watching, Checking)) else ""


def lost_of(state: State) -> str | None:
    """Why the reflector's version is not the server's, until a relist completes."""
    return state.lost if isinstance(state, (Empty, Listing)) else None


# events -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageListed:
    """A list page arrived (the driver keeps its objects)."""

    version: str
    token: str | None = None
    """Its continue token; None: the last page."""


@dataclass(frozen=True, slots=True)
class VersionChecked:
    """The one-item ``NotOlderThan`` list answered, as of ``version``."""

    version: str


@dataclass(frozen=True, slots=True)
class WatchOpened:
    """The server accepted the watch."""


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """The server ended the watch normally (its ``timeoutSeconds``, or at once)."""

    quick: bool
    """It was open less than ``min_healthy_watch``."""


@dataclass(frozen=True, slots=True)
class Failed:
    """A request, or taking in its answer, failed with ``error``."""

    error: BaseException
    quick: bool = True
    """For a watch: it had been open less than ``min_healthy_watch`` when it broke."""


@dataclass(frozen=True, slots=True)
class StopRequested:
    """Whoever owns the reflector asked it to stop."""


Event = PageListed | VersionChecked | WatchOpened | StreamEnded | Failed | StopRequested
"""What the driver feeds :func:`step`; a watch event arrives as the server's own dict
(``{"type": ..., "object": ...}``), unwrapped, so the hot path builds nothing for it."""

WATCH_OPENED = WatchOpened()
STOP_REQUESTED = StopRequested()


class ShortWatch(TransportError):
    """The server ended a watch at once, empty: a failure (backed off), and once it repeats a
    sign that it will not watch from our resourceVersion (client-go's "very short watch")."""


# actions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replace:
    """Hand the listed pages to the sink as the whole state at ``version``."""

    version: str
    reset_from: str = ""
    """The version seen before the relist, when the list came back older than it (the server's
    history was reset: a restore, or a restart without its storage); "" otherwise."""


@dataclass(frozen=True, slots=True)
class Apply:
    """Hand the watch event just stepped to the sink."""


@dataclass(frozen=True, slots=True)
class Succeeded:
    """The server answered as asked (a list completed, a watch opened): the reflector is
    healthy. The only definition of healthy (``ReflectorHealth``)."""


@dataclass(frozen=True, slots=True)
class ResetBackoff:
    """A watch worked: the next failure starts a new backoff series."""


@dataclass(frozen=True, slots=True)
class VersionLost:
    """Our resourceVersion is not the server's: say why (the state relists)."""

    why: str


@dataclass(frozen=True, slots=True)
class Retry:
    """A failure: count it (health), log it, and wait the backoff's next delay (or the
    server's Retry-After) before the next request."""

    error: BaseException = field(compare=False)
    unexpected: bool = False
    """Neither an API answer nor a transport error: logged with its traceback."""
    reason: str = ""
    """``"Type: message"`` of the error (what compares, and ``ReflectorHealth.last_error``)."""

    @classmethod
    def of(cls, error: BaseException) -> Retry:
        return cls(error, _unexpected(error), f"{type(error).__name__}: {error}")


Action = Replace | Apply | Succeeded | ResetBackoff | VersionLost | Retry
Actions = tuple[Action, ...]

APPLY = Apply()
SUCCEEDED = Succeeded()
RESET_BACKOFF = ResetBackoff()
_APPLY: Actions = (APPLY,)
_NONE: Actions = ()
_RESET: Actions = (RESET_BACKOFF,)

# the transition function --------------------------------------------------------------------


def step(state: State, event: Event | dict[str, Any], *,
         short_watches_before_relist: int = 2) -> tuple[State, Actions]:
    """The state after ``event`` in ``state``, and what the reflector must do (in order).

    A combination the reflector never produces (a page while watching) raises ValueError.
    """
    if type(event) is dict:  # the hot path: one watch event
        if type(state) is Watching:
            return _received(state, event)
        raise ValueError(f"no transition from {state} on a watch event")
    if isinstance(event, StopRequested):
        return Stopped(), _NONE
    if isinstance(state, (Empty, Listing)):
        if isinstance(event, PageListed):
            return _page(state, event)
        if isinstance(event, Failed):
            return _list_failed(state, event.error)
    elif isinstance(state, Listed):
        if isinstance(event, WatchOpened):
            return Watching(state.version, state.short), (SUCCEEDED,)
        if isinstance(event, Failed):
            return _request_failed(state.version, state.short, event.error)
    elif isinstance(state, Checking):
        if isinstance(event, VersionChecked):
            return _checked(state, event.version)
        if isinstance(event, Failed):
            return _request_failed(state.version, state.short, event.error)
    elif isinstance(state, Watching):
        if isinstance(event, StreamEnded):
            return _ended(state, event.quick, short_watches_before_relist)
        if isinstance(event, Failed):
            return _broke(state, event.error, event.quick)
    raise ValueError(f"no transition from {state} on {event}")


def _page(state: Empty | Listing, page: PageListed) -> tuple[State, Actions]:
    if page.token:
        return Listing(page.token, state.lost, state.previous), _NONE
    previous = state.previous
    reset_from = previous if previous and _older(page.version, previous) else ""
    return Listed(page.version), (Replace(page.version, reset_from), SUCCEEDED)


def _list_failed(state: Empty | Listing, error: BaseException) -> tuple[State, Actions]:
    if isinstance(state, Listing) and state.token and expired(error):
        # The continue token expired (the list took longer than the server keeps its
        # snapshot): the pages so far are of a snapshot that is gone; list afresh at once.
        return Listing(None, state.lost, state.previous), _NONE
    retry = Retry.of(error)
    if retry.unexpected:
        why = _taking_in(error)
        return Empty(why, state.previous), (VersionLost(why), retry)
    return Empty(state.lost, state.previous), (retry,)


def _request_failed(version: str, short: int, error: BaseException) -> tuple[State, Actions]:
    """A watch that did not open, or a check of the version, failed."""
    why = _lost_because(error)
    if why is not None:
        return Empty(why, version), (VersionLost(why),)
    retry = Retry.of(error)
    if retry.unexpected:
        why = _taking_in(error)
        return Empty(why, version), (VersionLost(why), retry)
    return Checking(version, short), (retry,)


def _checked(state: Checking, current: str) -> tuple[State, Actions]:
    if current and _older(current, state.version):
        why = f"history reset: the server is at {current}, we saw {state.version}"
        return Empty(why, state.version), (VersionLost(why),)
    return Listed(state.version, state.short), _NONE


def _received(state: Watching, event: dict[str, Any]) -> tuple[State, Actions]:
    try:
        kind = event.get("type", "")
        obj = event.get("object") or {}
        if kind == "ERROR":
            error = error_from(int(obj.get("code", 500)), orjson.dumps(obj), {})
            return _broke(state, error, quick=True)
        version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
    except (AttributeError, TypeError, ValueError) as exc:  # not an event we can read
        return _broke(state, exc, quick=True)
    if version and _older(version, state.version):
        why = f"history reset: a {kind} event at {version} after {state.version}"
        return _lose(state, why, worked=state.delivered)
    new = Watching(version or state.version, state.short, True)
    return new, (_NONE if kind == "BOOKMARK" else _APPLY)


def _ended(state: Watching, quick: bool, limit: int) -> tuple[State, Actions]:
    if state.delivered:
        return Listed(state.version), _RESET
    if not quick:
        # A whole watch without an event or a BOOKMARK: a server that has not reached our
        # version says nothing either, so ask before watching from it again.
        return Checking(state.version), _RESET
    short = state.short + 1
    why = f"the server ended {short} watches from {state.version} at once, empty"
    retry = Retry.of(ShortWatch(f"very short watch: {why}"))
    if short >= limit:
        return Empty(why, state.version), (VersionLost(why), retry)
    return Checking(state.version, short), (retry,)


def _broke(state: Watching, error: BaseException, quick: bool) -> tuple[State, Actions]:
    """The watch ended with ``error``: raised by its stream, or an ERROR event in it."""
    worked = state.delivered or not quick
    why = _lost_because(error)
    if why is not None:
        return _lose(state, why, worked)
    retry = Retry.of(error)
    if retry.unexpected:  # a failure of the watch itself: no reset
        why = _taking_in(error)
        return Empty(why, state.version), (VersionLost(why), retry)
    if worked and isinstance(error, TransportError):  # cut after it worked: a new series
        return Checking(state.version, state.short), (RESET_BACKOFF, retry)
    return Checking(state.version, state.short), (retry,)  # an ERROR event: no reset


def _lose(state: Watching, why: str, worked: bool) -> tuple[State, Actions]:
    lost = VersionLost(why)
    return Empty(why, state.version), ((RESET_BACKOFF, lost) if worked else (lost,))


# classification -----------------------------------------------------------------------------


def _lost_because(error: BaseException) -> str | None:
    """Why ``error`` means the server does not serve our version (None: it does not say so)."""
    if not isinstance(error, APIError):
        return None
    if expired(error):
        return f"expired: {error.message}"
    if too_large_resource_version(error):
        return f"too large: {error.message}"
    return None


def _unexpected(error: BaseException) -> bool:
    """Neither the API's answer nor a transport error, but ours: something we could not take
    in. The store may lack it, so the reflector relists instead of resuming."""
    return not isinstance(error, KubeError)


def _taking_in(error: BaseException) -> str:
    return f"{type(error).__name__} taking in what the server sent"


def _older(version: str, than: str) -> bool:
    """Whether resourceVersion ``version`` is older than ``than`` — only when both are
    integers (they are opaque strings to clients; every kube-apiserver's are etcd revisions)."""
    try:
        return int(version) < int(than)
    except ValueError:
        return False
