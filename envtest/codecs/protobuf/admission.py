"""Protobuf field tables for admissionregistration.k8s.io/v1 webhook configurations.

Data for :mod:`.tables`, in its table format (field number -> (JSON name, type, flags)):
field numbers from upstream ``k8s.io/api/admissionregistration/v1/generated.proto``, names
and rules from the json struct tags in ``types.go``.
"""

from __future__ import annotations

from typing import Final

KINDS: Final = frozenset({("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
                       ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration")})

# fmt: off
MESSAGES: Final[dict[str, dict[int, tuple[str, str, str]]]] = {
    "ValidatingWebhookConfiguration": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("webhooks", "ValidatingWebhook", "*"),
    },
    "MutatingWebhookConfiguration": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("webhooks", "MutatingWebhook", "*"),
    },
    "ValidatingWebhook": {
        1: ("name", "string", "k"), 2: ("clientConfig", "WebhookClientConfig", "k"),
        3: ("rules", "RuleWithOperations", "*"), 4: ("failurePolicy", "string", "p"),
        9: ("matchPolicy", "string", "p"), 5: ("namespaceSelector", "LabelSelector", "p"),
        10: ("objectSelector", "LabelSelector", "p"), 6: ("sideEffects", "string", "n"),
        7: ("timeoutSeconds", "int32", "p"), 8: ("admissionReviewVersions", "string", "*n"),
        11: ("matchConditions", "MatchCondition", "*"),
    },
    "MutatingWebhook": {
        1: ("name", "string", "k"), 2: ("clientConfig", "WebhookClientConfig", "k"),
        3: ("rules", "RuleWithOperations", "*"), 4: ("failurePolicy", "string", "p"),
        9: ("matchPolicy", "string", "p"), 5: ("namespaceSelector", "LabelSelector", "p"),
        11: ("objectSelector", "LabelSelector", "p"), 6: ("sideEffects", "string", "n"),
        7: ("timeoutSeconds", "int32", "p"), 8: ("admissionReviewVersions", "string", "*n"),
        10: ("reinvocationPolicy", "string", "p"), 12: ("matchConditions", "MatchCondition", "*"),
    },
    "WebhookClientConfig": {
        3: ("url", "string", "p"), 1: ("service", "ServiceReference", "p"),
        2: ("caBundle", "bytes", ""),
    },
    "RuleWithOperations": {
        1: ("operations", "string", "*"), 2: ("", "Rule", "^"),
    },
    "MatchCondition": {
        1: ("name", "string", "k"), 2: ("expression", "string", "k"),
    },
    "ServiceReference": {
        1: ("namespace", "string", "k"), 2: ("name", "string", "k"), 3: ("path", "string", "p"),
        4: ("port", "int32", "p"),
    },
    "Rule": {
        1: ("apiGroups", "string", "*"), 2: ("apiVersions", "string", "*"),
        3: ("resources", "string", "*"), 4: ("scope", "string", "p"),
    },
}
# fmt: on
