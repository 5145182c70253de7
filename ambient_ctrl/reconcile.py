"""The reconcile contract: what a controller hands a reconciler and what it gets back.

A reconciler is level-triggered: it receives only the name of an object (:class:`Request`),
reads the current state, makes the world match the desired state and returns a :class:`Result`.
Returning normally means success; ``Result(requeue_after=...)`` asks to look again later;
raising an ordinary exception means "retry with backoff"; raising :class:`TerminalError` means
"record it, do not retry until the object changes".

A ``NotFound`` that says the request's own object is gone is the end of the work, not an
error (controller-runtime's ``client.IgnoreNotFound`` habit, made the default): the controller
settles a reconcile that raised one as a success when the 404 names the request's object, or
when the server no longer has that object (a child garbage-collected with it answers 404 as
well). Where a reconciler means it explicitly, :func:`ignore_not_found` says so in the code.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from informers.errors import NotFound

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, order=True)
class Request:
    """The queue key: which object to reconcile. Never the event or the object itself."""

    namespace: str
    name: str

    @classmethod
    def for_object(cls, obj: Mapping[str, Any]) -> Request:
        meta = obj.get("metadata") or {}
        return cls(str(meta.get("namespace") or ""), str(meta.get("name", "")))

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class Result:
    """Done (the default), or look again: after ``requeue_after`` seconds, or (``requeue``)
    through the rate limiter's backoff."""

    requeue_after: float = 0.0
    requeue: bool = False
    priority: int | None = None
    """The priority of the requeue asked for (controller-runtime's ``Result.Priority``); None
    keeps the one the request was handed out at, as a retry after an error always does."""


class Reconciler(Protocol):
    """Make the world match the desired state of the object ``request`` names.

    May assume: the request's object was seen by the cache (or just deleted); no other worker
    reconciles the same request concurrently. Must: be idempotent; not sleep; not retry itself
    (the workqueue's rate limiter is the one retry owner); copy cached objects before editing.
    """

    def reconcile(self, request: Request) -> Result: ...


class TerminalError(Exception):
    """A failure retrying cannot fix (bad input): counted, logged as one warning line (no
    traceback: the message is the reason), not requeued until the object changes."""


@contextlib.contextmanager
def ignore_not_found() -> Iterator[None]:
    """End the block quietly on ``NotFound`` — controller-runtime's ``client.IgnoreNotFound``::

        with ignore_not_found():
            client.patch_status(WIDGETS, request.name, patch, request.namespace)
        return Result()

    For a write whose object may be gone by now (deleted between the read and the write):
    nothing is left to do about it. Also a decorator (``@ignore_not_found()``); a function it
    wraps returns None on NotFound."""
    try:
        yield
    except NotFound as error:
        log.debug("not found: nothing left to do", extra={"error": str(error)})


_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("reconcile_deadline",
                                                                         default=None)


class ReconcileTimeout(TimeoutError):
    """The reconcile ran past its controller's ``reconcile_timeout``.

    Python cannot interrupt a thread, so the timeout is cooperative: the client checks it
    before every request (as Go checks a context) and raises this.
    """


@contextlib.contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """Run the block with a monotonic deadline (None: none)."""
    token = _DEADLINE.set(at)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check_deadline(now: float) -> float | None:
    """Seconds left before the current deadline (None: no deadline); raise if it passed."""
    at = _DEADLINE.get()
    if at is None:
        return None
    if now >= at:
        raise ReconcileTimeout("reconcile deadline exceeded")
    return at - now
