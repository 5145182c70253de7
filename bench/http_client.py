"""Client CPU per ordinary request: urllib3 (what the transport used before
``informers.http1``) against our transport, on one keep-alive connection to the local API
server in another process.

Per client, N GETs of one ConfigMap then N merge PATCHes of it (each a new resourceVersion),
sequentially from one thread; the client process's CPU (user + system, so the kernel's send
and receive are in it) over each batch, per request. The best of R rounds is reported (the
machine is shared). Results go to stdout and ``bench/results/http_client.json``.

    .venv/bin/python bench/http_client.py [--requests 3000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable
from pathlib import Path

import _report
import orjson
import urllib3
from _server import apiserver_process  # bench/ is on sys.path: these run as scripts

from informers.resource import CONFIGMAPS
from informers.rest import ResourceClient, Transport, load_configuration

RESULTS = Path(__file__).resolve().parent / "results"
NAME, NAMESPACE = "http-client-bench", "default"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def per_request(send: Callable[[int], object], requests: int) -> float:
    """Client CPU microseconds per call of ``send``."""
    started = cpu()
    for i in range(requests):
        send(i)
    return (cpu() - started) / requests * 1e6


def run(requests: int, rounds: int) -> dict[str, dict[str, float]]:
    with apiserver_process() as server:
        transport = Transport(load_configuration(str(server.kubeconfig)))
        configmaps = ResourceClient(transport, CONFIGMAPS)
        configmaps.create({"metadata": {"name": NAME}, "data": {"n": "0"}}, NAMESPACE)
        path = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{NAME}"
        host, port = server.url.removeprefix("http://").split(":")
        pool = urllib3.HTTPConnectionPool(host, int(port), maxsize=1, retries=False)
        headers = {"Accept": "application/json", "User-Agent": "bench"}
        patch_headers = {**headers, "Content-Type": "application/merge-patch+json"}

        def urllib3_get(i: int) -> object:
            return pool.urlopen("GET", path, headers=headers, redirect=False).data

        def urllib3_patch(i: int) -> object:
            return pool.urlopen("PATCH", path, headers=patch_headers, redirect=False,
                                body=orjson.dumps({"data": {"n": str(i)}})).data

        def ours_get(i: int) -> object:
            return configmaps.get(NAME, NAMESPACE)

        def ours_patch(i: int) -> object:
            return configmaps.patch(NAME, {"data": {"n": str(i)}}, NAMESPACE)

        best: dict[str, dict[str, float]] = {}
        try:
            for _ in range(rounds):
                for client, get, patch in (("urllib3", urllib3_get, urllib3_patch),
                                           ("ours", ours_get, ours_patch)):
                    for verb, send in (("get", get), ("patch", patch)):
                        measured = per_request(send, requests)
                        row = best.setdefault(client, {})
                        row[verb] = round(min(row.get(verb, measured), measured), 1)
        finally:
            pool.close()
            transport.close()
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per batch")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best is reported")
    args = parser.parse_args(argv)
    started = time.monotonic()
    best = run(args.requests, args.rounds)
    result = {"requests": args.requests, "rounds": args.rounds,
              "client_cpu_us_per_request": best,
              "ratio_ours_to_urllib3": {verb: round(best["ours"][verb] / best["urllib3"][verb], 3)
                                        for verb in ("get", "patch")},
              "seconds": round(time.monotonic() - started, 1), "machine": _report.machine()}
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "http_client.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
