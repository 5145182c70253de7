"""The manager in-process against the local server: pool sizing, registered indexes, cache
mutation detection, /healthz for a failing informer, no threads left behind, and lost
leadership (no drain, writes refused, exit 1)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from ambient_ctrl.controller import ControllerOptions
from ambient_ctrl.leaderelection import NotLeaderError
from ambient_ctrl.manager import POOL_HEADROOM, Manager, ManagerOptions
from ambient_ctrl.reconcile import Request, Result
from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from foundation.clock import RealClock
from informers.resource import CONFIGMAPS, EVENTS, PODS, SECRETS
from informers.store import MutatedCacheError

NS = "default"
QUIET = {"metrics_address": "0", "probe_address": "0"}


class Noop:
    def reconcile(self, request: Request) -> Result:
        return Result()


class Running:
    """A manager's ``run`` on a thread; its exit code once it returned."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self.code: list[int] = []
        self.thread = threading.Thread(target=lambda: self.code.append(manager.run()),
                                       name="test-manager-run")

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.manager.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


@pytest.fixture()
def api() -> Iterator[LocalAPIServer]:
    with LocalAPIServer() as server:
        yield server


def _manager(api: LocalAPIServer, **options: Any) -> Manager:
    return Manager(kubeconfig=api.kubeconfig, options=ManagerOptions(**{**QUIET, **options}))


def test_pool_is_sized_from_the_work(api: LocalAPIServer) -> None:
    manager = _manager(api)
    (manager.builder("a").for_(CONFIGMAPS).owns(SECRETS)
     .with_options(ControllerOptions(max_concurrent_reconciles=2)).complete(Noop()))
    (manager.builder("b").for_(PODS)
     .with_options(ControllerOptions(max_concurrent_reconciles=3)).complete(Noop()))
    # workers 2 + 3, one watch each for configmaps, secrets and pods, and the headroom
    assert manager.pool_size() == 2 + 3 + 3 + POOL_HEADROOM
    with Running(manager):
        eventually(lambda: manager.transport.pool_size == 2 + 3 + 3 + POOL_HEADROOM)
        assert manager.informers.wait_for_sync(10)


def test_an_explicit_pool_size_wins(api: LocalAPIServer) -> None:
    manager = _manager(api, max_concurrent_requests=7)
    manager.builder("a").for_(CONFIGMAPS).complete(Noop())
    assert manager.pool_size() == 7
    with Running(manager):
        assert manager.informers.wait_for_sync(10)
        assert manager.transport.pool_size == 7


def test_indexes_registered_before_run_serve_client_lists(api: LocalAPIServer) -> None:
    manager = _manager(api)
    manager.index(CONFIGMAPS, "by-owner-label",
                  lambda cm: [(cm["metadata"].get("labels") or {}).get("owner", "")])
    manager.builder("a").for_(CONFIGMAPS).complete(Noop())
    for name, owner in (("one", "x"), ("two", "y"), ("three", "x")):
        manager.client.create(CONFIGMAPS, {"metadata": {"name": name, "namespace": NS,
                                                        "labels": {"owner": owner}}})
    with Running(manager):
        assert manager.informers.wait_for_sync(10)
        eventually(lambda: len(manager.client.list(CONFIGMAPS, NS)) == 3)
        listed = manager.client.list(CONFIGMAPS, index=("by-owner-label", "x"))
        assert sorted(o["metadata"]["name"] for o in listed) == ["one", "three"]
        with pytest.raises(RuntimeError, match="before the manager runs"):
            manager.index(CONFIGMAPS, "late", lambda cm: [])


def test_cache_mutation_detection_by_option(api: LocalAPIServer) -> None:
    manager = _manager(api, detect_cache_mutations=True)
    manager.builder("a").for_(CONFIGMAPS).complete(Noop())
    manager.client.create(CONFIGMAPS, {"metadata": {"name": "shared", "namespace": NS}})
    with Running(manager):
        eventually(lambda: manager.client.get(CONFIGMAPS, "shared", NS) is not None)
        cached = manager.client.get(CONFIGMAPS, "shared", NS)
        assert cached is not None
        cached["metadata"]["name"] = "edited in place"
        with pytest.raises(MutatedCacheError):
            manager.client.get(CONFIGMAPS, "shared", NS)
        cached["metadata"]["name"] = "shared"


def test_healthz_reports_an_informer_failing_too_long(api: LocalAPIServer) -> None:
    api.faults.fail(code=500, verbs=["list"], resources=["secrets"])  # every list, for now
    manager = _manager(api, probe_address="127.0.0.1:0", informer_unhealthy_after=0.5)
    manager.builder("a").for_(SECRETS).complete(Noop())
    http = urllib3.PoolManager(retries=False)

    def healthz(path: str = "/healthz") -> tuple[int, str]:
        answer = http.request("GET", manager.server.probe_url + path)
        return answer.status, answer.data.decode()

    try:
        with Running(manager):
            eventually(lambda: manager.server.probe_address is not None)
            status, body = eventually(lambda: (s := healthz())[0] == 500 and s, timeout=10)
            assert "[-]informers failed" in body
            status, why = healthz("/healthz/informers")
            assert status == 500 and "secrets failing for" in why and "ServerError" in why
            api.faults.clear()  # the API answers again: the informer recovers, and so do we
            eventually(lambda: healthz()[0] == 200, timeout=15)
            assert manager.informers.wait_for_sync(10)
    finally:
        http.clear()


def test_stop_leaves_no_threads_behind(api: LocalAPIServer) -> None:
    before = set(threading.enumerate())
    manager = _manager(api, leader_election=True, lease_duration=3.0, renew_deadline=2.0,
                       retry_period=0.2, probe_address="127.0.0.1:0")
    (manager.builder("a").for_(CONFIGMAPS).owns(SECRETS)
     .with_options(ControllerOptions(max_concurrent_reconciles=2)).complete(Noop()))
    recorder = manager.event_recorder("a")
    with Running(manager) as running:
        cm = manager.client.create(CONFIGMAPS, {"metadata": {"name": "x", "namespace": NS}})
        eventually(lambda: any(t.name == "a-worker-1" for t in threading.enumerate()))
        assert any(t.name == "events-a" for t in threading.enumerate())
        recorder.record(cm, "Normal", reason="Seen", message="queued, written by the manager's")
    assert running.code == [0]
    assert set(threading.enumerate()) - before == set()
    events = manager.client.resource(EVENTS).list(NS)["items"]
    assert [e["reason"] for e in events if e["involvedObject"]["name"] == "x"] == ["Seen"]


def test_lost_leadership_stops_at_once_refuses_writes_and_exits_1(api: LocalAPIServer) -> None:
    """Regression: against a hung API server the renewal waited out the transport's 30 s
    timeout before checking its deadline, and the manager then drained reconciles in flight
    for the graceful-shutdown timeout — another process could be leading all that time."""
    entered, release = threading.Event(), threading.Event()
    refused: list[BaseException] = []

    class Stuck:
        def reconcile(self, request: Request) -> Result:
            entered.set()
            release.wait(30)
            try:
                manager.client.create(SECRETS, {"metadata": {"name": "late", "namespace": NS}})
            except NotLeaderError as exc:
                refused.append(exc)
            return Result()

    renew_deadline = 1.0
    manager = _manager(api, leader_election=True, lease_duration=1.5,
                       renew_deadline=renew_deadline, retry_period=0.2,
                       graceful_shutdown_timeout=30.0)
    manager.builder("stuck").for_(CONFIGMAPS).complete(Stuck())
    with Running(manager) as running:
        manager.client.create(CONFIGMAPS, {"metadata": {"name": "x", "namespace": NS}})
        assert entered.wait(15), "leading, and a reconcile is in flight"
        clock = RealClock()
        api.faults.pause()  # the API server hangs: every renewal goes unanswered
        paused = clock.monotonic()
        try:
            running.thread.join(renew_deadline + 5)
            stopped_after = clock.monotonic() - paused
            assert not running.thread.is_alive(), "still running after the renew deadline"
        finally:
            api.faults.resume()
            release.set()
        assert running.code == [1]
        # The renew deadline from the last renewal (at most a retry period before the
        # pause), plus scheduling slack; not the 30 s of a request or of a drain.
        assert stopped_after < renew_deadline + 3.0
        eventually(lambda: len(refused) == 1, timeout=10)
        with pytest.raises(NotLeaderError):
            manager.client.create(SECRETS, {"metadata": {"name": "later", "namespace": NS}})
    assert api.call(lambda c: c.requests[("create", "", "secrets")]) == 0
