"""Create, get, list, update, patch and delete semantics of the local API server."""

from __future__ import annotations

import pytest

from tests.conftest import RawClient


def cm(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_create_fills_server_fields(client: RawClient, namespace: str) -> None:
    status, obj = client.post(f"/api/v1/namespaces/{namespace}/configmaps", cm("a", k="v"))
    assert status == 201
    meta = obj["metadata"]
    assert meta["namespace"] == namespace and meta["uid"] and meta["creationTimestamp"]
    assert int(meta["resourceVersion"]) > 0
    assert "generation" not in meta  # ConfigMaps have none, as in kube-apiserver
    status, again = client.get(f"/api/v1/namespaces/{namespace}/configmaps/a")
    assert status == 200 and again == obj


def test_generate_name(client: RawClient, namespace: str) -> None:
    body = {"metadata": {"generateName": "gen-"}, "data": {}}
    status, obj = client.post(f"/api/v1/namespaces/{namespace}/configmaps", body)
    assert status == 201 and obj["metadata"]["name"].startswith("gen-")
    assert len(obj["metadata"]["name"]) == len("gen-") + 5


def test_post_without_content_type_is_json(client: RawClient, namespace: str) -> None:
    status, obj = client.post(f"/api/v1/namespaces/{namespace}/configmaps", cm("nohdr"),
                              content_type=None)
    assert status == 201, obj


@pytest.mark.parametrize(("body", "raw", "code", "reason"), [
    (None, b"{not json", 400, "BadRequest"),
    ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}, None, 400, "BadRequest"),
    ({"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "x"}}, None, 400,
     "BadRequest"),
    ({"metadata": {"name": "Not_Valid"}}, None, 422, "Invalid"),
    ({"metadata": {}}, None, 422, "Invalid"),
    ({"metadata": {"name": "x", "labels": {"bad key!": "v"}}}, None, 422, "Invalid"),
    ({"metadata": {"name": "x", "namespace": "elsewhere"}}, None, 400, "BadRequest"),
    ([1, 2], None, 400, "BadRequest"),
], ids=["malformed-json", "kind-mismatch", "version-mismatch", "bad-name", "no-name",
        "bad-label", "namespace-mismatch", "not-an-object"])
def test_bad_input_gets_status(client: RawClient, namespace: str, body: object, raw: bytes | None,
                               code: int, reason: str) -> None:
    status, result = client.post(f"/api/v1/namespaces/{namespace}/configmaps", body, raw=raw)
    assert status == code, result
    assert result["kind"] == "Status" and result["reason"] == reason and result["code"] == code
    assert client.get("/healthz")[0] == 200


def test_invalid_carries_field_causes(client: RawClient, namespace: str) -> None:
    status, result = client.post(f"/api/v1/namespaces/{namespace}/pods",
                                 {"metadata": {"name": "p"}, "spec": {"containers": [{}]}})
    assert status == 422
    fields = {c["field"] for c in result["details"]["causes"]}
    assert {"spec.containers[0].name", "spec.containers[0].image"} <= fields


def test_invalid_cause_messages_do_not_repeat_the_field(client: RawClient,
                                                        namespace: str) -> None:
    # kubectl prints "field: message" per cause; a message that starts with the field doubles it.
    status, result = client.post(f"/api/v1/namespaces/{namespace}/pods",
                                 {"metadata": {"name": "p"}, "spec": {"containers": []}})
    assert status == 422
    assert result["details"]["causes"] == [{"reason": "FieldValueRequired",
                                            "message": "Required value",
                                            "field": "spec.containers"}]
    assert result["message"] == 'Pod "p" is invalid: spec.containers: Required value'


def test_body_over_limit_is_413_and_server_keeps_serving(client: RawClient,
                                                        namespace: str) -> None:
    big = cm("big", blob="x" * (3 * 1024 * 1024 + 10))
    status, result = client.post(f"/api/v1/namespaces/{namespace}/configmaps", big)
    assert status == 413 and result["reason"] == "RequestEntityTooLarge"
    assert client.post(f"/api/v1/namespaces/{namespace}/configmaps", cm("small"))[0] == 201


def test_already_exists_and_not_found(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert client.post(path, cm("dup"))[0] == 201
    status, result = client.post(path, cm("dup"))
    assert (status, result["reason"]) == (409, "AlreadyExists")
    status, result = client.get(f"{path}/missing")
    assert (status, result["reason"]) == (404, "NotFound")
    assert result["details"] == {"name": "missing", "kind": "configmaps"}
    status, result = client.post("/api/v1/namespaces/nowhere/configmaps", cm("x"))
    assert status == 404 and "namespaces" in result["message"]


def test_update_conflict(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, obj = client.post(path, cm("u", k="1"))
    stale = dict(obj)
    obj["data"] = {"k": "2"}
    status, updated = client.put(f"{path}/u", obj)
    assert status == 200
    status, result = client.put(f"{path}/u", stale)
    assert (status, result["reason"]) == (409, "Conflict")
    updated["metadata"]["annotations"] = {"touched": "yes"}
    status, annotated = client.put(f"{path}/u", updated)
    assert int(annotated["metadata"]["resourceVersion"]) > int(
        updated["metadata"]["resourceVersion"])


@pytest.mark.parametrize(("path", "body", "change", "generations"), [
    ("/api/v1/namespaces/{ns}/configmaps", cm("g", k="1"), {"data": {"k": "2"}},
     (None, None, None)),
    ("/api/v1/namespaces/{ns}/secrets", {"metadata": {"name": "g"}, "data": {}},
     {"data": {"k": "dg=="}}, (None, None, None)),
    ("/api/v1/namespaces/{ns}/services", {"metadata": {"name": "g"}, "spec": {"ports": [
        {"port": 80}]}}, {"spec": {"ports": [{"port": 81}]}}, (None, None, None)),
    ("/apis/apps/v1/namespaces/{ns}/deployments", {"metadata": {"name": "g"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "g"}}, "template": {
            "metadata": {"labels": {"app": "g"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}}},
     {"spec": {"replicas": 2}}, (1, 1, 2)),
], ids=["configmap", "secret", "service", "deployment"])
def test_generation_moves_only_for_kinds_that_track_it(
        client: RawClient, namespace: str, path: str, body: dict, change: dict,
        generations: tuple[int | None, int | None, int | None]) -> None:
    """kube-apiserver sets and moves ``metadata.generation`` per kind: ConfigMaps, Secrets,
    Services (and the like) have none; Deployments start at 1 and move on spec changes only.
    (Custom resources: see test_crd.py.)"""
    path = path.format(ns=namespace)
    status, created = client.post(path, body)
    assert status == 201, created
    _, annotated = client.patch(f"{path}/g", {"metadata": {"annotations": {"a": "b"}}})
    _, changed = client.patch(f"{path}/g", change)
    assert tuple(o["metadata"].get("generation") for o in (created, annotated, changed)) == \
        generations


def test_noop_update_keeps_resource_version(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, obj = client.post(path, cm("same", k="1"))
    status, again = client.put(f"{path}/same", obj)
    assert status == 200 and again["metadata"]["resourceVersion"] == obj["metadata"][
        "resourceVersion"]
    status, patched = client.patch(f"{path}/same", {"data": {"k": "1"}})
    assert patched["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


def test_patch_types(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods"
    pod = {"metadata": {"name": "p", "labels": {"a": "1"}},
           "spec": {"containers": [{"name": "c", "image": "busybox:1",
                                    "env": [{"name": "A", "value": "1"}]}]}}
    assert client.post(path, pod)[0] == 201
    status, obj = client.patch(f"{path}/p", {"metadata": {"labels": {"b": "2"}}})
    assert obj["metadata"]["labels"] == {"a": "1", "b": "2"}
    status, obj = client.patch(f"{path}/p", [{"op": "replace", "path": "/metadata/labels/a",
                                              "value": "x"}], kind="json")
    assert status == 200 and obj["metadata"]["labels"]["a"] == "x"
    status, obj = client.patch(
        f"{path}/p", {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}},
        kind="strategic")
    assert status == 200, obj
    container = obj["spec"]["containers"][0]
    assert container["image"] == "busybox:2" and container["env"] == [{"name": "A", "value": "1"}]


def test_failed_json_patch_test_is_422(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    client.post(path, cm("jt"))
    status, result = client.patch(f"{path}/jt", [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "add", "path": "/data/x", "value": "y"}], kind="json")
    assert status == 422 and result["reason"] == "Invalid"


def test_patch_without_content_type_is_415(client: RawClient, namespace: str) -> None:
    client.post(f"/api/v1/namespaces/{namespace}/configmaps", cm("ct"))
    status, result = client.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/ct",
                                    {"data": {}}, content_type=None)
    assert status == 415 and result["reason"] == "UnsupportedMediaType"


def test_pod_spec_is_immutable_but_image(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods"
    client.post(path, {"metadata": {"name": "im"},
                       "spec": {"containers": [{"name": "c", "image": "a:1"}]}})
    status, _ = client.patch(f"{path}/im", {"spec": {"restartPolicy": "Never"}})
    assert status == 422
    status, _ = client.patch(f"{path}/im", {"spec": {"containers": [{"name": "c",
                                                                     "image": "a:2"}]}},
                             kind="strategic")
    assert status == 200


def test_pod_defaults(client: RawClient, namespace: str) -> None:
    _, pod = client.post(f"/api/v1/namespaces/{namespace}/pods", {
        "metadata": {"name": "d"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    assert pod["spec"]["restartPolicy"] == "Always"
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_secret_string_data_folds_into_data(client: RawClient, namespace: str) -> None:
    status, secret = client.post(f"/api/v1/namespaces/{namespace}/secrets", {
        "metadata": {"name": "s"}, "stringData": {"token": "abc"}})
    assert status == 201 and secret["data"] == {"token": "YWJj"} and "stringData" not in secret
    assert secret["type"] == "Opaque"


def test_service_gets_cluster_ip(client: RawClient, namespace: str) -> None:
    status, svc = client.post(f"/api/v1/namespaces/{namespace}/services", {
        "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}})
    assert status == 201, svc
    assert svc["spec"]["clusterIP"].startswith("10.96.")
    assert svc["spec"]["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}


def test_delete_with_finalizer_waits(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    body = cm("fin")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    client.post(path, body)
    status, obj = client.delete(f"{path}/fin")
    assert status == 200 and obj["metadata"]["deletionTimestamp"]
    assert client.get(f"{path}/fin")[0] == 200
    status, _ = client.patch(f"{path}/fin", {"metadata": {"finalizers": ["example.com/other"]}})
    assert status == 422, "no new finalizers on a deleting object"
    status, _ = client.patch(f"{path}/fin", {"metadata": {"finalizers": None}})
    assert status == 200
    assert client.get(f"{path}/fin")[0] == 404


def test_delete_preconditions(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, obj = client.post(path, cm("pre"))
    status, result = client.delete(f"{path}/pre", {"preconditions": {"uid": "other"}})
    assert status == 409 and "Precondition failed" in result["message"]
    status, _ = client.delete(f"{path}/pre", {"preconditions": {"uid": obj["metadata"]["uid"]},
                                             "propagationPolicy": "Background"})
    assert status == 200
    assert client.get(f"{path}/pre")[0] == 404


@pytest.mark.parametrize("kind", ["merge", "strategic"])
def test_empty_metadata_maps_are_not_stored(client: RawClient, namespace: str,
                                            kind: str) -> None:
    # kubectl diff sends {"metadata":{"annotations":{}}}; kube-apiserver's ObjectMeta omits
    # empty maps and lists, so the patch changes nothing (and the diff is empty).
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    body = cm("bare", a="1")
    body["metadata"]["labels"] = {}
    status, created = client.post(path, body)
    assert status == 201 and "labels" not in created["metadata"]
    status, patched = client.patch(f"{path}/bare", {"metadata": {
        "annotations": {}, "finalizers": [], "resourceVersion":
        created["metadata"]["resourceVersion"]}}, kind=kind)
    assert status == 200, patched
    assert patched == created  # a no-op: no empty maps, no new resourceVersion


def test_immediate_delete_answers_with_status_or_the_object(client: RawClient,
                                                            namespace: str) -> None:
    # Like kube-apiserver: a Status for most kinds, the object for pods (ReturnDeletedObject),
    # and the object while finalizers keep it.
    path = f"/api/v1/namespaces/{namespace}"
    _, obj = client.post(f"{path}/configmaps", cm("gone"))
    status, result = client.delete(f"{path}/configmaps/gone")
    assert status == 200
    assert result == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": {"name": "gone", "kind": "configmaps",  # group: omitempty
                                  "uid": obj["metadata"]["uid"]}}
    client.post(f"{path}/pods", {"metadata": {"name": "p"},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    status, result = client.delete(f"{path}/pods/p")
    assert (status, result["kind"], result["metadata"]["name"]) == (200, "Pod", "p")
    held = cm("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    client.post(f"{path}/configmaps", held)
    status, result = client.delete(f"{path}/configmaps/held")
    assert (status, result["kind"]) == (200, "ConfigMap")
    assert result["metadata"]["deletionTimestamp"]


def test_list_selectors_and_pagination(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(7):
        body = cm(f"item-{i}")
        body["metadata"]["labels"] = {"tier": "web" if i % 2 else "db", "n": str(i)}
        client.post(path, body)
    status, lst = client.get(f"{path}?labelSelector=tier%3Dweb")
    assert lst["kind"] == "ConfigMapList" and lst["metadata"]["resourceVersion"]
    assert [o["metadata"]["name"] for o in lst["items"]] == ["item-1", "item-3", "item-5"]
    status, lst = client.get(f"{path}?labelSelector=n%20notin%20(0,1,2),tier!=web")
    assert [o["metadata"]["name"] for o in lst["items"]] == ["item-4", "item-6"]
    status, lst = client.get(f"{path}?fieldSelector=metadata.name%3Ditem-2")
    assert [o["metadata"]["name"] for o in lst["items"]] == ["item-2"]
    names, token = [], ""
    while True:
        _, page = client.get(f"{path}?limit=3&continue={token}")
        names += [o["metadata"]["name"] for o in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
        assert page["metadata"]["remainingItemCount"] == 7 - len(names)
    assert names == [f"item-{i}" for i in range(7)]
    # With a selector, pages hold only matches and the remaining count is unknown (omitted).
    names, token = [], ""
    while True:
        _, page = client.get(f"{path}?limit=2&labelSelector=tier%3Dweb&continue={token}")
        names += [o["metadata"]["name"] for o in page["items"]]
        token = page["metadata"].get("continue", "")
        assert "remainingItemCount" not in page["metadata"]
        if not token:
            break
    assert names == ["item-1", "item-3", "item-5"]
    status, result = client.get(f"{path}?labelSelector=in%20in")
    assert status == 400
    status, result = client.get(f"{path}?fieldSelector=spec.nodeName%3Dx")
    assert status == 400 and "spec.nodeName" in result["message"]


def test_pagination_across_namespaces_and_writes_between_pages(client: RawClient) -> None:
    # "pg-a" and "pg-a-b": one namespace's name is the other's prefix; keys must not mix.
    for ns in ("pg-a", "pg-a-b"):
        client.post("/api/v1/namespaces", {"metadata": {"name": ns}})
        for i in range(4):
            client.post(f"/api/v1/namespaces/{ns}/configmaps", cm(f"c{i}"))
    _, page = client.get("/api/v1/namespaces/pg-a/configmaps?limit=3")
    assert [o["metadata"]["name"] for o in page["items"]] == ["c0", "c1", "c2"]
    assert page["metadata"]["remainingItemCount"] == 1
    # Written between pages: a new key after the cursor shows; one before it does not.
    client.post("/api/v1/namespaces/pg-a/configmaps", cm("c9"))
    client.post("/api/v1/namespaces/pg-a/configmaps", cm("a0"))
    token = page["metadata"]["continue"]
    _, page = client.get(f"/api/v1/namespaces/pg-a/configmaps?limit=3&continue={token}")
    assert [o["metadata"]["name"] for o in page["items"]] == ["c3", "c9"]
    assert "continue" not in page["metadata"] or not page["metadata"]["continue"]
    # All namespaces: in (namespace, name) order, page by page.
    seen, token = [], ""
    while True:
        _, page = client.get(f"/api/v1/configmaps?limit=4&continue={token}")
        seen += [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    ours = [key for key in seen if key[0] in ("pg-a", "pg-a-b")]
    assert ours == sorted(ours) and len(ours) == 10 and seen == sorted(seen)


def test_pod_field_selectors(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods"
    client.post(path, {"metadata": {"name": "fs"},
                       "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}})
    _, lst = client.get(f"{path}?fieldSelector=spec.nodeName%3Dn1,status.phase%3DPending")
    assert [o["metadata"]["name"] for o in lst["items"]] == ["fs"]
    _, lst = client.get(f"{path}?fieldSelector=status.phase!%3DPending")
    assert lst["items"] == []


def test_delete_collection(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for name, app in (("x1", "a"), ("x2", "a"), ("x3", "b")):
        body = cm(name)
        body["metadata"]["labels"] = {"app": app}
        client.post(path, body)
    status, result = client.delete(f"{path}?labelSelector=app%3Da")
    assert status == 200 and len(result["items"]) == 2
    _, lst = client.get(path)
    assert [o["metadata"]["name"] for o in lst["items"]] == ["x3"]


def test_namespace_deletion_removes_contents(client: RawClient) -> None:
    client.post("/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    client.post("/api/v1/namespaces/doomed/configmaps", cm("c"))
    status, _ = client.delete("/api/v1/namespaces/doomed")
    assert status == 200
    assert client.get("/api/v1/namespaces/doomed")[0] == 404
    assert client.get("/api/v1/namespaces/doomed/configmaps/c")[0] == 404


@pytest.mark.parametrize("kind", ["merge", "strategic"])
def test_patching_string_data_into_a_secret_stores_it(client: RawClient, namespace: str,
                                                      kind: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/secrets/s"
    _, created = client.post(f"/api/v1/namespaces/{namespace}/secrets",
                             {"metadata": {"name": "s"}, "stringData": {"user": "admin"}})
    status, patched = client.patch(path, {"stringData": {"password": "pw"}}, kind=kind)
    assert status == 200, patched
    assert patched["data"] == {"user": "YWRtaW4=", "password": "cHc="}
    assert int(patched["metadata"]["resourceVersion"]) > int(
        created["metadata"]["resourceVersion"])
    assert client.get(path)[1] == patched


def test_method_not_allowed(client: RawClient, namespace: str) -> None:
    status, result = client.post(f"/api/v1/namespaces/{namespace}/configmaps/x", cm("x"))
    assert status == 405 and result["reason"] == "MethodNotAllowed"


def test_table_output(client: RawClient, namespace: str) -> None:
    client.post(f"/api/v1/namespaces/{namespace}/configmaps", cm("tbl", a="1", b="2"))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    _, table = client.get(f"/api/v1/namespaces/{namespace}/configmaps",
                               headers={"Accept": accept})
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert table["rows"][0]["cells"][:2] == ["tbl", 2]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


@pytest.mark.parametrize(("seconds", "text"), [
    (5, "5s"), (119, "119s"), (125, "2m5s"), (600, "10m"), (3 * 3600 + 60, "3h1m"),
    (30 * 3600, "30h"), (3 * 86400 + 3600, "3d1h"), (100 * 86400, "100d"),
    (800 * 86400, "2y70d"), (-0.5, "0s"), (-5, "<invalid>"),
], ids=str)
def test_human_duration(seconds: float, text: str) -> None:
    from envtest.printing.tables import human_duration

    assert human_duration(seconds) == text
