"""Where the local API server's CPU goes while our operator runs a burst of sessions.

One fresh server (``ambient-ctrl apiserver --simulate kubelet``, as ``bench/operators.py`` runs
it) and our operator; N sessions POSTed at once (``bench/operators.py``'s burst), the server
under py-spy (``--gil --nonblocking``, 250 samples/s) from the first POST until the operator
went quiet. Reported: the server's CPU (utime + stime from ``/proc``) per session, the
operator's writes per session, and the samples grouped by concept and by origin
(``_server_profile.py``) in ms/session of wall time holding the GIL. uvloop sends from C with
the GIL held, so time in ``send`` is sampled (the "socket writes" concept), including time the
thread waited there for a core; the kernel's time in ``recv`` and ``epoll`` is not.

    .venv/bin/python bench/apiserver_profile.py [--sessions 1000] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _profile
import _server_profile
from operators import RESULTS, Sizes, run_operator

RATE = 250
"""py-spy's samples per second (``operators.profiled``)."""


def run(sessions: int, workers: int, workdir: Path, keep: Path | None = None
        ) -> dict[str, Any]:
    """One profiled burst of ``sessions``; its figures and the grouped samples (py-spy's raw
    samples copied to ``keep`` when given)."""
    sizes = Sizes.scaled(sessions / 2000, 100.0)
    samples = workdir / "profile"
    load_before = [round(x, 2) for x in os.getloadavg()]
    burst = run_operator("ours", sizes, ["burst"], workers, workdir,
                         profile_server=samples)["burst"]
    server_ms = burst["server_cpu_seconds"] * 1000 / burst["sessions"]
    raw = samples / "apiserver-ours-burst.txt"
    if keep is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
        keep.write_bytes(raw.read_bytes())
    held = sum(_profile.read(raw).values()) / RATE * 1000 / burst["sessions"]
    profile = _server_profile.summarise(raw, ms_per_session=held)
    return {"sessions": burst["sessions"], "running": burst["running"],
            "seconds": burst["seconds"], "server_cpu_seconds": burst["server_cpu_seconds"],
            "server_system_seconds": burst["server_system_seconds"],
            "server_cpu_ms_per_session": round(server_ms, 2),
            "server_system_ms_per_session": round(
                burst["server_system_seconds"] * 1000 / burst["sessions"], 2),
            "gil_ms_per_session": round(held, 2),
            "operator_cpu_ms_per_session": burst["cpu_ms_per_session"],
            "writes_per_session": burst["writes_per_session"], "writes": burst["writes"],
            "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()],
            "profile": profile}


def markdown(result: dict[str, Any], argv: list[str]) -> str:
    profile = result["profile"]
    lines = [
        "# Where the local API server's CPU goes (our operator, one burst)", "",
        f"`{' '.join(argv)}` — {result['sessions']} sessions ({result['running']} Running) in "
        f"{result['seconds']} s; load average before {result['load_before']}, after "
        f"{result['load_after']}.", "",
        f"API server CPU: **{result['server_cpu_ms_per_session']} ms/session** "
        f"({result['server_cpu_seconds']} s, of which the kernel's: "
        f"{result['server_system_ms_per_session']} ms/session); the operator's: "
        f"{result['operator_cpu_ms_per_session']} ms/session; "
        f"{result['writes_per_session']} operator writes per session.", "",
        f"{profile['samples']} samples ({RATE}/s, `--gil --nonblocking`): the loop thread held "
        f"the GIL {result['gil_ms_per_session']} ms/session of wall time; ms/session below = "
        "a group's samples / 250 / sessions, that wall time. It counts time the thread was "
        "runnable but not running too, which is most of the socket-writes row: uvloop sends "
        "holding the GIL, and on 2 busy cores the kernel often runs the woken reader first "
        "(the kernel's whole CPU, send, recv and epoll, is the figure above). The other rows "
        "are the server's own Python work, stretched alike by the machine's load.", "",
        "## By concept (the innermost frame that names one)", "",
        *_server_profile.table(profile), "",
        "## By origin (who asked for the work)", "",
        *_server_profile.table(profile, "origins"), "",
        "## Innermost frames", "",
        *_server_profile.table(profile, "leaves"), "",
        "## Operator writes in the burst (server's count)", "",
        "| verb resource | count |", "|---|---:|",
        *(f"| {key} | {n} |" for key, n in sorted(result["writes"].items())), "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000, help="sessions in the burst")
    parser.add_argument("--workers", type=int, default=8,
                        help="our --max-concurrent-reconciles (its default: 8)")
    parser.add_argument("--samples", type=Path, default=None, metavar="FILE",
                        help="keep py-spy's raw samples (collapsed stacks) in FILE")
    parser.add_argument("--out", type=Path, default=RESULTS / "apiserver-profile",
                        help="results path without suffix (.json and .md are written)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-apiserver-profile-") as tmp:
        result = run(args.sessions, args.workers, Path(tmp), args.samples)
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    command = ["bench/apiserver_profile.py", *(sys.argv[1:] if argv is None else argv)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result, command)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
