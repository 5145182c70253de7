"""End-to-end fixtures: the local API server as a separate process, kubectl, raw JSON reads.

Each test module gets its own server process (``ambient-ctrl apiserver``) on a free port, with
BOOKMARKs every second, serving HTTPS with its own CA (``E2E_TLS=0``: plain HTTP), and its own
kubectl discovery cache (a later server may reuse the port).

With ``E2E_KUBECONFIG`` set the same fixtures target that cluster instead (no local server is
started; see :mod:`e2e.cluster`): each test works in a namespace of its own, labelled
``ambient-code.io/managed=true``, deleted after it, and what a test or module creates outside
it (namespaces, CRDs) is deleted too. Tests marked ``local_only`` are skipped, with the reason.
"""

from __future__ import annotations

import itertools
import os
import queue
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from ambient_ctrl.testing import eventually, start_apiserver_process, stop_process

from .cluster import EXTERNAL_KUBECONFIG, KUBECTL, LOCAL_TLS, MANAGED_LABEL, ApiHttp


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Against another cluster (``E2E_KUBECONFIG``), skip what needs the local server itself,
    saying why; a ``local_only`` marker must carry its reason."""
    for item in items:
        marker = item.get_closest_marker("local_only")
        if marker is None:
            continue
        reason = marker.args[0] if marker.args else marker.kwargs.get("reason")
        if not reason:
            raise pytest.UsageError(f"{item.nodeid}: local_only needs a reason")
        if EXTERNAL_KUBECONFIG:
            item.add_marker(pytest.mark.skip(reason=f"local API server only: {reason}"))

_names = itertools.count()


def unique(prefix: str) -> str:
    """A name no other test in this run uses."""
    return f"{prefix}-{os.getpid()}-{next(_names)}"


class Raw:
    """Raw JSON over HTTP, to read back the cluster's state independently of the client tested."""

    def __init__(self, kubeconfig: Path) -> None:
        self.http = ApiHttp(kubeconfig, maxsize=4)
        self.url = self.http.url

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> tuple[int, Any]:
        headers = {"Content-Type": content_type} if body is not None else {}
        resp = self.http.request(method, path, headers=headers,
                                 body=None if body is None else orjson.dumps(body))
        return resp.status, orjson.loads(resp.data) if resp.data else None

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def obj(self, path: str) -> dict[str, Any]:
        """The object at ``path``; fails the test unless it exists."""
        status, body = self.get(path)
        assert status == 200, (status, body)
        return dict(body)

    def absent(self, path: str) -> bool:
        status, body = self.get(path)
        assert status in (200, 404), (status, body)
        return status == 404

    def delete(self, path: str) -> None:
        """Delete the object at ``path`` (in the background); gone already is fine."""
        status, body = self.request("DELETE", path)
        assert status in (200, 202, 404), (path, status, body)

    def close(self) -> None:
        self.http.close()


@dataclass
class Server:
    """The cluster a module's tests target: a running ``ambient-ctrl apiserver`` process, or
    (``process`` None) the cluster ``E2E_KUBECONFIG`` names."""

    url: str
    kubeconfig: Path
    cache_dir: Path
    log: Path | None
    process: subprocess.Popen[bytes] | None
    raw: Raw

    @property
    def external(self) -> bool:
        return self.process is None


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("apiserver")
    if EXTERNAL_KUBECONFIG:
        raw = Raw(Path(EXTERNAL_KUBECONFIG))
        try:
            yield Server(raw.url, Path(EXTERNAL_KUBECONFIG), tmp / "kube-cache", None, None,
                         raw)
        finally:
            raw.close()
        return
    log = tmp / "apiserver.log"
    process, url, kubeconfig = start_apiserver_process(
        tmp / "kubeconfig", log=log, bookmark_interval=1, timeout=30, tls=LOCAL_TLS)
    raw = Raw(kubeconfig)
    try:
        yield Server(url, kubeconfig, tmp / "kube-cache", log, process, raw)
    finally:
        raw.close()
        code = stop_process(process, timeout=10)
        assert code == 0, f"the API server did not shut down cleanly ({code}); see {log}"


class Cleanup:
    """Objects a test or a module created outside its own namespace (namespaces, CRDs), deleted
    at its end, the last registered first. On an external cluster nothing may be left behind;
    CRDs are waited for, so that a later run can create them again."""

    def __init__(self, raw: Raw) -> None:
        self.raw = raw
        self.paths: list[str] = []

    def add(self, path: str) -> str:
        self.paths.append(path)
        return path

    def run(self) -> None:
        while self.paths:
            path = self.paths.pop()
            self.raw.delete(path)
            if "/customresourcedefinitions/" in path:
                eventually(lambda p=path: self.raw.absent(p), timeout=60, interval=0.2,
                           message=f"{path} was not deleted")


@pytest.fixture()
def cleanup(apiserver: Server) -> Iterator[Cleanup]:
    """Deleted after the test: ``cleanup.add(path)``."""
    registered = Cleanup(apiserver.raw)
    yield registered
    registered.run()


@pytest.fixture(scope="module")
def module_cleanup(apiserver: Server) -> Iterator[Cleanup]:
    """Deleted after the module's last test: ``module_cleanup.add(path)``."""
    registered = Cleanup(apiserver.raw)
    yield registered
    registered.run()


@dataclass
class Background:
    """A kubectl process whose output lines a thread collects (``get -w``, ``delete --wait``)."""

    process: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)
    stderr: str = ""
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Background:
        def pump(stream: Any, sink: Callable[[str], None]) -> None:
            for line in stream:
                sink(line)

        def keep_stderr(line: str) -> None:
            self.stderr += line

        assert self.process.stdout is not None and self.process.stderr is not None
        self._threads = [
            threading.Thread(target=pump, args=(self.process.stdout, self.lines.put),
                             name="kubectl-stdout"),
            threading.Thread(target=pump, args=(self.process.stderr, keep_stderr),
                             name="kubectl-stderr")]
        for thread in self._threads:
            thread.start()
        return self

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float = 15.0) -> str:
        """The first output line (new or already seen) that satisfies ``predicate``."""
        for line in self.seen:
            if predicate(line):
                return line

        def check() -> str | None:
            while True:
                try:
                    line = self.lines.get_nowait()
                except queue.Empty:
                    return None
                self.seen.append(line)
                if predicate(line):
                    return line

        return str(eventually(check, timeout=timeout,
                              message=f"no matching output line (stderr: {self.stderr!r})"))

    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        for thread in self._threads:
            thread.join(timeout)
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for thread in self._threads:
            thread.join(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class Kubectl:
    """The virtualenv's kubectl (1.37), pointed at one server, with its own discovery cache."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        self.env["KUBECACHEDIR"] = str(server.cache_dir)
        self.background: list[Background] = []

    def argv(self, args: tuple[str, ...]) -> list[str]:
        return [str(KUBECTL), "--kubeconfig", str(self.server.kubeconfig), *args]

    def __call__(self, *args: str, input: str | None = None, check: bool = True,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.argv(args), input=input, capture_output=True, text=True,
                              env=self.env, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {done.returncode}:\n"
                                 f"stdout: {done.stdout}\nstderr: {done.stderr}")
        return done

    def json(self, *args: str) -> Any:
        return orjson.loads(self(*args, "-o", "json").stdout)

    def popen(self, *args: str) -> Background:
        """Start kubectl in the background; it is killed at the end of the test at the latest."""
        process = subprocess.Popen(self.argv(args), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=self.env, start_new_session=True)
        started = Background(process).start()
        self.background.append(started)
        return started

    def stop_background(self) -> None:
        while self.background:
            self.background.pop().stop()


@pytest.fixture(scope="module")
def kubectl_module(apiserver: Server) -> Kubectl:
    return Kubectl(apiserver)


@pytest.fixture()
def kubectl(kubectl_module: Kubectl) -> Iterator[Kubectl]:
    yield kubectl_module
    kubectl_module.stop_background()


@pytest.fixture()
def raw(apiserver: Server) -> Raw:
    return apiserver.raw


@pytest.fixture()
def namespace(raw: Raw, cleanup: Cleanup) -> str:
    """A fresh namespace for one test, labelled managed (created with raw JSON, not by the
    client under test), deleted after it."""
    name = unique("e2e")
    status, body = raw.request("POST", "/api/v1/namespaces", {"metadata": {
        "name": name, "labels": {MANAGED_LABEL: "true"}}})
    assert status == 201, body
    cleanup.add(f"/api/v1/namespaces/{name}")
    return name
