"""What a project has, rendered from its ProjectSettings (pure functions, no I/O).

A *project* is a namespace of the platform: labelled ``ambient-code.io/managed=true``, it gets
the ProjectSettings ``projectsettings`` (:func:`default_settings`). Each ProjectSettings, in any
namespace, is given (``shared/UPSTREAM-CONTRACT.md`` §8.2, upstream's
``handlers/projectsettings.go``):

* per ``spec.groupAccess[]`` entry a RoleBinding ``<groupName>-<role>`` binding the Group to the
  ClusterRole ``ambient-project-<role>`` (:func:`group_bindings`);
* the ServiceAccount, Role and RoleBinding ``ambient-session-trigger`` that scheduled sessions
  run with (:func:`trigger_objects`);
* the LimitRange ``ambient-default-limits`` (:func:`limit_range`);
* the status ``groupBindingsCreated``, ``scheduledSessionRBACReady``, ``limitRangeReady``
  (:func:`status_patch`).

Every object carries the label ``ambient-code.io/managed=true`` and a controller owner
reference to the ProjectSettings (upstream gives the group RoleBindings none; ours have one so
that deleting the settings removes them, and a binding whose entry went can be told from
someone else's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from informers.resource import Resource

from .children import owner_reference
from .resources import MANAGED_NAMESPACE_LABEL, PROJECT_SETTINGS, PROJECT_SETTINGS_NAME

Obj = dict[str, Any]

LIMIT_RANGES = Resource("", "v1", "limitranges", "LimitRange")
RBAC_GROUP = "rbac.authorization.k8s.io"
MANAGED = {MANAGED_NAMESPACE_LABEL: "true"}
"""The label of everything made for a project (and of the project's namespace)."""
MANAGED_SELECTOR = f"{MANAGED_NAMESPACE_LABEL}=true"
TRIGGER_NAME = "ambient-session-trigger"
"""ServiceAccount, Role and RoleBinding of scheduled sessions (the backend's CronJobs)."""
LIMIT_RANGE_NAME = "ambient-default-limits"
PROJECT_ROLES = {"admin": "ambient-project-admin", "edit": "ambient-project-edit",
                 "view": "ambient-project-view"}
"""groupAccess role → ClusterRole; any other role gets view, as upstream maps it."""
TRIGGER_RULES: tuple[dict[str, list[str]], ...] = (
    {"apiGroups": ["vteam.ambient-code"], "resources": ["agenticsessions"],
     "verbs": ["create", "get", "list", "update"]},
)
"""What ``ambient-ctrl session-trigger`` does with a session (create it, or find the last and
update it)."""
LIMITS: tuple[dict[str, Any], ...] = (
    {"type": "Container", "defaultRequest": {"cpu": "250m", "memory": "256Mi"},
     "default": {"cpu": "2", "memory": "4Gi"}},
)
"""Upstream's defaults for containers that set no resources (a bin-packing safety net)."""
STATUS_FIELDS = ("groupBindingsCreated", "scheduledSessionRBACReady", "limitRangeReady")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A groupAccess entry that makes no RoleBinding, and why (bad input)."""

    index: int
    message: str


def default_settings(namespace: str) -> Obj:
    """The ProjectSettings a managed namespace gets when it has none: only ``groupAccess``
    (empty), as upstream creates it; the CRD defaults the rest."""
    return {"apiVersion": PROJECT_SETTINGS.api_version, "kind": PROJECT_SETTINGS.kind,
            "metadata": {"name": PROJECT_SETTINGS_NAME, "namespace": namespace},
            "spec": {"groupAccess": []}}


def cluster_role(role: str) -> str:
    return PROJECT_ROLES.get(role.lower(), PROJECT_ROLES["view"])


def binding_name(group: str, role: str) -> str:
    return f"{group}-{role.lower()}"


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a RoleBinding, as kube-apiserver checks RBAC names
    (``path.IsValidPathSegmentName``: any text but ``.``, ``..``, ``/`` and ``%``); None when
    it can."""
    if not name:
        return "it is empty"
    if name in (".", ".."):
        return f"it may not be {name!r}"
    bad = [c for c in "/%" if c in name]
    return f"it may not contain {' or '.join(repr(c) for c in bad)}" if bad else None


def group_bindings(settings: Mapping[str, Any]) -> tuple[list[Obj], list[Skipped]]:
    """The RoleBindings ``spec.groupAccess`` asks for (one per distinct name, in entry order)
    and the entries that cannot make one."""
    entries = ((settings.get("spec") or {}).get("groupAccess")) or []
    if not isinstance(entries, list):
        return [], [Skipped(-1, "spec.groupAccess is not a list; no group is given access")]
    bindings: dict[str, Obj] = {}
    skipped: list[Skipped] = []
    for index, entry in enumerate(entries):
        group = entry.get("groupName") if isinstance(entry, Mapping) else None
        role = entry.get("role") if isinstance(entry, Mapping) else None
        if not isinstance(group, str) or not group or not isinstance(role, str) or not role:
            skipped.append(Skipped(index, f"groupAccess[{index}] needs a groupName and a role; "
                                   "entry skipped"))
            continue
        name = binding_name(group, role)
        problem = name_problem(name) or (f"it is the name of the {TRIGGER_NAME} binding"
                                         if name == TRIGGER_NAME else None)
        if problem:
            skipped.append(Skipped(index, f"groupAccess[{index}]: group {group!r} with role "
                                   f"{role!r} cannot name a RoleBinding ({name!r}: {problem}); "
                                   "entry skipped"))
            continue
        bindings.setdefault(name, _binding(settings, name, group, role))
    return list(bindings.values()), skipped


def _binding(settings: Mapping[str, Any], name: str, group: str, role: str) -> Obj:
    return {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "RoleBinding",
            "metadata": _meta(settings, name),
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole",
                        "name": cluster_role(role)},
            "subjects": [{"kind": "Group", "apiGroup": RBAC_GROUP, "name": group}]}


def trigger_objects(settings: Mapping[str, Any]) -> list[Obj]:
    """ServiceAccount, Role and RoleBinding ``ambient-session-trigger``, in creation order."""
    namespace = settings["metadata"]["namespace"]
    meta = _meta(settings, TRIGGER_NAME)
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "Role", "metadata": meta,
         "rules": [dict(rule) for rule in TRIGGER_RULES]},
        {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "RoleBinding", "metadata": meta,
         "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": TRIGGER_NAME},
         "subjects": [{"kind": "ServiceAccount", "name": TRIGGER_NAME,
                       "namespace": namespace}]},
    ]


def limit_range(settings: Mapping[str, Any]) -> Obj:
    return {"apiVersion": "v1", "kind": "LimitRange",
            "metadata": _meta(settings, LIMIT_RANGE_NAME),
            "spec": {"limits": [dict(item) for item in LIMITS]}}


def _meta(settings: Mapping[str, Any], name: str) -> Obj:
    return {"name": name, "namespace": settings["metadata"]["namespace"],
            "labels": dict(MANAGED),
            "ownerReferences": [owner_reference(settings, PROJECT_SETTINGS)]}


# ownership and drift -----------------------------------------------------------------------------
def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The UID of the object's controller owner, None when it has none."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("controller"):
            return str(ref.get("uid") or "")
    return None


def owned(obj: Mapping[str, Any], settings: Mapping[str, Any]) -> bool:
    """Controlled by these settings (this incarnation of them)."""
    return controller_uid(obj) == settings["metadata"].get("uid")


def owned_by_predecessor(obj: Mapping[str, Any], settings: Mapping[str, Any]) -> bool:
    """Controlled by an earlier ProjectSettings of this namespace (deleted, maybe re-created):
    garbage collection is removing it, so a wait, not a conflict."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("controller") \
                and ref.get("kind") == PROJECT_SETTINGS.kind \
                and ref.get("name") == settings["metadata"]["name"] \
                and ref.get("uid") != settings["metadata"].get("uid"):
            return True
    return False


def adoptable(obj: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """A group RoleBinding upstream's operator made: labelled managed, no controller, and
    binding exactly the group and ClusterRole we would (upstream gives them no owner)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return (controller_uid(obj) is None
            and all(labels.get(k) == v for k, v in MANAGED.items())
            and obj.get("roleRef") == desired["roleRef"]
            and obj.get("subjects") == desired["subjects"])


def adoption_patch(obj: Mapping[str, Any], settings: Mapping[str, Any]) -> Obj:
    """Add the controller reference (keeping other references), guarded by the version
    looked at."""
    meta = obj.get("metadata") or {}
    refs = [dict(r) for r in meta.get("ownerReferences") or ()]
    return {"metadata": {"resourceVersion": meta.get("resourceVersion"),
                         "ownerReferences": [*refs,
                                             owner_reference(settings, PROJECT_SETTINGS)]}}


def drift_patch(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> Obj | None:
    """The merge patch that brings our object back to what it must be, None if it is: our
    labels (others' are kept), and the part we own of its kind (a Role's rules, a
    RoleBinding's subjects, a LimitRange's limits, compared as quantities)."""
    patch: Obj = {}
    labels = (actual.get("metadata") or {}).get("labels") or {}
    missing = {k: v for k, v in desired["metadata"]["labels"].items() if labels.get(k) != v}
    if missing:
        patch["metadata"] = {"labels": missing}
    kind = desired["kind"]
    if kind == "Role" and actual.get("rules") != desired["rules"]:
        patch["rules"] = desired["rules"]
    if kind == "RoleBinding" and actual.get("subjects") != desired["subjects"]:
        patch["subjects"] = desired["subjects"]
    if kind == "LimitRange" and not _same_limits(
            (desired.get("spec") or {}).get("limits") or [],
            (actual.get("spec") or {}).get("limits") or []):
        patch["spec"] = desired["spec"]
    return patch or None


def role_ref_differs(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    """A RoleBinding's roleRef cannot change: one of ours that binds another role goes."""
    return desired.get("kind") == "RoleBinding" and actual.get("roleRef") != desired["roleRef"]


def _same_limits(desired: Sequence[Any], actual: Sequence[Any]) -> bool:
    if len(desired) != len(actual):
        return False
    return all(isinstance(a, Mapping) and _same_item(d, a)
               for d, a in zip(desired, actual, strict=True))


def _same_item(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    if desired.get("type") != actual.get("type") or set(actual) - set(desired):
        return False
    for section, values in desired.items():
        if section == "type":
            continue
        got = actual.get(section)
        if not isinstance(got, Mapping) or set(got) != set(values):
            return False
        if any(_amount(got[k]) != _amount(v) for k, v in values.items()):
            return False
    return True


def _amount(value: Any) -> Decimal | None:
    try:
        return Decimal(parse_quantity(value))
    except (ValueError, ArithmeticError, TypeError):
        return None


# status ------------------------------------------------------------------------------------------
def status_patch(settings: Mapping[str, Any], *, bindings: int, trigger_ready: bool,
                 limit_range_ready: bool) -> Obj | None:
    """The status upstream writes, as a merge patch of what differs; None when nothing does
    (other status fields are left as they are)."""
    desired = {"groupBindingsCreated": bindings, "scheduledSessionRBACReady": trigger_ready,
               "limitRangeReady": limit_range_ready}
    current = settings.get("status") or {}
    changed = {k: v for k, v in desired.items() if current.get(k) != v
               or type(current.get(k)) is not type(v)}
    return {"status": changed} if changed else None
