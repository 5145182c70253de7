"""Starting a run: the platform Secrets copied in, the runner's token, what the environment
renders (the workload first), the run's Service and the namespace's NetworkPolicy — each
created through :class:`~.sync.ChildSync` (expectations, metrics), and never over an object
that is not the session's (:class:`RunStarter`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Hashable, Mapping
from typing import Any

from ambient_ctrl.client import Client
from informers.errors import AlreadyExists, APIError, Invalid
from informers.resource import SERVICES

from . import children as ch
from . import tokens
from .config import OperatorConfig
from .environment import ExecutionEnvironment, RunInputs
from .liverender import LiveRenders
from .phasetypes import Started, StartFailure
from .platform_secrets import PlatformSecrets
from .reading import Caches, Seen, ours, run_key, service_key
from .resources import (
    MANAGED_BY,
    NETWORK_POLICIES,
    NETWORK_POLICY_NAME,
    TOKEN_REFRESHED_AT,
    service_name,
)
from .status import parse_time
from .sync import ChildSync

log = logging.getLogger("reconcilers.reconciler")  # one story per session, in one logger


class RunStarter:
    """Starts runs and keeps a run's Service; remembers namespaces whose NetworkPolicy of the
    operator's name belongs to someone else (left alone, not asked again)."""

    def __init__(self, client: Client, *, caches: Caches, platform: PlatformSecrets,
                 sync: ChildSync, config: OperatorConfig, live_renders: LiveRenders) -> None:
        self._client = client
        self._live_renders = live_renders
        self._caches = caches
        self._platform = platform
        self._sync = sync
        self._config = config
        self._foreign_policies: set[str] = set()

    def start(self, session: Mapping[str, Any], seen: Seen, inputs: RunInputs,
               now: dt.datetime) -> tuple[Started, dict[str, str]]:
        """Start a run: platform Secrets, the runner's token, the workload (and what the
        environment needs with it), its Service, the namespace's NetworkPolicy."""
        assert seen.runtime is not None
        runtime, environment, incarnation = seen.runtime, seen.start_env, seen.incarnation
        run = run_key(incarnation, inputs.run_started)
        token, token_name, account = seen.token, seen.token_name, seen.account
        self._platform.copy(session)
        annotate: dict[str, str] = {}
        try:
            if token is None and not seen.token_made:
                annotate = tokens.provision(self._client, session, now=now)
                self._sync.expect(incarnation, "Secret", token_name)
            elif token is not None and _stale(token, now):
                tokens.refresh(self._client, session, secret_name=token_name, account=account,
                               now=now)
        except tokens.TokenError as error:
            return Started(failure=StartFailure("token", error.message, error.permanent)), {}
        resources = {child.resource.kind: child.resource for child in environment.owns}
        workload_kind = environment.owns[0].resource.kind
        workload: Mapping[str, Any] | None = None
        existed = False
        reused = seen.rendered.objects_for(inputs) if seen.rendered is not None else None
        rendered = reused if reused is not None else tuple(environment.render(session, runtime,
                                                                              inputs))
        # The live run's first pass compares its children with this render, not a new one.
        self._live_renders.seed(session, runtime, inputs, rendered,
                                environment=environment.kind.value)
        for obj in rendered:
            resource = resources[obj["kind"]]
            try:
                created = self._sync.create(run, resource, obj,
                                            backend=environment.kind.value)
            except APIError as error:
                permanent = isinstance(error, Invalid) or error.code == 400
                return Started(failure=StartFailure("workload", error.message,
                                                    permanent=permanent)), annotate
            if created is None:
                actual = self._client.resource(resource).get(obj["metadata"]["name"],
                                                             obj["metadata"]["namespace"])
                if not ch.owned_by(actual, str(session["metadata"]["uid"])):
                    if ch.owned_by_predecessor(actual, session):  # going: try again
                        return Started(failure=StartFailure(
                            "workload", f"{obj['kind']} {obj['metadata']['name']} still "
                            "belongs to an earlier session of this name; waiting for garbage "
                            "collection to remove it", permanent=False)), annotate
                    return Started(failure=StartFailure(
                        "workload", f"{obj['kind']} {obj['metadata']['name']} already exists "
                        "and does not belong to this session; it is left alone",
                        permanent=True)), annotate
                created = actual
                existed = existed or obj["kind"] == workload_kind
                if obj["kind"] != workload_kind:
                    # Left over from the previous run (its workload was lost, not stopped):
                    # it becomes this run's (a VM's cloud-init says IS_RESUME now).
                    self._sync.converge(run, resource, obj, actual,
                                        backend=environment.kind.value)
            if obj["kind"] == workload_kind:
                workload = created
        if workload is not None:
            taken = self.ensure_service(session, workload, environment, runtime.port,
                                         incarnation)
            if taken is not None:
                # Nothing half-made: the run cannot be reached without its Service.
                self._sync.delete(resources[workload_kind], workload["metadata"]["name"],
                                  workload["metadata"]["namespace"],
                                  backend=environment.kind.value, propagation="Background",
                                  uid=str(workload["metadata"].get("uid", "")))
                self._sync.settle(run, workload_kind, workload["metadata"]["name"])
                return Started(failure=StartFailure("workload", taken, permanent=True,
                                                    reason="ServiceNameTaken")), annotate
        self._ensure_network_policy(session)
        return Started(existed=existed), annotate

    def ensure_service(self, session: Mapping[str, Any], workload: Mapping[str, Any],
                        environment: ExecutionEnvironment, port: int,
                        incarnation: Hashable) -> str | None:
        """The run's Service, created or brought back; why not, when its name is taken by an
        object that is not the session's (left alone)."""
        desired = ch.service(session, workload, environment.owns[0].resource, port)
        namespace, name = ch.meta(session)
        key = service_key(incarnation, desired)
        actual = self._client.get(SERVICES, service_name(name), namespace)
        try:
            if actual is None and not self._sync.pending(key, "Service", service_name(name)):
                if self._sync.create(key, SERVICES, desired,
                                     backend=environment.kind.value) is not None:
                    return None
                # Taken, and not in the cache (which holds only labelled Services).
                actual = self._client.resource(SERVICES).get(service_name(name), namespace)
            if actual is not None and not ours(actual, session):
                message = (f"Service {service_name(name)} already exists and does not belong "
                           "to this session; it is left alone (delete it or use another "
                           "session name)")
                return message
            self._sync.converge(key, SERVICES, desired, actual,
                                backend=environment.kind.value)
        except APIError as error:
            log.warning("could not create the session's Service",
                        extra={"service": service_name(name), "error": error.message})
            if tokens.transient(error):
                # Upstream only logs this; nothing else would bring a Running session back
                # here, and without the Service the backend cannot reach the runner: retry.
                raise
        return None

    def _ensure_network_policy(self, session: Mapping[str, Any]) -> None:
        """``runner-allow-backend-only`` in the session's namespace, created or brought back
        to its spec; one of that name that is not the operator's is left alone."""
        namespace, _ = ch.meta(session)
        if namespace in self._foreign_policies:
            return
        desired = ch.network_policy(namespace, self._config.backend_namespace)
        actual = self._caches.network_policies.get(NETWORK_POLICY_NAME, namespace)
        try:
            if actual is None:
                try:
                    self._client.create(NETWORK_POLICIES, desired)
                    return
                except AlreadyExists:
                    actual = self._client.resource(NETWORK_POLICIES).get(
                        NETWORK_POLICY_NAME, namespace)
                if ((actual.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY) \
                        != "operator":
                    self._foreign_policies.add(namespace)
                    log.warning("a NetworkPolicy of the operator's name exists and is not the "
                                "operator's; it is left as it is",
                                extra={"networkpolicy": f"{namespace}/{NETWORK_POLICY_NAME}"})
                    return
            if actual.get("spec") != desired["spec"]:
                self._client.patch(NETWORK_POLICIES, NETWORK_POLICY_NAME,
                                   {"metadata": {"labels": desired["metadata"]["labels"]},
                                    "spec": desired["spec"]}, namespace)
        except APIError as error:  # defence in depth only: the token is the primary control
            log.warning("could not ensure the runner NetworkPolicy",
                        extra={"namespace": namespace, "error": error.message})


def _stale(token: Mapping[str, Any], now: dt.datetime) -> bool:
    refreshed = parse_time(((token.get("metadata") or {}).get("annotations") or {}).get(
        TOKEN_REFRESHED_AT))
    return refreshed is None or now - refreshed >= dt.timedelta(minutes=45)
