"""The garbage collector settings of the server process (``ambient-ctrl apiserver``).

Each request parses bodies and stored objects into trees of dicts (a runner pod: ~14 KB of
JSON, hundreds of containers), so CPython's cyclic collector runs a young collection every 700
net allocations and, every so often, a full one that walks every tracked object: the imports,
the history's events, the watchers. Measured in ``bench/apiserver_profile.py`` (a burst of
1,000 sessions of our operator): 5,648 young and 15 full collections, 1.07 s of the server's
9.18 s of CPU, charged by py-spy to whatever line allocated (``orjson.loads`` of stored
objects, copies). Reference counting frees nearly all of it; the server keeps objects as bytes,
so few cycles ever form.

So the process raises the thresholds and, once bootstrapped, freezes what exists (imports,
kinds, schemas: never walked again), as the operator's manager does
(``ambient_ctrl.gctuning``). Only :func:`envtest.server.serve` does this: an in-process
:class:`~envtest.server.LocalAPIServer` shares its process with the tests and leaves the
collector alone.
"""

from __future__ import annotations

import gc

THRESHOLDS = (20_000, 20, 20)
"""Young collection every 20,000 net allocations (default 700); a middle one every 20 young
ones and a full one every 20 middle ones at most (defaults 10 and 10)."""


def tune() -> None:
    """Raise the thresholds, collect what startup left as garbage, freeze the rest."""
    gc.set_threshold(*THRESHOLDS)
    gc.collect()
    gc.freeze()
