"""The runner stand-in: what answers on a runner pod's port in the simulated cluster.

A container whose ``env`` sets ``ENVTEST_RUNNER_STANDIN`` (:data:`STANDIN_ENV`; any value but
"", "0" or "false" — tests set it through a session's ``spec.environmentVariables``) gets a
small HTTP server on 127.0.0.1 from the kubelet simulator while it runs. It stands for the
container's declared ports (every port when it declares none): the Service proxy
(``/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH``, :mod:`..proxy`) reaches it there.
It starts with the container, and stops when the container exits, when the pod stops or is
deleted, and when the server stops. Other pods get nothing: no socket, no cost.

It answers what upstream's runner (``ambient_runner/app.py``, ``endpoints/repos.py``,
``endpoints/workflow.py``) answers the operator, with no git behind it:

* the token check: when the container's ``AGUI_TOKEN`` (resolved from its ``secretKeyRef`` at
  start, as the kubelet resolves env) is set, every path but ``/health`` and ``/healthz``
  needs the header ``X-Ambient-Session-Token`` equal to it, else 401 ``{"detail":
  "Unauthorized"}``;
* ``GET /health``: 200 ``{"status": "healthy", "session_id": SESSION_ID}``;
* ``POST /repos/add`` ``{url, branch, name}``: 400 without ``url``; ``name`` defaults to the
  URL's last segment less ``.git``, ``branch`` to ``main``; 200 ``{"message": "Repository
  added", "name", "path", "newly_cloned"}`` — ``newly_cloned`` false for a name already there
  (the repos of ``REPOS_JSON`` are there from the start);
* ``POST /repos/remove`` ``{name}``: 200 ``{"message": "Repository removed"}``, present or not;
* ``GET /repos/status``: the repos held, in upstream's shape;
* ``POST /workflow`` ``{gitUrl, branch, path}``: 200 ``{"message": "Workflow updated" |
  "Workflow already active", "gitUrl", "branch", "path"}`` (the ``ACTIVE_WORKFLOW_*`` env is
  the workflow at start); a body that is not a JSON object: 500, as upstream's handlers fail.

Test controls (no token needed, not recorded):

* ``GET /_standin/requests``: ``{"requests": [...]}``, every request to the paths above, oldest
  first (at most :data:`MAX_RECORDS`): ``method``, ``path``, ``query``, ``headers`` (all, names
  lower-case), ``body`` (parsed JSON, else text, else null), ``time`` (the server clock's
  ISO 8601) and the ``status`` answered. ``DELETE`` clears them.
* ``GET``/``POST /_standin/behaviour`` ``{"status": 500, "delay": 0, "paths": []}``: the
  runner's paths (``paths``; empty for all) answer ``status`` (null or 200: their own answers)
  after ``delay`` seconds (0 to :data:`MAX_DELAY`, to test a caller's timeout with a smaller
  one), until changed; omitted fields are reset, so ``{}`` is back to normal.
* ``GET /_standin/state``: ``{"repos": {name: {url, branch}}, "workflow": {...}}``.

It runs on the server's event loop (no thread): a delayed answer waits on a timer without
holding up the server or other requests.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from envtest.http.endpoints import PodEndpoints
from envtest.http.protocol import Answer, HTTPProtocol, Request, Response, status_response
from envtest.simulators import containerenv

log = logging.getLogger("envtest.simulators")

STANDIN_ENV = "ENVTEST_RUNNER_STANDIN"
TOKEN_HEADER = "x-ambient-session-token"
MAX_DELAY = 30.0
"""Seconds a behaviour may delay answers (the operator's own timeout is 10 s)."""
MAX_RECORDS = 1000
REQUESTS_PATH = "/_standin/requests"
BEHAVIOUR_PATH = "/_standin/behaviour"
STATE_PATH = "/_standin/state"
MAX_BODY = 1 << 20
_OPEN_PATHS = ("/health", "/healthz")
_TEXT = "text/plain; charset=utf-8"


def wants_standin(container: Mapping[str, Any]) -> bool:
    """Whether a container spec asks for a stand-in (a plain ``env`` value)."""
    for env in container.get("env") or ():
        if isinstance(env, dict) and env.get("name") == STANDIN_ENV:
            return str(env.get("value") or "").strip().lower() not in ("", "0", "false")
    return False


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the runner's paths answer: their own way (the default), or ``status`` after
    ``delay`` seconds."""

    status: int | None = None
    delay: float = 0.0
    paths: tuple[str, ...] = ()
    """The paths it applies to; empty: every path but the test controls."""

    def applies(self, path: str) -> bool:
        return not self.paths or path in self.paths

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "delay": self.delay, "paths": list(self.paths)}

    @classmethod
    def parse(cls, body: Any) -> Behaviour:
        """From a control request's JSON; ValueError with the reason when invalid."""
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        status, delay, paths = body.get("status"), body.get("delay", 0), body.get("paths", [])
        if status is not None and (type(status) is not int or not 100 <= status <= 599):
            raise ValueError("status must be null or an HTTP status (100-599)")
        if type(delay) not in (int, float) or not 0 <= delay <= MAX_DELAY:
            raise ValueError(f"delay must be a number of seconds from 0 to {MAX_DELAY:g}")
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ValueError("paths must be a list of paths")
        return cls(None if status == 200 else status, float(delay), tuple(paths))


class RunnerApp:
    """The stand-in's HTTP handler: upstream's answers, the token check, records, behaviour.

    Runs on the loop thread; ``now`` gives the time records carry."""

    def __init__(self, env: Mapping[str, str], *, loop: asyncio.AbstractEventLoop,
                 now: Callable[[], str]) -> None:
        self._loop = loop
        self._now = now
        self._token = env.get("AGUI_TOKEN", "").strip()
        self._session = env.get("SESSION_ID") or None
        self._workspace = env.get("WORKSPACE_PATH") or "/workspace"
        self.repos: dict[str, dict[str, str]] = _initial_repos(env.get("REPOS_JSON", ""))
        self.workflow = {"gitUrl": env.get("ACTIVE_WORKFLOW_GIT_URL", "").strip(),
                         "branch": env.get("ACTIVE_WORKFLOW_BRANCH", "").strip() or "main",
                         "path": env.get("ACTIVE_WORKFLOW_PATH", "").strip()}
        self.behaviour = Behaviour()
        self.records: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDS)
        self._delayed: set[asyncio.Future[Answer]] = set()

    def __call__(self, request: Request) -> Answer | asyncio.Future[Answer]:
        path = request.path
        if path.startswith("/_standin/"):
            return self._control(request, path)
        answer = self._serve(request, path)
        self.records.append(self._record(request, path, answer.status))
        delay = self.behaviour.delay if self.behaviour.applies(path) else 0.0
        if not delay:
            return answer
        future: asyncio.Future[Answer] = self._loop.create_future()
        self._delayed.add(future)
        future.add_done_callback(self._delayed.discard)

        def answer_now() -> None:
            if not future.done():
                future.set_result(answer)

        self._loop.call_later(delay, answer_now)
        return future

    def close(self) -> None:
        """Drop the answers still waiting out a delay (the stand-in stops)."""
        for future in list(self._delayed):
            future.cancel()

    # the runner ----------------------------------------------------------------------------------
    def _serve(self, request: Request, path: str) -> Response:
        if self._token and path not in _OPEN_PATHS:
            provided = request.headers.get(TOKEN_HEADER, "")
            if not provided or not secrets.compare_digest(provided.encode(),
                                                          self._token.encode()):
                return _json(401, {"detail": "Unauthorized"})
        if self.behaviour.status is not None and self.behaviour.applies(path):
            return _json(self.behaviour.status,
                         {"detail": f"stand-in behaviour: status {self.behaviour.status}"})
        routes = _ROUTES.get(path)
        if routes is None:
            return _json(404, {"detail": "Not Found"})
        handler = routes.get(request.method)
        if handler is None:
            return _json(405, {"detail": "Method Not Allowed"},
                         {"Allow": ", ".join(sorted(routes))})
        body: Any = None
        if request.method == "POST":
            try:
                body = orjson.loads(request.body)
            except orjson.JSONDecodeError:
                body = None
            if not isinstance(body, dict):  # upstream's handlers raise: a bare 500
                return Response(500, b"Internal Server Error", _TEXT)
        return handler(self, body or {})

    def _health(self, _: dict[str, Any]) -> Response:
        return _json(200, {"status": "healthy", "session_id": self._session})

    def _add_repo(self, body: dict[str, Any]) -> Response:
        url, branch = str(body.get("url") or ""), str(body.get("branch") or "main")
        if not url:
            return _json(400, {"detail": "Repository URL is required"})
        name = str(body.get("name") or "") or _repo_name(url)
        newly = name not in self.repos
        self.repos[name] = {"url": url, "branch": branch}
        return _json(200, {"message": "Repository added", "name": name,
                           "path": f"{self._workspace}/repos/{name}", "newly_cloned": newly})

    def _remove_repo(self, body: dict[str, Any]) -> Response:
        self.repos.pop(str(body.get("name") or ""), None)
        return _json(200, {"message": "Repository removed"})

    def _repos_status(self, _: dict[str, Any]) -> Response:
        return _json(200, {"repos": [
            {"url": repo["url"], "name": name, "branches": [repo["branch"]],
             "currentActiveBranch": repo["branch"], "defaultBranch": "main"}
            for name, repo in self.repos.items()]})

    def _change_workflow(self, body: dict[str, Any]) -> Response:
        wanted = {"gitUrl": str(body.get("gitUrl") or "").strip(),
                  "branch": str(body.get("branch") or "main").strip() or "main",
                  "path": str(body.get("path") or "").strip()}
        message = "Workflow already active" if wanted == self.workflow else "Workflow updated"
        self.workflow = wanted
        return _json(200, {"message": message, **wanted})

    # test controls -------------------------------------------------------------------------------
    def _control(self, request: Request, path: str) -> Response:
        method = request.method
        if path == REQUESTS_PATH and method in ("GET", "DELETE"):
            if method == "DELETE":
                self.records.clear()
            return _json(200, {"requests": list(self.records)})
        if path == BEHAVIOUR_PATH and method in ("GET", "POST"):
            if method == "POST":
                try:
                    self.behaviour = Behaviour.parse(orjson.loads(request.body or b"{}"))
                except (orjson.JSONDecodeError, ValueError) as exc:
                    return _json(400, {"detail": str(exc)})
            return _json(200, self.behaviour.as_dict())
        if path == STATE_PATH and method == "GET":
            return _json(200, {"repos": self.repos, "workflow": self.workflow})
        return _json(404, {"detail": "Not Found"})

    def _record(self, request: Request, path: str, status: int) -> dict[str, Any]:
        body: Any = None
        if request.body:
            try:
                body = orjson.loads(request.body)
            except orjson.JSONDecodeError:
                body = request.body.decode("utf-8", "replace")
        return {"method": request.method, "path": path,
                "query": urlsplit(request.target).query, "headers": dict(request.headers),
                "body": body, "time": self._now(), "status": status}


_ROUTES: dict[str, dict[str, Callable[[RunnerApp, dict[str, Any]], Response]]] = {
    "/health": {"GET": RunnerApp._health},
    "/repos/add": {"POST": RunnerApp._add_repo},
    "/repos/remove": {"POST": RunnerApp._remove_repo},
    "/repos/status": {"GET": RunnerApp._repos_status},
    "/workflow": {"POST": RunnerApp._change_workflow},
}


class RunnerStandIn:
    """One listening stand-in on 127.0.0.1, served by the loop; ``stop`` closes everything."""

    def __init__(self, app: RunnerApp, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self._loop = loop
        self._connections: set[HTTPProtocol] = set()
        self._server: asyncio.AbstractServer | None = None
        self._stopped = False
        # Bound and listening now, so the address is known (and connections queue) at once;
        # the loop starts accepting on its next turn.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self._socket.setblocking(False)
        self.address: tuple[str, int] = self._socket.getsockname()[:2]
        starting = loop.create_task(loop.create_server(self._protocol, sock=self._socket))
        starting.add_done_callback(self._started)

    def _protocol(self) -> HTTPProtocol:
        return HTTPProtocol(self.app, max_body=MAX_BODY, connections=self._connections,
                            too_large=lambda: status_response(413, "RequestEntityTooLarge",
                                                              "request body too large"))

    def _started(self, task: asyncio.Task[asyncio.AbstractServer]) -> None:
        if task.cancelled() or task.exception() is not None:
            if not task.cancelled():
                log.error("runner stand-in failed to start", exc_info=task.exception())
            self._socket.close()
            return
        self._server = task.result()
        if self._stopped:  # stopped before it started serving
            self._server.close()

    def stop(self) -> None:
        self._stopped = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.abort()
        self.app.close()


class StandIns:
    """The kubelet's stand-ins, by (pod UID, container name); each registered as the pod's
    endpoint for the container's ports (:class:`~..endpoints.PodEndpoints`)."""

    def __init__(self, *, loop: asyncio.AbstractEventLoop, endpoints: PodEndpoints,
                 now: Callable[[], str]) -> None:
        self._loop = loop
        self._endpoints = endpoints
        self._now = now
        self._running: dict[tuple[str, str], RunnerStandIn] = {}

    def start(self, uid: str, container: Mapping[str, Any], lookup: containerenv.Lookup) -> None:
        """(Re)start the stand-in of one container that has just started."""
        name = str(container.get("name", ""))
        self.stop(uid, name)
        app = RunnerApp(containerenv.environment(container, lookup), loop=self._loop,
                        now=self._now)
        try:
            standin = RunnerStandIn(app, self._loop)
        except OSError:  # no port left: the pod runs without one, as if nothing listened
            log.exception("runner stand-in not started", extra={"pod": uid, "container": name})
            return
        self._running[(uid, name)] = standin
        ports = [p.get("containerPort") for p in container.get("ports") or ()
                 if isinstance(p, dict) and isinstance(p.get("containerPort"), int)]
        self._endpoints.add(uid, ports or [None], standin.address)

    def stop(self, uid: str, container: str | None = None) -> None:
        """Stop one container's stand-in, or (``container`` None) every one of the pod's."""
        for key in [k for k in self._running if k[0] == uid and container in (None, k[1])]:
            standin = self._running.pop(key)
            self._endpoints.remove(standin.address)
            standin.stop()

    def stop_all(self) -> None:
        for uid in {uid for uid, _ in self._running}:
            self.stop(uid)

    def __len__(self) -> int:
        return len(self._running)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, orjson.dumps(body), "application/json", headers or {})


def _repo_name(url: str) -> str:
    return url.rstrip("/").split("/")[-1].removesuffix(".git")


def _initial_repos(repos_json: str) -> dict[str, dict[str, str]]:
    """The repos the runner cloned at start (``REPOS_JSON``: spec.repos as the operator
    passes it, or upstream's ``{"name", "input": {...}}`` entries)."""
    try:
        entries = orjson.loads(repos_json) if repos_json.strip() else []
    except orjson.JSONDecodeError:
        return {}
    repos: dict[str, dict[str, str]] = {}
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        nested = entry.get("input")
        source: dict[str, Any] = nested if isinstance(nested, dict) else entry
        url = str(source.get("url") or "")
        if url:
            name = str(entry.get("name") or "") or _repo_name(url)
            repos[name] = {"url": url, "branch": str(source.get("branch") or "main")}
    return repos
