"""Structured log context: fields bound for the duration of a reconcile reach every log line.

The controller binds ``controller``, ``request`` and ``reconcile_id`` around each reconcile;
anything logged meanwhile — by the reconciler, the client, helpers — carries them, as
attributes of the LogRecord (for :class:`JSONFormatter` and for tests) and appended to the text
of the plain format. Install once, at the entry point, with :func:`configure`.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import orjson

_FIELDS: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "log_fields", default=MappingProxyType({}))
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime"}
"""A LogRecord's own attributes (and what formatters add to it): not fields."""


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every record logged in this context (this thread, this block)."""
    token = _FIELDS.set(MappingProxyType({**_FIELDS.get(), **fields}))
    try:
        yield
    finally:
        _FIELDS.reset(token)


def fields() -> Mapping[str, Any]:
    return _FIELDS.get()


class ContextFilter(logging.Filter):
    """Copies the bound fields onto each record (attach to handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _FIELDS.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        record.context = dict(_FIELDS.get())
        return True


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    """The record's own fields: ``extra={...}`` first, in the order given, then the bound
    context (the order :class:`ContextFilter` adds them in)."""
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED and k != "context"}


_BARE = re.compile(r"[^\s\"'=\\\x00-\x1f\x7f\u0085\u2028\u2029]+")
"""A string printed as it is: no space, quote, ``=``, backslash or line break in it."""


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _scalar(value: Any) -> str | None:
    """The text of a string, number, boolean or None (None: not one of those)."""
    if value is None or isinstance(value, bool):
        return _json(value)
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value
    return None


def render_value(value: Any) -> str:
    """A field's value as ``key=value`` shows it: strings bare when nothing in them could be
    misread (else JSON-quoted), numbers and booleans as JSON spells them, a sequence of plain
    words comma-joined (``roles=metrics,probes``), anything else as JSON."""
    text = _scalar(value)
    if text is None and not isinstance(value, (Mapping, list, tuple, set, frozenset)):
        text = str(value)  # an enum, a path, a Request: how it prints itself
    if text is not None:
        return text if _BARE.fullmatch(text) else _json(text)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
        words = [_scalar(item) for item in items]
        if items and all(w is not None and _BARE.fullmatch(w) and "," not in w for w in words):
            return ",".join(w for w in words if w is not None)
        return _json(items)
    return _json(value)


class TextFormatter(logging.Formatter):
    """``time level logger message key=value...`` on one line (the traceback, if any, on the
    lines after it) — readable on a terminal. The time is UTC, ISO 8601, to the millisecond."""

    def format(self, record: logging.LogRecord) -> str:
        moment = dt.datetime.fromtimestamp(record.created, dt.UTC)
        parts = [moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
                 record.levelname, record.name, record.getMessage()]
        parts += [f"{key}={render_value(value)}" for key, value in _extra(record).items()]
        text = " ".join(parts)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text += "\n" + record.exc_text
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text


class JSONFormatter(logging.Formatter):
    """One JSON object per line, for log collectors in a cluster: ``ts`` (seconds since the
    epoch), ``level``, ``logger``, ``msg``, the fields, and ``error`` (the traceback) when
    there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"ts": record.created, "level": record.levelname.lower(),
                                 "logger": record.name, "msg": record.getMessage(),
                                 **_extra(record)}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def configure(*, level: str = "INFO", json: bool = False) -> None:
    """Route the root logger to stderr with bound fields, as text or JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JSONFormatter() if json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
