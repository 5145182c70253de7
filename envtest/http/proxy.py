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
  selector has none unless one was written by hand: :mod:`.services`).
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
from urllib.parse import quote, urlsplit

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.http import services
from envtest.http.exchange import RawResponse, exchange, go_error
from envtest.http.protocol import Answer, Request, Response
from envtest.http.services import Backend

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


class ServiceProxy:
    """Forwards ``services/proxy`` requests; owns the exchanges in flight (loop thread only)."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._tasks: set[asyncio.Future[Answer]] = set()

    def __call__(self, target: Target, request: Request) -> Answer | asyncio.Future[Answer]:
        scheme, backend = self._backend(target)
        path = _proxied_path(request)
        if path is None and request.method in ("GET", "HEAD"):
            query = urlsplit(request.target).query
            location = request.path + "/" + (f"?{query}" if query else "")
            return Response(301, b"", "text/plain; charset=utf-8", {"Location": location})
        if backend.address is None:
            return _unreachable(f"dial tcp {backend.dialed}: connect: connection refused")
        task: asyncio.Future[Answer] = self._cluster.loop.create_task(
            self._forward(scheme, backend, request, path or "/"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def close(self) -> None:
        """Cancel the exchanges in flight (the server is stopping)."""
        for task in list(self._tasks):
            task.cancel()

    # where to ------------------------------------------------------------------------------------
    def _backend(self, target: Target) -> tuple[str, Backend]:
        scheme, name, port = _split_id(target.name)
        return scheme, services.resolve(self._cluster, target.namespace, name, port,
                                        shown=target.name)

    # the exchange --------------------------------------------------------------------------------
    async def _forward(self, scheme: str, backend: Backend, request: Request,
                       path: str) -> Answer:
        assert backend.address is not None
        if scheme == "https":  # what Go's TLS client says to a plain HTTP server
            return _unreachable("tls: first record does not look like a TLS handshake")
        query = urlsplit(request.target).query
        target = quote("/" + path.lstrip("/"), safe=_PATH_SAFE) + (f"?{query}" if query else "")
        lines = [f"{request.method} {target} HTTP/1.1", f"Host: {backend.dialed}"]
        lines += [f"{name.title()}: {value}" for name, value in request.headers.items()
                  if name not in _NOT_FORWARDED]
        lines += [f"Content-Length: {len(request.body)}", "Connection: close", "", ""]
        head = "\r\n".join(lines).encode("latin-1")
        try:
            answer = await exchange(backend.address, head + request.body,
                                    head_only=request.method == "HEAD")
        except (OSError, EOFError, ValueError) as exc:
            return _unreachable(go_error(exc, backend.dialed))
        return _returned(answer)


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


def _returned(answer: RawResponse) -> Response:
    """The pod's answer as the API server passes it on (hop-by-hop headers dropped)."""
    kept: dict[str, str] = {}
    for name, value in answer.headers:
        if name.lower() not in _NOT_RETURNED:
            kept[name] = f"{kept[name]}, {value}" if name in kept else value
    return Response(answer.status, answer.body,
                    answer.header("content-type") or "text/plain; charset=utf-8", kept)


def _unreachable(message: str) -> Response:
    return errors.error_response(services.unavailable(f"error trying to reach service: {message}"))
