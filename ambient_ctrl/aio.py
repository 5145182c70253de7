"""Async reconcilers: ``async def reconcile(...)`` on one event loop the manager owns.

A reconciler whose ``reconcile`` is a coroutine function runs as a coroutine; everything else
about its controller is the threaded one's (``controller.py``): the same workqueue (a request
is never reconciled twice at once, a request added while in flight comes back once after,
rate limits, priorities), the same outcome table, retry policy, timers, metrics and log
context. What differs:

* **Where it runs**: on :class:`EventLoop`, one asyncio loop in one thread, shared by every
  async controller of the manager (started before them, stopped after them). Per controller,
  a pump thread takes requests from the workqueue and starts one task per request, at most
  ``max_concurrent_reconciles`` at once — so a slow reconcile that awaits costs a task, not a
  thread.
* **Timeouts are real**: ``reconcile_timeout`` cancels the task (``asyncio.timeout``) where
  the threaded path can only check the deadline before each request.
* **The client**: :class:`AsyncClient` offers the :class:`~ambient_ctrl.client.Client`'s verbs
  as coroutines. Reads from a synced cache are answered in place (memory, no I/O); a first read
  that must wait for a cache to sync, and every write, runs in the loop's executor (a bounded
  thread pool), carrying the reconcile's context (its deadline and log fields) — the HTTP
  client underneath is the same blocking, pooled urllib3 one, kept off the loop.

Sync and async controllers mix in one manager. The cost per reconcile against the threaded
path is measured by ``bench/reconcile_overhead.py``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Protocol, TypeVar

from foundation.threads import Deadline, Threads

from .client import Client, Obj
from .reconcile import Request, Result

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_EXECUTOR_WORKERS = 4
"""Executor threads when no async controller reserved any (each reserves its concurrency)."""


class AsyncReconciler(Protocol):
    """``reconcile`` as a coroutine; the contract is :class:`~ambient_ctrl.reconcile.
    Reconciler`'s (idempotent, level-based; return a :class:`Result` or raise)."""

    async def reconcile(self, request: Request) -> Result: ...


def is_async(reconciler: object) -> bool:
    """Whether ``reconciler.reconcile`` is a coroutine function."""
    return inspect.iscoroutinefunction(getattr(reconciler, "reconcile", None))


class EventLoop:
    """One asyncio event loop in a thread of its own, and its executor for blocking calls.

    A manager runnable (``start``/``stop``); ``submit`` hands it a coroutine from any thread.
    Controllers :meth:`reserve` executor threads before it starts (one per concurrent reconcile
    they may run), so their blocking calls never queue behind each other's.
    """

    def __init__(self, name: str = "event-loop") -> None:
        self.name = name
        self._loop = asyncio.new_event_loop()
        self._threads = Threads(name)
        self._workers = 0
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()

    def reserve(self, workers: int) -> None:
        """Make room in the executor for ``workers`` more blocking calls at once."""
        with self._lock:
            if self._executor is not None:
                raise RuntimeError("reserve executor threads before the loop starts")
            self._workers += workers

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def start(self) -> None:
        with self._lock:
            if self._executor is not None:
                return
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._workers or DEFAULT_EXECUTOR_WORKERS,
                thread_name_prefix=f"{self.name}-executor")
            self._loop.set_default_executor(self._executor)
        self._threads.start(self._run, name=self.name)
        self._ready.wait(10)
        log.info("event loop started", extra={"executor_workers": self._workers})

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        self._loop.run_forever()

    def submit(self, coroutine: Awaitable[T]) -> concurrent.futures.Future[T]:
        """Run ``coroutine`` on the loop (from any thread); its future."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]

    async def run_blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in the executor, in the calling task's context (its
        reconcile deadline and log fields travel with it)."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args, **kwargs)
        return await self._loop.run_in_executor(None, call)

    def dead_threads(self) -> list[str]:
        return self._threads.dead()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the loop (tasks still running are cancelled) and its executor, within
        ``timeout`` seconds; whether all ended."""
        deadline = Deadline(timeout)
        self._threads.stopping()
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._cancel_and_stop)
        alive = self._threads.join(deadline)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if not alive and not self._loop.is_closed():
            self._loop.close()
        return not alive

    def _cancel_and_stop(self) -> None:
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        self._loop.stop()


class AsyncClient:
    """A :class:`~ambient_ctrl.client.Client`'s verbs as coroutines (see the module's
    docstring): ``await client.get(PODS, name, ns)``, ``await client.patch(...)``."""

    def __init__(self, client: Client, loop: EventLoop) -> None:
        self.sync = client
        """The underlying client (its cache, mapper, field manager)."""
        self._loop = loop

    async def get(self, resource: Any, name: str, namespace: str | None = None) -> Obj | None:
        if self.sync.informer_synced(resource):
            return self.sync.get(resource, name, namespace)
        return await self._loop.run_blocking(self.sync.get, resource, name, namespace)

    async def list(self, resource: Any, namespace: str | None = None,
                   **selectors: Any) -> list[Obj]:
        if self.sync.informer_synced(resource):
            return self.sync.list(resource, namespace, **selectors)
        return await self._loop.run_blocking(self.sync.list, resource, namespace, **selectors)

    def __getattr__(self, verb: str) -> Callable[..., Awaitable[Any]]:
        """Every other verb of the client (create, update, patch, patch_status, apply,
        delete, mutate, ...), run in the executor."""
        if verb.startswith("_") or verb not in _WRITES:
            raise AttributeError(f"{type(self).__name__} has no verb {verb!r}")
        method = getattr(self.sync, verb)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._loop.run_blocking(method, *args, **kwargs)

        call.__name__ = call.__qualname__ = verb
        return call


_WRITES: Collection[str] = frozenset({
    "create", "create_subresource", "update", "update_status", "patch", "patch_status",
    "apply", "apply_status", "delete", "mutate"})
"""The client's verbs that go to the server (reads from the cache are answered in place)."""
