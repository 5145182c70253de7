"""Kubernetes strategic merge patch (``application/strategic-merge-patch+json``) for the
built-in kinds in :data:`STRATEGIC_MERGE_KINDS`, as ``k8s.io/apimachinery/pkg/util/
strategicpatch`` applies it: the ``patchStrategy`` and ``patchMergeKey`` struct tags of each
kind (its schema table, first), then maps, lists, and element order.

Like the other dialects it never mutates its arguments: new containers along every path the
patch touches, the untouched subtrees of ``target`` shared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from envtest.patch.errors import PatchError, brief


@dataclass(frozen=True)
class _Field:
    """What the ``patchStrategy`` and ``patchMergeKey`` struct tags say about one field.

    ``strategy`` is ``"merge"`` for lists merged element-wise (by ``merge_key`` for lists of
    objects, as a set for lists of primitives) or ``"replace"``; an empty strategy replaces
    lists and merges objects. ``fields`` describes the object, or each list element.
    ``retainKeys`` in a tag is left out: it only shapes patches clients generate, while the
    ``$retainKeys`` directive is honoured wherever it appears.
    """

    strategy: str = ""
    merge_key: str = ""
    fields: Mapping[str, _Field] = field(default_factory=lambda: _NO_FIELDS)
    apply_keys: tuple[str, ...] = ()
    """Server-side apply's list-map keys where the type's ``+listMapKey`` markers name more
    than the ``patchMergeKey`` (``Service.spec.ports``: port and protocol)."""
    key_defaults: Mapping[str, Any] = field(default_factory=lambda: _NO_DEFAULTS)
    """OpenAPI defaults of key fields, which server-side apply uses when an item omits one."""

    @property
    def list_type(self) -> str:
        """Server-side apply's list type: ``map`` (keyed), ``set`` or ``atomic``."""
        if self.strategy != "merge":
            return "atomic"
        return "map" if self.merge_key else "set"

    @property
    def list_keys(self) -> tuple[str, ...]:
        return self.apply_keys or ((self.merge_key,) if self.merge_key else ())

    def child(self, name: str) -> FieldTags:
        return self.fields.get(name, _GENERIC)


FieldTags = _Field
"""What server-side apply reads of a built-in kind's field (see :func:`kind_tags`)."""

_NO_FIELDS: Mapping[str, _Field] = MappingProxyType({})
_NO_DEFAULTS: Mapping[str, Any] = MappingProxyType({})


_GENERIC = _Field()


def _struct(**fields: _Field) -> _Field:
    return _Field(fields=MappingProxyType(fields))


def _by_key(merge_key: str, **fields: _Field) -> _Field:
    return _Field("merge", merge_key, MappingProxyType(fields))


def _by_port(merge_key: str) -> _Field:
    """A port list: strategic merge by the port alone, apply by port and protocol (TCP when
    omitted, its OpenAPI default)."""
    return _Field("merge", merge_key, apply_keys=(merge_key, "protocol"),
                  key_defaults=MappingProxyType({"protocol": "TCP"}))


def _kind(**fields: _Field) -> _Field:
    return _struct(metadata=_OBJECT_META, **fields)


# k8s.io/apimachinery pkg/apis/meta/v1 ObjectMeta.
_OBJECT_META = _struct(ownerReferences=_by_key("uid"), finalizers=_Field("merge"))

# k8s.io/api core/v1 Container; EphemeralContainerCommon carries the same tags.
_CONTAINER: Mapping[str, _Field] = MappingProxyType({
    "ports": _by_port("containerPort"), "env": _by_key("name"),
    "volumeMounts": _by_key("mountPath"), "volumeDevices": _by_key("devicePath"),
})

# core/v1 PodSpec. Untagged lists (tolerations, readinessGates, Container.envFrom,
# Container.resizePolicy, ...) are replaced whole.
_POD_SPEC = _struct(
    volumes=_by_key("name"),  # tagged merge,retainKeys
    initContainers=_by_key("name", **_CONTAINER),
    containers=_by_key("name", **_CONTAINER),
    ephemeralContainers=_by_key("name", **_CONTAINER),
    imagePullSecrets=_by_key("name"),
    hostAliases=_by_key("ip"),
    topologySpreadConstraints=_Field("merge", "topologyKey",
                                     apply_keys=("topologyKey", "whenUnsatisfiable")),
    schedulingGates=_by_key("name"),
    resourceClaims=_by_key("name"),  # tagged merge,retainKeys
    evictionResponders=_by_key("name"),
)

# core/v1 PodStatus. containerStatuses, initContainerStatuses, ephemeralContainerStatuses and
# volumeHealth carry no strategy, so they are replaced (and their elements' tags never apply).
_POD_STATUS = _struct(
    conditions=_by_key("type"),
    hostIPs=_by_key("ip"),
    podIPs=_by_key("ip"),
    resourceClaimStatuses=_by_key("name"),  # tagged merge,retainKeys
    nodeAllocatableResourceClaimStatuses=_by_key(
        "resourceClaimName", mapping=_by_key("name"), overhead=_by_key("name")),
)

_POD_TEMPLATE = _struct(metadata=_OBJECT_META, spec=_POD_SPEC)
_CONDITIONS = _kind(status=_struct(conditions=_by_key("type")))
_WORKLOAD = _kind(spec=_struct(template=_POD_TEMPLATE), status=_struct(conditions=_by_key("type")))

_KIND_SCHEMAS: Mapping[str, _Field] = MappingProxyType({
    "Pod": _kind(spec=_POD_SPEC, status=_POD_STATUS),
    # ServiceSpec.ports merges by port alone (two protocols on one port collide upstream too).
    "Service": _kind(spec=_struct(ports=_by_port("port")),
                     status=_struct(conditions=_by_key("type"))),
    # NamespaceSpec.finalizers is untagged: replaced.
    "Namespace": _kind(status=_struct(conditions=_by_key("type"))),
    # ServiceAccount.imagePullSecrets is untagged there, unlike PodSpec's.
    "ServiceAccount": _kind(secrets=_by_key("name")),
    "ConfigMap": _kind(),
    "Secret": _kind(),
    "Event": _kind(),  # core/v1 and events.k8s.io/v1 alike
    "Lease": _kind(),
    "Endpoints": _kind(),  # subsets and their address/port lists are untagged
    "LimitRange": _kind(),  # LimitRangeSpec.limits is untagged: replaced whole
    "CustomResourceDefinition": _kind(),
    # apps/v1 and core/v1 workloads: a PodTemplateSpec, status conditions merged by type;
    # StatefulSetSpec.volumeClaimTemplates is untagged (replaced whole).
    "Deployment": _WORKLOAD,
    "StatefulSet": _WORKLOAD,
    "DaemonSet": _WORKLOAD,
    "ReplicaSet": _WORKLOAD,
    "ReplicationController": _WORKLOAD,
    "Job": _WORKLOAD,
    # CronJobStatus.active is untagged (+listType=atomic): replaced.
    "CronJob": _kind(spec=_struct(jobTemplate=_struct(metadata=_OBJECT_META, spec=_struct(
        template=_POD_TEMPLATE)))),
    "Scale": _kind(),  # autoscaling/v1, the workloads' scale subresource
    # NodeSpec.podCIDRs is a merged set; taints are untagged.
    "Node": _kind(spec=_struct(podCIDRs=_Field("merge")),
                  status=_struct(conditions=_by_key("type"), addresses=_by_key("type"))),
    "PersistentVolumeClaim": _CONDITIONS,
    "PersistentVolume": _kind(),
    "StorageClass": _kind(),
    "EndpointSlice": _kind(),  # endpoints and ports are atomic lists
    "Ingress": _kind(),  # rules, tls and their lists are atomic
    "IngressClass": _kind(),
    "PodDisruptionBudget": _CONDITIONS,
    "HorizontalPodAutoscaler": _CONDITIONS,
    "APIService": _CONDITIONS,
    # admissionregistration/v1: webhooks merge by name.
    "ValidatingWebhookConfiguration": _kind(webhooks=_by_key("name")),
    "MutatingWebhookConfiguration": _kind(webhooks=_by_key("name")),
    # networking/v1: ingress, egress, policyTypes and everything under them are untagged
    # (+listType=atomic): replaced whole.
    "NetworkPolicy": _kind(),
    # rbac/v1: rules, subjects and aggregationRule are untagged (replaced whole).
    "ClusterRole": _kind(),
    "ClusterRoleBinding": _kind(),
    "Role": _kind(),
    "RoleBinding": _kind(),
})

STRATEGIC_MERGE_KINDS: frozenset[str] = frozenset(_KIND_SCHEMAS)
"""Kinds :func:`strategic_merge_patch` knows; others (custom resources) answer 415 upstream."""

OBJECT_META_TAGS: FieldTags = _OBJECT_META
"""ObjectMeta's tags, which custom resources share (finalizers a set, ownerReferences by uid)."""


def kind_tags(kind: str) -> FieldTags | None:
    """The schema table of a built-in kind, or None for a kind without one."""
    return _KIND_SCHEMAS.get(kind)


# --------------------------------------------------------------------------------------------
# Strategic merge patch: maps
# --------------------------------------------------------------------------------------------

_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"
_PATCH_VALUES = frozenset({"replace", "merge", "delete"})
_DROP: Any = object()  # what _clean returns for a map carrying a $patch directive


def strategic_merge_patch(target: dict[str, Any], patch: dict[str, Any],
                          kind: str) -> dict[str, Any]:
    """Apply a Kubernetes strategic merge patch to an object of a built-in ``kind``.

    Lists whose field is tagged ``patchStrategy:"merge"`` merge element-wise: by the merge
    key for objects (patch elements update or append), as an ordered set for primitives;
    other lists are replaced. Objects merge recursively and ``null`` deletes a member.
    Directives: ``$patch: replace|delete`` on an object, ``$patch: replace|delete`` as a list
    element, ``$retainKeys``, ``$setElementOrder/<field>`` and
    ``$deleteFromPrimitiveList/<field>``. Element order follows upstream: patch elements in
    patch order, interleaved with the target's other elements where their target positions
    allow. Any other ``$`` key, and ``$patch: merge`` (which upstream also rejects), raise
    :class:`PatchError`.

    Deliberate deviations from ``strategicpatch``, all in corners kube-apiserver reaches only
    through malformed patches:

    * a field the schema table does not describe merges like a map without tags (objects
      merge, lists are replaced); upstream's struct lookup would fail for unknown fields;
    * values copied whole from the patch (new members, replaced lists, appended elements)
      lose null members, directive keys and ``$patch``-carrying objects at every depth --
      what upstream does for new members, and what decoding into the typed object does for
      the rest;
    * a ``$deleteFromPrimitiveList`` value must be a list of primitives, and null list
      elements in a merged list are an error (upstream would ignore or panic);
    * when a field has both a patch list and ``$deleteFromPrimitiveList``, the merge happens
      before the deletion (upstream's order there depends on Go map iteration);
    * a ``$setElementOrder`` for a list that is empty on both sides leaves it empty rather
      than failing.
    """
    schema = _KIND_SCHEMAS.get(kind)
    if schema is None:
        raise PatchError(f"strategic merge patch is not supported for kind {kind!r}")
    if not isinstance(target, dict):
        raise PatchError("the patched object must be a JSON object")
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _merge_map(target, patch, schema.fields, "")


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _at(where: str) -> str:
    return f" at {where}" if where else ""


def _check_directive_names(patch: Mapping[str, Any], where: str) -> None:
    for key in patch:
        if not key.startswith("$") or key in (_PATCH, _RETAIN_KEYS):
            continue
        for prefix in (_SET_ORDER, _DELETE_PRIMITIVES):
            if key.startswith(prefix) and len(key) > len(prefix):
                break
        else:
            raise PatchError(f'unknown strategic merge patch directive "{key}"{_at(where)}')


def _check_patch_value(value: Any, where: str) -> None:
    if not (isinstance(value, str) and value in _PATCH_VALUES):
        raise PatchError(f"unknown $patch directive {value!r}{_at(where)} "
                         f'(expected "replace", "merge" or "delete")')


def _merge_map(original: dict[str, Any], patch: dict[str, Any],
               fields: Mapping[str, _Field], where: str) -> dict[str, Any]:
    _check_directive_names(patch, where)
    if _PATCH in patch:
        return _map_directive(patch, where)
    # Both dicts are fresh copies owned by this call; the helpers below fill them in.
    result = dict(original)
    work = dict(patch)
    if _RETAIN_KEYS in work:
        result = _retain_keys(result, work.pop(_RETAIN_KEYS), work, where)
    # Upstream settles ordered lists before anything else, taking their patch lists along.
    for key in [k for k in work if k.startswith(_SET_ORDER)]:
        _set_element_order(result, work, key[len(_SET_ORDER):], fields, where)
    deletions: dict[str, Any] = {}
    for key, value in work.items():
        if key.startswith(_DELETE_PRIMITIVES):
            deletions[key[len(_DELETE_PRIMITIVES):]] = value
        else:
            _merge_member(result, key, value, fields, where)
    for name, values in deletions.items():
        _delete_primitives(result, name, values, _join(where, name))
    return result


def _map_directive(patch: Mapping[str, Any], where: str) -> dict[str, Any]:
    directive = patch[_PATCH]
    _check_patch_value(directive, where)
    if directive == "delete":
        # The member stays, emptied: upstream returns {} for the map, it does not drop it.
        return {}
    if directive == "replace":
        return _clean_members(patch, where)  # skips $patch with the other directives
    raise PatchError(f"$patch: merge is not supported on an object{_at(where)}")


def _merge_member(result: dict[str, Any], key: str, value: Any,
                  fields: Mapping[str, _Field], where: str) -> None:
    here = _join(where, key)
    if value is None:
        result.pop(key, None)
        return
    current = result.get(key)
    meta = fields.get(key, _GENERIC)
    if isinstance(current, dict) and isinstance(value, dict) and meta.strategy != "replace":
        result[key] = _merge_map(current, value, meta.fields, here)
    elif isinstance(current, list) and isinstance(value, list) and meta.strategy == "merge":
        result[key] = _merge_list(current, value, meta, here)
    else:
        _store(result, key, _clean(value, here))


def _store(result: dict[str, Any], key: str, value: Any) -> None:
    if value is _DROP:
        result.pop(key, None)
    else:
        result[key] = value


def _clean(value: Any, where: str) -> Any:
    """A copy of a patch value taken whole: without null members or directives.

    A map carrying ``$patch`` is dropped (``_DROP``) from wherever it sits, as upstream's
    removeDirectives does; nulls inside lists stay.
    """
    if isinstance(value, dict):
        _check_directive_names(value, where)
        if _PATCH in value:
            _check_patch_value(value[_PATCH], where)
            return _DROP
        return _clean_members(value, where)
    if isinstance(value, list):
        items = (_clean(item, f"{where}[{i}]") for i, item in enumerate(value))
        return [item for item in items if item is not _DROP]
    return value


def _clean_members(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = {}
    for key, item in value.items():
        if item is None or key.startswith("$"):
            continue
        cleaned = _clean(item, _join(where, key))
        if cleaned is not _DROP:
            out[key] = cleaned
    return out


def _retain_keys(result: dict[str, Any], retain: Any, rest: Mapping[str, Any],
                 where: str) -> dict[str, Any]:
    if not isinstance(retain, list):
        raise PatchError(f"$retainKeys{_at(where)} must be a list of field names")
    keep = {key for key in retain if isinstance(key, str)}
    for key, value in rest.items():
        if value is None or key.startswith((_SET_ORDER, _DELETE_PRIMITIVES)):
            continue
        if key not in keep:
            raise PatchError(f'field "{key}"{_at(where)} is patched but missing from '
                             f"$retainKeys")
    return {key: value for key, value in result.items() if key in keep}


def _delete_primitives(result: dict[str, Any], name: str, values: Any, where: str) -> None:
    if not isinstance(values, list):
        raise PatchError(f"$deleteFromPrimitiveList/{name}{_at(where)} must be a list")
    current = result.get(name)
    if not isinstance(current, list):
        return  # nothing to delete from; upstream never creates the list here
    kind = _element_kind(current, values, where)
    if kind == "map":
        raise PatchError(f"$deleteFromPrimitiveList/{name}{_at(where)} applies only to lists "
                         f"of primitives")
    drop = {_identity(v, where) for v in values}
    result[name] = [v for v in current if _identity(v, where) not in drop]


# --------------------------------------------------------------------------------------------
# Strategic merge patch: lists
# --------------------------------------------------------------------------------------------


def _kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return "null" if value is None else type(value).__name__


def _element_kind(original: list[Any], patch: list[Any], where: str) -> str | None:
    """The one JSON type of all elements of both lists, or None if both are empty."""
    kinds = {_kind_of(v) for v in original} | {_kind_of(v) for v in patch}
    if "list" in kinds:
        raise PatchError(f"lists of lists are not supported{_at(where)}")
    if "null" in kinds:
        raise PatchError(f"null elements are not supported in a merged list{_at(where)}")
    if len(kinds) > 1:
        raise PatchError(f"list element types are not identical{_at(where)}: "
                         f"{', '.join(sorted(kinds))}")
    return kinds.pop() if kinds else None


def _identity(value: Any, where: str) -> tuple[str, Any]:
    """A hashable key comparing like Go's ``==`` on decoded JSON (1, 1.0 and true differ)."""
    if isinstance(value, (dict, list)):
        raise PatchError(f"expected a primitive value{_at(where)}, got {_kind_of(value)}")
    return _kind_of(value), value


def _key_identity(element: Any, merge_key: str | None, where: str) -> tuple[str, Any]:
    if merge_key is None:
        return _identity(element, where)
    if not isinstance(element, dict) or merge_key not in element:
        raise PatchError(f'list element {brief(element)}{_at(where)} does not contain the '
                         f'merge key "{merge_key}"')
    return _identity(element[merge_key], where)


def _merge_list(original: list[Any], patch: list[Any], meta: _Field,
                where: str) -> list[Any]:
    kind = _element_kind(original, patch, where)
    if kind is None:
        return []
    if kind != "map":
        merged = _unique(original + patch, where)
        wanted = {_identity(v, where) for v in patch}
        ours = [v for v in merged if _identity(v, where) in wanted]
        theirs = [v for v in merged if _identity(v, where) not in wanted]
        return _normalize_order(ours, theirs, patch, original, None, where)
    if not meta.merge_key:
        raise PatchError(f"cannot merge a list of objects without a merge key{_at(where)}")
    return _merge_object_list(original, patch, meta, where)


def _unique(values: list[Any], where: str) -> list[Any]:
    seen: set[tuple[str, Any]] = set()
    out = []
    for value in values:
        identity = _identity(value, where)
        if identity not in seen:
            seen.add(identity)
            out.append(value)
    return out


def _merge_object_list(original: list[Any], patch: list[Any], meta: _Field,
                       where: str) -> list[Any]:
    key = meta.merge_key
    base, rest, replace = _list_directives(original, patch, key, where)
    if replace:
        # The list becomes the other patch elements; upstream's sort by first position
        # groups elements sharing a key.
        items = [_clean(element, where) for element in rest]
        return _normalize_order([], items, [], rest, key, where)
    merged = _merge_elements(base, rest, meta, where)
    wanted = {_key_identity(e, key, where) for e in rest}
    ours = [e for e in merged if _key_identity(e, key, where) in wanted]
    theirs = [e for e in merged if _key_identity(e, key, where) not in wanted]
    return _normalize_order(ours, theirs, rest, base, key, where)


def _list_directives(original: list[Any], patch: list[Any], key: str,
                     where: str) -> tuple[list[Any], list[Any], bool]:
    """Apply ``$patch`` list elements: (remaining original, plain patch elements, replace)."""
    rest: list[Any] = []
    doomed: set[tuple[str, Any]] = set()
    replace = False
    for index, element in enumerate(patch):
        if _PATCH not in element:
            rest.append(element)
            continue
        directive, here = element[_PATCH], f"{where}[{index}]"
        _check_patch_value(directive, here)
        if directive == "delete":
            doomed.add(_key_identity(element, key, here))
        elif directive == "replace":
            replace = True
        else:
            raise PatchError(f"$patch: merge is not supported on a list element{_at(here)}")
    # Every element with a deleted key goes, duplicates included (one pass, not one per key).
    base = [e for e in original if not (doomed and key in e
                                        and _identity(e[key], where) in doomed)]
    return base, rest, replace


def _merge_elements(base: list[Any], patch: list[Any], meta: _Field,
                    where: str) -> list[Any]:
    """Merge each patch element into the first element with its key, or append it."""
    key, out = meta.merge_key, list(base)
    first: dict[tuple[str, Any], int] = {}  # key -> index of its first element in out
    for index, existing in enumerate(out):
        if key in existing:
            first.setdefault(_identity(existing[key], where), index)
    for element in patch:
        wanted = _key_identity(element, key, where)
        here = f"{where}[{key}={element[key]}]"
        match = first.get(wanted)
        if match is None:
            first[wanted] = len(out)
            out.append(_clean(element, here))
        else:
            out[match] = _merge_map(out[match], element, meta.fields, here)
    return out


def _set_element_order(result: dict[str, Any], work: dict[str, Any], name: str,
                       fields: Mapping[str, _Field], where: str) -> None:
    """Merge ``work[name]`` into ``result[name]`` and order it by ``$setElementOrder``."""
    here = _join(where, name)
    order = work.pop(_SET_ORDER + name)
    if not isinstance(order, list):
        raise PatchError(f"$setElementOrder/{name}{_at(where)} must be a list")
    have_original, have_patch = name in result, name in work
    original, patch = result.get(name), work.pop(name, None)
    for label, value, present in (("object", original, have_original),
                                  ("patch", patch, have_patch)):
        if present and not isinstance(value, list):
            raise PatchError(f"$setElementOrder applies to a list, but the {label} holds "
                             f"{_kind_of(value)}{_at(here)}")
    if not (have_original or have_patch):
        return
    meta = fields.get(name, _GENERIC)
    original, patch = original or [], patch or []
    kind = _element_kind(original, patch, here)
    if kind == "map" and not meta.merge_key:
        raise PatchError(f"$setElementOrder needs a merge key to order objects{_at(here)}")
    key = meta.merge_key if kind == "map" else None
    _check_patch_order(patch, order, key, here)
    if not have_patch:
        merged = original
    elif have_original and meta.strategy == "merge":
        merged = _merge_list(original, patch, meta, here)
    else:
        merged = _clean(patch, here)
    if kind is None:
        result[name] = merged  # both lists empty: nothing to order
        return
    listed = _first_positions(order, key, here)
    ours = [e for e in merged if _key_identity(e, key, here) in listed]
    theirs = [e for e in merged if _key_identity(e, key, here) not in listed]
    result[name] = _normalize_order(ours, theirs, order, original, key, here)


def _check_patch_order(patch: list[Any], order: list[Any], key: str | None,
                       where: str) -> None:
    """The patch list, minus deletions, must be a subsequence of ``$setElementOrder``."""
    if not patch or not order:
        return
    items = [e for e in patch if not (key and e.get(_PATCH) == "delete")]
    i = j = 0
    while i < len(items) and j < len(order):
        if isinstance(items[i], dict) and _PATCH in items[i]:
            i += 1
            continue
        if _key_identity(items[i], key, where) == _key_identity(order[j], key, where):
            i += 1
        j += 1
    if i < len(items):
        raise PatchError(f"the order of the patch list{_at(where)} doesn't match its "
                         f"$setElementOrder list")


# --------------------------------------------------------------------------------------------
# Strategic merge patch: element order
# --------------------------------------------------------------------------------------------


def _normalize_order(ours: list[Any], theirs: list[Any], our_order: list[Any],
                     their_order: list[Any], key: str | None, where: str) -> list[Any]:
    """Upstream's final ordering of a merged list.

    ``ours`` (elements the patch or ``$setElementOrder`` names) are sorted by ``our_order``,
    ``theirs`` (the target's other elements) by ``their_order``; the two runs are then
    interleaved, taking a target element first only when both sit in the target and it came
    earlier there.
    """
    positions = _first_positions(their_order, key, where)
    ours = _sorted_by(ours, _first_positions(our_order, key, where), key, where)
    theirs = _sorted_by(theirs, positions, key, where)
    out: list[Any] = []
    i = j = 0
    while i < len(theirs) and j < len(ours):
        left = positions.get(_key_identity(theirs[i], key, where), -1)
        right = positions.get(_key_identity(ours[j], key, where), -1)
        if 0 <= left < right:
            out.append(theirs[i])
            i += 1
        else:
            out.append(ours[j])
            j += 1
    return out + theirs[i:] + ours[j:]


_Positions = dict[tuple[str, Any], int]


def _first_positions(order: list[Any], key: str | None, where: str) -> _Positions:
    positions: _Positions = {}
    for index, element in enumerate(order):
        positions.setdefault(_key_identity(element, key, where), index)
    return positions


def _sorted_by(items: list[Any], positions: _Positions, key: str | None,
               where: str) -> list[Any]:
    """Sort ``items`` by first position in an order list, exactly as Go's sort.SliceStable.

    Upstream's comparison calls an element the order lacks "less" than anything; that is not
    an ordering, so the result then depends on the algorithm, and Go's insertion sort (all it
    runs below 21 elements) is reproduced for that case. When every element is found the
    comparison is consistent and a plain stable sort gives the same result.
    """
    ranked = [(positions.get(_key_identity(e, key, where), -1), e) for e in items]
    if all(rank >= 0 for rank, _ in ranked):
        return [e for _, e in sorted(ranked, key=lambda pair: pair[0])]
    for i in range(1, len(ranked)):
        j = i
        while j > 0 and _go_less(ranked[j][0], ranked[j - 1][0]):
            ranked[j], ranked[j - 1] = ranked[j - 1], ranked[j]
            j -= 1
    return [e for _, e in ranked]


def _go_less(left: int, right: int) -> bool:
    return left < right if left >= 0 and right >= 0 else True
