"""The README's webhook example, run exactly as written: its manager started against a local
API server, and kube-apiserver's review bodies posted to it over TLS, trusting only the CA the
caBundle would carry."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ambient_ctrl.testing import eventually
from envtest import LocalAPIServer
from envtest.patch.jsonpatch import json_patch
from tests.ambient_ctrl.test_readme_example import example_code
from tests.ambient_ctrl.test_webhook_component import post
from tests.ambient_ctrl.test_webhook_reviews import (
    admission_review,
    conversion_review,
    patch_of,
    widget,
)


def test_readme_webhooks_example(monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalAPIServer() as api:
        monkeypatch.setenv("KUBECONFIG", api.kubeconfig)
        namespace: dict[str, Any] = {"__name__": "readme_webhooks"}
        exec(compile(example_code("webhooks"), "README.md:webhooks", "exec"), namespace)
        manager = namespace["manager"]
        codes: list[int] = []
        thread = threading.Thread(target=lambda: codes.append(manager.run()), name="readme")
        thread.start()
        try:
            server = eventually(lambda: manager.webhook_server.check() is None
                                and manager.webhook_server, ignoring=(RuntimeError,))
            url, ca = server.url, server.ca_bundle

            def admit(path: str, operation: str, obj: Any, old: Any = None) -> dict[str, Any]:
                status, body = post(url, path, admission_review(operation, obj, old), ca=ca)
                assert status == 200
                response: dict[str, Any] = body["response"]
                return response

            sent = widget(size="small")
            defaulted = admit("/mutate-example-com-v1-widget", "CREATE", sent)
            assert json_patch(sent, patch_of(defaulted))["spec"] == {"size": "small",
                                                                     "replicas": 1}
            validate = "/validate-example-com-v1-widget"
            assert admit(validate, "CREATE", widget(replicas=11))["status"]["message"] == \
                "spec.replicas: at most 10"
            assert admit(validate, "UPDATE", widget(size="l"), widget(size="s"))[
                "allowed"] is False
            assert admit(validate, "CREATE", widget(replicas=0))["warnings"] == [
                "spec.replicas: 0 pauses the widget"]
            assert admit(validate, "DELETE", None, widget(protected=True))["status"][
                "message"] == "a protected widget cannot be deleted"
            assert admit(validate, "DELETE", None, widget())["allowed"] is True
            status, body = post(url, "/convert", conversion_review(
                "example.com/v2", widget(size="large")), ca=ca)
            assert status == 200
            [v2] = body["response"]["convertedObjects"]
            assert (v2["apiVersion"], v2["spec"]) == ("example.com/v2", {"size": {"name":
                                                                                   "large"}})
            status, body = post(url, "/convert", conversion_review("example.com/v1", v2), ca=ca)
            assert body["response"]["convertedObjects"][0]["spec"] == {"size": "large"}
        finally:
            manager.stop()
            thread.join(30)
        assert codes == [0]
