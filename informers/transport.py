"""The HTTP transport to one API server: configuration, requests, retries, watches' streams.

The ``kubernetes`` package is used for what it does well and nothing else: loading kubeconfig or
in-cluster configuration (TLS, client certificates, bearer tokens with their refresh, proxies)
and the sockets of its urllib3 pool. Whole answers are read by :mod:`informers.http1`, streamed
ones (watches) by urllib3; bodies are bytes, parsed with orjson by the callers.

A request answered 429, or 5xx with a Retry-After, is sent again after the Retry-After, up to
``TransportOptions.max_retries`` times, whatever its verb — as client-go's ``rest`` client does
(``checkWait``: the server asked us to come back later; it did not act on the request). Not a
watch (its reflector owns its retries), not a wait longer than ``max_retry_after`` (a worker
thread is not parked for minutes: the error, carrying its ``retry_after``, goes to the
caller's retry owner — the controller's queue waits at least that long), never past the
request's own ``timeout``, never once the transport is closing, and never for "Too large
resource version" (a 504 with Retry-After: 1 that is no "later" but a version the server has
not reached — client-go's reflector spent 40 s retrying it before it relisted). The write
guard is asked again before each attempt (leadership may have been lost while waiting).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import orjson
import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from foundation.clock import Clock, RealClock

from . import http1
from .apiwarnings import WarningHandler, WarningLogger, parse_warning_headers
from .errors import (
    APIError,
    ServerError,
    TooManyRequests,
    TransportError,
    error_from,
    too_large_resource_version,
)
from .rawjson import parse_object_without_managed_fields

log = logging.getLogger(__name__)

JSON = "application/json"
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
USER_AGENT = "ambient-ctrl/0.1"


SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
"""The token of the pod's service account (projected and rotated: it is re-read as it ages)."""
SERVICE_ACCOUNT_CA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
"""The cluster CA bundle mounted beside the token."""
DEFAULT_KUBECONFIG = "~/.kube/config"


def load_configuration(kubeconfig: str | None = None, *,
                       context: str | None = None) -> k8s_client.Configuration:
    """Configuration from the first source that applies, in controller-runtime's order:

    1. ``kubeconfig`` (the ``--kubeconfig`` flag);
    2. ``$KUBECONFIG`` (a path, or several joined by ``os.pathsep`` and merged as kubectl
       merges them);
    3. the in-cluster service account, when ``KUBERNETES_SERVICE_HOST`` is set and the token
       file (:data:`SERVICE_ACCOUNT_TOKEN`) exists — so a pod whose image happens to contain
       a ``~/.kube/config`` still talks to its own cluster as its own service account;
    4. ``~/.kube/config``.

    ``context`` picks a kubeconfig context (ignored in-cluster). Raises
    ``kubernetes.config.ConfigException`` when no source applies or the chosen one is invalid.
    """
    configuration = k8s_client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if not path and os.environ.get("KUBERNETES_SERVICE_HOST") \
            and os.path.isfile(SERVICE_ACCOUNT_TOKEN):
        k8s_config.incluster_config.InClusterConfigLoader(
            token_filename=SERVICE_ACCOUNT_TOKEN, cert_filename=SERVICE_ACCOUNT_CA,
        ).load_and_set(configuration)
        return configuration
    if not path:
        path = os.path.expanduser(DEFAULT_KUBECONFIG)
        if not os.path.exists(path):
            raise k8s_config.ConfigException(
                "no cluster configuration: pass --kubeconfig, set $KUBECONFIG, run in a pod "
                f"with a service account, or create {DEFAULT_KUBECONFIG}")
    k8s_config.load_kube_config(config_file=path, context=context,
                                client_configuration=configuration)
    return configuration


Answer = urllib3.BaseHTTPResponse | http1.Response
"""A whole answer: ``status``, ``headers`` (``get``, ``getlist``) and ``data``."""


class RequestObserver(Protocol):
    """Told about every request (metrics hook): verb, HTTP method, host, code, duration."""

    def observe(self, *, verb: str, method: str, host: str, code: str,
                seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """Settings of the shared HTTP transport."""

    pool_size: int = 16
    """Connections kept per host: at least the number of threads sharing the transport."""
    timeout: float = 30.0
    """Seconds to connect and to wait for each read of an ordinary request."""
    user_agent: str = USER_AGENT
    """The User-Agent header (``product/version``): how audit logs and the API server's
    per-client accounting tell this client from others."""
    max_retries: int = 10
    """Times a request answered 429 (or 5xx) with a Retry-After is sent again after it
    (client-go's default); 0 to raise at once."""
    max_retry_after: float = 10.0
    """The longest Retry-After waited for here; a longer one is raised to the caller."""


WriteGuard = Callable[[str, str], None]
"""Called with (method, path) before every request that is not a GET; raises to refuse it
(the manager refuses writes once it may no longer be the leader)."""


class Transport:
    """HTTP to one API server through the kubernetes client's configured urllib3 pool.

    Thread-safe; one per process is enough (its pool is sized for the threads sharing it).
    """

    def __init__(self, configuration: k8s_client.Configuration, *,
                 options: TransportOptions = TransportOptions(),
                 observer: RequestObserver | None = None, clock: Clock | None = None,
                 write_guard: WriteGuard | None = None,
                 warning_handler: WarningHandler | None = None) -> None:
        configuration.connection_pool_maxsize = options.pool_size
        configuration.retries = False  # one retry owner: the caller (reflector, workqueue)
        self._api = k8s_client.ApiClient(configuration)
        self._pool: urllib3.PoolManager = self._api.rest_client.pool_manager
        self._host = configuration.host.rstrip("/")
        self._options = options
        self._observer = observer
        self._clock = clock or RealClock()
        self.write_guard = write_guard
        """Consulted before every non-GET request (see :data:`WriteGuard`); None: no guard."""
        self.host = urllib3.util.parse_url(self._host).netloc or self._host
        self._base_path = urllib3.util.parse_url(self._host).path or ""
        self._direct: urllib3.HTTPConnectionPool | None = None
        self._lean: http1.ConnectionPool | None = None
        self._lean_lock = threading.Lock()
        self._auth: tuple[float, dict[str, str]] | None = None
        """The auth headers and when the client's configuration was asked for them."""
        self._closing = threading.Event()
        self.warning_handler: WarningHandler = warning_handler or WarningLogger()
        """Given every ``Warning`` of every response (see ``informers.apiwarnings``); by
        default each distinct text is logged once."""

    def close(self) -> None:
        self._closing.set()  # ends any wait for a Retry-After
        self._direct = None
        with self._lean_lock:
            lean = self._lean
        if lean is not None:
            lean.close()  # kept: a request after this one closes its connection when done
        self._pool.clear()
        self._api.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        """One request through the host's connection pool.

        Every request goes to the same host, so the pool manager's per-request work (parse the
        URL, find the pool by its key, merge pool arguments) is done once and the host's pool
        called directly: about a quarter of a small request's client CPU. Through a proxy, the
        proxy manager keeps doing it (it rewrites URLs and tunnels).
        """
        if isinstance(self._pool, urllib3.ProxyManager):
            return self._pool.request(method, self._host + path, **kwargs)
        direct = self._direct
        if direct is None:
            direct = self._direct = self._pool.connection_from_url(self._host)
        return direct.urlopen(method, self._base_path + path, redirect=False,
                              assert_same_host=False, **kwargs)

    def _lean_pool(self) -> http1.ConnectionPool | None:
        """The pool of ordinary requests (:mod:`informers.http1`); None through a proxy."""
        lean = self._lean
        if lean is None and not isinstance(self._pool, urllib3.ProxyManager):
            with self._lean_lock:
                lean = self._lean
                if lean is None:
                    lean = self._lean = http1.ConnectionPool(
                        self._connect, host=self.host, maxsize=self.pool_size)
        return lean

    def _connect(self, timeout: float) -> socket.socket:
        """A socket to the server, opened (and TLS-wrapped) by urllib3's connection as the
        kubernetes client configured it."""
        direct = self._direct
        if direct is None:
            direct = self._direct = self._pool.connection_from_url(self._host)
        connection = direct._new_conn()
        assert isinstance(connection, urllib3.connection.HTTPConnection)
        connection.timeout = timeout
        connection.connect()
        sock, connection.sock = connection.sock, None  # ours now
        return sock

    @property
    def pool_size(self) -> int:
        """Connections kept per host."""
        return int(self._pool.connection_pool_kw.get("maxsize", self._options.pool_size))

    def resize_pool(self, size: int) -> None:
        """Keep ``size`` connections per host from now on. Meant for before the first request
        (the manager sizes the pool once it knows its controllers and informers); pools that
        exist already are closed, and connections in use are dropped when released."""
        if size < 1:
            raise ValueError("a pool needs at least one connection")
        if size != self.pool_size:
            self._pool.connection_pool_kw["maxsize"] = size
            self._direct = None
            self._close_lean()
            self._pool.clear()

    def _close_lean(self) -> None:
        with self._lean_lock:
            lean, self._lean = self._lean, None
        if lean is not None:
            lean.close()

    def _headers(self, method: str, path: str, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": JSON, "User-Agent": self._options.user_agent}
        if content_type:
            headers["Content-Type"] = content_type
        headers.update(self._auth_headers(method, path))
        return headers

    def _auth_headers(self, method: str, path: str) -> dict[str, str]:
        """The bearer token's header. It comes from the kubernetes client's configuration,
        whose refresh hook (an expired exec-plugin token, the in-cluster token file read
        again every minute) re-applies the whole kubeconfig to the configuration on every
        call: 6 % of the operator's CPU in a burst when asked per request. So it is asked at
        most once per :data:`AUTH_REFRESH` seconds (a token the hook renews is used that much
        later at most), and again at once after a 401."""
        now = self._clock.monotonic()
        cached = self._auth
        if cached is None or now - cached[0] >= AUTH_REFRESH:
            auth: dict[str, str] = {}
            self._api.update_params_for_auth(auth, [], ["BearerToken"], path, method, None)
            self._auth = cached = (now, auth)
        return cached[1]

    def stream(self, method: str, path: str, *, verb: str,
               query: Mapping[str, Any] | None = None, read_timeout: float | None = None,
               headers: Mapping[str, str] | None = None) -> urllib3.BaseHTTPResponse:
        """Send one request whose answer's body is left unread for the caller (a watch), on
        urllib3; raise the typed error for an error answer. ``read_timeout`` bounds each read
        of it (else the transport's timeout does)."""
        response = self._attempt(method, path, verb=verb, query=query, body=None,
                                 content_type=None, stream=True, read_timeout=read_timeout,
                                 timeout=None, headers=headers)
        assert isinstance(response, urllib3.BaseHTTPResponse)
        return response

    def request(self, method: str, path: str, *, verb: str, query: Mapping[str, Any] | None
                = None, body: bytes | None = None, content_type: str | None = None,
                read_timeout: float | None = None, timeout: float | None = None,
                headers: Mapping[str, str] | None = None) -> Answer:
        """Send one request and read its whole answer (:mod:`informers.http1`, or urllib3
        through a proxy); raise the typed error for an error answer.

        ``timeout`` caps the request, e.g. by a deadline of the caller's: the connect and each
        read get at most the time left when it is sent (as urllib3's ``total``); without it,
        connect and each read get the transport's timeout (or ``read_timeout``). ``headers``
        are sent besides the transport's own (e.g. to a Service's proxy subresource). Raises
        whatever the write guard raises, for a refused write. A 429 (or 5xx) with a
        Retry-After is retried as the module says, within ``timeout`` when one is given.
        """
        deadline = None if timeout is None else self._clock.monotonic() + timeout
        retries = 0
        while True:
            left = None if deadline is None else deadline - self._clock.monotonic()
            try:
                return self._attempt(method, path, verb=verb, query=query, body=body,
                                     content_type=content_type, stream=False,
                                     read_timeout=read_timeout, timeout=left, headers=headers)
            except (TooManyRequests, ServerError) as error:
                wait = self._retry_wait(error, retries, deadline)
                if wait is None:
                    raise
                retries += 1
                log.debug("retrying after the server's Retry-After", extra={
                    "method": method, "path": path, "code": error.code, "wait": wait,
                    "retry": retries})
                if self._clock.wait(self._closing, wait):
                    raise  # closing: no more attempts

    def _retry_wait(self, error: APIError, retries: int, deadline: float | None
                    ) -> float | None:
        """Seconds to wait before sending the request again, or None not to."""
        wait = error.retry_after
        if wait is None or retries >= self._options.max_retries or self._closing.is_set():
            return None
        if too_large_resource_version(error):
            return None  # not "later": our version is not the server's (the caller relists)
        if wait > self._options.max_retry_after:
            return None
        if deadline is not None and self._clock.monotonic() + wait >= deadline:
            return None
        return wait

    def _attempt(self, method: str, path: str, *, verb: str, query: Mapping[str, Any] | None,
                 body: bytes | None, content_type: str | None, stream: bool,
                 read_timeout: float | None, timeout: float | None,
                 headers: Mapping[str, str] | None) -> Answer:
        if method != "GET" and self.write_guard is not None:
            self.write_guard(method, path)
        if timeout is not None and timeout <= 0:
            raise TransportError(f"{method} {path}: no time left for the request")
        target = path
        if query:
            target += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        started = self._clock.monotonic()
        code = "<error>"
        try:
            sent = self._headers(method, path, content_type)
            if headers:
                sent.update(headers)
            response: Answer
            lean = None if stream else self._lean_pool()
            if lean is not None:
                read = read_timeout or self._options.timeout
                response = lean.request(
                    method, self._base_path + target, headers=sent, body=body,
                    connect_timeout=min(self._options.timeout, timeout or math.inf),
                    timeout=min(read, timeout or math.inf))
            else:
                limits = urllib3.Timeout(connect=self._options.timeout,
                                         read=read_timeout or self._options.timeout,
                                         total=timeout)
                response = self._send(method, target, body=body, headers=sent,
                                      preload_content=not stream, timeout=limits,
                                      retries=False)
            code = str(response.status)
            warned = response.headers.getlist("Warning")
        except (urllib3.exceptions.HTTPError, OSError, http1.BadResponse) as exc:
            raise TransportError(f"{method} {path}: {exc}") from exc
        finally:
            if self._observer is not None:
                self._observer.observe(verb=verb, method=method, host=self.host, code=code,
                                       seconds=self._clock.monotonic() - started)
        if warned:
            for warning in parse_warning_headers(warned):
                self.warning_handler(*warning)
        if response.status >= 400:
            if response.status == 401:
                self._auth = None  # the token may have been renewed meanwhile: ask again
            if isinstance(response, urllib3.BaseHTTPResponse) and stream:
                data = response.read()
                response.release_conn()
            else:
                data = response.data
            raise error_from(response.status, data, response.headers, path=path)
        return response

    def json(self, method: str, path: str, *, verb: str, query: Mapping[str, Any] | None = None,
             body: Any = None, content_type: str | None = None, timeout: float | None = None,
             headers: Mapping[str, str] | None = None,
             without_managed_fields: bool = False) -> dict[str, Any]:
        """A request with a JSON (or raw bytes) body whose answer is a JSON object; with
        ``without_managed_fields``, that object's ``metadata.managedFields`` are cut from the
        answer's bytes before it is parsed (:mod:`.rawjson`)."""
        data = body if body is None or isinstance(body, bytes) else orjson.dumps(body)
        response = self.request(method, path, verb=verb, query=query, body=data,
                                content_type=content_type or (JSON if data is not None else None),
                                timeout=timeout, headers=headers)
        if without_managed_fields:
            cut = parse_object_without_managed_fields(response.data)
            if cut is not None:
                return cut
        result: dict[str, Any] = orjson.loads(response.data)
        if without_managed_fields and isinstance(result.get("metadata"), dict):
            result["metadata"].pop("managedFields", None)
        return result


AUTH_REFRESH = 1.0
"""Seconds the auth headers are reused before the client's configuration is asked again."""
