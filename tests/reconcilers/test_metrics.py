"""The operator's metrics: the sessions gauge from index counts, bounded labels."""

from __future__ import annotations

from prometheus_client import generate_latest

from metrics.recorder import Recorder
from metrics.registry import new_registry
from reconcilers.metrics import SessionMetrics, backend_phase


def test_backend_phase_index_value() -> None:
    assert backend_phase({}) == ("pod/Pending",)
    assert backend_phase({"status": {"executionKind": "kubevirt-vm", "phase": "Running"}}) == (
        "kubevirt-vm/Running",)


def test_sessions_gauge_reads_counts_and_bounds_labels() -> None:
    registry = new_registry()
    counts = {"pod/Running": 3, "kubevirt-vm/Creating": 1, "weird/Running": 2,
              "pod/Exploded": 1}
    SessionMetrics(Recorder(registry, monotonic=lambda: 0.0), sessions=lambda: counts)
    text = generate_latest(registry).decode()
    assert 'agentic_sessions{backend="pod",phase="Running"} 3.0' in text
    assert 'agentic_sessions{backend="kubevirt-vm",phase="Creating"} 1.0' in text
    assert 'agentic_sessions{backend="other",phase="Running"} 2.0' in text
    assert 'agentic_sessions{backend="pod",phase="other"} 1.0' in text


def test_recorded_values_land_in_their_families_with_bounded_labels() -> None:
    registry = new_registry()
    metrics = SessionMetrics(Recorder(registry, monotonic=lambda: 0.0), sessions=dict)
    metrics.started("pod", 4.0)
    metrics.started("kubevirt-vm", 90.0)
    metrics.operation("pod", "create", 0.02)
    metrics.transition("pod", "Pending", "Creating")
    metrics.transition("pod", "Pending", "Creating")
    metrics.transition("kubevirt-vm", "Running", "Exploded")
    metrics.error("pod", "RunnerExit")
    metrics.error("pod", "a reason made up from user input")
    metrics.error("lambda", "UnknownRuntime")
    text = generate_latest(registry).decode()
    assert 'agentic_session_startup_seconds_count{backend="pod"} 1.0' in text
    assert 'agentic_session_startup_seconds_bucket{backend="pod",le="5.0"} 1.0' in text
    assert 'agentic_session_startup_seconds_bucket{backend="kubevirt-vm",le="60.0"} 0.0' in text
    assert ('agentic_session_backend_operation_seconds_count{backend="pod",operation="create"} '
            '1.0') in text
    assert ('agentic_session_phase_transitions_total{backend="pod",from="Pending",'
            'to="Creating"} 2.0') in text
    assert ('agentic_session_phase_transitions_total{backend="kubevirt-vm",from="Running",'
            'to="other"} 1.0') in text
    assert 'agentic_session_backend_errors_total{backend="pod",reason="RunnerExit"} 1.0' in text
    assert 'agentic_session_backend_errors_total{backend="pod",reason="other"} 1.0' in text
    assert ('agentic_session_backend_errors_total{backend="other",reason="UnknownRuntime"} '
            '1.0') in text
    assert "made up" not in text and "lambda" not in text


def test_every_reason_the_operator_writes_is_a_known_label() -> None:
    """The Ready reasons of failures (contract §7) and the registry's reasons are counted by
    name, not as "other"."""
    from reconcilers.metrics import ERROR_REASONS

    written = {"PodFailed", "PrerequisiteFailed", "RunnerExit", "ImagePullBackOff",
               "ErrImagePull", "CrashLoopBackOff", "CreateContainerConfigError",
               "InvalidImageName", "VertexSecretMissing", "TokenProvisionFailed",
               "PodCreationFailed", "RunnerSecretMissing", "InvalidRegistry", "InvalidRuntime",
               "DuplicateRuntime", "InvalidQuantity", "InvalidResources", "InvalidVMConfig",
               "UnknownRuntime", "InvalidServiceName", "InvalidStateDir", "InvalidEnvName",
               "InvalidCloudInitTemplate", "DataVolumeError"}
    assert written <= set(ERROR_REASONS)
