"""The admin endpoint: fault injection and request counts over HTTP, for the server in its own
process. It listens on its own loopback port, outside the Kubernetes paths, so no client of
the API can reach it by accident and a simulated restart of the API does not take it down.

    GET    /faults                  active faults
    DELETE /faults                  clear every fault (and resume)
    POST   /faults/fail             {"code": 503, "count": 3, "fraction": 1.0,
                                     "verbs": ["create"], "resources": ["pods"], "retryAfter": 2}
    POST   /faults/latency          {"seconds": 0.2, "verbs": [...], "resources": [...]}
    POST   /faults/drop-watches     {} (now) or {"every": 5}
    POST   /faults/restart          {"downtime": 1.0}
    POST   /faults/backup           {} keep a backup of the store (its revision is answered)
    POST   /faults/restore          {"downtime": 1.0} restore the store from that backup
    POST   /faults/pause, /faults/resume
    GET    /requests                resource requests served, by verb, group and resource
    GET    /requests?agent=kubectl  the same for one client (User-Agent product)
    POST   /record                  {"agent": "ambient-ctrl", "limit": 200000}: keep every
                                    request of that client from now on (``envtest.recording``)
    GET    /record                  {"agent", "limit", "kept", "dropped", "requests": [...]}
    DELETE /record                  stop recording and forget what was kept
    GET    /objects                 {"items": [...]} every stored object (envtest.seed.dump)
    POST   /objects                 {"items": [...]} store them as given: uid, status, owners
                                    and timestamps kept, no admission (envtest.seed.load);
                                    answers how many
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from envtest import seed
from envtest.cluster import Cluster
from envtest.faults import Faults
from envtest.http.protocol import Request, Response
from envtest.recording import DEFAULT_LIMIT
from envtest.storage.store import Backup


def _ok(body: Any) -> Response:
    return Response(200, orjson.dumps(body))


def _error(code: int, message: str) -> Response:
    return Response(code, orjson.dumps({"error": message}))


class AdminAPI:
    """HTTP handler of the admin endpoint."""

    def __init__(self, faults: Faults, cluster: Cluster) -> None:
        self._faults = faults
        self._cluster = cluster
        self._posts: dict[str, Callable[[dict[str, Any]], Any]] = {
            "/faults/fail": self._fail,
            "/faults/latency": lambda b: faults.add_latency(
                float(b["seconds"]), verbs=b.get("verbs", ()), resources=b.get("resources", ())),
            "/faults/drop-watches": self._drop,
            "/faults/restart": lambda b: faults.restart(downtime=float(b.get("downtime", 0))),
            "/faults/pause": lambda b: faults.pause(),
            "/faults/resume": lambda b: faults.resume(),
            "/faults/backup": self._backup,
            "/faults/restore": self._restore,
            "/record": self._arm,
            "/objects": lambda b: seed.load(cluster, b["items"]),
        }
        self._backup_taken: Backup | None = None

    def __call__(self, request: Request) -> Response:
        path = "/" + request.path.strip("/")
        if request.method == "GET" and path == "/faults":
            return _ok(self._faults.state())
        if request.method == "DELETE" and path == "/faults":
            self._faults.clear()
            return _ok(self._faults.state())
        if request.method == "GET" and path == "/requests":
            agent = request.param("agent")
            if agent:
                return _ok([{"agent": a, "verb": v, "group": g, "resource": r, "count": n}
                            for (a, v, g, r), n in sorted(self._cluster.requests_by_agent.items())
                            if a == agent])
            return _ok([{"verb": v, "group": g, "resource": r, "count": n}
                        for (v, g, r), n in sorted(self._cluster.requests.items())])
        if path == "/record" and request.method in ("GET", "DELETE"):
            return _ok(self._recording(request.method))
        if request.method == "GET" and path == "/objects":
            return _ok({"items": seed.dump(self._cluster)})
        if request.method == "GET" and path == "/healthz":
            return Response(200, b"ok", "text/plain")
        action = self._posts.get(path)
        if action is None or request.method != "POST":
            return _error(404, f"no admin action {request.method} {path}")
        try:
            body = orjson.loads(request.body) if request.body.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            result = action(body)
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, f"bad request: {exc!s}")
        return _ok({"result": result, **self._faults.state()})

    def _arm(self, body: dict[str, Any]) -> dict[str, Any]:
        recorder = self._cluster.recorder
        recorder.arm(str(body.get("agent") or ""), int(body.get("limit", DEFAULT_LIMIT)))
        return recorder.state()

    def _recording(self, method: str) -> dict[str, Any]:
        recorder = self._cluster.recorder
        if method == "DELETE":
            recorder.disarm()
            return recorder.state()
        return {**recorder.state(), "requests": [r.as_dict() for r in recorder.requests]}

    def _fail(self, body: dict[str, Any]) -> None:
        count = body.get("count")
        retry = body.get("retryAfter")
        self._faults.fail(code=int(body.get("code", 500)),
                          count=None if count is None else int(count),
                          fraction=float(body.get("fraction", 1.0)),
                          verbs=body.get("verbs", ()), resources=body.get("resources", ()),
                          retry_after=None if retry is None else int(retry))

    def _backup(self, body: dict[str, Any]) -> int:
        self._backup_taken = self._faults.backup()
        return self._backup_taken.revision

    def _restore(self, body: dict[str, Any]) -> int:
        if self._backup_taken is None:
            raise ValueError("no backup taken (POST /faults/backup first)")
        self._faults.restore(self._backup_taken, downtime=float(body.get("downtime", 0)))
        return self._backup_taken.revision

    def _drop(self, body: dict[str, Any]) -> int | None:
        every = body.get("every")
        if every is None:
            return self._faults.drop_watches()
        self._faults.drop_watches_every(float(every) or None)
        return None
