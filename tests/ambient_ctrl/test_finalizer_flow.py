"""with_finalizer: kube-rs's finalizer() flow, against the local API server."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from ambient_ctrl.client import Client
from ambient_ctrl.finalizers import with_finalizer
from ambient_ctrl.reconcile import Result
from informers.errors import NotFound
from informers.resource import CONFIGMAPS

NS = "default"
OURS = "example.com/cleanup"
_names = itertools.count()


class Steps:
    """apply/cleanup that record what they saw and can be told to fail."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.fail_cleanup = False

    def apply(self, obj: Mapping[str, Any]) -> Result:
        self.calls.append(("apply", list(obj["metadata"].get("finalizers") or [])))
        return Result(requeue_after=60)

    def cleanup(self, obj: Mapping[str, Any]) -> None:
        self.calls.append(("cleanup", list(obj["metadata"].get("finalizers") or [])))
        if self.fail_cleanup:
            raise RuntimeError("the outside world is down")


def configmap(client: Client, finalizers: list[str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"f{next(_names)}", "namespace": NS}
    if finalizers:
        meta["finalizers"] = finalizers
    return client.create(CONFIGMAPS, {"metadata": meta})


def server(client: Client, obj: Mapping[str, Any]) -> dict[str, Any]:
    return client.resource(CONFIGMAPS).get(obj["metadata"]["name"], NS)


def run(client: Client, obj: Mapping[str, Any] | None, steps: Steps) -> Result:
    return with_finalizer(client, CONFIGMAPS, obj, OURS, apply=steps.apply,
                          cleanup=steps.cleanup)


def test_the_whole_lifecycle(client: Client) -> None:
    steps = Steps()
    cm = configmap(client)
    # First sight: the finalizer is added before apply runs, and apply sees it.
    assert run(client, cm, steps) == Result(requeue_after=60)
    assert steps.calls == [("apply", [OURS])]
    assert server(client, cm)["metadata"]["finalizers"] == [OURS]
    assert run(client, server(client, cm), steps) == Result(requeue_after=60)
    assert steps.calls[-1] == ("apply", [OURS])
    # Deleted: the server waits for us; cleanup runs, then the finalizer goes, then the object.
    client.delete(CONFIGMAPS, cm["metadata"]["name"], NS)
    deleting = server(client, cm)
    assert deleting["metadata"]["deletionTimestamp"]
    assert run(client, deleting, steps) == Result()
    assert steps.calls[-1] == ("cleanup", [OURS])
    with pytest.raises(NotFound):
        server(client, cm)
    # The stale copy again (a late event): the object is gone, nothing fails.
    assert run(client, deleting, steps) == Result()


def test_failed_cleanup_keeps_the_finalizer(client: Client) -> None:
    steps = Steps()
    cm = configmap(client, [OURS, "other.example.com/f"])
    client.delete(CONFIGMAPS, cm["metadata"]["name"], NS)
    steps.fail_cleanup = True
    with pytest.raises(RuntimeError):
        run(client, server(client, cm), steps)
    assert server(client, cm)["metadata"]["finalizers"] == [OURS, "other.example.com/f"]
    steps.fail_cleanup = False
    run(client, server(client, cm), steps)
    # Ours is gone, the other controller's stays (and holds the object).
    assert server(client, cm)["metadata"]["finalizers"] == ["other.example.com/f"]
    assert [c[0] for c in steps.calls] == ["cleanup", "cleanup"]


def test_deleting_without_our_finalizer_is_not_touched(client: Client) -> None:
    steps = Steps()
    cm = configmap(client, ["other.example.com/f"])
    client.delete(CONFIGMAPS, cm["metadata"]["name"], NS)
    deleting = server(client, cm)
    assert run(client, deleting, steps) == Result()
    assert steps.calls == []
    assert server(client, cm)["metadata"]["resourceVersion"] == \
        deleting["metadata"]["resourceVersion"]


def test_gone_is_nothing_to_do(client: Client) -> None:
    steps = Steps()
    assert run(client, None, steps) == Result() and steps.calls == []


def test_a_stale_copy_keeps_the_finalizers_added_meanwhile(client: Client) -> None:
    steps = Steps()
    stale = configmap(client)
    client.resource(CONFIGMAPS).patch(stale["metadata"]["name"],
                                      {"metadata": {"finalizers": ["other.example.com/f"]}},
                                      NS)
    run(client, stale, steps)
    assert server(client, stale)["metadata"]["finalizers"] == ["other.example.com/f", OURS]
    assert steps.calls == [("apply", ["other.example.com/f", OURS])]


def test_deletion_seen_late_adds_nothing_and_applies_nothing(client: Client) -> None:
    """The cache still shows the object alive; the server has started deleting it (another
    controller's finalizer holds it): the refused add is not retried, apply does not run."""
    steps = Steps()
    stale = configmap(client, ["other.example.com/f"])
    client.delete(CONFIGMAPS, stale["metadata"]["name"], NS)
    assert run(client, stale, steps) == Result()
    assert steps.calls == []
    assert server(client, stale)["metadata"]["finalizers"] == ["other.example.com/f"]


class Recording:
    """Just the client calls the flow makes, recorded in order with the steps' calls."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def patch(self, resource: Any, name: str, patch: list[dict[str, Any]],
              namespace: str | None = None, *, patch_type: str = "merge") -> dict[str, Any]:
        assert patch_type == "json" and patch[0]["op"] == "test"  # conflict-safe
        finalizers = patch[1]["value"]
        self.log.append(f"patch {finalizers}")
        return {"metadata": {"name": name, "namespace": namespace, "finalizers": finalizers}}


@pytest.mark.parametrize(("meta", "expected"), [
    ({}, ["patch ['example.com/cleanup']", "apply"]),
    ({"finalizers": [OURS]}, ["apply"]),
    ({"finalizers": ["a/b", OURS], "deletionTimestamp": "t"}, ["cleanup", "patch ['a/b']"]),
    ({"finalizers": ["a/b"], "deletionTimestamp": "t"}, []),
], ids=["add-then-apply", "apply", "cleanup-then-remove", "not-ours"])
def test_order_of_steps_and_writes(meta: dict[str, Any], expected: list[str]) -> None:
    log: list[str] = []
    obj = {"metadata": {"name": "x", "namespace": NS, **meta}}
    with_finalizer(Recording(log), CONFIGMAPS, obj, OURS,  # type: ignore[arg-type]
                   apply=lambda _: log.append("apply") and None,
                   cleanup=lambda _: log.append("cleanup") and None)
    assert log == expected
