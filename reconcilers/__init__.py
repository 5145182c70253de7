"""reconcilers: the AgenticSession operator built on ambient_ctrl.

Resources, the agent registry, the ExecutionEnvironment protocol with its Pod and KubeVirt VM
implementations, diffing, status mapping, the reconciler and its wiring. The only package that
knows about AgenticSessions.
"""

__all__: list[str] = []
