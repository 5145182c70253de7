"""The benchmark scripts still run end to end, at toy sizes (``make bench`` is not in CI).

Each runs as ``make bench`` runs it — a script with ``bench/`` on its path, its own API server
processes — and writes its result JSON into a temporary directory, which is checked for the
figures the reports read. Nothing here judges a figure: timings belong to ``make bench``.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

pytestmark = [pytest.mark.local_only("starts its own local API server processes"),
              pytest.mark.timeout(240)]


def _run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                          text=True, timeout=200, cwd=BENCH.parent)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_informer_ingest_at_a_toy_size(tmp_path: Path) -> None:
    out = tmp_path / "informer.json"
    stdout = _run("informer_ingest.py", "--objects", "600", "--repeat", "1", "--out", str(out))
    result = json.loads(out.read_text())
    assert result["objects"] == 600 and "ours / limit" in stdout
    rates, sizes = result["events_per_s"], result["bytes_per_object"]
    assert rates["raw_limit"] > 0 and rates["informer"] > 0 and rates["informer_decoded"] > 0
    # Stored without managedFields, so smaller than served; the Store adds its bookkeeping.
    assert sizes["stored_compact_json"] < sizes["served_compact_json"]
    assert sizes["store_tracemalloc"] > sizes["stored_compact_json"]


def test_latency_trace_at_a_toy_size() -> None:
    stdout = _run("latency_trace.py", "--rate", "20", "--seconds", "1", "--workers", "2")
    assert "20 sessions at 20.0/s, 2 workers" in stdout
    # The operator's first request for a session, and the runner Pod among the steps.
    assert "create serviceaccounts" in stdout and "create pods" in stdout
    assert "child pod seen by a watcher" in stdout and "over 20" in stdout


def test_relist_at_a_toy_size(tmp_path: Path) -> None:
    out = tmp_path / "relist.json"
    _run("relist.py", "--objects", "1000", "--out", str(out))
    results = json.loads(out.read_text())["results"]
    assert len(results) == 4 and all(r["seconds"] > 0 for r in results.values())


@pytest.mark.skipif(importlib.util.find_spec("kopf") is None, reason="kopf is not installed")
def test_operators_ours_and_kopf_at_a_toy_size(tmp_path: Path) -> None:
    out = tmp_path / "latest"
    stdout = _run("operators.py", "--scale", "0.01", "--rate", "20", "--only",
                  "burst,steady,idle", "--peer-only", "burst,steady,idle", "--out", str(out))
    result = json.loads(out.with_suffix(".json").read_text())
    run = result["runs"][0]
    for who in ("ours", "kopf"):
        assert run[who]["burst"]["complete"] and run[who]["steady"]["complete"], who
        assert run[who]["idle"]["running"] == run[who]["idle"]["sessions"], who
        assert run[who]["burst"]["writes_per_session"] > 0, who
        assert run[who]["burst"]["log_lines_per_session"] >= 0, who
    # Issue 16 item 6: a session's story is a few INFO lines (created, creating, running),
    # never a flood; a traceback or a line per reconcile would break this bound.
    assert 0 < run["ours"]["burst"]["log_lines_per_session"] <= 6
    rows = {(row["workload"], row["metric"]) for row in result["summary"]
            if row["ours"] is not None}
    assert ("burst", "sessions/s until all Running") in rows
    assert ("burst", "log lines per session (INFO and above)") in rows
    assert "creation → child p99" in stdout
    assert out.with_suffix(".md").read_text().startswith("#")
    # The machine's phase before each workload, for reading the figures (bench/_report.py).
    for who in ("ours", "kopf"):
        probes = run[who]["speed_probe_ms"]
        assert set(probes) == {"burst", "steady", "idle"} and min(probes.values()) > 0, who
    assert "speed probe before each workload" in out.with_suffix(".md").read_text()


def test_latencies_of_sessions_never_seen_are_a_lower_bound() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from operators import latencies
    finally:
        sys.path.remove(str(BENCH))
    seen = [0.01 * i for i in range(1, 101)]
    assert latencies(seen, 100, 30.0) == {"seen": 100, "unseen": 0, "p50_ms": 500.0,
                                          "p99_ms": 990.0, "max_ms": 1000.0,
                                          "beyond_ms": None}
    # 2 of 100 never seen: the p99 falls among them, known only to exceed the wait.
    partial = latencies(seen[:98], 100, 30.0)
    assert partial["p50_ms"] == 500.0 and partial["p99_ms"] is None
    assert partial["beyond_ms"] == 30000.0 and partial["unseen"] == 2


def test_failover_at_a_toy_size(tmp_path: Path) -> None:
    out = tmp_path / "failover.json"
    _run("failover.py", "--sessions", "60", "--rate", "20", "--out", str(out))
    phases = json.loads(out.read_text())["phases"]
    assert [(name, phase["priority_queue"]) for name, phase in phases.items()] == [
        ("before", False), ("after", True)]
    for phase in phases.values():
        assert phase["catch_up_complete"]
        # Nothing of the listed sessions is written again: the writes are the fresh sessions'.
        assert phase["writes_during_catch_up"].get("create pods", 0) <= (
            phase["created_during_catch_up"] + 1)


def test_workqueue_ops_at_a_toy_size(tmp_path: Path) -> None:
    out = tmp_path / "workqueue.json"
    _run("workqueue_ops.py", "--sizes", "2000", "--out", str(out))
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"2000 items, priorities", "2000 items, fifo"}
    assert all(row["add_us"] > 0 and row["get_done_us"] > 0 for row in results.values())


@pytest.fixture(scope="module")
def scale_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where bench/scale.py keeps its template session (made by the first run that needs it)."""
    return tmp_path_factory.mktemp("scale") / "template.json"


def test_scale_at_toy_sizes(tmp_path: Path, scale_template: Path) -> None:
    """An operator restart over seeded sessions: the seed is what our operator converges to
    (it writes nothing, before or after it reconciled them all), and the report has every
    figure at every size and their growth."""
    out = tmp_path / "scale"
    _run("scale.py", "--sizes", "50,150", "--idle", "1", "--template", str(scale_template),
         "--out", str(out))
    report = json.loads(out.with_suffix(".json").read_text())
    assert [row["sessions"] for row in report["sizes"]] == [50, 150]
    for row in [report["baseline"], *report["sizes"]]:
        assert row["writes_until_reconciled"] == {} and row["idle_writes"] == {}, row
        assert row["reconciles"] >= row["sessions"]
        assert row["ready_seconds"] > 0 and row["reconciled_seconds"] >= row["ready_seconds"]
        assert row["peak_rss_mib"] >= row["rss_after_relist_mib"] > 0
        assert row["steady_rss_mib"] > 0 and row["apiserver_rss_mib"] > 0
        assert row["idle_cpu_percent"] >= 0 and row["gc_collections_total"] > 0
    growth = report["growth"]
    assert growth["linear"] == 3.0
    assert set(growth["ratio"]) == set(growth["ratio_above_baseline"]) == {
        "ready_seconds", "reconciled_seconds", "ready_cpu_seconds", "reconciled_cpu_seconds",
        "gc_full_collections_until_ready", "peak_rss_mib", "steady_rss_mib",
        "idle_cpu_percent", "idle_request_count", "idle_write_count", "gc_collections_idle",
        "apiserver_rss_mib"}
    assert set(growth["marginal_kib_per_session"]) == {"peak_rss_mib", "steady_rss_mib",
                                                       "apiserver_rss_mib"}
    assert report["command"].startswith("python bench/scale.py") and report["machine"]
    assert out.with_suffix(".md").read_text().startswith("# Operator restart")


def test_scale_shows_a_wrong_seed_as_writes(tmp_path: Path, scale_template: Path) -> None:
    """The check above can fail: seeded without their Services, the sessions get them
    created at the restart, one per session."""
    out = tmp_path / "scale"
    _run("scale.py", "--sizes", "20", "--idle", "0", "--no-baseline", "--omit", "Service",
         "--template", str(scale_template), "--out", str(out))
    row = json.loads(out.with_suffix(".json").read_text())["sizes"][0]
    assert row["writes_until_reconciled"].get("create services") == 20, row
