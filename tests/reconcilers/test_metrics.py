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
