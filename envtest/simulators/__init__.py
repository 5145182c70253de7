"""Cluster simulators: the parts of a cluster that make its objects move, inside the server.

The local API server stores objects; nothing runs them. These simulators play the missing
components on the server's event loop, writing through the same commit path as requests:

* ``kubelet`` (:class:`KubeletSimulator`) — scheduler and kubelet of one node: pods are bound,
  started and made ready, with the status shapes a real kubelet writes;
* ``kubevirt`` (:class:`KubeVirtSimulator`) — KubeVirt's CRDs, virt-controller and virt-handler:
  VirtualMachines become VMIs and virt-launcher pods.

Both act out failures on request through the ``envtest.ambient-code.io/scenario`` annotation
(:mod:`.scenario`). A container that sets ``ENVTEST_RUNNER_STANDIN`` gets a runner stand-in,
an HTTP server answering as upstream's runner that the Service proxy reaches
(:mod:`.standin`). Pass instances to ``LocalAPIServer(simulators=[...])``, or name them with
``ambient-ctrl apiserver --simulate kubelet,kubevirt`` (:data:`SIMULATORS`).
"""

from collections.abc import Callable, Mapping
from types import MappingProxyType

from envtest.server import Simulator
from envtest.simulators.kubelet import KubeletSimulator
from envtest.simulators.kubevirt import KubeVirtSimulator
from envtest.simulators.scenario import SCENARIO_ANNOTATION

SIMULATORS: Mapping[str, Callable[..., Simulator]] = MappingProxyType({
    KubeletSimulator.name: KubeletSimulator,
    KubeVirtSimulator.name: KubeVirtSimulator,
})
"""Simulator factories by name (what ``--simulate`` accepts)."""

__all__ = ["SCENARIO_ANNOTATION", "SIMULATORS", "KubeVirtSimulator", "KubeletSimulator"]
