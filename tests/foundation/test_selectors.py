"""Tests for foundation.selectors: label and field selectors as kube-apiserver has them.

Table cases follow apimachinery's grammar and messages; the properties compare the parsed
selector against an evaluation written here straight from the documented semantics.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foundation.selectors import (
    EVERYTHING,
    NOTHING,
    FieldSelector,
    LabelSelector,
    Operator,
    Requirement,
    SelectorError,
    escape_field_value,
    label_selector_from_dict,
    parse_field_selector,
    parse_label_selector,
)

FAST = settings(max_examples=80, deadline=None)

# --------------------------------------------------------------------------------------------
# Label selector parsing
# --------------------------------------------------------------------------------------------

PARSED = [
    ("", "", ()),
    ("   ", "", ()),
    ("a=b", "a=b", (("a", Operator.EQUALS, ("b",)),)),
    ("a==b", "a==b", (("a", Operator.DOUBLE_EQUALS, ("b",)),)),
    ("a!=b", "a!=b", (("a", Operator.NOT_EQUALS, ("b",)),)),
    ("a", "a", (("a", Operator.EXISTS, ()),)),
    ("!a", "!a", (("a", Operator.DOES_NOT_EXIST, ()),)),
    ("a in (y,x,y)", "a in (x,y)", (("a", Operator.IN, ("x", "y")),)),
    ("a notin (x)", "a notin (x)", (("a", Operator.NOT_IN, ("x",)),)),
    ("a in ()", "a in ()", (("a", Operator.IN, ("",)),)),
    ("a in (,x)", "a in (,x)", (("a", Operator.IN, ("", "x")),)),
    ("a in (x,)", "a in (,x)", (("a", Operator.IN, ("", "x")),)),
    ("a in (x,,y)", "a in (,x,y)", (("a", Operator.IN, ("", "x", "y")),)),
    ("a=", "a=", (("a", Operator.EQUALS, ("",)),)),
    ("a>5", "a>5", (("a", Operator.GREATER_THAN, ("5",)),)),
    ("a<5", "a<5", (("a", Operator.LESS_THAN, ("5",)),)),
    (" a = b ,\tc\n", "a=b,c", (("a", Operator.EQUALS, ("b",)), ("c", Operator.EXISTS, ()))),
    ("b=1,a=2,a!=3", "a=2,a!=3,b=1",
     (("a", Operator.EQUALS, ("2",)), ("a", Operator.NOT_EQUALS, ("3",)),
      ("b", Operator.EQUALS, ("1",)))),
    ("in in (in,notin)", "in in (in,notin)", (("in", Operator.IN, ("in", "notin")),)),
    ("notin=in", "notin=in", (("notin", Operator.EQUALS, ("in",)),)),
    ("example.com/app.kubernetes_io-x=v.1", "example.com/app.kubernetes_io-x=v.1",
     (("example.com/app.kubernetes_io-x", Operator.EQUALS, ("v.1",)),)),
    ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()",
     (("x", Operator.IN, ("", "baz", "foo")), ("y", Operator.EXISTS, ()),
      ("z", Operator.NOT_IN, ("",)))),
    # The upstream lexer reads a NUL byte as the end of the input.
    ("a=b\x00,junk", "a=b", (("a", Operator.EQUALS, ("b",)),)),
]


@pytest.mark.parametrize(("text", "canonical", "requirements"), PARSED,
                         ids=[repr(p[0]) for p in PARSED])
def test_parse_label_selector(text: str, canonical: str,
                              requirements: tuple[tuple[str, Operator, tuple[str, ...]], ...]
                              ) -> None:
    selector = parse_label_selector(text)
    assert [(r.key, r.operator, r.values) for r in selector.requirements] == list(requirements)
    assert str(selector) == canonical
    assert parse_label_selector(canonical) == selector


PARSE_ERRORS = [
    (",", "found ',', expected: !, identifier, or 'end of string'"),
    ("a,", "found '', expected: identifier after ','"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("a=b=c", "found '=', expected: ',' or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("(a)", "found '(', expected: !, identifier, or 'end of string'"),
    ("a in b", "unable to parse requirement: found 'b' expected: '('"),
    ("a in (b", "found '', expected: ',' or ')'"),
    ("a in (b c)", "found 'c', expected: ',' or ')'"),
    ("a in (=)", "found '=', expected: ',', ')' or identifier"),
    ("a in (b,=)", "found '=', expected: ',', or identifier"),
    ("a===b", "found '=', expected: identifier"),
    ("a>=1", "found '=', expected: identifier"),
    ("a b", "found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("!", "found '', expected: identifier"),
    ("-a", 'invalid label key "-a"'),
    ("a/b/c", 'invalid label key "a/b/c"'),
    ("Example.com/a", 'invalid label key "Example.com/a"'),
    ("/a", "prefix part must be non-empty"),
    ("a.com/", "name part must be non-empty"),
    ("x" * 64, "name part must be no more than 63 bytes"),
    ("a=-b", 'invalid label value "-b"'),
    ("a=" + "v" * 64, "must be no more than 63 bytes"),
    ("a in (x,-y)", 'invalid label value "-y"'),
    ("a>x", "the value must be an integer"),
    ("a>99999999999999999999", "the value must be an integer"),
]


@pytest.mark.parametrize(("text", "message"), PARSE_ERRORS, ids=[p[0][:20] for p in PARSE_ERRORS])
def test_parse_label_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_label_selector(text)
    assert message in str(info.value)


MATCHES = [
    ("a=1", {"a": "1"}, True),
    ("a=1", {"a": "2"}, False),
    ("a=1", {}, False),
    ("a!=1", {}, True),
    ("a!=1", {"a": "1"}, False),
    ("a!=1", {"a": "2"}, True),
    ("a in (1,2)", {"a": "2"}, True),
    ("a in (1,2)", {}, False),
    ("a notin (1,2)", {}, True),
    ("a notin (1,2)", {"a": "1"}, False),
    ("a", {"a": ""}, True),
    ("a", {"b": "1"}, False),
    ("!a", {"b": "1"}, True),
    ("!a", {"a": ""}, False),
    ("a=", {"a": ""}, True),
    ("a=", {}, False),
    ("a>5", {"a": "6"}, True),
    ("a>5", {"a": "5"}, False),
    ("a>5", {"a": "x"}, False),
    ("a>5", {}, False),
    ("a<5", {"a": "-3"}, True),
    ("a<5", {"a": "+4"}, True),
    ("a=1,b=2", {"a": "1", "b": "2"}, True),
    ("a=1,b=2", {"a": "1"}, False),
    ("", {}, True),
]


@pytest.mark.parametrize(("text", "labels", "expected"), MATCHES,
                         ids=[f"{m[0]}-{sorted(m[1].items())}" for m in MATCHES])
def test_label_selector_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


def test_empty_and_nothing_selectors() -> None:
    assert parse_label_selector("").empty
    assert parse_label_selector("") == EVERYTHING
    assert EVERYTHING.matches(None) and EVERYTHING.matches({"a": "b"})
    assert not NOTHING.empty and not NOTHING.matches({}) and str(NOTHING) == ""
    assert not parse_label_selector("a").empty


def test_requires_exact_match() -> None:
    selector = parse_label_selector("a=1,b in (2),c in (3,4),d!=5")
    assert [selector.requires_exact_match(k) for k in "abcdx"] == ["1", "2", None, None, None]


# --------------------------------------------------------------------------------------------
# metav1.LabelSelector
# --------------------------------------------------------------------------------------------

DICT_CASES = [
    ({}, ""),
    ({"matchLabels": {"app": "web", "tier": "fe"}}, "app=web,tier=fe"),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["b", "a"]},
                           {"key": "x", "operator": "NotIn", "values": ["1"]},
                           {"key": "y", "operator": "Exists"},
                           {"key": "z", "operator": "DoesNotExist", "values": []}]},
     "env in (a,b),x notin (1),y,!z"),
    ({"matchLabels": {"b": "1"}, "matchExpressions": [{"key": "a", "operator": "Exists"}]},
     "a,b=1"),
    ({"matchLabels": None, "matchExpressions": None}, ""),
]


@pytest.mark.parametrize(("selector", "text"), DICT_CASES,
                         ids=[d[1] or "empty" for d in DICT_CASES])
def test_label_selector_from_dict(selector: Mapping[str, Any], text: str) -> None:
    converted = label_selector_from_dict(selector)
    assert str(converted) == text
    assert converted == parse_label_selector(text)


DICT_ERRORS = [
    ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
     '"Gt" is not a valid label selector operator'),
    ({"matchExpressions": [{"key": "a", "operator": "in", "values": ["1"]}]},
     '"in" is not a valid label selector operator'),
    ({"matchExpressions": [{"key": "a", "operator": "In"}]}, "values set can't be empty"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
     "values set must be empty"),
    ({"matchExpressions": [{"operator": "Exists"}]}, "string key"),
    ({"matchLabels": {"a": 1}}, "must be strings"),
    ({"matchLabels": {"a b": "1"}}, 'invalid label key "a b"'),
    ({"matchLabels": ["a"]}, "matchLabels must be an object"),
    (["a"], "must be an object"),
]


@pytest.mark.parametrize(("selector", "message"), DICT_ERRORS,
                         ids=[str(i) for i in range(len(DICT_ERRORS))])
def test_label_selector_from_dict_errors(selector: Any, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        label_selector_from_dict(selector)
    assert message in str(info.value)


def test_nil_label_selector_selects_nothing() -> None:
    assert label_selector_from_dict(None) == NOTHING


def test_requirement_validates_like_new_requirement() -> None:
    with pytest.raises(SelectorError, match="exact-match compatibility"):
        Requirement("a", Operator.EQUALS, ("1", "2"))
    with pytest.raises(SelectorError, match="not a valid label selector operator"):
        Requirement("a", "~", ())  # type: ignore[arg-type]
    assert Requirement("a", "in", ["b", "a", "b"]).values == ("a", "b")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Field selectors
# --------------------------------------------------------------------------------------------

ALLOWED = ("metadata.name", "metadata.namespace", "status.phase", "spec.nodeName")

FIELD_CASES = [
    ("", ""),
    ("metadata.name=a", "metadata.name=a"),
    ("metadata.name==a", "metadata.name=a"),
    ("status.phase!=Running,metadata.name=a", "metadata.name=a,status.phase!=Running"),
    (",metadata.name=a,,", "metadata.name=a"),
    ("metadata.name=a\\,b\\=c\\\\d", "metadata.name=a\\,b\\=c\\\\d"),
    ("spec.nodeName=", "spec.nodeName="),
    ("metadata.name=x!", "metadata.name=x!"),
]


@pytest.mark.parametrize(("text", "canonical"), FIELD_CASES,
                         ids=[f[0] or "empty" for f in FIELD_CASES])
def test_parse_field_selector(text: str, canonical: str) -> None:
    selector = parse_field_selector(text, allowed=ALLOWED)
    assert str(selector) == canonical
    assert parse_field_selector(canonical, allowed=ALLOWED) == selector


def test_field_selector_values_and_matching() -> None:
    selector = parse_field_selector("metadata.name=a\\,b,status.phase!=Failed", allowed=ALLOWED)
    assert [(r.field, r.operator, r.value) for r in selector.requirements] == [
        ("metadata.name", Operator.EQUALS, "a,b"), ("status.phase", Operator.NOT_EQUALS, "Failed")]
    assert selector.matches({"metadata.name": "a,b", "status.phase": "Running"})
    assert selector.matches({"metadata.name": "a,b"})  # an absent field is ""
    assert not selector.matches({"metadata.name": "a,b", "status.phase": "Failed"})
    assert not selector.matches({})
    assert selector.requires_exact_match("metadata.name") == "a,b"
    assert selector.requires_exact_match("status.phase") is None
    empty = parse_field_selector("spec.nodeName=", allowed=ALLOWED)
    assert empty.matches({}) and not empty.matches({"spec.nodeName": "n"})
    assert parse_field_selector("", allowed=()).empty and FieldSelector().matches({})


FIELD_ERRORS = [
    ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
    ("metadata.name=a=b", "unescaped character in value"),
    ("metadata.name=a,b", "invalid selector: 'metadata.name=a,b'; can't understand 'b'"),
    ("metadata.name=a\\x", "invalid escape sequence: \\x"),
    ("metadata.name=a\\", "invalid escape sequence: \\"),
    ("spec.foo=x", "field label not supported: spec.foo"),
    ("z.z=1,metadata.uid=x", "field label not supported: metadata.uid"),
    ("metadata.name = x", "field label not supported: metadata.name "),
    ("=x", "field label not supported: "),
]


@pytest.mark.parametrize(("text", "message"), FIELD_ERRORS, ids=[f[0] for f in FIELD_ERRORS])
def test_parse_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_field_selector(text, allowed=ALLOWED)
    assert message in str(info.value)


@FAST
@given(st.text(max_size=12))
def test_escaped_field_values_round_trip(value: str) -> None:
    selector = parse_field_selector(f"metadata.name={escape_field_value(value)}",
                                    allowed=ALLOWED)
    assert selector.requirements[0].value == value
    assert selector.matches({"metadata.name": value})


# --------------------------------------------------------------------------------------------
# Properties: label selectors against a reference evaluation
# --------------------------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "app", "x.y", "example.com/tier", "k8s.io/a-b_c"])
VALUES = st.sampled_from(["", "1", "5", "10", "web", "a.b-c_d"])
LABELS = st.dictionaries(KEYS, VALUES, max_size=4)

Spec = tuple[str, str, tuple[str, ...]]


@st.composite
def requirement_specs(draw: st.DrawFn) -> Spec:
    key = draw(KEYS)
    op = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt"]))
    if op in ("exists", "!"):
        values: tuple[str, ...] = ()
    elif op in ("in", "notin"):
        values = tuple(draw(st.lists(VALUES, min_size=1, max_size=3)))
    elif op in ("gt", "lt"):
        values = (draw(st.sampled_from(["0", "5", "7", "10"])),)
    else:
        values = (draw(VALUES),)
    return key, op, values


def reference_matches(specs: list[Spec], labels: Mapping[str, str]) -> bool:
    """Label selector semantics as documented: every requirement must hold."""
    for key, op, values in specs:
        present, value = key in labels, labels.get(key)
        if op in ("=", "==", "in"):
            holds = present and value in values
        elif op in ("!=", "notin"):
            holds = not present or value not in values
        elif op == "exists":
            holds = present
        elif op == "!":
            holds = not present
        elif value is None or not re.fullmatch(r"[+-]?[0-9]+", value):
            holds = False  # gt/lt need the label to exist and hold a base-10 integer
        else:
            holds = int(value) > int(values[0]) if op == "gt" else int(value) < int(values[0])
        if not holds:
            return False
    return True


@FAST
@given(st.lists(requirement_specs(), max_size=4), LABELS)
def test_parsed_string_form_matches_reference(specs: list[Spec],
                                              labels: dict[str, str]) -> None:
    selector = LabelSelector(tuple(Requirement(k, Operator(o), v) for k, o, v in specs))
    reparsed = parse_label_selector(str(selector))
    assert reparsed == selector
    assert reparsed.matches(labels) is reference_matches(specs, labels)


@FAST
@given(KEYS, VALUES, LABELS)
def test_not_equals_matches_absent_or_different(key: str, value: str,
                                                labels: dict[str, str]) -> None:
    matched = parse_label_selector(f"{key}!={value}").matches(labels)
    assert matched is (key not in labels or labels[key] != value)


@FAST
@given(LABELS, st.sampled_from(["", " ", "\t\n", "  \r "]))
def test_empty_selector_matches_everything(labels: dict[str, str], text: str) -> None:
    assert parse_label_selector(text).matches(labels)
    assert parse_label_selector(text).empty


@FAST
@given(st.lists(requirement_specs(), max_size=3), LABELS)
def test_matching_does_not_mutate_labels(specs: list[Spec], labels: dict[str, str]) -> None:
    before = copy.deepcopy(labels)
    LabelSelector(tuple(Requirement(k, Operator(o), v) for k, o, v in specs)).matches(labels)
    assert labels == before


NAME_CHARS = "abcXYZ019"
VALID_NAMES = st.text(NAME_CHARS, min_size=1, max_size=8)
INVALID_KEYS = st.one_of(
    st.integers(64, 80).map(lambda n: "a" * n),  # name over 63 bytes
    VALID_NAMES.map(lambda n: f"-{n}"),  # must start alphanumeric
    VALID_NAMES.map(lambda n: f"{n}_"),  # must end alphanumeric
    st.tuples(VALID_NAMES, st.sampled_from("@#$%^&*+~:;'\"?[]{}|`"), VALID_NAMES)
    .map(lambda parts: "".join(parts)),  # a character outside [-A-Za-z0-9_.]
    VALID_NAMES.map(lambda n: f"Example.com/{n}"),  # prefix must be a lowercase subdomain
    VALID_NAMES.map(lambda n: f"/{n}"),  # empty prefix
    VALID_NAMES.map(lambda n: f"example.com/{n}/x"),  # more than one "/"
    st.just("example.com/"),  # empty name
    st.integers(254, 260).map(lambda n: "a" * n + "/b"),  # prefix over 253 bytes
)
PARSER_SYMBOLS = frozenset("=!(),<> \t\r\n")


@FAST
@given(INVALID_KEYS)
def test_invalid_keys_are_rejected(key: str) -> None:
    with pytest.raises(SelectorError, match="invalid label key"):
        Requirement(key, Operator.EXISTS)
    with pytest.raises(SelectorError, match="invalid label key"):
        label_selector_from_dict({"matchLabels": {key: "v"}})
    if not PARSER_SYMBOLS.intersection(key):
        with pytest.raises(SelectorError, match="invalid label key"):
            parse_label_selector(f"{key}=v")
