"""metrics: Prometheus metric families on a project-owned registry, and their HTTP endpoint.

The lowest layer above ``foundation`` (whose threads it joins): it defines
controller-runtime-compatible families and serves them; the layers above record into them. It
imports no other package of this project.

- :func:`new_registry` makes the registry (never prometheus_client's global one);
- :class:`Recorder` creates every family on it and is what upper layers record through
  (``recorder.controller``, ``.workqueue``, ``.rest``, ``.leader``, ``.informer``, and bounded
  histograms/counters for the operator's own metrics), so they never touch prometheus_client;
- :class:`ObservabilityServer` serves ``/metrics``, ``/healthz`` and ``/readyz``; secure
  metrics over HTTPS (:class:`ServingCertificate`) for bearer tokens the API server
  authenticates and authorizes (:class:`AccessFilter`, asking through a :class:`Reviewer`).
"""

from ._family import OTHER
from .access import AccessFilter, AccessOptions, Decision, Reviewer, ReviewError, User
from .bounded import BoundedCounter, BoundedHistogram, FirstSeen, UnsuffixedCounter
from .controller import (
    RECONCILE_TIME_BUCKETS,
    ControllerMetrics,
    ControllerRecorder,
    ReconcileResult,
)
from .health import Check, HealthChecks
from .informer import WATCH_EVENT_TYPES, InformerMetrics
from .leader import LeaderElectionMetrics
from .recorder import Recorder
from .registry import new_registry
from .rest import REST_DURATION_BUCKETS, RestClientMetrics
from .server import (
    DEFAULT_METRICS_ADDRESS,
    DEFAULT_PROBE_ADDRESS,
    DEFAULT_SECURE_METRICS_ADDRESS,
    IN_CLUSTER_METRICS_ADDRESS,
    IN_CLUSTER_PROBE_ADDRESS,
    ObservabilityServer,
    ServerOptions,
)
from .tls import ServingCertificate
from .webhook import WEBHOOK_LATENCY_BUCKETS, WebhookMetrics
from .workqueue import WORKQUEUE_DURATION_BUCKETS, QueueStats, WorkqueueMetrics, WorkqueueRecorder

__all__ = [
    "DEFAULT_METRICS_ADDRESS",
    "DEFAULT_PROBE_ADDRESS",
    "DEFAULT_SECURE_METRICS_ADDRESS",
    "IN_CLUSTER_METRICS_ADDRESS",
    "IN_CLUSTER_PROBE_ADDRESS",
    "OTHER",
    "RECONCILE_TIME_BUCKETS",
    "REST_DURATION_BUCKETS",
    "WATCH_EVENT_TYPES",
    "WEBHOOK_LATENCY_BUCKETS",
    "WORKQUEUE_DURATION_BUCKETS",
    "AccessFilter",
    "AccessOptions",
    "BoundedCounter",
    "BoundedHistogram",
    "Check",
    "ControllerMetrics",
    "ControllerRecorder",
    "Decision",
    "FirstSeen",
    "HealthChecks",
    "InformerMetrics",
    "LeaderElectionMetrics",
    "ObservabilityServer",
    "QueueStats",
    "ReconcileResult",
    "Recorder",
    "RestClientMetrics",
    "ReviewError",
    "Reviewer",
    "ServerOptions",
    "ServingCertificate",
    "UnsuffixedCounter",
    "User",
    "WebhookMetrics",
    "WorkqueueMetrics",
    "WorkqueueRecorder",
    "new_registry",
]
