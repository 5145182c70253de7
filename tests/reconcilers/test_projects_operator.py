"""The project controller in one process with the session operator (the manager ``setup``
builds), against the local API server: what a managed namespace and its ProjectSettings get,
edits, drift, deletion and garbage collection, bad input, and quiet when idle. Assertions are
on cluster state; e2e/test_projects.py runs the same story with real processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ambient_ctrl.testing import eventually
from informers.resource import EVENTS, NAMESPACES, Resource
from reconcilers.project_children import LIMIT_RANGES, TRIGGER_RULES
from reconcilers.resources import PROJECT_SETTINGS, ROLE_BINDINGS, ROLES, SERVICE_ACCOUNTS
from tests.reconcilers.operator_fixture import NS, World, operator_world

MANAGED = {"ambient-code.io/managed": "true"}
TRIGGER = "ambient-session-trigger"
LIMITS = "ambient-default-limits"
PS = "projectsettings"


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with operator_world(kubevirt=False) as w:
        yield w


def managed_namespace(world: World, name: str, *, labels: dict[str, str] = MANAGED) -> str:
    world.client(NAMESPACES).create({"metadata": {"name": name, "labels": dict(labels)}})
    return name


def status(world: World, namespace: str) -> dict[str, Any]:
    return dict((world.get(PROJECT_SETTINGS, PS, namespace) or {}).get("status") or {})


def wait_status(world: World, namespace: str, **expected: Any) -> dict[str, Any]:
    def check() -> dict[str, Any]:
        got = status(world, namespace)
        assert {k: got.get(k) for k in expected} == expected, got
        return got
    return eventually(check, timeout=10)


def set_access(world: World, namespace: str, *access: tuple[str, str]) -> None:
    world.client(PROJECT_SETTINGS).patch(PS, {"spec": {"groupAccess": [
        {"groupName": g, "role": r} for g, r in access]}}, namespace)


def uid_of(obj: dict[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("uid", ""))


def warnings(world: World, namespace: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in world.client(EVENTS).list(namespace)["items"]
            if e["reason"] == reason and e["type"] == "Warning"
            and e["involvedObject"]["kind"] == "ProjectSettings"]


TRIGGER_KINDS: list[Resource] = [SERVICE_ACCOUNTS, ROLES, ROLE_BINDINGS]


def test_a_managed_namespace_gets_its_project(world: World) -> None:
    # The fixture's namespace was labelled before the operator started.
    settings = eventually(lambda: world.get(PROJECT_SETTINGS, PS, NS), timeout=10)
    assert settings["spec"] == {"groupAccess": [], "inactivityTimeoutSeconds": 86400}
    wait_status(world, NS, groupBindingsCreated=0, scheduledSessionRBACReady=True,
                limitRangeReady=True)
    owner = {"apiVersion": "vteam.ambient-code/v1alpha1", "kind": "ProjectSettings",
             "name": PS, "uid": uid_of(settings), "controller": True}
    for resource in [*TRIGGER_KINDS, LIMIT_RANGES]:
        name = LIMITS if resource is LIMIT_RANGES else TRIGGER
        obj = world.get(resource, name, NS)
        assert obj is not None, resource.kind
        assert obj["metadata"]["labels"] == MANAGED
        assert obj["metadata"]["ownerReferences"] == [owner]
    assert world.get(ROLES, TRIGGER, NS)["rules"] == list(TRIGGER_RULES)
    assert world.get(ROLE_BINDINGS, TRIGGER, NS)["subjects"] == [
        {"kind": "ServiceAccount", "name": TRIGGER, "namespace": NS}]
    assert world.get(LIMIT_RANGES, LIMITS, NS)["spec"]["limits"] == [
        {"type": "Container", "defaultRequest": {"cpu": "250m", "memory": "256Mi"},
         "default": {"cpu": "2", "memory": "4Gi"}}]
    # A namespace labelled later gets one too; an unlabelled one never does.
    later = managed_namespace(world, "project-later", labels={})
    world.client(NAMESPACES).patch(later, {"metadata": {"labels": MANAGED}})
    eventually(lambda: world.get(PROJECT_SETTINGS, PS, later), timeout=10)
    assert world.get(PROJECT_SETTINGS, PS, "unmanaged") is None


def test_group_access_edits_add_and_remove_bindings(world: World) -> None:
    namespace = managed_namespace(world, "project-groups")
    eventually(lambda: world.get(PROJECT_SETTINGS, PS, namespace), timeout=10)
    foreign = world.client(ROLE_BINDINGS).create({
        "metadata": {"name": "ops-admin", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "admin"},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "eve"}]})
    set_access(world, namespace, ("devs", "edit"), ("Team Lead", "admin"), ("ops", "admin"))
    wait_status(world, namespace, groupBindingsCreated=2)
    devs = world.get(ROLE_BINDINGS, "devs-edit", namespace)
    assert devs["roleRef"]["name"] == "ambient-project-edit"
    assert devs["subjects"] == [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                                 "name": "devs"}]
    assert world.get(ROLE_BINDINGS, "Team Lead-admin", namespace) is not None
    # Someone else's binding of that name is left as it was, and said so.
    assert world.get(ROLE_BINDINGS, "ops-admin", namespace) == foreign
    eventually(lambda: warnings(world, namespace, "RoleBindingNameTaken"), timeout=10)

    set_access(world, namespace, ("Team Lead", "admin"), ("ops", "admin"))
    eventually(lambda: world.get(ROLE_BINDINGS, "devs-edit", namespace) is None, timeout=10)
    wait_status(world, namespace, groupBindingsCreated=1)
    assert world.get(ROLE_BINDINGS, "ops-admin", namespace) == foreign
    assert world.get(ROLE_BINDINGS, TRIGGER, namespace) is not None


def test_bad_group_names_are_reported_and_not_retried(world: World) -> None:
    namespace = managed_namespace(world, "project-bad-groups")
    eventually(lambda: world.get(PROJECT_SETTINGS, PS, namespace), timeout=10)
    set_access(world, namespace, ("org/team", "view"), ("100%", "edit"), ("good", "view"))
    wait_status(world, namespace, groupBindingsCreated=1)
    found = eventually(lambda: warnings(world, namespace, "InvalidGroupAccess"), timeout=10)
    assert any("'org/team-view': it may not contain '/'" in e["message"] for e in found)
    before = world.settled()
    events = {e["metadata"]["name"]: e.get("count") for e in
              warnings(world, namespace, "InvalidGroupAccess")}
    after = world.settled()
    assert after == before, "the operator kept writing after a bad entry"
    assert {e["metadata"]["name"]: e.get("count") for e in
            warnings(world, namespace, "InvalidGroupAccess")} == events


def test_drift_is_brought_back(world: World) -> None:
    namespace = managed_namespace(world, "project-drift")
    wait_status(world, namespace, scheduledSessionRBACReady=True, limitRangeReady=True)
    world.client(ROLES).patch(TRIGGER, {"rules": [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}, namespace)
    world.client(LIMIT_RANGES).patch(LIMITS, {"spec": {"limits": [
        {"type": "Container", "default": {"cpu": "16"}}]}}, namespace)
    world.client(SERVICE_ACCOUNTS).patch(TRIGGER, {"metadata": {"labels": {
        "ambient-code.io/managed": None, "team": "a"}}}, namespace)
    eventually(lambda: world.get(ROLES, TRIGGER, namespace)["rules"] == list(TRIGGER_RULES),
               timeout=10)
    eventually(lambda: world.get(LIMIT_RANGES, LIMITS, namespace)["spec"]["limits"][0][
        "default"] == {"cpu": "2", "memory": "4Gi"}, timeout=10)

    def labelled_again() -> bool:
        labels = world.get(SERVICE_ACCOUNTS, TRIGGER, namespace)["metadata"].get("labels")
        assert labels == {**MANAGED, "team": "a"}, labels  # ours back, theirs kept
        return True
    eventually(labelled_again, timeout=10)


def test_deleting_settings_removes_what_they_own(world: World) -> None:
    # By hand in an unmanaged namespace: deleted, it takes its objects and is not made again.
    namespace = world.client(NAMESPACES).create({"metadata": {"name": "by-hand"}})[
        "metadata"]["name"]
    world.client(PROJECT_SETTINGS).create({"metadata": {"name": PS, "namespace": namespace},
                                           "spec": {"groupAccess": [
                                               {"groupName": "devs", "role": "view"}]}})
    wait_status(world, namespace, groupBindingsCreated=1, scheduledSessionRBACReady=True,
                limitRangeReady=True)
    world.client(PROJECT_SETTINGS).delete(PS, namespace)
    owned = [(ROLE_BINDINGS, "devs-view"), *((r, TRIGGER) for r in TRIGGER_KINDS),
             (LIMIT_RANGES, LIMITS)]
    for resource, name in owned:
        eventually(lambda r=resource, n=name: world.get(r, n, namespace) is None, timeout=10,
                   message=f"{resource.kind} {name} was not garbage-collected")
    assert world.get(PROJECT_SETTINGS, PS, namespace) is None

    # In a managed namespace the settings come back, as they were made: the old ones' objects
    # go, the group's binding with them; the new ones get their own.
    managed = managed_namespace(world, "project-renewed")
    set_access_when_made(world, managed, ("devs", "view"))
    wait_status(world, managed, groupBindingsCreated=1)
    old = {(r.kind, n): uid_of(world.get(r, n, managed)) for r, n in owned}
    old_settings = uid_of(world.get(PROJECT_SETTINGS, PS, managed))
    world.client(PROJECT_SETTINGS).delete(PS, managed)
    renewed = eventually(lambda: uid_of(world.get(PROJECT_SETTINGS, PS, managed))
                         not in ("", old_settings) and world.get(PROJECT_SETTINGS, PS, managed),
                         timeout=10)
    assert renewed["spec"]["groupAccess"] == []
    eventually(lambda: world.get(ROLE_BINDINGS, "devs-view", managed) is None, timeout=10)
    for resource, name in owned[1:]:
        eventually(lambda r=resource, n=name: uid_of(world.get(r, n, managed))
                   not in ("", old[(r.kind, n)]), timeout=10,
                   message=f"{resource.kind} {name} was not made again")
    wait_status(world, managed, groupBindingsCreated=0, scheduledSessionRBACReady=True,
                limitRangeReady=True)


def set_access_when_made(world: World, namespace: str, *access: tuple[str, str]) -> None:
    eventually(lambda: world.get(PROJECT_SETTINGS, PS, namespace), timeout=10)
    set_access(world, namespace, *access)


def test_quiet_when_idle(world: World) -> None:
    """Once every project is in place, the operator makes no request at all: no polling,
    and nothing it wrote wakes it to write again."""
    before = world.settled()
    time.sleep(1.0)  # the quiet window itself: what is asserted is that nothing happens
    assert world.operator_requests() == before
