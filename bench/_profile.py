"""py-spy's samples of our operator (``py-spy record -f raw``: one collapsed stack a line,
``frame;frame;... count``, root first), grouped by concept.

A sample belongs to the concept of its innermost frame that names one (:data:`RULES`, first
match from the leaf up): time in urllib3 under a reconcile is the HTTP client's, not the
reconcile's; a C call (``orjson.dumps``, a lock) has no frame of its own and counts for the
Python line that made it. The HTTP client's samples are split by who asked: a reflector's watch
stream, or a request. With ``--gil`` only the thread holding the GIL is sampled: Python CPU,
not waits, and not the kernel's time in ``send``/``recv`` (taken without the GIL).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

AUTH = "kubernetes client: auth refresh per request (a proxy look-up through os.environ)"
RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (concept, re.compile(pattern)) for concept, pattern in (
        ("logging", r"\((logging/|ambient_ctrl/logcontext\.py)"),
        ("metrics", r"\((prometheus_client/|metrics/)"),
        ("events recorder", r"\(ambient_ctrl/events\.py"),
        ("HTTP client (informers.http1, urllib3, http.client, socket)",
         r"\((informers/http1\.py|urllib3/|http/client\.py|socket\.py|ssl\.py|email/"
         r"|selectors\.py)"),
        (AUTH, r"\(kubernetes/"),
        # os.environ's frames: in the hot path only the auth refresh's proxy look-up
        # (getproxies) iterates it; py-spy cuts some of those stacks short of their callers.
        (AUTH, r"^(ItemsView\.__iter__ \(<frozen _collections_abc>|_Environ\.)"),
        ("watch stream decode (split, managedFields cut, orjson.loads)",
         r"^(WatchEvents\.|parse_without_managed_fields |_array_end |_closing )"),
        ("REST transport (informers.rest, .transport: request, headers, JSON encode/decode)",
         r"\(informers/(rest|transport|errors|apiwarnings)\.py|^parse_object_without_managed_"),
        ("informer ingest (reflector, store, indexes, dispatch)", r"\(informers/"),
        ("event handlers and predicates (enqueue)", r"\(ambient_ctrl/(handler|predicate)\.py"),
        ("workqueue and rate limiter", r"\(ambient_ctrl/(workqueue|ratelimit|timer)\.py"),
        ("client: cache reads, read-your-writes, expectations",
         r"\(ambient_ctrl/(client|readyourwrites|expectations|createorupdate|ownerref|"
         r"notfound)\.py"),
        ("reconcile logic and rendering (reconcilers)", r"\(reconcilers/"),
        ("controller loop", r"\(ambient_ctrl/controller\.py"),
        ("copy (deepcopy)", r"\(copy\.py"),
        ("threads, locks, queues (stdlib)", r"\((threading|queue)\.py"),
        ("other framework (ambient_ctrl, foundation)", r"\((ambient_ctrl|foundation)/"),
    ))
HTTP = RULES[3][0]


def concept(frames: list[str]) -> str:
    """The concept of one stack (frames root first)."""
    for frame in reversed(frames):
        if frame.startswith("_cut ("):
            continue  # rawjson's cut, for a watch event or an answer: its caller says which
        for name, pattern in RULES:
            if pattern.search(frame):
                if name == HTTP:
                    watching = any(f.startswith(("WatchEvents.", "Reflector.")) for f in frames)
                    return f"{name}: {'watch streams' if watching else 'requests'}"
                return name
    leaf = frames[-1] if frames else "?"
    module = leaf[leaf.find("(") + 1:].split("/")[0].split(".py")[0] if "(" in leaf else leaf
    return f"other ({module})"


def read(path: Path) -> Counter[str]:
    """Collapsed stacks → samples."""
    stacks: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


Classify = Callable[[list[str]], str]
"""A stack's group (frames root first)."""


def summarise(path: Path, *, ms_per_session: float | None = None, top: int = 15,
              classify: Classify = concept, groupings: dict[str, Classify] | None = None
              ) -> dict[str, Any]:
    """Samples by concept (``classify``; with %, and ms per session when the run's CPU per
    session is given), by each of ``groupings`` (a key of the result each), and the ``top``
    innermost frames."""
    stacks = read(path)
    total = sum(stacks.values()) or 1
    concepts: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    grouped: dict[str, Counter[str]] = {key: Counter() for key in groupings or {}}
    for stack, count in stacks.items():
        frames = stack.split(";")
        concepts[classify(frames)] += count
        leaves[frames[-1]] += count
        for key, group in (groupings or {}).items():
            grouped[key][group(frames)] += count

    def row(name: str, count: int) -> dict[str, Any]:
        out = {"name": name, "samples": count, "percent": round(100 * count / total, 1)}
        if ms_per_session is not None:
            out["ms_per_session"] = round(ms_per_session * count / total, 3)
        return out

    return {"samples": sum(stacks.values()),
            "concepts": [row(name, n) for name, n in concepts.most_common()],
            **{key: [row(name, n) for name, n in counts.most_common()]
               for key, counts in grouped.items()},
            "leaves": [row(name, n) for name, n in leaves.most_common(top)]}
