"""The cached client against the local server: label selectors, indexes (built-in and
registered), the first read of an undeclared kind, mutation detection, mutate's retry pause."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ambient_ctrl.client import Client
from ambient_ctrl.reconcile import ReconcileTimeout, deadline
from ambient_ctrl.testing import cached_client
from envtest import LocalAPIServer
from foundation.clock import RealClock
from informers.errors import NotFound
from informers.factory import InformerFactory
from informers.resource import CONFIGMAPS, NAMESPACES, SECRETS, SERVICEACCOUNTS
from informers.rest import Transport, load_configuration
from informers.store import CONTROLLER_INDEX, MutatedCacheError


def _by_team(obj: Any) -> list[str]:
    return [(obj["metadata"].get("annotations") or {}).get("team", "")]


@pytest.fixture(scope="module")
def world(api: LocalAPIServer) -> Iterator[tuple[Client, str]]:
    """ConfigMaps in two namespaces, labelled and annotated, one owned."""
    with cached_client(api.kubeconfig, indexers={CONFIGMAPS: {"team": _by_team}}) as client:
        for ns in ("c-one", "c-two"):
            client.create(NAMESPACES, {"metadata": {"name": ns}})
        secret = client.create(SECRETS, {"metadata": {"name": "owner", "namespace": "c-one"}})
        owner = {"apiVersion": "v1", "kind": "Secret", "name": "owner",
                 "uid": secret["metadata"]["uid"], "controller": True}
        for ns, name, labels, team in [
            ("c-one", "web", {"app": "web", "tier": "front"}, "blue"),
            ("c-one", "db", {"app": "db", "tier": "back"}, "red"),
            ("c-two", "web", {"app": "web"}, "blue"),
            ("c-two", "cache", {"app": "cache", "tier": "back"}, "blue"),
        ]:
            meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels,
                                    "annotations": {"team": team}}
            if name == "db":
                meta["ownerReferences"] = [owner]
            client.create(CONFIGMAPS, {"metadata": meta})
        client.expect(CONFIGMAPS)
        yield client, owner["uid"]


def _names(objects: list[dict[str, Any]]) -> list[str]:
    return [f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in objects]


@pytest.mark.parametrize(("namespace", "labels", "index", "expected"), [
    (None, "app=web", None, ["c-one/web", "c-two/web"]),
    ("c-one", "app=web", None, ["c-one/web"]),
    (None, "tier in (back),app!=db", None, ["c-two/cache"]),
    (None, "!tier", None, ["c-two/web"]),
    (None, {"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "Exists"}]}, None, ["c-one/web"]),
    (None, None, (CONTROLLER_INDEX, "<owner>"), ["c-one/db"]),
    (None, None, ("team", "blue"), ["c-one/web", "c-two/cache", "c-two/web"]),
    ("c-two", "tier=back", ("team", "blue"), ["c-two/cache"]),
    (None, None, ("namespace", "c-two"), ["c-two/cache", "c-two/web"]),
], ids=["selector", "namespace-and-selector", "set-based", "does-not-exist", "selector-dict",
        "controller-index", "registered-index", "index-namespace-and-selector",
        "namespace-index"])
def test_list(world: tuple[Client, str], namespace: str | None, labels: Any,
              index: tuple[str, str] | None, expected: list[str]) -> None:
    client, owner_uid = world
    if index is not None and index[1] == "<owner>":
        index = (index[0], owner_uid)
    listed = client.list(CONFIGMAPS, namespace, labels=labels, index=index)
    assert _names(listed) == expected  # in key order


def test_list_by_an_unknown_index_says_so(world: tuple[Client, str]) -> None:
    with pytest.raises(KeyError, match="no index 'nope'"):
        world[0].list(CONFIGMAPS, index=("nope", "x"))
    with pytest.raises(KeyError, match="no index 'nope'"):
        world[0].keys(CONFIGMAPS, index=("nope", "x"))


@pytest.mark.parametrize("index", [None, ("team", "blue"), ("namespace", "c-two")])
def test_keys_are_the_listed_objects_keys(world: tuple[Client, str],
                                          index: tuple[str, str] | None) -> None:
    client, _ = world
    listed = _names(client.list(CONFIGMAPS, index=index))
    assert client.keys(CONFIGMAPS, index=index) == sorted(listed)


def test_first_read_of_an_undeclared_kind_warns_once(api: LocalAPIServer,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    with cached_client(api.kubeconfig) as client, caplog.at_level(logging.WARNING):
        assert client.get(SECRETS, "missing", "default") is None
        client.list(SECRETS)
        warnings = [r for r in caplog.records if "first read of" in r.getMessage()]
        assert [r.getMessage() for r in warnings] == [
            "first read of secrets starts a new cluster-wide informer; declare it with the "
            "builder to make the cache's size deliberate"]


def test_no_warning_for_a_declared_kind(api: LocalAPIServer,
                                        caplog: pytest.LogCaptureFixture) -> None:
    with cached_client(api.kubeconfig) as client, caplog.at_level(logging.WARNING):
        client.expect(SECRETS).start()
        client.list(SECRETS)
        assert not [r for r in caplog.records if "first read of" in r.getMessage()]


@pytest.mark.parametrize("unscoped_first", [True, False], ids=["unscoped-first",
                                                                 "labelled-first"])
def test_reads_use_the_first_declared_scope(api: LocalAPIServer, unscoped_first: bool) -> None:
    """``get`` and ``list`` read the cache of the scope declared first, the unscoped one
    included: a narrower cache declared later (another controller's) does not change them."""
    plain, labelled = f"plain-{unscoped_first}".lower(), f"labelled-{unscoped_first}".lower()
    with cached_client(api.kubeconfig) as client:
        client.create(NAMESPACES, {"metadata": {"name": plain}})
        client.create(NAMESPACES, {"metadata": {"name": labelled, "labels": {"scope": "yes"}}})
        declarations = [{}, {"label_selector": "scope=yes"}]
        for declaration in declarations if unscoped_first else declarations[::-1]:
            client.expect(NAMESPACES, **declaration).start()
        assert (client.get(NAMESPACES, plain) is not None) is unscoped_first
        assert client.get(NAMESPACES, labelled) is not None


def test_mutating_a_cached_object_is_caught(world: tuple[Client, str]) -> None:
    client, _ = world
    cached = client.get(CONFIGMAPS, "web", "c-one")
    assert cached is not None
    cached["metadata"]["labels"]["sneaky"] = "edit"
    try:
        with pytest.raises(MutatedCacheError):
            client.get(CONFIGMAPS, "web", "c-one")
    finally:
        del cached["metadata"]["labels"]["sneaky"]  # put it back for the other tests


def test_create_subresource_posts_and_checks_the_deadline(api: LocalAPIServer) -> None:
    with cached_client(api.kubeconfig) as client:
        client.create(SERVICEACCOUNTS, {"metadata": {"name": "minter", "namespace": "default"}})
        answer = client.create_subresource(SERVICEACCOUNTS, "minter", "token",
                                           {"spec": {"audiences": ["vault"]}}, "default")
        assert answer["kind"] == "TokenRequest" and answer["status"]["token"]
        assert answer["spec"]["audiences"] == ["vault"]
        with pytest.raises(NotFound):
            client.create_subresource(SERVICEACCOUNTS, "ghost", "token", {}, "default")
        before = api.call(lambda cluster: cluster.requests[("create", "", "serviceaccounts/token")])
        with deadline(time.monotonic() - 1), pytest.raises(ReconcileTimeout):
            client.create_subresource(SERVICEACCOUNTS, "minter", "token", {}, "default")
        after = api.call(lambda cluster: cluster.requests[("create", "", "serviceaccounts/token")])
        assert after == before, "a reconcile past its deadline sends nothing"


class RecordingClock(RealClock):
    def __init__(self) -> None:
        self.waits: list[float] = []

    def wait(self, event: threading.Event, timeout: float) -> bool:
        self.waits.append(timeout)
        return super().wait(event, timeout)


def test_mutate_pauses_between_attempts_on_the_clock(api: LocalAPIServer) -> None:
    clock = RecordingClock()
    transport = Transport(load_configuration(api.kubeconfig))
    factory = InformerFactory(transport)
    client = Client(transport, factory, clock=clock)
    try:
        client.create(CONFIGMAPS, {"metadata": {"name": "contended", "namespace": "default"}})
        interfered: list[bool] = []

        def change(cm: dict[str, Any]) -> None:
            if len(interfered) < 2:  # two writers sneak in: two conflicts, two pauses
                interfered.append(True)
                client.patch(CONFIGMAPS, "contended", {"data": {f"o{len(interfered)}": "x"}},
                             "default")
            cm.setdefault("data", {})["mine"] = "y"

        final = client.mutate(CONFIGMAPS, "contended", "default", change)
        assert final["data"] == {"o1": "x", "o2": "x", "mine": "y"}
        assert len(clock.waits) == 2 and all(0 <= w <= 0.05 for w in clock.waits)
    finally:
        factory.stop()
        transport.close()


def test_write_answers_are_shaped_as_the_kinds_cache_keeps_objects(api: LocalAPIServer) -> None:
    """A create's, a patch's and an update's answer come without managedFields, as a cached
    read does (they are cut from the answer's bytes), unless the kind's transform keeps them;
    a server-side apply's answer keeps them (they say who owns what)."""
    with cached_client(api.kubeconfig) as client:
        factory = client._factory  # the factory the client was built on
        factory.set_transform(CONFIGMAPS, None)  # ConfigMaps: cached whole
        created = client.create(SECRETS, {"metadata": {"name": "shaped", "namespace": "default"},
                                           "stringData": {"k": "v"}})
        assert "managedFields" not in created["metadata"] and created["metadata"]["uid"]
        patched = client.patch(SECRETS, "shaped", {"metadata": {"labels": {"a": "b"}}},
                               "default")
        assert "managedFields" not in patched["metadata"]
        assert patched["metadata"]["labels"] == {"a": "b"}
        updated = client.update(SECRETS, {**patched, "data": {"k": "dw=="}})
        assert "managedFields" not in updated["metadata"] and updated["data"] == {"k": "dw=="}
        raw = client.resource(SECRETS).transport.json(
            "GET", SECRETS.path("default", "shaped"), verb="GET")
        assert raw["metadata"]["managedFields"], "the server keeps them all the same"
        applied = client.apply(SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": "shaped", "namespace": "default"}, "data": {"k": "dw=="}})
        assert applied["metadata"]["managedFields"]
        kept = client.create(CONFIGMAPS, {"metadata": {"name": "kept", "namespace": "default"},
                                          "data": {"k": "v"}})
        assert kept["metadata"]["managedFields"]
