"""REST access to the API server in raw JSON: the verbs of one resource (:class:`ResourceClient`)
on the shared :class:`~informers.transport.Transport`.

None of the ``kubernetes`` client's model classes appear on any path (they cost ~10x the parse,
see CLIENT-SURFACE.md): bodies are orjson-encoded dicts, answers parsed with orjson, watches
read by :class:`~informers.watchstream.WatchEvents`. The transport's names are re-exported here
(``from informers.rest import Transport, load_configuration``), where callers have found them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import orjson

from .rawjson import parse_list_without_managed_fields
from .resource import Resource
from .transport import (
    AUTH_REFRESH,
    DEFAULT_KUBECONFIG,
    JSON,
    PATCH_TYPES,
    SERVICE_ACCOUNT_CA,
    SERVICE_ACCOUNT_TOKEN,
    USER_AGENT,
    Answer,
    RequestObserver,
    Transport,
    TransportOptions,
    WriteGuard,
    load_configuration,
)
from .watchstream import WatchEvents

__all__ = ["AUTH_REFRESH", "DEFAULT_KUBECONFIG", "JSON", "PATCH_TYPES", "SERVICE_ACCOUNT_CA",
           "SERVICE_ACCOUNT_TOKEN", "USER_AGENT", "Answer", "RequestObserver", "ResourceClient",
           "Transport", "TransportOptions", "WriteGuard", "load_configuration", "metadata_of"]

_AS_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json"
_AS_METADATA_LIST = ("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, "
                     "application/json")
"""What client-go's metadata client accepts: the partial form first, plain JSON as a fallback
(a server that cannot answer with metadata alone sends the whole object; the client cuts it)."""


def metadata_of(resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` as a metadata-only read returns it: ``apiVersion`` and ``kind`` of the resource
    (not ``meta.k8s.io/v1 PartialObjectMetadata``, so owner references and logs name the real
    kind, as controller-runtime sets the GVK on what its metadata cache returns) and
    ``metadata``."""
    return {"apiVersion": resource.api_version, "kind": resource.kind,
            "metadata": obj.get("metadata") or {}}


class ResourceClient:
    """The verbs of one resource, in raw JSON dicts. A metadata-only resource
    (:meth:`Resource.as_metadata`) reads ``PartialObjectMetadata``; its writes are the full
    resource's."""

    def __init__(self, transport: Transport, resource: Resource, *,
                 answers_without_managed_fields: bool = False) -> None:
        """``answers_without_managed_fields``: the objects that creates, updates and patches
        answer come without ``metadata.managedFields``, cut from the answer's bytes before it
        is parsed — for a caller whose cache drops them too (half a Pod's bytes). A
        server-side apply's answer keeps them: they say who owns what."""
        self.transport = transport
        self.resource = resource
        self._partial = resource.metadata_only
        self._answers_cut = answers_without_managed_fields

    def _path(self, namespace: str | None, name: str | None = None,
              subresource: str | None = None) -> str:
        if self.resource.namespaced and name is not None and not namespace:
            raise ValueError(f"{self.resource.group_resource} is namespaced: name a namespace")
        return self.resource.path(namespace, name, subresource)

    @staticmethod
    def _meta(obj: Mapping[str, Any]) -> tuple[str | None, str]:
        meta = obj.get("metadata") or {}
        return meta.get("namespace"), meta.get("name", "")

    def get(self, name: str, namespace: str | None = None, *,
            timeout: float | None = None) -> dict[str, Any]:
        """The object; ``timeout`` caps the request (see :meth:`Transport.request`)."""
        if not self._partial:
            return self.transport.json("GET", self._path(namespace, name), verb="GET",
                                       timeout=timeout)
        obj = self.transport.json("GET", self._path(namespace, name), verb="GET",
                                  timeout=timeout, headers={"Accept": _AS_METADATA})
        return metadata_of(self.resource, obj)

    def list(self, namespace: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None, limit: int | None = None,
             continue_: str | None = None, resource_version: str | None = None,
             resource_version_match: str | None = None,
             without_managed_fields: bool = False) -> dict[str, Any]:
        """One page of the collection (``metadata.continue`` names the next).
        ``resource_version_match`` is ``NotOlderThan`` or ``Exact`` (with a version);
        ``without_managed_fields``: the items come without ``metadata.managedFields``, cut
        from the page's bytes before they are parsed (for a consumer that would drop them)."""
        query = {"labelSelector": label_selector, "fieldSelector": field_selector,
                 "limit": limit, "continue": continue_, "resourceVersion": resource_version,
                 "resourceVersionMatch": resource_version_match}
        if not self._partial and without_managed_fields:
            data = self.transport.request("GET", self._path(namespace), verb="LIST",
                                          query=query).data
            cut = parse_list_without_managed_fields(data)
            if cut is not None:
                return cut
            page: dict[str, Any] = orjson.loads(data)
            for item in page.get("items") or ():
                if isinstance(item, dict) and isinstance(item.get("metadata"), dict):
                    item["metadata"].pop("managedFields", None)
            return page
        if not self._partial:
            return self.transport.json("GET", self._path(namespace), verb="LIST", query=query)
        page = self.transport.json("GET", self._path(namespace), verb="LIST", query=query,
                                   headers={"Accept": _AS_METADATA_LIST})
        page["items"] = [metadata_of(self.resource, item) for item in page.get("items") or ()]
        page["apiVersion"], page["kind"] = self.resource.api_version, f"{self.resource.kind}List"
        return page

    def watch(self, namespace: str | None = None, *, resource_version: str | None = None,
              timeout_seconds: int | None = None, allow_bookmarks: bool = True,
              label_selector: str | None = None, field_selector: str | None = None,
              read_timeout: float | None = None, send_initial_events: bool = False,
              without_managed_fields: bool = False) -> WatchEvents:
        """The events of a watch (:class:`~informers.watchstream.WatchEvents`), read as they
        come; ``without_managed_fields``: each object comes without ``metadata.managedFields``,
        cut from its bytes before they are parsed (for a consumer that would drop them)."""
        query: dict[str, Any] = {
            "watch": "1", "resourceVersion": resource_version,
            "timeoutSeconds": timeout_seconds, "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "allowWatchBookmarks": "true" if allow_bookmarks else None}
        if send_initial_events:
            query.update(sendInitialEvents="true", resourceVersionMatch="NotOlderThan")
        if not self._partial:
            response = self.transport.stream("GET", self._path(namespace), verb="WATCH",
                                             query=query, read_timeout=read_timeout)
            return WatchEvents(response, without_managed_fields=without_managed_fields)
        response = self.transport.stream("GET", self._path(namespace), verb="WATCH",
                                         query=query, read_timeout=read_timeout,
                                         headers={"Accept": _AS_METADATA})
        return WatchEvents(response, functools.partial(metadata_of, self.resource),
                           without_managed_fields=without_managed_fields)

    def create(self, obj: Mapping[str, Any], namespace: str | None = None, *,
               field_manager: str | None = None, dry_run: bool = False,
               timeout: float | None = None) -> dict[str, Any]:
        namespace = namespace or self._meta(obj)[0]
        return self.transport.json("POST", self._path(namespace), verb="POST", body=obj,
                                   query=_write_query(field_manager, dry_run), timeout=timeout,
                                   without_managed_fields=self._answers_cut)

    def create_subresource(self, name: str, subresource: str, body: Mapping[str, Any],
                           namespace: str | None = None, *, field_manager: str | None = None,
                           timeout: float | None = None) -> dict[str, Any]:
        """POST ``body`` to one object's ``subresource`` and return the answer, e.g. a
        ``TokenRequest`` to ``serviceaccounts/NAME/token`` (the answer is the TokenRequest
        with its ``status.token``, not the object). Errors are the typed ones of every call."""
        if not subresource:
            raise ValueError("name a subresource to POST to")
        return self.transport.json("POST", self._path(namespace, name, subresource),
                                   verb="POST", body=body,
                                   query=_write_query(field_manager, False), timeout=timeout)

    def update(self, obj: Mapping[str, Any], *, field_manager: str | None = None,
               subresource: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        namespace, name = self._meta(obj)
        return self.transport.json("PUT", self._path(namespace, name, subresource), verb="PUT",
                                   body=obj, query=_write_query(field_manager, False),
                                   timeout=timeout, without_managed_fields=self._answers_cut)

    def update_status(self, obj: Mapping[str, Any], *,
                      field_manager: str | None = None) -> dict[str, Any]:
        return self.update(obj, field_manager=field_manager, subresource="status")

    def patch(self, name: str, patch: Any, namespace: str | None = None, *,
              patch_type: str = "merge", field_manager: str | None = None,
              force: bool | None = None, subresource: str | None = None) -> dict[str, Any]:
        """Patch with ``patch_type`` merge, json, strategic or apply (server-side apply)."""
        content_type = PATCH_TYPES[patch_type]
        query = _write_query(field_manager, False)
        if force is not None:
            query["force"] = "true" if force else "false"
        return self.transport.json("PATCH", self._path(namespace, name, subresource),
                                   verb="PATCH", body=patch, content_type=content_type,
                                   query=query, without_managed_fields=self._answers_cut)

    def patch_status(self, name: str, patch: Any, namespace: str | None = None, *,
                     patch_type: str = "merge", field_manager: str | None = None
                     ) -> dict[str, Any]:
        return self.patch(name, patch, namespace, patch_type=patch_type,
                          field_manager=field_manager, subresource="status")

    def apply(self, obj: Mapping[str, Any], *, field_manager: str, force: bool = False,
              subresource: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply ``obj`` (a PATCH of type ``application/apply-patch+yaml``).

        ``obj`` is the *applied configuration*: only the fields this field manager means to
        own, with ``apiVersion``, ``kind`` and ``metadata.name`` (and ``namespace``). The
        server creates the object when absent, sets the fields, removes those this manager
        applied before and no longer does, and records ownership in ``managedFields``. A field
        another manager owns with a different value is a 409 :class:`Conflict` (its causes name
        the fields and managers) unless ``force`` takes it over — controllers should force
        (the Kubernetes docs' advice: a controller is the authority for its fields). A
        ``metadata.resourceVersion`` in ``obj`` makes the apply conditional on it.
        ``subresource="status"`` applies status. Raises ValueError for an object that cannot
        be applied (no apiVersion, kind or name; ``managedFields`` set; no field manager).
        """
        namespace, name = self._meta(obj)
        missing = [what for what, value in (("apiVersion", obj.get("apiVersion")),
                                            ("kind", obj.get("kind")),
                                            ("metadata.name", name)) if not value]
        if missing:
            raise ValueError(f"an applied object needs {', '.join(missing)}")
        if (obj.get("metadata") or {}).get("managedFields"):
            raise ValueError("metadata.managedFields must be empty in an applied object "
                             "(send only the fields you own, not an object read back)")
        if not field_manager:
            raise ValueError("server-side apply needs a field manager")
        query = _write_query(field_manager, dry_run)
        query["force"] = "true" if force else None
        return self.transport.json("PATCH", self._path(namespace, name, subresource),
                                   verb="PATCH", body=obj, content_type=PATCH_TYPES["apply"],
                                   query=query)

    def apply_status(self, obj: Mapping[str, Any], *, field_manager: str,
                     force: bool = False) -> dict[str, Any]:
        """Server-side apply of ``obj``'s status through the status subresource."""
        return self.apply(obj, field_manager=field_manager, force=force, subresource="status")

    def delete(self, name: str, namespace: str | None = None, *,
               propagation_policy: str | None = None, uid: str | None = None,
               resource_version: str | None = None,
               grace_period_seconds: int | None = None) -> dict[str, Any]:
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version))
                         if v}
        if preconditions:
            options["preconditions"] = preconditions
        return self.transport.json("DELETE", self._path(namespace, name), verb="DELETE",
                                   body=options)


def _write_query(field_manager: str | None, dry_run: bool) -> dict[str, Any]:
    return {"fieldManager": field_manager, "dryRun": "All" if dry_run else None}
