"""What a container's environment needs before it can start: the Secrets and ConfigMaps it names.

Pure functions, after the kubelet's ``makeEnvironmentVariables`` (``pkg/kubelet/
kubelet_pods.go``): ``envFrom`` entries first, then ``env`` entries with ``valueFrom``, in
order; the first reference that cannot be resolved stops the container from being created,
and the kubelet reports it as ``CreateContainerConfigError`` with the error's text:

* a missing Secret or ConfigMap: ``secret "x" not found`` / ``configmap "x" not found`` (the
  kubelet's object managers name the resource in the singular);
* a missing key (``secretKeyRef``/``configMapKeyRef``): ``couldn't find key k in Secret ns/x``
  / ``couldn't find key k in ConfigMap ns/x`` — a ConfigMap's ``binaryData`` does not count;
* ``optional: true`` references that cannot be resolved are skipped.

Other ``valueFrom`` sources (fieldRef, resourceFieldRef) always resolve here.

:func:`environment` gives the values a started container sees (what a process in it, such as
the runner stand-in, reads): ``envFrom`` objects' keys (with their ``prefix``), then ``env``
entries, a later one replacing an earlier one of the same name; Secret data base64-decoded.
``$(VAR)`` references are not expanded, and fieldRef/resourceFieldRef values are left out.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

REASON = "CreateContainerConfigError"
_KINDS = {"secret": "Secret", "configmap": "ConfigMap"}


@dataclass(frozen=True, slots=True)
class Ref:
    """One Secret or ConfigMap a container's environment reads."""

    kind: str
    """``secret`` or ``configmap``."""
    name: str
    key: str | None
    """The key read (``valueFrom``); None for a whole object (``envFrom``)."""
    optional: bool


Lookup = Callable[[str, str], Mapping[str, Any] | None]
"""(kind, name) -> the object's ``data`` ({} when it has none), or None when it does not exist."""


def refs(container: Mapping[str, Any]) -> tuple[Ref, ...]:
    """The references of one container spec, in the order the kubelet resolves them."""
    out: list[Ref] = []
    for source in container.get("envFrom") or ():
        if not isinstance(source, dict):
            continue
        for field, kind in (("configMapRef", "configmap"), ("secretRef", "secret")):
            ref = source.get(field)
            if isinstance(ref, dict):
                out.append(Ref(kind, str(ref.get("name", "")), None, ref.get("optional") is True))
    for env in container.get("env") or ():
        value_from = env.get("valueFrom") if isinstance(env, dict) else None
        if not isinstance(value_from, dict):
            continue
        for field, kind in (("configMapKeyRef", "configmap"), ("secretKeyRef", "secret")):
            ref = value_from.get(field)
            if isinstance(ref, dict):
                out.append(Ref(kind, str(ref.get("name", "")), str(ref.get("key", "")),
                               ref.get("optional") is True))
    return tuple(out)


def config_error(references: tuple[Ref, ...], namespace: str, lookup: Lookup) -> str | None:
    """The kubelet's error for the first reference that does not resolve; None if all do."""
    for ref in references:
        data = lookup(ref.kind, ref.name)
        if data is None:
            if not ref.optional:
                return f'{ref.kind} "{ref.name}" not found'
        elif ref.key is not None and ref.key not in data and not ref.optional:
            return f"couldn't find key {ref.key} in {_KINDS[ref.kind]} {namespace}/{ref.name}"
    return None


def environment(container: Mapping[str, Any], lookup: Lookup) -> dict[str, str]:
    """The variables a started container sees, by name (see the module docstring)."""
    out: dict[str, str] = {}
    for source in container.get("envFrom") or ():
        if not isinstance(source, dict):
            continue
        prefix = str(source.get("prefix") or "")
        for field, kind in (("configMapRef", "configmap"), ("secretRef", "secret")):
            ref = source.get(field)
            if isinstance(ref, dict):
                data = lookup(kind, str(ref.get("name", ""))) or {}
                out.update((prefix + str(key), _decoded(kind, value))
                           for key, value in data.items())
    for env in container.get("env") or ():
        if not isinstance(env, dict) or not isinstance(env.get("name"), str):
            continue
        value_from = env.get("valueFrom")
        if not isinstance(value_from, dict):
            out[env["name"]] = str(env.get("value") or "")
            continue
        for field, kind in (("configMapKeyRef", "configmap"), ("secretKeyRef", "secret")):
            ref = value_from.get(field)
            if isinstance(ref, dict):
                data = lookup(kind, str(ref.get("name", ""))) or {}
                key = str(ref.get("key", ""))
                if key in data:  # else optional: the variable is not set
                    out[env["name"]] = _decoded(kind, data[key])
    return out


def _decoded(kind: str, value: Any) -> str:
    """A Secret's value is base64 in ``data``; a ConfigMap's is the text itself."""
    if kind != "secret":
        return str(value)
    try:
        return base64.b64decode(str(value), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return ""
