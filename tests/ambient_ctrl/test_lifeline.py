"""``ambient_ctrl.lifeline``: a child started with the lifeline ends when its parent is killed
(SIGKILL, no cleanup), a child whose parent died before it could arm the signal knows it, and
the variable does not reach grandchildren; ``ambient-ctrl`` honours it before anything else.

Real processes: a parent Python process starts the child, the test SIGKILLs the parent and
polls /proc for the child.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from ambient_ctrl import lifeline
from ambient_ctrl.testing import eventually, process_alive

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the parent-death signal is Linux's")

CHILD = textwrap.dedent("""
    import os, sys, time
    from ambient_ctrl import lifeline
    ok = lifeline.honour(os.environ)
    print("child", os.getpid(), "parented" if ok else "orphaned",
          "inherits" if lifeline.ENVIRONMENT_VARIABLE in os.environ else "clean", flush=True)
    time.sleep(120)
""")

PARENT = textwrap.dedent("""
    import os, subprocess, sys
    from ambient_ctrl import lifeline
    env = lifeline.child_environment() if sys.argv[2] == "lifeline" else dict(os.environ)
    subprocess.Popen([sys.executable, "-c", sys.argv[1]], env=env).wait()
""")


def _child_line(parent: subprocess.Popen[str]) -> list[str]:
    assert parent.stdout is not None
    return parent.stdout.readline().split()


@pytest.mark.parametrize("tie", ["lifeline", "none"])
def test_a_child_ends_with_its_killed_parent_only_with_the_lifeline(tie: str) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, tie], text=True,
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    child = 0
    try:
        line = _child_line(parent)
        child = int(line[1])
        assert line[2:] == ["parented", "clean"]
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        if tie == "lifeline":
            eventually(lambda: not process_alive(child), timeout=10,
                       message="the child outlived its killed parent")
        else:
            # The control: without the lifeline the orphan runs on (as the demo's API server
            # and operator did).
            with pytest.raises(AssertionError):
                eventually(lambda: not process_alive(child), timeout=1)
    finally:
        if child and process_alive(child):
            os.kill(child, signal.SIGKILL)
        if parent.stdout is not None:
            parent.stdout.close()


def test_a_child_whose_parent_is_gone_already_knows_it() -> None:
    # The variable names a process that is not this child's parent: the parent that started
    # it died before the signal was armed (the child has been handed to another).
    env = {**os.environ, lifeline.ENVIRONMENT_VARIABLE: "1"}
    done = subprocess.run([sys.executable, "-c", CHILD.replace("time.sleep(120)", "")],
                          env=env, capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.split()[2:] == ["orphaned", "clean"]


def test_without_the_variable_nothing_is_armed() -> None:
    environment = {"PATH": "/bin"}
    assert lifeline.honour(environment)
    assert environment == {"PATH": "/bin"}
    assert lifeline.child_environment({"A": "b"}) == {
        "A": "b", lifeline.ENVIRONMENT_VARIABLE: str(os.getpid())}


@pytest.mark.parametrize(("parent", "code"), [("this", 0), ("gone", 1)])
def test_ambient_ctrl_honours_the_lifeline_first(parent: str, code: int) -> None:
    pid = os.getpid() if parent == "this" else 1
    env = {**os.environ, lifeline.ENVIRONMENT_VARIABLE: str(pid)}
    done = subprocess.run([sys.executable, "-m", "ambient_ctrl.cli", "--version"], env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == code, done.stderr
    if code:
        assert done.stderr == ("ambient-ctrl: the process that started this one has gone: "
                               "not starting\n")
        assert not done.stdout
    else:
        assert done.stdout.startswith("ambient-ctrl ")
