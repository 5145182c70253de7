"""Admission webhook configurations (admissionregistration.k8s.io/v1) and Ingresses
(networking.k8s.io/v1): stored, defaulted and validated. The write path calls the webhooks
(:mod:`envtest.webhooks`, indexed by :mod:`envtest.commit.webhooks`); no ingress controller
routes anything.

Defaults from kube's ``pkg/apis/admissionregistration/v1/defaults.go``: every webhook
``failurePolicy: Fail``, ``matchPolicy: Equivalent``, empty namespace and object selectors,
``timeoutSeconds: 10``, its service's ``port: 443``, each rule ``scope: "*"``; a mutating one
``reinvocationPolicy: Never``. An IngressClass's parameters default to ``scope: Cluster``;
an Ingress starts with an empty load balancer status.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from envtest.errors import Cause
from envtest.kinds.strategy import Object, Strategy, fresh_status, lookup
from envtest.kinds.workloads import one_of

_WEBHOOK_DEFAULTS = (("failurePolicy", "Fail"), ("matchPolicy", "Equivalent"),
                     ("timeoutSeconds", 10))


def _default_webhooks(obj: Object, *, mutating: bool) -> None:
    for hook in obj.get("webhooks") or ():
        if not isinstance(hook, dict):
            continue
        for key, value in _WEBHOOK_DEFAULTS:
            hook.setdefault(key, value)
        for key in ("namespaceSelector", "objectSelector"):
            hook.setdefault(key, {})
        if mutating:
            hook.setdefault("reinvocationPolicy", "Never")
        service = lookup(hook, "clientConfig.service")
        if isinstance(service, dict):
            service.setdefault("port", 443)
        for rule in hook.get("rules") or ():
            if isinstance(rule, dict):
                rule.setdefault("scope", "*")


def _validate_webhooks(obj: Object) -> list[Cause]:
    causes, names = [], set()
    for i, hook in enumerate(obj.get("webhooks") or ()):
        path = f"webhooks[{i}]"
        if not isinstance(hook, dict):
            causes.append(Cause(path, "Invalid value: must be an object"))
            continue
        name = hook.get("name")
        if not name:
            causes.append(Cause(f"{path}.name", "Required value", "FieldValueRequired"))
        elif name in names:
            causes.append(Cause(f"{path}.name", f'Duplicate value: "{name}"',
                                "FieldValueDuplicate"))
        names.add(name)
        if "sideEffects" not in hook:
            causes.append(Cause(f"{path}.sideEffects", 'Unsupported value: "": supported '
                                'values: "None", "NoneOnDryRun"', "FieldValueNotSupported"))
        else:
            causes += one_of({"h": hook}, "h.sideEffects", ("None", "NoneOnDryRun"))
        if not hook.get("admissionReviewVersions"):
            causes.append(Cause(f"{path}.admissionReviewVersions", "Required value: must "
                                "specify one of v1, v1beta1", "FieldValueRequired"))
        config = hook.get("clientConfig") or {}
        if bool(config.get("url")) == bool(config.get("service")):
            causes.append(Cause(f"{path}.clientConfig", "Required value: exactly one of url "
                                "or service is required", "FieldValueRequired"))
        elif config.get("url") and not str(config["url"]).startswith("https://"):
            causes.append(Cause(f"{path}.clientConfig.url", f'Invalid value: "{config["url"]}"'
                                ": 'https' is the only allowed URL scheme"))
        timeout = hook.get("timeoutSeconds")
        if isinstance(timeout, int) and not 1 <= timeout <= 30:
            causes.append(Cause(f"{path}.timeoutSeconds", f"Invalid value: {timeout}: the "
                                "timeout value must be between 1 and 30 seconds"))
        causes += [Cause(c.field.replace("h.", f"{path}.", 1), c.message, c.reason)
                   for c in one_of({"h": hook}, "h.failurePolicy", ("Ignore", "Fail"))]
    return causes


def _default_ingress_class(obj: Object) -> None:
    parameters = lookup(obj, "spec.parameters")
    if isinstance(parameters, dict):
        parameters.setdefault("scope", "Cluster")


def _validate_ingress(obj: Object) -> list[Cause]:
    causes = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "Required value", "FieldValueRequired")]
    if not spec.get("defaultBackend") and not spec.get("rules"):
        causes.append(Cause("spec", "Invalid value: either `defaultBackend` or `rules` must be "
                            "specified"))
    for i, rule in enumerate(spec.get("rules") or ()):
        for j, path in enumerate(lookup(rule, "http.paths") or ()):
            where = f"spec.rules[{i}].http.paths[{j}]"
            kind = path.get("pathType") if isinstance(path, dict) else None
            if kind is None:
                causes.append(Cause(f"{where}.pathType", "Required value: pathType must be "
                                    "specified", "FieldValueRequired"))
            elif kind not in ("Exact", "Prefix", "ImplementationSpecific"):
                causes.append(Cause(f"{where}.pathType", f'Unsupported value: "{kind}": '
                                    'supported values: "Exact", "ImplementationSpecific", '
                                    '"Prefix"', "FieldValueNotSupported"))
    return causes


STRATEGIES: Mapping[str, Strategy] = MappingProxyType({
    "validatingwebhookconfigurations.admissionregistration.k8s.io": Strategy(
        lambda obj: _default_webhooks(obj, mutating=False), validate=_validate_webhooks),
    "mutatingwebhookconfigurations.admissionregistration.k8s.io": Strategy(
        lambda obj: _default_webhooks(obj, mutating=True), validate=_validate_webhooks),
    "ingresses.networking.k8s.io": Strategy(prepare_create=fresh_status(loadBalancer={}),
                                            validate=_validate_ingress),
    "ingressclasses.networking.k8s.io": Strategy(_default_ingress_class),
})
"""group-resource -> strategy."""
