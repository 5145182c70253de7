"""Generic object metadata rules: what the server fills in and what it refuses, for every kind.

Kind-specific defaulting and validation live in ``builtins.py`` and ``crds.py``; this module is the
part of kube-apiserver's ``rest.BeforeCreate``/``BeforeUpdate`` that applies to all objects.
"""

from __future__ import annotations

import random
import re
import secrets
from collections.abc import Mapping
from typing import Any

from envtest.errors import Cause, bad_request, invalid
from envtest.kinds.registry import ResourceType

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = re.compile(_DNS1123_LABEL)
DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_ANNOTATIONS_BYTES = 256 * 1024

SYSTEM_FIELDS = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                 "generation", "resourceVersion", "selfLink")

# Which name rule each built-in resource (group-resource) uses; everything else is a DNS-1123
# subdomain. RBAC objects take any path segment (``system:controller:x``, ``Team A-view``), as
# kube-apiserver's ``minimalNameRequirements`` (``path.IsValidPathSegmentName``) allows.
_NAME_RULES: Mapping[str, str] = {
    "namespaces": "label", "services": "dns1035",
    **{f"{plural}.rbac.authorization.k8s.io": "path"
       for plural in ("roles", "rolebindings", "clusterroles", "clusterrolebindings")}}


def generated_name(prefix: str) -> str:
    """``generateName`` + 5 characters from the alphabet kube-apiserver uses."""
    return prefix + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))


_UIDS = random.Random(secrets.randbits(64))


def new_uid() -> str:
    """A version-4 UUID string. Unique, not secret: drawn from a PRNG seeded once from the OS,
    several times cheaper than ``uuid.uuid4()`` on the create path."""
    h = f"{_UIDS.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def name_problems(value: str, rule: str) -> list[str]:
    """Why ``value`` is not a valid name under ``rule`` (label, dns1035, subdomain, path);
    [] if valid."""
    if rule == "path":
        return path_segment_problems(value)
    if rule == "label":
        limit, pattern, what = 63, DNS1123_LABEL, (
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
            "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
            "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
    elif rule == "dns1035":
        limit, pattern, what = 63, DNS1035_LABEL, (
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
            "with an alphabetic character, and end with an alphanumeric character (e.g. "
            "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
    else:
        limit, pattern, what = 253, DNS1123_SUBDOMAIN, (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character (e.g. "
            "'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    problems = []
    if len(value) > limit:
        problems.append(f"must be no more than {limit} characters")
    if not pattern.fullmatch(value):
        problems.append(what)
    return problems


def path_segment_problems(value: str) -> list[str]:
    """apimachinery's ``IsValidPathSegmentName``: a name that fits in one URL path segment."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def qualified_name_problems(key: str) -> list[str]:
    """Problems of a label/annotation key or finalizer name: ``[prefix/]name``."""
    prefix, sep, name = key.rpartition("/")
    problems = []
    if sep and (not prefix or name_problems(prefix, "subdomain")):
        problems.append("prefix part must be a lowercase RFC 1123 subdomain")
    if not name or len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        problems.append("name part must consist of alphanumeric characters, '-', '_' or '.', "
                        "and must start and end with an alphanumeric character, and be no more "
                        "than 63 characters")
    return problems


def label_value_problems(value: Any) -> list[str]:
    if not isinstance(value, str):
        return ["must be a string"]
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        return ["a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character, and be "
                "no more than 63 characters"]
    return []


def check_type_meta(rtype: ResourceType, obj: Any) -> dict[str, Any]:
    """Fill a missing apiVersion/kind from the URL (as the server's decoder does); refuse others."""
    if not isinstance(obj, dict):
        raise bad_request(f"the body of the request must be a JSON object (a {rtype.kind}), "
                          f"not {type(obj).__name__}")
    api_version = obj.setdefault("apiVersion", rtype.api_version)
    kind = obj.setdefault("kind", rtype.kind)
    if api_version != rtype.api_version:
        raise bad_request(f"the API version in the data ({api_version}) does not match the "
                          f"expected API version ({rtype.api_version})")
    if kind != rtype.kind:
        raise bad_request(f"the kind in the data ({kind}) does not match the expected kind "
                          f"({rtype.kind})")
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    return meta


def drop_empty_meta(meta: dict[str, Any]) -> None:
    """Remove null or empty metadata maps and lists, as kube-apiserver's ObjectMeta (omitempty)
    does: a patch of ``annotations: {}`` (kubectl diff sends one) stores nothing."""
    for key in ("labels", "annotations", "finalizers", "ownerReferences", "managedFields"):
        if key in meta and meta[key] in (None, {}, []):
            del meta[key]


def validate_meta(rtype: ResourceType, obj: dict[str, Any], *, updating: bool) -> list[Cause]:
    """Causes for invalid metadata (name, labels, annotations, owner refs, finalizers)."""
    meta = obj["metadata"]
    causes: list[Cause] = []
    name = meta.get("name", "")
    rule = "crd" if rtype.plural == "customresourcedefinitions" else _NAME_RULES.get(
        rtype.group_resource if rtype.builtin else "", "subdomain")
    if rule != "crd" and not updating:
        causes += [Cause("metadata.name", f'Invalid value: "{name}": {p}')
                   for p in name_problems(name, rule)]
    causes += _map_causes(meta, "labels", label_values=True)
    causes += _map_causes(meta, "annotations", label_values=False)
    for index, ref in enumerate(_list(meta, "ownerReferences", causes)):
        for required in ("apiVersion", "kind", "name", "uid"):
            if not isinstance(ref, dict) or not ref.get(required):
                causes.append(Cause(f"metadata.ownerReferences[{index}].{required}",
                                    "Required value", "FieldValueRequired"))
    controllers = [r for r in meta.get("ownerReferences") or () if isinstance(r, dict)
                   and r.get("controller")]
    if len(controllers) > 1:
        causes.append(Cause("metadata.ownerReferences", "Invalid value: only one reference "
                            "can have Controller set to true"))
    for index, finalizer in enumerate(_list(meta, "finalizers", causes)):
        problems = (qualified_name_problems(finalizer) if isinstance(finalizer, str)
                    else ["must be a string"])
        causes += [Cause(f"metadata.finalizers[{index}]", f'Invalid value: "{finalizer}": {p}')
                   for p in problems]
    return causes


def _list(meta: dict[str, Any], key: str, causes: list[Cause]) -> list[Any]:
    value = meta.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        causes.append(Cause(f"metadata.{key}", "Invalid value: must be a list"))
        return []
    return value


def _map_causes(meta: dict[str, Any], key: str, *, label_values: bool) -> list[Cause]:
    value = meta.get(key)
    if value is None:
        return []
    if not isinstance(value, dict):
        return [Cause(f"metadata.{key}", "Invalid value: must be a map of strings")]
    causes = []
    for k, v in value.items():
        causes += [Cause(f"metadata.{key}", f'Invalid value: "{k}": {p}')
                   for p in qualified_name_problems(k)]
        problems = label_value_problems(v) if label_values else (
            [] if isinstance(v, str) else ["must be a string"])
        causes += [Cause(f"metadata.{key}", f'Invalid value: "{v}": {p}') for p in problems]
    if not label_values and sum(len(k) + len(str(v)) for k, v in value.items()) \
            > _MAX_ANNOTATIONS_BYTES:
        causes.append(Cause("metadata.annotations", "Too long: must have at most 262144 bytes",
                            "FieldValueTooLong"))
    return causes


def labels_causes(labels: Any) -> list[Cause]:
    """What is wrong with a ``metadata.labels`` map (keys and values)."""
    return _map_causes({"labels": labels}, "labels", label_values=True)


def annotations_causes(annotations: Any) -> list[Cause]:
    """What is wrong with a ``metadata.annotations`` map (keys and total size)."""
    return _map_causes({"annotations": annotations}, "annotations", label_values=False)


def raise_if_invalid(rtype: ResourceType, name: str, causes: list[Cause]) -> None:
    if causes:
        raise invalid(rtype.kind, rtype.group, name, causes)


def spec_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Everything but metadata and status: a change here moves ``metadata.generation``."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}
