"""Finalizers against the local API server: another controller's finalizer is never lost."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from ambient_ctrl.client import Client
from ambient_ctrl.finalizers import add_finalizer, has_finalizer, remove_finalizer
from envtest import LocalAPIServer
from informers.errors import NotFound
from informers.resource import CONFIGMAPS
from tests.ambient_ctrl.conftest import framework_client

NS = "default"
_names = itertools.count()


@pytest.fixture()
def one(api: LocalAPIServer) -> Iterator[Client]:
    yield from framework_client(api)


@pytest.fixture()
def two(api: LocalAPIServer) -> Iterator[Client]:
    yield from framework_client(api)


def configmap(client: Client, finalizers: list[str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"cm{next(_names)}", "namespace": NS}
    if finalizers:
        meta["finalizers"] = finalizers
    return client.create(CONFIGMAPS, {"metadata": meta, "data": {"k": "v"}})


def on_server(client: Client, obj: Mapping[str, Any]) -> dict[str, Any]:
    return client.resource(CONFIGMAPS).get(obj["metadata"]["name"], NS)


def test_add_and_remove(one: Client) -> None:
    cm = configmap(one)
    added = add_finalizer(one, CONFIGMAPS, cm, "example.com/cleanup")
    assert has_finalizer(added, "example.com/cleanup")
    assert on_server(one, cm)["metadata"]["finalizers"] == ["example.com/cleanup"]
    removed = remove_finalizer(one, CONFIGMAPS, added, "example.com/cleanup")
    assert not has_finalizer(removed, "example.com/cleanup")
    assert not on_server(one, cm)["metadata"].get("finalizers")


def test_no_request_when_nothing_changes(api: LocalAPIServer, one: Client) -> None:
    cm = configmap(one, ["example.com/a"])
    api.faults.fail(code=500, count=1, resources=["configmaps"])
    try:
        assert add_finalizer(one, CONFIGMAPS, cm, "example.com/a") is cm
        assert remove_finalizer(one, CONFIGMAPS, cm, "example.com/b") is cm
        assert api.faults.state()["failures"], "a request was sent"
    finally:
        api.faults.clear()


def test_stale_add_keeps_the_finalizer_added_meanwhile(one: Client, two: Client) -> None:
    """Controller one read the object; controller two adds its finalizer; controller one then
    adds its own from its stale copy. Both survive."""
    stale = configmap(one)
    add_finalizer(two, CONFIGMAPS, stale, "two.example.com/f")
    result = add_finalizer(one, CONFIGMAPS, stale, "one.example.com/f")
    expected = ["two.example.com/f", "one.example.com/f"]
    assert result["metadata"]["finalizers"] == expected
    assert on_server(one, stale)["metadata"]["finalizers"] == expected


def test_stale_remove_keeps_the_other_finalizers(one: Client, two: Client) -> None:
    stale = configmap(one, ["one.example.com/f", "keep.example.com/f"])
    add_finalizer(two, CONFIGMAPS, stale, "two.example.com/f")
    remove_finalizer(one, CONFIGMAPS, stale, "one.example.com/f")
    assert on_server(one, stale)["metadata"]["finalizers"] == [
        "keep.example.com/f", "two.example.com/f"]


def test_stale_add_of_a_finalizer_already_there_is_a_no_op(one: Client, two: Client) -> None:
    stale = configmap(one)
    add_finalizer(two, CONFIGMAPS, stale, "shared.example.com/f")
    result = add_finalizer(one, CONFIGMAPS, stale, "shared.example.com/f")
    assert result["metadata"]["finalizers"] == ["shared.example.com/f"]


def test_concurrent_adds_and_removes_lose_nothing(api: LocalAPIServer) -> None:
    clients = [framework_client(api) for _ in range(4)]
    try:
        writers = [next(gen) for gen in clients]
        cm = configmap(writers[0], ["gone-0.example.com/f", "gone-1.example.com/f"])
        barrier = threading.Barrier(len(writers))
        errors: list[BaseException] = []

        def work(index: int, client: Client) -> None:
            try:
                barrier.wait(10)
                if index < 2:
                    remove_finalizer(client, CONFIGMAPS, cm, f"gone-{index}.example.com/f")
                else:
                    add_finalizer(client, CONFIGMAPS, cm, f"new-{index}.example.com/f")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors
        assert sorted(on_server(writers[0], cm)["metadata"]["finalizers"]) == [
            "new-2.example.com/f", "new-3.example.com/f"]
    finally:
        for gen in clients:
            next(gen, None)


def test_removing_the_last_finalizer_lets_deletion_finish(one: Client) -> None:
    cm = add_finalizer(one, CONFIGMAPS, configmap(one), "example.com/cleanup")
    one.delete(CONFIGMAPS, cm["metadata"]["name"], NS)
    deleting = on_server(one, cm)
    assert deleting["metadata"].get("deletionTimestamp")
    remove_finalizer(one, CONFIGMAPS, deleting, "example.com/cleanup")
    with pytest.raises(NotFound):
        on_server(one, cm)
