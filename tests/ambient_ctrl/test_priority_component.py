"""Fresh work first, against the local API server: objects created while a controller works
through a big initial list are reconciled before the rest of that list (issue 20 item 3), and
after it with priorities turned off (the contrast shows the test can fail).

No timing assertions: the order of reconciles is what is asserted. The one worker is held on
its first request until the fresh objects are in the queue, so the order does not depend on
how fast anything runs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ambient_ctrl.controller import ControllerOptions
from ambient_ctrl.envtest import LocalAPIServer
from ambient_ctrl.manager import Manager, ManagerOptions
from ambient_ctrl.reconcile import Request, Result
from ambient_ctrl.testing import eventually
from informers.resource import CONFIGMAPS
from tests.conftest import RawClient

NS = "default"
LISTED = 300
FRESH = 3


class Recording:
    """Records the order of reconciles of our ConfigMaps; the first one waits for ``gate``."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.gate = threading.Event()
        self.lock = threading.Lock()

    def reconcile(self, request: Request) -> Result:
        if not request.name.startswith(("listed-", "fresh-")):
            return Result()  # e.g. the namespace's kube-root-ca.crt
        with self.lock:
            self.order.append(request.name)
            first = len(self.order) == 1
        if first:
            self.gate.wait(30)
        return Result()


@pytest.fixture()
def server() -> Iterator[LocalAPIServer]:
    with LocalAPIServer() as api:
        yield api


def create(client: RawClient, name: str) -> None:
    status, body = client.post(f"/api/v1/namespaces/{NS}/configmaps",
                               {"metadata": {"name": name}, "data": {"k": "v"}})
    assert status == 201, body


@pytest.mark.parametrize("priorities", [True, False], ids=["priorities", "fifo"])
def test_objects_created_during_the_initial_list_are_reconciled_first(
        server: LocalAPIServer, priorities: bool) -> None:
    with RawClient(server.url) as client:
        for index in range(LISTED):
            create(client, f"listed-{index:03}")
        manager = Manager(kubeconfig=server.kubeconfig, options=ManagerOptions(
            metrics_address="127.0.0.1:0", probe_address="127.0.0.1:0",
            graceful_shutdown_timeout=5))
        reconciler = Recording()
        controller = (manager.builder("order").for_(CONFIGMAPS)
                      .with_options(ControllerOptions(use_priority_queue=priorities))
                      .complete(reconciler))
        codes: list[int] = []
        runner = threading.Thread(target=lambda: codes.append(manager.run()))
        runner.start()
        try:
            # The worker holds one listed object; the rest of the list waits in the queue.
            eventually(lambda: len(reconciler.order) == 1
                       and controller.queue.depth() >= LISTED - 1)
            fresh = [f"fresh-{index}" for index in range(FRESH)]
            for name in fresh:
                create(client, name)
            eventually(lambda: controller.queue.depth() >= LISTED - 1 + FRESH)
            reconciler.gate.set()
            eventually(lambda: len(reconciler.order) == LISTED + FRESH, timeout=30)
        finally:
            reconciler.gate.set()
            manager.stop()
            runner.join(30)
    assert codes == [0]
    order = reconciler.order
    assert sorted(order) == sorted([f"listed-{i:03}" for i in range(LISTED)] + fresh)
    where = order[1:1 + FRESH] if priorities else order[-FRESH:]
    assert where == fresh, order
