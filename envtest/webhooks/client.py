"""The webhook client: POST a review to an admission or conversion webhook, as kube-apiserver's
``webhookutil.ClientManager`` does, on the server's loop without ever blocking it.

:func:`post_review` sends an ``AdmissionReview`` or ``ConversionReview`` (JSON bytes made by
the caller) to the webhook's ``clientConfig`` and returns the decoded answer:

* ``url`` must be ``https://`` (kube refuses anything else); the TLS server name is its host;
* ``service`` (``namespace``, ``name``, ``path``, ``port`` default 443) is called as
  ``https://NAME.NAMESPACE.svc:PORT/PATH``, the server name ``NAME.NAMESPACE.svc``, and dialed
  where kube's endpoint resolution leads on this machine (:mod:`envtest.http.services`): a
  pod of its selector that a stand-in serves, or — a Service without a selector — a loopback
  address of its hand-written Endpoints object (how a test points a Service at a manager's
  webhook server on 127.0.0.1);
* the server certificate is verified against ``caBundle`` (base64 PEM), else the system's
  trust store;
* the query carries ``?timeout=Ns`` (the timeout rounded up to a second) as kube's does, and
  the whole exchange is bounded by ``asyncio.wait_for``.

Any failure — connection refused, TLS verification, timeout, a status other than 200, a body
that is not a JSON object — raises :class:`WebhookCallError` with the Go client's text, e.g.
``Post "https://127.0.0.1:9443/validate?timeout=10s": context deadline exceeded``. Callers
prefix what kube prefixes (``failed calling webhook "NAME": failed to call webhook: ``, or the
conversion's own words).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import math
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from envtest import errors
from envtest.cluster import Cluster
from envtest.http import services
from envtest.http.exchange import RawResponse, exchange, go_error

_UNKNOWN_AUTHORITY = frozenset({18, 19, 20, 21, 2})
"""OpenSSL verify codes meaning "not signed by a trusted CA" (self-signed, unknown issuer)."""
_STATUS_TEXTS = {
    400: "the server rejected our request for an unknown reason",
    401: "Unauthorized", 403: "forbidden: the server does not allow access to the resource",
    404: "the server could not find the requested resource", 405: "the server does not allow "
    "this method on the requested resource", 409: "the server reported a conflict",
    413: "the server rejected our request because it was too large",
    415: "the server responded with unsupported media type", 429: "the server has received "
    "too many requests and has asked us to try again later",
    503: "the server is currently unable to handle the request",
    504: "the server was unable to return a response in the time allotted, but may still be "
    "processing the request",
}
"""client-go's words for an answer that is not a Status (``NewGenericServerResponse``)."""


class WebhookCallError(Exception):
    """A webhook could not be called or did not answer usably; ``str()`` is Go's text."""


async def post_review(cluster: Cluster, client_config: Mapping[str, Any], body: bytes, *,
                      timeout: float) -> dict[str, Any]:
    """POST ``body`` to the webhook ``client_config`` names; its JSON answer."""
    parts = urlsplit(_url(client_config))
    query = f"timeout={max(1, math.ceil(timeout))}s"
    target = (parts.path or "/") + (f"?{parts.query}&{query}" if parts.query else f"?{query}")
    shown = f'Post "{parts.scheme}://{parts.netloc}{target}"'
    address = _address(cluster, client_config, parts.hostname or "", parts.port or 443, shown)
    head = (f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\nAccept: application/json, */*\r\n"
            "User-Agent: kube-apiserver-admission\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1")
    context = _tls_context(client_config, shown)
    try:
        answer = await asyncio.wait_for(exchange(
            address, head + body, ssl=context, server_hostname=parts.hostname), timeout)
    except TimeoutError as exc:
        raise WebhookCallError(f"{shown}: context deadline exceeded") from exc
    except ssl.SSLCertVerificationError as exc:
        raise WebhookCallError(f"{shown}: {_tls_error(exc, parts.hostname or '')}") from exc
    except ssl.SSLError as exc:
        raise WebhookCallError(f"{shown}: {_handshake_error(exc)}") from exc
    except (OSError, EOFError, ValueError) as exc:
        raise WebhookCallError(f"{shown}: {go_error(exc, _dialed(address))}") from exc
    return _decoded(answer)


def _url(config: Mapping[str, Any]) -> str:
    """The URL kube calls: ``url`` (https only), or ``https://NAME.NAMESPACE.svc:PORT/PATH``."""
    url = config.get("url")
    if url:
        parts = urlsplit(str(url))
        if parts.scheme != "https" or not parts.hostname:
            raise WebhookCallError(f'Post "{url}": unsupported protocol scheme '
                                   f'"{parts.scheme}" (webhooks are called over https)')
        return str(url)
    ref = config.get("service")
    if not isinstance(ref, Mapping) or not ref.get("name") or not ref.get("namespace"):
        raise WebhookCallError("the webhook's clientConfig names neither a url nor a service")
    path = "/" + str(ref.get("path") or "").lstrip("/")
    return (f"https://{ref['name']}.{ref['namespace']}.svc:{int(ref.get('port') or 443)}"
            f"{quote(path, safe='/:@!$&()*+,;=?')}")


def _address(cluster: Cluster, config: Mapping[str, Any], host: str, port: int,
             shown: str) -> tuple[str, int]:
    """Where to dial: the URL's host, or where the Service leads on this machine."""
    ref = config.get("service")
    if config.get("url") or not isinstance(ref, Mapping):
        return host, port
    try:
        backend = services.resolve(cluster, str(ref["namespace"]), str(ref["name"]), str(port))
    except errors.APIError as exc:
        raise WebhookCallError(f"{shown}: {exc.message}") from exc
    if backend.address is None:
        raise WebhookCallError(f"{shown}: dial tcp {backend.dialed}: connect: connection refused")
    return backend.address


def _tls_context(config: Mapping[str, Any], shown: str) -> ssl.SSLContext:
    try:
        return _context(str(config.get("caBundle") or ""))
    except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError) as exc:
        raise WebhookCallError(f"{shown}: unable to load root certificates: "
                               "unable to parse bytes as PEM block") from exc


@functools.lru_cache(maxsize=32)
def _context(bundle: str) -> ssl.SSLContext:
    """A client context trusting ``bundle`` (base64 PEM), else the system's store; made once
    per bundle (loading the system's store reads files: not on every call, on the loop)."""
    if not bundle:
        return ssl.create_default_context()
    pem = base64.b64decode(bundle, validate=True).decode("ascii")
    return ssl.create_default_context(cadata=pem)


def _tls_error(exc: ssl.SSLCertVerificationError, server_name: str) -> str:
    if exc.verify_code in _UNKNOWN_AUTHORITY:
        reason = "x509: certificate signed by unknown authority"
    elif exc.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH (IP mismatch: 64)
        reason = f"x509: certificate is not valid for {server_name}"
    elif exc.verify_code == 64:
        reason = f"x509: certificate is valid for other IP SANs, not {server_name}"
    elif exc.verify_code == 10:
        reason = "x509: certificate has expired or is not yet valid"
    else:
        reason = f"x509: {exc.verify_message}"
    return f"tls: failed to verify certificate: {reason}"


def _handshake_error(exc: ssl.SSLError) -> str:
    if exc.reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
        return "tls: first record does not look like a TLS handshake"
    return f"remote error: tls: {(exc.reason or str(exc)).lower().replace('_', ' ')}"


def _dialed(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _decoded(answer: RawResponse) -> dict[str, Any]:
    """The answer's JSON object; a non-200 status or another body is an error."""
    try:
        parsed = orjson.loads(answer.body)
    except orjson.JSONDecodeError as exc:
        parsed = None
        problem = f"couldn't get version/kind; json parse error: {exc}"
    else:
        problem = "" if isinstance(parsed, dict) else (
            "couldn't get version/kind; json parse error: the body is not a JSON object")
    if answer.status != 200:
        raise WebhookCallError(_status_text(answer.status, parsed, answer.body))
    if problem or not isinstance(parsed, dict):
        raise WebhookCallError(problem)
    return parsed


def _status_text(status: int, parsed: Any, body: bytes) -> str:
    """client-go's error for an answer that is not 2xx: a Status's message, else its words."""
    if isinstance(parsed, dict) and parsed.get("kind") == "Status" and parsed.get("message"):
        return str(parsed["message"])
    if status in _STATUS_TEXTS:
        return _STATUS_TEXTS[status]
    text = body.decode("utf-8", "replace").strip()
    if status >= 500 and text:
        return (f'an error on the server ("{text[:200]}") has prevented the request from '
                "succeeding")
    return f"an error on the server (\"unknown\") has prevented the request from succeeding " \
           f"(HTTP {status})"
