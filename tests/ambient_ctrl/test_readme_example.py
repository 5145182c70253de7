"""The README's examples, run exactly as written: the 30-line controller against a local API
server, and the priority queue's."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from ambient_ctrl.envtest import LocalAPIServer
from ambient_ctrl.testing import eventually
from informers.errors import NotFound
from informers.resource import CONFIGMAPS, SECRETS
from informers.rest import ResourceClient, Transport, load_configuration

README = Path(__file__).resolve().parents[2] / "README.md"


def example_code(name: str = "mirror") -> str:
    text = README.read_text()
    match = re.search(rf"<!-- example:{name} -->\n```python\n(.*?)```\n<!-- /example:{name} -->",
                      text, re.S)
    assert match, f"the README lost its {name} example block"
    return match.group(1)


def test_priority_example_runs_as_written() -> None:
    code = example_code("priorities")
    assert "assert [queue.get()" in code  # the example checks the order it shows
    exec(compile(code, "README.md:priorities", "exec"), {"__name__": "readme_priorities"})


def test_example_is_at_most_30_lines() -> None:
    assert len(example_code().strip().splitlines()) <= 30


def test_readme_example_mirrors_configmaps_and_exits_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "mirror.py"
    script.write_text(example_code())
    with LocalAPIServer() as api:
        transport = Transport(load_configuration(api.kubeconfig))
        cms, secrets = ResourceClient(transport, CONFIGMAPS), ResourceClient(transport, SECRETS)
        env = {**os.environ, "KUBECONFIG": api.kubeconfig,
               "PYTHONPATH": str(README.parent)}
        with open(tmp_path / "example.log", "wb") as log:
            process = subprocess.Popen([sys.executable, str(script)], env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
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
            process.send_signal(signal.SIGTERM)
            assert process.wait(20) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
            transport.close()
