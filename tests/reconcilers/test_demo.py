"""The demo's table (``reconcilers.demo.render_table``): any session, whatever its name or
namespace, with or without a status, sorted by name then namespace."""

from __future__ import annotations

from typing import Any

from reconcilers.demo import render_table


def session(name: str, namespace: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "status": status}


def test_any_session_is_a_row_sorted_by_name_then_namespace() -> None:
    table = render_table([
        session("session-2b", "demo", phase="Running", executionKind="pod",
                startTime="2026-03-01T10:00:00Z",
                conditions=[{"type": "Ready", "status": "True",
                             "lastTransitionTime": "2026-03-01T10:00:04Z"}]),
        session("my-session", "elsewhere"),
        {"metadata": {"name": "7", "namespace": "demo"}},
        session("my-session", "demo", phase="Failed", executionKind="kubevirt-vm",
                conditions=[{"type": "Ready", "status": "False", "reason": "VMFailed"}]),
    ])
    assert table.splitlines() == [
        "SESSION     NAMESPACE  BACKEND      PHASE              STARTUP",
        "7           demo       -            Pending            -",
        "my-session  demo       kubevirt-vm  Failed (VMFailed)  -",
        "my-session  elsewhere  -            Pending            -",
        "session-2b  demo       pod          Running            4s",
        "by backend/phase: -/Pending=2, kubevirt-vm/Failed=1, pod/Running=1",
    ]
