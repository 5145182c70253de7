"""The package as a user gets it: a wheel, installed into a fresh virtualenv, runs the demo.

* Two wheels, built with .venv's setuptools (``pip wheel --no-build-isolation --no-index``).
  The image's: from what the Dockerfile's builder stage copies (its COPY lines, less what
  .dockerignore keeps out of the build context) — the operator, without the local API server
  (``envtest``). The full one: the same plus ``envtest``, as a source checkout builds it.
* Both hold ``py.typed`` in each package and the CRDs, identical to ``config/crd/`` (the
  kustomize source: the package's copies are links to it in the source tree). Their metadata
  puts uvloop behind the ``envtest`` extra, which the ``test`` extra pulls in.
* A fresh virtualenv (``python -m venv``: no system site-packages, nothing of .venv's) gets a
  wheel and what it declares, nothing else, from a wheelhouse (``.venv/wheelhouse``, filled
  from the package index by ``pip download`` the first time, or when the wheel asks for
  something it lacks; offline after that). The image's wheel so installed: ``ambient-ctrl
  --version``, ``run --help``, no uvloop; the operator started against a cluster imports no
  ``envtest`` module (``python -X importtime``); ``ambient-ctrl demo`` says in one line that
  this installation has no local API server. The full wheel without extras: ``ambient-ctrl
  demo --exit-when-converged`` (the local API server on asyncio's loop) converges; with
  ``[envtest]``: uvloop.
* Every command runs from a directory outside the checkout, without PYTHONPATH: nothing can be
  imported from the source tree, and the test checks where the packages came from.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ambient_ctrl.testing import eventually, free_port, stop_process
from e2e.cluster import operator_serving
from envtest import LocalAPIServer
from informers.rest import Transport, load_configuration
from reconcilers.install import install

pytestmark = [pytest.mark.local_only("builds the package and runs its demo on its own cluster"),
              pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ambient_ctrl", "foundation", "informers", "metrics", "reconcilers")
"""The operator's packages: the image's wheel holds these and nothing else."""
LOCAL_API_SERVER = "envtest"
CRDS = ("agenticsessions.yaml", "projectsettings.yaml")
WHEELHOUSE = ROOT / ".venv" / "wheelhouse"
"""Wheels of the dependencies, kept between runs (``make clean`` removes them with .venv)."""


def builder_copies(dockerfile: str) -> list[tuple[str, str]]:
    """(source, destination) of each COPY of the Dockerfile's first stage (the builder's)."""
    stage = dockerfile.split("\nFROM ", 2)[1]
    copies = []
    for line in stage.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            *sources, destination = line.split()[1:]
            copies += [(source, destination) for source in sources]
    return copies


def ignored(path: str, rules: list[str]) -> bool:
    """Whether docker leaves ``path`` out of the build context: the last rule matching it or
    a folder above it wins, ``!`` lets in again (enough of docker's matching for our file)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    verdict = False
    for rule in rules:
        pattern = rule.removeprefix("!").strip("/")
        if pattern.startswith("**/"):
            hit = any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes)
        if hit:
            verdict = not rule.startswith("!")
    return verdict


def build_context(into: Path, *, also: tuple[str, ...] = ()) -> Path:
    """What the builder stage has in its WORKDIR when it runs ``pip wheel``: its COPYs of the
    files .dockerignore lets into the context (symbolic links copied as links, as docker
    does), and the folders ``also`` names, copied the same way."""
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    copies = builder_copies((ROOT / "Dockerfile").read_text())
    for source, destination in [*copies, *((folder, f"./{folder}") for folder in also)]:
        assert not ignored(source, rules), f"COPY {source}: .dockerignore leaves it out"
        path, target = ROOT / source, into / destination
        files = sorted(p for p in path.rglob("*") if not p.is_dir()) if path.is_dir() else [path]
        for item in files:
            if ignored(item.relative_to(ROOT).as_posix(), rules):
                continue
            if path.is_dir():
                copy = target / item.relative_to(path)
            else:
                copy = target / item.name if destination.endswith("/") else target
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item, copy, follow_symlinks=False)
    return into


def run(*argv: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A command outside the checkout, with an environment that cannot reach the source
    tree; fails the test unless it exits 0."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_FIND_LINKS")}
    env["PYTHONNOUSERSITE"] = "1"
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def build_wheel(work: Path, *, also: tuple[str, ...] = ()) -> Path:
    context = build_context(work / "src", also=also)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "--quiet", "--wheel-dir", work / "dist", context, cwd=work, timeout=300)
    [built] = (work / "dist").glob("ambient_ctrl-*.whl")
    return built


@pytest.fixture(scope="module")
def image_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel the operator image installs."""
    return build_wheel(tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of a source checkout: the operator and the local API server."""
    return build_wheel(tmp_path_factory.mktemp("full"), also=(LOCAL_API_SERVER,))


def pip_into(venv: Path, *args: str | Path) -> None:
    """.venv's pip installing into ``venv`` (which has no pip of its own), offline."""
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
        "--no-index", "--find-links", WHEELHOUSE, "--quiet", *args, cwd=venv, timeout=300)


def fill_wheelhouse(requirement: str) -> None:
    """The wheels ``requirement`` needs (the built wheel's path with extras), downloaded for
    this interpreter; the project's own wheel is not kept there (a stale copy of the same
    version must never be installed instead of the one just built)."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    run(sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:",
        "--dest", WHEELHOUSE, requirement, cwd=WHEELHOUSE, timeout=600)
    for stale in WHEELHOUSE.glob("ambient_ctrl-*"):
        stale.unlink()


def new_venv(where: Path, wheel: Path, requirement: str) -> Path:
    """A virtualenv at ``where`` with ``requirement`` (the wheel, with or without extras) and
    its dependencies only."""
    venv = where / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=where)
    try:
        pip_into(venv, requirement)
    except AssertionError:  # the wheelhouse lacks something the wheel asks for
        fill_wheelhouse(f"{wheel}[envtest]")
        pip_into(venv, requirement)
    return venv


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory, image_wheel: Path) -> Iterator[Path]:
    """A virtualenv with the image's wheel and its dependencies, no extras (tests only read
    it)."""
    yield new_venv(tmp_path_factory.mktemp("image-venv"), image_wheel, str(image_wheel))


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Iterator[Path]:
    """A virtualenv with the full wheel and its dependencies, no extras (tests only read it)."""
    yield new_venv(tmp_path_factory.mktemp("fresh"), wheel, str(wheel))


def wheel_version(venv: Path) -> str:
    """The version of the ambient-ctrl installed in ``venv``, from its dist-info's name."""
    [info] = venv.glob("lib/python*/site-packages/ambient_ctrl-*.dist-info")
    return info.name.removeprefix("ambient_ctrl-").removesuffix(".dist-info")


@pytest.mark.parametrize("which", ["image_wheel", "wheel"])
def test_the_wheel_holds_the_package_data_and_declares_the_extras(
        which: str, request: pytest.FixtureRequest) -> None:
    wheel: Path = request.getfixturevalue(which)
    packages = PACKAGES if which == "image_wheel" else (*PACKAGES, LOCAL_API_SERVER)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        tops = {name.split("/")[0] for name in names if "/" in name
                and not name.split("/")[0].endswith(".dist-info")}
        assert tops == set(packages), tops
        for package in packages:
            assert f"{package}/py.typed" in names, package
        for crd in CRDS:
            assert archive.read(f"reconcilers/crds/{crd}") == (
                ROOT / "config" / "crd" / crd).read_bytes(), crd
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = re.findall(r"^Requires-Dist: (.*)$", archive.read(metadata).decode(),
                              re.MULTILINE)
    uvloop = [r for r in requires if r.startswith("uvloop")]
    assert uvloop and all('extra == "envtest"' in r for r in uvloop), requires
    assert any(r.startswith("ambient-ctrl[envtest]") and 'extra == "test"' in r
               for r in requires), requires


def test_the_package_data_in_the_source_tree_is_config(tmp_path: Path) -> None:
    for crd in CRDS:
        shipped = ROOT / "reconcilers" / "crds" / crd
        assert shipped.resolve() == (ROOT / "config" / "crd" / crd).resolve(), (
            f"{shipped} must link to config/crd/{crd} (one copy to edit)")


def test_the_installed_commands_run_without_extras(image_venv: Path, tmp_path: Path) -> None:
    python, command = image_venv / "bin" / "python", image_venv / "bin" / "ambient-ctrl"
    where = run(python, "-c", "import importlib, sys\n"
                "for name in sys.argv[1:]: print(importlib.import_module(name).__file__)",
                *PACKAGES, cwd=tmp_path).stdout.split()
    assert all(Path(path).is_relative_to(image_venv) for path in where), where
    version = wheel_version(image_venv)
    assert run(command, "--version", cwd=tmp_path).stdout == f"ambient-ctrl {version}\n"
    assert "--max-concurrent-reconciles" in run(command, "run", "--help", cwd=tmp_path).stdout
    missing = subprocess.run([python, "-c", "import uvloop"], capture_output=True, check=False)
    assert missing.returncode != 0, "uvloop installed without the envtest extra"


def test_the_operator_imports_no_local_api_server_module(image_venv: Path,
                                                         tmp_path: Path) -> None:
    """The image's operator, started against a cluster until it is ready, then stopped:
    ``PYTHONPROFILEIMPORTTIME`` lists every module the process imported, at start-up or
    later."""
    with LocalAPIServer() as api:
        transport = Transport(load_configuration(api.kubeconfig))
        try:
            install(transport, namespace="sessions", registry_namespace="ambient-code",
                    registry=[])
        finally:
            transport.close()
        probes, log = f"127.0.0.1:{free_port()}", tmp_path / "operator.log"
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "KUBECONFIG")
               and not k.startswith("AMBIENT_CTRL_")}
        with open(log, "wb") as out:
            operator = subprocess.Popen(
                [image_venv / "bin" / "ambient-ctrl", "run", "--kubeconfig", api.kubeconfig,
                 "--registry-namespace", "ambient-code", "--leader-elect=false",
                 "--metrics-bind-address", f"127.0.0.1:{free_port()}",
                 "--health-probe-bind-address", probes],
                cwd=tmp_path, env={**env, "PYTHONPROFILEIMPORTTIME": "1",
                                   "PYTHONNOUSERSITE": "1"},
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        try:
            eventually(lambda: operator_serving(f"http://{probes}/readyz", operator, log),
                       timeout=60, message="the operator never became ready")
        finally:
            assert stop_process(operator, timeout=35) == 0, log.read_text()[-2000:]
    imported = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", log.read_text(),
                          re.MULTILINE)
    assert {"reconcilers.reconciler", "ambient_ctrl.manager"} <= set(imported), imported[-20:]
    assert [m for m in imported if m.split(".")[0] == LOCAL_API_SERVER] == []


def test_the_image_says_it_has_no_local_api_server(image_venv: Path, tmp_path: Path) -> None:
    for command in (["demo"], ["apiserver"]):
        done = subprocess.run([image_venv / "bin" / "ambient-ctrl", *command], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, check=False)
        assert (done.returncode, done.stdout) == (1, ""), done
        assert done.stderr == (f"ambient-ctrl {command[0]}: this installation has no local API "
                               "server (the envtest package: the operator image leaves it "
                               "out); install ambient-ctrl from a source checkout to run it\n")


def test_the_installed_demo_converges(fresh_venv: Path, tmp_path: Path) -> None:
    command = fresh_venv / "bin" / "ambient-ctrl"
    done = run(command, "demo", "--sessions", "2", "--exit-when-converged", "--timeout", "120",
               "--workdir", tmp_path / "demo", cwd=tmp_path, timeout=240)
    assert "converged: 2 sessions" in done.stdout, done.stdout
    assert "on asyncio's event loop" in (tmp_path / "demo" / "apiserver.log").read_text()


def test_the_envtest_extra_brings_uvloop(wheel: Path, tmp_path: Path) -> None:
    # A virtualenv of its own: adding the extra to the shared one made the no-extras tests
    # fail when they ran after this one.
    venv = new_venv(tmp_path, wheel, f"{wheel}[envtest]")
    said = run(venv / "bin" / "python", "-c",
               "from envtest import event_loop_name; print(event_loop_name())",
               cwd=tmp_path).stdout
    assert said == "on uvloop\n"
