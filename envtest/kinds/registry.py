"""The kinds the local API server serves: built-in ones and those registered by CRDs.

A :class:`ResourceType` is one (group, version, plural) with its names, scope and subresources.
The :class:`KindRegistry` answers the router ("what is /apis/g/v/plural?") and discovery
("which groups and resources exist?"); CRDs add and remove entries while the server runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")


@dataclass(frozen=True, slots=True)
class Subresource:
    """What discovery says of one subresource, and so which verbs the router serves on it.

    ``status`` reads and writes the parent's own kind; others take and give another kind
    (``serviceaccounts/token`` is POSTed an ``authentication.k8s.io/v1`` TokenRequest), which
    discovery names with ``group``, ``version`` and ``kind``, as kube-apiserver does — the
    group and version only when they differ from the parent's (``services/proxy`` is a core
    ``ServiceProxyOptions``).
    """

    verbs: tuple[str, ...] = SUBRESOURCE_VERBS
    group: str = ""
    version: str = ""
    kind: str = ""
    """Empty: the parent's kind (and group and version)."""


SUBRESOURCES: Mapping[str, Subresource] = MappingProxyType({
    "status": Subresource(),
    "token": Subresource(("create",), "authentication.k8s.io", "v1", "TokenRequest"),
    "proxy": Subresource(("create", "delete", "get", "patch", "update"),
                         kind="ServiceProxyOptions"),
    # The workloads' replica count as an autoscaling/v1 Scale (envtest.verbs.scale).
    "scale": Subresource(SUBRESOURCE_VERBS, "autoscaling", "v1", "Scale"),
})
"""The subresources this server knows, by name."""


ACCEPTED_REVIEW_VERSIONS = ("v1", "v1beta1")
"""The ConversionReview versions this server can send."""


@dataclass(frozen=True, slots=True)
class WebhookConversion:
    """A CRD's conversion by webhook: where to call, in which review versions."""

    client_config: Mapping[str, Any]
    review_versions: tuple[str, ...]
    crd_name: str

    @property
    def review_version(self) -> str:
        """The first ConversionReview version the server understands (kube's choice)."""
        return next(v for v in self.review_versions if v in ACCEPTED_REVIEW_VERSIONS)


@dataclass(frozen=True, slots=True)
class ResourceType:
    """One served resource: what discovery lists and what the router resolves to."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    builtin: bool = True
    """Built-in kinds accept strategic merge patch; custom resources answer 415 to it."""
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    """The CRD's openAPIV3Schema for this version (None for built-ins)."""
    printer_columns: tuple[dict[str, Any], ...] = field(default=(), compare=False, hash=False)
    storage_key: str = ""
    """Objects are stored per group+plural (all versions of a CRD share one store)."""
    multiversion: bool = False
    """A CRD kind with several versions in one store: objects may be stored at another
    version than the one asked for, and are served with the apiVersion asked for."""
    verbs: tuple[str, ...] = ALL_VERBS
    """What discovery lists and the router serves (namespaces have no deletecollection)."""
    storage_version: str = ""
    """A CRD's version its objects are stored in ("" for built-ins)."""
    webhook: WebhookConversion | None = field(default=None, compare=False, hash=False)
    """A CRD's conversion webhook (strategy Webhook); None: strategy None, or built-in."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def store(self) -> str:
        return self.storage_key or self.group_resource

    def discovery_entries(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        for sub in sorted(self.subresources):
            spec = SUBRESOURCES.get(sub, Subresource())
            listed: dict[str, Any] = {"name": f"{self.plural}/{sub}", "singularName": "",
                                      "namespaced": self.namespaced}
            if spec.version:
                listed.update(group=spec.group, version=spec.version)
            listed.update(kind=spec.kind or self.kind, verbs=list(spec.verbs))
            entries.append(listed)
        return entries


def _core(plural: str, kind: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    return ResourceType("", "v1", plural, kind, namespaced, **kw)


_STATUS = frozenset({"status"})
_SCALED = frozenset({"status", "scale"})


def _named(group: str, plural: str, kind: str, namespaced: bool = True,
           **kw: Any) -> ResourceType:
    return ResourceType(group, "v1", plural, kind, namespaced, **kw)


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    # kube-apiserver's namespace storage implements no DeleteCollection: a namespace goes
    # only by name, so one request cannot take every namespace (and all they hold) at once.
    _core("namespaces", "Namespace", False, short_names=("ns",), subresources=_STATUS,
          verbs=tuple(v for v in ALL_VERBS if v != "deletecollection")),
    _core("pods", "Pod", short_names=("po",), categories=("all",), subresources=_STATUS),
    # services/proxy forwards to a pod port served on this machine (proxy.py).
    _core("services", "Service", short_names=("svc",), categories=("all",),
          subresources=frozenset({"status", "proxy"})),
    _core("secrets", "Secret"),
    _core("configmaps", "ConfigMap", short_names=("cm",)),
    _core("serviceaccounts", "ServiceAccount", short_names=("sa",),
          subresources=frozenset({"token"})),
    _core("events", "Event", short_names=("ev",)),
    # Stored, defaulted and validated (limitranges.py); no admission applies them to Pods.
    _core("limitranges", "LimitRange", short_names=("limits",)),
    # The simulated kubelet registers its Node (simulators/kubelet.py).
    _core("nodes", "Node", False, short_names=("no",), subresources=_STATUS),
    # No provisioner or binder: claims stay Pending, volumes Available, unless a client
    # writes their status.
    _core("persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",),
          subresources=_STATUS),
    _core("persistentvolumes", "PersistentVolume", False, short_names=("pv",),
          subresources=_STATUS),
    _core("endpoints", "Endpoints", short_names=("ep",)),
    _core("replicationcontrollers", "ReplicationController", short_names=("rc",),
          categories=("all",), subresources=_SCALED),
    _named("events.k8s.io", "events", "Event", short_names=("ev",)),
    _named("coordination.k8s.io", "leases", "Lease"),
    # Stored, defaulted and validated (networkpolicies.py); nothing enforces them.
    _named("networking.k8s.io", "networkpolicies", "NetworkPolicy", short_names=("netpol",)),
    _named("networking.k8s.io", "ingresses", "Ingress", short_names=("ing",),
           subresources=_STATUS),
    _named("networking.k8s.io", "ingressclasses", "IngressClass", False),
    # Workloads are stored, defaulted and validated (apps.py, batch.py), with their scale
    # subresource; no controller acts on them (no ReplicaSets, Pods or Jobs appear) and
    # their status is what a client writes. RBAC is not enforced (every client is an
    # administrator), but manifests that carry them apply as they would.
    _named("apps", "deployments", "Deployment", short_names=("deploy",), categories=("all",),
           subresources=_SCALED),
    _named("apps", "statefulsets", "StatefulSet", short_names=("sts",), categories=("all",),
           subresources=_SCALED),
    _named("apps", "daemonsets", "DaemonSet", short_names=("ds",), categories=("all",),
           subresources=_STATUS),
    _named("apps", "replicasets", "ReplicaSet", short_names=("rs",), categories=("all",),
           subresources=_SCALED),
    _named("batch", "jobs", "Job", categories=("all",), subresources=_STATUS),
    _named("batch", "cronjobs", "CronJob", short_names=("cj",), categories=("all",),
           subresources=_STATUS),
    ResourceType("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler",
                 True, short_names=("hpa",), categories=("all",), subresources=_STATUS),
    _named("policy", "poddisruptionbudgets", "PodDisruptionBudget", short_names=("pdb",),
           subresources=_STATUS),
    _named("discovery.k8s.io", "endpointslices", "EndpointSlice"),
    _named("storage.k8s.io", "storageclasses", "StorageClass", False, short_names=("sc",)),
    _named("rbac.authorization.k8s.io", "clusterroles", "ClusterRole", False),
    _named("rbac.authorization.k8s.io", "clusterrolebindings", "ClusterRoleBinding", False),
    _named("rbac.authorization.k8s.io", "roles", "Role"),
    _named("rbac.authorization.k8s.io", "rolebindings", "RoleBinding"),
    _named("admissionregistration.k8s.io", "validatingwebhookconfigurations",
           "ValidatingWebhookConfiguration", False, categories=("api-extensions",)),
    _named("admissionregistration.k8s.io", "mutatingwebhookconfigurations",
           "MutatingWebhookConfiguration", False, categories=("api-extensions",)),
    _named("apiextensions.k8s.io", "customresourcedefinitions", "CustomResourceDefinition",
           False, short_names=("crd", "crds"), categories=("api-extensions",),
           subresources=_STATUS),
    # Stored only: no aggregator proxies to the services they name.
    _named("apiregistration.k8s.io", "apiservices", "APIService", False,
           categories=("api-extensions",), subresources=_STATUS),
    # Reviews: a POST answered, nothing stored (reviews.py: authn.py, authz.py).
    _named("authentication.k8s.io", "tokenreviews", "TokenReview", False, verbs=("create",)),
    _named("authorization.k8s.io", "subjectaccessreviews", "SubjectAccessReview", False,
           verbs=("create",)),
    _named("authorization.k8s.io", "localsubjectaccessreviews", "LocalSubjectAccessReview",
           verbs=("create",)),
    _named("authorization.k8s.io", "selfsubjectaccessreviews", "SelfSubjectAccessReview",
           False, verbs=("create",)),
    _named("authorization.k8s.io", "selfsubjectrulesreviews", "SelfSubjectRulesReview",
           False, verbs=("create",)),
)


class KindRegistry:
    """Served resource types by group/version/plural. Mutated only by the server's loop thread."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._group_order: list[str] = []
        for rtype in BUILTIN_TYPES:
            self.add(rtype)

    def add(self, rtype: ResourceType) -> None:
        self._types[(rtype.group, rtype.version, rtype.plural)] = rtype
        if rtype.group and rtype.group not in self._group_order:
            self._group_order.append(rtype.group)

    def remove_store(self, store: str) -> list[ResourceType]:
        """Remove every version served from one store (a deleted CRD); return what went."""
        gone = [t for t in self._types.values() if t.store == store]
        for rtype in gone:
            del self._types[(rtype.group, rtype.version, rtype.plural)]
        served_groups = {t.group for t in self._types.values()}
        self._group_order = [g for g in self._group_order if g in served_groups]
        return gone

    def by_store(self, store: str) -> ResourceType | None:
        """A served type that keeps its objects in ``store`` (any version of it)."""
        return next((t for t in self._types.values() if t.store == store), None)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def has_group_version(self, group: str, version: str) -> bool:
        return any(t.group == group and t.version == version for t in self._types.values())

    def resources(self, group: str, version: str) -> list[ResourceType]:
        return [t for t in self._types.values() if t.group == group and t.version == version]

    def groups(self) -> list[tuple[str, list[str]]]:
        """Named groups in registration order, each with its versions (preferred first)."""
        out = []
        for group in self._group_order:
            versions: list[str] = []
            for rtype in self._types.values():
                if rtype.group == group and rtype.version not in versions:
                    versions.append(rtype.version)
            out.append((group, sorted(versions, key=version_priority)))
        return out

    def group_versions(self) -> list[tuple[str, str]]:
        pairs = [("", "v1")]
        for group, versions in self.groups():
            pairs.extend((group, v) for v in versions)
        return pairs

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._types.values()))


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes' version order: GA > beta > alpha, higher numbers first (for sorting)."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0)
    major = int(m.group(1))
    stage = {"alpha": 2, "beta": 1, None: 0}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor)
