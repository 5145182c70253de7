"""Informer ingest: watch events/s through our SharedInformer against the raw-parse limit, and
bytes per cached object.

The local API server runs in its own process. It gets N realistic Pods, listed as created, then
the kubelet's status of each (then ~6.3 KB of compact JSON as served, managedFields included,
like a Deployment's pod on a real cluster). The watch stream of those N MODIFIED events (from
the list's resourceVersion) is recorded once and served again, byte for byte, by a trivial
server in another process (``bench/_replay.py``: the API server's own replay, ~25-30k events/s,
would otherwise be what the fast reader measures). Both consumers drain it as fast as they can,
on one thread:

* raw limit: urllib3, split lines, ``orjson.loads`` each, nothing else (CLIENT-SURFACE.md);
* ours: a reflector feeding a SharedInformer (store + one no-op handler) whose store already
  holds the N pods as listed at that resourceVersion, so every event is a real update.

Ours parses less than the limit: its store drops ``metadata.managedFields``, so the watch cuts
them from each line before parsing it (``informers/rawjson.py``: half a Pod's bytes as served,
and most of its small objects), and parses each line where it lies in the read buffer rather
than copying it out. It can therefore beat the limit; what it spends beyond its own parse is
the framework's (state machine, store, dispatch).

Memory: tracemalloc of a Store holding the N pods, per object, next to their compact JSON
size as served and as stored (managedFields stripped). Results go to stdout and
``bench/results/informer.json``. Goals (reported, not asserted): >= 80 % of the raw limit
(issue 20), <= 1.2x the served compact JSON size.

    .venv/bin/python bench/informer_ingest.py [--objects 50000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import multiprocessing as mp
import os
import platform
import statistics
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import urllib3
from _replay import record, replaying
from _server import apiserver_process  # bench/ is on sys.path: these run as scripts
from kubernetes import client as k8s_client

from informers.informer import Handlers, SharedInformer
from informers.reflector import Reflector, ReflectorOptions
from informers.resource import CONFIGMAPS, PODS
from informers.rest import ResourceClient, Transport, TransportOptions, load_configuration
from informers.store import Store, strip_managed_fields

NAMESPACE = "default"
WRITERS = 6
WRITER_PROCESSES = 2
MEMORY_SAMPLE = 10_000
"""Pods the tracemalloc measurement stores (tracing 50,000 costs half a minute)."""
LONG = ReflectorOptions(min_watch_timeout=3600, max_watch_timeout=3600)
"""No watch timeout within a run."""


# a Deployment's pod, as a real kube-apiserver serves it -------------------------------------------
def _fields(*paths: str) -> dict[str, Any]:
    """A managedFields ``fieldsV1`` tree from dotted paths."""
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path.split("|"):
            node = node.setdefault(part, {})
    return tree


_SPEC_FIELDS = _fields(
    "f:metadata|f:generateName", "f:metadata|f:labels|.", "f:metadata|f:labels|f:app",
    "f:metadata|f:labels|f:app.kubernetes.io/instance",
    "f:metadata|f:labels|f:app.kubernetes.io/name", "f:metadata|f:labels|f:pod-template-hash",
    "f:metadata|f:labels|f:app.kubernetes.io/version",
    "f:metadata|f:annotations|f:checksum/config",
    "f:metadata|f:annotations|.", "f:metadata|f:annotations|f:prometheus.io/port",
    "f:metadata|f:annotations|f:prometheus.io/scrape",
    "f:metadata|f:annotations|f:kubectl.kubernetes.io/restartedAt",
    "f:metadata|f:ownerReferences|.",
    'f:metadata|f:ownerReferences|k:{"uid":"5f0a2d8e-7c1b-4e9a-9d3f-2b6c8a1e4f70"}',
    'f:spec|f:containers|k:{"name":"web"}|.', 'f:spec|f:containers|k:{"name":"web"}|f:args',
    'f:spec|f:containers|k:{"name":"web"}|f:env|.',
    'f:spec|f:containers|k:{"name":"web"}|f:env|k:{"name":"LOG_LEVEL"}|.',
    'f:spec|f:containers|k:{"name":"web"}|f:env|k:{"name":"POD_NAME"}|.',
    'f:spec|f:containers|k:{"name":"web"}|f:env|k:{"name":"POD_NAMESPACE"}|.',
    'f:spec|f:containers|k:{"name":"web"}|f:env|k:{"name":"GOMAXPROCS"}|.',
    'f:spec|f:containers|k:{"name":"web"}|f:image',
    'f:spec|f:containers|k:{"name":"web"}|f:imagePullPolicy',
    'f:spec|f:containers|k:{"name":"web"}|f:livenessProbe|.',
    'f:spec|f:containers|k:{"name":"web"}|f:ports|.',
    'f:spec|f:containers|k:{"name":"web"}|f:ports|k:{"containerPort":8080,"protocol":"TCP"}|.',
    'f:spec|f:containers|k:{"name":"web"}|f:readinessProbe|.',
    'f:spec|f:containers|k:{"name":"web"}|f:resources|.',
    'f:spec|f:containers|k:{"name":"web"}|f:volumeMounts|.',
    "f:spec|f:dnsPolicy", "f:spec|f:enableServiceLinks", "f:spec|f:restartPolicy",
    "f:spec|f:schedulerName", "f:spec|f:securityContext", "f:spec|f:serviceAccount",
    "f:spec|f:terminationGracePeriodSeconds", "f:spec|f:volumes|.",
    'f:spec|f:volumes|k:{"name":"config"}|.')
_STATUS_FIELDS = _fields(
    'f:status|f:conditions|k:{"type":"ContainersReady"}|.',
    'f:status|f:conditions|k:{"type":"Initialized"}|.',
    'f:status|f:conditions|k:{"type":"PodReadyToStartContainers"}|.',
    'f:status|f:conditions|k:{"type":"Ready"}|.', "f:status|f:containerStatuses",
    "f:status|f:hostIP", "f:status|f:hostIPs", "f:status|f:phase", "f:status|f:podIP",
    'f:status|f:podIPs|.', 'f:status|f:podIPs|k:{"ip":"10.244.1.23"}|.', "f:status|f:startTime")


def pod(i: int, owner_uid: str) -> dict[str, Any]:
    name = f"web-7d4b9c8f6d-{i:05d}"
    labels = {"app": "web", "app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "prod",
              "app.kubernetes.io/version": "1.24.3",
              "pod-template-hash": "7d4b9c8f6d"}
    env = [{"name": "LOG_LEVEL", "value": "info"}, {"name": "LISTEN_ADDR", "value": ":8080"},
           {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                           "fieldPath": "metadata.name"}}},
           {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {
               "apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
           {"name": "GOMAXPROCS", "valueFrom": {"resourceFieldRef": {
               "containerName": "web", "resource": "limits.cpu"}}}]
    probe = {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
             "initialDelaySeconds": 5, "periodSeconds": 10, "timeoutSeconds": 1,
             "successThreshold": 1, "failureThreshold": 3}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "generateName": "web-7d4b9c8f6d-", "namespace": NAMESPACE,
            "labels": labels,
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                            "checksum/config": "9b1f" * 8,
                            "kubectl.kubernetes.io/restartedAt": "2026-01-05T09:14:03Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": "web-7d4b9c8f6d",
                                 "uid": owner_uid, "controller": True, "blockOwnerDeletion": True}],
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                 "time": "2026-01-05T09:14:03Z", "fieldsType": "FieldsV1",
                 "fieldsV1": _SPEC_FIELDS},
                {"manager": "kubelet", "operation": "Update", "apiVersion": "v1",
                 "time": "2026-01-05T09:14:09Z", "fieldsType": "FieldsV1",
                 "fieldsV1": _STATUS_FIELDS, "subresource": "status"}],
        },
        "spec": {
            "volumes": [
                {"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}},
                {"name": f"kube-api-access-{i % 100000:05d}", "projected": {
                    "defaultMode": 420, "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt",
                                       "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                            "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}],
            "containers": [{
                "name": "web", "image": "registry.example.com/shop/web:1.24.3",
                "args": ["--config=/etc/web/config.yaml", "--metrics-port=9090"],
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                          {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
                "env": env,
                "resources": {"limits": {"cpu": "500m", "memory": "256Mi"},
                              "requests": {"cpu": "100m", "memory": "128Mi"}},
                "volumeMounts": [
                    {"name": "config", "readOnly": True, "mountPath": "/etc/web"},
                    {"name": f"kube-api-access-{i % 100000:05d}", "readOnly": True,
                     "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                "livenessProbe": probe, "readinessProbe": {**probe, "initialDelaySeconds": 2},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent",
                "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                                    "capabilities": {"drop": ["ALL"]}}}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
            "serviceAccount": "default", "nodeName": f"worker-{i % 50:02d}",
            "securityContext": {"fsGroup": 2000}, "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
        },
    }


def status(i: int, restarts: int) -> dict[str, Any]:
    """What the kubelet reports for a running pod (``restarts`` makes each update differ)."""
    ip = f"10.244.{i // 250 % 250}.{i % 250 + 1}"
    host = f"192.168.10.{i % 50 + 10}"
    started = "2026-01-05T09:14:07Z"
    conditions = [{"type": kind, "status": "True", "lastProbeTime": None,
                   "lastTransitionTime": started}
                  for kind in ("PodReadyToStartContainers", "Initialized", "Ready",
                               "ContainersReady", "PodScheduled")]
    return {
        "phase": "Running", "conditions": conditions, "hostIP": host, "hostIPs": [{"ip": host}],
        "podIP": ip, "podIPs": [{"ip": ip}], "startTime": "2026-01-05T09:14:03Z",
        "qosClass": "Burstable",
        "containerStatuses": [{
            "name": "web", "ready": True, "started": True, "restartCount": restarts,
            "state": {"running": {"startedAt": started}},
            "lastState": {"terminated": {
                "exitCode": 137, "reason": "OOMKilled", "startedAt": "2026-01-05T09:14:05Z",
                "finishedAt": "2026-01-05T09:14:06Z",
                "containerID": f"containerd://{i:064x}"}},
            "image": "registry.example.com/shop/web:1.24.3",
            "imageID": "registry.example.com/shop/web@sha256:" + "3f" * 32,
            "containerID": f"containerd://{i + 1:064x}"}],
    }


def owner_uid(transport: Transport) -> str:
    """The UID the pods' ReplicaSet reference names. The local server does not serve apps/v1
    but collects garbage by UID like kube-controller-manager, so a ConfigMap stands in for the
    ReplicaSet: the pods are not collected, and their bytes are those of a real pod."""
    owner = ResourceClient(transport, CONFIGMAPS).create(
        {"metadata": {"name": "web-7d4b9c8f6d", "namespace": NAMESPACE}})
    return str(owner["metadata"]["uid"])


# phases ------------------------------------------------------------------------------------------
def write_all(count: int, kubeconfig: Path, write: Callable[[ResourceClient, int], Any]
              ) -> float:
    """``write(pods, i)`` for every i, from WRITER_PROCESSES processes of WRITERS threads each
    (one Python process tops out near 2-3k writes/s); seconds taken."""
    started = time.perf_counter()
    context = mp.get_context("fork")  # the write function is inherited, not pickled
    writers = [context.Process(target=_write_share, args=(kubeconfig, write, n, count),
                               name=f"bench-writer-{n}") for n in range(WRITER_PROCESSES)]
    for process in writers:
        process.start()
    for process in writers:
        process.join()
        assert process.exitcode == 0, f"{process.name} failed ({process.exitcode})"
    return time.perf_counter() - started


def _write_share(kubeconfig: Path, write: Callable[[ResourceClient, int], Any], share: int,
                 count: int) -> None:
    # A transport of its own: the parent's pooled connections must not be shared.
    transport = Transport(load_configuration(str(kubeconfig)),
                          options=TransportOptions(pool_size=WRITERS, timeout=120))
    pods = ResourceClient(transport, PODS)
    try:
        with ThreadPoolExecutor(WRITERS) as pool:
            for _ in pool.map(lambda i: write(pods, i),
                              range(share, count, WRITER_PROCESSES), chunksize=64):
                pass
    finally:
        transport.close()


def list_raw(pods: ResourceClient) -> tuple[list[bytes], str]:
    """The pods as listed (compact JSON per item, as served) and the list's resourceVersion.
    Setup, not measured: with the collector paused (each 500-pod page parsed is ~75,000
    objects, which it would walk several times over; the bytes kept are not tracked)."""
    items: list[bytes] = []
    token = None
    gc.disable()
    try:
        while True:
            page = pods.list(NAMESPACE, limit=500, continue_=token)
            for item in page["items"]:
                item.setdefault("kind", "Pod")
                item.setdefault("apiVersion", "v1")
                items.append(orjson.dumps(item))
            token = page["metadata"].get("continue")
            if not token:
                return items, page["metadata"]["resourceVersion"]
    finally:
        gc.enable()


Rate = tuple[float, float]
"""Events/s, and CPU seconds of this process per event (less sensitive to other load)."""


def watch_path(resource_version: str) -> str:
    return (f"/api/v1/namespaces/{NAMESPACE}/pods?watch=1&resourceVersion={resource_version}"
            "&timeoutSeconds=3600")


def raw_limit(url: str, resource_version: str, count: int) -> Rate:
    """urllib3 + split + orjson.loads over the replayed backlog."""
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=300))
    started, cpu = time.perf_counter(), time.process_time()
    response = http.request("GET", url + watch_path(resource_version), preload_content=False)
    seen, buffer = 0, b""
    for chunk in response.stream(1 << 16):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            orjson.loads(line)
            seen += 1
        if seen >= count:
            break
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    with contextlib.suppress(RuntimeError):  # already handed back to the pool
        response.shutdown()
    response.close()
    http.clear()
    assert seen == count, f"raw reader saw {seen} of {count} events"
    return count / elapsed, cpu / count


class Counting:
    """A no-op consumer, plus the one thing the benchmark needs: when the last update came.

    ``decode=False``: an inline change handler that reads neither state (what a controller's
    ``for_`` or ``owns`` source without user predicates does: it enqueues the key, on the
    reflector's thread); ``decode=True``: an add/update/delete handler on a thread of its own,
    handed both states decoded as dicts (the informer decodes them for it).
    """

    def __init__(self, updates: int, *, decode: bool) -> None:
        self.inline = not decode
        self.updates = 0
        self._expected = updates
        self.done = threading.Event()
        self.handler: Any = (Handlers(add=self._ignore, update=self._update, delete=self._ignore)
                             if decode else self)

    def _ignore(self, obj: Any) -> None:
        pass

    def on_change(self, change: Any) -> None:
        if change.type == "update":
            self._update(None, None)

    def _update(self, old: Any, new: Any) -> None:
        self.updates += 1
        if self.updates == self._expected:
            self.done.set()


def informer_rate(transport: Transport, initial: list[bytes], resource_version: str,
                  count: int, *, decode: bool) -> Rate:
    """A reflector feeding a SharedInformer whose store holds ``initial``, one no-op handler
    (``decode``: given both states as dicts)."""
    pods = ResourceClient(transport, PODS)
    informer = SharedInformer(pods, namespace=NAMESPACE)  # its own reflector is not started
    handler = Counting(count, decode=decode)
    registration = informer.add_handler(handler.handler)
    registration.start()
    # The list as of resource_version, delivered as the reflector delivers it (each object
    # prepared as its page arrives, so the list is never held as dicts).
    informer.replace(informer.prepare(orjson.loads(raw) for raw in initial), resource_version)
    assert registration.wait_for_sync(120)
    reflector = Reflector(pods, informer, namespace=NAMESPACE, options=LONG)
    reflector.resource_version = resource_version  # listed already: watch from there
    stop = threading.Event()
    thread = threading.Thread(target=reflector.run, args=(stop,), name="bench-reflector")
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    thread.start()
    finished = handler.done.wait(600)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    stop.set()
    reflector.stop()
    thread.join(30)
    informer.stop()
    assert finished, f"the handler saw {handler.updates} of {count} updates"
    return count / elapsed, cpu / count


def store_memory(objects: list[bytes], **store_options: Any) -> float:
    """tracemalloc bytes per object of a Store holding ``objects`` (compact JSON each)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = Store(**store_options)
        for raw in objects:
            store.upsert(orjson.loads(raw))
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(store) == len(objects)
    return used / len(objects)


def stored_size(raw: bytes) -> int:
    return len(orjson.dumps(strip_managed_fields(orjson.loads(raw))))


# the run -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def phase(what: str) -> Iterator[None]:
    """Print ``what`` and the seconds it took (where a run's minutes go)."""
    started = time.perf_counter()
    print(f"  {what} ...", end="", flush=True)
    yield
    print(f" {time.perf_counter() - started:.1f} s", flush=True)


def run(objects: int, repeat: int) -> dict[str, Any]:
    history = str(objects + 1000)  # the N updates stay resumable
    backlog = str(objects * 8 * 1024 + (64 << 20))  # the replayed history is sent at once
    with apiserver_process("--history-limit", history, "--max-watch-backlog", backlog,
                           "--bookmark-interval", "3600") as server:
        transport = Transport(load_configuration(str(server.kubeconfig)),
                              options=TransportOptions(pool_size=WRITERS + 2, timeout=120))
        try:
            pods = ResourceClient(transport, PODS)
            print(f"informer ingest, {objects} pods:", flush=True)
            owner = owner_uid(transport)
            with phase(f"creating {objects} pods"):
                create = write_all(objects, server.kubeconfig,
                                   lambda pods, i: pods.create(pod(i, owner)))
            # Listed as created (no status yet); the N events are the kubelet's first status
            # of each, which makes them the full-size pods the memory figures are about.
            with phase("listing them"):
                initial, resource_version = list_raw(pods)
            with phase(f"writing {objects} statuses"):
                update = write_all(objects, server.kubeconfig, lambda pods, i: pods.patch_status(
                    f"web-7d4b9c8f6d-{i:05d}", {"status": status(i, 1)}, NAMESPACE))
            with phase("recording their watch stream"):
                stream = record(server.url, watch_path(resource_version), objects)
        finally:
            transport.close()
    raw_rates, our_rates, decoded_rates = [], [], []
    with replaying(stream) as url:
        configuration = k8s_client.Configuration()
        configuration.host = url
        replay = Transport(configuration, options=TransportOptions(pool_size=2, timeout=120))
        try:
            with phase(f"draining it, {repeat} x 3 consumers"):
                for _ in range(repeat):  # interleaved, so drift affects all alike
                    raw_rates.append(raw_limit(url, resource_version, objects))
                    our_rates.append(informer_rate(replay, initial, resource_version, objects,
                                                   decode=False))
                    decoded_rates.append(informer_rate(replay, initial, resource_version,
                                                       objects, decode=True))
        finally:
            replay.close()
    full = [line[line.index(b'"object":') + 9:line.rindex(b"}")]
            for line in stream.splitlines()]  # each event's pod, as served
    del stream
    with phase(f"sizes, and memory of {MEMORY_SAMPLE} in a Store"):
        served = statistics.fmean(len(raw) for raw in full)
        stored = statistics.fmean(stored_size(raw) for raw in full)
        per_object = store_memory(full[:MEMORY_SAMPLE])  # per object: the same at any count
    raw_best, ours_best, decoded_best = (max(r for r, _ in rates)
                                         for rates in (raw_rates, our_rates, decoded_rates))
    raw_cpu, ours_cpu, decoded_cpu = (statistics.median(c for _, c in rates) * 1e6
                                      for rates in (raw_rates, our_rates, decoded_rates))
    return {
        "objects": objects, "repeat": repeat,
        "writes_per_s": {"create": round(objects / create), "update": round(objects / update)},
        "events_per_s": {"raw_limit": round(raw_best), "informer": round(ours_best),
                         "raw_limit_runs": [round(r) for r, _ in raw_rates],
                         "informer_runs": [round(r) for r, _ in our_rates],
                         "ratio": round(ours_best / raw_best, 3), "goal_ratio": 0.8,
                         "informer_decoded": round(decoded_best),
                         "informer_decoded_runs": [round(r) for r, _ in decoded_rates],
                         "ratio_decoded": round(decoded_best / raw_best, 3)},
        "cpu_us_per_event": {"raw_limit": round(raw_cpu, 1), "informer": round(ours_cpu, 1),
                             "ratio": round(raw_cpu / ours_cpu, 3),
                             "informer_decoded": round(decoded_cpu, 1)},
        "bytes_per_object": {"served_compact_json": round(served),
                             "stored_compact_json": round(stored),
                             "store_tracemalloc": round(per_object),
                             "ratio_to_served": round(per_object / served, 3),
                             "goal_ratio": 1.2},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
    }


def table(result: dict[str, Any]) -> Iterator[str]:
    rates, sizes = result["events_per_s"], result["bytes_per_object"]
    yield (f"informer ingest, {result['objects']} pods, {result['repeat']} runs each "
           "(best shown), one consumer thread")
    yield f"{'watch events/s':<44}{'value':>10}"
    yield f"{'  urllib3 + split + orjson.loads (limit)':<44}{rates['raw_limit']:>10}"
    yield f"{'  reflector + SharedInformer + change handler':<44}{rates['informer']:>10}"
    yield (f"{'  ours / limit':<44}{rates['ratio']:>10.0%}"
           f"   (goal >= {rates['goal_ratio']:.0%})")
    yield f"{'  same, handler given old+new as dicts':<44}{rates['informer_decoded']:>10}"
    yield f"{'  that / limit':<44}{rates['ratio_decoded']:>10.0%}"
    cpu = result["cpu_us_per_event"]
    yield f"{'CPU us per event (median)':<44}{'value':>10}"
    yield f"{'  urllib3 + split + orjson.loads (limit)':<44}{cpu['raw_limit']:>10}"
    yield f"{'  reflector + SharedInformer + change handler':<44}{cpu['informer']:>10}"
    yield f"{'  limit / ours':<44}{cpu['ratio']:>10.0%}"
    yield f"{'  same, handler given old+new as dicts':<44}{cpu['informer_decoded']:>10}"
    yield f"{'bytes per cached pod':<44}{'value':>10}"
    yield f"{'  compact JSON as served (managedFields)':<44}{sizes['served_compact_json']:>10}"
    yield f"{'  compact JSON as stored (stripped)':<44}{sizes['stored_compact_json']:>10}"
    yield f"{'  Store, tracemalloc':<44}{sizes['store_tracemalloc']:>10}"
    yield (f"{'  Store / served':<44}{sizes['ratio_to_served']:>10.2f}"
           f"   (goal <= {sizes['goal_ratio']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=50000,
                        help="pods listed, then updates replayed (the issue's figure: 50000)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each consumer")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" /
                        "informer.json", help="where the result JSON goes")
    args = parser.parse_args()
    result = run(args.objects, args.repeat)
    out = args.out
    out.write_text(json.dumps(result, indent=2) + "\n")
    for line in table(result):
        print(line)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
