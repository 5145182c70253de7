"""Scraping the operator's secure /metrics as Prometheus does: a ServiceAccount token sent as a
bearer token over HTTPS, the operator's self-signed certificate not verified (the
ServiceMonitor's ``insecureSkipVerify``).

:func:`scraper_token` makes the account with the official python client, binds it to the
ClusterRole config/rbac ships for scrapers (or not, for a scraper that should be refused) and
mints its token through the TokenRequest API, as the kubelet mounts one for Prometheus.
"""

from __future__ import annotations

import http.client
import ssl
from urllib.parse import urlsplit

from kubernetes import client

READER_ROLE = "agenticsession-operator-metrics-reader"
"""config/rbac/metrics_reader_role.yaml: get on the non-resource URL /metrics."""


def scraper_token(api: client.ApiClient, namespace: str, name: str, *,
                  role: str | None = READER_ROLE) -> str:
    """A token of the new ServiceAccount ``namespace/name``, bound cluster-wide to ``role``
    (None: bound to nothing)."""
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    if role is not None:
        client.RbacAuthorizationV1Api(api).create_cluster_role_binding({
            "metadata": {"name": f"{role}-{namespace}-{name}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]})
    request = core.create_namespaced_service_account_token(
        name, namespace, client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[])))
    return str(request.status.token)


def https_get(url: str, token: str | None = None) -> tuple[int, str]:
    """GET ``url`` (``https://host:port/path``) with the bearer token, the certificate not
    verified; (status, body)."""
    parts = urlsplit(url)
    assert parts.scheme == "https", url
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    connection = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=10,
                                             context=context)
    try:
        connection.request("GET", parts.path or "/",
                           headers={"Authorization": f"Bearer {token}"} if token else {})
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()
