"""What the operator needs in a cluster before it can run sessions, created through the API:
the AgenticSession and ProjectSettings CRDs, a managed namespace with the project's
``ambient-runner-secrets`` (what upstream's backend creates from the project's settings), and
the agent registry ConfigMap.

For clusters we start ourselves — the demo, the benchmarks and the component tests on the local
API server. A real cluster gets the CRDs and the operator from ``config/`` with
``kubectl apply -k``; the platform's backend makes the namespaces and their Secrets.

The CRDs are read from the package (:mod:`reconcilers.crds`, package data), so an installed
wheel has them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import orjson
import yaml

from ambient_ctrl.testing import eventually
from informers.resource import CONFIGMAPS, NAMESPACES, SECRETS, Resource
from informers.rest import ResourceClient, Transport

from . import crds
from .resources import (
    AGENTIC_SESSIONS,
    MANAGED_NAMESPACE_LABEL,
    PROJECT_SETTINGS,
    REGISTRY_CONFIGMAP,
    REGISTRY_KEY,
    RUNNER_SECRETS,
)

CRD_FILES = ("agenticsessions.yaml", "projectsettings.yaml")
"""In ``reconcilers/crds/`` (package data)."""
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                "CustomResourceDefinition", namespaced=False)
DEMO_API_KEY = "sk-ant-demo-not-a-real-key"


def crd_text(name: str) -> str:
    """The CRD file ``name`` (one of :data:`CRD_FILES`) as shipped in the package."""
    return resources.files(crds).joinpath(name).read_text(encoding="utf-8")


def install_crds(transport: Transport) -> None:
    """Create both CRDs; return once their kinds are served."""
    for name in CRD_FILES:
        ResourceClient(transport, CRDS).create(yaml.safe_load(crd_text(name)))
    for resource in (AGENTIC_SESSIONS, PROJECT_SETTINGS):
        # Served once the CRD is registered: wait, so whatever starts next finds it.
        served = functools.partial(ResourceClient(transport, resource).list, "default", limit=1)
        eventually(served, timeout=30, ignoring=(Exception,),
                   message=f"{resource.plural} not served")


def managed_namespace(transport: Transport, name: str, *,
                      runner_secrets: Mapping[str, str] | None = None) -> None:
    """A namespace labelled ``ambient-code.io/managed=true`` with ``ambient-runner-secrets``
    (``runner_secrets``, by default a placeholder ANTHROPIC_API_KEY)."""
    ResourceClient(transport, NAMESPACES).create(
        {"metadata": {"name": name, "labels": {MANAGED_NAMESPACE_LABEL: "true"}}})
    keys = runner_secrets if runner_secrets is not None else {"ANTHROPIC_API_KEY": DEMO_API_KEY}
    ResourceClient(transport, SECRETS).create(
        {"metadata": {"name": RUNNER_SECRETS, "namespace": name}, "type": "Opaque",
         "stringData": dict(keys)})


def install(transport: Transport, *, namespace: str, registry_namespace: str,
            registry: Iterable[Mapping[str, Any]], other_namespaces: Iterable[str] = (),
            indent: bool = False) -> None:
    """The CRDs, ``namespace`` (managed, with its runner Secret), ``registry_namespace``
    with the registry holding ``registry``, and ``other_namespaces`` (unlabelled); return
    once sessions are served. ``indent``: the registry JSON indented, for people reading it
    with kubectl."""
    install_crds(transport)
    managed_namespace(transport, namespace)
    namespaces = ResourceClient(transport, NAMESPACES)
    for name in (registry_namespace, *other_namespaces):
        namespaces.create({"metadata": {"name": name}})
    document = orjson.dumps(list(registry), option=orjson.OPT_INDENT_2 if indent else 0)
    ResourceClient(transport, CONFIGMAPS).create({
        "metadata": {"name": REGISTRY_CONFIGMAP, "namespace": registry_namespace},
        "data": {REGISTRY_KEY: document.decode()}})
