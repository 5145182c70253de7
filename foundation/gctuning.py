"""The garbage collector settings of a long-running process: an operator's manager
(``ambient_ctrl.manager``) and the local API server's process (``envtest.server.serve``).

CPython's cyclic collector runs a young collection every 700 net container allocations and,
every so often, a full one that walks every tracked object and pauses every thread. A
controller allocates a lot (each watch event is parsed into a tree of dicts), and what it
keeps — imports (the ``kubernetes`` package alone is tens of thousands of objects), the
decoded objects of its caches — is walked again by every full collection. Measured in
``bench/operators.py`` (100 sessions/s): 685 collections, full ones pausing the operator up to
212 ms, the p99 of session creation → child created at 124 ms.

So a manager raises the thresholds as it starts (:func:`raise_thresholds`) and, once the
caches have synced, moves everything allocated so far into the permanent generation
(:func:`freeze`: never walked again); the same run had 19 collections, the longest 40 ms, p99
62 ms, for no more memory worth noting (the collector still runs; cycles wait a little longer).
Reference counting frees the rest as usual. Raised from the start, not only after the sync:
a first list of 20,000 Pods (6 KB each, in pages of 500, prepared into a Store page by page)
took 4.2 s with the default thresholds and 2.3 s with these.
:func:`restore` undoes both (a manager that stops inside a longer-lived process, e.g. tests).

The local API server is the same story (``bench/apiserver_profile.py``, a burst of 1,000
sessions: 5,648 young and 15 full collections, 1.07 s of its 9.18 s of CPU, charged by py-spy
to whatever line allocated); its process calls :func:`tune` once bootstrapped. An in-process
``LocalAPIServer`` shares its process with the tests and leaves the collector alone.
"""

from __future__ import annotations

import gc

THRESHOLDS = (20_000, 20, 20)
"""Young collection every 20,000 net allocations (default 700); a middle one every 20 young
ones and a full one every 20 middle ones at most (defaults 10 and 10)."""


def raise_thresholds() -> tuple[int, int, int]:
    """Raise the thresholds; returns the ones to restore."""
    previous = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    return previous


def pause() -> bool:
    """Stop automatic collection (reference counting goes on); whether it was on, for
    :func:`resume`. For a bounded stretch that allocates much and keeps most of it, such as a
    manager's first lists: each full collection there walks a heap that is still growing
    (``bench/scale.py`` at 50,000 sessions: 9 of the 34 s until the caches synced, the same
    peak memory without it)."""
    was = gc.isenabled()
    gc.disable()
    return was


def resume(was: bool) -> None:
    if was:
        gc.enable()


def freeze() -> None:
    """Collect what startup left as garbage, then freeze the rest (the caches, imports)."""
    gc.collect()
    gc.freeze()


def tune() -> tuple[int, int, int]:
    """Both at once: freeze what exists and raise the thresholds; returns the thresholds to
    restore."""
    previous = raise_thresholds()
    freeze()
    return previous


def restore(previous: tuple[int, int, int]) -> None:
    gc.set_threshold(*previous)
    gc.unfreeze()
