"""The README's retry-and-timer example, run exactly as written against a local API server: a
healthy Widget is checked again and again, a broken one ends with the reason on its status,
and SIGTERM exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from ambient_ctrl.conditions import find_condition
from ambient_ctrl.envtest import LocalAPIServer
from ambient_ctrl.testing import eventually
from informers.rest import ResourceClient, Transport, load_configuration
from tests.ambient_ctrl.test_component import CRDS, WIDGET_CRD, WIDGETS
from tests.ambient_ctrl.test_readme_example import README, example_code


def _widget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def test_readme_retry_and_timer_example(tmp_path: Path) -> None:
    script = tmp_path / "check.py"
    script.write_text(example_code("retry-timer"))
    with LocalAPIServer() as api:
        transport = Transport(load_configuration(api.kubeconfig))
        widgets = ResourceClient(transport, WIDGETS)
        ResourceClient(transport, CRDS).create(WIDGET_CRD)
        env = {**os.environ, "KUBECONFIG": api.kubeconfig, "PYTHONPATH": str(README.parent)}
        with open(tmp_path / "example.log", "wb") as log:
            process = subprocess.Popen([sys.executable, str(script)], env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
        try:
            widgets.create(_widget("healthy"))
            widgets.create(_widget("broken", broken=True))

            def status(name: str) -> dict[str, Any]:
                return widgets.get(name, "default").get("status") or {}

            # the timer: checked again and again, without any change to the spec
            eventually(lambda: status("healthy").get("checks", 0) >= 3, timeout=30)
            ready = eventually(lambda: find_condition(status("broken").get("conditions"),
                                                      "Ready"), timeout=30)
            assert (ready["status"], ready["reason"], ready["message"]) == (
                "False", "RetriesExhausted", "RetriesExhausted: upstream refused")
            process.send_signal(signal.SIGTERM)
            assert process.wait(20) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
            transport.close()
