"""The demo: a local cluster, the operator and a few sessions, with live progress.

``ambient-ctrl demo`` starts the local API server as its own process with the kubelet and
KubeVirt simulators, installs the CRDs and upstream's agent registry with ADR-0008's VM runtime,
starts the operator as its own process, creates sessions of both backends as the platform's
backend creates them (one scripted to fail) and shows a table of sessions by phase and
backend with startup latency, refreshed in place — every session in the cluster, the demo's
and any applied meanwhile (``kubectl apply``, config/samples), in any namespace, sorted by name —
with the kubeconfig, the kubectl commands, the metrics and health URLs below it.

Ctrl-C stops everything, and so do SIGTERM and SIGHUP (a ``kill``, a closed terminal): the API
server and the operator run in sessions of their own, out of reach of the terminal's signals, so
the demo stops them itself, and says "stopped" when they have exited. A demo that cannot clean
up (SIGKILL) does not leave them behind either: they get SIGTERM from the kernel when the demo
goes (:mod:`ambient_ctrl.lifeline`), and the demo gets it when whatever started it goes. With
``--exit-when-converged`` it exits 0 with a summary once each of its own sessions settled as
scripted (the failing one Failed, the others Running) — tests and CI use that.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ambient_ctrl import lifeline
from ambient_ctrl.cli import NO_LOCAL_API_SERVER, has_local_api_server
from ambient_ctrl.testing import eventually, free_port, start_apiserver_process, stop_process
from foundation.clock import RealClock
from informers.rest import ResourceClient, Transport, load_configuration

from .install import install
from .resources import AGENTIC_SESSIONS
from .samples import KUBEVIRT_ENTRY, UPSTREAM_REGISTRY, backend_session
from .status import parse_time

NAMESPACE = "demo"
REGISTRY_NAMESPACE = "ambient-code"
REGISTRY = UPSTREAM_REGISTRY
EXPECT_LABEL = "demo.ambient-code.io/expect"
"""On the demo's own sessions: the phase each is scripted to settle in."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    sessions: int = 6
    """Sessions to create: alternately pod and VM; the last one is scripted to fail."""
    exit_when_converged: bool = False
    timeout: float = 300.0
    """Seconds to wait for convergence before giving up (with ``exit_when_converged``)."""
    workdir: Path | None = None
    """Where the kubeconfig and logs go (default: a temporary directory)."""


def _failing_index(count: int) -> int | None:
    """The last pod session (even index) is scripted to fail, when there are two or more."""
    if count < 2:
        return None
    return count - 1 if (count - 1) % 2 == 0 else count - 2


def _sessions(count: int) -> list[dict[str, Any]]:
    """Sessions as the platform's backend creates them: alternately a Pod session and a VM
    session (ADR-0008's entry); the last Pod session's runner exits with code 2."""
    out = []
    failing = _failing_index(count)
    for index in range(count):
        vm = index % 2 == 1
        env = {}
        if index == failing:
            # The simulated runner exits with code 2: the session fails (PrerequisiteFailed).
            env["ENVTEST_SCENARIO"] = "exit:2:2@ambient-code-runner"
        spec: dict[str, Any] = {"runtime": KUBEVIRT_ENTRY["id"]} if vm else {}
        out.append(backend_session(
            NAMESPACE, prompt="Refactor the parser and add tests",
            display_name=f"Demo session {index + 1}",
            repos=[{"url": "https://github.com/ambient-code/platform.git"}], extra_env=env,
            labels={EXPECT_LABEL: "Failed" if index == failing else "Running"}, **spec))
    return out


def _row(session: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    status = session.get("status") or {}
    begun = parse_time(status.get("startTime"))
    ready: Mapping[str, Any] = next((c for c in status.get("conditions") or ()
                                     if c.get("type") == "Ready" and c.get("status") == "True"),
                                    {})
    started = parse_time(ready.get("lastTransitionTime"))
    latency = f"{(started - begun).total_seconds():.0f}s" if begun and started else "-"
    # Why it stopped (user, inactivity) or, for a run that ended, its Ready reason.
    detail = status.get("stoppedReason") or ""
    if not detail and status.get("phase") in ("Failed", "Completed"):
        detail = next((c.get("reason") or "" for c in status.get("conditions") or ()
                       if c.get("type") == "Ready"), "")
    metadata = session["metadata"]
    return (str(metadata.get("name")), str(metadata.get("namespace") or "-"),
            str(status.get("executionKind") or "-"),
            str(status.get("phase") or "Pending") + (f" ({detail})" if detail else ""), latency)


def _by_name(session: Mapping[str, Any]) -> tuple[str, str]:
    metadata = session.get("metadata") or {}
    return str(metadata.get("name") or ""), str(metadata.get("namespace") or "")


def render_table(sessions: list[Mapping[str, Any]]) -> str:
    """The sessions, whatever their names and namespaces, sorted by name (then namespace),
    and a count by backend and phase."""
    sessions = sorted(sessions, key=_by_name)
    rows = [("SESSION", "NAMESPACE", "BACKEND", "PHASE", "STARTUP"), *map(_row, sessions)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    counts: dict[str, int] = {}
    for session in sessions:
        status = session.get("status") or {}
        key = f"{status.get('executionKind') or '-'}/{status.get('phase') or 'Pending'}"
        counts[key] = counts.get(key, 0) + 1
    lines.append("by backend/phase: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return "\n".join(lines)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Stopped(Exception):
    """A stop signal arrived while the demo was starting."""


class _StopSignals:
    """SIGINT, SIGTERM and SIGHUP all mean "stop everything", for the whole run.

    While the demo starts, the first signal raises :class:`_Stopped` where the main thread is,
    so the context managers that own the processes stop them on the way out. Once it runs
    (and after a first signal) a signal only sets :attr:`stop`: nothing interrupts a cleanup.
    :attr:`reason` names the first signal.
    """

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.raising = True
        self.reason = ""
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: object) -> None:
        self.reason = self.reason or signal.Signals(signum).name
        self.stop.set()
        if self.raising:
            self.raising = False
            raise _Stopped(self.reason)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """No raising inside (a stop that interrupted ``Popen`` after its fork would leave a
        child nobody knows about); a signal that arrived meanwhile raises on the way out."""
        raising, self.raising = self.raising, False
        try:
            yield
        finally:
            self.raising = raising
        if raising and self.stop.is_set():
            self.raising = False
            raise _Stopped(self.reason)


@dataclass(frozen=True, slots=True)
class _Endpoints:
    """Where the demo's cluster and operator answer."""

    url: str
    kubeconfig: Path
    metrics: str
    health: str
    """The operator's probe address (``/healthz``, ``/readyz``)."""


@contextlib.contextmanager
def _processes(workdir: Path, signals: _StopSignals) -> Iterator[_Endpoints]:
    """The API server and the operator, each its own process; yields where they answer and
    stops both (operator first) on the way out. Each process is started with the stop signals
    held until its stop is registered, so none can be left behind; each gets SIGTERM from the
    kernel if this process dies without stopping it (:mod:`ambient_ctrl.lifeline`; started
    from the main thread, as that asks)."""
    with contextlib.ExitStack() as stack:
        with signals.held():
            server, url, kubeconfig = start_apiserver_process(
                workdir / "kubeconfig", log=workdir / "apiserver.log",
                extra_args=["--simulate", "kubelet,kubevirt"],
                env=lifeline.child_environment())
            stack.callback(stop_process, server)
        transport = Transport(load_configuration(str(kubeconfig)))
        try:
            _install_when_ready(transport)
        finally:
            transport.close()
        metrics, probes = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        with open(workdir / "operator.log", "ab") as log, signals.held():
            operator = subprocess.Popen(
                [sys.executable, "-m", "ambient_ctrl.cli", "run", "--kubeconfig",
                 str(kubeconfig), "--registry-namespace", REGISTRY_NAMESPACE,
                 "--metrics-bind-address", metrics, "--health-probe-bind-address", probes],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, env=lifeline.child_environment())
            stack.callback(stop_process, operator, timeout=35)
        yield _Endpoints(url=url, kubeconfig=kubeconfig, metrics=f"http://{metrics}/metrics",
                         health=f"http://{probes}")


def _install_when_ready(transport: Transport) -> None:
    install(transport, namespace=NAMESPACE, registry_namespace=REGISTRY_NAMESPACE,
            registry=REGISTRY, indent=True)
    # The KubeVirt simulator installs its CRDs as the server starts; wait for them.
    eventually(lambda: transport.json("GET", "/apis/kubevirt.io/v1", verb="GET"),
               timeout=30, ignoring=(Exception,), message="KubeVirt CRDs not served")


def run(options: DemoOptions, out: TextIO = sys.stdout) -> int:
    """Run the demo (call from the main thread: it handles the stop signals). Says
    "stopped" once the API server and the operator have exited, however it ends."""
    with _StopSignals() as signals:
        try:
            code = _run(options, out, signals)
        except _Stopped:
            code = 0
        why = f" ({signals.reason})" if signals.reason else ""
        print(f"stopped{why}: the local API server and the operator have exited", file=out,
              flush=True)
        return code


def _run(options: DemoOptions, out: TextIO, signals: _StopSignals) -> int:
    with contextlib.ExitStack() as stack:
        workdir = options.workdir or Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="ambient-demo-")))
        workdir.mkdir(parents=True, exist_ok=True)
        endpoints = stack.enter_context(_processes(workdir, signals))
        transport = Transport(load_configuration(str(endpoints.kubeconfig)))
        stack.callback(transport.close)
        sessions = ResourceClient(transport, AGENTIC_SESSIONS)
        for body in _sessions(options.sessions):
            sessions.create(body)
        guide = _guide(endpoints, workdir)
        signals.raising = False  # from here the loop polls signals.stop
        if signals.stop.is_set():
            return 0
        return _watch(sessions, options, out, guide, signals.stop)
    return 1  # unreachable: the with block returns


def _guide(endpoints: _Endpoints, workdir: Path) -> str:
    """What to do with the demo's cluster: shown with the table, always in view."""
    kubectl = Path(sys.executable).with_name("kubectl")
    command = f"{kubectl if kubectl.exists() else 'kubectl'} --kubeconfig {endpoints.kubeconfig}"
    return "\n".join([
        f"local API server: {endpoints.url}   kubeconfig: {endpoints.kubeconfig}",
        f"try:  {command} get as -A",
        f"      {command} get pods,vms,vmis,svc -n {NAMESPACE}",
        f"      {command} apply -f YOUR-SESSION.yaml   (namespace {NAMESPACE} is managed)",
        f"metrics: {endpoints.metrics}",
        f"health:  {endpoints.health}/healthz   {endpoints.health}/readyz",
        f"logs: {workdir}",
        "Ctrl-C (or SIGTERM, SIGHUP) stops everything."])


def _watch(sessions: ResourceClient, options: DemoOptions, out: TextIO, guide: str,
           stop: threading.Event) -> int:
    """Show every session until stopped (or, with ``exit_when_converged``, until the demo's
    own sessions settled). On a terminal the table is redrawn in place with ``guide`` below
    it; otherwise ``guide`` comes first and each new table is appended."""
    clock = RealClock()
    started = clock.monotonic()
    live = out.isatty()
    if not live:
        print(guide + "\n", file=out, flush=True)
    last = ""
    while not stop.is_set():
        items = sessions.list()["items"]  # every namespace: any session that appears
        table = render_table(items)
        if table != last:
            print(f"\x1b[H\x1b[J{table}\n\n{guide}" if live else table + "\n", file=out,
                  flush=True)
            last = table
        own = [s for s in items if EXPECT_LABEL in (s["metadata"].get("labels") or {})]
        if options.exit_when_converged and own and all(map(_settled, own)):
            seconds = clock.monotonic() - started
            print(f"converged: {len(own)} sessions settled in {seconds:.1f}s", file=out)
            return 0
        if options.exit_when_converged and clock.monotonic() - started > options.timeout:
            print("timed out before every session settled", file=out)
            return 1
        clock.wait(stop, 0.5)
    return 0


def _settled(session: Mapping[str, Any]) -> bool:
    """One of the demo's own sessions settled as scripted (each carries the phase it settles
    in). Sessions applied meanwhile are shown, never waited for: one in a namespace the
    operator does not manage stays Pending for good."""
    phase = (session.get("status") or {}).get("phase")
    return bool(phase == (session["metadata"].get("labels") or {}).get(EXPECT_LABEL))


def _command(args: Any) -> int:
    """``ambient-ctrl demo``: ends (SIGTERM, stopping its processes) when whatever started it
    ends, even by SIGKILL — a killed ``make run`` leaves nothing running."""
    if not has_local_api_server():
        print(f"ambient-ctrl demo: {NO_LOCAL_API_SERVER}", file=sys.stderr, flush=True)
        return 1
    lifeline.exit_with_parent()
    return run(DemoOptions(sessions=args.sessions, exit_when_converged=args.exit_when_converged,
                           timeout=args.timeout, workdir=args.workdir))


def register(commands: Any) -> None:
    """Add ``ambient-ctrl demo`` (entry point ``ambient_ctrl.commands``)."""
    parser = commands.add_parser(
        "demo", help="run the local cluster, the operator and sessions",
        description="Start the local API server (simulated kubelet and KubeVirt) and the "
                    "operator, install the CRDs and the agent registry, create sessions of "
                    "both backends and show every session in the cluster as it converges.")
    parser.add_argument("--sessions", type=int, default=6,
                        help="sessions the demo creates, alternately Pod and VM; the last Pod "
                             "session is scripted to fail")
    parser.add_argument("--exit-when-converged", action="store_true",
                        help="exit 0 with a summary once the demo's sessions settled")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds --exit-when-converged waits before exiting 1")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the kubeconfig and logs here (default: a temporary dir)")
    parser.set_defaults(run=_command)
