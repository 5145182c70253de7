"""The ExecutionEnvironment protocol: how a session runs, as two pure functions.

``render(session, runtime, token)`` returns the desired children (Pod or VirtualMachine, the
Service, Secrets) — no I/O, deterministic names, every child with a controller owner reference
to the session. ``observe(session, children, now)`` reads the children the cache holds and says
what phase the workload is in. The reconciler does all I/O around them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .resources import ExecutionKind, Phase

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class VMConfig:
    """``vmConfig`` of a registry entry."""

    container_disk_image: str
    cpu: str = "2"
    memory: str = "4Gi"
    cloud_init_template: str = ""


@dataclass(frozen=True, slots=True)
class Runtime:
    """One validated agent registry entry."""

    id: str
    image: str
    display_name: str = ""
    port: int = 8001
    env: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, Any] = field(default_factory=dict)
    sandbox: Mapping[str, Any] = field(default_factory=dict)
    execution_kind: ExecutionKind = ExecutionKind.POD
    vm: VMConfig | None = None


@dataclass(frozen=True, slots=True)
class Children:
    """What the cache holds of one session's children (None where absent)."""

    pod: Mapping[str, Any] | None = None
    vm: Mapping[str, Any] | None = None
    vmi: Mapping[str, Any] | None = None
    service: Mapping[str, Any] | None = None
    secrets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """By name."""


@dataclass(frozen=True, slots=True)
class Observation:
    """The workload's state as the session's status should show it.

    ``phase`` is one of Creating, Running, Completed, Failed (None: no workload exists).
    ``conditions`` are extra condition updates (e.g. PodScheduled=False, Unschedulable).
    ``recheck_after`` is the number of seconds after which observing the same children again
    gives another answer (a grace period ends); None when only a change to them will. No event
    marks such a moment, so the reconciler requeues for it.
    """

    phase: Phase | None
    ready: bool = False
    reason: str = ""
    message: str = ""
    endpoint: str = ""
    conditions: Sequence[Mapping[str, str]] = ()
    recheck_after: float | None = None


class RenderError(ValueError):
    """The session and runtime cannot produce valid children (bad input): ``reason`` is a
    CamelCase condition reason, the message says which field and why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ExecutionEnvironment(Protocol):
    """A backend a session can run on. Both methods are pure (no I/O, ``now`` passed in)."""

    kind: ExecutionKind

    def render(self, session: Mapping[str, Any], runtime: Runtime, *, token: str) -> list[Obj]:
        """Desired children; raises :class:`RenderError` for bad input."""
        ...

    def observe(self, session: Mapping[str, Any], children: Children, *,
                now: dt.datetime) -> Observation:
        ...
