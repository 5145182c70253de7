"""events.k8s.io/v1 Events: a view of the core/v1 Event store, as kube-apiserver serves them.

kube keeps one store of Events and converts between its two APIs
(``pkg/apis/events/v1/conversion.go``); so does this server. Everything is stored as core/v1;
a request to events.k8s.io/v1 is served by the core verbs with its body, patch and field
selector translated into core terms and its answers (objects, lists, watch events) translated
back. The field mapping:

=============================  ==============================
events.k8s.io/v1               core/v1
=============================  ==============================
``regarding``                  ``involvedObject``
``note``                       ``message``
``reportingController``        ``reportingComponent``
``deprecatedSource``           ``source``
``deprecatedFirstTimestamp``   ``firstTimestamp``
``deprecatedLastTimestamp``    ``lastTimestamp``
``deprecatedCount``            ``count``
=============================  ==============================

The other fields (``eventTime``, ``series``, ``action``, ``reason``, ``related``,
``reportingInstance``, ``type``, metadata) are the same in both. Objects come out with kube's
field order of the API asked for. Patches are translated field by field (a merge or strategic
patch's members, a JSON patch's paths), so they apply to the stored object exactly as to its
events.k8s.io form.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.codecs.body import decode_body, decode_patch
from envtest.http.protocol import Answer, Request, Response, Streaming, StreamSink
from envtest.kinds.objects import check_type_meta

GROUP, API_VERSION = "events.k8s.io", "events.k8s.io/v1"
CORE_API_VERSION = "v1"

TO_CORE: Mapping[str, str] = {
    "regarding": "involvedObject", "note": "message", "reportingController": "reportingComponent",
    "deprecatedSource": "source", "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp", "deprecatedCount": "count",
}
TO_EVENTS: Mapping[str, str] = {core: new for new, core in TO_CORE.items()}
_CORE_ORDER = ("kind", "apiVersion", "metadata", "involvedObject", "reason", "message", "source",
               "firstTimestamp", "lastTimestamp", "count", "type", "eventTime", "series",
               "action", "related", "reportingComponent", "reportingInstance")
_EVENTS_ORDER = ("kind", "apiVersion", "metadata", "eventTime", "series", "reportingController",
                 "reportingInstance", "action", "reason", "regarding", "related", "note", "type",
                 "deprecatedSource", "deprecatedFirstTimestamp", "deprecatedLastTimestamp",
                 "deprecatedCount")
_SELECTOR_TO_CORE = {"regarding.": "involvedObject.", "reportingController": "reportingComponent"}

Verb = Callable[[Cluster, Target, Request], Answer | asyncio.Future[Answer]]


def _renamed(obj: Mapping[str, Any], names: Mapping[str, str], order: tuple[str, ...],
             api_version: str | None) -> dict[str, Any]:
    out = {names.get(key, key): value for key, value in obj.items()}
    if api_version is not None and "apiVersion" in out:
        out["apiVersion"] = api_version
    ordered = {key: out.pop(key) for key in order if key in out}
    ordered.update(out)
    return ordered


def to_core(event: Mapping[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event (or part of one: a patch) in core/v1 terms."""
    return _renamed(event, TO_CORE, _CORE_ORDER, CORE_API_VERSION)


def to_events(event: Mapping[str, Any]) -> dict[str, Any]:
    """A core/v1 Event as events.k8s.io/v1 serves it."""
    return _renamed(event, TO_EVENTS, _EVENTS_ORDER, API_VERSION)


def _core_pointer(path: Any) -> Any:
    """A JSON patch path into an events.k8s.io Event, into the core one."""
    if not isinstance(path, str) or not path.startswith("/"):
        return path
    first, sep, rest = path[1:].partition("/")
    return "/" + TO_CORE.get(first, first) + sep + rest


def _core_patch(kind: str, document: Any) -> Any:
    if kind == "json" and isinstance(document, list):
        return [{**op, **{k: _core_pointer(op[k]) for k in ("path", "from") if k in op}}
                if isinstance(op, dict) else op for op in document]
    if isinstance(document, dict):
        patched = to_core(document)
        if document.get("apiVersion") == API_VERSION:
            patched["apiVersion"] = CORE_API_VERSION
        return patched
    return document


def _core_selector(selector: str) -> str:
    terms = []
    for term in selector.split(","):
        stripped = term.strip()
        for new, core in _SELECTOR_TO_CORE.items():
            if stripped.startswith(new):
                stripped = core + stripped[len(new):]
                break
        terms.append(stripped)
    return ",".join(terms)


def _translate_request(target: Target, request: Request) -> None:
    """The request in core terms, changed in place: selector, body, patch."""
    selector = request.param("fieldSelector")
    if selector:
        request.query["fieldSelector"] = [_core_selector(selector)]
    if request.method == "PATCH":
        kind, document = decode_patch(request)
        if kind == "apply" and isinstance(document, dict):
            check_type_meta(target.rtype, document)
        # JSON is YAML too: an apply document goes on as JSON, under its media type.
        request.body = orjson.dumps(_core_patch(kind, document))
    elif request.method in ("POST", "PUT") and request.body:
        obj = decode_body(request)
        check_type_meta(target.rtype, obj)  # events.k8s.io/v1 Event, or the 400 kube gives
        request.body = orjson.dumps(to_core(obj))
        request.headers["content-type"] = "application/json"


def _served(body: bytes) -> bytes:
    """A core answer's JSON as events.k8s.io serves it (objects and lists; Status as is)."""
    value = orjson.loads(body)
    kind = value.get("kind") if isinstance(value, dict) else None
    if kind == "Event":
        return orjson.dumps(to_events(value))
    if kind == "EventList":
        value["apiVersion"] = API_VERSION
        value["items"] = [to_events(item) for item in value.get("items") or ()]
        return orjson.dumps(value)
    return body


class _ServedSink:
    """A watch stream's sink that turns each core event line into events.k8s.io's."""

    def __init__(self, sink: StreamSink) -> None:
        self._sink = sink

    @property
    def closed(self) -> bool:
        return self._sink.closed

    @closed.setter
    def closed(self, value: bool) -> None:
        self._sink.closed = value

    def send(self, data: bytes) -> None:
        lines = []
        for line in data.splitlines():
            if line:
                event = orjson.loads(line)
                obj = event.get("object")
                if isinstance(obj, dict) and obj.get("kind") == "Event":
                    event["object"] = to_events(obj)
                lines.append(orjson.dumps(event) + b"\n")
        self._sink.send(b"".join(lines))

    def limit_backlog(self, limit: int, on_overflow: Callable[[int, int], None]) -> None:
        self._sink.limit_backlog(limit, on_overflow)

    def finish(self) -> None:
        self._sink.finish()

    def abort(self) -> None:
        self._sink.abort()

    def buffered(self) -> int:
        return self._sink.buffered()

    def on_close(self, callback: Callable[[], None]) -> None:
        self._sink.on_close(callback)


def _answer(answer: Answer) -> Answer:
    if isinstance(answer, Streaming):
        if not answer.content_type.startswith("application/json"):
            return answer
        start = answer.start
        return Streaming(answer.content_type, lambda sink: start(_ServedSink(sink)))
    if answer.status >= 400 or not answer.content_type.startswith("application/json"):
        return answer
    return Response(answer.status, _served(answer.body), answer.content_type, answer.headers)


def _error(error: errors.APIError) -> errors.APIError:
    """A core Event's error as events.k8s.io names it (``events.events.k8s.io "x"``)."""
    if error.group or error.kind not in ("events", "Event"):
        return error
    qualified = f"{error.kind}.{GROUP}"
    message = error.message.replace(f'{error.kind} "', f'{qualified} "', 1)
    return errors.APIError(error.code, error.reason, message, name=error.name, group=GROUP,
                           kind=error.kind, causes=error.causes, retry_after=error.retry_after,
                           headers=error.headers)


def view(verb: Verb) -> Verb:
    """``verb`` of the core Event store, serving events.k8s.io/v1."""

    def serve(cluster: Cluster, target: Target, request: Request
              ) -> Answer | asyncio.Future[Answer]:
        core = cluster.type_of("", "v1", "events")
        assert core is not None
        try:
            _translate_request(target, request)
            answer = verb(cluster, Target(core, target.namespace, target.name,
                                          target.subresource), request)
        except errors.APIError as error:
            raise _error(error) from error
        if not isinstance(answer, asyncio.Future):
            return _answer(answer)
        served: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()

        def done(future: asyncio.Future[Answer]) -> None:
            if future.cancelled():
                served.cancel()
            elif (failure := future.exception()) is not None:
                served.set_exception(failure)
            else:
                served.set_result(_answer(future.result()))

        answer.add_done_callback(done)
        return served

    return serve


def is_events_v1(target: Target) -> bool:
    return target.rtype.group == GROUP and target.rtype.plural == "events"
