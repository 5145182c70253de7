"""The README's retry-and-timer example, run exactly as written against a local API server: a
healthy Widget is checked again and again, a broken one ends with the reason on its status,
and SIGTERM exits 0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ambient_ctrl.conditions import find_condition
from ambient_ctrl.testing import custom_resource_definition, eventually
from envtest import LocalAPIServer
from informers.rest import ResourceClient, Transport, load_configuration
from tests.ambient_ctrl.test_component import CRDS, WIDGETS
from tests.ambient_ctrl.test_readme_example import running_example, stops_cleanly


def _widget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def test_readme_retry_and_timer_example(tmp_path: Path) -> None:
    with LocalAPIServer() as api:
        transport = Transport(load_configuration(api.kubeconfig))
        try:
            widgets = ResourceClient(transport, WIDGETS)
            ResourceClient(transport, CRDS).create(
                custom_resource_definition("example.com", "Widget"))
            with running_example("retry-timer", tmp_path, api.kubeconfig) as process:
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
                assert stops_cleanly(process)
        finally:
            transport.close()
