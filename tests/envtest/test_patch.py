"""Tests for envtest.patch: RFC 7386, RFC 6902 and strategic merge patch.

Table cases come from the RFC appendices and from the expectations of apimachinery's
strategicpatch tests (transposed onto Pod fields that carry the same struct tags); the
properties check the documented semantics on generated documents.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envtest.codecs.limits import nested_deeper_than
from envtest.patch import (
    STRATEGIC_MERGE_KINDS,
    PatchError,
    PatchTestFailed,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)

FAST = settings(max_examples=60, deadline=None)

# --------------------------------------------------------------------------------------------
# RFC 7386
# --------------------------------------------------------------------------------------------

RFC7386_APPENDIX_A = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC7386_APPENDIX_A,
                         ids=[f"A-{i + 1}" for i in range(len(RFC7386_APPENDIX_A))])
def test_merge_patch_rfc7386_appendix(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


MERGE_PATCH_LIBRARY_CASES = [
    # evanphx/json-patch drops null members of objects copied from the patch, even in arrays.
    ({}, {"a": [{"b": None, "c": 1}, None]}, {"a": [{"c": 1}, None]}),
    ({"a": {"b": 1}}, {"a": {"c": {"d": None}}}, {"a": {"b": 1, "c": {}}}),
    ({"a": None}, {"a": {"b": None, "c": 2}}, {"a": {"c": 2}}),
    ({"metadata": {"labels": {"x": "1", "y": "2"}}}, {"metadata": {"labels": {"x": None}}},
     {"metadata": {"labels": {"y": "2"}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), MERGE_PATCH_LIBRARY_CASES,
                         ids=["nulls-in-array-objects", "new-nested-null", "null-target-member",
                              "delete-label"])
def test_merge_patch_library_corners(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


# --------------------------------------------------------------------------------------------
# RFC 6902
# --------------------------------------------------------------------------------------------

RFC6902_APPENDIX_A = [
    ("A.1-add-member", {"foo": "bar"},
     [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    ("A.2-add-element", {"foo": ["bar", "baz"]},
     [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),
    ("A.3-remove-member", {"baz": "qux", "foo": "bar"},
     [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ("A.4-remove-element", {"foo": ["bar", "qux", "baz"]},
     [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    ("A.5-replace", {"baz": "qux", "foo": "bar"},
     [{"op": "replace", "path": "/baz", "value": "boo"}], {"baz": "boo", "foo": "bar"}),
    ("A.6-move-value", {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ("A.7-move-element", {"foo": ["all", "grass", "cows", "eat"]},
     [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ("A.8-test-success", {"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"},
      {"op": "test", "path": "/foo/1", "value": 2}], {"baz": "qux", "foo": ["a", 2, "c"]}),
    ("A.10-nested-object", {"foo": "bar"},
     [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ("A.11-unknown-members", {"foo": "bar"},
     [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}], {"foo": "bar", "baz": "qux"}),
    ("A.14-escape-ordering", {"/": 9, "~1": 10},
     [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    ("A.16-add-array-value", {"foo": ["bar"]},
     [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
     {"foo": ["bar", ["abc", "def"]]}),
]


@pytest.mark.parametrize(("target", "ops", "expected"), [c[1:] for c in RFC6902_APPENDIX_A],
                         ids=[c[0] for c in RFC6902_APPENDIX_A])
def test_json_patch_rfc6902_appendix(target: Any, ops: list[Any], expected: Any) -> None:
    assert json_patch(target, ops) == expected


RFC6902_APPENDIX_FAILURES = [
    ("A.9-test-error", {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}],
     PatchTestFailed),
    ("A.12-nonexistent-target", {"foo": "bar"},
     [{"op": "add", "path": "/baz/bat", "value": "qux"}], PatchError),
    ("A.15-string-vs-number", {"/": 9, "~1": 10},
     [{"op": "test", "path": "/~01", "value": "10"}], PatchTestFailed),
]


@pytest.mark.parametrize(("target", "ops", "error"), [c[1:] for c in RFC6902_APPENDIX_FAILURES],
                         ids=[c[0] for c in RFC6902_APPENDIX_FAILURES])
def test_json_patch_rfc6902_appendix_failures(target: Any, ops: list[Any],
                                              error: type[Exception]) -> None:
    with pytest.raises(error, match="/"):
        json_patch(target, ops)


JSON_PATCH_LIBRARY_CASES = [
    ("replace-absent-member-adds", {"a": 1},
     [{"op": "replace", "path": "/b", "value": 2}], {"a": 1, "b": 2}),
    ("test-absent-member-is-null", {"a": 1}, [{"op": "test", "path": "/b", "value": None}],
     {"a": 1}),
    ("test-explicit-null", {"a": None}, [{"op": "test", "path": "/a", "value": None}],
     {"a": None}),
    ("negative-index-replace", {"a": [1, 2, 3]},
     [{"op": "replace", "path": "/a/-1", "value": 9}], {"a": [1, 2, 9]}),
    ("negative-index-add-appends", {"a": [1, 2]},
     [{"op": "add", "path": "/a/-1", "value": 3}], {"a": [1, 2, 3]}),
    ("add-at-end-index", {"a": [1]}, [{"op": "add", "path": "/a/1", "value": 2}],
     {"a": [1, 2]}),
    ("leading-zero-index", {"a": [1, 2]}, [{"op": "remove", "path": "/a/01"}], {"a": [1]}),
    ("add-replaces-member", {"a": 1}, [{"op": "add", "path": "/a", "value": 2}], {"a": 2}),
    ("add-without-value-is-null", {}, [{"op": "add", "path": "/a"}], {"a": None}),
    ("empty-key", {"": 1}, [{"op": "replace", "path": "/", "value": 2}], {"": 2}),
    ("replace-root", {"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}], {"b": 2}),
    ("test-root", {"a": [1]}, [{"op": "test", "path": "", "value": {"a": [1]}}], {"a": [1]}),
    ("copy-deep", {"a": {"b": [1]}},
     [{"op": "copy", "from": "/a", "path": "/c"},
      {"op": "add", "path": "/c/b/-", "value": 2}], {"a": {"b": [1]}, "c": {"b": [1, 2]}}),
    ("move-same-place", {"a": 1}, [{"op": "move", "from": "/a", "path": "/a"}], {"a": 1}),
    ("tilde-escapes", {}, [{"op": "add", "path": "/a~1b~0c", "value": 1}], {"a/b~c": 1}),
    ("empty-patch", {"a": 1}, [], {"a": 1}),
]


@pytest.mark.parametrize(("target", "ops", "expected"), [c[1:] for c in JSON_PATCH_LIBRARY_CASES],
                         ids=[c[0] for c in JSON_PATCH_LIBRARY_CASES])
def test_json_patch_library_corners(target: Any, ops: list[Any], expected: Any) -> None:
    assert json_patch(target, ops) == expected


JSON_PATCH_ERRORS = [
    ("not-a-list", {"a": 1}, {"op": "add", "path": "/a", "value": 1}, "JSON array"),
    ("op-not-object", {}, ["add"], "not a JSON object"),
    ("unknown-op", {}, [{"op": "merge", "path": "/a"}], "unknown op 'merge'"),
    ("missing-op", {}, [{"path": "/a"}], "unknown op None"),
    ("missing-path", {}, [{"op": "add", "value": 1}], "path is missing"),
    ("pointer-without-slash", {"a": {"b": 1}}, [{"op": "remove", "path": "a/b"}],
     'must be empty or start with "/"'),
    ("remove-missing", {"a": 1}, [{"op": "remove", "path": "/b"}], 'nonexistent member "b"'),
    ("index-out-of-range", {"a": [1]}, [{"op": "add", "path": "/a/2", "value": 1}],
     "out of range"),
    ("negative-out-of-range", {"a": [1]}, [{"op": "remove", "path": "/a/-2"}], "out of range"),
    ("dash-on-remove", {"a": [1]}, [{"op": "remove", "path": "/a/-"}], "not an array index"),
    ("word-index", {"a": [1]}, [{"op": "replace", "path": "/a/x", "value": 1}],
     "not an array index"),
    ("through-scalar", {"a": 1}, [{"op": "add", "path": "/a/b", "value": 1}], "missing"),
    ("through-null", {"a": None}, [{"op": "add", "path": "/a/b", "value": 1}], "missing"),
    ("add-root", {}, [{"op": "add", "path": "", "value": {}}], "whole document"),
    ("remove-root", {}, [{"op": "remove", "path": ""}], "whole document"),
    ("replace-root-scalar", {}, [{"op": "replace", "path": "", "value": 1}],
     "object or array"),
    ("move-into-child", {"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/c"}],
     "missing"),
    ("move-missing", {}, [{"op": "move", "from": "/x", "path": "/y"}], "nonexistent"),
    ("copy-root", {"a": 1}, [{"op": "copy", "from": "", "path": "/b"}], "whole document"),
    ("missing-from", {"a": 1}, [{"op": "copy", "path": "/b"}], "from is missing"),
]


@pytest.mark.parametrize(("target", "ops", "message"), [c[1:] for c in JSON_PATCH_ERRORS],
                         ids=[c[0] for c in JSON_PATCH_ERRORS])
def test_json_patch_errors(target: Any, ops: Any, message: str) -> None:
    with pytest.raises(PatchError, match=re.escape(message)) as info:
        json_patch(target, ops)
    assert not isinstance(info.value, PatchTestFailed)


JSON_PATCH_TEST_FAILURES = [
    ("int-vs-float", {"a": 1}, {"op": "test", "path": "/a", "value": 1.0}),
    ("bool-vs-int", {"a": True}, {"op": "test", "path": "/a", "value": 1}),
    ("null-vs-value", {"a": None}, {"op": "test", "path": "/a", "value": 0}),
    ("value-vs-missing-value", {"a": 1}, {"op": "test", "path": "/a"}),
    ("object-keys", {"a": {"b": 1}}, {"op": "test", "path": "/a", "value": {"b": 1, "c": 2}}),
    ("array-order", {"a": [1, 2]}, {"op": "test", "path": "/a", "value": [2, 1]}),
]


@pytest.mark.parametrize(("target", "op"), [c[1:] for c in JSON_PATCH_TEST_FAILURES],
                         ids=[c[0] for c in JSON_PATCH_TEST_FAILURES])
def test_json_patch_test_failures(target: Any, op: dict[str, Any]) -> None:
    with pytest.raises(PatchTestFailed, match='"/a"'):
        json_patch(target, [op])


def test_json_patch_failure_leaves_nothing_half_applied() -> None:
    target = {"a": [1, 2]}
    ops = [{"op": "add", "path": "/a/-", "value": 3}, {"op": "test", "path": "/a/0", "value": 9}]
    with pytest.raises(PatchTestFailed):
        json_patch(target, ops)
    assert target == {"a": [1, 2]}


# --------------------------------------------------------------------------------------------
# Strategic merge patch
# --------------------------------------------------------------------------------------------


def pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def names(items: list[dict[str, Any]]) -> list[Any]:
    return [item.get("name") for item in items]


SMP_CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ("containers-merged-by-name", "Pod",
     pod(containers=[{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]),
     {"spec": {"containers": [{"name": "b", "image": "b:2"}]}},
     pod(containers=[{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}])),
    ("new-container-goes-first", "Pod",
     pod(containers=[{"name": "a", "image": "a"}]),
     {"spec": {"containers": [{"name": "z", "image": "z"}]}},
     pod(containers=[{"name": "z", "image": "z"}, {"name": "a", "image": "a"}])),
    ("env-merged-by-name", "Pod",
     pod(containers=[{"name": "a", "env": [{"name": "X", "value": "1"},
                                           {"name": "Y", "value": "2"}]}]),
     {"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "3"}]}]}},
     pod(containers=[{"name": "a", "env": [{"name": "X", "value": "1"},
                                           {"name": "Y", "value": "3"}]}])),
    ("ports-merged-by-containerPort", "Pod",
     pod(containers=[{"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}]),
     {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80,
                                                       "protocol": "TCP"}]}]}},
     pod(containers=[{"name": "a", "ports": [{"containerPort": 80, "name": "http",
                                              "protocol": "TCP"}]}])),
    ("volumeMounts-merged-by-mountPath", "Pod",
     pod(containers=[{"name": "a", "volumeMounts": [{"mountPath": "/d", "name": "v"}]}]),
     {"spec": {"containers": [{"name": "a", "volumeMounts": [{"mountPath": "/d",
                                                              "readOnly": True}]}]}},
     pod(containers=[{"name": "a", "volumeMounts": [{"mountPath": "/d", "name": "v",
                                                     "readOnly": True}]}])),
    ("delete-element", "Pod",
     pod(containers=[{"name": "a"}, {"name": "b"}, {"name": "c"}]),
     {"spec": {"containers": [{"name": "b", "$patch": "delete"}]}},
     pod(containers=[{"name": "a"}, {"name": "c"}])),
    ("delete-element-all-duplicates", "Pod",
     pod(containers=[{"name": "1"}, {"name": "1"}, {"name": "2", "image": "a"}, {"name": "3"},
                     {"name": "3"}]),
     {"spec": {"containers": [{"name": "1", "$patch": "delete"},
                              {"name": "3", "$patch": "delete"}]}},
     pod(containers=[{"name": "2", "image": "a"}])),
    ("replace-list", "Pod",
     pod(containers=[{"name": "a", "image": "a"}, {"name": "b"}]),
     {"spec": {"containers": [{"$patch": "replace"}, {"name": "c", "image": "c"}]}},
     pod(containers=[{"name": "c", "image": "c"}])),
    ("replace-list-with-nothing", "Pod",
     pod(containers=[{"name": "a"}]), {"spec": {"containers": [{"$patch": "replace"}]}},
     pod(containers=[])),
    ("replace-map", "Pod",
     pod(nodeSelector={"disk": "ssd", "zone": "a"}),
     {"spec": {"nodeSelector": {"$patch": "replace", "zone": "b"}}},
     pod(nodeSelector={"zone": "b"})),
    ("delete-map-empties-it", "Pod",
     pod(nodeSelector={"disk": "ssd"}), {"spec": {"nodeSelector": {"$patch": "delete"}}},
     pod(nodeSelector={})),
    ("new-map-with-directive-is-dropped", "Pod",
     pod(), {"spec": {"nodeSelector": {"$patch": "replace", "zone": "b"}}}, pod()),
    ("retainKeys-switches-volume-source", "Pod",
     pod(volumes=[{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}]),
     {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"],
                            "hostPath": {"path": "/data"}}]}},
     pod(volumes=[{"name": "v", "hostPath": {"path": "/data"}}, {"name": "w", "emptyDir": {}}])),
    ("retainKeys-allows-null-members", "Pod",
     pod(securityContext={"runAsUser": 1, "fsGroup": 2}),
     {"spec": {"securityContext": {"$retainKeys": ["fsGroup"], "runAsUser": None}}},
     pod(securityContext={"fsGroup": 2})),
    ("deleteFromPrimitiveList", "Pod",
     {"metadata": {"finalizers": ["a", "b", "c"]}},
     {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "x"]}},
     {"metadata": {"finalizers": ["a", "c"]}}),
    ("deleteFromPrimitiveList-on-absent-list", "Pod",
     {"metadata": {}}, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}},
     {"metadata": {}}),
    ("deleteFromPrimitiveList-on-untagged-list", "Pod",
     pod(containers=[{"name": "a", "args": ["1", "2", "3"]}]),
     {"spec": {"containers": [{"name": "a", "$deleteFromPrimitiveList/args": ["2"]}]}},
     pod(containers=[{"name": "a", "args": ["1", "3"]}])),
    ("finalizers-merge-as-set", "Pod",
     {"metadata": {"finalizers": ["a", "b"]}}, {"metadata": {"finalizers": ["b", "c"]}},
     {"metadata": {"finalizers": ["a", "b", "c"]}}),
    ("finalizers-new-item-first", "Pod",
     {"metadata": {"finalizers": ["a", "b"]}}, {"metadata": {"finalizers": ["c"]}},
     {"metadata": {"finalizers": ["c", "a", "b"]}}),
    ("finalizers-add-and-delete-ordered", "Pod",
     {"metadata": {"finalizers": ["1", "2", "3"]}},
     {"metadata": {"$setElementOrder/finalizers": ["1", "2", "4"],
                   "$deleteFromPrimitiveList/finalizers": ["3"], "finalizers": ["4"]}},
     {"metadata": {"finalizers": ["1", "2", "4"]}}),
    ("setElementOrder-reorders", "Pod",
     pod(containers=[{"name": "1"}, {"name": "3", "image": "3"}, {"name": "4", "image": "4"},
                     {"name": "2", "image": "2"}]),
     {"spec": {"$setElementOrder/containers": [{"name": "4"}, {"name": "2"}, {"name": "3"},
                                               {"name": "1"}]}},
     pod(containers=[{"name": "4", "image": "4"}, {"name": "2", "image": "2"},
                     {"name": "3", "image": "3"}, {"name": "1"}])),
    ("setElementOrder-keeps-server-only-items", "Pod",
     pod(containers=[{"name": "1", "image": "a"}, {"name": "2"}, {"name": "7"}, {"name": "9"},
                     {"name": "8"}, {"name": "3"}, {"name": "4"}]),
     {"spec": {"$setElementOrder/containers": [{"name": "2"}, {"name": "1"}, {"name": "4"},
                                               {"name": "3"}]}},
     pod(containers=[{"name": "2"}, {"name": "1", "image": "a"}, {"name": "7"}, {"name": "9"},
                     {"name": "8"}, {"name": "4"}, {"name": "3"}])),
    ("setElementOrder-with-merged-items", "Pod",
     pod(containers=[{"name": "1", "image": "a"}, {"name": "2", "image": "b"}]),
     {"spec": {"$setElementOrder/containers": [{"name": "4"}, {"name": "1"}, {"name": "2"},
                                               {"name": "3"}],
               "containers": [{"name": "4", "image": "4"}, {"name": "3", "image": "3"}]}},
     pod(containers=[{"name": "4", "image": "4"}, {"name": "1", "image": "a"},
                     {"name": "2", "image": "b"}, {"name": "3", "image": "3"}])),
    ("setElementOrder-duplicates-grouped", "Pod",
     pod(containers=[{"name": "1"}, {"name": "2", "image": "dup1"}, {"name": "3"},
                     {"name": "2", "image": "dup2"}, {"name": "4"}]),
     {"spec": {"$setElementOrder/containers": [{"name": n} for n in "21432"]}},
     pod(containers=[{"name": "2", "image": "dup1"}, {"name": "2", "image": "dup2"},
                     {"name": "1"}, {"name": "4"}, {"name": "3"}])),
    ("patch-order-wins-for-named-items", "Pod",
     pod(containers=[{"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}]),
     {"spec": {"containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]}},
     pod(containers=[{"name": "2", "image": "b"}, {"name": "3", "image": "c"},
                     {"name": "1", "image": "a"}])),
    ("null-deletes-key", "Pod",
     {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"hostname": "h"}},
     {"metadata": {"labels": {"a": None}}, "spec": {"hostname": None}},
     {"metadata": {"labels": {"b": "2"}}, "spec": {}}),
    ("null-in-new-value-dropped", "Pod",
     pod(), {"spec": {"securityContext": {"runAsUser": 1, "fsGroup": None}}},
     pod(securityContext={"runAsUser": 1})),
    ("tolerations-replaced", "Pod",
     pod(tolerations=[{"key": "a"}, {"key": "b"}]), {"spec": {"tolerations": [{"key": "c"}]}},
     pod(tolerations=[{"key": "c"}])),
    ("args-replaced", "Pod",
     pod(containers=[{"name": "a", "args": ["x", "y"]}]),
     {"spec": {"containers": [{"name": "a", "args": ["z"]}]}},
     pod(containers=[{"name": "a", "args": ["z"]}])),
    ("envFrom-replaced", "Pod",
     pod(containers=[{"name": "a", "envFrom": [{"configMapRef": {"name": "x"}}]}]),
     {"spec": {"containers": [{"name": "a", "envFrom": [{"secretRef": {"name": "y"}}]}]}},
     pod(containers=[{"name": "a", "envFrom": [{"secretRef": {"name": "y"}}]}])),
    ("containerStatuses-replaced", "Pod",
     {"status": {"containerStatuses": [{"name": "a", "ready": False}, {"name": "b"}]}},
     {"status": {"containerStatuses": [{"name": "a", "ready": True}]}},
     {"status": {"containerStatuses": [{"name": "a", "ready": True}]}}),
    ("pod-conditions-merged-by-type", "Pod",
     {"status": {"conditions": [{"type": "Ready", "status": "False"},
                                {"type": "Initialized", "status": "True"}]}},
     {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
     {"status": {"conditions": [{"type": "Ready", "status": "True"},
                                {"type": "Initialized", "status": "True"}]}}),
    ("ownerReferences-merged-by-uid", "ConfigMap",
     {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}},
     {"metadata": {"ownerReferences": [{"uid": "1", "controller": True},
                                       {"uid": "2", "name": "b"}]}},
     {"metadata": {"ownerReferences": [{"uid": "1", "name": "a", "controller": True},
                                       {"uid": "2", "name": "b"}]}}),
    ("service-ports-merged-by-port", "Service",
     {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}},
     {"spec": {"ports": [{"port": 443, "targetPort": 8443}]}},
     {"spec": {"ports": [{"port": 80, "name": "http"},
                         {"port": 443, "name": "https", "targetPort": 8443}]}}),
    ("service-selector-merged", "Service",
     {"spec": {"selector": {"app": "a", "tier": "web"}}},
     {"spec": {"selector": {"tier": None, "v": "2"}}},
     {"spec": {"selector": {"app": "a", "v": "2"}}}),
    ("namespace-spec-finalizers-replaced", "Namespace",
     {"spec": {"finalizers": ["kubernetes", "x"]}}, {"spec": {"finalizers": ["y"]}},
     {"spec": {"finalizers": ["y"]}}),
    ("configmap-data-merged", "ConfigMap",
     {"data": {"a": "1", "b": "2"}}, {"data": {"b": None, "c": "3"}},
     {"data": {"a": "1", "c": "3"}}),
    ("serviceaccount-secrets-merged-by-name", "ServiceAccount",
     {"secrets": [{"name": "a"}]}, {"secrets": [{"name": "b"}]},
     {"secrets": [{"name": "b"}, {"name": "a"}]}),
    ("endpoints-subsets-replaced", "Endpoints",
     {"subsets": [{"addresses": [{"ip": "1.1.1.1"}]}]},
     {"subsets": [{"addresses": [{"ip": "2.2.2.2"}]}]},
     {"subsets": [{"addresses": [{"ip": "2.2.2.2"}]}]}),
    ("unknown-field-merges-like-a-map", "Lease",
     {"spec": {"x": {"a": 1, "l": [1, 2]}}}, {"spec": {"x": {"b": 2, "l": [3]}}},
     {"spec": {"x": {"a": 1, "b": 2, "l": [3]}}}),
    ("type-change-takes-patch", "Pod",
     pod(containers="oops"), {"spec": {"containers": [{"name": "a", "x": None}]}},
     pod(containers=[{"name": "a"}])),
    ("top-level-delete", "Secret", {"data": {"a": "b"}}, {"$patch": "delete"}, {}),
]


@pytest.mark.parametrize(("kind", "target", "patch", "expected"), [c[1:] for c in SMP_CASES],
                         ids=[c[0] for c in SMP_CASES])
def test_strategic_merge_patch(kind: str, target: dict[str, Any], patch: dict[str, Any],
                               expected: dict[str, Any]) -> None:
    before = copy.deepcopy((target, patch))
    assert strategic_merge_patch(target, patch, kind) == expected
    assert (target, patch) == before


SMP_ERRORS: list[tuple[str, str, dict[str, Any], Any, str]] = [
    ("unknown-directive", "Pod", pod(), {"spec": {"$foo": 1}}, 'directive "$foo"'),
    ("unknown-directive-in-new-value", "Pod", pod(),
     {"spec": {"affinity": {"$bar": []}}}, 'directive "$bar"'),
    ("bare-setElementOrder", "Pod", pod(), {"spec": {"$setElementOrder": []}},
     'directive "$setElementOrder"'),
    ("patch-merge-on-map", "Pod", pod(), {"spec": {"$patch": "merge"}},
     "$patch: merge is not supported"),
    ("patch-merge-on-element", "Pod", pod(containers=[{"name": "a"}]),
     {"spec": {"containers": [{"name": "a", "$patch": "merge"}]}},
     "$patch: merge is not supported"),
    ("unknown-patch-value", "Pod", pod(), {"spec": {"$patch": "squash"}},
     "unknown $patch directive 'squash'"),
    ("missing-merge-key", "Pod", pod(containers=[{"name": "a"}]),
     {"spec": {"containers": [{"image": "x"}]}}, 'merge key "name"'),
    ("delete-without-merge-key", "Pod", pod(containers=[{"name": "a"}]),
     {"spec": {"containers": [{"$patch": "delete"}]}}, 'merge key "name"'),
    ("setElementOrder-mismatch", "Pod",
     pod(containers=[{"name": "1"}, {"name": "3"}, {"name": "2"}]),
     {"spec": {"$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
               "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}]}},
     "doesn't match"),
    ("retainKeys-missing-field", "Pod", pod(),
     {"spec": {"$retainKeys": ["hostname"], "subdomain": "x"}}, '"subdomain"'),
    ("retainKeys-not-a-list", "Pod", pod(), {"spec": {"$retainKeys": "x"}}, "$retainKeys"),
    ("mixed-element-types", "Pod", {"metadata": {"finalizers": ["a"]}},
     {"metadata": {"finalizers": [1]}}, "not identical"),
    ("deleteFromPrimitiveList-not-a-list", "Pod", {"metadata": {"finalizers": ["a"]}},
     {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, "must be a list"),
    ("unsupported-kind", "Widget", {}, {}, "not supported for kind 'Widget'"),
    ("patch-not-object", "Pod", {}, [], "must be a JSON object"),
]


@pytest.mark.parametrize(("kind", "target", "patch", "message"), [c[1:] for c in SMP_ERRORS],
                         ids=[c[0] for c in SMP_ERRORS])
def test_strategic_merge_patch_errors(kind: str, target: dict[str, Any], patch: Any,
                                      message: str) -> None:
    with pytest.raises(PatchError) as info:
        strategic_merge_patch(target, patch, kind)
    assert message in str(info.value)


def test_strategic_merge_kinds_cover_the_builtins() -> None:
    assert {"Pod", "Service", "ConfigMap", "Secret", "Namespace", "ServiceAccount", "Event",
            "Lease", "Endpoints"} <= STRATEGIC_MERGE_KINDS


# --------------------------------------------------------------------------------------------
# Properties: merge patch
# --------------------------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "d/e", "f~g", ""])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text("xyz", max_size=2))
NO_NULL_SCALARS = st.one_of(st.booleans(), st.integers(-3, 3), st.text("xyz", max_size=2))


def json_values(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)), max_leaves=8)


JSON = json_values(SCALARS)
JSON_OBJECTS = st.dictionaries(KEYS, JSON, max_size=4)
NO_NULL_OBJECTS = st.dictionaries(KEYS, json_values(NO_NULL_SCALARS), max_size=4)


@FAST
@given(JSON, JSON)
def test_merge_patch_is_idempotent(target: Any, patch: Any) -> None:
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once


@FAST
@given(JSON_OBJECTS)
def test_merge_patch_empty_object_is_identity(target: dict[str, Any]) -> None:
    assert merge_patch(target, {}) == target


def leaves(value: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(path, value) of every non-object value reached through objects only."""
    if not isinstance(value, dict):
        return [(path, value)]
    return [leaf for key, child in value.items() for leaf in leaves(child, (*path, key))]


def lookup(document: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


@FAST
@given(JSON, NO_NULL_OBJECTS)
def test_merge_patch_without_nulls_contains_every_patch_leaf(target: Any,
                                                             patch: dict[str, Any]) -> None:
    result = merge_patch(target, patch)
    for path, value in leaves(patch):
        if value == {}:
            assert isinstance(lookup(result, path), dict)
        else:
            assert lookup(result, path) == value


@FAST
@given(JSON, JSON)
def test_merge_patch_does_not_mutate(target: Any, patch: Any) -> None:
    before = copy.deepcopy((target, patch))
    merge_patch(target, patch)
    assert (target, patch) == before


# --------------------------------------------------------------------------------------------
# Properties: JSON patch
# --------------------------------------------------------------------------------------------


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def pointers(document: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every (pointer, value) in the document, including the root."""
    found = [(prefix, document)]
    if isinstance(document, dict):
        for key, child in document.items():
            found += pointers(child, f"{prefix}/{escape(key)}")
    elif isinstance(document, list):
        for index, child in enumerate(document):
            found += pointers(child, f"{prefix}/{index}")
    return found


@FAST
@given(JSON_OBJECTS, st.text(min_size=1, max_size=4), JSON)
def test_json_patch_add_then_remove_restores(target: dict[str, Any], key: str,
                                             value: Any) -> None:
    if key in target:
        return
    path = f"/{escape(key)}"
    ops = [{"op": "add", "path": path, "value": value}, {"op": "remove", "path": path}]
    assert json_patch(target, ops) == target


@FAST
@given(JSON_OBJECTS, st.data())
def test_json_patch_test_of_a_read_value_succeeds(target: dict[str, Any],
                                                  data: st.DataObject) -> None:
    pointer, value = data.draw(st.sampled_from(pointers(target)))
    assert json_patch(target, [{"op": "test", "path": pointer, "value": value}]) == target


OPS = st.lists(st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test"]),
     "path": st.sampled_from(["", "/a", "/a/0", "/a/-", "/b", "/d~1e", "/a/b"])},
    optional={"from": st.sampled_from(["/a", "/b", "/a/0", ""]), "value": JSON}), max_size=4)


@FAST
@given(JSON_OBJECTS, OPS)
def test_json_patch_does_not_mutate(target: dict[str, Any], ops: list[Any]) -> None:
    before = copy.deepcopy((target, ops))
    try:
        result = json_patch(target, ops)
    except PatchError:
        result = None
    assert (target, ops) == before
    if isinstance(result, (dict, list)) and ops:
        # Results never alias the patch: mutating one leaves the ops document alone.
        for _pointer, value in pointers(result):
            if isinstance(value, list):
                value.append("mutated")
        assert ops == before[1]


# --------------------------------------------------------------------------------------------
# Properties: strategic merge patch
# --------------------------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "c", "d", "e"])
SHORT = st.text("xyz", min_size=1, max_size=2)


def unique_by(key: str, element: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    return st.lists(element, max_size=3, unique_by=lambda e: e[key])


ENV = unique_by("name", st.fixed_dictionaries({"name": NAMES, "value": SHORT}))
PORTS = unique_by("containerPort", st.fixed_dictionaries(
    {"containerPort": st.sampled_from([80, 443, 8080])}, optional={"name": SHORT}))
CONTAINER = st.fixed_dictionaries({"name": NAMES}, optional={
    "image": SHORT, "env": ENV, "ports": PORTS, "args": st.lists(SHORT, max_size=2)})
CONTAINERS = unique_by("name", CONTAINER)
POD_SPEC = st.fixed_dictionaries({}, optional={
    "containers": CONTAINERS,
    "tolerations": st.lists(st.fixed_dictionaries({"key": SHORT}), max_size=2),
    "nodeSelector": st.dictionaries(NAMES, SHORT, max_size=2),
    "hostname": SHORT})
POD_META = st.fixed_dictionaries({}, optional={
    "labels": st.dictionaries(NAMES, SHORT, max_size=2),
    "finalizers": st.lists(NAMES, max_size=3, unique=True)})
PODS = st.fixed_dictionaries({"metadata": POD_META, "spec": POD_SPEC})
POD_WITH_CONTAINERS = st.fixed_dictionaries({"metadata": POD_META,
                                             "spec": st.fixed_dictionaries(
                                                 {"containers": CONTAINERS})})


@FAST
@given(PODS, PODS)
def test_strategic_merge_patch_is_idempotent(target: dict[str, Any],
                                             patch: dict[str, Any]) -> None:
    once = strategic_merge_patch(target, patch, "Pod")
    assert strategic_merge_patch(once, patch, "Pod") == once


@FAST
@given(POD_WITH_CONTAINERS, POD_WITH_CONTAINERS, st.randoms(use_true_random=False))
def test_container_merge_ignores_patch_order_except_for_order(
        target: dict[str, Any], patch: dict[str, Any], rng: Any) -> None:
    """Permuting the patch's containers changes where they land, never what they hold.

    Upstream places patch elements in patch order, so the list order itself does depend on
    the patch order (see the "patch-order-wins-for-named-items" case).
    """
    shuffled = copy.deepcopy(patch)
    rng.shuffle(shuffled["spec"]["containers"])
    first = strategic_merge_patch(target, patch, "Pod")["spec"]["containers"]
    second = strategic_merge_patch(target, shuffled, "Pod")["spec"]["containers"]
    assert {c["name"]: c for c in first} == {c["name"]: c for c in second}
    assert len(first) == len(second)


@FAST
@given(POD_WITH_CONTAINERS, POD_WITH_CONTAINERS)
def test_container_merge_keeps_every_name(target: dict[str, Any],
                                          patch: dict[str, Any]) -> None:
    result = strategic_merge_patch(target, patch, "Pod")["spec"]["containers"]
    expected = set(names(target["spec"]["containers"])) | set(names(patch["spec"]["containers"]))
    assert sorted(names(result)) == sorted(expected)
    for container in patch["spec"]["containers"]:
        merged = next(c for c in result if c["name"] == container["name"])
        for key, value in container.items():
            if key not in ("env", "ports"):  # merge lists keep target elements too
                assert merged[key] == value


@FAST
@given(PODS, PODS)
def test_strategic_merge_patch_does_not_mutate(target: dict[str, Any],
                                               patch: dict[str, Any]) -> None:
    before = copy.deepcopy((target, patch))
    strategic_merge_patch(target, patch, "Pod")
    assert (target, patch) == before


# --------------------------------------------------------------------------------------------
# Properties: depth. A merge or strategic merge patch's result nests no deeper than its two
# inputs, which both passed the server's depth bound: ``envtest.verbs.writes.patch_plan``
# checks the depth of a JSON patch's result only.
# --------------------------------------------------------------------------------------------

def depth(value: Any) -> int:
    """Containers nested, as ``envtest.codecs.limits`` counts them (a scalar: 0)."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


DEEP_CONTAINER = st.fixed_dictionaries({"name": NAMES}, optional={
    "env": ENV, "args": st.lists(SHORT, max_size=2), "x": JSON})
DEEP_PODS = st.fixed_dictionaries({"metadata": POD_META, "spec": st.fixed_dictionaries(
    {}, optional={"containers": unique_by("name", DEEP_CONTAINER), "x": JSON})})
DEPTH = settings(max_examples=300, deadline=None)


@FAST
@given(JSON)
def test_depth_is_the_limits_bound(value: Any) -> None:
    assert not nested_deeper_than(value, max(depth(value), 1))
    if depth(value) > 1:
        assert nested_deeper_than(value, depth(value) - 1)


@DEPTH
@given(JSON, JSON)
def test_merge_patch_nests_no_deeper_than_its_inputs(target: Any, patch: Any) -> None:
    assert depth(merge_patch(target, patch)) <= max(depth(target), depth(patch))


@DEPTH
@given(DEEP_PODS, DEEP_PODS)
def test_strategic_merge_patch_nests_no_deeper_than_its_inputs(
        target: dict[str, Any], patch: dict[str, Any]) -> None:
    result = strategic_merge_patch(target, patch, "Pod")
    assert depth(result) <= max(depth(target), depth(patch))
