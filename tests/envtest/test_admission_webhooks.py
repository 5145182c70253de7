"""The local API server calls admission webhooks as kube-apiserver does, seen through real
clients: kubectl (the venv's), the official Python client and the raw HTTP client; the webhooks
are a real ambient_ctrl manager's webhook server (its configurations installed with
``ambient_ctrl.webhook.configuration.install``, so the caBundle path is exercised) and, where a
webhook must misbehave, a small HTTPS server of the tests' own (:mod:`.webhook_backend`)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ambient_ctrl.webhook import (
    CREATE,
    DELETE,
    UPDATE,
    Allowed,
    Denied,
    WebhookOptions,
    Webhooks,
    WebhookServer,
    WebhookServerOptions,
    install,
)
from ambient_ctrl.webhook.configuration import configuration_names
from ambient_ctrl.webhook.registry import WebhookBuilder
from envtest import LocalAPIServer
from informers.resource import Resource
from informers.rest import Transport, load_configuration
from tests.conftest import RawClient, run_kubectl, typed_client
from tests.envtest.webhook_backend import WebhookBackend, allow, deny, json_patch

pytestmark = pytest.mark.kubectl

CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
VALIDATING = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
MUTATING = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
MANAGER_LABEL = {"admission-test": "manager"}
VALIDATOR = "vconfigmap-v1.core.k8s.io"


# the manager's webhooks ----------------------------------------------------------------------
def default_configmap(obj: dict[str, Any]) -> None:
    obj["metadata"].setdefault("labels", {})["defaulted-by"] = "ambient-ctrl"


def validate_configmap(obj: dict[str, Any] | None, old: dict[str, Any] | None) -> Any:
    if obj is None:  # DELETE: the object being deleted is the old one
        assert old is not None
        if (old["metadata"].get("labels") or {}).get("protected") == "true":
            raise Denied("a protected configmap cannot be deleted")
        return None
    data = obj.get("data") or {}
    if "forbidden" in data:
        raise Denied("data.forbidden is not allowed here")
    if "warn" in data:
        return Allowed(warnings=("data.warn is deprecated",))
    return None


@pytest.fixture(scope="module")
def manager(api: LocalAPIServer) -> Iterator[WebhookServer]:
    webhooks = Webhooks()
    options = WebhookOptions(operations=(CREATE, UPDATE, DELETE),
                             namespace_selector={"matchLabels": MANAGER_LABEL})
    (WebhookBuilder(webhooks, CONFIGMAPS)
     .defaulter(default_configmap, options).validator(validate_configmap, options))
    server = WebhookServer(webhooks, WebhookServerOptions(address="127.0.0.1:0")).start()
    transport = Transport(load_configuration(api.kubeconfig))
    try:
        install(transport, webhooks, server.url, ca_bundle=server.ca_bundle, name="manager")
        yield server
        with RawClient(api.url) as client:
            for path, name in zip((MUTATING, VALIDATING), configuration_names("manager"),
                                  strict=True):
                assert client.delete(f"{path}/{name}")[0] == 200
    finally:
        transport.close()
        server.stop()


# helpers -------------------------------------------------------------------------------------
def kubectl(api: LocalAPIServer, tmp_path: Path, *args: str,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_kubectl(api.kubeconfig, tmp_path / "kube-cache", *args, stdin=stdin)


def labelled_namespace(client: RawClient, name: str, labels: dict[str, str]) -> str:
    status, body = client.post("/api/v1/namespaces",
                               {"metadata": {"name": name, "labels": labels}})
    assert status == 201, body
    return name


@contextlib.contextmanager
def configured(client: RawClient, path: str, name: str,
               *webhooks: dict[str, Any]) -> Iterator[None]:
    """A webhook configuration that exists for the block."""
    status, body = client.post(path, {"metadata": {"name": name}, "webhooks": list(webhooks)})
    assert status == 201, body
    try:
        yield
    finally:
        assert client.delete(f"{path}/{name}")[0] == 200


def webhook(name: str, config: dict[str, Any], *, resources: tuple[str, ...] = ("configmaps",),
            operations: tuple[str, ...] = ("CREATE", "UPDATE"), group: str = "",
            **fields: Any) -> dict[str, Any]:
    return {"name": name, "clientConfig": config, "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "rules": [{"apiGroups": [group], "apiVersions": ["*"], "operations": list(operations),
                       "resources": list(resources)}], **fields}


@pytest.fixture()
def backend() -> Iterator[WebhookBackend]:
    with WebhookBackend() as server:
        yield server


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


# the manager's webhooks through kubectl --------------------------------------------------------
def test_a_mutating_webhooks_patch_lands_on_kubectl_create(
        api: LocalAPIServer, manager: WebhookServer, client: RawClient, tmp_path: Path) -> None:
    ns = labelled_namespace(client, "adm-mutate", MANAGER_LABEL)
    done = kubectl(api, tmp_path, "create", "configmap", "plain", "-n", ns,
                   "--from-literal=a=b")
    assert done.returncode == 0, done.stderr
    stored = client.get(f"/api/v1/namespaces/{ns}/configmaps/plain")[1]
    assert stored["metadata"]["labels"] == {"defaulted-by": "ambient-ctrl"}
    assert stored["data"] == {"a": "b"}


def test_a_validating_webhooks_denial_is_kubectls_error(
        api: LocalAPIServer, manager: WebhookServer, client: RawClient, tmp_path: Path) -> None:
    ns = labelled_namespace(client, "adm-deny", MANAGER_LABEL)
    done = kubectl(api, tmp_path, "create", "configmap", "bad", "-n", ns,
                   "--from-literal=forbidden=1")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f'error: failed to create configmap: admission webhook "{VALIDATOR}" denied the '
        "request: data.forbidden is not allowed here")
    status, body = client.post(f"/api/v1/namespaces/{ns}/configmaps",
                               configmap("raw", forbidden="1"))
    assert (status, body["reason"], body["code"]) == (403, "Forbidden", 403)
    assert client.get(f"/api/v1/namespaces/{ns}/configmaps/bad")[0] == 404


def test_warnings_reach_kubectl(api: LocalAPIServer, manager: WebhookServer,
                                client: RawClient, tmp_path: Path) -> None:
    ns = labelled_namespace(client, "adm-warn", MANAGER_LABEL)
    done = kubectl(api, tmp_path, "create", "configmap", "old", "-n", ns, "--from-literal=warn=1")
    assert done.returncode == 0, done.stderr
    assert "Warning: data.warn is deprecated" in done.stderr


def test_a_delete_webhook_sees_the_old_object(api: LocalAPIServer, manager: WebhookServer,
                                              client: RawClient, tmp_path: Path) -> None:
    ns = labelled_namespace(client, "adm-delete", MANAGER_LABEL)
    assert kubectl(api, tmp_path, "create", "configmap", "keep", "-n", ns).returncode == 0
    assert kubectl(api, tmp_path, "label", "configmap", "keep", "-n", ns,
                   "protected=true").returncode == 0
    done = kubectl(api, tmp_path, "delete", "configmap", "keep", "-n", ns)
    assert done.returncode == 1
    assert (f'admission webhook "{VALIDATOR}" denied the request: a protected configmap '
            "cannot be deleted") in done.stderr
    assert client.get(f"/api/v1/namespaces/{ns}/configmaps/keep")[0] == 200
    assert kubectl(api, tmp_path, "label", "configmap", "keep", "-n", ns,
                   "protected-").returncode == 0
    assert kubectl(api, tmp_path, "delete", "configmap", "keep", "-n", ns).returncode == 0


def test_the_namespace_selector_leaves_other_namespaces_alone(
        api: LocalAPIServer, manager: WebhookServer, client: RawClient, tmp_path: Path) -> None:
    ns = labelled_namespace(client, "adm-elsewhere", {"admission-test": "none"})
    done = kubectl(api, tmp_path, "create", "configmap", "free", "-n", ns,
                   "--from-literal=forbidden=1")
    assert done.returncode == 0, done.stderr
    stored = client.get(f"/api/v1/namespaces/{ns}/configmaps/free")[1]
    assert "labels" not in stored["metadata"]


def test_the_official_client_sees_the_denial(api: LocalAPIServer, manager: WebhookServer,
                                             client: RawClient) -> None:
    from kubernetes import client as k8s
    from kubernetes.client.rest import ApiException

    ns = labelled_namespace(client, "adm-typed", MANAGER_LABEL)
    with typed_client(load_configuration(api.kubeconfig)) as api_client:
        core = k8s.CoreV1Api(api_client)
        made = core.create_namespaced_config_map(ns, k8s.V1ConfigMap(
            metadata=k8s.V1ObjectMeta(name="typed"), data={"a": "b"}))
        assert made.metadata is not None
        assert made.metadata.labels == {"defaulted-by": "ambient-ctrl"}
        with pytest.raises(ApiException) as caught:
            core.patch_namespaced_config_map("typed", ns, {"data": {"forbidden": "x"}})
    assert caught.value.status == 403
    assert "data.forbidden is not allowed here" in str(caught.value.body)


# misbehaving webhooks ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_failure_policy_fail_and_ignore_with_the_webhook_down(
        api: LocalAPIServer, client: RawClient, tmp_path: Path) -> None:
    ns = labelled_namespace(client, "adm-down", {"adm": "down"})
    url = f"https://127.0.0.1:{free_port()}/validate"
    selector: dict[str, Any] = {"namespaceSelector": {"matchLabels": {"adm": "down"}}}
    with configured(client, VALIDATING, "down-fail",
                    webhook("down.fail.example.com", {"url": url}, **selector)):
        done = kubectl(api, tmp_path, "create", "configmap", "one", "-n", ns)
        assert done.returncode == 1
        assert done.stderr.strip() == (
            "error: failed to create configmap: Internal error occurred: failed calling "
            f'webhook "down.fail.example.com": failed to call webhook: Post "{url}?timeout=10s":'
            f" dial tcp {url[8:].split('/')[0]}: connect: connection refused")
    with configured(client, VALIDATING, "down-ignore",
                    webhook("down.ignore.example.com", {"url": url}, failurePolicy="Ignore",
                            **selector)):
        done = kubectl(api, tmp_path, "create", "configmap", "two", "-n", ns)
        assert done.returncode == 0, done.stderr


def test_a_slow_webhook_times_out_after_timeout_seconds(
        api: LocalAPIServer, client: RawClient, tmp_path: Path) -> None:
    ns = labelled_namespace(client, "adm-slow", {"adm": "slow"})
    with WebhookBackend({"/slow": allow()}, delay=10) as slow, configured(
            client, VALIDATING, "slow", webhook(
                "slow.example.com", slow.config("/slow"), timeoutSeconds=1,
                namespaceSelector={"matchLabels": {"adm": "slow"}})):
        done = kubectl(api, tmp_path, "create", "configmap", "late", "-n", ns)
    assert done.returncode == 1
    assert (f'failed calling webhook "slow.example.com": failed to call webhook: Post '
            f'"{slow.url}/slow?timeout=1s": context deadline exceeded') in done.stderr


def test_the_object_selector_chooses_on_new_or_old_labels(
        api: LocalAPIServer, client: RawClient, backend: WebhookBackend) -> None:
    backend.routes["/v"] = deny("labelled ones are checked")
    ns = labelled_namespace(client, "adm-objsel", {})
    base = f"/api/v1/namespaces/{ns}/configmaps"
    with configured(client, VALIDATING, "objsel", webhook(
            "objsel.example.com", backend.config("/v"), operations=("*",),
            objectSelector={"matchLabels": {"checked": "yes"}})):
        assert client.post(base, configmap("free"))[0] == 201
        status, body = client.post(base, configmap("caught", {"checked": "yes"}))
        assert (status, body["message"]) == (400, 'admission webhook "objsel.example.com" '
                                             "denied the request: labelled ones are checked")
        # An update that takes the label off is still seen: the old object has it.
        backend.routes["/v"] = allow()
        assert client.post(base, configmap("was", {"checked": "yes"}))[0] == 201
        backend.routes["/v"] = deny("no")
        status, _ = client.patch(f"{base}/was", {"metadata": {"labels": {"checked": None}}})
        assert status == 400
    assert [r["request"]["name"] for r in backend.received("/v")] == ["caught", "was", "was"]


def test_rules_by_operation_and_a_delete_review(api: LocalAPIServer, client: RawClient,
                                                backend: WebhookBackend) -> None:
    backend.routes["/d"] = allow()
    ns = labelled_namespace(client, "adm-ops", {})
    base = f"/api/v1/namespaces/{ns}/configmaps"
    with configured(client, VALIDATING, "deletes", webhook(
            "deletes.example.com", backend.config("/d"), operations=("DELETE",))):
        assert client.post(base, configmap("gone", a="1"))[0] == 201
        assert client.patch(f"{base}/gone", {"data": {"a": "2"}})[0] == 200
        assert backend.received("/d") == []
        assert client.delete(f"{base}/gone")[0] == 200
    [review] = backend.received("/d")
    request = review["request"]
    assert (request["operation"], request["name"], request["namespace"]) == ("DELETE", "gone",
                                                                             ns)
    assert request["object"] is None
    assert request["oldObject"]["data"] == {"a": "2"}
    assert request["options"] == {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}
    assert request["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert request["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert request["userInfo"]["username"] == "kubernetes-admin"
    assert request["dryRun"] is False


def test_dry_run_calls_webhooks_without_side_effects_only(
        api: LocalAPIServer, client: RawClient, backend: WebhookBackend, tmp_path: Path) -> None:
    backend.routes["/dry"] = allow()
    ns = labelled_namespace(client, "adm-dry", {"adm": "dry"})
    hook = webhook("dry.example.com", backend.config("/dry"), sideEffects="NoneOnDryRun",
                   namespaceSelector={"matchLabels": {"adm": "dry"}})
    with configured(client, VALIDATING, "dry", hook):
        done = kubectl(api, tmp_path, "create", "configmap", "try", "-n", ns, "--dry-run=server")
        assert done.returncode == 0, done.stderr
    assert backend.received("/dry")[-1]["request"]["dryRun"] is True
    # admissionregistration/v1 refuses sideEffects Unknown when a configuration is written (as
    # kube does); one stored by an older version can still say it, and dry runs are refused.
    legacy = {"metadata": {"name": "legacy"}, "webhooks": [{**hook, "name": "legacy.example.com",
                                                            "sideEffects": "Unknown"}]}
    assert client.post(VALIDATING, legacy)[0] == 422
    api.call(lambda cluster: cluster.webhooks.put(legacy, mutating=False))
    try:
        done = kubectl(api, tmp_path, "create", "configmap", "try", "-n", ns, "--dry-run=server")
        assert done.returncode == 1
        assert ('admission webhook "legacy.example.com" does not support dry run'
                in done.stderr)
        assert kubectl(api, tmp_path, "create", "configmap", "real", "-n", ns).returncode == 0
    finally:
        api.call(lambda cluster: cluster.webhooks.remove("legacy", mutating=False))


def test_a_status_subresource_rule(api: LocalAPIServer, client: RawClient,
                                   backend: WebhookBackend, tmp_path: Path) -> None:
    backend.routes["/status"] = deny("status is read-only here", code=409)
    ns = labelled_namespace(client, "adm-status", {})
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                      "metadata": {"labels": {"app": "web"}},
                      "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    with configured(client, VALIDATING, "status", webhook(
            "status.example.com", backend.config("/status"), group="apps",
            resources=("deployments/status",))):
        assert client.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment)[0] == 201
        done = kubectl(api, tmp_path, "patch", "deployment", "web", "-n", ns,
                       "--subresource=status", "--type=merge",
                       "-p", '{"status":{"observedGeneration":7}}')
        assert done.returncode == 1
        assert ('admission webhook "status.example.com" denied the request: status is '
                "read-only here") in done.stderr
        assert kubectl(api, tmp_path, "label", "deployment", "web", "-n", ns,
                       "tier=front").returncode == 0
    [review] = backend.received("/status")
    assert (review["request"]["subResource"], review["request"]["operation"]) == ("status",
                                                                                  "UPDATE")


def test_a_scale_rule_sees_scales(api: LocalAPIServer, client: RawClient,
                                  backend: WebhookBackend, tmp_path: Path) -> None:
    backend.routes["/scale"] = json_patch({"op": "replace", "path": "/spec/replicas",
                                           "value": 2})
    ns = labelled_namespace(client, "adm-scale", {})
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                      "metadata": {"labels": {"app": "web"}},
                      "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    assert client.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment)[0] == 201
    with configured(client, MUTATING, "scale", webhook(
            "scale.example.com", backend.config("/scale"), group="apps",
            resources=("deployments/scale",), operations=("UPDATE",))):
        done = kubectl(api, tmp_path, "scale", "deployment", "web", "-n", ns, "--replicas=9")
        assert done.returncode == 0, done.stderr
    stored = client.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web")[1]
    assert stored["spec"]["replicas"] == 2  # the webhook's word, not kubectl's
    request = backend.received("/scale")[0]["request"]
    assert request["kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert request["object"]["kind"] == "Scale"
    assert request["object"]["spec"]["replicas"] == 9
    assert request["oldObject"]["kind"] == "Scale"


def test_mutating_webhooks_in_order_and_reinvoked_once(
        api: LocalAPIServer, client: RawClient, backend: WebhookBackend) -> None:
    calls: list[str] = []

    def labeller(name: str) -> Any:
        def reply(review: dict[str, Any]) -> Any:
            calls.append(name)
            if name in (review["request"]["object"]["metadata"].get("labels") or {}):
                return {"allowed": True}
            patch = json_patch({"op": "add", "path": f"/metadata/labels/{name}", "value": "1"})
            return patch(review)
        return reply

    backend.routes.update({"/a": labeller("a"), "/b": labeller("b")})
    ns = labelled_namespace(client, "adm-order", {})
    first = webhook("a.example.com", backend.config("/a"), reinvocationPolicy="IfNeeded")
    second = webhook("b.example.com", backend.config("/b"))
    with configured(client, MUTATING, "z-second", second), configured(
            client, MUTATING, "a-first", first):
        status, made = client.post(f"/api/v1/namespaces/{ns}/configmaps",
                                   configmap("ordered", {"x": "y"}))
    assert status == 201, made
    assert made["metadata"]["labels"] == {"x": "y", "a": "1", "b": "1"}
    assert calls == ["a", "b", "a"]  # b changed the object after a: a is asked once more


def test_a_write_racing_the_webhook_is_tried_again(api: LocalAPIServer, client: RawClient,
                                                   backend: WebhookBackend) -> None:
    release = threading.Event()
    seen: list[dict[str, Any]] = []

    def hold_first(review: dict[str, Any]) -> dict[str, Any]:
        seen.append(review["request"]["object"]["data"])
        if len(seen) == 1:
            release.wait(10)
        return {"allowed": True}

    backend.routes["/hold"] = hold_first
    ns = labelled_namespace(client, "adm-race", {})
    base = f"/api/v1/namespaces/{ns}/configmaps"
    assert client.post(base, configmap("raced", a="0"))[0] == 201
    outcome: list[tuple[int, Any]] = []
    with configured(client, VALIDATING, "hold", webhook(
            "hold.example.com", backend.config("/hold"), operations=("UPDATE",))):
        patcher = threading.Thread(target=lambda: outcome.append(
            client.patch(f"{base}/raced", {"data": {"a": "1"}})))
        patcher.start()
        try:
            for _ in range(100):
                if seen:
                    break
                release.wait(0.05)
            with RawClient(api.url) as other:
                assert other.patch(f"{base}/raced", {"data": {"b": "2"}})[0] == 200
        finally:
            release.set()
            patcher.join(30)
    status, body = outcome[0]
    assert status == 200, body
    assert body["data"] == {"a": "1", "b": "2"}  # the patch applied again to the newer object
    assert seen == [{"a": "1"}, {"a": "0", "b": "2"}, {"a": "1", "b": "2"}]


def test_no_matching_configuration_keeps_writes_synchronous(api: LocalAPIServer,
                                                            client: RawClient,
                                                            backend: WebhookBackend) -> None:
    from envtest.cluster import Target
    from envtest.http.protocol import Request, Response
    from envtest.verbs import writes

    backend.routes["/secrets"] = deny("never asked")
    ns = labelled_namespace(client, "adm-sync", {})

    def create(name: str) -> Any:
        def run(cluster: Any) -> Any:
            rtype = cluster.type_of("", "v1", "configmaps")
            body = b'{"metadata":{"name":"%s"}}' % name.encode()
            return writes.create(cluster, Target(rtype, ns), Request(
                "POST", f"/api/v1/namespaces/{ns}/configmaps", {}, body))
        return run

    with configured(client, VALIDATING, "secrets-only", webhook(
            "secrets.example.com", backend.config("/secrets"), resources=("secrets",))):
        answer = api.call(create("direct"))
    assert isinstance(answer, Response) and answer.status == 201
    assert backend.received("/secrets") == []


def test_webhook_configurations_themselves_are_never_sent(
        api: LocalAPIServer, client: RawClient, backend: WebhookBackend) -> None:
    backend.routes["/all"] = deny("everything")
    everything = webhook("all.example.com", backend.config("/all"), group="*",
                         resources=("*/*",), operations=("*",),
                         namespaceSelector={"matchLabels": {"adm": "all"}})
    everything["rules"][0]["apiGroups"] = ["*"]
    with configured(client, VALIDATING, "all", everything):
        other = webhook("other.example.com", backend.config("/all"))
        assert client.post(VALIDATING, {"metadata": {"name": "other"},
                                        "webhooks": [other]})[0] == 201
        assert client.delete(f"{VALIDATING}/other")[0] == 200
        # a Namespace is selected by its own labels
        assert client.post("/api/v1/namespaces", {"metadata": {"name": "adm-all"}})[0] == 201
        status, body = client.post("/api/v1/namespaces", {"metadata": {
            "name": "adm-all-2", "labels": {"adm": "all"}}})
        assert status == 400 and "denied the request: everything" in body["message"]
        # other cluster-scoped objects are not filtered by a namespace selector
        status, body = client.post("/apis/rbac.authorization.k8s.io/v1/clusterroles",
                                   {"metadata": {"name": "adm-all"}, "rules": []})
        assert status == 400 and "denied the request: everything" in body["message"]
    assert {r["request"]["resource"]["resource"] for r in backend.received("/all")} == {
        "namespaces", "clusterroles"}


def test_server_side_apply_is_admitted_as_create_then_update(
        api: LocalAPIServer, manager: WebhookServer, client: RawClient, tmp_path: Path) -> None:
    ns = labelled_namespace(client, "adm-apply", MANAGER_LABEL)
    manifest = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"applied"},' \
               '"data":{%s}}'
    done = kubectl(api, tmp_path, "apply", "--server-side", "-n", ns, "-f", "-",
                   stdin=manifest % '"a":"1"')
    assert done.returncode == 0, done.stderr
    stored = client.get(f"/api/v1/namespaces/{ns}/configmaps/applied")[1]
    assert stored["metadata"]["labels"] == {"defaulted-by": "ambient-ctrl"}
    done = kubectl(api, tmp_path, "apply", "--server-side", "-n", ns, "-f", "-",
                   stdin=manifest % '"a":"1","forbidden":"x"')
    assert done.returncode == 1
    assert "data.forbidden is not allowed here" in done.stderr


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.admission.example.com"},
    "spec": {"group": "admission.example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                       "listKind": "WidgetList"},
             "versions": [{"name": version, "served": True, "storage": version == "v1",
                           "schema": {"openAPIV3Schema": {
                               "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
                          for version in ("v1", "v2")]}}


@pytest.mark.parametrize("policy", ["Equivalent", "Exact"])
def test_match_policy_across_a_custom_resources_versions(
        api: LocalAPIServer, client: RawClient, backend: WebhookBackend, policy: str) -> None:
    backend.routes["/widgets"] = allow()
    status, body = client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                               WIDGET_CRD)
    assert status in (201, 409), body
    ns = labelled_namespace(client, f"adm-{policy.lower()}", {})
    hook = webhook("widgets.example.com", backend.config("/widgets"),
                   group="admission.example.com", resources=("widgets",), matchPolicy=policy)
    hook["rules"][0]["apiVersions"] = ["v1"]
    widget = {"apiVersion": "admission.example.com/v2", "kind": "Widget",
              "metadata": {"name": "w"}, "spec": {"size": 1}}
    with configured(client, VALIDATING, "widgets", hook):
        for _ in range(50):  # the CRD's kinds are served once it is established
            status, body = client.post(
                f"/apis/admission.example.com/v2/namespaces/{ns}/widgets", widget)
            if status != 404:
                break
            threading.Event().wait(0.05)
        assert status == 201, body
    received = backend.received("/widgets")
    if policy == "Exact":
        assert received == []
        return
    request = received[0]["request"]
    assert request["kind"]["version"] == "v1"
    assert request["requestKind"]["version"] == "v2"
    assert request["object"]["apiVersion"] == "admission.example.com/v1"


def test_configurations_kube_refuses(client: RawClient) -> None:
    plain = webhook("plain.example.com", {"url": "http://127.0.0.1:1/x"}, timeoutSeconds=31)
    status, body = client.post(VALIDATING, {"metadata": {"name": "plain"}, "webhooks": [plain]})
    assert status == 422
    assert {(c["field"], c["message"]) for c in body["details"]["causes"]} == {
        ("webhooks[0].clientConfig.url",
         "Invalid value: \"http://127.0.0.1:1/x\": 'https' is the only allowed URL scheme"),
        ("webhooks[0].timeoutSeconds",
         "Invalid value: 31: the timeout value must be between 1 and 30 seconds")}


def test_a_webhook_that_only_speaks_v1beta1(client: RawClient,
                                            backend: WebhookBackend) -> None:
    backend.routes["/old"] = deny("old but firm")
    ns = labelled_namespace(client, "adm-v1beta1", {})
    hook = webhook("old.example.com", backend.config("/old"), admissionReviewVersions=[
        "v1beta1"])
    with configured(client, VALIDATING, "old", hook):
        status, body = client.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("x"))
    assert (status, body["message"]) == (
        400, 'admission webhook "old.example.com" denied the request: old but firm')
    assert backend.received("/old")[0]["apiVersion"] == "admission.k8s.io/v1beta1"
