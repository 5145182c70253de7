"""Webhook server families, as controller-runtime exposes them
(``pkg/webhook/internal/metrics/metrics.go``), one series per served path:

- ``controller_runtime_webhook_requests_total{webhook,code}`` (counter): requests answered, by
  HTTP status code (a review that denies is still a ``200``);
- ``controller_runtime_webhook_latency_seconds{webhook,code}`` (histogram, Prometheus's
  default buckets): from the body read to the answer ready;
- ``controller_runtime_webhook_requests_in_flight{webhook}`` (gauge).

``webhook`` is the path (``/validate-example-com-v1-widget``, ``/convert``); only registered
paths are recorded, so the label stays bounded whatever clients send.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from ._family import counter, gauge, histogram

WEBHOOK_LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
"""Prometheus's default buckets (client_golang's ``DefBuckets``), which controller-runtime
leaves the webhook latency histogram with."""


class WebhookMetrics:
    """The webhook server's families on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.latency = histogram(
            registry, "controller_runtime_webhook_latency_seconds",
            "Histogram of the latency of processing admission requests",
            labels=("webhook", "code"), buckets=WEBHOOK_LATENCY_BUCKETS)
        self.requests = counter(
            registry, "controller_runtime_webhook_requests_total",
            "Total number of admission requests by HTTP status code.", ("webhook", "code"))
        self.in_flight = gauge(
            registry, "controller_runtime_webhook_requests_in_flight",
            "Current number of admission requests being served.", ("webhook",))

    def started(self, webhook: str) -> None:
        """A request to ``webhook`` is being served."""
        self.in_flight.labels(webhook).inc()

    def answered(self, webhook: str, code: int, seconds: float) -> None:
        """The request :meth:`started` was answered with HTTP ``code`` after ``seconds``."""
        self.in_flight.labels(webhook).dec()
        self.requests.labels(webhook, str(code)).inc()
        self.latency.labels(webhook, str(code)).observe(seconds)
