"""Test helpers shipped with the framework, for this project's tests and for operator authors.

Nothing here imports pytest.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import yaml

from informers.factory import InformerFactory
from informers.reflector import ReflectorOptions
from informers.resource import Resource
from informers.rest import Transport, TransportOptions, load_configuration
from informers.store import IndexFunc

from .client import Client

T = TypeVar("T")


def eventually(check: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05,
               message: str = "condition not met",
               ignoring: tuple[type[Exception], ...] = ()) -> T:
    """Call ``check`` until it returns a truthy value without raising AssertionError (or one of
    ``ignoring``, e.g. ``ConnectionError`` while a server starts).

    Bounded: after ``timeout`` seconds the last AssertionError (or a new one) is raised.
    """
    deadline = time.monotonic() + timeout
    last: AssertionError | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except AssertionError as exc:
            last = exc
        except ignoring as exc:
            last = AssertionError(f"{message}: {exc!r}")
        if time.monotonic() >= deadline:
            if last is not None:
                raise last
            raise AssertionError(f"{message} within {timeout} s")
        time.sleep(interval)


def settled(read: Callable[[], T], *, quiet: float = 0.3, timeout: float = 15.0,
            message: str = "never went quiet") -> T:
    """``read()`` once it returns the same value twice, ``quiet`` seconds apart: e.g. an
    operator's request counts once what it still had to do is done. A retry storm never
    settles: after ``timeout`` seconds an AssertionError says so."""
    last = [read()]

    def still() -> bool:
        time.sleep(quiet)
        now = read()
        same, last[0] = now == last[0], now
        return same

    eventually(still, timeout=timeout, interval=0, message=message)
    return last[0]


@contextlib.contextmanager
def cached_client(kubeconfig: str | os.PathLike[str], *, detect_mutations: bool = True,
                  field_manager: str = "test",
                  indexers: Mapping[Resource, Mapping[str, IndexFunc]] | None = None,
                  reflector_options: ReflectorOptions = ReflectorOptions(),
                  user_agent: str | None = None) -> Iterator[Client]:
    """A :class:`~ambient_ctrl.client.Client` on the cluster of ``kubeconfig`` with its own
    transport and informers, closed on exit.

    Mutation detection is on by default: each cached read checks that nobody changed a shared
    object, and raises ``informers.store.MutatedCacheError`` at the read after the culprit —
    the test helper the conventions ask for ("cached objects are read-only; a test helper
    should catch mutation"). ``indexers`` registers user indexes per resource, as
    ``Manager.index`` does.
    """
    options = TransportOptions(user_agent=user_agent) if user_agent else TransportOptions()
    transport = Transport(load_configuration(os.fspath(kubeconfig)), options=options)
    factory = InformerFactory(transport, options=reflector_options,
                              debug_mutations=detect_mutations)
    try:
        for resource, named in (indexers or {}).items():
            factory.add_indexers(resource, named)
        yield Client(transport, factory, field_manager=field_manager)
    finally:
        factory.stop()
        transport.close()


def custom_resource_definition(group: str, kind: str, *, scope: str = "Namespaced",
                               versions: Sequence[str] = ("v1",),
                               subresources: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A CustomResourceDefinition of ``kind`` (plural: lowercase kind + "s") with an open
    schema (``x-kubernetes-preserve-unknown-fields``), every version served, the first
    stored, and ``subresources`` (default: status) on each."""
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": scope,
                 "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
                 "versions": [{"name": version, "served": True, "storage": index == 0,
                               "subresources": dict(subresources or {"status": {}}),
                               "schema": {"openAPIV3Schema": {
                                   "type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True}}}
                              for index, version in enumerate(versions)]}}


class StandinHandler(BaseHTTPRequestHandler):
    """A request handler for :func:`http_standin` that logs nothing and answers in one call."""

    def reply(self, status: int, body: bytes = b"", *, content_type: str = "application/json",
              headers: Sequence[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def http_standin(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 (a free port) answering with ``handler``, served by a thread
    this context owns; yields its URL and is shut down, closed and joined on exit. For a
    stand-in of a server a test must not change (headers it never sends, documents it does
    not serve)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="http-standin")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_apiserver_process(kubeconfig: str | os.PathLike[str], *, log: str | os.PathLike[str],
                            port: int | None = None, bookmark_interval: float | None = None,
                            timeout: float = 30.0, extra_args: Sequence[str] = (),
                            env: Mapping[str, str] | None = None, tls: bool = False,
                            ) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Start ``ambient-ctrl apiserver`` as a separate process (in its own session).

    Waits until it answers ``/healthz`` and has written ``kubeconfig``; returns (process, url,
    kubeconfig path). Output goes to ``log``. Stop it with :func:`stop_process`. Without a
    ``port`` it picks a free one, and another if that was taken in the meantime. Raises
    RuntimeError (with the log's tail) when the process exits or does not answer within
    ``timeout`` seconds. ``extra_args`` go to the command (e.g. ``["--simulate", "kubelet"]``);
    ``env`` is its environment (default: this process's). ``tls``: serve HTTPS (``--tls``);
    the kubeconfig then carries the CA that clients verify the server with.
    """
    attempts = 1 if port else 3
    for attempt in range(attempts):
        try:
            return _start_apiserver(Path(kubeconfig), Path(log), port or free_port(),
                                    bookmark_interval, timeout,
                                    (*(("--tls",) if tls else ()), *extra_args), env)
        except _ServerExited:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


class _ServerExited(RuntimeError):
    pass


def _start_apiserver(config: Path, log: Path, port: int, bookmark_interval: float | None,
                     timeout: float, extra_args: tuple[str, ...] = (),
                     env: Mapping[str, str] | None = None,
                     ) -> tuple[subprocess.Popen[bytes], str, Path]:
    tls = any(arg.split("=")[0] in ("--tls", "--tls-ca-dir") for arg in extra_args)
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    config.unlink(missing_ok=True)  # its appearance is part of "ready"
    argv = [sys.executable, "-m", "ambient_ctrl.cli", "apiserver", "--port", str(port),
            "--kubeconfig", str(config)]
    if bookmark_interval is not None:
        argv += ["--bookmark-interval", str(bookmark_interval)]
    argv += extra_args
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True, env=env)

    def healthy() -> bool:
        if process.poll() is not None:
            raise _ServerExited(f"the API server exited with {process.returncode}: "
                                f"{log.read_text(errors='replace')[-2000:]}")
        if not config.exists():  # written once listening, with the CA it then trusts
            return False
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2,
                                        context=kubeconfig_tls_context(config)) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    try:
        eventually(healthy, timeout=timeout, message=f"the API server at {url} did not answer")
    except BaseException:
        stop_process(process)
        raise
    return process, url, config


def kubeconfig_tls_context(kubeconfig: str | os.PathLike[str]) -> ssl.SSLContext | None:
    """An ``ssl`` client context trusting the CA of ``kubeconfig``'s current cluster
    (``certificate-authority-data`` or ``certificate-authority``); None when it names none."""
    config = yaml.safe_load(Path(kubeconfig).read_text()) or {}
    context = next((c.get("context") or {} for c in config.get("contexts") or ()
                    if c.get("name") == config.get("current-context")), {})
    cluster = next((c.get("cluster") or {} for c in config.get("clusters") or ()
                    if c.get("name") == context.get("cluster")), {})
    if cluster.get("certificate-authority-data"):
        return ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    if cluster.get("certificate-authority"):
        return ssl.create_default_context(cafile=cluster["certificate-authority"])
    return None


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> int:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; returns the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    return int(process.returncode)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not), from /proc
    (Linux)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def child_pids(pid: int) -> set[int]:
    """The live processes whose parent is ``pid``, from /proc (Linux)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found
