"""The Makefile's kubebuilder targets, run with the real make and kubectl against the local API
server (``KUBECONFIG`` pointing at it, as a user's current kubeconfig would).

* ``make help`` lists every target with its ``## `` line, kubebuilder's and ours;
* the README's two commands keep their meaning (``run`` is the demo, ``test`` the suite) and
  ``install`` is kubebuilder's (the CRDs into the cluster), the virtualenv being ``venv``;
* ``install``/``uninstall`` and ``deploy IMG=...``/``undeploy`` change the cluster as
  ``kubectl apply -k``/``delete -k`` would, and ``deploy`` leaves the tree as it was;
* ``docker-build`` without a container tool says so; ``manifests`` renders every kustomization.

Each make runs with ``-o .venv/.installed``: the virtualenv exists (these tests run in it), and
a setup.cfg newer than its stamp must not make a test reinstall it.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import Raw, Server

pytestmark = [pytest.mark.kubectl, pytest.mark.timeout(180),
              pytest.mark.local_only("deploys config/default cluster-wide and removes it again, "
                                     "CRDs included")]

ROOT = Path(__file__).resolve().parents[1]
STAMP = ".venv/.installed"
CRDS = ("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
        "agenticsessions.vteam.ambient-code",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
        "projectsettings.vteam.ambient-code")
DEPLOYMENT = "/apis/apps/v1/namespaces/ambient-code/deployments/agenticsession-operator"
KUBEBUILDER_TARGETS = ("help", "install", "uninstall", "deploy", "undeploy", "docker-build",
                       "docker-push", "manifests", "run", "test", "lint")
OURS = ("venv", "run-operator", "apiserver", "bench", "e2e-cluster", "clean")


def make(*args: str, kubeconfig: Path | None = None, cache: Path | None = None,
         keep_venv: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real make in the repository; an outer make's flags (``make test``) not inherited."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("KUBECONFIG", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    if cache is not None:
        env["KUBECACHEDIR"] = str(cache)  # a later server may reuse the port
    keep = ["-o", STAMP] if keep_venv else []
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), *keep, *args],
                          capture_output=True, text=True, env=env, timeout=timeout,
                          check=False)


def succeeded(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def help_lines() -> dict[str, str]:
    out = re.sub(r"\x1b\[[0-9;]*m", "", succeeded(make("help")))
    return {m[1]: m[2].strip() for m in re.finditer(r"^  ([a-z0-9-]+)\s+(.+)$", out, re.M)}


def test_help_describes_every_target() -> None:
    lines = help_lines()
    missing = [t for t in (*KUBEBUILDER_TARGETS, *OURS) if not lines.get(t)]
    assert not missing, f"not in make help: {missing}"
    # Every phony target but the default goal has its line.
    phony = re.search(r"^\.PHONY:(.*?)(?<!\\)$", (ROOT / "Makefile").read_text(), re.M | re.S)
    assert phony
    declared = set(phony[1].replace("\\\n", " ").split()) - {"all"}
    assert declared <= set(lines), sorted(declared - set(lines))


def test_the_readme_commands_keep_their_meaning() -> None:
    """``make run`` is the demo and ``make test`` the suite, as the README's two commands say
    (and ``.ci/run`` runs ``make test``); ``install`` is kubebuilder's, not the virtualenv."""
    assert "ambient-ctrl demo" in succeeded(make("-n", "run"))
    assert "-m pytest tests e2e" in succeeded(make("-n", "test"))
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert succeeded(make("-n", "install")).split("\n")[-2:] == [
        ".venv/bin/kubectl apply -k config/crd", ""]
    assert "pip install" in succeeded(make("-n", "-B", "venv", keep_venv=False))
    assert "ambient-ctrl run" in succeeded(make("-n", "run-operator"))


def test_install_and_uninstall_the_crds(apiserver: Server, raw: Raw, tmp_path: Path) -> None:
    target = {"kubeconfig": apiserver.kubeconfig, "cache": tmp_path / "kube-cache"}
    succeeded(make("install", **target))
    assert all(raw.get(path)[0] == 200 for path in CRDS)
    succeeded(make("uninstall", **target))
    assert all(raw.absent(path) for path in CRDS)
    # As kubebuilder's: gone already is an error unless ignore-not-found=true.
    again = make("uninstall", **target)
    assert again.returncode != 0 and "NotFound" in again.stderr, again
    succeeded(make("uninstall", "ignore-not-found=true", **target))


def tracked_files() -> dict[str, str]:
    """Each file under config/ and the Makefile by its digest."""
    paths = [ROOT / "Makefile", *sorted((ROOT / "config").rglob("*"))]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()}


def test_deploy_sets_the_image_without_editing_the_tree(apiserver: Server, raw: Raw,
                                                        tmp_path: Path) -> None:
    target = {"kubeconfig": apiserver.kubeconfig, "cache": tmp_path / "kube-cache"}
    before = tracked_files()
    image = "registry.example.com/team/ambient-ctrl:1.2.3-test"
    out = succeeded(make("deploy", f"IMG={image}", **target))
    assert "deployment.apps/agenticsession-operator created" in out
    status, deployment = raw.get(DEPLOYMENT)
    assert status == 200
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert containers["manager"]["image"] == image
    assert all(raw.get(path)[0] == 200 for path in CRDS)
    assert tracked_files() == before
    assert not list((ROOT / ".venv").glob("deploy.*")), "the throwaway overlay was left"
    # The local API server empties a namespace before its deletion answers, so the deletes of
    # what was in it find nothing: ignore-not-found (kube-apiserver would answer 200).
    succeeded(make("undeploy", "ignore-not-found=true", **target))
    assert raw.absent("/api/v1/namespaces/ambient-code")
    assert all(raw.absent(path) for path in CRDS)


def test_docker_build_says_when_there_is_no_container_tool() -> None:
    done = make("docker-build", "CONTAINER_TOOL=no-such-container-tool")
    assert done.returncode != 0
    assert "neither docker nor podman is installed" in done.stderr, done.stderr


def test_manifests_renders_every_kustomization() -> None:
    out = succeeded(make("manifests"))
    directories = sorted(p.parent.name for p in (ROOT / "config").glob("*/kustomization.yaml"))
    assert sorted(re.findall(r"^config/([^/]+)/ renders$", out, re.M)) == directories
