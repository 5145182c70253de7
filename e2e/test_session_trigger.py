"""Scheduled sessions (issue 14, item 3): the image's ``./operator session-trigger`` as the
platform's CronJobs run it, against the local API server and the operator as processes.

The local API server runs as its own process with the kubelet simulator. The operator runs as
its own process started the way upstream's image starts it: ``./operator`` (image/operator,
copied into a working directory of its own, as the image's /app) with the flags of upstream's
operator Deployment. Each scheduled run is ``./operator session-trigger`` from that directory
with the four variables the backend's CronJob sets (be/handlers/scheduled_sessions.go:203-209),
plus what makes it reach this test instead of a cluster: ``KUBECONFIG``, ``BACKEND_API_URL``
(a stand-in backend on 127.0.0.1 that records what it is sent) and ``AMBIENT_CTRL_TOKEN_FILE``.

Two namespaces: ``scheduled`` is managed (the operator runs its sessions: a reused session
really restarts); ``scheduled-static`` is not, so the trigger's writes there stay exactly as
it left them and the reuse decisions can be checked on sessions whose phase the test sets.
"""

from __future__ import annotations

import datetime as dt
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from ambient_ctrl.testing import eventually, free_port, start_apiserver_process, stop_process
from e2e.cluster import operator_serving
from informers.resource import NAMESPACES, PODS
from informers.rest import ResourceClient, Transport, load_configuration
from reconcilers.install import install
from reconcilers.resources import AGENTIC_SESSIONS
from reconcilers.samples import UPSTREAM_REGISTRY
from reconcilers.trigger import display_time

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.local_only("starts its own API server and operator processes")]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
"""The virtualenv's scripts: ``ambient-ctrl`` (what image/operator calls, found on PATH)."""
NS = "scheduled"
STATIC_NS = "scheduled-static"
OPERATOR_NS = "ambient-code"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.trigger-service-account.sig"
SCHEDULE_LABEL = "ambient-code.io/scheduled-session-name"
DESIRED_PHASE = "ambient-code.io/desired-phase"
START_REQUESTED_AT = "ambient-code.io/start-requested-at"
STOP_REQUESTED_AT = "ambient-code.io/stop-requested-at"
FORCE = "ambient-code.io/force-execute-prompt"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)")


class Backend:
    """The platform's backend, as far as the trigger talks to it: records every request and
    answers ``status``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                backend.requests.append({"path": self.path, "headers": dict(self.headers),
                                         "body": orjson.loads(body)})
                answer = orjson.dumps({"runId": "r1"} if backend.status < 400
                                      else {"error": "boom"})
                self.send_response(backend.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@dataclass
class Cluster:
    sessions: ResourceClient
    pods: ResourceClient
    app: Path
    """The image's /app: the operator entry script, the working directory of every command."""
    env: dict[str, str]
    backend: Backend
    operator_log: Path

    def trigger(self, template: dict[str, Any] | str | None, namespace: str, schedule: str, *,
                reuse: str | None = None, command: tuple[str, ...] = ("./operator",
                                                                       "session-trigger"),
                **extra: str) -> subprocess.CompletedProcess[str]:
        """The backend's CronJob pod: its command and env (``None``: a variable left out)."""
        env = dict(self.env, **extra)
        if template is not None:
            env["SESSION_TEMPLATE"] = template if isinstance(template, str) \
                else orjson.dumps(template).decode()
        env["PROJECT_NAMESPACE"] = namespace
        env["SCHEDULED_SESSION_NAME"] = schedule
        if reuse is not None:
            env["REUSE_LAST_SESSION"] = reuse
        return subprocess.run(list(command), cwd=self.app, env=env, capture_output=True,
                              text=True, timeout=60, check=False)

    def runs(self, namespace: str, schedule: str) -> list[dict[str, Any]]:
        listed = self.sessions.list(namespace, label_selector=f"{SCHEDULE_LABEL}={schedule}")
        return sorted(listed["items"], key=lambda s: s["metadata"]["name"])

    def get(self, name: str, namespace: str = NS) -> dict[str, Any]:
        return self.sessions.get(name, namespace)

    def phase(self, name: str, namespace: str = NS) -> str:
        return str((self.get(name, namespace).get("status") or {}).get("phase", ""))

    def wait_phase(self, name: str, phase: str, timeout: float = 30.0) -> dict[str, Any]:
        eventually(lambda: self.phase(name) == phase, timeout=timeout,
                   message=f"{name} never reached {phase} (last {self.phase(name)!r}; operator "
                           f"log: {self.operator_log.read_text(errors='replace')[-1500:]})")
        return self.get(name)

    def session(self, namespace: str, schedule: str, phase: str, *, prompt: str = "old prompt",
                annotations: dict[str, str] | None = None) -> dict[str, Any]:
        """A run of ``schedule`` as an earlier trigger left it, in ``phase`` (the status
        written as the operator would)."""
        name = f"{schedule[:30]}-{uuid.uuid4().hex[:8]}"
        created = self.sessions.create({
            "apiVersion": AGENTIC_SESSIONS.api_version, "kind": AGENTIC_SESSIONS.kind,
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {SCHEDULE_LABEL: schedule,
                                    "ambient-code.io/scheduled-run": "true"},
                         "annotations": annotations or {}},
            "spec": {"initialPrompt": prompt, "displayName": "Earlier run", "timeout": 300}})
        if phase:
            return self.sessions.patch_status(name, {"status": {"phase": phase}}, namespace)
        return created


def runner_env(cluster: Cluster, name: str) -> dict[str, Any]:
    pod = cluster.pods.get(f"{name}-runner", NS)
    container = next(c for c in pod["spec"]["containers"] if c["name"] == "ambient-code-runner")
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if " ERROR " in line]


def next_second() -> None:
    """Creation timestamps have second precision: let the next object be visibly newer."""
    start = int(time.time())
    eventually(lambda: int(time.time()) > start, timeout=2, interval=0.02)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("session-trigger")
    server, _, kubeconfig = start_apiserver_process(
        workdir / "kubeconfig", log=workdir / "apiserver.log",
        extra_args=["--simulate", "kubelet"])
    operator: subprocess.Popen[bytes] | None = None
    backend = Backend()
    transport = Transport(load_configuration(str(kubeconfig)))
    try:
        install(transport, namespace=NS, registry_namespace=OPERATOR_NS,
                registry=UPSTREAM_REGISTRY)
        ResourceClient(transport, NAMESPACES).create({"metadata": {"name": STATIC_NS}})
        app = workdir / "app"
        app.mkdir()
        shutil.copy2(ROOT / "image" / "operator", app / "operator")
        token = workdir / "token"
        token.write_text(TOKEN)
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("AMBIENT_CTRL_", "KUBERNETES_")) and k not in (
                    "KUBECONFIG", "SESSION_TEMPLATE", "PROJECT_NAMESPACE",
                    "SCHEDULED_SESSION_NAME", "REUSE_LAST_SESSION", "BACKEND_API_URL",
                    "BACKEND_NAMESPACE")}
        base["PATH"] = f"{BIN}{os.pathsep}{base.get('PATH', '')}"
        base["KUBECONFIG"] = str(kubeconfig)
        # The operator as upstream's Deployment starts it: the image's entry, upstream's flags
        # (bound to 127.0.0.1 here) and upstream's environment.
        probes, metrics = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        log = workdir / "operator.log"
        with open(log, "ab") as out:
            operator = subprocess.Popen(
                ["./operator", "--max-concurrent-reconciles=10",
                 f"--health-probe-bind-address={probes}", "--leader-elect=false",
                 f"--metrics-bind-address={metrics}"],
                cwd=app, env={**base, "NAMESPACE": OPERATOR_NS, "BACKEND_NAMESPACE": OPERATOR_NS,
                              "MAX_CONCURRENT_RECONCILES": "10",
                              "IMAGE_PULL_POLICY": "IfNotPresent"},
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        eventually(lambda: operator_serving(f"http://{probes}/readyz", operator, log), timeout=30,
                   message="the operator never became ready")
        trigger_env = {**base, "BACKEND_API_URL": backend.url,
                       "AMBIENT_CTRL_TOKEN_FILE": str(token)}
        yield Cluster(ResourceClient(transport, AGENTIC_SESSIONS),
                      ResourceClient(transport, PODS), app, trigger_env, backend, log)
    finally:
        transport.close()
        backend.close()
        if operator is not None:
            assert stop_process(operator, timeout=35) == 0, "the operator did not stop cleanly"
        assert stop_process(server) == 0, "the API server did not stop cleanly"


def schedule_name() -> str:
    """As the backend names its CronJobs."""
    return f"schedule-{uuid.uuid4()}"


# a new run --------------------------------------------------------------------------------------
TEMPLATE = {
    # the backend's CreateAgenticSessionRequest as CreateScheduledSession marshals it
    "initialPrompt": "Summarise yesterday's Jira tickets", "displayName": "Daily Jira Summary",
    "runnerType": "claude-agent-sdk",
    "llmSettings": {"model": "claude-sonnet-4-6", "temperature": 0.7, "maxTokens": 4000},
    "timeout": 300, "repos": [{"url": "https://github.com/ambient-code/platform",
                               "branch": "main"}],
    "userContext": {"userId": "alice", "displayName": "Alice", "groups": []}}


def test_a_scheduled_run_creates_a_session_that_runs(cluster: Cluster) -> None:
    schedule = schedule_name()
    before = int(time.time())
    result = cluster.trigger(TEMPLATE, NS, schedule)
    after = int(time.time())
    assert result.returncode == 0, result.stderr
    [run] = cluster.runs(NS, schedule)
    name = run["metadata"]["name"]
    match = re.fullmatch(r"daily-jira-summary-(\d+)", name)
    assert match and before <= int(match[1]) <= after, name
    moment = dt.datetime.fromtimestamp(int(match[1]), dt.UTC)
    assert run["metadata"]["labels"] == {SCHEDULE_LABEL: schedule,
                                         "ambient-code.io/scheduled-run": "true"}
    spec = run["spec"]
    assert spec["displayName"] == f"Daily Jira Summary ({display_time(moment)})"
    assert re.fullmatch(r"Daily Jira Summary \([A-Z][a-z]{2} \d{1,2}, \d{4} - "
                        r"\d\d:\d\d:\d\d\)", spec["displayName"])
    for key in ("initialPrompt", "llmSettings", "timeout", "userContext"):
        assert spec[key] == TEMPLATE[key], key
    assert spec["repos"][0]["url"] == TEMPLATE["repos"][0]["url"]  # type: ignore[index]
    assert f"created AgenticSession {name} in namespace {NS}" in result.stderr
    # ... and it is an ordinary session to the operator: its first runner runs the prompt.
    cluster.wait_phase(name, "Running")
    env = runner_env(cluster, name)
    assert env["INITIAL_PROMPT"] == TEMPLATE["initialPrompt"]
    assert "IS_RESUME" not in env


def test_without_a_display_name_the_run_is_named_after_the_schedule(cluster: Cluster) -> None:
    schedule = schedule_name()
    template = {k: v for k, v in TEMPLATE.items() if k != "displayName"}
    result = cluster.trigger(template, STATIC_NS, schedule, reuse="true")
    assert result.returncode == 0, result.stderr
    assert "no previous sessions" in result.stderr
    [run] = cluster.runs(STATIC_NS, schedule)
    prefix = schedule[:40].rstrip("-")
    assert re.fullmatch(rf"{prefix}-\d{{10}}", run["metadata"]["name"])
    assert len("session-" + run["metadata"]["name"]) <= 63
    assert "displayName" not in run["spec"]


# reuse: a stopped session restarts for real ---------------------------------------------------
class Writes:
    """Every version of one session the API server shows, from now on (a watch)."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.versions: list[dict[str, Any]] = []
        version = cluster.get(name)["metadata"]["resourceVersion"]
        self.events = cluster.sessions.watch(NS, resource_version=version,
                                             field_selector=f"metadata.name={name}",
                                             timeout_seconds=120)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for event in self.events:
                if event.get("type") in ("ADDED", "MODIFIED"):
                    self.versions.append(event["object"])
        except Exception:  # closed by close()
            pass

    def close(self) -> list[dict[str, Any]]:
        self.events.close()
        self.thread.join(5)
        return self.versions


def test_reuse_restarts_a_stopped_session_with_the_new_prompt(cluster: Cluster) -> None:
    schedule = schedule_name()
    first = cluster.trigger({**TEMPLATE, "initialPrompt": "first"}, NS, schedule, reuse="true")
    assert first.returncode == 0, first.stderr
    [run] = cluster.runs(NS, schedule)
    name = run["metadata"]["name"]
    cluster.wait_phase(name, "Running")
    first_pod = cluster.pods.get(f"{name}-runner", NS)["metadata"]["uid"]
    # the user stops it, as the backend's StopSession does
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cluster.sessions.patch(name, {"metadata": {"annotations": {
        DESIRED_PHASE: "Stopped", STOP_REQUESTED_AT: stamp}}}, NS)
    stopped = cluster.wait_phase(name, "Stopped")
    assert stopped["status"].get("startTime"), "a run that started: a restart is a resume"

    writes = Writes(cluster, name)
    result = cluster.trigger({**TEMPLATE, "initialPrompt": "second"}, NS, schedule,
                             reuse="True")
    assert result.returncode == 0, result.stderr
    assert f"session {name} is Stopped: resuming it" in result.stderr
    restarted = cluster.wait_phase(name, "Running")
    versions = writes.close()
    assert [r["metadata"]["name"] for r in cluster.runs(NS, schedule)] == [name], \
        "reused, not created"
    # the trigger's write: start intent, the new prompt, forced to run
    asked = next((v for v in versions
                  if (v["metadata"].get("annotations") or {}).get(DESIRED_PHASE) == "Running"),
                 None)
    assert asked is not None, [v["metadata"].get("annotations") for v in versions]
    annotations = asked["metadata"]["annotations"]
    assert annotations[FORCE] == "true"
    assert RFC3339.fullmatch(annotations[START_REQUESTED_AT])
    assert asked["spec"]["initialPrompt"] == "second"
    phases = [(v.get("status") or {}).get("phase") for v in versions]
    assert phases.index("Pending") < phases.index("Running"), phases
    # the operator ran it again: a new runner that runs the new prompt instead of resuming
    pod = cluster.pods.get(f"{name}-runner", NS)
    assert pod["metadata"]["uid"] != first_pod
    env = runner_env(cluster, name)
    assert env["INITIAL_PROMPT"] == "second"
    assert "IS_RESUME" not in env, "force-execute-prompt: the new prompt runs (§3.6)"
    assert restarted["spec"]["initialPrompt"] == "second"

    def cleared() -> dict[str, str]:
        now = cluster.get(name)["metadata"].get("annotations") or {}
        assert DESIRED_PHASE not in now and FORCE not in now, now
        return now

    # the operator cleared the one-shot intents; start-requested-at stays (nobody clears it)
    assert eventually(cleared, timeout=10)[START_REQUESTED_AT] == annotations[START_REQUESTED_AT]

    # The contrast: stopped again, a schedule without a prompt only restarts it, and the new
    # runner resumes the conversation (IS_RESUME), as after the backend's StartSession.
    cluster.sessions.patch(name, {"metadata": {"annotations": {
        DESIRED_PHASE: "Stopped", STOP_REQUESTED_AT: stamp}}}, NS)
    cluster.wait_phase(name, "Stopped")
    result = cluster.trigger({k: v for k, v in TEMPLATE.items() if k != "initialPrompt"}, NS,
                             schedule, reuse="true")
    assert result.returncode == 0, result.stderr
    cluster.wait_phase(name, "Running")
    env = runner_env(cluster, name)
    assert env["IS_RESUME"] == "true" and env["INITIAL_PROMPT"] == "second"


# reuse: the decision table on sessions the operator does not touch ----------------------------
def test_reuse_sends_the_prompt_to_a_running_session(cluster: Cluster) -> None:
    schedule = schedule_name()
    running = cluster.session(STATIC_NS, schedule, "Running")
    name = running["metadata"]["name"]
    seen = len(cluster.backend.requests)
    before = int(time.time())
    result = cluster.trigger({"initialPrompt": "any news?"}, STATIC_NS, schedule, reuse="true")
    assert result.returncode == 0, result.stderr
    [request] = cluster.backend.requests[seen:]
    assert request["path"] == f"/api/projects/{STATIC_NS}/agentic-sessions/{name}/agui/run"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["body"]
    assert set(body) == {"threadId", "runId", "messages"}
    assert body["threadId"] == name
    assert before <= int(body["runId"].removeprefix("scheduled-")) <= int(time.time())
    [message] = body["messages"]
    assert re.fullmatch(r"scheduled-msg-\d{19}", message.pop("id"))
    assert message == {"role": "user", "content": "any news?"}
    # nothing else happened
    [same] = cluster.runs(STATIC_NS, schedule)
    assert same["metadata"]["resourceVersion"] == running["metadata"]["resourceVersion"]


def test_reuse_of_a_running_session_without_a_prompt_sends_nothing(cluster: Cluster) -> None:
    schedule = schedule_name()
    running = cluster.session(STATIC_NS, schedule, "Running")
    seen = len(cluster.backend.requests)
    result = cluster.trigger({"displayName": "No prompt"}, STATIC_NS, schedule, reuse="true")
    assert result.returncode == 0, result.stderr
    assert "nothing to send" in result.stderr
    assert cluster.backend.requests[seen:] == []
    [same] = cluster.runs(STATIC_NS, schedule)
    assert same["metadata"]["resourceVersion"] == running["metadata"]["resourceVersion"]


def test_a_backend_that_refuses_the_prompt_fails_the_run(cluster: Cluster) -> None:
    schedule = schedule_name()
    cluster.session(STATIC_NS, schedule, "Running")
    cluster.backend.status = 500
    try:
        result = cluster.trigger({"initialPrompt": "hi"}, STATIC_NS, schedule, reuse="true")
    finally:
        cluster.backend.status = 200
    assert result.returncode == 1
    [line] = errors(result)
    assert "backend returned status 500" in line
    assert len(cluster.runs(STATIC_NS, schedule)) == 1, "no new session after a failed reuse"


def test_a_backend_that_is_down_fails_the_run(cluster: Cluster) -> None:
    schedule = schedule_name()
    cluster.session(STATIC_NS, schedule, "Running")
    result = cluster.trigger({"initialPrompt": "hi"}, STATIC_NS, schedule, reuse="true",
                             BACKEND_API_URL=f"http://127.0.0.1:{free_port()}/api")
    assert result.returncode == 1
    [line] = errors(result)
    assert "failed to send request to backend" in line


@pytest.mark.parametrize("phase", ["Completed", "Stopped"])
def test_reuse_resumes_a_finished_session(cluster: Cluster, phase: str) -> None:
    schedule = schedule_name()
    finished = cluster.session(STATIC_NS, schedule, phase, annotations={"keep": "me"})
    name = finished["metadata"]["name"]
    result = cluster.trigger({**TEMPLATE, "initialPrompt": "again"}, STATIC_NS, schedule,
                             reuse="TRUE")
    assert result.returncode == 0, result.stderr
    [after] = cluster.runs(STATIC_NS, schedule)
    assert after["metadata"]["name"] == name
    annotations = after["metadata"]["annotations"]
    assert annotations == {"keep": "me", DESIRED_PHASE: "Running", FORCE: "true",
                           START_REQUESTED_AT: annotations[START_REQUESTED_AT]}
    assert RFC3339.fullmatch(annotations[START_REQUESTED_AT])
    assert after["spec"]["initialPrompt"] == "again"
    assert after["spec"]["displayName"] == "Earlier run", "only the prompt is taken over"


def test_reuse_without_a_prompt_only_asks_to_start(cluster: Cluster) -> None:
    schedule = schedule_name()
    name = cluster.session(STATIC_NS, schedule, "Stopped")["metadata"]["name"]
    result = cluster.trigger({"displayName": "x"}, STATIC_NS, schedule, reuse="true")
    assert result.returncode == 0, result.stderr
    after = cluster.get(name, STATIC_NS)
    assert set(after["metadata"]["annotations"]) == {DESIRED_PHASE, START_REQUESTED_AT}
    assert after["spec"]["initialPrompt"] == "old prompt"


def test_reuse_goes_by_the_newest_session_and_creates_past_a_failed_one(
        cluster: Cluster) -> None:
    schedule = schedule_name()
    stopped = cluster.session(STATIC_NS, schedule, "Stopped")
    next_second()
    failed = cluster.session(STATIC_NS, schedule, "Failed")
    result = cluster.trigger({**TEMPLATE, "displayName": "Retry"}, STATIC_NS, schedule,
                             reuse="true")
    assert result.returncode == 0, result.stderr
    assert f"session {failed['metadata']['name']} is Failed, not reusable" in result.stderr
    runs = cluster.runs(STATIC_NS, schedule)
    assert len(runs) == 3
    created = next(r for r in runs if r["metadata"]["name"].startswith("retry-"))
    assert created["spec"]["initialPrompt"] == TEMPLATE["initialPrompt"]
    old = cluster.get(stopped["metadata"]["name"], STATIC_NS)
    assert DESIRED_PHASE not in (old["metadata"].get("annotations") or {}), \
        "the older stopped session is left alone"


def test_without_reuse_a_finished_session_is_left_alone(cluster: Cluster) -> None:
    schedule = schedule_name()
    stopped = cluster.session(STATIC_NS, schedule, "Stopped")
    result = cluster.trigger(TEMPLATE, STATIC_NS, schedule, reuse="false")
    assert result.returncode == 0, result.stderr
    assert len(cluster.runs(STATIC_NS, schedule)) == 2
    assert cluster.get(stopped["metadata"]["name"], STATIC_NS)["metadata"]["resourceVersion"] \
        == stopped["metadata"]["resourceVersion"]


# a run that cannot start --------------------------------------------------------------------
@pytest.mark.parametrize("missing", ["SESSION_TEMPLATE", "PROJECT_NAMESPACE",
                                     "SCHEDULED_SESSION_NAME"])
def test_a_missing_variable_fails_with_one_line(cluster: Cluster, missing: str) -> None:
    schedule = schedule_name()
    env = {"SESSION_TEMPLATE": orjson.dumps(TEMPLATE).decode(), "PROJECT_NAMESPACE": STATIC_NS,
           "SCHEDULED_SESSION_NAME": schedule}
    env.pop(missing)
    result = subprocess.run([str(BIN / "ambient-ctrl"), "session-trigger"], cwd=cluster.app,
                            env={**cluster.env, **env}, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"missing environment variable {missing} " in result.stderr
    assert cluster.runs(STATIC_NS, schedule) == []


@pytest.mark.parametrize(("template", "message"), [
    ("{not json", "SESSION_TEMPLATE is not valid JSON"),
    ('["initialPrompt"]', "SESSION_TEMPLATE must be a JSON object (the session's spec), "
                          "not an array")])
def test_a_bad_template_fails_with_one_line(cluster: Cluster, template: str,
                                            message: str) -> None:
    schedule = schedule_name()
    result = cluster.trigger(template, STATIC_NS, schedule)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert cluster.runs(STATIC_NS, schedule) == []


def test_an_unreachable_api_server_fails_with_one_line(cluster: Cluster, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    text = Path(cluster.env["KUBECONFIG"]).read_text()
    kubeconfig.write_text(re.sub(r"server: \S+", f"server: http://127.0.0.1:{free_port()}", text))
    result = cluster.trigger(TEMPLATE, STATIC_NS, schedule_name(), KUBECONFIG=str(kubeconfig))
    assert result.returncode == 1
    [line] = errors(result)
    assert "failed to create AgenticSession" in line


# the image's entry -------------------------------------------------------------------------------
def test_the_image_entry_answers_upstreams_command_lines(cluster: Cluster) -> None:
    """The fixture's operator runs from ``./operator <upstream's flags>`` and every scheduled run
    above from ``./operator session-trigger``; here: ambient-ctrl command lines pass through."""
    def usage(*argv: str) -> str:
        result = subprocess.run(["./operator", *argv], cwd=cluster.app, env=cluster.env,
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()[0]

    assert usage("--leader-elect=false", "--help").startswith("usage: ambient-ctrl run ")
    assert usage("run", "--help").startswith("usage: ambient-ctrl run ")
    assert usage("session-trigger", "--help").startswith("usage: ambient-ctrl session-trigger ")
    assert usage("apiserver", "--help").startswith("usage: ambient-ctrl apiserver ")
    assert os.access(cluster.app / "operator", os.X_OK)
