"""Printer-column JSONPath: client-go's jsonpath as kube-apiserver's CRD table convertor uses it.

Regression: a column ``.status.conditions[?(@.type=="Ready")].reason`` came out empty (only
dotted paths were followed), and object cells were Python reprs instead of JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from envtest.kinds.registry import ResourceType
from envtest.printing import jsonpath, tables
from envtest.printing.jsonpath import JSONPathError, column_cell, compile_column, parse

OBJ: dict[str, Any] = {
    "metadata": {"name": "s1", "creationTimestamp": "2026-05-01T10:00:00Z",
                 "annotations": {"example.com/team": "a"}},
    "spec": {"repos": [{"url": "u1", "branch": "dev"}, {"url": "u2"}], "size": 3,
             "ratio": 0.7, "big": 1e21, "on": True, "nothing": None},
    "status": {"conditions": [
        {"type": "PodCreated", "status": "True", "reason": "PodCreated", "count": 1},
        {"status": "Unknown"},
        {"type": "Ready", "status": "False", "reason": "UserStopped", "count": 2}]},
}


@pytest.mark.parametrize(("expression", "found"), [
    ('.status.conditions[?(@.type=="Ready")].reason', ["UserStopped"]),
    (".status.conditions[?(@.type=='Ready')].reason", ["UserStopped"]),
    ('.status.conditions[?(@.type != "Ready")].reason', ["PodCreated"]),  # no type: skipped
    (".status.conditions[?(@.count>1)].type", ["Ready"]),
    (".status.conditions[?(@.reason)].type", ["PodCreated", "Ready"]),
    ('.status.conditions[?(@.type=="Nope")].reason', []),
    (".spec.repos[*].url", ["u1", "u2"]),
    (".spec.repos[-1].url", ["u2"]),
    (".spec.repos[0:2].url", ["u1", "u2"]),
    (".spec.repos[::2].url", ["u1"]),
    (".spec.repos[0,1].url", ["u1", "u2"]),
    (".spec.repos.url", []),  # a field of an array is missing, not mapped
    ("..url", ["u1", "u2"]),
    (".spec.repos[0].*", ["dev", "u1"]),
    (".metadata['name']", ["s1"]),
    (".metadata.annotations.example\\.com/team", ["a"]),
    (".missing.deeper", []),
    (".spec.nothing", [None]),  # null is a value, unlike a missing key
])
def test_find(expression: str, found: list[Any]) -> None:
    assert parse(expression).find(OBJ) == found


@pytest.mark.parametrize("expression", [
    ".spec.repos[5].url",  # index out of range
    ".spec.size[0]",  # not an array
    ".spec.repos[?(@.url==1)]",  # string compared with a number
    ".status.conditions[?(@.count==1.0)]",  # integer compared with a float
    ".spec[?(@.x)]",  # only arrays can be filtered
])
def test_evaluation_errors(expression: str) -> None:
    with pytest.raises(JSONPathError):
        parse(expression).find(OBJ)
    assert column_cell("string", compile_column(expression), OBJ) is None


@pytest.mark.parametrize("expression", [".spec.repos[", ".spec.repos[x]", "range", '.a[?(@.b=="c"'])
def test_parse_errors(expression: str) -> None:
    with pytest.raises(JSONPathError):
        parse(expression)
    assert compile_column(expression) is None


@pytest.mark.parametrize(("kind", "expression", "cell"), [
    ("string", '.status.conditions[?(@.type=="Ready")].reason', "UserStopped"),
    ("string", ".spec.repos[0]", '{"branch":"dev","url":"u1"}'),  # JSON, keys sorted
    ("string", ".spec.size", "3"),
    ("string", ".spec.ratio", "0.7"),
    ("string", ".spec.big", "1e+21"),
    ("string", ".spec.on", "true"),
    ("string", ".spec.nothing", "<no value>"),
    ("string", ".spec.missing", None),
    ("integer", ".spec.size", 3),
    ("integer", ".spec.ratio", 0),  # truncated
    ("integer", ".spec.on", None),
    ("number", ".spec.ratio", 0.7),
    ("boolean", ".spec.on", True),
    ("boolean", ".spec.size", None),
    ("date", ".metadata.creationTimestamp", "2026-05-01T10:00:00Z"),
    ("date", ".spec.size", None),
])
def test_column_cell(kind: str, expression: str, cell: Any) -> None:
    assert column_cell(kind, jsonpath.parse(expression), OBJ) == cell


def test_table_of_a_custom_resource() -> None:
    rtype = ResourceType("example.com", "v1", "sessions", "Session", True, builtin=False,
                         printer_columns=(
                             {"name": "Ready", "type": "string",
                              "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'},
                             {"name": "Repos", "type": "string", "jsonPath": ".spec.repos[*].url",
                              "description": "First repository", "priority": 1},
                             {"name": "Started", "type": "date", "jsonPath": ".status.startTime"},
                             {"name": "Age", "type": "date",
                              "jsonPath": ".metadata.creationTimestamp"}))
    now = datetime(2026, 5, 1, 10, 5, tzinfo=UTC)
    result = tables.table(rtype, [OBJ], list_meta={}, now=now)
    assert result["rows"][0]["cells"] == ["s1", "UserStopped", "u1", None, "5m"]
    columns = result["columnDefinitions"]
    assert columns[1]["description"] == (
        "Custom resource definition column (in JSONPath format): "
        '.status.conditions[?(@.type=="Ready")].reason')
    assert (columns[2]["description"], columns[2]["priority"]) == ("First repository", 1)
