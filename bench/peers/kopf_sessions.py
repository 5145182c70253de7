"""The AgenticSession operator's pod path written with kopf 1.45: the peer in bench/operators.py.

It does the same job as ours for pod sessions, the way kopf's documentation does it:

- ``@kopf.on.create`` on AgenticSessions: render the children exactly as ours does
  (``reconcilers.pod.PodEnvironment().render``: the token Secret, the ``<name>-runner`` Pod and
  the ``session-<name>`` Service), ``kopf.adopt`` each (owner reference) and create them with
  the ``kubernetes`` client (a 409 from a retried handler is fine);
- ``@kopf.on.event`` on runner Pods (label ``app=ambient-code-runner``): track the pod's phase
  into the session's ``status`` (``Creating`` until the pod is Running and Ready, then
  ``Running`` with ``startTime`` and ``endpoint``), one merge patch to ``/status`` per change
  of the session's phase, as ours writes one per transition.

The agent registry is read once at startup (ours reads it from its informer cache). Handler
results are not stored in status (the handlers return nothing); kopf keeps its own progress in
annotations. Responses of the ``kubernetes`` client are not turned into model objects
(``_preload_content=False``): a performance-aware author's choice, and in kopf's favour.

    KUBECONFIG=... python -m kopf run --standalone --all-namespaces bench/peers/kopf_sessions.py

kopf loads this file in its own process; the benchmark never imports it.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import threading
from typing import Any

import kopf
import kubernetes

from reconcilers.pod import PodEnvironment
from reconcilers.registry import RegistryCache, runtime_id
from reconcilers.resources import (
    AGUI_PORT_NAME,
    APP_LABEL,
    APP_VALUE,
    GROUP,
    REGISTRY_CONFIGMAP,
    SESSION_LABEL,
    VERSION,
    service_name,
)

PLURAL = "agenticsessions"
REGISTRY_NAMESPACE = os.environ.get("REGISTRY_NAMESPACE", "ambient-code")
_ENVIRONMENT = PodEnvironment()
_REGISTRY = RegistryCache()
_state: dict[str, Any] = {"registry": None}
_phases: dict[tuple[str, str], str] = {}
"""The phase last written per session: a pod event that does not change it writes nothing."""
_phases_lock = threading.Lock()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.watching.connect_timeout = 5
    settings.networking.request_timeout = 30
    kubernetes.config.load_kube_config()
    _state["registry"] = _core().read_namespaced_config_map(
        REGISTRY_CONFIGMAP, REGISTRY_NAMESPACE, _preload_content=False).json()


def _core() -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api()


def _create(obj: dict[str, Any], namespace: str) -> None:
    create = {"Secret": _core().create_namespaced_secret, "Pod": _core().create_namespaced_pod,
              "Service": _core().create_namespaced_service}[obj["kind"]]
    try:
        create(namespace, obj, _preload_content=False)
    except kubernetes.client.ApiException as error:
        if error.status != 409:  # created by an earlier attempt of this handler
            raise


@kopf.on.create(GROUP, VERSION, PLURAL)
def create_children(body: kopf.Body, namespace: str | None, **_: Any) -> None:
    assert namespace, "AgenticSessions are namespaced"
    runtime = _REGISTRY.lookup(_state["registry"], runtime_id(body))
    for obj in _ENVIRONMENT.render(body, runtime, token=secrets.token_urlsafe(32)):
        kopf.adopt(obj, owner=body)
        _create(obj, namespace)


def _ready(pod: kopf.Body) -> bool:
    status = pod.get("status") or {}
    conditions = status.get("conditions") or ()
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@kopf.on.event("", "v1", "pods", labels={APP_LABEL: APP_VALUE})
def track_pod(event: kopf.RawEvent, body: kopf.Body, namespace: str | None,
              **_: Any) -> None:
    session = (body.get("metadata", {}).get("labels") or {}).get(SESSION_LABEL)
    if event["type"] == "DELETED" or not session or not namespace:
        return
    phase = "Running" if _ready(body) else "Creating"
    key = (namespace, session)
    with _phases_lock:
        if _phases.get(key) == phase:
            return
        _phases[key] = phase
    status: dict[str, Any] = {"phase": phase, "executionKind": "pod"}
    if phase == "Running":
        port = next(p["containerPort"] for p in body["spec"]["containers"][0]["ports"]
                    if p["name"] == AGUI_PORT_NAME)
        status["startTime"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        status["endpoint"] = f"http://{service_name(session)}.{namespace}.svc:{port}"
    try:
        kubernetes.client.CustomObjectsApi().patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, session, {"status": status},
            _preload_content=False)
    except kubernetes.client.ApiException as error:
        with _phases_lock:
            _phases.pop(key, None)
        if error.status != 404:  # the session is gone: nothing to track
            raise
