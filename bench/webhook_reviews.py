"""What an admission review costs the webhook server: the pure review (parse, defaulter,
JSON patch) and a whole round trip over HTTPS, on a new connection each time and on one
kept-alive connection (as kube-apiserver calls a webhook), with a Widget of 50 list items
(~4.6 KB review) whose defaulter sets one field.

    .venv/bin/python bench/webhook_reviews.py [--reviews 300]

Prints µs per pure review and p50/p99 ms and reviews/s per transport; writes
bench/results/webhook.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ambient_ctrl.webhook import Webhooks, WebhookServer, WebhookServerOptions, admission
from ambient_ctrl.webhook.registry import WebhookBuilder
from informers.resource import Resource

RESULTS = Path(__file__).resolve().parent / "results"
WIDGETS = Resource("example.com", "v1", "widgets", "Widget")
PATH = "/mutate-example-com-v1-widget"


def default(widget: dict[str, Any]) -> None:
    widget["spec"].setdefault("replicas", 1)


def review_body() -> bytes:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget",
              "metadata": {"name": "w", "namespace": "default", "uid": "u"},
              "spec": {"items": [{"name": f"i{i}", "value": "x" * 50} for i in range(50)]}}
    return orjson.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                         "request": {"uid": "1", "operation": "CREATE", "object": widget,
                                     "kind": {"group": "example.com", "version": "v1",
                                              "kind": "Widget"}}})


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"p50_ms": round(statistics.median(ordered) * 1e3, 3),
            "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1e3, 3),
            "reviews_per_s": round(len(ordered) / sum(ordered))}


def timed(count: int, once: Callable[[], None]) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        once()
        latencies.append(time.perf_counter() - started)
    return latencies


def post(connection: http.client.HTTPSConnection, body: bytes) -> None:
    connection.request("POST", PATH, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200
    response.read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=300)
    count = parser.parse_args().reviews
    body = review_body()
    handler = admission.defaulting(default)
    started = time.perf_counter()
    for _ in range(count):
        admission.review(orjson.loads(body), handler)
    results: dict[str, Any] = {
        "review_bytes": len(body),
        "pure_review_us": round((time.perf_counter() - started) / count * 1e6, 1)}
    webhooks = Webhooks()
    WebhookBuilder(webhooks, WIDGETS).defaulter(default)
    with WebhookServer(webhooks, WebhookServerOptions(address="127.0.0.1:0")) as server:
        assert server.ca_bundle is not None
        context = ssl.create_default_context(cadata=server.ca_bundle.decode())
        host, port = server.address

        def connect() -> http.client.HTTPSConnection:
            return http.client.HTTPSConnection(host, port, context=context, timeout=10)

        def new_connection() -> None:
            connection = connect()
            post(connection, body)
            connection.close()

        results["new_connection_each"] = summary(timed(count, new_connection))
        kept = connect()
        results["kept_alive"] = summary(timed(count, lambda: post(kept, body)))
        kept.close()
    print(json.dumps(results, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "webhook.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
