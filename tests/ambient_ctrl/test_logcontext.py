"""The log formats: a text line is ``time level logger message key=value ...`` (the time once,
values readable), a JSON line one object with the same fields; bound context reaches both."""

from __future__ import annotations

import enum
import logging
import re
import sys
from typing import Any

import orjson
import pytest

from ambient_ctrl import logcontext
from ambient_ctrl.logcontext import ContextFilter, JSONFormatter, TextFormatter, render_value

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


class Colour(enum.Enum):
    RED = "red"


def record(message: str = "listener started", *, level: int = logging.INFO,
           exc_info: Any = None, **extra: Any) -> logging.LogRecord:
    """A record as ``logging`` makes it for ``log.info(message, extra=extra)``, with the
    bound context copied on by the handler's filter."""
    made = logging.getLogger("metrics.server").makeRecord(
        "metrics.server", level, __file__, 1, message, (), exc_info, extra=extra)
    ContextFilter().filter(made)
    return made


VALUES = [
    ("word", "metrics", "metrics"),
    ("url", "http://127.0.0.1:8080/metrics", "http://127.0.0.1:8080/metrics"),
    ("spaces", "a b", '"a b"'),
    ("empty", "", '""'),
    ("quote", 'say "hi"', '"say \\"hi\\""'),
    ("equals", "a=b", '"a=b"'),
    ("newline", "two\nlines", '"two\\nlines"'),
    ("int", 3, "3"),
    ("float", 0.5, "0.5"),
    ("bool", False, "false"),
    ("none", None, "null"),
    ("tuple", ("metrics", "probes"), "metrics,probes"),
    ("list-of-numbers", [1, 2], "1,2"),
    ("set", {"b", "a"}, "a,b"),
    ("tuple-needing-quotes", ("a b", "c"), '["a b","c"]'),
    ("tuple-with-comma", ("a,b", "c"), '["a,b","c"]'),
    ("empty-tuple", (), "[]"),
    ("dict", {"a": 1, "b": [True]}, '{"a":1,"b":[true]}'),
    ("enum", Colour.RED, "Colour.RED"),
]


@pytest.mark.parametrize(("value", "shown"), [v[1:] for v in VALUES], ids=[v[0] for v in VALUES])
def test_values_are_rendered_readably(value: Any, shown: str) -> None:
    assert render_value(value) == shown


def test_a_text_line_has_the_time_once_and_fields_after_the_message() -> None:
    with logcontext.bind(controller="agenticsession", request="ns/s-1"):
        line = TextFormatter().format(record(address="http://127.0.0.1:8080",
                                             roles=("metrics", "probes"), authenticated=False))
    assert re.fullmatch(
        TIME + r" INFO metrics\.server listener started address=http://127\.0\.0\.1:8080 "
        r"roles=metrics,probes authenticated=false controller=agenticsession request=ns/s-1",
        line), line
    assert "asctime" not in line
    assert "(" not in line  # no Python tuple


def test_a_traceback_follows_the_line_with_its_fields() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    first, *rest = TextFormatter().format(record("it failed", level=logging.ERROR,
                                                 exc_info=exc_info, key="v")).split("\n")
    assert re.fullmatch(TIME + r" ERROR metrics\.server it failed key=v", first), first
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: boom"


def test_json_lines_carry_the_same_fields_and_never_the_text_formats_time() -> None:
    made = record(address="x", roles=("metrics", "probes"))
    TextFormatter().format(made)  # another handler formatted the same record first
    logging.Formatter("%(asctime)s %(message)s").format(made)
    entry = orjson.loads(JSONFormatter().format(made))
    assert set(entry) == {"ts", "level", "logger", "msg", "address", "roles"}
    assert entry["roles"] == ["metrics", "probes"]
    assert (entry["level"], entry["logger"], entry["msg"]) == (
        "info", "metrics.server", "listener started")


def test_configure_installs_the_text_format(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logcontext.configure(level="INFO")
        logging.getLogger("tests.logs").info("hello", extra={"n": 1})
        err = capsys.readouterr().err.strip()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert re.fullmatch(TIME + r" INFO tests\.logs hello n=1", err), err
