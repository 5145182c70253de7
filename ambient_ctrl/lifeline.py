"""Processes that end with the process that started them (Linux's parent-death signal).

A child whose parent dies without stopping it (SIGKILL, the OOM killer) is not stopped: it is
handed to init and runs on, holding its ports, with nobody left to stop it. The demo's API
server and operator must not outlive the demo that way. ``prctl(PR_SET_PDEATHSIG, sig)`` asks
the kernel to send ``sig`` to a process when its parent goes; only the child can set it (after
the fork), and a parent that died before then shows as a parent pid that is no longer the one
that started it — so the child checks that too, and nothing is left to a race.

The protocol is one environment variable: the parent starts the child with
:func:`child_environment` (``AMBIENT_CTRL_LIFELINE=<the parent's pid>``); the child's entry
point (``ambient-ctrl``'s ``main``) calls :func:`honour` before anything else, which takes the
variable out of the environment (the child's own children do not inherit it), sets the signal
and says whether the parent is still there.

The kernel's caveat: "parent" is the *thread* that started the child — a child started from a
thread that then ends gets its signal at once. Start children that must live as long as the
process from the main thread.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Mapping, MutableMapping

ENVIRONMENT_VARIABLE = "AMBIENT_CTRL_LIFELINE"
"""Set by a parent in its child's environment: the parent's pid."""

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def child_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) plus the variable that ties a child
    started with it to this process (see :func:`honour`)."""
    environment = dict(os.environ if base is None else base)
    environment[ENVIRONMENT_VARIABLE] = str(os.getpid())
    return environment


def exit_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent (thread) ends.

    Returns False where there is no parent-death signal (not Linux): the caller is then on its
    own. Raises OSError when the kernel refuses.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    return True


def honour(environment: MutableMapping[str, str], sig: int = signal.SIGTERM) -> bool:
    """In a child started with :func:`child_environment`: take the variable out of
    ``environment``, have ``sig`` sent when the parent ends, and return whether the parent that
    started this process is still its parent (False: it died already, so the signal never comes
    — the caller should exit). Without the variable: nothing to do, True."""
    value = environment.pop(ENVIRONMENT_VARIABLE, None)
    if not value or not value.isdigit():
        return True
    exit_with_parent(sig)
    # Read after the signal is armed: a parent dying from here on sends it, one that died
    # before shows here as another parent (init or a subreaper).
    return os.getppid() == int(value)
