"""One watch response as a stream of events: lines of JSON split from the chunked body and
parsed as they come, the object optionally reshaped (metadata only) or parsed without its
``metadata.managedFields`` (cut from the bytes first, for a consumer that drops them), and the
bytes of the object last yielded for a store that keeps them (:mod:`.rawjson`).

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
from .rawjson import (
    RawObject,
    event_object,
    parse_without_managed_fields,
    without_managed_fields,
)

_OBJECT_EVENTS = frozenset({"ADDED", "MODIFIED", "DELETED"})


class WatchEvents:
    """The events of one watch response, parsed lazily; iterate, then (or instead) ``close``.
    ``shape``, when given, makes each event's object what the reader asked for (metadata
    only); ``without_managed_fields`` makes it come without ``metadata.managedFields``, cut
    from the line before it is parsed (for a consumer that drops them: half a Pod's bytes
    need not be parsed)."""

    def __init__(self, response: urllib3.BaseHTTPResponse,
                 shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None, *,
                 without_managed_fields: bool = False) -> None:
        self._response = response
        self._iterating = False
        self._closed = False
        self._shape = shape
        self._cut = without_managed_fields
        self._line: tuple[bytes, int, int] | None = None
        """Where the line last parsed whole lies (its object's bytes not looked for yet)."""
        self._object: RawObject | None = None
        """The bytes of the object last yielded, when they are known already."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self._iterating = True
        complete = False
        try:
            for buffer, begin, end in self._lines():
                yield self._event(buffer, begin, end)
            complete = not self._closed
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if self._closed:
                return  # closed by its owner: the loop ends, no failure
            raise TransportError(f"watch stream broke: {exc}") from exc
        finally:
            self._finish(complete)

    def _lines(self) -> Iterator[tuple[bytes, int, int]]:
        """Where each non-empty line of the body lies: ``buffer[begin:end]``. A line is parsed
        where it lies in the chunk read; only one that spans reads is joined. Copying every
        line out (``bytes.split``), and each read onto the rest of the last, cost a seventh
        of the parse of a Pod's event."""
        pending: list[bytes | memoryview] = []  # the start of a line that spans reads
        for chunk in self._response.stream(1 << 16):
            begin, end = 0, chunk.find(b"\n")
            if end < 0:
                pending.append(chunk)
                continue
            if pending:
                pending.append(memoryview(chunk)[:end])
                line = b"".join(pending)
                pending.clear()
                if line:
                    yield line, 0, len(line)
                begin, end = end + 1, chunk.find(b"\n", end + 1)
            while end >= 0:
                if end > begin:
                    yield chunk, begin, end
                begin, end = end + 1, chunk.find(b"\n", end + 1)
            if begin < len(chunk):
                pending.append(memoryview(chunk)[begin:])
        rest = b"".join(pending)
        if rest.strip():
            yield rest, 0, len(rest)

    def _finish(self, complete: bool) -> None:
        """A stream the server ended goes back to the pool; one cut short (closed, broken,
        abandoned) is closed, so that the server sees the watch end now — a connection only
        shut for reading would sit in the pool while the server kept the watch open."""
        if complete:
            self._response.release_conn()
        else:
            self._response.close()

    def _event(self, buffer: bytes, begin: int, end: int) -> dict[str, Any]:
        """The event of the line ``buffer[begin:end]``."""
        cut = parse_without_managed_fields(buffer, begin, end) if self._cut else None
        if cut is not None:
            event, stripped = cut
            self._line, self._object = None, RawObject(stripped, 0, len(stripped))
        elif self._cut:  # not cut: parsed whole, and they are dropped from what was parsed
            line = buffer[begin:end]
            event = orjson.loads(line)
            self._line = None
            self._object = _drop_managed_fields(line, event) if type(event) is dict else None
        else:
            event = orjson.loads(memoryview(buffer)[begin:end])
            self._line, self._object = (buffer, begin, end), None
        obj = event.get("object") if self._shape is not None else None
        if isinstance(obj, dict) and event.get("type") in _OBJECT_EVENTS:
            event["object"] = self._shape(obj)  # type: ignore[misc]
        return event

    def object_bytes(self, event: dict[str, Any]) -> RawObject | None:
        """The object of ``event``, the event last yielded, as the server sent its bytes
        (without ``managedFields`` if they were dropped; a store keeps them instead of
        serialising the object again); None when they cannot be told apart in the line, or
        the object was reshaped on the way."""
        if self._shape is not None:
            return None
        if self._line is not None:
            return event_object(self._line[0], event, *self._line[1:])
        return self._object

    def close(self) -> None:
        """End the stream now, from any thread: a reading loop ends (quietly: the caller asked
        for it) and the connection is closed."""
        self._closed = True
        # Already finished and released, or never connected: nothing to shut down.
        with contextlib.suppress(AttributeError, RuntimeError, ValueError, OSError):
            self._response.shutdown()
        if not self._iterating:
            self._finish(complete=False)


def _drop_managed_fields(line: bytes, event: dict[str, Any]) -> RawObject | None:
    """Drop ``managedFields`` from the object of ``event``, parsed whole from ``line``, as
    :func:`parse_without_managed_fields` would have; its bytes cut likewise (None: they could
    not be, or the line is not an object's event)."""
    raw = event_object(line, event)
    obj = event.get("object")
    cut = without_managed_fields(raw, obj) if raw is not None and type(obj) is dict else None
    meta = obj.get("metadata") if type(obj) is dict else None
    if type(meta) is dict:
        meta.pop("managedFields", None)
    return None if cut is None else RawObject(cut, 0, len(cut))
