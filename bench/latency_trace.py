"""Where a session's time goes between its POST and its runner pod: the request timeline.

Our operator on a fresh local API server (``--simulate kubelet``) with the server's request
recorder armed for it (``envtest.recording``: every request with the server's monotonic time of
arrival); sessions POSTed at ``--rate`` for ``--seconds``; then, per session, each of the
operator's requests that names it (in its path or body) in the order received, as milliseconds
after the session's POST was sent (Linux's monotonic clock is system-wide). Printed: for each
step (the n-th request of a session, with its verb and resource) p50 and p99 over the sessions,
and the gap from the step before — the steps that make issue 20's creation → child latency; the
child's latency by second of the run; the CPU of the operator, the API server, this process (the
watchers) and the writer, and the machine's split; the session controller's reconciles and the
seconds its requests waited in the queue and held a worker. ``--profile FILE``: py-spy of the
operator meanwhile, by concept (``bench/_profile.py``).

    .venv/bin/python bench/latency_trace.py [--rate 100] [--seconds 10] [--workers 4]
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from _harness import BENCH_AGENT, NAMESPACE, Cluster, Environment, environment, settle
from _sessions import Tracker, create_sessions
from operators import percentile, profiled
from wire_floor import OURS_AGENT, _admin

from foundation import gctuning


def timelines(requests: list[dict[str, Any]], sent: dict[str, float]
              ) -> dict[str, list[tuple[str, float]]]:
    """Session name → [(``verb resource``, ms after its POST)] of the requests naming it."""
    out: dict[str, list[tuple[str, float]]] = defaultdict(list)
    names = sorted(sent, key=len, reverse=True)
    for request in requests:
        text = request["target"] + " " + request.get("body", "")
        for name in names:  # longest first: "s-10" is not taken for "s-1"
            if name in text:
                out[name].append((f"{request['verb']} {request['resource']}",
                                  (request["received"] - sent[name]) * 1000))
                break
    return out


def report(lines: dict[str, list[tuple[str, float]]], child: dict[str, float]) -> str:
    """Per step: the most common label, p50/p99 of its time after the POST, and the p50 gap."""
    steps: dict[int, list[tuple[str, float]]] = defaultdict(list)
    gaps: dict[int, list[float]] = defaultdict(list)
    for line in lines.values():
        for index, (label, at) in enumerate(line):
            steps[index].append((label, at))
            gaps[index].append(at - (line[index - 1][1] if index else 0.0))
    out = [f"{'step':>4}  {'request':<34} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'gap p50':>8}"]
    for index in sorted(steps):
        label, count = Counter(label for label, _ in steps[index]).most_common(1)[0]
        times = [at for _, at in steps[index]]
        out.append(f"{index:>4}  {label:<34} {count:>5} {percentile(times, 50):>8.1f} "
                   f"{percentile(times, 99):>8.1f} {percentile(gaps[index], 50):>8.1f}")
    values = list(child.values())
    if values:
        out.append(f"child pod seen by a watcher: p50 {percentile(values, 50):.1f} ms, "
                   f"p99 {percentile(values, 99):.1f} ms over {len(values)}")
    return "\n".join(out)


def _machine() -> list[int]:
    """The machine's CPU ticks (``/proc/stat``'s first line: user nice system idle iowait
    irq softirq steal)."""
    with open("/proc/stat") as stat:
        return [int(v) for v in stat.readline().split()[1:9]]


def _harness_cpu() -> tuple[float, float]:
    """CPU seconds of this process (the watchers) and of its ended children (the writer)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _split(ticks: list[int]) -> tuple[int, int, int, int]:
    user, nice, system, idle, iowait, irq, softirq, steal = ticks
    return user + nice, system + irq + softirq, idle + iowait, steal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=8,
                        help="our --max-concurrent-reconciles (its default: 8)")
    parser.add_argument("--profile", type=Path, default=None, metavar="FILE",
                        help="py-spy the operator while the sessions are created (raw stacks)")
    args = parser.parse_args(argv)
    names = [f"trace-{i:05d}" for i in range(round(args.rate * args.seconds))]
    gctuning.tune()  # as bench/operators.py: the watchers' pauses are not the operator's

    def arm(world: Cluster) -> None:
        _admin(world.admin_url, "POST", "/record", {"agent": OURS_AGENT})

    with tempfile.TemporaryDirectory(prefix="bench-trace-") as tmp, environment(
            "ours", Path(tmp), objects=len(names), workers=args.workers,
            before_start=arm) as env:
        tracker = Tracker(env.transport, NAMESPACE).start()
        try:
            machine, before = _machine(), _harness_cpu()
            cpu = env.stats.cpu_seconds(), env.server_stats.cpu_seconds(), time.monotonic()
            with profiled(env.stats.pid, args.profile), Sampler(env) as sampler:
                sent = create_sessions(env.url, NAMESPACE, names, agent=BENCH_AGENT,
                                       rate=args.rate)
            samples = sampler.samples
            window = time.monotonic() - cpu[2]
            machine = [b - a for a, b in zip(machine, _machine(), strict=True)]
            harness = [(b - a) / window for a, b in zip(before, _harness_cpu(), strict=True)]
            usage = ((env.stats.cpu_seconds() - cpu[0]) / window,
                     (env.server_stats.cpu_seconds() - cpu[1]) / window)
            tracker.wait_running(names, timeout=60, alive=env.alive)
            settle(env)
            time.sleep(0.5)
        finally:
            tracker.stop()
        recorded = _admin(env.requests.admin_url, "GET", "/record")
        metrics = env.requests.http.request("GET", env.metrics_url).data.decode()
    lines = timelines(recorded["requests"], sent)
    child = {n: (tracker.child_seen[n] - sent[n]) * 1000 for n in names
             if n in tracker.child_seen}
    print(f"{len(names)} sessions at {args.rate}/s, {args.workers} workers; while POSTing: "
          f"operator {usage[0]:.0%} of a core, API server {usage[1]:.0%}; machine: "
          + ", ".join(f"{label} {ticks / sum(machine):.0%}" for label, ticks in zip(
              ("user", "system", "idle", "steal"), _split(machine), strict=True))
          + f"; this process (watchers) {harness[0]:.0%}, the writer {harness[1]:.0%}")
    print(report(lines, child))
    _print_by_second(child, sent, samples)
    seen = [(tracker.session_seen[n] - sent[n]) * 1000 for n in names
            if n in tracker.session_seen]
    print(f"session's first watch event at a watcher: p50 {percentile(seen, 50):.1f} ms, "
          f"p99 {percentile(seen, 99):.1f} ms")
    _print_controller(metrics)
    if args.profile is not None:
        _print_profile(args.profile)
    return 0


class Sampler:
    """The operator's and the API server's CPU seconds, sampled each second in the block."""

    def __init__(self, env: Environment) -> None:
        self.samples: list[tuple[float, float, float]] = []
        self._env = env
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append((time.monotonic(), self._env.stats.cpu_seconds(),
                                 self._env.server_stats.cpu_seconds()))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _print_by_second(child: dict[str, float], sent: dict[str, float],
                     samples: list[tuple[float, float, float]]) -> None:
    start = min(sent.values())
    by_second: dict[int, list[float]] = defaultdict(list)
    for name, ms in child.items():
        by_second[int(sent[name] - start)].append(ms)
    print("child p50/max by second of the POST: " + "  ".join(
        f"{percentile(v, 50):.0f}/{max(v):.0f}" for _, v in sorted(by_second.items())))
    print("operator / API server CPU % by second: " + "  ".join(
        f"{(b[1] - a[1]) / (b[0] - a[0]):.0%}/{(b[2] - a[2]) / (b[0] - a[0]):.0%}"
        for a, b in itertools.pairwise(samples)))


def _print_controller(metrics: str) -> None:
    print("the session controller's reconciles, and its queue's and workers' seconds:")
    for line in metrics.splitlines():
        if line.startswith(("workqueue_queue_duration_seconds_sum", "workqueue_work_duration_"
                            "seconds_sum", "workqueue_work_duration_seconds_count",
                            "controller_runtime_reconcile_total")) and \
                'controller="agenticsession"' in line and not line.endswith(" 0.0"):
            print("  " + line)


def _print_profile(path: Path) -> None:
    import _profile

    summary = _profile.summarise(path, top=25)
    print(f"py-spy: {summary['samples']} samples")
    for row in summary["concepts"] + summary["leaves"]:
        print(f"  {row['percent']:5.1f} %  {row['name']}")


if __name__ == "__main__":
    sys.exit(main())
