"""Calls to a session's runner: ``POST`` its AG-UI server with the session's token.

Upstream's operator dials ``http://session-<n>.<ns>.svc.cluster.local:<agui port>`` with the
header ``X-Ambient-Session-Token: <agui-token>`` and a 10 s timeout (``shared/
UPSTREAM-CONTRACT.md`` §4.15); that is the default here (``via="dns"``: the operator runs in
the cluster, in the backend's namespace, which the runners' NetworkPolicy admits). With
``via="apiserver"`` the same request goes through the API server's proxy of the session's
Service (``/api/v1/namespaces/<ns>/services/session-<n>:<port>/proxy/<path>``) — for an
operator outside the cluster network, and for tests against the local API server, which
proxies to a runner stand-in.

A call never raises: it answers None when the runner said 200, else what went wrong in
upstream's words ("Runner returned 500", "Failed to notify runner: ...").
"""

from __future__ import annotations

import logging
from typing import Literal

import orjson
import urllib3

from informers.errors import APIError, TransportError
from informers.rest import Transport

from .live import Call
from .resources import service_name

log = logging.getLogger(__name__)

Via = Literal["dns", "apiserver"]
TIMEOUT = 10.0
TOKEN_HEADER = "X-Ambient-Session-Token"


class RunnerClient:
    """Thread-safe; one per operator."""

    def __init__(self, transport: Transport, *, via: Via = "dns",
                 timeout: float = TIMEOUT) -> None:
        self._transport = transport
        self._via = via
        self._timeout = timeout
        self._pool = urllib3.PoolManager(num_pools=64, maxsize=2, retries=False,
                                         timeout=urllib3.Timeout(total=timeout))

    def url(self, namespace: str, session: str, port: int, path: str) -> str:
        """Where a call goes (for logs and tests)."""
        if self._via == "dns":
            return f"http://{service_name(session)}.{namespace}.svc.cluster.local:{port}{path}"
        return (f"/api/v1/namespaces/{namespace}/services/{service_name(session)}:{port}"
                f"/proxy{path}")

    def post(self, namespace: str, session: str, port: int, call: Call,
             token: str) -> str | None:
        """``POST`` ``call`` to the session's runner; None on 200, else the failure."""
        body = orjson.dumps(dict(call.body))
        headers = {"Content-Type": "application/json", TOKEN_HEADER: token}
        target = self.url(namespace, session, port, call.path)
        try:
            if self._via == "dns":
                status = self._pool.request("POST", target, body=body, headers=headers).status
            else:
                status = self._transport.request(
                    "POST", target, verb="POST", body=body, content_type="application/json",
                    headers={TOKEN_HEADER: token}, timeout=self._timeout).status
        except APIError as error:  # the proxy's answer for the runner's (or no runner)
            status = error.code
        except (TransportError, urllib3.exceptions.HTTPError) as error:
            log.warning("runner unreachable", extra={"url": target, "error": str(error)})
            return f"Failed to notify runner: {error}"
        if status != 200:
            log.warning("runner refused a call", extra={"url": target, "status": status})
            return f"Runner returned {status}"
        return None
