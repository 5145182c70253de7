"""Where a pod's container port is really served on this machine, if anywhere.

A simulated pod has an IP (10.244.x.y) that nothing listens on. A process that stands in for
one of its containers (the runner stand-in, :mod:`.simulators.standin`) listens on 127.0.0.1
instead, and registers here under the pod's UID and the container ports it stands for; the
Service proxy (:mod:`.proxy`) looks the address up to reach the pod. Touched only from the
server's loop thread.
"""

from __future__ import annotations

from collections.abc import Iterable


class PodEndpoints:
    """(pod UID, container port) -> ``(host, port)`` on this machine.

    A registration with the port ``None`` stands for every port of the pod (a container that
    declares none: Kubernetes lets a pod serve on ports its spec does not list).
    """

    def __init__(self) -> None:
        self._addresses: dict[tuple[str, int | None], tuple[str, int]] = {}

    def add(self, uid: str, ports: Iterable[int | None], address: tuple[str, int]) -> None:
        for port in ports:
            self._addresses[(uid, port)] = address

    def remove(self, address: tuple[str, int]) -> None:
        """Forget every registration of ``address`` (its process stopped)."""
        for key in [k for k, a in self._addresses.items() if a == address]:
            del self._addresses[key]

    def lookup(self, uid: str, port: int) -> tuple[str, int] | None:
        return self._addresses.get((uid, port)) or self._addresses.get((uid, None))

    def __len__(self) -> int:
        return len(self._addresses)
