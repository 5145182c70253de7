"""A small kopf operator for the kopf end-to-end test (``e2e/test_kopf.py``).

Run it with ``python -m kopf run --standalone --namespace NS e2e/kopf_operator.py``; it manages
``widgets.e2e.ambient-code.io``:

- create: a child ConfigMap ``<name>-child`` (owned by the widget, ``kopf.adopt``) holding the
  widget's ``spec.size``, and an Event (reason ChildCreated); kopf stores the handler's result
  in ``status.created``. With ``spec.failFirst`` the first attempt fails temporarily (retried
  after a second);
- update of ``spec.size``: the child ConfigMap follows; the result lands in
  ``status["resized/spec.size"]``;
- delete: before kopf removes its finalizer, a ConfigMap ``<name>-tombstone`` records the
  deletion (it is not owned, so it outlives the widget).

This file is loaded by kopf in its own process; the test process never imports it.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
import kubernetes

GROUP, VERSION, PLURAL = "e2e.ambient-code.io", "v1", "widgets"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Short timeouts so that a lost connection shows up quickly instead of hanging the test.
    settings.watching.connect_timeout = 5
    settings.networking.request_timeout = 30
    # kopf 1.45 posts only explicit events (kopf.info & co.) unless told to post log messages
    # too: post them (reason "Logging"), from INFO up, including kopf's own "Handler ...
    # succeeded" messages.
    settings.posting.loggers = True
    settings.posting.level = logging.INFO
    kubernetes.config.load_kube_config()


def _core() -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api()


@kopf.on.create(GROUP, VERSION, PLURAL)
def created(body: kopf.Body, spec: kopf.Spec, name: str, namespace: str | None, retry: int,
            logger: kopf.Logger, **_: Any) -> dict[str, Any]:
    assert namespace, "widgets are namespaced"
    if retry == 0 and spec.get("failFirst"):
        # kopf records the failure in a progress annotation, sleeps, then "touches" the object
        # (an annotation-only patch) to be woken up by the watch for the second attempt.
        raise kopf.TemporaryError("not yet: first attempts fail on request", delay=1)
    child: Any = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": f"{name}-child", "labels": {"e2e/widget": name}},
                  "data": {"size": str(spec.get("size", 0))}}
    kopf.adopt(child)  # ownerReference to the widget, and its namespace
    _core().create_namespaced_config_map(namespace, child)
    logger.info("created the child ConfigMap %s-child", name)
    kopf.info(body, reason="ChildCreated", message=f"ConfigMap {name}-child")
    return {"child": f"{name}-child", "size": spec.get("size", 0)}


@kopf.on.update(GROUP, VERSION, PLURAL, field="spec.size")
def resized(old: Any, new: Any, name: str, namespace: str | None, logger: kopf.Logger,
            **_: Any) -> dict[str, Any]:
    assert namespace, "widgets are namespaced"
    _core().patch_namespaced_config_map(f"{name}-child", namespace,
                                        {"data": {"size": str(new)}})
    logger.info("resized from %s to %s", old, new)
    return {"from": old, "to": new}


@kopf.on.delete(GROUP, VERSION, PLURAL)
def deleted(spec: kopf.Spec, name: str, namespace: str | None, logger: kopf.Logger,
            **_: Any) -> None:
    assert namespace, "widgets are namespaced"
    tombstone: Any = {"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": f"{name}-tombstone"},
                      "data": {"widget": name, "size": str(spec.get("size", 0))}}
    _core().create_namespaced_config_map(namespace, tombstone)
    logger.info("recorded the deletion in %s-tombstone", name)
