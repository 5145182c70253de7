"""The runner stand-in: upstream runner's answers and token check, records, behaviour, lifetime.

Pure tests drive :class:`RunnerApp` with parsed requests; the others reach stand-ins the
kubelet simulator starts, through the Service proxy, and check that each one goes (socket,
endpoint, no thread) with its container, its pod and its server.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import urllib3

from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from envtest.http.protocol import Request
from envtest.simulators import SCENARIO_ANNOTATION, KubeletSimulator
from envtest.simulators.containerenv import environment
from envtest.simulators.standin import (
    MAX_DELAY,
    MAX_RECORDS,
    Behaviour,
    RunnerApp,
    wants_standin,
)
from tests.conftest import RawClient
from tests.envtest import runner_pods
from tests.envtest.runner_pods import (
    PORT,
    TOKEN,
    create_runner,
    ready_ip,
    requests_seen,
    start_runner,
)

api = runner_pods.api  # the fixtures, shared with the other stand-in tests
session = runner_pods.session

Obj = dict[str, Any]
HEADER = {"X-Ambient-Session-Token": TOKEN}


# pure: what the container asks for and sees -----------------------------------------------------
@pytest.mark.parametrize(("env", "wanted"), [
    ([{"name": "ENVTEST_RUNNER_STANDIN", "value": "1"}], True),
    ([{"name": "ENVTEST_RUNNER_STANDIN", "value": "yes"}], True),
    ([{"name": "ENVTEST_RUNNER_STANDIN", "value": "0"}], False),
    ([{"name": "ENVTEST_RUNNER_STANDIN", "value": "false"}], False),
    ([{"name": "ENVTEST_RUNNER_STANDIN", "value": ""}], False),
    ([{"name": "OTHER", "value": "1"}], False),
], ids=["1", "yes", "0", "false", "empty", "absent"])
def test_who_asks_for_a_standin(env: list[Obj], wanted: bool) -> None:
    assert wants_standin({"name": "c", "env": env}) is wanted


def test_the_environment_a_started_container_sees() -> None:
    objects: dict[tuple[str, str], Obj] = {
        ("secret", "tok"): {"agui-token": base64.b64encode(b"s3cret").decode()},
        ("configmap", "cfg"): {"MODE": "fast", "LEVEL": "2"},
        ("secret", "all"): {"KEY": base64.b64encode(b"v").decode()},
    }
    container = {
        "envFrom": [{"configMapRef": {"name": "cfg"}},
                    {"secretRef": {"name": "all"}, "prefix": "S_"},
                    {"secretRef": {"name": "missing", "optional": True}}],
        "env": [{"name": "AGUI_TOKEN", "valueFrom": {"secretKeyRef": {"name": "tok",
                                                                      "key": "agui-token"}}},
                {"name": "MODE", "value": "slow"},
                {"name": "GONE", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "x",
                                                                "optional": True}}},
                {"name": "EMPTY"}]}
    env = environment(container, lambda kind, name: objects.get((kind, name)))
    assert env == {"MODE": "slow", "LEVEL": "2", "S_KEY": "v", "AGUI_TOKEN": "s3cret",
                   "EMPTY": ""}


# pure: the runner's answers ----------------------------------------------------------------------
@pytest.fixture()
def app_factory() -> Iterator[Callable[..., RunnerApp]]:
    loop = asyncio.new_event_loop()
    yield lambda **env: RunnerApp({"AGUI_TOKEN": TOKEN, **env}, loop=loop, now=lambda: "T")
    loop.close()


def call(app: RunnerApp, method: str, path: str, body: Any = None, *,
         token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {} if token is None else {"x-ambient-session-token": token}
    raw = b"" if body is None else orjson.dumps(body)
    answer = app(Request(method, path, headers, raw))
    assert not isinstance(answer, asyncio.Future)
    assert hasattr(answer, "body")
    try:
        return answer.status, orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        return answer.status, answer.body.decode()


@pytest.mark.parametrize(("token", "path", "status"), [
    (None, "/repos/status", 401), ("wrong", "/repos/status", 401), ("", "/repos/status", 401),
    (TOKEN, "/repos/status", 200), (None, "/health", 200), (None, "/healthz", 404),
    (None, "/nowhere", 401), (TOKEN, "/nowhere", 404),
], ids=["missing", "wrong", "empty", "right", "health-open", "healthz-open", "unknown-path",
        "unknown-path-with-token"])
def test_the_token_check(app_factory: Callable[..., RunnerApp], token: str | None, path: str,
                         status: int) -> None:
    code, body = call(app_factory(), "GET", path, token=token)
    assert code == status
    if status == 401:
        assert body == {"detail": "Unauthorized"}


def test_no_agui_token_means_no_check(app_factory: Callable[..., RunnerApp]) -> None:
    assert call(app_factory(AGUI_TOKEN=""), "GET", "/repos/status", token=None)[0] == 200


def test_repos_add_and_remove_are_idempotent(app_factory: Callable[..., RunnerApp]) -> None:
    app = app_factory(REPOS_JSON=orjson.dumps([
        {"url": "https://github.com/org/first.git", "branch": "main"},
        {"name": "second", "input": {"url": "https://github.com/org/2", "branch": "dev"}}]
    ).decode(), WORKSPACE_PATH="/ws")
    assert sorted(app.repos) == ["first", "second"]
    assert call(app, "POST", "/repos/add", {"url": "https://github.com/org/first.git"}) == (
        200, {"message": "Repository added", "name": "first", "path": "/ws/repos/first",
              "newly_cloned": False})
    code, added = call(app, "POST", "/repos/add", {"url": "https://github.com/org/third.git",
                                                   "branch": "b", "name": "3rd"})
    assert (code, added["name"], added["newly_cloned"]) == (200, "3rd", True)
    assert app.repos["3rd"] == {"url": "https://github.com/org/third.git", "branch": "b"}
    assert call(app, "POST", "/repos/add", {"branch": "x"}) == (
        400, {"detail": "Repository URL is required"})
    for _ in range(2):
        assert call(app, "POST", "/repos/remove", {"name": "3rd"}) == (
            200, {"message": "Repository removed"})
    assert "3rd" not in app.repos
    _, status = call(app, "GET", "/repos/status")
    assert [r["name"] for r in status["repos"]] == ["first", "second"]


def test_workflow_changes_once(app_factory: Callable[..., RunnerApp]) -> None:
    app = app_factory(ACTIVE_WORKFLOW_GIT_URL="https://github.com/org/wf.git",
                      ACTIVE_WORKFLOW_PATH="flows/a")
    same = {"gitUrl": "https://github.com/org/wf.git", "branch": "", "path": "flows/a"}
    assert call(app, "POST", "/workflow", same) == (200, {
        "message": "Workflow already active", "gitUrl": same["gitUrl"], "branch": "main",
        "path": "flows/a"})
    other = {"gitUrl": " https://github.com/org/other.git ", "branch": "v2"}
    assert call(app, "POST", "/workflow", other)[1]["message"] == "Workflow updated"
    assert call(app, "POST", "/workflow", other)[1]["message"] == "Workflow already active"
    assert app.workflow == {"gitUrl": "https://github.com/org/other.git", "branch": "v2",
                            "path": ""}


def test_bad_bodies_and_methods(app_factory: Callable[..., RunnerApp]) -> None:
    app = app_factory()
    assert call(app, "POST", "/workflow", [1, 2]) == (500, "Internal Server Error")
    assert call(app, "POST", "/repos/add") == (500, "Internal Server Error")
    assert call(app, "GET", "/workflow") == (405, {"detail": "Method Not Allowed"})


@pytest.mark.parametrize(("body", "parsed"), [
    ({}, Behaviour()),
    ({"status": 500}, Behaviour(500)),
    ({"status": 200, "delay": 1}, Behaviour(None, 1.0)),
    ({"status": None, "delay": 0.5, "paths": ["/workflow"]}, Behaviour(None, 0.5, ("/workflow",))),
    ({"status": 99}, "status"), ({"status": "500"}, "status"), ({"status": True}, "status"),
    ({"delay": -1}, "delay"), ({"delay": MAX_DELAY + 1}, "delay"), ({"delay": "1"}, "delay"),
    ({"paths": "/workflow"}, "paths"), ([], "object"),
], ids=["reset", "500", "200-is-normal", "paths", "status-low", "status-text", "status-bool",
        "delay-negative", "delay-too-long", "delay-text", "paths-text", "not-an-object"])
def test_behaviour_validation(body: Any, parsed: Behaviour | str) -> None:
    if isinstance(parsed, Behaviour):
        assert Behaviour.parse(body) == parsed
    else:
        with pytest.raises(ValueError, match=parsed):
            Behaviour.parse(body)


def test_records(app_factory: Callable[..., RunnerApp]) -> None:
    app = app_factory()
    app(Request("POST", "/repos/add?x=1", {"x-ambient-session-token": TOKEN,
                                           "content-type": "application/json"},
                b'{"url": "https://h/r.git"}'))
    app(Request("POST", "/workflow", {}, b"not json"))
    app(Request("GET", "/_standin/state", {}, b""))  # controls are not recorded
    assert list(app.records) == [
        {"method": "POST", "path": "/repos/add", "query": "x=1",
         "headers": {"x-ambient-session-token": TOKEN, "content-type": "application/json"},
         "body": {"url": "https://h/r.git"}, "time": "T", "status": 200},
        {"method": "POST", "path": "/workflow", "query": "", "headers": {},
         "body": "not json", "time": "T", "status": 401}]
    for _ in range(MAX_RECORDS + 5):
        app(Request("GET", "/health", {}, b""))
    assert len(app.records) == MAX_RECORDS and app.records[0]["path"] == "/health"


# through the proxy -------------------------------------------------------------------------------
def test_token_from_the_secret_and_what_the_runner_saw(client: RawClient, namespace: str,
                                                      session: str) -> None:
    base = start_runner(client, namespace, session)
    assert client.post(f"{base}/repos/add", {"url": "https://h/a.git"},
                       headers={"X-Ambient-Session-Token": "stale"})[0] == 401
    code, body = client.post(f"{base}/repos/add", {"url": "https://h/a.git", "name": "a"},
                             headers=HEADER)
    assert (code, body["newly_cloned"]) == (200, True)
    seen = requests_seen(client, base)
    assert [(r["path"], r["status"]) for r in seen[-2:]] == [("/repos/add", 401),
                                                             ("/repos/add", 200)]
    assert seen[-1]["headers"]["x-ambient-session-token"] == TOKEN
    _, state = client.get(f"{base}/_standin/state")
    assert state["repos"] == {"a": {"url": "https://h/a.git", "branch": "main"}}
    assert client.delete(f"{base}/_standin/requests", None)[1] == {"requests": []}


def test_behaviour_status_switch(client: RawClient, namespace: str, session: str) -> None:
    base = start_runner(client, namespace, session)
    assert client.post(f"{base}/_standin/behaviour", {"status": 500, "paths": ["/workflow"]}
                       ) == (200, {"status": 500, "delay": 0.0, "paths": ["/workflow"]})
    assert client.post(f"{base}/workflow", {"gitUrl": "u"}, headers=HEADER) == (
        500, {"detail": "stand-in behaviour: status 500"})
    assert client.post(f"{base}/repos/remove", {"name": "x"}, headers=HEADER)[0] == 200
    assert client.post(f"{base}/_standin/behaviour", {"delay": "soon"})[0] == 400
    assert client.get(f"{base}/_standin/behaviour")[1]["status"] == 500  # unchanged
    assert client.post(f"{base}/_standin/behaviour", {})[0] == 200
    assert client.post(f"{base}/workflow", {"gitUrl": "u"}, headers=HEADER)[0] == 200


def test_behaviour_delay_trips_a_callers_timeout(client: RawClient, namespace: str,
                                                session: str) -> None:
    base = start_runner(client, namespace, session)
    client.post(f"{base}/_standin/behaviour", {"delay": 1.5})
    impatient = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=0.3))
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        impatient.request("POST", client.url + f"{base}/workflow", body=b'{"gitUrl": "u"}',
                          headers={**HEADER, "Content-Type": "application/json"})
    # The delay holds that answer only: the API server and the stand-in's controls answer.
    assert client.get(f"/api/v1/namespaces/{namespace}")[0] == 200
    assert client.post(f"{base}/_standin/behaviour", {})[0] == 200
    assert time.monotonic() - started < 1.0
    assert client.post(f"{base}/workflow", {"gitUrl": "u"}, headers=HEADER)[0] == 200
    assert requests_seen(client, base)[-2]["path"] == "/workflow"  # the slow one was seen
    impatient.clear()


def test_a_pod_that_does_not_ask_gets_none(api: LocalAPIServer, client: RawClient,
                                           namespace: str, session: str) -> None:
    before = api.call(lambda c: len(c.endpoints))
    base = create_runner(client, namespace, session, standin=False)
    ip = eventually(lambda: ready_ip(client, namespace, f"{session}-runner"))
    assert api.call(lambda c: len(c.endpoints)) == before
    assert client.get(f"{base}/health")[1]["message"] == (
        f"error trying to reach service: dial tcp {ip}:{PORT}: connect: connection refused")


# lifetime ----------------------------------------------------------------------------------------
def open_fds() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def refused(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def standin_address(api: LocalAPIServer, client: RawClient, namespace: str,
                    pod: str) -> tuple[str, tuple[str, int]]:
    """The pod's UID and where its stand-in listens."""
    _, found = client.get(f"/api/v1/namespaces/{namespace}/pods/{pod}")
    uid = found["metadata"]["uid"]
    address = api.call(lambda c: c.endpoints.lookup(uid, PORT))
    assert address is not None
    return uid, address


def test_it_stops_with_its_pod(api: LocalAPIServer, client: RawClient, namespace: str,
                               session: str) -> None:
    client.get("/version")  # the pooled connection exists before the count
    threads, fds = threading.active_count(), open_fds()
    base = start_runner(client, namespace, session)
    for _ in range(3):
        client.post(f"{base}/workflow", {"gitUrl": "u"}, headers=HEADER)
    uid, address = standin_address(api, client, namespace, f"{session}-runner")
    assert threading.active_count() == threads  # it runs on the server's loop
    assert client.delete(f"/api/v1/namespaces/{namespace}/pods/{session}-runner")[0] == 200
    eventually(lambda: refused(address), message="the stand-in still listens")
    assert api.call(lambda c: c.endpoints.lookup(uid, PORT)) is None
    code, body = client.get(f"{base}/health")
    assert (code, body["message"]) == (
        503, f'no endpoints available for service "session-{session}"')
    # Its own secret, service and our client's connections stay; the stand-in's are gone.
    eventually(lambda: open_fds() <= fds, message=f"file descriptors leaked: {fds} before")
    assert threading.active_count() == threads


def test_it_stops_when_its_container_exits(api: LocalAPIServer, client: RawClient,
                                           namespace: str, session: str) -> None:
    base = start_runner(client, namespace, session, restartPolicy="Never",
                        annotations={SCENARIO_ANNOTATION: "exit:0:1"})
    pod = f"{session}-runner"
    uid, address = standin_address(api, client, namespace, pod)
    eventually(lambda: client.get(f"/api/v1/namespaces/{namespace}/pods/{pod}")[1]["status"][
        "phase"] == "Succeeded", message="the container did not exit")
    eventually(lambda: refused(address), message="the stand-in outlived its container")
    assert api.call(lambda c: c.endpoints.lookup(uid, PORT)) is None
    assert client.get(f"{base}/health")[0] == 503


def test_it_stops_with_the_server(session: str) -> None:
    threads = threading.active_count()
    kubelet = KubeletSimulator(schedule_delay=0.01, start_delay=0.02, ready_delay=0.05)
    with LocalAPIServer(simulators=[kubelet]) as server, RawClient(server.url) as client:
        assert client.post("/api/v1/namespaces", {"metadata": {"name": "own"}})[0] == 201
        base = start_runner(client, "own", session)
        client.post(f"{base}/_standin/behaviour", {"delay": 5})
        _, address = standin_address(server, client, "own", f"{session}-runner")
        outcome: list[object] = []

        def slow_call() -> None:
            try:
                outcome.append(client.get(f"{base}/health"))
            except urllib3.exceptions.HTTPError as exc:  # the server went away mid-call
                outcome.append(exc)

        seen = len(requests_seen(client, base))
        slow = threading.Thread(target=slow_call, name="slow-call")
        slow.start()
        # Once the stand-in recorded it, the proxied call waits on the stand-in's timer.
        eventually(lambda: len(requests_seen(client, base)) > seen,
                   message="the slow call did not reach the stand-in")
    assert refused(address)
    slow.join(5)
    assert not slow.is_alive() and isinstance(outcome[0], urllib3.exceptions.HTTPError)
    assert threading.active_count() == threads
