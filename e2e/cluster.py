"""The cluster the e2e suite targets: local API server processes, or the cluster named by
``E2E_KUBECONFIG``.

With ``E2E_KUBECONFIG`` set no local server is started: fixtures talk to that cluster through
its kubeconfig (TLS, tokens, client certificates, exec plugins — whatever it says, through the
``kubernetes`` package's configuration, not through the code under test); tests that need the
local server itself are skipped (``local_only``). No pytest here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

KUBECTL = Path(sys.executable).parent / "kubectl"
EXTERNAL_KUBECONFIG = os.environ.get("E2E_KUBECONFIG") or None
"""When set, the suite targets this cluster instead of starting local API servers."""
EXTERNAL_REGISTRY = os.environ.get("E2E_REGISTRY") or None
"""Optional: a JSON file with the agent registry the operator tests install on an external
cluster (its runtimes' images must run there); by default the tests' own entries."""
LOCAL_TLS = os.environ.get("E2E_TLS", "1") != "0"
"""The local API servers of the shared fixtures (the ``apiserver`` fixture, the operator
worlds) serve HTTPS, as every real cluster does, with the CA in their kubeconfig; ``E2E_TLS=0``
makes them plain HTTP. Tests that start a server for one purpose of their own choose."""
MANAGED_LABEL = "ambient-code.io/managed"
TEST_AGENT = "e2e-test/1.0"
"""The User-Agent of the tests' own requests (never the operator's ``ambient-ctrl``)."""


def external() -> Path | None:
    return Path(EXTERNAL_KUBECONFIG) if EXTERNAL_KUBECONFIG else None


class ClosingApiClient(k8s_client.ApiClient):
    """The official client's ApiClient whose close() also closes its connections (its own
    ends only its thread pool: the sockets left to the garbage collector warn later)."""

    def close(self) -> None:
        super().close()
        self.rest_client.pool_manager.clear()


def api_client_for(kubeconfig: Path) -> k8s_client.ApiClient:
    """The official client's ApiClient for ``kubeconfig`` (close it when done)."""
    configuration = k8s_client.Configuration()
    k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return ClosingApiClient(configuration)


def operator_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    """Whether the operator started as ``process`` answers 200 at ``url`` (a probe); raises
    with the end of its ``log`` if it has exited."""
    if process.poll() is not None:
        raise RuntimeError(f"the operator exited with {process.returncode}: "
                           f"{log.read_text(errors='replace')[-2000:]}")
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def registry_entries(default: list[Any]) -> list[Any]:
    """The registry to install: ``E2E_REGISTRY``'s entries on an external cluster."""
    if EXTERNAL_KUBECONFIG and EXTERNAL_REGISTRY:
        entries = json.loads(Path(EXTERNAL_REGISTRY).read_text())
        assert isinstance(entries, list), f"{EXTERNAL_REGISTRY}: not a JSON array"
        return entries
    return default


class ApiHttp:
    """HTTP to one API server as its kubeconfig says: base URL, TLS pool, auth headers."""

    def __init__(self, kubeconfig: Path, *, maxsize: int = 8) -> None:
        configuration = k8s_client.Configuration()
        k8s_config.load_kube_config(config_file=str(kubeconfig),
                                    client_configuration=configuration)
        configuration.connection_pool_maxsize = maxsize
        self._api = k8s_client.ApiClient(configuration)
        self.pool: urllib3.PoolManager = self._api.rest_client.pool_manager
        self.url = configuration.host.rstrip("/")

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: dict[str, str] | None = None,
                timeout: urllib3.Timeout | None = None) -> urllib3.BaseHTTPResponse:
        """One request to ``path`` (with its query), no retries; bodies are left as bytes."""
        sent = {"User-Agent": TEST_AGENT, **(headers or {})}
        # Bearer tokens (refreshed by exec plugins or from service-account files) come from
        # the client's configuration; client certificates are in the pool already.
        self._api.update_params_for_auth(sent, [], ["BearerToken"], path, method, None)
        return self.pool.request(method, self.url + path, body=body, headers=sent,
                                 retries=False,
                                 timeout=timeout or urllib3.Timeout(connect=5, read=30))

    def close(self) -> None:
        self.pool.clear()
        self._api.close()


def kubectl(kubeconfig: Path, *args: str, input: str | None = None,
            cache_dir: Path | None = None, timeout: float = 60) -> str:
    """Run the virtualenv's kubectl against ``kubeconfig``; its stdout, or AssertionError."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    if cache_dir is not None:
        env["KUBECACHEDIR"] = str(cache_dir)
    done = subprocess.run([str(KUBECTL), "--kubeconfig", str(kubeconfig), *args], input=input,
                          capture_output=True, text=True, env=env, timeout=timeout,
                          check=False)
    if done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} exited {done.returncode}:\n"
                             f"stdout: {done.stdout}\nstderr: {done.stderr}")
    return done.stdout
