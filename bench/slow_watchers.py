"""Memory of the local API server under watchers that never read (issue 15 item 8).

Starts ``ambient-ctrl apiserver`` twice — with the default bound on what all watchers may hold
unsent together, and without it (``--max-watch-backlog-total 0``) — opens 40 watches that
never read, writes 600 ConfigMaps of 100 KB, and reports the server's peak RSS each time.

    .venv/bin/python bench/slow_watchers.py
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import urllib3

WATCHERS, WRITES, SIZE = 40, 600, 100_000


def rss_mib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) // 1024


def run(extra: list[str]) -> tuple[int, int]:
    """(RSS at start, peak RSS) in MiB of a server given ``extra`` arguments."""
    cli = Path(sys.executable).with_name("ambient-ctrl")
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([str(cli), "apiserver", "--kubeconfig", f"{tmp}/kc", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout is not None
            url = next(m.group(1) for line in proc.stdout
                       if (m := re.search(r"(http://127\.0\.0\.1:\d+)", line)))
            host, port = url.removeprefix("http://").split(":")
            start = peak = rss_mib(proc.pid)
            stalled = []
            for _ in range(WATCHERS):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect((host, int(port)))
                sock.sendall(b"GET /api/v1/namespaces/default/configmaps?watch=1 HTTP/1.1\r\n"
                             b"Host: x\r\n\r\n")
                stalled.append(sock)
            http = urllib3.PoolManager()
            blob = "x" * SIZE
            for i in range(WRITES):
                body = json.dumps({"metadata": {"name": f"c{i}"}, "data": {"b": blob}})
                response = http.request("POST", f"{url}/api/v1/namespaces/default/configmaps",
                                        body=body, headers={"Content-Type": "application/json"})
                assert response.status == 201, response.data[:200]
                if i % 25 == 0:
                    peak = max(peak, rss_mib(proc.pid))
            peak = max(peak, rss_mib(proc.pid))
            for sock in stalled:
                sock.close()
            return start, peak
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    print(f"{WATCHERS} watchers that never read, {WRITES} writes of {SIZE // 1000} KB:")
    for label, extra in (("bounded (default 128 MiB for all)", []),
                         ("per watcher only (32 MiB each)", ["--max-watch-backlog-total", "0"])):
        start, peak = run(extra)
        print(f"  {label:36} RSS {start} MiB at start, {peak} MiB at its peak")


if __name__ == "__main__":
    main()
