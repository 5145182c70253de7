"""What CRD conversion by webhook costs the local API server, against the same CRD with
strategy ``None``, measured in one run:

- **storage version** (no webhook call): a list of ``--objects`` custom resources and a watch
  delivering ``--events`` events to 20 watchers — the cost ``Webhook`` adds where nothing is
  converted;
- **other version**: the same list at v2 (one ConversionReview for all items, answered by the
  ambient_ctrl manager's webhook server over HTTPS) and a get at v2 (one review per get).

    .venv/bin/python bench/conversion_webhooks.py [--objects 500] [--events 2000]

Each figure is taken for both CRDs in turns (the load of a shared machine falls on both alike).
Prints ms per list and get, and µs per watch event per watcher; writes
bench/results/conversion.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import urllib3

from ambient_ctrl.webhook import (
    CONVERT_PATH,
    HubAndSpoke,
    Webhooks,
    WebhookServer,
    WebhookServerOptions,
)
from ambient_ctrl.webhook.configuration import client_config
from envtest import LocalAPIServer
from envtest.storage.store import Event, Stored
from envtest.storage.watch import Filter, WatchStream
from envtest.verbs.converted_watch import ConvertedWatchStream
from foundation.selectors import parse_field_selector, parse_label_selector
from informers.resource import Resource

RESULTS = Path(__file__).resolve().parent / "results"
GROUP = "bench.example.com"


def rename(old: str, new: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def move(obj: dict[str, Any]) -> dict[str, Any]:
        spec = obj.setdefault("spec", {})
        if old in spec:
            spec[new] = spec.pop(old)
        return obj
    return move


def crd(plural: str, conversion: dict[str, Any] | None) -> dict[str, Any]:
    versions = [{"name": v, "served": True, "storage": v == "v1", "schema": {"openAPIV3Schema": {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}} for v in ("v1", "v2")]
    spec: dict[str, Any] = {"group": GROUP, "scope": "Namespaced", "versions": versions,
                            "names": {"plural": plural, "kind": plural.title()[:-1]}}
    if conversion:
        spec["conversion"] = conversion
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GROUP}"}, "spec": spec}


class Client:
    """JSON over one kept-alive connection pool."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = urllib3.PoolManager(maxsize=2, retries=False)

    def get(self, path: str) -> tuple[int, Any]:
        response = self.http.request("GET", self.url + path)
        return response.status, orjson.loads(response.data)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        response = self.http.request("POST", self.url + path, body=orjson.dumps(body),
                                     headers={"Content-Type": "application/json"})
        return response.status, orjson.loads(response.data)


def paired(repeat: int, calls: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Median ms of ``repeat`` calls of each, taken in turns (a noisy machine's load falls on
    all of them alike)."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


class _Sink:
    closed = False

    def send(self, data: bytes) -> None:
        pass

    def limit_backlog(self, limit: int, on_overflow: Any) -> None:
        pass

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def buffered(self) -> int:
        return 0

    def on_close(self, callback: Callable[[], None]) -> None:
        pass


def watch_cost(api: LocalAPIServer, plural: str, events: int) -> float:
    """µs per event per watcher of 20 watchers at the storage version."""
    rtype = api.cluster.type_of(GROUP, "v1", plural)
    assert rtype is not None
    kind = ConvertedWatchStream if rtype.webhook is not None else WatchStream
    select = Filter(None, parse_label_selector(""), parse_field_selector("", allowed=frozenset()))
    raw = json.dumps({"apiVersion": f"{GROUP}/v1", "kind": rtype.kind,
                      "metadata": {"name": "x", "namespace": "default", "uid": "u"},
                      "spec": {"size": 1}}).encode()

    def encode(event: Event, event_type: str) -> bytes:
        from envtest.kinds import crds

        return b'{"type":"' + event_type.encode() + b'","object":' + crds.served_raw(
            rtype, event.new.raw) + b"}\n"

    extra: dict[str, Any] = {"cluster": api.cluster} if kind is ConvertedWatchStream else {}
    streams = [kind(rtype=rtype, select=select, encode=encode, sink=_Sink(), bookmarks=False,
                    revision=lambda: 0, max_backlog=0, **extra) for _ in range(20)]
    start = time.perf_counter()
    for rv in range(events):
        event = Event(rv + 1, rtype.store, "MODIFIED", "default", Stored(raw, rv + 1, {}, {}))
        for stream in streams:
            stream.offer(event)
    return (time.perf_counter() - start) * 1e6 / events / len(streams)


def _watch_cost(api: LocalAPIServer, plural: str, events: int, _: object) -> float:
    return watch_cost(api, plural, events)


def measure(api: LocalAPIServer, client: Client, events: int) -> dict[str, float]:
    """Each figure for both CRDs, taken in turns."""
    results: dict[str, float] = {}
    for what, repeat, tail in (("list_v1_ms", 30, "v1/namespaces/default/%s"),
                               ("list_v2_ms", 30, "v2/namespaces/default/%s"),
                               ("get_v2_ms", 100, "v2/namespaces/default/%s/o1")):
        results.update(paired(repeat, {
            f"{plural}_{what}": partial(client.get, f"/apis/{GROUP}/" + tail % plural)
            for plural in ("plains", "hooks")}))
    watch: dict[str, list[float]] = {"plains": [], "hooks": []}
    for _ in range(6):
        for plural, samples in watch.items():
            samples.append(api.call(partial(_watch_cost, api, plural, events // 6),
                                    timeout=120))
    results.update({f"{plural}_watch_us_per_event": statistics.median(samples)
                    for plural, samples in watch.items()})
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    webhooks = Webhooks()
    converter = HubAndSpoke("v1", to_hub={"v2": rename("replicas", "size")},
                            from_hub={"v2": rename("size", "replicas")})
    for plural in ("plains", "hooks"):
        webhooks.add_conversion(Resource(GROUP, "v1", plural, plural.title()[:-1]), converter)
    results: dict[str, float] = {}
    with WebhookServer(webhooks, WebhookServerOptions(address="127.0.0.1:0")) as hook, \
            LocalAPIServer() as api:
        client = Client(api.url)
        assert hook.ca_bundle is not None
        conversion = {"strategy": "Webhook", "webhook": {
            "conversionReviewVersions": ["v1"],
            "clientConfig": client_config(hook.url, CONVERT_PATH, hook.ca_bundle)}}
        for plural, how in (("plains", None), ("hooks", conversion)):
            assert client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                               crd(plural, how))[0] == 201
            base = f"/apis/{GROUP}/%s/namespaces/default/{plural}"
            for i in range(args.objects):
                assert client.post(base % "v1", {"apiVersion": f"{GROUP}/v1",
                                                 "kind": plural.title()[:-1],
                                                 "metadata": {"name": f"o{i}"},
                                                 "spec": {"size": i}})[0] == 201
        results.update(measure(api, client, args.events))
    for name, value in sorted(results.items()):
        print(f"{name:32} {value:10.3f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "conversion.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
