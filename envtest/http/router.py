"""The request router: discovery and OpenAPI documents, then resource URLs to verb handlers.

URL shapes follow kube-apiserver: ``/api/v1/...`` for the core group, ``/apis/GROUP/VERSION/...``
for the others, ``namespaces/NS/`` before namespaced resources, ``/status`` as a subresource (get,
update, patch), ``serviceaccounts/NAME/token`` (create only: :mod:`.tokens`), the review kinds
(a POST of the collection only: :mod:`.reviews`),
``services/ID/proxy[/PATH]`` (every method, forwarded to a pod: :mod:`.proxy`) and the legacy
``/watch/`` prefix. Every failure becomes a Status response; the server never dies on
a bad request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson

from envtest import errors
from envtest.auth import reviews, tokens
from envtest.cluster import Cluster, Target
from envtest.discovery import apis as discovery
from envtest.faults import Faults
from envtest.http.protocol import Answer, Request, Response
from envtest.http.proxy import METHODS as PROXY_METHODS
from envtest.http.proxy import ServiceProxy
from envtest.verbs import conversion, events, reads, scale, writes

log = logging.getLogger(__name__)

Verb = Callable[[Cluster, Target, Request], "Answer | asyncio.Future[Answer]"]
"""A verb answers now, or later (a list from a resourceVersion the store has not reached)."""

_NOT_FOUND = errors.APIError(404, "NotFound", "the server could not find the requested resource")


_VERB_NAMES: dict[Verb, str] = {
    reads.get: "get", reads.list_: "list", reads.watch: "watch", writes.create: "create",
    writes.update: "update", writes.patch: "patch", writes.delete: "delete",
    writes.delete_collection: "deletecollection", tokens.create: "create",
    **{review: "create" for review in reviews.CREATE.values()},
    scale.get: "get", scale.update: "update", scale.patch: "patch",
}
_SUBRESOURCE_CREATE: dict[tuple[str, str, str], Verb] = {
    ("", "serviceaccounts", "token"): tokens.create,
}
"""Subresources that take a POST: (group, plural, subresource) -> its create verb."""
_SUBRESOURCE_VERBS: dict[str, Verb] = {"GET": reads.get, "PUT": writes.update,
                                       "PATCH": writes.patch}
"""What the other subresources (``status``) serve."""
_SUBRESOURCE_ROUTES: dict[str, dict[str, Verb]] = {
    "scale": {"GET": scale.get, "PUT": scale.update, "PATCH": scale.patch},
}
"""Subresources served by verbs of their own (``scale``: :mod:`.verbs.scale`)."""


class APIServer:
    """The HTTP handler of the local API server (see :mod:`envtest`).

    Every resource request is counted in ``cluster.requests`` by (verb, group, resource) and
    passes through the fault injector when one is set.
    """

    def __init__(self, cluster: Cluster, faults: Faults | None = None) -> None:
        self.cluster = cluster
        self.faults = faults
        self.proxy = ServiceProxy(cluster)

    def close(self) -> None:
        """Cancel what is still in flight (proxied requests, requests awaiting admission
        webhooks); the server is stopping."""
        self.proxy.close()
        for task in list(self.cluster.webhooks.in_flight):
            task.cancel()
        self.cluster.webhook_connections.close()

    def __call__(self, request: Request) -> Answer | asyncio.Future[Answer]:
        try:
            return self._route(request)
        except errors.APIError as error:
            return errors.error_response(error)

    def _route(self, request: Request) -> Answer | asyncio.Future[Answer]:
        path = "/" + request.path.strip("/")
        if path in ("/healthz", "/livez", "/readyz") or path.startswith(
                ("/healthz/", "/livez/", "/readyz/")):
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if path == "/openapi/v2" and discovery.V2_PROTOBUF in request.headers.get("accept", "") \
                and "json" not in request.headers.get("accept", ""):
            raise errors.APIError(406, "NotAcceptable", "only application/json is served for "
                                  "/openapi/v2 here (no protobuf)")
        meta = self._metadata(path)
        if meta is not None:
            if request.method != "GET":
                raise errors.method_not_allowed(f"{request.method} is not supported on {path}")
            body = Response(200, orjson.dumps(meta))
            return self.faults.hold(lambda: body) if self.faults else body
        target, watch = self._resolve(path)
        serve: Callable[[], Answer | asyncio.Future[Answer]]
        if target.subresource == "proxy":
            name = self._proxy_verb(request, watch)
            serve = lambda: self.proxy(target, request)  # noqa: E731
        else:
            verb = self._verb(request, target, watch)
            name = _VERB_NAMES[verb]
            if events.is_events_v1(target):  # the core store, seen through events.k8s.io
                verb = events.view(verb)
            if target.rtype.webhook is not None:  # a CRD converting by webhook
                verb = conversion.through_webhook(verb)
            serve = lambda: verb(self.cluster, target, request)  # noqa: E731

        def run() -> Answer | asyncio.Future[Answer]:
            try:
                return serve()
            except errors.APIError as error:
                return errors.error_response(error)

        rtype = target.rtype
        resource = f"{rtype.plural}/{target.subresource}" if target.subresource else rtype.plural
        self.cluster.requests[(name, rtype.group, resource)] += 1
        agent = request.headers.get("user-agent", "").split("/", 1)[0]
        self.cluster.requests_by_agent[(agent, name, rtype.group, resource)] += 1
        self.cluster.recorder.observe(agent, request, name, rtype.group, resource)

        if self.faults is None:
            return run()
        names = (rtype.plural, rtype.group_resource, resource)
        return self.faults.intercept(name, names, run)

    def _metadata(self, path: str) -> dict[str, Any] | None:
        kinds = self.cluster.kinds
        if path == "/version":
            return discovery.VERSION_INFO
        if path == "/api":
            return discovery.api_versions(self.cluster.server_address)
        if path == "/apis":
            return discovery.api_group_list(kinds)
        if path == "/openapi/v2":
            return discovery.openapi_v2(kinds)
        if path == "/openapi/v3":
            return discovery.openapi_root(kinds)
        if path.startswith("/openapi/v3/"):
            parts = path.split("/")[3:]
            if parts[:1] == ["api"] and len(parts) == 2 and parts[1] == "v1":
                return discovery.openapi_group_version(kinds, "", "v1")
            if parts[:1] == ["apis"] and len(parts) == 3 and kinds.has_group_version(*parts[1:]):
                return discovery.openapi_group_version(kinds, parts[1], parts[2])
            raise _NOT_FOUND
        parts = path.split("/")[1:]
        if parts == ["api", "v1"]:
            return discovery.api_resource_list(kinds, "", "v1")
        if parts[:1] == ["apis"] and len(parts) == 2:
            group = discovery.api_group(kinds, parts[1])
            if group is None:
                raise _NOT_FOUND
            return group
        if parts[:1] == ["apis"] and len(parts) == 3:
            if not kinds.has_group_version(parts[1], parts[2]):
                raise _NOT_FOUND
            return discovery.api_resource_list(kinds, parts[1], parts[2])
        return None

    def _resolve(self, path: str) -> tuple[Target, bool]:
        """The resource a URL names, and whether it used the legacy /watch/ prefix."""
        parts = path.split("/")[1:]
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) > 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _NOT_FOUND
        watch = rest[:1] == ["watch"]
        if watch:
            rest = rest[1:]
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3 and rest[2] == "proxy":
            rest = rest[:3]  # the proxied path: the proxy reads it from the request
        if not rest or len(rest) > 3:
            raise _NOT_FOUND
        rtype = self.cluster.type_of(group, version, rest[0])
        if rtype is None or (namespace and not rtype.namespaced):
            raise _NOT_FOUND
        target = Target(rtype, namespace, *rest[1:])
        if target.subresource and target.subresource not in rtype.subresources:
            raise _NOT_FOUND
        return target, watch

    @staticmethod
    def _proxy_verb(request: Request, watch: bool) -> str:
        name = PROXY_METHODS.get(request.method)
        if name is None or watch:
            raise errors.method_not_allowed(
                f"the server does not allow this method on the requested resource "
                f"({request.method})")
        return name

    @staticmethod
    def _verb(request: Request, target: Target, watch: bool) -> Verb:
        method = request.method
        if watch or (method == "GET" and not target.name and request.flag("watch")):
            if method != "GET":
                raise errors.method_not_allowed(f"{method} is not supported for watch")
            if target.name:  # /watch/.../NAME watches one object
                request.query["fieldSelector"] = [",".join(filter(None, [
                    request.param("fieldSelector"), f"metadata.name={target.name}"]))]
                target.name = ""
            return reads.watch
        item = bool(target.name)
        table: dict[tuple[str, bool], Verb] = {
            ("GET", True): reads.get, ("GET", False): reads.list_,
            ("POST", False): writes.create, ("PUT", True): writes.update,
            ("PATCH", True): writes.patch, ("DELETE", True): writes.delete,
            ("DELETE", False): writes.delete_collection,
        }
        verb = table.get((method, item))
        if verb is writes.delete_collection and "deletecollection" not in target.rtype.verbs:
            verb = None  # the route does not exist: 405, as go-restful answers
        review = reviews.CREATE.get(target.rtype.group_resource)
        if review is not None:  # POST to the collection only
            verb = review if (method, item) == ("POST", False) else None
        if target.subresource:  # always on an item: the URL names the object
            create = _SUBRESOURCE_CREATE.get((target.rtype.group, target.rtype.plural,
                                              target.subresource))
            verb = (create if method == "POST" else None) if create is not None else (
                _SUBRESOURCE_ROUTES.get(target.subresource, _SUBRESOURCE_VERBS).get(method))
        if verb is None:
            raise errors.method_not_allowed(
                f"the server does not allow this method on the requested resource ({method})")
        if target.rtype.namespaced and not target.namespace and method in ("POST", "PUT",
                                                                            "PATCH", "DELETE"):
            raise _NOT_FOUND
        return verb
