"""Server-side printing: ``meta.k8s.io/v1 Table`` output for ``kubectl get``.

Each kind has columns like kube-apiserver's printers (pods show READY and STATUS, services their
cluster IP and ports); custom resources use their CRD's ``additionalPrinterColumns``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .kinds import ResourceType

Row = Callable[[Mapping[str, Any]], list[Any]]

_NAME = {"name": "Name", "type": "string", "format": "name",
         "description": "Name must be unique within a namespace.", "priority": 0}
_AGE = {"name": "Age", "type": "date", "format": "",
        "description": "CreationTimestamp of the object.", "priority": 0}


def _col(name: str, kind: str = "string", priority: int = 0) -> dict[str, Any]:
    return {"name": name, "type": kind, "format": "", "description": name, "priority": priority}


def _get(obj: Any, path: str) -> Any:
    for part in path.strip(".").split("."):
        if not part:
            continue
        if isinstance(obj, Mapping):
            obj = obj.get(part)
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return None
    return obj


def _age(obj: Mapping[str, Any]) -> Any:
    return _get(obj, "metadata.creationTimestamp")


def _pod_row(pod: Mapping[str, Any]) -> list[Any]:
    statuses = _get(pod, "status.containerStatuses") or []
    total = len(_get(pod, "spec.containers") or [])
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    reason = _get(pod, "status.reason") or _get(pod, "status.phase") or ""
    for status in statuses:
        waiting = _get(status, "state.waiting.reason")
        terminated = _get(status, "state.terminated.reason")
        reason = waiting or terminated or reason
    if _get(pod, "metadata.deletionTimestamp"):
        reason = "Terminating"
    return [f"{ready}/{total}", reason, restarts, _age(pod),
            _get(pod, "status.podIP") or "<none>", _get(pod, "spec.nodeName") or "<none>"]


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
    "leases": ([_col("Holder"), _AGE],
               lambda lease: [_get(lease, "spec.holderIdentity") or "", _age(lease)]),
    "customresourcedefinitions": ([_col("Created At", "timestamp")],
                                  lambda crd: [_age(crd)]),
}


def _columns(rtype: ResourceType) -> tuple[list[dict[str, Any]], Row]:
    if rtype.builtin and rtype.plural in _BUILTIN:
        columns, row = _BUILTIN[rtype.plural]
        return [_NAME, *columns], lambda obj: [_get(obj, "metadata.name"), *row(obj)]
    if rtype.printer_columns:
        custom = [{"name": c.get("name", ""), "type": c.get("type", "string"),
                   "format": c.get("format", ""), "description": c.get("description", ""),
                   "priority": c.get("priority", 0)} for c in rtype.printer_columns]
        paths = [c.get("jsonPath", "") for c in rtype.printer_columns]
        return [_NAME, *custom], lambda obj: [_get(obj, "metadata.name"),
                                              *(_cell(_get(obj, p)) for p in paths)]
    return [_NAME, _AGE], lambda obj: [_get(obj, "metadata.name"), _age(obj)]


def _cell(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


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
    if not isinstance(value, str) or not value:
        return "<unknown>" if value is None else value
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return human_duration((now - moment).total_seconds())


def table(rtype: ResourceType, objects: list[Mapping[str, Any]], *, list_meta: dict[str, Any],
          now: datetime, include_object: str = "Metadata") -> dict[str, Any]:
    """A Table of ``objects``; "date" columns are rendered as ages relative to ``now``."""
    columns, row = _columns(rtype)
    dates = [i for i, column in enumerate(columns) if column["type"] == "date"]
    rows = []
    for obj in objects:
        cells = row(obj)
        for i in dates:
            cells[i] = _since(cells[i], now)
        entry: dict[str, Any] = {"cells": cells}
        if include_object == "Object":
            entry["object"] = obj
        elif include_object != "None":
            entry["object"] = _partial(obj)
        rows.append(entry)
    shown = [dict(c, type="string") if c["type"] in ("date", "timestamp") else c
             for c in columns]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": shown, "rows": rows}
