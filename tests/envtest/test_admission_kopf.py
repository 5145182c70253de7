"""kopf's admission example against the local API server: kopf serves the webhooks and writes
their configurations itself (``settings.admission.managed``), the server calls them, kubectl
shows the effects (:mod:`.kopf_admission` has the operator)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ambient_ctrl.testing import eventually, free_port, stop_process
from envtest import LocalAPIServer
from foundation.certs import self_signed
from tests.conftest import RawClient, run_kubectl

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(importlib.util.find_spec("kopf") is None, reason="kopf is not installed"),
]

OPERATOR = Path(__file__).with_name("kopf_admission.py")
NAMESPACE = "kopf-admission"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CRD: dict[str, Any] = {
    "metadata": {"name": "kopfexamples.kopf.dev"},
    "spec": {"scope": "Namespaced", "group": "kopf.dev",
             "names": {"kind": "KopfExample", "plural": "kopfexamples",
                       "singular": "kopfexample", "shortNames": ["kopfexes", "kopfex", "kex"]},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True},
                               "status": {"type": "object",
                                          "x-kubernetes-preserve-unknown-fields": True}}}}}]}}
CONFIGURATIONS = ("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
                  "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations")


def example(name: str, field: str, *, labelled: bool = True) -> str:
    labels = "  labels: {somelabel: somevalue}\n" if labelled else ""
    return (f"apiVersion: kopf.dev/v1\nkind: KopfExample\nmetadata:\n  name: {name}\n{labels}"
            f"spec:\n  duration: 1m\n  field: {field}\n  items: [item1, item2]\n")


@pytest.fixture(scope="module")
def kopf_operator(api: LocalAPIServer, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("kopf-admission")
    client = RawClient(api.url)
    assert client.post(CRDS, CRD)[0] == 201
    assert client.post("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})[0] == 201
    cert, key = self_signed()
    (tmp / "cert.pem").write_bytes(cert)
    (tmp / "key.pem").write_bytes(key)
    port = free_port()
    env = {**os.environ, "KUBECONFIG": api.kubeconfig, "KOPF_WEBHOOK_PORT": str(port),
           "KOPF_WEBHOOK_CERT": str(tmp / "cert.pem"), "KOPF_WEBHOOK_KEY": str(tmp / "key.pem")}
    log = tmp / "kopf.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "kopf", "run", "--standalone", "--verbose",
             "--namespace", NAMESPACE, str(OPERATOR)], stdout=out, stderr=subprocess.STDOUT,
            env=env, cwd=tmp)
    try:
        eventually(lambda: all(
            (client.get(f"{path}/auto.kopf.dev")[1] or {}).get("webhooks")
            for path in CONFIGURATIONS) or process.poll() is not None, timeout=30,
            message="kopf's configurations")
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        yield tmp
    finally:
        stop_process(process, timeout=20)
        for path in (*CONFIGURATIONS, f"{CRDS}/kopfexamples.kopf.dev"):
            client.delete(f"{path}/auto.kopf.dev" if "webhook" in path else path)
        client.close()


def kubectl(api: LocalAPIServer, tmp: Path, *args: str,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_kubectl(api.kubeconfig, tmp / "kube-cache", "-n", NAMESPACE, *args, stdin=stdin)


def test_kopfs_mutating_handler_injects_into_labelled_objects(
        api: LocalAPIServer, kopf_operator: Path, client: RawClient) -> None:
    done = kubectl(api, kopf_operator, "apply", "-f", "-", stdin=example("kopf-example-1",
                                                                          "value"))
    assert done.returncode == 0, done.stderr
    assert "Warning: Accessing as user-agent: kube-apiserver-admission" in done.stderr
    assert "Warning: SSL peer is not identified." in done.stderr
    assert "Warning: Also update status.field to match spec.field: 'value' != None" \
        in done.stderr
    base = f"/apis/kopf.dev/v1/namespaces/{NAMESPACE}/kopfexamples"
    assert client.get(f"{base}/kopf-example-1")[1]["spec"]["injected"] == 123
    done = kubectl(api, kopf_operator, "apply", "-f", "-",
                   stdin=example("kopf-example-2", "value", labelled=False))
    assert done.returncode == 0, done.stderr
    assert "injected" not in client.get(f"{base}/kopf-example-2")[1]["spec"]


def test_kopfs_validating_handlers_refuse(api: LocalAPIServer, kopf_operator: Path) -> None:
    done = kubectl(api, kopf_operator, "apply", "-f", "-", stdin=example("wrong", "wrong"))
    assert done.returncode == 1
    assert "denied the request: Meh! I don't like it. Change the field." in done.stderr
    # kopf skips the check on a dry run (its handler is told ``dryrun``)
    done = kubectl(api, kopf_operator, "apply", "--dry-run=server", "-f", "-",
                   stdin=example("wrong", "wrong"))
    assert done.returncode == 0, done.stderr
    done = kubectl(api, kopf_operator, "apply", "-f", "-", stdin=example("lazy", "not-allowed"))
    assert done.returncode == 1
    assert "denied the request: I'm too lazy anyway. Go away!" in done.stderr


def test_kopfs_subresource_handler_checks_status(api: LocalAPIServer,
                                                 kopf_operator: Path) -> None:
    assert kubectl(api, kopf_operator, "apply", "-f", "-",
                   stdin=example("with-status", "value")).returncode == 0
    done = kubectl(api, kopf_operator, "patch", "kex", "with-status", "--subresource=status",
                   "--type=merge", "-p", '{"status":{"field":"other"}}')
    assert done.returncode == 1
    assert "status.field MUST be equal to spec.field!" in done.stderr
    done = kubectl(api, kopf_operator, "patch", "kex", "with-status", "--subresource=status",
                   "--type=merge", "-p", '{"status":{"field":"value"}}')
    assert done.returncode == 0, done.stderr
