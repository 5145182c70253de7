"""A watch of a CRD version served through the conversion webhook: each event converted, in
order, without holding up the loop, the store or other watchers.

The stream encodes an event at once when it needs no conversion and nothing waits before it
(the object at the version watched, or metadata only: no cost beyond a plain watch's);
otherwise the event joins a queue that one task per watch drains in order, one
ConversionReview per event as kube-apiserver's watch converts them. Bookmarks queue behind the
events they follow, at the revision they were due at. A failed conversion ends the watch with
an ERROR event carrying the 500 Status, as kube-apiserver does; a watch whose queue passes
``MAX_PENDING`` events is closed (its client re-watches from its last resourceVersion), as a
watcher that falls behind is.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson

from envtest import errors
from envtest.cluster import Cluster
from envtest.kinds.conversion import Converted, Unconverted, active, converting
from envtest.storage.store import Event
from envtest.storage.watch import WatchStream
from envtest.webhooks.conversion import convert

log = logging.getLogger(__name__)

MAX_PENDING = 10000
"""Events a converted watch may hold waiting for the webhook before it is closed."""


@dataclass(slots=True)
class _Pending:
    """An event waiting for its conversion, or (``event`` None) a bookmark due at
    ``revision``."""

    event: Event | None
    event_type: str = ""
    revision: int = 0
    initial_events_end: bool = False


class ConvertedWatchStream(WatchStream):
    """A :class:`WatchStream` whose objects pass through the CRD's conversion webhook."""

    def __init__(self, *, cluster: Cluster, **kw: Any) -> None:
        super().__init__(**kw)
        self._cluster = cluster
        self._queue: deque[_Pending] = deque()
        self._pump: asyncio.Task[None] | None = None

    def offer(self, event: Event) -> None:
        if event.rv <= self._after:
            return
        event_type = self._select.event_type(event)
        if event_type is None:
            return
        # Sent now if it needs no conversion and nothing waits. Outside any request's memo
        # (the usual case) that costs what a plain watch's does: an object that needs the
        # webhook raises; within a write's (one that converted) it is tried under a memo of
        # its own.
        if not self._queue:
            if active() is None:
                try:
                    self._sink.send(self._encode(event, event_type))
                    return
                except Unconverted:
                    pass
            elif self._sent(event, event_type, Converted()):
                return
        self._enqueue(_Pending(event, event_type))

    def bookmark(self, *, initial_events_end: bool = False, revision: int = 0) -> None:
        if not self._queue:
            super().bookmark(initial_events_end=initial_events_end, revision=revision)
            return
        self._enqueue(_Pending(None, revision=revision or self._revision(),
                               initial_events_end=initial_events_end))

    def cancel_timers(self) -> None:
        super().cancel_timers()
        if self._pump is not None:
            self._pump.cancel()

    def _sent(self, event: Event, event_type: str, memo: Converted) -> bool:
        """Send the event's line if everything in it is known converted (else record what
        is missing in ``memo``)."""
        with converting(memo):
            line = self._encode(event, event_type)
        if memo.missing:
            return False
        self.send(line)
        return True

    def _enqueue(self, item: _Pending) -> None:
        if len(self._queue) >= MAX_PENDING:
            log.warning("closing a watch of %s: %d events wait for the conversion webhook",
                        self.rtype.group_resource, len(self._queue))
            self._queue.clear()
            self.finish()
            return
        self._queue.append(item)
        if self._pump is None:
            self._pump = self._cluster.loop.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._queue and not self._sink.closed:
                first = self._queue[0]
                if first.event is None:
                    self._queue.popleft()
                    super().bookmark(initial_events_end=first.initial_events_end,
                                     revision=first.revision)
                    continue
                await self._deliver(first.event, first.event_type)
                self._queue.popleft()
        except errors.APIError as error:
            self._queue.clear()
            self.error(error.status())
        finally:
            self._pump = None

    async def _deliver(self, event: Event, event_type: str) -> None:
        """Convert what the event needs (one review), then send it."""
        memo = Converted()
        try:
            if self._sent(event, event_type, memo):
                return
        except errors.APIError:
            if not memo.missing:  # not for want of a conversion
                raise
        raws = list(memo.missing)
        memo.missing.clear()
        done = await convert(self._cluster, self.rtype, [orjson.loads(raw) for raw in raws])
        memo.known.update(zip(raws, (orjson.dumps(obj) for obj in done), strict=True))
        if not self._sink.closed and not self._sent(event, event_type, memo):
            raise errors.APIError(500, "", "a converted watch event could not be encoded")
