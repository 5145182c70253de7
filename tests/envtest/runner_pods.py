"""Runner pods shaped as the operator makes them, for the Service proxy and stand-in tests.

A session ``n`` gets the Secret ``ambient-runner-token-n`` (``agui-token``), a pod whose
``ambient-code-runner`` container declares the port ``agui`` (8001) and reads ``AGUI_TOKEN``
from that Secret, and the Service ``session-n`` selecting it on port ``agui``.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from envtest.http.proxy import proxy_path
from envtest.simulators import KubeletSimulator
from envtest.simulators.standin import STANDIN_ENV
from tests.conftest import RawClient

_sessions = itertools.count()


@pytest.fixture(scope="module")
def api() -> Iterator[LocalAPIServer]:
    """A local API server whose kubelet runs pods within a tenth of a second."""
    kubelet = KubeletSimulator(schedule_delay=0.01, start_delay=0.02, ready_delay=0.05)
    with LocalAPIServer(simulators=[kubelet]) as server:
        yield server


@pytest.fixture()
def session() -> str:
    """A session name of its own."""
    return f"s{next(_sessions)}"

Obj = dict[str, Any]
TOKEN = "agui-token-of-the-session"
PORT = 8001


def runner_pod(session: str, *, standin: bool = True, env: list[Obj] | None = None,
               annotations: dict[str, str] | None = None, **spec: Any) -> Obj:
    variables: list[Obj] = [
        {"name": "SESSION_ID", "value": session},
        {"name": "AGUI_TOKEN", "valueFrom": {"secretKeyRef": {
            "name": f"ambient-runner-token-{session}", "key": "agui-token"}}}]
    if standin:
        variables.append({"name": STANDIN_ENV, "value": "1"})
    container = {"name": "ambient-code-runner", "image": "quay.io/ambient_code/runner:latest",
                 "ports": [{"name": "agui", "containerPort": PORT, "protocol": "TCP"}],
                 "env": variables + (env or [])}
    meta: Obj = {"name": f"{session}-runner",
                 "labels": {"agentic-session": session, "app": "ambient-code-runner"}}
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"containers": [container], **spec}}


def runner_service(session: str, *, port_name: str = "agui", target: int | str = PORT) -> Obj:
    return {"metadata": {"name": f"session-{session}"},
            "spec": {"type": "ClusterIP",
                     "selector": {"agentic-session": session, "app": "ambient-code-runner"},
                     "ports": [{"name": port_name, "protocol": "TCP", "port": PORT,
                                "targetPort": target}]}}


def token_secret(session: str, token: str = TOKEN) -> Obj:
    return {"metadata": {"name": f"ambient-runner-token-{session}"},
            "data": {"agui-token": base64.b64encode(token.encode()).decode()}}


def create(client: RawClient, namespace: str, plural: str, body: Obj) -> Obj:
    status, created = client.post(f"/api/v1/namespaces/{namespace}/{plural}", body)
    assert status == 201, created
    return dict(created)


def create_runner(client: RawClient, namespace: str, session: str, **pod: Any) -> str:
    """Create a session's token Secret, Service and runner pod; returns the proxy path of the
    runner (``/api/v1/namespaces/NS/services/session-n:8001/proxy``)."""
    create(client, namespace, "secrets", token_secret(session))
    create(client, namespace, "services", runner_service(session))
    create(client, namespace, "pods", runner_pod(session, **pod))
    return proxy_path(namespace, f"session-{session}", PORT).rstrip("/")


def start_runner(client: RawClient, namespace: str, session: str, **pod: Any) -> str:
    """:func:`create_runner`, then wait until its stand-in answers through the proxy."""
    base = create_runner(client, namespace, session, **pod)
    eventually(lambda: client.get(f"{base}/health")[0] == 200, timeout=10,
               message=f"the runner of {session} did not answer through the proxy")
    return base


def ready_ip(client: RawClient, namespace: str, pod: str) -> str:
    """The pod's IP once it is Ready, else ""."""
    status = client.get(f"/api/v1/namespaces/{namespace}/pods/{pod}")[1].get("status") or {}
    ready = any(c["type"] == "Ready" and c["status"] == "True"
                for c in status.get("conditions") or ())
    return str(status.get("podIP", "")) if ready else ""


def requests_seen(client: RawClient, base: str) -> list[Obj]:
    status, body = client.get(f"{base}/_standin/requests")
    assert status == 200, body
    return list(body["requests"])
