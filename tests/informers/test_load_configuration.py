"""Where ``load_configuration`` (``ambient-ctrl run``) finds its cluster, in controller-runtime's
order: the --kubeconfig flag, $KUBECONFIG, the in-cluster service account, ~/.kube/config.

Every source is a file under ``tmp_path`` pointing at a different server; the in-cluster token
and CA paths are this module's own constants, patched to files under ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes.config import ConfigException

from informers import transport as rest

SOURCES = ("flag", "env", "in-cluster", "home")
SERVERS = {"flag": "https://flag.example:6443", "env": "https://env.example:6443",
           "in-cluster": "https://10.96.0.1:443", "home": "https://home.example:6443"}


def kubeconfig(path: Path, server: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "kubeconfig-token"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    return path


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """No source at all: HOME is empty, no KUBECONFIG, not in a pod, no token file."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    account = tmp_path / "serviceaccount"
    monkeypatch.setattr(rest, "SERVICE_ACCOUNT_TOKEN", str(account / "token"))
    monkeypatch.setattr(rest, "SERVICE_ACCOUNT_CA", str(account / "ca.crt"))
    return {"home": home, "account": account, "tmp": tmp_path}


def provide(source: str, world: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> str | None:
    """Make ``source`` available; returns the --kubeconfig value for "flag"."""
    if source == "flag":
        return str(kubeconfig(world["tmp"] / "flag.yaml", SERVERS["flag"]))
    if source == "env":
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig(world["tmp"] / "env.yaml",
                                                        SERVERS["env"])))
    elif source == "in-cluster":
        world["account"].mkdir(exist_ok=True)
        (world["account"] / "token").write_text("sa-token")
        (world["account"] / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    elif source == "home":
        kubeconfig(world["home"] / ".kube" / "config", SERVERS["home"])
    return None


@pytest.mark.parametrize(("available", "chosen"), [
    (SOURCES, "flag"),
    (("env", "in-cluster", "home"), "env"),
    (("in-cluster", "home"), "in-cluster"),
    (("home",), "home"),
    (("flag", "home"), "flag"),
    (("env", "home"), "env"),
    (("in-cluster",), "in-cluster"),
], ids=["flag-first", "env-before-in-cluster", "in-cluster-before-home", "home-last",
        "flag-before-home", "env-before-home", "in-cluster-alone"])
def test_the_first_available_source_wins(world: dict[str, Path],
                                         monkeypatch: pytest.MonkeyPatch,
                                         available: tuple[str, ...], chosen: str) -> None:
    flag = None
    for source in available:
        flag = provide(source, world, monkeypatch) or flag
    configuration = rest.load_configuration(flag)
    assert configuration.host == SERVERS[chosen]


def test_in_cluster_uses_the_service_account_token_and_ca(world: dict[str, Path],
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    provide("in-cluster", world, monkeypatch)
    provide("home", world, monkeypatch)
    configuration = rest.load_configuration()
    assert configuration.api_key["BearerToken"] == "bearer sa-token"
    assert configuration.ssl_ca_cert == str(world["account"] / "ca.crt")


@pytest.mark.parametrize("half", ["host-without-token", "token-without-host"])
def test_half_an_in_cluster_environment_falls_through_to_home(
        world: dict[str, Path], monkeypatch: pytest.MonkeyPatch, half: str) -> None:
    provide("in-cluster", world, monkeypatch)
    if half == "host-without-token":
        (world["account"] / "token").unlink()
    else:
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    provide("home", world, monkeypatch)
    assert rest.load_configuration().host == SERVERS["home"]


def test_no_source_is_a_clear_error(world: dict[str, Path]) -> None:
    with pytest.raises(ConfigException, match="no cluster configuration"):
        rest.load_configuration()


def test_an_explicit_kubeconfig_that_does_not_exist_is_an_error(world: dict[str, Path],
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    provide("in-cluster", world, monkeypatch)  # never a silent fallback from what was asked
    provide("home", world, monkeypatch)
    with pytest.raises(ConfigException):
        rest.load_configuration(str(world["tmp"] / "missing.yaml"))
