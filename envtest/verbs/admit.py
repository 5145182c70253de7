"""Admission on the write verbs: where kube-apiserver's handlers (``create.go``,
``update.go``, ``patch.go``, ``delete.go``) run the webhooks, around the commit layer.

A write verb builds a :class:`Plan` from its request — the object decoded and checked, the
old object read, how the kind completes (``prepare``) and how it is stored and answered
(``store``) — and hands it to :func:`admit`:

* no webhook matches (the usual case, known from ``bool(cluster.webhooks)`` alone when no
  configuration exists): prepare and store at once, synchronously, as before;
* else the verb answers with a task on the server's loop: the mutating webhooks on the built
  object, then the kind's completion and validation of what they made (a patch that breaks
  the object is a 422 like any other), the validating webhooks on the completed object
  (concurrently), then — still on the loop, without awaiting — a check that the object the
  plan started from is still the stored one, and the store. Had it changed while the
  webhooks answered, the whole attempt is built again from the request (kube's
  ``GuaranteedUpdate`` retries the same way: a patch re-applies to the new object; an update
  naming the old resourceVersion then gets its 409), at most :data:`ATTEMPTS` times.

Warnings from webhooks join the request's own in the ``Warning`` header, on refusals too.
Only requests that come through the HTTP verbs are admitted: the garbage collector, the
simulators (the kubelet's and the controllers' stand-ins) and the server's own bootstrap write
through the commit layer directly, as if they were exempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envtest import errors
from envtest.auth.authz import caller
from envtest.cluster import Cluster, Target
from envtest.commit import (
    check_create,
    prepare_create,
    prepare_update,
    store_create,
    store_update,
)
from envtest.http.protocol import Answer, Request, Response
from envtest.kinds import crds
from envtest.kinds.registry import ResourceType
from envtest.schema.fieldvalidation import with_warnings
from envtest.webhooks.chain import Chain, chain_for, may_call
from envtest.webhooks.matching import Attributes, Resource

log = logging.getLogger(__name__)

ATTEMPTS = 5
"""Tries of an update whose object changes while its webhooks answer, before a 409."""

Obj = dict[str, Any]


@dataclass(slots=True)
class Plan:
    """A write built from a request, ready for admission and the commit."""

    operation: str
    """``CREATE``, ``UPDATE`` or ``DELETE``."""
    new: Obj | None
    """What the mutating webhooks see and change (None for a delete)."""
    old: Obj | None
    """The stored object the write starts from (None for a create)."""
    prepare: Callable[[Obj | None], Obj | None]
    """The kind's completion and validation of the (mutated) object: what is stored."""
    store: Callable[[Obj | None], Response]
    """Commit the prepared object; the verb's answer."""
    warnings: list[str] = field(default_factory=list)
    options: dict[str, Any] | None = None
    """The request's DeleteOptions (the review's ``options``); None: the Create/UpdateOptions
    of the request's query, read only when a webhook is called."""
    name: str = ""
    """The name the review carries when the URL has none (a create)."""
    view: Callable[[Obj], Obj] | None = None
    """How webhooks see the objects when the request is about another kind (``scale``)."""
    kind: tuple[str, str, str] | None = None
    """(group, version, kind) of that other kind."""


Build = Callable[[], Plan]


def admit(cluster: Cluster, target: Target, request: Request,
          build: Build) -> Answer | asyncio.Future[Answer]:
    """Run a write: synchronously when no webhook matches, else as a task (see module)."""
    plan = build()
    chain = None
    if cluster.webhooks and wanted(cluster, target, plan):
        chain = _chain(cluster, target, request, plan)
    if chain is None:
        return with_warnings(plan.store(plan.prepare(plan.new)), plan.warnings)
    return spawn(cluster, _admitted(cluster, target, request, build, plan, chain))


def spawn(cluster: Cluster, work: Any) -> asyncio.Future[Answer]:
    """Run ``work`` (a coroutine answering the request) as a task the server cancels when it
    stops."""
    task: asyncio.Future[Answer] = cluster.loop.create_task(work)
    cluster.webhooks.in_flight.add(task)
    task.add_done_callback(cluster.webhooks.in_flight.discard)
    return task


async def _admitted(cluster: Cluster, target: Target, request: Request, build: Build,
                    plan: Plan, chain: Chain | None) -> Answer:
    try:
        for _ in range(ATTEMPTS):
            if chain is None:  # the configurations went while we waited
                return with_warnings(plan.store(plan.prepare(plan.new)), plan.warnings)
            mutated = await chain.mutate(plan.new)
            prepared = plan.prepare(mutated)
            await chain.validate(_seen(plan, prepared))
            if unchanged(cluster, target, plan.old):
                return with_warnings(plan.store(prepared), plan.warnings + chain.warnings)
            log.info("object changed during admission, trying again",
                     extra={"resource": target.rtype.plural, "name": target.name})
            plan = build()
            chain = _chain(cluster, target, request, plan)
        raise errors.conflict(target.rtype.plural, target.rtype.group, target.name, errors.STALE)
    except errors.APIError as error:
        return with_warnings(errors.error_response(error),
                             plan.warnings + (chain.warnings if chain else []))


def unchanged(cluster: Cluster, target: Target, old: Obj | None) -> bool:
    """Whether ``old`` (None: nothing) is still what is stored under the target's name."""
    if old is None:
        return True
    stored = cluster.store.get(target.rtype.store, (target.namespace, target.name))
    return stored is not None and str(stored.rv) == str(old["metadata"]["resourceVersion"])


def _seen(plan: Plan, obj: Obj | None) -> Obj | None:
    return plan.view(obj) if plan.view is not None and obj is not None else obj


def wanted(cluster: Cluster, target: Target, plan: Plan) -> bool:
    """The cheap test (no attributes built) that some webhook may match the write."""
    rtype = target.rtype
    return may_call(cluster, plan.operation, rtype.group, rtype.plural, target.subresource)


def _chain(cluster: Cluster, target: Target, request: Request, plan: Plan) -> Chain | None:
    return chain_for(cluster, attributes(cluster, target, request, plan))


def attributes(cluster: Cluster, target: Target, request: Request, plan: Plan) -> Attributes:
    """The admission attributes of a planned write."""
    rtype = target.rtype
    namespace = target.namespace
    if rtype.group == "" and rtype.plural == "namespaces":
        namespace = target.name  # kube's request info names a namespace's own requests so
    options = write_options(request) if plan.options is None else plan.options
    return Attributes(
        plan.operation, _resource(rtype), target.subresource, namespace,
        target.name or plan.name, plan.new, _seen(plan, plan.old),
        dry_run=request.param("dryRun") == "All" or options.get("dryRun") == ["All"],
        options=options, user=caller(cluster, request).render(),
        equivalents=[_resource(t) for t in cluster.kinds
                     if t.store == rtype.store and t.plural == rtype.plural],
        kind=plan.kind)


def _resource(rtype: ResourceType) -> Resource:
    return Resource(rtype.group, rtype.version, rtype.plural, rtype.kind)


def write_options(request: Request) -> dict[str, Any]:
    """The Create/UpdateOptions a request's query carries (PatchOptions less ``force``)."""
    options: dict[str, Any] = {}
    if request.param("dryRun"):
        options["dryRun"] = [request.param("dryRun")]
    for name in ("fieldManager", "fieldValidation"):
        if request.param(name):
            options[name] = request.param(name)
    return options


def create_plan(cluster: Cluster, target: Target, request: Request, obj: Obj,
                warnings: list[str], respond: Callable[[bytes], Response]) -> Plan:
    """Creating ``obj`` (checked: :func:`check_create`); ``respond`` answers with the stored
    object's bytes as served."""
    dry_run = request.param("dryRun") == "All"

    def prepare(mutated: Obj | None) -> Obj:
        assert mutated is not None
        checked = mutated if mutated is obj else check_create(cluster, target, mutated)
        return prepare_create(cluster, target, checked)

    def store(prepared: Obj | None) -> Response:
        assert prepared is not None
        created = store_create(cluster, target, prepared, dry_run=dry_run)
        return respond(crds.served_raw(target.rtype, created))

    return Plan("CREATE", obj, None, prepare, store, warnings,
                name=str(obj["metadata"].get("name") or ""))


def update_plan(cluster: Cluster, target: Target, request: Request, old: Obj, new: Obj,
                warnings: list[str], respond: Callable[[int, bytes], Response]) -> Plan:
    """Changing ``old`` into ``new``; ``respond`` answers with the status and the stored
    object's bytes as served."""
    dry_run = request.param("dryRun") == "All"

    def prepare(mutated: Obj | None) -> Obj:
        assert mutated is not None
        return prepare_update(cluster, target, old, mutated)

    def store(prepared: Obj | None) -> Response:
        assert prepared is not None
        status, body = store_update(cluster, target, old, prepared, dry_run=dry_run)
        return respond(status, crds.served_raw(target.rtype, body))

    return Plan("UPDATE", new, old, prepare, store, warnings)
