"""The project-owned registry every family of this process is registered on.

Never prometheus_client's global ``REGISTRY``: a registry made here belongs to whoever made it
(the operator's entry point, or one test), so two of them in one process never collide and
importing a module registers nothing anywhere.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector


def new_registry(*, runtime_collectors: bool = True) -> CollectorRegistry:
    """An empty registry, with the process and runtime collectors unless told otherwise.

    The runtime collectors are Python's counterparts of what controller-runtime registers next
    to its own families (Go's process and runtime collectors): ``process_*`` (CPU, memory, open
    file descriptors, start time), ``python_info`` (platform) and ``python_gc_*``.
    """
    registry = CollectorRegistry()
    if runtime_collectors:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry
