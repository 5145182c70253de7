"""Child sync: create, patch and delete a session's children, with creation expectations.

Three rules, whatever the environment:

* **Expect before creating.** A child created a moment ago may not be in the cache yet; the
  expectation (per session incarnation: namespace, name and uid) stops the next reconcile from
  creating it twice or taking its absence for a loss. One still missing after
  :data:`CACHE_GRACE` is read from the server: the caches hold only the operator's labelled
  children, so one whose label was removed before its cache saw it never comes by a watch.
* **A live run is never changed behind the user.** For a running workload only metadata drift
  (labels, annotations, owners) is patched; a difference in its spec — the registry entry or
  the session changed since it started — is *held* and reported as ``RestartRequired`` until
  the next run picks it up.
* **What is not the session's is not touched.** Deleting goes by the names the session owns;
  gone already counts as done.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from ambient_ctrl.client import Client
from ambient_ctrl.expectations import Expectations
from foundation.clock import Clock
from informers.errors import AlreadyExists, Conflict, NotFound
from informers.resource import Resource

from .diffcache import DiffCache
from .environment import Children
from .metrics import SessionMetrics

log = logging.getLogger(__name__)

CACHE_GRACE = 10.0
"""Seconds a child this run created may be missing from the cache before the server is asked:
a watch shows it within milliseconds, a re-watch after a dropped connection within seconds."""


def child_key(obj: Mapping[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


class ChildSync:
    """Writes of children. Thread-safe (each call works on one session)."""

    def __init__(self, client: Client, *, expectations: Expectations, metrics: SessionMetrics,
                 clock: Clock) -> None:
        self._client = client
        self._expectations = expectations
        self._metrics = metrics
        self._clock = clock
        self._diffs = DiffCache()

    def pending(self, session: Hashable, kind: str, name: str) -> bool:
        """Whether ``kind/name`` was created for ``session`` and the cache has not shown it."""
        return f"{kind}/{name}" in self._expectations.pending(session)

    def expect(self, session: Hashable, kind: str, name: str) -> None:
        """Remember ``kind/name`` as made for ``session`` by someone else's create call."""
        self._expectations.expect_creations(
            session, {*self._expectations.pending(session), f"{kind}/{name}"})

    def forget(self, key: Hashable) -> None:
        """Stop waiting for anything created under ``key`` (its run is over)."""
        self._expectations.forget(key)

    def settle(self, session: Hashable, kind: str, name: str) -> None:
        """Stop waiting for ``kind/name`` of ``session`` (it was read from the server)."""
        self._expectations.observed(session, f"{kind}/{name}")

    def observed(self, session: Hashable, children: Children) -> None:
        for obj in children:
            self._expectations.observed(session, f"{obj.get('kind') or ''}/"
                                                 f"{obj['metadata']['name']}")

    def create(self, session: Hashable, resource: Resource, obj: Mapping[str, Any], *,
               backend: str) -> dict[str, Any] | None:
        """Create ``obj``; the stored object, or None when one of its name exists already."""
        key = child_key(obj)
        self._expectations.expect_creations(session, {*self._expectations.pending(session), key})
        started = self._clock.monotonic()
        try:
            created = self._client.create(resource, obj)
        except AlreadyExists:
            self._expectations.observed(session, key)
            return None
        except Exception:
            self._expectations.observed(session, key)  # never coming
            raise
        self._metrics.operation(backend, "create", self._clock.monotonic() - started)
        return created

    def delete(self, resource: Resource, name: str, namespace: str, *, backend: str,
               propagation: str | None = None, uid: str | None = None) -> None:
        """Delete ``name`` (only the object with ``uid``, when given); gone counts as done."""
        started = self._clock.monotonic()
        with contextlib.suppress(NotFound, Conflict):  # Conflict: the uid is another's
            self._client.delete(resource, name, namespace, propagation_policy=propagation,
                                uid=uid or None)
        self._metrics.operation(backend, "delete", self._clock.monotonic() - started)

    def converge(self, session: Hashable, resource: Resource, desired: Mapping[str, Any],
                 actual: Mapping[str, Any] | None, *, backend: str,
                 live: bool = False) -> tuple[str, ...]:
        """Make ``actual`` what ``desired`` says: create it (unless its creation is pending),
        patch the difference; with ``live``, only metadata is patched and the paths of any
        other difference are returned (held for the next run)."""
        name = desired["metadata"]["name"]
        if actual is None:
            if not self.pending(session, desired["kind"], name):
                self.create(session, resource, desired, backend=backend)
                return ()
            actual = self._unseen(session, resource, desired)
            if actual is None:
                return ()
        change = self._diffs.diff(desired, actual)
        if change.action == "none":
            return ()
        if live and not all(path.startswith("metadata.") for path in change.reasons):
            return tuple(f"{desired['kind']} {path}" for path in change.reasons)
        if change.action == "recreate":
            log.info("recreating a child whose immutable fields changed",
                     extra={"child": child_key(desired), "paths": change.reasons})
            self.delete(resource, name, desired["metadata"]["namespace"], backend=backend)
            return ()
        started = self._clock.monotonic()
        self._client.patch(resource, name, change.patch, desired["metadata"]["namespace"],
                           patch_type=change.patch_type)
        self._metrics.operation(backend, "patch", self._clock.monotonic() - started)
        return ()


    def _unseen(self, session: Hashable, resource: Resource, desired: Mapping[str, Any]
                ) -> dict[str, Any] | None:
        """The child ``session`` created that the cache has not shown for :data:`CACHE_GRACE`,
        read from the server and no longer awaited; None while it may still come, when the
        server has none (awaited still, until the expectation expires: creating it again on
        the word of a cache that may be stale can storm, as a restore once showed), or when
        the one there is not this session's (another owner: left alone)."""
        meta = desired["metadata"]
        if self._expectations.waited(session) < CACHE_GRACE:
            return None
        try:
            actual = self._client.resource(resource).get(meta["name"], meta["namespace"])
        except NotFound:
            return None
        self.settle(session, desired["kind"], meta["name"])
        owners = {ref.get("uid") for ref in meta.get("ownerReferences") or ()}
        theirs = {ref.get("uid") for ref in (actual.get("metadata") or {}).get(
            "ownerReferences") or () if isinstance(ref, Mapping)}
        if not owners & theirs:
            log.warning("a child of the session's name is another's; it is left alone",
                        extra={"child": child_key(desired)})
            return None
        log.info("a child missing from the cache was read from the server",
                 extra={"child": child_key(desired)})
        return actual


def held_paths(held: Sequence[str], limit: int = 10) -> str:
    listed = ", ".join(held[:limit])
    return listed + (f" and {len(held) - limit} more" if len(held) > limit else "")
