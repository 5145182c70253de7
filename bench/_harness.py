"""Processes of an operator benchmark: the local API server, the operator under test, and what
is measured about them from outside.

* the server: ``ambient-ctrl apiserver --simulate kubelet --admin-port P`` in its own process
  (``_server.apiserver_process``), with the CRDs, a managed namespace (with its
  ``ambient-runner-secrets``) and upstream's agent registry installed by the benchmark
  (``reconcilers.install``; User-Agent ``ambient-bench``, so its own requests are told apart
  from the operator's);
* the operator: ours (``python -m ambient_ctrl.cli run``) or the kopf peer
  (``python -m kopf run --standalone --all-namespaces bench/peers/kopf_sessions.py``), each in
  its own process with its log in the work directory;
* API requests are counted by the server per client (admin ``GET /requests``): the operator's
  are every request not sent by the benchmark (kopf's own client says ``kopf``, the
  ``kubernetes`` client its handlers use ``OpenAPI-Generator``);
* CPU seconds (utime + stime) and resident memory (VmRSS, peak VmHWM) come from ``/proc/<pid>``;
* log lines come from the operator's log file (:func:`log_lines`): what it wrote at INFO and
  above in a window, so a change that floods the log shows in the results.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import urllib3
from _server import ServerProcess, apiserver_process  # bench/ is on sys.path: scripts

from ambient_ctrl.testing import eventually, free_port, stop_process
from informers.rest import ResourceClient, Transport, TransportOptions, load_configuration
from reconcilers.demo import REGISTRY
from reconcilers.install import install
from reconcilers.resources import AGENTIC_SESSIONS

BENCH_AGENT = "ambient-bench"
NAMESPACE = "bench"
REGISTRY_NAMESPACE = "ambient-code"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
PEER = Path(__file__).resolve().parent / "peers" / "kopf_sessions.py"
ROOT = Path(__file__).resolve().parents[1]
OPERATORS = ("ours", "kopf")
AGENTS = {"ours": ("ambient-ctrl",), "kopf": ("kopf", "OpenAPI-Generator")}
"""The User-Agent products each operator's requests carry (for the breakdown only)."""
CLK_TCK = os.sysconf("SC_CLK_TCK")
_DEBUG = re.compile(rb"^\S+ DEBUG |^\[[^]]*\] .*\[DEBUG")
"""A DEBUG record's first line: ours (``time DEBUG logger ...``) or kopf's
(``[time] logger [DEBUG   ] ...``)."""


def log_lines(path: Path, start: int) -> tuple[int, int]:
    """Lines written to the log at ``path`` since byte ``start`` that are not DEBUG records
    (a record at INFO and above, and each line of a traceback, count), and the end offset."""
    try:
        with open(path, "rb") as log:
            log.seek(start)
            data = log.read()
    except FileNotFoundError:
        return 0, start
    lines = data.splitlines()
    return sum(1 for line in lines if line.strip() and not _DEBUG.match(line)), start + len(data)


# the operator's process, seen from /proc ----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProcStats:
    pid: int

    def cpu_seconds(self) -> float:
        """utime + stime of the process (all its threads), in seconds."""
        return sum(self.cpu_times())

    def cpu_times(self) -> tuple[float, float]:
        """(utime, stime) of the process (all its threads), in seconds: its own code's, and
        the kernel's on its behalf (system calls: sockets, epoll)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # fields 14, 15 of stat(5)

    def memory(self) -> dict[str, int]:
        """``{"rss": bytes, "peak_rss": bytes}`` (VmRSS, VmHWM)."""
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out["rss" if key == "VmRSS" else "peak_rss"] = int(value.split()[0]) * 1024
        return out


# request counts at the server ---------------------------------------------------------------------
@dataclass(slots=True)
class Requests:
    """The server's request counters, read over its admin endpoint."""

    admin_url: str
    operator: str
    http: urllib3.PoolManager = field(default_factory=lambda: urllib3.PoolManager(retries=False))

    def _get(self, agent: str | None = None) -> list[dict[str, Any]]:
        query = f"?agent={agent}" if agent else ""
        rows: list[dict[str, Any]] = orjson.loads(
            self.http.request("GET", f"{self.admin_url}/requests{query}").data)
        return rows

    def operator_counts(self) -> Counter[tuple[str, str]]:
        """(verb, resource) → requests, over every client except the benchmark."""
        total: Counter[tuple[str, str]] = Counter()
        for row in self._get():
            total[(row["verb"], row["resource"])] += row["count"]
        for row in self._get(BENCH_AGENT):
            total[(row["verb"], row["resource"])] -= row["count"]
        return +total

    def writes(self) -> int:
        return sum(n for (verb, _), n in self.operator_counts().items() if verb in WRITE_VERBS)

    def by_agent(self) -> dict[str, dict[str, int]]:
        """Per User-Agent product of this operator: ``"verb resource"`` → requests."""
        return {agent: {f"{r['verb']} {r['resource']}": r["count"] for r in self._get(agent)}
                for agent in AGENTS[self.operator]}


def write_delta(before: Counter[tuple[str, str]], after: Counter[tuple[str, str]]
                ) -> dict[str, int]:
    """Writes between two snapshots, ``"verb resource"`` → count (non-zero only)."""
    delta = after.copy()
    delta.subtract(before)
    return {f"{verb} {resource}": n for (verb, resource), n in sorted(delta.items())
            if verb in WRITE_VERBS and n}


# the environment ----------------------------------------------------------------------------------
@dataclass(slots=True)
class Environment:
    """A running server with the CRDs installed and one operator process watching it."""

    operator: str
    url: str
    kubeconfig: Path
    workdir: Path
    transport: Transport
    requests: Requests
    stats: ProcStats
    server_stats: ProcStats
    commands: dict[str, list[str]]
    metrics_url: str
    """Our operator's Prometheus endpoint ("" for kopf, which has none)."""
    process: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def log(self) -> Path:
        """The operator's log (stdout and stderr)."""
        return self.workdir / f"{self.operator}.log"

    def reconciles(self) -> int | None:
        """Reconciles so far (``controller_runtime_reconcile_total``), None without metrics."""
        if not self.metrics_url:
            return None
        text = self.requests.http.request("GET", self.metrics_url).data.decode()
        return round(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                         if line.startswith("controller_runtime_reconcile_total{")))

    @property
    def sessions(self) -> ResourceClient:
        return ResourceClient(self.transport, AGENTIC_SESSIONS)


def operator_command(operator: str, kubeconfig: Path, workers: int) -> list[str]:
    """The operator's command line (ports are placeholders filled by :func:`start_operator`)."""
    if operator == "ours":
        return [sys.executable, "-m", "ambient_ctrl.cli", "run", "--kubeconfig", str(kubeconfig),
                "--registry-namespace", REGISTRY_NAMESPACE, "--all-namespaces",
                "--metrics-bind-address", "127.0.0.1:{metrics}",
                "--health-probe-bind-address", "127.0.0.1:{health}",
                "--max-concurrent-reconciles", str(workers)]
    return [sys.executable, "-m", "kopf", "run", "--standalone", "--all-namespaces",
            "--liveness", "http://127.0.0.1:{health}/healthz", str(PEER)]


def start_operator(operator: str, kubeconfig: Path, workdir: Path, workers: int,
                   ports: dict[str, int], *, extra: tuple[str, ...] = (), log_name: str = "",
                   path: tuple[str, ...] = ()) -> tuple[subprocess.Popen[bytes], list[str]]:
    """``operator`` in its own process (``extra`` arguments appended; ``path`` directories
    first on its PYTHONPATH), logging to ``workdir/<log_name or operator>.log``; the process
    and its command line."""
    argv = [a.format(**ports) for a in (*operator_command(operator, kubeconfig, workers), *extra)]
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), REGISTRY_NAMESPACE=REGISTRY_NAMESPACE,
               PYTHONPATH=os.pathsep.join(filter(None, [*path, str(ROOT),
                                                        os.environ.get("PYTHONPATH")])))
    with open(workdir / f"{log_name or operator}.log", "ab") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                   start_new_session=True)
    return process, argv


def _watching(requests: Requests, process: subprocess.Popen[bytes]) -> bool:
    """Ready: the operator watches both sessions and pods."""
    if process.poll() is not None:
        raise RuntimeError(f"the operator exited with {process.returncode}")
    counts = requests.operator_counts()
    return all(counts[("watch", resource)] for resource in ("agenticsessions", "pods"))


def server_args(objects: int, simulate: str = "kubelet") -> list[str]:
    """Simulators (the kubelet; "" for none), admin endpoint, and room for every event of a
    run: no watcher falls back to a relist because history ran out or its backlog
    overflowed."""
    return [*(("--simulate", simulate) if simulate else ()), "--admin-port", str(free_port()),
            "--history-limit", str(max(20000, objects * 12)),
            "--max-watch-backlog", str(512 << 20), "--bookmark-interval", "30"]


@dataclass(frozen=True, slots=True)
class Cluster:
    """A fresh local API server with the CRDs, the managed namespace and upstream's agent
    registry installed, and the benchmark's transport to it."""

    server: ServerProcess
    transport: Transport
    admin_url: str
    """The server's admin endpoint (request counters)."""
    args: list[str]
    """The server's arguments (:func:`server_args`)."""


@contextlib.contextmanager
def cluster(objects: int, simulate: str = "kubelet") -> Iterator[Cluster]:
    """A :class:`Cluster` sized for ``objects`` sessions, with the ``simulate`` simulators
    (:func:`server_args`); stopped on exit."""
    args = server_args(objects, simulate)
    admin = f"http://127.0.0.1:{args[args.index('--admin-port') + 1]}"
    with apiserver_process(*args) as server:
        transport = Transport(load_configuration(str(server.kubeconfig)),
                              options=TransportOptions(pool_size=4, timeout=60,
                                                       user_agent=f"{BENCH_AGENT}/1"))
        try:
            install(transport, namespace=NAMESPACE, registry_namespace=REGISTRY_NAMESPACE,
                    registry=REGISTRY)
            yield Cluster(server, transport, admin, args)
        finally:
            transport.close()


@contextlib.contextmanager
def environment(operator: str, workdir: Path, *, objects: int, workers: int,
                before_start: Callable[[Cluster], None] | None = None
                ) -> Iterator[Environment]:
    """A fresh server sized for ``objects`` sessions and ``operator`` running against it,
    ready (watching); everything stopped on exit. ``before_start`` runs once the server is
    installed, before the operator starts (e.g. to arm the server's request recorder)."""
    with cluster(objects) as world:
        server = world.server
        process = None
        requests = Requests(world.admin_url, operator)
        try:
            if before_start is not None:
                before_start(world)
            ports = {"metrics": free_port(), "health": free_port()}
            process, argv = start_operator(operator, server.kubeconfig, workdir, workers, ports)
            eventually(lambda: _watching(requests, process), timeout=60, interval=0.1,
                       message=f"{operator} did not start watching")
            server_argv = [sys.executable, "-m", "ambient_ctrl.cli", "--log-level", "WARNING",
                           "apiserver", "--port", "P", "--kubeconfig", "K", *world.args]
            yield Environment(operator, server.url, server.kubeconfig, workdir, world.transport,
                              requests, ProcStats(process.pid), ProcStats(server.pid),
                              {"apiserver": server_argv, operator: argv},
                              f"http://127.0.0.1:{ports['metrics']}/metrics"
                              if operator == "ours" else "", process)
        finally:
            if process is not None:
                if process.poll() is not None:  # it died: say why
                    log = (workdir / f"{operator}.log").read_text(errors="replace")
                    print(f"{operator} exited with {process.returncode}:\n{log[-3000:]}",
                          file=sys.stderr)
                stop_process(process, timeout=30)
            requests.http.clear()


def settle(env: Environment, *, quiet: float = 2.0, busy: float = 0.05, minimum: float = 0.0,
           timeout: float = 120.0) -> float:
    """Wait until the operator has written nothing and used less than ``busy`` of a core for
    ``quiet`` seconds, and at least ``minimum`` seconds, bounded by ``timeout``; the seconds
    waited."""
    started = time.monotonic()
    window: list[tuple[float, int, float]] = []  # (time, writes, cpu seconds)
    while time.monotonic() - started < timeout:
        now = time.monotonic()
        window = [*window, (now, env.requests.writes(), env.stats.cpu_seconds())]
        while len(window) > 1 and now - window[1][0] >= quiet:
            window.pop(0)  # keep the oldest sample at least ``quiet`` seconds old
        first = window[0]
        if now - started >= minimum and now - first[0] >= quiet and first[1] == window[-1][1] and (
                window[-1][2] - first[2]) <= busy * (now - first[0]):
            break
        time.sleep(0.25)
    return time.monotonic() - started
