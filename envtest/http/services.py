"""Where a Service port leads on this machine: kube's endpoint resolution, shared by the
Service proxy (:mod:`.proxy`) and the webhook client (:mod:`envtest.webhooks.client`).

A Service **with a selector** leads to the pods it picks that have an IP, are not being
deleted or finished, and are Ready (any such pod with ``publishNotReadyAddresses``), as the
endpoints controller lists them; a simulated pod's port is served on this machine only where
a stand-in registered it (``cluster.endpoints``). A Service **without a selector** leads where
its manually written Endpoints object says (``subsets[].addresses`` and ``ports``, matched to
the Service port by name) — how a cluster points a Service at an address outside it; here an
address is reachable when it is a loopback address, or a pod (``targetRef``) with a stand-in.

Errors are kube's (:class:`envtest.errors.APIError`): 404 ``services "x" not found`` /
``endpoints "x" not found``, 503 ``no service port N found for service "x"`` and ``no
endpoints available for service "x"``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from envtest import errors
from envtest.cluster import Cluster


@dataclass(frozen=True, slots=True)
class Backend:
    """The endpoint a request goes to."""

    ip: str
    port: int
    address: tuple[str, int] | None
    """Where that port is really served on this machine; None: nowhere."""

    @property
    def dialed(self) -> str:
        return f"{self.ip}:{self.port}"


def resolve(cluster: Cluster, namespace: str, name: str, port: str, *,
            shown: str = "") -> Backend:
    """The endpoint of Service ``namespace/name`` for ``port`` (a number of the Service, a
    port name, or ``""`` for its unnamed port): one served on this machine when there is one,
    else the first. ``shown`` names the service in errors (default ``name``)."""
    service = _service(cluster, namespace, name, numbered=port.isdigit())
    spec = service.get("spec") or {}
    ports = [p for p in spec.get("ports") or () if isinstance(p, dict)]
    if port.isdigit():
        declared = next((p for p in ports if p.get("port") == int(port)), None)
        if declared is None:
            raise unavailable(f'no service port {int(port)} found for service "{name}"')
        port = str(declared.get("name") or "")
    service_ports = [p for p in ports if str(p.get("name") or "") == port]
    if spec.get("selector"):
        candidates = list(_pod_candidates(cluster, namespace, spec, service_ports, name))
    else:
        candidates = list(_endpoints_candidates(cluster, namespace, name, port))
    if not candidates:
        raise unavailable(f'no endpoints available for service "{shown or name}"')
    return next((c for c in candidates if c.address is not None), candidates[0])


def unavailable(message: str) -> errors.APIError:
    """kube's 503 ServiceUnavailable."""
    return errors.APIError(503, "ServiceUnavailable", message)


def _service(cluster: Cluster, namespace: str, name: str, *, numbered: bool) -> dict[str, Any]:
    stored = cluster.store.get("services", (namespace, name))
    if stored is None:
        # kube reads the Service only to map a port number, else the Endpoints object.
        raise errors.not_found("services" if numbered else "endpoints", "", name)
    service: dict[str, Any] = stored.load()
    return service


def _pod_candidates(cluster: Cluster, namespace: str, spec: dict[str, Any],
                    service_ports: list[dict[str, Any]], name: str) -> Iterator[Backend]:
    pods = list(ready_pods(cluster, namespace, spec))
    if not pods:
        raise unavailable(f'no endpoints available for service "{name}"')
    for service_port in service_ports:
        for pod in pods:
            number = target_port(service_port, pod)
            if number is not None:
                address = cluster.endpoints.lookup(pod["metadata"].get("uid", ""), number)
                yield Backend(pod["status"]["podIP"], number, address)


def _endpoints_candidates(cluster: Cluster, namespace: str, name: str,
                          port: str) -> Iterator[Backend]:
    stored = cluster.store.get("endpoints", (namespace, name))
    if stored is None:
        raise errors.not_found("endpoints", "", name)
    for subset in stored.load().get("subsets") or ():
        numbers = [p.get("port") for p in subset.get("ports") or ()
                   if isinstance(p, dict) and str(p.get("name") or "") == port]
        for number in (n for n in numbers if isinstance(n, int)):
            for address in subset.get("addresses") or ():
                ip = str(address.get("ip") or "")
                if ip:
                    yield Backend(ip, number, _reachable(cluster, address, ip, number))


def _reachable(cluster: Cluster, address: dict[str, Any], ip: str,
               port: int) -> tuple[str, int] | None:
    try:
        if ipaddress.ip_address(ip).is_loopback:
            return ip, port
    except ValueError:
        return None
    ref = address.get("targetRef") or {}
    if ref.get("kind") == "Pod" and ref.get("uid"):
        return cluster.endpoints.lookup(str(ref["uid"]), port)
    return None


def ready_pods(cluster: Cluster, namespace: str, spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The pods the endpoints controller would list as ready addresses, by name."""
    selector: dict[str, Any] = spec.get("selector") or {}
    not_ready_too = spec.get("publishNotReadyAddresses") is True
    for _, stored in cluster.store.items("pods", namespace):
        if stored.deleting or any(stored.labels.get(k) != v for k, v in selector.items()):
            continue
        pod = stored.load()
        status = pod.get("status") or {}
        if not status.get("podIP") or status.get("phase") in ("Succeeded", "Failed"):
            continue
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in status.get("conditions") or ())
        if ready or not_ready_too:
            yield pod


def target_port(service_port: dict[str, Any], pod: dict[str, Any]) -> int | None:
    """The pod port a Service port leads to (``targetPort`` by number or container port name,
    else the port itself); None when the pod declares no port of that name."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or ():
        for declared in container.get("ports") or ():
            if declared.get("name") == target and isinstance(declared.get("containerPort"), int):
                return int(declared["containerPort"])
    return None
