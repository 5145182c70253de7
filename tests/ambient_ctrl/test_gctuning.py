"""GC tuning: frozen and raised while a manager runs, as before once it returned."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ambient_ctrl.manager import Manager, ManagerOptions
from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from foundation import gctuning
from informers.resource import CONFIGMAPS

from .test_manager import QUIET, Noop, Running


@pytest.fixture()
def api() -> Iterator[LocalAPIServer]:
    with LocalAPIServer() as server:
        yield server


def test_tune_then_restore() -> None:
    before = gc.get_threshold()
    previous = gctuning.tune()
    try:
        assert previous == before
        assert gc.get_threshold() == gctuning.THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gctuning.restore(previous)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_thresholds_and_freeze_apart() -> None:
    before = gc.get_threshold()
    previous = gctuning.raise_thresholds()
    try:
        assert previous == before and gc.get_threshold() == gctuning.THRESHOLDS
        assert gc.get_freeze_count() == 0  # nothing frozen before the caches hold anything
        gctuning.freeze()
        assert gc.get_freeze_count() > 0
    finally:
        gctuning.restore(previous)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


@pytest.mark.parametrize("tune", [True, False], ids=["tuned", "left-alone"])
def test_manager_tunes_while_it_runs_and_restores(api: LocalAPIServer, tune: bool) -> None:
    before = gc.get_threshold()
    manager = Manager(kubeconfig=api.kubeconfig,
                      options=ManagerOptions(**QUIET, tune_gc=tune))
    with Running(manager):
        eventually(lambda: manager.server.readyz.aggregate().status == 200)  # caches synced
        expected = gctuning.THRESHOLDS if tune else before
        eventually(lambda: gc.get_threshold() == expected)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_collection_pauses_while_the_caches_fill_and_resumes_once_they_did(
        api: LocalAPIServer) -> None:
    """The first lists allocate most and keep most: automatic collection waits for them
    (bounded by the sync timeout), then runs as before."""
    assert gc.isenabled()
    manager = Manager(kubeconfig=api.kubeconfig, options=ManagerOptions(**QUIET))
    manager.builder("noop").for_(CONFIGMAPS).complete(Noop())
    api.faults.pause()  # the first list hangs: the caches cannot fill yet
    try:
        with Running(manager):
            eventually(lambda: not gc.isenabled(), message="collection not paused")
            api.faults.resume()
            eventually(lambda: manager.server.readyz.aggregate().status == 200)
            assert gc.isenabled()
    finally:
        api.faults.resume()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_sync_that_times_out_resumes_collection(api: LocalAPIServer) -> None:
    manager = Manager(kubeconfig=api.kubeconfig,
                      options=ManagerOptions(**QUIET, cache_sync_timeout=0.5))
    manager.builder("noop").for_(CONFIGMAPS).complete(Noop())
    api.faults.pause()
    try:
        running = Running(manager)
        with running:
            running.thread.join(30)
        assert running.code == [1]
    finally:
        api.faults.resume()
    assert gc.isenabled() and gc.get_freeze_count() == 0
