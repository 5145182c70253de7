"""Turns the runs of ``bench/operators.py`` into medians, ratios, goals and text: the printed
table, ``latest.json`` and the markdown summary ``latest.md``.

Each metric is read from every run (a path into its result); the median over runs is reported,
next to the ratio ours/kopf (or ours/limit) and, where issue 9 sets one, its goal with ✓ or ✗.
Goals are reported, never asserted.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

MiB = 1 << 20
WRITE_BUDGET = 11
"""Writes a pod session needs under upstream's contract: 7 creates (ServiceAccount, Role,
RoleBinding, TokenRequest, token Secret, Pod, Service), the session's runner-sa and
runner-token-secret annotations, one status patch per phase change (Pending and Creating in one,
Running) and the Running Event; the namespace's NetworkPolicy is shared by its sessions."""
NETWORK_POLICY_SHARE = 1 / 20
"""The one NetworkPolicy of the namespace, shared by a burst of at least 20 sessions."""


@dataclass(frozen=True, slots=True)
class Metric:
    workload: str
    name: str
    unit: str
    path: tuple[str, ...]
    """Where the value is in an operator's result (``("burst", "sessions_per_s")``)."""
    scale: float = 1.0
    goal: str = ""
    """The issue's goal, as text."""
    check: Callable[[float, float | None], bool | None] | None = None
    """(ours, kopf or limit) → whether the goal is met; None when it cannot be judged (no
    figure to compare with)."""
    compare: str = "kopf"
    """What ours is divided by: "kopf", "limit" or "" (no ratio)."""
    beyond: tuple[str, ...] = ()
    """Where a lower bound is, for a value that was not reached (a percentile that fell among
    sessions never seen: "> bound")."""


METRICS = (
    Metric("burst", "sessions/s until all Running", "1/s", ("burst", "sessions_per_s"),
           goal="≥ 4x kopf", check=lambda o, k: k is not None and o >= 4 * k),
    Metric("burst", "seconds until all Running", "s", ("burst", "seconds")),
    Metric("burst", "API writes per session", "", ("burst", "writes_per_session"),
           goal=f"≤ {WRITE_BUDGET} + NetworkPolicy",
           check=lambda o, _: o <= WRITE_BUDGET + NETWORK_POLICY_SHARE),
    Metric("burst", "operator CPU", "s", ("burst", "cpu_seconds")),
    Metric("burst", "operator CPU per session", "ms", ("burst", "cpu_ms_per_session"),
           goal="≤ ¼ kopf", check=lambda o, k: k is not None and o <= k / 4),
    Metric("burst", "API server CPU", "s", ("burst", "server_cpu_seconds")),
    Metric("burst", "operator peak RSS", "MiB", ("burst", "peak_rss"), scale=1 / MiB),
    Metric("burst", "reconciles per session", "", ("burst", "reconciles_per_session"),
           compare=""),
    Metric("burst", "log lines per session (INFO and above)", "",
           ("burst", "log_lines_per_session")),
    Metric("steady", "offered sessions/s", "1/s", ("steady", "offered_rate"), compare=""),
    Metric("steady", "creation → child p50", "ms", ("steady", "child", "p50_ms"),
           beyond=("steady", "child", "beyond_ms")),
    Metric("steady", "creation → child p99", "ms", ("steady", "child", "p99_ms"),
           goal="≤ 50 ms", check=lambda o, _: o <= 50,
           beyond=("steady", "child", "beyond_ms")),
    Metric("steady", "sessions not seen Running 30 s after the last POST", "",
           ("steady", "running", "unseen")),
    Metric("steady", "creation → Running p50", "ms", ("steady", "running", "p50_ms"),
           beyond=("steady", "running", "beyond_ms")),
    Metric("steady", "creation → Running p99", "ms", ("steady", "running", "p99_ms"),
           beyond=("steady", "running", "beyond_ms")),
    Metric("steady", "API writes per session", "", ("steady", "writes_per_session")),
    Metric("steady", "operator CPU", "s", ("steady", "cpu_seconds")),
    Metric("idle", "sessions (all Running)", "", ("idle", "running"), compare=""),
    Metric("idle", "operator CPU", "%", ("idle", "cpu_percent"),
           goal="≤ 1 %", check=lambda o, _: o <= 1),
    Metric("idle", "API writes", "", ("idle", "writes"), goal="0",
           check=lambda o, _: o == 0),
    Metric("idle", "operator RSS", "MiB", ("idle", "rss"), scale=1 / MiB,
           # kopf's idle phase runs in `make bench-full` only: without it, not judged.
           goal="≤ ½ kopf", check=lambda o, k: None if k is None else o <= k / 2),
    Metric("ingest", "watch events/s, ours (limit: raw orjson)", "1/s",
           ("ingest", "events_per_s", "informer"), goal="≥ 80 % of the limit",
           check=lambda o, limit: limit is not None and o >= 0.8 * limit, compare="limit"),
    Metric("ingest", "bytes per cached pod (limit: compact JSON)", "B",
           ("ingest", "bytes_per_object", "store_tracemalloc"), goal="≤ 1.2x compact JSON",
           check=lambda o, limit: limit is not None and o <= 1.2 * limit, compare="limit"),
)
LIMITS = {("ingest", "events_per_s", "informer"): ("ingest", "events_per_s", "raw_limit"),
          ("ingest", "bytes_per_object", "store_tracemalloc"):
              ("ingest", "bytes_per_object", "served_compact_json")}


def _get(result: dict[str, Any] | None, path: tuple[str, ...]) -> float | None:
    node: Any = result
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, int | float) else None


def _median(runs: list[dict[str, Any]], who: str, path: tuple[str, ...]) -> float | None:
    values = [v for run in runs
              if (v := _get(run.get("ingest") if path[0] == "ingest" else run.get(who),
                            path[1:] if path[0] == "ingest" else path)) is not None]
    return statistics.median(values) if values else None


def _row(metric: Metric, runs: list[dict[str, Any]]) -> dict[str, Any]:
    ours = _median(runs, "ours", metric.path)
    if metric.compare == "limit":
        other = _median(runs, "ours", LIMITS[metric.path])
    else:
        other = _median(runs, "kopf", metric.path) if metric.path[0] != "ingest" else None

    def scaled(value: float | None) -> float | None:
        return None if value is None else round(value * metric.scale, 2)

    ratio = (round(ours / other, 3) if ours is not None and other and metric.compare
             else None)
    met = (metric.check(ours, other) if metric.check and ours is not None else None)
    bounds = {}
    if metric.beyond:  # a value not reached: only its lower bound is known
        for who, value in (("ours", ours), ("kopf", other)):
            bound = _median(runs, who, metric.beyond) if value is None else None
            if bound is not None:
                bounds[who] = scaled(bound)
        if "ours" in bounds and metric.check is not None:
            met = False
    return {"workload": metric.workload, "metric": metric.name, "unit": metric.unit,
            "ours": scaled(ours), metric.compare or "other": scaled(other),
            "ratio": ratio, "ratio_of": f"ours/{metric.compare}" if metric.compare else "",
            "goal": metric.goal, "met": met, "beyond": bounds}


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) * 1024 for line in
                   Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_gib": round(memory / (1 << 30), 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "kopf": _version("kopf"), "kubernetes_client": _version("kubernetes"),
            "orjson": _version("orjson"), "load_average": [round(x, 2) for x in os.getloadavg()]}


def speed_probe(repeat: int = 5) -> float:
    """Milliseconds this machine takes for one fixed piece of pure-Python work (dicts, strings,
    lists: what operators and the local API server are made of), the best of ``repeat``.

    This shared machine's speed moves by half within minutes (the same work took 0.43 and
    0.64 s minutes apart): the probe, taken before each workload, says which phase a figure
    was measured in. Ratios of two operators measured one after the other need it most."""
    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time()
        table: dict[str, tuple[int, list[int]]] = {}
        for i in range(20_000):
            table[str(i)] = (i, [i])
        sum(len(key) + value[0] for key, value in table.items())
        best = min(best, time.thread_time() - started)
    return round(best * 1000, 2)


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def summarise(runs: list[dict[str, Any]], *, sizes: dict[str, Any], args: dict[str, Any],
              argv: list[str], seconds: float, load_before: list[float]) -> dict[str, Any]:
    for run in runs:  # derived per-run figures
        for who in ("ours", "kopf"):
            burst = (run.get(who) or {}).get("burst")
            if burst and burst.get("reconciles") is not None:
                burst["reconciles_per_session"] = round(burst["reconciles"] / burst["sessions"], 2)
    commands: dict[str, list[str]] = {"bench": argv}
    for who in ("ours", "kopf"):
        commands |= (runs[0].get(who) or {}).get("commands", {}) if runs else {}
    ingest = runs[0].get("ingest") if runs else None
    if ingest:
        sizes = sizes | {"ingest_objects": ingest.get("objects")}
        how = f"read from {ingest['source']}" if "source" in ingest else "called in-process"
        commands[f"ingest ({how})"] = [
            "python", "bench/informer_ingest.py", "--objects", str(ingest.get("objects")),
            "--repeat", str(ingest.get("repeat", 1))]
    return {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": machine() | {"load_average_before": load_before},
            "sizes": sizes, "args": args, "seconds": round(seconds, 1), "commands": commands,
            "summary": [_row(metric, runs) for metric in METRICS], "runs": runs}


# text ------------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def _mark(met: bool | None) -> str:
    return "" if met is None else ("✓" if met else "✗")


def _cells(row: dict[str, Any]) -> list[str]:
    other = row.get("kopf", row.get("limit", row.get("other")))
    unit = f" ({row['unit']})" if row["unit"] else ""
    ratio = f"{row['ratio']:.2f} {row['ratio_of']}" if row["ratio"] is not None else ""
    goal = f"{row['goal']} {_mark(row['met'])}".strip()
    bounds = row.get("beyond") or {}

    def value(who: str, figure: Any) -> str:
        return f"> {_fmt(bounds[who])}" if figure is None and who in bounds else _fmt(figure)

    return [row["workload"], row["metric"] + unit, value("ours", row["ours"]),
            value("kopf", other), ratio, goal]


HEADER = ["workload", "metric", "ours", "kopf / limit", "ratio", "goal"]


def _measured(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary rows of workloads that ran (an optional one left out has no figures)."""
    return [row for row in result["summary"]
            if row["ours"] is not None or row.get("kopf", row.get("limit")) is not None
            or row.get("beyond")]


def table(result: dict[str, Any]) -> str:
    rows = [HEADER, *(_cells(r) for r in _measured(result))]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) if i < 5 else c
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
             for r in rows]
    repeat = result["args"]["repeat"]
    return "\n".join([f"operators, scale {result['args']['scale']}, median of {repeat} "
                      f"run(s), {result['seconds']:.0f} s", *lines])


def _markdown_table(result: dict[str, Any]) -> Iterator[str]:
    yield "| " + " | ".join(HEADER) + " |"
    yield "|---|---|---:|---:|---:|---|"
    for row in _measured(result):
        yield "| " + " | ".join(_cells(row)) + " |"


def _writes(result: dict[str, Any]) -> Iterator[str]:
    """Writes per session in the burst by verb and resource, ours next to kopf (first run)."""
    run = result["runs"][0]
    per: dict[str, dict[str, float]] = {}
    for who in ("ours", "kopf"):
        burst = (run.get(who) or {}).get("burst")
        for key, count in ((burst or {}).get("writes") or {}).items():
            per.setdefault(key, {})[who] = count / burst["sessions"]
    if not per:
        return
    yield "| verb resource | ours | kopf |"
    yield "|---|---:|---:|"
    for key in sorted(per, key=lambda k: (k.split(" ", 1)[1], k)):
        cells = [f"{per[key][who]:.2f}" if who in per[key] else "-" for who in ("ours", "kopf")]
        yield f"| {key} | {' | '.join(cells)} |"
    totals = [sum(v.get(who, 0.0) for v in per.values()) for who in ("ours", "kopf")]
    yield f"| **all** | {totals[0]:.2f} | {totals[1]:.2f} |"


HOW = (
    "- Each operator runs in its own process against a fresh local API server "
    "(`ambient-ctrl apiserver --simulate kubelet`: runner pods go Pending → Running → Ready in "
    "~0.5 s); then burst, steady, idle run in that order on "
    "that server, each after the operator went quiet (no write for 2 s).",
    "- **burst**: the sessions are POSTed by a writer process with 8 threads (~3k/s, faster "
    "than either operator); seconds from the first POST until a watcher in the benchmark saw "
    "the last session `Running`. Writes: POST/PUT/PATCH/DELETE counted by the server for every "
    "client but the benchmark. CPU: utime + stime of the operator's process until it went "
    "quiet; peak RSS: its VmHWM.",
    "- **steady**: sessions POSTed at a fixed rate (issue 20: 100/s for 60 s); latency from "
    "the moment each POST was sent to the first watch event showing its runner pod (child) or "
    "the session `Running`. An operator slower than the rate builds a backlog, and these "
    "latencies grow with it. Sessions are waited for until 30 s after the last POST; those "
    "not seen by then count as slower than every seen one, so a percentile that falls among "
    "them shows as \"> the wait\" (what each of them had at least).",
    "- **idle**: sessions topped up to the idle count, all `Running`; then nothing changes for "
    "the window: the operator's CPU (% of one core) and its API requests in that window. "
    "kopf's idle phase (10,000 sessions take it ~500 s) runs in `make bench-full` only, which "
    "`make bench` (under 10 minutes) cannot hold.",
    "- **ingest** (our informer only): `bench/informer_ingest.py`, see its docstring.",
    "- Both operators do upstream's job for a pod session, with the same rendering "
    "(`reconcilers.children`, `reconcilers.pod`): ServiceAccount, Role, RoleBinding, a "
    "TokenRequest, the token Secret, the runner Pod, its Service, the namespace's "
    f"NetworkPolicy, the session's annotations and status; the write budget (≤ {WRITE_BUDGET}) "
    "is that job's: its creates, the annotations, one status patch per phase change and the "
    "Running Event.",
)


def _probes(result: dict[str, Any]) -> list[str]:
    """The speed probe before each workload of the first run (:func:`speed_probe`)."""
    run = result["runs"][0] if result.get("runs") else {}
    seen = [f"{who} {', '.join(f'{w} {ms}' for w, ms in run[who]['speed_probe_ms'].items())}"
            for who in ("ours", "kopf") if (run.get(who) or {}).get("speed_probe_ms")]
    if not seen:
        return []
    return [f"- speed probe before each workload (`_report.speed_probe`: one fixed piece of "
            f"Python work, best of 5, ms; lower is faster): {'; '.join(seen)}"]


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Operator benchmarks: ours vs kopf vs the machine's limit",
        "",
        f"{result['date']}, `bench/operators.py` (issues 9, 20); scale {result['args']['scale']}, "
        f"median of {result['args']['repeat']} run(s), {result['seconds']:.0f} s in all. "
        "Goals are reported, not asserted.",
        "",
        *_markdown_table(result),
        "",
        "Ratios are ours/kopf, or ours/limit for the ingest rows (limit: urllib3 + split + "
        "`orjson.loads` of the same stream in the same run; the pods' compact JSON as served).",
        "",
        "## What is measured",
        "",
        *HOW,
        "",
        "## API writes per session in the burst, by verb and resource (first run)",
        "",
        "Counted by the local API server (its per-client request counters) for every client "
        "but the benchmark.",
        "",
        *_writes(result),
        "",
        "## Machine",
        "",
        f"- {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, Python {m['python']}, "
        f"{m['platform']}",
        f"- kopf {m['kopf']}, kubernetes client {m['kubernetes_client']}, orjson {m['orjson']}",
        f"- load average before / after: {m['load_average_before']} / {m['load_average']} "
        "(other processes on the machine slow both operators alike, but not necessarily "
        "equally)",
        *_probes(result),
        "",
        "## Sizes",
        "",
        *(f"- {k}: {v}" for k, v in result["sizes"].items()),
        "",
        "## Commands",
        "",
        "```",
        *(f"# {name}\n{shlex.join(argv)}" for name, argv in result["commands"].items()),
        "```",
        "",
        "The API server runs with `--port P --kubeconfig K` filled in per run; each operator gets "
        "a fresh server. Everything binds 127.0.0.1.",
        "",
    ]
    return "\n".join(lines)
