"""A small operator run as its own process by the leader-election and shutdown tests.

Mirrors ConfigMaps into Secrets annotated with the writer's identity. Settings from the
environment: KUBECONFIG, IDENTITY, RECONCILE_DELAY (seconds, to have a reconcile in flight),
USER_AGENT (so the server counts each process's requests apart).
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from ambient_ctrl.client import Client
from ambient_ctrl.manager import Manager, ManagerOptions
from ambient_ctrl.reconcile import Request, Result
from informers.errors import AlreadyExists
from informers.resource import CONFIGMAPS, SECRETS

IDENTITY = os.environ["IDENTITY"]
DELAY = float(os.environ.get("RECONCILE_DELAY", "0"))
USER_AGENT = os.environ.get("USER_AGENT", "ambient-ctrl/0.1")


class Mirror:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.pause = threading.Event()

    def reconcile(self, request: Request) -> Result:
        cm = self.client.get(CONFIGMAPS, request.name, request.namespace)
        if cm is None:
            return Result()
        if DELAY:
            self.client.patch(CONFIGMAPS, request.name,
                              {"metadata": {"annotations": {"started-by": IDENTITY}}},
                              request.namespace)
            self.pause.wait(DELAY)  # a long reconcile, for the drain test
        body = {"metadata": {"name": f"{request.name}-mirror", "namespace": request.namespace,
                             "annotations": {"writer": IDENTITY,
                                             "source-version": cm["metadata"]["resourceVersion"]}},
                "stringData": dict(cm.get("data") or {})}
        try:
            self.client.create(SECRETS, body)
        except AlreadyExists:
            self.client.mutate(SECRETS, body["metadata"]["name"], request.namespace,
                               lambda s: s.update(metadata={**s["metadata"], **{
                                   "annotations": body["metadata"]["annotations"]}},
                                   stringData=body["stringData"]))
        return Result()


def main() -> int:
    logging.basicConfig(level="INFO", format=f"%(asctime)s {IDENTITY} %(levelname)s "
                                             "%(name)s %(message)s")
    manager = Manager(options=ManagerOptions(
        leader_election=True, leader_election_id="operator-test",
        leader_election_namespace="default", identity=IDENTITY,
        lease_duration=3.0, renew_deadline=2.0, retry_period=0.5,
        graceful_shutdown_timeout=10.0, metrics_address="0", probe_address="0",
        user_agent=USER_AGENT))
    manager.builder("mirror").for_(CONFIGMAPS).complete(Mirror(manager.client))
    manager.install_signal_handlers()
    return manager.run()


if __name__ == "__main__":
    sys.exit(main())
