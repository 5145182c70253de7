"""The workqueue's own cost per operation at 10,000 and 100,000 waiting items, with priorities
and without (``priorities=False``: one FIFO): no operation may cost in proportion to the
queue's length (issue 20 item 3).

For each size: the queue is filled with that many items (a tenth of them at normal priority,
the rest low, as after an initial list with events arriving), then timed:

* **add**: adding new items to the full queue (µs per add);
* **raise**: adding at normal priority an item waiting at low priority (µs per raise);
* **get+done**: handing out an item and finishing it, until the queue is empty (µs per pair).

Single-threaded, no metrics, the real clock: what a worker pays around each reconcile.

    .venv/bin/python bench/workqueue_ops.py [--sizes 10000,100000]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

from ambient_ctrl.workqueue import LOW_PRIORITY, NORMAL_PRIORITY, WorkQueue

RESULTS = Path(__file__).resolve().parent / "results"
TIMED = 10000
"""Operations timed per measurement (adds, raises)."""


def filled(size: int, priorities: bool) -> WorkQueue[int]:
    queue: WorkQueue[int] = WorkQueue(name=f"bench-{size}", priorities=priorities)
    for item in range(size):
        queue.add(item, NORMAL_PRIORITY if item % 10 == 0 else LOW_PRIORITY)
    return queue


def per_op(seconds: float, count: int) -> float:
    return round(seconds / count * 1e6, 2)


def measure(size: int, priorities: bool) -> dict[str, float]:
    """µs per add, raise and get+done with ``size`` items waiting."""
    gc.collect()
    queue = filled(size, priorities)
    started = time.perf_counter()
    for item in range(size, size + TIMED):
        queue.add(item, LOW_PRIORITY)
    add = per_op(time.perf_counter() - started, TIMED)
    started = time.perf_counter()
    for item in range(1, TIMED * 10, 10):  # low items raised (every tenth one is normal)
        queue.add(item, NORMAL_PRIORITY)
    raised = per_op(time.perf_counter() - started, TIMED)
    count = queue.depth()
    started = time.perf_counter()
    while (item := queue.get(timeout=0)) is not None:
        queue.done(item)
    get_done = per_op(time.perf_counter() - started, count)
    queue.shutdown(timeout=0)
    return {"add_us": add, "raise_us": raised, "get_done_us": get_done}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--out", type=Path, default=RESULTS / "workqueue.json")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    print(f"{'queue':<28}{'add µs':>9}{'raise µs':>10}{'get+done µs':>13}")
    for size in (int(s) for s in args.sizes.split(",")):
        for priorities in (True, False):
            name = f"{size} items, {'priorities' if priorities else 'fifo'}"
            results[name] = row = measure(size, priorities)
            print(f"{name:<28}{row['add_us']:>9}{row['raise_us']:>10}{row['get_done_us']:>13}",
                  flush=True)
    args.out.write_text(json.dumps({"benchmark": "bench/workqueue_ops.py", "timed": TIMED,
                                    "results": results}, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
