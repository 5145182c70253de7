"""Fresh work first (issue 20 item 3): a standby takes over N sessions; how soon do sessions
created during its catch-up get their runner pod, without the priority queue and with it?

On one local API server (``--simulate kubelet``), with our operator run with leader election:

1. leader **A** reconciles N sessions (default 10,000) until all are ``Running``, then goes quiet;
2. **before**: standby **B** (``--priority-queue=false``) starts, syncs its caches and queues
   the N sessions its informers listed; A is stopped (SIGTERM: it releases the Lease); from the
   moment B reports leading (``leader_election_master_status``) sessions are POSTed at
   ``--rate`` per second until B has handed out its backlog of N listed sessions (its
   catch-up). For each session POSTed during the catch-up: the time from its POST to the
   first watch event showing its runner pod (the "child");
3. **after**: the same with standby **C** (priorities on, the default) taking over from B.

The N sessions are already reconciled: the catch-up re-reads each and writes nothing (the
writes counted during it are the fresh sessions'), so what a fresh session waits for is the
backlog ahead of it in the queue. The end of the catch-up, in each mode exactly: without
priorities, when the first fresh session got its pod (it was queued behind the whole
backlog); with them, when the standby's low-priority queue (``workqueue_depth{priority="-100"}``)
is empty for the first time. Latencies are p50/p99/max of the sessions POSTed during the
catch-up; goal p99 <= 1 s (reported, not asserted).

    .venv/bin/python bench/failover.py [--sessions 10000] [--rate 20]

``FAILOVER_SESSIONS`` sets the default of ``--sessions``. Results: a table on stdout and
``bench/results/failover.json``. About 6 minutes for 10,000 sessions on 2 cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import urllib3
from _harness import (
    BENCH_AGENT,
    NAMESPACE,
    REGISTRY_NAMESPACE,
    Cluster,
    Requests,
    cluster,
    start_operator,
    write_delta,
)
from _sessions import Tracker, create_sessions, session
from operators import percentile
from prometheus_client.parser import text_string_to_metric_families

from ambient_ctrl.testing import eventually, free_port, stop_process
from ambient_ctrl.workqueue import LOW_PRIORITY
from reconcilers.resources import AGENTIC_SESSIONS
from reconcilers.wiring import CONTROLLER_NAME

RESULTS = Path(__file__).resolve().parent / "results"
LEASE = "agenticsession-operator"
RETRY_PERIOD = 1.0
"""The standby's Lease retry period: it takes over at most this long after A released."""
GOAL_P99 = 1.0


@dataclass
class Operator:
    """One of our operators, with leader election, seen through its /metrics."""

    name: str
    process: subprocess.Popen[bytes]
    metrics_url: str
    argv: list[str]
    http: urllib3.PoolManager = field(default_factory=lambda: urllib3.PoolManager(retries=False))

    def metric(self, family: str, **labels: str) -> float:
        """The sum of the samples named ``family`` (a counter's with ``_total``) with
        ``labels``, read from its /metrics now."""
        text = self.http.request("GET", self.metrics_url, timeout=10).data.decode()
        return sum(sample.value for metric in text_string_to_metric_families(text)
                   for sample in metric.samples if sample.name == family
                   and all(sample.labels.get(k) == v for k, v in labels.items()))

    def depth(self, **priority: str) -> float:
        """Sessions waiting in its session controller's queue (all priorities, or one)."""
        return self.metric("workqueue_depth", name=CONTROLLER_NAME, **priority)

    def leading(self) -> bool:
        return self.metric("leader_election_master_status", name=LEASE) == 1

    def busy(self) -> bool:
        return self.depth() > 0 or self.metric("workqueue_unfinished_work_seconds",
                                             name=CONTROLLER_NAME) > 0

    def stop(self) -> None:
        stop_process(self.process, timeout=30)
        self.http.clear()


def start(name: str, kubeconfig: Path, workdir: Path, workers: int, *,
          priorities: bool) -> Operator:
    ports = {"metrics": free_port(), "health": free_port()}
    extra = ("--leader-elect", "--leader-election-namespace", REGISTRY_NAMESPACE,
             "--leader-election-identity", name,
             "--leader-election-retry-period", str(RETRY_PERIOD),
             f"--priority-queue={'true' if priorities else 'false'}")
    process, argv = start_operator("ours", kubeconfig, workdir, workers, ports, extra=extra,
                                   log_name=f"ours-{name}")
    operator = Operator(name, process, f"http://127.0.0.1:{ports['metrics']}/metrics", argv)
    eventually(lambda: _up(operator), timeout=60, interval=0.2,
               message=f"operator {name} did not serve /metrics",
               ignoring=(urllib3.exceptions.HTTPError,))
    return operator


def _up(operator: Operator) -> bool:
    if operator.process.poll() is not None:
        raise RuntimeError(f"operator {operator.name} exited with {operator.process.returncode}")
    operator.depth()
    return True


def quiet(operator: Operator, seconds: float = 2.0, timeout: float = 600.0) -> None:
    """Until its session queue was empty and idle for ``seconds`` in a row."""
    since = [time.monotonic()]

    def idle() -> bool:
        if operator.busy():
            since[0] = time.monotonic()
        return time.monotonic() - since[0] >= seconds

    eventually(idle, timeout=timeout, interval=0.2, message=f"{operator.name} never went quiet")


class Poster:
    """POSTs sessions one by one at ``rate`` per second from a thread of this process, until
    told to stop; the local send time of each."""

    def __init__(self, url: str, prefix: str, rate: float) -> None:
        self.sent: dict[str, float] = {}
        self.failed: list[str] = []
        self._url = f"{url}{AGENTIC_SESSIONS.path(NAMESPACE)}"
        self._prefix, self._rate = prefix, rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"poster-{prefix}")

    def _run(self) -> None:
        http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=60))
        headers = {"Content-Type": "application/json", "User-Agent": f"{BENCH_AGENT}/1"}
        started = time.monotonic()
        index = 0
        while not self._stop.is_set():
            name = f"{self._prefix}-{index:05d}"
            body = orjson.dumps(session(name, NAMESPACE))
            self.sent[name] = time.monotonic()
            response = http.request("POST", self._url, body=body, headers=headers)
            if response.status != 201:
                self.failed.append(f"{name}: {response.status}")
            index += 1
            self._stop.wait(max(0.0, started + index / self._rate - time.monotonic()))
        http.clear()

    @contextlib.contextmanager
    def running(self) -> Iterator[Poster]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(30)


def take_over(old: Operator, standby: Operator, *, priorities: bool, listed: int, url: str,
              tracker: Tracker, requests: Requests, rate: float, max_catch_up: float
              ) -> dict[str, Any]:
    """Stop ``old`` once ``standby`` queued the ``listed`` sessions; post sessions during the
    standby's catch-up; their creation → runner pod latencies."""
    eventually(lambda: standby.depth() >= listed, timeout=300, interval=0.2,
               message=f"{standby.name} did not queue the {listed} sessions")
    stopped = time.monotonic()
    old.stop()
    eventually(standby.leading, timeout=30, interval=0.02,
               message=f"{standby.name} did not take over")
    took_over = time.monotonic()
    writes = requests.operator_counts()
    with Poster(url, f"during-{standby.name}", rate).running() as poster:
        deadline = took_over + max_catch_up
        while not caught_up(standby, poster, tracker, priorities=priorities) and (
                time.monotonic() < deadline):
            time.sleep(0.05)
        ended = time.monotonic()
    writes = write_delta(writes, requests.operator_counts())
    if poster.failed:
        raise RuntimeError(f"{len(poster.failed)} creates failed, e.g. {poster.failed[:3]}")
    during = {name: sent for name, sent in poster.sent.items() if sent < ended}
    eventually(lambda: all(name in tracker.child_seen for name in poster.sent), timeout=300,
               interval=0.1, message="a session created during the catch-up got no pod")
    latencies = [tracker.child_seen[name] - sent for name, sent in during.items()]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return {"takeover_seconds": round(took_over - stopped, 2),
            "catch_up_seconds": round(ended - took_over, 2),
            "catch_up_complete": ended < deadline,
            "created_during_catch_up": len(during),
            "child_p50_ms": None if p50 is None else round(p50 * 1000, 1),
            "child_p99_ms": None if p99 is None else round(p99 * 1000, 1),
            "child_max_ms": round(max(latencies, default=0.0) * 1000, 1),
            "p99_goal_met": p99 is not None and p99 <= GOAL_P99,
            "writes_during_catch_up": writes}


def caught_up(standby: Operator, poster: Poster, tracker: Tracker, *, priorities: bool
              ) -> bool:
    """Whether ``standby`` handed out its backlog of listed sessions (see the module doc)."""
    if priorities:
        return standby.depth(priority=str(LOW_PRIORITY)) == 0
    first = next(iter(dict(poster.sent)), None)
    return first is not None and first in tracker.child_seen


def populate(leader: Operator, world: Cluster, tracker: Tracker, sessions: int) -> None:
    """``sessions`` sessions, all Running under ``leader``, which then went quiet."""
    eventually(leader.leading, timeout=60, interval=0.1, message="a did not lead")
    names = [f"s-{i:05d}" for i in range(sessions)]
    began = time.monotonic()
    create_sessions(world.server.url, NAMESPACE, names, agent=BENCH_AGENT)
    if not tracker.wait_running(names, timeout=120 + sessions / 10):
        raise RuntimeError("the leader did not get every session Running")
    quiet(leader)
    print(f"{sessions} sessions Running under a in {time.monotonic() - began:.0f} s",
          flush=True)


def run(sessions: int, rate: float, workers: int, max_catch_up: float,
        workdir: Path) -> dict[str, Any]:
    """Populate, then the two takeovers; each phase's figures."""
    with cluster(sessions) as world, contextlib.ExitStack() as stack:
        tracker = Tracker(world.transport, NAMESPACE).start()
        stack.callback(tracker.stop)

        def launch(name: str, priorities: bool) -> Operator:
            operator = start(name, world.server.kubeconfig, workdir, workers,
                             priorities=priorities)
            stack.callback(operator.stop)
            return operator

        leader = launch("a", True)
        populate(leader, world, tracker, sessions)
        requests = Requests(world.admin_url, "ours")
        phases: dict[str, Any] = {}
        for phase, name, priorities in (("before", "b", False), ("after", "c", True)):
            standby = launch(name, priorities)
            phases[phase] = {"priority_queue": priorities, **take_over(
                leader, standby, priorities=priorities, listed=len(tracker.child_seen),
                url=world.server.url, tracker=tracker, requests=requests, rate=rate,
                max_catch_up=max_catch_up)}
            print(f"{phase}: {phases[phase]}", flush=True)
            quiet(standby)
            leader = standby
        return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int,
                        default=int(os.environ.get("FAILOVER_SESSIONS", "10000")))
    parser.add_argument("--rate", type=float, default=20.0,
                        help="sessions POSTed per second during the catch-up")
    parser.add_argument("--workers", type=int, default=8, help="--max-concurrent-reconciles")
    parser.add_argument("--max-catch-up", type=float, default=300.0,
                        help="seconds of posting at most, should a catch-up not end")
    parser.add_argument("--out", type=Path, default=RESULTS / "failover.json")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="failover-") as tmp:
        try:
            phases = run(args.sessions, args.rate, args.workers, args.max_catch_up, Path(tmp))
        except BaseException:
            for log in sorted(Path(tmp).glob("*.log")):
                print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-2000:]}")
            raise
    report = {"benchmark": "bench/failover.py", "issue": "20 item 3",
              "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "sessions": args.sessions, "rate": args.rate, "workers": args.workers,
              "seconds": round(time.monotonic() - started), "goal_p99_ms": GOAL_P99 * 1000,
              "phases": phases}
    print(f"\n{'':<8}{'catch-up s':>11}{'created':>9}{'child p50 ms':>14}{'p99 ms':>10}"
          f"{'max ms':>10}")
    for phase, row in phases.items():
        print(f"{phase:<8}{row['catch_up_seconds']:>11}{row['created_during_catch_up']:>9}"
              f"{row['child_p50_ms']!s:>14}{row['child_p99_ms']!s:>10}{row['child_max_ms']:>10}")
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
