"""Issue 14's projects with real processes: the local API server (simulators, admin port) and
``ambient-ctrl run`` each as its own process, everything written and read back with the
official ``kubernetes`` client (``shared/UPSTREAM-CONTRACT.md`` §8.2).

* Labelling a namespace ``ambient-code.io/managed=true`` gives it the ProjectSettings
  ``projectsettings`` (``groupAccess: []``), the ``ambient-session-trigger`` ServiceAccount,
  Role and RoleBinding, the LimitRange ``ambient-default-limits`` and the status fields.
* ``groupAccess`` edits add a RoleBinding ``<group>-<role>`` per entry and remove ours when an
  entry goes; one upstream's operator made is adopted; someone else's of the same name is left
  untouched (a Warning Event); a group that cannot name a RoleBinding is a Warning Event, not a
  retry storm.
* Deleting a ProjectSettings removes what it owns (the server's garbage collector); in a
  managed namespace the settings come back as the operator makes them.
* Idle, the operator sends no request at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from ambient_ctrl.testing import eventually
from ambient_ctrl.testing import settled as until_quiet
from e2e.cluster import ClosingApiClient
from reconcilers.projects import EXPECTATION_RECHECK

from .conftest import unique
from .operator_process import POD_RUNTIME, World, start_world, stop_world

pytestmark = [pytest.mark.timeout(180)]

# Quiet means longer than the operator's longest deliberate recheck: a pass that relied on a
# creation the cache had not shown yet looks again after EXPECTATION_RECHECK, once.
QUIET = EXPECTATION_RECHECK + 0.5

GROUP, VERSION, PLURAL, PS = "vteam.ambient-code", "v1alpha1", "projectsettings", \
    "projectsettings"
RBAC = "rbac.authorization.k8s.io"
MANAGED = {"ambient-code.io/managed": "true"}
TRIGGER, LIMITS = "ambient-session-trigger", "ambient-default-limits"
PROJECT = "projects-e2e"
"""A namespace made unlabelled, then labelled managed (as the platform's backend does)."""
BY_HAND = "projects-by-hand"
"""An unmanaged namespace whose ProjectSettings someone made by hand."""


class Cluster:
    """The official client's APIs on the world's server."""

    def __init__(self, world: World, api: client.ApiClient) -> None:
        self.world = world
        self.core = client.CoreV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def settings(self, namespace: str) -> dict[str, Any] | None:
        try:
            return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace,
                                                                 PLURAL, PS))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def status(self, namespace: str) -> dict[str, Any]:
        return dict((self.settings(namespace) or {}).get("status") or {})

    def wait_status(self, namespace: str, **expected: Any) -> None:
        def check() -> bool:
            got = self.status(namespace)
            assert {k: got.get(k) for k in expected} == expected, got
            return True
        eventually(check, timeout=20, message=f"status of {namespace}'s settings")

    def set_access(self, namespace: str, *access: tuple[str, str]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, PS, {
            "spec": {"groupAccess": [{"groupName": g, "role": r} for g, r in access]}})

    def read(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        readers = {"ServiceAccount": self.core.read_namespaced_service_account,
                   "Role": self.rbac.read_namespaced_role,
                   "RoleBinding": self.rbac.read_namespaced_role_binding,
                   "LimitRange": self.core.read_namespaced_limit_range}
        try:
            return dict(orjson.loads(readers[kind](name, namespace,
                                                   _preload_content=False).data))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def warnings(self, namespace: str, reason: str) -> list[dict[str, Any]]:
        answer = self.core.list_namespaced_event(namespace, _preload_content=False)
        return [e for e in orjson.loads(answer.data)["items"]
                if e["type"] == "Warning" and e["reason"] == reason
                and e["involvedObject"]["kind"] == "ProjectSettings"]

    def requests(self) -> dict[tuple[str, str, str], int]:
        """The operator's requests so far, by (verb, group, resource)."""
        return {(r["verb"], r["group"], r["resource"]): r["count"]
                for r in self.world.admin_call("GET", "/requests?agent=ambient-ctrl")}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    world = start_world(tmp_path_factory.mktemp("projects"), registry=[POD_RUNTIME],
                        namespaces=[])
    try:
        world.start_operator(concurrency=2)
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(world.kubeconfig),
                                client_configuration=configuration)
        with ClosingApiClient(configuration) as api:
            yield Cluster(world, api)
        assert world.healthy(), "the operator died"
    finally:
        stop_world(world)


@pytest.fixture()
def project(cluster: Cluster) -> str:
    """A namespace of this test's own (named after :data:`PROJECT`), made unlabelled: the test
    labels it, so no test depends on what another did to it."""
    name = unique(PROJECT)
    cluster.core.create_namespace({"metadata": {"name": name}})
    cluster.world.created.append(name)
    return name


def managed(cluster: Cluster, namespace: str) -> dict[str, Any]:
    """Label ``namespace`` managed (again: a no-op) and wait for its settings."""
    cluster.core.patch_namespace(namespace, {"metadata": {"labels": MANAGED}})
    return dict(eventually(lambda: cluster.settings(namespace), timeout=20))


def owner_of(obj: dict[str, Any] | None) -> str:
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return next((r["uid"] for r in refs if r.get("controller")), "")


def uid(obj: dict[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("uid", ""))


def binding(name: str, *, group: str, cluster_role: str, labels: dict[str, str] | None = None
            ) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"kind": "Group", "apiGroup": RBAC, "name": group}]}


def test_labelling_a_namespace_makes_a_project(cluster: Cluster, project: str) -> None:
    time.sleep(0.5)  # about time passing: unlabelled, nothing happens
    assert cluster.settings(project) is None
    settings = managed(cluster, project)
    assert settings["spec"] == {"groupAccess": [], "inactivityTimeoutSeconds": 86400}
    cluster.wait_status(project, groupBindingsCreated=0, scheduledSessionRBACReady=True,
                        limitRangeReady=True)
    for kind, name in (("ServiceAccount", TRIGGER), ("Role", TRIGGER),
                       ("RoleBinding", TRIGGER), ("LimitRange", LIMITS)):
        obj = cluster.read(kind, name, project)
        assert obj is not None, kind
        assert obj["metadata"]["labels"] == MANAGED
        assert owner_of(obj) == uid(settings), kind
    assert cluster.read("Role", TRIGGER, project)["rules"] == [
        {"apiGroups": ["vteam.ambient-code"], "resources": ["agenticsessions"],
         "verbs": ["create", "get", "list", "update"]}]
    assert cluster.read("RoleBinding", TRIGGER, project)["subjects"] == [
        {"kind": "ServiceAccount", "name": TRIGGER, "namespace": project}]
    limits = cluster.core.read_namespaced_limit_range(LIMITS, project)
    [item] = limits.spec.limits
    assert (item.type, item.default_request, item.default) == (
        "Container", {"cpu": "250m", "memory": "256Mi"}, {"cpu": "2", "memory": "4Gi"})


def test_group_access_edits_bindings_and_leaves_others_alone(cluster: Cluster,
                                                            project: str) -> None:
    managed(cluster, project)
    # Someone else's binding under a name groupAccess will ask for; and one exactly as
    # upstream's operator made it (labelled, no owner).
    theirs = cluster.rbac.create_namespaced_role_binding(project, binding(
        "ops-admin", group="ops", cluster_role="admin"))
    cluster.rbac.create_namespaced_role_binding(project, binding(
        "legacy-view", group="legacy", cluster_role="ambient-project-view", labels=MANAGED))
    cluster.set_access(project, ("devs", "edit"), ("ops", "admin"), ("legacy", "view"))
    cluster.wait_status(project, groupBindingsCreated=2)
    settings = cluster.settings(project)
    devs = cluster.read("RoleBinding", "devs-edit", project)
    assert devs["roleRef"] == {"apiGroup": RBAC, "kind": "ClusterRole",
                               "name": "ambient-project-edit"}
    assert devs["subjects"] == [{"kind": "Group", "apiGroup": RBAC, "name": "devs"}]
    assert owner_of(devs) == uid(settings)
    assert owner_of(cluster.read("RoleBinding", "legacy-view", project)) == uid(settings)
    untouched = cluster.read("RoleBinding", "ops-admin", project)
    assert untouched["metadata"]["resourceVersion"] == theirs.metadata.resource_version
    assert untouched["roleRef"]["name"] == "admin" and owner_of(untouched) == ""
    eventually(lambda: cluster.warnings(project, "RoleBindingNameTaken"), timeout=20)

    cluster.set_access(project, ("ops", "admin"))
    for name in ("devs-edit", "legacy-view"):
        eventually(lambda n=name: cluster.read("RoleBinding", n, project) is None, timeout=20,
                   message=f"{name} stayed after its entry went")
    cluster.wait_status(project, groupBindingsCreated=0)
    assert cluster.read("RoleBinding", "ops-admin", project)["metadata"]["resourceVersion"] \
        == theirs.metadata.resource_version
    assert cluster.read("RoleBinding", TRIGGER, project) is not None


@pytest.mark.local_only("counts the operator's requests through the server's admin endpoint")
def test_bad_group_names_are_reported_without_a_storm(cluster: Cluster, project: str) -> None:
    managed(cluster, project)
    cluster.set_access(project, ("org/platform", "view"), ("50%", "edit"), ("qa", "view"))
    cluster.wait_status(project, groupBindingsCreated=1)
    found = eventually(lambda: len(cluster.warnings(project, "InvalidGroupAccess")) == 2
                       and cluster.warnings(project, "InvalidGroupAccess"), timeout=20)
    assert sorted(e["message"] for e in found) == [
        "groupAccess[0]: group 'org/platform' with role 'view' cannot name a RoleBinding "
        "('org/platform-view': it may not contain '/'); entry skipped",
        "groupAccess[1]: group '50%' with role 'edit' cannot name a RoleBinding "
        "('50%-edit': it may not contain '%'); entry skipped"]
    assert cluster.read("RoleBinding", "qa-view", project) is not None
    quiet = until_quiet(cluster.requests, quiet=QUIET, message="the operator kept retrying")
    time.sleep(1.0)  # the quiet window itself: what is asserted is that nothing happens
    assert cluster.requests() == quiet


def test_deleting_settings_removes_what_they_own(cluster: Cluster, project: str) -> None:
    # By hand, in a namespace that is no project: all it owns goes with it, nothing returns.
    cluster.core.create_namespace({"metadata": {"name": BY_HAND}})
    cluster.world.created.append(BY_HAND)
    cluster.custom.create_namespaced_custom_object(GROUP, VERSION, BY_HAND, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ProjectSettings",
        "metadata": {"name": PS}, "spec": {"groupAccess": [
            {"groupName": "devs", "role": "admin"}]}})
    cluster.wait_status(BY_HAND, groupBindingsCreated=1, scheduledSessionRBACReady=True,
                        limitRangeReady=True)
    owned = [("RoleBinding", "devs-admin"), ("ServiceAccount", TRIGGER), ("Role", TRIGGER),
             ("RoleBinding", TRIGGER), ("LimitRange", LIMITS)]
    cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, BY_HAND, PLURAL, PS)
    for kind, name in owned:
        eventually(lambda k=kind, n=name: cluster.read(k, n, BY_HAND) is None, timeout=20,
                   message=f"{kind} {name} was not garbage-collected")
    assert cluster.settings(BY_HAND) is None

    # In the project: the settings come back as the operator makes them, and so does what
    # they own, made anew; the group's binding went with the old settings.
    managed(cluster, project)
    cluster.set_access(project, ("devs", "admin"))
    cluster.wait_status(project, groupBindingsCreated=1)
    before = {(kind, name): uid(cluster.read(kind, name, project)) for kind, name in owned}
    old = uid(cluster.settings(project))
    cluster.custom.delete_namespaced_custom_object(GROUP, VERSION, project, PLURAL, PS)
    renewed = eventually(lambda: uid(cluster.settings(project)) not in ("", old)
                         and cluster.settings(project), timeout=20)
    assert renewed["spec"]["groupAccess"] == []
    eventually(lambda: cluster.read("RoleBinding", "devs-admin", project) is None, timeout=20)
    for kind, name in owned[1:]:
        eventually(lambda k=kind, n=name: uid(cluster.read(k, n, project))
                   not in ("", before[(k, n)]), timeout=20,
                   message=f"{kind} {name} was not made again")
    cluster.wait_status(project, groupBindingsCreated=0, scheduledSessionRBACReady=True,
                        limitRangeReady=True)


@pytest.mark.local_only("counts the operator's requests through the server's admin endpoint")
def test_no_request_while_idle(cluster: Cluster) -> None:
    quiet = until_quiet(cluster.requests, quiet=QUIET, message="the operator never went quiet")
    time.sleep(2.0)  # the quiet window itself: what is asserted is that nothing happens
    assert cluster.requests() == quiet
