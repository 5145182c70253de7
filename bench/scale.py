"""Scale past today's sizes (issue 20 item 6): an operator restart with N sessions cached.

For each size N (default 10,000 and 50,000), on a fresh local API server:

1. **seed**: N sessions *that an operator already ran*, put into the server's storage as they
   are (admin ``POST /objects``, :mod:`envtest.seed`). They are clones of one template: a
   session our operator took to ``Running`` on a server with the simulated kubelet (runner Pod
   Running and Ready, its Service, token Secret, ServiceAccount, Role and RoleBinding, owner
   references, labels and annotations as the operator set them), copied with the session's
   name, every UID, the pod IP and the cluster IP made unique. With them, everything else the
   operator made on the template server (the namespace's NetworkPolicy, ...). The server runs
   without the kubelet: the pods already run, and a simulator starting 50,000 pods again would
   be load the operator does not cause;
2. **restart**: our operator (``python -m ambient_ctrl.cli run``, as ``bench/_harness.py``
   starts it) against that server. Measured: seconds from process start until ``/readyz``
   (every cache synced), and until every session was reconciled once
   (``controller_runtime_reconcile_total{controller="agenticsession"}`` >= N and its queue
   empty); peak RSS (VmHWM) over that relist; the operator's requests until then, which must
   hold **no write**: the seed is what the operator converges to, so every reconcile is a
   no-op (a write means the seed is wrong);
3. **idle**: once quiet, its CPU over ``--idle`` seconds (60), the requests it makes then
   (0 writes), its RSS after, the garbage collector's collections (``python_gc_collections_total``;
   the operator exposes no pause times), and the API server's RSS as context.

Growth from the smallest to the largest size is reported per figure next to the sizes' ratio
(linear: 5.0 for 10,000 → 50,000); a baseline run with no session gives the constant part
(imports, threads) so memory per session can be compared too. ``--profile DIR`` records the
relist of each size with py-spy (collapsed stacks; the operator's and the API server's).
Results: ``bench/results/scale.json`` and ``scale.md``. Reported, never asserted
(e2e/test_bench.py checks the figures exist and the seed converges with 0 writes at toy
sizes).

    .venv/bin/python bench/scale.py [--sizes 10000,50000] [--idle 60] [--profile DIR]

About 8 minutes for the default sizes on 2 cores (``make bench-scale``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import urllib3
from _harness import (
    NAMESPACE,
    Cluster,
    ProcStats,
    Requests,
    cluster,
    environment,
    settle,
    start_operator,
    write_delta,
)
from _sessions import Tracker, create_sessions
from failover import Operator, quiet
from operators import profiled

from ambient_ctrl.testing import eventually, free_port
from reconcilers.wiring import CONTROLLER_NAME

RESULTS = Path(__file__).resolve().parent / "results"
TEMPLATE = "s-tmplxx"
"""The template session's name: as long as the clones' (``s-000000``), so every name derived
from it (``session-<n>``, ``ambient-session-<n>-role``, ...) keeps its length."""
SKIPPED_KINDS = frozenset({"CustomResourceDefinition", "Event", "Lease", "Node"})
"""Not copied from the template server: CRDs are installed (registering their kinds), Events
and Leases are history, the Node is the kubelet simulator's."""
BATCH_BYTES = 2 << 20
"""A seed request's body at most (the server takes 3 MiB)."""
WORKERS = 4


# the template: one session our operator ran ------------------------------------------------------
def template(workdir: Path) -> list[dict[str, Any]]:
    """Every object of a server on which our operator took one session to Running (pod
    Ready) and went quiet."""
    with environment("ours", workdir, objects=1, workers=WORKERS) as env:
        tracker = Tracker(env.transport, NAMESPACE).start()
        try:
            create_sessions(env.url, NAMESPACE, [TEMPLATE], agent="ambient-bench")
            eventually(lambda: TEMPLATE in tracker.running_seen
                       and TEMPLATE in tracker.pod_ready_seen, timeout=60, interval=0.05,
                       message="the template session did not run")
        finally:
            tracker.stop()
        settle(env, quiet=1.0)
        items: list[dict[str, Any]] = orjson.loads(env.requests.http.request(
            "GET", f"{env.requests.admin_url}/objects").data)["items"]
    return [obj for obj in items if obj["kind"] not in SKIPPED_KINDS]


def _template(workdir: Path, path: Path | None) -> list[dict[str, Any]]:
    """:func:`template`, kept in (and taken from) ``path`` when given."""
    if path is not None and path.exists():
        objects: list[dict[str, Any]] = orjson.loads(path.read_bytes())
        return objects
    objects = template(workdir)
    if path is not None:
        path.write_bytes(orjson.dumps(objects))
    return objects


def split(objects: list[dict[str, Any]], omit: frozenset[str] = frozenset()
          ) -> tuple[list[dict[str, Any]], list[bytes]]:
    """The template's objects: the shared ones, and the session's own (those that name it;
    none of the kinds in ``omit``) as JSON, owners before dependents."""
    shared, own = [], []
    for obj in objects:
        if TEMPLATE.encode() not in orjson.dumps(obj):
            shared.append(obj)
        elif obj["kind"] not in omit:
            own.append(obj)
    uids = {obj["metadata"]["uid"] for obj in own}
    ordered: list[dict[str, Any]] = []
    while own:
        done = {obj["metadata"]["uid"] for obj in ordered}
        ready = [obj for obj in own if all(ref["uid"] in done or ref["uid"] not in uids
                                           for ref in obj["metadata"].get("ownerReferences")
                                           or ())]
        if not ready:
            raise RuntimeError("the template's owner references form a cycle")
        ordered.extend(ready)
        own = [obj for obj in own if obj not in ready]
    return shared, [orjson.dumps(obj) for obj in ordered]


def _quoted(value: str) -> bytes:
    return orjson.dumps(value)


def clones(own: list[bytes], count: int) -> Iterator[bytes]:
    """``count`` copies of the session's objects (JSON), each with its own name, UIDs, pod IP
    and cluster IP."""
    objects = [orjson.loads(raw) for raw in own]
    uids = [obj["metadata"]["uid"] for obj in objects]
    ips = sorted({ip for obj in objects
                  for ip in ((obj.get("status") or {}).get("podIP"),
                             (obj.get("spec") or {}).get("clusterIP")) if ip and ip != "None"})
    for index in range(count):
        swaps = [(TEMPLATE.encode(), f"s-{index:06d}".encode()),
                 *((_quoted(uid), _quoted(str(uuid.uuid4()))) for uid in uids),
                 *((_quoted(ip), _quoted(f"10.{96 + n}.{index // 250 % 250}.{index % 250 + 1}"))
                   for n, ip in enumerate(ips))]
        for raw in own:
            for old, new in swaps:
                raw = raw.replace(old, new)
            yield raw


def load(admin_url: str, objects: Iterator[bytes]) -> int:
    """POST ``objects`` (JSON) to the server's seed endpoint in bodies of at most
    :data:`BATCH_BYTES`; how many were stored."""
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=300))
    stored = 0

    def post(batch: list[bytes]) -> int:
        response = http.request("POST", f"{admin_url}/objects",
                                body=b'{"items":[' + b",".join(batch) + b"]}",
                                headers={"Content-Type": "application/json"})
        if response.status != 200:
            raise RuntimeError(f"seeding failed: {response.status} {response.data[:300]!r}")
        count: int = orjson.loads(response.data)["result"]
        return count

    try:
        batch: list[bytes] = []
        size = 0
        for raw in objects:
            if batch and size + len(raw) > BATCH_BYTES:
                stored += post(batch)
                batch, size = [], 0
            batch.append(raw)
            size += len(raw) + 1
        if batch:
            stored += post(batch)
    finally:
        http.clear()
    return stored


def seed(world: Cluster, shared: list[dict[str, Any]], own: list[bytes], sessions: int
         ) -> dict[str, Any]:
    """The template's shared objects and ``sessions`` clones of its session into ``world``."""
    began = time.monotonic()
    stored = load(world.admin_url, (orjson.dumps(obj) for obj in shared))
    stored += load(world.admin_url, clones(own, sessions))
    return {"objects": stored, "objects_per_session": len(own),
            "seconds": round(time.monotonic() - began, 1)}


# one size ----------------------------------------------------------------------------------------
def _ready(health_url: str, http: urllib3.PoolManager) -> bool:
    try:
        return http.request("GET", health_url, timeout=2).status == 200
    except urllib3.exceptions.HTTPError:
        return False


def _gc_collections(operator: Operator) -> int:
    return round(operator.metric("python_gc_collections_total"))


def _without_gc(workdir: Path) -> tuple[str, ...]:
    """A directory whose ``sitecustomize`` turns the automatic garbage collector off as the
    interpreter starts (the Manager's ``gc.freeze`` still collects once, after the sync)."""
    directory = workdir / "gc-off"
    directory.mkdir(exist_ok=True)
    (directory / "sitecustomize.py").write_text("import gc\n\ngc.disable()\n")
    return (str(directory),)


def restart(world: Cluster, sessions: int, workdir: Path, *, idle: float,
            profile: Path | None, gc_off: bool = False) -> dict[str, Any]:
    """Our operator started against ``world`` (seeded with ``sessions``): its figures."""
    requests = Requests(world.admin_url, "ours")
    before = requests.operator_counts()
    ports = {"metrics": free_port(), "health": free_port()}
    started = time.monotonic()
    process, argv = start_operator("ours", world.server.kubeconfig, workdir, WORKERS, ports,
                                   log_name=f"ours-{sessions}",
                                   path=_without_gc(workdir) if gc_off else ())
    operator = Operator(f"{sessions}", process, f"http://127.0.0.1:{ports['metrics']}/metrics",
                        argv)
    stats = ProcStats(process.pid)
    http = urllib3.PoolManager(retries=False)
    try:
        out = profile and profile / f"relist-{sessions}"
        with (profiled(process.pid, out and out.with_suffix(".txt")),
              profiled(world.server.pid, out and out.with_name(f"{out.name}-apiserver.txt"))):
            eventually(lambda: _alive(process) and _ready(
                f"http://127.0.0.1:{ports['health']}/readyz", http),
                timeout=600, interval=0.05, message="the operator never became ready")
            ready, ready_cpu = time.monotonic() - started, stats.cpu_seconds()
            full_collections = round(operator.metric("python_gc_collections_total",
                                                     generation="2"))
            eventually(lambda: _reconciled(operator, sessions), timeout=600, interval=0.1,
                       message="the operator did not reconcile every session")
            reconciled, reconciled_cpu = time.monotonic() - started, stats.cpu_seconds()
        relist = stats.memory()
        relist_counts = requests.operator_counts()
        quiet(operator, seconds=1.0)
        counts, cpu, gc_before = (requests.operator_counts(), stats.cpu_seconds(),
                                  _gc_collections(operator))
        window = time.monotonic()
        time.sleep(idle)
        window = time.monotonic() - window
        cpu = stats.cpu_seconds() - cpu
        after = requests.operator_counts()
        idle_requests = after.copy()
        idle_requests.subtract(counts)
        return {
            "sessions": sessions,
            "ready_seconds": round(ready, 2),
            "reconciled_seconds": round(reconciled, 2),
            "ready_cpu_seconds": round(ready_cpu, 1),
            "reconciled_cpu_seconds": round(reconciled_cpu, 1),
            "gc_full_collections_until_ready": full_collections,
            "reconciles": round(operator.metric("controller_runtime_reconcile_total",
                                              controller=CONTROLLER_NAME)),
            "peak_rss_mib": _mib(relist["peak_rss"]),
            "rss_after_relist_mib": _mib(relist["rss"]),
            "steady_rss_mib": _mib(stats.memory()["rss"]),
            "writes_until_reconciled": write_delta(before, relist_counts),
            "requests_until_reconciled": _nonzero(before, relist_counts),
            "idle_seconds": round(window, 1),
            "idle_cpu_percent": round(100 * cpu / window, 2),
            "idle_requests": {f"{verb} {resource}": n
                              for (verb, resource), n in sorted(idle_requests.items()) if n},
            "idle_writes": write_delta(counts, after),
            "gc_collections_idle": _gc_collections(operator) - gc_before,
            "gc_collections_total": _gc_collections(operator),
            "apiserver_rss_mib": _mib(ProcStats(world.server.pid).memory()["rss"]),
        }
    finally:
        http.clear()
        operator.stop()


def _alive(process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"the operator exited with {process.returncode}")
    return True


def _reconciled(operator: Operator, sessions: int) -> bool:
    _alive(operator.process)
    done = operator.metric("controller_runtime_reconcile_total", controller=CONTROLLER_NAME)
    return done >= sessions and not operator.busy()


def _nonzero(before: Any, after: Any) -> dict[str, int]:
    delta = after.copy()
    delta.subtract(before)
    return {f"{verb} {resource}": n for (verb, resource), n in sorted(delta.items()) if n}


def _mib(value: int) -> float:
    return round(value / (1 << 20), 1)


def measure(shared: list[dict[str, Any]], own: list[bytes], sessions: int, workdir: Path, *,
            idle: float, profile: Path | None, gc_off: bool = False) -> dict[str, Any]:
    """One size on a fresh server without simulators: seed, restart, idle."""
    with cluster(sessions, simulate="") as world:
        seeded = seed(world, shared, own, sessions)
        seeded["apiserver_rss_mib"] = _mib(ProcStats(world.server.pid).memory()["rss"])
        print(f"{sessions} sessions seeded: {seeded}", flush=True)
        row = restart(world, sessions, workdir, idle=idle, profile=profile, gc_off=gc_off)
        row["seed"] = seeded
        print(f"{sessions}: {row}", flush=True)
        return row


# the report --------------------------------------------------------------------------------------
FIGURES = (
    ("ready_seconds", "start → /readyz (caches synced), s"),
    ("reconciled_seconds", "start → every session reconciled once, s"),
    ("ready_cpu_seconds", "operator CPU until /readyz, s"),
    ("reconciled_cpu_seconds", "operator CPU until every session was reconciled, s"),
    ("gc_full_collections_until_ready", "full GC collections until /readyz"),
    ("peak_rss_mib", "peak RSS during the relist (VmHWM), MiB"),
    ("steady_rss_mib", "RSS after the idle window, MiB"),
    ("idle_cpu_percent", "idle CPU, % of a core"),
    ("idle_request_count", "API requests in the idle window"),
    ("idle_write_count", "API writes in the idle window"),
    ("gc_collections_idle", "GC collections in the idle window"),
    ("apiserver_rss_mib", "API server RSS (context), MiB"),
)
MEMORY = ("peak_rss_mib", "steady_rss_mib", "apiserver_rss_mib")


def growth(rows: list[dict[str, Any]], baseline: dict[str, Any] | None) -> dict[str, Any]:
    """Each figure at the largest size over the smallest (``linear`` is the sizes' ratio), and
    the same for the part above the baseline run's (no session): a figure ``c + k * N`` grows
    by exactly the sizes' ratio there, where its constant part ``c`` (imports, a page of a
    list, process start) makes the plain ratio look better than linear."""
    small, large = rows[0], rows[-1]
    out: dict[str, Any] = {"from": small["sessions"], "to": large["sessions"],
                           "linear": round(large["sessions"] / small["sessions"], 2),
                           "ratio": {}, "ratio_above_baseline": {}}
    for key, _ in FIGURES:
        out["ratio"][key] = _ratio(large[key], small[key])
        if baseline is not None:
            out["ratio_above_baseline"][key] = _ratio(large[key] - baseline[key],
                                                      small[key] - baseline[key])
    out["marginal_kib_per_session"] = {
        key: round((large[key] - small[key]) * 1024 / (large["sessions"] - small["sessions"]), 1)
        for key in MEMORY if large["sessions"] > small["sessions"]}
    return out


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b > 0 else None


def _counted(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "idle_request_count": sum(row["idle_requests"].values()),
            "idle_write_count": sum(row["idle_writes"].values())}


def markdown(report: dict[str, Any]) -> str:
    rows, grown = report["sizes"], report["growth"]
    sizes = [f"{row['sessions']:,}" for row in rows]
    if report.get("baseline"):
        sizes.insert(0, "0 (baseline)")
    head = "| figure | " + " | ".join(sizes)
    head += (f" | growth {grown['from']:,} → {grown['to']:,} (linear {grown['linear']}) "
             "| growth above the baseline |")
    lines = [f"# Operator restart with N sessions cached ({report['at']})", "",
             f"`{report['command']}` on {report['machine']}.", "",
             head, "|---" * (len(sizes) + 3) + "|"]
    for key, label in FIGURES:
        cells = [str(row[key]) for row in rows]
        if report.get("baseline"):
            cells.insert(0, str(report["baseline"][key]))
        above = grown["ratio_above_baseline"].get(key)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {_dash(grown['ratio'][key])} | "
                     f"{_dash(above)} |")
    for key, kib in grown["marginal_kib_per_session"].items():
        lines.append(f"| {key.removesuffix('_mib')}: KiB per session added "
                     f"({grown['from']:,} → {grown['to']:,}) | " + " | " * len(sizes)
                     + f"{kib} | |")
    writes = {row["sessions"]: row["writes_until_reconciled"] for row in rows}
    lines += ["", f"Writes from start until every session was reconciled: {writes} "
              "(the seed is what the operator converges to: none expected).", ""]
    return "\n".join(lines)


def _dash(value: float | None) -> str:
    return "—" if value is None else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000",
                        help="sessions per run, comma-separated (growth: last over first)")
    parser.add_argument("--idle", type=float, default=60.0,
                        help="seconds of the idle window (CPU, requests)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the run with no session (memory per session needs it)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="py-spy each relist into DIR/relist-<N>.txt (the operator) and "
                             "DIR/relist-<N>-apiserver.txt")
    parser.add_argument("--omit", default="", metavar="KINDS",
                        help="leave these kinds (comma-separated, e.g. Service) out of every "
                             "seeded session: a wrong seed, which the restart must show as "
                             "writes")
    parser.add_argument("--gc-off", action="store_true",
                        help="an experiment: the operator without the automatic garbage "
                             "collector (how much of a relist is collection)")
    parser.add_argument("--template", type=Path, default=None, metavar="FILE",
                        help="take the template's objects from FILE when it exists, else make "
                             "them and write them there (runs that compare seeds share one)")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale",
                        help="results path without suffix (.json and .md are written)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",") if size]
    command = " ".join(["python", "bench/scale.py", *(argv if argv is not None
                                                       else sys.argv[1:])])
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        workdir = Path(tmp)
        try:
            shared, own = split(_template(workdir, args.template),
                                omit=frozenset(args.omit.split(",")) - {""})
            print(f"template: {len(shared)} shared objects, {len(own)} per session", flush=True)
            baseline = None if args.no_baseline else _counted(measure(
                shared, own, 0, workdir, idle=min(args.idle, 10.0), profile=None))
            rows = [_counted(measure(shared, own, n, workdir, idle=args.idle,
                                     profile=args.profile, gc_off=args.gc_off)) for n in sizes]
        except BaseException:
            for log in sorted(workdir.glob("*.log")):
                print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-2000:]}")
            raise
    report = {"benchmark": "bench/scale.py", "issue": "20 item 6",
              "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                         f"{_total_memory_gib()} GiB, Python {platform.python_version()}",
              "seconds": round(time.monotonic() - started), "idle_window": args.idle,
              "gc_off": args.gc_off,
              "baseline": baseline, "sizes": rows,
              "growth": growth(rows, baseline)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    print(f"written to {args.out.with_suffix('.json')} and .md")
    return 0


def _total_memory_gib() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / (1 << 20))
    return 0


if __name__ == "__main__":
    sys.exit(main())
