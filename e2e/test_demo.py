"""`ambient-ctrl demo`: the demo `make run` shows, without a terminal.

* ``--exit-when-converged``: every session settles as scripted and the demo exits 0;
* a stop signal (SIGTERM, SIGHUP — a ``kill``, a closed terminal — like Ctrl-C), whether the
  demo is running or still starting: it exits 0 and its API server and operator processes,
  which run in sessions of their own, are gone with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ambient_ctrl.testing import eventually, stop_process

pytestmark = pytest.mark.local_only("the demo runs its own local cluster")


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
    assert (tmp_path / "operator.log").exists() and (tmp_path / "apiserver.log").exists()


def children_of(pid: int) -> set[int]:
    """The live processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(("sig", "moment"), [
    (signal.SIGTERM, "running"), (signal.SIGHUP, "running"), (signal.SIGTERM, "starting"),
], ids=["sigterm-running", "sighup-running", "sigterm-starting"])
def test_a_stop_signal_stops_the_demo_and_its_processes(
        tmp_path: Path, sig: signal.Signals, moment: str) -> None:
    out = tmp_path / "demo.out"
    with open(out, "wb") as sink:
        demo = subprocess.Popen(
            [sys.executable, "-m", "ambient_ctrl.cli", "demo", "--sessions", "2",
             "--workdir", str(tmp_path)],
            stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True)
    children: set[int] = set()
    try:
        if moment == "running":
            # Both processes started, the sessions created, the table on screen.
            eventually(lambda: "SESSION" in out.read_text(errors="replace"), timeout=60,
                       interval=0.1, message="the demo never showed its table")
            children = children_of(demo.pid)
            assert len(children) == 2, children  # the API server and the operator
        else:
            # The API server process exists; the operator does not yet.
            children = eventually(lambda: children_of(demo.pid), timeout=30, interval=0.01,
                                  message="the demo started no process")
        demo.send_signal(sig)
        code = demo.wait(60)
        text = out.read_text(errors="replace")
        assert code == 0, text[-3000:]
        assert "Traceback" not in text, text[-3000:]
        left = {pid for pid in children if alive(pid)}
        assert not left, f"the demo left processes running: {left}"
        assert not children_of(demo.pid)
    finally:
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        stop_process(demo)
