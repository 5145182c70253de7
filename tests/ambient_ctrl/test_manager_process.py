"""Managers as real processes: leader election with failover, a frozen leader that wakes up
after losing its lease, and SIGTERM draining."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3

from ambient_ctrl.testing import eventually, free_port, start_apiserver_process, stop_process
from informers.errors import NotFound
from informers.resource import CONFIGMAPS, LEASES, SECRETS
from informers.rest import ResourceClient, Transport, load_configuration

OPERATOR = Path(__file__).with_name("operator_process.py")
LEASE_DURATION, RETRY_PERIOD = 3.0, 0.5
TAKEOVER = LEASE_DURATION + 2 * RETRY_PERIOD + 1.0
"""How long a standby may take to lead once the leader is gone: the lease duration counted
from when the standby last saw the lease change — up to one retry period after the leader's
last renewal, as it polls every retry period — plus up to one retry period until its next
attempt, plus 1 s of scheduling slack (a shared 2-core machine, three Python processes)."""
WRITES = ("create", "update", "patch", "delete", "deletecollection")


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[tuple[Path, Transport, str]]:
    """The API server as a process: (kubeconfig, a transport to it, its admin endpoint)."""
    admin_port = free_port()
    process, _, kubeconfig = start_apiserver_process(
        tmp_path / "kubeconfig", log=tmp_path / "apiserver.log",
        extra_args=["--admin-port", str(admin_port)])
    transport = Transport(load_configuration(str(kubeconfig)))
    try:
        yield kubeconfig, transport, f"http://127.0.0.1:{admin_port}"
    finally:
        transport.close()
        assert stop_process(process) == 0


def _operator(kubeconfig: Path, identity: str, log: Path, delay: float = 0
              ) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "IDENTITY": identity,
           "RECONCILE_DELAY": str(delay), "PYTHONPATH": str(Path.cwd()),
           "USER_AGENT": f"operator-{identity}/0.1"}
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


def _writes(admin: str, identity: str) -> dict[tuple[str, str], int]:
    """Write requests the server received from one operator, by (verb, resource)."""
    http = urllib3.PoolManager(retries=False)
    try:
        answer = http.request("GET", f"{admin}/requests?agent=operator-{identity}")
        assert answer.status == 200, answer.data
        return {(row["verb"], row["resource"]): row["count"] for row in orjson.loads(answer.data)
                if row["verb"] in WRITES}
    finally:
        http.clear()


def test_failover_after_the_leader_is_killed(cluster: Any, tmp_path: Path) -> None:
    kubeconfig, transport, _ = cluster
    cms = ResourceClient(transport, CONFIGMAPS)
    ops = {name: _operator(kubeconfig, name, tmp_path / f"{name}.log") for name in ("a", "b")}
    try:
        leader = eventually(lambda: _holder(transport), timeout=20)
        standby = "b" if leader == "a" else "a"
        cms.create({"metadata": {"name": "one", "namespace": "default"}, "data": {"v": "1"}})
        eventually(lambda: (_writer(transport, "one") or {}).get("writer") == leader)
        ops[leader].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        ops[leader].wait(10)
        # The standby takes over once the lease expires (see TAKEOVER), counted from the kill.
        eventually(lambda: _holder(transport) == standby,
                   timeout=TAKEOVER - (time.monotonic() - killed))
        cms.patch("one", {"data": {"v": "2"}}, "default")
        cms.create({"metadata": {"name": "two", "namespace": "default"}, "data": {"v": "1"}})
        eventually(lambda: (_writer(transport, "two") or {}).get("writer") == standby)
        eventually(lambda: (_writer(transport, "one") or {}).get("writer") == standby)
    finally:
        for process in ops.values():
            stop_process(process)


def test_a_frozen_leader_wakes_up_writes_nothing_and_exits_1(cluster: Any,
                                                             tmp_path: Path) -> None:
    """The leader is frozen (SIGSTOP) in the middle of a reconcile, past its lease; the standby
    takes over. Woken (SIGCONT), the old leader must not finish that reconcile's write — nor
    any other — and must exit non-zero at once, without draining."""
    kubeconfig, transport, admin = cluster
    cms = ResourceClient(transport, CONFIGMAPS)
    delay = 2.0  # each reconcile: mark the ConfigMap, wait 2 s, then write the Secret
    ops = {name: _operator(kubeconfig, name, tmp_path / f"{name}.log", delay)
           for name in ("a", "b")}
    try:
        leader = eventually(lambda: _holder(transport), timeout=20)
        standby = "b" if leader == "a" else "a"
        cms.create({"metadata": {"name": "slow", "namespace": "default"}, "data": {"v": "1"}})
        eventually(lambda: (cms.get("slow", "default")["metadata"].get("annotations") or {})
                   .get("started-by") == leader)
        ops[leader].send_signal(signal.SIGSTOP)  # frozen inside the reconcile's 2 s wait
        frozen = time.monotonic()
        eventually(lambda: _holder(transport) == standby, timeout=TAKEOVER)
        assert time.monotonic() - frozen > LEASE_DURATION - 1.0, "not before the lease expired"
        before = _writes(admin, leader)  # it is frozen: it cannot send anything meanwhile
        assert before.get(("patch", "configmaps")) == 1, before
        ops[leader].send_signal(signal.SIGCONT)  # its reconcile's wait is long over
        assert ops[leader].wait(15) == 1, "lost leadership: exit non-zero"
        assert _writes(admin, leader) == before, "no write after its lease expired"
        eventually(lambda: (_writer(transport, "slow") or {}).get("writer") == standby,
                   timeout=15)
    finally:
        for process in ops.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
            stop_process(process)


def test_sigterm_drains_in_flight_reconcile_releases_lease_and_exits_0(
        cluster: Any, tmp_path: Path) -> None:
    kubeconfig, transport, _ = cluster
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
