"""The AgenticSession operator's pod path written with kopf 1.45: the peer in bench/operators.py.

It does the same job as ours for pod sessions under upstream's contract, the way kopf's
documentation does it, with our rendering so both make the same objects:

- ``@kopf.on.create`` on AgenticSessions: the runner's identity (``reconcilers.children``:
  ServiceAccount ``ambient-session-<n>``, its Role and RoleBinding), a TokenRequest for that
  ServiceAccount, the token Secret ``ambient-runner-token-<n>`` (``k8s-token``, ``agui-token``),
  the runner Pod ``<n>-runner`` (``reconcilers.pod.PodEnvironment().render`` with
  ``RunInputs``), the Service ``session-<n>`` owned by the Pod, the namespace's NetworkPolicy
  ``runner-allow-backend-only``, and the session's ``runner-token-secret`` / ``runner-sa``
  annotations — each created with the ``kubernetes`` client (a 409 from a retried handler is
  fine: the object is read instead where it is needed);
- ``@kopf.on.event`` on runner Pods (label ``app=ambient-code-runner``): track the pod's phase
  into the session's ``status`` (``Creating`` until the pod is Running and Ready, then
  ``Running`` with ``startTime`` and ``endpoint``), one merge patch to ``/status`` per change
  of the session's phase, as ours writes one per transition.

The agent registry is read once at startup (ours reads it from its informer cache), the
configuration from upstream's environment variables (``OperatorConfig.from_env``), as ours.
Handler results are not stored in status (the handlers return nothing); kopf keeps its own
progress in annotations. Responses of the ``kubernetes`` client are not turned into model objects
(``_preload_content=False``): a performance-aware author's choice, and in kopf's favour.

    KUBECONFIG=... python -m kopf run --standalone --all-namespaces bench/peers/kopf_sessions.py

kopf loads this file in its own process; the benchmark never imports it.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

import kopf
import kubernetes
import orjson

from informers.resource import PODS
from reconcilers import children
from reconcilers.config import OperatorConfig
from reconcilers.environment import RunInputs
from reconcilers.pod import PodEnvironment
from reconcilers.registry import RegistryCache, runtime_id
from reconcilers.resources import (
    AGUI_PORT_NAME,
    APP_LABEL,
    GROUP,
    REGISTRY_CONFIGMAP,
    RUNNER_APP,
    RUNNER_SA,
    RUNNER_TOKEN_SECRET,
    SESSION_LABEL,
    VERSION,
    runner_name,
    service_account_name,
    service_name,
    token_secret_name,
)

PLURAL = "agenticsessions"
REGISTRY_NAMESPACE = os.environ.get("REGISTRY_NAMESPACE", "ambient-code")
CONFIG = OperatorConfig.from_env(os.environ)
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


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _create(create: Callable[..., Any], read: Callable[..., Any] | None, obj: dict[str, Any],
            namespace: str) -> dict[str, Any]:
    """Create ``obj``; the stored object (read back when an earlier attempt made it)."""
    try:
        return dict(orjson.loads(create(namespace, obj, _preload_content=False).data))
    except kubernetes.client.ApiException as error:
        if error.status != 409:  # created by an earlier attempt of this handler
            raise
        if read is None:
            return obj
        return dict(orjson.loads(read(obj["metadata"]["name"], namespace,
                                      _preload_content=False).data))


@kopf.on.create(GROUP, VERSION, PLURAL)
def start_run(body: kopf.Body, namespace: str | None, **_: Any) -> None:
    assert namespace, "AgenticSessions are namespaced"
    session = {"metadata": dict(body["metadata"]), "spec": dict(body.get("spec") or {})}
    name = session["metadata"]["name"]
    runtime = _REGISTRY.lookup(_state["registry"], runtime_id(session))
    core, rbac = _core(), kubernetes.client.RbacAuthorizationV1Api()
    # The runner's identity and its token (upstream provisions them before the Pod).
    _create(core.create_namespaced_service_account, None, children.service_account(session),
            namespace)
    _create(rbac.create_namespaced_role, None, children.role(session), namespace)
    _create(rbac.create_namespaced_role_binding, None, children.role_binding(session),
            namespace)
    answer = core.create_namespaced_service_account_token(
        service_account_name(name), namespace, {"spec": {}}, _preload_content=False)
    secret = children.token_secret(session, k8s_token=orjson.loads(answer.data)["status"]["token"],
                                   agui_token=str(uuid.uuid4()), refreshed_at=_now())
    _create(core.create_namespaced_secret, None, secret, namespace)
    # The runner Pod, rendered as ours renders it, and its Service (owned by the Pod).
    inputs = RunInputs(config=CONFIG, token_secret=token_secret_name(name), run_started=_now())
    pod = _create(core.create_namespaced_pod, core.read_namespaced_pod,
                  _ENVIRONMENT.render(session, runtime, inputs)[0], namespace)
    _create(core.create_namespaced_service, None,
            children.service(session, pod, PODS, runtime.port), namespace)
    _create(kubernetes.client.NetworkingV1Api().create_namespaced_network_policy, None,
            children.network_policy(namespace, CONFIG.backend_namespace), namespace)
    kubernetes.client.CustomObjectsApi().patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name,
        {"metadata": {"annotations": {RUNNER_TOKEN_SECRET: token_secret_name(name),
                                      RUNNER_SA: service_account_name(name)}}},
        _preload_content=False)


def _ready(pod: kopf.Body) -> bool:
    status = pod.get("status") or {}
    conditions = status.get("conditions") or ()
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@kopf.on.event("", "v1", "pods", labels={APP_LABEL: RUNNER_APP})
def track_pod(event: kopf.RawEvent, body: kopf.Body, namespace: str | None,
              **_: Any) -> None:
    session = (body.get("metadata", {}).get("labels") or {}).get(SESSION_LABEL)
    if event["type"] == "DELETED" or not session or not namespace \
            or body["metadata"]["name"] != runner_name(session):
        return
    phase = "Running" if _ready(body) else "Creating"
    key = (namespace, session)
    with _phases_lock:
        if _phases.get(key) == phase:
            return
        _phases[key] = phase
    status: dict[str, Any] = {"phase": phase, "executionKind": "pod"}
    if phase == "Running":
        port = next(p["containerPort"] for c in body["spec"]["containers"]
                    for p in c.get("ports") or () if p["name"] == AGUI_PORT_NAME)
        status["startTime"] = _now()
        status["endpoint"] = (f"http://{service_name(session)}.{namespace}.svc.cluster.local:"
                              f"{port}")
    try:
        kubernetes.client.CustomObjectsApi().patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, session, {"status": status},
            _preload_content=False)
    except kubernetes.client.ApiException as error:
        with _phases_lock:
            _phases.pop(key, None)
        if error.status != 404:  # the session is gone: nothing to track
            raise
