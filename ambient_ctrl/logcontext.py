"""Structured log context: fields bound for the duration of a reconcile reach every log line.

The controller binds ``controller``, ``request`` and ``reconcile_id`` around each reconcile;
anything logged meanwhile — by the reconciler, the client, helpers — carries them, as
attributes of the LogRecord (for :class:`JSONFormatter` and for tests) and appended to the text
of the plain format. Install once, at the entry point, with :func:`configure`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import orjson

_FIELDS: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "log_fields", default=MappingProxyType({}))
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


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
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED and k != "context"}


class TextFormatter(logging.Formatter):
    """``time level logger message key=value...`` — readable on a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = _extra(record)
        if extra:
            text += " " + " ".join(f"{k}={v}" for k, v in sorted(extra.items()))
        return text


class JSONFormatter(logging.Formatter):
    """One JSON object per line, for log collectors in a cluster."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"ts": record.created, "level": record.levelname.lower(),
                                 "logger": record.name, "msg": record.getMessage(),
                                 **_extra(record)}
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(*, level: str = "INFO", json: bool = False) -> None:
    """Route the root logger to stderr with bound fields, as text or JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JSONFormatter() if json else TextFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
