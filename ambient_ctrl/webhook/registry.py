"""Declarative webhook registration, next to the builder::

    manager.webhook_for(WIDGETS).defaulter(default_widget).validator(validate_widget)
    manager.conversion_for(WIDGETS, HubAndSpoke("v2", to_hub=..., from_hub=...))

Each kind's admission webhooks are served at kubebuilder's paths — ``/mutate-<group>-<version>-
<kind>`` and ``/validate-<group>-<version>-<kind>``, the group's dots as dashes, the kind in
lower case (``/mutate-example-com-v1-widget``; the core group leaves an empty segment:
``/validate--v1-pod``) — and every CRD's conversions at ``/convert``. The
:class:`WebhookOptions` of each registration are what its entry in the
Mutating/ValidatingWebhookConfiguration says (:mod:`.configuration` renders them), so one
declaration drives both what is served and how the API server is told to call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from informers.resource import Resource

from .admission import CREATE, UPDATE, Defaulter, Handler, Validator, defaulting, validating
from .conversion import Converter

CONVERT_PATH = "/convert"


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    """How the API server calls one webhook (its entry in the configuration)."""

    operations: tuple[str, ...] = (CREATE, UPDATE)
    """Operations sent (kubebuilder's default ``create;update``; add ``DELETE`` to validate
    deletions)."""
    failure_policy: Literal["Fail", "Ignore"] = "Fail"
    """What the API server does when the webhook cannot be reached or errs."""
    side_effects: Literal["None", "NoneOnDryRun"] = "None"
    timeout_seconds: int = 10
    """How long the API server waits for the answer (1 to 30)."""
    match_policy: Literal["Equivalent", "Exact"] = "Equivalent"
    namespace_selector: Mapping[str, Any] | None = None
    """A label selector (``matchLabels``/``matchExpressions``) on the object's namespace."""
    object_selector: Mapping[str, Any] | None = None
    """A label selector on the object (its old labels too, on an update)."""
    reinvocation_policy: Literal["Never", "IfNeeded"] = "Never"
    """Mutating webhooks only: call again after later mutating webhooks changed the object."""

    def __post_init__(self) -> None:
        if not 1 <= self.timeout_seconds <= 30:
            raise ValueError("timeout_seconds must be between 1 and 30 (kube's bounds)")
        unknown = set(self.operations) - {CREATE, UPDATE, "DELETE", "CONNECT", "*"}
        if unknown or not self.operations:
            raise ValueError(f"operations must be some of CREATE, UPDATE, DELETE, CONNECT, *; "
                             f"got {self.operations}")


def _path(prefix: str, resource: Resource) -> str:
    return (f"/{prefix}-{resource.group.replace('.', '-')}-{resource.version}-"
            f"{resource.kind.lower()}")


def mutate_path(resource: Resource) -> str:
    """kubebuilder's path of the kind's mutating webhook."""
    return _path("mutate", resource)


def validate_path(resource: Resource) -> str:
    """kubebuilder's path of the kind's validating webhook."""
    return _path("validate", resource)


@dataclass(frozen=True, slots=True)
class AdmissionHook:
    """One served admission webhook: its kind, path, handler and configuration entry."""

    resource: Resource
    mutating: bool
    path: str
    handler: Handler = field(compare=False)
    options: WebhookOptions

    @property
    def name(self) -> str:
        """The webhook's name in its configuration: kubebuilder's ``m<kind>-<version>`` or
        ``v<kind>-<version>``, then the group (a name must be a qualified domain name)."""
        prefix = "m" if self.mutating else "v"
        group = self.resource.group or "core.k8s.io"
        return f"{prefix}{self.resource.kind.lower()}-{self.resource.version}.{group}"


@dataclass(frozen=True, slots=True)
class ConversionHook:
    """One CRD's converter."""

    resource: Resource
    converter: Converter = field(compare=False)

    @property
    def crd_name(self) -> str:
        """The CustomResourceDefinition's name (``plural.group``)."""
        return self.resource.group_resource


class Webhooks:
    """Every webhook a manager serves: admission webhooks by path, converters by kind."""

    def __init__(self) -> None:
        self.admission: dict[str, AdmissionHook] = {}
        self.conversions: dict[tuple[str, str], ConversionHook] = {}

    def __bool__(self) -> bool:
        return bool(self.admission or self.conversions)

    def add(self, hook: AdmissionHook) -> None:
        if hook.path in self.admission:
            raise ValueError(f"a webhook is registered at {hook.path} already")
        self.admission[hook.path] = hook

    def add_conversion(self, resource: Resource, converter: Converter) -> None:
        if not resource.group:
            raise ValueError("conversion webhooks are for custom resources (a group is needed)")
        key = (resource.group, resource.kind)
        if key in self.conversions:
            raise ValueError(f"a converter for {resource.kind}.{resource.group} is "
                             f"registered already")
        self.conversions[key] = ConversionHook(resource, converter)

    def converters(self) -> dict[tuple[str, str], Converter]:
        return {key: hook.converter for key, hook in self.conversions.items()}


class WebhookBuilder:
    """Declares one kind's admission webhooks (``manager.webhook_for(resource)``)."""

    def __init__(self, webhooks: Webhooks, resource: Resource) -> None:
        self._webhooks = webhooks
        self._resource = resource

    def defaulter(self, fn: Defaulter, options: WebhookOptions = WebhookOptions()
                  ) -> WebhookBuilder:
        """Serve a mutating webhook: ``fn(obj)`` edits the object in place."""
        self._webhooks.add(AdmissionHook(self._resource, True, mutate_path(self._resource),
                                         defaulting(fn), options))
        return self

    def validator(self, fn: Validator, options: WebhookOptions = WebhookOptions()
                  ) -> WebhookBuilder:
        """Serve a validating webhook: ``fn(obj, old)`` refuses with :class:`Denied`."""
        self._webhooks.add(AdmissionHook(self._resource, False, validate_path(self._resource),
                                         validating(fn), options))
        return self
