"""Local API server capacity: creates/s, and watch events/s delivered to 10 watchers.

The server runs in its own process (``ambient-ctrl apiserver``), as in e2e tests and the demo.
Two loads, each with 10 watchers attached:

* ``wrk`` (C, from Debian) posting ConfigMaps over 32 connections, watchers are ``curl -N``:
  the server's own limit, since neither load generator nor watchers are the bottleneck;
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


_WRK_SCRIPT = """
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


def wrk_run(seconds: int) -> dict[str, object]:
    """Creates/s under wrk with 10 curl watchers; every watcher must see every event."""
    if not shutil.which("wrk") or not shutil.which("curl"):
        return {"skipped": "wrk or curl not installed (apt-get install wrk curl)"}
    with apiserver_process() as server, tempfile.TemporaryDirectory() as tmp:
        url = server.url
        script = Path(tmp) / "post.lua"
        script.write_text(_WRK_SCRIPT % PATH)
        outputs = [Path(tmp) / f"watch-{i}.jsonl" for i in range(10)]
        watchers = [subprocess.Popen(["curl", "-sN", "-o", str(out), f"{url}{PATH}?watch=1"])
                    for out in outputs]
        try:
            time.sleep(1.0)  # streams open before the load starts
            done = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "-s", str(script),
                                   url], capture_output=True, text=True, check=True).stdout
            total = int(re.search(r"(\d+) requests in", done).group(1))  # type: ignore[union-attr]
            rate = float(re.search(r"Requests/sec:\s+([\d.]+)", done).group(1))  # type: ignore[union-attr]
            lines = eventually(lambda: _all_delivered(outputs, total), timeout=60,
                               message="watchers did not receive every event")
        finally:
            for watcher in watchers:
                watcher.terminate()
                watcher.wait(10)
    return {"creates_per_s": round(rate), "creates": total,
            "watch_events_per_s_10_watchers": round(rate * 10), "events_delivered": lines}


def _all_delivered(outputs: list[Path], expected: int) -> int:
    counts = [out.read_bytes().count(b"\n") if out.exists() else 0 for out in outputs]
    return sum(counts) if all(c >= expected for c in counts) else 0


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
    parser.add_argument("--seconds", type=int, default=10, help="wrk run length")
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
    print(f"{'load':<16}{'creates/s':>12}{'watch events/s (10 watchers)':>32}")
    for load in ("wrk", "python_clients"):
        row = result[load]
        if "skipped" in row:
            print(f"{load:<16}  skipped: {row['skipped']}")
        else:
            print(f"{load:<16}{row['creates_per_s']:>12}{row['watch_events_per_s_10_watchers']:>32}")
    print(f"written to {out}")


def _loop_name() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    return f"uvloop {uvloop.__version__}"


if __name__ == "__main__":
    main()
