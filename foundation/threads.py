"""The threads an object owns: started named, watched, joined against one deadline.

Every long-lived thread has an owner that starts, stops and joins it. A stop with a timeout
gives all of its threads that timeout together (not each of them in turn), and a thread still
alive after it is logged by name: a hung thread is a bug to see, not to wait for silently.

A long-lived thread's loop catches what the work it runs raises (logs it with its traceback,
backs off, carries on): one bad value must not stop every timer of a process. Should a thread
die anyway, or return while its owner still runs, :class:`Threads` says so by name
(:meth:`Threads.dead`), and the manager's ``/healthz`` turns red with it (its ``threads``
check): a process whose reflector, workers or delay thread are gone is not alive, whatever its
HTTP server answers.

Joins and condition waits run in real time whatever clock their owner uses for its logic (a
fake clock cannot make a thread finish sooner), so a :class:`Deadline` always reads the real
monotonic clock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .clock import RealClock

log = logging.getLogger(__name__)


class Deadline:
    """A moment ``seconds`` from now, on the real monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self._clock = RealClock()
        self._at = self._clock.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left (0 once passed)."""
        return max(self._at - self._clock.monotonic(), 0.0)


def join_all(threads: Iterable[threading.Thread], deadline: Deadline | float, *,
             owner: str, warn: bool = True) -> list[threading.Thread]:
    """Join ``threads`` by ``deadline`` (or within that many seconds, in total); log and
    return those still alive. Threads never started, and the calling thread, are skipped.

    ``warn=False`` leaves the log to the caller, for whom a thread alive at this deadline is
    not yet late (the observability server cuts the connections still open, then joins
    again)."""
    if not isinstance(deadline, Deadline):
        deadline = Deadline(deadline)
    alive = []
    for thread in threads:
        if thread.ident is None or thread is threading.current_thread():
            continue
        thread.join(deadline.remaining())
        if thread.is_alive():
            alive.append(thread)
    if alive and warn:
        log.warning("threads outlived their join on stop: %s", ", ".join(t.name for t in alive),
                    extra={"owner": owner, "threads": [t.name for t in alive]})
    return alive


class Watched(Protocol):
    """An owner of threads that can tell which of them ended while they should run."""

    def dead_threads(self) -> list[str]:
        """``name: how it ended`` for each thread that died, or returned, before its owner
        began to stop (empty while all is well)."""
        ...


class Threads:
    """The long-lived threads of one owner.

    :meth:`start` runs each target under a guard that remembers how the thread ended; an end
    before :meth:`stopping` was called — an exception the thread's own loop did not handle
    (logged here, with its traceback, at CRITICAL), or a return — is reported by :meth:`dead`.
    The owner calls :meth:`stopping` *before* it tells its threads to end, so their orderly
    ends are not mistaken for deaths. Thread-safe.
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._dead: dict[str, str] = {}
        self._stopping = False

    def start(self, target: Callable[..., object], *args: Any, name: str) -> threading.Thread:
        """Start ``target(*args)`` on a new thread called ``name``."""
        thread = threading.Thread(target=self._guard, args=(target, args), name=name)
        with self._lock:
            self._threads.append(thread)
        thread.start()
        return thread

    def stopping(self) -> None:
        """From now on threads are expected to end (idempotent)."""
        with self._lock:
            self._stopping = True

    @property
    def threads(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._threads)

    def dead(self) -> list[str]:
        """``name: how it ended`` for every thread that ended while it should have run."""
        with self._lock:
            return [f"{name}: {how}" for name, how in self._dead.items()]

    def join(self, deadline: Deadline | float) -> list[threading.Thread]:
        """:func:`join_all` of every thread started here."""
        return join_all(self.threads, deadline, owner=self.owner)

    def _guard(self, target: Callable[..., object], args: tuple[Any, ...]) -> None:
        name = threading.current_thread().name
        try:
            target(*args)
        except BaseException as exc:  # recorded and logged here; re-raising would only print
            self._ended(name, f"died of {type(exc).__name__}: {exc}")
            log.critical("thread died: %s", name, exc_info=exc,
                         extra={"owner": self.owner, "thread_name": name})
            return
        self._ended(name, "returned while it should run")

    def _ended(self, name: str, how: str) -> None:
        with self._lock:
            if self._stopping:
                return
            self._dead[name] = how
        if how.startswith("returned"):
            log.critical("thread ended while it should run: %s", name,
                         extra={"owner": self.owner, "thread_name": name})
