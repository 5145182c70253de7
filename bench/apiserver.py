"""Local API server capacity: mutating requests/s, and watch events/s delivered to 10 watchers.

The server runs in its own process (``ambient-ctrl apiserver``), as in e2e tests and the demo.
Two loads, each with 10 watchers attached:

* ``wrk`` (C, from Debian) over 32 connections, watchers are ``curl -N`` writing to files: first
  POSTs of new ConfigMaps, then merge PATCHes of existing ones (each a new resourceVersion and a
  MODIFIED event): the server's own limit, since neither load generator nor watchers are the
  bottleneck. Delivered watch events/s are measured, not derived: every watcher's file is
  polled until it holds every event, and the rate is all events delivered to all watchers over
  the time from the first request until the last watcher had its last event;
* Python clients (urllib3, 8 threads, one process; 10 watcher threads in another process):
  what a Python operator sees, usually limited by the client.

Every watcher must receive every event (checked); results go to stdout and
``bench/results/apiserver.json``.

    .venv/bin/python bench/apiserver.py [--seconds 10] [--objects 5000] [--threads 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import orjson
import urllib3
from _server import apiserver_process  # bench/ is on sys.path: these run as scripts

from ambient_ctrl.testing import eventually

NAMESPACE = "default"
PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps"


def _watcher(url: str, rv: str, expected: int, ready: mp.Event, out: mp.Queue) -> None:
    """One process holding 10 watch streams; reports when each saw ``expected`` events."""
    http = urllib3.PoolManager(maxsize=10, timeout=urllib3.Timeout(connect=5, read=120))
    done: list[float] = []
    lock = threading.Lock()

    def stream() -> None:
        resp = http.request("GET", f"{url}{PATH}?watch=1&resourceVersion={rv}",
                            preload_content=False)
        seen, buffer = 0, b""
        for chunk in resp.stream(1 << 16):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if orjson.loads(line)["type"] == "ADDED":
                    seen += 1
            if seen >= expected:
                break
        with lock:
            done.append(time.perf_counter())
        resp.release_conn()

    threads = [threading.Thread(target=stream) for _ in range(10)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # the streams are open before writers start
    ready.set()
    for t in threads:
        t.join(300)
    out.put(max(done) if len(done) == 10 else None)


def _writer(url: str, count: int, threads: int, start_at: float, out: mp.Queue) -> None:
    http = urllib3.PoolManager(maxsize=threads, timeout=urllib3.Timeout(connect=5, read=60))
    body = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"key": "v" * 200}}

    def work(offset: int) -> None:
        for i in range(offset, count, threads):
            doc = dict(body, metadata={"name": f"bench-{i}", "labels": {"bench": "yes"}})
            resp = http.request("POST", url + PATH, body=orjson.dumps(doc),
                                headers={"Content-Type": "application/json"})
            assert resp.status == 201, resp.data

    while time.perf_counter() < start_at:
        time.sleep(0.001)
    began = time.perf_counter()
    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put((began, time.perf_counter()))


_WRK_CREATE = """
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
end
counter = 0
request = function()
  counter = counter + 1
  local body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"w' .. tid .. '-' ..
    counter .. '"},"data":{"key":"' .. string.rep("v", 200) .. '"}}'
  return wrk.format("POST", "%s", {["Content-Type"]="application/json"}, body)
end
"""

_WRK_PATCH = """
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
end
counter = 0
request = function()
  counter = counter + 1
  local name = "p-" .. ((counter * 2 + tid) %% %d)
  local body = '{"data":{"key":"' .. tid .. '-' .. counter .. '"}}'
  return wrk.format("PATCH", "%s/" .. name,
                    {["Content-Type"]="application/merge-patch+json"}, body)
end
"""
PATCH_TARGETS = 1000
"""ConfigMaps the PATCH load spreads over."""


def wrk_run(seconds: int) -> dict[str, object]:
    """Creates/s, then patches/s, under wrk with 10 curl watchers; every watcher must see
    every event, and the delivered rate is measured."""
    if not shutil.which("wrk") or not shutil.which("curl"):
        return {"skipped": "wrk or curl not installed (apt-get install wrk curl)"}
    result: dict[str, object] = {}
    with apiserver_process() as server, tempfile.TemporaryDirectory() as tmp:
        http = urllib3.PoolManager(retries=False)
        for i in range(PATCH_TARGETS):  # the PATCH phase's objects, before any watcher
            http.request("POST", server.url + PATH, body=orjson.dumps(
                {"metadata": {"name": f"p-{i}"}, "data": {"key": "0"}}),
                headers={"Content-Type": "application/json"})
        http.clear()
        for phase, script_text in (("create", _WRK_CREATE % PATH),
                                   ("patch", _WRK_PATCH % (PATCH_TARGETS, PATH))):
            result[phase] = _wrk_phase(server.url, Path(tmp) / phase, script_text, seconds)
    return result


def _wrk_phase(url: str, tmp: Path, script_text: str, seconds: int) -> dict[str, object]:
    """One wrk load with 10 fresh watchers from the current resourceVersion."""
    tmp.mkdir()
    script = tmp / "load.lua"
    script.write_text(script_text)
    outputs = [tmp / f"watch-{i}.jsonl" for i in range(10)]
    # From "now": only this phase's events (resourceVersion omitted would replay all).
    rv = orjson.loads(urllib3.request("GET", url + PATH + "?limit=1").data)["metadata"][
        "resourceVersion"]
    watchers = [subprocess.Popen(["curl", "-sN", "-o", str(out),
                                  f"{url}{PATH}?watch=1&resourceVersion={rv}"])
                for out in outputs]
    try:
        time.sleep(1.0)  # streams open before the load starts
        began = time.perf_counter()
        done = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "-s", str(script), url],
                              capture_output=True, text=True, check=True).stdout
        total = int(re.search(r"(\d+) requests in", done).group(1))  # type: ignore[union-attr]
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", done).group(1))  # type: ignore[union-attr]
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done)
        assert errors is None, f"wrk saw failed requests: {errors.group(0)}"
        counts = _LineCounts(outputs)
        delivered = eventually(lambda: counts.all_reached(total), timeout=120, interval=0.02,
                               message="watchers did not receive every event")
        last = time.perf_counter()
    finally:
        for watcher in watchers:
            watcher.terminate()
            watcher.wait(10)
    return {"requests_per_s": round(rate), "requests": total, "events_delivered": delivered,
            "watch_events_per_s_10_watchers": round(delivered / (last - began)),
            "delivery_lag_s": round(last - began - seconds, 2)}


class _LineCounts:
    """Lines in each growing file, reading only what was appended since the last look."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths = paths
        self._offsets = [0] * len(paths)
        self._lines = [0] * len(paths)

    def all_reached(self, expected: int) -> int:
        """Total lines once every file has ``expected``, else 0."""
        for i, path in enumerate(self._paths):
            if self._lines[i] >= expected or not path.exists():
                continue
            with path.open("rb") as f:
                f.seek(self._offsets[i])
                data = f.read()
            self._offsets[i] += len(data)
            self._lines[i] += data.count(b"\n")
        return sum(self._lines) if all(n >= expected for n in self._lines) else 0


def python_run(objects: int, threads: int) -> dict[str, object]:
    """Creates/s from one urllib3 process, events/s to 10 watcher threads in another."""
    with apiserver_process() as server:
        url = server.url
        http = urllib3.PoolManager(retries=False)
        try:
            rv = orjson.loads(http.request("GET", url + PATH).data)["metadata"]["resourceVersion"]
            ctx = mp.get_context("spawn")
            ready, results, written = ctx.Event(), ctx.Queue(), ctx.Queue()
            watcher = ctx.Process(target=_watcher, args=(url, rv, objects, ready, results))
            watcher.start()
            ready.wait(60)
            writer = ctx.Process(target=_writer, args=(url, objects, threads,
                                                       time.perf_counter() + 1.0, written))
            writer.start()
            began, finished = written.get(timeout=600)
            last_event = results.get(timeout=600)
            writer.join(30)
            watcher.join(30)
        finally:
            http.clear()
    creates = objects / (finished - began)
    delivered = (10 * objects / (last_event - began)) if last_event else 0.0
    return {"objects": objects, "writer_threads": threads, "creates_per_s": round(creates),
            "watch_events_per_s_10_watchers": round(delivered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=6, help="wrk run length (each phase)")
    parser.add_argument("--objects", type=int, default=5000, help="python-client creates")
    parser.add_argument("--threads", type=int, default=8, help="python-client threads")
    args = parser.parse_args()
    result = {
        "wrk": wrk_run(args.seconds),
        "python_clients": python_run(args.objects, args.threads),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "event_loop": _loop_name()},
    }
    out = Path(__file__).parent / "results" / "apiserver.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'load':<20}{'requests/s':>12}{'watch events/s delivered (10 watchers)':>42}")
    wrk = result["wrk"]
    if "skipped" in wrk:
        print(f"{'wrk':<20}  skipped: {wrk['skipped']}")
    else:
        for phase in ("create", "patch"):
            row = wrk[phase]
            print(f"{'wrk ' + phase:<20}{row['requests_per_s']:>12}"
                  f"{row['watch_events_per_s_10_watchers']:>42}")
    row = result["python_clients"]
    print(f"{'python create':<20}{row['creates_per_s']:>12}"
          f"{row['watch_events_per_s_10_watchers']:>42}")
    print(f"written to {out}")


def _loop_name() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    return f"uvloop {uvloop.__version__}"


if __name__ == "__main__":
    main()
