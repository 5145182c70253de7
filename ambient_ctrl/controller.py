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
raised another ``Exception``           add rate-limited                      error
raised another ``BaseException``       add rate-limited; counted as a panic  error
=====================================  ====================================  ===============

Every requeue and retry keeps the priority the request was handed out at (a request of an
initial list stays behind fresh events), unless the ``Result`` names one, as in
controller-runtime.

``KeyboardInterrupt`` and ``SystemExit`` are not swallowed. Every log line of a reconcile
carries ``controller``, ``request`` and ``reconcile_id``; errors are logged once, here:

* a NotFound that ends the work: one DEBUG line — the object was deleted, nothing is wrong;
* a ``TerminalError`` (bad input): one WARNING line with its message, no traceback;
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

import logging
import uuid
from dataclasses import dataclass

from foundation.clock import Clock, RealClock
from foundation.threads import Deadline, Threads
from metrics.controller import ControllerRecorder, ReconcileResult
from metrics.recorder import Recorder

from . import logcontext
from .notfound import Primary, ends_work
from .ratelimit import RateLimiter
from .reconcile import Reconciler, ReconcileTimeout, Request, Result, TerminalError, deadline
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


class Controller:
    """Owns its workqueue and worker threads: :meth:`start` spawns, :meth:`stop` joins.

    ``primary``: the kind it reconciles (the builder passes its ``for_``), so that a NotFound
    saying the request's object is gone ends the work; without it every NotFound is an error.
    """

    def __init__(self, name: str, reconciler: Reconciler, *,
                 options: ControllerOptions = ControllerOptions(), clock: Clock | None = None,
                 recorder: Recorder | None = None, primary: Primary | None = None) -> None:
        self.name = name
        self.options = options
        self._reconciler = reconciler
        self._primary = primary
        self._tracebacks = TracebackMemory()
        self._clock = clock or RealClock()
        self.queue: WorkQueue[Request] = WorkQueue(
            name=name, rate_limiter=options.rate_limiter, clock=self._clock,
            metrics=recorder.workqueue if recorder else None, controller=name,
            priorities=options.use_priority_queue)
        self._metrics: ControllerRecorder | None = (
            recorder.controller.register(name,
                                         max_concurrent_reconciles=options.max_concurrent_reconciles)
            if recorder else None)
        self._threads = Threads(f"controller {name}")

    def start(self) -> None:
        for index in range(self.options.max_concurrent_reconciles):
            self._threads.start(self._work, name=f"{self.name}-worker-{index}")
        log.info("controller started", extra={
            "controller": self.name, "workers": self.options.max_concurrent_reconciles})

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
        drained = self.queue.shutdown(drain=timeout > 0, timeout=timeout)
        alive = self._threads.join(deadline)
        return drained and not alive

    def _work(self) -> None:
        while (got := self.queue.get_with_priority()) is not None:
            request, priority = got
            try:
                if self._metrics is not None:
                    with self._metrics.active_worker():
                        self.reconcile_once(request, priority)
                else:
                    self.reconcile_once(request, priority)
            except Exception:  # not the reconcile's (that is settled): ours, around it
                log.exception("handling a request failed outside its reconcile; retrying it",
                              extra={"controller": self.name, "request": str(request)})
                self.queue.add_after(request, _RECOVERY_DELAY, priority)
            finally:
                self.queue.done(request)

    def reconcile_once(self, request: Request,
                       priority: int = NORMAL_PRIORITY) -> ReconcileResult:
        """Reconcile ``request`` and settle the outcome with the queue (a requeue or retry at
        ``priority``, the one it was handed out at, unless the result names another)."""
        reconcile_id = uuid.uuid4().hex[:12]
        started = self._clock.monotonic()
        timeout = self.options.reconcile_timeout
        with logcontext.bind(controller=self.name, request=str(request),
                             reconcile_id=reconcile_id), \
                deadline(started + timeout if timeout else None):
            try:
                result: Result | BaseException = self._reconciler.reconcile(request)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                result = exc
            return self._settle(request, result, self._clock.monotonic() - started, priority)

    def _settle(self, request: Request, result: Result | BaseException, seconds: float,
                priority: int) -> ReconcileResult:
        terminal = False
        if isinstance(result, Result):
            if result.priority is not None:
                priority = result.priority
            if result.requeue_after > 0:
                self.queue.forget(request)
                self.queue.add_after(request, result.requeue_after, priority)
                outcome = ReconcileResult.REQUEUE_AFTER
            elif result.requeue:
                self.queue.add_rate_limited(request, priority=priority)
                outcome = ReconcileResult.REQUEUE
            else:
                self.queue.forget(request)
                outcome = ReconcileResult.SUCCESS
            self._tracebacks.forget(request)
        elif ends_work(result, self._primary, request):
            self.queue.forget(request)
            self._tracebacks.forget(request)
            outcome = ReconcileResult.SUCCESS
            log.debug("the object is gone: its NotFound ends the work", extra={
                "error": str(result)})
        elif isinstance(result, TerminalError):
            self.queue.forget(request)
            self._tracebacks.forget(request)
            terminal, outcome = True, ReconcileResult.ERROR
            log.warning("reconcile failed terminally (not retried until the object "
                        "changes): %s", result)
        else:
            self._retry(request, result, priority)
            outcome = ReconcileResult.ERROR
            self._log_failure(result, traceback=self._tracebacks.first(request, result))
        if self._metrics is not None:
            if not isinstance(result, (Result, Exception)):
                self._metrics.panicked()
            if isinstance(result, ReconcileTimeout):
                self._metrics.timed_out()
            self._metrics.reconciled(outcome, seconds=seconds, terminal=terminal)
        return outcome

    def _retry(self, request: Request, error: BaseException, priority: int) -> None:
        """Back off as the rate limiter says, but never sooner than the server's Retry-After."""
        retry_after = getattr(error, "retry_after", None)
        if not isinstance(retry_after, (int, float)):
            retry_after = 0.0
        self.queue.add_rate_limited(request, at_least=retry_after, priority=priority)

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
