"""What every workload kind shares: a label selector that must select its pod template, a
replica count, a template validated and defaulted as a pod spec is (:mod:`.podspecs`).

Messages are kube-apiserver's (``pkg/apis/apps/validation``, ``pkg/apis/batch/validation``):
clients and tests that read a 422's causes see what a cluster would say.
"""

from __future__ import annotations

import json
from typing import Any

from envtest.errors import Cause
from envtest.kinds import podspecs
from envtest.kinds.strategy import Object, lookup
from foundation.selectors import SelectorError, label_selector_from_dict


def default_template_at(obj: Object, *path: str) -> None:
    """Default the PodTemplateSpec at ``path`` (``spec``, ``template``) as a pod spec."""
    holder: Any = obj
    for part in path:
        holder = holder.get(part) if isinstance(holder, dict) else None
    podspecs.default_template(holder)


def selector_causes(spec: Any, prefix: str, kind: str, *, required: bool = True) -> list[Cause]:
    """The selector at ``prefix.selector`` exists, is not empty, and selects the template."""
    if not isinstance(spec, dict):
        return [Cause(prefix, "Required value", "FieldValueRequired")]
    selector = spec.get("selector")
    if selector is None:
        if not required:
            return []
        return [Cause(f"{prefix}.selector", "Required value", "FieldValueRequired")]
    try:
        parsed = label_selector_from_dict(selector)
    except SelectorError as exc:
        return [Cause(f"{prefix}.selector", f"Invalid value: {exc}")]
    if parsed.empty:
        return [Cause(f"{prefix}.selector", f"Invalid value: {_render(selector)}: empty "
                      f"selector is invalid for {kind}")]
    labels = lookup(spec, "template.metadata.labels")
    if not parsed.matches(labels if isinstance(labels, dict) else {}):
        return [Cause(f"{prefix}.template.metadata.labels",
                      f"Invalid value: {_render(labels or {})}: `selector` does not match "
                      "template `labels`")]
    return []


def template_causes(spec: Any, prefix: str, restart_policies: tuple[str, ...]) -> list[Cause]:
    """The pod template at ``prefix.template`` is a valid pod spec."""
    template = spec.get("template") if isinstance(spec, dict) else None
    if not isinstance(template, dict):
        return [Cause(f"{prefix}.template", "Required value", "FieldValueRequired")]
    return podspecs.validate_pod_spec(template.get("spec"), f"{prefix}.template.spec",
                                      restart_policies)


def non_negative(obj: Object, *paths: str) -> list[Cause]:
    """``must be greater than or equal to 0`` for each integer at a dotted path below 0."""
    causes = []
    for path in paths:
        value = lookup(obj, path)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            causes.append(Cause(path, f"Invalid value: {_render(value)}: must be an integer"))
        elif value < 0:
            causes.append(Cause(path, f"Invalid value: {value}: must be greater than or "
                                "equal to 0"))
    return causes


def one_of(obj: Object, path: str, supported: tuple[str, ...]) -> list[Cause]:
    """``Unsupported value`` when the string at ``path`` is set and not among ``supported``."""
    value = lookup(obj, path)
    if value is None or value in supported:
        return []
    listed = ", ".join(f'"{s}"' for s in supported)
    return [Cause(path, f'Unsupported value: "{value}": supported values: {listed}',
                  "FieldValueNotSupported")]


def _render(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
