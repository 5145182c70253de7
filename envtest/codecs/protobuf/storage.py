"""Protobuf field tables for storage.k8s.io/v1 StorageClass.

Data for :mod:`.tables`, in its table format (field number -> (JSON name, type, flags)):
field numbers from upstream ``k8s.io/api/storage/v1/generated.proto``, names and rules from the
json struct tags in ``types.go``.
"""

from __future__ import annotations

from typing import Final

KINDS: Final = frozenset({("storage.k8s.io/v1", "StorageClass")})

# fmt: off
MESSAGES: Final[dict[str, dict[int, tuple[str, str, str]]]] = {
    "StorageClass": {
        1: ("metadata", "ObjectMeta", "k"), 2: ("provisioner", "string", "k"),
        3: ("parameters", "string", "%"), 4: ("reclaimPolicy", "string", "p"),
        5: ("mountOptions", "string", "*"), 6: ("allowVolumeExpansion", "bool", "p"),
        7: ("volumeBindingMode", "string", "p"),
        8: ("allowedTopologies", "TopologySelectorTerm", "*"),
    },
}
# fmt: on
