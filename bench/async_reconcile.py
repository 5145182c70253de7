"""Async reconcilers against the threaded path: cost per reconcile through the whole controller.

Each variant queues N distinct requests into a controller's workqueue, starts it and times
until every reconcile settled: the queue hand-out, the reconcile, the settling, and for the
async path the pump thread and the loop's task. Two reconcilers:

* ``noop`` returns at once: the framework's own cost per reconcile, threads (one worker per
  ``--workers``) against tasks on the event loop (at most ``--workers`` at once);
* ``wait`` waits ``--wait-ms`` as a reconcile waiting on I/O does (``time.sleep`` in a worker
  thread, ``asyncio.sleep`` in a task) at ``--concurrency`` at once: what many slow reconciles
  in flight cost in CPU and wall time.

Reported per variant: wall µs per reconcile and process CPU µs per reconcile (the best of
``--rounds``; the machine is shared). Run::

    .venv/bin/python bench/async_reconcile.py [--requests 5000] [--workers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ambient_ctrl.aio import EventLoop
from ambient_ctrl.controller import Controller, ControllerOptions
from ambient_ctrl.reconcile import Request, Result


class _Noop:
    def reconcile(self, request: Request) -> Result:
        return Result()


class _AsyncNoop:
    async def reconcile(self, request: Request) -> Result:
        return Result()


@dataclass(frozen=True)
class _Wait:
    seconds: float

    def reconcile(self, request: Request) -> Result:
        time.sleep(self.seconds)
        return Result()


@dataclass(frozen=True)
class _AsyncWait:
    seconds: float

    async def reconcile(self, request: Request) -> Result:
        await asyncio.sleep(self.seconds)
        return Result()


def _run(reconciler: object, concurrency: int, requests: int,
         use_loop: bool) -> tuple[float, float]:
    """(wall µs, CPU µs) per reconcile for one round."""
    loop = EventLoop("bench-loop") if use_loop else None
    if loop is not None:
        loop.reserve(concurrency)
        loop.start()
    controller = Controller("bench", reconciler,  # type: ignore[arg-type]
                            options=ControllerOptions(max_concurrent_reconciles=concurrency),
                            loop=loop)
    for i in range(requests):
        controller.queue.add(Request("ns", f"obj-{i}"))
    wall, cpu = time.perf_counter(), time.process_time()
    controller.start()
    while controller.queue.depth() or list(controller.queue.processing_seconds()):
        time.sleep(0.001)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    controller.stop(5)
    if loop is not None:
        loop.stop(5)
    return wall / requests * 1e6, cpu / requests * 1e6


def _best(run: Callable[[], tuple[float, float]], rounds: int) -> tuple[float, float]:
    results = [run() for _ in range(rounds)]
    return min(r[0] for r in results), min(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--wait-ms", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("ambient_ctrl").setLevel(logging.WARNING)
    wait = args.wait_ms / 1000
    waits = max(args.requests // 5, args.concurrency)
    variants = {
        f"noop, {args.workers} threads": lambda: _run(_Noop(), args.workers, args.requests,
                                                      False),
        f"noop, async ({args.workers} at once)": lambda: _run(_AsyncNoop(), args.workers,
                                                              args.requests, True),
        f"wait {args.wait_ms:g} ms, {args.concurrency} threads": lambda: _run(
            _Wait(wait), args.concurrency, waits, False),
        f"wait {args.wait_ms:g} ms, async ({args.concurrency} at once)": lambda: _run(
            _AsyncWait(wait), args.concurrency, waits, True),
    }
    for name, run in variants.items():
        wall, cpu = _best(run, args.rounds)
        print(f"{name:<34} wall {wall:8.1f} µs  cpu {cpu:8.1f} µs per reconcile")


if __name__ == "__main__":
    main()
