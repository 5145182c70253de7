"""The AgenticSession reconciler: level-triggered, one session at a time.

read the session (cache) → honour the user's intent (``desired-phase``) → resolve the runtime
(agent registry) and the backend (recorded in status once chosen) → render the desired children
(pure) → diff against the cache and create / patch / recreate only the difference → observe the
workload (pure) → compute the status (pure) and write it only if it changed → requeue for the
nearest timeout. Bad input ends in Ready=False, a Warning Event and a TerminalError (no retry
until the session or the registry changes); an API failure is an ordinary error (backoff). A VM
session on a cluster without KubeVirt is reported the same way but looked at again every
``kubevirt_recheck`` seconds: installing KubeVirt is no change to the session.

The workload of a live run (Creating or Running) is never deleted to apply a change: a change
to its immutable fields (a session env var, a registry entry's env, resources or image) waits
for the next run, and the session shows ``RestartRequired=True`` naming the fields meanwhile.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ambient_ctrl.client import Client
from ambient_ctrl.events import EventRecorder
from ambient_ctrl.expectations import Expectations
from ambient_ctrl.readyourwrites import ReadYourWrites
from ambient_ctrl.reconcile import Request, Result, TerminalError
from informers.clock import Clock, RealClock
from informers.errors import AlreadyExists, NotFound
from informers.resource import CONFIGMAPS, NAMESPACES, PODS, SECRETS, SERVICES, Resource

from . import status as st
from .diff import DiffCache
from .environment import Children, ExecutionEnvironment, Obj, Observation, RenderError, Runtime
from .metrics import SessionMetrics
from .registry import RegistryCache, runtime_id
from .resources import (
    AGENTIC_SESSIONS,
    DESIRED_PHASE_ANNOTATION,
    MANAGED_NAMESPACE_LABEL,
    REGISTRY_CONFIGMAP,
    TOKEN_KEY,
    VIRTUAL_MACHINE_INSTANCES,
    VIRTUAL_MACHINES,
    ExecutionKind,
    Phase,
    runner_name,
    service_name,
    token_secret_name,
)

log = logging.getLogger(__name__)

RESOURCES: Mapping[str, Resource] = {"Pod": PODS, "Service": SERVICES, "Secret": SECRETS,
                                     "VirtualMachine": VIRTUAL_MACHINES}
EXPECTATION_RECHECK = 2.0
"""Seconds before looking again when a child we created is not in the cache yet."""
STALE_RECHECK = 0.05
"""Seconds before looking again when the cache does not show our last write to the session
yet (the watch delivers it within milliseconds; acting on the older version would be wasted:
its guarded status write answers 409)."""
LIVE = frozenset({Phase.CREATING, Phase.RUNNING})
"""Phases whose workload is the run itself: deleting it would end the run."""
WORKLOADS = frozenset({"Pod", "VirtualMachine"})
KUBEVIRT_NOT_INSTALLED = "KubeVirtNotInstalled"


@dataclass(frozen=True, slots=True)
class OperatorOptions:
    """Settings from the operator's flags."""

    registry_namespace: str = "ambient-code"
    """Namespace of the ``ambient-agent-registry`` ConfigMap."""
    require_managed_label: bool = True
    """Reconcile only sessions in namespaces labelled ``ambient-code.io/managed=true``."""
    kubevirt_recheck: float = 30.0
    """Seconds between looks (API discovery) for KubeVirt while a VM session waits for it:
    KubeVirt installed after the operator started is found within this time."""


class SessionReconciler:
    """Reconciles AgenticSessions. Thread-safe: each call works on its own request."""

    def __init__(self, client: Client, *,
                 environments: Mapping[ExecutionKind, ExecutionEnvironment],
                 registry: RegistryCache, events: EventRecorder, metrics: SessionMetrics,
                 expectations: Expectations, kubevirt_installed: Any,
                 options: OperatorOptions = OperatorOptions(),
                 clock: Clock | None = None) -> None:
        self._client = client
        self._environments = environments
        self._registry = registry
        self._events = events
        self._metrics = metrics
        self._expectations = expectations
        self._kubevirt_installed = kubevirt_installed
        self._options = options
        self._clock = clock or RealClock()
        self._writes = ReadYourWrites(clock=self._clock)
        self._diffs = DiffCache()

    # entry -------------------------------------------------------------------------------------
    def reconcile(self, request: Request) -> Result:
        session = self._client.get(AGENTIC_SESSIONS, request.name, request.namespace)
        if session is None or session["metadata"].get("deletionTimestamp"):
            if session is not None:
                self._expectations.forget(_incarnation(session))
            self._writes.forget(request)
            return Result()  # children go with it: garbage collection by owner references
        if self._writes.stale(request, str(session["metadata"].get("resourceVersion", ""))):
            return Result(requeue_after=STALE_RECHECK)
        if not self._managed(request.namespace):
            return Result()
        phase = st.current_phase(session)
        intent = ((session["metadata"].get("annotations") or {})
                  .get(DESIRED_PHASE_ANNOTATION, ""))
        now = self._clock.now()
        if intent == Phase.RUNNING and phase.terminal:
            return self._restart(session, now=now)
        if intent == Phase.STOPPED and phase not in (Phase.STOPPED, Phase.COMPLETED,
                                                     Phase.FAILED):
            return self._stop(session, reason="UserRequested", final=Phase.STOPPED, now=now)
        if phase == Phase.STOPPING:
            status = session.get("status") or {}
            final = Phase.FAILED if status.get("stoppedReason") == "Timeout" else Phase.STOPPED
            return self._stop(session, reason=str(status.get("stoppedReason") or
                                                  "UserRequested"), final=final, now=now)
        if phase.terminal:
            return Result()
        ended, _ = st.deadline_passed(session, now=now)
        if ended:
            final = Phase.FAILED if ended == "Timeout" else Phase.STOPPED
            return self._stop(session, reason=ended, final=final, now=now)
        return self._run(session, phase, now)

    def _managed(self, namespace: str) -> bool:
        if not self._options.require_managed_label:
            return True
        ns = self._client.get(NAMESPACES, namespace)
        labels = (ns or {}).get("metadata", {}).get("labels") or {}
        return labels.get(MANAGED_NAMESPACE_LABEL) == "true"

    # running -----------------------------------------------------------------------------------
    def _run(self, session: Obj, phase: Phase, now: dt.datetime) -> Result:
        try:
            runtime, kind = self._resolve(session)
        except RenderError as error:
            return self._bad_input(session, error, now=now)
        environment = self._environments[kind]
        children = self._children(session)
        # A running session's workload is never silently recreated: if it vanished, the run is
        # lost (observe reports no workload and the session fails with WorkloadLost).
        lost = phase == Phase.RUNNING and children.pod is None and children.vm is None
        # The registry moved this runtime to another backend since the run began: the run keeps
        # the children it has (rendering them from the new entry would be wrong); observe only.
        moved = kind != runtime.execution_kind
        held: tuple[str, ...] = (
            f"executionKind ({kind.value}, now {runtime.execution_kind.value})",) if moved else ()
        if not lost and not moved:
            try:
                desired = environment.render(session, runtime, token=self._token(children))
            except RenderError as error:
                return self._bad_input(session, error, now=now, backend=kind)
            applied = self._apply(session, desired, children, kind, live=phase in LIVE)
            if applied is None:
                return Result(requeue_after=EXPECTATION_RECHECK)
            held = applied
            children = self._children(session)
        observation = environment.observe(session, children, now=now)
        return self._settle(session, phase, kind, runtime, observation, now, held=held)

    def _resolve(self, session: Obj) -> tuple[Runtime, ExecutionKind]:
        """The runtime, and the backend: the one recorded in status once a run began (a
        registry edit never moves a live session), else the runtime's."""
        registry = self._client.get(CONFIGMAPS, REGISTRY_CONFIGMAP,
                                    self._options.registry_namespace)
        runtime = self._registry.lookup(registry, runtime_id(session))
        recorded = (session.get("status") or {}).get("executionKind")
        kind = ExecutionKind(recorded) if recorded in {k.value for k in ExecutionKind} \
            else runtime.execution_kind
        if kind == ExecutionKind.KUBEVIRT_VM and not self._kubevirt_installed():
            raise RenderError(KUBEVIRT_NOT_INSTALLED,
                              f"runtime {runtime.id} runs in a KubeVirt VirtualMachine, but the "
                              "kubevirt.io/v1 API is not served by this cluster")
        return runtime, kind

    def _token(self, children: Children) -> str:
        for secret in children.secrets.values():
            if secret["metadata"]["name"].endswith("-agui-token"):
                value = (secret.get("data") or {}).get(TOKEN_KEY)
                if value:
                    return base64.b64decode(value).decode()
        return secrets.token_urlsafe(32)

    def _children(self, session: Obj) -> Children:
        namespace, name = session["metadata"]["namespace"], session["metadata"]["name"]
        owned = session["metadata"]["uid"]

        def mine(obj: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
            refs = (obj or {}).get("metadata", {}).get("ownerReferences") or ()
            return obj if any(r.get("uid") == owned for r in refs) else None

        kubevirt = self._kubevirt_installed()
        vm = mine(self._client.get(VIRTUAL_MACHINES, runner_name(name), namespace)) \
            if kubevirt else None
        # Read even without the VM: a stop waits for the guest (the VMI) to be gone too, and
        # KubeVirt deletes it only after the VM. (Observing checks it belongs to the VM.)
        vmi = self._client.get(VIRTUAL_MACHINE_INSTANCES, runner_name(name), namespace) \
            if kubevirt else None
        secrets_ = {}
        for secret_name in (token_secret_name(name), f"{name}-cloudinit"):
            secret = mine(self._client.get(SECRETS, secret_name, namespace))
            if secret is not None:
                secrets_[secret_name] = secret
        return Children(pod=mine(self._client.get(PODS, runner_name(name), namespace)),
                        vm=vm, vmi=vmi,
                        service=mine(self._client.get(SERVICES, service_name(name), namespace)),
                        secrets=secrets_)

    def _apply(self, session: Obj, desired: list[Obj], children: Children,
               kind: ExecutionKind, *, live: bool) -> tuple[str, ...] | None:
        """Create, patch or recreate what differs, in ``desired``'s order; None, having
        stopped, at the first child whose stored state the cache does not show (created a
        moment ago and unseen, or AlreadyExists on create). Otherwise the paths held back for
        the next run: with ``live`` (the run's workload exists), a workload whose immutable
        fields differ is kept, not recreated — deleting it would end the run.

        Stopping matters: later children may embed what an earlier one holds — the cloud-init
        Secret carries the token Secret's token. With the token Secret unseen, the token at
        hand is a fresh random one, not the stored one, and writing it into the cloud-init
        Secret would boot the VM with a token no client has (seen in the chaos run: a create
        failing between the two Secrets, retried before the cache caught up). For the same
        reason it stops at a child of ours that ``children`` (the snapshot ``desired`` was
        rendered from) lacked but the cache now has: diffing against it would overwrite the
        stored token with the fresh one.
        """
        request = _incarnation(session)
        rendered_from = {o["metadata"]["name"] for o in (children.pod, children.vm,
                                                         children.service,
                                                         *children.secrets.values()) if o}
        held: list[str] = []
        for obj in desired:
            resource = RESOURCES[obj["kind"]]
            name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
            actual = self._client.get(resource, name, namespace)
            if actual is not None:
                self._expectations.observed(request, f"{obj['kind']}/{name}")
                if name not in rendered_from and _owned_by(actual, session):
                    # Ours, and in the cache only since the snapshot ``desired`` was rendered
                    # from (with a fresh token, if this is the token Secret): render again.
                    return None
            elif f"{obj['kind']}/{name}" in self._expectations.pending(request):
                return None  # created a moment ago; the cache has not seen it yet
            change = self._diffs.diff(obj, actual)
            if change.action == "none":
                continue
            if change.action == "recreate" and actual is not None:
                if actual["metadata"].get("deletionTimestamp"):
                    continue  # on its way out already; created anew once gone
                if live and obj["kind"] in WORKLOADS:
                    # Recreating it would end the run (the next reconcile would find the
                    # workload gone: WorkloadLost); the change waits for the next run.
                    held.extend(f"{obj['kind']} {path}" for path in change.reasons)
                    continue
            if not self._write(session, resource, obj, change, kind):
                return None
        return tuple(held)

    def _write(self, session: Obj, resource: Resource, obj: Obj, change: Any,
               kind: ExecutionKind) -> bool:
        """Write one change; False when a create found the object already there."""
        name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
        started = self._clock.monotonic()
        if change.action == "create":
            # Expect before creating: the informer may see the object before we return.
            key = _incarnation(session)
            self._expectations.expect_creations(
                key, {*self._expectations.pending(key), f"{obj['kind']}/{name}"})
            try:
                self._client.create(resource, obj)
            except AlreadyExists:
                return False  # a stale cache: the object is there and the informer will show it
            except Exception:
                self._expectations.observed(key, f"{obj['kind']}/{name}")  # never coming
                raise
        elif change.action == "patch":
            self._client.patch(resource, name, change.patch, namespace,
                               patch_type=change.patch_type)
        else:  # recreate: immutable fields differ; the next reconcile creates it anew
            log.info("recreating a child whose immutable fields changed",
                     extra={"child": f"{obj['kind']}/{name}", "paths": change.reasons})
            with contextlib.suppress(NotFound):
                self._client.delete(resource, name, namespace)
        self._metrics.operation(kind.value, change.action, self._clock.monotonic() - started)
        return True

    # status ------------------------------------------------------------------------------------
    def _settle(self, session: Obj, phase: Phase, kind: ExecutionKind, runtime: Runtime,
                observation: Observation, now: dt.datetime, *,
                held: tuple[str, ...] = ()) -> Result:
        new_phase, reason, message = st.next_phase(phase, observation)
        status = st.with_run_start(session.get("status") or {},
                                   created=session["metadata"].get("creationTimestamp"))
        status.update(executionKind=kind.value, runtime=runtime.id)
        if observation.endpoint:
            status["endpoint"] = observation.endpoint
        if new_phase != phase:
            status = st.with_phase(status, new_phase, now=now,
                                   stopped_reason=reason if new_phase == Phase.FAILED else "")
        generation = int(session["metadata"].get("generation", 1))
        ready = new_phase == Phase.RUNNING and observation.ready
        status = st.with_condition(
            status, type=st.READY, status_value="True" if ready else "False",
            reason="RunnerReady" if ready else (reason or new_phase.value),
            message=message or ("the session's runner is ready" if ready else new_phase.value),
            generation=generation, now=now)
        for condition in observation.conditions:
            status = st.with_condition(status, type=condition["type"],
                                       status_value=condition["status"],
                                       reason=condition.get("reason", condition["type"]),
                                       message=condition.get("message", ""),
                                       generation=generation, now=now)
        status = st.with_restart_required(status, changed=held, generation=generation, now=now)
        status["observedGeneration"] = generation
        detail_due = self._write_status(session, status, phase, new_phase, kind, reason,
                                        message, now)
        waits = [observation.recheck_after or float("inf"), detail_due]
        if not new_phase.terminal:
            waits.append(st.deadline_passed({**session, "status": status}, now=now)[1])
        soonest = min(waits)  # nothing will change on its own before then: no polling
        return Result(requeue_after=max(soonest, 0.5)) if soonest != float("inf") else Result()

    def _write_status(self, session: Obj, status: dict[str, Any], old: Phase, new: Phase,
                      kind: ExecutionKind, reason: str, message: str,
                      now: dt.datetime) -> float:
        """Write ``status`` if it changed (progress detail may wait: ``status.write_delay``);
        the seconds until deferred detail is due, inf when nothing waits."""
        delay = st.write_delay(session.get("status") or {}, status, now=now)
        if delay is None:
            return float("inf")
        if delay > 0:
            return delay
        meta = session["metadata"]
        self._patch_status(session, _guarded(session, status_patch(session.get("status") or {},
                                                                   status)))
        if new == old:
            return float("inf")
        self._metrics.transition(kind.value, old.value, new.value)
        startup = None
        if new == Phase.RUNNING and not (session.get("status") or {}).get("startTime"):
            # This run's first Running: startup counts from the start of this run (creation,
            # or the restart), not from the session's creation.
            begun = st.parse_time(status.get("runStartTime")) or st.parse_time(
                meta.get("creationTimestamp"))
            if begun is not None:
                startup = max((now - begun).total_seconds(), 0.0)
                self._metrics.started(kind.value, startup)
        if new == Phase.FAILED:
            self._metrics.error(kind.value, reason or "Error")
            self._events.record(session, "Warning", reason=reason or "Failed",
                                message=message or "the session failed")
        elif new != Phase.CREATING:
            # Creating, the first step of every run, is in the status already and would cost
            # every session one more write; Running tells the news, with the startup time.
            detail = message or (f"runner ready {startup:.1f} s after the run began"
                                 if startup is not None else "")
            self._events.record(session, "Normal", reason=new.value,
                                message=f"session is {new.value}" + (
                                    f": {detail}" if detail else ""))
        return float("inf")

    def _bad_input(self, session: Obj, error: RenderError, *, now: dt.datetime,
                   backend: ExecutionKind | None = None) -> Result:
        meta = session["metadata"]
        status = st.with_condition(session.get("status") or {}, type=st.READY,
                                   status_value="False", reason=error.reason,
                                   message=error.message,
                                   generation=int(meta.get("generation", 1)), now=now)
        status.setdefault("phase", Phase.PENDING.value)
        status["observedGeneration"] = int(meta.get("generation", 1))
        if status != (session.get("status") or {}):
            self._patch_status(session, _guarded(session, status_patch(
                session.get("status") or {}, status)))
            kind = backend.value if backend else str(
                (session.get("status") or {}).get("executionKind") or "pod")
            self._metrics.error(kind, error.reason)
        self._events.record(session, "Warning", reason=error.reason, message=error.message)
        if error.reason == KUBEVIRT_NOT_INSTALLED:
            # Not the session's fault, and no edit of it fixes it: KubeVirt may be installed
            # any time. Look again then (discovery is asked at most this often).
            return Result(requeue_after=self._options.kubevirt_recheck)
        raise TerminalError(f"{error.reason}: {error.message}")

    # intents -----------------------------------------------------------------------------------
    def _stop(self, session: Obj, *, reason: str, final: Phase, now: dt.datetime) -> Result:
        """Delete every child — the workload, the Service, the token and cloud-init Secrets
        (which hold the token and the session's env: nothing of a stopped session lingers);
        Stopping until the cache shows them all gone, then ``final``. A restart renders them
        anew."""
        children = self._children(session)
        meta = session["metadata"]
        kind = ExecutionKind((session.get("status") or {}).get("executionKind") or "pod")
        every = [(VIRTUAL_MACHINES, children.vm), (PODS, children.pod),
                 (SERVICES, children.service),
                 *((SECRETS, secret) for secret in children.secrets.values())]
        remaining = [(resource, obj) for resource, obj in every if obj is not None]
        for resource, obj in remaining:
            if not obj["metadata"].get("deletionTimestamp"):
                self._delete(resource, obj, kind)
        if children.vmi is not None:
            remaining.append((VIRTUAL_MACHINE_INSTANCES, children.vmi))
        phase = st.current_phase(session)
        target = Phase.STOPPING if remaining else final
        status = st.with_phase(session.get("status") or {}, target, now=now,
                               stopped_reason=reason)
        status["stoppedReason"] = reason
        ready_reason = "Stopping" if remaining else reason
        status = st.with_condition(status, type=st.READY, status_value="False",
                                   reason=ready_reason, message=f"session stopped: {reason}",
                                   generation=int(meta.get("generation", 1)), now=now)
        self._write_status(session, status, phase, target, kind, reason,
                           f"stopped: {reason}", now)
        return Result()

    def _restart(self, session: Obj, *, now: dt.datetime) -> Result:
        """A fresh run: drop the one-shot intent, remove the old workload, back to Pending."""
        meta = session["metadata"]
        children = self._children(session)
        old = session.get("status") or {}
        kind = ExecutionKind(old.get("executionKind") or "pod")
        for resource, obj in ((VIRTUAL_MACHINES, children.vm), (PODS, children.pod)):
            if obj is not None:
                self._delete(resource, obj, kind)
        # Status first, then the intent: removing the annotation is what wakes the next
        # reconcile (status-only changes do not), and by then the cache must show Pending —
        # the other order could leave the session Stopped with no intent, forever.
        written = self._patch_status(
            session, {"status": status_patch(old, st.restarted(old, now=now))})
        after = self._client.patch(
            AGENTIC_SESSIONS, meta["name"],
            {"metadata": {"annotations": {DESIRED_PHASE_ANNOTATION: None}}}, meta["namespace"])
        self._writes.wrote(Request.for_object(session),
                           before=str(written["metadata"].get("resourceVersion", "")),
                           after=str(after["metadata"].get("resourceVersion", "")))
        self._events.record(session, "Normal", reason="Restarting",
                            message="restart requested: starting a new run")
        return Result()

    def _patch_status(self, session: Obj, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Merge-patch the session's status; remember the write, so the reconciles that run
        before the cache shows it wait for it instead of acting on the version it replaced."""
        meta = session["metadata"]
        written = self._client.patch_status(AGENTIC_SESSIONS, meta["name"], patch,
                                            meta["namespace"])
        self._writes.wrote(Request.for_object(session),
                           before=str(meta.get("resourceVersion", "")),
                           after=str((written.get("metadata") or {}).get("resourceVersion", "")))
        return written

    def _delete(self, resource: Resource, obj: Mapping[str, Any], kind: ExecutionKind) -> None:
        """Delete a child (already gone counts as done), timed as a backend operation."""
        started = self._clock.monotonic()
        with contextlib.suppress(NotFound):
            self._client.delete(resource, obj["metadata"]["name"],
                                obj["metadata"]["namespace"])
        self._metrics.operation(kind.value, "delete", self._clock.monotonic() - started)


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch turning status ``old`` into ``new``: fields ``new`` dropped become null
    (a merge patch leaves absent fields alone)."""
    return {**{key: None for key in old if key not in new}, **new}


def _guarded(session: Obj, status: dict[str, Any]) -> dict[str, Any]:
    """A status merge patch that applies only to the session version it was computed from:
    with ``metadata.resourceVersion`` the server answers 409 Conflict otherwise. A status is
    computed from the cache, which may still hold a session deleted and re-created under the
    same name; unguarded, the old one's verdict (e.g. Failed/WorkloadLost, its children being
    gone) would land on the new one by name. (A uid in the patch would not do: the status
    subresource ignores every change outside ``status`` but this optimistic lock.)"""
    version = session["metadata"].get("resourceVersion")
    return {"metadata": {"resourceVersion": version}, "status": status} if version else {
        "status": status}


def _incarnation(session: Obj) -> tuple[str, str, str]:
    """What creation expectations are kept under: the session's namespace, name *and* uid. A
    session deleted and created again under its name (seen in the chaos run: both while the
    watch was down, so no reconcile saw it gone) must not inherit the creations the old one
    still waited for — children that went with it and will never be seen — and wait for
    them until the expectations expire."""
    meta = session["metadata"]
    return (str(meta.get("namespace", "")), str(meta["name"]), str(meta.get("uid", "")))


def _owned_by(obj: Mapping[str, Any], session: Obj) -> bool:
    uid = session["metadata"]["uid"]
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or ())
