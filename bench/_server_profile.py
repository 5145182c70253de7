"""py-spy's samples of the local API server (``envtest``), grouped by concept and by origin.

The server runs one thread, its event loop (uvloop where installed): every sample is that
thread's. uvloop writes to a socket from C without releasing the GIL, so the kernel's time in
``send`` on the loopback — the wire — is sampled, and counted for the Python line that called
``transport.write``: the concept "socket writes". A C call (``orjson``, ``deepcopy``'s
helpers) counts for the Python line that made it, as in :mod:`_profile`.

A sample's concept is that of its innermost frame that names one (:data:`RULES`); its origin is
who asked for the work, the first of :data:`ORIGINS` that any of its frames names: a
simulator's work (its in-process writes included), the garbage collector's, a watch stream's
fan-out and framing, or an HTTP request's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import _profile

RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern)) for name, pattern in (
        ("socket writes (the wire: uvloop's send on the loopback, GIL held)",
         r"^(HTTPProtocol\.(write|_respond)|ChunkedStream\._flush) \(envtest/http/protocol\.py"),
        ("logging", r"\(logging/"),
        ("copy.deepcopy", r"\(copy\.py"),
        ("JSON decode of stored objects (Stored.load: orjson.loads)", r"^Stored\.load "),
        ("storage: put/serialise, revisions, history, indexes, event fan-out",
         r"\(envtest/storage/"),
        ("HTTP parsing, framing, routing (envtest.http)", r"\(envtest/http/"),
        ("request bodies: decode, encode, limits (envtest.codecs)", r"\(envtest/codecs/"),
        ("CRD schema: defaulting, pruning, validation (envtest.schema)", r"\(envtest/schema/"),
        ("managed fields, patches (envtest.patch)", r"\(envtest/patch/"),
        ("kinds: built-in defaulting, validation, field extraction (envtest.kinds)",
         r"\(envtest/kinds/"),
        ("authn, authz, TokenRequest (envtest.auth)", r"\(envtest/auth/"),
        ("admission webhooks chain (envtest.webhooks)", r"\(envtest/webhooks/"),
        ("garbage collector (envtest.gc)", r"\(envtest/gc\.py"),
        ("faults and request recording", r"\(envtest/(faults|recording)\.py"),
        ("simulators' own logic (kubelet, timers)", r"\(envtest/simulators/"),
        ("verbs: read/write/watch handlers, admission plumbing (envtest.verbs)",
         r"\(envtest/verbs/"),
        ("commit: create/update/delete steps (envtest.commit)", r"\(envtest/commit/"),
        ("other envtest, foundation", r"\((envtest|foundation)/"),
        ("event loop (asyncio, uvloop)", r"\((asyncio/|uvloop)"),
    ))

ORIGINS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern)) for name, pattern in (
        ("simulators (in-process writes: kubelet binds and status)", r"\(envtest/simulators/"),
        ("garbage collector", r"\(envtest/gc\.py"),
        ("watch streams (fan-out, framing)", r"^(ChunkedStream|WatchStream|Watch)\.|"
                                             r"\(envtest/storage/watch\.py"),
        ("HTTP requests (parse, handle, answer)", r"^HTTPProtocol\."),
    ))


def _first_match(frames: list[str], rules: tuple[tuple[str, re.Pattern[str]], ...]) -> str:
    for frame in reversed(frames):
        for name, pattern in rules:
            if pattern.search(frame):
                return name
    leaf = frames[-1] if frames else "?"
    module = leaf[leaf.find("(") + 1:].split(":")[0] if "(" in leaf else leaf
    return f"other ({module})"


def concept(frames: list[str]) -> str:
    """The concept of one stack (frames root first)."""
    return _first_match(frames, RULES)


def origin(frames: list[str]) -> str:
    """Who asked for the work of one stack (frames root first)."""
    for name, pattern in ORIGINS:
        if any(pattern.search(frame) for frame in frames):
            return name
    return "other (event loop, timers)"


def summarise(path: Path, *, ms_per_session: float | None = None, top: int = 20
              ) -> dict[str, Any]:
    """:func:`_profile.summarise` with the server's concepts, and its origins."""
    return _profile.summarise(path, ms_per_session=ms_per_session, top=top, classify=concept,
                              groupings={"origins": origin})


def table(profile: dict[str, Any], key: str = "concepts") -> list[str]:
    """A markdown table of one grouping of :func:`summarise`."""
    rows = ["| " + ("concept" if key == "concepts" else key.rstrip("s")) +
            " | % of samples | ms/session |", "|---|---:|---:|"]
    for row in profile[key]:
        ms = row.get("ms_per_session")
        rows.append(f"| {row['name']} | {row['percent']} | "
                    f"{'' if ms is None else f'{ms:.2f}'} |")
    return rows
