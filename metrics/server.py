"""One HTTP server for ``/metrics``, ``/healthz`` and ``/readyz``.

Like a controller-runtime manager it listens on two addresses: the metrics address serves
``/metrics``, the probe address serves ``/healthz`` and ``/readyz`` (and their ``/<check>``
sub-paths). Give both the same address (with a fixed port) to serve everything from one port;
give ``"0"`` to turn one off.

``/metrics`` answers in Prometheus text format, or in OpenMetrics when the scraper's ``Accept``
asks for ``application/openmetrics-text`` (Prometheus does), gzip-compressed when accepted.

Secure metrics (controller-runtime's ``SecureServing`` with ``FilterProvider``): with
``ServerOptions.metrics_secure`` the metrics listener speaks HTTPS (:mod:`.tls`: a certificate
from files, reloaded when they change, or a self-signed one), and with an
:class:`~metrics.access.AccessFilter` every ``/metrics`` request must carry a bearer token the
API server authenticates and authorizes (:mod:`.access`: 401, 403, or 500 when it cannot
tell). Probes stay plain HTTP and open on their own listener, as the kubelet calls them; a
secure metrics listener cannot share their address.

Threads: :meth:`ObservabilityServer.start` starts one acceptor thread for all listeners, and
each connection is served on a short-lived thread of its own, so a slow scrape never delays a
kubelet probe. :meth:`ObservabilityServer.stop` closes the listeners, lets requests in flight
finish until the deadline, then cuts their connections, and joins every thread it started.
"""

from __future__ import annotations

import gzip
import logging
import posixpath
from dataclasses import dataclass
from email.message import Message
from urllib.parse import parse_qs, urlsplit

from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.registry import Collector

from foundation.httpserver import Acceptor, Listener, Response

from .access import AccessFilter
from .health import Answer, HealthChecks
from .tls import ServingCertificate

log = logging.getLogger(__name__)

DEFAULT_METRICS_ADDRESS = "127.0.0.1:8080"
"""Where metrics are served unless told otherwise: controller-runtime's port, on loopback, so
running the operator on a laptop or in a test exposes nothing to the network."""
DEFAULT_PROBE_ADDRESS = "127.0.0.1:8081"
"""Where probes are served unless told otherwise (loopback, as above)."""
DEFAULT_SECURE_METRICS_ADDRESS = "127.0.0.1:8443"
"""Where secure metrics are served unless told otherwise: kubebuilder's HTTPS metrics port."""
IN_CLUSTER_METRICS_ADDRESS = ":8080"
"""controller-runtime's metrics address (all interfaces): what the operator's entry point passes
when it runs in a Pod, so Prometheus can reach it."""
IN_CLUSTER_PROBE_ADDRESS = ":8081"
"""controller-runtime's conventional probe address (all interfaces), reachable by the kubelet."""
DISABLED = "0"
"""The address that turns a listener off (controller-runtime's convention)."""


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Where and how the observability server listens."""

    metrics_address: str = DEFAULT_METRICS_ADDRESS
    """``host:port`` for ``/metrics`` (``:port`` = all IPv4 interfaces, ``[::1]:port`` for IPv6,
    port 0 = any free port, ``"0"`` = off)."""
    probe_address: str = DEFAULT_PROBE_ADDRESS
    """``host:port`` for ``/healthz`` and ``/readyz``, same forms; equal to ``metrics_address``
    (with a fixed port) to share one listener."""
    request_timeout: float = 10.0
    """Seconds a connection may stay silent (reading the request, writing the answer) before
    it is dropped; bounds what a stuck client can hold."""
    shutdown_timeout: float = 5.0
    """Seconds :meth:`ObservabilityServer.stop` lets requests in flight finish."""
    metrics_secure: bool = False
    """Serve ``/metrics`` over HTTPS (:mod:`.tls`)."""
    metrics_cert_file: str = ""
    """PEM certificate chain of the HTTPS listener, reloaded when it changes; with
    ``metrics_key_file``. Neither: a self-signed certificate made at start."""
    metrics_key_file: str = ""
    """PEM private key of ``metrics_cert_file``."""


def parse_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``host:port`` address, or ``None`` for a disabled one."""
    if address in ("", DISABLED):
        return None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{address!r} is not a host:port address")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{address!r}: write an IPv6 host in brackets, e.g. [::1]:8080")
    return host, int(port)


def _url(host: str, port: int, scheme: str = "http") -> str:
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _text(answer: Answer) -> Response:
    return Response(answer.status, (("Content-Type", "text/plain; charset=utf-8"),
                                     ("X-Content-Type-Options", "nosniff")),
                     answer.body.encode())


_NOT_FOUND = Answer(404, "404 page not found\n")


class _Routes:
    """What one listener serves: ``/metrics`` if it has a registry, probes if it has checks."""

    def __init__(self, *, registry: Collector | None, probes: tuple[HealthChecks, ...],
                 access: AccessFilter | None = None) -> None:
        self._registry = registry
        self._probes = {f"/{checks.endpoint}": checks for checks in probes}
        self._access = access

    def answer(self, method: str, target: str, headers: Message, body: bytes = b"") -> Response:
        parts = urlsplit(target)
        path = posixpath.normpath(parts.path or "/")
        if path == "/metrics" and self._registry is not None:
            if self._access is not None:
                refusal = self._access.check(method, path, headers.get("Authorization"))
                if refusal is not None:
                    return _text(Answer(refusal.status, refusal.message + "\n"))
            return self._metrics(self._registry, headers)
        root, _, name = path[1:].partition("/")
        checks = self._probes.get(f"/{root}")
        if checks is None:
            return _text(_NOT_FOUND)
        if name:
            return _text(checks.single(name) or _NOT_FOUND)
        query = parse_qs(parts.query, keep_blank_values=True)
        return _text(checks.aggregate(verbose="verbose" in query,
                                      exclude=query.get("exclude", ())))

    @staticmethod
    def _metrics(registry: Collector, headers: Message) -> Response:
        encoder, content_type = choose_encoder(headers.get("Accept", ""))
        try:
            body = encoder(registry)
        except Exception:
            log.exception("collecting metrics failed")
            return _text(Answer(500, "collecting metrics failed\n"))
        response_headers = [("Content-Type", content_type)]
        if gzip_accepted(headers.get("Accept-Encoding", "")):
            body = gzip.compress(body)
            response_headers.append(("Content-Encoding", "gzip"))
        return Response(200, tuple(response_headers), body)


class ObservabilityServer:
    """Serves a registry on ``/metrics`` and named checks on ``/healthz`` and ``/readyz``.

    Owned by the manager (or a test), which registers checks and calls :meth:`start` and
    :meth:`stop`, or uses it as a context manager::

        with ObservabilityServer(registry, options=ServerOptions(
                metrics_address="127.0.0.1:0", probe_address="127.0.0.1:0")) as server:
            server.readyz.add("informers-synced", factory.check_synced)
            ...  # scrape server.metrics_url + "/metrics"
    """

    def __init__(self, registry: Collector, *, options: ServerOptions = ServerOptions(),
                 healthz: HealthChecks | None = None,
                 readyz: HealthChecks | None = None,
                 metrics_access: AccessFilter | None = None) -> None:
        self.registry = registry
        self.options = options
        self.metrics_access = metrics_access
        """Who may read ``/metrics`` (None: anyone who reaches the listener)."""
        self.certificate: ServingCertificate | None = None
        """The secure metrics listener's certificate, once started."""
        self.healthz = healthz if healthz is not None else HealthChecks("healthz")
        """Liveness checks; add with ``server.healthz.add(name, check)``."""
        self.readyz = readyz if readyz is not None else HealthChecks("readyz")
        """Readiness checks; add with ``server.readyz.add(name, check)``."""
        self._acceptor = Acceptor("observability-server")
        self._listeners: list[Listener] = []
        self._by_role: dict[str, Listener] = {}
        self._started = False

    # -- addresses ------------------------------------------------------------------------------
    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """The bound ``(host, port)`` of ``/metrics`` once started (``None`` if off)."""
        return self._bound("metrics")

    @property
    def probe_address(self) -> tuple[str, int] | None:
        """The bound ``(host, port)`` of the probes once started (``None`` if off)."""
        return self._bound("probes")

    @property
    def metrics_url(self) -> str:
        """``http[s]://host:port`` of the metrics listener (a wildcard host becomes
        loopback)."""
        return _url(*self._require("metrics"),
                    scheme="https" if self.options.metrics_secure else "http")

    @property
    def probe_url(self) -> str:
        """``http://host:port`` of the probe listener (a wildcard host becomes loopback)."""
        return _url(*self._require("probes"))

    def _bound(self, role: str) -> tuple[str, int] | None:
        listener = self._by_role.get(role)
        return None if listener is None else listener.bound

    def _require(self, role: str) -> tuple[str, int]:
        address = self._bound(role)
        if address is None:
            raise RuntimeError(f"the {role} listener is not running")
        return address

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> ObservabilityServer:
        """Bind the listeners (errors such as a port in use are raised here) and start
        serving."""
        if self._started:
            raise RuntimeError("the observability server was already started (it is not "
                               "restartable: make a new one)")
        self._started = True
        try:
            self._bind(parse_address(self.options.metrics_address),
                       parse_address(self.options.probe_address))
            self._acceptor.start(self._listeners)
        except BaseException:
            self._close_listeners()
            raise
        return self

    def _bind(self, metrics: tuple[str, int] | None, probes: tuple[str, int] | None) -> None:
        probe_checks = (self.healthz, self.readyz)
        shared = metrics is not None and metrics == probes and metrics[1] != 0
        secure = self.options.metrics_secure and metrics is not None
        if shared and secure:
            raise ValueError("secure metrics cannot share the probes' address: the kubelet "
                             "probes over plain HTTP (give the probes their own port)")
        if secure:  # before binding: a certificate that cannot be loaded stops the start
            self.certificate = ServingCertificate(self.options.metrics_cert_file or None,
                                                  self.options.metrics_key_file or None)
        access = self.metrics_access
        plan: list[tuple[tuple[str, ...], tuple[str, int], _Routes]] = []
        if shared:
            assert metrics is not None
            plan.append((("metrics", "probes"), metrics,
                         _Routes(registry=self.registry, probes=probe_checks, access=access)))
        else:
            if metrics is not None:
                plan.append((("metrics",), metrics,
                             _Routes(registry=self.registry, probes=(), access=access)))
            if probes is not None:
                plan.append((("probes",), probes, _Routes(registry=None, probes=probe_checks)))
        for roles, address, routes in plan:
            tls = self.certificate.context if self.certificate and "metrics" in roles else None
            listener = Listener(address, routes=routes, dispatch=self._acceptor.workers,
                                 request_timeout=self.options.request_timeout, tls=tls)
            self._listeners.append(listener)
            for role in roles:
                self._by_role[role] = listener
            log.info("observability listener started",
                     extra={"roles": roles, "address": _url(*listener.bound,
                                                             scheme="https" if tls else "http"),
                            "authenticated": "metrics" in roles and access is not None})

    def stop(self, timeout: float | None = None) -> None:
        """Stop listening, let requests in flight finish for up to ``timeout`` seconds
        (default ``options.shutdown_timeout``), then cut what remains and join every thread
        (waiting at most one more second). Idempotent."""
        budget = self.options.shutdown_timeout if timeout is None else timeout
        self._acceptor.stop(budget, self._close_listeners)

    def _close_listeners(self) -> None:
        for listener in self._listeners:
            listener.server_close()
        self._listeners.clear()
        self._by_role.clear()

    def __enter__(self) -> ObservabilityServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

