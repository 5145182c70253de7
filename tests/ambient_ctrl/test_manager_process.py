"""Managers as real processes: leader election with failover, and SIGTERM draining."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ambient_ctrl.testing import eventually, start_apiserver_process, stop_process
from informers.errors import NotFound
from informers.resource import CONFIGMAPS, LEASES, SECRETS
from informers.rest import ResourceClient, Transport, load_configuration

OPERATOR = Path(__file__).with_name("operator_process.py")
LEASE_DURATION, RETRY_PERIOD = 3.0, 0.5


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[tuple[Path, Transport]]:
    process, _, kubeconfig = start_apiserver_process(tmp_path / "kubeconfig",
                                                     log=tmp_path / "apiserver.log")
    transport = Transport(load_configuration(str(kubeconfig)))
    try:
        yield kubeconfig, transport
    finally:
        transport.close()
        assert stop_process(process) == 0


def _operator(kubeconfig: Path, identity: str, log: Path, delay: float = 0
              ) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "IDENTITY": identity,
           "RECONCILE_DELAY": str(delay), "PYTHONPATH": str(Path.cwd())}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, str(OPERATOR)], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _holder(transport: Transport) -> str:
    try:
        lease = ResourceClient(transport, LEASES).get("operator-test", "default")
    except NotFound:
        return ""
    return str(lease["spec"].get("holderIdentity") or "")


def _writer(transport: Transport, name: str) -> dict[str, Any] | None:
    try:
        secret = ResourceClient(transport, SECRETS).get(f"{name}-mirror", "default")
    except NotFound:
        return None
    return secret["metadata"].get("annotations") or {}


def test_failover_after_the_leader_is_killed(cluster: Any, tmp_path: Path) -> None:
    kubeconfig, transport = cluster
    cms = ResourceClient(transport, CONFIGMAPS)
    ops = {name: _operator(kubeconfig, name, tmp_path / f"{name}.log") for name in ("a", "b")}
    try:
        leader = eventually(lambda: _holder(transport), timeout=20)
        standby = "b" if leader == "a" else "a"
        cms.create({"metadata": {"name": "one", "namespace": "default"}, "data": {"v": "1"}})
        eventually(lambda: (_writer(transport, "one") or {}).get("writer") == leader)
        ops[leader].send_signal(signal.SIGKILL)
        ops[leader].wait(10)
        # The standby takes over once the lease expires: lease duration + a retry period.
        eventually(lambda: _holder(transport) == standby,
                   timeout=LEASE_DURATION + RETRY_PERIOD + 5)
        cms.patch("one", {"data": {"v": "2"}}, "default")
        cms.create({"metadata": {"name": "two", "namespace": "default"}, "data": {"v": "1"}})
        eventually(lambda: (_writer(transport, "two") or {}).get("writer") == standby)
        eventually(lambda: (_writer(transport, "one") or {}).get("writer") == standby)
    finally:
        for process in ops.values():
            stop_process(process)


def test_sigterm_drains_in_flight_reconcile_releases_lease_and_exits_0(
        cluster: Any, tmp_path: Path) -> None:
    kubeconfig, transport = cluster
    cms = ResourceClient(transport, CONFIGMAPS)
    operator = _operator(kubeconfig, "solo", tmp_path / "solo.log", delay=1.5)
    try:
        eventually(lambda: _holder(transport) == "solo", timeout=20)
        cms.create({"metadata": {"name": "slow", "namespace": "default"}, "data": {"v": "1"}})
        eventually(lambda: (cms.get("slow", "default")["metadata"].get("annotations") or {})
                   .get("started-by") == "solo")
        operator.send_signal(signal.SIGTERM)
        assert operator.wait(20) == 0
        assert (_writer(transport, "slow") or {}).get("writer") == "solo", \
            "the in-flight reconcile finished before exit"
        assert _holder(transport) == "", "the lease was released on the way out"
    finally:
        stop_process(operator)
