"""The server's state and settings: kinds, objects, clock. One instance per server.

Everything here is touched only from the server's event-loop thread.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from envtest.http.endpoints import PodEndpoints
from envtest.kinds.builtins import ClusterIPs
from envtest.kinds.registry import KindRegistry, ResourceType
from envtest.storage.store import ETCD_MAX_REQUEST_BYTES, ObjectStore
from envtest.webhooks.index import WebhookIndex
from foundation.clock import Clock, RealClock, rfc3339


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Settings of a local API server."""

    history_limit: int = 20000
    """Events kept for watch resumption; an older resourceVersion gets 410 Gone."""
    watch_lifetime: float = 1800.0
    """Seconds a watch without ``timeoutSeconds`` stays open (kube-apiserver: 30-60 min)."""
    bookmark_interval: float = 60.0
    """Seconds between BOOKMARK events on watches that asked for them."""
    max_body_bytes: int = 3 * 1024 * 1024
    """Larger request bodies get 413, like kube-apiserver's 3 MiB limit."""
    max_object_bytes: int = ETCD_MAX_REQUEST_BYTES
    """Larger objects are not stored (500 "etcdserver: request is too large", as etcd's
    default 1.5 MiB request limit makes kube-apiserver answer); 0 for no bound."""
    max_watch_backlog: int = 32 * 1024 * 1024
    """Bytes a watcher may fall behind before its connection is dropped."""
    max_watch_backlog_total: int = 128 * 1024 * 1024
    """Bytes all watchers that are behind may hold unsent together; past it the one furthest
    behind is dropped (its client relists), then the next; 0 for no bound. Never less than
    ``max_watch_backlog``: one watcher may always hold what it alone is allowed."""
    garbage_collection: bool = True
    """Delete dependents whose owners are gone, as kube-controller-manager does."""
    max_token_expiration: int = 0
    """Seconds: longer TokenRequests are shortened to this, with a warning, as kube-apiserver's
    ``--service-account-max-token-expiration`` does; 0 (kube's default) for no maximum."""
    resource_version_wait: float = 3.0
    """Seconds a list (``resourceVersion=N``, not older than or exactly N) or a watch-list
    (``sendInitialEvents``) from a resourceVersion the store has not reached waits for it
    before the answer "Too large resource version" (504): kube-apiserver's watch cache waits
    3 s (its ``blockTimeout``). A plain watch from such a version is accepted at once and
    sends nothing, BOOKMARKs included, until the store passes it (as kube-apiserver's)."""
    tls: bool = False
    """Serve HTTPS with a CA made at start (the kubeconfig carries it): what kube-apiserver
    serves, and what clients that insist on TLS (admission webhook set-ups) need."""
    tls_ca_dir: str = ""
    """With ``tls``: keep the CA in this directory (``ca.crt``, ``ca.key``; made when absent)
    and sign with it, so that clients keep trusting a restarted server; empty: a new CA."""
    request_header_timeout: float = 32.0
    """Seconds a request head (request line and headers) may take to arrive, counted from the
    connection's start (after the TLS handshake, which has as long) for its first request and
    from the first byte for later ones; then the connection is closed without an answer, as Go's
    ``ReadHeaderTimeout`` does (kube-apiserver: 32 s). Bodies, answers and watches are not
    timed. 0: heads are never timed (a TLS handshake still is, after 60 s, asyncio's default)."""


@dataclass
class Target:
    """What a resource URL names: a kind, and optionally a namespace, name and subresource."""

    rtype: ResourceType
    namespace: str = ""
    name: str = ""
    subresource: str = ""


@dataclass
class Cluster:
    """Kinds, objects and helpers shared by the request handlers."""

    options: ServerOptions = field(default_factory=ServerOptions)
    clock: Clock = field(default_factory=RealClock)
    kinds: KindRegistry = field(default_factory=KindRegistry)
    ips: ClusterIPs = field(default_factory=ClusterIPs)
    endpoints: PodEndpoints = field(default_factory=PodEndpoints)
    """Pod ports served on this machine (by simulators' stand-ins), for the Service proxy."""
    webhooks: WebhookIndex = field(default_factory=WebhookIndex)
    """The stored admission webhook configurations, for the write path (:mod:`.webhooks`)."""
    server_address: str = "127.0.0.1:0"
    store: ObjectStore = field(init=False)
    requests: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    _now_second: int = field(default=-1, repr=False)
    _now_text: str = field(default="", repr=False)
    """Resource requests served, by (verb, group, resource[/subresource])."""
    requests_by_agent: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    """The same, by client as well: the product part of its User-Agent (``ambient-ctrl``,
    ``kubectl``...). RBAC tests compare an operator's calls with its role."""
    signing_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    """Signs the service account tokens this server mints (random per server)."""
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    """The administrator's bearer token, in the server's kubeconfig (random per server). No
    request needs it — nothing is authenticated — but a TokenReview knows it (:mod:`.authn`)."""

    def __post_init__(self) -> None:
        self.store = ObjectStore(history_limit=self.options.history_limit,
                                 max_object_bytes=self.options.max_object_bytes)

    def now(self) -> str:
        """The current time as Kubernetes writes timestamps (second precision)."""
        moment = self.clock.now()
        second = int(moment.timestamp())
        if second != self._now_second:  # format once per second, not once per write
            self._now_second, self._now_text = second, rfc3339(moment)
        return self._now_text

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def type_of(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.kinds.lookup(group, version, plural)

    def namespace_phase(self, name: str) -> str | None:
        """Phase of a namespace ("Active", "Terminating"), or None when it does not exist."""
        ns_type = self.kinds.lookup("", "v1", "namespaces")
        assert ns_type is not None
        stored = self.store.get(ns_type.store, ("", name))
        if stored is None:
            return None
        obj: dict[str, Any] = stored.load()
        return str((obj.get("status") or {}).get("phase", "Active"))
