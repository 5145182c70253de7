"""The reflector's backoff: exponential with jitter, and one reset rule.

The n-th failure in a row waits ``min(initial * 2**(n-1) + U(0, initial), maximum)`` — 0.8 s
doubling to 30 s by default, each with up to ``initial`` of jitter so that clients cut off
together do not come back together — or the server's Retry-After when that is longer.

The one reset rule: :meth:`Backoff.reset` is called when a watch *worked* (the reflector's
state machine says when: :func:`informers.reflector_state.step` emits ``ResetBackoff``). The
failure after it is the first of a new series and waits only the jitter, ``U(0, initial)``: a
watch that worked and then broke was most likely cut by an API server restarting or a load
balancer closing long connections, and the cache should not stay blind for 30 s because the
same happened an hour ago. The series then doubles as usual from ``initial``. A new backoff
has seen nothing work yet, so its first failure already waits ``initial`` (plus jitter).

Nothing else resets it — not a list that completed, not a watch that merely opened: a server
that answers those and then fails every watch at once is still failing.
"""

from __future__ import annotations

import random

_MAX_DOUBLINGS = 62
"""Past this the delay is far beyond any cap; it keeps ``2 ** n`` finite."""


class Backoff:
    """Delays between failed attempts (not thread-safe: one reflector thread uses it)."""

    def __init__(self, *, initial: float, maximum: float, rng: random.Random) -> None:
        self._initial = initial
        self._maximum = maximum
        self._random = rng
        self._next = 1
        """Which failure in a row the next one is; 0 after :meth:`reset` (only the jitter)."""

    def reset(self) -> None:
        """Something worked: the next failure waits only the jitter and starts a new series."""
        self._next = 0

    def next_delay(self, retry_after: float | None = None) -> float:
        """Seconds to wait after a failure (``retry_after``: what the server asked, if it
        did); counts the failure."""
        n = self._next
        self._next = n + 1
        jitter = self._random.uniform(0, self._initial)
        if n == 0:
            delay = jitter
        else:
            delay = min(self._initial * 2 ** min(n - 1, _MAX_DOUBLINGS) + jitter, self._maximum)
        return max(delay, retry_after) if retry_after else delay
