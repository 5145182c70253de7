"""REST client families: every request the process makes to the API server.

- ``rest_client_requests_total{code,method,host}`` (counter) — controller-runtime v0.24
  (``pkg/metrics/client_go_adapter.go``); ``code`` is the HTTP status as a string, or
  ``<error>`` when no answer arrived, as client-go reports it.
- ``rest_client_request_duration_seconds{verb,host}`` (histogram,
  :data:`REST_DURATION_BUCKETS`) —
  client-go's family, which controller-runtime only registers on request (after v0.24, as an
  opt-in); here it is always on. ``verb`` is the HTTP method, as in client-go.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from ._family import Children, counter, histogram

REST_DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0,
)
"""client-go's request latency buckets, 5 ms to 60 s."""

ERROR_CODE = "<error>"
"""The ``code`` of a request that got no HTTP answer (connection refused, reset, timeout)."""


class RestClientMetrics:
    """The REST client families on one registry.

    Its :meth:`observe` has the shape of ``informers.rest.RequestObserver``, so an instance can
    be handed to the transport directly.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = counter(
            registry, "rest_client_requests_total",
            "Number of HTTP requests, partitioned by status code, method, and host.",
            ("code", "method", "host"))
        self.duration = histogram(
            registry, "rest_client_request_duration_seconds",
            "Request latency in seconds. Broken down by verb and host.",
            labels=("verb", "host"), buckets=REST_DURATION_BUCKETS)
        self._requests = Children(self.requests)
        self._duration = Children(self.duration)

    def observe(self, *, verb: str, method: str, host: str, code: str,
                seconds: float) -> None:
        """One request to ``host`` (``host:port``) with HTTP ``method`` ended with ``code``
        (a status such as ``"200"``, or :data:`ERROR_CODE`) after ``seconds`` (for a watch:
        until the response headers arrived).

        ``verb`` is the caller's name for the operation (``LIST``, ``WATCH``, ...). It is not a
        label: client-go labels both families by HTTP method, and dashboards expect that.
        """
        del verb
        method = method.upper()
        self._requests(code, method, host).inc()
        self._duration(method, host).observe(seconds)
