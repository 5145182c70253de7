"""The project controller: a managed namespace's ProjectSettings, and what each ProjectSettings
gives its namespace (upstream's ``handlers/namespaces.go`` and ``handlers/projectsettings.go``,
``shared/UPSTREAM-CONTRACT.md`` §8.2).

One request per namespace, ``<namespace>/projectsettings``, woken by the namespace (labelled
``ambient-code.io/managed=true``), by the ProjectSettings (a spec change) and by what it owns.
A pass, level-triggered, reading only caches:

* no ProjectSettings: if the namespace is managed and not being deleted, create the default one
  (``groupAccess: []``); an existing one is never overwritten;
* else make what the settings ask for exist and be right (:mod:`.project_children`): a
  RoleBinding per ``groupAccess`` entry, the ``ambient-session-trigger`` ServiceAccount, Role
  and RoleBinding, the LimitRange ``ambient-default-limits`` — created when missing, patched
  back when they drifted (labels, a Role's rules, a RoleBinding's subjects, the limits), and a
  group RoleBinding of ours whose entry went is deleted;
* then the status, one merge patch through the status subresource when it changed.

What is not ours is never changed: an object of one of these names that these settings do not
control is left alone (a Warning Event on the settings; it does not count as created), except
a group RoleBinding exactly as upstream's operator made it (labelled, no owner, the same group
and ClusterRole), which is adopted. One controlled by an earlier ProjectSettings of the
namespace is waited for: garbage collection is removing it, and its deletion wakes us.

Errors: an entry whose group cannot name a RoleBinding is skipped with a Warning Event (bad
input, no retry); a request the server refuses as invalid is reported the same way; any other
failure (429, 5xx, no answer, a conflict) is retried with backoff by the workqueue, after the
rest of the pass is done and the status written.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ambient_ctrl.client import Client, ScopedCache
from ambient_ctrl.events import EventRecorder
from ambient_ctrl.expectations import Expectations
from ambient_ctrl.readyourwrites import ReadYourWrites
from ambient_ctrl.reconcile import Request, Result
from foundation.clock import Clock, RealClock
from informers.errors import AlreadyExists, Conflict, Invalid, KubeError, NotFound
from informers.resource import Resource

from . import project_children as pc
from .resources import (
    PROJECT_SETTINGS,
    PROJECT_SETTINGS_NAME,
    ROLE_BINDINGS,
    ROLES,
    SERVICE_ACCOUNTS,
)

log = logging.getLogger(__name__)

STALE_RECHECK = 0.05
"""Seconds before looking again when the cache does not show our last status write yet."""
EXPECTATION_RECHECK = 1.0
"""Seconds before looking again while an object created a moment ago is not in the cache yet
(its watch event normally wakes us first)."""
RESOURCES: Mapping[str, Resource] = {
    "ServiceAccount": SERVICE_ACCOUNTS, "Role": ROLES, "RoleBinding": ROLE_BINDINGS,
    "LimitRange": pc.LIMIT_RANGES}


@dataclass(frozen=True, slots=True)
class ProjectCaches:
    """The caches a pass reads: every ProjectSettings, the managed namespaces, and the kinds
    made for projects, each narrowed to the ``ambient-code.io/managed=true`` label."""

    settings: ScopedCache
    namespaces: ScopedCache
    service_accounts: ScopedCache
    roles: ScopedCache
    role_bindings: ScopedCache
    limit_ranges: ScopedCache

    def of(self, kind: str) -> ScopedCache:
        return {"ServiceAccount": self.service_accounts, "Role": self.roles,
                "RoleBinding": self.role_bindings, "LimitRange": self.limit_ranges}[kind]


class State(enum.Enum):
    """Where one object stands after a pass."""

    OURS = "ours"
    """Exists (or was just made), controlled by these settings."""
    FOREIGN = "foreign"
    """One of its name exists and is someone else's: left alone."""
    WAITING = "waiting"
    """Going (ours, or an earlier settings' being garbage-collected), or refused as invalid."""
    FAILED = "failed"
    """A request failed in a way a retry may fix."""


@dataclass
class _Pass:
    """What one pass found on the way: the first retriable error, and whether it relied on a
    creation the cache has not shown yet."""

    settings: Mapping[str, Any]
    error: Exception | None = None
    pending: bool = False

    def fail(self, error: Exception) -> State:
        self.error = self.error or error
        return State.FAILED


class ProjectReconciler:
    """Reconciles ``<namespace>/projectsettings``. Thread-safe: a request is never handled by
    two workers at once, and what is shared (expectations, versions written) locks."""

    def __init__(self, client: Client, *, caches: ProjectCaches, events: EventRecorder,
                 clock: Clock | None = None) -> None:
        self._client = client
        self._caches = caches
        self._events = events
        clock = clock or RealClock()
        self._expectations = Expectations(ttl=30.0, clock=clock)
        self._writes = ReadYourWrites(clock=clock)

    # entry -------------------------------------------------------------------------------------
    def reconcile(self, request: Request) -> Result:
        if request.name != PROJECT_SETTINGS_NAME:
            return Result()  # the CRD admits no other name; nothing of ours hangs on one
        settings = self._caches.settings.get(request.name, request.namespace)
        if settings is None:
            self._writes.forget(request)
            return self._ensure_settings(request.namespace)
        self._expectations.observed((request.namespace, ""), _key(PROJECT_SETTINGS.kind,
                                                                  request.name))
        meta = settings["metadata"]
        if meta.get("deletionTimestamp"):
            return Result()  # what it owns goes with it (owner references)
        if self._writes.stale(request, str(meta.get("resourceVersion", ""))):
            return Result(requeue_after=STALE_RECHECK)
        work = _Pass(settings)
        bindings = self._group_bindings(work)
        trigger = [self._ensure(work, obj) for obj in pc.trigger_objects(settings)]
        limit_range = self._ensure(work, pc.limit_range(settings))
        self._write_status(request, work, bindings=bindings,
                           trigger_ready=all(s is State.OURS for s in trigger),
                           limit_range_ready=limit_range in (State.OURS, State.FOREIGN))
        if work.error is not None:
            raise work.error
        return Result(requeue_after=EXPECTATION_RECHECK) if work.pending else Result()

    # the settings of a managed namespace -----------------------------------------------------
    def _ensure_settings(self, namespace: str) -> Result:
        """Create the default ProjectSettings of a managed namespace that has none."""
        ns = self._caches.namespaces.get(namespace)
        if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp") \
                or (ns.get("status") or {}).get("phase") == "Terminating":
            return Result()  # not managed (or going): settings are made by hand there
        key, name = (namespace, ""), _key(PROJECT_SETTINGS.kind, PROJECT_SETTINGS_NAME)
        if name in self._expectations.pending(key):
            return Result(requeue_after=EXPECTATION_RECHECK)
        self._expectations.expect_creations(key, {name})
        try:
            self._client.create(PROJECT_SETTINGS, pc.default_settings(namespace))
        except AlreadyExists:
            self._expectations.observed(key, name)  # someone's: the cache will show it
            return Result()
        except Exception:
            self._expectations.observed(key, name)  # never coming
            raise
        log.info("ProjectSettings created for a managed namespace",
                 extra={"namespace": namespace, "projectsettings": PROJECT_SETTINGS_NAME})
        return Result()

    # what the settings give ------------------------------------------------------------------
    def _group_bindings(self, work: _Pass) -> int:
        """Ensure each groupAccess RoleBinding, delete ours whose entry went; how many of
        them are ours now."""
        settings = work.settings
        desired, skipped = pc.group_bindings(settings)
        for entry in skipped:
            self._events.record(_about(settings), "Warning", reason="InvalidGroupAccess",
                                message=entry.message)
        states = [self._ensure(work, binding, adopt=True) for binding in desired]
        self._remove_stale(work, {b["metadata"]["name"] for b in desired} | {pc.TRIGGER_NAME})
        return sum(state is State.OURS for state in states)

    def _remove_stale(self, work: _Pass, keep: set[str]) -> None:
        settings = work.settings
        namespace = settings["metadata"]["namespace"]
        for binding in self._caches.role_bindings.list(namespace):
            meta = binding["metadata"]
            if meta["name"] in keep or not pc.owned(binding, settings) \
                    or meta.get("deletionTimestamp"):
                continue
            try:
                self._client.delete(ROLE_BINDINGS, meta["name"], namespace,
                                    uid=str(meta.get("uid", "")))
            except (NotFound, Conflict):
                continue  # gone already, or another object of that name now: not ours
            except KubeError as error:
                work.fail(error)
                continue
            log.info("project RoleBinding removed: its groupAccess entry went",
                     extra={"namespace": namespace, "rolebinding": meta["name"]})

    def _ensure(self, work: _Pass, desired: Mapping[str, Any], *, adopt: bool = False) -> State:
        """Make ``desired`` exist and be right, and say where it stands."""
        settings, kind = work.settings, desired["kind"]
        meta = desired["metadata"]
        key, name = (meta["namespace"], str(settings["metadata"]["uid"])), _key(kind,
                                                                                  meta["name"])
        actual = self._caches.of(kind).get(meta["name"], meta["namespace"])
        try:
            if actual is not None:
                self._expectations.observed(key, name)
            elif name in self._expectations.pending(key):
                # Made a moment ago and not in the cache yet, or shown there and gone again
                # before a pass saw it: out of the labelled cache's scope (our label removed),
                # which waiting would not mend, or deleted. The server says which.
                try:
                    actual = self._client.resource(RESOURCES[kind]).get(meta["name"],
                                                                         meta["namespace"])
                except NotFound:
                    # Deleted since (garbage collection: an owner the cache still shows and
                    # the server no longer has, after a restore): made again once the
                    # expectation runs out; at once, every pass would race the collector.
                    work.pending = True
                    return State.OURS
                self._expectations.observed(key, name)
            state = self._converge(work, key, desired, actual, adopt=adopt)
        except Invalid as error:
            self._events.record(_about(settings), "Warning", reason="Failed" + kind,
                                message=f"{kind} {meta['name']}: {error.message}")
            return State.WAITING
        except KubeError as error:
            return work.fail(error)
        if state is State.FOREIGN:
            self._report_foreign(settings, kind, meta["name"])
        return state

    def _converge(self, work: _Pass, key: tuple[str, str], desired: Mapping[str, Any],
                  actual: Mapping[str, Any] | None, *, adopt: bool) -> State:
        settings, kind = work.settings, desired["kind"]
        resource = RESOURCES[kind]
        name, namespace = desired["metadata"]["name"], desired["metadata"]["namespace"]
        if actual is None:
            if self._create(key, resource, desired):
                return State.OURS
            actual = self._client.resource(resource).get(name, namespace)
        if pc.owned(actual, settings):
            return self._correct(resource, desired, actual)
        if adopt and pc.adoptable(actual, desired):
            self._client.patch(resource, name, pc.adoption_patch(actual, settings), namespace)
            log.info("project RoleBinding adopted (made by upstream's operator)",
                     extra={"namespace": namespace, "rolebinding": name})
            return State.OURS
        if pc.owned_by_predecessor(actual, settings):
            log.debug("waiting for garbage collection of an earlier ProjectSettings' object",
                      extra={"namespace": namespace, "kind": kind, "object": name})
            return State.WAITING
        return State.FOREIGN

    def _create(self, key: tuple[str, str], resource: Resource,
                desired: Mapping[str, Any]) -> bool:
        """Create ``desired``; False when one of its name exists already."""
        name = _key(desired["kind"], desired["metadata"]["name"])
        self._expectations.expect_creations(key, {*self._expectations.pending(key), name})
        try:
            self._client.create(resource, desired)
        except AlreadyExists:
            self._expectations.observed(key, name)
            return False
        except Exception:
            self._expectations.observed(key, name)  # never coming
            raise
        log.info("project object created", extra={
            "namespace": desired["metadata"]["namespace"], "kind": desired["kind"],
            "object": desired["metadata"]["name"]})
        return True

    def _correct(self, resource: Resource, desired: Mapping[str, Any],
                 actual: Mapping[str, Any]) -> State:
        """Bring one of ours back to what it must be."""
        meta = actual["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        if meta.get("deletionTimestamp"):
            return State.WAITING  # its deletion wakes us, and it is made again
        if pc.role_ref_differs(desired, actual):
            with contextlib.suppress(NotFound, Conflict):  # gone already
                self._client.delete(resource, name, namespace, uid=str(meta.get("uid", "")))
            log.info("project RoleBinding removed: it binds another role than its name says",
                     extra={"namespace": namespace, "rolebinding": name})
            return State.WAITING
        patch = pc.drift_patch(desired, actual)
        if patch is not None:
            self._client.patch(resource, name, patch, namespace)
            log.info("project object brought back to what it must be", extra={
                "namespace": namespace, "kind": desired["kind"], "object": name,
                "fields": sorted(patch)})
        return State.OURS

    def _report_foreign(self, settings: Mapping[str, Any], kind: str, name: str) -> None:
        if kind == "LimitRange":  # its limits apply: in place, as upstream counts it
            self._events.record(_about(settings), "Normal", reason="LimitRangeNotOwned",
                                message=f"LimitRange {name} exists and does not belong to "
                                "these ProjectSettings; it is left as it is")
            return
        self._events.record(_about(settings), "Warning", reason=f"{kind}NameTaken",
                            message=f"{kind} {name} exists and does not belong to these "
                            "ProjectSettings; it is left alone")

    # status ------------------------------------------------------------------------------------
    def _write_status(self, request: Request, work: _Pass, *, bindings: int,
                      trigger_ready: bool, limit_range_ready: bool) -> None:
        settings = work.settings
        patch = pc.status_patch(settings, bindings=bindings, trigger_ready=trigger_ready,
                                limit_range_ready=limit_range_ready)
        if patch is None:
            return
        meta = settings["metadata"]
        try:
            written = self._client.patch_status(PROJECT_SETTINGS, meta["name"], patch,
                                                meta["namespace"])
        except NotFound:
            return  # deleted meanwhile
        except KubeError as error:
            work.fail(error)
            return
        self._writes.wrote(request, before=str(meta.get("resourceVersion", "")),
                           after=str(written["metadata"].get("resourceVersion", "")))


def _key(kind: str, name: str) -> str:
    return f"{kind}/{name}"


def _about(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings as an Event's involved object (a cached object may lack its kind)."""
    return {"apiVersion": PROJECT_SETTINGS.api_version, "kind": PROJECT_SETTINGS.kind,
            "metadata": settings["metadata"]}


def managed_namespace_requests(namespace: Mapping[str, Any], *,
                               only: str | None = None) -> list[Request]:
    """The request of a managed namespace (``only``: the one namespace the operator serves)."""
    name = str((namespace.get("metadata") or {}).get("name", ""))
    if not name or (only and name != only):
        return []
    return [Request(name, PROJECT_SETTINGS_NAME)]

