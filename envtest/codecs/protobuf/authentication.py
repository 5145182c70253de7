"""Protobuf field tables for authentication.k8s.io/v1 TokenRequest (``kubectl create token``).

``kubectl create token`` POSTs the TokenRequest to ``serviceaccounts/{name}/token`` as
protobuf (captured from kubectl 1.37.1: tests/envtest/fixtures/protobuf/tokenrequest*.bin).
Data for :mod:`.tables`, in its table format (field number -> (JSON name, type, flags)):
field numbers from upstream ``k8s.io/api/authentication/v1/generated.proto`` (v0.37), names and
rules from the json struct tags in ``types.go``: ``audiences``, ``expirationSeconds`` and
``boundObjectRef`` have no omitempty, so an empty spec renders them as null, as Go does.
"""

from __future__ import annotations

from typing import Final

KINDS: Final = frozenset({("authentication.k8s.io/v1", "TokenRequest")})

# fmt: off
MESSAGES: Final[dict[str, dict[int, tuple[str, str, str]]]] = {
    "TokenRequest": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("spec", "TokenRequestSpec", "k"),
        3: ("status", "TokenRequestStatus", "k"),
    },
    "TokenRequestSpec": {
        1: ("audiences", "string", "*n"), 4: ("expirationSeconds", "int64", "n"),
        3: ("boundObjectRef", "BoundObjectReference", "n"),
    },
    "BoundObjectReference": {
        1: ("kind", "string", ""), 2: ("apiVersion", "string", ""), 3: ("name", "string", ""),
        4: ("uid", "string", ""),
    },
    "TokenRequestStatus": {
        1: ("token", "string", "k"), 2: ("expirationTimestamp", "Time", "k"),
    },
}
# fmt: on
