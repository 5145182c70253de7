"""What the API server must be told to call the webhooks, rendered from the registrations,
and the development helpers that write it into a cluster.

* :func:`render` — the ``MutatingWebhookConfiguration`` and ``ValidatingWebhookConfiguration``
  (``admissionregistration.k8s.io/v1``) of a :class:`~.registry.Webhooks`, each webhook with
  its rules, failurePolicy, sideEffects, timeoutSeconds, matchPolicy, selectors and
  ``admissionReviewVersions: [v1]``, pointing at a :class:`ServiceReference` (in a cluster)
  or a URL (a manager on a laptop), with a ``caBundle`` when one is given;
* :func:`conversion_patch` — the merge patch of a CRD's ``spec.conversion`` that sends its
  conversions to ``/convert``;
* :func:`install` — development mode: create or update both configurations and patch every
  registered CRD, so a cluster calls a manager whose CA it could not otherwise trust;
* :func:`inject_ca_bundle` — what cert-manager's CA injector does: write a CA into the
  ``caBundle`` of every webhook of existing configurations and of CRDs' conversion, touching
  nothing else (and writing nothing when it is there already).

In a cluster, ``config/webhook`` holds the same objects as manifests, and cert-manager injects
the CA.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from informers.errors import NotFound
from informers.resource import Resource
from informers.rest import ResourceClient, Transport

from .registry import CONVERT_PATH, AdmissionHook, Webhooks

log = logging.getLogger(__name__)

MUTATING_CONFIGURATIONS = Resource("admissionregistration.k8s.io", "v1",
                                   "mutatingwebhookconfigurations",
                                   "MutatingWebhookConfiguration", namespaced=False)
VALIDATING_CONFIGURATIONS = Resource("admissionregistration.k8s.io", "v1",
                                     "validatingwebhookconfigurations",
                                     "ValidatingWebhookConfiguration", namespaced=False)
CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                "CustomResourceDefinition", namespaced=False)


@dataclass(frozen=True, slots=True)
class ServiceReference:
    """The webhook Service in the cluster (``config/webhook/service.yaml``)."""

    name: str
    namespace: str
    port: int = 443


Target = ServiceReference | str
"""Where the API server calls: a Service, or the base ``https://host:port`` URL."""


def client_config(target: Target, path: str, ca_bundle: bytes | None = None
                  ) -> dict[str, Any]:
    """A webhook's ``clientConfig`` for ``path`` on ``target``."""
    config: dict[str, Any]
    if isinstance(target, ServiceReference):
        config = {"service": {"name": target.name, "namespace": target.namespace,
                              "path": path, "port": target.port}}
    else:
        if not target.startswith("https://"):
            raise ValueError(f"a webhook URL must be https://, got {target!r}")
        config = {"url": target.rstrip("/") + path}
    if ca_bundle:
        config["caBundle"] = base64.b64encode(ca_bundle).decode()
    return config


def _entry(hook: AdmissionHook, target: Target, ca_bundle: bytes | None) -> dict[str, Any]:
    opts = hook.options
    entry: dict[str, Any] = {
        "name": hook.name,
        "admissionReviewVersions": ["v1"],
        "clientConfig": client_config(target, hook.path, ca_bundle),
        "failurePolicy": opts.failure_policy,
        "matchPolicy": opts.match_policy,
        # kube defaults both to {} (everything): written out, a stored configuration reads
        # back as rendered.
        "namespaceSelector": dict(opts.namespace_selector or {}),
        "objectSelector": dict(opts.object_selector or {}),
        "rules": [{"apiGroups": [hook.resource.group],
                   "apiVersions": [hook.resource.version],
                   "operations": list(opts.operations),
                   "resources": [hook.resource.plural],
                   "scope": "Namespaced" if hook.resource.namespaced else "Cluster"}],
        "sideEffects": opts.side_effects,
        "timeoutSeconds": opts.timeout_seconds,
    }
    if hook.mutating:
        entry["reinvocationPolicy"] = opts.reinvocation_policy
    return entry


def configuration_names(name: str) -> tuple[str, str]:
    """``(mutating, validating)`` configuration names for a project ``name``."""
    return f"{name}-mutating-webhook-configuration", f"{name}-validating-webhook-configuration"


def render(webhooks: Webhooks, target: Target, *, name: str = "ambient-ctrl",
           ca_bundle: bytes | None = None) -> list[dict[str, Any]]:
    """The configurations (mutating first) for the registered admission webhooks; one kind of
    configuration is left out when no webhook of its kind is registered."""
    objects = []
    for mutating, resource, config_name in ((True, MUTATING_CONFIGURATIONS,
                                             configuration_names(name)[0]),
                                            (False, VALIDATING_CONFIGURATIONS,
                                             configuration_names(name)[1])):
        hooks = [hook for _, hook in sorted(webhooks.admission.items())
                 if hook.mutating == mutating]
        if hooks:
            objects.append({"apiVersion": resource.api_version, "kind": resource.kind,
                            "metadata": {"name": config_name},
                            "webhooks": [_entry(hook, target, ca_bundle) for hook in hooks]})
    return objects


def conversion_patch(target: Target, ca_bundle: bytes | None = None) -> dict[str, Any]:
    """The merge patch turning a CRD's conversion to this manager's ``/convert``."""
    return {"spec": {"conversion": {"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1"],
        "clientConfig": client_config(target, CONVERT_PATH, ca_bundle)}}}}


def install(transport: Transport, webhooks: Webhooks, target: Target, *,
            ca_bundle: bytes | None, name: str = "ambient-ctrl") -> None:
    """Create or update the configurations and patch each registered CRD's conversion."""
    for obj in render(webhooks, target, name=name, ca_bundle=ca_bundle):
        resource = (MUTATING_CONFIGURATIONS if obj["kind"] == MUTATING_CONFIGURATIONS.kind
                    else VALIDATING_CONFIGURATIONS)
        client = ResourceClient(transport, resource)
        try:
            current = client.get(obj["metadata"]["name"])
        except NotFound:
            client.create(obj)
            log.info("webhook configuration created", extra={"name": obj["metadata"]["name"]})
            continue
        obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        client.update(obj)
        log.info("webhook configuration updated", extra={"name": obj["metadata"]["name"]})
    crds = ResourceClient(transport, CRDS)
    for hook in webhooks.conversions.values():
        crds.patch(hook.crd_name, conversion_patch(target, ca_bundle))
        log.info("CRD conversion set to the webhook", extra={"crd": hook.crd_name})


def inject_ca_bundle(transport: Transport, ca_bundle: bytes, *,
                     mutating: Iterable[str] = (), validating: Iterable[str] = (),
                     crds: Iterable[str] = ()) -> int:
    """Write ``ca_bundle`` into every webhook of the named configurations and into the
    conversion of the named CRDs (which must convert by webhook already); returns how many
    objects were written (those that had it already are left alone)."""
    encoded = base64.b64encode(ca_bundle).decode()
    written = 0
    for resource, names in ((MUTATING_CONFIGURATIONS, mutating),
                            (VALIDATING_CONFIGURATIONS, validating)):
        client = ResourceClient(transport, resource)
        for config_name in names:
            obj = client.get(config_name)
            configs = [hook.setdefault("clientConfig", {}) for hook in obj.get("webhooks") or []]
            if all(config.get("caBundle") == encoded for config in configs):
                continue
            for config in configs:
                config["caBundle"] = encoded
            client.update(obj)
            written += 1
    crd_client = ResourceClient(transport, CRDS)
    for crd_name in crds:
        crd = crd_client.get(crd_name)
        webhook = ((crd.get("spec") or {}).get("conversion") or {}).get("webhook")
        if not isinstance(webhook, dict):
            raise ValueError(f"CRD {crd_name} does not convert by webhook")
        if (webhook.get("clientConfig") or {}).get("caBundle") == encoded:
            continue
        crd_client.patch(crd_name, {"spec": {"conversion": {"webhook": {
            "clientConfig": {"caBundle": encoded}}}}})
        written += 1
    if written:
        log.info("caBundle injected", extra={"objects": written})
    return written
