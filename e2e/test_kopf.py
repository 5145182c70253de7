"""kopf 1.45, unchanged, against ``ambient-ctrl apiserver`` running as its own process.

kopf runs the operator in ``e2e/kopf_operator.py`` as a subprocess (``kopf run --standalone
--namespace NS``, configured through ``KUBECONFIG``). Against our server it lists and watches
CRDs, namespaces and widgets (bookmarks on, no timeout), adds its finalizer with a JSON patch
that ``test``s the resourceVersion, keeps its progress in annotations (merge patches, and an
annotation-only "touch" patch that must wake its own watch up), writes handler results with
merge patches to ``/status`` and posts core/v1 Events. The tests assert only on the resulting
cluster state, read back with raw JSON; kopf's own log is kept for diagnosis.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from ambient_ctrl.testing import eventually

from .conftest import Cleanup, Kubectl, Raw, Server, unique

pytestmark = [
    pytest.mark.timeout(60),
    # kopf comes with the "bench" extra; it is not imported here (only kopf's process runs it).
    pytest.mark.skipif(importlib.util.find_spec("kopf") is None, reason="kopf is not installed"),
]

OPERATOR = Path(__file__).with_name("kopf_operator.py")
GROUP, VERSION = "e2e.ambient-code.io", "v1"
FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
LAST_HANDLED = "kopf.zalando.org/last-handled-configuration"
TIMEOUT = 15.0  # for each thing kopf should do; it takes well under a second on this machine

CRD = f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{GROUP}
spec:
  group: {GROUP}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget}}
  versions:
  - name: {VERSION}
    served: true
    storage: true
    subresources: {{status: {{}}}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {{type: integer}}
              failFirst: {{type: boolean}}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"""


def widget_yaml(namespace: str, name: str, size: int, fail_first: bool = False) -> str:
    return textwrap.dedent(f"""\
        apiVersion: {GROUP}/{VERSION}
        kind: Widget
        metadata: {{name: {name}, namespace: {namespace}}}
        spec: {{size: {size}, failFirst: {str(fail_first).lower()}}}
        """)


def widget_path(namespace: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/widgets/{name}"


def cm_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps/{name}"


@dataclass
class Operator:
    """The kopf subprocess and what it works on."""

    namespace: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def alive(self) -> None:
        assert self.process.poll() is None, (
            f"kopf exited with {self.process.returncode}:\n{self.log_tail()}")


def stop_kopf(process: subprocess.Popen[bytes], log: Path) -> int:
    """SIGTERM; SIGKILL (and fail) if kopf is still running 15 s later. Returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            pytest.fail(f"kopf ignored SIGTERM for 15 s:\n{log.read_text(errors='replace')}")
    return int(process.returncode)


@pytest.fixture(scope="module")
def operator(apiserver: Server, kubectl_module: Kubectl, module_cleanup: Cleanup,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    raw = apiserver.raw
    tmp = tmp_path_factory.mktemp("kopf")
    module_cleanup.add(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                       f"widgets.{GROUP}")
    kubectl_module("apply", "-f", "-", input=CRD)
    kubectl_module("wait", "--for=condition=Established", f"crd/widgets.{GROUP}",
                   "--timeout=20s")
    namespace = unique("kopf")
    status, body = raw.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    assert status == 201, body
    module_cleanup.add(f"/api/v1/namespaces/{namespace}")
    # One widget exists before kopf starts: kopf finds it in its initial (unpaginated) list.
    kubectl_module("apply", "-f", "-", input=widget_yaml(namespace, "early", 1))

    log = tmp / "kopf.log"
    env = {**os.environ, "KUBECONFIG": str(apiserver.kubeconfig)}
    argv = [sys.executable, "-m", "kopf", "run", "--standalone", "--verbose",
            "--namespace", namespace, str(OPERATOR)]
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, env=env, cwd=tmp,
                                   start_new_session=True)
    started = Operator(namespace, process, log)
    try:
        def watching() -> bool:
            started.alive()
            return f"watch-stream for widgets.{VERSION}.{GROUP}" in log.read_text()

        eventually(watching, timeout=30, message="kopf did not start watching widgets")
        yield started
    finally:
        code = stop_kopf(process, log)
        release_widgets(raw, namespace)
        text = log.read_text(errors="replace")
        # kopf ran in its own session: nothing of it may be left behind.
        with pytest.raises(ProcessLookupError):
            os.killpg(process.pid, 0)
        assert code == 0, f"kopf exited with {code} on SIGTERM:\n{text[-3000:]}"
        assert "Traceback" not in text, text


def release_widgets(raw: Raw, namespace: str) -> None:
    """Drop kopf's finalizer from the widgets left behind, so that deleting their namespace
    and CRD afterwards is not held up by an operator that is gone."""
    status, body = raw.get(f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/widgets")
    assert status == 200, body
    for item in body["items"]:
        if item["metadata"].get("finalizers"):
            status, patched = raw.request(
                "PATCH", widget_path(namespace, item["metadata"]["name"]),
                {"metadata": {"finalizers": None}}, content_type="application/merge-patch+json")
            assert status in (200, 404), patched


def events_for(raw: Raw, namespace: str, name: str) -> list[dict[str, Any]]:
    status, body = raw.get(f"/api/v1/namespaces/{namespace}/events")
    assert status == 200, body
    return [e for e in body["items"] if e["involvedObject"].get("name") == name]


def wait_for_events(raw: Raw, namespace: str, name: str,
                    expected: set[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Wait until the widget's Events include every (type, reason, message) in ``expected``."""

    def posted() -> list[dict[str, Any]]:
        events = events_for(raw, namespace, name)
        seen = {(e["type"], e["reason"], e["message"]) for e in events}
        assert expected <= seen, f"missing {expected - seen}; posted: {sorted(seen)}"
        return events

    return eventually(posted, timeout=TIMEOUT)


def wait_for(raw: Raw, operator: Operator, path: str, check: Any, what: str) -> dict[str, Any]:
    """The object at ``path`` once ``check(obj)`` holds; fails with kopf's log otherwise."""

    def holds() -> dict[str, Any]:
        operator.alive()
        status, body = raw.get(path)
        return dict(body) if status == 200 and check(body) else {}

    try:
        return eventually(holds, timeout=TIMEOUT, message=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast seen: {raw.get(path)}\n"
                             f"kopf's log:\n{operator.log_tail()}") from None


def test_lifecycle_create_update_delete(operator: Operator, kubectl: Kubectl, raw: Raw) -> None:
    ns, name = operator.namespace, "w1"
    kubectl("apply", "-f", "-", input=widget_yaml(ns, name, 3))

    # create: the finalizer (JSON patch with a test op), the handler's result in status (a merge
    # patch to /status: the main endpoint would drop it), the last-handled annotation.
    widget = wait_for(raw, operator, widget_path(ns, name),
                      lambda w: "created" in w.get("status", {}), "status.created not written")
    assert widget["metadata"]["finalizers"] == [FINALIZER]
    assert widget["status"]["created"] == {"child": f"{name}-child", "size": 3}
    assert orjson.loads(widget["metadata"]["annotations"][LAST_HANDLED]) == {
        "spec": {"size": 3, "failFirst": False}}
    child = raw.obj(cm_path(ns, f"{name}-child"))
    assert child["data"] == {"size": "3"}
    assert [(o["kind"], o["name"], o["uid"], o.get("controller"))
            for o in child["metadata"]["ownerReferences"]] == [
        ("Widget", name, widget["metadata"]["uid"], True)]

    # update of the watched field: the child follows, the result lands in status.
    kubectl("-n", ns, "patch", "widget", name, "--type=merge", "-p", '{"spec": {"size": 5}}')
    widget = wait_for(raw, operator, widget_path(ns, name),
                      lambda w: "resized/spec.size" in w.get("status", {}),
                      "the update handler's result never reached status")
    assert widget["status"]["resized/spec.size"] == {"from": 3, "to": 5}
    assert widget["status"]["created"] == {"child": f"{name}-child", "size": 3}
    assert raw.obj(cm_path(ns, f"{name}-child"))["data"] == {"size": "5"}

    # an annotation-only change: kopf must be woken up (new resourceVersion, MODIFIED event); it
    # records the change in its last-handled annotation although no handler is interested.
    kubectl("-n", ns, "annotate", "widget", name, "example.com/note=hello")
    wait_for(raw, operator, widget_path(ns, name),
             lambda w: orjson.loads(w["metadata"]["annotations"][LAST_HANDLED]).get("metadata")
             == {"annotations": {"example.com/note": "hello"}},
             "kopf did not see the annotation-only change")

    # delete: deletionTimestamp (the finalizer holds it), the delete handler's tombstone, then
    # kopf removes its finalizer and the widget is gone, its child garbage-collected.
    kubectl("-n", ns, "delete", "widget", name, "--wait=false")
    tombstone = wait_for(raw, operator, cm_path(ns, f"{name}-tombstone"), lambda c: True,
                         "the delete handler left no tombstone")
    assert tombstone["data"] == {"widget": name, "size": "5"}
    eventually(lambda: raw.absent(widget_path(ns, name)), timeout=TIMEOUT,
               message="the widget was not deleted after kopf's delete handler")
    eventually(lambda: raw.absent(cm_path(ns, f"{name}-child")), timeout=TIMEOUT,
               message="the owned child ConfigMap was not garbage-collected")

    # Events, posted by kopf's poster to core/v1 (explicit ones and log messages, "Logging").
    events = wait_for_events(raw, ns, name, {
        ("Normal", "ChildCreated", f"ConfigMap {name}-child"),
        ("Normal", "Logging", "Handler 'created' succeeded."),
        ("Normal", "Logging", "Handler 'resized/spec.size' succeeded."),
        ("Normal", "Logging", "Handler 'deleted' succeeded."),
        ("Normal", "Logging", "Deletion is processed: 1 succeeded; 0 failed."),
    })
    for event in events:
        assert event["metadata"]["name"].startswith("kopf-event-")
        assert event["involvedObject"]["kind"] == "Widget"
        assert event["involvedObject"]["uid"] == widget["metadata"]["uid"]
        assert event["source"] == {"component": "kopf"}


def test_retry_after_a_temporary_error(operator: Operator, kubectl: Kubectl, raw: Raw) -> None:
    """The first attempt fails: kopf stores its progress in an annotation, sleeps a second, then
    touches the object with an annotation-only patch to get a watch event for the retry."""
    ns, name = operator.namespace, "flaky"
    kubectl("apply", "-f", "-", input=widget_yaml(ns, name, 2, fail_first=True))
    widget = wait_for(raw, operator, widget_path(ns, name),
                      lambda w: "created" in w.get("status", {}), "the retry never succeeded")
    assert widget["status"]["created"] == {"child": f"{name}-child", "size": 2}
    annotations = widget["metadata"]["annotations"]
    # On success kopf cleans up its progress and touch annotations.
    assert not {"kopf.zalando.org/created", "kopf.zalando.org/touch-dummy"} & set(annotations)
    assert raw.obj(cm_path(ns, f"{name}-child"))["data"] == {"size": "2"}
    wait_for_events(raw, ns, name, {
        ("Error", "Logging",
         "Handler 'created' failed temporarily: not yet: first attempts fail on request"),
        ("Normal", "Logging", "Handler 'created' succeeded."),
    })


def test_object_created_before_the_operator_started(operator: Operator, raw: Raw) -> None:
    widget = wait_for(raw, operator, widget_path(operator.namespace, "early"),
                      lambda w: "created" in w.get("status", {}),
                      "the widget kopf found in its initial list was not handled")
    assert widget["metadata"]["finalizers"] == [FINALIZER]
    assert raw.obj(cm_path(operator.namespace, "early-child"))["data"] == {"size": "1"}
