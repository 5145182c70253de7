"""The server process tunes the garbage collector (raised thresholds, startup frozen); a server
in the tests' process leaves it alone."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from envtest import LocalAPIServer
from foundation.gctuning import THRESHOLDS

_SERVE = """
import gc, os, signal, sys
from envtest.server import serve

def ready(url, admin_url):
    print(*gc.get_threshold(), gc.get_freeze_count(), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)  # serve() stops on it, as the command does

serve(port=0, kubeconfig_path=sys.argv[1], on_ready=ready)
"""


def test_the_server_process_raises_thresholds_and_freezes_startup(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _SERVE, str(tmp_path / "kubeconfig")],
                          capture_output=True, text=True, timeout=60, check=True)
    *thresholds, frozen = (int(n) for n in done.stdout.split())
    assert tuple(thresholds) == THRESHOLDS
    assert frozen > 10_000  # the imports, kinds and schemas at least


def test_an_in_process_server_leaves_the_collector_alone() -> None:
    before = gc.get_threshold(), gc.get_freeze_count()
    with LocalAPIServer():
        assert (gc.get_threshold(), gc.get_freeze_count()) == before
