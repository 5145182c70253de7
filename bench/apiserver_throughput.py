"""Local API server throughput: creates/s, and watch events/s delivered to 10 watchers.

The server runs in its own process (``ambient-ctrl apiserver``), as in e2e tests and the demo;
writers and watchers run in other processes so the server's figures are not capped by a client
sharing its interpreter. Results go to stdout and ``bench/results/apiserver.json``.

    .venv/bin/python bench/apiserver_throughput.py [--objects 5000] [--threads 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import urllib3

from ambient_ctrl.testing import eventually, free_port

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


def run(objects: int, threads: int) -> dict[str, object]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [sys.executable, "-m", "ambient_ctrl.cli", "--log-level", "WARNING", "apiserver",
             "--port", str(port), "--kubeconfig", str(Path(tmp) / "kubeconfig")],
            stdout=subprocess.DEVNULL, start_new_session=True)
        try:
            http = urllib3.PoolManager(retries=False)
            eventually(lambda: http.request("GET", url + "/healthz").status == 200,
                       timeout=30, message="server did not start",
                       ignoring=(urllib3.exceptions.HTTPError,))
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
            server.terminate()
            server.wait(30)
    creates = objects / (finished - began)
    delivered = (10 * objects / (last_event - began)) if last_event else 0.0
    return {
        "objects": objects, "writer_threads": threads,
        "creates_per_s": round(creates), "watch_events_per_s_10_watchers": round(delivered),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    result = run(args.objects, args.threads)
    out = Path(__file__).parent / "results" / "apiserver.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'creates/s':>30} {result['creates_per_s']:>10}")
    print(f"{'watch events/s (10 watchers)':>30} {result['watch_events_per_s_10_watchers']:>10}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
