"""Unknown fields under ``fieldValidation`` Ignore, Warn (the default) and Strict."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from envtest.simulators import KubeletSimulator, KubeVirtSimulator
from tests.conftest import RawClient
from tests.envtest.test_crd import CRD_PATH, widget_crd
from tests.envtest.test_simulators import launchers, pod, vm

PATCH_TYPES = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
               "strategic": "application/strategic-merge-patch+json",
               "apply": "application/apply-patch+yaml"}


def send(client: RawClient, method: str, path: str, body: Any, *,
         content_type: str = "application/json") -> tuple[int, Any, str]:
    """(status, body, Warning header or "")."""
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    resp = client.http.request(method, client.url + path, body=data,
                               headers={"Content-Type": content_type})
    return resp.status, orjson.loads(resp.data), resp.headers.get("Warning", "")


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "bogus": 1}, "data": {"a": "1"}, "extra": True}


# built-in kinds ------------------------------------------------------------------------------
def test_strict_create_is_400_naming_every_unknown_field(client: RawClient,
                                                         namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    status, body, _ = send(client, "POST", f"{path}?fieldValidation=Strict", cm("strict"))
    assert status == 400, body
    assert (body["kind"], body["reason"]) == ("Status", "BadRequest")
    assert body["message"] == ('ConfigMap in version "v1" cannot be handled as a ConfigMap: '
                               'strict decoding error: unknown field "metadata.bogus", '
                               'unknown field "extra"')
    assert client.get(f"{path}/strict")[0] == 404


DUPLICATED = (b'{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "dupes"},'
              b' "spec": {"replicas": 1, "replicas": 2, "selector": {"matchLabels": {"a": "b"}},'
              b' "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": ['
              b'{"name": "c", "image": "i", "image": "j", "bogus": 1}]}}, "paused": true}}')


def test_strict_create_is_400_naming_every_duplicate_field(client: RawClient,
                                                           namespace: str) -> None:
    """A member named twice in one object is a strict decoding error, as kube's decoder
    reports it (it used to be stored, the last value kept)."""
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    status, body, _ = send(client, "POST", f"{path}?fieldValidation=Strict", DUPLICATED)
    assert status == 400, body
    assert body["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'duplicate field "spec.replicas", duplicate field '
        '"spec.template.spec.containers[0].image", unknown field '
        '"spec.template.spec.containers[0].bogus"')
    assert client.get(f"{path}/dupes")[0] == 404


def test_duplicates_outside_strict_keep_the_last_value(client: RawClient,
                                                       namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    status, body, _ = send(client, "POST", path, DUPLICATED)
    assert status == 201, body
    assert body["spec"]["replicas"] == 2
    assert body["spec"]["template"]["spec"]["containers"][0]["image"] == "j"


@pytest.mark.parametrize("kind", ["merge", "strategic", "json"])
def test_a_strict_patch_with_duplicate_fields_is_400(client: RawClient, namespace: str,
                                                     kind: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert send(client, "POST", path, {"metadata": {"name": f"dup-{kind}"}})[0] == 201
    patch = (b'[{"op": "add", "path": "/data", "value": {"a": "1"}, "value": {"a": "2"}}]'
             if kind == "json" else b'{"data": {"a": "1", "a": "2"}}')
    status, body, _ = send(client, "PATCH", f"{path}/dup-{kind}?fieldValidation=Strict", patch,
                           content_type=PATCH_TYPES[kind])
    assert status == 400, body
    where = "[0].value" if kind == "json" else "data.a"
    assert body["message"] == f'strict decoding error: duplicate field "{where}"'
    assert "data" not in client.get(f"{path}/dup-{kind}")[1]


@pytest.mark.parametrize("query", ["", "?fieldValidation=Warn"], ids=["absent", "warn"])
def test_warn_drops_unknown_fields_and_says_so(client: RawClient, namespace: str,
                                               query: str) -> None:
    name = f"warn{len(query)}"
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    status, obj, warning = send(client, "POST", path + query, cm(name))
    assert status == 201, obj
    assert "extra" not in obj and "bogus" not in obj["metadata"] and obj["data"] == {"a": "1"}
    assert warning == ('299 - "unknown field \\"metadata.bogus\\"", '
                       '299 - "unknown field \\"extra\\""')
    assert "extra" not in client.get(f"{path}/{name}")[1]


def test_ignore_drops_unknown_fields_silently(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    status, obj, warning = send(client, "POST", f"{path}?fieldValidation=Ignore", cm("quiet"))
    assert status == 201 and "extra" not in obj and warning == ""


def test_known_fields_raise_no_warning(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods?fieldValidation=Strict"
    body = pod("clean")
    body["metadata"].update(labels={"a": "b"}, annotations={"n": "v"},
                            ownerReferences=[{"apiVersion": "v1", "kind": "ConfigMap",
                                              "name": "x", "uid": "u", "controller": True}])
    body["spec"]["containers"][0].update(
        env=[{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        resources={"limits": {"cpu": "1"}}, ports=[{"containerPort": 80, "name": "http"}],
        readinessProbe={"httpGet": {"path": "/", "port": "http"}})
    body["spec"]["volumes"] = [{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}]
    status, obj, warning = send(client, "POST", path, body)
    assert status == 201, obj
    assert warning == ""


def test_unknown_fields_are_found_at_any_depth(client: RawClient, namespace: str) -> None:
    body = pod("nested")
    body["spec"]["containers"][0]["bogus"] = 1
    body["spec"]["volumes"] = [{"name": "v", "emptyDir": {"medium": "", "size": 1}}]
    status, result, _ = send(client, "POST", f"/api/v1/namespaces/{namespace}/pods"
                             "?fieldValidation=Strict", body)
    assert status == 400
    assert result["message"].endswith('strict decoding error: unknown field '
                                      '"spec.containers[0].bogus", unknown field '
                                      '"spec.volumes[0].emptyDir.size"')


def test_strict_update_is_400_and_changes_nothing(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    status, obj, _ = send(client, "POST", path, {"metadata": {"name": "upd"}, "data": {}})
    assert status == 201
    obj["data"] = {"b": "2"}
    obj["spec"] = {}
    status, result, _ = send(client, "PUT", f"{path}/upd?fieldValidation=Strict", obj)
    assert status == 400 and 'unknown field "spec"' in result["message"], result
    assert not client.get(f"{path}/upd")[1].get("data")
    status, updated, warning = send(client, "PUT", f"{path}/upd", obj)
    assert status == 200 and updated["data"] == {"b": "2"} and "spec" not in updated
    assert warning == '299 - "unknown field \\"spec\\""'


@pytest.mark.parametrize(("kind", "patch"), [
    ("merge", {"data": {"b": "2"}, "extra": 1}),
    ("strategic", {"data": {"b": "2"}, "extra": 1}),
    ("json", [{"op": "add", "path": "/data/b", "value": "2"},
              {"op": "add", "path": "/extra", "value": 1}]),
], ids=["merge", "strategic", "json"])
def test_patches_are_checked_on_the_patched_object(client: RawClient, namespace: str,
                                                   kind: str, patch: Any) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert send(client, "POST", path, {"metadata": {"name": "p"}, "data": {"a": "1"}})[0] == 201
    status, result, _ = send(client, "PATCH", f"{path}/p?fieldValidation=Strict", patch,
                             content_type=PATCH_TYPES[kind])
    assert status == 400, result
    assert result["message"] == 'strict decoding error: unknown field "extra"'
    assert client.get(f"{path}/p")[1]["data"] == {"a": "1"}
    status, patched, warning = send(client, "PATCH", f"{path}/p", patch,
                                    content_type=PATCH_TYPES[kind])
    assert status == 200 and patched["data"] == {"a": "1", "b": "2"}
    assert "extra" not in patched and warning == '299 - "unknown field \\"extra\\""'


def test_server_side_apply_follows_the_directive(client: RawClient, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps/ssa"
    doc = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {a: '1'}\nextra: 1\n"
    status, result, _ = send(client, "PATCH", f"{path}?fieldManager=t&fieldValidation=Strict",
                             doc, content_type=PATCH_TYPES["apply"])
    assert status == 400 and 'unknown field "extra"' in result["message"]
    status, obj, warning = send(client, "PATCH", f"{path}?fieldManager=t", doc,
                                content_type=PATCH_TYPES["apply"])
    assert status == 201 and "extra" not in obj and "extra" in warning
    fields = obj["metadata"]["managedFields"][0]["fieldsV1"]
    assert "f:extra" not in fields, "an unknown field is not owned either"


def test_deployment_template_is_checked(client: RawClient, namespace: str) -> None:
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i", "bogus": 1}]}}}}
    status, result, _ = send(client, "POST", f"/apis/apps/v1/namespaces/{namespace}"
                             "/deployments?fieldValidation=Strict", body)
    assert status == 400
    assert 'unknown field "spec.template.spec.containers[0].bogus"' in result["message"]


@pytest.mark.parametrize("value", ["strict", "Everything"])
def test_unknown_directive_is_422(client: RawClient, namespace: str, value: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps?fieldValidation={value}"
    status, result, _ = send(client, "POST", path, {"metadata": {"name": "x"}})
    assert status == 422 and result["reason"] == "Invalid", result
    assert result["details"]["causes"] == [{
        "reason": "FieldValueNotSupported", "field": "fieldValidation",
        "message": f'Unsupported value: "{value}": supported values: "", "Ignore", "Strict", '
                   '"Warn"'}]


# custom resources ----------------------------------------------------------------------------
@pytest.fixture()
def gears(client: RawClient) -> str:
    crd = widget_crd("gears")
    crd["spec"]["versions"][0]["schema"] = {"openAPIV3Schema": {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {
                "size": {"type": "integer"},
                "parts": {"type": "array", "items": {
                    "type": "object", "properties": {"name": {"type": "string"}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}},
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}}}
    status, body = client.post(CRD_PATH, crd)
    assert status in (201, 409), body
    return "/apis/example.com/v1"


def test_custom_resource_unknown_fields_are_what_its_schema_prunes(
        client: RawClient, gears: str, namespace: str) -> None:
    path = f"{gears}/namespaces/{namespace}/gears"
    body = {"apiVersion": "example.com/v1", "kind": "Gear",
            "metadata": {"name": "g", "bogus": 1},
            "spec": {"size": 1, "extra": 2, "parts": [{"name": "a", "weight": 3}],
                     "free": {"anything": {"goes": True}}}}
    status, result, _ = send(client, "POST", f"{path}?fieldValidation=Strict", body)
    assert status == 400, result
    assert result["message"] == (
        'Gear in version "v1" cannot be handled as a Gear: strict decoding error: '
        'unknown field "metadata.bogus", unknown field "spec.extra", '
        'unknown field "spec.parts[0].weight"')
    status, obj, warning = send(client, "POST", path, body)
    assert status == 201
    assert obj["spec"] == {"size": 1, "parts": [{"name": "a"}],
                           "free": {"anything": {"goes": True}}}
    assert warning.count("unknown field") == 3

    status, result, _ = send(client, "PATCH", f"{path}/g?fieldValidation=Strict",
                             {"spec": {"free": {"more": 1}}},
                             content_type=PATCH_TYPES["merge"])
    assert status == 200, "preserve-unknown-fields subtrees hold no unknown fields"
    status, result, _ = send(client, "PATCH", f"{path}/g?fieldValidation=Strict",
                             {"spec": {"colour": "red"}}, content_type=PATCH_TYPES["merge"])
    assert status == 400
    assert result["message"] == 'strict decoding error: unknown field "spec.colour"'


# what the server writes itself ---------------------------------------------------------------
@pytest.fixture(scope="module")
def simulated() -> Iterator[RawClient]:
    kubelet = KubeletSimulator(schedule_delay=0.02, start_delay=0.05, ready_delay=0.1)
    kubevirt = KubeVirtSimulator(schedule_delay=0.02, boot_delay=0.05, ready_delay=0.1)
    with LocalAPIServer(simulators=[kubelet, kubevirt]) as srv, RawClient(srv.url) as raw:
        yield raw


def test_objects_the_simulators_write_pass_strict_patches(simulated: RawClient) -> None:
    # A kubectl patch (Strict) is checked on the whole patched object: anything the server
    # wrote itself that a real server would not know would make every such patch fail.
    pods = "/api/v1/namespaces/default/pods"
    assert simulated.post(pods, pod("sim"))[0] == 201
    vms = "/apis/kubevirt.io/v1/namespaces/default/virtualmachines"
    assert simulated.post(vms, vm("simvm"))[0] == 201

    def running() -> list[dict[str, Any]] | None:
        found = [p for p in [simulated.get(f"{pods}/sim")[1],
                             *launchers(simulated, "default", "simvm")]
                 if (p.get("status") or {}).get("phase") == "Running"]
        return found if len(found) == 2 else None

    for obj in eventually(running, timeout=10, message="pods never ran"):
        status, result, _ = send(simulated, "PATCH",
                                 f"{pods}/{obj['metadata']['name']}?fieldValidation=Strict",
                                 {"metadata": {"labels": {"checked": "yes"}}},
                                 content_type=PATCH_TYPES["strategic"])
        assert status == 200, result
