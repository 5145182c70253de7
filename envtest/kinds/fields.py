"""Field selectors' vocabulary: which fields of which kind can be selected, and their values.

Like kube-apiserver, every kind supports ``metadata.name`` and ``metadata.namespace``; a few
built-in kinds add their own (``status.phase`` and ``spec.nodeName`` for pods, ...). Values are
flattened to strings once, when an object is stored, so selecting costs a dict lookup.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from envtest.kinds.registry import ResourceType

_COMMON = ("metadata.name", "metadata.namespace")

_EXTRA: Mapping[tuple[str, str], tuple[str, ...]] = MappingProxyType({
    ("", "pods"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                   "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
                   "status.nominatedNodeName"),
    ("", "namespaces"): ("status.phase",),
    ("", "secrets"): ("type",),
    ("", "events"): ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                     "involvedObject.uid", "involvedObject.apiVersion",
                     "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                     "reportingComponent", "source", "type"),
    ("events.k8s.io", "events"): ("regarding.kind", "regarding.namespace", "regarding.name",
                                  "regarding.uid", "reason", "type", "reportingController"),
})


def allowed_fields(rtype: ResourceType) -> tuple[str, ...]:
    return _COMMON + _EXTRA.get((rtype.group, rtype.plural), ())


@functools.cache
def _paths(group: str, plural: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each selectable field with the members that lead to it (split once per kind: every
    stored write flattens them). core/v1 events select "source" by the reporting
    component's name."""
    return tuple((path, ("source", "component") if path == "source" else tuple(path.split(".")))
                 for path in _COMMON + _EXTRA.get((group, plural), ()))


def selectable_fields(rtype: ResourceType, obj: Mapping[str, Any]) -> dict[str, str]:
    """The selectable field values of ``obj``; a missing field selects as the empty string."""
    values = {}
    for path, parts in _paths(rtype.group, rtype.plural):
        node: Any = obj
        for part in parts:
            node = node.get(part) if type(node) is dict or isinstance(node, Mapping) else None
        if node is None:
            values[path] = ""
        elif isinstance(node, bool):
            values[path] = "true" if node else "false"
        else:
            values[path] = str(node)
    return values
