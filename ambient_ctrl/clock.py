"""Time for the framework: the :class:`Clock` protocol, the real clock and a fake one for tests.

They live in ``informers.clock`` (the reflector needs them and may not import upward); this is
the name operator authors use.
"""

from informers.clock import (
    MAX_DELAY,
    Clock,
    FakeClock,
    RealClock,
    rfc3339,
    rfc3339_micro,
    saturate,
)

__all__ = ["MAX_DELAY", "Clock", "FakeClock", "RealClock", "rfc3339", "rfc3339_micro",
           "saturate"]
