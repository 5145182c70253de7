"""The bad-input run: hypothesis-generated malformed sessions and registry entries against the
operator process; each gets a clear answer and the operator never dies.

One API server process (kubelet and KubeVirt simulators) and one operator process (JSON logs)
serve the whole module, with upstream's registry entries (``claude-agent-sdk``, ADR-0008's
``claude-kubevirt``). Each generated case has exactly one defect (or none), so the answer
it must get is known in advance:

* the API server refuses what the CRD schema (upstream's) or the name rules forbid:
  ``422 Invalid`` with causes — a clear error, recorded as handled;
* the operator answers the rest on the session: ``Ready=False`` with the defect's reason
  (UnknownRuntime, InvalidEnvName — a name no Pod can carry, or one a VM's environment file
  cannot —, InvalidServiceName, and for runtimes from malformed registry entries
  InvalidRuntime, InvalidQuantity, InvalidResources, InvalidVMConfig,
  InvalidCloudInitTemplate, DuplicateRuntime) and a message, plus a Warning Event with that
  reason; sessions without a defect (Unicode everywhere, prompts of up to 64 k characters,
  every optional field of upstream's schema, unknown fields the schema prunes, variables
  named as the platform's own, which never replace a Secret-backed one) run: ``Running`` and
  ``Ready=True``;
* what upstream keeps waiting or fails, as upstream does: a namespace without
  ``ambient-runner-secrets`` keeps its sessions ``Pending`` with ``SecretsReady=False
  RunnerSecretMissing``; a refused TokenRequest fails the session ``TokenProvisionFailed``.

Each defect class is its own Hypothesis run (a part of the run, each run by a parametrized
test), so every class gets its share of the examples; the runs are derandomized, so every run
submits the same cases. The last test checks every answer: before it, whichever parts no test
has run yet are run, so each test passes alone and in any order.

Malformed registry entries are swapped into the registry ConfigMap while sessions exist,
once with a document that is not JSON at all (then repaired). At the end the operator must
be alive, answer ``/healthz``, have gone quiet (no writes: no retry storm), and its log holds
no traceback and no ERROR line: bad input is one WARNING line with its reason (issue 16 item 6).
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Iterator
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
NO_SECRET_NS = "bad-input-no-secret"
"""A managed namespace without ``ambient-runner-secrets``: its sessions wait."""
SESSION_EXAMPLES = 240
REGISTRY_EXAMPLES = 30
PLATFORM_ENV = ["AGENTIC_SESSION_NAME", "SESSION_ID", "PROJECT_NAME", "WORKSPACE_PATH",
                "AGUI_PORT", "AGUI_TOKEN", "INITIAL_PROMPT", "LLM_MODEL", "TIMEOUT",
                "BACKEND_API_URL", "IS_RESUME", "REPOS_JSON", "USE_VERTEX",
                "CLAUDE_CODE_USE_VERTEX", "BOT_TOKEN"]
"""Names of upstream's runner environment: a session may set them (upstream's override
rules), but never replace a Secret-backed one (AGUI_TOKEN) or the Vertex switches."""
RUNNING = "Running"
REJECTED = "Rejected"
YEAR = 31536000
"""The CRD's maximum of spec.timeout and spec.inactivityTimeout (ours; upstream has none)."""
RUNNER_SECRET_MISSING = "SecretsReady:RunnerSecretMissing"
"""Expected: Pending with SecretsReady=False RunnerSecretMissing (no Ready condition)."""
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
    expected: dict[tuple[str, str], str] = field(default_factory=dict)
    """Accepted sessions by (namespace, name): their expected outcome (RUNNING, the
    Ready=False reason, or :data:`RUNNER_SECRET_MISSING`)."""
    platform_env: list[str] = field(default_factory=list)
    """Running Pod sessions that set variables named as the platform's own."""
    rejected: list[dict[str, Any]] = field(default_factory=list)
    """The server's 422 answers (Status objects)."""
    registry: list[Any] = field(default_factory=lambda: [POD_RUNTIME, VM_RUNTIME])
    malformed_entries: int = 0
    swaps: int = 0
    parts_run: set[str] = field(default_factory=set)
    """The parts of the run (:data:`PARTS`) some test has run to the end."""

    def __repr__(self) -> str:
        return f"<ledger of {len(self.expected)} sessions>"

    def submit(self, name: str, spec: Any, expected: str, *, namespace: str = NS) -> None:
        status, body = self.world.raw.request(
            "POST", f"{SESSIONS}/namespaces/{namespace}/agenticsessions",
            session_body(name, namespace, spec))
        if expected == REJECTED:
            assert status == 422, (name, spec, status, body)
            assert body["reason"] == "Invalid" and body["details"]["causes"], body
            assert all(c.get("message") for c in body["details"]["causes"]), body
            self.rejected.append(body)
        else:
            assert status == 201, (name, spec, status, body)
            self.expected[(namespace, name)] = expected

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
    world.create_namespace(NO_SECRET_NS, runner_secrets=False)
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
    lambda n: n not in PLATFORM_ENV and n != "RUNNER_TYPE")
invalid_env_names = st.one_of(
    st.just(""),
    st.tuples(texts, st.sampled_from(["=", "\t", "\n", "\x7f", "é", "名", "\u2028"]),
              texts).map("".join))
"""Names no Pod can carry (the API server allows printable ASCII but ``=``)."""
vm_only_invalid_env_names = st.from_regex(r"[a-z0-9][-.a-z0-9]{0,10}", fullmatch=True).filter(
    lambda n: not n.replace("_", "").isalnum() or n[0].isdigit())
"""Names a Pod carries but a VM's environment file (systemd, sh) cannot: ``a-b``, ``1x``."""
unknown_runtimes = texts.filter(lambda r: r not in ("", POD_RUNTIME["id"], VM_RUNTIME["id"])
                                and not r.startswith("entry-"))


class Huge(str):
    """A long prompt that shows as its length in Hypothesis' reports."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<a prompt of {len(self)} characters>"


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A spec the operator must run: every field of upstream's schema optional, Unicode and
    size welcome."""
    spec: dict[str, Any] = {}
    if draw(st.booleans()):
        spec["displayName"] = draw(st.text(st.characters(codec="utf-8"), max_size=300))
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
                               "temperature": draw(st.floats(-1e6, 1e6)),
                               "maxTokens": draw(st.integers(-(2**31), 2**31))}
    if draw(st.booleans()):
        spec["timeout"] = draw(st.integers(-(2**31), YEAR))  # never enforced
    if draw(st.booleans()):
        # 0 disables; a short one would stop the session before it is checked.
        spec["inactivityTimeout"] = draw(st.one_of(st.just(0), st.integers(3600, YEAR)))
    if draw(st.booleans()):
        spec["repos"] = draw(st.lists(st.fixed_dictionaries(
            {"url": texts}, optional={"branch": texts, "autoPush": st.booleans()}),
            max_size=3))
    if draw(st.booleans()):
        spec["userContext"] = draw(st.fixed_dictionaries({}, optional={
            "userId": texts, "displayName": texts, "groups": st.lists(texts, max_size=3)}))
    if draw(st.booleans()):
        spec["stopOnRunFinished"] = draw(st.booleans())
    if draw(st.booleans()):
        spec["mcpServers"] = {"custom": draw(st.dictionaries(texts, st.dictionaries(
            texts, st.one_of(texts, ints, st.booleans(), st.lists(texts, max_size=2)),
            max_size=3), max_size=2)), "disabled": draw(st.lists(texts, max_size=2))}
    if draw(st.booleans()):
        spec["activeWorkflow"] = draw(st.fixed_dictionaries({}, optional={
            "gitUrl": texts, "branch": texts, "path": texts}))
    if draw(st.booleans()):
        spec["unknownField"] = draw(st.dictionaries(texts, texts, max_size=3))  # pruned
    return spec


# (spec change, expected reason) with exactly one defect the operator must catch
def _operator_defects(base: dict[str, Any]) -> dict[str, st.SearchStrategy[
        tuple[dict[str, Any], str]]]:
    env = dict(base.get("environmentVariables") or {})
    without_runtime = {k: v for k, v in base.items() if k != "runtime"}
    vm = {**without_runtime, "runtime": VM_RUNTIME["id"],
          "environmentVariables": {k: v for k, v in env.items() if k != "RUNNER_TYPE"}}
    return {
        "unknown-runtime": unknown_runtimes.map(
            lambda r: ({**base, "runtime": r}, "UnknownRuntime")),
        "unknown-runner-type": unknown_runtimes.map(lambda r: (
            {**without_runtime, "environmentVariables": {**env, "RUNNER_TYPE": r}},
            "UnknownRuntime")),
        "invalid-env": st.tuples(invalid_env_names, env_values).map(lambda kv: (
            {**base, "environmentVariables": {**env, kv[0]: kv[1]}}, "InvalidEnvName")),
        "vm-env-name": st.tuples(vm_only_invalid_env_names, env_values).map(lambda kv: (
            {**vm, "environmentVariables": {**vm["environmentVariables"], kv[0]: kv[1]}},
            "InvalidEnvName")),
    }


# spec changes the CRD schema (upstream's) refuses (422 with causes)
schema_violations = st.one_of(
    st.one_of(texts, st.floats(allow_nan=False, allow_infinity=False).filter(
        lambda v: v != int(v)), st.booleans(), st.integers(YEAR + 1, 2**53)).map(
        lambda v: {"timeout": v}),
    st.one_of(texts, st.integers(-(2**53), -1), st.integers(YEAR + 1, 2**53)).map(
        lambda v: {"inactivityTimeout": v}),
    st.one_of(texts, st.booleans()).map(lambda v: {"llmSettings": {"temperature": v}}),
    st.one_of(texts, st.floats(0.1, 1e9).filter(lambda v: v != int(v))).map(
        lambda v: {"llmSettings": {"maxTokens": v}}),
    st.dictionaries(valid_env_names, st.one_of(ints, st.booleans(),
                                               st.lists(ints, max_size=2)),
                    min_size=1, max_size=3).map(lambda v: {"environmentVariables": v}),
    st.one_of(texts, ints, st.dictionaries(texts, texts, max_size=2)).map(
        lambda v: {"repos": v}),
    st.fixed_dictionaries({}, optional={"branch": texts, "autoPush": st.booleans()}).map(
        lambda v: {"repos": [v]}),  # an item without its required url
    st.one_of(ints, st.lists(texts, max_size=2), st.booleans()).map(
        lambda v: {"displayName": v}),
    st.one_of(ints, st.lists(texts, max_size=2), st.booleans()).map(
        lambda v: {"initialPrompt": v}),
    st.one_of(ints, st.booleans(), st.lists(texts, max_size=2)).map(
        lambda v: {"runtime": v}),
    st.one_of(texts, ints, st.lists(texts, max_size=2)).map(
        lambda v: {"llmSettings": v}),
    st.one_of(texts, ints, st.lists(texts, max_size=2)).map(
        lambda v: {"userContext": v}),
    st.one_of(texts, ints).map(lambda v: {"userContext": {"groups": v}}),
    st.one_of(texts, ints).map(lambda v: {"stopOnRunFinished": v}),
)

# names the server refuses: upper case, Unicode, leading dash, over 253 characters
bad_names = st.one_of(
    st.from_regex(r"[A-Z][a-zA-Z0-9]{0,20}", fullmatch=True),
    st.text(st.characters(codec="utf-8", min_codepoint=0x80), min_size=1, max_size=10),
    st.from_regex(r"-[a-z0-9]{1,10}", fullmatch=True),
    st.integers(254, 400).map(lambda n: "x" * n),
)


SESSION_KINDS = ("valid", "platform-env", "unknown-runtime", "unknown-runner-type",
                 "invalid-env", "vm-env-name", "long-name", "dotted-name", "schema", "bad-name")
"""One Hypothesis run per kind, so each gets its share of the examples (Hypothesis' own
choices among alternatives are deliberately uneven)."""


def session_case(kind: str, spec: dict[str, Any], data: st.DataObject,
                 number: str) -> tuple[str, Any, str]:
    """(name, spec, expected answer) for a case of ``kind`` built on the valid ``spec``."""
    if kind == "valid":
        return number, spec, RUNNING
    if kind == "platform-env":  # the session's values where upstream lets them replace ours
        env = data.draw(st.dictionaries(st.sampled_from(PLATFORM_ENV), env_values, min_size=1,
                                        max_size=4), label="platform env")
        return number, {**spec, "environmentVariables": {
            **(spec.get("environmentVariables") or {}), **env}}, RUNNING
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
        "image": "quay.io/ambient_code/vteam_claude_runner:latest", "port": 8001}}
    container = changes.pop("container", None)
    if container is not None:
        entry["container"] = {**entry["container"], **container}
    return {**entry, **changes}


def _vm_entry(**vm: Any) -> dict[str, Any]:
    config = {"containerDiskImage": "quay.io/ambient_code/fedora-runner:latest", "cpu": 2,
              "memory": "4Gi", **vm}
    return {"executionKind": "kubevirt-vm", "vmConfig": {k: v for k, v in config.items()
                                                         if v is not _DROP}}


_DROP = object()
bad_quantities = st.one_of(
    st.sampled_from(["1 Gi", "abc", "1_000", "inf", "NaN", "1.2.3", "Gi", "--1", "1GB", ""]),
    st.booleans(), st.none(), st.lists(ints, max_size=1),
    st.integers(-100, -1).map(str), st.sampled_from(["-1", "-500m", "-2Gi"]))
bad_cpu = st.one_of(st.sampled_from(["2", "0", "500m", "1.5", "abc", ""]),
                    st.integers(-10, 0), st.integers(1025, 10**6), st.floats(0.1, 8),
                    st.booleans())
"""ADR-0008's vmConfig.cpu is an integer number of vCPUs."""
bad_memory = st.sampled_from(["0", "500m", "1.5", "abc", "-2", "0.1Gi", "1 Gi", ""])
_ENTRY_DEFECTS: dict[str, list[st.SearchStrategy[dict[str, Any]]]] = {
    "InvalidRuntime": [
        st.sampled_from([" ", "quay.io/x y:1", "a\tb"]).map(
            lambda i: _pod_entry(container={"image": i})),
        st.one_of(st.integers(-(2**53), -1), st.integers(65536, 2**53), st.just("8001"),
                  st.just(True), st.floats(1, 100)).map(
            lambda p: _pod_entry(container={"port": p})),
        st.one_of(st.dictionaries(texts, texts, max_size=1), st.lists(texts, max_size=1),
                  st.booleans(), st.none()).map(
            lambda v: _pod_entry(container={"env": {"GOOD_NAME": v}})),
        st.sampled_from(["", "A=B"]).map(lambda n: _pod_entry(container={"env": {n: "x"}})),
        st.one_of(texts.filter(lambda k: k != ""), ints.filter(bool)).filter(
            lambda k: k not in ("pod", "kubevirt-vm")).map(
            lambda k: _pod_entry(executionKind=k)),
        st.sampled_from([{"persistence": "nfs"}, {"stateDir": "/abs"},
                         {"stateDir": "../up"}, {"terminationGracePeriod": -1},
                         {"terminationGracePeriod": "60"}, {"seed": {"cloneRepos": "yes"}},
                         {"seed": []}, {"stateSyncImage": 7}]).map(
            lambda s: _pod_entry(sandbox=s)),
        # Non-empty values, each drawn non-empty (hypothesis 6.170 turns ``lists(max_size=1)
        # .filter(bool)`` into min_size=1 and then fails its own average-size assertion).
        st.one_of(texts.filter(bool), ints.filter(bool),
                  st.lists(texts, min_size=1, max_size=1)).map(
            lambda v: _pod_entry(sandbox=v)),
        st.one_of(ints, st.lists(texts, max_size=1)).filter(lambda d: d != []).map(
            lambda d: _pod_entry(displayName=d)),
    ],
    "InvalidEnvName": [invalid_env_names.filter(lambda n: n and "=" not in n).map(
        lambda n: _pod_entry(container={"env": {n: "x"}}))],
    "InvalidQuantity": [
        st.tuples(st.sampled_from(["requests", "limits"]), st.sampled_from(["cpu", "memory"]),
                  bad_quantities).map(
            lambda t: _pod_entry(container={"resources": {t[0]: {t[1]: t[2]}}})),
        bad_quantities.filter(lambda q: isinstance(q, str) and q).map(
            lambda q: _pod_entry(sandbox={"workspaceSize": q})),
    ],
    "InvalidResources": [
        st.just(_pod_entry(container={"resources": {"requests": {"cpu": "2"},
                                                    "limits": {"cpu": "1"}}})),
        texts.filter(lambda k: k not in ("requests", "limits")).map(
            lambda k: _pod_entry(container={"resources": {k: {}}})),
    ],
    "InvalidVMConfig": [
        st.just({"executionKind": "kubevirt-vm"}),
        st.one_of(texts.filter(bool), ints, st.lists(texts, min_size=1, max_size=1)).map(
            lambda v: {"executionKind": "kubevirt-vm", "vmConfig": v}),
        st.sampled_from([_DROP, "", "   ", 7]).map(lambda i: _vm_entry(containerDiskImage=i)),
        bad_cpu.map(lambda c: _vm_entry(cpu=c)),
        bad_memory.map(lambda m: _vm_entry(memory=m)),
        st.one_of(ints.filter(bool), st.lists(texts, min_size=1, max_size=1)).map(
            lambda t: _vm_entry(cloudInitTemplate=t)),
    ],
    "InvalidCloudInitTemplate": [  # names no template: neither built in nor in the ConfigMap
        texts.map(lambda t: _vm_entry(cloudInitTemplate=t + "x"))],
}
ENTRY_REASONS = sorted(_ENTRY_DEFECTS)


# entries no session can name: not an object, or without a usable id
idless_entries = st.one_of(ints, texts, st.lists(ints, max_size=2),
                           st.just({"displayName": "no id"}), st.just({"id": ""}),
                           st.just({"id": 7}))


# the run: its parts ----------------------------------------------------------------------------
# Each part submits its cases and checks the answer the API server gives at once; whether the
# operator answered them is checked once for the whole run, by the last test. Each test runs
# its part, whatever ran before it; the last test runs whichever parts no test has run yet
# (fixture ``whole_run``), so any test passes alone and the tests pass in any order.
@settings(SETTINGS, max_examples=SESSION_EXAMPLES // len(SESSION_KINDS) + 1)
@given(spec=valid_specs(), data=st.data())
def submit_generated_sessions(ledger: Ledger, kind: str, spec: dict[str, Any],
                              data: st.DataObject) -> None:
    name, body, expected = session_case(kind, spec, data, f"{kind}-{next(ledger.names)}")
    ledger.submit(name, body, expected)
    if kind == "platform-env":
        ledger.platform_env.append(name)


@settings(SETTINGS, max_examples=REGISTRY_EXAMPLES // len(ENTRY_REASONS) + 1)
@given(count=st.integers(1, 3), idless=st.lists(idless_entries, max_size=1),
       duplicate=st.booleans(), via_env=st.booleans(), spec=valid_specs(), data=st.data())
def submit_generated_registry_entries(ledger: Ledger, reason: str, count: int,
                                      idless: list[Any], duplicate: bool, via_env: bool,
                                      spec: dict[str, Any], data: st.DataObject) -> None:
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


def break_and_repair_the_registry(ledger: Ledger) -> None:
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


def submit_without_runner_secrets(ledger: Ledger) -> None:
    """As upstream: SecretsReady=False RunnerSecretMissing, Pending, nothing created; here
    without retrying every 10 s (the Secret's creation wakes them)."""
    for _ in range(3):
        ledger.submit(f"no-secret-{next(ledger.names)}", {"initialPrompt": "hello"},
                      RUNNER_SECRET_MISSING, namespace=NO_SECRET_NS)


def refuse_a_token_request(ledger: Ledger) -> None:
    """A TokenRequest the API server refuses (403: the operator's role lacks it) fails the
    session TokenProvisionFailed, as upstream; the next session is not affected."""
    world = ledger.world
    # Once no TokenRequest was made for a while, the next one is this session's.
    _token_requests_quiet(world)
    world.admin_call("POST", "/faults/fail", {"code": 403, "count": 1, "verbs": ["create"],
                                              "resources": ["serviceaccounts/token"]})
    try:
        name = f"token-refused-{next(ledger.names)}"
        ledger.submit(name, {"initialPrompt": "hello"}, "TokenProvisionFailed")

        def failed() -> bool:
            status, body = world.raw.request(
                "GET", f"{SESSIONS}/namespaces/{NS}/agenticsessions/{name}")
            assert status == 200
            assert (body.get("status") or {}).get("phase") == "Failed", body.get("status")
            return True

        eventually(failed, timeout=30, interval=0.2)
    finally:
        world.admin_call("DELETE", "/faults")
    ledger.submit(f"after-refusal-{next(ledger.names)}", {"initialPrompt": "hello"}, RUNNING)


def _token_requests_quiet(world: World, seconds: float = 2.0) -> None:
    def count() -> int:
        return sum(r["count"] for r in world.admin_call("GET", "/requests?agent=ambient-ctrl")
                   if r["resource"] == "serviceaccounts/token")

    def quiet() -> bool:
        before = count()
        time.sleep(seconds)  # the quiet window itself: no TokenRequest for this long
        return count() == before

    eventually(quiet, timeout=90, interval=0.1, message="TokenRequests never stopped")


PARTS: dict[str, Callable[[Ledger], None]] = {
    **{f"sessions[{kind}]": functools.partial(submit_generated_sessions, kind=kind)
       for kind in SESSION_KINDS},
    **{f"registry[{reason}]": functools.partial(submit_generated_registry_entries,
                                                reason=reason)
       for reason in ENTRY_REASONS},
    "broken-registry": break_and_repair_the_registry,
    "without-runner-secrets": submit_without_runner_secrets,
    "refused-token-request": refuse_a_token_request,
}
"""The parts of the run by name: together they submit every defect class."""


def run_part(ledger: Ledger, part: str) -> None:
    PARTS[part](ledger)
    ledger.parts_run.add(part)


@pytest.fixture()
def whole_run(ledger: Ledger) -> Ledger:
    """The ledger once every part of the run has submitted its cases: those no test ran before
    this one are run now."""
    for part in PARTS:
        if part not in ledger.parts_run:
            run_part(ledger, part)
    return ledger


# the tests -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", SESSION_KINDS)
def test_generated_sessions(ledger: Ledger, kind: str) -> None:
    run_part(ledger, f"sessions[{kind}]")


@pytest.mark.parametrize("reason", ENTRY_REASONS)
def test_generated_registry_entries(ledger: Ledger, reason: str) -> None:
    run_part(ledger, f"registry[{reason}]")


def test_a_registry_that_is_not_json_is_reported_then_recovered(ledger: Ledger) -> None:
    run_part(ledger, "broken-registry")


def test_a_namespace_without_runner_secrets_keeps_its_sessions_pending(
        ledger: Ledger) -> None:
    run_part(ledger, "without-runner-secrets")


def test_a_refused_token_request_fails_the_session(ledger: Ledger) -> None:
    run_part(ledger, "refused-token-request")


def test_every_session_got_a_clear_answer(whole_run: Ledger) -> None:
    ledger = whole_run
    world = ledger.world
    malformed = sum(1 for e in ledger.expected.values() if e != RUNNING) + len(ledger.rejected)
    assert malformed >= 200, malformed
    assert ledger.malformed_entries >= 20, ledger.malformed_entries

    def answered() -> dict[tuple[str, str], dict[str, Any]]:
        assert world.operator is not None and world.operator.poll() is None, "operator died"
        sessions = {(s["metadata"]["namespace"], s["metadata"]["name"]): s
                    for ns in (NS, NO_SECRET_NS)
                    for s in world.raw.items(f"{SESSIONS}/namespaces/{ns}/agenticsessions")}
        assert set(sessions) == set(ledger.expected)
        wrong = []
        for key, expected in ledger.expected.items():
            session = sessions[key]
            ready = condition(session)
            status = session.get("status") or {}
            if expected == RUNNING:
                ok = status.get("phase") == RUNNING and ready.get("status") == "True"
            elif expected == RUNNER_SECRET_MISSING:
                secrets = condition(session, "SecretsReady")
                ok = (status.get("phase") == "Pending" and secrets.get("status") == "False"
                      and secrets.get("reason") == "RunnerSecretMissing")
            else:
                ok = (ready.get("status") == "False" and ready.get("reason") == expected
                      and bool(ready.get("message")))
            if not ok:
                wrong.append((key[1][:70], expected, status.get("phase"), ready.get("reason"),
                              ready.get("message", "")[:200]))
        assert not wrong, f"{len(wrong)} sessions without the expected answer: {wrong[:5]}"
        return sessions

    sessions = eventually(answered, timeout=90, interval=1.0)
    warnings: dict[str, set[str]] = {}
    for ns in (NS, NO_SECRET_NS):
        for event in world.raw.items(f"/api/v1/namespaces/{ns}/events"):
            if event.get("type") == "Warning":
                warnings.setdefault(event["involvedObject"].get("uid", ""), set()).add(
                    event["reason"])
    for key, expected in ledger.expected.items():
        if expected != RUNNING:
            uid = sessions[key]["metadata"]["uid"]
            reason = expected.rsplit(":", 1)[-1]
            assert reason in warnings.get(uid, set()), (key, expected, warnings.get(uid))
    # Nothing of a session that cannot run was created (no token, no RBAC, no workload).
    for ns in (NS, NO_SECRET_NS):
        accounts = {a["metadata"]["name"]
                    for a in world.raw.items(f"/api/v1/namespaces/{ns}/serviceaccounts")}
        for (where, name), expected in ledger.expected.items():
            if where == ns and expected not in (RUNNING, "TokenProvisionFailed"):
                assert f"ambient-session-{name}" not in accounts, (name, expected)
    # The platform's own variables were not replaced where upstream forbids it.
    for name in ledger.platform_env:
        status, pod = world.raw.request("GET", f"/api/v1/namespaces/{NS}/pods/{name}-runner")
        if status == 404:
            continue  # a VM session
        runner = next(c for c in pod["spec"]["containers"] if c["name"] == "ambient-code-runner")
        env = {e["name"]: e for e in runner["env"]}
        assert env["AGUI_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "agui-token", name
        assert env["USE_VERTEX"]["value"] == "0", name

    quiet = _quiet(world)
    assert world.healthy()
    problems = _log_problems(world)
    assert not problems, problems[:3]
    reasons = sorted({e.rsplit(":", 1)[-1] for e in ledger.expected.values() if e != RUNNING})
    assert set(reasons) == {"UnknownRuntime", "InvalidEnvName", "InvalidServiceName",
                            "DuplicateRuntime", "RunnerSecretMissing", "TokenProvisionFailed",
                            *ENTRY_REASONS}, reasons
    running = sum(1 for e in ledger.expected.values() if e == RUNNING)
    print(f"\nbad-input run: {len(ledger.expected) + len(ledger.rejected)} sessions submitted, "
          f"{malformed} malformed: {len(ledger.rejected)} refused by the API server (422 with "
          f"causes), {malformed - len(ledger.rejected)} answered by the operator; "
          f"{running} valid ones Running ({len(ledger.platform_env)} setting variables named "
          "as the platform's)")
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
    time.sleep(seconds)  # the quiet window itself: what is asserted is that nothing happens
    assert _writes(world) == before, "the operator kept writing after every session settled"
    return seconds


def _log_problems(world: World) -> list[str]:
    """Log lines that are not JSON records, tracebacks, and lines at ERROR: bad input is
    answered with one WARNING line carrying the reason, never a traceback, and nothing in this
    run is an unexpected error. At least one such WARNING line is there."""
    problems = []
    terminal = 0
    # split("\n"), not splitlines(): JSON strings carry U+2028, U+0085 ... unescaped.
    for line in world.operator_log.read_text(errors="replace").split("\n"):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            problems.append(f"not a JSON record: {line[:300]}")
            continue
        msg = str(record.get("msg", ""))
        if "Traceback" in str(record.get("error", "")):
            problems.append(f"a traceback: {msg[:200]}: {str(record['error'])[-300:]}")
        elif record.get("level") in ("error", "critical"):
            problems.append(f"an ERROR line: {msg[:300]}")
        elif record.get("level") == "warning" and msg.startswith("reconcile failed terminally"):
            terminal += 1
    if not terminal:
        problems.append("no WARNING line for bad input")
    return problems
