"""Diff a desired child against the cached one: nothing to do, a minimal patch, or recreate.

:func:`diff` is pure (no I/O, inputs never mutated) and compares only what the operator
renders: it walks ``desired`` and looks up the same place in ``actual``, so a field present
only in ``actual`` (server defaults, status, other controllers' labels) never shows as a
difference. Skipped entirely: ``apiVersion``, ``kind``, ``status``, ``metadata.name`` and
``metadata.namespace`` (identity, not content; list items from the API may lack the first two).

Equivalences (no difference, no patch):

* **Absent means empty.** A desired ``None`` is not rendered; a desired ``""``, ``{}`` or ``[]``
  equals an absent field (Go's ``omitempty`` drops them, e.g. an env var's ``value: ""``).
  ``false`` and ``0`` are *not* empty: many such fields are pointers with other defaults
  (``allowPrivilegeEscalation`` defaults to true), so renderers omit them instead.
* **Defaults the operator renders.** An absent field equals the value the server would have
  filled in: ``ports[*].protocol`` ``TCP``; Service ``spec.type`` ``ClusterIP`` and
  ``spec.sessionAffinity`` ``None``; Secret ``type`` ``Opaque``; Pod ``spec.restartPolicy``
  ``Always``.
* **Quantities by value.** Under ``resources.requests.*``, ``resources.limits.*`` (containers
  and KubeVirt's ``domain.resources``), ``overhead.*``, ``memory.guest``, ``memory.maxGuest``
  and ``emptyDir.sizeLimit``, both sides are parsed with
  ``kubernetes.utils.quantity.parse_quantity`` (``1Gi`` = ``1024Mi``, ``0.5`` = ``500m``,
  ``2`` = ``"2"``); an unparsable side falls back to plain equality. Everywhere else a string
  is a string. (KubeVirt's ``domain.cpu`` holds integers — cores, sockets, threads — compared
  as numbers.)
* **IntOrString.** ``targetPort``, ``httpGet.port`` and ``tcpSocket.port``: ``8001`` =
  ``"8001"``. Numbers compare by value (``1`` = ``1.0``), booleans only with booleans. File
  modes need no rule: ``0o644`` in Python or YAML and ``420`` in JSON are the same int.
* **Named lists by key, in any order** (extra elements in ``actual`` are kept): containers,
  initContainers, ephemeralContainers, env, volumes, imagePullSecrets, KubeVirt disks,
  interfaces and networks by ``name``; container ports by ``containerPort``; other ports
  (Service, KubeVirt interface) by ``port``; volumeMounts by ``mountPath``; volumeDevices by
  ``devicePath``. Other lists compare element by element, in order.
* **Special fields.** ``metadata.ownerReferences``: each desired reference's ``uid`` must be
  present (other fields and other owners are ignored). A Pod's ``spec.tolerations``: each
  desired toleration must be present (admission adds its own). A Secret's ``stringData``
  is compared with the decoded ``data`` the server stores. A Service's ``spec.ports`` is owned
  whole: a port the operator no longer renders is a difference (the port number is the key,
  so a renumbered port would otherwise linger, and two ports named ``agui`` are invalid).

Patches (``Change.patch_type``): core ``v1`` Pods, Services, Secrets and ConfigMaps get a
strategic merge patch — named lists carry only new or changed elements with their merge key
(the same keys as above, which are the API's ``patchMergeKey`` s), ports dropped from a Service
get ``$patch: delete``. Every other kind (custom resources such as VirtualMachines) gets a
JSON merge patch, where a list is always sent whole as desired. Lists without a merge key are
sent whole either way; ownerReferences and tolerations are sent as the actual list plus what
is missing, so other owners' references and admission's tolerations stay. A Secret's
``stringData`` difference is patched as base64 ``data`` (what the server stores).

Recreate, exactly when a difference sits on an immutable path (what the local API server
enforces, see ``envtest.kinds.builtins``):

* Pod: anything under ``spec`` except ``containers[*].image``, ``initContainers[*].image``,
  ``activeDeadlineSeconds`` and ``tolerations`` (which only ever gain elements here);
* Service: ``spec.clusterIP``, ``spec.clusterIPs`` (``spec.type`` is patched);
* Secret: ``type``; and ``data``/``stringData``/``immutable`` once the actual Secret is
  ``immutable: true``;
* VirtualMachine and others: nothing — a VM's template changes apply on its next start.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, NamedTuple

import orjson
from kubernetes.utils.quantity import parse_quantity

__all__ = ["Action", "Change", "PatchType", "diff"]

Action = Literal["create", "none", "patch", "recreate"]
PatchType = Literal["strategic", "merge"]
Shape = tuple[str, ...]
"""A path with list elements as ``*``: what the rules below match."""


@dataclass(frozen=True, slots=True)
class Change:
    """What to do to make ``actual`` what the operator rendered.

    ``create``: no actual object. ``none``: nothing differs. ``patch``: send ``patch`` with
    content type ``patch_type`` (``strategic`` → ``application/strategic-merge-patch+json``,
    ``merge`` → ``application/merge-patch+json``). ``recreate``: an immutable field differs;
    delete and create. ``patch_type`` is the kind's patch type whatever the action; ``patch``
    is None unless the action is ``patch`` and must not be mutated. ``reasons`` are the
    differing paths (``spec.containers[name=runner].image``), for logs and Events; they never
    carry values (Secrets).
    """

    action: Action
    patch_type: PatchType
    patch: Mapping[str, Any] | None = None
    reasons: tuple[str, ...] = ()


def diff(desired: Mapping[str, Any], actual: Mapping[str, Any] | None) -> Change:
    """Compare the rendered ``desired`` child with the cached ``actual`` one (module rules)."""
    rules = _rules_for(desired)
    if actual is None:
        return Change("create", rules.patch_type)
    walk = _Walk(rules, actual)
    patch = walk.root(desired)
    if not walk.found:
        return Change("none", rules.patch_type)
    reasons = tuple(at.path for at in walk.found)
    if any(rules.immutable(at.shape, actual) for at in walk.found):
        return Change("recreate", rules.patch_type, reasons=reasons)
    return Change("patch", rules.patch_type, patch=copy.deepcopy(patch), reasons=reasons)


def _identical(desired: Any, actual: Any) -> bool:
    """Whether two values are the same JSON, so no rule could tell them apart and the walk
    can skip them: most of a child as the server stores it is exactly as rendered. Python's
    ``==`` (in C) rules out almost all differences; what it misses, ``True == 1`` (a boolean
    is only ever equal to a boolean here), the canonical JSON of both tells apart."""
    if desired != actual:
        return False
    try:
        return orjson.dumps(desired, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            actual, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # not plain JSON (a caller's Decimal, say): walk it
        return False


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------

_QUANTITIES: tuple[Shape, ...] = (
    ("resources", "requests", "*"), ("resources", "limits", "*"), ("overhead", "*"),
    ("memory", "guest"), ("memory", "maxGuest"), ("emptyDir", "sizeLimit"),
)
_INT_OR_STRING: tuple[Shape, ...] = (("targetPort",), ("httpGet", "port"), ("tcpSocket", "port"))
# First match wins: the container-port pattern must precede the generic "ports".
_LIST_KEYS: tuple[tuple[Shape, str], ...] = (
    (("containers", "*", "ports"), "containerPort"),
    (("initContainers", "*", "ports"), "containerPort"),
    (("ephemeralContainers", "*", "ports"), "containerPort"),
    (("ports",), "port"),
    (("volumeMounts",), "mountPath"),
    (("volumeDevices",), "devicePath"),
    *(((name,), "name") for name in (
        "containers", "initContainers", "ephemeralContainers", "env", "volumes",
        "imagePullSecrets", "disks", "interfaces", "networks")),
)
_COMMON_DEFAULTS: tuple[tuple[Shape, Any], ...] = ((("ports", "*", "protocol"), "TCP"),)
_STRATEGIC_KINDS = frozenset({"Pod", "Service", "Secret", "ConfigMap"})
_POD_MUTABLE: tuple[Shape, ...] = (
    ("spec", "containers", "*", "image"), ("spec", "initContainers", "*", "image"),
    ("spec", "activeDeadlineSeconds"), ("spec", "tolerations"),
)

Immutable = Callable[[Shape, Mapping[str, Any]], bool]


def _matches(shape: Shape, pattern: Shape) -> bool:
    return len(shape) == len(pattern) and all(p in ("*", s) for p, s in zip(pattern, shape,
                                                                          strict=True))


def _ends_with(shape: Shape, pattern: Shape) -> bool:
    return len(shape) >= len(pattern) and _matches(shape[len(shape) - len(pattern):], pattern)


def _starts_with(shape: Shape, pattern: Shape) -> bool:
    return len(shape) >= len(pattern) and _matches(shape[:len(pattern)], pattern)


def _pod_immutable(shape: Shape, actual: Mapping[str, Any]) -> bool:
    return shape[:1] == ("spec",) and not any(_starts_with(shape, m) for m in _POD_MUTABLE)


def _service_immutable(shape: Shape, actual: Mapping[str, Any]) -> bool:
    return shape[:2] in (("spec", "clusterIP"), ("spec", "clusterIPs"))


def _secret_immutable(shape: Shape, actual: Mapping[str, Any]) -> bool:
    if shape[:1] == ("type",):
        return True
    return actual.get("immutable") is True and shape[:1] in (("data",), ("stringData",),
                                                              ("immutable",))


def _never(shape: Shape, actual: Mapping[str, Any]) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class _Rules:
    """What one kind adds to the common rules."""

    patch_type: PatchType
    immutable: Immutable = _never
    defaults: tuple[tuple[Shape, Any], ...] = ()
    """Exact paths whose absence means this rendered value."""
    owned_lists: frozenset[Shape] = frozenset()
    """Named lists whose extra actual elements are differences."""
    subset_lists: frozenset[Shape] = frozenset()
    """Lists whose desired elements must each be present; patched as actual + missing."""
    string_data: bool = False
    """``stringData`` is compared with, and patched as, base64 ``data`` (Secrets)."""


_KIND_RULES: Mapping[str, _Rules] = {
    "Pod": _Rules("strategic", _pod_immutable, ((("spec", "restartPolicy"), "Always"),),
                  subset_lists=frozenset({("spec", "tolerations")})),
    "Service": _Rules("strategic", _service_immutable,
                      ((("spec", "type"), "ClusterIP"), (("spec", "sessionAffinity"), "None")),
                      owned_lists=frozenset({("spec", "ports")})),
    "Secret": _Rules("strategic", _secret_immutable, ((("type",), "Opaque"),),
                     string_data=True),
    "ConfigMap": _Rules("strategic"),
}


def _rules_for(desired: Mapping[str, Any]) -> _Rules:
    kind, api_version = desired.get("kind"), desired.get("apiVersion")
    if api_version == "v1" and kind in _STRATEGIC_KINDS:
        return _KIND_RULES[str(kind)]
    return _Rules("merge")


# Shapes repeat from one object to the next (the rendered kinds have a few hundred at most):
# each is classified once, not once per field per reconcile.
@functools.lru_cache(maxsize=4096)
def _list_key(shape: Shape) -> str | None:
    return next((key for pattern, key in _LIST_KEYS if _ends_with(shape, pattern)), None)


@functools.lru_cache(maxsize=4096)
def _scalar_rules(shape: Shape) -> tuple[bool, bool]:
    """(a quantity, an IntOrString) at ``shape``."""
    return (any(_ends_with(shape, p) for p in _QUANTITIES),
            any(_ends_with(shape, p) for p in _INT_OR_STRING))


@functools.lru_cache(maxsize=4096)
def _defaults_at(defaults: tuple[tuple[Shape, Any], ...], shape: Shape) -> tuple[Any, ...]:
    """The values whose absence at ``shape`` the server fills in (kind's, then common)."""
    return (*(d for p, d in defaults if _matches(shape, p)),
            *(d for p, d in _COMMON_DEFAULTS if _ends_with(shape, p)))


# --------------------------------------------------------------------------------------------
# Scalars
# --------------------------------------------------------------------------------------------


def _quantity(value: Any) -> Decimal | None:
    if isinstance(value, float):
        value = repr(value)  # 0.1 must mean 100m, not the binary float's expansion
    if not isinstance(value, (str, int, Decimal)):
        return None
    try:
        return Decimal(parse_quantity(value))
    except (ValueError, ArithmeticError):
        return None


def _scalar_equal(desired: Any, actual: Any, shape: Shape) -> bool:
    if isinstance(desired, bool) or isinstance(actual, bool):
        return type(desired) is type(actual) and desired == actual
    if desired == actual:  # the rules below only widen equality
        return True
    quantity, int_or_string = _scalar_rules(shape)
    if quantity:
        left, right = _quantity(desired), _quantity(actual)
        if left is not None and right is not None:
            return left == right
    if int_or_string and isinstance(desired, int) != isinstance(actual, int):
        return str(desired) == str(actual)
    return bool(desired == actual)


_JSON_LEAVES = frozenset({str, int, float, bool, list, type(None)})
_PLAIN = frozenset({str, int, float, bool})
"""Scalars whose ``==`` between two values of the one type is JSON's equality."""


def _is_mapping(value: Any) -> bool:
    """``isinstance(value, Mapping)``, with JSON's types answered without the ABC check."""
    kind = type(value)
    return kind is dict or (kind not in _JSON_LEAVES and isinstance(value, Mapping))


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and not value)


def _decode(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _encode(value: Any) -> str:
    return base64.b64encode(str(value).encode()).decode()


# --------------------------------------------------------------------------------------------
# The walk
# --------------------------------------------------------------------------------------------

_SAME: Any = object()  # "no difference here" (a patch fragment can be any JSON value)
_ABSENT: Any = object()  # the field is missing from actual
_IDENTITY = frozenset({"apiVersion", "kind", "status"})


class _At(NamedTuple):
    """Where the walk is: the display path for reasons and the shape for rules. (A named
    tuple: one is made per field walked, and a frozen dataclass costs several times more.)"""

    path: str = ""
    shape: Shape = ()

    def key(self, name: str) -> _At:
        return _At(f"{self.path}.{name}" if self.path else name, (*self.shape, name))

    def item(self, label: str) -> _At:
        return _At(f"{self.path}[{label}]", (*self.shape, "*"))


@dataclass
class _Walk:
    """One comparison: methods return a patch fragment or ``_SAME`` and record differences."""

    rules: _Rules
    actual: Mapping[str, Any]
    found: list[_At] = field(default_factory=list)

    def root(self, desired: Mapping[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in desired.items() if k not in _IDENTITY}
        meta = desired.get("metadata")
        if isinstance(meta, Mapping):
            body["metadata"] = {k: v for k, v in meta.items() if k not in ("name", "namespace")}
        string_data = body.pop("stringData", None) if self.rules.string_data else None
        patch = self.mapping(body, self.actual, _At())
        patch = {} if patch is _SAME else patch
        if isinstance(string_data, Mapping):
            data = self.string_data(string_data, _At().key("stringData"))
            if data:
                patch["data"] = {**patch.get("data", {}), **data}
        return patch

    def value(self, desired: Any, actual: Any, at: _At) -> Any:
        if desired is None:
            return _SAME
        if actual is _ABSENT and (_empty(desired) or self.default_equal(desired, at.shape)):
            return _SAME
        if at.shape == ("metadata", "ownerReferences") and isinstance(desired, list):
            return self.owner_references(desired, actual, at)
        if _is_mapping(desired):
            return self.mapping(desired, actual if _is_mapping(actual) else {}, at)
        if isinstance(desired, list):
            return self.sequence(desired, actual, at)
        if actual is not _ABSENT and _scalar_equal(desired, actual, at.shape):
            return _SAME
        self.found.append(at)
        return desired

    def default_equal(self, desired: Any, shape: Shape) -> bool:
        return any(_scalar_equal(desired, d, shape)
                   for d in _defaults_at(self.rules.defaults, shape))

    def mapping(self, desired: Mapping[str, Any], actual: Mapping[str, Any], at: _At) -> Any:
        if _identical(desired, actual):
            return _SAME
        patch = {}
        for key, value in desired.items():
            current = actual.get(key)
            if (current is not None and type(value) is type(current) and value == current
                    and (type(value) in _PLAIN or _identical(value, current))):
                continue  # the same JSON: no rule could tell them apart (nor need a path)
            fragment = self.value(value, _ABSENT if current is None else current, at.key(key))
            if fragment is not _SAME:
                patch[key] = fragment
        return patch or _SAME

    def same(self, desired: Any, actual: Any, at: _At) -> bool:
        """Whether ``desired`` matches ``actual`` (differences are not recorded)."""
        return _Walk(self.rules, self.actual).value(desired, actual, at) is _SAME

    def sequence(self, desired: list[Any], actual: Any, at: _At) -> Any:
        if _identical(desired, actual):
            return _SAME
        actual_list = actual if isinstance(actual, list) else []
        if at.shape in self.rules.subset_lists:
            return self.subset(desired, actual_list, at)
        key = _list_key(at.shape)
        if key and all(_is_mapping(e) and isinstance(e.get(key), (str, int))
                       for e in desired):
            return self.named(desired, actual_list, key, at)
        if (isinstance(actual, list) and len(actual) == len(desired)
                and all(self.same(d, a, at.item(str(i)))
                        for i, (d, a) in enumerate(zip(desired, actual, strict=True)))):
            return _SAME
        self.found.append(at)
        return list(desired)

    def named(self, desired: list[Any], actual: list[Any], key: str, at: _At) -> Any:
        index: dict[Any, Mapping[str, Any]] = {}
        for element in actual:
            if _is_mapping(element) and isinstance(element.get(key), (str, int)):
                index.setdefault(element[key], element)
        fragments: list[Any] = []
        for element in desired:
            here = at.item(f"{key}={element[key]}")
            match = index.get(element[key])
            if match is None:
                self.found.append(here)
                fragments.append(element)
                continue
            fragment = self.mapping(element, match, here)
            if fragment is not _SAME:
                fragments.append({key: element[key], **fragment})
        if at.shape in self.rules.owned_lists:
            wanted = {element[key] for element in desired}
            for extra in (k for k in index if k not in wanted):
                self.found.append(at.item(f"{key}={extra}"))
                fragments.append({key: extra, "$patch": "delete"})
        if not fragments:
            return _SAME
        return fragments if self.rules.patch_type == "strategic" else list(desired)

    def subset(self, desired: list[Any], actual: list[Any], at: _At) -> Any:
        missing = [d for d in desired
                   if not any(self.same(d, a, at.item("*")) for a in actual)]
        if not missing:
            return _SAME
        self.found.append(at)
        return [*actual, *missing]

    def owner_references(self, desired: list[Any], actual: Any, at: _At) -> Any:
        actual_list = actual if isinstance(actual, list) else []
        uids = {r.get("uid") for r in actual_list if isinstance(r, Mapping)}
        missing = [r for r in desired if isinstance(r, Mapping) and r.get("uid") not in uids]
        if not missing:
            return _SAME
        self.found.extend(at.item(f"uid={r.get('uid')}") for r in missing)
        return missing if self.rules.patch_type == "strategic" else [*actual_list, *missing]

    def string_data(self, desired: Mapping[str, Any], at: _At) -> dict[str, str]:
        """Differing ``stringData`` keys, as the base64 ``data`` the server would store."""
        data = self.actual.get("data") or {}
        plain = self.actual.get("stringData") or {}
        patch = {}
        for key, value in desired.items():
            if value is None:
                continue
            current = plain.get(key) if key in plain else _decode(data.get(key))
            if current != str(value):
                self.found.append(at.key(key))
                patch[key] = _encode(value)
        return patch
