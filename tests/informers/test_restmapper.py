"""RESTMapper: kinds resolved from the local API server's discovery (classic), a CRD installed
after the first load, concurrent misses; aggregated discovery from a stand-in server."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest
from kubernetes import client as k8s_client

from ambient_ctrl.envtest import LocalAPIServer
from ambient_ctrl.testing import StandinHandler, custom_resource_definition, http_standin
from informers.resource import CONFIGMAPS, NAMESPACES, PODS
from informers.rest import Transport, load_configuration
from informers.restmapper import AGGREGATED, NoKindMatch, RESTMapper

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


class Requests:
    """A transport observer counting requests by verb (a discovery read is a GET)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def observe(self, *, verb: str, method: str, host: str, code: str, seconds: float) -> None:
        self.counts[verb] += 1


@pytest.fixture(scope="module")
def api() -> Iterator[LocalAPIServer]:
    with LocalAPIServer() as server:
        yield server


@pytest.fixture()
def requests() -> Requests:
    return Requests()


@pytest.fixture()
def transport(api: LocalAPIServer, requests: Requests) -> Iterator[Transport]:
    transport = Transport(load_configuration(api.kubeconfig), observer=requests)
    yield transport
    transport.close()


def install(transport: Transport, definition: dict[str, Any]) -> None:
    transport.json("POST", CRDS, verb="POST", body=definition)


def test_core_and_group_kinds(transport: Transport, requests: Requests) -> None:
    mapper = RESTMapper(transport)
    assert requests.counts["GET"] == 0  # lazy: nothing asked before the first lookup
    pods = mapper.resource_for("", "Pod")
    assert pods == PODS  # discovery's extras are not part of equality: one cache key
    assert pods.namespaced and pods.subresources == {"status"}
    assert {"get", "list", "watch", "patch"} <= set(pods.verbs or ())
    assert mapper.resource_for("", "Namespace") == NAMESPACES
    assert not mapper.resource_for("", "Namespace").namespaced
    assert mapper.resource_for("", "ConfigMap").subresources == frozenset()
    lease = mapper.resource_for("coordination.k8s.io", "Lease", "v1")
    assert (lease.plural, lease.version, lease.api_version) == ("leases", "v1",
                                                               "coordination.k8s.io/v1")
    assert mapper.resource_of({"apiVersion": "v1", "kind": "ConfigMap"}) == CONFIGMAPS
    before = requests.counts["GET"]
    for _ in range(5):  # cached: no request
        mapper.resource_for("", "Pod")
        mapper.resource_for("coordination.k8s.io", "Lease")
    assert requests.counts["GET"] == before and mapper.loads == 1


def test_unknown_kind_is_a_clear_error_after_one_refresh(transport: Transport,
                                                         requests: Requests) -> None:
    mapper = RESTMapper(transport)
    mapper.resource_for("", "Pod")
    with pytest.raises(NoKindMatch, match=r"no kind 'Pdo' in group 'core'; it serves .*Pod"):
        mapper.resource_for("", "Pdo")
    assert mapper.loads == 2
    with pytest.raises(NoKindMatch, match="does not serve that group"):
        mapper.resource_for("nowhere.example.com", "Thing")
    with pytest.raises(NoKindMatch, match="core/v9"):
        mapper.resource_for("", "Pod", "v9")
    with pytest.raises(ValueError, match="apiVersion or kind"):
        mapper.resource_of({"kind": "Pod"})


def test_a_crd_installed_after_the_first_load(transport: Transport) -> None:
    mapper = RESTMapper(transport)
    mapper.resource_for("", "Pod")
    install(transport, custom_resource_definition(
        "later.example.com", "Gadget", scope="Cluster", versions=("v2", "v1"),
        subresources={"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                              "statusReplicasPath": ".status.replicas"}}))
    gadget = mapper.resource_for("later.example.com", "Gadget")
    assert (gadget.plural, gadget.version, gadget.namespaced) == ("gadgets", "v2", False)
    assert gadget.subresources == {"status", "scale"}
    assert mapper.resource_for("later.example.com", "Gadget", "v1").version == "v1"
    assert mapper.loads == 2


def test_concurrent_misses_refresh_once(transport: Transport) -> None:
    mapper = RESTMapper(transport)
    mapper.resource_for("", "Pod")
    install(transport, custom_resource_definition("crowd.example.com", "Crowd"))
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: mapper.resource_for("crowd.example.com", "Crowd"),
                              range(16)))
    assert {r.plural for r in found} == {"crowds"}
    assert mapper.loads == 2


# aggregated discovery ---------------------------------------------------------------------------
def _resource(plural: str, kind: str, group: str, version: str, scope: str = "Namespaced",
              subresources: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"resource": plural, "responseKind": {"group": group, "version": version,
                                                 "kind": kind},
            "scope": scope, "singularResource": kind.lower(), "verbs": ["get", "list"],
            "subresources": [{"subresource": s, "verbs": ["get"]} for s in subresources]}


AGGREGATED_API = {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
                  "items": [{"metadata": {}, "versions": [{"version": "v1", "resources": [
                      _resource("pods", "Pod", "", "v1", subresources=("status", "log"))]}]}]}
AGGREGATED_APIS = {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
                   "items": [{"metadata": {"name": "apps"}, "versions": [
                       {"version": "v2", "freshness": "Stale", "resources": [
                           _resource("deployments", "Deployment", "apps", "v2")]},
                       {"version": "v1", "resources": [
                           _resource("deployments", "Deployment", "apps", "v1",
                                     subresources=("scale", "status"))]}]}]}


class _Discovery(StandinHandler):
    """Answers /api and /apis with aggregated discovery when asked for it; nothing else."""

    paths: list[str] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        docs = {"/api": AGGREGATED_API, "/apis": AGGREGATED_APIS}
        if self.path not in docs or AGGREGATED not in self.headers.get("Accept", ""):
            self.reply(404)
        else:
            self.reply(200, orjson.dumps(docs[self.path]), content_type=AGGREGATED)


@pytest.fixture()
def aggregated() -> Iterator[tuple[Transport, list[str]]]:
    handler = type("Handler", (_Discovery,), {"paths": []})
    with http_standin(handler) as url:
        configuration = k8s_client.Configuration()
        configuration.host = url
        transport = Transport(configuration)
        try:
            yield transport, handler.paths
        finally:
            transport.close()


def test_aggregated_discovery_is_read_in_one_pass(
        aggregated: tuple[Transport, list[str]]) -> None:
    transport, paths = aggregated
    mapper = RESTMapper(transport)
    deployments = mapper.resource_for("apps", "Deployment")
    assert (deployments.version, deployments.subresources) == ("v1", {"scale", "status"})
    assert mapper.resource_for("", "Pod").subresources == {"status", "log"}
    assert paths == ["/api", "/apis"]  # no per-group-version request
    with pytest.raises(NoKindMatch):  # a stale version is not served from the cache
        mapper.resource_for("apps", "Deployment", "v2")
    # the group-version asked of its own endpoint (404 here), the refresh, then again
    assert paths[2:] == ["/apis/apps/v2", "/api", "/apis", "/apis/apps/v2"]
