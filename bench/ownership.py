"""What field ownership (managedFields) costs the local API server per write, in one process:
a Deployment of 3 containers (8 env vars and 2 ports each), created (all its fields to the
creator), merge-patched by another manager (one field), and server-side applied (a changed
image, by a third manager, forced). Each figure is the best of 7 runs, and its ratio to an
orjson round trip of the same object (what every write pays anyway), so runs on a noisy
machine compare.

    .venv/bin/python bench/ownership.py [--number 300]
"""

from __future__ import annotations

import argparse
import copy
import timeit
from typing import Any

import orjson

from envtest.patch import managed
from envtest.patch.shapes import shape_of

SHAPE = shape_of("Deployment", builtin=True, schema=None)


def deployment(image: str = "img:1") -> dict[str, Any]:
    containers = [{"name": f"c{j}", "image": image,
                   "env": [{"name": f"E{k}", "value": str(k)} for k in range(8)],
                   "ports": [{"containerPort": 8000 + k} for k in range(2)]} for j in range(3)]
    labels = {"app": "web"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": labels},
            "spec": {"selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels}, "spec": {"containers": containers}}}}


def manager(name: str, operation: str = "Update") -> managed.Owner:
    return managed.Owner({"manager": name, "operation": operation, "apiVersion": "apps/v1",
                          "time": "2026-01-01T00:00:00Z"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--number", type=int, default=300)
    number = parser.parse_args().number
    live = deployment()
    live["metadata"]["managedFields"] = managed.entries(
        managed.update({}, live, SHAPE, [], manager("creator")))
    patched = copy.deepcopy(live)
    patched["spec"]["replicas"] = 3
    applied = deployment("img:2")
    stored = live["metadata"]["managedFields"]

    def create() -> None:
        managed.entries(managed.update({}, live, SHAPE, [], manager("creator")))

    def patch() -> None:
        managed.entries(managed.update(live, patched, SHAPE, managed.owners(stored),
                                       manager("patcher")))

    def apply() -> None:
        _, owners = managed.apply(live, applied, SHAPE, managed.owners(stored),
                                  manager("deployer", "Apply"), force=True)
        managed.entries(owners)

    def round_trip() -> None:
        orjson.loads(orjson.dumps(live))

    base = min(timeit.repeat(round_trip, number=number, repeat=7)) / number
    print(f"orjson round trip of the object ({len(orjson.dumps(live))} bytes): "
          f"{base * 1e6:.0f} µs")
    for name, fn in (("create", create), ("merge patch", patch), ("apply", apply)):
        cost = min(timeit.repeat(fn, number=number, repeat=7)) / number
        print(f"{name}: {cost * 1e6:.0f} µs ({cost / base:.1f}x the round trip)")


if __name__ == "__main__":
    main()
