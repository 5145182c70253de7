"""When a reconcile's ``NotFound`` ends the work instead of failing it.

A controller reconciles one kind (the builder's ``for_``): its :class:`Primary`. A reconcile
that raised :class:`~informers.errors.NotFound` settles as a success (see the outcome table
in ``controller.py``) when

* the 404's Status details name the request's own object (``details.name`` is the request's
  name, ``details.kind`` the primary's resource or kind, ``details.group`` its group) — a
  status patch of a session deleted a moment ago; or
* the server no longer has the request's object (one live read, never the cache, which may
  lag the deletion): whatever else answered 404 — a child garbage-collected with its owner,
  a TokenRequest for a ServiceAccount that went with it — went because the object went.

Otherwise (the object is still there, or the read failed) the NotFound is an error like any
other: logged, counted, retried. The Status carries no namespace; the request's URL does
(:attr:`~informers.errors.APIError.namespace`), so a 404 about a same-named object of the
primary's kind in another namespace is not taken for the request's own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from informers.errors import NotFound
from informers.resource import Resource
from informers.rest import ResourceClient

from .reconcile import Request


@dataclass(frozen=True, slots=True)
class Primary:
    """The kind a controller reconciles and how to ask the server whether one still exists."""

    resource: Resource
    exists: Callable[[Request], bool]
    """Whether the server has the request's object (may raise: then it is taken to exist)."""
    cached_version: Callable[[Request], str | None] | None = None
    """The resourceVersion of the request's object in the controller's cache of the kind, None
    when the cache does not hold it (for timers)."""


def on_server(client: ResourceClient) -> Callable[[Request], bool]:
    """:attr:`Primary.exists` as one GET of the object (404: gone)."""
    def exists(request: Request) -> bool:
        try:
            client.get(request.name, request.namespace or None)
        except NotFound:
            return False
        return True

    return exists


class _Versions(Protocol):
    def resource_version(self, key: str) -> str | None: ...


def version_in(store: _Versions) -> Callable[[Request], str | None]:
    """:attr:`Primary.cached_version` as a look-up of the request's key in an informer's store
    (no decoding)."""
    def cached_version(request: Request) -> str | None:
        return store.resource_version(str(request))

    return cached_version


def names(error: NotFound, resource: Resource, request: Request) -> bool:
    """Whether the 404 is about the request's own object (its Status details say so)."""
    details = error.status.get("details") or {}
    if not isinstance(details, dict):
        return False
    kind = str(details.get("kind") or "")
    where = error.namespace
    if where is not None and resource.namespaced and where != request.namespace:
        return False  # the same name in another namespace: not the request's object
    return (str(details.get("name") or "") == request.name
            and str(details.get("group") or "") == resource.group
            and kind in (resource.plural, resource.kind))


def ends_work(error: BaseException, primary: Primary | None, request: Request) -> bool:
    """Whether ``error`` ends the work on ``request`` (see the module's docstring)."""
    if not isinstance(error, NotFound) or primary is None:
        return False
    if names(error, primary.resource, request):
        return True
    try:
        return not primary.exists(request)
    except Exception:  # cannot tell: an error like any other, retried
        return False
