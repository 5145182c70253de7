"""The chaos run: thousands of sessions while the API server misbehaves, then convergence.

The API server (its own process, kubelet and KubeVirt simulators) and the operator (its own
process, ``ambient-ctrl run``) run while the server's admin endpoint injects, for the whole
creation and a stretch after it: watch drops every 2 s, 5 % 5xx (500 and 503 alike), 2 % 429
with ``Retry-After: 1`` on every verb and resource (the test's own requests retry them), and
in the middle one restart that forgets the event history (watchers get 410 Gone and relist).
Then the faults are cleared and every session must converge (Running, Ready=True) within a
bound, with exactly the children it should have and nothing else:

* **duplicates** — per session exactly one of each child upstream gives it: the runner (Pod,
  or VirtualMachine plus its cloud-init Secret and the simulator's one virt-launcher pod), the
  Service ``session-<n>`` (controlled by the runner), the token Secret, the ServiceAccount, its
  Role and RoleBinding — found by owner (directly or through the runner), by name, and by the
  ``agentic-session`` label where upstream sets it; one NetworkPolicy for the namespace; no
  controlled object of those kinds that belongs to no session. The server enforces unique
  names, so a child "created twice" would have to be created, deleted and created again: the
  operator deleted no child, and its successful creates (``201`` answers, from its own
  ``rest_client_requests_total``) account for the objects it owns — children, the
  NetworkPolicy and its Events — plus its TokenRequests (a 201 that stores nothing), up to
  POSTs the server saw whose answer never arrived. Creates the server counted beyond the 201s
  failed (injected 5xx/429, or AlreadyExists). Nothing changed a spec, so the operator patched
  no child either (a patch would mean its desired state drifted) — but for a VM's cloud-init
  Secret left by an attempt whose VM was refused, brought to the next attempt's render before
  the VM is made (at most one per VM session; each VM's user data matches its run).
* **tokens** — each token Secret's ``k8s-token`` was minted by a TokenRequest for its session's
  ServiceAccount as it exists now (the JWT names the account's uid: no account was replaced
  after its token was drawn), the session carries the runner-sa and runner-token-secret
  annotations (whatever write was lost), and a VM reaches its tokens through the token Secret it
  references, never inline (neither the VM nor its cloud-init data holds a token).
* **orphans** — every object of those kinds with a controller owner has one that exists (a
  session, a runner, or for virt-launcher pods the VMI).
* the operator process never exited, and exits 0 on SIGTERM.

A second phase deletes a slice of the sessions and re-creates half of them under the same
name (a new uid) with the faults back on, then checks that garbage collection left no orphans
and the re-created sessions run on children of their own.

``CHAOS_SESSIONS`` sets the size (default 2,000: about two and a half minutes here on two cores;
``make e2e-chaos`` runs 5,000).
"""

from __future__ import annotations

import base64
import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest

from ambient_ctrl.testing import eventually
from reconcilers.resources import RESUME_ANNOTATION

from .operator_process import (
    CHILD_KINDS,
    LABELLED,
    NAMESPACE,
    POD_RUNTIME,
    SESSIONS,
    VM_RUNTIME,
    World,
    backend_body,
    condition,
    controller,
    expected_children,
    labelled_children,
    owners,
    start_world,
    stop_world,
    token_claims,
)

SESSION_COUNT = int(os.environ.get("CHAOS_SESSIONS", "2000"))
VM_EVERY = 10
"""Every tenth session runs in a KubeVirt VM, the others in a Pod."""
CHAOS_AFTER_CREATION = 15.0
"""Seconds the faults stay on after the last session was created."""
CONVERGE_TIMEOUT = 90.0 + 0.06 * SESSION_COUNT
FAULTS = [{"code": 500, "fraction": 0.025}, {"code": 503, "fraction": 0.025},
          {"code": 429, "fraction": 0.02, "retryAfter": 1}]
NETWORK_POLICIES = "/apis/networking.k8s.io/v1"
OPERATOR_COMPONENT = "agenticsession-operator"

pytestmark = [pytest.mark.timeout(int(240 + 0.2 * SESSION_COUNT)),
              pytest.mark.local_only("injects faults and a restart through the local server's "
                                     "admin endpoint")]


def _name(index: int) -> str:
    return f"chaos-{index}"


def _is_vm(index: int) -> bool:
    return index % VM_EVERY == VM_EVERY - 1


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world = start_world(tmp_path_factory.mktemp("chaos"), registry=[POD_RUNTIME, VM_RUNTIME],
                        namespaces=[NAMESPACE])
    try:
        world.start_operator(concurrency=8)
        yield world
    finally:
        with contextlib.suppress(Exception):  # a server that died is reported below
            world.admin_call("DELETE", "/faults")
        operator, _ = stop_world(world)
        assert operator == 0, f"the operator exited {operator} on SIGTERM; see {world.workdir}"


# helpers ---------------------------------------------------------------------------------------
def _create(world: World, index: int) -> None:
    status, body = world.raw.request(
        "POST", f"{SESSIONS}/namespaces/{NAMESPACE}/agenticsessions",
        backend_body(_name(index), NAMESPACE, vm=_is_vm(index), display_name=f"Chaos {index}",
                     prompt="Fix the tests"))
    # 409: an earlier attempt was committed but its answer lost (the restart cuts connections).
    assert status in (201, 409), (status, body)


def _sessions(world: World) -> dict[str, dict[str, Any]]:
    items = world.raw.items(f"{SESSIONS}/namespaces/{NAMESPACE}/agenticsessions")
    return {s["metadata"]["name"]: s for s in items}


def _converged(session: dict[str, Any]) -> bool:
    status = session.get("status") or {}
    return status.get("phase") == "Running" and condition(session).get("status") == "True"


def _children(world: World) -> dict[str, list[dict[str, Any]]]:
    return {plural: world.raw.items(f"{prefix}/namespaces/{NAMESPACE}/{plural}")
            for plural, prefix in CHILD_KINDS.items()}


def _operator_requests(world: World) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for row in world.admin_call("GET", "/requests?agent=ambient-ctrl"):
        counts[(row["verb"], row["resource"])] += row["count"]
    return counts


def _rest_codes(world: World, method: str) -> Counter[str]:
    """The operator's own view of its requests: answers by HTTP code for ``method``."""
    codes: Counter[str] = Counter()
    for line in world.scrape().splitlines():
        if line.startswith("rest_client_requests_total{") and f'method="{method}"' in line:
            code = line.split('code="', 1)[1].split('"', 1)[0]
            codes[code] += int(float(line.rsplit(" ", 1)[1]))
    return codes


def _secret_value(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


class Chaos:
    """Faults on the server: switched on and off, with one restart (history lost) halfway."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.restarts = 0

    def on(self) -> None:
        self.world.admin_call("POST", "/faults/drop-watches", {"every": 2})
        for rule in FAULTS:
            self.world.admin_call("POST", "/faults/fail", rule)

    def off(self) -> None:
        self.world.admin_call("DELETE", "/faults")

    def restart(self) -> None:
        self.world.admin_call("POST", "/faults/restart", {"downtime": 1.0})
        self.restarts += 1


def _wait_converged(world: World, names: set[str], timeout: float) -> dict[str, dict[str, Any]]:
    def check() -> dict[str, dict[str, Any]]:
        assert world.operator is not None and world.operator.poll() is None, "operator died"
        sessions = _sessions(world)
        stuck = sorted(n for n in names if not _converged(sessions.get(n, {})))
        assert not stuck, (f"{len(stuck)} sessions not Running/Ready, e.g. "
                           f"{[(n, (sessions.get(n) or {}).get('status')) for n in stuck[:3]]}")
        return sessions

    try:
        return eventually(check, timeout=timeout, interval=2.0)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{_diagnose(world, names)}") from None


def _diagnose(world: World, names: set[str]) -> str:
    """What a few stuck sessions and their children look like (for the failure message)."""
    sessions = _sessions(world)
    stuck = sorted(n for n in names if not _converged(sessions.get(n, {})))[:3]
    lines = []
    for plural, objs in _children(world).items():
        for obj in objs:
            meta = obj["metadata"]
            if (meta.get("labels") or {}).get("agentic-session") in stuck:
                lines.append(f"  {plural}/{meta['name']} owner={controller(obj).get('uid')} "
                             f"deleting={bool(meta.get('deletionTimestamp'))} "
                             f"phase={(obj.get('status') or {}).get('phase')}")
    for name in stuck:
        meta = (sessions.get(name) or {}).get("metadata") or {}
        lines.append(f"  session {name} uid={meta.get('uid')}")
    return "\n".join(lines)


# the checks ------------------------------------------------------------------------------------
def _check_children(sessions: dict[str, dict[str, Any]],
                    children: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Per session: its children by owner, by name and by label, nothing else; returns the
    counts of owned children by kind."""
    owned, launchers = owners(sessions, children)
    labelled: dict[tuple[str, str], list[str]] = {}
    names: dict[str, set[str]] = {}
    for plural, objs in children.items():
        names[plural] = {obj["metadata"]["name"] for obj in objs}
        for obj in objs:
            session = (obj["metadata"].get("labels") or {}).get("agentic-session")
            if session is not None:
                labelled.setdefault((plural, session), []).append(obj["metadata"]["name"])
    for name, session in sessions.items():
        vm = session["spec"].get("runtime") == VM_RUNTIME["id"]
        tagged = labelled_children(name, vm=vm)
        for plural, expected in expected_children(name, vm=vm).items():
            assert sorted(owned.get((plural, name), [])) == expected, (
                name, plural, owned.get((plural, name)))
            assert set(expected) <= names[plural], (name, plural, expected)
            if plural in LABELLED:
                extra = launchers.get(name, []) if plural == "pods" else []
                assert sorted(labelled.get((plural, name), [])) == sorted(
                    [*tagged[plural], *extra]), (name, plural, labelled.get((plural, name)))
        if vm:
            assert len(launchers.get(name, [])) == 1, (name, launchers.get(name))
    # Nothing controlled in the namespace belongs to no session (virt-launchers: the VMI's;
    # the project's trigger RBAC: the namespace's ProjectSettings').
    known = {(plural, child) for (plural, _), names in owned.items() for child in names}
    known |= {("pods", pod) for pods in launchers.values() for pod in pods}
    stray = [f"{plural}/{obj['metadata']['name']}" for plural, objs in children.items()
             for obj in objs if controller(obj) and controller(obj)["kind"] != "ProjectSettings"
             and (plural, obj["metadata"]["name"]) not in known]
    assert not stray, stray[:10]
    return {plural: sum(len(v) for (p, _), v in owned.items() if p == plural)
            for plural in CHILD_KINDS}


def _check_network_policy(world: World) -> None:
    """One NetworkPolicy for the namespace: the operator's, as upstream's."""
    policies = world.raw.items(f"{NETWORK_POLICIES}/namespaces/{NAMESPACE}/networkpolicies")
    assert [p["metadata"]["name"] for p in policies] == ["runner-allow-backend-only"], policies
    assert policies[0]["spec"]["podSelector"] == {"matchLabels": {"app": "ambient-code-runner"}}


def _check_tokens(sessions: dict[str, dict[str, Any]],
                  children: dict[str, list[dict[str, Any]]]) -> None:
    """Each ``k8s-token`` was minted for its session's ServiceAccount as it exists now, and
    the session names both (``runner-sa``, ``runner-token-secret``: the backend needs them); a
    VM reads its tokens from the token Secret it references, never from its own objects."""
    secrets = {s["metadata"]["name"]: s for s in children["secrets"]}
    accounts = {a["metadata"]["name"]: a["metadata"]["uid"]
                for a in children["serviceaccounts"]}
    vms = {v["metadata"]["name"]: v for v in children["virtualmachines"]}
    for name, session in sessions.items():
        token = secrets[f"ambient-runner-token-{name}"]
        claims = token_claims(token)
        account = f"ambient-session-{name}"
        assert claims["namespace"] == NAMESPACE and claims["serviceaccount"] == {
            "name": account, "uid": accounts[account]}, (name, claims)
        annotations = session["metadata"].get("annotations") or {}
        assert (annotations.get("ambient-code.io/runner-sa"),
                annotations.get("ambient-code.io/runner-token-secret")) == (
            account, f"ambient-runner-token-{name}"), (name, annotations)
        if session["spec"].get("runtime") != VM_RUNTIME["id"]:
            continue
        vm = vms[f"{name}-runner"]
        shared = {v["secret"]["secretName"] for v in vm["spec"]["template"]["spec"]["volumes"]
                  if "secret" in v}
        assert f"ambient-runner-token-{name}" in shared, (name, shared)
        userdata = base64.b64decode(secrets[f"{name}-cloudinit"]["data"]["userdata"])
        for key in ("k8s-token", "agui-token"):
            assert _secret_value(token, key).encode() not in orjson.dumps(vm) + userdata, \
                (name, key)
        # The guest boots with the variables of the run its VM was made for.
        resumed = (vm["metadata"].get("annotations") or {}).get(RESUME_ANNOTATION) == "true"
        assert (b'IS_RESUME="true"' in userdata) == resumed, (name, resumed)


def _orphans(world: World) -> list[str]:
    """Children of the sessions' kinds whose controller owner does not exist (any
    namespace): owners are sessions, runners (a Service) and VMIs (virt-launcher pods)."""
    live = {s["metadata"]["uid"] for s in world.raw.items(f"{SESSIONS}/agenticsessions")}
    live |= {p["metadata"]["uid"] for p in world.raw.items(f"{SESSIONS}/projectsettings")}
    live |= {v["metadata"]["uid"]
             for v in world.raw.items("/apis/kubevirt.io/v1/virtualmachineinstances")}
    objects = {plural: world.raw.items(f"{prefix}/{plural}")
               for plural, prefix in CHILD_KINDS.items()}
    live |= {o["metadata"]["uid"] for plural in ("pods", "virtualmachines")
             for o in objects[plural]}
    found = []
    for plural, objs in objects.items():
        for obj in objs:
            ref = controller(obj)
            if ref and ref.get("uid") not in live:
                found.append(f"{plural}/{obj['metadata']['namespace']}/"
                             f"{obj['metadata']['name']}")
    return found


def _project_objects(world: World) -> int:
    """The namespace's ProjectSettings (the operator made it: the namespace is managed) and what
    it controls: the trigger ServiceAccount, Role and RoleBinding and the LimitRange."""
    settings = world.raw.items(f"{SESSIONS}/namespaces/{NAMESPACE}/projectsettings")
    uids = {s["metadata"]["uid"] for s in settings}
    kinds = {**CHILD_KINDS, "limitranges": "/api/v1"}
    return len(settings) + sum(
        1 for plural, prefix in kinds.items()
        for obj in world.raw.items(f"{prefix}/namespaces/{NAMESPACE}/{plural}")
        if controller(obj).get("uid") in uids)


def _operator_events(world: World) -> int:
    events = world.raw.items(f"/api/v1/namespaces/{NAMESPACE}/events")
    return sum(1 for e in events if (e.get("source") or {}).get("component")
               == OPERATOR_COMPONENT)


# the run ---------------------------------------------------------------------------------------
def test_chaos_run_converges_without_duplicates_or_orphans(world: World) -> None:
    chaos = Chaos(world)
    started = time.monotonic()
    chaos.on()
    created = 0
    lock = threading.Lock()

    def create(index: int) -> None:
        nonlocal created
        _create(world, index)
        with lock:
            created += 1
            halfway = created == SESSION_COUNT // 2
        if halfway:
            chaos.restart()  # in the middle of the run: history gone, every watch relists

    with ThreadPoolExecutor(4, thread_name_prefix="create") as pool:
        list(pool.map(create, range(SESSION_COUNT)))
    creation = time.monotonic() - started
    deadline = time.monotonic() + CHAOS_AFTER_CREATION
    while time.monotonic() < deadline:
        assert world.operator is not None and world.operator.poll() is None, "operator died"
        time.sleep(1.0)  # the chaos lasts this long in real time: that is the test
    chaos.off()
    cleared = time.monotonic()
    names = {_name(i) for i in range(SESSION_COUNT)}
    sessions = _wait_converged(world, names, CONVERGE_TIMEOUT)
    converged = time.monotonic()
    assert chaos.restarts == 1

    # every session Running with its backend recorded
    kinds = Counter(s["status"]["executionKind"] for s in sessions.values())
    assert kinds == {"pod": SESSION_COUNT - SESSION_COUNT // VM_EVERY,
                     "kubevirt-vm": SESSION_COUNT // VM_EVERY}, kinds

    # 0 duplicate children; every token minted for its session's ServiceAccount as it is
    children = _children(world)
    owned = _check_children(sessions, children)
    _check_network_policy(world)
    _check_tokens(sessions, children)

    # 0 orphans
    assert _orphans(world) == []

    # creates: every successful one is an object the operator owns or a TokenRequest; none
    # deleted, none patched
    requests = _operator_requests(world)
    posts = _rest_codes(world, "POST")
    events = _operator_events(world)
    # + the namespace's NetworkPolicy, and its ProjectSettings with what they own
    objects = sum(owned.values()) + 1 + events + _project_objects(world)
    written = [*CHILD_KINDS, "networkpolicies"]
    tokens = requests[("create", "serviceaccounts/token")]
    server_creates = sum(requests[("create", p)] for p in [
        *written, "events", "projectsettings", "limitranges"]) + tokens
    # POSTs the server saw whose answer never arrived (cut by the restart): committed or not.
    unanswered = server_creates - sum(n for code, n in posts.items() if code != "<error>")
    assert unanswered >= 0, (server_creates, posts)
    assert all(requests[("delete", plural)] == 0 for plural in written), requests
    # Nothing changed a session's spec: a patched child means the operator's desired state
    # drifted (e.g. a token drawn afresh while the cache lagged). One exception: a VM's
    # cloud-init Secret left by an attempt whose VM was refused is brought to the next
    # attempt's render before the VM is made (_check_tokens: it matches its VM's run).
    vms = SESSION_COUNT // VM_EVERY
    assert requests[("patch", "secrets")] <= vms, (vms, requests)
    assert all(requests[("patch", plural)] == 0 for plural in written if plural != "secrets"), \
        requests
    # The 201s are objects created plus TokenRequests answered (T): objects - (201s - T) is
    # in [0, unanswered]. T is at least one per session (each token Secret holds one) and at
    # most the TokenRequests the server saw.
    assert objects - posts["201"] + tokens >= 0, (objects, posts, tokens)
    assert objects - posts["201"] + SESSION_COUNT <= unanswered, (objects, posts, unanswered)
    failed = server_creates - posts["201"]
    faults = _rest_codes(world, "GET") + _rest_codes(world, "PATCH") + posts
    injected = sum(n for code, n in faults.items() if code in ("500", "503", "429"))
    assert world.operator is not None and world.operator.poll() is None

    by_verb: Counter[str] = Counter()
    for (verb, _), n in requests.items():
        by_verb[verb] += n
    print(f"\nchaos run: {SESSION_COUNT} sessions ({kinds['pod']} pod, {kinds['kubevirt-vm']} VM)"
          f" created in {creation:.0f} s under faults; faults cleared after "
          f"{cleared - started:.0f} s; all Running and Ready {converged - cleared:.0f} s later "
          f"({converged - started:.0f} s in all)")
    print(f"  faults: watch drops every 2 s, 5 % 5xx, 2 % 429 (Retry-After 1), "
          f"{chaos.restarts} restart; the operator got {injected} injected 5xx/429 answers")
    print(f"  children: {owned}; 0 duplicates, 0 orphans; Events by the operator: {events}")
    print(f"  creates the server saw: {server_creates} ({tokens} TokenRequests); 201s: "
          f"{posts['201']}; failed: {failed} (POST answers {dict(sorted(posts.items()))}; seen "
          f"by the server, unanswered: {unanswered}); objects owned by the operator: {objects}")
    print(f"  operator requests by verb: {dict(sorted(by_verb.items()))}")

    _delete_and_recreate_under_chaos(world, chaos, sessions)


def _delete_and_recreate_under_chaos(world: World, chaos: Chaos,
                                     sessions: dict[str, dict[str, Any]]) -> None:
    """Delete 5 % of the pod sessions and 25 % of the VM sessions, and re-create every second
    of those (same name, new uid), with the faults on; afterwards nothing may be left over
    from the deleted ones."""
    started = time.monotonic()
    victims = [_name(i) for i in range(SESSION_COUNT) if i % 20 == 0 or i % 40 == VM_EVERY - 1]
    reborn = set(victims[::2])
    before = _operator_requests(world)
    chaos.on()
    base = f"{SESSIONS}/namespaces/{NAMESPACE}/agenticsessions"
    for name in victims:
        status, body = world.raw.request("DELETE", f"{base}/{name}")
        assert status in (200, 202, 404), (status, body)
    for name in sorted(reborn):
        index = int(name.rsplit("-", 1)[1])

        def created_anew(index: int = index, name: str = name) -> bool:
            _create(world, index)
            status, body = world.raw.request("GET", f"{base}/{name}")
            return status == 200 and body["metadata"]["uid"] != sessions[name]["metadata"][
                "uid"]

        # The old one may still be there for a moment (its deletion is not instant).
        eventually(created_anew, timeout=30, interval=0.2)
    time.sleep(CHAOS_AFTER_CREATION / 3)  # the chaos lasts this long in real time
    chaos.off()
    gone = set(victims) - reborn
    remaining = {n for n in sessions if n not in gone}
    now = _wait_converged(world, remaining, CONVERGE_TIMEOUT)
    assert not gone & set(now), gone & set(now)

    def settled() -> dict[str, int]:
        # Deleted VMs take their VMI and virt-launcher pod with them a little later.
        assert _orphans(world) == []
        children = _children(world)
        _check_tokens(now, children)
        return _check_children(now, children)

    owned = eventually(settled, timeout=60, interval=1.0)
    assert world.operator is not None and world.operator.poll() is None
    writes = {f"{verb} {plural}": n for (verb, plural), n in sorted(
        (_operator_requests(world) - before).items()) if plural in CHILD_KINDS}
    print(f"  then {len(victims)} deleted ({sum(_is_vm(int(n.rsplit('-', 1)[1])) for n in victims)}"
          f" VM), {len(reborn)} of them re-created under faults: "
          f"{len(now)} sessions Running again after {time.monotonic() - started:.0f} s; "
          f"children {owned}; 0 orphans; operator writes to children meanwhile: {writes}")

