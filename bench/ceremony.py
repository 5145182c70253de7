"""What the less-ceremony helpers cost: Warning-header handling per response, a cached
RESTMapper lookup against a hand-written Resource, discovery's first load, and
create_or_update when nothing changed (a cache read, no request) against Client.mutate (a GET
and a PUT) — all in one run, against a local API server in its own process.

Run: ``.venv/bin/python bench/ceremony.py`` (about 20 s). Figures are per call, medians of
five rounds; compare them within one run only (the machine is shared).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import urllib3

from ambient_ctrl.createorupdate import create_or_update
from ambient_ctrl.testing import cached_client, eventually, start_apiserver_process, stop_process
from informers.apiwarnings import parse_warning_headers
from informers.resource import CONFIGMAPS

ROUNDS = 5


def per_call(work: Callable[[], object], count: int) -> float:
    """Median seconds per call over ``ROUNDS`` rounds of ``count`` calls."""
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(count):
            work()
        rounds.append((time.perf_counter() - started) / count)
    return statistics.median(rounds)


def header_costs() -> list[tuple[str, float]]:
    plain = urllib3.HTTPHeaderDict({"Content-Type": "application/json", "Date": "x",
                                    "Content-Length": "100", "Audit-Id": "y"})
    warned = urllib3.HTTPHeaderDict(plain)
    warned.add("Warning", '299 - "unknown field \\"x\\""')
    return [
        ("Warning check, response without one", per_call(
            lambda: plain.getlist("Warning"), 200_000)),
        ("Warning parse, response with one", per_call(
            lambda: list(parse_warning_headers(warned.getlist("Warning"))), 50_000)),
    ]


def client_costs(kubeconfig: Path) -> list[tuple[str, float]]:
    with cached_client(kubeconfig, detect_mutations=False) as client:
        started = time.perf_counter()
        client.mapper.resource_for("", "ConfigMap")
        first = time.perf_counter() - started
        figures = [("discovery, first lookup (/api, /apis, /api/v1)", first),
                   ("mapper lookup, cached", per_call(
                       lambda: client.mapper.resource_for("", "ConfigMap"), 100_000))]
        client.create(CONFIGMAPS, {"metadata": {"name": "bench", "namespace": "default"},
                                   "data": {"a": "1"}})
        eventually(lambda: client.get(CONFIGMAPS, "bench", "default"))

        def unchanged() -> object:
            return create_or_update(client, CONFIGMAPS, ("default", "bench"),
                                    lambda cm: cm.update(data={"a": "1"}))

        def mutate() -> object:
            return client.mutate(CONFIGMAPS, "bench", "default",
                                 lambda cm: cm.update(data={"a": "1"}))

        figures += [("create_or_update, unchanged (cache read only)", per_call(unchanged, 2000)),
                    ("Client.mutate, same change (GET + PUT)", per_call(mutate, 200))]
        return figures


def main() -> None:
    figures = header_costs()
    with tempfile.TemporaryDirectory() as tmp:
        process, _, kubeconfig = start_apiserver_process(Path(tmp) / "kubeconfig",
                                                         log=Path(tmp) / "apiserver.log")
        try:
            figures += client_costs(kubeconfig)
        finally:
            stop_process(process)
    for label, seconds in figures:
        print(f"{label:<52} {seconds * 1e6:>10.2f} µs")


if __name__ == "__main__":
    main()
