"""The live run's render, remembered while what it is made from stands (reconcilers.liverender),
and the diff cache's reuse of a remembered render's digest (reconcilers.diffcache.DiffCache)."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from reconcilers import diffcache as diff_module
from reconcilers.diff import diff
from reconcilers.diffcache import DiffCache
from reconcilers.environment import RunInputs, Runtime, VMConfig
from reconcilers.live import without_live_env
from reconcilers.liverender import NOT_RENDERED, LiveRenders
from reconcilers.pod import PodEnvironment, runner_pod
from reconcilers.resources import (
    DESIRED_PHASE,
    PARENT_SESSION_ID,
    RUNNER_SA,
    RUNNER_TOKEN_SECRET,
    ExecutionKind,
    Phase,
)
from reconcilers.samples import backend_session
from reconcilers.vm import KubeVirtEnvironment

RUNTIME = Runtime(id="claude", port=8001)
INPUTS = RunInputs(token_secret="ambient-runner-token-s1", run_started="2026-12-07T10:00:00Z")


def _session(version: str = "10", uid: str = "u-1") -> dict[str, Any]:
    session = backend_session("team", name="s1")
    session["metadata"].update(uid=uid, resourceVersion=version)
    return session


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, session: dict[str, Any], runtime: Runtime = RUNTIME,
                 inputs: RunInputs = INPUTS) -> Any:
        def render() -> list[dict[str, Any]]:
            self.calls += 1
            return [runner_pod(session, runtime, inputs)]
        return render


def test_the_render_is_given_back_while_its_inputs_stand() -> None:
    renders, count = LiveRenders(), Counting()
    session = _session()
    first = renders.render(session, RUNTIME, INPUTS, count(session), environment="pod")
    again = renders.render(copy.deepcopy(session), RUNTIME, replace(INPUTS), count(session),
                           environment="pod")
    assert again is first and count.calls == 1, "equal inputs (not the same objects) reuse it"
    assert first == (runner_pod(session, RUNTIME, INPUTS),), "what a render gives"


def test_the_operators_status_writes_do_not_render_again() -> None:
    """No renderer reads the session's status (nor its resourceVersion): a status write
    (Creating, Running), which moves the version, gives the same render."""
    renders, count = LiveRenders(), Counting()
    session = _session()
    first = renders.render(session, RUNTIME, INPUTS, count(session), environment="pod")
    written = {**_session(version="11"), "status": {"phase": "Running"}}
    assert renders.render(written, RUNTIME, INPUTS, count(written), environment="pod") is first
    assert count.calls == 1


@pytest.mark.parametrize("change", ["spec", "annotations", "runtime", "inputs", "environment"])
def test_any_change_renders_again(change: str) -> None:
    renders, count = LiveRenders(), Counting()
    session, runtime, inputs, environment = _session(), RUNTIME, INPUTS, "pod"
    renders.render(session, runtime, inputs, count(session), environment=environment)
    if change == "spec":
        session = _session(version="11")
        session["spec"]["initialPrompt"] = "something else"
    elif change == "annotations":
        session = _session(version="11")
        session["metadata"].setdefault("annotations", {})["example.com/note"] = "x"
    elif change == "runtime":
        runtime = replace(RUNTIME, image="quay.io/ambient_code/other:2")
    elif change == "inputs":
        inputs = replace(INPUTS, is_resume=True)
    else:
        environment = "kubevirt-vm"
    result = renders.render(session, runtime, inputs, count(session, runtime, inputs),
                            environment=environment)
    assert count.calls == 2
    assert result == (runner_pod(session, runtime, inputs),)


def test_a_session_without_uid_is_always_rendered() -> None:
    renders, count = LiveRenders(), Counting()
    session = _session(uid="")
    for _ in range(2):
        renders.render(session, RUNTIME, INPUTS, count(session), environment="pod")
    assert count.calls == 2


def test_the_memory_is_bounded() -> None:
    renders, count = LiveRenders(maxsize=2), Counting()
    sessions = [_session(uid=f"u-{i}") for i in range(3)]
    for session in sessions:
        renders.render(session, RUNTIME, INPUTS, count(session), environment="pod")
    renders.render(sessions[0], RUNTIME, INPUTS, count(sessions[0]), environment="pod")
    assert count.calls == 4, "the least recent session's render was let go"


def test_a_remembered_render_is_digested_once(monkeypatch: pytest.MonkeyPatch) -> None:
    digested: list[int] = []
    real = diff_module._digest

    def counting(obj: Any) -> bytes:
        digested.append(id(obj))
        return real(obj)

    monkeypatch.setattr(diff_module, "_digest", counting)
    cache = DiffCache()
    desired = runner_pod(_session(), RUNTIME, INPUTS)
    actual = {**copy.deepcopy(desired), "status": {"phase": "Pending"}}
    assert cache.diff(desired, actual) == diff(desired, actual)
    actual["status"] = {"phase": "Running"}
    assert cache.diff(desired, actual).action == "none"
    assert digested.count(id(desired)) == 1, "the same object: its digest is remembered"
    equal = copy.deepcopy(desired)
    assert cache.diff(equal, actual).action == "none"
    assert digested.count(id(equal)) == 1, "an equal object is digested on its own"


def _annotated(session: dict[str, Any], annotations: dict[str, str]) -> dict[str, Any]:
    changed = copy.deepcopy(session)
    changed["metadata"]["annotations"] = {
        **(changed["metadata"].get("annotations") or {}), **annotations}
    return changed


def test_the_operators_annotation_writes_do_not_render_again() -> None:
    """A start's pass clears the intent it fulfils and names the runner's token on the
    session: neither is read by a render, so the next pass gets the same one."""
    renders, count = LiveRenders(), Counting()
    asked = _annotated(_session(), {DESIRED_PHASE: Phase.RUNNING.value, "example.com/note": "x"})
    first = renders.render(asked, RUNTIME, INPUTS, count(asked), environment="pod")
    written = _annotated(_session(version="12"), {
        "example.com/note": "x", RUNNER_TOKEN_SECRET: "t", RUNNER_SA: "a"})
    assert renders.render(written, RUNTIME, INPUTS, count(written), environment="pod") is first
    assert count.calls == 1


@pytest.mark.parametrize("environment", [PodEnvironment(), KubeVirtEnvironment()],
                         ids=["pod", "kubevirt-vm"])
def test_no_environment_renders_an_annotation_said_not_rendered(environment: Any) -> None:
    """What lets :data:`NOT_RENDERED` be left out of what a render is remembered by: each
    environment renders the same with them, whatever their values, as without them — and
    differently for an annotation a render does read (the parent session's), so the check
    can see one."""
    runtime = RUNTIME if environment.kind == ExecutionKind.POD else Runtime(
        id="vm", port=8001, execution_kind=ExecutionKind.KUBEVIRT_VM,
        vm=VMConfig(container_disk_image="quay.io/ambient/disk:1", cpu=2, memory="4Gi"))
    session = _session()
    plain = environment.render(session, runtime, INPUTS)
    for value in ("", "true", "Running", "Stopped", "other-name"):
        noted = _annotated(session, dict.fromkeys(NOT_RENDERED, value))
        assert environment.render(noted, runtime, INPUTS) == plain, value
    empty = copy.deepcopy(session)
    empty["metadata"].update(annotations={}, labels={})
    assert environment.render(empty, runtime, INPUTS) == plain, "empty maps read as none"
    parented = _annotated(session, {PARENT_SESSION_ID: "s0"})
    assert environment.render(parented, runtime, INPUTS) != plain


def test_a_start_gives_its_render_to_the_live_runs_first_pass() -> None:
    """Seeded by the start with what it rendered: the live run's first pass (the session
    now with the start's annotations and status) gets its live form without rendering."""
    renders, count = LiveRenders(live_form=without_live_env), Counting()
    session = _annotated(_session(), {DESIRED_PHASE: Phase.RUNNING.value})
    started = (runner_pod(session, RUNTIME, INPUTS),)
    renders.seed(session, RUNTIME, INPUTS, started, environment="pod")
    live = {**_annotated(_session(version="13"), {RUNNER_SA: "a"}),
            "status": {"phase": "Creating"}}
    given = renders.render(live, RUNTIME, INPUTS, count(live), environment="pod")
    assert count.calls == 0 and renders.renders == 0
    assert given == (without_live_env(runner_pod(live, RUNTIME, INPUTS)),)
    other = replace(INPUTS, is_resume=True)
    assert renders.render(live, RUNTIME, other, count(live, inputs=other),
                          environment="pod") == (without_live_env(runner_pod(live, RUNTIME,
                                                                              other)),)
    assert count.calls == 1, "other inputs than the start's: rendered"


def test_a_session_without_uid_is_not_seeded() -> None:
    renders, count = LiveRenders(), Counting()
    session = _session(uid="")
    renders.seed(session, RUNTIME, INPUTS, (runner_pod(session, RUNTIME, INPUTS),),
                 environment="pod")
    renders.render(session, RUNTIME, INPUTS, count(session), environment="pod")
    assert count.calls == 1


def test_a_digest_never_hashes_enough_at_once_to_let_go_of_the_gil(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """hashlib drops the GIL for 2,048 bytes or more (and for every later update of that
    hash object): a worker would then wait for it back behind the other busy threads. A
    runner Pod is hashed in pieces, to the same digest as at once."""
    import hashlib

    sizes: list[int] = []

    class Recording:
        def __init__(self, data: bytes = b"", **kwargs: Any) -> None:
            self._hash = hashlib.blake2b(**kwargs)
            if data:
                self.update(data)

        def update(self, data: Any) -> None:
            sizes.append(len(data))
            self._hash.update(data)

        def digest(self) -> bytes:
            return self._hash.digest()

    class Module:
        blake2b = Recording

    monkeypatch.setattr(diff_module, "hashlib", Module)
    pod = runner_pod(_session(), RUNTIME, INPUTS)
    whole = diff_module.orjson.dumps(pod, option=diff_module.orjson.OPT_SORT_KEYS)
    assert len(whole) > 4096, "big enough to need pieces"
    assert diff_module._digest(pod) == hashlib.blake2b(whole, digest_size=16).digest()
    assert sizes and max(sizes) < 2048 and sum(sizes) == len(whole)
