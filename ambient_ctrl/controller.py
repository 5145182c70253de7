"""The controller: workers taking requests from a workqueue and running a reconciler.

The one place that decides what happens after a reconcile (:meth:`Controller._settle`):

=====================================  ====================================  ===============
outcome                                queue                                 result metric
=====================================  ====================================  ===============
returned ``Result()``                  forget                                success
returned ``Result(requeue_after=s)``   forget, add after ``s``               requeue_after
returned ``Result(requeue=True)``      add rate-limited                      requeue
raised ``NotFound`` and the object is  forget                                success
gone (see ``notfound.py``)
raised ``TerminalError``               forget (until the object changes)     error, terminal
raised another ``Exception``           add after the retry policy's backoff  error
                                       (default: the rate limiter's)
... past the retry policy's limits,    forget (until the object changes)     error, terminal
or its ``on_error`` hook gave up
raised another ``BaseException``       as an ``Exception``; counted as a     error
                                       panic
=====================================  ====================================  ===============

The retry policy (``retry.py``) counts each request's consecutive failures; a terminal error
ends the count and goes to the policy's ``on_give_up`` hook (e.g. a condition on the object).
With a timer (``timer.py``), every outcome but an error then arms the object's next tick.

Every requeue and retry keeps the priority the request was handed out at (a request of an
initial list stays behind fresh events), unless the ``Result`` names one, as in
controller-runtime.

``KeyboardInterrupt`` and ``SystemExit`` are not swallowed. Every log line of a reconcile
carries ``controller``, ``request`` and ``reconcile_id``; errors are logged once, here:

* a NotFound that ends the work: one DEBUG line — the object was deleted, nothing is wrong;
* a ``TerminalError`` (bad input), or an error past the retry policy's limits: one WARNING
  line with its message, no traceback;
* any other failure: ERROR with the traceback the first time an object fails with that
  error, one ERROR line for each repeat until the error changes or a reconcile of the object
  succeeds (``tracebacks.py``); a timeout is one line.

An error that carries the server's ``retry_after`` (a 429, or a 5xx with Retry-After, that the
transport did not retry itself) is not retried sooner than the server asked: the request waits
the longer of the rate limiter's backoff and the Retry-After.

A worker never dies of what goes wrong around a reconcile (a rate limiter or a metric that
raises): it logs it, puts the request back after a second and takes the next one; a worker
that ends anyway before :meth:`Controller.stop` is reported by
:meth:`Controller.dead_threads` (the manager's ``/healthz``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from foundation.clock import Clock, RealClock
from foundation.threads import Deadline, Threads
from informers.resource import Resource
from metrics.controller import ControllerRecorder, ReconcileResult
from metrics.recorder import Recorder

from . import logcontext
from .aio import AsyncReconciler, EventLoop, is_async
from .notfound import Primary, ends_work
from .ownwrites import OwnWrites, OwnWritesOf, noting
from .ratelimit import RateLimiter, default_controller_rate_limiter
from .reconcile import Reconciler, ReconcileTimeout, Request, Result, TerminalError, deadline
from .retry import TERMINAL_ERROR, Attempting, Retrier, RetryPolicy, Terminal
from .timer import Ticker, Timer
from .tracebacks import TracebackMemory
from .workqueue import NORMAL_PRIORITY, WorkQueue

log = logging.getLogger(__name__)

_RECOVERY_DELAY = 1.0
"""Seconds before a request whose handling failed outside the reconcile is handed out again."""


@dataclass(frozen=True, slots=True)
class ControllerOptions:
    """How a controller runs."""

    max_concurrent_reconciles: int = 1
    """Worker threads; one request is never reconciled by two at once."""
    reconcile_timeout: float | None = None
    """Seconds a reconcile may take; checked cooperatively by the client (see reconcile.py)."""
    rate_limiter: RateLimiter | None = None
    """Backoff of failed requests (default: 5 ms..1000 s per item, 10 qps overall)."""
    need_leader_election: bool = True
    """Run only while this process leads (the manager decides)."""
    use_priority_queue: bool = True
    """Hand out fresh events before the backlog of an initial list (controller-runtime's
    ``UsePriorityQueue``, see ``workqueue``); False: one first-in, first-out queue."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    """Limits, backoff per error and hooks for failed reconciles (default: retry for ever)."""
    timer: Timer | None = None
    """Reconcile each live object of the primary kind periodically (needs ``for_``)."""
    skip_own_writes: bool = False
    """Do not wake for the event that only brings back what a reconcile of this controller
    wrote (see ``ownwrites``); off by default, as in controller-runtime: a reconciler that
    writes and returns, counting on that event to continue, needs it."""
    latest_result_wins: bool = False
    """Each reconcile that does not fail answers "when to look again" for its request in full:
    a delayed add of it asked for before the reconcile began and still waiting — a requeue or
    retry of an earlier reconcile, an event batched by its source (``batch`` on ``owns`` and
    ``watches``) — is dropped (a level-triggered reconciler that still needs it asks again; a
    timer's tick is armed anew). Off by default, as in controller-runtime, where every delayed
    requeue stays until it falls due — a pass that a later event made unnecessary."""


class Controller:
    """Owns its workqueue and worker threads: :meth:`start` spawns, :meth:`stop` joins.

    ``primary``: the kind it reconciles (the builder passes its ``for_``), so that a NotFound
    saying the request's object is gone ends the work; without it every NotFound is an error.
    A timer needs the primary's ``cached_version`` (which objects are live, and when they
    changed).
    """

    def __init__(self, name: str, reconciler: Reconciler | AsyncReconciler, *,
                 options: ControllerOptions = ControllerOptions(), clock: Clock | None = None,
                 recorder: Recorder | None = None, primary: Primary | None = None,
                 loop: EventLoop | None = None) -> None:
        self.name = name
        self.options = options
        self._reconciler = reconciler
        self._loop = loop
        if is_async(reconciler) and loop is None:
            raise ValueError(f"controller {name}: an async reconciler runs on the manager's "
                             "event loop: build it with manager.builder(...)")
        self._halt = threading.Event()
        self._primary = primary
        self._tracebacks = TracebackMemory()
        self._clock = clock or RealClock()
        limiter = options.rate_limiter or default_controller_rate_limiter(self._clock)
        self.queue: WorkQueue[Request] = WorkQueue(
            name=name, rate_limiter=limiter, clock=self._clock,
            metrics=recorder.workqueue if recorder else None, controller=name,
            priorities=options.use_priority_queue)
        self.retrier = Retrier(options.retry, limiter, self._clock)
        self.ticker: Ticker | None = None
        if options.timer is not None:
            if primary is None or primary.cached_version is None:
                raise ValueError("a timer ticks for the objects of the controller's kind: "
                                 "build the controller with for_")
            self.ticker = Ticker(options.timer, self.queue, primary.cached_version,
                                  self._clock)
        self._metrics: ControllerRecorder | None = (
            recorder.controller.register(name,
                                         max_concurrent_reconciles=options.max_concurrent_reconciles)
            if recorder else None)
        self._threads = Threads(f"controller {name}")
        self.own_writes: OwnWrites | None = OwnWrites(clock=self._clock) \
            if options.skip_own_writes else None
        """The versions this controller's reconciles wrote (with ``skip_own_writes``): what
        its event sources (:meth:`own_writes_of`) do not wake it for."""

    def own_writes_of(self, resource: Resource) -> OwnWritesOf | None:
        """What an event source of ``resource`` checks its events against (None: every
        event wakes the controller)."""
        return None if self.own_writes is None else self.own_writes.of(resource)

    def start(self) -> None:
        if self._loop is not None:
            self._threads.start(self._pump, name=f"{self.name}-pump")
        else:
            for index in range(self.options.max_concurrent_reconciles):
                self._threads.start(self._work, name=f"{self.name}-worker-{index}")
        log.info("controller started", extra={
            "controller": self.name, "workers": self.options.max_concurrent_reconciles,
            "mode": "async" if self._loop is not None else "threads"})

    def dead_threads(self) -> list[str]:
        """Workers (and the queue's delay thread) that ended before :meth:`stop`."""
        return self._threads.dead() + self.queue.dead_threads()

    def stop(self, timeout: float = 30.0) -> bool:
        """Take no new work (requests still queued are dropped, see ``workqueue``), wait for
        reconciles in flight and join the workers — all within ``timeout`` seconds together;
        workers that outlive it are logged. ``timeout=0`` stops without draining (lost
        leadership). Returns whether every in-flight reconcile finished."""
        deadline = Deadline(timeout)
        self._threads.stopping()
        self._halt.set()
        drained = self.queue.shutdown(drain=timeout > 0, timeout=timeout)
        alive = self._threads.join(deadline)
        return drained and not alive

    def _work(self) -> None:
        while (got := self.queue.get_with_priority()) is not None:
            request, priority = got
            with self._handling(request, priority):
                self.reconcile_once(request, priority)

    @contextlib.contextmanager
    def _handling(self, request: Request, priority: int) -> Iterator[None]:
        """Around one reconcile, threaded or async: the active-worker gauge, recovery from
        what fails outside the reconcile (which it settles itself), and ``done``."""
        try:
            with (self._metrics.active_worker() if self._metrics is not None
                  else contextlib.nullcontext()):
                yield
        except Exception:  # not the reconcile's (that is settled): ours, around it
            log.exception("handling a request failed outside its reconcile; retrying it",
                          extra={"controller": self.name, "request": str(request)})
            self.queue.add_after(request, _RECOVERY_DELAY, priority)
        finally:
            self.queue.done(request)

    def _pump(self) -> None:
        """The async path's one thread: hand requests to the loop as tasks, at most
        ``max_concurrent_reconciles`` at once (the workqueue keeps a request on one task).
        What is ready when a slot is free goes over in one batch: one wake-up of the loop
        for a backlog, not one per request."""
        assert self._loop is not None
        slots = threading.Semaphore(self.options.max_concurrent_reconciles)
        while True:
            while not slots.acquire(timeout=0.25):
                if self._halt.is_set():
                    return
            got = self.queue.get_with_priority()
            if got is None:
                return
            batch = [got]
            while slots.acquire(blocking=False):
                more = self.queue.get_with_priority(timeout=0)
                if more is None:
                    slots.release()
                    break
                batch.append(more)
            try:
                self._loop.loop.call_soon_threadsafe(self._start_tasks, batch, slots)
            except RuntimeError:  # the loop is closed (a stop in progress): nothing runs it
                for request, priority in batch:
                    slots.release()
                    self.queue.add_after(request, _RECOVERY_DELAY, priority)
                    self.queue.done(request)
                log.warning("the event loop is closed: %d request(s) put back", len(batch),
                            extra={"controller": self.name})

    def _start_tasks(self, batch: list[tuple[Request, int]],
                     slots: threading.Semaphore) -> None:
        """On the loop: one task per request, its slot freed when it ends."""
        assert self._loop is not None
        for request, priority in batch:
            task = self._loop.loop.create_task(self._run_async(request, priority))
            task.add_done_callback(lambda _: slots.release())

    async def _run_async(self, request: Request, priority: int) -> None:
        with self._handling(request, priority):
            await self.reconcile_once_async(request, priority)

    @contextlib.contextmanager
    def _reconciling(self, request: Request, started: float) -> Iterator[None]:
        """What every reconcile runs in: its log fields, deadline and attempt number."""
        timeout = self.options.reconcile_timeout
        with logcontext.bind(controller=self.name, request=str(request),
                             reconcile_id=_reconcile_id()), \
                deadline(started + timeout if timeout else None), \
                noting(self.own_writes), Attempting(self.retrier.attempt(request)):
            yield

    def reconcile_once(self, request: Request,
                       priority: int = NORMAL_PRIORITY) -> ReconcileResult:
        """Reconcile ``request`` and settle the outcome with the queue (a requeue or retry at
        ``priority``, the one it was handed out at, unless the result names another)."""
        started, asked = self._clock.monotonic(), self.queue.asked()
        with self._reconciling(request, started):
            try:
                result: Result | BaseException = self._reconciler.reconcile(  # type: ignore[assignment]
                    request)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                result = exc
            return self._settle(request, result, started, priority, asked)

    async def reconcile_once_async(self, request: Request,
                                   priority: int = NORMAL_PRIORITY) -> ReconcileResult:
        """:meth:`reconcile_once` for an async reconciler, on the loop; a reconcile past
        ``reconcile_timeout`` is cancelled and settles as a :class:`ReconcileTimeout`."""
        started, asked = self._clock.monotonic(), self.queue.asked()
        timeout = self.options.reconcile_timeout
        limit = asyncio.timeout(timeout) if timeout else None
        with self._reconciling(request, started):
            try:
                if limit is None:
                    result: Result | BaseException = await self._reconciler.reconcile(
                        request)  # type: ignore[misc]
                else:
                    async with limit:
                        result = await self._reconciler.reconcile(request)  # type: ignore[misc]
            except (KeyboardInterrupt, SystemExit, asyncio.CancelledError):
                raise  # a cancelled task (the loop stops) settles nothing
            except BaseException as exc:
                result = (ReconcileTimeout("reconcile deadline exceeded")
                          if limit is not None and limit.expired() else exc)
            return self._settle(request, result, started, priority, asked)

    def _settle(self, request: Request, result: Result | BaseException, started: float,
                priority: int, asked: int) -> ReconcileResult:
        """``asked``: the queue's count of delayed adds when the reconcile began."""
        seconds = self._clock.monotonic() - started
        terminal = False
        if isinstance(result, Result):
            outcome = self._requeue(request, result, priority, asked)
            self._ended(request)
        elif ends_work(result, self._primary, request):
            self.queue.forget(request)
            self._ended(request)
            outcome = ReconcileResult.SUCCESS
            log.debug("the object is gone: its NotFound ends the work", extra={
                "error": str(result)})
        elif isinstance(result, TerminalError):
            terminal, outcome = True, ReconcileResult.ERROR
            self._give_up(self.retrier.terminal(request, result, TERMINAL_ERROR,
                                                started=started))
        else:
            terminal = self._retry(request, result, started, priority)
            outcome = ReconcileResult.ERROR
        if self.ticker is not None and outcome is not ReconcileResult.ERROR:
            self.ticker.reconciled(request)
        if self._metrics is not None:
            if not isinstance(result, (Result, Exception)):
                self._metrics.panicked()
            if isinstance(result, ReconcileTimeout):
                self._metrics.timed_out()
            self._metrics.reconciled(outcome, seconds=seconds, terminal=terminal)
        return outcome

    def _requeue(self, request: Request, result: Result, priority: int,
                 asked: int) -> ReconcileResult:
        if result.priority is not None:
            priority = result.priority
        if self.options.latest_result_wins:
            # What was asked before this reconcile began, it has answered; a batched event
            # seen meanwhile (``EventSource``'s ``batch``) may bring what it did not read.
            self.queue.drop_delayed(request, asked_by=asked)
        if result.requeue_after > 0:
            self.queue.forget(request)
            self.queue.add_after(request, result.requeue_after, priority)
            return ReconcileResult.REQUEUE_AFTER
        if result.requeue:
            self.queue.add_rate_limited(request, priority=priority)
            return ReconcileResult.REQUEUE
        self.queue.forget(request)
        return ReconcileResult.SUCCESS

    def _ended(self, request: Request) -> None:
        """A reconcile that did not fail: the request's failure streak is over."""
        self.retrier.ended(request)
        self._tracebacks.forget(request)

    def _retry(self, request: Request, error: BaseException, started: float,
               priority: int) -> bool:
        """Back off as the retry policy says (by default the rate limiter), never sooner than
        the server's Retry-After; or give up. Returns whether the error is terminal."""
        verdict = self.retrier.failed(request, error, started=started)
        if isinstance(verdict, Terminal):
            self._give_up(verdict)
            return True
        self.queue.add_after(request, verdict.after, priority)
        self._log_failure(error, traceback=self._tracebacks.first(request, error))
        return False

    def _give_up(self, terminal: Terminal) -> None:
        """Not retried until the object changes: one WARNING line, then the policy's hook."""
        self._tracebacks.forget(terminal.request)
        if terminal.reason == TERMINAL_ERROR:
            log.warning("reconcile failed terminally (not retried until the object "
                        "changes): %s", terminal.error)
        else:
            log.warning("reconcile failed %d time(s) in %.1f s, giving up (%s; not retried "
                        "until the object changes): %s", terminal.attempts, terminal.seconds,
                        terminal.reason, terminal.error)
        hook = self.options.retry.on_give_up
        if hook is None:
            return
        try:
            hook(terminal)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # the hook's, not the reconcile's: logged, never retried
            log.warning("the retry policy's on_give_up hook failed: %r", exc)

    @staticmethod
    def _log_failure(error: BaseException, *, traceback: bool) -> None:
        """The traceback only when it is news (see ``tracebacks.py``)."""
        exc_info = error if traceback else None
        again = "" if traceback else " (the same error as before; traceback logged then)"
        if isinstance(error, ReconcileTimeout):
            log.error("reconcile timed out; will retry")
        elif isinstance(error, Exception):
            log.error("reconcile failed; will retry: %s%s", error, again, exc_info=exc_info)
        else:
            log.error("reconcile panicked (recovered); will retry: %r%s", error, again,
                      exc_info=exc_info)


def _reconcile_id() -> str:
    """Twelve hex digits naming one reconcile in the logs: from the process's pseudo-random
    generator, not ``uuid4`` (``os.urandom``: a system call that lets go of the GIL, and a
    worker waits for it back behind the other busy threads, at the start of every reconcile)."""
    return f"{random.getrandbits(48):012x}"
