"""The wire's cost as the limit for the operator (issue 20 item 1): our operator's CPU per
session in a burst, next to the least any Python operator doing the same job can spend.

Per repeat, interleaved (ours, floor, ours, floor, ...), each on a fresh local API server
(``ambient-ctrl apiserver --simulate kubelet`` in its own process):

* **ours (recorded)**: the server's request recorder (``envtest.recording``, admin
  ``POST /record``) armed for our operator's User-Agent before it starts; once it is watching
  and quiet (its start-up writes done: the mark), N sessions (``--sessions``, 1,000) are
  POSTed by the benchmark's writer process as ``bench/operators.py``'s burst does; CPU
  (utime + stime of the operator's process, ``/proc``) from just before the first POST until
  it went quiet after the last session was ``Running``. Then the recording is read back: every
  request the operator sent, reads included (they show which watches it opened; the burst's
  reads are the informers' start-up lists, from before the mark).
* **floor (replayed)**: a fresh server with the same set-up; the operator's pre-mark writes
  applied (uncounted); then ``bench/_wire_replayer.py`` — urllib3 and orjson, nothing else —
  opens the operator's watches (same paths and selectors, at the fresh server's version), the
  benchmark POSTs the same N sessions the same way, and the replayer sends the operator's burst
  writes (bodies as recorded, uids and patch preconditions rewritten: ``_wire_plan``) from as
  many threads as the operator has workers, a session's writes in order, while
  ``orjson.loads``-ing every watch event line. Its CPU (per thread: writers + watch readers) is
  the floor; the server's counters check that it sent the same writes by verb and resource,
  and its answers that the server took every one.
* **raw floor**: the same replay once more with the writes on sockets driven by hand (the
  request written as one buffer, the answer read by ``readline``: ``RawConnection``). Our
  transport's ordinary requests cost less than urllib3's (``informers.http1``), so urllib3
  is no floor for them any more; this is the stricter one (reported beside issue 20's).
* **profile**: once more, ours under py-spy (``--nonblocking --gil``: Python CPU, not waits),
  its samples grouped by concept (``_profile.py``): where the CPU above the floor goes.

Results (reported, never asserted; goal: ours ≤ 1.5x the floor): ``bench/results/floor.json``
and ``floor.md`` (the report: ``_floor_report.py``).

    .venv/bin/python bench/wire_floor.py [--sessions 1000] [--repeat 3] [--workers 4]
                                         [--no-profile] [--out bench/results/floor]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _profile
import _report
import _wire_plan
import orjson
import urllib3
from _floor_report import GOAL, markdown
from _harness import (
    BENCH_AGENT,
    NAMESPACE,
    Cluster,
    Environment,
    ProcStats,
    cluster,
    environment,
    settle,
    write_delta,
)
from _sessions import Tracker, create_sessions
from _wire_replayer import AGENT as FLOOR_AGENT
from operators import profiled

from informers.rest import ResourceClient
from reconcilers.resources import AGENTIC_SESSIONS

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OURS_AGENT = "ambient-ctrl"
PREFIX = "floor"
SESSION = re.compile(rf"\b{PREFIX}-\d{{5}}(?!\d)")


def session_names(count: int) -> list[str]:
    return [f"{PREFIX}-{i:05d}" for i in range(count)]


def _admin(admin_url: str, method: str, path: str, body: Any = None) -> Any:
    """A request to the server's admin endpoint; its JSON answer."""
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=120))
    try:
        response = http.request(method, admin_url + path,
                                body=None if body is None else orjson.dumps(body))
        if response.status != 200:
            raise RuntimeError(f"admin {method} {path}: {response.status} {response.data!r}")
        return orjson.loads(response.data)
    finally:
        http.clear()


def _uids(sessions: ResourceClient) -> dict[str, str]:
    """Session name → uid in the benchmark's namespace."""
    return {item["metadata"]["name"]: item["metadata"]["uid"]
            for item in sessions.list(NAMESPACE)["items"]}


@dataclass(frozen=True, slots=True)
class Recording:
    requests: list[dict[str, Any]]
    mark: int
    """Requests sent before the burst (start-up)."""
    uids: dict[str, str]
    """Session name → uid on the recording server."""


# ours ---------------------------------------------------------------------------------------------
def _burst(env: Environment, names: list[str], profile: Path | None, quiet: float
           ) -> dict[str, Any]:
    """The burst on ``env``'s operator: CPU, writes, seconds (bench/operators.py's way)."""
    tracker = Tracker(env.transport, NAMESPACE).start()
    try:
        counts, cpu = env.requests.operator_counts(), env.stats.cpu_seconds()
        with profiled(env.stats.pid, profile and profile / f"{env.operator}-floor-burst.txt"):
            sent = create_sessions(env.url, NAMESPACE, names, agent=BENCH_AGENT)
            complete = tracker.wait_running(names, timeout=60 + len(names) / 10,
                                            alive=env.alive)
            settle(env, quiet=quiet)
        seen = [tracker.running_seen[n] for n in names if n in tracker.running_seen]
    finally:
        tracker.stop()
    cpu = env.stats.cpu_seconds() - cpu
    writes = write_delta(counts, env.requests.operator_counts())
    return {"sessions": len(names), "complete": complete, "cpu_seconds": round(cpu, 3),
            "cpu_ms_per_session": round(cpu * 1000 / len(names), 3),
            "seconds": round(max(seen) - min(sent.values()), 2) if seen else None,
            "writes": writes, "writes_per_session": round(sum(writes.values()) / len(names), 2),
            "peak_rss": env.stats.memory().get("peak_rss")}


def run_ours(sessions: int, workers: int, workdir: Path, *, profile: Path | None = None,
             quiet: float = 2.0) -> tuple[dict[str, Any], Recording | None]:
    """Our operator on a burst of ``sessions``, its requests recorded (not when profiled);
    the operator is quiet when it wrote nothing and idled for ``quiet`` seconds."""
    record = profile is None
    arm = (lambda world: _admin(world.admin_url, "POST", "/record", {"agent": OURS_AGENT})) \
        if record else None
    with environment("ours", workdir, objects=sessions, workers=workers,
                     before_start=arm) as env:
        settle(env, quiet=quiet)
        admin = env.requests.admin_url
        mark = _admin(admin, "GET", "/record")["kept"] if record else 0
        names = session_names(sessions)
        result = _burst(env, names, profile, quiet)
        result["commands"] = env.commands
        if not record:
            return result, None
        recorded = _admin(admin, "GET", "/record")
        result["recorded"] = {k: recorded[k] for k in ("kept", "dropped")}
        if recorded["dropped"]:
            raise RuntimeError(f"the recorder dropped {recorded['dropped']} requests")
        return result, Recording(recorded["requests"], mark, _uids(env.sessions))


# the floor ----------------------------------------------------------------------------------------
class Replayer:
    """``bench/_wire_replayer.py`` in its own process, spoken to over its stdin and stdout."""

    def __init__(self, url: str, watches: list[str], workers: int, quiet: float,
                 http: str = "urllib3") -> None:
        self.process = subprocess.Popen([sys.executable, str(HERE / "_wire_replayer.py")],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._watchdog = threading.Timer(600, self.process.kill)
        self._watchdog.start()
        self._send({"url": url, "watches": watches, "workers": workers, "quiet": quiet,
                    "http": http})
        ready = self._receive()
        if ready.get("errors"):
            raise RuntimeError(f"the replayer's watches failed: {ready['errors'][:3]}")
        self.stats = ProcStats(self.process.pid)

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(orjson.dumps(message) + b"\n")
        self.process.stdin.flush()

    def _receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the replayer exited with {self.process.wait(10)}")
        message: dict[str, Any] = orjson.loads(line)
        return message

    def replay(self, plan_path: Path) -> dict[str, Any]:
        self._send({"plan": str(plan_path)})
        result: dict[str, Any] = self._receive()["result"]
        return result

    def close(self) -> None:
        self._watchdog.cancel()
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def _apply(world: Cluster, writes: list[_wire_plan.Write]) -> None:
    """The operator's set-up writes, as the bench agent (uncounted)."""
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=60))
    try:
        for _, _, method, target, headers, body in writes:
            response = http.request(method, world.server.url + target, body=body.encode(),
                                    headers={**headers, "User-Agent": f"{BENCH_AGENT}/1"})
            if response.status >= 400 and response.status != 409:
                raise RuntimeError(f"set-up {method} {target}: {response.status}")
    finally:
        http.clear()


def run_floor(recording: Recording, workers: int, workdir: Path, *, quiet: float = 2.0,
              http: str = "urllib3") -> dict[str, Any]:
    """The replay of ``recording`` against a fresh server with the same sessions, its writes
    through ``http`` (``urllib3`` or ``raw``); done after the last write and ``quiet`` seconds
    without a watch event."""
    names = sorted(recording.uids)
    plan = _wire_plan.build(recording.requests, recording.mark, SESSION, {})
    with cluster(len(names)) as world:
        _apply(world, plan.setup)
        sessions = ResourceClient(world.transport, AGENTIC_SESSIONS)
        version = sessions.list(NAMESPACE, limit=1)["metadata"]["resourceVersion"]
        replayer = Replayer(world.server.url,
                            [_wire_plan.at_version(t, version) for t in plan.watches], workers,
                            quiet, http)
        try:
            cpu = replayer.stats.cpu_seconds()
            create_sessions(world.server.url, NAMESPACE, names, agent=BENCH_AGENT)
            uids = _wire_plan.uid_map(recording.uids, _uids(sessions))
            rewritten = _wire_plan.build(recording.requests, recording.mark, SESSION, uids)
            plan_path = workdir / "plan.json"
            plan_path.write_bytes(orjson.dumps(rewritten.sessions))
            result = replayer.replay(plan_path)
            process_cpu = replayer.stats.cpu_seconds() - cpu
        finally:
            replayer.close()
        served = {f"{r['verb']} {r['resource']}": r["count"] for r in _admin(
            world.admin_url, "GET", f"/requests?agent={FLOOR_AGENT.split('/')[0]}")}
    writes, watch = result["writes"], result["watch"]
    floor = writes["cpu"] + watch["cpu"]
    return {"sessions": len(names), "cpu_seconds": round(floor, 3),
            "cpu_ms_per_session": round(floor * 1000 / len(names), 3),
            "writes_cpu_ms_per_session": round(writes["cpu"] * 1000 / len(names), 3),
            "watch_cpu_ms_per_session": round(watch["cpu"] * 1000 / len(names), 3),
            "process_cpu_seconds": round(process_cpu, 3),
            "writes_seconds": round(writes["seconds"], 2),
            "statuses": writes["statuses"],
            "rejected": _rejected(writes["statuses"], rewritten.repeated_creates()),
            "repeated_creates": rewritten.repeated_creates(),
            "writes_recorded": rewritten.writes_by_resource(),
            "writes_served": {k: n for k, n in served.items()
                              if k.split(" ")[0] in _wire_plan.WRITE_VERBS},
            "write_bytes_per_session": round(writes["bytes"] / len(names)),
            "watch": {"streams": watch["streams"], "events": watch["events"],
                      "events_per_session": round(watch["events"] / len(names), 1),
                      "bytes_per_session": round(watch["bytes"] / len(names)),
                      "errors": watch["errors"]},
            "setup_writes": len(plan.setup)}


def _rejected(statuses: dict[str, int], repeated_creates: int) -> int:
    """Answers >= 400, but for as many 409s to creates as the recording repeated creates
    (the operator got those too)."""
    failed = sum(n for key, n in statuses.items() if int(key.rsplit(" ", 1)[1]) >= 400)
    conflicts = sum(n for key, n in statuses.items()
                    if key.startswith("create ") and key.endswith(" 409"))
    return failed - min(conflicts, repeated_creates)


# the run ------------------------------------------------------------------------------------------
def _stats(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3),
            "max": round(max(values), 3)}


def summarise(runs: list[dict[str, Any]], profile: dict[str, Any] | None) -> dict[str, Any]:
    ours = [r["ours"]["cpu_ms_per_session"] for r in runs]
    floor = [r["floor"]["cpu_ms_per_session"] for r in runs]
    ratios = [o / f for o, f in zip(ours, floor, strict=True)]
    summary = {"ours_cpu_ms_per_session": _stats(ours),
               "floor_cpu_ms_per_session": _stats(floor),
               "ratio": _stats(ratios), "goal": f"≤ {GOAL}x",
               "goal_met": statistics.median(ratios) <= GOAL,
               "floor_writes_ms_per_session": _stats(
                   [r["floor"]["writes_cpu_ms_per_session"] for r in runs]),
               "floor_watch_ms_per_session": _stats(
                   [r["floor"]["watch_cpu_ms_per_session"] for r in runs])}
    if all("raw_floor" in r for r in runs):
        raw = [r["raw_floor"]["cpu_ms_per_session"] for r in runs]
        summary.update(
            raw_floor_cpu_ms_per_session=_stats(raw),
            raw_floor_writes_ms_per_session=_stats(
                [r["raw_floor"]["writes_cpu_ms_per_session"] for r in runs]),
            raw_ratio=_stats([o / f for o, f in zip(ours, raw, strict=True)]))
    if profile:
        summary["above_floor_ms_per_session"] = round(
            summary["ours_cpu_ms_per_session"]["median"]
            - summary["floor_cpu_ms_per_session"]["median"], 3)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000, help="sessions in the burst")
    parser.add_argument("--repeat", type=int, default=3, help="ours/floor pairs (interleaved)")
    parser.add_argument("--workers", type=int, default=4,
                        help="our --max-concurrent-reconciles, and the replayer's writers")
    parser.add_argument("--no-profile", action="store_true",
                        help="skip the profiled run of ours (py-spy)")
    parser.add_argument("--keep-profile", type=Path, default=None, metavar="FILE",
                        help="keep py-spy's raw samples (collapsed stacks) in FILE")
    parser.add_argument("--out", type=Path, default=RESULTS / "floor",
                        help="results path without suffix (.json and .md are written)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    machine = _report.machine()
    runs: list[dict[str, Any]] = []
    profile: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        workdir = Path(tmp)
        for repeat in range(args.repeat):
            print(f"repeat {repeat + 1}/{args.repeat}: ours ...", flush=True)
            ours, recording = run_ours(args.sessions, args.workers, workdir)
            assert recording is not None
            print(f"  ours: {ours['cpu_ms_per_session']} ms/session; floor ...", flush=True)
            floor = run_floor(recording, args.workers, workdir)
            print(f"  floor: {floor['cpu_ms_per_session']} ms/session "
                  f"(ratio {ours['cpu_ms_per_session'] / floor['cpu_ms_per_session']:.2f})",
                  flush=True)
            raw = run_floor(recording, args.workers, workdir, http="raw")
            print(f"  floor with raw HTTP writes: {raw['cpu_ms_per_session']} ms/session "
                  f"(ratio {ours['cpu_ms_per_session'] / raw['cpu_ms_per_session']:.2f})",
                  flush=True)
            runs.append({"ours": ours, "floor": floor, "raw_floor": raw})
        if not args.no_profile:
            print("profile: ours under py-spy ...", flush=True)
            profiled_run, _ = run_ours(args.sessions, args.workers, workdir,
                                       profile=workdir / "profile")
            samples = workdir / "profile" / "ours-floor-burst.txt"
            if args.keep_profile and samples.exists():
                args.keep_profile.parent.mkdir(parents=True, exist_ok=True)
                args.keep_profile.write_bytes(samples.read_bytes())
            profile = {"run": {k: profiled_run[k] for k in ("cpu_ms_per_session", "seconds")},
                       **_profile.summarise(samples, ms_per_session=profiled_run[
                           "cpu_ms_per_session"])} if samples.exists() else {
                "error": "py-spy wrote no samples (not installed, or ptrace not allowed)"}
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "command": [sys.executable, *sys.argv] if argv is None else argv,
              "args": {k: str(v) for k, v in vars(args).items()}, "machine": machine,
              "load_after": [round(x, 2) for x in os.getloadavg()],
              "seconds": round(time.monotonic() - started, 1),
              "summary": summarise(runs, profile), "runs": runs, "profile": profile,
              "server_command": runs[0]["ours"]["commands"]["apiserver"] if runs else None}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result, __doc__))
    print(markdown(result, __doc__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
