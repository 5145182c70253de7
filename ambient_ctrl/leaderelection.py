"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

* A candidate acquires the lease when it does not exist, when its holder is empty (released),
  or when the holder has not renewed for ``lease_duration`` — measured on *this* process's
  clock from the moment it last saw the lease change, never by comparing clocks across
  machines.
* The leader renews every ``retry_period``; if it cannot renew for ``renew_deadline`` it stops
  leading (before anybody else may take over, since ``renew_deadline < lease_duration``).
  The deadline bounds each attempt as well: every request of a renewal gets only the time
  left before it (client-go passes a context with that deadline), so a hung API server cannot
  hold a renewal — and the discovery that leadership is lost — past the deadline.
* :meth:`LeaderElector.holds_lease` answers from the clock, not from the renewing thread: it
  turns False at the renewal deadline even if that thread is stuck or the whole process was
  frozen (SIGSTOP, a paused VM), so a write guard can refuse writes at once.
* A clean stop releases the lease (empty holder), so a standby takes over at once.
Writes use optimistic concurrency: two candidates racing for the lease cannot both win.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from foundation.clock import Clock, RealClock, rfc3339_micro
from informers.errors import NotFound
from informers.rest import ResourceClient
from metrics.leader import LeaderElectionMetrics

log = logging.getLogger(__name__)

_MIN_REQUEST_SECONDS = 0.001
"""Below this, no request is worth sending before the deadline."""


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"


class NotLeaderError(RuntimeError):
    """A write refused because this process may no longer be the leader."""


@dataclass(frozen=True, slots=True)
class LeaderElectionOptions:
    """Lease name and timing (client-go / controller-runtime defaults)."""

    name: str
    """The Lease object's name."""
    namespace: str
    """The Lease object's namespace."""
    identity: str = field(default_factory=default_identity)
    """This candidate's holder identity (unique per process)."""
    lease_duration: float = 15.0
    """Seconds a non-renewed lease stays valid for the others."""
    renew_deadline: float = 10.0
    """Seconds the leader keeps trying to renew before giving up leadership; also the most
    any acquire or renew attempt (its GET and PUT together) may take."""
    retry_period: float = 2.0
    """Seconds between attempts to acquire or renew."""
    release_on_cancel: bool = True
    """On a clean stop (not a loss), give the lease up (empty holder) so a standby takes over
    at once instead of waiting ``lease_duration``."""


class LeaderElector:
    """Campaign, lead, renew; call the callbacks. :meth:`run` blocks until stopped or lost."""

    def __init__(self, leases: ResourceClient, options: LeaderElectionOptions, *,
                 on_started_leading: Callable[[], None],
                 on_stopped_leading: Callable[[], None],
                 clock: Clock | None = None,
                 metrics: LeaderElectionMetrics | None = None) -> None:
        if options.renew_deadline >= options.lease_duration:
            raise ValueError("renew_deadline must be shorter than lease_duration")
        self._leases = leases
        self._options = options
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._clock = clock or RealClock()
        self._metrics = metrics
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self._lease: dict[str, Any] | None = None
        self._renewed_at: float | None = None
        """When the last successful write of the lease (acquire or renew) was sent."""
        self.leading = threading.Event()

    def holds_lease(self) -> bool:
        """Whether this candidate leads and its last renewal was sent less than
        ``renew_deadline`` ago: the others cannot have taken over yet. From the clock, so it
        is False at the deadline whatever the renewing thread is doing."""
        renewed = self._renewed_at
        return (self.leading.is_set() and renewed is not None
                and self._clock.monotonic() < renewed + self._options.renew_deadline)

    def lease_lost(self) -> bool:
        """Whether this candidate led and no longer holds the lease (lost, or released)."""
        return self._renewed_at is not None and not self.holds_lease()

    def run(self, stop: threading.Event) -> bool:
        """Acquire, then renew until ``stop`` (returns True) or leadership is lost (False)."""
        self._set_metric(False)
        while not stop.is_set() and not self._try_acquire_or_renew(
                self._clock.monotonic() + self._options.renew_deadline):
            self._clock.wait(stop, self._options.retry_period)
        if stop.is_set():
            if self._renewed_at is not None and self._options.release_on_cancel:
                self._release()  # acquired just as we were stopped
            return True
        log.info("became leader", extra={"lease": self._options.name,
                                          "identity": self._options.identity})
        self.leading.set()
        self._set_metric(True)
        self._on_started()
        kept = self._renew_until(stop)
        self.leading.clear()
        self._set_metric(False)
        if kept and self._options.release_on_cancel:
            self._release()
        self._on_stopped()
        return kept

    def _renew_until(self, stop: threading.Event) -> bool:
        """Renew every retry period until ``stop`` (True) or the renew deadline — the last
        successful renewal plus ``renew_deadline`` — passes without another (False). Loss is
        noticed at the deadline: the wait before an attempt and each request of it end there."""
        while True:
            assert self._renewed_at is not None
            deadline = self._renewed_at + self._options.renew_deadline
            left = deadline - self._clock.monotonic()
            if left <= 0:
                break
            if self._clock.wait(stop, min(self._options.retry_period, left)):
                return True
            if deadline - self._clock.monotonic() <= 0:
                break
            self._try_acquire_or_renew(deadline)  # success moves _renewed_at
        log.error("failed to renew the lease within the renew deadline; leadership lost",
                  extra={"lease": self._options.name})
        return False

    def _set_metric(self, leading: bool) -> None:
        if self._metrics is not None:
            self._metrics.set_leader(self._options.name, leading)

    def _spec(self, *, transitions: int, acquired: str | None) -> dict[str, Any]:
        now = rfc3339_micro(self._clock.now())
        spec: dict[str, Any] = {
            "holderIdentity": self._options.identity,
            "leaseDurationSeconds": max(1, round(self._options.lease_duration)),
            "renewTime": now, "leaseTransitions": transitions,
            "acquireTime": acquired or now,
        }
        return spec

    def _time_left(self, deadline: float) -> float | None:
        """Seconds a request may take before ``deadline``; None if not worth sending."""
        left = deadline - self._clock.monotonic()
        return left if left >= _MIN_REQUEST_SECONDS else None

    def _try_acquire_or_renew(self, deadline: float) -> bool:
        """One attempt, all of it (GET, then PUT or POST) before ``deadline``. Never raises:
        whatever goes wrong (a lease the server holds in a shape we cannot read, say) is a
        failed attempt, so the renewing thread cannot die of it and leave a leader that
        neither renews nor stops."""
        try:
            return self._attempt(deadline)
        except Exception:
            log.exception("lease attempt failed unexpectedly", extra={"lease": self._options.name})
            return False

    def _attempt(self, deadline: float) -> bool:
        options = self._options
        left = self._time_left(deadline)
        if left is None:
            return False
        try:
            lease = self._leases.get(options.name, options.namespace, timeout=left)
        except NotFound:
            return self._create(deadline)
        except Exception as exc:  # an attempt failed, whatever the reason: the next one decides
            log.warning("cannot read the lease: %s", exc)
            return False
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, str(spec.get("renewTime", "")))
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock.monotonic()
        mine = holder == options.identity
        expired = self._clock.monotonic() >= self._observed_at + options.lease_duration
        if holder and not mine and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        lease["spec"] = self._spec(transitions=transitions,
                                   acquired=spec.get("acquireTime") if mine else None)
        # A Conflict means another candidate won the race for this version of the lease.
        return self._write(lambda body, left: self._leases.update(body, timeout=left), lease,
                           deadline)

    def _create(self, deadline: float) -> bool:
        options = self._options
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": options.name, "namespace": options.namespace},
                 "spec": self._spec(transitions=0, acquired=None)}
        return self._write(lambda body, left: self._leases.create(body, timeout=left), lease,
                           deadline)

    def _write(self, write: Callable[[dict[str, Any], float], dict[str, Any]],
               lease: dict[str, Any], deadline: float) -> bool:
        """Store ``lease`` naming us before ``deadline``. On success we hold it as of the
        moment the write was sent: the others can have seen it no earlier."""
        left = self._time_left(deadline)
        if left is None:
            return False
        sent = self._clock.monotonic()
        try:
            self._lease = write(lease, left)
        except Exception as exc:  # an attempt failed, whatever the reason: the next one decides
            log.info("lease write failed: %s", exc)
            return False
        self._observed = (self._options.identity, self._lease["spec"]["renewTime"])
        self._observed_at = self._renewed_at = sent
        return True

    def _release(self) -> None:
        """Give the lease up so a standby need not wait for it to expire."""
        if self._lease is None:
            return
        lease = self._lease
        lease["spec"] = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1,
                         "renewTime": rfc3339_micro(self._clock.now())}
        try:
            self._leases.update(lease, timeout=self._options.retry_period)
            log.info("released the lease", extra={"lease": self._options.name})
        except Exception as exc:  # the lease then expires on its own
            log.warning("could not release the lease: %s", exc)
