"""Server-side printing: ``meta.k8s.io/v1 Table`` output for ``kubectl get``.

Each kind has columns like kube-apiserver's printers (pods show READY and STATUS, services their
cluster IP and ports; the workloads' in :mod:`.workloads`, the other kinds' in :mod:`.cluster`);
custom resources use their CRD's ``additionalPrinterColumns``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from envtest.kinds.registry import ResourceType
from envtest.printing import cluster, jsonpath, workloads
from envtest.printing.cells import AGE as _AGE
from envtest.printing.cells import NAME as _NAME
from envtest.printing.cells import Row, format_label_selector
from envtest.printing.cells import age as _age
from envtest.printing.cells import col as _col
from envtest.printing.cells import get as _get

__all__ = ["format_label_selector", "human_duration", "table"]


def _pod_row(pod: Mapping[str, Any]) -> list[Any]:
    """READY, STATUS, RESTARTS as kube-apiserver's ``printPod``: init containers first (an
    unfinished one shows ``Init:N/M`` or ``Init:<reason>``), restartable init containers
    (sidecars) counted with the containers, the first container's reason winning."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    sidecars = {c.get("name") for c in spec.get("initContainers") or ()
                if isinstance(c, dict) and c.get("restartPolicy") == "Always"}
    total = len(spec.get("containers") or []) + len(sidecars)
    inits = status.get("initContainerStatuses") or []
    ready = sidecar_restarts = restarts = 0
    reason = status.get("reason") or status.get("phase") or ""
    initializing = False
    for i, container in enumerate(inits):
        state = container.get("state") or {}
        restarts += int(container.get("restartCount", 0))
        sidecar = container.get("name") in sidecars
        if sidecar:
            sidecar_restarts += int(container.get("restartCount", 0))
        done = state.get("terminated") or {}
        if done and done.get("exitCode", 0) == 0:
            continue
        if sidecar and container.get("started"):
            ready += bool(container.get("ready"))
            continue
        initializing = True
        waiting = (state.get("waiting") or {}).get("reason", "")
        if done:
            reason = "Init:" + (done.get("reason") or (
                f"Signal:{done['signal']}" if done.get("signal")
                else f"ExitCode:{done.get('exitCode', 0)}"))
        elif waiting and waiting != "PodInitializing":
            reason = "Init:" + waiting
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        break
    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True"
                      for c in status.get("conditions") or ())
    if not initializing or initialized:
        restarts = sidecar_restarts
        running = False
        for container in reversed(status.get("containerStatuses") or []):
            state = container.get("state") or {}
            restarts += int(container.get("restartCount", 0))
            done = state.get("terminated") or {}
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif done:
                reason = done.get("reason") or (f"Signal:{done['signal']}" if done.get("signal")
                                                else f"ExitCode:{done.get('exitCode', 0)}")
            elif container.get("ready") and "running" in state:
                running = True
                ready += 1
        if reason == "Completed" and running:
            has_ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in status.get("conditions") or ())
            reason = "Running" if has_ready else "NotReady"
    if _get(pod, "metadata.deletionTimestamp") and status.get("phase") not in (
            "Succeeded", "Failed"):
        reason = "Terminating"
    return [f"{ready}/{total}", reason, restarts, _age(pod),
            status.get("podIP") or "<none>", spec.get("nodeName") or "<none>"]


def _ports(svc: Mapping[str, Any]) -> str:
    ports = _get(svc, "spec.ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


def _service_row(svc: Mapping[str, Any]) -> list[Any]:
    external = ",".join(_get(svc, "spec.externalIPs") or []) or "<none>"
    return [_get(svc, "spec.type"), _get(svc, "spec.clusterIP") or "<none>", external,
            _ports(svc), _age(svc)]


def _secret_row(secret: Mapping[str, Any]) -> list[Any]:
    return [secret.get("type", "Opaque"), len(secret.get("data") or {}), _age(secret)]


def _configmap_row(cm: Mapping[str, Any]) -> list[Any]:
    return [len(cm.get("data") or {}) + len(cm.get("binaryData") or {}), _age(cm)]


def _network_policy_row(policy: Mapping[str, Any]) -> list[Any]:
    return [format_label_selector(_get(policy, "spec.podSelector") or {}), _age(policy)]


def _event_row(ev: Mapping[str, Any]) -> list[Any]:
    involved = ev.get("involvedObject") or ev.get("regarding") or {}
    return [ev.get("lastTimestamp") or ev.get("eventTime") or _age(ev), ev.get("type"),
            ev.get("reason"), f"{str(involved.get('kind', '')).lower()}/{involved.get('name')}",
            ev.get("message") or ev.get("note")]


_BUILTIN: Mapping[str, tuple[list[dict[str, Any]], Row]] = {
    "pods": ([_col("Ready"), _col("Status"), _col("Restarts", "integer"), _AGE,
              _col("IP", priority=1), _col("Node", priority=1)], _pod_row),
    "namespaces": ([_col("Status"), _AGE],
                   lambda ns: [_get(ns, "status.phase"), _age(ns)]),
    "services": ([_col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), _AGE],
                 _service_row),
    "secrets": ([_col("Type"), _col("Data", "integer"), _AGE], _secret_row),
    "configmaps": ([_col("Data", "integer"), _AGE], _configmap_row),
    "events": ([_col("Last Seen", "date"), _col("Type"), _col("Reason"), _col("Object"),
                _col("Message")], _event_row),
    "leases.coordination.k8s.io": ([_col("Holder"), _AGE],
               lambda lease: [_get(lease, "spec.holderIdentity") or "", _age(lease)]),
    "networkpolicies.networking.k8s.io": ([_col("Pod-Selector"), _AGE], _network_policy_row),
    # kube prints the creation time itself (RFC 3339, UTC), not an age.
    "limitranges": ([_col("Created At", "timestamp")], lambda lr: [_age(lr)]),
    "customresourcedefinitions.apiextensions.k8s.io": ([_col("Created At", "timestamp")],
                                  lambda crd: [_age(crd)]),
    **workloads.COLUMNS, **cluster.COLUMNS,
}


def _columns(rtype: ResourceType) -> tuple[list[dict[str, Any]], Row]:
    if rtype.builtin and rtype.group_resource in _BUILTIN:
        columns, row = _BUILTIN[rtype.group_resource]
        name: Row = cluster.NAMES.get(rtype.group_resource,
                                      lambda obj: [_get(obj, "metadata.name")])
        return [_NAME, *columns], lambda obj: [*name(obj), *row(obj)]
    if rtype.printer_columns:
        custom = [{"name": c.get("name", ""), "type": c.get("type", "string"),
                   "format": c.get("format", ""),
                   "description": c.get("description") or "Custom resource definition column "
                                  f"(in JSONPath format): {c.get('jsonPath', '')}",
                   "priority": c.get("priority", 0)} for c in rtype.printer_columns]
        cells = [(column["type"], jsonpath.compile_column(c.get("jsonPath", "")))
                 for column, c in zip(custom, rtype.printer_columns, strict=True)]
        return [_NAME, *custom], lambda obj: [
            _get(obj, "metadata.name"),
            *(jsonpath.column_cell(kind, path, obj) for kind, path in cells)]
    return [_NAME, _AGE], lambda obj: [_get(obj, "metadata.name"), _age(obj)]


def _partial(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {})}


def human_duration(seconds: float) -> str:
    """A duration as kubectl prints ages: 45s, 3m12s, 5h, 2d3h, 1y20d."""
    if seconds < -1:
        return "<invalid>"
    secs = max(int(seconds), 0)
    minutes, hours, days = secs // 60, secs // 3600, secs // 86400
    if secs < 120:
        return f"{secs}s"
    if minutes < 10:
        return f"{minutes}m{secs % 60}s" if secs % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 730:
        return f"{days}d"
    years = days // 365
    if years < 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"


def _since(value: Any, now: datetime) -> Any:
    """A date cell as kube renders it: an age; None (no value) stays None, a blank cell in
    kubectl; an empty timestamp is <unknown>, an unparsable one <invalid>."""
    if not isinstance(value, str) or not value:
        return "<unknown>" if value == "" else value
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    return human_duration((now - moment).total_seconds())


def _span(value: Any, now: datetime) -> Any:
    """A "duration" cell (``{"start": t, "end": t or None}``) as kube renders a Job's
    DURATION: from start to end, or to now while there is no end; others as they are."""
    if not isinstance(value, dict):
        return value
    try:
        start = datetime.fromisoformat(str(value["start"]).replace("Z", "+00:00"))
        end = (datetime.fromisoformat(str(value["end"]).replace("Z", "+00:00"))
               if value.get("end") else now)
    except ValueError:
        return "<invalid>"
    return human_duration((end - start).total_seconds())


_RENDER = {"date": _since, "duration": _span}
"""Cells computed against the clock, by column type (served as strings)."""


def table(rtype: ResourceType, objects: list[Mapping[str, Any]], *, list_meta: dict[str, Any],
          now: datetime, include_object: str = "Metadata") -> dict[str, Any]:
    """A Table of ``objects``; "date" columns are rendered as ages relative to ``now``,
    "duration" ones as the time between two moments (the second ``now`` when unset)."""
    columns, row = _columns(rtype)
    timed = [(i, _RENDER[column["type"]]) for i, column in enumerate(columns)
             if column["type"] in _RENDER]
    rows = []
    for obj in objects:
        cells = row(obj)
        for i, render in timed:
            cells[i] = render(cells[i], now)
        entry: dict[str, Any] = {"cells": cells}
        if include_object == "Object":
            entry["object"] = obj
        elif include_object != "None":
            entry["object"] = _partial(obj)
        rows.append(entry)
    shown = [dict(c, type="string") if c["type"] in ("date", "duration", "timestamp") else c
             for c in columns]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": shown, "rows": rows}
