"""Our AgenticSession operator next to the same operator written with kopf 1.45, and next to
the physical limit of this machine: the workloads of issues 9 and 20, run back to back by one
command.

Per operator and repeat, a fresh local API server (``--simulate kubelet``: pods go Pending →
Running → Ready in ~0.5 s) and the operator in its own process; then, in order, on that one
server (each phase starts after the operator went quiet, and counts only its own window):

Both operators do upstream's job for a pod session created as upstream's backend creates it
(ServiceAccount, Role, RoleBinding, TokenRequest, token Secret, runner Pod, Service,
NetworkPolicy, annotations, status), the kopf peer with our rendering.

* **burst**: N sessions (2,000) POSTed as fast as a writer process with 8 threads can
  (~3k/s, faster than either operator) → seconds from the first POST until the watcher saw the
  last session ``Running``; sessions/s; the operator's API writes per session counted by the
  server (POST/PUT/PATCH/DELETE of every client but the benchmark), in all and by verb and
  resource; the operator's CPU seconds
  (``/proc/<pid>/stat``, until it went quiet) and peak RSS (VmHWM); the operator's log lines
  at INFO and above per session (ours tells a session's story in ~6 lines: it must not flood);
* **steady**: 100 sessions/s for 60 s (paced writer) → p50/p99 of POST sent → first watch event
  of the session's runner pod ("child"), and of POST sent → the session seen ``Running``;
  sessions are waited for until 30 s after the last POST: one not seen by then counts as
  slower than every seen one (a percentile among them is reported as unknown, "beyond" the
  wait), so an operator that falls behind the rate is measured, not waited on for minutes;
* **idle**: topped up to 10,000 sessions, all Running (their pods in the operator's cache),
  then 60 s without changes → the operator's CPU % of one core and its API requests — ours
  only by default: kopf needs ~500 s to run 10,000 sessions, more than ``make bench`` (under
  10 minutes) holds; ``make bench-full`` runs kopf's idle too (``--peer-only``);

and once per repeat, for our informer only (kopf has no informer cache to compare):

* **ingest**: ``bench/informer_ingest.py`` — N pods (``make bench``: 20,000) through a
  reflector + SharedInformer vs urllib3 + ``orjson.loads`` of the same stream in the same run;
  bytes per cached pod vs the pod's compact JSON size.

Goals (issues 9 and 20) are reported ✓/✗, never asserted. Results: a table on stdout,
``bench/results/latest.json`` and ``bench/results/latest.md``.

    .venv/bin/python bench/operators.py [--scale 0.05] [--repeat N] [--only burst,steady,...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import _report
from _harness import (
    BENCH_AGENT,
    NAMESPACE,
    OPERATORS,
    Environment,
    environment,
    log_lines,
    settle,
    write_delta,
)
from _sessions import Tracker, create_sessions

from foundation import gctuning

RESULTS = Path(__file__).resolve().parent / "results"
WORKLOADS = ("burst", "steady", "idle", "ingest")
PEER_WORKLOADS = ("burst", "steady")
"""What kopf runs by default: its idle phase needs 10,000 sessions Running, ~500 s of kopf at
its ~20 sessions/s, which ``make bench`` (under 10 minutes) cannot hold; ``make bench-full``
runs it (``--peer-only burst,steady,idle``)."""
STEADY_GRACE = 30.0
"""How long after the last POST of the steady phase its sessions are waited for: an operator
that falls behind the rate is measured on what it did, not waited on for minutes."""


@dataclass(frozen=True, slots=True)
class Sizes:
    """The issue's sizes times ``scale`` (with floors that keep a quick run meaningful)."""

    burst: int
    steady_rate: float
    steady_seconds: float
    idle_sessions: int
    idle_seconds: float
    ingest_objects: int

    @classmethod
    def scaled(cls, scale: float, rate: float) -> Sizes:
        return cls(burst=max(20, round(2000 * scale)), steady_rate=rate,
                   steady_seconds=max(3.0, 60 * scale),
                   idle_sessions=max(50, round(10000 * scale)),
                   idle_seconds=max(5.0, 60 * scale),
                   ingest_objects=max(1000, round(50000 * scale)))


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def latencies(values: list[float], offered: int, waited: float) -> dict[str, Any]:
    """p50/p99/max in ms over ``offered`` sessions, of which ``values`` were seen within
    ``waited`` seconds: the unseen count as slower than any seen, so a percentile that falls
    among them is not known (None) — only that it exceeds ``waited`` (``beyond_ms``)."""
    padded = values + [math.inf] * max(0, offered - len(values))

    def known(q: float) -> float | None:
        value = percentile(padded, q)
        return None if value is None or math.isinf(value) else value

    return {"seen": len(values), "unseen": offered - len(values),
            "p50_ms": _ms(known(50)), "p99_ms": _ms(known(99)),
            "max_ms": _ms(max(values, default=None)) if len(values) == offered else None,
            "beyond_ms": None if len(values) == offered else _ms(waited)}


class Run:
    """The workloads of one operator on one server, in order; names are unique per run."""

    def __init__(self, env: Environment, tracker: Tracker, sizes: Sizes,
                 profile: Path | None = None, profile_server: Path | None = None) -> None:
        self.env, self.tracker, self.sizes, self.profile = env, tracker, sizes, profile
        self.profile_server = profile_server
        self.created: list[str] = []

    def _names(self, prefix: str, count: int) -> list[str]:
        return [f"{prefix}-{i:05d}" for i in range(count)]

    def _create(self, names: list[str], rate: float | None = None) -> dict[str, float]:
        sent = create_sessions(self.env.url, NAMESPACE, names, agent=BENCH_AGENT, rate=rate)
        self.created += names
        return sent

    def _wait(self, names: list[str], timeout: float | None = None) -> bool:
        """Every session Running, bounded: an operator slower than 10 sessions/s times out."""
        return self.tracker.wait_running(names, timeout=timeout or 60 + len(names) / 10,
                                         alive=self.env.alive)

    def _measured(self, action: Callable[[], dict[str, Any]], name: str) -> dict[str, Any]:
        """``action``'s result plus the operator's writes and CPU from before it until the
        operator went quiet afterwards."""
        counts, cpu = self.env.requests.operator_counts(), self.env.stats.cpu_seconds()
        server_user, server_system = self.env.server_stats.cpu_times()
        reconciles = self.env.reconciles()
        log_start = self.env.log.stat().st_size if self.env.log.exists() else 0
        out = self.profile and self.profile / f"{self.env.operator}-{name}.txt"
        server_out = (self.profile_server
                      and self.profile_server / f"apiserver-{self.env.operator}-{name}.txt")
        with profiled(self.env.stats.pid, out), profiled(self.env.server_stats.pid, server_out):
            result = action()
            # An operator left with a backlog is not waited for to go quiet (it would not soon).
            result["settle_seconds"] = round(settle(
                self.env, timeout=120 if result.get("complete", True) else 5), 1)
        result["log_lines"], _ = log_lines(self.env.log, log_start)
        writes = write_delta(counts, self.env.requests.operator_counts())
        result.update(writes=writes, write_total=sum(writes.values()),
                      cpu_seconds=round(self.env.stats.cpu_seconds() - cpu, 2),
                      **_server_cpu(self.env.server_stats.cpu_times(), server_user, server_system),
                      **self.env.stats.memory())
        if reconciles is not None:
            result["reconciles"] = (self.env.reconciles() or 0) - reconciles
        return result

    def burst(self) -> dict[str, Any]:
        names = self._names("burst", self.sizes.burst)

        def action() -> dict[str, Any]:
            sent = self._create(names)
            complete = self._wait(names)
            seen = [self.tracker.running_seen[n] for n in names if n in self.tracker.running_seen]
            seconds = max(seen) - min(sent.values()) if seen else float("nan")
            return {"sessions": len(names), "running": len(seen), "complete": complete,
                    "seconds": round(seconds, 2),
                    "sessions_per_s": round(len(seen) / seconds, 1) if seen else 0.0,
                    "writer_seconds": round(max(sent.values()) - min(sent.values()), 2)}

        result = self._measured(action, "burst")
        result["writes_per_session"] = round(result["write_total"] / len(names), 2)
        result["cpu_ms_per_session"] = round(result["cpu_seconds"] * 1000 / len(names), 2)
        result["log_lines_per_session"] = round(result["log_lines"] / len(names), 2)
        return result

    def steady(self) -> dict[str, Any]:
        """Sessions POSTed at the steady rate for the steady seconds; each waited for until
        :data:`STEADY_GRACE` seconds after the last POST."""
        rate = self.sizes.steady_rate
        names = self._names("steady", round(rate * self.sizes.steady_seconds))

        def action() -> dict[str, Any]:
            sent = self._create(names, rate=rate)
            complete = self._wait(names, timeout=STEADY_GRACE)
            waited = time.monotonic() - max(sent.values())  # what each unseen one had at least
            child = [self.tracker.child_seen[n] - sent[n] for n in names
                     if n in self.tracker.child_seen]
            running = [self.tracker.running_seen[n] - sent[n] for n in names
                       if n in self.tracker.running_seen]
            ready = [self.tracker.running_seen[n] - self.tracker.pod_ready_seen[n]
                     for n in names
                     if n in self.tracker.running_seen and n in self.tracker.pod_ready_seen]
            span = max(sent.values()) - min(sent.values())
            return {"sessions": len(names), "complete": complete,
                    "offered_rate": round((len(names) - 1) / span, 1) if span else None,
                    "child": latencies(child, len(names), waited),
                    "running": latencies(running, len(names), waited),
                    "pod_ready_to_running": {"p50_ms": _ms(percentile(ready, 50)),
                                             "p99_ms": _ms(percentile(ready, 99))}}

        result = self._measured(action, "steady")
        result["writes_per_session"] = round(result["write_total"] / len(names), 2)
        return result

    def _fill(self, names: list[str]) -> dict[str, Any]:
        if names:
            self._create(names)
        return {"sessions": len(names), "complete": self._wait(names) if names else True}

    def idle(self) -> dict[str, Any]:
        fill = self._names("idle", max(0, self.sizes.idle_sessions - len(self.created)))
        filled = self._measured(lambda: self._fill(fill), "idle-fill")
        counts, cpu = self.env.requests.operator_counts(), self.env.stats.cpu_seconds()
        reconciles = self.env.reconciles()
        started = time.monotonic()
        time.sleep(self.sizes.idle_seconds)
        window = time.monotonic() - started
        after = self.env.requests.operator_counts()
        requests = after.copy()
        requests.subtract(counts)
        writes = write_delta(counts, after)
        return {"sessions": len(self.created), "fill": filled,
                "running": sum(n in self.tracker.running_seen for n in self.created),
                "seconds": round(window, 1),
                "cpu_percent": round((self.env.stats.cpu_seconds() - cpu) / window * 100, 2),
                "writes": sum(writes.values()), "write_breakdown": writes,
                "reconciles": None if reconciles is None else
                (self.env.reconciles() or 0) - reconciles,
                "requests": {f"{v} {r}": n for (v, r), n in sorted(requests.items()) if n},
                **self.env.stats.memory()}


def _server_cpu(now: tuple[float, float], user: float, system: float) -> dict[str, float]:
    """The server's CPU seconds since (``user``, ``system``): in all, and the kernel's part."""
    return {"server_cpu_seconds": round(sum(now) - user - system, 2),
            "server_system_seconds": round(now[1] - system, 2)}


@contextlib.contextmanager
def profiled(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy (samples while holding the GIL: CPU, not waits) on process ``pid`` during the
    block, written to ``out`` (collapsed stacks); nothing without ``out`` or py-spy."""
    spy = shutil.which("py-spy", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                       os.environ.get("PATH", "")]))
    if out is None or spy is None:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([spy, "record", "-p", str(pid), "-r", "250", "-f", "raw",
                                "--gil", "--nonblocking", "-o", str(out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # attached before the work starts
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def run_operator(operator: str, sizes: Sizes, workloads: list[str], workers: int,
                 workdir: Path, profile: Path | None = None,
                 profile_server: Path | None = None) -> dict[str, Any]:
    """The operator workloads for one operator on a fresh server."""
    with environment(operator, workdir, objects=sizes.idle_sessions + sizes.burst + round(
            sizes.steady_rate * sizes.steady_seconds), workers=workers) as env:
        tracker = Tracker(env.transport, NAMESPACE).start()
        run = Run(env, tracker, sizes, profile, profile_server)
        result: dict[str, Any] = {"commands": env.commands}
        try:
            for workload in ("burst", "steady", "idle"):
                if workload in workloads:
                    print(f"  {operator}: {workload} ...", flush=True)
                    result.setdefault("speed_probe_ms", {})[workload] = _report.speed_probe()
                    result[workload] = getattr(run, workload)()
        finally:
            tracker.stop()
        result["requests_by_agent"] = env.requests.by_agent()
    return result


def run_ingest(objects: int, source: Path | None) -> dict[str, Any]:
    """``bench/informer_ingest.py`` at ``objects`` pods (its own server), one run each; or the
    result it wrote in this ``make bench`` (``source``), instead of running it twice."""
    if source is not None:
        return dict(json.loads(source.read_text()), source=str(source))
    import informer_ingest

    return dict(informer_ingest.run(objects, 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="sizes and durations times this (0.05: a quick run)")
    parser.add_argument("--repeat", type=int, default=1, help="runs; medians are reported")
    parser.add_argument("--rate", type=float, default=100.0, help="steady sessions/s")
    parser.add_argument("--workers", type=int, default=8,
                        help="our --max-concurrent-reconciles (its default: 8)")
    parser.add_argument("--only", default=",".join(WORKLOADS),
                        help=f"comma-separated workloads ({', '.join(WORKLOADS)}; "
                             "ingest: ours only)")
    parser.add_argument("--peer-only", default=",".join(PEER_WORKLOADS),
                        help="of those, what kopf runs (its idle phase takes ~10 minutes)")
    parser.add_argument("--operators", default=",".join(OPERATORS),
                        help="comma-separated operators (ours, kopf)")
    parser.add_argument("--ingest-from", type=Path, default=None, metavar="JSON",
                        help="take the ingest figures from bench/informer_ingest.py's result "
                             "file (make bench runs it just before) instead of running it")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="py-spy each operator during each workload into DIR")
    parser.add_argument("--profile-server", type=Path, default=None, metavar="DIR",
                        help="py-spy the API server during each workload into DIR")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest",
                        help="results path without suffix (.json and .md are written)")
    parser.add_argument("--logs", type=Path, default=None, metavar="DIR",
                        help="keep the operators' logs in DIR (default: a temporary directory)")
    parser.add_argument("--render", action="store_true",
                        help="only rewrite the markdown and table from the existing .json")
    args = parser.parse_args(argv)
    if args.render:
        return _write(json.loads(args.out.with_suffix(".json").read_text()), args.out)
    workloads = [w for w in args.only.split(",") if w]
    peer_workloads = [w for w in args.peer_only.split(",") if w]
    operators = [o for o in args.operators.split(",") if o]
    sizes = Sizes.scaled(args.scale, args.rate)
    # This process times every session (its watchers): a full collection of its heap (the
    # kubernetes package, ~40 ms) would pause them and show as the operator's latency.
    gctuning.tune()
    started, load_before = time.monotonic(), [round(x, 2) for x in os.getloadavg()]
    runs = []
    with (contextlib.nullcontext(str(args.logs)) if args.logs else
          tempfile.TemporaryDirectory(prefix="bench-operators-")) as tmp:
        Path(tmp).mkdir(parents=True, exist_ok=True)
        for repeat in range(args.repeat):
            print(f"repeat {repeat + 1}/{args.repeat}: {asdict(sizes)}", flush=True)
            run: dict[str, Any] = {}
            for operator in operators:
                mine = workloads if operator == "ours" else [w for w in workloads
                                                             if w in peer_workloads]
                if set(mine) & {"burst", "steady", "idle"}:
                    run[operator] = run_operator(operator, sizes, mine, args.workers,
                                                 Path(tmp), args.profile, args.profile_server)
            if "ingest" in workloads:
                print("  ours: ingest" + (f" (from {args.ingest_from})" if args.ingest_from
                                        else " ..."), flush=True)
                run["ingest"] = run_ingest(sizes.ingest_objects, args.ingest_from)
            runs.append(run)
    result = _report.summarise(runs, sizes=asdict(sizes), args=vars(args) | {
        "out": str(args.out)}, argv=[sys.executable, *sys.argv] if argv is None else argv,
        seconds=time.monotonic() - started, load_before=load_before)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    return _write(result, args.out)


def _write(result: dict[str, Any], out: Path) -> int:
    out.with_suffix(".md").write_text(_report.markdown(result))
    print(_report.table(result))
    print(f"written to {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
