"""CRD conversion by webhook (``spec.conversion.strategy: Webhook``) in the local API server,
against real peers: the ambient_ctrl manager's webhook server (its ``/convert``, its
development CA) installed with ``ambient_ctrl.webhook.configuration``; real kubectl; the
official Python client. Objects are stored at the storage version, every read, write and watch
of another version goes through the webhook, kube's checks of the answer hold (500 with
kube's message), and strategy None is unchanged. The review building and answer checking are
tested as the pure functions they are."""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ambient_ctrl.testing import eventually
from ambient_ctrl.webhook import (
    HubAndSpoke,
    Webhooks,
    WebhookServer,
    WebhookServerOptions,
    inject_ca_bundle,
    install,
)
from envtest import LocalAPIServer
from envtest.kinds.registry import WebhookConversion
from envtest.webhooks.conversion import ConversionFailed, converted_objects, review_request
from informers.resource import Resource
from informers.rest import ResourceClient, Transport, load_configuration
from tests.conftest import RawClient, run_kubectl, typed_client
from tests.envtest.webhook_backend import WebhookBackend

GROUP = "conv.example.com"
THINGS = Resource(GROUP, "v1", "things", "Thing")
V1, V2 = f"{GROUP}/v1", f"{GROUP}/v2"


def v1_to_v2(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    if "size" in spec:
        spec["replicas"] = spec.pop("size")
    return obj


def v2_to_v1(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    if "replicas" in spec:
        spec["size"] = spec.pop("replicas")
    return obj


CONVERTER = HubAndSpoke("v1", to_hub={"v2": v2_to_v1}, from_hub={"v2": v1_to_v2})
"""v1 (the storage version) says ``spec.size``, v2 ``spec.replicas``."""


def crd(plural: str, kind: str, *, conversion: dict[str, Any] | None = None) -> dict[str, Any]:
    def version(name: str, field: str) -> dict[str, Any]:
        return {"name": name, "served": True, "storage": name == "v1",
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {field: {"type": "integer"}}}}}},
                "additionalPrinterColumns": [{"name": field.title(), "type": "integer",
                                              "jsonPath": f".spec.{field}"}]}

    spec: dict[str, Any] = {"group": GROUP, "scope": "Namespaced",
                            "names": {"plural": plural, "kind": kind},
                            "versions": [version("v1", "size"), version("v2", "replicas")]}
    if conversion is not None:
        spec["conversion"] = conversion
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GROUP}"}, "spec": spec}


@pytest.fixture(scope="module")
def converter() -> Iterator[WebhookServer]:
    webhooks = Webhooks()
    webhooks.add_conversion(THINGS, CONVERTER)
    with WebhookServer(webhooks, WebhookServerOptions(address="127.0.0.1:0")) as server:
        yield server


@pytest.fixture(scope="module")
def things(api: LocalAPIServer, converter: WebhookServer) -> str:
    """The things CRD, its conversion pointed at the manager's webhook server by ``install``,
    its caBundle written by ``inject_ca_bundle`` (the development CA)."""
    transport = Transport(load_configuration(api.kubeconfig))
    try:
        ResourceClient(transport, Resource("apiextensions.k8s.io", "v1",
                                           "customresourcedefinitions",
                                           "CustomResourceDefinition", namespaced=False)
                       ).create(crd("things", "Thing"))
        webhooks = Webhooks()
        webhooks.add_conversion(THINGS, CONVERTER)
        install(transport, webhooks, converter.url, ca_bundle=None)
        assert converter.ca_bundle is not None
        assert inject_ca_bundle(transport, converter.ca_bundle, crds=[f"things.{GROUP}"]) == 1
    finally:
        transport.close()
    return f"things.{GROUP}"


@pytest.fixture(scope="module")
def backend() -> Iterator[WebhookBackend]:
    """A webhook of the tests' own, for answers no correct webhook gives."""
    with WebhookBackend() as server:
        yield server


def review_answer(review: dict[str, Any], **response: Any) -> tuple[int, bytes]:
    body = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": review["request"]["uid"],
                         "result": {"status": "Success"}, **response}}
    return 200, orjson.dumps(body)


def converting(review: dict[str, Any]) -> tuple[int, bytes]:
    """A correct conversion (by the same converter) answered by the tests' backend."""
    desired = review["request"]["desiredAPIVersion"]
    return review_answer(review, convertedObjects=[
        CONVERTER(obj, desired) for obj in review["request"]["objects"]])


@pytest.fixture(scope="module")
def gizmos(api: LocalAPIServer, backend: WebhookBackend) -> str:
    """A CRD converting through the tests' backend (``/convert-gizmos``)."""
    backend.routes["/convert-gizmos"] = converting
    with RawClient(api.url) as raw:
        status, body = raw.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                crd("gizmos", "Gizmo", conversion={
                                    "strategy": "Webhook", "webhook": {
                                        "conversionReviewVersions": ["v1"],
                                        "clientConfig": backend.config("/convert-gizmos")}}))
    assert status == 201, body
    return f"gizmos.{GROUP}"


@contextlib.contextmanager
def answering(backend: WebhookBackend, reply: Any) -> Iterator[None]:
    """The gizmos' webhook answers with ``reply`` within the block."""
    backend.routes["/convert-gizmos"] = reply
    try:
        yield
    finally:
        backend.routes["/convert-gizmos"] = converting


def kubectl(api: LocalAPIServer, tmp_path: Path, *args: str,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_kubectl(api.kubeconfig, tmp_path / "cache", *args, stdin=stdin)


def path(version: str, namespace: str, plural: str = "things", name: str = "") -> str:
    base = f"/apis/{GROUP}/{version}/namespaces/{namespace}/{plural}"
    return f"{base}/{name}" if name else base


def thing(version: str, name: str, count: int, kind: str = "Thing") -> dict[str, Any]:
    field = "size" if version == "v1" else "replicas"
    return {"apiVersion": f"{GROUP}/{version}", "kind": kind, "metadata": {"name": name},
            "spec": {field: count}}


# -- through kubectl and the official client --------------------------------------------------
def test_created_in_v2_stored_in_v1_read_in_both(api: LocalAPIServer, things: str,
                                                  client: RawClient, namespace: str,
                                                  tmp_path: Path) -> None:
    done = kubectl(api, tmp_path, "create", "-n", namespace, "-f", "-",
                   stdin=orjson.dumps(thing("v2", "a", 3)).decode())
    assert done.returncode == 0, done.stderr
    done = kubectl(api, tmp_path, "get", "-n", namespace, f"things.v1.{GROUP}", "a",
                   "-o", "json")
    assert done.returncode == 0, done.stderr
    as_v1 = orjson.loads(done.stdout)
    assert (as_v1["apiVersion"], as_v1["spec"]) == (V1, {"size": 3})
    done = kubectl(api, tmp_path, "get", "-n", namespace, f"things.v2.{GROUP}", "a",
                   "-o", "json")
    as_v2 = orjson.loads(done.stdout)
    assert (as_v2["apiVersion"], as_v2["spec"]) == (V2, {"replicas": 3})
    assert as_v2["metadata"] == as_v1["metadata"]
    stored = api.cluster.store.get(things, (namespace, "a"))
    assert stored is not None and orjson.loads(stored.raw)["spec"] == {"size": 3}
    # kubectl's table: the v2 printer column reads the converted object.
    done = kubectl(api, tmp_path, "get", "-n", namespace, f"things.v2.{GROUP}")
    assert done.stdout.split("\n")[1].split()[:2] == ["a", "3"], done.stdout


def test_writes_in_v2_patch_apply_and_update(api: LocalAPIServer, things: str,
                                             client: RawClient, namespace: str,
                                             tmp_path: Path) -> None:
    assert client.post(path("v1", namespace), thing("v1", "b", 1))[0] == 201
    status, body = client.patch(path("v2", namespace, name="b"), {"spec": {"replicas": 2}})
    assert status == 200, body
    assert (body["apiVersion"], body["spec"]) == (V2, {"replicas": 2})
    applied = thing("v2", "b", 5)
    done = kubectl(api, tmp_path, "apply", "--server-side", "--field-manager", "t", "-n",
                   namespace, "-f", "-", stdin=orjson.dumps(applied).decode())
    assert done.returncode == 0, done.stderr
    status, body = client.get(path("v2", namespace, name="b"))
    assert body["spec"] == {"replicas": 5}
    status, body = client.put(path("v2", namespace, name="b"), {**thing("v2", "b", 7),
                              "metadata": {"name": "b", "resourceVersion":
                                           body["metadata"]["resourceVersion"]}})
    assert status == 200 and body["spec"] == {"replicas": 7}, body
    assert client.get(path("v1", namespace, name="b"))[1]["spec"] == {"size": 7}
    stale = {**thing("v2", "b", 8), "metadata": {"name": "b", "resourceVersion": "1"}}
    assert client.put(path("v2", namespace, name="b"), stale)[0] == 409
    status, body = client.delete(path("v2", namespace, name="b"))
    assert status == 200, body


def test_lists_of_both_versions(api: LocalAPIServer, things: str, client: RawClient,
                                namespace: str, tmp_path: Path) -> None:
    for i in range(3):
        assert client.post(path("v1", namespace), thing("v1", f"l{i}", i))[0] == 201
    done = kubectl(api, tmp_path, "get", "-n", namespace, f"things.v2.{GROUP}", "-o", "json")
    assert done.returncode == 0, done.stderr
    items = orjson.loads(done.stdout)["items"]
    assert [(o["apiVersion"], o["spec"]) for o in items] == [
        (V2, {"replicas": i}) for i in range(3)]
    status, body = client.get(path("v1", namespace))
    assert status == 200, body
    assert [o["spec"] for o in body["items"]] == [{"size": i} for i in range(3)]


def test_the_official_client_watches_v2_while_v1_is_written(
        api: LocalAPIServer, things: str, client: RawClient, namespace: str) -> None:
    from kubernetes import client as k8s
    from kubernetes import config, watch

    status, body = client.get(path("v1", namespace))
    assert status == 200, body
    since = body["metadata"]["resourceVersion"]
    assert client.post(path("v1", namespace), thing("v1", "w", 1))[0] == 201
    assert client.patch(path("v1", namespace, name="w"), {"spec": {"size": 4}})[0] == 200
    configuration = k8s.Configuration()
    config.load_kube_config(config_file=api.kubeconfig, client_configuration=configuration)
    with typed_client(configuration) as api_client:
        objects = k8s.CustomObjectsApi(api_client)
        got = objects.get_namespaced_custom_object(GROUP, "v2", namespace, "things", "w")
        assert got["spec"] == {"replicas": 4}
        seen = [(e["type"], e["object"]["apiVersion"], e["object"]["spec"])
                for e in watch.Watch().stream(
                    objects.list_namespaced_custom_object, GROUP, "v2", namespace, "things",
                    resource_version=since, timeout_seconds=1)]
    assert seen == [("ADDED", V2, {"replicas": 1}), ("MODIFIED", V2, {"replicas": 4})]


def test_a_live_watch_of_v2_gets_each_v1_write_converted_in_order(
        things: str, client: RawClient, namespace: str) -> None:
    with client.watch(path("v2", namespace) + "?watch=1") as stream:
        for i in range(5):
            assert client.post(path("v1", namespace), thing("v1", f"e{i}", i))[0] == 201
        events = stream.take(5)
    assert [(e["type"], e["object"]["metadata"]["name"], e["object"]["spec"])
            for e in events] == [("ADDED", f"e{i}", {"replicas": i}) for i in range(5)]


def test_a_watch_of_v2_sees_writes_made_in_v2(things: str, client: RawClient,
                                               namespace: str) -> None:
    with client.watch(path("v2", namespace) + "?watch=1") as stream:
        assert client.post(path("v2", namespace), thing("v2", "v", 1))[0] == 201
        assert client.patch(path("v2", namespace, name="v"), {"spec": {"replicas": 2}})[0] == 200
        events = stream.take(2)
    assert [(e["type"], e["object"]["apiVersion"], e["object"]["spec"]) for e in events] == [
        ("ADDED", V2, {"replicas": 1}), ("MODIFIED", V2, {"replicas": 2})]


def test_objects_left_at_an_old_storage_version_are_converted_when_written(
        backend: WebhookBackend, client: RawClient, namespace: str) -> None:
    backend.routes["/convert-moves"] = converting
    body = crd("moves", "Move", conversion={"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1"], "clientConfig": backend.config("/convert-moves")}})
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    status, created = client.post(crds, body)
    assert status == 201, created
    assert client.post(path("v1", namespace, "moves"), thing("v1", "o", 1, "Move"))[0] == 201
    for version in created["spec"]["versions"]:  # the storage version moves to v2
        version["storage"] = version["name"] == "v2"
    status, updated = client.put(f"{crds}/moves.{GROUP}", created)
    assert status == 200, updated
    status, got = client.get(path("v2", namespace, "moves", "o"))
    assert (status, got["spec"]) == (200, {"replicas": 1})
    status, got = client.patch(path("v2", namespace, "moves", "o"), {"spec": {"replicas": 2}})
    assert (status, got["apiVersion"], got["spec"]) == (200, V2, {"replicas": 2}), got
    status, got = client.get(path("v1", namespace, "moves", "o"))
    assert got["spec"] == {"size": 2}
    reviews = backend.received("/convert-moves")
    assert [r["request"]["desiredAPIVersion"] for r in reviews] == [V2, V2, V1]


def test_a_watch_list_of_v2_sends_converted_objects_then_its_bookmark(
        things: str, client: RawClient, namespace: str) -> None:
    for i in range(3):
        assert client.post(path("v1", namespace), thing("v1", f"i{i}", i))[0] == 201
    query = ("?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
             "&resourceVersionMatch=NotOlderThan")
    with client.watch(path("v2", namespace) + query) as stream:
        events = stream.take(4)
    assert [(e["type"], e["object"]["spec"]) for e in events[:3]] == [
        ("ADDED", {"replicas": i}) for i in range(3)]
    assert events[3]["type"] == "BOOKMARK"
    assert events[3]["object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"}
    assert int(events[3]["object"]["metadata"]["resourceVersion"]) >= max(
        int(e["object"]["metadata"]["resourceVersion"]) for e in events[:3])


def test_dry_run_in_v2_stores_nothing(things: str, client: RawClient, namespace: str) -> None:
    status, body = client.post(path("v2", namespace) + "?dryRun=All", thing("v2", "d", 6))
    assert status == 201 and (body["apiVersion"], body["spec"]) == (V2, {"replicas": 6}), body
    assert client.get(path("v2", namespace, name="d"))[0] == 404


def test_a_slow_webhook_holds_up_only_its_own_request(api: LocalAPIServer, client: RawClient,
                                                      namespace: str) -> None:
    with WebhookBackend({"/convert": converting}, delay=2.0) as slow:
        body = crd("slows", "Slow", conversion={"strategy": "Webhook", "webhook": {
            "conversionReviewVersions": ["v1"], "clientConfig": slow.config("/convert")}})
        assert client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                           body)[0] == 201
        assert client.post(path("v1", namespace, "slows"), thing("v1", "s", 1, "Slow"))[0] == 201
        answers: list[tuple[int, Any]] = []
        with RawClient(api.url) as other:
            reader = threading.Thread(target=lambda: answers.append(
                other.get(path("v2", namespace, "slows", "s"))))
            reader.start()
            eventually(lambda: slow.received("/convert"))  # the call is in flight
            assert client.get(f"/api/v1/namespaces/{namespace}")[0] == 200
            assert client.get(path("v1", namespace, "slows", "s"))[0] == 200
            assert reader.is_alive() and not answers
            reader.join(30)
    assert answers[0][0] == 200 and answers[0][1]["spec"] == {"replicas": 1}


# -- failures ---------------------------------------------------------------------------------
def test_a_webhook_that_is_down_fails_with_kubes_message(api: LocalAPIServer, client: RawClient,
                                                         namespace: str, tmp_path: Path) -> None:
    backend = WebhookBackend().start()
    url = backend.url
    backend.stop()  # nothing listens there any more
    body = crd("widgets", "Widget", conversion={"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1"], "clientConfig": {"url": url + "/convert"}}})
    assert client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                       body)[0] == 201
    assert client.post(path("v1", namespace, "widgets"), thing("v1", "x", 1, "Widget"))[0] == 201
    status, body = client.get(path("v2", namespace, "widgets", "x"))
    assert status == 500
    assert body["message"].startswith(
        f'conversion webhook for {V1}, Kind=Widget failed: Post "{url}/convert?timeout=30s": ')
    assert "reason" not in body
    done = kubectl(api, tmp_path, "get", "-n", namespace, f"widgets.v2.{GROUP}")
    assert done.returncode == 1
    assert f"Error from server: conversion webhook for {V1}, Kind=Widget failed" in done.stderr
    # The storage version needs no webhook.
    assert client.get(path("v1", namespace, "widgets", "x"))[0] == 200
    status, body = client.post(path("v2", namespace, "widgets"), thing("v2", "y", 1, "Widget"))
    assert status == 500 and f"for {V2}, Kind=Widget failed" in body["message"]
    assert client.get(path("v1", namespace, "widgets", "y"))[0] == 404


@pytest.mark.parametrize(("reply", "message"), [
    (lambda review: review_answer(review, convertedObjects=[]),
     f"conversion webhook for {V1}, Kind=Gizmo returned 0 objects, expected 1"),
    (lambda review: review_answer(review, convertedObjects=[
        {**CONVERTER(o, V2), "metadata": {**o["metadata"], "uid": "other"}}
        for o in review["request"]["objects"]]),
     f"conversion webhook for {V1}, Kind=Gizmo returned invalid object: must have the same "
     "UID: "),
    (lambda review: review_answer(review, result={"status": "Failure", "message": "no way"}),
     "conversion webhook for conv.example.com/v1, Kind=Gizmo failed: no way"),
    (lambda review: review_answer(review, convertedObjects=review["request"]["objects"]),
     f"conversion webhook for {V1}, Kind=Gizmo returned invalid object at index 0: invalid "
     f"groupVersion (expected {V2}, received {V1})"),
    (lambda review: (200, orjson.dumps({"apiVersion": "apiextensions.k8s.io/v1",
                                        "kind": "ConversionReview",
                                        "response": {"uid": "not-it"}})),
     f'conversion webhook for {V1}, Kind=Gizmo failed: expected response.uid="'),
])
def test_a_wrong_answer_is_a_500(gizmos: str, backend: WebhookBackend, client: RawClient,
                                 namespace: str, reply: Any, message: str) -> None:
    assert client.post(path("v1", namespace, "gizmos"), thing("v1", "g", 1, "Gizmo"))[0] == 201
    with answering(backend, reply):
        status, body = client.get(path("v2", namespace, "gizmos", "g"))
    assert status == 500, body
    assert body["message"].startswith(message), body["message"]


def test_a_write_in_v2_is_validated_by_v2s_schema_before_any_call(
        gizmos: str, backend: WebhookBackend, client: RawClient, namespace: str) -> None:
    before = len(backend.received("/convert-gizmos"))
    bad = {**thing("v2", "bad", 1, "Gizmo"), "spec": {"replicas": "many"}}
    status, body = client.post(path("v2", namespace, "gizmos"), bad)
    assert status == 422, body
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.replicas"]
    assert len(backend.received("/convert-gizmos")) == before


def test_metadata_changes_but_labels_and_annotations_are_undone_and_fields_pruned(
        gizmos: str, backend: WebhookBackend, client: RawClient, namespace: str) -> None:
    assert client.post(path("v1", namespace, "gizmos"), thing("v1", "m", 1, "Gizmo"))[0] == 201

    def meddling(review: dict[str, Any]) -> tuple[int, bytes]:
        out = []
        for obj in review["request"]["objects"]:
            obj = CONVERTER(obj, review["request"]["desiredAPIVersion"])
            obj["metadata"].update(labels={"added": "yes"}, finalizers=["sneaky"],
                                   generation=99)
            obj["spec"]["undeclared"] = True  # pruned by v2's schema
            out.append(obj)
        return review_answer(review, convertedObjects=out)

    with answering(backend, meddling):
        status, body = client.get(path("v2", namespace, "gizmos", "m"))
    assert status == 200, body
    assert body["metadata"]["labels"] == {"added": "yes"}
    assert "finalizers" not in body["metadata"] and body["metadata"]["generation"] == 1
    assert body["spec"] == {"replicas": 1}


def test_one_review_per_list_and_none_for_the_storage_version(
        gizmos: str, backend: WebhookBackend, client: RawClient, namespace: str) -> None:
    for i in range(3):
        assert client.post(path("v1", namespace, "gizmos"),
                           thing("v1", f"n{i}", i, "Gizmo"))[0] == 201
    before = len(backend.received("/convert-gizmos"))
    assert client.get(path("v1", namespace, "gizmos"))[0] == 200
    assert len(backend.received("/convert-gizmos")) == before
    status, body = client.get(path("v2", namespace, "gizmos"))
    assert status == 200, body
    assert [o["spec"] for o in body["items"]] == [{"replicas": i} for i in range(3)]
    [review] = backend.received("/convert-gizmos")[before:]
    assert review["apiVersion"] == "apiextensions.k8s.io/v1"
    assert review["request"]["desiredAPIVersion"] == V2
    assert [o["metadata"]["name"] for o in review["request"]["objects"]] == ["n0", "n1", "n2"]


def test_a_watch_converts_event_by_event_as_kube_does(
        gizmos: str, backend: WebhookBackend, client: RawClient, namespace: str) -> None:
    for i in range(3):
        assert client.post(path("v1", namespace, "gizmos"),
                           thing("v1", f"b{i}", i, "Gizmo"))[0] == 201
    before = len(backend.received("/convert-gizmos"))
    query = ("?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
             "&resourceVersionMatch=NotOlderThan")
    with client.watch(path("v2", namespace, "gizmos") + query) as stream:
        events = stream.take(4)
    assert [e["object"].get("spec") for e in events] == [
        {"replicas": 0}, {"replicas": 1}, {"replicas": 2}, None]
    reviews = backend.received("/convert-gizmos")[before:]
    assert [[o["metadata"]["name"] for o in r["request"]["objects"]] for r in reviews] == [
        ["b0"], ["b1"], ["b2"]]


def test_a_watch_whose_conversion_fails_ends_with_an_error_event(
        gizmos: str, backend: WebhookBackend, client: RawClient, namespace: str) -> None:
    failing = lambda review: review_answer(  # noqa: E731
        review, result={"status": "Failure", "message": "broken"})
    with answering(backend, failing), client.watch(path("v2", namespace, "gizmos")
                                                   + "?watch=1") as stream:
        assert client.post(path("v1", namespace, "gizmos"),
                           thing("v1", "f", 1, "Gizmo"))[0] == 201
        event = stream.next()
        assert stream.next() is None  # the stream ended
    assert event is not None and event["type"] == "ERROR"
    assert event["object"]["code"] == 500
    assert event["object"]["message"] == f"conversion webhook for {V1}, Kind=Gizmo failed: broken"


def test_strategy_none_is_unchanged(client: RawClient, namespace: str) -> None:
    assert client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                       crd("plains", "Plain"))[0] == 201
    assert client.post(path("v2", namespace, "plains"), thing("v2", "p", 2, "Plain"))[0] == 201
    status, body = client.get(path("v1", namespace, "plains", "p"))
    assert status == 200, body
    assert (body["apiVersion"], body["spec"]) == (V1, {"replicas": 2})


@pytest.mark.parametrize(("conversion", "field", "message"), [
    ({"strategy": "Magic"}, "spec.conversion.strategy",
     'Unsupported value: "Magic": supported values: "None", "Webhook"'),
    ({"strategy": "Webhook"}, "spec.conversion.webhookClientConfig",
     "Required value: required when strategy is set to Webhook"),
    ({"strategy": "Webhook", "webhook": {"clientConfig": {"url": "https://h/c"}}},
     "spec.conversion.conversionReviewVersions", "Required value"),
    ({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
                                         "clientConfig": {"url": "http://h/c"}}},
     "spec.conversion.webhookClientConfig.url",
     "Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: "
     "https://host[/path]"),
    ({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {
        "url": "https://h/c", "service": {"name": "s", "namespace": "n"}}}},
     "spec.conversion.webhookClientConfig",
     "Required value: exactly one of url or service is required"),
    ({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v3"],
                                         "clientConfig": {"url": "https://h/c"}}},
     "spec.conversion.conversionReviewVersions",
     'Invalid value: []string{"v3"}: must include at least one of v1, v1beta1'),
    ({"strategy": "None", "webhook": {"conversionReviewVersions": ["v1"]}},
     "spec.conversion.conversionReviewVersions",
     "Forbidden: should not be set when strategy is not set to Webhook"),
    ({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {
        "service": {"name": "s", "namespace": "n", "port": 0, "path": "/Convert"}}}},
     "spec.conversion.webhookClientConfig.service.port",
     "Invalid value: 0: port is not valid: must be between 1 and 65535, inclusive"),
    # kube passes (name, namespace) to a function declared (namespace, name): a missing name
    # is reported as the namespace (kubernetes#141353).
    ({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {
        "service": {"namespace": "n"}}}},
     "spec.conversion.webhookClientConfig.service.namespace", "Required value"),
    ({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": {
        "service": {"name": "s", "namespace": "n", "path": "convert"}}}},
     "spec.conversion.webhookClientConfig.service.path",
     "Invalid value: \"convert\": must start with a '/'"),
])
def test_conversion_validation(client: RawClient, conversion: dict[str, Any], field: str,
                               message: str) -> None:
    status, body = client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                               crd("invalids", "Invalid", conversion=conversion))
    assert status == 422, body
    assert {"reason": body["details"]["causes"][0]["reason"], "field": field,
            "message": message} in body["details"]["causes"]


# -- the pure functions -----------------------------------------------------------------------
HOOK = WebhookConversion({"url": "https://h/c"}, ("v1beta1", "v1"), "things.conv.example.com")


def test_the_review_uses_the_first_version_the_server_knows() -> None:
    obj = thing("v1", "a", 1)
    review = review_request(HOOK, "u-1", V2, [obj])
    assert review == {"kind": "ConversionReview", "apiVersion": "apiextensions.k8s.io/v1beta1",
                      "request": {"uid": "u-1", "desiredAPIVersion": V2, "objects": [obj]}}
    assert review_request(WebhookConversion({}, ("v9", "v1"), "x"), "u", V2, [obj])[
        "apiVersion"] == "apiextensions.k8s.io/v1"


def sent(name: str = "a") -> dict[str, Any]:
    obj = thing("v1", name, 1)
    obj["metadata"].update(uid=f"uid-{name}", namespace="ns", resourceVersion="7",
                           labels={"l": "1"})
    return obj


def answer(objects: list[Any], uid: str = "u", version: str = "v1") -> dict[str, Any]:
    return {"apiVersion": f"apiextensions.k8s.io/{version}", "kind": "ConversionReview",
            "response": {"uid": uid, "result": {"status": "Success"},
                         "convertedObjects": objects}}


def check(review: Any, objects: list[dict[str, Any]], *, listing: bool = False,
          version: str = "v1") -> list[dict[str, Any]]:
    return converted_objects(review, uid="u", sent=objects, desired=V2,
                             source=f"{V1}, Kind=Thing", listing=listing,
                             review_version=version)


def test_metadata_is_restored_but_labels_and_annotations_kept() -> None:
    out = CONVERTER(sent(), V2)
    out["metadata"] = {"name": "a", "namespace": "ns", "uid": "uid-a",
                       "annotations": {"a": "b"}}
    [got] = check(answer([out]), [sent()])
    assert got["metadata"] == {"name": "a", "namespace": "ns", "uid": "uid-a",
                               "resourceVersion": "7", "annotations": {"a": "b"}}
    assert got["spec"] == {"replicas": 1}


@pytest.mark.parametrize(("review", "listing", "message"), [
    ({"apiVersion": "v1", "kind": "Status"}, False,
     "conversion webhook for conv.example.com/v1, Kind=Thing failed: expected webhook response "
     "of apiextensions.k8s.io/v1, Kind=ConversionReview, got /v1, Kind=Status"),
    ({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"}, False,
     "failed: no response provided"),
    (answer([], uid="other"), False, 'failed: expected response.uid="u", got "other"'),
    ({**answer([]), "response": {"uid": "u", "result": {"status": "Failure"}}}, False,
     "failed: response.result.status was 'Failure', not 'Success'"),
    (answer([CONVERTER(sent("a"), V2)]), True, "returned 1 objects, expected 2"),
    (answer([CONVERTER(sent("a"), V2), {**CONVERTER(sent("b"), V2), "kind": "Other"}]), True,
     "returned invalid converted object at index 2: invalid kind (expected Thing, received "
     "Other)"),
    (answer([CONVERTER(sent("a"), V2), CONVERTER(sent("a"), V2)]), True,
     "returned invalid converted object at index 2: must have the same name: b != a"),
    (answer([CONVERTER(sent("a"), V2), {**CONVERTER(sent("b"), V2), "metadata": {
        "name": "b", "namespace": "ns", "uid": "uid-b", "labels": {"bad key!": "x"}}}]), True,
     "returned invalid metadata in object at index 2: metadata.labels: "),
])
def test_answers_kube_refuses(review: Any, listing: bool, message: str) -> None:
    objects = [sent("a"), sent("b")] if listing else [sent("a")]
    with pytest.raises(ConversionFailed) as failed:
        check(review, objects, listing=listing)
    assert message in str(failed.value)


def test_v1beta1_answers_are_not_checked_for_kind_or_uid() -> None:
    review = {"response": {"uid": "whatever", "result": {"status": "Success"},
                           "convertedObjects": [CONVERTER(sent(), V2)]}}
    [got] = check(review, [sent()], version="v1beta1")
    assert got["spec"] == {"replicas": 1}
