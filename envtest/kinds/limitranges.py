"""LimitRange (core/v1): defaulting and validation as kube-apiserver does them.

Defaulting (``pkg/apis/core/v1/defaults.go`` ``SetDefaults_LimitRangeItem``), on every write,
for items of type ``Container`` only and per resource name: ``default`` takes ``max`` where it
has no value, then ``defaultRequest`` takes ``default``, then ``min``. Maps left empty are not
stored (the Go fields are ``omitempty``).

Validation (``pkg/apis/core/validation`` ``ValidateLimitRange``), the part clients meet: each
item has a ``type`` that is ``Pod``, ``Container``, ``PersistentVolumeClaim`` or a qualified
name with a prefix, and no type twice; resource names are standard (``cpu``, ``memory``,
``ephemeral-storage``, ``hugepages-<size>``; for other types also ``storage``) or qualified
with a prefix; a ``Pod`` item has no ``default`` or ``defaultRequest``; a
``PersistentVolumeClaim`` item bounds ``storage`` by ``min`` or ``max``; per resource
``min <= defaultRequest <= default <= max``, ``maxLimitRequestRatio`` at least 1 and at most
``max / min``; a resource that cannot be overcommitted (hugepages, extended resources) has
``default`` equal to ``defaultRequest``.

Quantities must be Kubernetes quantities (a JSON number is read as one, as the Go decoder
does); anything else is refused with kube's decoding error (400), before validation. Not done:
rounding up to milli precision and the canonical spelling kube's serializer gives quantities
(``1000m`` reads back as ``1`` from kube-apiserver, as written from this server). Nothing
enforces a LimitRange: no admission fills in a Pod's resources from it.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from envtest import errors
from envtest.errors import Cause
from envtest.kinds.objects import qualified_name_problems

ITEM_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
SECTIONS = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")
_QUANTITY = re.compile(r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
                       r"(?P<suffix>[eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?")
_DECIMAL_POWERS = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_POWERS = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_SPLIT = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_STANDARD_RESOURCES = (*_CONTAINER_RESOURCES, "storage", "pods", "services",
                       "persistentvolumeclaims")


def quantity_value(text: str) -> Decimal:
    """The exact value of a quantity (a string :data:`_QUANTITY` matches), as
    ``resource.ParseQuantity`` reads it: a decimal exponent, a binary (1024-based) or a
    decimal SI suffix."""
    found = _QUANTITY.fullmatch(text)
    if found is None:
        raise ValueError(f"{text!r} is not a quantity")
    number, suffix = found["number"], found["suffix"] or ""
    if suffix in _BINARY_POWERS:
        return Decimal(number) * 1024 ** _BINARY_POWERS[suffix]
    if suffix in _DECIMAL_POWERS or not suffix:
        return Decimal(number).scaleb(_DECIMAL_POWERS.get(suffix, 0))
    return Decimal(number + suffix)  # a decimal exponent: e3, E-2


def decode(limit_range: dict[str, Any]) -> None:
    """Read every quantity as the Go decoder does, in place: numbers become their string, and
    a value that is no quantity fails the whole request with 400 (kube's decoder message)."""
    for item in _items(limit_range):
        for section in SECTIONS:
            values = item.get(section)
            if not isinstance(values, dict):
                continue
            for name, value in values.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    value = values[name] = str(value)
                if not isinstance(value, str) or not _QUANTITY.fullmatch(value):
                    raise errors.bad_request(
                        'LimitRange in version "v1" cannot be handled as a LimitRange: '
                        f"quantities must match the regular expression '{_SPLIT}'")


def default(limit_range: dict[str, Any]) -> None:
    """Fill in what kube-apiserver's defaulting adds, in place (any input shape)."""
    for item in _items(limit_range):
        if item.get("type") != "Container":
            continue
        sections = {key: dict(item[key]) if isinstance(item.get(key), dict) else {}
                    for key in ("max", "min", "default", "defaultRequest")}
        for source, target in (("max", "default"), ("default", "defaultRequest"),
                               ("min", "defaultRequest")):
            for name, value in sections[source].items():
                sections[target].setdefault(name, value)
        for key in ("default", "defaultRequest"):
            if sections[key]:
                item[key] = sections[key]
            elif not item.get(key):
                item.pop(key, None)


def validate(limit_range: dict[str, Any]) -> list[Cause]:
    """Causes for an invalid (decoded, defaulted) LimitRange; [] when valid."""
    spec = limit_range.get("spec")
    if spec is None:
        return []
    if not isinstance(spec, dict):
        return [Cause("spec", "Invalid value: must be an object")]
    limits = spec.get("limits")
    if limits is None:
        return []
    if not isinstance(limits, list):
        return [Cause("spec.limits", "Invalid value: must be a list")]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, item in enumerate(limits):
        path = f"spec.limits[{i}]"
        if not isinstance(item, dict):
            causes.append(Cause(path, "Invalid value: must be an object"))
            continue
        kind = item.get("type")
        kind = kind if isinstance(kind, str) else ""
        causes += _type_causes(kind, f"{path}.type")
        if kind in seen:
            causes.append(Cause(f"{path}.type", f'Duplicate value: "{kind}"',
                                "FieldValueDuplicate"))
        seen.add(kind)
        causes += _item_causes(item, kind, path)
    return causes


def _type_causes(kind: str, path: str) -> list[Cause]:
    problems = qualified_name_problems(kind)
    if problems:
        return [Cause(path, f'Invalid value: "{kind}": {p}') for p in problems]
    if "/" not in kind and kind not in ITEM_TYPES:
        return [Cause(path, f'Invalid value: "{kind}": must be a standard limit type or fully '
                      "qualified")]
    return []


def _item_causes(item: dict[str, Any], kind: str, path: str) -> list[Cause]:
    causes: list[Cause] = []
    values: dict[str, dict[str, Decimal]] = {}
    for section in SECTIONS:
        given = item.get(section)
        if given is None:
            continue
        if not isinstance(given, dict):
            causes.append(Cause(f"{path}.{section}", "Invalid value: must be a map of "
                                "resource names to quantities"))
            continue
        if kind == "Pod" and section in ("default", "defaultRequest") and given:
            causes.append(Cause(f"{path}.{section}", "Forbidden: may not be specified when "
                                "`type` is 'Pod'", "FieldValueForbidden"))
            continue
        for name, quantity in given.items():
            causes += _resource_causes(kind, str(name), f"{path}.{section}[{name}]")
            if isinstance(quantity, str) and _QUANTITY.fullmatch(quantity):  # else: decode's
                values.setdefault(section, {})[str(name)] = quantity_value(quantity)
    if kind == "PersistentVolumeClaim" and "storage" not in values.get("min", {}) \
            and "storage" not in values.get("max", {}):
        causes.append(Cause(f"{path}.limits", "Required value: either minimum or maximum "
                            "storage value is required, but neither was provided",
                            "FieldValueRequired"))
    names = sorted({name for section in values.values() for name in section})
    for name in names:
        causes += _bound_causes(item, values, name, path)
    return causes


def _bound_causes(item: dict[str, Any], values: dict[str, dict[str, Decimal]], name: str,
                  path: str) -> list[Cause]:
    """kube's order: min ≤ max, min ≤ defaultRequest ≤ max, defaultRequest ≤ default,
    min ≤ default ≤ max, ratio ≥ 1 and ≤ max/min, default = defaultRequest if no overcommit.
    Each cause names the field and shows the value kube shows."""
    amount = {section: values.get(section, {}).get(name) for section in SECTIONS}
    text = {section: str((item.get(section) or {}).get(name, "")) for section in SECTIONS}

    def over(left: str, right: str) -> bool:
        a, b = amount[left], amount[right]
        return a is not None and b is not None and a > b

    names = {"min": "min", "max": "max", "default": "default",
             "defaultRequest": "default request"}
    causes = []
    for left, right, section, shown in (
            ("min", "max", "min", "min"), ("min", "defaultRequest", "defaultRequest",
                                           "defaultRequest"),
            ("defaultRequest", "max", "defaultRequest", "defaultRequest"),
            ("defaultRequest", "default", "defaultRequest", "defaultRequest"),
            ("min", "default", "default", "min"), ("default", "max", "default", "max")):
        if over(left, right):
            noun = "default limit" if (left, right) == ("defaultRequest", "default") \
                else names[right]
            causes.append(Cause(f"{path}.{section}[{name}]", f'Invalid value: "{text[shown]}": '
                                f"{names[left]} value {text[left]} is greater than {noun} "
                                f"value {text[right]}"))
    ratio, low, high = amount["maxLimitRequestRatio"], amount["min"], amount["max"]
    where = f"{path}.maxLimitRequestRatio[{name}]"
    shown_ratio = text["maxLimitRequestRatio"]
    if ratio is not None and ratio < 1:
        causes.append(Cause(where, f'Invalid value: "{shown_ratio}": ratio {shown_ratio} is '
                            "less than 1"))
    if ratio is not None and low is not None and high is not None and low > 0 \
            and ratio > high / low:
        causes.append(Cause(where, f'Invalid value: "{shown_ratio}": ratio {shown_ratio} is '
                            f"greater than max/min = {float(high / low):f}"))
    limit, request = amount["default"], amount["defaultRequest"]
    if not _overcommit_allowed(name) and limit is not None and request is not None \
            and limit != request:
        causes.append(Cause(f"{path}.defaultRequest[{name}]",
                            f'Invalid value: "{text["defaultRequest"]}": default value '
                            f"{text['default']} must equal to defaultRequest value "
                            f"{text['defaultRequest']} in {name}"))
    return causes


def _resource_causes(kind: str, name: str, path: str) -> list[Cause]:
    problems = qualified_name_problems(name)
    if problems:
        return [Cause(path, f'Invalid value: "{name}": {p}') for p in problems]
    if "/" in name:
        return []
    if kind in ("Pod", "Container"):
        if name in _CONTAINER_RESOURCES or name.startswith("hugepages-"):
            return []
        return [Cause(path, f'Invalid value: "{name}": must be a standard resource for '
                      "containers")]
    if name in _STANDARD_RESOURCES or name.startswith("hugepages-"):
        return []
    return [Cause(path, f'Invalid value: "{name}": must be a standard resource type or fully '
                  "qualified")]


def _overcommit_allowed(name: str) -> bool:
    """Native resources (no prefix, or a ``kubernetes.io/`` one) but hugepages."""
    native = "/" not in name or "kubernetes.io/" in name
    return native and not name.startswith("hugepages-")


def _items(limit_range: dict[str, Any]) -> list[dict[str, Any]]:
    spec = limit_range.get("spec")
    limits = spec.get("limits") if isinstance(spec, dict) else None
    return [i for i in limits if isinstance(i, dict)] if isinstance(limits, list) else []
