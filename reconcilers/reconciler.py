"""The AgenticSession reconciler: gather what the cache says, ask the phase machine, act.

One pass: read the session → resolve its runtime (agent registry) and environment → read its
children and observe the workload, gather the facts the machine needs (prerequisite Secrets,
the token, the inactivity timeout: :class:`.reading.SessionReader`) → :func:`.phase.next_step`
(pure) → do what it says: start the run (:class:`.starting.RunStarter`: platform Secrets, the
runner's token, the workload, its Service, the NetworkPolicy), delete the workload, release
copied Secrets, refresh the token, keep a live run's children in shape (holding spec changes
back as ``RestartRequired``) → write the status (one guarded merge patch, only if it changed)
and then the intent annotations (another guarded patch) → requeue for the next moment
something is due (a token refresh, the inactivity deadline), never to poll.

Bad input ends in ``Ready=False`` with the reason, a Warning Event and a TerminalError (no
retry until the session or the registry changes); a cluster without KubeVirt is looked at
again every ``kubevirt_recheck`` seconds instead (installing it is no change to the session).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from cachetools import TTLCache

from ambient_ctrl.client import Client
from ambient_ctrl.events import EventRecorder
from ambient_ctrl.readyourwrites import ReadYourWrites
from ambient_ctrl.reconcile import Request, Result, TerminalError
from foundation.clock import Clock, RealClock
from informers.errors import Conflict, NotFound
from informers.resource import NAMESPACES, SERVICES, Resource

from . import children as ch
from . import live, tokens
from .config import OperatorConfig, OperatorOptions
from .emission import StatusEmitter
from .environment import Child, ExecutionEnvironment, RenderError
from .liverender import LiveRenders
from .metrics import SessionMetrics
from .phase import next_step
from .phasetypes import Started, Step, World
from .platform_secrets import PlatformSecrets
from .reading import Caches, Seen, SessionReader, ours
from .registry import RegistryCache
from .resources import (
    AGENTIC_SESSIONS,
    AGUI_TOKEN_KEY,
    DESIRED_PHASE,
    MANAGED_NAMESPACE_LABEL,
    RESUME_ANNOTATION,
    RUN_ANNOTATION,
    RUNNER_SA,
    RUNNER_SECRETS,
    RUNNER_TOKEN_SECRET,
    START_REQUESTED_AT,
    TOKEN_REFRESHED_AT,
    Phase,
    runner_name,
    service_name,
)
from .runner import RunnerClient
from .runner_env import is_resume
from .starting import RunStarter
from .status import find, parse_time, with_restart_required
from .sync import ChildSync

__all__ = ["Caches", "OperatorOptions", "SessionReconciler", "StartRetry"]

log = logging.getLogger(__name__)

STALE_RECHECK = 0.05
"""Seconds before looking again when the cache does not show our last write to the session
yet (the watch delivers it within milliseconds)."""
LIVE = frozenset({Phase.CREATING, Phase.RUNNING})
ENDED = frozenset({Phase.STOPPED, Phase.COMPLETED, Phase.FAILED})
RUNNER_RETRY_MAX = 300.0
REFUSAL_MEMORY = 3600.0
"""How long a refused start is remembered (after that, or an operator restart, one more try)."""


class StartRetry(Exception):
    """Starting the run failed for a reason that may pass; the status says which."""


class SessionReconciler:
    """Reconciles AgenticSessions. Thread-safe: each call works on its own request."""

    def __init__(self, client: Client, *, environments: Sequence[ExecutionEnvironment],
                 caches: Caches, platform: PlatformSecrets, registry: RegistryCache,
                 events: EventRecorder, metrics: SessionMetrics, sync: ChildSync,
                 runner: RunnerClient, served: Callable[[Resource], bool],
                 config: OperatorConfig,
                 options: OperatorOptions = OperatorOptions(),
                 clock: Clock | None = None) -> None:
        self._client = client
        self._caches = caches
        self._platform = platform
        self._events = events
        self._metrics = metrics
        self._sync = sync
        self._runner = runner
        self._runner_failures: TTLCache[tuple[str, str, str], int] = TTLCache(
            maxsize=10_000, ttl=RUNNER_RETRY_MAX * 4)
        self._refused: TTLCache[tuple[str, str, str], tuple[Hashable, Started]] = TTLCache(
            maxsize=65_536, ttl=REFUSAL_MEMORY)
        """Starts the cluster refused for good (a name taken), by session, with what the
        user controls at the time: asked again only once that changes."""
        self._config = config
        self._options = options
        self._clock = clock or RealClock()
        self._emit = StatusEmitter(client, events=events, metrics=metrics,
                                   writes=ReadYourWrites(clock=self._clock))
        self._read = SessionReader(
            client, environments={env.kind: env for env in environments}, caches=caches,
            platform=platform, registry=registry, sync=sync, served=served, config=config,
            options=options)
        self._live_renders = LiveRenders(live_form=live.without_live_env)
        self._starter = RunStarter(client, caches=caches, platform=platform, sync=sync,
                                   live_renders=self._live_renders,
                                   config=config)

    # entry -----------------------------------------------------------------------------------
    def reconcile(self, request: Request) -> Result:
        session = self._client.get(AGENTIC_SESSIONS, request.name, request.namespace)
        if session is None or session["metadata"].get("deletionTimestamp"):
            self._emit.forget(request)
            return Result()  # children go with it: garbage collection by owner references
        if self._emit.stale(request, str(session["metadata"].get("resourceVersion", ""))):
            return Result(requeue_after=STALE_RECHECK)
        if not self._managed(request.namespace) and not _winding_down(session):
            return Result()  # upstream skips unmanaged namespaces; a run there is still ended
        try:
            return self._pass(session)
        except Conflict:
            log.debug("the session changed while it was reconciled; looking again")
            return Result(requeue=True)

    def _managed(self, namespace: str) -> bool:
        if not self._options.require_managed_label:
            return True
        labels = ((self._client.get(NAMESPACES, namespace) or {}).get("metadata") or {}
                  ).get("labels") or {}
        return labels.get(MANAGED_NAMESPACE_LABEL) == "true"

    def _pass(self, session: Mapping[str, Any]) -> Result:
        now = self._clock.now()
        seen = self._read.see(session, now)
        world = self._world(session, seen, now)
        step = next_step(session, world, now=now)
        # The token's annotations, also when the write after provisioning was lost (the
        # backend refuses to mint GitHub tokens for a session without runner-sa).
        annotate = _token_annotations(session, seen.token_name, seen.account) \
            if seen.token is not None or seen.token_made else {}
        if step.start and seen.runtime is not None and seen.inputs is not None:
            started = self._refusal(session, seen.incarnation)
            if started is None:
                run = replace(seen.inputs, is_resume=is_resume(session),
                              run_started=str(step.status.get("startTime", "")))
                started, provisioned = self._starter.start(session, seen, run, now)
                annotate.update(provisioned)
            step = next_step(session, replace(world, started=started), now=now)
            if step.permanent is not None and started.failure is not None:
                self._refused[seen.incarnation] = (_user_controls(session), started)
        if _said(session, step):
            step = replace(step, events=())  # the same refusal, shown already: no news
        retry_runner: float | None = None
        if step.reconfigure is not None:
            answers, retry_runner = self._reconfigure(session, seen, step.reconfigure)
            step = next_step(session, replace(world, reconfigured=answers), now=now)
        backend = str(step.status.get("executionKind") or seen.observe_env.kind.value)
        self._act(session, step, seen, backend, now)
        if step.phase in ENDED or step.status.get("startTime") != (
                session.get("status") or {}).get("startTime"):
            self._sync.forget(seen.run)  # the run is over (or a new one begins): so is its wait
        held: tuple[str, ...] = ()
        if step.phase in LIVE and not step.delete_workload:
            held = self._converge_live(session, seen, backend)
        detail_due = self._emit.write(
            session, with_restart_required(step.status, held, now=now), clear=step.clear,
            annotate={**step.annotate, **annotate}, now=now,
            defer=step.permanent is None and not step.retry)
        self._emit.report(session, session.get("status") or {}, step, backend, now)
        result = self._outcome(session, step)
        for due in (detail_due, retry_runner):
            if due is not None and (not result.requeue_after or due < result.requeue_after):
                result = Result(requeue_after=max(due, STALE_RECHECK))
        return result

    def _world(self, session: Mapping[str, Any], seen: Seen, now: dt.datetime) -> World:
        """What the phase machine decides from."""
        namespace, name = ch.meta(session)
        inputs = seen.inputs
        refreshed = now if seen.token_made else parse_time(
            ((seen.token or {}).get("metadata") or {}).get("annotations", {}).get(
                TOKEN_REFRESHED_AT))
        return World(
            workload=seen.workload, vertex_missing=self._platform.vertex_missing(),
            runner_secret=self._config.vertex or
            self._caches.runner_secrets.get(RUNNER_SECRETS, namespace) is not None,
            integrations=inputs.integrations if inputs else False,
            s3_available=inputs.s3.available if inputs else False,
            s3_message=inputs.s3.message if inputs else "",
            bad_input=seen.bad, token_present=seen.token is not None or seen.token_made,
            token_refreshed_at=refreshed,
            inactivity_timeout=self._read.inactivity_timeout(session),
            run_fields={"executionKind": seen.start_env.kind.value,
                        **({"runtime": seen.runtime.id} if seen.runtime else {})},
            endpoint=_endpoint(namespace, name, seen.service),
            workload_noun=seen.start_env.noun)

    def _refusal(self, session: Mapping[str, Any], incarnation: tuple[str, str, str]
                 ) -> Started | None:
        """The refusal of this session's last start, while nothing the user controls (the
        spec, a new Start) changed since: not asked again."""
        refused = self._refused.get(incarnation)
        if refused is None:
            return None
        if refused[0] != _user_controls(session):
            del self._refused[incarnation]
            return None
        return refused[1]

    # acting ----------------------------------------------------------------------------------
    def _reconfigure(self, session: Mapping[str, Any], seen: Seen,
                     plan: live.Plan) -> tuple[live.Answers, float | None]:
        """Make the plan's runner calls; the answers, and when to ask again after a refusal
        (doubling per failure, never a storm)."""
        namespace, name = ch.meta(session)
        token = ch.secret_value(seen.token, AGUI_TOKEN_KEY)
        port = ch.service_port(seen.service)
        failed: str | None = None
        for call in plan.calls:
            error = self._runner.post(namespace, name, port, call, token)
            if error is not None and call.path == "/workflow":
                failed = error
        key = seen.incarnation
        if failed is None:
            self._runner_failures.pop(key, None)
            log.info("runner reconfigured", extra={"session": f"{namespace}/{name}",
                                                   "calls": [c.path for c in plan.calls]})
            return live.Answers(), None
        count = self._runner_failures[key] = self._runner_failures.get(key, 0) + 1
        return live.Answers(workflow_error=failed), min(
            self._options.runner_retry * 2 ** (count - 1), RUNNER_RETRY_MAX)

    def _act(self, session: Mapping[str, Any], step: Step, seen: Seen, backend: str,
             now: dt.datetime) -> None:
        if step.delete_workload:
            self._delete_run(session, seen, backend)
        if step.delete_copies:
            self._platform.release(session)
        if step.refresh_token and seen.token is not None:
            try:
                tokens.refresh(self._client, session, secret_name=seen.token_name,
                               account=seen.account, now=now)
            except tokens.TokenError as error:
                if not error.permanent:
                    raise
                self._events.record(session, "Warning", reason="TokenRefreshFailed",
                                    message=error.message)

    def _delete_run(self, session: Mapping[str, Any], seen: Seen, backend: str) -> None:
        """Delete the run's Service and what the environment rendered (the workload last,
        in the background, as upstream deletes the Pod). A child created a moment ago that
        the cache has not shown yet is read from the server and deleted if it is ours (by
        uid: never another's of that name), so a Stop right after a start does not wait."""
        environment, children = seen.observe_env, seen.children
        namespace, name = ch.meta(session)
        service = self._client.get(SERVICES, service_name(name), namespace)
        if service is not None and ours(service, session) and \
                not service["metadata"].get("deletionTimestamp"):
            self._sync.delete(SERVICES, service_name(name), namespace, backend=backend)
        for child in reversed(environment.owns):
            obj = children.get(child.resource.kind, child.name(name))
            if obj is None and child.rendered:
                obj = self._unseen(session, seen.run, child)
            if not child.rendered or obj is None or obj["metadata"].get("deletionTimestamp"):
                continue
            self._sync.delete(child.resource, child.name(name), namespace, backend=backend,
                              propagation="Background", uid=str(obj["metadata"].get("uid", "")))

    def _unseen(self, session: Mapping[str, Any], run: Hashable, child: Child
                ) -> Mapping[str, Any] | None:
        """The child this run created that the cache has not shown yet, read from the server
        (None when it is gone already, is not ours, or was not created by this run)."""
        namespace, name = ch.meta(session)
        kind, child_name = child.resource.kind, child.name(name)
        if not self._sync.pending(run, kind, child_name):
            return None
        try:
            obj = self._client.resource(child.resource).get(child_name, namespace)
        except NotFound:
            obj = None
        self._sync.settle(run, kind, child_name)  # read from the server: no longer awaited
        return obj if ch.owned_by(obj, str(session["metadata"].get("uid", ""))) else None

    def _converge_live(self, session: Mapping[str, Any], seen: Seen,
                       backend: str) -> tuple[str, ...]:
        """Keep a live run's children in shape; the spec differences held for the next run
        (nothing when the run's workload is going, or the run is on another environment than
        its runtime names now: a registry edit never moves a live run)."""
        runtime, inputs, environment = seen.runtime, seen.inputs, seen.observe_env
        children, incarnation, run = seen.children, seen.incarnation, seen.run
        if (runtime is None or inputs is None or environment.kind != seen.start_env.kind
                or not seen.workload.exists or seen.workload.terminating):
            return ()
        _, name = ch.meta(session)
        workload = children.get(environment.owns[0].resource.kind, runner_name(name))
        if workload is None:
            return ()
        # Rendered as the run was made: its start and whether it resumed are on the workload.
        made = (workload.get("metadata") or {}).get("annotations") or {}
        live_inputs = replace(inputs, is_resume=made.get(RESUME_ANNOTATION) == "true",
                       run_started=str(made.get(RUN_ANNOTATION) or
                                       (session.get("status") or {}).get("startTime", "")))
        try:
            # The repos and the workflow change live (the runner is asked): not a new run's.
            desired = self._live_renders.render(
                session, runtime, live_inputs,
                lambda: environment.render(session, runtime, live_inputs),
                environment=environment.kind.value)
        except RenderError:
            return ()  # the next run reports it; this one is left as it is
        resources = {child.resource.kind: child.resource for child in environment.owns}
        held: list[str] = []
        for obj in desired:
            actual = children.get(obj["kind"], obj["metadata"]["name"])
            # Only the workload's spec waits for the next run; the rest (a VM's cloud-init
            # Secret, read again when the guest reboots) is brought back as it must be.
            held += self._sync.converge(run, resources[obj["kind"]], obj, actual,
                                        backend=backend,
                                        live=obj["kind"] == environment.owns[0].resource.kind)
        taken = self._starter.ensure_service(session, workload, environment,
                                     ch.agui_port(workload) or runtime.port, incarnation)
        if taken is not None:  # ours went while the run lasts, and another took the name
            self._events.record(session, "Warning", reason="ServiceNameTaken", message=taken)
        return tuple(held)

    def _outcome(self, session: Mapping[str, Any], step: Step) -> Result:
        if step.permanent is not None:
            if step.permanent.recheck_after is not None:
                return Result(requeue_after=step.permanent.recheck_after)
            if _said(session, step):
                return Result()  # said already (one log line, one Event): nothing new
            raise TerminalError(f"{step.permanent.reason}: {step.permanent.message}")
        if step.retry:
            raise StartRetry(str((find(step.status, "Ready") or {}).get("message", "")))
        if step.again:
            return Result(requeue_after=STALE_RECHECK)
        if step.requeue_after is not None:
            return Result(requeue_after=max(step.requeue_after, 0.5))
        return Result()


def _token_annotations(session: Mapping[str, Any], secret: str,
                       account: str) -> dict[str, str]:
    """``runner-token-secret`` and ``runner-sa`` where the session lacks them."""
    annotations = (session.get("metadata") or {}).get("annotations") or {}
    return {key: value for key, value in ((RUNNER_TOKEN_SECRET, secret), (RUNNER_SA, account))
            if not annotations.get(key)}


def _winding_down(session: Mapping[str, Any]) -> bool:
    """A namespace that is no longer managed starts nothing (upstream skips it); a run that
    is on there — live, with the ``startTime`` a start writes — is still looked after until
    it ends: stopped when asked (upstream ignored the Stop), its token refreshed, its end
    noticed. A session whose status merely says so (no run was started) is left alone."""
    status = session.get("status") or {}
    return status.get("phase") in (Phase.CREATING, Phase.RUNNING, Phase.STOPPING) and bool(
        status.get("startTime"))


def _said(session: Mapping[str, Any], step: Step) -> bool:
    """Whether ``step`` refuses the run exactly as the stored status says already."""
    if step.permanent is None:
        return False
    shown = find(session.get("status") or {}, "Ready")
    return shown is not None and shown == find(step.status, "Ready")


def _user_controls(session: Mapping[str, Any]) -> Hashable:
    """What a user changes to ask for another try: the spec (generation) or a new Start."""
    meta = session.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return (meta.get("generation"), annotations.get(START_REQUESTED_AT),
            annotations.get(DESIRED_PHASE))


def _endpoint(namespace: str, name: str, service: Mapping[str, Any] | None) -> str:
    """The runner's address as the backend dials it (``session-<n>.<ns>.svc...``)."""
    if service is None:
        return ""
    return (f"http://{service_name(name)}.{namespace}.svc.cluster.local:"
            f"{ch.service_port(service)}")
