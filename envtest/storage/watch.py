"""Watch streams: filter committed events for one client and write them as JSON lines.

A stream subscribes to one store and sees every event in commit order (the loop thread commits
and delivers in one step, so nothing slips between a stream's replay and its subscription).
Selectors are applied to the object before and after a change, as kube-apiserver's watch cache
does: an object that stops matching is reported DELETED, one that starts matching ADDED.
A client that stops reading is disconnected once its backlog passes a limit
(``max_watch_backlog``), and the watcher furthest behind once all of them together pass another
(``max_watch_backlog_total``), so slow watchers never hold memory or writers hostage.

A watch from a resourceVersion the store has not reached (its ``after``) is kube-apiserver's:
accepted, and silent — no event at or below that version, no BOOKMARK — until the store
passes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from envtest.http.protocol import StreamSink
from envtest.kinds.registry import ResourceType
from envtest.storage.store import Event
from foundation.selectors import FieldSelector, LabelSelector

log = logging.getLogger(__name__)

Encoder = Callable[[Event, str], bytes]
"""Renders one event of a given type as one line of the stream."""


@dataclass(frozen=True, slots=True)
class Filter:
    """Which objects a watch (or list) selects."""

    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    unselective: bool = field(init=False)
    """No label or field selector: the common case, decided once rather than per event."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "unselective", self.labels.empty and self.fields.empty)

    def matches(self, namespace: str, labels: Mapping[str, str] | None,
                fields: Mapping[str, str] | None) -> bool:
        if labels is None or fields is None:
            return False
        if self.namespace is not None and namespace != self.namespace:
            return False
        return self.labels.matches(labels) and self.fields.matches(fields)

    def event_type(self, event: Event) -> str | None:
        """What this event means to a watcher with this filter (None: nothing)."""
        if self.unselective:  # an object never changes namespace, so the type stands
            return event.type if self.namespace in (None, event.namespace) else None
        now = self.matches(event.namespace, event.new.labels, event.new.fields)
        if event.type == "ADDED":
            return "ADDED" if now else None
        if event.type == "DELETED":
            return "DELETED" if now else None
        before = self.matches(event.namespace, event.old_labels, event.old_fields)
        if before and now:
            return "MODIFIED"
        if now:
            return "ADDED"
        return "DELETED" if before else None


class WatchStream:
    """One open watch. Owned by its HTTP connection; ends when it closes or times out."""

    def __init__(self, *, rtype: ResourceType, select: Filter, encode: Encoder,
                 sink: StreamSink, bookmarks: bool, revision: Callable[[], int],
                 max_backlog: int, after: int = 0) -> None:
        self.rtype = rtype
        self._select = select
        self._encode = encode
        self._sink = sink
        self._bookmarks = bookmarks
        self._revision = revision
        self._after = after
        sink.limit_backlog(max_backlog, self._overflow)
        self._deadline: asyncio.TimerHandle | None = None
        self._tick: asyncio.TimerHandle | None = None

    def offer(self, event: Event) -> None:
        # Hot path: called for every event and every watcher of its kind.
        if event.rv <= self._after:
            return
        event_type = self._select.event_type(event)
        if event_type is not None:
            self._sink.send(self._encode(event, event_type))

    def send(self, line: bytes) -> None:
        self._sink.send(line)

    def _overflow(self, behind: int, total: int) -> None:
        if total:
            log.warning("closing a watch of %s that fell %d bytes behind, the furthest: the "
                        "server's watches held %d bytes unsent", self.rtype.group_resource,
                        behind, total)
        else:
            log.warning("closing a watch of %s that fell %d bytes behind",
                        self.rtype.group_resource, behind)

    def bookmark(self, *, initial_events_end: bool = False, revision: int = 0) -> None:
        """A BOOKMARK at ``revision`` (0: the store's)."""
        revision = revision or self._revision()
        if revision <= self._after:
            return  # ahead of the store: nothing to say yet
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if initial_events_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": self.rtype.kind, "apiVersion": self.rtype.api_version, "metadata": meta}
        self.send(orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n")

    def error(self, status: dict[str, Any]) -> None:
        self.send(orjson.dumps({"type": "ERROR", "object": status}) + b"\n")
        self.finish()

    def finish(self) -> None:
        self._sink.finish()

    def abort(self) -> None:
        """Cut the connection, as a network failure would."""
        self._sink.abort()

    def schedule(self, loop: asyncio.AbstractEventLoop, *, lifetime: float,
                 bookmark_interval: float) -> None:
        """End the stream after ``lifetime`` seconds; bookmark every ``bookmark_interval``."""
        self._deadline = loop.call_later(lifetime, self.finish)
        if self._bookmarks and bookmark_interval > 0:
            def tick() -> None:
                if not self._sink.closed:
                    self.bookmark()
                    self._tick = loop.call_later(bookmark_interval, tick)
            self._tick = loop.call_later(bookmark_interval, tick)

    def cancel_timers(self) -> None:
        for timer in (self._deadline, self._tick):
            if timer is not None:
                timer.cancel()
