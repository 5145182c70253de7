"""Bounds on bodies and stored objects: nesting depth, YAML aliases, etcd's object size.

Every refusal is a Status, uses up no resourceVersion and leaves the server serving.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from typing import Any

import pytest

from tests.conftest import RawClient
from tests.envtest.test_crd import CRD_PATH, widget_crd

APPLY = "application/apply-patch+yaml"


def nested(depth: int) -> Any:
    """``depth`` containers: {"a": {"a": ... {}}}."""
    value: Any = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def nested_json(depth: int) -> bytes:
    """The same as JSON text, for depths the client's serialiser refuses."""
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def revision(client: RawClient) -> str:
    status, listed = client.get("/api/v1/namespaces")
    assert status == 200
    return str(listed["metadata"]["resourceVersion"])


@pytest.fixture()
def blobs(client: RawClient) -> str:
    """A custom resource kind that keeps whatever it is given (preserve-unknown-fields)."""
    crd = widget_crd("blobs")
    del crd["spec"]["versions"][0]["subresources"]
    status, body = client.post(CRD_PATH, crd)
    assert status in (201, 409), body
    return "/apis/example.com/v1"


def assert_refused(status: int, body: Any, code: int, reason: str | None, text: str) -> None:
    assert status == code, body
    assert body["kind"] == "Status" and body["code"] == code
    assert body.get("reason") == reason
    assert text in body["message"]


# nesting depth -------------------------------------------------------------------------------
def test_body_at_the_depth_bound_is_stored(client: RawClient, blobs: str,
                                           namespace: str) -> None:
    # root object, spec, then 98 more levels: 100 containers in all
    body = {"metadata": {"name": "deep-ok"}, "spec": nested(99)}
    status, obj = client.post(f"{blobs}/namespaces/{namespace}/blobs", body)
    assert status == 201, obj
    assert obj["spec"] == nested(99)


@pytest.mark.parametrize("depth", [101, 300, 1000])
def test_deeper_body_is_400_without_using_a_revision(client: RawClient, blobs: str,
                                                     namespace: str, depth: int) -> None:
    before = revision(client)
    status, body = client.post(f"{blobs}/namespaces/{namespace}/blobs", None, raw=(
        b'{"metadata":{"name":"too-deep"},"spec":' + nested_json(depth) + b"}"))
    assert_refused(status, body, 400, "BadRequest", "exceeded max depth of 100")
    assert revision(client) == before
    assert client.get(f"{blobs}/namespaces/{namespace}/blobs/too-deep")[0] == 404


@pytest.mark.parametrize("kind", ["merge", "strategic", "json"])
def test_deep_patch_of_a_built_in_is_400(client: RawClient, namespace: str, kind: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/target"
    assert client.post(f"/api/v1/namespaces/{namespace}/configmaps",
                       {"metadata": {"name": "target"}, "data": {"a": "1"}})[0] == 201
    before = revision(client)
    deep = nested_json(300)
    patch = (b'[{"op":"add","path":"/metadata/labels","value":' + deep + b"}]" if kind == "json"
             else b'{"metadata":{"labels":' + deep + b"}}")
    status, body = client.patch(path, None, kind=kind, raw=patch)
    assert_refused(status, body, 400, "BadRequest", "exceeded max depth of 100")
    assert revision(client) == before
    assert client.get(path)[1]["data"] == {"a": "1"}


def test_patches_cannot_stack_an_object_beyond_the_bound(client: RawClient, blobs: str,
                                                         namespace: str) -> None:
    path = f"{blobs}/namespaces/{namespace}/blobs/stacked"
    assert client.post(f"{blobs}/namespaces/{namespace}/blobs",
                       {"metadata": {"name": "stacked"}, "spec": nested(60)})[0] == 201
    leaf = "/spec" + "/a" * 58
    before = revision(client)
    status, body = client.patch(path, [{"op": "add", "path": f"{leaf}/b", "value": nested(60)}],
                                kind="json")
    assert_refused(status, body, 400, "BadRequest", "exceeded max depth of 100")
    assert revision(client) == before


def test_a_merge_patch_cannot_stack_an_object_beyond_the_bound(client: RawClient, blobs: str,
                                                              namespace: str) -> None:
    """A merge patch reaching that deep is itself beyond the bound: refused as it is decoded
    (its result is not checked again: it nests no deeper than the stored object or the
    patch, ``tests/envtest/test_patch.py``)."""
    path = f"{blobs}/namespaces/{namespace}/blobs/merged"
    assert client.post(f"{blobs}/namespaces/{namespace}/blobs",
                       {"metadata": {"name": "merged"}, "spec": nested(60)})[0] == 201
    before = revision(client)
    patch = b'{"spec":' + b'{"a":' * 58 + b'{"b":' + nested_json(60) + b"}" * 59 + b"}"
    status, body = client.patch(path, None, kind="merge", raw=patch)
    assert_refused(status, body, 400, "BadRequest", "exceeded max depth of 100")
    assert revision(client) == before
    within = b'{"spec":' + b'{"a":' * 58 + b'{"b":' + nested_json(30) + b"}" * 59 + b"}"
    status, body = client.patch(path, None, kind="merge", raw=within)
    assert status == 200, body


# YAML aliases --------------------------------------------------------------------------------
LAUGHS = b"""\
apiVersion: v1
kind: ConfigMap
metadata: {name: laughs}
data: {a: b}
x0: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
x1: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
x2: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
x3: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
x4: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
x5: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
x6: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
"""


def test_billion_laughs_apply_is_refused(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/laughs?fieldManager=t"
    before = revision(client)
    status, body = client.request("PATCH", path, raw=LAUGHS, content_type=APPLY)
    assert_refused(status, body, 400, "BadRequest",
                   "yaml: document contains excessive aliasing")
    assert revision(client) == before
    assert client.get(f"/api/v1/namespaces/{namespace}/configmaps/laughs")[0] == 404


def test_few_aliases_of_a_long_string_cannot_expand_past_the_body_limit(
        client: RawClient, namespace: str) -> None:
    body = (b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: long}\ndata:\n  a: &x '"
            + b"x" * 100_000 + b"'\n" + b"".join(b"  k%d: *x\n" % i for i in range(40)))
    status, result = client.request(
        "PATCH", f"/api/v1/namespaces/{namespace}/configmaps/long?fieldManager=t", raw=body,
        content_type=APPLY)
    assert_refused(status, result, 413, "RequestEntityTooLarge", "expands to about")


def test_recursive_alias_is_refused(client: RawClient, namespace: str) -> None:
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: loop}\nx: &a [1, *a]\n"
    status, result = client.request(
        "PATCH", f"/api/v1/namespaces/{namespace}/configmaps/loop?fieldManager=t", raw=body,
        content_type=APPLY)
    assert_refused(status, result, 400, "BadRequest", "contains itself")


def test_ordinary_anchors_and_merge_keys_are_expanded(client: RawClient,
                                                     namespace: str) -> None:
    body = (b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: anchors\n"
            b"  labels: &l {tier: web}\n  annotations: {<<: *l, note: x}\ndata: {a: b}\n")
    status, obj = client.request(
        "PATCH", f"/api/v1/namespaces/{namespace}/configmaps/anchors?fieldManager=t", raw=body,
        content_type=APPLY)
    assert status == 201, obj
    assert obj["metadata"]["labels"] == {"tier": "web"}
    assert obj["metadata"]["annotations"] == {"tier": "web", "note": "x"}


def test_yaml_only_types_are_400(client: RawClient, namespace: str) -> None:
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: aset}\ndata: !!set {a}\n"
    status, result = client.request("POST", f"/api/v1/namespaces/{namespace}/configmaps",
                                    raw=body, content_type="application/yaml")
    assert_refused(status, result, 400, "BadRequest", "cannot convert to JSON")


# stored size ---------------------------------------------------------------------------------
def test_object_over_etcds_request_limit_is_refused_like_etcd(client: RawClient,
                                                              namespace: str) -> None:
    # Under the 3 MiB body limit, over etcd's 1.5 MiB: kube-apiserver passes etcd's error on.
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    before = revision(client)
    status, body = client.post(path, {"metadata": {"name": "huge"},
                                      "data": {"blob": "x" * (1536 * 1024)}})
    assert_refused(status, body, 500, None, "etcdserver: request is too large")
    assert revision(client) == before
    assert client.get(f"{path}/huge")[0] == 404
    assert client.post(path, {"metadata": {"name": "huge"},
                              "data": {"blob": "x" * (1400 * 1024)}})[0] == 201
    before = revision(client)
    status, body = client.patch(f"{path}/huge", {"data": {"more": "x" * (200 * 1024)}})
    assert_refused(status, body, 500, None, "etcdserver: request is too large")
    assert revision(client) == before
    assert "more" not in client.get(f"{path}/huge")[1]["data"]


# media types ---------------------------------------------------------------------------------
def test_415_lists_strategic_merge_for_built_ins_only(client: RawClient, blobs: str,
                                                      namespace: str) -> None:
    cm = f"/api/v1/namespaces/{namespace}/configmaps/media"
    assert client.post(f"/api/v1/namespaces/{namespace}/configmaps",
                       {"metadata": {"name": "media"}})[0] == 201
    status, body = client.request("PATCH", cm, {"data": {}}, content_type="text/plain")
    assert_refused(status, body, 415, "UnsupportedMediaType",
                   "accepted media types include: application/json-patch+json, "
                   "application/merge-patch+json, application/strategic-merge-patch+json, "
                   "application/apply-patch+yaml")
    blob = f"{blobs}/namespaces/{namespace}/blobs"
    assert client.post(blob, {"metadata": {"name": "media"}})[0] == 201
    status, body = client.patch(f"{blob}/media", {"spec": {}}, kind="strategic")
    assert_refused(status, body, 415, "UnsupportedMediaType",
                   "accepted media types include: application/json-patch+json, "
                   "application/merge-patch+json, application/apply-patch+yaml")
    assert "strategic" not in body["message"]
    status, body = client.request("POST", blob, raw=b"k8s\x00", content_type=(
        "application/vnd.kubernetes.protobuf"))
    assert_refused(status, body, 415, "UnsupportedMediaType",
                   "accepted media types include: application/json, application/yaml")


def test_a_write_that_cannot_be_serialised_uses_no_revision() -> None:
    # The last line of defence behind the depth bound: nothing is committed, no event is sent
    # and the object keeps the resourceVersion it had.
    from envtest.kinds.registry import KindRegistry
    from envtest.storage.store import ObjectStore

    store = ObjectStore()
    rtype = KindRegistry().lookup("", "v1", "configmaps")
    assert rtype is not None
    events = []
    store.observe(events.append)
    obj = {"metadata": {"name": "x", "namespace": "n", "resourceVersion": "7"},
           "data": nested(300)}
    with pytest.raises(TypeError):  # orjson refuses more than 255 levels
        store.put(rtype, obj, "ADDED")
    assert (store.revision, events, store.get(rtype.store, ("n", "x"))) == (1, [], None)
    assert obj["metadata"]["resourceVersion"] == "7"


# JSON patch operations and what copies add ------------------------------------------------
def configmap(client: RawClient, namespace: str, name: str, data: dict[str, str]) -> str:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    status, body = client.post(path, {"metadata": {"name": name}, "data": data})
    assert status == 201, body
    return f"{path}/{name}"


def test_json_patch_of_more_than_10000_operations_is_413(client: RawClient,
                                                          namespace: str) -> None:
    path = configmap(client, namespace, "ops", {"a": "1"})
    before = revision(client)
    test = {"op": "test", "path": "/data/a", "value": "1"}
    status, body = client.patch(path, [test] * 10001, "json")
    assert_refused(status, body, 413, "RequestEntityTooLarge",
                   "The allowed maximum operations in a JSON patch is 10000, got 10001")
    assert revision(client) == before
    status, body = client.patch(path, [test] * 9999 + [
        {"op": "add", "path": "/data/b", "value": "2"}], "json")
    assert status == 200 and body["data"] == {"a": "1", "b": "2"}, body


def test_copies_that_double_the_object_stop_at_the_copy_limit(client: RawClient,
                                                               namespace: str) -> None:
    """21 copies of a 1 KB object into itself would make 2 GB (the server used to spend
    seconds per operation on its event loop and grow without bound): copies may add 3 MiB
    in all, as kube-apiserver's JSONPatchMaxCopyBytes allows, then the patch is refused."""
    path = configmap(client, namespace, "doubling", {"k0": "x" * 1000})
    before = revision(client)
    ops = [{"op": "copy", "from": "/data", "path": f"/data/k{i}"} for i in range(1, 22)]
    status, body = client.patch(path, ops, "json")
    assert_refused(status, body, 422, "Invalid", "the accumulated size increase of copy is")
    assert "exceeding the limit 3145728" in body["message"]
    assert revision(client) == before
    assert client.get(path)[1]["data"] == {"k0": "x" * 1000}


def test_ten_thousand_operations_on_one_map_are_applied(client: RawClient,
                                                        namespace: str) -> None:
    """Each operation costs its pointer, not the map it lands in (the map used to be copied
    for every operation: ten thousand adds were quadratic)."""
    path = configmap(client, namespace, "wide", {})
    ops = [{"op": "add", "path": f"/data/k{i}", "value": str(i)} for i in range(10000)]
    status, body = client.patch(path, ops, "json")
    assert status == 200, body
    assert len(body["data"]) == 10000 and body["data"]["k9999"] == "9999"


def test_a_strategic_merge_of_long_keyed_lists_is_linear(client: RawClient,
                                                          namespace: str) -> None:
    """A patch of 9,000 Service ports into 1,000: each element finds its match by key, not
    by a scan of the list (a scan of 20,000 took 67 s on the server's event loop here, past
    the client's 30 s read timeout). (20,000 ports no longer fit: their managedFields entry,
    one ``k:{"port":..,"protocol":"TCP"}`` per port, takes the object past etcd's 1.5 MiB, as
    on kube-apiserver.)"""
    path = f"/api/v1/namespaces/{namespace}/services"
    ports = [{"port": i + 1, "name": f"p{i}"} for i in range(1000)]
    status, body = client.post(path, {"metadata": {"name": "wide"}, "spec": {"ports": ports}})
    assert status == 201, body
    patch = {"spec": {"ports": [{"port": i + 1, "name": f"q{i}"} for i in range(9000)]}}
    status, body = client.patch(f"{path}/wide", patch, "strategic")
    assert status == 200, body
    assert [p["name"] for p in body["spec"]["ports"][:2]] == ["q0", "q1"]
    assert len(body["spec"]["ports"]) == 9000


# numbers and tokens in the query -----------------------------------------------------------
HUGE = "9" * 400


@pytest.mark.parametrize("query", [
    f"watch=1&timeoutSeconds={HUGE}", f"timeoutSeconds={HUGE}", f"limit={HUGE}",
    f"resourceVersion={HUGE}", f"watch=1&resourceVersion={HUGE}", "timeoutSeconds=1_0",
    "resourceVersion=-5", "limit=9223372036854775808",
], ids=["watch-timeout", "list-timeout", "limit", "list-version", "watch-version",
        "underscore", "negative-version", "limit-past-int64"])
def test_numbers_no_int64_holds_are_400(client: RawClient, namespace: str, query: str) -> None:
    """A 400-digit timeoutSeconds crashed the watch handler (500); kube's conversion
    answers any number outside int64 (or not written as Go parses one) with 400."""
    status, body = client.get(f"/api/v1/namespaces/{namespace}/configmaps?{query}")
    assert status == 400, body
    assert body["kind"] == "Status" and body["reason"] == "BadRequest", body


def test_a_watch_timeout_of_the_largest_int64_is_accepted(client: RawClient,
                                                          namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    with client.watch(f"{path}?watch=1&timeoutSeconds=9223372036854775807") as watch:
        configmap(client, namespace, "seen", {})
        event = watch.next()
        assert event is not None and event["object"]["metadata"]["name"] == "seen"


def forged(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize("token", [
    forged({"rv": 10**30, "start": ["", ""]}), forged({"rv": 1e300, "start": ["", ""]}),
    forged({"rv": True, "start": ["", ""]}), forged({"rv": -1, "start": ["", ""]}),
    forged({"rv": "5", "start": ["", ""]}), forged({"rv": 1, "start": [{}, []]}),
    forged({"rv": 1, "start": [""]}), forged({"rv": 1}), forged([1, 2]), forged("x"),
    base64.urlsafe_b64encode(b'{"rv": 1e999, "start": ["", ""]}').decode(), "%%%", "e30",
], ids=["future", "float", "bool", "negative", "string", "object-keys", "short-key",
        "no-start", "array", "string-body", "infinity", "not-base64", "empty-object"])
def test_forged_continue_tokens_are_400(client: RawClient, namespace: str, token: str) -> None:
    status, body = client.get(f"/api/v1/namespaces/{namespace}/configmaps?limit=1&"
                              f"continue={urllib.parse.quote(token)}")
    assert status == 400, body
    assert "continue key is not valid" in body["message"], body
