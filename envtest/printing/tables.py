"""Server-side printing: ``meta.k8s.io/v1 Table`` output for ``kubectl get``.

Each kind has columns like kube-apiserver's printers (pods show READY and STATUS, services their
cluster IP and ports); custom resources use their CRD's ``additionalPrinterColumns``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from envtest.kinds.registry import ResourceType
from envtest.printing import jsonpath

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


def format_label_selector(selector: Any) -> str:
    """A LabelSelector as kubectl prints it (``metav1.FormatLabelSelector``): requirements
    sorted by key, ``k=v``, ``k in (a,b)``, ``k notin (a)``, ``k``, ``!k``; ``<none>`` for the
    empty selector (which selects everything) and ``<error>`` for one that cannot parse."""
    if not isinstance(selector, Mapping):
        return "<none>" if selector is None else "<error>"
    requirements: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        requirements.append((str(key), f"{key}={value}"))
    for expression in selector.get("matchExpressions") or ():
        if not isinstance(expression, Mapping):
            return "<error>"
        key, operator = str(expression.get("key", "")), expression.get("operator")
        values = sorted(str(v) for v in expression.get("values") or ())
        if operator in ("In", "NotIn") and values:
            joined = values[0] if len(values) == 1 else ",".join(values)
            requirements.append((key, f"{key} {operator.lower()} ({joined})"))
        elif operator == "Exists" and not values:
            requirements.append((key, key))
        elif operator == "DoesNotExist" and not values:
            requirements.append((key, f"!{key}"))
        else:
            return "<error>"
    requirements.sort(key=lambda r: r[0])
    return ",".join(text for _, text in requirements) or "<none>"


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
}


def _columns(rtype: ResourceType) -> tuple[list[dict[str, Any]], Row]:
    if rtype.builtin and rtype.group_resource in _BUILTIN:
        columns, row = _BUILTIN[rtype.group_resource]
        return [_NAME, *columns], lambda obj: [_get(obj, "metadata.name"), *row(obj)]
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
