"""The byte-level cut of a watch event's object (``informers.rawjson``): wherever it answers,
it is exactly the object less ``metadata.managedFields``; where it cannot show that, it answers
None and the store serialises the object instead."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from informers.rawjson import (
    event_object,
    parse_list_without_managed_fields,
    parse_object_without_managed_fields,
    parse_without_managed_fields,
    without_managed_fields,
)
from informers.store import Store, strip_managed_fields

# Text that looks like the patterns the cut searches for, to be found inside strings.
_TRICKY = st.sampled_from(['],"uid":', ']},"spec":', ',"managedFields":[', '"metadata":{',
                           ']}}', '\\', '"', ']', '}', 'k:{"type":"Ready"}', '<&>', 'é', ''])
_TEXT = st.lists(st.one_of(_TRICKY, st.text(max_size=5)), max_size=4).map("".join)
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), _TEXT)
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_TEXT, inner, max_size=3)), max_leaves=12)
_FIELDS = st.recursive(st.just({}), lambda inner: st.dictionaries(
    st.one_of(_TEXT.map(lambda t: "f:" + t), _TEXT.map(lambda t: "k:" + t), st.just(".")),
    inner, max_size=3), max_leaves=8)
_ENTRY = st.fixed_dictionaries({
    "manager": _TEXT, "operation": st.sampled_from(["Update", "Apply"]),
    "apiVersion": st.just("v1"), "time": st.just("2026-12-07T05:00:00Z"),
    "fieldsType": st.just("FieldsV1"), "fieldsV1": _FIELDS})
_OWNER = st.fixed_dictionaries({"apiVersion": st.just("v1"), "kind": _TEXT, "name": _TEXT,
                                "uid": _TEXT, "controller": st.booleans()})


@st.composite
def objects(draw: st.DrawFn) -> dict[str, Any]:
    """Objects shaped as kube-apiserver serves them (type meta, then metadata with
    managedFields among its members), with tricky strings everywhere."""
    meta: dict[str, Any] = {"name": draw(_TEXT)}
    for key, values in (("namespace", _TEXT), ("labels", st.dictionaries(_TEXT, _TEXT)),
                        ("annotations", st.dictionaries(_TEXT, _TEXT)),
                        ("ownerReferences", st.lists(_OWNER, max_size=2)),
                        ("finalizers", st.lists(_TEXT, max_size=2))):
        if draw(st.booleans()):
            meta[key] = draw(values)
    meta["resourceVersion"] = str(draw(st.integers(1, 10**9)))
    if draw(st.booleans()):
        managed = draw(st.lists(_ENTRY, min_size=1, max_size=3))
        members = list(meta.items())
        # Never first (the cut needs a member before it); last, as kube-apiserver puts it,
        # or anywhere else.
        at = draw(st.one_of(st.just(len(members)), st.integers(1, len(members))))
        meta = dict([*members[:at], ("managedFields", managed), *members[at:]])
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Thing", "metadata": meta}
    for key in draw(st.lists(st.sampled_from(["spec", "status", "data", "x-y", "é"]),
                             unique=True, max_size=3)):
        obj[key] = draw(_JSON)
    return obj


def _go_style(data: bytes) -> bytes:
    """What Go's encoding/json sends for the same value: <, > and & escaped."""
    return data.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")


@settings(max_examples=400, deadline=None)
@given(objects(), st.sampled_from(["ADDED", "MODIFIED", "DELETED"]), st.booleans())
def test_a_cut_is_the_object_without_managed_fields(obj: dict[str, Any], event_type: str,
                                                    go_style: bool) -> None:
    line = orjson.dumps({"type": event_type, "object": obj})
    if go_style:
        line = _go_style(line)
    event = orjson.loads(line)
    raw = event_object(line, event)
    assert raw is not None
    assert orjson.loads(line[raw.first:raw.last]) == obj
    cut = without_managed_fields(raw, event["object"])
    expected = strip_managed_fields(orjson.loads(orjson.dumps(obj)))
    if cut is not None:
        assert orjson.loads(cut) == expected
    keys = [k for k in obj if k != "metadata"] + list(obj["metadata"])
    if all(k.isascii() and k.isidentifier() for k in keys):
        assert cut is not None  # kube's layout: the cut is taken, not given up


@given(objects())
def test_what_the_patterns_cannot_place_is_left_to_serialisation(obj: dict[str, Any]) -> None:
    pretty = json.dumps({"type": "MODIFIED", "object": obj}).encode()  # spaces after : and ,
    event = orjson.loads(pretty)
    raw = event_object(pretty, event)
    if raw is not None:
        cut = without_managed_fields(raw, event["object"])
        assert cut is None or orjson.loads(cut) == strip_managed_fields(event["object"])


def test_lines_of_another_layout_are_not_cut() -> None:
    obj = {"apiVersion": "v1", "kind": "Thing", "metadata": {"name": "a", "managedFields": []}}
    for line in (orjson.dumps({"object": obj, "type": "ADDED"}),  # members swapped
                 orjson.dumps({"type": "BOOKMARK", "object": obj, "extra": 1}),
                 b'{"type":"ADDED","object":' + orjson.dumps(obj) + b"} "):
        assert event_object(line, orjson.loads(line)) is None
    spec_first = {"spec": {"metadata": {"x": 1}}, **obj}  # a nested "metadata" comes first
    line = orjson.dumps({"type": "ADDED", "object": spec_first})
    raw = event_object(line, orjson.loads(line))
    assert raw is not None and without_managed_fields(raw, orjson.loads(line)["object"]) is None


@settings(max_examples=100, deadline=None)
@given(st.lists(objects(), min_size=1, max_size=5))
def test_the_store_holds_the_same_with_or_without_the_line(objs: list[dict[str, Any]]) -> None:
    from_line, from_object = Store(), Store()
    for i, obj in enumerate(objs):
        obj["metadata"]["name"] = f"o{i}"
        line = orjson.dumps({"type": "MODIFIED", "object": obj})
        event = orjson.loads(line)
        from_line.upsert(event["object"], raw=event_object(line, event))
        from_object.upsert(orjson.loads(orjson.dumps(obj)))
    assert from_line.keys() == from_object.keys()
    for key in from_line.keys():  # noqa: SIM118 (Store.keys(), not a dict)
        assert from_line.get(key) == from_object.get(key)
        assert "managedFields" not in (from_line.get(key) or {})["metadata"]


# cutting before parsing ------------------------------------------------------------------------
@st.composite
def nested_elsewhere(draw: st.DrawFn) -> dict[str, Any]:
    """Objects whose spec holds a ``managedFields`` of its own (a custom resource embedding
    objects), before or after metadata, with or without metadata's own."""
    obj = draw(objects())
    inner = {"managedFields": draw(st.lists(_ENTRY, max_size=2)), "x": draw(_JSON)}
    spec = {"template": {"metadata": inner}} if draw(st.booleans()) else inner
    if draw(st.booleans()):
        return {"spec": spec, **obj}
    return {**obj, "spec": spec}


def _stripped(obj: dict[str, Any]) -> dict[str, Any]:
    return strip_managed_fields(orjson.loads(orjson.dumps(obj)))


@settings(max_examples=400, deadline=None)
@given(st.one_of(objects(), nested_elsewhere()), st.sampled_from(["ADDED", "MODIFIED",
                                                                   "DELETED"]), st.booleans())
def test_a_cut_before_parsing_is_the_event_without_managed_fields(
        obj: dict[str, Any], event_type: str, go_style: bool) -> None:
    line = orjson.dumps({"type": event_type, "object": obj})
    if go_style:
        line = _go_style(line)
    cut = parse_without_managed_fields(line)
    # The same where the line lies amid others (a watch response's buffer).
    buffer = b'{"type":"BOOKMARK"}\n' + line + b"\n" + line[:20]
    assert parse_without_managed_fields(buffer, 20, 20 + len(line)) == cut
    if cut is None:
        meta = obj["metadata"]
        keys = [k for k in obj if k != "metadata"] + list(meta)
        # kube's layout, metadata's own managedFields: the cut is taken, not given up, unless
        # a string in them holds what could also close the array (it then stops looking).
        managed = orjson.dumps(meta.get("managedFields"))[:-1]
        assert ("managedFields" not in meta or next(iter(obj)) == "spec"
                or not all(k.isascii() and k.isidentifier() for k in keys)
                or re.search(rb'\][,}](?!\\)', managed))
        return
    event, stripped = cut
    assert event == {"type": event_type, "object": _stripped(obj)}
    assert orjson.loads(stripped) == event["object"]
    assert len(stripped) == len(stripped.__bytes__())  # exact size, not a view
    parsed = orjson.loads(line)  # the same bytes as the cut after parsing, to the byte
    after = without_managed_fields(event_object(line, parsed), parsed["object"])
    assert after is None or stripped == after
    amid = event_object(buffer, parsed, 20, 20 + len(line))
    assert amid is not None and without_managed_fields(amid, parsed["object"]) == after


@given(st.one_of(objects(), nested_elsewhere()))
def test_lines_the_cut_cannot_place_are_left_to_a_whole_parse(obj: dict[str, Any]) -> None:
    pretty = json.dumps({"type": "MODIFIED", "object": obj}).encode()  # spaces after : and ,
    cut = parse_without_managed_fields(pretty)
    assert cut is None or cut[0]["object"] == _stripped(obj)


def test_what_is_not_an_object_event_in_kube_layout_is_not_cut() -> None:
    obj = {"apiVersion": "v1", "kind": "Thing",
           "metadata": {"name": "a", "managedFields": [{"manager": "m"}], "uid": "u"}}
    line = orjson.dumps({"type": "MODIFIED", "object": obj})
    assert parse_without_managed_fields(line) is not None
    for other in (orjson.dumps({"object": obj, "type": "ADDED"}),  # members swapped
                  orjson.dumps({"type": "BOOKMARK", "object": obj}),
                  orjson.dumps({"type": "ADDED", "object": obj, "extra": 1}),
                  line + b" ", line[:-1],  # trailing space, truncated
                  line.replace(b"],", b"] ,"),  # a space after the array
                  line.replace(b'"uid"', b'"uid":"u","uid"').replace(b'"u"}', b'1}'),
                  orjson.dumps({"type": "ADDED", "object": {  # a second, later metadata
                      **obj, "metadata": {"name": "a"}}}).replace(
                          b'"metadata":{"name":"a"}', b'"metadata":{"name":"a","managedFields"'
                          b':[{"manager":"m"}],"x":1},"metadata":{"name":"b"}')):
        cut = parse_without_managed_fields(other)
        if cut is not None:  # only ever the same as a whole parse, stripped
            assert cut[0]["object"] == strip_managed_fields(orjson.loads(other)["object"])
    assert parse_without_managed_fields(line[:-1]) is None  # invalid JSON: not ours to judge
    for truncated in (b'{"type":"ADDED","object":{"metadata":{"a":1,"managedFields":[]}',
                      b'{"type":"ADDED","object":{"metadata":{"a":1,"managedFields":[}',
                      b'{"type":"ADDED","object":{"metadata":{"a":1,"managedFields":['):
        assert parse_without_managed_fields(truncated) is None
    bad = line.replace(b'"uid":"u"', b'"uid":u')  # invalid outside managedFields
    assert parse_without_managed_fields(bad) is None


def test_a_metadata_without_managed_fields_is_not_cut_elsewhere() -> None:
    """The dangerous case: metadata has none, the spec embeds an object that has."""
    obj = {"apiVersion": "v1", "kind": "Backup", "metadata": {"name": "a", "uid": "u"},
           "spec": {"metadata": {"name": "b", "managedFields": [{"manager": "m"}],
                                 "uid": "v"}}}
    assert parse_without_managed_fields(orjson.dumps({"type": "ADDED", "object": obj})) is None


# list pages ---------------------------------------------------------------------------------
def _page(items: list[dict[str, Any]], go_style: bool = False) -> bytes:
    data = orjson.dumps({"kind": "ThingList", "apiVersion": "v1",
                         "metadata": {"resourceVersion": "42", "continue": "abc"},
                         "items": items})
    return _go_style(data) if go_style else data


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(objects(), nested_elsewhere()), max_size=6), st.booleans())
def test_a_list_page_cut_before_parsing_is_the_page_without_managed_fields(
        items: list[dict[str, Any]], go_style: bool) -> None:
    data = _page(items, go_style)
    page = parse_list_without_managed_fields(data)
    if page is None:  # nothing to cut, or a cut it cannot account for: a whole parse follows
        return
    whole = orjson.loads(data)
    for item in whole["items"]:
        item["metadata"].pop("managedFields", None)
    assert page == whole
    assert parse_list_without_managed_fields(data + b"\n") == whole


def test_a_kube_list_of_pods_is_cut() -> None:
    managed = [{"manager": "kubelet", "operation": "Update", "apiVersion": "v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:phase": {}}}}]
    items = [{"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": f"p{i}", "namespace": "ns", "uid": f"u{i}", "resourceVersion": str(i),
        "labels": {"app": "x"}, "managedFields": managed}, "spec": {"containers": []},
        "status": {"phase": "Running"}} for i in range(3)]
    page = parse_list_without_managed_fields(_page(items))
    assert page is not None and [p["metadata"] for p in page["items"]] == [
        {k: v for k, v in i["metadata"].items() if k != "managedFields"} for i in items]
    assert page["metadata"] == {"resourceVersion": "42", "continue": "abc"}


def test_a_list_whose_cuts_are_not_all_the_items_own_is_left_to_a_whole_parse() -> None:
    """One item's metadata has none, its spec embeds an object that has: the count of cuts
    and of stand-ins in items' metadata differ."""
    own = {"apiVersion": "v1", "kind": "Backup", "metadata": {
        "name": "a", "uid": "u", "managedFields": [{"manager": "m"}]}, "spec": {}}
    embedding = {"apiVersion": "v1", "kind": "Backup", "metadata": {"name": "b", "uid": "v"},
                 "spec": {"metadata": {"name": "c", "managedFields": [{"manager": "m"}],
                                       "uid": "w"}}}
    assert parse_list_without_managed_fields(_page([own])) is not None
    assert parse_list_without_managed_fields(_page([own, embedding])) is None
    assert parse_list_without_managed_fields(_page([embedding, own])) is None
    assert parse_list_without_managed_fields(_page([])) is None  # nothing to cut
    assert parse_list_without_managed_fields(_page([own])[:-1]) is None  # truncated
    assert parse_list_without_managed_fields(b'[{"metadata":{"a":1,"managedFields":[]},'
                                             b'"b":1}]') is None  # not a list object


# one object (a write's answer) --------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.one_of(objects(), nested_elsewhere()), st.booleans(), st.sampled_from([b"", b"\n"]))
def test_an_answer_cut_before_parsing_is_the_object_without_managed_fields(
        obj: dict[str, Any], go_style: bool, trailer: bytes) -> None:
    data = orjson.dumps(obj)
    data = (_go_style(data) if go_style else data) + trailer
    cut = parse_object_without_managed_fields(data)
    if cut is None:  # nothing to cut, or not provably metadata's own: a whole parse follows
        meta = obj["metadata"]
        managed = orjson.dumps(meta.get("managedFields"))[:-1]
        assert ("managedFields" not in meta or next(iter(obj)) == "spec"
                or any(not k.isascii() or not k.isidentifier() for k in [*obj, *meta])
                or re.search(rb'\][,}](?!\\)', managed))
        return
    assert cut == _stripped(obj)


def test_an_answer_the_cut_cannot_place_is_left_to_a_whole_parse() -> None:
    obj = {"apiVersion": "v1", "kind": "Backup", "metadata": {"name": "a", "uid": "u"},
           "spec": {"metadata": {"name": "b", "managedFields": [{"manager": "m"}]}}}
    assert parse_object_without_managed_fields(orjson.dumps(obj)) is None  # not metadata's
    own = {"apiVersion": "v1", "kind": "Thing",
           "metadata": {"name": "a", "managedFields": [{"manager": "m"}], "uid": "u"}}
    data = orjson.dumps(own)
    assert parse_object_without_managed_fields(data) == {
        "apiVersion": "v1", "kind": "Thing", "metadata": {"name": "a", "uid": "u"}}
    for other in (data[:-1], b"[" + data + b"]", json.dumps(own).encode(), b"", b"{}"):
        assert parse_object_without_managed_fields(other) is None
