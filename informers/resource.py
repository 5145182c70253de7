"""What a resource is, for the client: group, version, plural, kind and scope, and its URLs.

A resource is identified by group, version, plural, kind, scope and whether it is read as
metadata only (:meth:`Resource.as_metadata`); those alone make it equal to another and hash
it. What discovery adds (``verbs``, ``subresources``; see ``informers.restmapper``) is carried
along but not compared, so the ``PODS`` written here and the pods a RESTMapper found are the
same key for caches and clients. ``None`` there means "not discovered": a resource written by
hand makes no claim about its verbs or subresources.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import quote


@dataclass(frozen=True, slots=True)
class Resource:
    """One API resource, e.g. ``Resource("", "v1", "pods", "Pod")``."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    verbs: tuple[str, ...] | None = field(default=None, compare=False)
    """The verbs discovery lists (``get``, ``list``, ``watch``, ``patch``...); None: unknown."""
    subresources: frozenset[str] | None = field(default=None, compare=False)
    """The subresources discovery lists (``status``, ``scale``...); None: unknown."""
    metadata_only: bool = False
    """Reads (get, list, watch) ask for ``PartialObjectMetadata``: objects with ``apiVersion``,
    ``kind`` and ``metadata`` only — a cache of them costs a fraction of full objects'
    (controller-runtime's metadata-only informers). Writes are unaffected."""

    def as_metadata(self) -> Resource:
        """This resource, read as metadata only: another cache, another key."""
        return replace(self, metadata_only=True)

    def has_subresource(self, name: str) -> bool:
        """Whether the resource serves ``name`` (assumed so when not discovered)."""
        return self.subresources is None or name in self.subresources

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``plural.group`` (``pods`` for the core group): how metrics and logs name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """The URL path of the collection (no name) or of one object."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base


PODS = Resource("", "v1", "pods", "Pod")
SERVICES = Resource("", "v1", "services", "Service")
SECRETS = Resource("", "v1", "secrets", "Secret")
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount")
NETWORKPOLICIES = Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy")
EVENTS = Resource("", "v1", "events", "Event")
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
