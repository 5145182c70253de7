"""Joining the threads an object owns against one deadline, and saying which outlived it.

Every long-lived thread has an owner that starts, stops and joins it. A stop with a timeout
gives all of its threads that timeout together (not each of them in turn), and a thread still
alive after it is logged by name: a hung thread is a bug to see, not to wait for silently.

Joins and condition waits run in real time whatever clock their owner uses for its logic (a
fake clock cannot make a thread finish sooner), so a :class:`Deadline` always reads the real
monotonic clock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

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
             owner: str) -> list[threading.Thread]:
    """Join ``threads`` by ``deadline`` (or within that many seconds, in total); log and
    return those still alive. Threads never started, and the calling thread, are skipped."""
    if not isinstance(deadline, Deadline):
        deadline = Deadline(deadline)
    alive = []
    for thread in threads:
        if thread.ident is None or thread is threading.current_thread():
            continue
        thread.join(deadline.remaining())
        if thread.is_alive():
            alive.append(thread)
    if alive:
        log.warning("threads outlived their join on stop: %s", ", ".join(t.name for t in alive),
                    extra={"owner": owner, "threads": [t.name for t in alive]})
    return alive
