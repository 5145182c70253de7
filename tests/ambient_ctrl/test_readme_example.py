"""The README's examples, run exactly as written: the 30-line controller against a local API
server, and the priority queue's."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from informers.errors import NotFound
from informers.resource import CONFIGMAPS, SECRETS
from informers.rest import ResourceClient, Transport, load_configuration

README = Path(__file__).resolve().parents[2] / "README.md"


def example_code(name: str = "mirror") -> str:
    """The README's example block ``name`` (between ``<!-- example:NAME -->`` markers)."""
    text = README.read_text()
    match = re.search(rf"<!-- example:{name} -->\n```python\n(.*?)```\n<!-- /example:{name} -->",
                      text, re.S)
    assert match, f"the README lost its example block {name!r}"
    return match.group(1)


def test_priority_example_runs_as_written() -> None:
    code = example_code("priorities")
    assert "assert [queue.get()" in code  # the example checks the order it shows
    exec(compile(code, "README.md:priorities", "exec"), {"__name__": "readme_priorities"})


def test_example_is_at_most_30_lines() -> None:
    assert len(example_code().strip().splitlines()) <= 30


@contextlib.contextmanager
def running_example(name: str, tmp_path: Path, kubeconfig: str) -> Iterator[subprocess.Popen]:
    """The README's example ``name`` run as a script on ``kubeconfig``'s cluster; killed on
    exit if the test did not stop it (output in ``tmp_path/example.log``)."""
    script = tmp_path / f"{name}.py"
    script.write_text(example_code(name))
    env = {**os.environ, "KUBECONFIG": kubeconfig, "PYTHONPATH": str(README.parent)}
    with open(tmp_path / "example.log", "wb") as log:
        process = subprocess.Popen([sys.executable, str(script)], env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def stops_cleanly(process: subprocess.Popen) -> bool:
    """SIGTERM drains the manager and exits 0."""
    process.send_signal(signal.SIGTERM)
    return process.wait(20) == 0


def test_readme_example_mirrors_configmaps_and_exits_cleanly(tmp_path: Path) -> None:
    with LocalAPIServer() as api, running_example("mirror", tmp_path, api.kubeconfig) as process:
        transport = Transport(load_configuration(api.kubeconfig))
        cms, secrets = ResourceClient(transport, CONFIGMAPS), ResourceClient(transport, SECRETS)
        try:
            cms.create({"metadata": {"name": "cfg", "namespace": "default",
                                     "labels": {"mirror": "true"}}, "data": {"a": "1"}})

            def mirrored() -> dict:
                try:
                    return secrets.get("cfg-mirror", "default")
                except NotFound:
                    return {}

            secret = eventually(mirrored, timeout=20)
            assert secret["metadata"]["ownerReferences"][0]["name"] == "cfg"
            cms.patch("cfg", {"data": {"a": "2"}}, "default")
            eventually(lambda: mirrored().get("data") == {"a": "Mg=="}, timeout=20)
            assert stops_cleanly(process)
        finally:
            transport.close()
