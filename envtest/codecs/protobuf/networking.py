"""Protobuf field tables for networking.k8s.io/v1 NetworkPolicy, Ingress and IngressClass.

``kubectl create ingress`` sends protobuf. No kubectl command sends a NetworkPolicy as protobuf
(there is no ``kubectl create networkpolicy``; ``create -f`` and ``apply`` send JSON), but a Go
client may, and
``envtest.schema.fieldvalidation`` reads these tables to know the kind's fields. Data for
:mod:`.tables`, in its table format (field number -> (JSON name, type, flags)): field numbers
from upstream ``k8s.io/api/networking/v1/generated.proto`` (v0.37), names and rules from the
json struct tags in ``types.go``. LabelSelector and IntOrString come from the core/v1 and
meta/v1 tables.
"""

from __future__ import annotations

from typing import Final

KINDS: Final = frozenset(("networking.k8s.io/v1", kind) for kind in (
    "NetworkPolicy", "Ingress", "IngressClass"))

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
    "Ingress": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "IngressSpec", "k"),
        3: ("status", "IngressStatus", "k"),
    },
    "IngressClass": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "IngressClassSpec", "k"),
    },
    "IngressSpec": {
        4: ("ingressClassName", "string", "p"), 1: ("defaultBackend", "IngressBackend", "p"),
        2: ("tls", "IngressTLS", "*"), 3: ("rules", "IngressRule", "*"),
    },
    "IngressStatus": {
        1: ("loadBalancer", "IngressLoadBalancerStatus", "k"),
    },
    "IngressClassSpec": {
        1: ("controller", "string", ""), 2: ("parameters", "IngressClassParametersReference", "p"),
    },
    "IngressBackend": {
        4: ("service", "IngressServiceBackend", "p"),
        3: ("resource", "TypedLocalObjectReference", "p"),
    },
    "IngressTLS": {
        1: ("hosts", "string", "*"), 2: ("secretName", "string", ""),
    },
    "IngressRule": {
        1: ("host", "string", ""), 2: ("", "IngressRuleValue", "^"),
    },
    "IngressLoadBalancerStatus": {
        1: ("ingress", "IngressLoadBalancerIngress", "*"),
    },
    "IngressClassParametersReference": {
        1: ("apiGroup", "string", "p"), 2: ("kind", "string", "k"), 3: ("name", "string", "k"),
        4: ("scope", "string", "n"), 5: ("namespace", "string", "p"),
    },
    "IngressServiceBackend": {
        1: ("name", "string", "k"), 2: ("port", "ServiceBackendPort", "k"),
    },
    "IngressRuleValue": {
        1: ("http", "HTTPIngressRuleValue", "p"),
    },
    "IngressLoadBalancerIngress": {
        1: ("ip", "string", ""), 2: ("hostname", "string", ""),
        4: ("ports", "IngressPortStatus", "*"),
    },
    "ServiceBackendPort": {
        1: ("name", "string", ""), 2: ("number", "int32", ""),
    },
    "HTTPIngressRuleValue": {
        1: ("paths", "HTTPIngressPath", "*n"),
    },
    "IngressPortStatus": {
        1: ("port", "int32", "k"), 2: ("protocol", "string", "k"), 3: ("error", "string", "p"),
    },
    "HTTPIngressPath": {
        1: ("path", "string", ""), 3: ("pathType", "string", "n"),
        2: ("backend", "IngressBackend", "k"),
    },
}
# fmt: on
