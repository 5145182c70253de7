"""A kubelet (and scheduler) for the local API server's single simulated node, which it
registers as a Node object when it starts (:mod:`.node`).

Every pod that is not being deleted and not finished is taken through a real kubelet's life:
after ``schedule_delay`` it is bound to the node (``pods/binding``: ``spec.nodeName`` and
``PodScheduled=True``) and shows ``ContainerCreating``; after ``start_delay`` it is ``Running``
with a unique ``podIP`` (10.244.x.y), ``hostIP``, ``startTime`` and running containers; after
``ready_delay`` more each container passes its readiness and the pod turns ``Ready``. Init
containers run in order and complete at once; a restartable one (``restartPolicy: Always``, a
sidecar) keeps running beside the containers and counts in the pod's readiness. Until the
sandbox is up, containers wait as ``ContainerCreating`` (``PodInitializing`` when the pod has
init containers). Statuses are written through the status subresource, as a kubelet does, and
always have the shapes a real kubelet writes (see :mod:`.podstatus`).

A container whose ``env``/``envFrom`` names a Secret or ConfigMap (or key) that does not exist,
and is not optional, is not created: it waits with ``CreateContainerConfigError`` and the
kubelet's message (``secret "x" not found``, :mod:`.containerenv`), and later init containers
and the containers wait behind it. Such pods are checked again whenever a Secret or ConfigMap
of their namespace changes (only those pods: the kubelet subscribes to both stores), and start
once the reference resolves.

A container that sets ``ENVTEST_RUNNER_STANDIN`` in its ``env`` gets a runner stand-in while it
runs: a small HTTP server on 127.0.0.1 that answers as upstream's runner, registered as the
pod's endpoint for the container's ports so the Service proxy reaches it (:mod:`.standin`). It
stops when the container exits, when the pod is forgotten, and when the simulator stops.

The annotation ``envtest.ambient-code.io/scenario`` makes a pod act out a failure — image pull
errors, crash loops, exits, OOM kills, no fitting node, failing readiness; the grammar is in
:mod:`.scenario`. Restarts follow ``restartPolicy`` with a doubling back-off from ``backoff``
seconds (a kubelet's 10 s, scaled down), capped at 30 times that.

A deleted pod is simply forgotten: this server removes a pod without finalizers at once, where a
real one would wait for the kubelet to confirm its containers stopped.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from envtest.cluster import Cluster
from envtest.kinds.registry import ResourceType
from envtest.simulators import client, containerenv, node, podstatus
from envtest.simulators.loop import Timers, guarded
from envtest.simulators.scenario import PodScenario, parse_pod, scenario_of
from envtest.simulators.standin import StandIns, wants_standin
from envtest.storage.store import Event, Stored

POD_STORE = "pods"
CONFIG_STORES = {"secret": "secrets", "configmap": "configmaps"}
"""The stores of the kinds a container's environment names (:class:`containerenv.Ref`): their
changes may unblock a container waiting on one."""


@dataclass(slots=True)
class _Container:
    """What one container is doing now (its status is rendered from this)."""

    name: str
    image: str
    plan: PodScenario | None
    state: dict[str, Any] = field(default_factory=lambda: podstatus.waiting("ContainerCreating"))
    refs: tuple[containerenv.Ref, ...] = ()
    """The Secrets and ConfigMaps its environment reads."""
    sidecar: bool = False
    """A restartable init container: it keeps running beside the containers."""
    standin: dict[str, Any] | None = None
    """Its spec, when it asks for a runner stand-in (:mod:`.standin`)."""
    last_state: dict[str, Any] = field(default_factory=dict)
    restarts: int = 0
    ready: bool = False
    started: bool = False
    pulled: bool = False
    container_id: str = ""

    @property
    def initialized(self) -> bool:
        """Done as an init container: completed, or (a sidecar) started."""
        done = self.state.get("terminated") or {}
        return self.started if self.sidecar else bool(done) and done.get("exitCode") == 0

    def status(self) -> dict[str, Any]:
        out = {"name": self.name, "state": self.state, "lastState": self.last_state,
               "ready": self.ready, "restartCount": self.restarts,
               "image": podstatus.canonical_image(self.image) if self.pulled else self.image,
               "imageID": podstatus.image_id(self.image) if self.pulled else "",
               "started": self.started}
        if self.container_id:
            out["containerID"] = self.container_id
        return out


@dataclass(slots=True)
class _Pod:
    """The kubelet's record of one pod (by UID)."""

    namespace: str
    name: str
    uid: str
    restart_policy: str
    scenario: PodScenario | None
    containers: list[_Container]
    """Sorted by name, as the kubelet reports them."""
    init_containers: list[_Container]
    """In spec order, as they run and are reported."""
    order: tuple[str, ...] = ()
    """The containers' names in spec order (readiness messages list them so)."""
    start_time: str = ""
    ip: str = ""
    sandbox: bool = False
    initialized: bool = False
    retrying: bool = False
    blocked: bool = False
    """A container waits on a Secret or ConfigMap (``KubeletSimulator._environment_ready``)."""


class KubeletSimulator:
    """The scheduler and kubelet of one node, acting on every pod of the server.

    Delays are seconds: ``schedule_delay`` until a pod is bound, ``start_delay`` from binding
    to Running, ``ready_delay`` from a container's start to its readiness, ``backoff`` the
    first restart (and image pull) back-off, ``retry_delay`` before retrying a refused write.
    ``seed`` makes container IDs reproducible.
    """

    name = "kubelet"

    def __init__(self, *, node_name: str = "envtest-node", schedule_delay: float = 0.05,
                 start_delay: float = 0.2, ready_delay: float = 0.3, backoff: float = 0.5,
                 retry_delay: float = 1.0, seed: int = 0) -> None:
        self.node_name = node_name
        self.schedule_delay = schedule_delay
        self.start_delay = start_delay
        self.ready_delay = ready_delay
        self.backoff = backoff
        self.retry_delay = retry_delay
        self._random = random.Random(seed)
        self._addresses: Iterator[int] = itertools.count(1)
        self._pods: dict[str, _Pod] = {}
        self._blocked: dict[str, set[str]] = {}
        """Pods (by UID) with a container waiting on a Secret or ConfigMap, by namespace."""
        self._kept = client.Kept()
        """The pods as this kubelet's last writes (or reads) stored them: not decoded again
        for the next write unless someone else wrote them meanwhile."""
        self._cluster: Cluster | None = None
        self._timers: Timers | None = None
        self._standins: StandIns | None = None

    # lifecycle ---------------------------------------------------------------------------------
    def start(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._timers = Timers(cluster.loop)
        self._standins = StandIns(loop=cluster.loop, endpoints=cluster.endpoints,
                                  now=lambda: cluster.clock.now().isoformat())
        node.register(cluster, self.node_name)
        cluster.store.subscribe(POD_STORE, self)
        for store in CONFIG_STORES.values():
            cluster.store.subscribe(store, self)
        for _, stored in list(cluster.store.items(POD_STORE)):
            self._admit(stored)

    def stop(self) -> None:
        if self._cluster is not None:
            for store in (POD_STORE, *CONFIG_STORES.values()):
                self._cluster.store.unsubscribe(store, self)
        if self._timers is not None:
            self._timers.cancel_all()
        if self._standins is not None:
            self._standins.stop_all()
        self._pods.clear()
        self._kept = client.Kept()
        self._blocked.clear()

    def offer(self, event: Event) -> None:
        """A pod changed: admit a new one, forget a deleted one; a Secret or ConfigMap
        changed: check again the pods of its namespace that wait on one. Never writes from
        here (the checks run from timers)."""
        if event.store != POD_STORE:
            for uid in self._blocked.get(event.namespace, ()):
                pod = self._pods.get(uid)
                if pod is not None and pod.blocked:
                    self._later(pod, 0.0, self._unblock, pod)
            return
        stored = event.new
        if event.type == "DELETED" or stored.deleting:
            self._forget(stored.uid)
        elif stored.uid not in self._pods and (
                stored.fields.get("status.phase") not in podstatus.TERMINAL):
            guarded("admit pod", self._admit, stored)

    # admission ---------------------------------------------------------------------------------
    @property
    def _pod_type(self) -> ResourceType:
        assert self._cluster is not None
        rtype = self._cluster.kinds.lookup("", "v1", "pods")
        assert rtype is not None
        return rtype

    def _admit(self, stored: Stored) -> None:
        pod = self._kept.take(stored)
        meta, spec = pod["metadata"], pod.get("spec") or {}
        if meta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in (
                podstatus.TERMINAL) or meta.get("uid") in self._pods:
            return
        scenario = scenario_of(pod, parse_pod)
        waiting = "PodInitializing" if spec.get("initContainers") else "ContainerCreating"
        containers = self._containers(spec.get("containers"), scenario, waiting)
        record = _Pod(meta.get("namespace", ""), meta["name"], meta["uid"],
                      spec.get("restartPolicy", "Always"), scenario,
                      sorted(containers, key=lambda c: c.name),  # reported sorted by name
                      self._containers(spec.get("initContainers"), None, waiting),
                      tuple(c.name for c in containers))
        self._pods[record.uid] = record
        self._later(record, self.schedule_delay, self._schedule, record)

    @staticmethod
    def _containers(specs: Any, scenario: PodScenario | None,
                    waiting: str) -> list[_Container]:
        out = []
        for c in specs or ():
            if isinstance(c, dict) and isinstance(c.get("name"), str):
                plan = scenario if scenario and scenario.applies_to(c["name"]) else None
                out.append(_Container(c["name"], str(c.get("image", "")), plan,
                                      podstatus.waiting(waiting), containerenv.refs(c),
                                      c.get("restartPolicy") == "Always",
                                      c if wants_standin(c) else None))
        return out

    def _forget(self, uid: str) -> None:
        self._kept.forget(uid)
        pod = self._pods.pop(uid, None)
        if pod is not None:
            self._unlist(pod)
            if self._timers is not None:
                self._timers.cancel(uid)
            if self._standins is not None:
                self._standins.stop(uid)

    def _later(self, pod: _Pod, delay: float, fn: Any, *args: Any) -> None:
        assert self._timers is not None
        self._timers.later(pod.uid, delay, fn, *args)

    # the life of a pod -------------------------------------------------------------------------
    def _schedule(self, pod: _Pod) -> None:
        """The scheduler's part: bind to the node, or report that no node fits."""
        assert self._cluster is not None
        current = client.find(self._cluster, self._pod_type, pod.namespace, pod.name, pod.uid)
        if current is None:
            self._forget(pod.uid)
            return
        if pod.scenario is not None and pod.scenario.kind == "unschedulable":
            self._publish(pod)
            return
        if not current.fields.get("spec.nodeName"):
            outcome = client.bind(self._cluster, self._pod_type, pod.namespace, pod.name,
                                  pod.uid, self.node_name, kept=self._kept)
            if outcome != "ok":
                self._retry_or_forget(pod, outcome, self._schedule)
                return
        pod.start_time = self._cluster.now()
        self._publish(pod)
        self._later(pod, self.start_delay, self._start, pod)

    def _start(self, pod: _Pod) -> None:
        """The sandbox is up: the pod gets its IP, init containers run, containers start."""
        pod.sandbox = True
        n = next(self._addresses)
        pod.ip = f"10.244.{(n // 254) % 256}.{n % 254 + 1}"
        self._initialize(pod)
        self._publish(pod)

    def _initialize(self, pod: _Pod) -> None:
        """Run the init containers not yet done, in order (a sidecar starts and keeps
        running); then start the containers. Stops at one whose environment cannot be made."""
        assert self._cluster is not None
        for init in pod.init_containers:
            if init.initialized:
                continue
            if not self._environment_ready(pod, init):
                return
            now = self._cluster.now()
            init.pulled, init.container_id = True, self._container_id()
            if init.sidecar:
                init.state, init.started = podstatus.running(now), True
                self._later(pod, self.ready_delay, self._ready, pod, init, init.container_id)
            else:
                init.state = podstatus.terminated(
                    exit_code=0, reason="Completed", started_at=now, finished_at=now,
                    container_id=init.container_id)
        pod.initialized = True
        for container in pod.containers:
            self._launch(pod, container)

    def _environment_ready(self, pod: _Pod, c: _Container) -> bool:
        """Whether ``c``'s Secrets and ConfigMaps resolve; if not, it waits with the
        kubelet's CreateContainerConfigError and the pod is checked again on their changes."""
        if not c.refs:
            return True
        error = containerenv.config_error(c.refs, pod.namespace, self._lookup(pod.namespace))
        if error is None:
            return True
        c.state, c.started, c.ready = podstatus.waiting(containerenv.REASON, error), False, False
        pod.blocked = True
        self._blocked.setdefault(pod.namespace, set()).add(pod.uid)
        return False

    def _lookup(self, namespace: str) -> containerenv.Lookup:
        """Reads the ``data`` of the namespace's Secrets and ConfigMaps."""
        assert self._cluster is not None
        cluster = self._cluster

        def lookup(kind: str, name: str) -> dict[str, Any] | None:
            stored = cluster.store.get(CONFIG_STORES[kind], (namespace, name))
            return None if stored is None else (stored.load().get("data") or {})

        return lookup

    def _unblock(self, pod: _Pod) -> None:
        """A Secret or ConfigMap of the pod's namespace changed: try its waiting containers."""
        if not pod.blocked:
            return
        self._unlist(pod)
        if not pod.initialized:
            self._initialize(pod)
        else:
            for c in pod.containers:
                if (c.state.get("waiting") or {}).get("reason") == containerenv.REASON:
                    self._launch(pod, c)
        self._publish(pod)

    def _unlist(self, pod: _Pod) -> None:
        pod.blocked = False
        waiting = self._blocked.get(pod.namespace)
        if waiting is not None:
            waiting.discard(pod.uid)
            if not waiting:
                del self._blocked[pod.namespace]

    def _launch(self, pod: _Pod, c: _Container) -> None:
        """Pull and start one container (again, after a back-off), arming what follows."""
        assert self._cluster is not None
        plan = c.plan
        if plan is not None and plan.kind == "image-pull-error":
            c.state = podstatus.waiting("ErrImagePull", podstatus.pull_error_message(c.image))
            self._later(pod, self.backoff, self._pull_backoff, pod, c)
            return
        if not self._environment_ready(pod, c):  # the image is pulled first, then this
            return
        c.pulled, c.container_id = True, self._container_id()
        c.state, c.started, c.ready = podstatus.running(self._cluster.now()), True, False
        if c.standin is not None and self._standins is not None:
            self._standins.start(pod.uid, c.standin, self._lookup(pod.namespace))
        if plan is None or plan.kind != "never-ready":
            self._later(pod, self.ready_delay, self._ready, pod, c, c.container_id)
        if plan is not None and plan.kind == "exit":
            self._later(pod, plan.after, self._exit, pod, c, c.container_id)

    def _ready(self, pod: _Pod, c: _Container, container_id: str) -> None:
        if c.container_id == container_id and "running" in c.state:
            c.ready = True
            self._publish(pod)

    def _pull_backoff(self, pod: _Pod, c: _Container) -> None:
        c.state = podstatus.waiting("ImagePullBackOff", podstatus.pull_backoff_message(c.image))
        self._publish(pod)

    def _exit(self, pod: _Pod, c: _Container, container_id: str) -> None:
        """The container's process ends as the scenario says; restart it if the policy does."""
        assert self._cluster is not None and c.plan is not None
        if c.container_id != container_id or "running" not in c.state:
            return
        code = c.plan.exit_code
        c.state = podstatus.terminated(
            exit_code=code, reason=c.plan.reason, started_at=c.state["running"]["startedAt"],
            finished_at=self._cluster.now(), container_id=c.container_id)
        c.ready = c.started = False
        if self._standins is not None:
            self._standins.stop(pod.uid, c.name)
        if pod.restart_policy == "Always" or (pod.restart_policy == "OnFailure" and code):
            self._later(pod, self.backoff / 5, self._back_off, pod, c, container_id)
        self._publish(pod)

    def _back_off(self, pod: _Pod, c: _Container, container_id: str) -> None:
        """CrashLoopBackOff: the last run becomes ``lastState``; the restart waits, doubling."""
        if c.container_id != container_id:
            return
        c.last_state, c.restarts = c.state, c.restarts + 1
        delay = min(self.backoff * 2 ** (c.restarts - 1), self.backoff * 30)
        c.state = podstatus.waiting("CrashLoopBackOff", podstatus.crash_backoff_message(
            delay, c.name, pod=pod.name, namespace=pod.namespace, uid=pod.uid))
        self._later(pod, delay, self._restart, pod, c)
        self._publish(pod)

    def _restart(self, pod: _Pod, c: _Container) -> None:
        self._launch(pod, c)
        self._publish(pod)

    # status ------------------------------------------------------------------------------------
    def _publish(self, pod: _Pod) -> None:
        """Write the pod's status as the record says; forget the pod once it is finished."""
        assert self._cluster is not None
        current = client.get(self._cluster, self._pod_type, pod.namespace, pod.name, pod.uid,
                             kept=self._kept)
        if current is None:
            self._forget(pod.uid)
            return
        status = self._render(pod, current)
        outcome = client.update_status(self._cluster, self._pod_type, current, status,
                                       kept=self._kept)
        if outcome != "ok":
            self._retry_or_forget(pod, outcome, self._publish)
        elif status.get("phase") in podstatus.TERMINAL:
            self._forget(pod.uid)

    def _retry_or_forget(self, pod: _Pod, outcome: client.Outcome, step: Any) -> None:
        if outcome == "gone":
            self._forget(pod.uid)
        elif not pod.retrying:
            pod.retrying = True

            def retry() -> None:
                pod.retrying = False
                step(pod)

            self._later(pod, self.retry_delay, retry)

    def _render(self, pod: _Pod, current: dict[str, Any]) -> dict[str, Any]:
        assert self._cluster is not None
        status = dict(current.get("status") or {})  # keeps what others own (qosClass)
        previous = status.get("conditions") or []
        now = self._cluster.now()
        if pod.scenario is not None and pod.scenario.kind == "unschedulable":
            status.update(phase="Pending",
                          conditions=podstatus.unschedulable(now=now, previous=previous))
            return status
        statuses = [c.status() for c in pod.containers]
        phase = podstatus.phase(statuses, pod.restart_policy) if pod.sandbox else "Pending"
        ready = {c.name for c in pod.containers if c.ready}
        unready = [c.name for c in pod.init_containers if c.sidecar and not c.ready]
        unready += [name for name in pod.order if name not in ready]
        status.update(
            phase=phase, hostIP=podstatus.HOST_IP, hostIPs=[{"ip": podstatus.HOST_IP}],
            startTime=pod.start_time, containerStatuses=statuses,
            conditions=podstatus.conditions(
                pod_phase=phase, sandbox=pod.sandbox, now=now, previous=previous,
                uninitialized=[c.name for c in pod.init_containers if not c.initialized],
                unready=unready))
        if pod.ip:
            status.update(podIP=pod.ip, podIPs=[{"ip": pod.ip}])
        if pod.init_containers:
            status["initContainerStatuses"] = [c.status() for c in pod.init_containers]
        return status

    def _container_id(self) -> str:
        return f"containerd://{self._random.getrandbits(256):064x}"
