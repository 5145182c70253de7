"""A KubeVirt for the local API server: VirtualMachines become VMIs and virt-launcher pods.

On start it installs the ``kubevirt.io/v1`` VirtualMachine and VirtualMachineInstance CRDs (as
virt-operator would), then plays virt-controller and virt-handler:

* a VM whose run strategy is ``Always``, ``Once`` or ``RerunOnFailure`` (or the deprecated
  ``running: true``) gets a VMI of its name — the template's spec and labels, a controller
  reference to the VM — and the VMI a ``virt-launcher-<name>-xxxxx`` pod (one non-root
  ``compute`` container, labels ``kubevirt.io=virt-launcher``, ``vm.kubevirt.io/name``,
  ``kubevirt.io/created-by=<vmi uid>``), owned by the VMI;
* the VMI goes Pending → Scheduling → Scheduled → Running, Ready once the launcher pod is
  (:mod:`.kubevirt_vmi`); the VM's ``printableStatus``, ``ready``, ``created`` and conditions
  follow (:mod:`.kubevirt_vm`);
* ``Halted`` (and, here, ``Manual``) deletes the VMI — its pod goes with it — and the VM shows
  Stopping, then Stopped. A failed instance is replaced after a doubling back-off (starting at
  ``restart_backoff`` seconds) under Always/RerunOnFailure, showing CrashLoopBackOff meanwhile;
  a finished one is replaced under Always only. A finished VMI's launcher pod is deleted.

The launcher pod's life belongs to a kubelet: with the kubelet simulator running, the VMI follows
the pod (scheduled, pulled, running, ready); without one, timers stand in. ``kubelet=None``
finds out from the first launcher pod: if nothing schedules it within ``kubelet_grace`` seconds,
there is no kubelet. Scenario hooks (the VM annotation ``envtest.ambient-code.io/scenario``,
grammar in :mod:`.scenario`) act out image pull errors, unschedulable pods, readiness that never
comes, guest crashes and shutdowns and DataVolume errors.

When the server runs its garbage collector, deleting a VM removes its VMI and pod through owner
references, as in a cluster; without one, the simulator deletes them itself.
"""

from __future__ import annotations

import datetime as _dt
import random
from collections.abc import Hashable
from typing import Any

from envtest.cluster import Cluster
from envtest.kinds.registry import ResourceType
from envtest.simulators import client, kubevirt_crds, kubevirt_vm, kubevirt_vmi
from envtest.simulators.kubevirt_vmi import FINAL, Situation, Timing
from envtest.simulators.loop import SyncQueue, Timers, guarded, log
from envtest.simulators.scenario import VMScenario, parse_vm, scenario_of
from envtest.storage.store import Event
from foundation.clock import rfc3339

VM_STORE = f"{kubevirt_crds.VM_PLURAL}.{kubevirt_crds.GROUP}"
VMI_STORE = f"{kubevirt_crds.VMI_PLURAL}.{kubevirt_crds.GROUP}"
POD_STORE = "pods"
CREATED_BY = "kubevirt.io/created-by"


class _VMIMemory:
    """What the simulator remembers of one VMI (by UID)."""

    __slots__ = ("ip", "mac", "phase", "pod_seen", "since", "stopping")

    def __init__(self, *, now: float, ip: str, mac: str) -> None:
        self.phase = ""
        self.since = now
        self.pod_seen: float | None = None
        self.stopping: float | None = None
        self.ip = ip
        self.mac = mac


class KubeVirtSimulator:
    """virt-operator's CRDs, virt-controller and virt-handler for the simulated node.

    Delays are seconds (see :class:`.kubevirt_vmi.Timing`); ``stop_delay`` is a deleted VMI's
    guest shutdown, ``restart_backoff`` the first wait before replacing a failed instance.
    ``kubelet`` says whether a kubelet drives launcher pods (None: find out, waiting at most
    ``kubelet_grace`` for the first pod to be scheduled). ``seed`` makes MAC addresses
    reproducible.
    """

    name = "kubevirt"

    def __init__(self, *, node_name: str = "envtest-node", schedule_delay: float = 0.1,
                 boot_delay: float = 0.2, ready_delay: float = 0.3, pull_backoff: float = 0.5,
                 stop_delay: float = 0.2, restart_backoff: float = 1.0,
                 kubelet: bool | None = None,
                 kubelet_grace: float = 0.5, retry_delay: float = 1.0, seed: int = 0) -> None:
        self.node_name = node_name
        self.timing = Timing(schedule_delay, boot_delay, ready_delay, pull_backoff)
        self.stop_delay = stop_delay
        self.restart_backoff = restart_backoff
        self.kubelet_grace = kubelet_grace
        self.retry_delay = retry_delay
        self._kubelet = kubelet
        self._random = random.Random(seed)
        self._addresses = 0
        self._vms: dict[str, kubevirt_vm.VMMemory] = {}
        self._vmis: dict[str, _VMIMemory] = {}
        self._launchers: dict[str, tuple[str, str]] = {}
        """VMI UID → (namespace, name) of its launcher pod."""
        self._cluster: Cluster | None = None
        self._timers: Timers | None = None
        self._queue: SyncQueue | None = None
        self._gc = False

    # lifecycle ---------------------------------------------------------------------------------
    def start(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._timers = Timers(cluster.loop)
        self._queue = SyncQueue(cluster.loop, self._sync)
        self._gc = bool(getattr(cluster.options, "garbage_collection", False))
        self._install_crds()
        for store in (VM_STORE, VMI_STORE, POD_STORE):
            cluster.store.subscribe(store, self)
        for store in (POD_STORE, VMI_STORE, VM_STORE):
            for (namespace, _), stored in list(cluster.store.items(store)):
                self._route(Event(stored.rv, store, "ADDED", namespace, stored))

    def stop(self) -> None:
        if self._cluster is not None:
            for store in (VM_STORE, VMI_STORE, POD_STORE):
                self._cluster.store.unsubscribe(store, self)
        if self._queue is not None:
            self._queue.close()
        if self._timers is not None:
            self._timers.cancel_all()
        self._vms.clear()
        self._vmis.clear()
        self._launchers.clear()

    def _install_crds(self) -> None:
        assert self._cluster is not None
        crd_type = self._cluster.kinds.lookup("apiextensions.k8s.io", "v1",
                                              "customresourcedefinitions")
        assert crd_type is not None
        for crd in kubevirt_crds.definitions():
            if self._cluster.store.get(crd_type.store, ("", crd["metadata"]["name"])) is None:
                client.create(self._cluster, crd_type, "", crd)

    # events ------------------------------------------------------------------------------------
    def offer(self, event: Event) -> None:
        """Turn an event into keys to sync (on the next loop turn — never a write from here)."""
        guarded("route event", self._route, event)

    def _route(self, event: Event) -> None:
        assert self._queue is not None
        stored, namespace = event.new, event.namespace
        name = stored.fields.get("metadata.name", "")
        if event.store == POD_STORE:
            if stored.labels.get("kubevirt.io") != "virt-launcher":
                return
            vmi_uid = stored.labels.get(CREATED_BY, "")
            if event.type == "DELETED":
                if self._launchers.get(vmi_uid) == (namespace, name):
                    del self._launchers[vmi_uid]
            elif vmi_uid and not stored.deleting:
                self._launchers[vmi_uid] = (namespace, name)
            self._queue.add(("vmi", namespace, stored.labels.get("vm.kubevirt.io/name", "")))
        elif event.type == "DELETED":
            kind = "vm-gone" if event.store == VM_STORE else "vmi-gone"
            self._queue.add((kind, namespace, name, stored.uid))
            if event.store == VMI_STORE:
                self._queue.add(("vm", namespace, name))
        else:
            self._queue.add(("vm" if event.store == VM_STORE else "vmi", namespace, name))
            if event.store == VMI_STORE:
                self._queue.add(("vm", namespace, name))

    def _sync(self, key: tuple[str, ...]) -> None:
        kind = key[0]
        if kind == "vm":
            self._sync_vm(key[1], key[2])
        elif kind == "vmi":
            self._sync_vmi(key[1], key[2])
        elif kind == "vm-gone":
            self._vm_gone(key[1], key[2], key[3])
        elif kind == "vmi-gone":
            self._vmi_gone(key[3])

    def _wake(self, key: Hashable, delay: float | None) -> None:
        assert self._timers is not None and self._queue is not None
        if delay is None:
            self._timers.cancel(key)
        else:
            self._timers.replace(key, delay, self._queue.add, key)

    # types -------------------------------------------------------------------------------------
    def _type(self, plural: str) -> ResourceType | None:
        assert self._cluster is not None
        if plural == "pods":
            return self._cluster.kinds.lookup("", "v1", "pods")
        return self._cluster.kinds.lookup(kubevirt_crds.GROUP, kubevirt_crds.VERSION, plural)

    # the VM controller -------------------------------------------------------------------------
    def _sync_vm(self, namespace: str, name: str) -> None:
        """Start or stop the VM's instance as its run strategy says; then report its status."""
        assert self._cluster is not None
        vm_type, vmi_type = self._type(kubevirt_crds.VM_PLURAL), self._type(
            kubevirt_crds.VMI_PLURAL)
        vm = client.get(self._cluster, vm_type, namespace, name) if vm_type else None
        if vm is None or vm_type is None or vmi_type is None:
            return
        memory = self._vms.setdefault(vm["metadata"]["uid"], kubevirt_vm.VMMemory())
        strategy = kubevirt_vm.run_strategy(vm)
        vmi = client.get(self._cluster, vmi_type, namespace, name)
        ours = vmi is None or kubevirt_vm.controlled_by(vmi, vm["metadata"]["uid"])
        wake = self._drive_vm(vm, vmi, memory, strategy, vmi_type) if ours else None
        vmi = client.get(self._cluster, vmi_type, namespace, name) if ours else None
        deleting = bool(vm["metadata"].get("deletionTimestamp"))
        runs = strategy in kubevirt_vm.RUNNING_STRATEGIES and not deleting
        scenario = scenario_of(vm, parse_vm)
        status = kubevirt_vm.vm_status(
            vm, vmi, memory, strategy=strategy, now=self._cluster.now(),
            start_expected=runs and not memory.done and memory.retry_at <= self._monotonic(),
            datavolume_error=runs and scenario is not None and scenario.kind == "datavolume-error")
        if client.update_status(self._cluster, vm_type, vm, status) == "failed":
            wake = self.retry_delay
        self._wake(("vm", namespace, name), wake)

    def _drive_vm(self, vm: dict[str, Any], vmi: dict[str, Any] | None,
                  memory: kubevirt_vm.VMMemory, strategy: str,
                  vmi_type: ResourceType) -> float | None:
        """Create or delete the instance; seconds until a back-off ends (or None)."""
        assert self._cluster is not None
        meta = vm["metadata"]
        if meta.get("deletionTimestamp") or strategy not in kubevirt_vm.RUNNING_STRATEGIES:
            memory.failures, memory.retry_at, memory.done = 0, 0.0, False
            if vmi is not None and not vmi["metadata"].get("deletionTimestamp"):
                client.delete(self._cluster, vmi_type, meta["namespace"], meta["name"],
                              vmi["metadata"]["uid"])
            return None
        if vmi is not None:
            phase = (vmi.get("status") or {}).get("phase", "")
            if phase == "Failed" and strategy in ("Always", "RerunOnFailure"):
                self._count_failure(memory, vmi["metadata"]["uid"])
            elif phase == "Succeeded" and strategy == "Always":
                memory.failures = 0
            elif phase in FINAL:
                memory.done = True
            if phase in FINAL and not memory.done:  # make way for the next instance
                client.delete(self._cluster, vmi_type, meta["namespace"], meta["name"],
                              vmi["metadata"]["uid"])
            return None
        if memory.done:
            return None
        if memory.retry_at > self._monotonic():
            return memory.retry_at - self._monotonic()
        if client.create(self._cluster, vmi_type, meta["namespace"],
                         kubevirt_vm.vmi_manifest(vm)) is None:
            return self.retry_delay
        memory.done = strategy == "Once"
        return None

    def _count_failure(self, memory: kubevirt_vm.VMMemory, vmi_uid: str) -> None:
        """One more failed instance: the next waits twice as long (CrashLoopBackOff)."""
        assert self._cluster is not None
        if memory.last_failed_uid == vmi_uid:
            return
        memory.failures += 1
        memory.last_failed_uid = vmi_uid
        delay = min(self.restart_backoff * 2 ** (memory.failures - 1), self.restart_backoff * 30)
        memory.retry_at = self._monotonic() + delay
        memory.retry_at_wall = rfc3339(self._cluster.clock.now() + _dt.timedelta(seconds=delay))

    def _vm_gone(self, namespace: str, name: str, uid: str) -> None:
        """A deleted VM's instance goes too (the garbage collector's job when there is one)."""
        assert self._cluster is not None
        self._vms.pop(uid, None)
        vmi_type = self._type(kubevirt_crds.VMI_PLURAL)
        if self._gc or vmi_type is None:
            return
        vmi = client.get(self._cluster, vmi_type, namespace, name)
        if vmi is not None and kubevirt_vm.controlled_by(vmi, uid):
            client.delete(self._cluster, vmi_type, namespace, name, vmi["metadata"]["uid"])

    def _monotonic(self) -> float:
        assert self._cluster is not None
        return self._cluster.clock.monotonic()

    # the VMI controller and virt-handler -------------------------------------------------------
    def _sync_vmi(self, namespace: str, name: str) -> None:
        """Give the VMI its launcher pod, take it one phase further, report its status."""
        assert self._cluster is not None
        vmi_type, pod_type = self._type(kubevirt_crds.VMI_PLURAL), self._type("pods")
        vmi = client.get(self._cluster, vmi_type, namespace, name) if vmi_type else None
        if vmi is None or vmi_type is None or pod_type is None:
            return
        meta, now = vmi["metadata"], self._monotonic()
        memory = self._vmi_memory(meta["uid"], now)
        phase = (vmi.get("status") or {}).get("phase", "")
        if memory.phase != phase:
            memory.phase, memory.since = phase, now
        pod = self._launcher(pod_type, meta["uid"])
        if meta.get("deletionTimestamp"):
            self._wake(("vmi", namespace, name), self._stop(vmi, pod, memory, vmi_type, pod_type))
            return
        if pod is not None and phase in FINAL:  # the guest is gone: so goes its pod
            client.delete(self._cluster, pod_type, namespace, pod["metadata"]["name"])
            pod = self._launcher(pod_type, meta["uid"])
        scenario = scenario_of(vmi, parse_vm)
        if pod is None and phase in ("", "Pending") and not (
                scenario is not None and scenario.kind == "datavolume-error"):
            # The pod is seen from the next sync on: the VMI is Pending first, as in KubeVirt.
            if self._create_launcher(vmi, pod_type, scenario) is None:
                self._wake(("vmi", namespace, name), self.retry_delay)
                return
        elif pod is not None and memory.pod_seen is None:
            memory.pod_seen = now
        self._wake(("vmi", namespace, name),
                   self._report_vmi(vmi, pod, memory, scenario, vmi_type, now))

    def _report_vmi(self, vmi: dict[str, Any], pod: dict[str, Any] | None, memory: _VMIMemory,
                    scenario: VMScenario | None, vmi_type: ResourceType,
                    now: float) -> float | None:
        """Write the VMI's next status; seconds until time alone changes it (or None)."""
        assert self._cluster is not None
        follow = self._follow(pod, memory, now)
        status, wake = kubevirt_vmi.vmi_status(vmi, pod, Situation(
            elapsed=now - memory.since, follow=follow, scenario=scenario, node=self.node_name,
            ip=memory.ip, mac=memory.mac, now=self._cluster.now()), self.timing)
        outcome = client.update_status(self._cluster, vmi_type, vmi, status)
        if outcome == "failed":
            return self.retry_delay
        if status["phase"] != memory.phase:
            memory.phase, memory.since = status["phase"], now
        if follow is None and memory.pod_seen is not None:
            grace = self.kubelet_grace - (now - memory.pod_seen)
            wake = grace if wake is None else min(wake, grace)
        return wake

    def _follow(self, pod: dict[str, Any] | None, memory: _VMIMemory, now: float) -> bool | None:
        """Whether a kubelet drives launcher pods; decided once, from the first pod seen."""
        if self._kubelet is not None or pod is None:
            return self._kubelet
        if (pod.get("spec") or {}).get("nodeName") or (pod.get("status") or {}).get(
                "conditions"):
            self._kubelet = True
        elif memory.pod_seen is not None and now - memory.pod_seen >= self.kubelet_grace:
            log.info("no kubelet drives virt-launcher pods: timers stand in",
                     extra={"simulator": self.name})
            self._kubelet = False
        return self._kubelet

    def _stop(self, vmi: dict[str, Any], pod: dict[str, Any] | None, memory: _VMIMemory,
              vmi_type: ResourceType, pod_type: ResourceType) -> float | None:
        """A deleted VMI: its pod goes; once the guest had ``stop_delay`` seconds to shut down,
        the VM controller's finalizer is removed and the VMI goes."""
        assert self._cluster is not None
        meta = vmi["metadata"]
        if pod is not None:
            client.delete(self._cluster, pod_type, meta["namespace"], pod["metadata"]["name"])
        if memory.stopping is None:
            memory.stopping = self._monotonic()
        left = memory.stopping + self.stop_delay - self._monotonic()
        if left > 0 and memory.phase not in FINAL:
            return left
        outcome = client.remove_finalizer(self._cluster, vmi_type, vmi,
                                          kubevirt_vm.VMI_FINALIZER)
        return self.retry_delay if outcome == "failed" else None

    def _create_launcher(self, vmi: dict[str, Any], pod_type: ResourceType,
                         scenario: VMScenario | None) -> dict[str, Any] | None:
        assert self._cluster is not None
        manifest = kubevirt_vmi.launcher_pod(
            vmi, scenario=scenario.pod_scenario if scenario else "")
        return client.create(self._cluster, pod_type, vmi["metadata"]["namespace"], manifest)

    def _launcher(self, pod_type: ResourceType, vmi_uid: str) -> dict[str, Any] | None:
        assert self._cluster is not None
        where = self._launchers.get(vmi_uid)
        return client.get(self._cluster, pod_type, *where) if where else None

    def _vmi_memory(self, uid: str, now: float) -> _VMIMemory:
        memory = self._vmis.get(uid)
        if memory is None:
            n = self._addresses = self._addresses + 1
            mac = ":".join(f"{b:02x}" for b in (0x52, 0x54, 0x00, *self._random.randbytes(3)))
            memory = self._vmis[uid] = _VMIMemory(
                now=now, ip=f"10.244.{128 + (n // 254) % 128}.{n % 254 + 1}", mac=mac)
        return memory

    def _vmi_gone(self, uid: str) -> None:
        """A deleted VMI's pod goes too (the garbage collector's job when there is one)."""
        assert self._cluster is not None
        self._vmis.pop(uid, None)
        pod_type = self._type("pods")
        where = self._launchers.get(uid)
        if not self._gc and where is not None and pod_type is not None:
            client.delete(self._cluster, pod_type, *where)
