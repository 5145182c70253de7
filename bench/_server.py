"""The local API server in its own process (and process session), as benchmarks run it.

Sharing a process with a many-threaded client halves the server's throughput
(CLIENT-SURFACE.md), so every benchmark starts ``ambient-ctrl apiserver`` through this.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import urllib3

from ambient_ctrl.testing import eventually, free_port


@dataclass(frozen=True, slots=True)
class ServerProcess:
    url: str
    kubeconfig: Path
    pid: int = 0
    """The server process's id (for /proc readings)."""


@contextlib.contextmanager
def apiserver_process(*args: str) -> Iterator[ServerProcess]:
    """``ambient-ctrl apiserver`` on a free loopback port with extra ``args`` (e.g.
    ``"--history-limit", "20000"``); yields once it answers ``/healthz``, stops it on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        server = subprocess.Popen(
            [sys.executable, "-m", "ambient_ctrl.cli", "--log-level", "WARNING", "apiserver",
             "--port", str(port), "--kubeconfig", str(kubeconfig), *args],
            stdout=subprocess.DEVNULL, start_new_session=True)
        try:
            http = urllib3.PoolManager(retries=False)
            eventually(lambda: (http.request("GET", url + "/healthz").status == 200
                                and kubeconfig.exists()),
                       timeout=30, message="server did not start",
                       ignoring=(urllib3.exceptions.HTTPError,))
            http.clear()
            yield ServerProcess(url, kubeconfig, server.pid)
        finally:
            server.terminate()
            server.wait(30)
