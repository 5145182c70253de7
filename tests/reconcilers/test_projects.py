"""The project controller's pure parts (reconcilers.project_children), then ProjectReconciler
against a fake client whose cache lags behind the server (no server): a table per rule, a
hypothesis property for the drift patch, and the races and refusals a cluster produces.

The in-process run against the local API server is tests/reconcilers/test_projects_operator.py;
real processes and the official client, e2e/test_projects.py.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ambient_ctrl.reconcile import Request
from informers.errors import AlreadyExists, Conflict, Invalid, NotFound, ServerError
from informers.resource import NAMESPACES, Resource
from reconcilers import project_children as pc
from reconcilers.projects import ProjectCaches, ProjectReconciler, managed_namespace_requests
from reconcilers.resources import PROJECT_SETTINGS, ROLE_BINDINGS, ROLES, SERVICE_ACCOUNTS

NS = "team-a"
UID = "0b5e4a3c-8d6f-4c61-9a57-2f0a1f6f4a11"
RBAC = "rbac.authorization.k8s.io"


def settings(*access: tuple[str, str], uid: str = UID, **status: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "vteam.ambient-code/v1alpha1", "kind": "ProjectSettings",
        "metadata": {"name": "projectsettings", "namespace": NS, "uid": uid,
                     "resourceVersion": "1", "generation": 1},
        "spec": {"groupAccess": [{"groupName": g, "role": r} for g, r in access]}}
    if status:
        body["status"] = status
    return body


# group RoleBindings --------------------------------------------------------------------------
@pytest.mark.parametrize(("access", "bindings"), [
    ([("devs", "admin"), ("qa", "edit"), ("all", "view")],
     [("devs-admin", "ambient-project-admin", "devs"), ("qa-edit", "ambient-project-edit", "qa"),
      ("all-view", "ambient-project-view", "all")]),
    ([("devs", "Admin")], [("devs-admin", "ambient-project-admin", "devs")]),
    ([("devs", "owner")], [("devs-owner", "ambient-project-view", "devs")]),
    ([("devs", "edit"), ("devs", "edit"), ("devs", "view")],
     [("devs-edit", "ambient-project-edit", "devs"),
      ("devs-view", "ambient-project-view", "devs")]),
    ([("Team A", "view"), ("system:authenticated", "view")],
     [("Team A-view", "ambient-project-view", "Team A"),
      ("system:authenticated-view", "ambient-project-view", "system:authenticated")]),
    ([], []),
], ids=["three-roles", "role-lowercased", "unknown-role-is-view", "duplicates-collapse",
        "rbac-names-are-path-segments", "none"])
def test_group_bindings(access: list[tuple[str, str]],
                        bindings: list[tuple[str, str, str]]) -> None:
    desired, skipped = pc.group_bindings(settings(*access))
    assert skipped == []
    assert [(b["metadata"]["name"], b["roleRef"]["name"], b["subjects"][0]["name"])
            for b in desired] == bindings
    for binding in desired:
        assert binding["roleRef"] == {"apiGroup": RBAC, "kind": "ClusterRole",
                                      "name": binding["roleRef"]["name"]}
        assert binding["subjects"] == [{"kind": "Group", "apiGroup": RBAC,
                                        "name": binding["subjects"][0]["name"]}]
        assert binding["metadata"]["labels"] == {"ambient-code.io/managed": "true"}
        assert binding["metadata"]["ownerReferences"] == [{
            "apiVersion": "vteam.ambient-code/v1alpha1", "kind": "ProjectSettings",
            "name": "projectsettings", "uid": UID, "controller": True}]


@pytest.mark.parametrize(("entry", "message"), [
    ({"groupName": "org/team", "role": "view"},
     "groupAccess[0]: group 'org/team' with role 'view' cannot name a RoleBinding "
     "('org/team-view': it may not contain '/'); entry skipped"),
    ({"groupName": "100%", "role": "edit"},
     "groupAccess[0]: group '100%' with role 'edit' cannot name a RoleBinding "
     "('100%-edit': it may not contain '%'); entry skipped"),
    ({"groupName": "ambient-session", "role": "trigger"},
     "groupAccess[0]: group 'ambient-session' with role 'trigger' cannot name a RoleBinding "
     "('ambient-session-trigger': it is the name of the ambient-session-trigger binding); "
     "entry skipped"),
    ({"groupName": "", "role": "view"},
     "groupAccess[0] needs a groupName and a role; entry skipped"),
    ({"groupName": "devs"}, "groupAccess[0] needs a groupName and a role; entry skipped"),
    ("devs", "groupAccess[0] needs a groupName and a role; entry skipped"),
], ids=["slash", "percent", "trigger-name", "empty-group", "no-role", "not-an-object"])
def test_entries_that_cannot_name_a_binding_are_skipped(entry: Any, message: str) -> None:
    body = settings()
    body["spec"]["groupAccess"] = [entry, {"groupName": "ok", "role": "view"}]
    desired, skipped = pc.group_bindings(body)
    assert [b["metadata"]["name"] for b in desired] == ["ok-view"]
    assert skipped == [pc.Skipped(0, message)]


def test_group_access_that_is_no_list_gives_no_binding() -> None:
    body = settings()
    body["spec"]["groupAccess"] = {"devs": "admin"}
    desired, skipped = pc.group_bindings(body)
    assert desired == [] and len(skipped) == 1


@pytest.mark.parametrize(("name", "problem"), [
    ("devs-view", None), ("Team A-view", None), ("a:b-edit", None), ("", "it is empty"),
    ("..", "it may not be '..'"), ("a/b%-x", "it may not contain '/' or '%'")],
    ids=["plain", "space", "colon", "empty", "dot-dot", "both"])
def test_name_problem(name: str, problem: str | None) -> None:
    assert pc.name_problem(name) == problem


# the trigger RBAC, the LimitRange, the default settings --------------------------------------
def test_trigger_objects_are_upstreams() -> None:
    account, role, binding = pc.trigger_objects(settings())
    for obj in (account, role, binding):
        assert obj["metadata"]["name"] == "ambient-session-trigger"
        assert obj["metadata"]["labels"] == {"ambient-code.io/managed": "true"}
        assert obj["metadata"]["ownerReferences"][0]["uid"] == UID
    assert account["kind"] == "ServiceAccount" and role["kind"] == "Role"
    assert role["rules"] == [{"apiGroups": ["vteam.ambient-code"],
                              "resources": ["agenticsessions"],
                              "verbs": ["create", "get", "list", "update"]}]
    assert binding["roleRef"] == {"apiGroup": RBAC, "kind": "Role",
                                  "name": "ambient-session-trigger"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ambient-session-trigger",
                                    "namespace": NS}]


def test_limit_range_is_upstreams() -> None:
    limit_range = pc.limit_range(settings())
    assert limit_range["metadata"]["name"] == "ambient-default-limits"
    assert limit_range["spec"] == {"limits": [{
        "type": "Container", "defaultRequest": {"cpu": "250m", "memory": "256Mi"},
        "default": {"cpu": "2", "memory": "4Gi"}}]}


def test_default_settings_are_upstreams() -> None:
    assert pc.default_settings(NS) == {
        "apiVersion": "vteam.ambient-code/v1alpha1", "kind": "ProjectSettings",
        "metadata": {"name": "projectsettings", "namespace": NS},
        "spec": {"groupAccess": []}}


@pytest.mark.parametrize(("only", "requests"), [
    (None, [Request(NS, "projectsettings")]), (NS, [Request(NS, "projectsettings")]),
    ("other", [])], ids=["all", "this-one", "another"])
def test_managed_namespace_requests(only: str | None, requests: list[Request]) -> None:
    assert managed_namespace_requests({"metadata": {"name": NS}}, only=only) == requests


# ownership and drift -------------------------------------------------------------------------
def _with(obj: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(dict(obj))
    for path, value in changes.items():
        target = out
        *parents, leaf = path.split("__")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return out


ROLE = pc.trigger_objects(settings())[1]
BINDING = pc.group_bindings(settings(("devs", "edit")))[0][0]
LIMITS = pc.limit_range(settings())


@pytest.mark.parametrize(("desired", "actual", "patch"), [
    (ROLE, ROLE, None),
    (ROLE, _with(ROLE, metadata__labels={"team": "a"}),
     {"metadata": {"labels": {"ambient-code.io/managed": "true"}}}),
    (ROLE, _with(ROLE, metadata__labels={"ambient-code.io/managed": "true", "team": "a"}),
     None),
    (ROLE, _with(ROLE, rules=[]), {"rules": ROLE["rules"]}),
    (BINDING, _with(BINDING, subjects=[{"kind": "User", "name": "eve"}]),
     {"subjects": BINDING["subjects"]}),
    (LIMITS, _with(LIMITS, spec={"limits": [{"type": "Container",
                                             "defaultRequest": {"cpu": "0.25",
                                                                "memory": "256Mi"},
                                             "default": {"cpu": "2000m",
                                                         "memory": "4096Mi"}}]}), None),
    (LIMITS, _with(LIMITS, spec={"limits": [{**LIMITS["spec"]["limits"][0],
                                             "max": {"cpu": "4"}}]}),
     {"spec": LIMITS["spec"]}),
    (LIMITS, _with(LIMITS, spec={"limits": []}), {"spec": LIMITS["spec"]}),
], ids=["same", "label-gone", "other-labels-kept", "rules", "subjects",
        "quantities-spelled-otherwise", "limit-added", "limits-gone"])
def test_drift_patch(desired: dict[str, Any], actual: dict[str, Any],
                     patch: dict[str, Any] | None) -> None:
    assert pc.drift_patch(desired, actual) == patch


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


_LABELS = st.dictionaries(st.sampled_from(["ambient-code.io/managed", "team", "app"]),
                          st.sampled_from(["true", "false", "x"]), max_size=3)
_RULES = st.lists(st.fixed_dictionaries({"apiGroups": st.just([""]),
                                         "resources": st.sampled_from([["pods"], ["secrets"]]),
                                         "verbs": st.sampled_from([["get"], ["list"]])}),
                  max_size=2)


@given(labels=_LABELS, rules=_RULES)
def test_drift_patch_converges_and_keeps_other_labels(labels: dict[str, str],
                                                      rules: list[dict[str, Any]]) -> None:
    actual = _with(ROLE, metadata__labels=labels, rules=rules)
    patch = pc.drift_patch(ROLE, actual)
    fixed = actual if patch is None else _merge(actual, patch)
    assert pc.drift_patch(ROLE, fixed) is None
    assert fixed["rules"] == ROLE["rules"]
    for key, value in labels.items():
        if key != "ambient-code.io/managed":
            assert fixed["metadata"]["labels"][key] == value


def test_ownership() -> None:
    mine = pc.trigger_objects(settings())[0]
    assert pc.owned(mine, settings()) and not pc.owned_by_predecessor(mine, settings())
    again = settings(uid="another-incarnation")
    assert not pc.owned(mine, again) and pc.owned_by_predecessor(mine, again)
    orphan = _with(mine, metadata__ownerReferences=[])
    assert pc.controller_uid(orphan) is None and not pc.owned_by_predecessor(orphan, again)


@pytest.mark.parametrize(("actual", "adoptable"), [
    (_with(BINDING, metadata__ownerReferences=[]), True),
    (_with(BINDING, metadata__ownerReferences=[{"apiVersion": "v1", "kind": "ConfigMap",
                                                "name": "x", "uid": "u"}]), True),
    (_with(BINDING, metadata__ownerReferences=[{**BINDING["metadata"]["ownerReferences"][0],
                                                "uid": "other"}]), False),
    (_with(BINDING, metadata__ownerReferences=[], metadata__labels={}), False),
    (_with(BINDING, metadata__ownerReferences=[],
           roleRef={"apiGroup": RBAC, "kind": "ClusterRole", "name": "admin"}), False),
    (_with(BINDING, metadata__ownerReferences=[],
           subjects=[*BINDING["subjects"], {"kind": "User", "name": "eve",
                                            "apiGroup": RBAC}]), False),
], ids=["upstreams", "other-owner-no-controller", "another-controller", "unlabelled",
        "other-role", "more-subjects"])
def test_adoptable(actual: dict[str, Any], adoptable: bool) -> None:
    assert pc.adoptable(actual, BINDING) is adoptable


def test_adoption_patch_keeps_references_and_is_guarded() -> None:
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u"}
    actual = _with(BINDING, metadata__ownerReferences=[other], metadata__resourceVersion="7")
    assert pc.adoption_patch(actual, settings()) == {"metadata": {
        "resourceVersion": "7",
        "ownerReferences": [other, BINDING["metadata"]["ownerReferences"][0]]}}


@pytest.mark.parametrize(("status", "patch"), [
    ({}, {"status": {"groupBindingsCreated": 2, "scheduledSessionRBACReady": True,
                     "limitRangeReady": True}}),
    ({"groupBindingsCreated": 2, "scheduledSessionRBACReady": True, "limitRangeReady": True},
     None),
    ({"groupBindingsCreated": 1, "scheduledSessionRBACReady": True, "limitRangeReady": True,
      "other": "kept"}, {"status": {"groupBindingsCreated": 2}}),
    ({"groupBindingsCreated": 2, "scheduledSessionRBACReady": 1, "limitRangeReady": True},
     {"status": {"scheduledSessionRBACReady": True}}),
], ids=["first", "unchanged", "only-what-changed", "bool-is-no-int"])
def test_status_patch(status: dict[str, Any], patch: dict[str, Any] | None) -> None:
    assert pc.status_patch(settings(**status), bindings=2, trigger_ready=True,
                           limit_range_ready=True) == patch


# the reconciler against a lagging cache --------------------------------------------------------
Key = tuple[str, str, str]


class LaggingClient:
    """Server state and an informer cache that only catches up on :meth:`sync`. Writes can be
    scripted to fail once."""

    def __init__(self) -> None:
        self.server: dict[Key, dict[str, Any]] = {}
        self.cache: dict[Key, dict[str, Any]] = {}
        self.writes: list[tuple[str, str, str]] = []
        self.fail: dict[tuple[str, str, str], Exception] = {}
        """(verb, plural, name) → the error its next request raises."""
        self._versions = itertools.count(100)
        self._uids = itertools.count(1)

    def sync(self) -> None:
        self.cache = copy.deepcopy(self.server)

    def add(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        meta["resourceVersion"] = str(next(self._versions))
        self.server[(resource.plural, meta.get("namespace", ""), meta["name"])] = obj
        return obj

    def stored(self, resource: Resource, name: str) -> dict[str, Any] | None:
        return self.server.get((resource.plural, NS, name))

    def count(self, verb: str, plural: str) -> int:
        return sum(1 for v, p, _ in self.writes if (v, p) == (verb, plural))

    def _write(self, verb: str, plural: str, name: str) -> None:
        self.writes.append((verb, plural, name))
        error = self.fail.pop((verb, plural, name), None)
        if error is not None:
            raise error

    def _stored(self, resource: Resource, name: str, namespace: str | None) -> dict[str, Any]:
        try:
            return self.server[(resource.plural, namespace or "", name)]
        except KeyError:
            raise NotFound(404, {"reason": "NotFound"}) from None

    # what ProjectReconciler calls
    def resource(self, resource: Resource) -> Any:
        client = self

        class Live:
            def get(self, name: str, namespace: str | None = None) -> dict[str, Any]:
                return copy.deepcopy(client._stored(resource, name, namespace))
        return Live()

    def create(self, resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        self._write("create", resource.plural, meta["name"])
        if (resource.plural, meta.get("namespace", ""), meta["name"]) in self.server:
            raise AlreadyExists(409, {"reason": "AlreadyExists"})
        return copy.deepcopy(self.add(resource, copy.deepcopy(dict(obj))))

    def patch(self, resource: Resource, name: str, patch: Any, namespace: str | None = None,
              **_: Any) -> dict[str, Any]:
        self._write("patch", resource.plural, name)
        stored = self._stored(resource, name, namespace)
        version = (patch.get("metadata") or {}).get("resourceVersion")
        if version and version != stored["metadata"]["resourceVersion"]:
            raise Conflict(409, {"reason": "Conflict"})
        merged = _merge(stored, {**patch, "metadata": {
            k: v for k, v in (patch.get("metadata") or {}).items() if k != "resourceVersion"}})
        merged["metadata"]["resourceVersion"] = str(next(self._versions))
        self.server[(resource.plural, namespace or "", name)] = merged
        return copy.deepcopy(merged)

    def patch_status(self, resource: Resource, name: str, patch: Any,
                     namespace: str | None = None, **_: Any) -> dict[str, Any]:
        return self.patch(resource, name, {"status": patch["status"]}, namespace)

    def delete(self, resource: Resource, name: str, namespace: str | None = None, *,
               uid: str | None = None, **_: Any) -> dict[str, Any]:
        self._write("delete", resource.plural, name)
        stored = self._stored(resource, name, namespace)
        if uid and stored["metadata"]["uid"] != uid:
            raise Conflict(409, {"reason": "Conflict"})
        return self.server.pop((resource.plural, namespace or "", name))


class Scoped:
    def __init__(self, client: LaggingClient, resource: Resource) -> None:
        self._client, self._resource = client, resource

    def get(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self._client.cache.get((self._resource.plural, namespace or "", name))

    def list(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return [v for (p, ns, _), v in self._client.cache.items()
                if p == self._resource.plural and namespace in (None, ns)]


class Events:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str, str]] = []

    def record(self, obj: Mapping[str, Any], type: str, *, reason: str, message: str) -> None:
        assert obj["kind"] == "ProjectSettings" and obj["metadata"]["namespace"] == NS
        self.recorded.append((type, reason, message))


REQUEST = Request(NS, "projectsettings")


def project(*access: tuple[str, str], managed: bool = True
            ) -> tuple[LaggingClient, Events, ProjectReconciler]:
    client = LaggingClient()
    labels = {"ambient-code.io/managed": "true"} if managed else {}
    client.add(NAMESPACES, {"metadata": {"name": NS, "labels": labels}})
    if access:
        client.add(PROJECT_SETTINGS, settings(*access))
    client.sync()
    if not managed:
        client.cache.pop(("namespaces", "", NS))  # the labelled cache does not hold it
    events = Events()
    resources = (("settings", PROJECT_SETTINGS), ("namespaces", NAMESPACES),
                 ("service_accounts", SERVICE_ACCOUNTS), ("roles", ROLES),
                 ("role_bindings", ROLE_BINDINGS), ("limit_ranges", pc.LIMIT_RANGES))
    fake: Any = client
    caches: Any = {name: Scoped(client, resource) for name, resource in resources}
    recorder: Any = events
    reconciler = ProjectReconciler(fake, caches=ProjectCaches(**caches), events=recorder)
    return client, events, reconciler


def test_a_managed_namespace_gets_its_settings_once() -> None:
    client, _, reconciler = project()
    reconciler.reconcile(REQUEST)
    assert client.stored(PROJECT_SETTINGS, "projectsettings") is not None
    # The cache has not shown it yet: a second pass waits instead of creating again.
    assert reconciler.reconcile(REQUEST).requeue_after > 0
    assert client.count("create", "projectsettings") == 1
    client.sync()
    reconciler.reconcile(REQUEST)
    assert client.count("create", "projectsettings") == 1


def test_existing_settings_are_never_overwritten() -> None:
    client, _, reconciler = project()
    client.add(PROJECT_SETTINGS, settings(("devs", "admin")))  # the cache has not seen it
    reconciler.reconcile(REQUEST)
    assert client.writes == [("create", "projectsettings", "projectsettings")]
    assert client.stored(PROJECT_SETTINGS, "projectsettings")["spec"]["groupAccess"] == [
        {"groupName": "devs", "role": "admin"}]


def test_an_unmanaged_namespace_gets_no_settings() -> None:
    client, _, reconciler = project(managed=False)
    reconciler.reconcile(REQUEST)
    assert client.writes == []


def test_a_pass_creates_everything_then_writes_status_once() -> None:
    client, events, reconciler = project(("devs", "edit"), ("org/x", "view"))
    reconciler.reconcile(REQUEST)
    assert client.writes == [
        ("create", "rolebindings", "devs-edit"),
        ("create", "serviceaccounts", "ambient-session-trigger"),
        ("create", "roles", "ambient-session-trigger"),
        ("create", "rolebindings", "ambient-session-trigger"),
        ("create", "limitranges", "ambient-default-limits"),
        ("patch", "projectsettings", "projectsettings")]
    assert client.stored(PROJECT_SETTINGS, "projectsettings")["status"] == {
        "groupBindingsCreated": 1, "scheduledSessionRBACReady": True, "limitRangeReady": True}
    assert [(t, r) for t, r, _ in events.recorded] == [("Warning", "InvalidGroupAccess")]
    # Before the cache shows them: no second create (expectations), no status write.
    del client.writes[:]
    reconciler.reconcile(REQUEST)
    assert client.writes == []
    client.sync()
    assert reconciler.reconcile(REQUEST).requeue_after == 0
    assert client.writes == []


def test_a_removed_entry_removes_our_binding_only() -> None:
    client, _, reconciler = project(("devs", "edit"), ("qa", "view"))
    reconciler.reconcile(REQUEST)
    theirs = copy.deepcopy(client.stored(ROLE_BINDINGS, "qa-view"))
    assert theirs is not None
    client.add(ROLE_BINDINGS, _with(theirs, metadata__name="ops-view",
                                    metadata__ownerReferences=[]))  # labelled, not ours
    stored = client.stored(PROJECT_SETTINGS, "projectsettings")
    stored["spec"]["groupAccess"] = [{"groupName": "devs", "role": "edit"}]
    client.sync()
    del client.writes[:]
    reconciler.reconcile(REQUEST)
    assert client.writes == [("delete", "rolebindings", "qa-view"),
                             ("patch", "projectsettings", "projectsettings")]
    assert client.stored(ROLE_BINDINGS, "ops-view") is not None
    assert client.stored(ROLE_BINDINGS, "ambient-session-trigger") is not None
    assert client.stored(PROJECT_SETTINGS, "projectsettings")["status"][
        "groupBindingsCreated"] == 1


def test_someone_elses_binding_of_that_name_is_left_alone() -> None:
    client, events, reconciler = project(("devs", "edit"))
    foreign = {"metadata": {"name": "devs-edit", "namespace": NS},
               "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
               "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "eve"}]}
    client.add(ROLE_BINDINGS, foreign)  # unlabelled: our cache never holds it
    before = copy.deepcopy(foreign)
    reconciler.reconcile(REQUEST)
    assert client.stored(ROLE_BINDINGS, "devs-edit") == before
    assert ("create", "rolebindings", "devs-edit") in client.writes
    assert not [w for w in client.writes if w[0] != "create" and w[2] == "devs-edit"]
    assert ("Warning", "RoleBindingNameTaken",
            "RoleBinding devs-edit exists and does not belong to these ProjectSettings; it is "
            "left alone") in events.recorded
    assert client.stored(PROJECT_SETTINGS, "projectsettings")["status"][
        "groupBindingsCreated"] == 0


def test_a_binding_upstreams_operator_made_is_adopted() -> None:
    client, _, reconciler = project(("devs", "edit"))
    made = pc.group_bindings(settings(("devs", "edit")))[0][0]
    made["metadata"].pop("ownerReferences")
    client.add(ROLE_BINDINGS, made)
    client.sync()
    reconciler.reconcile(REQUEST)
    adopted = client.stored(ROLE_BINDINGS, "devs-edit")
    assert pc.owned(adopted, settings())
    assert client.stored(PROJECT_SETTINGS, "projectsettings")["status"][
        "groupBindingsCreated"] == 1


def test_a_drifted_role_is_brought_back() -> None:
    client, _, reconciler = project(("devs", "edit"))
    reconciler.reconcile(REQUEST)
    client.stored(ROLES, "ambient-session-trigger")["rules"] = [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    client.sync()
    del client.writes[:]
    reconciler.reconcile(REQUEST)
    assert client.writes == [("patch", "roles", "ambient-session-trigger")]
    assert client.stored(ROLES, "ambient-session-trigger")["rules"] == list(pc.TRIGGER_RULES)


def test_an_earlier_settings_object_is_waited_for() -> None:
    client, events, reconciler = project(("devs", "edit"))
    old = pc.trigger_objects(settings(uid="deleted-incarnation"))[0]
    client.add(SERVICE_ACCOUNTS, old)
    client.sync()
    reconciler.reconcile(REQUEST)
    assert client.stored(SERVICE_ACCOUNTS, "ambient-session-trigger") == old
    assert client.stored(PROJECT_SETTINGS, "projectsettings")["status"][
        "scheduledSessionRBACReady"] is False
    assert not [r for _, r, _ in events.recorded if r.endswith("NameTaken")]


def test_a_transient_error_is_retried_after_the_rest_of_the_pass() -> None:
    client, _, reconciler = project(("devs", "edit"))
    client.fail[("create", "roles", "ambient-session-trigger")] = ServerError(
        503, {"reason": "ServiceUnavailable"})
    with pytest.raises(ServerError):
        reconciler.reconcile(REQUEST)
    assert client.stored(pc.LIMIT_RANGES, "ambient-default-limits") is not None
    assert client.stored(PROJECT_SETTINGS, "projectsettings")["status"] == {
        "groupBindingsCreated": 1, "scheduledSessionRBACReady": False, "limitRangeReady": True}
    client.sync()
    reconciler.reconcile(REQUEST)  # the retry
    assert client.stored(ROLES, "ambient-session-trigger") is not None
    assert client.stored(PROJECT_SETTINGS, "projectsettings")["status"][
        "scheduledSessionRBACReady"] is True


def test_an_invalid_object_is_reported_not_retried() -> None:
    client, events, reconciler = project(("devs", "edit"))
    client.fail[("create", "rolebindings", "devs-edit")] = Invalid(
        422, {"reason": "Invalid", "message": 'RoleBinding "devs-edit" is invalid'})
    assert reconciler.reconcile(REQUEST).requeue_after == 0
    assert ("Warning", "FailedRoleBinding",
            'RoleBinding devs-edit: RoleBinding "devs-edit" is invalid') in events.recorded
    assert client.stored(PROJECT_SETTINGS, "projectsettings")["status"][
        "groupBindingsCreated"] == 0


def test_a_status_write_waits_for_the_cache_to_show_it() -> None:
    client, _, reconciler = project(("devs", "edit"))
    reconciler.reconcile(REQUEST)
    patched = client.count("patch", "projectsettings")
    assert reconciler.reconcile(REQUEST).requeue_after > 0  # the cache still has no status
    assert client.count("patch", "projectsettings") == patched


def test_one_of_ours_gone_from_the_cache_before_a_pass_saw_it_is_brought_back() -> None:
    """Our label removed from the trigger ServiceAccount before any pass saw it in the cache:
    the labelled cache never shows it again, and the creation it was expected from is long
    done. The pass asks the server rather than wait for the expectation to run out."""
    client, _, reconciler = project(("devs", "edit"))
    reconciler.reconcile(REQUEST)
    trigger = client.stored(SERVICE_ACCOUNTS, "ambient-session-trigger")
    assert trigger is not None
    trigger["metadata"]["labels"] = {"team": "a"}
    client.sync()
    client.cache.pop(("serviceaccounts", NS, "ambient-session-trigger"))  # out of its scope
    del client.writes[:]
    reconciler.reconcile(REQUEST)
    assert client.writes == [("patch", "serviceaccounts", "ambient-session-trigger")]
    assert client.stored(SERVICE_ACCOUNTS, "ambient-session-trigger")["metadata"]["labels"] == {
        "ambient-code.io/managed": "true", "team": "a"}


def test_one_of_ours_deleted_before_the_cache_showed_it_is_not_made_again_at_once() -> None:
    """Deleted right after our create (garbage collection of children whose owner the server
    lost in a restore, while the cache still shows it): a pass that made it again at once
    would race the collector, create after create (a storm on the server)."""
    client, _, reconciler = project(("devs", "edit"))
    reconciler.reconcile(REQUEST)
    del client.server[("serviceaccounts", NS, "ambient-session-trigger")]
    del client.writes[:]
    for _ in range(3):
        assert reconciler.reconcile(REQUEST).requeue_after > 0
    assert client.count("create", "serviceaccounts") == 0
