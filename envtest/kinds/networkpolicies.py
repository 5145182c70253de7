"""NetworkPolicy (``networking.k8s.io/v1``): defaulting and validation as kube-apiserver does them.

Defaulting (``pkg/apis/networking/v1/defaults.go``), on every write: each port's ``protocol``
becomes ``TCP``; an empty ``policyTypes`` becomes ``["Ingress"]``, plus ``"Egress"`` when the
policy has egress rules. ``spec`` and ``spec.podSelector`` are always present (the Go structs
have no ``omitempty`` there), so an absent selector reads back as ``{}`` (every pod).

Validation (``pkg/apis/networking/validation``), the part clients meet: the pod selector and
every peer selector are label selectors; ``policyTypes`` holds at most Ingress and Egress; a port
has a protocol of TCP, UDP or SCTP, a number in 1-65535 or an IANA name, and an ``endPort`` only
after a numeric ``port``; a peer is a pod selector and/or namespace selector, or an ipBlock
alone, whose ``cidr`` is a CIDR and whose ``except`` entries lie strictly inside it.

Wrong JSON types (a string where a selector goes) are answered here with 422 causes; kube's
decoder would refuse them earlier with a 400. Nothing enforces a policy: there is no network.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from envtest.errors import Cause
from envtest.kinds.objects import label_value_problems, qualified_name_problems

PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICY_TYPES = ("Ingress", "Egress")
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_PORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_CIDR_HELP = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def default(policy: dict[str, Any]) -> None:
    """Fill in what kube-apiserver's defaulting adds, in place (any input shape)."""
    spec = policy.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    if spec.get("podSelector") is None:
        spec["podSelector"] = {}
    for direction in ("ingress", "egress"):
        for rule in _dicts(spec.get(direction)):
            for port in _dicts(rule.get("ports")):
                if port.get("protocol") is None:
                    port["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def validate(policy: Mapping[str, Any]) -> list[Cause]:
    """Causes for an invalid (already defaulted) NetworkPolicy; [] when valid."""
    spec = policy.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "Invalid value: must be an object")]
    causes = selector_causes(spec.get("podSelector"), "spec.podSelector")
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        rules = spec.get(direction)
        if rules is None:
            continue
        if not isinstance(rules, list):
            causes.append(Cause(f"spec.{direction}", "Invalid value: must be a list"))
            continue
        for i, rule in enumerate(rules):
            path = f"spec.{direction}[{i}]"
            if not isinstance(rule, dict):
                causes.append(Cause(path, "Invalid value: must be an object"))
                continue
            for j, port in enumerate(_list(rule.get("ports"), f"{path}.ports", causes)):
                causes += _port_causes(port, f"{path}.ports[{j}]")
            for j, peer in enumerate(_list(rule.get(peers), f"{path}.{peers}", causes)):
                causes += _peer_causes(peer, f"{path}.{peers}[{j}]")
    causes += _policy_type_causes(spec.get("policyTypes"))
    return causes


def selector_causes(selector: Any, path: str) -> list[Cause]:
    """A ``metav1.LabelSelector``'s problems (``ValidateLabelSelector``)."""
    if selector is None:
        return []
    if not isinstance(selector, dict):
        return [Cause(path, "Invalid value: must be an object")]
    causes: list[Cause] = []
    labels = selector.get("matchLabels")
    if labels is not None and not isinstance(labels, dict):
        causes.append(Cause(f"{path}.matchLabels", "Invalid value: must be a map of strings"))
    for key, value in (labels or {}).items() if isinstance(labels, dict) else ():
        causes += [Cause(f"{path}.matchLabels", f'Invalid value: "{key}": {p}')
                   for p in qualified_name_problems(str(key))]
        causes += [Cause(f"{path}.matchLabels", f'Invalid value: "{value}": {p}')
                   for p in label_value_problems(value)]
    for i, requirement in enumerate(_list(selector.get("matchExpressions"),
                                          f"{path}.matchExpressions", causes)):
        causes += _requirement_causes(requirement, f"{path}.matchExpressions[{i}]")
    return causes


def _requirement_causes(requirement: Any, path: str) -> list[Cause]:
    if not isinstance(requirement, dict):
        return [Cause(path, "Invalid value: must be an object")]
    causes = []
    operator, values = requirement.get("operator"), requirement.get("values") or []
    if operator in ("In", "NotIn"):
        if not values:
            causes.append(Cause(f"{path}.values", "Required value: must be specified when "
                                "`operator` is 'In' or 'NotIn'", "FieldValueRequired"))
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            causes.append(Cause(f"{path}.values", "Forbidden: may not be specified when "
                                "`operator` is 'Exists' or 'DoesNotExist'",
                                "FieldValueForbidden"))
    else:
        causes.append(Cause(f"{path}.operator", f'Invalid value: "{operator}": not a valid '
                            "selector operator"))
    key = requirement.get("key")
    causes += [Cause(f"{path}.key", f'Invalid value: "{key}": {p}')
               for p in qualified_name_problems(key if isinstance(key, str) else "")]
    for i, value in enumerate(values if isinstance(values, list) else ()):
        causes += [Cause(f"{path}.values[{i}]", f'Invalid value: "{value}": {p}')
                   for p in label_value_problems(value)]
    return causes


def _port_causes(port: Any, path: str) -> list[Cause]:
    if not isinstance(port, dict):
        return [Cause(path, "Invalid value: must be an object")]
    causes = []
    protocol = port.get("protocol")
    if protocol not in PROTOCOLS:
        causes.append(Cause(f"{path}.protocol", f'Unsupported value: "{protocol}": supported '
                            'values: "TCP", "UDP", "SCTP"', "FieldValueNotSupported"))
    number, end = port.get("port"), port.get("endPort")
    if number is None:
        if end is not None:
            causes.append(Cause(f"{path}.endPort", f"Invalid value: {end}: may not be "
                                "specified when `port` is not specified"))
    elif _is_int(number):
        causes += _port_number_causes(number, f"{path}.port")
        if end is not None:
            if not _is_int(end) or end < number:
                causes.append(Cause(f"{path}.endPort", f"Invalid value: {number}: must be "
                                    "greater than or equal to `port`"))
            causes += _port_number_causes(end, f"{path}.endPort")
    elif isinstance(number, str):
        if end is not None:
            causes.append(Cause(f"{path}.endPort", f"Invalid value: {end}: may not be "
                                "specified when `port` is non-numeric"))
        if len(number) > 15 or not _PORT_NAME.fullmatch(number) or "--" in number \
                or not re.search("[a-z]", number):
            causes.append(Cause(f"{path}.port", f'Invalid value: "{number}": must be a valid '
                                "port name (at most 15 lower case alphanumeric characters or "
                                "'-', with at least one letter)"))
    else:
        causes.append(Cause(f"{path}.port", "Invalid value: must be a port number or name"))
    return causes


def _port_number_causes(number: Any, path: str) -> list[Cause]:
    if _is_int(number) and 0 < number < 65536:
        return []
    return [Cause(path, f"Invalid value: {number}: must be between 1 and 65535, inclusive")]


def _peer_causes(peer: Any, path: str) -> list[Cause]:
    if not isinstance(peer, dict):
        return [Cause(path, "Invalid value: must be an object")]
    causes: list[Cause] = []
    present = [k for k in ("podSelector", "namespaceSelector", "ipBlock")
               if peer.get(k) is not None]
    for key in ("podSelector", "namespaceSelector"):
        causes += selector_causes(peer.get(key), f"{path}.{key}")
    if "ipBlock" in present:
        causes += _ip_block_causes(peer["ipBlock"], f"{path}.ipBlock")
    if not present:
        causes.append(Cause(path, "Required value: must specify a peer", "FieldValueRequired"))
    elif len(present) > 1 and "ipBlock" in present:
        causes.append(Cause(path, "Forbidden: may not specify both ipBlock and another peer",
                            "FieldValueForbidden"))
    return causes


def _ip_block_causes(block: Any, path: str) -> list[Cause]:
    if not isinstance(block, dict):
        return [Cause(path, "Invalid value: must be an object")]
    cidr = block.get("cidr")
    if not cidr:
        return [Cause(f"{path}.cidr", "Required value", "FieldValueRequired")]
    network = _network(cidr)
    if network is None:
        return [Cause(f"{path}.cidr", f'Invalid value: "{cidr}": {_CIDR_HELP}')]
    causes: list[Cause] = []
    for i, text in enumerate(_list(block.get("except"), f"{path}.except", causes)):
        inner = _network(text)
        if inner is None:
            causes.append(Cause(f"{path}.except[{i}]", f'Invalid value: "{text}": {_CIDR_HELP}'))
        elif not _strictly_inside(inner, network):
            causes.append(Cause(f"{path}.except[{i}]", f'Invalid value: "{text}": must be a '
                                "strict subset of `cidr`"))
    return causes


def _strictly_inside(inner: ipaddress.IPv4Network | ipaddress.IPv6Network,
                     outer: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return (inner.version == outer.version and inner.prefixlen > outer.prefixlen
            and inner.network_address in outer)


def _network(text: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The network a CIDR names, host bits allowed (Go's ParseCIDR); None if it is none."""
    if not isinstance(text, str) or "/" not in text:
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _policy_type_causes(types: Any) -> list[Cause]:
    if not isinstance(types, list):
        return [Cause("spec.policyTypes", "Invalid value: must be a list")]
    if len(types) > len(POLICY_TYPES):
        return [Cause("spec.policyTypes", "Invalid value: may not specify more than two "
                      "policyTypes")]
    return [Cause(f"spec.policyTypes[{i}]", f'Unsupported value: "{t}": supported values: '
                  '"Ingress", "Egress"', "FieldValueNotSupported")
            for i, t in enumerate(types) if t not in POLICY_TYPES]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _list(value: Any, path: str, causes: list[Cause]) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        causes.append(Cause(path, "Invalid value: must be a list"))
        return []
    return value
