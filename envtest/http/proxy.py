"""The Service proxy subresource: ``/api/v1/namespaces/NS/services/ID/proxy[/PATH]``.

Served as kube-apiserver serves it (the service registry's ``ResourceLocation`` and
apimachinery's proxy handler), so a test reaches a pod through the API server alone, as a
client outside the cluster network does on a real cluster:

* ``ID`` is ``name``, ``name:port`` or ``scheme:name:port`` (scheme ``http`` or ``https``;
  anything else is 400 ``invalid service request``). A port *number* stands for the Service
  port declaring it (none: 503 ``no service port N found for service "x"``); a port *name* is
  taken as is; **no port means the Service's unnamed port** — kube's rule, so a Service whose
  only port has a name (``agui``) must be called with that name or number.
* The endpoints are the pods the Service's selector picks that have an IP, are not being
  deleted or finished, and are Ready (any such pod with ``publishNotReadyAddresses``), as the
  endpoints controller makes them. None: 503 ``no endpoints available for service "x"``;
  endpoints, but none serving the asked port: 503 ``no endpoints available for service
  "x:port"``. A missing Service: 404 — ``services "x" not found`` when the port is a number,
  else ``endpoints "x" not found`` (kube reads the Endpoints object then; a Service without a
  selector has none either).
* The request goes to the pod's port: method, the path after ``/proxy`` (else the ``path``
  query parameter), the query as sent, the headers less hop-by-hop ones and ``Authorization``
  (the API server consumed it), the body. The answer comes back as the pod gave it: status,
  headers, body. ``GET`` or ``HEAD`` of ``…/proxy`` with no path is redirected (301) to
  ``…/proxy/``, as kube does.
* Nothing listens on a simulated pod's IP: a pod port is reachable only where a stand-in
  registered it (:mod:`.endpoints`, :mod:`.simulators.standin`). Otherwise, and when the
  exchange fails, the answer is kube's 503 ``error trying to reach service: dial tcp
  <podIP>:<port>: connect: connection refused`` (or what went wrong).

Differences from kube: it picks an endpoint at random, this proxy the first Ready pod (by
name) that has a stand-in, else the first; only plain HTTP is spoken (``https:`` fails as Go's
TLS client fails against a plain server); HTML bodies and ``Location`` headers are not
rewritten; no protocol upgrades (websockets). The exchange runs on the server's loop and never
blocks it; exchanges in flight are cancelled when the server stops (:meth:`ServiceProxy.close`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.http.protocol import Answer, Request, Response

METHODS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
           "DELETE": "delete", "OPTIONS": "options"}
"""The methods proxied, with the verb kube-apiserver's request info gives each (what
``cluster.requests`` counts and fault rules match)."""
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailer", "transfer-encoding", "upgrade"})
_NOT_FORWARDED = _HOP_BY_HOP | {"host", "content-length", "expect", "authorization"}
_NOT_RETURNED = _HOP_BY_HOP | {"content-length", "content-type"}
_SCHEMES = ("", "http", "https")
_PATH_SAFE = "/:@!$&'()*+,;="
_PREFIX_SEGMENTS = 7
"""``api/v1/namespaces/NS/services/ID/proxy``: what comes after is the proxied path."""


def proxy_path(namespace: str, service: str, port: int | str = "", path: str = "/") -> str:
    """The URL path that reaches ``path`` on a Service's pods through the API server:
    ``/api/v1/namespaces/NS/services/NAME[:PORT]/proxy/PATH``."""
    service_id = f"{service}:{port}" if port != "" else service
    return f"/api/v1/namespaces/{namespace}/services/{service_id}/proxy/{path.lstrip('/')}"


@dataclass(frozen=True, slots=True)
class _Backend:
    """The pod port a request goes to."""

    pod_ip: str
    port: int
    address: tuple[str, int] | None
    """Where that port is really served on this machine; None: nowhere."""
    scheme: str

    @property
    def dialed(self) -> str:
        return f"{self.pod_ip}:{self.port}"


class ServiceProxy:
    """Forwards ``services/proxy`` requests; owns the exchanges in flight (loop thread only)."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._tasks: set[asyncio.Future[Answer]] = set()

    def __call__(self, target: Target, request: Request) -> Answer | asyncio.Future[Answer]:
        backend = self._backend(target)
        path = _proxied_path(request)
        if path is None and request.method in ("GET", "HEAD"):
            query = urlsplit(request.target).query
            location = request.path + "/" + (f"?{query}" if query else "")
            return Response(301, b"", "text/plain; charset=utf-8", {"Location": location})
        if backend.address is None:
            return _unreachable(f"dial tcp {backend.dialed}: connect: connection refused")
        task: asyncio.Future[Answer] = self._cluster.loop.create_task(
            self._forward(backend, request, path or "/"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def close(self) -> None:
        """Cancel the exchanges in flight (the server is stopping)."""
        for task in list(self._tasks):
            task.cancel()

    # where to ------------------------------------------------------------------------------------
    def _backend(self, target: Target) -> _Backend:
        scheme, name, port = _split_id(target.name)
        service = self._service(target.namespace, name, numbered=port.isdigit())
        spec = service.get("spec") or {}
        ports = [p for p in spec.get("ports") or () if isinstance(p, dict)]
        if port.isdigit():
            declared = next((p for p in ports if p.get("port") == int(port)), None)
            if declared is None:
                raise _unavailable(f'no service port {int(port)} found for service "{name}"')
            port = str(declared.get("name") or "")
        pods = list(self._endpoints(target.namespace, spec))
        if not pods:
            raise _unavailable(f'no endpoints available for service "{name}"')
        candidates = []
        for service_port in (p for p in ports if str(p.get("name") or "") == port):
            for pod in pods:
                number = _target_port(service_port, pod)
                if number is not None:
                    address = self._cluster.endpoints.lookup(pod["metadata"].get("uid", ""),
                                                             number)
                    candidates.append(_Backend(pod["status"]["podIP"], number, address, scheme))
        if not candidates:
            raise _unavailable(f'no endpoints available for service "{target.name}"')
        return next((c for c in candidates if c.address is not None), candidates[0])

    def _service(self, namespace: str, name: str, *, numbered: bool) -> dict[str, Any]:
        rtype = self._cluster.kinds.lookup("", "v1", "services")
        assert rtype is not None
        stored = self._cluster.store.get(rtype.store, (namespace, name))
        service = None if stored is None else stored.load()
        if service is None or not (service.get("spec") or {}).get("selector"):
            # kube reads the Service only to map a port number, then the Endpoints object,
            # which exists only for a Service with a selector.
            raise errors.not_found("services" if numbered and service is None else "endpoints",
                                   "", name)
        return service

    def _endpoints(self, namespace: str, spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The pods the endpoints controller would list as ready addresses, by name."""
        selector: dict[str, Any] = spec.get("selector") or {}
        not_ready_too = spec.get("publishNotReadyAddresses") is True
        for _, stored in self._cluster.store.items("pods", namespace):
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

    # the exchange --------------------------------------------------------------------------------
    async def _forward(self, backend: _Backend, request: Request, path: str) -> Answer:
        assert backend.address is not None
        if backend.scheme == "https":  # what Go's TLS client says to a plain HTTP server
            return _unreachable("tls: first record does not look like a TLS handshake")
        query = urlsplit(request.target).query
        target = quote("/" + path.lstrip("/"), safe=_PATH_SAFE) + (f"?{query}" if query else "")
        lines = [f"{request.method} {target} HTTP/1.1", f"Host: {backend.dialed}"]
        lines += [f"{name.title()}: {value}" for name, value in request.headers.items()
                  if name not in _NOT_FORWARDED]
        lines += [f"Content-Length: {len(request.body)}", "Connection: close", "", ""]
        head = "\r\n".join(lines).encode("latin-1")
        try:
            return await _exchange(backend.address, head + request.body,
                                   head_only=request.method == "HEAD")
        except (OSError, EOFError, ValueError) as exc:
            return _unreachable(_go_error(exc, backend))


async def _exchange(address: tuple[str, int], data: bytes, *, head_only: bool) -> Response:
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(data)
        await writer.drain()
        status, headers = await _read_head(reader)
        lower = {name.lower(): value for name, value in headers}
        if head_only or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in lower.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        elif "content-length" in lower:
            body = await reader.readexactly(int(lower["content-length"]))
        else:
            body = await reader.read()  # Connection: close — the body ends with the stream
    finally:
        writer.close()
    kept: dict[str, str] = {}
    for name, value in headers:
        if name.lower() not in _NOT_RETURNED:
            kept[name] = f"{kept[name]}, {value}" if name in kept else value
    return Response(status, body, lower.get("content-type", "text/plain; charset=utf-8"), kept)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, list[tuple[str, str]]]:
    status_line = (await reader.readline()).decode("latin-1")
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/") or not rest[:3].isdigit():
        raise ValueError(f"malformed HTTP response {status_line.strip()[:100]!r}")
    headers = []
    while (line := (await reader.readline()).decode("latin-1").strip()):
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed MIME header line: {line[:100]}")
        headers.append((name.strip(), value.strip()))
    return int(rest[:3]), headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks = []
    while size := int((await reader.readline()).split(b";")[0].strip() or b"0", 16):
        chunks.append(await reader.readexactly(size))
        await reader.readline()
    while (await reader.readline()).strip():  # trailers
        pass
    return b"".join(chunks)


def _split_id(service_id: str) -> tuple[str, str, str]:
    """``name``, ``name:port`` or ``scheme:name:port`` as (scheme, name, port)."""
    parts = service_id.split(":")
    if len(parts) == 1:
        parts = ["", parts[0], ""]
    elif len(parts) == 2:
        parts.insert(0, "")
    if len(parts) != 3 or not parts[1] or parts[0] not in _SCHEMES:
        raise errors.bad_request(f'invalid service request "{service_id}"')
    return parts[0], parts[1], parts[2]


def _proxied_path(request: Request) -> str | None:
    """The path after ``/proxy`` (a trailing slash kept), else the ``path`` parameter; None
    when there is neither."""
    rest = request.path.lstrip("/").split("/")[_PREFIX_SEGMENTS:]
    if rest:
        return "/".join(rest) or "/"
    return request.param("path") or None


def _target_port(service_port: dict[str, Any], pod: dict[str, Any]) -> int | None:
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


def _go_error(exc: BaseException, backend: _Backend) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"dial tcp {backend.dialed}: connect: connection refused"
    if isinstance(exc, ConnectionResetError):
        return f"read tcp {backend.dialed}: read: connection reset by peer"
    if isinstance(exc, EOFError):  # asyncio.IncompleteReadError among them
        return "EOF"
    return str(exc) or type(exc).__name__


def _unavailable(message: str) -> errors.APIError:
    return errors.APIError(503, "ServiceUnavailable", message)


def _unreachable(message: str) -> Response:
    return errors.error_response(_unavailable(f"error trying to reach service: {message}"))
