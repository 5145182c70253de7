"""The namespace-scoped mode: ``run --namespace a,b`` (and AMBIENT_CTRL_NAMESPACE), the caches the
operator then declares (one per namespace, none cluster-wide for a namespaced kind), and
``ambient-ctrl rbac``'s objects."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import yaml

from ambient_ctrl.manager import Manager, ManagerOptions
from envtest import LocalAPIServer
from reconcilers import command, wiring
from reconcilers.config import OperatorConfig
from reconcilers.namespaced import render, watched_namespaces
from reconcilers.reconciler import OperatorOptions
from reconcilers.resources import VERTEX_SECRET


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AMBIENT_CTRL_"):
            monkeypatch.delenv(name)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ambient-ctrl")
    command.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["run", *argv])


def test_the_namespace_list() -> None:
    assert watched_namespaces(["b, a", "", "a,,c"]) == ("a", "b", "c")
    assert watched_namespaces([""]) == ()
    with pytest.raises(ValueError, match="Team_A: not a namespace name"):
        watched_namespaces(["ok,Team_A"])
    with pytest.raises(ValueError, match="not a namespace name"):
        watched_namespaces(["a" * 64])


def test_run_reads_the_flag_over_the_variable(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert parse([]).namespace == ()  # every namespace
    assert parse(["--namespace", "team-b,team-a"]).namespace == ("team-a", "team-b")
    assert parse(["--namespaces=one"]).namespace == ("one",)
    monkeypatch.setenv("AMBIENT_CTRL_NAMESPACE", "from-env,other")
    assert parse([]).namespace == ("from-env", "other")
    assert parse(["--namespace=flag"]).namespace == ("flag",)
    monkeypatch.setenv("AMBIENT_CTRL_NAMESPACE", "Bad Name")
    with pytest.raises(SystemExit) as exit_info:
        parse([])
    assert exit_info.value.code == 2
    assert "not a namespace name" in capsys.readouterr().err


@pytest.fixture(scope="module")
def api() -> Iterator[LocalAPIServer]:
    with LocalAPIServer() as server:
        yield server


@pytest.mark.parametrize("listed", [("team-a",), ("team-a", "team-b")], ids=["one", "two"])
def test_the_operator_caches_only_its_namespaces(api: LocalAPIServer,
                                                 listed: tuple[str, ...]) -> None:
    """Every cache of a namespaced kind the operator declares (both controllers, Vertex on)
    holds the listed namespaces, or the operator's own for its registry and the backend's
    Secrets: none is cluster-wide. Namespaces are."""
    manager = Manager(kubeconfig=str(api.kubeconfig), options=ManagerOptions(
        metrics_address="0", probe_address="0", cache_namespaces=listed))
    config = OperatorConfig(namespace="ambient-code", backend_namespace="ambient-code",
                            vertex=True)
    wiring.setup(manager, config=config, options=OperatorOptions(
        registry_namespace="ambient-code"))
    scopes = list(manager.informers.health())
    namespaced = [key for key in scopes if key.resource.namespaced]
    assert namespaced and not [key for key in namespaced if key.namespace is None]
    home = [key for key in namespaced if key.namespace == "ambient-code"]
    assert {key.resource.plural for key in namespaced if key not in home} >= {
        "agenticsessions", "pods", "secrets", "services", "projectsettings", "roles",
        "rolebindings", "serviceaccounts", "limitranges", "networkpolicies", "configmaps"}
    assert {key.namespace for key in namespaced if key not in home} == set(listed)
    # In the operator's namespace: its ConfigMaps, and the Secrets it reads by name there.
    assert {(key.resource.plural, key.field_selector) for key in home} == {
        ("configmaps", None), ("secrets", "metadata.name=minio-credentials"),
        ("secrets", f"metadata.name={VERTEX_SECRET}")}
    assert [key.namespace for key in scopes if key.resource.plural == "namespaces"] \
        == [None, None]  # every namespace, and the managed ones (the project controller's)
    manager.transport.close()


def test_rbac_objects() -> None:
    objects = render(["team-b", "team-a,team-b"], operator_namespace="platform")
    configmap, *bindings = objects
    assert configmap["kind"] == "ConfigMap"
    assert configmap["metadata"]["namespace"] == "platform"
    assert configmap["data"] == {"namespaces": "team-a,team-b"}
    assert watched_namespaces([configmap["data"]["namespaces"]]) == ("team-a", "team-b")
    assert [(b["kind"], b["metadata"]["namespace"], b["metadata"]["name"]) for b in bindings] \
        == [("RoleBinding", "team-a", "agenticsession-operator"),
            ("RoleBinding", "team-b", "agenticsession-operator")]
    for binding in bindings:
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                      "kind": "ClusterRole",
                                      "name": "agenticsession-operator-namespaced"}
        assert binding["subjects"] == [{"kind": "ServiceAccount",
                                        "name": "agenticsession-operator",
                                        "namespace": "platform"}]
    with pytest.raises(ValueError, match="at least one namespace"):
        render([])


def test_rbac_command() -> None:
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ambient_ctrl.cli", "rbac", *argv],
                              capture_output=True, text=True, timeout=60, check=False)

    done = run("--namespace", "team-a", "--namespace", "team-b")
    assert done.returncode == 0, done.stderr
    printed = list(yaml.safe_load_all(done.stdout))
    assert printed == render(["team-a", "team-b"])
    refused = run()
    assert refused.returncode == 2 and "name at least one namespace" in refused.stderr
    assert "Traceback" not in refused.stderr
