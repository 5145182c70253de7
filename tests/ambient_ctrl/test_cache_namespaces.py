"""A client whose caches hold a set of namespaces (``cache_namespaces``) against the local
server: one list and watch per namespace, never a cluster-wide one of a namespaced kind; reads
(get, list by namespace and labels, indexes, label-scoped caches) and handlers as with one cache;
the other namespaces invisible; cluster-scoped kinds still watched cluster-wide."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ambient_ctrl.client import Client
from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from informers.factory import InformerFactory
from informers.informer import Handlers, SharedInformer
from informers.multinamespace import MultiNamespaceInformer
from informers.resource import CONFIGMAPS, NAMESPACES, SECRETS
from informers.rest import Transport, load_configuration
from informers.store import CONTROLLER_INDEX

LISTED = ("mn-a", "mn-a-b")
UNLISTED = "mn-c"


def _team(obj: Any) -> list[str]:
    return [(obj["metadata"].get("annotations") or {}).get("team", "")]


class Recording:
    """The (method, path, query) of every request a transport sends."""

    def __init__(self, transport: Transport) -> None:
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        transport.request = self._recorded(transport.request)  # type: ignore[method-assign]
        transport.stream = self._recorded(transport.stream)  # type: ignore[method-assign]

    def _recorded(self, send: Callable[..., Any]) -> Callable[..., Any]:
        def request(method: str, path: str, **kwargs: Any) -> Any:
            with self._lock:
                self.requests.append((method, path, dict(kwargs.get("query") or {})))
            return send(method, path, **kwargs)

        return request

    def reads(self, plural: str) -> list[tuple[str, dict[str, Any]]]:
        """(path, query) of each list or watch of ``plural``."""
        with self._lock:
            return [(path, query) for method, path, query in self.requests
                    if method == "GET" and path.endswith(f"/{plural}")]


@pytest.fixture(scope="module")
def world(api: LocalAPIServer) -> Iterator[tuple[Client, Recording, InformerFactory, str]]:
    """ConfigMaps in two listed namespaces and one more; a client caching the listed ones."""
    transport = Transport(load_configuration(str(api.kubeconfig)))
    recording = Recording(transport)
    factory = InformerFactory(transport, debug_mutations=True)
    factory.add_indexers(CONFIGMAPS, {"team": _team})
    client = Client(transport, factory, field_manager="test", cache_namespaces=LISTED)
    try:
        for ns in (*LISTED, UNLISTED):
            client.create(NAMESPACES, {"metadata": {"name": ns}})
        owner = client.create(SECRETS, {"metadata": {"name": "owner", "namespace": "mn-a"}})
        for ns, name, labels, team in [("mn-a", "web", {"app": "web"}, "blue"),
                                       ("mn-a", "db", {"app": "db"}, "red"),
                                       ("mn-a-b", "web", {"app": "web"}, "blue"),
                                       (UNLISTED, "web", {"app": "web"}, "blue")]:
            meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels,
                                    "annotations": {"team": team}}
            if name == "db":
                meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Secret",
                                            "name": "owner", "controller": True,
                                            "uid": owner["metadata"]["uid"]}]
            client.create(CONFIGMAPS, {"metadata": meta})
        client.expect(CONFIGMAPS)
        client.expect(NAMESPACES)
        factory.start()
        assert factory.wait_for_sync(30)
        yield client, recording, factory, owner["metadata"]["uid"]
    finally:
        factory.stop()
        transport.close()


def _keys(objects: list[dict[str, Any]]) -> list[str]:
    return [f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in objects]


@pytest.mark.parametrize(("namespace", "labels", "index", "expected"), [
    (None, None, None, ["mn-a-b/web", "mn-a/db", "mn-a/web"]),
    ("mn-a", None, None, ["mn-a/db", "mn-a/web"]),
    (UNLISTED, None, None, []),
    (None, "app=web", None, ["mn-a-b/web", "mn-a/web"]),
    (None, None, ("team", "blue"), ["mn-a-b/web", "mn-a/web"]),
    ("mn-a-b", None, ("team", "blue"), ["mn-a-b/web"]),
    (None, None, ("namespace", "mn-a-b"), ["mn-a-b/web"]),
    (None, None, ("namespace", UNLISTED), []),
    (None, None, (CONTROLLER_INDEX, "<owner>"), ["mn-a/db"]),
], ids=["all", "one-namespace", "unlisted-namespace", "labels", "registered-index",
        "index-and-namespace", "namespace-index", "namespace-index-unlisted",
        "controller-index"])
def test_list_across_the_namespaces(world: tuple[Client, Recording, InformerFactory, str],
                                    namespace: str | None, labels: str | None,
                                    index: tuple[str, str] | None, expected: list[str]) -> None:
    client, _, _, owner = world
    if index is not None and index[1] == "<owner>":
        index = (index[0], owner)
    assert _keys(client.list(CONFIGMAPS, namespace, labels=labels, index=index)) == expected


def test_get_and_counts(world: tuple[Client, Recording, InformerFactory, str]) -> None:
    client, _, _, _ = world
    assert client.get(CONFIGMAPS, "web", "mn-a-b") is not None
    assert client.get(CONFIGMAPS, "web", UNLISTED) is None
    informer = client.informer(CONFIGMAPS)
    assert isinstance(informer, MultiNamespaceInformer)
    assert informer.store.index_counts("team") == {"blue": 2, "red": 1}
    assert len(informer.store) == 3
    # Cluster-scoped kinds are not narrowed: every namespace is there.
    assert {UNLISTED, *LISTED} <= {n["metadata"]["name"] for n in client.list(NAMESPACES)}


def test_no_cluster_wide_read_of_a_namespaced_kind(
        world: tuple[Client, Recording, InformerFactory, str]) -> None:
    _, recording, factory, _ = world
    reads = recording.reads("configmaps")
    paths = {path for path, _ in reads}
    assert "/api/v1/configmaps" not in paths
    assert {f"/api/v1/namespaces/{ns}/configmaps" for ns in LISTED} <= paths
    assert {bool(query.get("watch")) for _, query in reads} == {False, True}  # list, watch
    assert {path for path, _ in recording.reads("namespaces")} == {"/api/v1/namespaces"}
    assert not [key for key in factory.health()
                if key.resource == CONFIGMAPS and key.namespace is None]


def test_a_label_scoped_cache_in_each_namespace(
        world: tuple[Client, Recording, InformerFactory, str]) -> None:
    client, recording, _, _ = world
    web = client.scoped(CONFIGMAPS, label_selector="app=web")
    web.informer.start()
    assert web.informer.wait_for_sync(30)
    assert _keys(web.list()) == ["mn-a-b/web", "mn-a/web"]
    assert web.get("web", "mn-a") is not None and web.get("db", "mn-a") is None
    assert web.get("web", UNLISTED) is None
    selected = [path for path, query in recording.reads("configmaps")
                if query.get("labelSelector") == "app=web"]
    assert set(selected) == {f"/api/v1/namespaces/{ns}/configmaps" for ns in LISTED}


def test_handlers_hear_every_listed_namespace_only(
        world: tuple[Client, Recording, InformerFactory, str]) -> None:
    client, _, _, _ = world
    seen: list[str] = []
    lock = threading.Lock()

    def add(obj: dict[str, Any]) -> None:
        with lock:
            seen.append(f"{obj['metadata']['namespace']}/{obj['metadata']['name']}")

    informer = client.expect(CONFIGMAPS)
    registration = informer.add_handler(Handlers(add=add))
    assert registration.wait_for_sync(30)
    for ns in (UNLISTED, "mn-a-b"):
        client.create(CONFIGMAPS, {"metadata": {"name": "late", "namespace": ns}})
    eventually(lambda: "mn-a-b/late" in seen, timeout=10, message="no add from mn-a-b")
    client.create(CONFIGMAPS, {"metadata": {"name": "later", "namespace": "mn-a"}})
    eventually(lambda: "mn-a/later" in seen, timeout=10, message="no add from mn-a")
    with lock:
        assert {"mn-a/web", "mn-a/db", "mn-a-b/web"} <= set(seen)
        assert not [key for key in seen if key.startswith(f"{UNLISTED}/")]


def test_a_scope_of_its_own_namespaces(world: tuple[Client, Recording, InformerFactory,
                                                          str]) -> None:
    """Explicit namespaces win over the client's: one namespace is a plain informer of it."""
    client, _, _, _ = world
    there = client.scoped(CONFIGMAPS, namespaces={UNLISTED})
    assert isinstance(there.informer, SharedInformer)
    there.informer.start()
    assert there.informer.wait_for_sync(30)
    assert there.get("web", UNLISTED) is not None and there.get("web", "mn-a") is None
    both = client.scoped(CONFIGMAPS, namespaces={UNLISTED, "mn-a"})
    assert isinstance(both.informer, MultiNamespaceInformer)
    assert both.informer is client.scoped(CONFIGMAPS, namespaces=["mn-a", UNLISTED]).informer
    with pytest.raises(ValueError, match="namespace or namespaces"):
        client.scoped(CONFIGMAPS, namespace="mn-a", namespaces={"mn-a"})


def test_cluster_scoped_kinds_cannot_be_split(
        world: tuple[Client, Recording, InformerFactory, str]) -> None:
    _, _, factory, _ = world
    with pytest.raises(ValueError, match="cluster-scoped"):
        factory.informer_across(NAMESPACES, LISTED)
