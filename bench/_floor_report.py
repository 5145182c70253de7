"""The report of ``bench/wire_floor.py``: its result (``floor.json``) as Markdown, what it writes
to ``floor.md`` and prints — our CPU per session against the floor's, by pair; the wire of the
first pair; where our CPU goes (the profile) and above the floor; how it was measured, and on
what machine. Reported, never asserted: the goal is stated and marked ✓ or ✗.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

GOAL = 1.5
"""Ours ≤ this many times the floor's CPU per session, by the pairs' median (issue 20)."""


def markdown(result: dict[str, Any], how: str) -> str:
    """``result`` in Markdown; ``how`` is the measuring module's docstring (``wire_floor``),
    whose second and third paragraphs (the runs, and what each one measures) the report quotes
    under "How"."""
    return "\n".join(_markdown(result, how)) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"


def _markdown(result: dict[str, Any], how: str) -> Iterator[str]:
    summary, runs, args = result["summary"], result["runs"], result["args"]
    yield "# The wire's cost as the operator's limit (issue 20 item 1)"
    yield ""
    yield (f"{result['date']}, `bench/wire_floor.py`: {args['sessions']} sessions in a burst, "
           f"{len(runs)} interleaved ours/floor pair(s), {args['workers']} workers, "
           f"{result['seconds']:.0f} s in all. Reported, never asserted.")
    yield ""
    yield "| CPU per session (ms) | min | median | max |"
    yield "|---|---:|---:|---:|"
    for label, key in (("ours (operator process)", "ours_cpu_ms_per_session"),
                       ("floor (bare urllib3 + orjson)", "floor_cpu_ms_per_session"),
                       ("floor: writes", "floor_writes_ms_per_session"),
                       ("floor: watch parsing", "floor_watch_ms_per_session"),
                       ("**ratio ours / floor**", "ratio"),
                       ("raw floor (writes on hand-driven sockets)",
                        "raw_floor_cpu_ms_per_session"),
                       ("raw floor: writes", "raw_floor_writes_ms_per_session"),
                       ("ratio ours / raw floor", "raw_ratio")):
        row = summary.get(key)
        if row is None:
            continue
        yield f"| {label} | {row['min']:.2f} | {row['median']:.2f} | {row['max']:.2f} |"
    met = "✓" if summary["goal_met"] else "✗"
    yield ""
    yield (f"Goal: ours ≤ {GOAL}x the floor, by the pairs' median: {met} (best ratio "
           f"{summary['ratio']['min']:.2f}, "
           f"median {summary['ratio']['median']:.2f}).")
    yield ""
    yield "| repeat | ours ms/session | floor ms/session | ratio | ours s to all Running |"
    yield "|---:|---:|---:|---:|---:|"
    for i, run in enumerate(runs, 1):
        ours, floor = run["ours"]["cpu_ms_per_session"], run["floor"]["cpu_ms_per_session"]
        yield (f"| {i} | {ours:.2f} | {floor:.2f} | {ours / floor:.2f} | "
               f"{run['ours']['seconds']} |")
    yield from _wire(runs[0])
    if result.get("profile"):
        yield from _profile_table(result["profile"], summary)
    yield from _method(result, how)


def _wire(run: dict[str, Any]) -> Iterator[str]:
    floor, sessions = run["floor"], run["floor"]["sessions"]
    yield ""
    yield "## The wire (first pair)"
    yield ""
    yield "| verb resource | ours (server's count) | recorded | replayed (server's count) |"
    yield "|---|---:|---:|---:|"
    ours = run["ours"]["writes"]
    for key in sorted(set(ours) | set(floor["writes_recorded"]) | set(floor["writes_served"])):
        yield (f"| {key} | {ours.get(key, 0)} | {floor['writes_recorded'].get(key, 0)} | "
               f"{floor['writes_served'].get(key, 0)} |")
    watch = floor["watch"]
    yield ""
    yield (f"Per session: {sum(ours.values()) / sessions:.2f} writes, "
           f"{_fmt(floor['write_bytes_per_session'])} bytes of request bodies; "
           f"{watch['events_per_session']} watch events, {_fmt(watch['bytes_per_session'])} "
           f"bytes of watch streams ({watch['streams']} watches). "
           f"Answers ≥ 400 in the replay: {floor['rejected']}.")


def _profile_table(profile: dict[str, Any], summary: dict[str, Any]) -> Iterator[str]:
    yield ""
    yield "## Where our CPU goes (py-spy, a separate run)"
    yield ""
    if "error" in profile:
        yield profile["error"]
        return
    yield (f"{profile['samples']} samples (250/s, `--gil --nonblocking`) over a run at "
           f"{profile['run']['cpu_ms_per_session']} ms/session (the measured runs' median: "
           f"{summary['ours_cpu_ms_per_session']['median']}; the floor's: "
           f"{summary['floor_cpu_ms_per_session']['median']}). ms/session = share x the "
           "profiled run's CPU per session; the kernel's time in send/recv is not sampled.")
    yield ""
    yield "| concept | % of samples | ms/session |"
    yield "|---|---:|---:|"
    for row in profile["concepts"]:
        yield f"| {row['name']} | {row['percent']} | {row['ms_per_session']:.2f} |"
    yield ""
    yield from _above(profile, summary)
    yield ""
    yield "Innermost frames (self time):"
    yield ""
    yield "| frame | % |"
    yield "|---|---:|"
    for row in profile["leaves"]:
        yield f"| `{row['name']}` | {row['percent']} |"


WIRE_CONCEPTS = ("HTTP client", "watch stream decode")
"""The profile's concepts the floor has too (it sends the same requests and parses the same
watch lines); every other concept is work above the wire."""


def _above(profile: dict[str, Any], summary: dict[str, Any]) -> Iterator[str]:
    """Where the CPU above the floor goes, in words: the wire's concepts against the floor,
    then the largest of the rest."""
    wire = [c for c in profile["concepts"] if c["name"].startswith(WIRE_CONCEPTS)]
    rest = [c for c in profile["concepts"] if not c["name"].startswith(WIRE_CONCEPTS)]
    wire_ms = sum(c["ms_per_session"] for c in wire)
    rest_ms = sum(c["ms_per_session"] for c in rest)
    floor = summary["floor_cpu_ms_per_session"]["median"]
    largest = ", ".join(f"{c['name']} {c['ms_per_session']:.2f}" for c in rest[:5])
    yield (f"**Above the floor.** The concepts the floor has too (HTTP client, watch decode) "
           f"take {wire_ms:.2f} ms/session of ours under the GIL (the floor: {floor:.2f}, "
           f"the kernel's send/recv included); the rest, {rest_ms:.2f} ms/session, is work "
           f"the floor does not do. Largest: {largest} (ms/session).")


def _method(result: dict[str, Any], how: str) -> Iterator[str]:
    machine = result["machine"]
    yield ""
    yield "## How"
    yield ""
    yield from (line.strip() for line in how.split("\n\n")[1:3])
    yield ""
    yield "## Machine and commands"
    yield ""
    yield (f"- {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['memory_gib']} GiB, "
           f"Python {machine['python']}, orjson {machine['orjson']}; load average before / "
           f"after: {machine['load_average']} / {result['load_after']} (other work on the "
           "machine slows both alike; CPU seconds move less than wall time)")
    yield f"- `{' '.join(result['command'])}`"
    if result.get("server_command"):
        yield f"- server: `{' '.join(result['server_command'])}`"
