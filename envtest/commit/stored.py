"""What a write starts from: the stored object a target names, at the version it is served in."""

from __future__ import annotations

from typing import Any

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.kinds import crds


def current(cluster: Cluster, target: Target) -> dict[str, Any]:
    """The stored object, at the version the request names; 404 when there is none."""
    stored = cluster.store.get(target.rtype.store, (target.namespace, target.name))
    if stored is None:
        raise errors.not_found(target.rtype.plural, target.rtype.group, target.name)
    return crds.served(target.rtype, stored.load())
