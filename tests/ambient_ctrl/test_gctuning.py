"""GC tuning: frozen and raised while a manager runs, as before once it returned."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ambient_ctrl.manager import Manager, ManagerOptions
from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from foundation import gctuning

from .test_manager import QUIET, Running


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
