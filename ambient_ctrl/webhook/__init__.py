"""Admission (validating, mutating) and CRD conversion webhooks, served by the manager over
HTTPS — controller-runtime's ``pkg/webhook`` and the builder's ``WebhookManagedBy``.

Declare them next to the controllers (:mod:`.registry`)::

    manager.webhook_for(WIDGETS).defaulter(default_widget).validator(validate_widget)
    manager.conversion_for(WIDGETS, HubAndSpoke("v2", to_hub=..., from_hub=...))

The reviews are pure functions on raw JSON (:mod:`.admission`, :mod:`.conversion`, with the
JSON patch of :mod:`.jsonpatch`); :mod:`.server` serves them on every replica;
:mod:`.configuration` renders the Mutating/ValidatingWebhookConfiguration and the CRD's
conversion from the same declarations and writes a ``caBundle`` for development.
"""

from .admission import CONNECT, CREATE, DELETE, UPDATE, Allowed, Denied, current_request
from .configuration import (
    CRDS,
    MUTATING_CONFIGURATIONS,
    VALIDATING_CONFIGURATIONS,
    ServiceReference,
    conversion_patch,
    inject_ca_bundle,
    install,
    render,
)
from .conversion import ConversionError, Converter, HubAndSpoke
from .registry import (
    CONVERT_PATH,
    WebhookBuilder,
    WebhookOptions,
    Webhooks,
    mutate_path,
    validate_path,
)
from .server import WebhookServer, WebhookServerOptions

__all__ = [
    "CONNECT",
    "CONVERT_PATH",
    "CRDS",
    "CREATE",
    "DELETE",
    "MUTATING_CONFIGURATIONS",
    "UPDATE",
    "VALIDATING_CONFIGURATIONS",
    "Allowed",
    "ConversionError",
    "Converter",
    "Denied",
    "HubAndSpoke",
    "ServiceReference",
    "WebhookBuilder",
    "WebhookOptions",
    "WebhookServer",
    "WebhookServerOptions",
    "Webhooks",
    "conversion_patch",
    "current_request",
    "inject_ca_bundle",
    "install",
    "mutate_path",
    "render",
    "validate_path",
]
