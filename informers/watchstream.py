"""One watch response as a stream of events: lines of JSON split from the chunked body and
parsed as they come, the object optionally reshaped (metadata only), and the bytes of the
object last yielded for a store that keeps them (:mod:`.rawjson`).

A stream the server ended goes back to the connection pool; one closed by its owner, broken
or abandoned is closed, so the server sees the watch end at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import urllib3

from .errors import TransportError
from .rawjson import RawObject, event_object

_OBJECT_EVENTS = frozenset({"ADDED", "MODIFIED", "DELETED"})


class WatchEvents:
    """The events of one watch response, parsed lazily; iterate, then (or instead) ``close``.
    ``shape``, when given, makes each event's object what the reader asked for (metadata
    only)."""

    def __init__(self, response: urllib3.BaseHTTPResponse,
                 shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self._response = response
        self._iterating = False
        self._closed = False
        self._shape = shape
        self._line = b""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._iterating = True
        buffer = b""
        complete = False
        try:
            for chunk in self._response.stream(1 << 16):
                buffer += chunk
                if b"\n" not in chunk:
                    continue
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line:
                        yield self._event(line)
            if buffer.strip():
                yield self._event(buffer)
            complete = not self._closed
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if self._closed:
                return  # closed by its owner: the loop ends, no failure
            raise TransportError(f"watch stream broke: {exc}") from exc
        finally:
            self._finish(complete)

    def _finish(self, complete: bool) -> None:
        """A stream the server ended goes back to the pool; one cut short (closed, broken,
        abandoned) is closed, so that the server sees the watch end now — a connection only
        shut for reading would sit in the pool while the server kept the watch open."""
        if complete:
            self._response.release_conn()
        else:
            self._response.close()

    def _event(self, line: bytes) -> dict[str, Any]:
        event: dict[str, Any] = orjson.loads(line)
        self._line = line
        obj = event.get("object") if self._shape is not None else None
        if isinstance(obj, dict) and event.get("type") in _OBJECT_EVENTS:
            event["object"] = self._shape(obj)  # type: ignore[misc]
        return event

    def object_bytes(self, event: dict[str, Any]) -> RawObject | None:
        """The object of ``event``, the event last yielded, as the server sent its bytes (a
        store keeps them instead of serialising the object again); None when they cannot be
        told apart in the line, or the object was reshaped on the way."""
        return None if self._shape is not None else event_object(self._line, event)

    def close(self) -> None:
        """End the stream now, from any thread: a reading loop ends (quietly: the caller asked
        for it) and the connection is closed."""
        self._closed = True
        # Already finished and released, or never connected: nothing to shut down.
        with contextlib.suppress(AttributeError, RuntimeError, ValueError, OSError):
            self._response.shutdown()
        if not self._iterating:
            self._finish(complete=False)
