"""The official ``kubernetes`` Python client (37.x) against ``ambient-ctrl apiserver``.

Every client is configured from the kubeconfig the server wrote, into its own Configuration and
ApiClient (never the process-wide default), and closed at the end of its test.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kubernetes import client, dynamic, watch
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import ApiException as DynamicApiException

from envtest import LocalAPIServer, ServerOptions

from .cluster import api_client_for
from .conftest import Cleanup, Raw, Server, unique

pytestmark = pytest.mark.timeout(120)

GROUP, VERSION, PLURAL = "example.com", "v1", "gadgets"

GADGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "gadget", "kind": "Gadget",
                  "shortNames": ["gd"]},
        "versions": [{
            "name": VERSION, "served": True, "storage": True,
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "properties": {
                        "size": {"type": "integer"}, "color": {"type": "string"}}},
                    "status": {"type": "object", "properties": {
                        "phase": {"type": "string"}}},
                }}},
        }],
    },
}


@pytest.fixture()
def api(apiserver: Server) -> Iterator[client.ApiClient]:
    with api_client_for(apiserver.kubeconfig) as api_client:
        yield api_client


@pytest.fixture()
def v1(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="module")
def gadget_crd(apiserver: Server, module_cleanup: Cleanup) -> str:
    """The Gadget CRD, created once per module through ApiextensionsV1Api."""
    with api_client_for(apiserver.kubeconfig) as api_client:
        ext = client.ApiextensionsV1Api(api_client)
        created = ext.create_custom_resource_definition(GADGET_CRD)
        module_cleanup.add(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                           f"{PLURAL}.{GROUP}")
        assert created.metadata.name == f"{PLURAL}.{GROUP}"
        read = ext.read_custom_resource_definition(f"{PLURAL}.{GROUP}")
        established = {c.type: c.status for c in read.status.conditions}
        assert established["Established"] == "True"
        assert read.status.accepted_names.kind == "Gadget"
    return f"{PLURAL}.{GROUP}"


def config_map(name: str, **data: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data)


# CoreV1Api --------------------------------------------------------------------------------------
def test_config_map_crud(v1: client.CoreV1Api, raw: Raw, namespace: str) -> None:
    created = v1.create_namespaced_config_map(namespace, config_map("cm", a="1"))
    assert isinstance(created, client.V1ConfigMap)
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.namespace == namespace

    got = v1.read_namespaced_config_map("cm", namespace)
    assert (got.data, got.metadata.uid) == ({"a": "1"}, created.metadata.uid)
    listed = v1.list_namespaced_config_map(namespace)
    assert listed.kind == "ConfigMapList" and listed.metadata.resource_version
    assert [item.metadata.name for item in listed.items] == ["cm"]

    got.data["b"] = "2"
    replaced = v1.replace_namespaced_config_map("cm", namespace, got)
    assert replaced.data == {"a": "1", "b": "2"}
    assert int(replaced.metadata.resource_version) > int(got.metadata.resource_version)
    with pytest.raises(ApiException) as stale:  # got still carries the old resourceVersion
        v1.replace_namespaced_config_map("cm", namespace, got)
    assert stale.value.status == 409

    deleted = v1.delete_namespaced_config_map("cm", namespace)  # 37.x returns delete bodies raw
    assert (deleted["kind"], deleted["status"]) == ("Status", "Success")
    assert deleted["details"]["name"] == "cm"
    assert deleted["details"]["uid"] == created.metadata.uid
    assert raw.absent(f"/api/v1/namespaces/{namespace}/configmaps/cm")
    with pytest.raises(ApiException) as missing:
        v1.read_namespaced_config_map("cm", namespace)
    assert missing.value.status == 404


def test_pod_crud(v1: client.CoreV1Api, raw: Raw, namespace: str) -> None:
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="runner", labels={"app": "demo"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="busybox:1.36",
                                                             command=["sleep", "3600"])]))
    created = v1.create_namespaced_pod(namespace, pod)
    assert isinstance(created, client.V1Pod)
    assert created.spec.containers[0].image == "busybox:1.36"
    assert created.status.phase == "Pending"

    listed = v1.list_namespaced_pod(namespace, label_selector="app=demo")
    assert [p.metadata.name for p in listed.items] == ["runner"]
    assert v1.list_namespaced_pod(namespace, label_selector="app=other").items == []

    got = v1.read_namespaced_pod("runner", namespace)
    got.metadata.labels["tier"] = "batch"
    got.spec.containers[0].image = "busybox:1.37"  # one of the few mutable pod fields
    replaced = v1.replace_namespaced_pod("runner", namespace, got)
    assert replaced.metadata.labels == {"app": "demo", "tier": "batch"}
    assert replaced.spec.containers[0].image == "busybox:1.37"

    deleted = v1.delete_namespaced_pod("runner", namespace,
                                       body=client.V1DeleteOptions(propagation_policy="Background"))
    assert deleted.metadata.name == "runner"  # pods answer with the deleted object
    assert raw.absent(f"/api/v1/namespaces/{namespace}/pods/runner")


@pytest.mark.parametrize(("body", "content_type", "expected"), [
    ({"data": {"b": "2"}, "metadata": {"labels": {"via": "strategic"}}}, None,
     ({"a": "1", "b": "2"}, {"via": "strategic"})),
    ([{"op": "test", "path": "/data/a", "value": "1"},
      {"op": "add", "path": "/data/c", "value": "3"}], None,
     ({"a": "1", "c": "3"}, None)),
    ({"data": {"a": None, "m": "merged"}}, "application/merge-patch+json",
     ({"m": "merged"}, None)),
], ids=["strategic-dict", "json-patch-list", "merge-patch-forced"])
def test_config_map_patch_types(v1: client.CoreV1Api, raw: Raw, namespace: str, body: Any,
                                content_type: str | None, expected: tuple[Any, Any]) -> None:
    v1.create_namespaced_config_map(namespace, config_map("patched", a="1"))
    extra = {"_content_type": content_type} if content_type else {}
    result = v1.patch_namespaced_config_map("patched", namespace, body, **extra)
    data, labels = expected
    assert (result.data, result.metadata.labels) == (data, labels)
    stored = raw.obj(f"/api/v1/namespaces/{namespace}/configmaps/patched")
    assert (stored["data"], stored["metadata"].get("labels")) == (data, labels)


def test_failed_json_patch_test_is_422(v1: client.CoreV1Api, raw: Raw, namespace: str) -> None:
    v1.create_namespaced_config_map(namespace, config_map("guarded", a="1"))
    with pytest.raises(ApiException) as failed:
        v1.patch_namespaced_config_map("guarded", namespace, [
            {"op": "test", "path": "/data/a", "value": "other"},
            {"op": "remove", "path": "/data/a"}])
    assert failed.value.status == 422
    assert raw.obj(f"/api/v1/namespaces/{namespace}/configmaps/guarded")["data"] == {"a": "1"}


def test_service_account_token(v1: client.CoreV1Api, raw: Raw, namespace: str) -> None:
    v1.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="bot")))
    uid = raw.obj(f"/api/v1/namespaces/{namespace}/serviceaccounts/bot")["metadata"]["uid"]
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
        audiences=["vault"], expiration_seconds=1200))
    answer = v1.create_namespaced_service_account_token("bot", namespace, request)
    assert isinstance(answer, client.AuthenticationV1TokenRequest)
    assert (answer.metadata.name, answer.metadata.namespace) == ("bot", namespace)
    assert (answer.spec.audiences, answer.spec.expiration_seconds) == (["vault"], 1200)
    lifetime = answer.status.expiration_timestamp - answer.metadata.creation_timestamp
    assert lifetime.total_seconds() == 1200
    payload = answer.status.token.split(".")[1]
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["aud"] == ["vault"] and claims["exp"] - claims["iat"] == 1200
    assert claims["sub"] == f"system:serviceaccount:{namespace}:bot"
    assert claims["kubernetes.io"]["serviceaccount"] == {"name": "bot", "uid": uid}

    default = v1.create_namespaced_service_account_token(
        "bot", namespace, client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[])))
    assert default.spec.expiration_seconds == 3600 and default.spec.audiences
    assert default.status.token != answer.status.token

    with pytest.raises(ApiException) as missing:
        v1.create_namespaced_service_account_token("ghost", namespace, request)
    assert missing.value.status == 404
    assert orjson.loads(missing.value.body)["message"] == 'serviceaccounts "ghost" not found'
    short = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
        audiences=[], expiration_seconds=60))
    with pytest.raises(ApiException) as invalid:
        v1.create_namespaced_service_account_token("bot", namespace, short)
    assert invalid.value.status == 422
    [cause] = orjson.loads(invalid.value.body)["details"]["causes"]
    assert cause == {"reason": "FieldValueInvalid", "field": "spec.expirationSeconds",
                     "message": "Invalid value: 60: may not specify a duration less than 10 "
                                "minutes"}


# NetworkingV1Api --------------------------------------------------------------------------------
def test_network_policy_crud(api: client.ApiClient, raw: Raw, namespace: str) -> None:
    net = client.NetworkingV1Api(api)
    body = client.V1NetworkPolicy(
        metadata=client.V1ObjectMeta(name="db", labels={"team": "a"}),
        spec=client.V1NetworkPolicySpec(
            pod_selector=client.V1LabelSelector(match_labels={"app": "db"}),
            ingress=[client.V1NetworkPolicyIngressRule(
                _from=[client.V1NetworkPolicyPeer(pod_selector=client.V1LabelSelector(
                    match_labels={"app": "api"}))],
                ports=[client.V1NetworkPolicyPort(port=5432)])]))
    created = net.create_namespaced_network_policy(namespace, body)
    assert isinstance(created, client.V1NetworkPolicy)
    assert created.metadata.uid and created.metadata.generation == 1
    assert created.spec.policy_types == ["Ingress"]
    assert created.spec.ingress[0].ports[0].protocol == "TCP"
    assert created.spec.ingress[0]._from[0].pod_selector.match_labels == {"app": "api"}

    got = net.read_namespaced_network_policy("db", namespace)
    assert got.metadata.uid == created.metadata.uid
    listed = net.list_namespaced_network_policy(namespace, label_selector="team=a")
    assert listed.kind == "NetworkPolicyList"
    assert [i.metadata.name for i in listed.items] == ["db"]

    # The typed client patches a dict as strategic merge: lists here are atomic (replaced).
    patched = net.patch_namespaced_network_policy("db", namespace, {"spec": {
        "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}],
        "policyTypes": ["Ingress", "Egress"]}})
    assert patched.spec.policy_types == ["Ingress", "Egress"]
    assert [(p.port, p.protocol) for p in patched.spec.egress[0].ports] == [(53, "UDP")]
    assert patched.spec.pod_selector.match_labels == {"app": "db"}
    assert patched.metadata.generation == 2
    stored = raw.obj(f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/db")
    assert stored["spec"]["egress"] == [{"ports": [{"port": 53, "protocol": "UDP"}]}]

    with pytest.raises(ApiException) as invalid:
        net.patch_namespaced_network_policy("db", namespace, {"spec": {
            "policyTypes": ["Sideways"]}})
    assert invalid.value.status == 422

    net.delete_namespaced_network_policy("db", namespace)
    assert raw.absent(f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/db")
    with pytest.raises(ApiException) as missing:
        net.read_namespaced_network_policy("db", namespace)
    assert missing.value.status == 404


# watches ----------------------------------------------------------------------------------------
BOOKMARKS = pytest.mark.local_only("waits for BOOKMARKs, which the local server sends every "
                                   "second and a real one about once a minute")


@BOOKMARKS
def test_watch_from_a_resource_version_sees_later_changes_and_bookmarks(
        v1: client.CoreV1Api, namespace: str) -> None:
    v1.create_namespaced_config_map(namespace, config_map("before", a="1"))
    rv = v1.list_namespaced_config_map(namespace).metadata.resource_version
    v1.create_namespaced_config_map(namespace, config_map("after", a="2"))

    events: list[tuple[str, str | None]] = []
    w = watch.Watch()
    for event in w.stream(v1.list_namespaced_config_map, namespace, resource_version=rv,
                          allow_watch_bookmarks=True, timeout_seconds=20,
                          _request_timeout=30):
        obj = event["object"]
        if event["type"] == "BOOKMARK":
            events.append(("BOOKMARK", event["raw_object"]["metadata"]["resourceVersion"]))
        else:
            assert isinstance(obj, client.V1ConfigMap)
            events.append((event["type"], obj.metadata.name))
        if sum(1 for kind, _ in events if kind == "BOOKMARK") >= 2:
            w.stop()
    assert events[0] == ("ADDED", "after"), events  # only what happened after rv
    assert ("ADDED", "before") not in events
    bookmarks = [int(str(version)) for kind, version in events if kind == "BOOKMARK"]
    assert len(bookmarks) == 2 and min(bookmarks) >= int(rv)


@BOOKMARKS
def test_watch_sees_changes_made_while_it_is_open(v1: client.CoreV1Api, namespace: str,
                                                  apiserver: Server) -> None:
    rv = v1.list_namespaced_config_map(namespace).metadata.resource_version
    seen: list[tuple[str, str]] = []
    w = watch.Watch()
    opened = threading.Event()

    def consume() -> None:
        for event in w.stream(v1.list_namespaced_config_map, namespace, resource_version=rv,
                              allow_watch_bookmarks=True, timeout_seconds=20,
                              _request_timeout=30):
            opened.set()
            if event["type"] != "BOOKMARK":
                seen.append((event["type"], event["object"].metadata.name))
            if ("DELETED", "live") in seen:
                w.stop()

    reader = threading.Thread(target=consume, name="python-client-watch")
    reader.start()
    try:
        assert opened.wait(10), "no BOOKMARK within 10 s of opening the watch"
        with api_client_for(apiserver.kubeconfig) as writer_api:
            writer = client.CoreV1Api(writer_api)
            writer.create_namespaced_config_map(namespace, config_map("live", a="1"))
            writer.patch_namespaced_config_map("live", namespace, {"data": {"a": "2"}})
            writer.delete_namespaced_config_map("live", namespace)
    finally:
        reader.join(30)
    assert not reader.is_alive()
    assert seen == [("ADDED", "live"), ("MODIFIED", "live"), ("DELETED", "live")]


@pytest.mark.local_only("runs an in-process server with a 50-event history")
def test_watch_from_an_expired_resource_version_raises_410(tmp_path: Path) -> None:
    with LocalAPIServer(kubeconfig_path=tmp_path / "kubeconfig",
                        options=ServerOptions(history_limit=50)) as server, \
            api_client_for(Path(server.kubeconfig)) as api_client:
        v1 = client.CoreV1Api(api_client)
        first = v1.create_namespaced_config_map("default", config_map("churn", n="0"))
        for n in range(1, 60):
            v1.patch_namespaced_config_map("churn", "default", {"data": {"n": str(n)}})
        w = watch.Watch()
        with pytest.raises(ApiException) as expired:  # the client retries once, then raises
            for _ in w.stream(v1.list_namespaced_config_map, "default",
                              resource_version=first.metadata.resource_version,
                              _request_timeout=30):
                pass
        assert expired.value.status == 410


# custom resources -------------------------------------------------------------------------------
def test_custom_objects_api(api: client.ApiClient, raw: Raw, namespace: str,
                            gadget_crd: str) -> None:
    custom = client.CustomObjectsApi(api)
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Gadget",
            "metadata": {"name": "g1", "labels": {"team": "a"}},
            "spec": {"size": 1, "color": "red"}, "status": {"phase": "ignored"}}
    created = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    assert created["spec"] == {"size": 1, "color": "red"}
    assert "status" not in created  # the main resource ignores status when /status exists

    got = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "g1")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                  label_selector="team=a")
    assert listed["kind"] == "GadgetList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["g1"]

    patched = custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "g1", {"spec": {"size": 2, "color": None}})
    assert patched["spec"] == {"size": 2}
    assert patched["metadata"]["generation"] == 2

    status = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "g1",
        {"status": {"phase": "Ready"}, "spec": {"size": 99}})
    assert status["status"] == {"phase": "Ready"}
    assert status["spec"] == {"size": 2}  # /status changes only status
    assert status["metadata"]["generation"] == 2
    stored = raw.obj(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/g1")
    assert (stored["spec"], stored["status"]) == ({"size": 2}, {"phase": "Ready"})

    deleted = custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "g1")
    assert deleted["status"] == "Success"
    assert raw.absent(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/g1")


# DynamicClient ----------------------------------------------------------------------------------
@pytest.fixture()
def dyn(api: client.ApiClient, tmp_path: Path) -> dynamic.DynamicClient:
    # Its discovery cache is a file keyed by host; servers here reuse ports, so keep it per test.
    return dynamic.DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))


def test_dynamic_client_config_maps(dyn: dynamic.DynamicClient, raw: Raw,
                                    namespace: str) -> None:
    config_maps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    assert (config_maps.name, config_maps.namespaced) == ("configmaps", True)
    created = config_maps.create(namespace=namespace, body={
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn"},
        "data": {"a": "1"}})
    assert created.metadata.name == "dyn"
    got = config_maps.get(name="dyn", namespace=namespace)
    assert got.data.a == "1"
    listed = config_maps.get(namespace=namespace)
    assert [item.metadata.name for item in listed.items] == ["dyn"]

    patched = config_maps.patch(name="dyn", namespace=namespace,
                                body={"data": {"b": "2"}})  # strategic merge by default
    assert patched.data.to_dict() == {"a": "1", "b": "2"}
    config_maps.patch(name="dyn", namespace=namespace, body={"data": {"a": None}},
                      content_type="application/merge-patch+json")
    assert raw.obj(f"/api/v1/namespaces/{namespace}/configmaps/dyn")["data"] == {"b": "2"}

    config_maps.delete(name="dyn", namespace=namespace)
    assert raw.absent(f"/api/v1/namespaces/{namespace}/configmaps/dyn")


def test_dynamic_client_custom_resource(dyn: dynamic.DynamicClient, raw: Raw, namespace: str,
                                        gadget_crd: str) -> None:
    gadgets = dyn.resources.get(api_version=f"{GROUP}/{VERSION}", kind="Gadget")
    assert (gadgets.name, gadgets.namespaced, gadgets.short_names) == (PLURAL, True, ["gd"])
    assert set(gadgets.subresources) == {"status"}  # from the discovery document
    name = unique("gadget")
    gadgets.create(namespace=namespace, body={
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Gadget", "metadata": {"name": name},
        "spec": {"size": 1}})
    assert gadgets.get(name=name, namespace=namespace).spec.size == 1

    # The DynamicClient patches with strategic merge by default: custom resources refuse it.
    with pytest.raises(DynamicApiException) as refused:
        gadgets.patch(name=name, namespace=namespace, body={"spec": {"size": 2}})
    assert refused.value.status == 415
    patched = gadgets.patch(name=name, namespace=namespace, body={"spec": {"size": 2}},
                            content_type="application/merge-patch+json")
    assert patched.spec.size == 2
    status = gadgets.status.patch(name=name, namespace=namespace,
                                  body={"status": {"phase": "Ready"}},
                                  content_type="application/merge-patch+json")
    assert (status.status.phase, status.spec.size) == ("Ready", 2)
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"
    stored = raw.obj(path)
    assert (stored["spec"], stored["status"]) == ({"size": 2}, {"phase": "Ready"})

    gadgets.delete(name=name, namespace=namespace)
    assert raw.absent(path)
