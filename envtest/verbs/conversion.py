"""Serving the versions of a CRD that converts by webhook (``spec.conversion.strategy:
Webhook``), as kube-apiserver does: objects are stored at the storage version, and every
object that crosses a version boundary goes through the CRD's conversion webhook
(:mod:`envtest.webhooks.conversion`).

- **Reads** (get, list, and their table forms) run the ordinary verb under a
  :class:`~envtest.kinds.conversion.Converted` memo. Objects at the version asked for are
  served as they are; if any is not, the answer is dropped, those objects are converted in
  one ConversionReview (a list's in one, as kube batches them) and the verb runs again. When
  nothing needs converting — the storage version read, the usual case — the answer is the
  verb's own, given at once.
- **Writes** at a version other than the storage version convert the request's object to
  the storage version, run the ordinary verb at the storage version, and convert its answer
  back. A patch or apply converts the stored object to the request's version first, patches
  it there and converts the result (kube's order), retrying if the object changed meanwhile.
  Writes at the storage version call the webhook only for a stored object left at another
  version.
- **Watches** convert each event in order (:mod:`.converted_watch`).

Verbs that need a call answer with a task; the server's loop is never blocked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

import orjson

from envtest import errors, schema
from envtest.cluster import Cluster, Target
from envtest.codecs.body import decode_body, decode_patch
from envtest.http.protocol import Answer, Request, Response
from envtest.kinds import crds
from envtest.kinds.conversion import Converted, converting
from envtest.kinds.registry import ResourceType
from envtest.schema import fieldvalidation
from envtest.storage.store import Stored
from envtest.verbs import apply, reads, scale, writes
from envtest.verbs.admit import Plan, admit
from envtest.webhooks.conversion import convert

Verb = Callable[[Cluster, Target, Request], "Answer | asyncio.Future[Answer]"]

_ROUNDS = 5
"""How often a read converts what it missed, or a patch retries a conflict, before 409."""


def through_webhook(verb: Verb) -> Verb:
    """``verb`` as it serves a CRD converting by webhook (watches convert in their stream)."""
    return _VERBS.get(verb, verb)


# reads ---------------------------------------------------------------------------------------
def _reading(verb: Verb, *, listing: bool) -> Verb:
    def read(cluster: Cluster, target: Target, request: Request
             ) -> Answer | asyncio.Future[Answer]:
        memo = Converted()
        answer = _attempt(memo, lambda: verb(cluster, target, request))
        if not memo.missing and not isinstance(answer, asyncio.Future):
            return answer
        return _task(cluster, _read_converted(cluster, target, memo, listing,
                                              lambda: verb(cluster, target, request), answer))
    return read


def _attempt(memo: Converted, answer: Callable[[], Answer | asyncio.Future[Answer]]
             ) -> Answer | asyncio.Future[Answer]:
    """The verb's answer under ``memo``; one it failed to give on objects not converted yet
    does not count (the objects missing are converted, and it runs again)."""
    with converting(memo):
        try:
            return answer()
        except errors.APIError as error:
            if memo.missing:
                return errors.error_response(error)
            raise


async def _read_converted(cluster: Cluster, target: Target, memo: Converted, listing: bool,
                          answer: Callable[[], Answer | asyncio.Future[Answer]],
                          first: Answer | asyncio.Future[Answer]) -> Answer:
    result = first
    for _ in range(_ROUNDS):
        if isinstance(result, asyncio.Future):  # a list waiting for a resourceVersion
            result = await result
        if not memo.missing:
            return result
        await _convert_missing(cluster, target.rtype, memo, listing=listing)
        result = _attempt(memo, answer)
    raise errors.APIError(409, "Conflict", f"the {target.rtype.group_resource} being read "
                          "kept changing while the conversion webhook was called; retry")


async def _convert_missing(cluster: Cluster, rtype: ResourceType, memo: Converted, *,
                           listing: bool) -> None:
    raws = list(memo.missing)
    memo.missing.clear()
    objects = [orjson.loads(raw) for raw in raws]
    done = await convert(cluster, rtype, objects, listing=listing)
    memo.known.update(zip(raws, (orjson.dumps(obj) for obj in done), strict=True))


# writes --------------------------------------------------------------------------------------
def _storage_target(cluster: Cluster, target: Target) -> Target:
    """The same object at the CRD's storage version (a version not served keeps the
    request's schema: nothing else describes it here)."""
    rtype = target.rtype
    stored = cluster.type_of(rtype.group, rtype.storage_version, rtype.plural)
    return replace(target, rtype=stored or replace(rtype, version=rtype.storage_version))


def _writing(verb: Verb, *, converts_body: bool) -> Verb:
    def write(cluster: Cluster, target: Target, request: Request
              ) -> Answer | asyncio.Future[Answer]:
        at_storage = target.rtype.version == target.rtype.storage_version
        body = None if at_storage or not converts_body else _own_object(target, request)
        if at_storage or (converts_body and body is None):
            return _with_stored(cluster, target, lambda: verb(cluster, target, request))
        return _task(cluster, _write_converted(cluster, target, request, verb, body))
    return write


def _own_object(target: Target, request: Request) -> dict[str, Any] | None:
    """The request's object if it is of the version and kind on the URL (others are left to
    the verb, which refuses them)."""
    obj = decode_body(request, builtin=False)
    if not isinstance(obj, dict):
        return None
    obj.setdefault("apiVersion", target.rtype.api_version)
    obj.setdefault("kind", target.rtype.kind)
    own = obj["apiVersion"] == target.rtype.api_version and obj["kind"] == target.rtype.kind
    return obj if own else None


async def _write_converted(cluster: Cluster, target: Target, request: Request, verb: Verb,
                           body: dict[str, Any] | None) -> Answer:
    storage = _storage_target(cluster, target)
    if body is not None:
        body = await _one(cluster, storage.rtype, _valid_here(target, body))
        request = _with_body(request, body)
    answer = await _run_with_stored(cluster, storage, lambda: verb(cluster, storage, request))
    return await _answer_at(cluster, target.rtype, answer)


def _valid_here(target: Target, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` pruned, defaulted and validated by the request version's schema, as kube
    decodes and validates a write before converting it (422 with that version's paths)."""
    causes = schema.admit(target.rtype.schema, obj)
    if causes:
        name = (obj.get("metadata") or {}).get("name") or target.name
        raise errors.invalid(target.rtype.kind, target.rtype.group, str(name), causes)
    return obj


def _with_body(request: Request, body: dict[str, Any]) -> Request:
    headers = {**request.headers, "content-type": "application/json"}
    return Request(request.method, request.target, headers, orjson.dumps(body))


def _with_stored(cluster: Cluster, target: Target,
                 run: Callable[[], Answer | asyncio.Future[Answer]]
                 ) -> Answer | asyncio.Future[Answer]:
    """Run a write once: at once, unless the object it starts from is stored at another
    version (then once the webhook converted it)."""
    if not _needs_old_conversion(cluster, target):
        return run()
    return _task(cluster, _run_with_stored(cluster, target, run))


async def _run_with_stored(cluster: Cluster, target: Target,
                           run: Callable[[], Answer | asyncio.Future[Answer]]) -> Answer:
    memo = await _stored_at(cluster, target)
    with converting(memo):
        answer = run()
    return await answer if isinstance(answer, asyncio.Future) else answer


def _needs_old_conversion(cluster: Cluster, target: Target) -> bool:
    stored = cluster.store.get(target.rtype.store, (target.namespace, target.name))
    return (stored is not None and bool(target.name)
            and orjson.loads(stored.raw).get("apiVersion") != target.rtype.api_version)


async def _stored_at(cluster: Cluster, target: Target) -> Converted:
    """A strict memo with the stored object (if any, and at another version) converted to
    ``target``'s version."""
    memo = Converted(strict=True)
    stored = cluster.store.get(target.rtype.store, (target.namespace, target.name))
    if stored is None or not target.name:
        return memo
    obj = orjson.loads(stored.raw)
    if obj.get("apiVersion") != target.rtype.api_version:
        converted = await _one(cluster, target.rtype, obj)
        memo.known[stored.raw] = orjson.dumps(converted)
    return memo


async def _one(cluster: Cluster, to: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    return (await convert(cluster, to, [obj]))[0]


async def _answer_at(cluster: Cluster, rtype: ResourceType, answer: Answer) -> Answer:
    """A write's answer (an object or list at the storage version) at ``rtype``'s version."""
    if not isinstance(answer, Response) or answer.status >= 300:
        return answer
    body = orjson.loads(answer.body)
    if body.get("kind") == rtype.kind:
        body = await _one(cluster, rtype, body)
    elif body.get("kind") == rtype.list_kind:
        body["items"] = await convert(cluster, rtype, body.get("items") or [], listing=True)
        body["apiVersion"] = rtype.api_version
    else:
        return answer
    return Response(answer.status, orjson.dumps(body), answer.content_type, answer.headers)


# patch and apply -----------------------------------------------------------------------------
def _patch(cluster: Cluster, target: Target, request: Request
           ) -> Answer | asyncio.Future[Answer]:
    if target.rtype.version == target.rtype.storage_version:
        return _with_stored(cluster, target, lambda: writes.patch(cluster, target, request))
    kind, document = decode_patch(request, builtin=False)
    return _task(cluster, _patch_converted(cluster, target, request, kind, document))


async def _patch_converted(cluster: Cluster, target: Target, request: Request, kind: str,
                           document: Any) -> Answer:
    """kube's order: the stored object at the request's version, patched there, converted
    to the storage version and stored; again if it changed meanwhile."""
    storage = _storage_target(cluster, target)
    mode = fieldvalidation.directive(request, "PatchOptions")
    warnings: list[str] = []
    for _ in range(_ROUNDS):
        stored = cluster.store.get(target.rtype.store, (target.namespace, target.name))
        if stored is None and kind != "apply":
            raise errors.not_found(target.rtype.plural, target.rtype.group, target.name)
        live = {} if stored is None else await _one(cluster, target.rtype, stored.load())
        if kind == "apply":
            new, warnings = apply.merged(cluster, target, request, document, mode, live)
        else:
            new = writes.patched(target, live, kind, document)
        if isinstance(new, dict) and new.get("apiVersion") == target.rtype.api_version:
            new = await _one(cluster, storage.rtype, _valid_here(target, new))
        memo = await _stored_at(cluster, storage)
        if cluster.store.get(target.rtype.store, (target.namespace, target.name)) is not stored:
            continue  # changed while the webhook was called: start again from it
        answer = _admitted(cluster, storage, request, memo, _plan(
            cluster, storage, request, stored, new, kind == "apply", warnings, mode))
        if isinstance(answer, asyncio.Future):
            answer = await answer
        return await _answer_at(cluster, target.rtype, answer)
    raise errors.conflict(target.rtype.plural, target.rtype.group, target.name, errors.STALE)


def _plan(cluster: Cluster, storage: Target, request: Request, stored: Stored | None,
          new: Any, applying: bool, warnings: list[str], mode: str) -> Callable[[], Plan]:
    """How admission builds the write of ``new`` (at the storage version) over ``stored``."""
    def build() -> Plan:
        old = {} if stored is None else crds.served(storage.rtype, stored.load())
        if applying:
            return apply.applied_plan(cluster, storage, request, old, new, warnings)
        return writes.patch_plan(cluster, storage, request, old, new, mode)
    return build


def _admitted(cluster: Cluster, storage: Target, request: Request, memo: Converted,
              build: Callable[[], Plan]) -> Answer | asyncio.Future[Answer]:
    """The write admitted (its webhooks called) and stored, serving ``memo``'s objects."""
    with converting(memo):
        return admit(cluster, storage, request, build)


def _task(cluster: Cluster, work: Coroutine[Any, Any, Answer]) -> asyncio.Future[Answer]:
    """Run ``work`` on the loop; an API error becomes its Status answer."""
    async def answered() -> Answer:
        try:
            return await work
        except errors.APIError as error:
            return errors.error_response(error)
    return cluster.loop.create_task(answered())


_VERBS: dict[Verb, Verb] = {
    reads.get: _reading(reads.get, listing=False),
    reads.list_: _reading(reads.list_, listing=True),
    writes.create: _writing(writes.create, converts_body=True),
    writes.update: _writing(writes.update, converts_body=True),
    writes.delete: _writing(writes.delete, converts_body=False),
    writes.delete_collection: _writing(writes.delete_collection, converts_body=False),
    writes.patch: _patch,
    # This server's scale reads and writes spec.replicas whatever the version: at the
    # storage version's object (its answer is an autoscaling/v1 Scale, never converted).
    scale.get: _reading(scale.get, listing=False),
    scale.update: _writing(scale.update, converts_body=False),
    scale.patch: _writing(scale.patch, converts_body=False),
}
