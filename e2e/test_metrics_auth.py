"""Secure metrics with real processes: the local API server and ``ambient-ctrl run
--metrics-secure`` as separate processes, config/rbac applied with the real kubectl.

A ServiceAccount bound to config/rbac's metrics-reader ClusterRole reads /metrics over HTTPS
with the token the API server minted for it (through the official python client); one bound to
nothing gets 403 (its token from ``kubectl create token``); no token and a made-up one get
401; plain HTTP gets nothing. The operator's reviews are allowed by config/rbac's metrics-auth
ClusterRole as the server evaluates it, and no token reaches the operator's log. With
``--metrics-cert-path`` the certificate served is the one in the files.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kubernetes import client, config

from ambient_ctrl.testing import eventually, free_port, start_apiserver_process, stop_process
from metrics.tls import self_signed

from .cluster import KUBECTL, ClosingApiClient
from .scrape import https_get, scraper_token

pytestmark = [pytest.mark.kubectl, pytest.mark.timeout(120),
              pytest.mark.local_only("starts its own local API server and operator processes")]

ROOT = Path(__file__).resolve().parents[1]
MONITORING = "monitoring"
OPERATOR_ACCOUNT = "system:serviceaccount:ambient-code:agenticsession-operator"


@dataclass
class World:
    kubeconfig: Path
    api: client.ApiClient
    workdir: Path
    logs: list[Path] = field(default_factory=list)
    """The logs of the operators started so far."""

    def kubectl(self, *args: str) -> str:
        done = subprocess.run([str(KUBECTL), "--kubeconfig", str(self.kubeconfig), *args],
                              capture_output=True, text=True, timeout=60, check=False,
                              env={**os.environ, "KUBECACHEDIR": str(self.workdir / "cache")})
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("metrics-auth")
    process, _, kubeconfig = start_apiserver_process(workdir / "kubeconfig",
                                                     log=workdir / "apiserver.log")
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    api = ClosingApiClient(configuration)
    try:
        world = World(kubeconfig, api, workdir)
        world.kubectl("create", "namespace", "ambient-code")
        world.kubectl("create", "namespace", MONITORING)
        world.kubectl("apply", "-k", str(ROOT / "config" / "crd"))
        world.kubectl("apply", "-k", str(ROOT / "config" / "rbac"))
        yield world
    finally:
        api.close()
        assert stop_process(process, timeout=10) == 0


@contextlib.contextmanager
def operator(world: World, *extra: str) -> Iterator[str]:
    """``ambient-ctrl run --metrics-secure`` (plus ``extra``) as its own process, ready;
    yields its /metrics URL; stopped (SIGTERM, exit 0) afterwards, its log free of tokens."""
    metrics, probes = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    log = world.workdir / f"operator-{free_port()}.log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AMBIENT_CTRL_", "KUBERNETES_")) and k != "KUBECONFIG"}
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ambient_ctrl.cli", "run", "--metrics-secure",
             f"--metrics-bind-address={metrics}", f"--health-probe-bind-address={probes}",
             "--kubeconfig", str(world.kubeconfig), "--log-level=DEBUG", *extra],
            env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        def ready() -> bool:
            assert process.poll() is None, log.read_text()[-3000:]
            with urllib.request.urlopen(f"http://{probes}/readyz", timeout=5) as answer:
                return bool(answer.status == 200)
        eventually(ready, timeout=30, ignoring=(OSError,),
                   message="the operator never became ready")
        yield f"https://{metrics}/metrics"
    finally:
        code = stop_process(process, timeout=40)
    assert code == 0, log.read_text()[-3000:]
    world.logs.append(log)


@pytest.fixture(scope="module")
def tokens(world: World) -> dict[str, str]:
    prometheus = scraper_token(world.api, MONITORING, "prometheus")
    # An account bound to nothing; its token from the real kubectl (a protobuf TokenRequest).
    world.kubectl("-n", MONITORING, "create", "serviceaccount", "stranger")
    stranger = world.kubectl("-n", MONITORING, "create", "token", "stranger").strip()
    return {"prometheus": prometheus, "stranger": stranger}


def test_only_a_metrics_reader_scrapes(world: World, tokens: dict[str, str]) -> None:
    with operator(world) as url:
        status, body = https_get(url, tokens["prometheus"])
        assert status == 200, body
        assert "controller_runtime_reconcile_total" in body
        assert https_get(url, tokens["stranger"]) == (
            403, f"Authorization denied for user system:serviceaccount:{MONITORING}:stranger\n")
        assert https_get(url) == (401, "Unauthorized\n")
        assert https_get(url, "made-up-token") == (401, "Unauthorized\n")
        # Nothing in clear on the metrics port.
        host, port = url.removeprefix("https://").split("/")[0].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as plain:
            plain.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"controller_runtime" not in plain.recv(65536)
    logged = "".join(path.read_text(errors="replace") for path in world.logs)
    for token in tokens.values():
        assert token not in logged


def test_the_operators_reviews_are_what_config_rbac_grants(world: World) -> None:
    """The API server's own evaluation of config/rbac: the operator's account may create both
    reviews, and only the reader role opens /metrics."""
    authz = client.AuthorizationV1Api(world.api)

    def allowed(user: str, groups: list[str], **attributes: str) -> bool:
        spec = client.V1SubjectAccessReviewSpec(user=user, groups=groups)
        if "path" in attributes:
            spec.non_resource_attributes = client.V1NonResourceAttributes(**attributes)
        else:
            spec.resource_attributes = client.V1ResourceAttributes(**attributes)
        review = authz.create_subject_access_review(client.V1SubjectAccessReview(spec=spec))
        return bool(review.status.allowed)

    groups = ["system:serviceaccounts", "system:serviceaccounts:ambient-code"]
    assert allowed(OPERATOR_ACCOUNT, groups, verb="create", group="authentication.k8s.io",
                   resource="tokenreviews")
    assert allowed(OPERATOR_ACCOUNT, groups, verb="create", group="authorization.k8s.io",
                   resource="subjectaccessreviews")
    assert not allowed(OPERATOR_ACCOUNT, groups, path="/metrics", verb="get")
    assert allowed(f"system:serviceaccount:{MONITORING}:prometheus", [], path="/metrics",
                   verb="get")


def test_a_certificate_from_files_is_served(world: World, tokens: dict[str, str]) -> None:
    certs = world.workdir / "certs"
    certs.mkdir()
    cert, key = self_signed()
    (certs / "serving.crt").write_bytes(cert)
    (certs / "serving.key").write_bytes(key)
    with operator(world, f"--metrics-cert-path={certs}", "--metrics-cert-name=serving.crt",
                  "--metrics-cert-key=serving.key") as url:
        host, port = url.removeprefix("https://").split("/")[0].split(":")
        served = ssl.get_server_certificate((host, int(port)), timeout=10)
        assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(cert.decode())
        # A client that trusts exactly that certificate verifies the connection.
        context = ssl.create_default_context(cadata=cert.decode())
        with socket.create_connection((host, int(port)), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
                        + tokens["prometheus"].encode() + b"\r\nConnection: close\r\n\r\n")
            status_line = tls.makefile("rb").readline()
            assert status_line.split()[1] == b"200", status_line
        assert https_get(url, tokens["prometheus"])[0] == 200
