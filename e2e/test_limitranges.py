"""LimitRanges (core/v1) with the real kubectl and the official python client, against
``ambient-ctrl apiserver`` as its own process (or ``E2E_KUBECONFIG``'s cluster).

The manifest is the LimitRange upstream's operator makes in every project
(``ambient-default-limits``); the server's rules one by one are in
tests/envtest/test_limitranges.py.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from .cluster import ClosingApiClient
from .conftest import Kubectl, Raw, Server

pytestmark = [pytest.mark.kubectl, pytest.mark.timeout(120)]

UPSTREAM = """\
apiVersion: v1
kind: LimitRange
metadata:
  name: ambient-default-limits
  labels: {ambient-code.io/managed: "true"}
spec:
  limits:
  - type: Container
    defaultRequest: {cpu: 250m, memory: 256Mi}
    default: {cpu: "2", memory: 4Gi}
"""


def rows(output: str) -> list[list[str]]:
    """Table output as rows of cells (cells are separated by 2+ spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines()]


def lr_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/limitranges/{name}"


def test_limit_range_apply_get_describe_patch_delete(kubectl: Kubectl, raw: Raw,
                                                     namespace: str, tmp_path: Path) -> None:
    manifest = tmp_path / "lr.yaml"
    manifest.write_text(UPSTREAM)
    ns = ("-n", namespace)
    out = kubectl(*ns, "apply", "-f", str(manifest)).stdout
    assert out.strip() == "limitrange/ambient-default-limits created"
    stored = kubectl.json(*ns, "get", "limits", "ambient-default-limits")
    assert stored["spec"] == {"limits": [{"type": "Container",
                                          "default": {"cpu": "2", "memory": "4Gi"},
                                          "defaultRequest": {"cpu": "250m",
                                                             "memory": "256Mi"}}]}
    table = rows(kubectl(*ns, "get", "limitranges").stdout)
    assert table == [["NAME", "CREATED AT"],
                     ["ambient-default-limits", stored["metadata"]["creationTimestamp"]]]
    described = rows(kubectl(*ns, "describe", "limits", "ambient-default-limits").stdout)
    assert ["Container", "cpu", "-", "-", "250m", "2", "-"] in described
    assert ["Container", "memory", "-", "-", "256Mi", "4Gi", "-"] in described

    # A default limit alone: the server fills the default request from it.
    kubectl(*ns, "create", "-f", "-", input=textwrap.dedent("""\
        apiVersion: v1
        kind: LimitRange
        metadata: {name: burst}
        spec:
          limits:
          - {type: Container, default: {cpu: 500m}}
        """))
    burst = raw.obj(lr_path(namespace, "burst"))
    assert burst["spec"]["limits"] == [{"type": "Container", "default": {"cpu": "500m"},
                                        "defaultRequest": {"cpu": "500m"}}]
    kubectl(*ns, "patch", "limitrange", "burst", "--type=merge", "-p",
            orjson.dumps({"metadata": {"labels": {"tier": "batch"}}}).decode())
    assert kubectl(*ns, "get", "limits", "-l", "tier=batch", "-o", "name").stdout.split() == [
        "limitrange/burst"]
    manifest.write_text(UPSTREAM.replace("cpu: 250m", "cpu: 500m"))
    out = kubectl(*ns, "apply", "-f", str(manifest)).stdout
    assert out.strip() == "limitrange/ambient-default-limits configured"
    applied = raw.obj(lr_path(namespace, "ambient-default-limits"))
    assert applied["spec"]["limits"][0]["defaultRequest"] == {"cpu": "500m",
                                                              "memory": "256Mi"}

    out = kubectl(*ns, "delete", "limits", "ambient-default-limits", "burst").stdout
    assert out.splitlines() == [f'limitrange "{name}" deleted from {namespace} namespace'
                                for name in ("ambient-default-limits", "burst")]
    assert kubectl(*ns, "get", "limits", "-o", "name").stdout == ""


def test_invalid_limit_range_is_rejected(kubectl: Kubectl, raw: Raw, namespace: str) -> None:
    done = kubectl("-n", namespace, "apply", "-f", "-", check=False, input=textwrap.dedent("""\
        apiVersion: v1
        kind: LimitRange
        metadata: {name: bad}
        spec:
          limits:
          - {type: Container, default: {cpu: "1"}, defaultRequest: {cpu: "2"}}
        """))
    assert done.returncode != 0
    assert 'The LimitRange "bad" is invalid' in done.stderr
    assert "spec.limits[0].defaultRequest[cpu]: Invalid value" in done.stderr
    assert "default request value 2 is greater than default limit value 1" in done.stderr
    done = kubectl("-n", namespace, "apply", "-f", "-", check=False, input=textwrap.dedent("""\
        apiVersion: v1
        kind: LimitRange
        metadata: {name: typo}
        spec:
          limits:
          - {type: Container, defaults: {cpu: "1"}}
        """))
    assert done.returncode != 0
    assert 'unknown field "spec.limits[0].defaults"' in done.stderr
    for name in ("bad", "typo"):
        assert raw.absent(lr_path(namespace, name))


@pytest.fixture()
def core(apiserver: Server) -> Iterator[client.CoreV1Api]:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(apiserver.kubeconfig),
                            client_configuration=configuration)
    with ClosingApiClient(configuration) as api:
        yield client.CoreV1Api(api)


def test_limit_range_crud_with_the_python_client(core: client.CoreV1Api, raw: Raw,
                                                 namespace: str) -> None:
    body = client.V1LimitRange(
        metadata=client.V1ObjectMeta(name="defaults", labels={"team": "a"}),
        spec=client.V1LimitRangeSpec(limits=[client.V1LimitRangeItem(
            type="Container", default={"cpu": "2", "memory": "4Gi"},
            default_request={"cpu": "250m", "memory": "256Mi"})]))
    created = core.create_namespaced_limit_range(namespace, body)
    assert isinstance(created, client.V1LimitRange)
    assert created.metadata.uid and created.spec.limits[0].default_request == {
        "cpu": "250m", "memory": "256Mi"}
    listed = core.list_namespaced_limit_range(namespace, label_selector="team=a")
    assert listed.kind == "LimitRangeList" and [i.metadata.name for i in listed.items] == [
        "defaults"]
    everywhere = core.list_limit_range_for_all_namespaces(label_selector="team=a")
    assert (namespace, "defaults") in {(i.metadata.namespace, i.metadata.name)
                                       for i in everywhere.items}

    # The typed client patches a dict as strategic merge: limits is atomic (replaced).
    patched = core.patch_namespaced_limit_range("defaults", namespace, {"spec": {"limits": [
        {"type": "Container", "max": {"memory": "8Gi"}}]}})
    assert patched.spec.limits[0].max == {"memory": "8Gi"}
    assert patched.spec.limits[0].default == {"memory": "8Gi"}  # defaulted from max
    assert patched.spec.limits[0].default_request == {"memory": "8Gi"}
    stored = raw.obj(lr_path(namespace, "defaults"))
    stored["spec"]["limits"].append({"type": "Pod", "max": {"cpu": "4"}})
    replaced = core.replace_namespaced_limit_range("defaults", namespace, stored)
    assert [item.type for item in replaced.spec.limits] == ["Container", "Pod"]

    with pytest.raises(ApiException) as invalid:
        core.patch_namespaced_limit_range("defaults", namespace, {"spec": {"limits": [
            {"type": "Pod", "default": {"cpu": "1"}}]}})
    assert invalid.value.status == 422
    [cause] = orjson.loads(invalid.value.body)["details"]["causes"]
    assert (cause["field"], cause["reason"]) == ("spec.limits[0].default",
                                                 "FieldValueForbidden")
    with pytest.raises(ApiException) as unparsable:
        core.create_namespaced_limit_range(namespace, client.V1LimitRange(
            metadata=client.V1ObjectMeta(name="lots"),
            spec=client.V1LimitRangeSpec(limits=[client.V1LimitRangeItem(
                type="Container", default={"cpu": "lots"})])))
    assert unparsable.value.status == 400
    assert "quantities must match the regular expression" in \
        orjson.loads(unparsable.value.body)["message"]

    core.delete_namespaced_limit_range("defaults", namespace)
    assert raw.absent(lr_path(namespace, "defaults"))
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_limit_range("defaults", namespace)
    assert missing.value.status == 404
