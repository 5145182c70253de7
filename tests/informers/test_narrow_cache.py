"""Narrower, cheaper caches: metadata-only reads, per-resource transforms, removing an informer.

Metadata-only reads are negotiated as kube-apiserver does (``Accept: application/json;
as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1``): the local API server's answers are
checked with raw HTTP and with the official client sending the same header; the informers'
side with a real watch.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from kubernetes import client as k8s

from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from informers.factory import InformerFactory
from informers.informer import SharedInformer
from informers.resource import PODS, Resource
from informers.rest import ResourceClient, Transport, metadata_of
from informers.store import Obj, strip_managed_fields
from tests.conftest import RawClient, typed_client

AS_META = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
AS_META_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
_names = itertools.count()


def pod(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels, "annotations": {"note": "x" * 64}},
            "spec": {"containers": [{"name": "app", "image": "busybox",
                                     "env": [{"name": f"V{i}", "value": "y" * 40}
                                             for i in range(20)]}]}}


@pytest.fixture()
def namespace(server: LocalAPIServer) -> Iterator[str]:
    name = f"narrow{next(_names)}"
    with RawClient(server.url) as raw:
        status, body = raw.post("/api/v1/namespaces", {"metadata": {"name": name}})
        assert status == 201, body
        for index in range(3):
            status, body = raw.post(f"/api/v1/namespaces/{name}/pods", pod(f"p{index}",
                                                                          app="web"))
            assert status == 201, body
    yield name


# the server ------------------------------------------------------------------------------------
def test_the_server_answers_partial_object_metadata(server: LocalAPIServer,
                                                    namespace: str) -> None:
    with RawClient(server.url) as raw:
        base = f"/api/v1/namespaces/{namespace}/pods"
        status, one = raw.get(f"{base}/p0", headers={"Accept": f"{AS_META}, application/json"})
        assert status == 200
        assert set(one) == {"kind", "apiVersion", "metadata"}
        assert (one["kind"], one["apiVersion"]) == ("PartialObjectMetadata", "meta.k8s.io/v1")
        assert one["metadata"]["labels"] == {"app": "web"}
        status, page = raw.get(base, headers={"Accept": AS_META_LIST})
        assert (status, page["kind"], page["apiVersion"]) == (
            200, "PartialObjectMetadataList", "meta.k8s.io/v1")
        assert [item["metadata"]["name"] for item in page["items"]] == ["p0", "p1", "p2"]
        assert all(set(item) == {"kind", "apiVersion", "metadata"} for item in page["items"])
        assert page["metadata"]["resourceVersion"]
        # A list asked for in the one-object form, alone: nothing the server can send (406).
        status, refused = raw.get(base, headers={"Accept": AS_META})
        assert (status, refused["reason"], refused["code"]) == (406, "NotAcceptable", 406)
        # kubectl's Table negotiation is unchanged.
        status, table = raw.get(base, headers={
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
        assert (status, table["kind"]) == (200, "Table")


def test_the_official_client_gets_metadata_only(server: LocalAPIServer,
                                                namespace: str) -> None:
    configuration = k8s.Configuration()
    configuration.host = server.url
    with typed_client(configuration) as api:
        core = k8s.CoreV1Api(api)
        answer = core.list_namespaced_pod(namespace, _preload_content=False,
                                          _headers={"Accept": AS_META_LIST})
        page = orjson.loads(answer.data)
        full = orjson.loads(core.list_namespaced_pod(namespace, _preload_content=False).data)
    assert page["kind"] == "PartialObjectMetadataList"
    assert [i["metadata"] for i in page["items"]] == [i["metadata"] for i in full["items"]]
    # No specs on the wire (sizes would depend on managedFields, which every write grows).
    assert all(set(item) == {"kind", "apiVersion", "metadata"} for item in page["items"])
    assert all("spec" in item for item in full["items"])


def test_a_watch_carries_partial_objects(server: LocalAPIServer, transport: Transport,
                                         namespace: str) -> None:
    client = ResourceClient(transport, PODS.as_metadata())
    page = client.list(namespace)
    events = client.watch(namespace, resource_version=page["metadata"]["resourceVersion"],
                          allow_bookmarks=False, timeout_seconds=5)
    with RawClient(server.url) as raw:
        raw.patch(f"/api/v1/namespaces/{namespace}/pods/p1", {"metadata": {"labels": {
            "app": "db"}}})
    try:
        event = next(iter(events))
    finally:
        events.close()
    assert event["type"] == "MODIFIED"
    assert event["object"] == metadata_of(PODS, event["object"])
    assert (event["object"]["kind"], event["object"]["metadata"]["labels"]) == (
        "Pod", {"app": "db"})


# the informers ---------------------------------------------------------------------------------
def test_a_metadata_only_informer_caches_metadata_under_the_real_kind(
        transport: Transport, server: LocalAPIServer, namespace: str) -> None:
    factory = InformerFactory(transport)
    meta_pods, whole_pods = PODS.as_metadata(), PODS
    assert meta_pods != whole_pods and meta_pods.metadata_only
    partial = factory.informer(meta_pods, namespace=namespace)
    whole = factory.informer(whole_pods, namespace=namespace)
    assert partial is not whole  # two caches: two keys
    factory.start()
    try:
        assert factory.wait_for_sync(10)
        cached = partial.store.get_by_name("p0", namespace)
        assert cached is not None and set(cached) == {"apiVersion", "kind", "metadata"}
        assert (cached["apiVersion"], cached["kind"]) == ("v1", "Pod")
        assert "managedFields" not in cached["metadata"]  # the default transform still runs
        assert whole.store.get_by_name("p0", namespace)["spec"]["containers"]  # type: ignore
        seen: list[Obj] = []
        partial.add_handler(_Recorder(seen))
        with RawClient(server.url) as raw:
            raw.patch(f"/api/v1/namespaces/{namespace}/pods/p2",
                      {"metadata": {"labels": {"app": "db"}}})
        eventually(lambda: any(o["metadata"]["labels"] == {"app": "db"} for o in seen),
                   timeout=10, message="the label change never reached the handler")
    finally:
        factory.stop()


class _Recorder:
    def __init__(self, seen: list[Obj]) -> None:
        self.seen = seen

    def on_add(self, obj: Obj) -> None:
        self.seen.append(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self.seen.append(new)

    def on_delete(self, obj: Any) -> None:
        pass


def test_a_transform_shapes_what_a_resource_caches(transport: Transport,
                                                   namespace: str) -> None:
    def names_only(obj: Obj) -> Obj:
        slim = strip_managed_fields(obj)
        slim.pop("spec", None)
        slim["metadata"].pop("annotations", None)
        return slim

    factory = InformerFactory(transport)
    factory.set_transform(PODS, names_only)
    informer = factory.informer(PODS, namespace=namespace)
    with pytest.raises(ValueError, match="set its transform before its first informer"):
        factory.set_transform(PODS, None)
    factory.start()
    try:
        assert factory.wait_for_sync(10)
        cached = informer.store.get_by_name("p0", namespace)
        assert cached is not None and "spec" not in cached
        assert "annotations" not in cached["metadata"] and cached["metadata"]["labels"]
    finally:
        factory.stop()


def watchers(server: LocalAPIServer) -> int:
    return server.call(lambda cluster: len(cluster.store.subscribers("pods")))


def test_an_informer_nobody_uses_can_be_removed(transport: Transport, server: LocalAPIServer,
                                                namespace: str) -> None:
    factory = InformerFactory(transport)
    informer: SharedInformer = factory.informer(PODS, namespace=namespace)
    joined = factory.informer_across(PODS, [namespace, "default"])
    factory.start()
    try:
        assert factory.wait_for_sync(10)
        eventually(lambda: watchers(server) == 2, timeout=10, message="two watches")
        registration = informer.add_handler(_Recorder([]))
        with pytest.raises(ValueError, match="still has 1 handler"):
            factory.remove(PODS, namespace=namespace)
        informer.remove_handler(registration)
        assert informer.handler_count == 0 and registration.thread is not None
        assert not registration.thread.is_alive()
        assert factory.remove(PODS, namespace=namespace) is True
        assert factory.remove(PODS, namespace=namespace) is False  # gone already
        eventually(lambda: watchers(server) == 1, timeout=10,
                   message="the removed informer's watch is still open")
        assert factory.informer_across(PODS, [namespace, "default"]) is not joined
        again = factory.informer(PODS, namespace=namespace)  # built anew, started at once
        assert again is not informer and again.wait_for_sync(10)
        assert len(again.store) == 3
    finally:
        factory.stop()


def test_metadata_only_is_part_of_the_resources_identity() -> None:
    pods = Resource("", "v1", "pods", "Pod")
    assert pods == PODS and hash(pods) == hash(PODS)
    assert pods.as_metadata() == PODS.as_metadata() != PODS
    assert pods.as_metadata().path("ns", "p") == PODS.path("ns", "p")


def test_a_controller_owns_children_it_caches_as_metadata_only() -> None:
    """Secrets are large and sensitive: a controller that only needs to know its children
    exist and who owns them caches their metadata, never their data."""
    from ambient_ctrl import Manager, ManagerOptions, Request, Result
    from informers.resource import CONFIGMAPS, SECRETS

    seen: list[Request] = []

    class Counter:
        def reconcile(self, request: Request) -> Result:
            seen.append(request)
            return Result()

    with LocalAPIServer() as api:
        manager = Manager(kubeconfig=api.kubeconfig, options=ManagerOptions(
            metrics_address="0", probe_address="0", graceful_shutdown_timeout=5))
        manager.builder("owner").for_(CONFIGMAPS).owns(SECRETS.as_metadata()).complete(
            Counter())
        runner = threading.Thread(target=manager.run)
        runner.start()
        try:
            cm = manager.client.create(CONFIGMAPS, {"metadata": {"name": "cm",
                                                                 "namespace": "default"}})
            eventually(lambda: Request("default", "cm") in seen, timeout=10)
            owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "controller": True,
                     "uid": cm["metadata"]["uid"]}
            before = len(seen)
            manager.client.create(SECRETS, {"metadata": {"name": "child", "namespace": "default",
                                                         "ownerReferences": [owner]},
                                            "stringData": {"token": "s3cret"}})
            eventually(lambda: len(seen) > before, timeout=10,
                       message="the owner was not reconciled for its new child")
            cached = manager.client.get(SECRETS.as_metadata(), "child", "default")
            assert cached is not None and set(cached) == {"apiVersion", "kind", "metadata"}
            assert cached["metadata"]["ownerReferences"][0]["uid"] == cm["metadata"]["uid"]
        finally:
            manager.stop()
            runner.join(30)
