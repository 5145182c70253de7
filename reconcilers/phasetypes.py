"""What the session's phase machine (:mod:`.phase`) decides from, and what it decides.

Its input, besides the session and the time, is a :class:`World`: what the reconciler observed
of the world, what keeps the run from starting (:class:`BadInput`) and what this pass's start
did (:class:`Started`, :class:`StartFailure`). Its output is a :class:`Step`: the phase and
status to write, the annotations to clear or set, the events to emit (:class:`Event`) and what
to do. Plain frozen data, kept apart from the machine for the modules that only make or read
them: the reader (:mod:`.reading`) and the starter (:mod:`.starting`) find parts of the input,
the reconciler (:mod:`.reconciler`) gathers it and acts on the step, the emitter
(:mod:`.emission`) writes and reports it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from . import live
from .environment import Observation
from .resources import Phase


@dataclass(frozen=True, slots=True)
class BadInput:
    """What keeps the run from starting that only a change of the session, the registry or
    the cluster can fix: a condition reason and message. ``recheck_after``: seconds after
    which to look again although nothing changed (KubeVirt may get installed)."""

    reason: str
    message: str
    recheck_after: float | None = None


@dataclass(frozen=True, slots=True)
class StartFailure:
    """Starting the run failed: ``stage`` token or workload; ``permanent`` when retrying the
    same request cannot succeed (the API server refused it as invalid, a name is taken)."""

    stage: Literal["token", "workload"]
    message: str
    permanent: bool
    reason: str = "PodCreationFailed"
    """The Ready condition's and the Warning Event's reason (upstream's, unless a name the
    run needs is taken: ``ServiceNameTaken``)."""


@dataclass(frozen=True, slots=True)
class Started:
    """What this pass's start did: created the workload, found it there already (a stale
    cache), or failed."""

    existed: bool = False
    failure: StartFailure | None = None


@dataclass(frozen=True, slots=True)
class World:
    """Everything the machine decides from, besides the session and the time."""

    workload: Observation = field(default_factory=Observation)
    vertex_missing: str = ""
    """Non-empty (the message) when Vertex AI is on and its Secret is missing."""
    runner_secret: bool = True
    """``ambient-runner-secrets`` exists (or is not needed: Vertex AI is on)."""
    integrations: bool = False
    s3_available: bool = False
    s3_message: str = ""
    bad_input: BadInput | None = None
    token_refreshed_at: dt.datetime | None = None
    token_present: bool = False
    inactivity_timeout: float = 86400.0
    """Seconds (0 disables), resolved: the session's, else its project's, else the default."""
    started: Started | None = None
    run_fields: Mapping[str, Any] = field(default_factory=dict)
    """Our additive status fields for the run (executionKind, runtime)."""
    workload_noun: str = "pod"
    """How messages name the workload: upstream's "pod", or "VirtualMachine"."""
    reconfigured: live.Answers | None = None
    """What the runner answered to this pass's live reconfiguration (``Step.reconfigure``)."""
    endpoint: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    """A Kubernetes Event the pass records on the session: ``type`` Normal or Warning, a
    CamelCase ``reason`` and a sentence for people."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Step:
    """What to do in this pass. ``status`` is the whole next status."""

    phase: Phase
    status: dict[str, Any]
    start: bool = False
    delete_workload: bool = False
    delete_copies: bool = False
    refresh_token: bool = False
    clear: tuple[str, ...] = ()
    annotate: Mapping[str, str] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None
    retry: bool = False
    """Write the status, then fail the pass (backoff): a transient start failure."""
    permanent: BadInput | None = None
    """Write the status, then stop retrying until something changes (bad input)."""
    reconfigure: live.Plan | None = None
    """Calls to make to the runner (a Running session's repos or workflow changed); their
    answers come back as ``World.reconfigured``."""
    again: bool = False
    """Look again as soon as the cache shows this pass's writes (a reset: the next pass
    starts the new run; an inactivity Stop: the next pass stops; neither a status write nor
    the operator's own annotations wake it)."""
