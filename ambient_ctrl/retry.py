"""Retry policy: how often, how soon and for how long a failing reconcile is retried, and what
happens when it may not be retried any more.

controller-runtime retries an error for ever through the rate limiter; kopf gives each handler
``retries=``, ``timeout=`` and ``backoff=``; kube-rs hands every error to an ``error_policy``.
A :class:`RetryPolicy` (``ControllerOptions(retry=...)`` or ``Builder.with_retry``) gives all
of them, per controller. A *streak* is the run of consecutive failures of one request: it
starts with a failure and ends with any reconcile of that request that does not fail (returns
a Result, or ends on its object's NotFound) or whose error is terminal.

* ``max_retries``: how many retries follow the first failure of a streak, as client-go's
  ``if queue.NumRequeues(key) < maxRetries`` loop counts them (kopf's ``retries`` counts
  attempts: its ``retries=3`` is ``max_retries=2``);
* ``deadline``: seconds from the start of the streak's first failing reconcile; a retry that
  would start at or after it is not made (kopf's look-ahead), the failure is terminal now;
* ``backoff``: per exception class (the most specific class of the error's MRO wins): a
  :class:`~ambient_ctrl.ratelimit.RateLimiter`, a function of the attempt number, or constant
  seconds. It replaces the controller's rate limiter for that error (its overall token bucket
  included); other errors go through the rate limiter. A server's Retry-After is a floor
  either way. A constant 0 needs ``max_retries`` or a deadline (it would retry at once for
  ever); a backoff or hook that raises or answers NaN is logged and the rate limiter decides;
* ``on_error(request, error, attempt)``: kube-rs's ``error_policy``, called for every failure
  that is not terminal already: return :class:`Retry` (``after`` seconds), :class:`GiveUp` (a
  terminal error now, with a CamelCase reason) or None (the policy decides). The limits bound
  it: a Retry past ``max_retries`` or the deadline is still terminal;
* ``on_give_up(terminal)``: called once, in the worker still holding the request, when an
  error becomes terminal — by the limits, by the hook, or raised as ``TerminalError`` — to put
  the state on the object as kopf writes its status: :func:`record_condition` is one.

A terminal error is forgotten by the rate limiters, not requeued (until the object changes),
counted in ``controller_runtime_terminal_reconcile_errors_total`` and logged as one WARNING
line. A reconciler reads the current streak's length with :func:`attempt` (kopf's ``retry``
kwarg), e.g. to say "retrying" on its status.

Bookkeeping: one entry per request in a streak (the keys a per-item rate limiter remembers),
dropped when the streak ends. A deleted object's request ends its streak at the reconcile the
deletion triggers (the object is gone: nothing fails), or at the limits.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from foundation.clock import Clock, RealClock, rfc3339, saturate
from informers.errors import NotFound
from informers.resource import Resource

from .conditions import find_condition, set_condition
from .ratelimit import RateLimiter
from .reconcile import Request

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger(__name__)

RETRIES_EXHAUSTED = "RetriesExhausted"
DEADLINE_EXCEEDED = "DeadlineExceeded"
TERMINAL_ERROR = "TerminalError"

Backoff = RateLimiter | Callable[[int], float] | float
"""A rate limiter (``when(request)``), a function of the attempt number (1 for the first
failure) returning seconds, or constant seconds."""


@dataclass(frozen=True, slots=True)
class Retry:
    """An ``on_error`` answer: retry after ``after`` seconds (a Retry-After still floors it)."""

    after: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """An ``on_error`` answer: the error is terminal now; ``reason`` is CamelCase (it may
    become a condition's reason)."""

    reason: str = "GaveUp"


ErrorHook = Callable[[Request, BaseException, int], "Retry | GiveUp | None"]


@dataclass(frozen=True, slots=True)
class Terminal:
    """A request that is not retried any more, handed to ``on_give_up``."""

    request: Request
    error: BaseException
    reason: str
    """``RetriesExhausted``, ``DeadlineExceeded``, ``TerminalError`` or a GiveUp's reason."""
    attempts: int
    """Failed reconciles in the streak, this one included."""
    seconds: float
    """From the start of the streak's first failing reconcile to the end of this one."""

    @property
    def message(self) -> str:
        """What failed, without counts or times: the same failure reads the same each time."""
        return f"{self.reason}: {self.error}" if str(self.error) else self.reason


GiveUpHook = Callable[[Terminal], None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a controller retries failed reconciles (see the module's docstring). The default
    retries for ever through the controller's rate limiter, as controller-runtime does."""

    max_retries: int | None = None
    """Retries after the first failure of a streak (0: none); None: no limit."""
    deadline: float | None = None
    """Seconds from the start of a streak's first failing reconcile; None: no limit."""
    backoff: Mapping[type[BaseException], Backoff] = field(
        default_factory=lambda: MappingProxyType({}), hash=False)
    """Backoff per exception class; the most specific class of an error's MRO wins."""
    on_error: ErrorHook | None = None
    """Called for each failure that is not terminal yet; may decide (see :class:`Retry`)."""
    on_give_up: GiveUpHook | None = None
    """Called once when an error becomes terminal (see :func:`record_condition`)."""

    def __post_init__(self) -> None:
        if self.max_retries is not None and self.max_retries < 0:
            raise ValueError("max_retries must be at least 0 (or None: no limit)")
        if self.deadline is not None and not self.deadline > 0:
            raise ValueError("a retry deadline must be a positive number of seconds")
        limited = self.max_retries is not None or self.deadline is not None
        for kind, backoff in self.backoff.items():
            _check_backoff(kind, backoff, limited=limited)
        object.__setattr__(self, "backoff", MappingProxyType(dict(self.backoff)))

    def backoff_for(self, error: BaseException) -> Backoff | None:
        """The backoff of the most specific class of ``error`` that has one."""
        if not self.backoff:
            return None
        for kind in type(error).__mro__:
            if kind in self.backoff:
                return self.backoff[kind]
        return None

    def exhausted(self, *, attempts: int, elapsed: float, delay: float) -> str | None:
        """Why a failure is terminal (None: retry it): the ``attempts``-th failure of a streak
        that began ``elapsed`` seconds ago, whose retry would start ``delay`` seconds from now.
        """
        if self.max_retries is not None and attempts > self.max_retries:
            return RETRIES_EXHAUSTED
        if self.deadline is not None and elapsed + delay >= self.deadline:
            return DEADLINE_EXCEEDED
        return None


def _check_backoff(kind: object, backoff: object, *, limited: bool) -> None:
    """ValueError unless ``kind`` is an exception class and ``backoff`` a backoff for it."""
    if not (isinstance(kind, type) and issubclass(kind, BaseException)):
        raise ValueError(f"backoff keys are exception classes, not {kind!r}")
    if isinstance(backoff, (int, float)):
        if not (math.isfinite(backoff) and backoff >= 0):
            raise ValueError(f"the backoff of {kind.__name__} must be finite seconds of at "
                             f"least 0, not {backoff!r}")
        if backoff == 0 and not limited:
            raise ValueError(f"a backoff of 0 for {kind.__name__} without max_retries or a "
                             "deadline would retry at once for ever")
    elif not callable(getattr(backoff, "when", backoff)):
        raise ValueError(f"the backoff of {kind.__name__} must be a rate limiter, a function "
                         f"of the attempt or seconds, not {backoff!r}")


@dataclass(slots=True)
class _Streak:
    attempts: int
    since: float


class Retrier:
    """A controller's retry bookkeeping: one streak per failing request. Thread-safe (the
    controller's workers share it; one request is never settled by two at once)."""

    def __init__(self, policy: RetryPolicy, limiter: RateLimiter, clock: Clock) -> None:
        self.policy = policy
        self._limiter = limiter
        self._clock = clock
        self._streaks: dict[Request, _Streak] = {}
        self._lock = threading.Lock()

    def attempt(self, request: Request) -> int:
        """Failures in the request's current streak (0: none)."""
        # No lock: one dict read is atomic, and only the worker holding the request (the caller)
        # changes its streak.
        streak = self._streaks.get(request)
        return streak.attempts if streak else 0

    def __len__(self) -> int:
        """Requests in a streak (what the bookkeeping holds)."""
        with self._lock:
            return len(self._streaks)

    def failed(self, request: Request, error: BaseException, *,
               started: float) -> Retry | Terminal:
        """Count a failure of the reconcile that started at ``started`` (monotonic) and decide:
        retry after some seconds, or a terminal error (the streak then ends)."""
        attempts, elapsed = self._count(request, started)
        decision = self._ask(request, error, attempts)
        if isinstance(decision, GiveUp):
            return self._end(Terminal(request, error, decision.reason, attempts, elapsed))
        delay = self._delay(request, error, attempts, decision)
        delay = max(saturate(delay), _retry_after(error))
        reason = self.policy.exhausted(attempts=attempts, elapsed=elapsed, delay=delay)
        if reason is not None:
            return self._end(Terminal(request, error, reason, attempts, elapsed))
        return Retry(delay)

    def terminal(self, request: Request, error: BaseException, reason: str, *,
                 started: float) -> Terminal:
        """A failure that is terminal whatever the policy says (``TerminalError``): counted
        with the streak's failures before it, and the streak ends."""
        attempts, elapsed = self._count(request, started)
        return self._end(Terminal(request, error, reason, attempts, elapsed))

    def _end(self, terminal: Terminal) -> Terminal:
        self.ended(terminal.request)
        self._limiter.forget(terminal.request)
        return terminal

    def ended(self, request: Request) -> None:
        """The streak ends (a reconcile that did not fail): forget it and its backoffs."""
        if request not in self._streaks:  # the common case, a success after a success
            return
        with self._lock:
            if self._streaks.pop(request, None) is None:
                return
        for backoff in self.policy.backoff.values():
            forget = getattr(backoff, "forget", None)
            if forget is not None:
                forget(request)

    def _count(self, request: Request, started: float) -> tuple[int, float]:
        now = self._clock.monotonic()
        with self._lock:
            streak = self._streaks.get(request)
            if streak is None:
                streak = self._streaks[request] = _Streak(0, started)
            streak.attempts += 1
            return streak.attempts, now - streak.since

    def _ask(self, request: Request, error: BaseException, attempts: int) -> Retry | GiveUp | None:
        """The ``on_error`` hook's decision; a hook that raises (or answers nonsense) is
        logged and the policy decides."""
        hook = self.policy.on_error
        if hook is None:
            return None
        try:
            decision = hook(request, error, attempts)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # the hook's bug must not end the worker
            log.exception("the retry policy's on_error hook failed; the policy decides")
            return None
        if decision is None or isinstance(decision, (Retry, GiveUp)):
            return decision
        log.warning("the retry policy's on_error hook returned %r, not Retry, GiveUp or "
                    "None; the policy decides", decision)
        return None

    def _delay(self, request: Request, error: BaseException, attempts: int,
               decision: Retry | None) -> float:
        """Seconds until the retry: the hook's, the error's backoff or the rate limiter's. A
        hook's or backoff's that raises or is not a number (NaN) is logged and the rate limiter
        decides: nothing the user supplies can turn retries into a storm by accident."""
        backoff = self.policy.backoff_for(error)
        if decision is None and backoff is None:
            return self._limiter.when(request)
        try:
            if decision is not None:
                delay = float(decision.after)
            elif isinstance(backoff, (int, float)):
                delay = float(backoff)
            elif (when := getattr(backoff, "when", None)) is not None:
                delay = float(when(request))
            else:
                delay = float(backoff(attempts))  # type: ignore[misc, operator]
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # the backoff's bug must not end the worker
            log.exception("the retry policy's backoff failed; the rate limiter decides")
            return self._limiter.when(request)
        if math.isnan(delay):
            log.warning("the retry policy's backoff for %s is NaN; the rate limiter decides",
                        type(error).__name__)
            return self._limiter.when(request)
        return delay


def _retry_after(error: BaseException) -> float:
    """The server's Retry-After the error carries (a 429, a 5xx), or 0."""
    retry_after = getattr(error, "retry_after", None)
    return saturate(retry_after) if isinstance(retry_after, (int, float)) else 0.0


_ATTEMPT: contextvars.ContextVar[int] = contextvars.ContextVar("reconcile_attempt", default=0)


def attempt() -> int:
    """In a reconcile: how many reconciles of this request failed in a row just before it (0:
    none) — kopf's ``retry``. Outside one: 0."""
    return _ATTEMPT.get()


class Attempting:
    """Run the block (a reconcile) with :func:`attempt` answering ``failures`` (a class, not a
    generator: it wraps every reconcile)."""

    __slots__ = ("_failures", "_token")

    def __init__(self, failures: int) -> None:
        self._failures = failures

    def __enter__(self) -> None:
        self._token = _ATTEMPT.set(self._failures)

    def __exit__(self, *exc: object) -> None:
        _ATTEMPT.reset(self._token)


def record_condition(client: Client, resource: Resource, *, type: str = "Ready",
                     clock: Clock | None = None) -> GiveUpHook:
    """An ``on_give_up`` hook that puts a terminal error on the object's status:
    ``<type>=False`` with the terminal's reason (``RetriesExhausted``, ...) and message, the
    object's generation as ``observedGeneration`` — the way kopf leaves a handler's failure on
    the object. ``resource`` must have a status subresource (a custom resource's
    ``subresources: {status: {}}``).

    Nothing is written when the condition already says exactly that (a failure that repeats
    after the write woke the controller ends there); the write re-reads the object and retries
    on conflict (``Client.mutate``), so other conditions survive. An object gone meanwhile is
    nothing to record. Your reconciler owns the condition after that: its next success should
    set it again.
    """
    clock = clock or RealClock()

    def record(terminal: Terminal) -> None:
        request = terminal.request
        condition = {"type": type, "status": "False", "reason": terminal.reason,
                     "message": terminal.message[:32768]}

        def conditions_of(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
            return set_condition(
                (obj.get("status") or {}).get("conditions"), type=type, status="False",
                reason=terminal.reason, message=condition["message"],
                observed_generation=int((obj.get("metadata") or {}).get("generation") or 0),
                now=rfc3339(clock.now()))

        cached = client.get(resource, request.name, request.namespace or None)
        if cached is None or _says(cached, condition):
            return

        def change(obj: dict[str, Any]) -> None:
            obj.setdefault("status", {})["conditions"] = conditions_of(obj)

        with contextlib.suppress(NotFound):
            client.mutate(resource, request.name, request.namespace or None, change,
                          status=True)

    return record


def _says(obj: Mapping[str, Any], condition: Mapping[str, str]) -> bool:
    """Whether the object's condition of that type has this status, reason and message at
    its current generation."""
    found = find_condition((obj.get("status") or {}).get("conditions"), condition["type"])
    generation = (obj.get("metadata") or {}).get("generation") or 0
    return (found is not None
            and all(found.get(k) == condition[k] for k in ("status", "reason", "message"))
            and found.get("observedGeneration", 0) == generation)
