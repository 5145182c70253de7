"""Names already taken, objects too big, timestamps without a zone (issue 15 item 4), with
real processes: the local API server (kubelet and KubeVirt simulators) and the operator.

Each case was a silent hang or an overwrite: a session whose child cannot be made must end
with ``Ready=False``, the reason and one Warning Event — and nothing that is not the
session's may be changed or deleted, nothing retried in a storm."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from ambient_ctrl.testing import eventually
from e2e.test_upstream_contract import NS, Platform, platform, quiet

__all__ = ["platform"]

pytestmark = [pytest.mark.timeout(240),
              pytest.mark.local_only("starts its own API server and operator processes")]


def fresh() -> str:
    return f"session-{uuid.uuid4()}"


def refused(platform: Platform, name: str, reason: str) -> dict[str, Any]:
    """Ready=False ``reason`` with one Warning Event of it, and quiet afterwards."""
    eventually(lambda: platform.condition(name, "Ready").get("reason") == reason
               and platform.warnings(name, reason),
               message=f"{name}: no Ready=False {reason} and Warning Event "
                       f"(Ready: {platform.condition(name, 'Ready')})")
    ready = platform.condition(name, "Ready")
    assert ready["status"] == "False"
    version = platform.session(name)["metadata"]["resourceVersion"]
    requests = quiet(platform, 1.0)
    assert platform.session(name)["metadata"]["resourceVersion"] == version, "retried"
    assert sum(requests.values()) <= 2, f"a retry storm: {requests}"
    assert len(platform.warnings(name, reason)) == 1
    return ready


def squat(platform: Platform, kind: str, name: str, make: Callable[[], Any]) -> dict[str, Any]:
    make()
    squatter = platform.read(kind, name)
    assert squatter is not None
    return squatter


def unchanged(platform: Platform, kind: str, before: dict[str, Any]) -> None:
    after = platform.read(kind, before["metadata"]["name"])
    assert after is not None, f"{kind} {before['metadata']['name']} was deleted"
    assert after["metadata"]["uid"] == before["metadata"]["uid"], "replaced"
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], \
        f"{kind} {before['metadata']['name']} was changed"


def test_a_service_of_the_sessions_name_that_is_not_its_own(platform: Platform) -> None:
    name = fresh()
    squatter = squat(platform, "Service", f"session-{name}", lambda: (
        platform.core.create_namespaced_service(NS, client.V1Service(
            metadata=client.V1ObjectMeta(name=f"session-{name}"),
            spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)],
                                      selector={"app": "someone-else"})))))
    platform.create(name=name)
    ready = refused(platform, name, "ServiceNameTaken")
    assert f"Service session-{name} already exists" in ready["message"]
    unchanged(platform, "Service", squatter)
    assert platform.read("Pod", f"{name}-runner") is None, "a half-made run was left"
    assert platform.phase(name) == "Pending"
    # The name is freed and the user starts the session again: it runs.
    platform.core.delete_namespaced_service(f"session-{name}", NS)
    platform.start(name)
    platform.wait_phase(name, "Running", timeout=30)


def test_an_ownerless_pod_of_the_runners_name_is_left_alone(platform: Platform) -> None:
    name = fresh()
    squatter = squat(platform, "Pod", f"{name}-runner", lambda: (
        platform.core.create_namespaced_pod(NS, client.V1Pod(
            metadata=client.V1ObjectMeta(name=f"{name}-runner"),
            spec=client.V1PodSpec(containers=[client.V1Container(name="x",
                                                                 image="busybox")])))))
    platform.create(name=name)
    ready = refused(platform, name, "PodCreationFailed")
    assert ready["message"] == "Runner pod creation failed"
    pod_created = platform.condition(name, "PodCreated")
    assert "does not belong to this session" in pod_created["message"]
    after = platform.read("Pod", f"{name}-runner")
    assert after is not None and after["metadata"]["uid"] == squatter["metadata"]["uid"]
    assert not after["metadata"].get("deletionTimestamp")
    assert not after["metadata"].get("ownerReferences")


def test_a_token_secret_that_is_not_the_sessions_keeps_its_data(platform: Platform) -> None:
    name = fresh()
    squatter = squat(platform, "Secret", f"ambient-runner-token-{name}", lambda: (
        platform.core.create_namespaced_secret(NS, client.V1Secret(
            metadata=client.V1ObjectMeta(name=f"ambient-runner-token-{name}"),
            string_data={"agui-token": "someone-elses"}))))
    platform.create(name=name)
    platform.wait_phase(name, "Failed")
    ready = platform.condition(name, "Ready")
    assert ready["reason"] == "TokenProvisionFailed"
    assert "does not belong" in ready["message"]
    assert len(platform.warnings(name, "TokenProvisionFailed")) == 1
    unchanged(platform, "Secret", squatter)


def test_a_vm_session_whose_cloud_init_would_not_fit_is_refused_before_the_write(
        platform: Platform) -> None:
    """The guest's environment (here one 1.3 MiB variable, base64-encoded there) goes into
    the cloud-init Secret: over the API server's 1.5 MiB object limit, the write could only
    fail with a 500 forever."""
    name = platform.create_vm(extra_env={"HUGE_CONTEXT": "x" * (1300 * 1024)})
    ready = refused(platform, name, "ObjectTooLarge")
    assert "over the API server's object limit of 1.5 MiB" in ready["message"]
    for kind, child in (("Secret", f"{name}-cloudinit"), ("VirtualMachine", f"{name}-runner"),
                        ("Secret", f"ambient-runner-token-{name}")):
        assert platform.read(kind, child) is None, f"{kind} {child} was created"


def test_an_activity_time_without_a_timezone_is_read_as_utc(platform: Platform) -> None:
    name = platform.create()
    platform.wait_phase(name, "Running", timeout=30)
    session = platform.custom.get_namespaced_custom_object_status(
        "vteam.ambient-code", "v1alpha1", NS, "agenticsessions", name)
    session["status"]["lastActivityTime"] = "2026-01-01T00:00:00"  # no zone, long ago
    try:
        platform.custom.replace_namespaced_custom_object_status(
            "vteam.ambient-code", "v1alpha1", NS, "agenticsessions", name, session)
    except client.ApiException as error:  # the schema may refuse it: fine too
        assert error.status == 422, error
        return
    # Taken as UTC: idle far past the inactivity timeout, so the session stops (no TypeError
    # on every reconcile, which left it Running for good).
    platform.wait_phase(name, "Stopped", timeout=30)
    assert platform.session(name)["status"]["stoppedReason"] == "inactivity"
