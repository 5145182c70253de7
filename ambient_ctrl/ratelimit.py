"""Rate limiters: how long a failing item waits before it is handed out again.

client-go's set: per-item exponential backoff (5 ms doubling to 1000 s), an overall token bucket
(10 qps, burst 100) so a mass failure cannot flood the API server, the max of several, and
:func:`default_controller_rate_limiter` combining the first two like controller-runtime.

Whatever a limiter returns, the workqueue saturates it (NaN and negatives are "now", anything
over a year is a year): a limiter of an operator's own cannot stop the queue's timers.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Protocol

from foundation.clock import Clock, RealClock


class RateLimiter(Protocol):
    """Guarantees: ``when`` is thread-safe, never negative, and counts a failure for ``item``;
    ``forget`` clears the item's history; ``num_requeues`` is the failures since then."""

    def when(self, item: Hashable) -> float: ...

    def forget(self, item: Hashable) -> None: ...

    def num_requeues(self, item: Hashable) -> int: ...


class ItemExponentialRateLimiter:
    """``base * 2**failures``, capped at ``maximum``, per item."""

    def __init__(self, base: float = 0.005, maximum: float = 1000.0) -> None:
        self._base = base
        self._max = maximum
        self._failures: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def when(self, item: Hashable) -> float:
        with self._lock:
            failures = self._failures.get(item, 0)
            self._failures[item] = failures + 1
        if failures > 64:  # 2**64 * base is past any cap; avoid float overflow
            return self._max
        return min(self._base * (2 ** failures), self._max)

    def forget(self, item: Hashable) -> None:
        with self._lock:
            self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        with self._lock:
            return self._failures.get(item, 0)


class BucketRateLimiter:
    """A token bucket shared by all items (golang.org/x/time/rate's reservation semantics):
    each ``when`` reserves a token and returns how long until it is available."""

    def __init__(self, qps: float = 10.0, burst: int = 100, *, clock: Clock | None = None) -> None:
        if not qps > 0 or burst < 1:
            raise ValueError("a token bucket needs qps > 0 and a burst of at least 1")
        self._qps = qps
        self._burst = float(burst)
        self._clock = clock or RealClock()
        self._tokens = float(burst)
        self._last = self._clock.monotonic()
        self._lock = threading.Lock()

    def when(self, item: Hashable) -> float:
        with self._lock:
            now = self._clock.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._qps)
            self._last = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self._qps

    def forget(self, item: Hashable) -> None:
        pass

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest wait any of the limiters asks for."""

    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self._limiters = limiters

    def when(self, item: Hashable) -> float:
        return max(limiter.when(item) for limiter in self._limiters)

    def forget(self, item: Hashable) -> None:
        for limiter in self._limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(limiter.num_requeues(item) for limiter in self._limiters)


def default_controller_rate_limiter(clock: Clock | None = None) -> RateLimiter:
    """controller-runtime's default: per-item 5 ms..1000 s, overall 10 qps with burst 100."""
    return MaxOfRateLimiter(ItemExponentialRateLimiter(0.005, 1000.0),
                            BucketRateLimiter(10.0, 100, clock=clock))
