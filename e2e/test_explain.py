"""``kubectl explain`` with the real kubectl against the local API server, from its OpenAPI v3:
built-in kinds (``configmap.metadata``, ``pod.spec.containers``, through apps/v1 into core/v1's
types) and AgenticSessions (the CRD's field descriptions, and ``metadata`` as kube-apiserver
adds it). The AgenticSession printer columns (``kubectl get``, ``-o wide``) are checked in
``test_crd_contract.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .conftest import Cleanup, Kubectl

pytestmark = [pytest.mark.kubectl, pytest.mark.timeout(120)]

CRD = Path(__file__).resolve().parents[1] / "config" / "crd" / "agenticsessions.yaml"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/" \
    "agenticsessions.vteam.ambient-code"


@pytest.fixture(scope="module")
def crd(kubectl_module: Kubectl, module_cleanup: Cleanup) -> None:
    kubectl_module("apply", "-f", str(CRD))
    module_cleanup.add(CRD_PATH)


def fields(out: str) -> dict[str, str]:
    """``kubectl explain``'s FIELDS: name → type as printed (``<[]Container>``)."""
    return dict(re.findall(r"^  (\w+)\t<(.+)>", out, re.M))


def test_explain_configmap_metadata(kubectl: Kubectl) -> None:
    out = kubectl("explain", "configmap.metadata").stdout
    assert "FIELD: metadata <ObjectMeta>" in out
    assert "ObjectMeta is metadata that all persisted resources must have" in out
    assert {"name": "string", "namespace": "string", "labels": "map[string]string",
            "ownerReferences": "[]OwnerReference", "generation": "integer",
            "creationTimestamp": "string"}.items() <= fields(out).items()
    top = kubectl("explain", "configmap").stdout
    assert "ConfigMap holds configuration data for pods to consume." in top
    assert fields(top) == {"apiVersion": "string", "binaryData": "map[string]string",
                           "data": "map[string]string", "immutable": "boolean",
                           "kind": "string", "metadata": "ObjectMeta"}


def test_explain_pod_spec_containers(kubectl: Kubectl) -> None:
    out = kubectl("explain", "pod.spec.containers").stdout
    assert "FIELD: containers <[]Container>" in out
    assert "List of containers belonging to the pod." in out
    assert {"name": "string", "image": "string", "args": "[]string", "env": "[]EnvVar",
            "resources": "ResourceRequirements",
            "securityContext": "SecurityContext"}.items() <= fields(out).items()
    # apps/v1's document carries core/v1's types its Deployment reaches.
    deep = kubectl("explain", "deployment.spec.template.spec.containers.ports").stdout
    assert "containerPort\t<integer>" in deep


def test_explain_agenticsession_spec(kubectl: Kubectl, crd: None) -> None:
    out = kubectl("explain", "agenticsession.spec").stdout
    assert "GROUP:      vteam.ambient-code" in out and "KIND:       AgenticSession" in out
    schema = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]["properties"]
    assert set(fields(out)) == set(spec)
    flat = " ".join(out.split())
    for name, field in spec.items():  # each field's description, as kubectl wraps it
        assert " ".join(field["description"].split())[:60] in flat, name
    meta = kubectl("explain", "agenticsession.metadata").stdout
    assert "FIELD: metadata <ObjectMeta>" in meta and "labels\t<map[string]string>" in meta
