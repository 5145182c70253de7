"""Creating sessions and timing what the operator makes of them, from outside its process.

* :func:`create_sessions`: a writer in its own process (``spawn``), several threads,
  either as fast as possible or paced at a rate; for each session it reports the local
  monotonic time just before its POST was sent (Linux ``CLOCK_MONOTONIC`` is system-wide, so
  times compare across processes). The API server answers a Python client at ~3k creates/s,
  so the writer is not what limits an operator.
* :class:`Tracker`: two watches in this process (sessions; runner pods), recording the local
  arrival time of the first event showing each session's runner pod, and of the first event
  showing the session ``Running``. Creation timestamps in objects have one-second resolution;
  these have microseconds, and both operators are timed by the same watcher.
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from foundation import gctuning
from informers.errors import KubeError
from informers.http1 import ConnectionPool
from informers.resource import PODS
from informers.rest import ResourceClient, Transport
from reconcilers.resources import AGENTIC_SESSIONS, APP_LABEL, RUNNER_APP, SESSION_LABEL
from reconcilers.samples import backend_session

WRITER_THREADS = 8


def session(name: str, namespace: str) -> dict[str, Any]:
    """A pod session as upstream's backend creates it (``reconcilers.samples``: the default
    runtime's env, ``timeout: 300``, the user, a repository, ``status.phase: Pending``)."""
    return backend_session(namespace, name=name, display_name=f"Benchmark {name}",
                           prompt="Refactor the parser and add tests",
                           repos=[{"url": "https://github.com/example/app", "branch": "main"}])


def _post_all(url: str, namespace: str, names: list[str], rate: float | None,
              start_at: float, agent: str, out: Any) -> None:
    """The writer process: POST every session (paced at ``rate`` per second when given), on
    the lean HTTP/1.1 client (``informers.http1``: a third of urllib3's CPU per request, which
    the operator measured would otherwise share the machine with)."""
    parsed = urllib.parse.urlsplit(url)
    address = (parsed.hostname or "127.0.0.1", parsed.port or 80)
    http = ConnectionPool(lambda timeout: socket.create_connection(address, timeout),
                          host=parsed.netloc, maxsize=WRITER_THREADS)
    path = AGENTIC_SESSIONS.path(namespace)
    headers = {"Content-Type": "application/json", "User-Agent": f"{agent}/1"}
    bodies = [orjson.dumps(session(name, namespace)) for name in names]
    gctuning.tune()  # no full collection of this process's heap in the middle of a POST
    sent = [0.0] * len(names)
    failed: list[str] = []

    def post(index: int) -> None:
        if rate is not None:
            delay = start_at + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        sent[index] = time.monotonic()
        response = http.request("POST", path, body=bodies[index], headers=headers,
                                connect_timeout=5, timeout=60)
        if response.status != 201:
            failed.append(f"{names[index]}: {response.status} {response.data[:200]!r}")

    while time.monotonic() < start_at:
        time.sleep(0.0005)
    with ThreadPoolExecutor(WRITER_THREADS) as pool:
        # In order: with a rate, each thread sleeps until its next session is due.
        list(pool.map(post, range(len(names)), chunksize=1 if rate else 16))
    http.close()
    out.put((sent, failed))


def create_sessions(url: str, namespace: str, names: list[str], *, agent: str,
                    rate: float | None = None) -> dict[str, float]:
    """POST ``names`` from a writer process; session name → local send time."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    start_at = time.monotonic() + 1.0  # the process is up and has built its bodies by then
    writer = ctx.Process(target=_post_all, args=(url, namespace, names, rate, start_at, agent,
                                                 results), daemon=True)
    writer.start()
    try:
        sent, failed = results.get(timeout=600)
    finally:
        writer.join(30)
        if writer.is_alive():
            writer.kill()
    if failed:
        raise RuntimeError(f"{len(failed)} creates failed, e.g. {failed[:3]}")
    return dict(zip(names, sent, strict=True))


def _pod_ready(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or ())


class Tracker:
    """Watches sessions and runner pods of one namespace; first-seen times per session."""

    def __init__(self, transport: Transport, namespace: str) -> None:
        self.session_seen: dict[str, float] = {}
        self.child_seen: dict[str, float] = {}
        self.running_seen: dict[str, float] = {}
        self.pod_ready_seen: dict[str, float] = {}
        self._streams: list[Any] = []
        self._stop = threading.Event()
        sessions = ResourceClient(transport, AGENTIC_SESSIONS)
        pods = ResourceClient(transport, PODS)
        self._threads = [
            threading.Thread(target=self._follow, args=(sessions, namespace, None,
                                                        self._session), daemon=True),
            threading.Thread(target=self._follow, args=(pods, namespace,
                                                        f"{APP_LABEL}={RUNNER_APP}", self._pod),
                             daemon=True)]
        self._versions = [sessions.list(namespace, limit=1)["metadata"]["resourceVersion"],
                          pods.list(namespace, limit=1)["metadata"]["resourceVersion"]]

    def start(self) -> Tracker:
        for thread, version in zip(self._threads, self._versions, strict=True):
            thread.name = f"tracker-{version}"
            thread.start()
        return self

    def _follow(self, client: ResourceClient, namespace: str, selector: str | None,
                record: Callable[[dict[str, Any], float], None]) -> None:
        """Watch from the starting resourceVersion; resume from the last one if it breaks."""
        version = self._versions[0 if client.resource == AGENTIC_SESSIONS else 1]
        while not self._stop.is_set():
            try:
                # Without managedFields (cut before parsing): the watchers share the machine
                # with the operator measured, and need names and phases only.
                stream = client.watch(namespace, resource_version=version,
                                      label_selector=selector, timeout_seconds=3600,
                                      read_timeout=3600, without_managed_fields=True)
                self._streams.append(stream)
                for event in stream:
                    now = time.monotonic()
                    obj = event["object"]
                    version = obj["metadata"].get("resourceVersion", version)
                    if event["type"] in ("ADDED", "MODIFIED"):
                        record(obj, now)
            except KubeError:
                if not self._stop.is_set():
                    time.sleep(0.1)

    def _session(self, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"]
        self.session_seen.setdefault(name, now)
        if (obj.get("status") or {}).get("phase") == "Running":
            self.running_seen.setdefault(name, now)

    def _pod(self, obj: dict[str, Any], now: float) -> None:
        name = (obj["metadata"].get("labels") or {}).get(SESSION_LABEL)
        if name:
            self.child_seen.setdefault(name, now)
            if _pod_ready(obj):
                self.pod_ready_seen.setdefault(name, now)

    def wait_running(self, names: list[str], timeout: float,
                     alive: Callable[[], bool] = lambda: True) -> bool:
        """Until every one of ``names`` was seen Running (False after ``timeout`` seconds, or
        as soon as ``alive`` says the operator is gone)."""
        deadline = time.monotonic() + timeout
        remaining = set(names)
        while True:
            remaining = {name for name in remaining if name not in self.running_seen}
            if not remaining:
                return True
            if time.monotonic() >= deadline or not alive():
                return False
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        for stream in self._streams:
            stream.close()
        for thread in self._threads:
            thread.join(10)
