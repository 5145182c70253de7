"""The user's last intent wins (issue 15 item 3), with real processes: the backend flips
sessions between Running and Stopped as fast as it can; whatever each session was told last
is what it ends up as — Running with one runner, or Stopped with none — within seconds, and no
intent is ever erased by the operator's clearing of an older one."""

from __future__ import annotations

import random
import threading
import time

import pytest

from ambient_ctrl.testing import eventually
from e2e.test_upstream_contract import DESIRED_PHASE, NS, Platform, platform

__all__ = ["platform"]

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.local_only("a kubelet simulator behind the local API server")]

SESSIONS = 8
FLIPS = 50


def flip(platform: Platform, name: str, last: str, seed: int) -> None:
    """FLIPS alternating Start/Stop calls, ending with ``last``, a few ms apart."""
    pace = random.Random(seed)
    order = ["Stopped", "Running"] * (FLIPS // 2)
    if order[-1] != last:
        order = [*order[1:], last]
    for phase in order:
        if phase == "Running":
            platform.start(name)
        else:
            platform.stop(name)
        time.sleep(pace.uniform(0.0, 0.05))


def settled_as(platform: Platform, name: str, last: str) -> bool:
    session = platform.session(name)
    phase = (session.get("status") or {}).get("phase")
    pod = platform.read("Pod", f"{name}-runner")
    if last == "Running":
        return phase == "Running" and pod is not None
    return phase == "Stopped" and pod is None


def describe(platform: Platform, name: str) -> str:
    session = platform.session(name)
    lines = [line for line in platform.operator_log.read_text(errors="replace").splitlines()
             if name in line]
    return (f"annotations {session['metadata'].get('annotations')}, status "
            f"{session.get('status')}; operator log:\n" + "\n".join(lines[-25:]))


def test_quick_flips_end_as_the_last_intent_said(platform: Platform) -> None:
    names = [platform.create(NS) for _ in range(SESSIONS)]
    for name in names:
        platform.wait_phase(name, "Running", timeout=60)
    last = {name: ("Running" if i % 2 == 0 else "Stopped") for i, name in enumerate(names)}
    threads = [threading.Thread(target=flip, args=(platform, name, last[name], i))
               for i, name in enumerate(names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for name in names:
        eventually(lambda name=name: settled_as(platform, name, last[name]), timeout=60,
                   message=f"{name} did not end {last[name]}: {describe(platform, name)}")
    for name in names:
        annotations = platform.session(name)["metadata"].get("annotations") or {}
        assert annotations.get(DESIRED_PHASE) in (None, last[name]), annotations
