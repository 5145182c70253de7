"""Leader failover and SIGTERM drain of the real operator: ``ambient-ctrl run --leader-elect``
processes against the local API server process (kubelet simulator), with sessions in flight.

1. Two replicas campaign for the Lease; sessions are created and, while the leader is
   creating their children, the leader is SIGKILLed. The standby takes the Lease within the
   lease duration plus a retry period, every session converges to Running with exactly one
   of each of its children — runner Pod, Service, token Secret (whose ``k8s-token`` was minted
   by a TokenRequest for the ServiceAccount that exists), ServiceAccount, Role, RoleBinding —
   counted by controller owner uid (a Service through its Pod), and the killed
   leader made no request after it died. Until then the standby wrote nothing but its bids
   for the Lease.
2. More sessions; while the new leader works on them it gets SIGTERM: it exits 0 and
   releases the Lease (empty holder). A third replica takes over at once and finishes.

Each replica has its own identity and User-Agent, so the server's per-client request counts
(its admin endpoint) tell their writes apart.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ambient_ctrl.testing import eventually, stop_process

from .operator_process import (
    CHILD_KINDS,
    POD_RUNTIME,
    REGISTRY_NAMESPACE,
    SESSIONS,
    Operator,
    World,
    backend_body,
    expected_children,
    owners,
    start_world,
    stop_world,
    token_claims,
)

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.local_only("counts each replica's requests through the local "
                                     "server's admin endpoint")]

NS = "failover"
LEASE = f"/apis/coordination.k8s.io/v1/namespaces/{REGISTRY_NAMESPACE}/leases/" \
        "agenticsession-operator"
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 5.0, 4.0, 0.5
SLACK = 3.0
"""Seconds allowed beyond lease duration + retry period on a loaded machine."""
WRITES = frozenset({"create", "update", "patch", "delete"})
FIRST_BATCH, SECOND_BATCH = 30, 20


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[World]:
    started = start_world(tmp_path, registry=[POD_RUNTIME], namespaces=[NS])
    try:
        yield started
    finally:
        stop_world(started)


def replica(world: World, name: str) -> Operator:
    return world.spawn_operator(name, concurrency=4, args=(
        "--leader-elect", "--leader-election-identity", name, "--user-agent", f"{name}/1.0",
        "--leader-election-lease-duration", str(LEASE_DURATION),
        "--leader-election-renew-deadline", str(RENEW_DEADLINE),
        "--leader-election-retry-period", str(RETRY_PERIOD)))


def lease(world: World) -> dict[str, Any]:
    status, body = world.raw.request("GET", LEASE)
    return dict(body["spec"]) if status == 200 else {}


def holder(world: World) -> str:
    return str(lease(world).get("holderIdentity") or "")


def writes(world: World, agent: str, *, leases: bool = False) -> Counter[tuple[str, str]]:
    """(verb, resource) → count of the writes the server received from ``agent``; the Lease's
    own only with ``leases``."""
    return Counter({(row["verb"], row["resource"]): row["count"]
                    for row in world.admin_call("GET", f"/requests?agent={agent}")
                    if row["verb"] in WRITES and (leases or row["resource"] != "leases")})


def create_sessions(world: World, prefix: str, count: int) -> list[str]:
    names = [f"{prefix}-{i}" for i in range(count)]
    for name in names:
        status, body = world.raw.request("POST", f"{SESSIONS}/namespaces/{NS}/agenticsessions",
                                         backend_body(name, NS, prompt="hi"))
        assert status == 201, (status, body)
    return names


def phases(world: World) -> dict[str, str]:
    return {s["metadata"]["name"]: (s.get("status") or {}).get("phase", "")
            for s in world.raw.items(f"{SESSIONS}/namespaces/{NS}/agenticsessions")}


def runner_pods(world: World) -> list[dict[str, Any]]:
    return world.raw.items(f"/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dambient-code-runner")


def all_running(world: World, names: list[str]) -> bool:
    current = phases(world)
    waiting = {n: current.get(n) for n in names if current.get(n) != "Running"}
    assert not waiting, f"{len(waiting)} sessions not Running: {sorted(waiting.items())[:5]}"
    return True


def assert_one_child_each(world: World, names: list[str]) -> None:
    """Exactly the children upstream gives a session, one of each kind, by controller uid;
    every controlled child of the namespace belongs to a session; each token was minted for
    the ServiceAccount that exists now."""
    sessions = {s["metadata"]["name"]: s
                for s in world.raw.items(f"{SESSIONS}/namespaces/{NS}/agenticsessions")}
    assert sorted(sessions) == sorted(names)
    objects = {plural: world.raw.items(f"{prefix}/namespaces/{NS}/{plural}")
               for plural, prefix in CHILD_KINDS.items()}
    owned, _ = owners(sessions, objects)
    for name in names:
        for plural, expected in expected_children(name, vm=False).items():
            assert sorted(owned.get((plural, name), [])) == expected, \
                (name, plural, owned.get((plural, name)))
    controlled = sum(1 for objs in objects.values() for o in objs  # but the project's RBAC
                     if o["metadata"].get("ownerReferences") and not any(
                         r.get("kind") == "ProjectSettings"
                         for r in o["metadata"]["ownerReferences"]))
    assert controlled == sum(len(v) for v in owned.values()), "children of no session"
    accounts = {a["metadata"]["name"]: a["metadata"]["uid"] for a in objects["serviceaccounts"]}
    for secret in objects["secrets"]:
        if secret["metadata"]["name"].startswith("ambient-runner-token-"):
            claims = token_claims(secret)
            assert claims["serviceaccount"]["uid"] == accounts[claims["serviceaccount"]["name"]]


def test_failover_on_sigkill_then_drain_on_sigterm(world: World) -> None:
    a, b = replica(world, "replica-a"), replica(world, "replica-b")
    third: Operator | None = None
    try:
        ops = {op.name: op for op in (a, b)}
        leader = ops[eventually(lambda: holder(world), timeout=20, interval=0.1,
                                message="nobody took the Lease")]
        standby = b if leader is a else a

        # 1. SIGKILL the leader while it creates the first sessions' children.
        first = create_sessions(world, "first", FIRST_BATCH)
        eventually(lambda: runner_pods(world), timeout=20, interval=0.02,
                   message="the leader created no runner pod")
        leader.process.send_signal(signal.SIGKILL)
        assert leader.process.wait(10) == -signal.SIGKILL
        killed_at = time.monotonic()
        running_at_kill = sum(p == "Running" for p in phases(world).values())
        assert running_at_kill < FIRST_BATCH, "nothing was in flight when the leader died"
        assert not writes(world, standby.name), "the standby wrote while it was not leading"
        after_kill = writes(world, leader.name, leases=True)
        assert after_kill, "the leader never wrote"

        eventually(lambda: holder(world) == standby.name,
                   timeout=LEASE_DURATION + RETRY_PERIOD + SLACK, interval=0.05,
                   message=f"{standby.name} did not take the Lease over")
        took_over = time.monotonic() - killed_at
        eventually(lambda: all_running(world, first), timeout=30, interval=0.2)
        assert_one_child_each(world, first)
        assert writes(world, leader.name, leases=True) == after_kill, \
            "the killed leader's requests kept arriving after it died"
        assert lease(world)["leaseTransitions"] >= 1

        # 2. SIGTERM the new leader while it works on the second batch.
        second = create_sessions(world, "second", SECOND_BATCH)
        eventually(lambda: any(p["metadata"]["name"].startswith("second-")
                               for p in runner_pods(world)),
                   timeout=20, interval=0.02, message="no second-batch runner pod")
        standby.process.send_signal(signal.SIGTERM)
        in_flight = sum(phases(world).get(n) != "Running" for n in second)
        assert standby.process.wait(30) == 0, standby.log_tail()
        released = lease(world)
        # Released as the manager does it: no holder, and a 1 s duration for other clients.
        assert not released.get("holderIdentity") and released["leaseDurationSeconds"] == 1, \
            released
        drained = writes(world, standby.name, leases=True)

        third = replica(world, "replica-c")
        eventually(lambda: holder(world) == "replica-c", timeout=RETRY_PERIOD + SLACK,
                   interval=0.05, message="replica-c did not take the released Lease")
        eventually(lambda: all_running(world, first + second), timeout=30, interval=0.2)
        assert_one_child_each(world, first + second)
        assert writes(world, standby.name, leases=True) == drained
        print(f"\nfailover: {running_at_kill}/{FIRST_BATCH} sessions Running when the leader "
              f"was killed, Lease taken over {took_over:.1f} s later (lease "
              f"{LEASE_DURATION:.0f} s); {in_flight}/{SECOND_BATCH} in flight at SIGTERM")
    finally:
        for op in (a, b, third):
            if op is not None:
                stop_process(op.process, timeout=35)
