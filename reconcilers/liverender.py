"""The live run's desired children, rendered once per change of what they are rendered from.

Every pass over a live session renders its children again to keep them in shape
(``SessionReconciler._converge_live``), and most passes are woken by the runner Pod's status
(scheduled, started, ready) while the session, its runtime and the run's inputs stay as they
were: at 100 sessions/s the render and the digests of the result were a tenth of the
operator's CPU (``bench/latency_trace.py --profile``). :class:`LiveRenders` keeps the last
render of each session with what it was made from — the session as the render reads it (all
but its status, which no renderer reads, and the server's bookkeeping in its metadata:
``resourceVersion``, ``managedFields``), the registry entry and the run's inputs, compared by
value — and gives it back while they are equal: the operator's own status writes do not make
it render again, nor do its writes of the session's annotations that no render reads
(:data:`NOT_RENDERED`). The render is a pure function of those three, so the answer is the one a
new render would give; the objects are shared and never mutated (as the cache's are), which
also lets :class:`~.diffcache.DiffCache` reuse their digests.

A run's start renders too: it gives that render over (:meth:`LiveRenders.seed`), so the first
pass over the live run — a Pod session's second and last pass as it starts — compares the
workload with it instead of rendering again: one render per session instead of two (a burst of
200 sessions: 200 renders). Not in a burst of 1,000, whose first passes all come before the
second ones: the LRU has let the first 744 seeds go by then.

Bounded (an LRU of ``maxsize`` sessions, the ones being reconciled now): a rendered Pod is tens
of kilobytes of Python objects, and 10,000 idle sessions must not keep one each. 256, not more:
a session's passes that reuse its render come within a second or so of each other, and at 70
sessions/s 256 gave one render per session as 1,024 did (2,100 renders for 6,300 passes), while
with 1,024 the renders were half of the 116,000 objects a middle garbage collection walked
(a 116 ms pause of every thread; ``bench/latency_trace.py`` with ``gc.callbacks``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from foundation.lru import LRU

from .environment import RunInputs, Runtime
from .resources import (
    DESIRED_PHASE,
    FORCE_EXECUTE_PROMPT,
    RUNNER_SA,
    RUNNER_TOKEN_SECRET,
    START_REQUESTED_AT,
    STOP_REASON,
    STOP_REQUESTED_AT,
)

Obj = Mapping[str, Any]

NOT_RENDERED = frozenset({DESIRED_PHASE, STOP_REASON, STOP_REQUESTED_AT, START_REQUESTED_AT,
                          FORCE_EXECUTE_PROMPT, RUNNER_TOKEN_SECRET, RUNNER_SA})
"""The session's annotations no render reads: the phase machine's intents, which the operator
clears as it fulfils them, and the token's names, which it writes as a run starts (these two
reach a render through its inputs: ``RunInputs.token_secret``, ``is_resume``, compared on their
own). ``tests/reconcilers/test_liverender.py`` renders each environment with and without them."""


class LiveRenders:
    """The last live render per session (by uid). Thread-safe."""

    def __init__(self, maxsize: int = 256, *,
                 live_form: Callable[[Obj], Obj] = lambda obj: obj) -> None:
        self._last: LRU[tuple[str, str],
                        tuple[Obj, Runtime, RunInputs, tuple[Obj, ...]]] = LRU(maxsize)
        self._lock = threading.Lock()
        self._live_form = live_form
        """What a live run is compared with, of each rendered object (the run's own render
        less what changes live: ``live.without_live_env``)."""
        self.renders = 0
        """Renders made (the rest were given back): for tests and benchmarks."""

    def render(self, session: Mapping[str, Any], runtime: Runtime, inputs: RunInputs,
               render: Callable[[], Sequence[Obj]], *, environment: str) -> tuple[Obj, ...]:
        """``render()``'s objects for this session, runtime and inputs in ``environment`` (a
        kind of execution environment): the last ones while all are as they were then."""
        meta = session.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        key, read = (uid, environment), rendered_from(session)
        if uid:
            with self._lock:
                last = self._last.get(key)
            if last is not None and last[1] == runtime and last[2] == inputs \
                    and last[0] == read:
                return last[3]
        objects = tuple(self._live_form(obj) for obj in render())
        self.renders += 1
        if uid:
            with self._lock:
                self._last[key] = (read, runtime, inputs, objects)
        return objects

    def seed(self, session: Mapping[str, Any], runtime: Runtime, inputs: RunInputs,
             rendered: Sequence[Obj], *, environment: str) -> None:
        """A run starts from ``rendered``, the render of this session, runtime and inputs in
        ``environment``: what :meth:`render` gives for them from now on (until they change)."""
        uid = str((session.get("metadata") or {}).get("uid") or "")
        if not uid:
            return
        objects = tuple(self._live_form(obj) for obj in rendered)
        with self._lock:
            self._last[(uid, environment)] = (rendered_from(session), runtime, inputs, objects)


_BOOKKEEPING = frozenset({"resourceVersion", "managedFields"})


def rendered_from(session: Mapping[str, Any]) -> dict[str, Any]:
    """The session as a render reads it: without its status, the server's bookkeeping and the
    annotations no render reads; an empty map of annotations or labels as none (shallow: the
    members are the session's own, shared)."""
    view = {k: v for k, v in session.items() if k != "status"}
    meta = session.get("metadata")
    if isinstance(meta, Mapping):
        view["metadata"] = trimmed = {k: v for k, v in meta.items() if k not in _BOOKKEEPING}
        annotations = meta.get("annotations")
        if isinstance(annotations, Mapping) and not NOT_RENDERED.isdisjoint(annotations):
            trimmed["annotations"] = {k: v for k, v in annotations.items()
                                      if k not in NOT_RENDERED}
        for key in ("annotations", "labels"):
            if key in trimmed and trimmed[key] == {}:
                del trimmed[key]
    return view
