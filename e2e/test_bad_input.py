"""The bad-input run: hypothesis-generated malformed sessions and registry entries against the
operator process; each gets a clear answer and the operator never dies.

One API server process (kubelet and KubeVirt simulators) and one operator process (JSON logs)
serve the whole module. Each generated case has exactly one defect (or none), so the answer
it must get is known in advance:

* the API server refuses what the CRD schema or the name rules forbid: ``422 Invalid`` with
  causes — a clear error, recorded as handled;
* the operator answers the rest on the session: ``Ready=False`` with the defect's reason
  (UnknownRuntime, ReservedEnvName, InvalidEnvName, InvalidServiceName, and for runtimes
  from malformed registry entries InvalidRuntime, InvalidQuantity, InvalidResources,
  InvalidVMConfig, InvalidCloudInitTemplate, DuplicateRuntime) and a message, plus a Warning
  Event with that reason; sessions without a defect (Unicode everywhere, prompts of up to
  64 k characters, unknown fields the schema prunes) run: ``Running`` and ``Ready=True``.

Each defect class is its own Hypothesis run (a parametrized test), so every class gets its
share of the examples; the runs are derandomized, so every run submits the same cases.

Malformed registry entries are swapped into the registry ConfigMap while sessions exist,
once with a document that is not JSON at all (then repaired). At the end the operator must
be alive, answer ``/healthz``, have gone quiet (no writes: no retry storm), and its log may
hold tracebacks only for the expected TerminalErrors.
"""

from __future__ import annotations

import itertools
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ambient_ctrl.testing import eventually

from .operator_process import (
    POD_RUNTIME,
    REGISTRY_KEY,
    REGISTRY_NAME,
    REGISTRY_NAMESPACE,
    SESSIONS,
    VM_RUNTIME,
    World,
    condition,
    session_body,
    start_world,
    stop_world,
)

NS = "bad-input"
SESSION_EXAMPLES = 240
REGISTRY_EXAMPLES = 30
RESERVED = ["SESSION_NAME", "SESSION_NAMESPACE", "DISPLAY_NAME", "INITIAL_PROMPT",
            "REPOS_JSON", "LLM_MODEL", "LLM_TEMPERATURE", "LLM_MAX_TOKENS", "AGUI_PORT",
            "AGUI_TOKEN_FILE", "AGUI_TOKEN", "SESSION_TIMEOUT", "INACTIVITY_TIMEOUT"]
RUNNING = "Running"
REJECTED = "Rejected"
SETTINGS = settings(deadline=None, database=None, derandomize=True, phases=[Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
"""Reproducible runs (the same examples every time), no example database on disk, no
shrinking: every example is a session left on the server."""

pytestmark = [pytest.mark.timeout(280),
              pytest.mark.local_only("counts the operator's writes through the local server's "
                                     "admin endpoint; uses fixed namespace names")]


@dataclass(repr=False)
class Ledger:
    """What the run submitted and the answer each submission must get."""

    world: World
    names: Iterator[int] = field(default_factory=itertools.count)
    expected: dict[str, str] = field(default_factory=dict)
    """Accepted sessions: their expected outcome (RUNNING, or the Ready=False reason)."""
    rejected: list[dict[str, Any]] = field(default_factory=list)
    """The server's 422 answers (Status objects)."""
    registry: list[Any] = field(default_factory=lambda: [POD_RUNTIME, VM_RUNTIME])
    malformed_entries: int = 0
    swaps: int = 0

    def __repr__(self) -> str:
        return f"<ledger of {len(self.expected)} sessions>"

    def submit(self, name: str, spec: Any, expected: str) -> None:
        status, body = self.world.raw.request(
            "POST", f"{SESSIONS}/namespaces/{NS}/agenticsessions",
            session_body(name, NS, spec))
        if expected == REJECTED:
            assert status == 422, (name, spec, status, body)
            assert body["reason"] == "Invalid" and body["details"]["causes"], body
            assert all(c.get("message") for c in body["details"]["causes"]), body
            self.rejected.append(body)
        else:
            assert status == 201, (name, spec, status, body)
            self.expected[name] = expected

    def swap_registry(self, document: str | None = None) -> None:
        text = orjson.dumps(self.registry).decode() if document is None else document
        status, body = self.world.raw.request(
            "PATCH", f"/api/v1/namespaces/{REGISTRY_NAMESPACE}/configmaps/{REGISTRY_NAME}",
            {"data": {REGISTRY_KEY: text}}, content_type="application/merge-patch+json")
        assert status == 200, (status, body)
        self.swaps += 1


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    world = start_world(tmp_path_factory.mktemp("bad-input"),
                        registry=[POD_RUNTIME, VM_RUNTIME], namespaces=[NS])
    try:
        world.start_operator(concurrency=4, log_format="json")
        yield Ledger(world)
    finally:
        operator, _ = stop_world(world)
        assert operator == 0, f"the operator exited {operator} on SIGTERM; see {world.workdir}"


# strategies ------------------------------------------------------------------------------------
ints = st.integers(-(2**53), 2**53)
"""JSON numbers every parser keeps exactly."""
texts = st.text(st.characters(codec="utf-8"), max_size=40)
"""Any Unicode (no lone surrogates, which JSON cannot carry)."""
env_values = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60)
valid_env_names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,20}", fullmatch=True).filter(
    lambda n: n not in RESERVED and n != "RUNNER_TYPE")
invalid_env_names = texts.filter(
    lambda n: not n or not (n[0] in "-._" + string.ascii_letters and all(
        c in "-._" + string.ascii_letters + string.digits for c in n)))
unknown_runtimes = texts.filter(lambda r: r not in ("", POD_RUNTIME["id"], VM_RUNTIME["id"])
                                and not r.startswith("entry-"))


class Huge(str):
    """A long prompt that shows as its length in Hypothesis' reports."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<a prompt of {len(self)} characters>"


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A spec the operator must run: every field optional, Unicode and size welcome."""
    spec: dict[str, Any] = {}
    if draw(st.booleans()):
        spec["displayName"] = draw(st.text(st.characters(codec="utf-8"), max_size=256))
    spec["initialPrompt"] = draw(st.one_of(
        texts, st.builds(lambda s, n: Huge(s * n), st.text(st.characters(codec="utf-8"),
                                                          min_size=1, max_size=8),
                         st.integers(1000, 8000))))
    if draw(st.booleans()):
        spec["environmentVariables"] = draw(st.dictionaries(valid_env_names, env_values,
                                                            max_size=4))
    backend = draw(st.sampled_from(["default", "runtime", "RUNNER_TYPE", "empty-runtime"]))
    if backend == "runtime":
        spec["runtime"] = draw(st.sampled_from([POD_RUNTIME["id"], VM_RUNTIME["id"]]))
    elif backend == "RUNNER_TYPE":
        spec.setdefault("environmentVariables", {})["RUNNER_TYPE"] = VM_RUNTIME["id"]
    elif backend == "empty-runtime":
        spec["runtime"] = ""  # "" means "not set": the default runtime
    if draw(st.booleans()):
        spec["llmSettings"] = {"model": draw(texts),
                               "temperature": draw(st.floats(0, 2)),
                               "maxTokens": draw(st.integers(1, 10**6))}
    if draw(st.booleans()):
        spec["repos"] = [{"input": {"url": draw(texts), "branch": draw(texts)},
                          "autoPush": draw(st.booleans())}]
    if draw(st.booleans()):
        spec["unknownField"] = draw(st.dictionaries(texts, texts, max_size=3))  # pruned
    return spec


# (spec change, expected reason) with exactly one defect the operator must catch
def _operator_defects(base: dict[str, Any]) -> dict[str, st.SearchStrategy[
        tuple[dict[str, Any], str]]]:
    env = dict(base.get("environmentVariables") or {})
    without_runtime = {k: v for k, v in base.items() if k != "runtime"}
    return {
        "unknown-runtime": unknown_runtimes.map(
            lambda r: ({**base, "runtime": r}, "UnknownRuntime")),
        "unknown-runner-type": unknown_runtimes.map(lambda r: (
            {**without_runtime, "environmentVariables": {**env, "RUNNER_TYPE": r}},
            "UnknownRuntime")),
        "reserved-env": st.tuples(st.sampled_from(RESERVED), env_values).map(lambda kv: (
            {**base, "environmentVariables": {**env, kv[0]: kv[1]}}, "ReservedEnvName")),
        "invalid-env": st.tuples(invalid_env_names, env_values).map(lambda kv: (
            {**base, "environmentVariables": {**env, kv[0]: kv[1]}}, "InvalidEnvName")),
    }


# spec changes the CRD schema refuses (422 with causes)
schema_violations = st.one_of(
    st.one_of(texts, st.integers(-(2**53), -1),
              st.floats(allow_nan=False, allow_infinity=False)).map(
        lambda v: {"timeout": v}).filter(lambda s: not isinstance(s["timeout"], float)
                                         or s["timeout"] != int(s["timeout"])
                                         or s["timeout"] < 0),
    st.one_of(st.floats(2.001, 1e9), st.floats(-1e9, -0.001), texts).map(
        lambda v: {"llmSettings": {"temperature": v}}),
    st.one_of(st.integers(-(2**53), 0), texts).map(lambda v: {"llmSettings": {"maxTokens": v}}),
    st.dictionaries(valid_env_names, st.one_of(ints, st.booleans(),
                                               st.lists(ints, max_size=2)),
                    min_size=1, max_size=3).map(lambda v: {"environmentVariables": v}),
    st.one_of(texts, ints, st.dictionaries(texts, texts, max_size=2)).map(
        lambda v: {"repos": v}),
    st.text(st.characters(codec="utf-8"), min_size=257, max_size=400).map(
        lambda v: {"displayName": v}),
    st.one_of(ints, st.lists(texts, max_size=2), st.booleans()).map(
        lambda v: {"initialPrompt": v}),
    st.one_of(ints, st.booleans(), st.lists(texts, max_size=2)).map(
        lambda v: {"runtime": v}),
    st.one_of(texts, ints, st.lists(texts, max_size=2)).map(
        lambda v: {"llmSettings": v}),
)

# names the server refuses: upper case, Unicode, leading dash, over 253 characters
bad_names = st.one_of(
    st.from_regex(r"[A-Z][a-zA-Z0-9]{0,20}", fullmatch=True),
    st.text(st.characters(codec="utf-8", min_codepoint=0x80), min_size=1, max_size=10),
    st.from_regex(r"-[a-z0-9]{1,10}", fullmatch=True),
    st.integers(254, 400).map(lambda n: "x" * n),
)


SESSION_KINDS = ("valid", "unknown-runtime", "unknown-runner-type", "reserved-env",
                 "invalid-env", "long-name", "dotted-name", "schema", "bad-name")
"""One Hypothesis run per kind, so each gets its share of the examples (Hypothesis' own
choices among alternatives are deliberately uneven)."""


def session_case(kind: str, spec: dict[str, Any], data: st.DataObject,
                 number: str) -> tuple[str, Any, str]:
    """(name, spec, expected answer) for a case of ``kind`` built on the valid ``spec``."""
    if kind == "valid":
        return number, spec, RUNNING
    if kind == "long-name":  # the Service name "session-<name>" would be over 63 characters
        length = data.draw(st.integers(56, 240), label="name length")
        return (number + "-" + "x" * length)[:length], spec, "InvalidServiceName"
    if kind == "dotted-name":  # a valid session name, but no DNS-1035 label for the Service
        return f"{number}.x", spec, "InvalidServiceName"
    if kind == "schema":
        return number, {**spec, **data.draw(schema_violations, label="violation")}, REJECTED
    if kind == "bad-name":
        return data.draw(bad_names, label="name"), spec, REJECTED
    changed, reason = data.draw(_operator_defects(spec)[kind], label="defect")
    return number, changed, reason


# registry entries with exactly one defect, and the reason sessions naming them must get
def _pod_entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"displayName": "malformed", "container": {
        "image": "quay.io/ambient_code/runner:1.0", "port": 8001}}
    container = changes.pop("container", None)
    if container is not None:
        entry["container"] = {**entry["container"], **container}
    return {**entry, **changes}


def _vm_entry(**vm: Any) -> dict[str, Any]:
    config = {"containerDiskImage": "quay.io/ambient_code/runner-disk:1.0", "cpu": "2",
              "memory": "4Gi", **vm}
    return {"executionKind": "kubevirt-vm", "vmConfig": {k: v for k, v in config.items()
                                                         if v is not _DROP}}


_DROP = object()
bad_quantities = st.one_of(
    st.sampled_from(["1 Gi", "abc", "1_000", "inf", "NaN", "1.2.3", "Gi", "--1", "1GB", ""]),
    st.booleans(), st.none(), st.lists(ints, max_size=1),
    st.integers(-100, -1).map(str), st.sampled_from(["-1", "-500m", "-2Gi"]))
bad_whole = st.sampled_from(["0", "500m", "1.5", "abc", "-2", "0.1Gi", "1 Gi", ""])
_ENTRY_DEFECTS: dict[str, list[st.SearchStrategy[dict[str, Any]]]] = {
    "InvalidRuntime": [
        st.sampled_from(["", " ", "quay.io/x y:1", "a\tb"]).map(
            lambda i: _pod_entry(container={"image": i})),
        st.just({"displayName": "no container"}),
        st.one_of(st.integers(-(2**53), 0), st.integers(65536, 2**53), st.just("8001"),
                  st.booleans(), st.floats(1, 100)).map(
            lambda p: _pod_entry(container={"port": p})),
        st.one_of(st.dictionaries(texts, texts, max_size=1), st.lists(texts, max_size=1),
                  st.booleans(), st.none()).map(
            lambda v: _pod_entry(container={"env": {"GOOD_NAME": v}})),
        st.one_of(texts, ints).filter(lambda k: k not in ("pod", "kubevirt-vm")).map(
            lambda k: _pod_entry(executionKind=k)),
        st.sampled_from([{"runAsUser": 0}, {"fsGroup": -1}, {"readOnlyRootFilesystem": "yes"},
                         {"runAsUser": "1000"}]).map(lambda s: _pod_entry(sandbox=s)),
        st.one_of(ints, st.lists(texts, max_size=1)).map(
            lambda d: _pod_entry(displayName=d)),
    ],
    "ReservedEnvName": [st.sampled_from(RESERVED).map(
        lambda n: _pod_entry(container={"env": {n: "x"}}))],
    "InvalidEnvName": [invalid_env_names.map(
        lambda n: _pod_entry(container={"env": {n: "x"}}))],
    "InvalidQuantity": [st.tuples(
        st.sampled_from(["requests", "limits"]), st.sampled_from(["cpu", "memory"]),
        bad_quantities).map(lambda t: _pod_entry(container={"resources": {t[0]: {t[1]: t[2]}}}))],
    "InvalidResources": [
        st.just(_pod_entry(container={"resources": {"requests": {"cpu": "2"},
                                                    "limits": {"cpu": "1"}}})),
        texts.filter(lambda k: k not in ("requests", "limits")).map(
            lambda k: _pod_entry(container={"resources": {k: {}}})),
    ],
    "InvalidVMConfig": [
        st.just({"executionKind": "kubevirt-vm"}),
        st.one_of(texts, ints, st.lists(texts, max_size=1)).map(
            lambda v: {"executionKind": "kubevirt-vm", "vmConfig": v}),
        st.sampled_from([_DROP, "", "   ", 7]).map(lambda i: _vm_entry(containerDiskImage=i)),
        st.tuples(st.sampled_from(["cpu", "memory"]), bad_whole).map(
            lambda t: _vm_entry(**{t[0]: t[1]})),
        st.one_of(ints, st.lists(texts, max_size=1)).map(
            lambda t: _vm_entry(cloudInitTemplate=t)),
    ],
    "InvalidCloudInitTemplate": [
        texts.filter(lambda t: not t.lstrip().startswith("#cloud-config")).map(
            lambda t: _vm_entry(cloudInitTemplate=t + "x"))],
}
ENTRY_REASONS = sorted(_ENTRY_DEFECTS)


# entries no session can name: not an object, or without a usable id
idless_entries = st.one_of(ints, texts, st.lists(ints, max_size=2),
                           st.just({"displayName": "no id"}), st.just({"id": ""}),
                           st.just({"id": 7}))


# the run ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", SESSION_KINDS)
@settings(SETTINGS, max_examples=SESSION_EXAMPLES // len(SESSION_KINDS) + 1)
@given(spec=valid_specs(), data=st.data())
def test_generated_sessions(ledger: Ledger, kind: str, spec: dict[str, Any],
                            data: st.DataObject) -> None:
    name, body, expected = session_case(kind, spec, data, f"{kind}-{next(ledger.names)}")
    ledger.submit(name, body, expected)


@pytest.mark.parametrize("reason", ENTRY_REASONS)
@settings(SETTINGS, max_examples=REGISTRY_EXAMPLES // len(ENTRY_REASONS) + 1)
@given(count=st.integers(1, 3), idless=st.lists(idless_entries, max_size=1),
       duplicate=st.booleans(), via_env=st.booleans(), spec=valid_specs(), data=st.data())
def test_generated_registry_entries(ledger: Ledger, reason: str, count: int, idless: list[Any],
                                    duplicate: bool, via_env: bool, spec: dict[str, Any],
                                    data: st.DataObject) -> None:
    """Append malformed entries to the registry (a new ConfigMap version), then create a
    session naming each; the registry keeps every entry, so the answers stay stable."""
    named: list[tuple[str, str]] = []
    for _ in range(count):
        rid = f"entry-{next(ledger.names)}"
        ledger.registry.append({"id": rid, **data.draw(st.one_of(_ENTRY_DEFECTS[reason]),
                                                        label="entry")})
        named.append((rid, reason))
    if duplicate:
        rid = f"entry-{next(ledger.names)}"
        ledger.registry += [{**POD_RUNTIME, "id": rid}] * 2
        named.append((rid, "DuplicateRuntime"))
    ledger.registry += idless
    ledger.malformed_entries += count + 2 * duplicate + len(idless)
    ledger.swap_registry()
    for rid, expected in named:
        body = {k: v for k, v in spec.items() if k != "runtime"}
        env = {k: v for k, v in (body.get("environmentVariables") or {}).items()
               if k != "RUNNER_TYPE"}
        if via_env:
            body["environmentVariables"] = {**env, "RUNNER_TYPE": rid}
        else:
            body["runtime"] = rid
        ledger.submit(f"registry-{next(ledger.names)}", body, expected)


def test_a_registry_that_is_not_json_is_reported_then_recovered(ledger: Ledger) -> None:
    """The whole document broken for a moment: every session says why, then recovers."""
    ledger.swap_registry("[{not json")
    name = f"during-broken-registry-{next(ledger.names)}"
    ledger.submit(name, {"initialPrompt": "hello"}, RUNNING)

    def reported() -> bool:
        status, body = ledger.world.raw.request(
            "GET", f"{SESSIONS}/namespaces/{NS}/agenticsessions/{name}")
        assert status == 200
        assert condition(body).get("reason") == "InvalidRegistry", body.get("status")
        return True

    eventually(reported, timeout=30, interval=0.5)
    ledger.swap_registry()  # repaired: the same entries as before


def test_every_session_got_a_clear_answer(ledger: Ledger) -> None:
    world = ledger.world
    malformed = sum(1 for e in ledger.expected.values() if e != RUNNING) + len(ledger.rejected)
    assert malformed >= 200, malformed
    assert ledger.malformed_entries >= 20, ledger.malformed_entries
    base = f"{SESSIONS}/namespaces/{NS}/agenticsessions"

    def answered() -> dict[str, dict[str, Any]]:
        assert world.operator is not None and world.operator.poll() is None, "operator died"
        sessions = {s["metadata"]["name"]: s for s in world.raw.items(base)}
        assert set(sessions) == set(ledger.expected)
        wrong = []
        for name, expected in ledger.expected.items():
            session = sessions[name]
            ready = condition(session)
            status = session.get("status") or {}
            if expected == RUNNING:
                ok = status.get("phase") == RUNNING and ready.get("status") == "True"
            else:
                ok = (ready.get("status") == "False" and ready.get("reason") == expected
                      and bool(ready.get("message")))
            if not ok:
                wrong.append((name[:70], expected, status.get("phase"), ready.get("reason"),
                              ready.get("message", "")[:200]))
        assert not wrong, f"{len(wrong)} sessions without the expected answer: {wrong[:5]}"
        return sessions

    sessions = eventually(answered, timeout=90, interval=1.0)
    warnings: dict[str, set[str]] = {}
    for event in world.raw.items(f"/api/v1/namespaces/{NS}/events"):
        if event.get("type") == "Warning":
            warnings.setdefault(event["involvedObject"].get("uid", ""), set()).add(
                event["reason"])
    for name, expected in ledger.expected.items():
        if expected != RUNNING:
            uid = sessions[name]["metadata"]["uid"]
            assert expected in warnings.get(uid, set()), (name, expected, warnings.get(uid))

    quiet = _quiet(world)
    assert world.healthy()
    problems = _log_problems(world)
    assert not problems, problems[:3]
    reasons = sorted({e for e in ledger.expected.values() if e != RUNNING})
    assert set(reasons) == {"UnknownRuntime", "ReservedEnvName", "InvalidEnvName",
                            "InvalidServiceName", "DuplicateRuntime", *ENTRY_REASONS}, reasons
    running = sum(1 for e in ledger.expected.values() if e == RUNNING)
    print(f"\nbad-input run: {len(ledger.expected) + len(ledger.rejected)} sessions submitted, "
          f"{malformed} malformed: {len(ledger.rejected)} refused by the API server (422 with "
          f"causes), {malformed - len(ledger.rejected)} answered Ready=False by the operator; "
          f"{running} valid ones Running")
    print(f"  reasons: {', '.join(reasons)}")
    print(f"  registry: {ledger.malformed_entries} malformed entries over {ledger.swaps} "
          f"ConfigMap versions (one not JSON); operator alive, /healthz 200, no writes in a "
          f"{quiet:.0f} s quiet window, no unexpected tracebacks")


def _writes(world: World) -> int:
    rows = world.admin_call("GET", "/requests?agent=ambient-ctrl")
    return sum(r["count"] for r in rows if r["verb"] in ("create", "update", "patch",
                                                        "delete"))


def _quiet(world: World, seconds: float = 3.0) -> float:
    """Once every session has its answer, the operator has nothing left to write: no retry
    storm on bad input, no polling."""
    before = _writes(world)
    time.sleep(seconds)
    assert _writes(world) == before, "the operator kept writing after every session settled"
    return seconds


def _log_problems(world: World) -> list[str]:
    """Log lines that are not JSON records, and tracebacks other than TerminalErrors (what
    the controller logs, once, for bad input it will not retry)."""
    problems = []
    # split("\n"), not splitlines(): JSON strings carry U+2028, U+0085 ... unescaped.
    for line in world.operator_log.read_text(errors="replace").split("\n"):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            problems.append(f"not a JSON record: {line[:300]}")
            continue
        trace = str(record.get("error", ""))
        if "Traceback" not in trace:
            continue
        msg = str(record.get("msg", ""))
        terminal = msg.removeprefix("reconcile failed terminally: ")
        if terminal == msg or not trace.rstrip().endswith(
                f"ambient_ctrl.reconcile.TerminalError: {terminal}".rstrip()):
            problems.append(f"{msg[:200]}: {trace[-300:]}")
    return problems
