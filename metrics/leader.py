"""Leader election family, as controller-runtime v0.24 exposes it
(``pkg/metrics/leaderelection.go``).

- ``leader_election_master_status{name}`` (gauge): 1 while this process holds the lease
  ``name``, 0 while it is a candidate or backup.

(controller-runtime also declares ``leader_election_slowpath_total`` but never registers it, so
it is not exposed there and not here.)
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from ._family import gauge


class LeaderElectionMetrics:
    """The leader election family on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.master_status = gauge(
            registry, "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates "
            "backup, 1 indicates master. 'name' is the string used to identify the lease. "
            "Please make sure to group by name.", ("name",))

    def set_leader(self, name: str, leading: bool) -> None:
        """Whether this process now holds the lease ``name``."""
        self.master_status.labels(name).set(1.0 if leading else 0.0)
