"""What the operator needs in a cluster before it can run sessions, created through the API:
the AgenticSession CRD, a namespace labelled as managed, and the agent registry ConfigMap.

For clusters we start ourselves — the demo, the benchmarks and the component tests on the local
API server. A real cluster gets the same from ``config/`` with ``kubectl apply -k``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
import yaml

from ambient_ctrl.testing import eventually
from informers.resource import CONFIGMAPS, NAMESPACES, Resource
from informers.rest import ResourceClient, Transport

from .resources import AGENTIC_SESSIONS, MANAGED_NAMESPACE_LABEL, REGISTRY_CONFIGMAP

CRD_PATH = Path(__file__).resolve().parents[1] / "config" / "crd" / "agenticsessions.yaml"
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                "CustomResourceDefinition", namespaced=False)


def install(transport: Transport, *, namespace: str, registry_namespace: str,
            registry: Iterable[Mapping[str, Any]], other_namespaces: Iterable[str] = (),
            indent: bool = False) -> None:
    """Create the CRD, ``namespace`` (managed), ``registry_namespace`` with the registry
    holding ``registry``, and ``other_namespaces`` (unlabelled); return once sessions are
    served. ``indent``: the registry JSON indented, for people reading it with kubectl."""
    ResourceClient(transport, CRDS).create(yaml.safe_load(CRD_PATH.read_text()))
    namespaces = ResourceClient(transport, NAMESPACES)
    namespaces.create({"metadata": {"name": namespace,
                                    "labels": {MANAGED_NAMESPACE_LABEL: "true"}}})
    for name in (registry_namespace, *other_namespaces):
        namespaces.create({"metadata": {"name": name}})
    document = orjson.dumps(list(registry), option=orjson.OPT_INDENT_2 if indent else 0)
    ResourceClient(transport, CONFIGMAPS).create({
        "metadata": {"name": REGISTRY_CONFIGMAP, "namespace": registry_namespace},
        "data": {"agent-registry.json": document.decode()}})
    # The kind is served once the CRD is registered: wait, so whatever starts next finds it.
    eventually(lambda: ResourceClient(transport, AGENTIC_SESSIONS).list(namespace, limit=1),
               timeout=30, ignoring=(Exception,), message="the CRD is not served")
