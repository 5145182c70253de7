"""`ambient-ctrl demo --exit-when-converged`: the demo `make run` shows, without a terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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
    assert "converged: 5 sessions" in done.stdout
    assert (tmp_path / "operator.log").exists() and (tmp_path / "apiserver.log").exists()
