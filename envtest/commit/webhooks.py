"""The admission webhook configuration kinds' lifecycle: each stored or removed configuration
updates the cluster's webhook index (:mod:`envtest.webhooks.index`), which the write path
reads instead of storage. Validation and defaulting stay the built-in strategy's
(:mod:`envtest.kinds.admission`)."""

from __future__ import annotations

from typing import Any

from envtest.cluster import Cluster
from envtest.commit.hooks import BuiltinHooks
from envtest.kinds.registry import ResourceType

MUTATING = "mutatingwebhookconfigurations.admissionregistration.k8s.io"
VALIDATING = "validatingwebhookconfigurations.admissionregistration.k8s.io"


class ConfigurationHooks(BuiltinHooks):
    """A Mutating- or ValidatingWebhookConfiguration: kept in the index as stored."""

    def __init__(self, *, mutating: bool) -> None:
        self.mutating = mutating

    def stored(self, cluster: Cluster, obj: dict[str, Any]) -> None:
        cluster.webhooks.put(obj, mutating=self.mutating)

    def removed(self, cluster: Cluster, rtype: ResourceType, obj: dict[str, Any]) -> None:
        cluster.webhooks.remove(obj["metadata"]["name"], mutating=self.mutating)


HOOKS = {MUTATING: ConfigurationHooks(mutating=True),
         VALIDATING: ConfigurationHooks(mutating=False)}
"""Storage name -> hooks."""
