"""One request's admission by webhooks, as kube-apiserver's mutating and validating
dispatchers run it, on the server's loop.

:func:`chain_for` says which webhooks a request calls — ``None`` when none does, the usual
case, at the cost of ``bool(cluster.webhooks)`` — and the :class:`Chain` calls them:

* :meth:`Chain.mutate` — the mutating webhooks one after the other, in order (configurations
  by name, then their webhooks), each seeing what the previous ones made; a JSON patch in an
  answer is applied (:func:`envtest.patch.json_patch`; one that does not apply is a 500). A
  webhook with ``reinvocationPolicy: IfNeeded`` is called once more, after the first round,
  when a webhook after it changed the object (kube reinvokes once, never more);
* :meth:`Chain.validate` — the validating webhooks concurrently, on the object as the kind
  completed it; the first refusal (in order) is the answer.

A webhook whose ``objectSelector`` does not select the object it would see is skipped. A
refusal is ``admission webhook "X" denied the request: ...``; a webhook that cannot be called
or answers nonsense fails the request with 500 under ``failurePolicy: Fail`` and is skipped
with one WARNING under ``Ignore``; a dry-run request to a webhook whose ``sideEffects`` is not
``None``/``NoneOnDryRun`` is refused (400). Warnings in the answers are collected for the
response's ``Warning`` headers; ``auditAnnotations`` are ignored (no audit log here).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import orjson

from envtest import errors
from envtest.cluster import Cluster
from envtest.kinds.objects import new_uid
from envtest.patch import PatchError, json_patch
from envtest.webhooks import review
from envtest.webhooks.client import WebhookCallError, post_review
from envtest.webhooks.index import Hook
from envtest.webhooks.matching import (
    Attributes,
    Invocation,
    could_match,
    exempt,
    matched_resource,
    namespace_selected,
    needs_namespace_labels,
    object_selected,
)
from envtest.webhooks.review import Verdict

log = logging.getLogger(__name__)

MAX_TIMEOUT = 30
"""Seconds: kube bounds ``timeoutSeconds`` to 1..30 (default 10)."""


class _CallFailed(Exception):
    """kube's ``ErrCallingWebhook``: subject to the webhook's failurePolicy."""


def may_call(cluster: Cluster, operation: str, group: str, resource: str,
             subresource: str) -> bool:
    """Whether some webhook's rules can match such a request: False at once without
    configurations, else memoized in the index until a configuration changes."""
    index = cluster.webhooks
    if not index:
        return False
    key = (operation, group, resource, subresource)
    known = index.relevant.get(key)
    if known is None:
        known = index.relevant[key] = any(could_match(hook.spec, *key)
                                          for hook in (*index.mutating, *index.validating))
    return known


def chain_for(cluster: Cluster, attrs: Attributes) -> Chain | None:
    """The webhooks ``attrs`` calls, or None when none does."""
    if not cluster.webhooks or exempt(attrs):
        return None
    mutating = invocations(cluster, cluster.webhooks.mutating, attrs)
    validating = invocations(cluster, cluster.webhooks.validating, attrs)
    if not mutating and not validating:
        return None
    return Chain(cluster, attrs, mutating)


def invocations(cluster: Cluster, hooks: Sequence[Hook],
                attrs: Attributes) -> list[Invocation]:
    """The webhooks whose rules and namespace selector match (objects are looked at later)."""
    found = []
    for hook in hooks:
        resource = matched_resource(hook.spec, attrs)
        if resource is None:
            continue
        labels = _namespace_labels(cluster, attrs) if needs_namespace_labels(
            hook.spec, attrs) else None
        if namespace_selected(hook.spec, attrs, labels):
            found.append(Invocation(hook, resource))
    return found


def _namespace_labels(cluster: Cluster, attrs: Attributes) -> dict[str, str]:
    stored = cluster.store.get("namespaces", ("", attrs.namespace))
    if stored is None:
        raise errors.not_found("namespaces", "", attrs.namespace)
    return dict(stored.labels)


class Chain:
    """The webhooks of one request, called in kube's order; collects their warnings."""

    def __init__(self, cluster: Cluster, attrs: Attributes,
                 mutating: list[Invocation]) -> None:
        self.cluster = cluster
        self.attrs = attrs
        self.mutating = mutating
        self.warnings: list[str] = []

    async def mutate(self, obj: dict[str, Any] | None) -> dict[str, Any] | None:
        """The object after the mutating webhooks."""
        self.attrs.object = obj
        previously: set[tuple[bool, str, int]] = set()
        reinvoke: set[tuple[bool, str, int]] = set()
        for invocation in self.mutating:
            if await self._mutate_once(invocation):
                reinvoke |= previously
            if invocation.hook.spec.get("reinvocationPolicy") == "IfNeeded":
                previously.add(invocation.hook.key)
        for invocation in self.mutating:
            if invocation.hook.key in reinvoke:
                await self._mutate_once(invocation)
        return self.attrs.object

    async def validate(self, obj: dict[str, Any] | None) -> None:
        """Call the validating webhooks on ``obj`` concurrently; raise the first refusal."""
        self.attrs.object = obj
        chosen = [i for i in invocations(self.cluster, self.cluster.webhooks.validating,
                                         self.attrs) if object_selected(i.hook.spec, self.attrs)]
        outcomes = await asyncio.gather(*(self._validate_once(i) for i in chosen),
                                        return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _mutate_once(self, invocation: Invocation) -> bool:
        """Call one mutating webhook; whether it changed the object."""
        if not object_selected(invocation.hook.spec, self.attrs):
            return False
        verdict = await self._call(invocation, mutating=True)
        if verdict is None or not verdict.patch:
            return False
        name, current = invocation.hook.name, self.attrs.object
        if current is None:
            raise review.internal(f'admission webhook "{name}" attempted to modify the object, '
                                  "which is not supported for this operation")
        sent = review.as_version(current, self.attrs, invocation)
        try:
            patched = json_patch(sent, verdict.patch)
        except PatchError as exc:
            raise review.internal(str(exc)) from exc
        if not isinstance(patched, dict):
            raise review.internal(f'admission webhook "{name}" made the object not an object')
        if sent is not current and "apiVersion" in current:
            patched["apiVersion"] = current["apiVersion"]  # back to the request's version
        self.attrs.object = patched
        return patched != current

    async def _validate_once(self, invocation: Invocation) -> None:
        await self._call(invocation, mutating=False)

    async def _call(self, invocation: Invocation, *, mutating: bool) -> Verdict | None:
        """One webhook's allowing verdict; None when it failed open (``Ignore``)."""
        spec, name = invocation.hook.spec, invocation.hook.name
        if self.attrs.dry_run and spec.get("sideEffects") not in ("None", "NoneOnDryRun"):
            raise review.dry_run_unsupported(name)
        try:
            verdict = await self._exchange(invocation, mutating=mutating)
        except _CallFailed as exc:
            if spec.get("failurePolicy", "Fail") == "Ignore":
                log.warning("webhook call failed, failing open", extra={
                    "webhook": name, "error": str(exc)})
                return None
            log.warning("webhook call failed, failing closed", extra={
                "webhook": name, "error": str(exc)})
            raise review.call_failed(name, str(exc)) from exc
        self.warnings.extend(verdict.warnings)
        if not verdict.allowed:
            log.info("admission webhook denied the request", extra={
                "webhook": name, "operation": self.attrs.operation,
                "resource": self.attrs.resource.resource, "name": self.attrs.name})
            raise review.denied(name, verdict.status)
        return verdict

    async def _exchange(self, invocation: Invocation, *, mutating: bool) -> Verdict:
        spec = invocation.hook.spec
        uid = new_uid()
        try:
            version = review.review_version(spec)
        except review.InvalidAnswer as exc:
            raise _CallFailed(f"could not create admission objects: {exc}") from exc
        body = orjson.dumps(review.review(self.attrs, invocation, uid, version))
        timeout = min(MAX_TIMEOUT, max(1, int(spec.get("timeoutSeconds") or 10)))
        try:
            answer = await post_review(self.cluster, spec.get("clientConfig") or {}, body,
                                       timeout=timeout)
        except WebhookCallError as exc:
            raise _CallFailed(f"failed to call webhook: {exc}") from exc
        try:
            return review.verdict(answer, uid, version, mutating=mutating)
        except review.UndecodablePatch as exc:
            raise _CallFailed(str(exc)) from exc
        except review.InvalidAnswer as exc:
            raise _CallFailed(f"received invalid webhook response: {exc}") from exc
