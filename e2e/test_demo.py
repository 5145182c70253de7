"""`ambient-ctrl demo`: the demo `make run` shows.

* ``--exit-when-converged``: every session settles as scripted and the demo exits 0;
* sessions applied meanwhile (config/samples, a session named by hand, one in a namespace the
  operator does not manage) are shown with the demo's own, sorted by name, and the demo runs on;
* on a terminal the kubeconfig, the kubectl commands, the metrics and health URLs stay below
  the table it redraws, and the health URL answers;
* a stop signal (SIGTERM, SIGHUP — a ``kill``, a closed terminal — like Ctrl-C), whether the
  demo is running or still starting: it exits 0, says "stopped", and its API server and
  operator processes, which run in sessions of their own, are gone with it;
* SIGKILL, of the demo or of whatever started it (``make``): nothing is left running.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from ambient_ctrl.testing import child_pids, eventually, process_alive, stop_process

from .cluster import kubectl

pytestmark = pytest.mark.local_only("the demo runs its own local cluster")

ROOT = Path(__file__).resolve().parents[1]
DEMO = [sys.executable, "-m", "ambient_ctrl.cli", "demo"]
CLEAR = "\x1b[H\x1b[J"
"""What the demo writes before each redraw on a terminal."""

MY_SESSION = """
apiVersion: vteam.ambient-code/v1alpha1
kind: AgenticSession
metadata: {{name: my-session, namespace: {namespace}}}
spec: {{initialPrompt: "Look around", timeout: 300}}
"""


def start_demo(tmp_path: Path, *args: str, out: Path, parent: bool = False,
               ) -> subprocess.Popen[bytes]:
    """The demo (with ``parent``: under a process that only waits for it, as ``make run``
    does), its output to ``out``, in a session of its own."""
    wrapper = [sys.executable, "-c", "import subprocess, sys; "
               "sys.exit(subprocess.call(sys.argv[1:]))"] if parent else []
    with open(out, "wb") as sink:
        return subprocess.Popen([*wrapper, *DEMO, *args, "--workdir", str(tmp_path)],
                                stdin=subprocess.DEVNULL, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_table(out: Path) -> None:
    eventually(lambda: "SESSION" in out.read_text(errors="replace"), timeout=60, interval=0.1,
               message="the demo never showed its table")


def last_table(text: str) -> list[list[str]]:
    """The rows (cells) of the last table in the demo's output, header left out."""
    block = text.rsplit("SESSION", 1)[1].split("by backend/phase")[0]
    return [re.split(r"\s{2,}", line.strip()) for line in block.splitlines()[1:]
            if line.strip()]


def test_demo_converges_and_exits_0(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ambient_ctrl.cli", "demo", "--sessions", "5",
         "--exit-when-converged", "--timeout", "90", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=150, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    final = done.stdout.split("SESSION")[-1]
    assert final.count("pod          Running") == 2, final
    assert final.count("kubevirt-vm  Running") == 2, final
    assert "Failed (PrerequisiteFailed)" in final
    # Named as upstream's backend names sessions.
    assert final.count("\nsession-") == 5, final
    assert "converged: 5 sessions" in done.stdout
    assert done.stdout.rstrip().endswith(
        "stopped: the local API server and the operator have exited"), done.stdout[-500:]
    assert (tmp_path / "operator.log").exists() and (tmp_path / "apiserver.log").exists()


@pytest.mark.kubectl
def test_sessions_applied_meanwhile_are_shown_in_any_namespace(tmp_path: Path) -> None:
    out = tmp_path / "demo.out"
    demo = start_demo(tmp_path, "--sessions", "2", out=out)
    try:
        wait_for_table(out)
        kubeconfig = tmp_path / "kubeconfig"
        kubectl(kubeconfig, "apply", "-k", str(ROOT / "config" / "samples"))
        kubectl(kubeconfig, "create", "namespace", "elsewhere")  # not managed
        for namespace in ("demo", "elsewhere"):
            kubectl(kubeconfig, "apply", "-f", "-", input=MY_SESSION.format(namespace=namespace))

        def shown() -> dict[tuple[str, str], str]:
            assert demo.poll() is None, out.read_text()[-3000:]
            rows = last_table(out.read_text(errors="replace"))
            keys = [(row[0], row[1]) for row in rows]
            assert keys == sorted(keys), keys  # by name, then namespace
            phases = {(row[0], row[1]): row[3] for row in rows}
            assert phases.get(("my-session", "demo")) == "Running", phases
            assert phases.get(("my-session", "elsewhere")) == "Pending", phases
            samples = {phase for (name, namespace), phase in phases.items()
                       if namespace == "agentic-sessions"}
            assert samples == {"Running"} and len(keys) == 2 + 2 + 2, phases
            return phases

        phases = eventually(shown, timeout=60, interval=0.5,
                            message="the sessions applied meanwhile were not shown")
        assert sum(namespace == "demo" and name.startswith("session-")
                   for name, namespace in phases) == 2
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(60) == 0
        text = out.read_text(errors="replace")
        assert "Traceback" not in text, text[-3000:]
        assert text.rstrip().endswith(
            "stopped (SIGTERM): the local API server and the operator have exited"), text[-500:]
    finally:
        stop_process(demo)


def test_on_a_terminal_the_guide_stays_below_the_table(tmp_path: Path) -> None:
    screen, slave = pty.openpty()
    demo = subprocess.Popen([*DEMO, "--sessions", "1", "--workdir", str(tmp_path)],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    seen = bytearray()

    def text() -> str:
        while select.select([screen], [], [], 0)[0]:
            try:
                chunk = os.read(screen, 65536)
            except OSError:  # EIO: every writer has gone
                break
            if not chunk:
                break
            seen.extend(chunk)
        return seen.decode(errors="replace").replace("\r\n", "\n")

    def frame() -> str:
        *_, last = text().split(CLEAR)
        assert "SESSION" in last and "Ctrl-C" in last
        return last

    try:
        last = eventually(frame, timeout=60, interval=0.1, message="no redrawn table")
        guide = last.split("by backend/phase:", 1)[1]
        assert f"kubeconfig: {tmp_path / 'kubeconfig'}" in guide, last
        assert "get as -A" in guide and "apply -f" in guide, last
        metrics = re.search(r"metrics: (http://127\.0\.0\.1:\d+/metrics)", guide)
        health = re.search(r"health: +(http://127\.0\.0\.1:\d+)/healthz +\1/readyz", guide)
        assert metrics and health, last

        def healthy() -> bool:
            with urllib.request.urlopen(health.group(1) + "/healthz", timeout=5) as answer:
                return bool(answer.status == 200)

        eventually(healthy, timeout=30, ignoring=(OSError,), message="the probe address")
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(60) == 0
        after = text().split(CLEAR)[-1]
        assert "stopped (SIGTERM)" in after.split("Ctrl-C", 1)[1], after
    finally:
        stop_process(demo)
        os.close(screen)


@pytest.mark.parametrize(("sig", "moment"), [
    (signal.SIGTERM, "running"), (signal.SIGHUP, "running"), (signal.SIGTERM, "starting"),
], ids=["sigterm-running", "sighup-running", "sigterm-starting"])
def test_a_stop_signal_stops_the_demo_and_its_processes(
        tmp_path: Path, sig: signal.Signals, moment: str) -> None:
    out = tmp_path / "demo.out"
    demo = start_demo(tmp_path, "--sessions", "2", out=out)
    children: set[int] = set()
    try:
        if moment == "running":
            # Both processes started, the sessions created, the table on screen.
            wait_for_table(out)
            children = child_pids(demo.pid)
            assert len(children) == 2, children  # the API server and the operator
        else:
            # The API server process exists; the operator does not yet.
            children = eventually(lambda: child_pids(demo.pid), timeout=30, interval=0.01,
                                  message="the demo started no process")
        demo.send_signal(sig)
        code = demo.wait(60)
        text = out.read_text(errors="replace")
        assert code == 0, text[-3000:]
        assert "Traceback" not in text, text[-3000:]
        assert f"stopped ({sig.name})" in text, text[-3000:]
        left = {pid for pid in children if process_alive(pid)}
        assert not left, f"the demo left processes running: {left}"
        assert not child_pids(demo.pid)
    finally:
        for pid in children:
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)
        stop_process(demo)


@pytest.mark.parametrize("killed", ["demo", "its-parent"])
def test_a_killed_demo_leaves_nothing_running(tmp_path: Path, killed: str) -> None:
    out = tmp_path / "demo.out"
    top = start_demo(tmp_path, "--sessions", "1", out=out, parent=killed == "its-parent")
    watched: set[int] = set()
    try:
        wait_for_table(out)
        [demo] = child_pids(top.pid) if killed == "its-parent" else [top.pid]
        children = child_pids(demo)
        assert len(children) == 2, children  # the API server and the operator
        watched = {demo, *children}
        os.kill(top.pid, signal.SIGKILL)  # no cleanup
        top.wait(10)
        eventually(lambda: not any(map(process_alive, watched)), timeout=40, interval=0.1,
                   message=f"left running: {sorted(filter(process_alive, watched))}")
        if killed == "its-parent":  # the demo stopped the two itself, and said so
            assert "stopped (SIGTERM)" in out.read_text(errors="replace")
    finally:
        for pid in filter(process_alive, watched):
            os.kill(pid, signal.SIGKILL)
        stop_process(top)
