"""A watch response's events (``informers.watchstream``), read from canned bytes: each object
without ``managedFields`` when asked, however the line had to be parsed, and its bytes (when
given) exactly that object."""

from __future__ import annotations

import io
import json
from typing import Any

import orjson
import pytest
import urllib3

from informers.rawjson import parse_without_managed_fields
from informers.watchstream import WatchEvents

POD: dict[str, Any] = {
    "kind": "Pod", "apiVersion": "v1",
    "metadata": {"name": "p", "namespace": "default", "resourceVersion": "7",
                 "labels": {"app": "web"},
                 "managedFields": [{"manager": "kubectl", "operation": "Update",
                                    "fieldsType": "FieldsV1",
                                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}]},
    "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
STRIPPED = {**POD, "metadata": {k: v for k, v in POD["metadata"].items()
                                if k != "managedFields"}}
# "]}" inside a string could also end the array and metadata: the cut gives up on it.
AMBIGUOUS = {**POD, "metadata": {**POD["metadata"], "managedFields": [{"manager": "x]}"}]}}

LINES = {  # and whether the cut before parsing is taken
    "kube layout": (orjson.dumps({"type": "MODIFIED", "object": POD}), True),
    "deleted": (orjson.dumps({"type": "DELETED", "object": POD}), True),
    "spaces": (json.dumps({"type": "MODIFIED", "object": POD}).encode(), False),
    "ambiguous": (orjson.dumps({"type": "ADDED", "object": AMBIGUOUS}), False),
}


def _events(body: bytes, **options: Any) -> WatchEvents:
    return WatchEvents(urllib3.HTTPResponse(body=io.BytesIO(body), preload_content=False),
                       **options)


@pytest.mark.parametrize(("line", "cut"), LINES.values(), ids=LINES.keys())
def test_objects_come_without_managed_fields_when_asked(line: bytes, cut: bool) -> None:
    assert (parse_without_managed_fields(line) is not None) is cut
    bookmark = b'{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"9"}}}'
    stream = _events(line + b"\n" + bookmark + b"\n", without_managed_fields=True)
    seen = []
    for event in stream:
        raw = stream.object_bytes(event)
        if raw is not None:
            assert orjson.loads(raw.line[raw.first:raw.last]) == event["object"]
        seen.append(event)
    assert seen[0]["object"] == STRIPPED
    assert seen[1] == orjson.loads(bookmark)


def test_objects_come_whole_unless_asked() -> None:
    stream = _events(LINES["kube layout"][0] + b"\n")
    [event] = list(stream)
    raw = stream.object_bytes(event)
    assert event["object"] == POD
    assert raw is not None and orjson.loads(raw.line[raw.first:raw.last]) == POD


def test_lines_split_across_reads_are_whole() -> None:
    """Many events in one read, and lines cut between reads (64 KiB each), each parsed where
    it lies; one line spans four reads; empty lines are skipped; the last line may come
    without a newline."""
    lines = [orjson.dumps({"type": "MODIFIED", "object": {
        **POD, "metadata": {**POD["metadata"], "name": f"p{i}", "resourceVersion": str(i)}}})
        for i in range(500)]
    lines[250] = lines[250].replace(b'"labels":{', b'"labels":{"big":"%s",' % (b"x" * 200_000))
    body = b"\n".join(lines[:100]) + b"\n\n" + b"\n".join(lines[100:])
    assert len(body) > 2 * (1 << 16)
    for strip in (True, False):
        stream = _events(body, without_managed_fields=strip)
        names = []
        for event in stream:
            raw = stream.object_bytes(event)
            assert raw is not None
            assert orjson.loads(raw.line[raw.first:raw.last]) == event["object"]
            assert ("managedFields" in event["object"]["metadata"]) is not strip
            names.append(event["object"]["metadata"]["name"])
        assert names == [f"p{i}" for i in range(500)]
