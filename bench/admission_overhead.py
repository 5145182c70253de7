"""What admission webhooks cost the local API server's write path.

Three measurements, each the median of ``--rounds`` rounds:

* the create verb itself (``writes.create`` run on the server's loop, no HTTP), with no
  webhook configuration, then with a ValidatingWebhookConfiguration whose rule matches nothing
  created (Secrets only): the price of asking whether a webhook matches, which the usual write
  pays;
* ConfigMap creates over HTTP (one client, sequential), without webhooks and with a matching
  validating webhook that allows everything — an ambient_ctrl manager's webhook server over
  TLS: the price of one webhook call (a TLS handshake per review: the client does not keep
  connections alive).

    .venv/bin/python bench/admission_overhead.py [--creates 3000] [--calls 200] [--rounds 5]

Prints creates/s and the ratios; writes bench/results/admission.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import orjson
import urllib3

from ambient_ctrl.webhook import (
    WebhookOptions,
    Webhooks,
    WebhookServer,
    WebhookServerOptions,
    install,
)
from ambient_ctrl.webhook.registry import WebhookBuilder
from envtest import LocalAPIServer
from envtest.cluster import Cluster, Target
from envtest.http.protocol import Request, Response
from envtest.verbs import writes
from informers.resource import Resource
from informers.rest import Transport, load_configuration

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
VALIDATING = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"


SECRETS_ONLY = {"metadata": {"name": "secrets-only"}, "webhooks": [{
    "name": "secrets.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
    "clientConfig": {"url": "https://127.0.0.1:1/"},
    "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["*"],
               "resources": ["secrets"]}]}]}
"""A configuration that matches no ConfigMap write."""


def verb_creates(api: LocalAPIServer, namespace: str, count: int, tag: str) -> float:
    """Creates/s of the create verb alone, on the loop."""
    def run(cluster: Cluster) -> float:
        rtype = cluster.type_of("", "v1", "configmaps")
        assert rtype is not None
        target = Target(rtype, namespace)
        started = time.perf_counter()
        for i in range(count):
            body = b'{"metadata":{"name":"%s-%d"},"data":{"k":"v"}}' % (tag.encode(), i)
            answer = writes.create(cluster, target, Request(
                "POST", f"/api/v1/namespaces/{namespace}/configmaps", {}, body))
            assert isinstance(answer, Response) and answer.status == 201
        return count / (time.perf_counter() - started)
    return api.call(run, timeout=120)


def http_creates(http: urllib3.PoolManager, url: str, namespace: str, count: int,
                 tag: str) -> float:
    started = time.perf_counter()
    for i in range(count):
        body = orjson.dumps({"metadata": {"name": f"{tag}-{i}"}, "data": {"k": "v"}})
        answer = http.request("POST", f"{url}/api/v1/namespaces/{namespace}/configmaps",
                              body=body, headers={"Content-Type": "application/json"})
        assert answer.status == 201, answer.data
    return count / (time.perf_counter() - started)


def median_of(rounds: int, measure: Any) -> float:
    return statistics.median(measure(r) for r in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=3000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, float] = {}
    with LocalAPIServer() as api:
        http = urllib3.PoolManager(maxsize=2, retries=False)
        for ns in ("verb", "http"):
            http.request("POST", f"{api.url}/api/v1/namespaces",
                         body=orjson.dumps({"metadata": {"name": ns}}),
                         headers={"Content-Type": "application/json"})
        none, unmatched = [], []
        for r in range(args.rounds):  # alternated: the store grows as rounds go
            none.append(verb_creates(api, "verb", args.creates, f"a{r}"))
            http.request("POST", api.url + VALIDATING, body=orjson.dumps(SECRETS_ONLY),
                         headers={"Content-Type": "application/json"})
            unmatched.append(verb_creates(api, "verb", args.creates, f"b{r}"))
            http.request("DELETE", f"{api.url}{VALIDATING}/secrets-only")
        results["verb_no_configuration"] = statistics.median(none)
        results["verb_unmatched_configuration"] = statistics.median(unmatched)
        results["http_no_webhook"] = median_of(
            args.rounds, lambda r: http_creates(http, api.url, "http", args.calls, f"c{r}"))
        webhooks = Webhooks()
        WebhookBuilder(webhooks, CONFIGMAPS).validator(lambda obj, old: None, WebhookOptions())
        server = WebhookServer(webhooks, WebhookServerOptions(address="127.0.0.1:0")).start()
        transport = Transport(load_configuration(api.kubeconfig))
        try:
            install(transport, webhooks, server.url, ca_bundle=server.ca_bundle)
            results["http_one_validating_webhook"] = median_of(
                args.rounds, lambda r: http_creates(http, api.url, "http", args.calls, f"d{r}"))
        finally:
            transport.close()
            server.stop()
            http.clear()
    results["unmatched_over_none"] = (results["verb_unmatched_configuration"]
                                      / results["verb_no_configuration"])
    results["webhook_over_none_http"] = (results["http_one_validating_webhook"]
                                         / results["http_no_webhook"])
    for name, value in results.items():
        print(f"{name:32} {value:10.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "admission.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
