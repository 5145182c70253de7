"""Read verbs: get, list (selectors, pagination, tables) and watch.

A resourceVersion the store has not reached is answered as kube-apiserver's watch cache answers
it: a list not older than (or exactly at) it, and a watch-list (``sendInitialEvents``) from it,
wait up to ``ServerOptions.resource_version_wait`` for the store to get there, then fail with
504 "Too large resource version" (for the watch-list, as an ERROR event on its stream); a
plain watch from it is accepted and silent until the store passes it. A list at an older
version is served at the current one (there is no history of objects to serve it from).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.http.protocol import Answer, Request, Response, Streaming, StreamSink
from envtest.kinds import crds
from envtest.kinds.fields import allowed_fields
from envtest.printing.tables import table
from envtest.storage.store import Event, Stored, synthetic_added
from envtest.storage.watch import Filter, WatchStream
from envtest.verbs.converted_watch import ConvertedWatchStream
from envtest.verbs.forms import META_V1, Form, partial_raw, read_form
from foundation.selectors import SelectorError, parse_field_selector, parse_label_selector

JSON = "application/json"


def make_filter(target: Target, request: Request) -> Filter:
    try:
        labels = parse_label_selector(request.param("labelSelector"))
        fields = parse_field_selector(request.param("fieldSelector"),
                                      allowed=allowed_fields(target.rtype))
    except SelectorError as exc:
        raise errors.bad_request(str(exc)) from exc
    return Filter(target.namespace or None, labels, fields)


def get(cluster: Cluster, target: Target, request: Request) -> Response:
    stored = cluster.store.get(target.rtype.store, (target.namespace, target.name))
    if stored is None:
        raise errors.not_found(target.rtype.plural, target.rtype.group, target.name)
    rtype = target.rtype
    form = read_form(request, listing=False)
    if form is Form.TABLE:
        body = table(rtype, [crds.served(rtype, stored.load())],
                     list_meta={"resourceVersion": str(stored.rv)},
                     now=cluster.clock.now(), include_object=_include(request))
        return Response(200, orjson.dumps(body))
    if form is Form.METADATA:
        return Response(200, partial_raw(stored.load()))
    return Response(200, crds.served_raw(rtype, stored.raw))


def list_(cluster: Cluster, target: Target,
          request: Request) -> Response | asyncio.Future[Answer]:
    wanted = _minimum_revision(request)
    if wanted is not None and wanted > cluster.store.revision:
        return _when_reached(cluster, wanted, lambda: _list_now(cluster, target, request))
    return _list_now(cluster, target, request)


def _minimum_revision(request: Request) -> int | None:
    """The revision a list must be at least at (``resourceVersion=N`` with no match, or
    NotOlderThan, or Exact), None for any (unset, "0", or a continue token's own)."""
    if request.param("continue") or request.param("resourceVersionMatch") not in (
            "", "NotOlderThan", "Exact"):
        return None
    return _revision_param(request.param("resourceVersion"))


def _when_reached(cluster: Cluster, revision: int,
                  answer: Callable[[], Answer]) -> asyncio.Future[Answer]:
    """``answer()`` once the store reached ``revision`` (within the server's wait), else
    "Too large resource version"."""
    result: asyncio.Future[Answer] = cluster.loop.create_future()

    def settle(reached: asyncio.Future[bool]) -> None:
        if result.done():
            return
        try:
            if not reached.result():
                raise errors.too_large_resource_version(revision, cluster.store.revision)
            result.set_result(answer())
        except errors.APIError as error:
            result.set_result(errors.error_response(error))

    cluster.store.reached(revision, cluster.options.resource_version_wait).add_done_callback(
        settle)
    return result


def _list_now(cluster: Cluster, target: Target, request: Request) -> Response:
    select = make_filter(target, request)
    form = read_form(request, listing=True)
    revision, start = cluster.store.revision, None
    if token := request.param("continue"):
        revision, start = _decode_continue(token, cluster.store.revision)
        if revision < cluster.store.compacted:
            raise errors.gone("The provided continue parameter is too old to display a "
                              "consistent list result. You can start a new list without the "
                              "continue parameter.")
    limit = _int_param(request, "limit")
    _int_param(request, "timeoutSeconds")  # ListOptions: a list checks it as a watch does
    namespace = target.namespace or None
    items: list[Stored] = []
    more: tuple[str, str] | None = None
    last_key = ("", "")
    for key, stored in cluster.store.items(target.rtype.store, namespace, after=start):
        if not select.matches(key[0], stored.labels, stored.fields):
            continue
        if limit and len(items) >= limit:
            more = last_key  # one match past the page: there is more
            break
        items.append(stored)
        last_key = key
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if more is not None:
        meta["continue"] = _encode_continue(revision, more)
        if select.unselective:
            # As kube-apiserver: counted only without selectors (with them, unknown).
            meta["remainingItemCount"] = cluster.store.count_after(target.rtype.store,
                                                                   namespace, more)
    rtype = target.rtype
    if form is Form.TABLE:
        body = table(rtype, [crds.served(rtype, s.load()) for s in items], list_meta=meta,
                     now=cluster.clock.now(), include_object=_include(request))
        return Response(200, orjson.dumps(body))
    if form is Form.METADATA:
        head = orjson.dumps({"kind": "PartialObjectMetadataList", "apiVersion": META_V1,
                             "metadata": meta})
        raws = (partial_raw(s.load()) for s in items)
    else:
        head = orjson.dumps({"kind": rtype.list_kind, "apiVersion": rtype.api_version,
                             "metadata": meta})
        # Splice the stored bytes into the list document: no per-item parse or dump.
        raws = (crds.served_raw(rtype, s.raw) for s in items) if rtype.multiversion else (
            s.raw for s in items)
    return Response(200, head[:-1] + b',"items":[' + b",".join(raws) + b"]}")


def watch(cluster: Cluster, target: Target,
          request: Request) -> Streaming | asyncio.Future[Answer]:
    """A watch stream; a watch-list from a version the store has not reached yet waits for it
    (then answers "too large" if it never came)."""
    plan = _WatchPlan.of(cluster, target, request)
    if not (plan.initial and plan.since is not None and plan.since > cluster.store.revision):
        return Streaming(JSON, plan.start)
    # A watch-list must start at a version the store holds: wait for it, then answer "too
    # large" as its stream's one event (kube-apiserver: once the version parsed, errors are
    # ERROR events on a 200 stream).
    since = plan.since
    result: asyncio.Future[Answer] = cluster.loop.create_future()

    def settle(_: asyncio.Future[bool]) -> None:
        if not result.done():
            reached = cluster.store.revision >= since
            result.set_result(Streaming(JSON, plan.start if reached else plan.too_large))

    cluster.store.reached(since, cluster.options.resource_version_wait).add_done_callback(
        settle)
    return result


@dataclass(frozen=True, slots=True)
class _WatchPlan:
    """One watch request, parsed: what it selects, from where, for how long, in what form."""

    cluster: Cluster
    target: Target
    request: Request
    select: Filter
    bookmarks: bool
    initial: bool
    since: int | None
    lifetime: float
    form: Form

    @classmethod
    def of(cls, cluster: Cluster, target: Target, request: Request) -> _WatchPlan:
        bookmarks = request.flag("allowWatchBookmarks")
        initial = request.flag("sendInitialEvents")
        if initial and (not bookmarks
                        or request.param("resourceVersionMatch") != "NotOlderThan"):
            raise errors.invalid("ListOptions", "meta.k8s.io", "", [errors.Cause(
                "sendInitialEvents", "Forbidden: sendInitialEvents is only supported with "
                "allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan",
                "FieldValueForbidden")])
        lifetime = float(min(_int_param(request, "timeoutSeconds"), MAX_WATCH_SECONDS)
                         or cluster.options.watch_lifetime)
        return cls(cluster, target, request, make_filter(target, request), bookmarks, initial,
                   _revision_param(request.param("resourceVersion")), lifetime,
                   read_form(request, listing=False))

    def encode(self, event: Event, event_type: str) -> bytes:
        rtype, form = self.target.rtype, self.form
        if form is Form.OBJECT and not rtype.multiversion:
            return event.json_line(event_type)
        if form is not Form.TABLE:  # not the line all watchers share: another form or version
            raw = (partial_raw(event.new.load()) if form is Form.METADATA
                   else crds.served_raw(rtype, event.new.raw))
            return b'{"type":"' + event_type.encode() + b'","object":' + raw + b"}\n"
        obj = crds.served(rtype, event.new.load())
        body = table(rtype, [obj], list_meta={"resourceVersion": str(event.rv)},
                     now=self.cluster.clock.now(), include_object=_include(self.request))
        return orjson.dumps({"type": event_type, "object": body}) + b"\n"

    def stream(self, sink: StreamSink, *, after: int = 0, bookmarks: bool = True) -> WatchStream:
        store = self.cluster.store
        settings: dict[str, Any] = {
            "rtype": self.target.rtype, "select": self.select, "encode": self.encode,
            "sink": sink, "bookmarks": self.bookmarks and bookmarks,
            "revision": lambda: store.revision,
            "max_backlog": self.cluster.options.max_watch_backlog, "after": after}
        if self.target.rtype.webhook is not None:  # objects pass the conversion webhook
            return ConvertedWatchStream(cluster=self.cluster, **settings)
        return WatchStream(**settings)

    def start(self, sink: StreamSink) -> None:
        """Send the backlog the request asks for, then follow the store until the end."""
        cluster, since, store = self.cluster, self.since, self.target.rtype.store
        # A plain watch from a version not reached yet says nothing until the store passes it.
        ahead = since if since is not None and not self.initial else 0
        stream = self.stream(sink, after=ahead if ahead > cluster.store.revision else 0)
        if since is not None and not self.initial and since < cluster.store.compacted:
            stream.error(errors.gone(f"too old resource version: {since} "
                                     f"({cluster.store.compacted})").status())
            return
        for event in self.backlog():
            stream.offer(event)
        if self.initial:
            stream.bookmark(initial_events_end=True)
        cluster.store.subscribe(store, stream)

        def closed() -> None:
            cluster.store.unsubscribe(store, stream)
            stream.cancel_timers()

        sink.on_close(closed)
        stream.schedule(cluster.loop, lifetime=self.lifetime,
                        bookmark_interval=cluster.options.bookmark_interval)

    def backlog(self) -> Iterable[Event]:
        """The initial state (a watch-list, or a watch without a version) as ADDED events, or
        the history since the version given."""
        store, select = self.cluster.store, self.select
        if self.initial or self.since is None:
            items = store.items(self.target.rtype.store, self.target.namespace or None)
            return synthetic_added(self.target.rtype.store, items,
                                   lambda s: select.matches(_ns(s), s.labels, s.fields))
        return list(store.events_since(self.target.rtype.store, self.since))

    def too_large(self, sink: StreamSink) -> None:
        assert self.since is not None
        error = errors.too_large_resource_version(self.since, self.cluster.store.revision)
        self.stream(sink, bookmarks=False).error(error.status())


def _include(request: Request) -> str:
    return request.param("includeObject", "Metadata")


def _ns(stored: Stored) -> str:
    return stored.fields.get("metadata.namespace", "")


_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
"""An integer as Go's strconv parses one (no spaces, underscores or other digits), at most as
long as the largest int64."""
INT64_MAX = 2**63 - 1
MAX_WATCH_SECONDS = 365 * 24 * 3600
"""A watch's ``timeoutSeconds`` beyond this (a year) is a year: the timer saturates."""


def _revision_param(value: str) -> int | None:
    """None for "" and "0" (start from the current state), else the revision (etcd parses it
    as an unsigned 64-bit integer: anything else is 400)."""
    if value in ("", "0"):
        return None
    if not _INTEGER.fullmatch(value) or value.startswith(("+", "-")) or int(value) > INT64_MAX:
        raise errors.bad_request(f'resourceVersion: Invalid value: "{value[:100]}": must be a '
                                 "non-negative integer")
    return int(value)


def _int_param(request: Request, name: str) -> int:
    """A non-negative int64 query parameter, 0 when absent; anything else is 400 BadRequest
    (kube-apiserver's conversion answers a number out of int64's range as malformed)."""
    value = request.param(name)
    if not value:
        return 0
    if not _INTEGER.fullmatch(value) or abs(number := int(value)) > INT64_MAX:
        raise errors.bad_request(f'{name}: Invalid value: "{value[:100]}": must be an integer '
                                 "in the range of a 64-bit signed integer")
    if number < 0:
        raise errors.bad_request(f"{name}: Invalid value: {number}: must be non-negative")
    return number


def _encode_continue(revision: int, key: tuple[str, str]) -> str:
    raw = orjson.dumps({"rv": revision, "start": list(key)})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str, current: int) -> tuple[int, tuple[str, str]]:
    """The revision and the key after which a continued list resumes; 400 for anything this
    server did not issue: bad base64 or JSON, wrong types, a revision it has not reached."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode() + b"=="))
        revision, start = data["rv"], data["start"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        revision, start = None, None
    if (type(revision) is not int or not 0 < revision <= current or type(start) is not list
            or len(start) != 2 or not all(type(part) is str for part in start)):
        raise errors.bad_request(f'continue: Invalid value: "{token[:200]}": continue key is '
                                 "not valid")
    return revision, (start[0], start[1])
