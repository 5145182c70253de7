"""foundation: what every layer needs, below all of them.

Time (:mod:`foundation.clock`: the :class:`Clock` protocol, :class:`RealClock`, the tests'
:class:`FakeClock`, and :func:`saturate`, which makes any delay one a wait can take),
threads (:mod:`foundation.threads`: :class:`Threads`, the long-lived threads of one owner,
and :func:`join_all` against one :class:`Deadline`) and label and field selectors
(:mod:`foundation.selectors`: parsed and matched as kube-apiserver does; the informers' cache
and the local API server both select with them). ``metrics``, ``informers``,
``ambient_ctrl`` and ``reconcilers`` all build on it; it imports nothing of the project
(import-linter's layers contract puts it at the bottom).
"""

from .clock import MAX_DELAY, Clock, FakeClock, RealClock, rfc3339, rfc3339_micro, saturate
from .threads import Deadline, Threads, Watched, join_all

__all__ = [
    "MAX_DELAY",
    "Clock",
    "Deadline",
    "FakeClock",
    "RealClock",
    "Threads",
    "Watched",
    "join_all",
    "rfc3339",
    "rfc3339_micro",
    "saturate",
]
