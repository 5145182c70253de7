"""Protobuf field tables for networking.k8s.io/v1 NetworkPolicy.

No kubectl command sends a NetworkPolicy as protobuf (there is no ``kubectl create
networkpolicy``; ``create -f`` and ``apply`` send JSON), but a Go client may, and
``envtest.schema.fieldvalidation`` reads these tables to know the kind's fields. Data for
:mod:`.tables`, in its table format (field number -> (JSON name, type, flags)): field numbers
from upstream ``k8s.io/api/networking/v1/generated.proto`` (v0.37), names and rules from the
json struct tags in ``types.go``. LabelSelector and IntOrString come from the core/v1 and
meta/v1 tables.
"""

from __future__ import annotations

from typing import Final

KINDS: Final = frozenset({("networking.k8s.io/v1", "NetworkPolicy")})

# fmt: off
MESSAGES: Final[dict[str, dict[int, tuple[str, str, str]]]] = {
    "NetworkPolicy": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "NetworkPolicySpec", "k"),
    },
    "NetworkPolicySpec": {
        1: ("podSelector", "LabelSelector", "k"), 2: ("ingress", "NetworkPolicyIngressRule", "*"),
        3: ("egress", "NetworkPolicyEgressRule", "*"), 4: ("policyTypes", "string", "*"),
    },
    "NetworkPolicyIngressRule": {
        1: ("ports", "NetworkPolicyPort", "*"), 2: ("from", "NetworkPolicyPeer", "*"),
    },
    "NetworkPolicyEgressRule": {
        1: ("ports", "NetworkPolicyPort", "*"), 2: ("to", "NetworkPolicyPeer", "*"),
    },
    "NetworkPolicyPort": {
        1: ("protocol", "string", "p"), 2: ("port", "IntOrString", "p"),
        3: ("endPort", "int32", "p"),
    },
    "NetworkPolicyPeer": {
        1: ("podSelector", "LabelSelector", "p"), 2: ("namespaceSelector", "LabelSelector", "p"),
        3: ("ipBlock", "IPBlock", "p"),
    },
    "IPBlock": {
        1: ("cidr", "string", "k"), 2: ("except", "string", "*"),
    },
}
# fmt: on
