"""The webhook server: admission and conversion reviews over HTTPS, routed by path.

As controller-runtime's ``webhook.Server``: one HTTPS listener (``:9443`` in a cluster) on
every replica — the API server calls whichever Pod the Service picks, leader or not — with
the routes of :mod:`.registry`. What it guarantees:

* only ``POST`` with ``Content-Type: application/json`` and a body of at most ``max_body``
  bytes (controller-runtime's 7 MiB: an object and its old version at kube's 3 MiB each) is
  handled; other methods answer 405, a larger body 413 unread, an unknown path 404;
* an admission review that cannot be read answers a review with ``allowed: false`` and code
  400 (as controller-runtime); a conversion review that cannot be read answers HTTP 400;
* a handler that raises is logged once and answers as :mod:`.admission` and
  :mod:`.conversion` say; no thread dies of it. A handler slower than its webhook's
  ``timeoutSeconds`` is logged at WARNING: the API server stopped waiting for it;
* every request to a registered path is counted in controller-runtime's families
  (:mod:`metrics.webhook`: requests by code, latency, in flight);
* HTTP/1.1 with keep-alive (the API server reuses its connections: no TLS handshake per
  review); a silent connection is cut after ``request_timeout`` seconds; a stop closes idle
  connections at once, lets requests in flight finish until ``shutdown_timeout``, then cuts
  them and joins every thread.

Certificates (``metrics.tls.ServingCertificate``): from ``cert_dir`` (``tls.crt``,
``tls.key``, a cert-manager Secret mount) reloaded when they change, or — no ``cert_dir`` —
a **development** pair made at start: a CA and a serving certificate it signs for
``dev_hosts`` and ``dev_ips``, written to a private temporary directory removed at stop. The
CA is :attr:`WebhookServer.ca_bundle`, what a configuration's ``caBundle`` needs
(:mod:`.configuration` writes it); with ``cert_dir`` it is the directory's ``ca.crt`` when
there is one (cert-manager writes it).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from foundation.certs import certificate_authority, issue
from foundation.clock import RealClock
from foundation.httpserver import Acceptor, Listener, Response
from metrics.server import parse_address
from metrics.tls import ServingCertificate
from metrics.webhook import WebhookMetrics

from . import admission, conversion
from .registry import CONVERT_PATH, AdmissionHook, Webhooks

log = logging.getLogger(__name__)

DEFAULT_ADDRESS = "127.0.0.1:9443"
"""controller-runtime's webhook port, on loopback unless told otherwise."""
IN_CLUSTER_ADDRESS = ":9443"
MAX_BODY = 7 * 1024 * 1024
"""controller-runtime's limit on a review's size."""
CONVERSION_TIMEOUT = 30
"""Seconds kube-apiserver waits for a conversion webhook."""


@dataclass(frozen=True, slots=True)
class WebhookServerOptions:
    """Where and how the webhook server listens."""

    address: str = DEFAULT_ADDRESS
    """``host:port`` (``:9443`` = all IPv4 interfaces; port 0 = any free port)."""
    cert_dir: str = ""
    """Directory of ``cert_name`` and ``key_name`` (and ``ca.crt``), reloaded when they
    change; empty: a development CA and certificate made at start."""
    cert_name: str = "tls.crt"
    key_name: str = "tls.key"
    dev_hosts: tuple[str, ...] = ("localhost",)
    """DNS names of the development certificate (add ``<service>.<namespace>.svc`` to be
    called through a Service)."""
    dev_ips: tuple[str, ...] = ("127.0.0.1", "::1")
    request_timeout: float = 10.0
    """Seconds a connection may stay silent before it is cut."""
    shutdown_timeout: float = 5.0
    max_body: int = MAX_BODY


def _json(status: int, body: Any) -> Response:
    return Response(status, (("Content-Type", "application/json"),), orjson.dumps(body))


def _text(status: int, message: str, *extra: tuple[str, str]) -> Response:
    return Response(status, (("Content-Type", "text/plain; charset=utf-8"),
                             ("X-Content-Type-Options", "nosniff"), *extra),
                    (message + "\n").encode())


class _Routes:
    """What the listener serves: the registered admission webhooks and ``/convert``."""

    def __init__(self, webhooks: Webhooks, metrics: WebhookMetrics | None) -> None:
        self._webhooks = webhooks
        self._metrics = metrics
        self._clock = RealClock()

    def answer(self, method: str, target: str, headers: Message, body: bytes) -> Response:
        path = urlsplit(target).path
        hook = self._webhooks.admission.get(path)
        if hook is None and not (path == CONVERT_PATH and self._webhooks.conversions):
            return _text(404, "404 page not found")
        if self._metrics is not None:
            self._metrics.started(path)
        started = self._clock.monotonic()
        status = 500
        try:
            response = self._serve(method, hook, headers, body)
            status = response.status
            return response
        finally:
            elapsed = self._clock.monotonic() - started
            if self._metrics is not None:
                self._metrics.answered(path, status, elapsed)
            limit = hook.options.timeout_seconds if hook is not None else CONVERSION_TIMEOUT
            if elapsed > limit:
                log.warning("webhook answered after the API server stopped waiting",
                            extra={"path": path, "seconds": round(elapsed, 3),
                                   "timeout_seconds": limit})

    def _serve(self, method: str, hook: AdmissionHook | None, headers: Message,
               body: bytes) -> Response:
        if method != "POST":
            return _text(405, f"{method} is not allowed: webhooks take POST", ("Allow", "POST"))
        problem, parsed = _read(headers, body)
        if hook is not None:
            if problem:
                log.warning("malformed admission review", extra={"path": hook.path,
                                                                 "error": problem})
                return _json(200, admission.response("", admission.Answer(
                    False, code=400, message=problem)))
            return _json(200, admission.review(parsed, hook.handler, name=hook.name))
        if not problem:
            try:
                return _json(200, conversion.review(parsed, self._webhooks.converters()))
            except ValueError as error:
                problem = str(error)
        log.warning("malformed conversion review", extra={"error": problem})
        return _text(400, problem)


def _read(headers: Message, body: bytes) -> tuple[str, Any]:
    """``(problem, parsed body)``: a problem when the request is not JSON."""
    if headers.get_content_type() != "application/json":
        return (f"contentType={headers.get('Content-Type')}, expected application/json",
                None)
    if not body:
        return "request body is empty", None
    try:
        return "", orjson.loads(body)
    except orjson.JSONDecodeError as error:
        return f"the request body is not JSON: {error}", None


class WebhookServer:
    """Serves :class:`~.registry.Webhooks` over HTTPS; started and stopped by its owner (the
    manager, on every replica, before the caches sync: conversions may be needed to list)."""

    def __init__(self, webhooks: Webhooks,
                 options: WebhookServerOptions = WebhookServerOptions(), *,
                 metrics: WebhookMetrics | None = None) -> None:
        self.webhooks = webhooks
        self.options = options
        self.metrics = metrics
        """``controller_runtime_webhook_*`` (None: not recorded)."""
        self.certificate: ServingCertificate | None = None
        self._ca_bundle: bytes | None = None
        self._dev_dir: str | None = None
        self._acceptor = Acceptor("webhook-server")
        self._listener: Listener | None = None
        self._started = False

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)`` once started."""
        if self._listener is None:
            raise RuntimeError("the webhook server is not running")
        return self._listener.bound

    @property
    def url(self) -> str:
        """``https://host:port`` of the listener (a wildcard host becomes loopback)."""
        host, port = self.address
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"

    @property
    def cert_dir(self) -> str:
        """The directory the certificate is served from (the development one, if made)."""
        return self.options.cert_dir or self._dev_dir or ""

    @property
    def ca_bundle(self) -> bytes | None:
        """PEM of the CA that signed the serving certificate, for a configuration's
        ``caBundle``: the development CA, or ``cert_dir``'s ``ca.crt`` (read now: rotated
        CAs show), or None when the directory has none."""
        if self._ca_bundle is not None:
            return self._ca_bundle
        ca = Path(self.options.cert_dir, "ca.crt")
        return ca.read_bytes() if self.options.cert_dir and ca.is_file() else None

    def start(self) -> WebhookServer:
        """Load (or make) the certificate, bind (errors are raised here) and serve."""
        if self._started:
            raise RuntimeError("the webhook server was already started (make a new one)")
        self._started = True
        address = parse_address(self.options.address)
        if address is None:
            raise ValueError("the webhook server needs an address")
        try:
            self.certificate = self._certificate()
            self._listener = Listener(address, routes=_Routes(self.webhooks, self.metrics),
                                      dispatch=self._acceptor.workers,
                                      request_timeout=self.options.request_timeout,
                                      tls=self.certificate.context,
                                      max_body=self.options.max_body, keep_alive=True)
            self._acceptor.start([self._listener])
        except BaseException:
            self._close()
            raise
        log.info("webhook server started", extra={
            "address": self.url, "webhooks": sorted(self.webhooks.admission),
            "conversions": sorted(f"{k}.{g}" for g, k in self.webhooks.conversions),
            "certificate": self.options.cert_dir or "development CA"})
        return self

    def _certificate(self) -> ServingCertificate:
        opts = self.options
        if opts.cert_dir:
            return ServingCertificate(os.path.join(opts.cert_dir, opts.cert_name),
                                      os.path.join(opts.cert_dir, opts.key_name))
        ca = certificate_authority("ambient-ctrl-webhook-ca")
        pair = issue(ca, "ambient-ctrl-webhook", opts.dev_hosts, opts.dev_ips)
        self._dev_dir = tempfile.mkdtemp(prefix="ambient-ctrl-webhook-")
        for name, pem in ((opts.cert_name, pair.cert_pem), (opts.key_name, pair.key_pem),
                          ("ca.crt", ca.cert_pem)):
            fd = os.open(os.path.join(self._dev_dir, name),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
        self._ca_bundle = ca.cert_pem
        return ServingCertificate(os.path.join(self._dev_dir, opts.cert_name),
                                  os.path.join(self._dev_dir, opts.key_name))

    def check(self) -> None:
        """A readiness check: raises unless the server accepts connections."""
        if not self._acceptor.alive():
            raise RuntimeError("the webhook server is not serving")

    def stop(self, timeout: float | None = None) -> None:
        """Stop listening, let requests in flight finish, join every thread; idempotent."""
        budget = self.options.shutdown_timeout if timeout is None else timeout
        self._acceptor.stop(budget, self._close)

    def _close(self) -> None:
        if self._listener is not None:
            self._listener.server_close()
            self._listener = None
        if self._dev_dir is not None:
            shutil.rmtree(self._dev_dir, ignore_errors=True)
            self._dev_dir = None

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
