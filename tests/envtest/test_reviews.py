"""TokenReview and the SubjectAccessReview kinds: tokens the server minted (and the administrator's
from its kubeconfig) reviewed as kube-apiserver reviews them, and the stored RBAC evaluated —
users, groups, service accounts; ClusterRoleBindings and RoleBindings; resource and
non-resource rules; wildcards and resourceNames; denials and their reasons. The typed python
client (authentication.k8s.io/v1, authorization.k8s.io/v1) is one of the callers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from envtest import LocalAPIServer
from envtest.auth.tokens import ISSUER
from foundation.clock import FakeClock
from tests.conftest import RawClient, typed_client

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
SARS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
SSARS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
SA_GROUPS = ["system:serviceaccounts"]


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def api(clock: FakeClock) -> Iterator[LocalAPIServer]:
    """Overrides conftest's: the server's clock is a fake one (token expiry)."""
    with LocalAPIServer(clock=clock) as server:
        yield server


def make_account(client: RawClient, namespace: str, name: str) -> dict[str, Any]:
    status, body = client.post(f"/api/v1/namespaces/{namespace}/serviceaccounts",
                               {"metadata": {"name": name}})
    assert status == 201, body
    return dict(body)


def mint(client: RawClient, namespace: str, name: str, **spec: Any) -> str:
    status, body = client.post(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
                               {"spec": spec})
    assert status == 201, body
    return str(body["status"]["token"])


def token_review(client: RawClient, token: str, *audiences: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"token": token}
    if audiences:
        spec["audiences"] = list(audiences)
    status, body = client.post(TOKEN_REVIEWS, {"apiVersion": "authentication.k8s.io/v1",
                                               "kind": "TokenReview", "spec": spec})
    assert status == 201, body
    return dict(body["status"])


def sar(client: RawClient, *, user: str = "", groups: tuple[str, ...] = (),
        **attributes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"user": user, "groups": list(groups)}
    if "path" in attributes:
        spec["nonResourceAttributes"] = attributes
    else:
        spec["resourceAttributes"] = attributes
    status, body = client.post(SARS, {"apiVersion": "authorization.k8s.io/v1",
                                      "kind": "SubjectAccessReview", "spec": spec})
    assert status == 201, body
    return dict(body["status"])


def apply(client: RawClient, kind: str, body: dict[str, Any], namespace: str = "") -> None:
    plural = kind.lower() + "s"
    path = f"{RBAC}/namespaces/{namespace}/{plural}" if namespace else f"{RBAC}/{plural}"
    status, created = client.post(path, {"apiVersion": "rbac.authorization.k8s.io/v1",
                                         "kind": kind, **body})
    assert status == 201, created


def binding(kind: str, name: str, role_kind: str, role: str,
            *subjects: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                        "name": role}, "subjects": list(subjects)}


def sa(name: str, namespace: str | None = None) -> dict[str, str]:
    subject = {"kind": "ServiceAccount", "name": name}
    if namespace:
        subject["namespace"] = namespace
    return subject


# TokenReview ---------------------------------------------------------------------------------
def test_a_minted_token_is_its_service_account(client: RawClient, namespace: str) -> None:
    account = make_account(client, namespace, "prometheus")
    status = token_review(client, mint(client, namespace, "prometheus"))
    assert status["authenticated"] is True
    assert status["audiences"] == [ISSUER]
    user = status["user"]
    assert user["username"] == f"system:serviceaccount:{namespace}:prometheus"
    assert user["uid"] == account["metadata"]["uid"]
    assert user["groups"] == [*SA_GROUPS, f"system:serviceaccounts:{namespace}",
                              "system:authenticated"]
    assert user["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")


def test_the_kubeconfigs_token_is_the_administrator(api: LocalAPIServer,
                                                    client: RawClient) -> None:
    config = yaml.safe_load(Path(api.kubeconfig).read_text())
    token = config["users"][0]["user"]["token"]
    assert token == api.cluster.admin_token and len(token) >= 32
    status = token_review(client, token)
    assert status["authenticated"] is True
    assert status["user"] == {"username": "kubernetes-admin",
                              "groups": ["system:masters", "system:authenticated"]}


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
def test_garbage_is_not_authenticated(client: RawClient, token: str) -> None:
    status = token_review(client, token)
    assert "authenticated" not in status and status["user"] == {}
    assert status["error"] == "invalid bearer token"


def test_a_token_of_another_server_is_not_authenticated(client: RawClient,
                                                        namespace: str) -> None:
    make_account(client, namespace, "bot")
    with LocalAPIServer() as other, RawClient(other.url) as there:
        assert there.post("/api/v1/namespaces", {"metadata": {"name": namespace}})[0] \
                == 201
        make_account(there, namespace, "bot")
        foreign = mint(there, namespace, "bot")
    assert token_review(client, foreign)["error"] == "invalid bearer token"


def test_tokens_expire_by_the_servers_clock(client: RawClient, namespace: str,
                                            clock: FakeClock) -> None:
    make_account(client, namespace, "short")
    token = mint(client, namespace, "short", expirationSeconds=600)
    clock.step(599)
    assert token_review(client, token)["authenticated"] is True
    clock.step(1)
    status = token_review(client, token)
    assert "authenticated" not in status
    assert status["error"] == "[invalid bearer token, service account token has expired]"


def test_a_token_outlives_neither_its_account_nor_the_object_it_is_bound_to(
        client: RawClient, namespace: str) -> None:
    make_account(client, namespace, "gone")
    token = mint(client, namespace, "gone")
    assert client.delete(f"/api/v1/namespaces/{namespace}/serviceaccounts/gone")[0] == 200
    assert token_review(client, token)["error"] == (
        f"[invalid bearer token, service account {namespace}/gone has been deleted]")
    # Recreated under the same name: a new uid, the old token still refused.
    make_account(client, namespace, "gone")
    assert "does not match claim" in token_review(client, token)["error"]
    # Bound to a Secret: valid while it exists.
    status, secret = client.post(f"/api/v1/namespaces/{namespace}/secrets",
                                 {"metadata": {"name": "holder"}})
    assert status == 201, secret
    bound = mint(client, namespace, "gone", boundObjectRef={"kind": "Secret",
                                                            "apiVersion": "v1",
                                                            "name": "holder"})
    assert token_review(client, bound)["authenticated"] is True
    assert client.delete(f"/api/v1/namespaces/{namespace}/secrets/holder")[0] == 200
    assert token_review(client, bound)["error"] == (
        f"[invalid bearer token, secret {namespace}/holder has been deleted]")


def test_audiences(client: RawClient, namespace: str) -> None:
    make_account(client, namespace, "aud")
    default = mint(client, namespace, "aud")
    custom = mint(client, namespace, "aud", audiences=["metrics", "other"])
    assert token_review(client, custom, "metrics")["audiences"] == ["metrics"]
    assert token_review(client, custom, "nope", "other")["audiences"] == ["other"]
    # No audiences asked: the server's own, which a token minted for others does not hold.
    status = token_review(client, custom)
    assert "authenticated" not in status
    assert status["error"] == ('[invalid bearer token, token audiences ["metrics" "other"] '
                               f'is invalid for the target audiences ["{ISSUER}"]]')
    assert "authenticated" not in token_review(client, default, "metrics")


def test_token_reviews_refuse_what_kube_refuses(client: RawClient) -> None:
    status, body = client.post(TOKEN_REVIEWS, {"spec": {}})
    assert (status, body["message"]) == (400, "token is required for TokenReview in "
                                              "authentication")
    assert client.post(TOKEN_REVIEWS, {"kind": "TokenRequest", "spec": {"token": "x"}})[0] \
        == 400
    # POST only: nothing is stored, so nothing can be read, listed or watched.
    assert client.get(TOKEN_REVIEWS)[0] == 405
    assert client.get(f"{TOKEN_REVIEWS}/x")[0] == 405
    assert client.delete(f"{TOKEN_REVIEWS}/x")[0] == 405


def test_discovery_lists_the_review_kinds_with_create_only(client: RawClient) -> None:
    for group, plurals in (("authentication.k8s.io", {"tokenreviews"}),
                           ("authorization.k8s.io", {"subjectaccessreviews",
                                                     "localsubjectaccessreviews",
                                                     "selfsubjectaccessreviews",
                                                     "selfsubjectrulesreviews"})):
        status, listing = client.get(f"/apis/{group}/v1")
        assert status == 200
        found = {r["name"]: r for r in listing["resources"]}
        assert set(found) == plurals
        assert all(r["verbs"] == ["create"] for r in found.values())
    assert found["localsubjectaccessreviews"]["namespaced"] is True


# SubjectAccessReview -------------------------------------------------------------------------
@pytest.fixture()
def rbac(client: RawClient, namespace: str) -> str:
    """In ``namespace``: metrics-reader (ClusterRole, /metrics) bound to the account
    ``prometheus``; a Role ``pod-reader`` bound to user alice; the ClusterRole ``secret-one``
    (get of one Secret, by name) bound in the namespace to the group ``auditors``; a
    ClusterRole with wildcards bound cluster-wide to a user ``wild-<ns>``."""
    suffix = namespace
    make_account(client, namespace, "prometheus")
    apply(client, "ClusterRole", {"metadata": {"name": f"metrics-reader-{suffix}"},
                                  "rules": [{"nonResourceURLs": ["/metrics"],
                                             "verbs": ["get"]}]})
    apply(client, "ClusterRoleBinding", binding(
        "ClusterRoleBinding", f"prometheus-{suffix}", "ClusterRole",
        f"metrics-reader-{suffix}", sa("prometheus", namespace)))
    apply(client, "Role", {"metadata": {"name": "pod-reader"},
                           "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"],
                                      "verbs": ["get", "list"]}]}, namespace)
    apply(client, "RoleBinding", binding("RoleBinding", "alice-pods", "Role", "pod-reader",
                                         {"kind": "User", "name": f"alice-{suffix}"}),
          namespace)
    apply(client, "ClusterRole", {"metadata": {"name": f"secret-one-{suffix}"},
                                  "rules": [{"apiGroups": [""], "resources": ["secrets"],
                                             "resourceNames": ["one"], "verbs": ["get"]}]})
    apply(client, "RoleBinding", binding("RoleBinding", "auditors", "ClusterRole",
                                         f"secret-one-{suffix}",
                                         {"kind": "Group", "name": f"auditors-{suffix}"}),
          namespace)
    apply(client, "ClusterRole", {"metadata": {"name": f"wild-{suffix}"}, "rules": [
        {"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["*"]},
        {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["watch"]},
        {"nonResourceURLs": ["/debug/*"], "verbs": ["get"]}]})
    apply(client, "ClusterRoleBinding", binding(
        "ClusterRoleBinding", f"wild-{suffix}", "ClusterRole", f"wild-{suffix}",
        {"kind": "User", "name": f"wild-{suffix}"}))
    return namespace


def test_a_cluster_role_grants_a_non_resource_url(client: RawClient, rbac: str) -> None:
    user = f"system:serviceaccount:{rbac}:prometheus"
    allowed = sar(client, user=user, groups=("system:serviceaccounts",), path="/metrics",
                  verb="get")
    assert allowed == {"allowed": True, "reason": (
        f'RBAC: allowed by ClusterRoleBinding "prometheus-{rbac}" of ClusterRole '
        f'"metrics-reader-{rbac}" to ServiceAccount "prometheus/{rbac}"')}
    # Another verb, another path, another account: denied, without a reason (as kube).
    assert sar(client, user=user, path="/metrics", verb="post") == {"allowed": False}
    assert sar(client, user=user, path="/metrics/extra", verb="get") == {"allowed": False}
    assert sar(client, user=f"system:serviceaccount:{rbac}:other", path="/metrics",
               verb="get") == {"allowed": False}


def test_a_role_binding_grants_in_its_namespace_only(client: RawClient, rbac: str) -> None:
    alice = f"alice-{rbac}"
    status = sar(client, user=alice, namespace=rbac, verb="list", resource="pods")
    assert status == {"allowed": True, "reason": (
        f'RBAC: allowed by RoleBinding "alice-pods/{rbac}" of Role "pod-reader" to User '
        f'"{alice}"')}
    assert sar(client, user=alice, namespace=rbac, verb="get", resource="pods",
               subresource="log")["allowed"] is True
    assert sar(client, user=alice, namespace=rbac, verb="delete", resource="pods") \
        == {"allowed": False}
    assert sar(client, user=alice, namespace="elsewhere", verb="list",
               resource="pods") == {"allowed": False}
    assert sar(client, user=alice, verb="list", resource="pods") == {"allowed": False}
    assert sar(client, user=alice, namespace=rbac, verb="list", group="apps",
               resource="pods") == {"allowed": False}


def test_resource_names_and_groups(client: RawClient, rbac: str) -> None:
    auditors = (f"auditors-{rbac}",)
    assert sar(client, user="carol", groups=auditors, namespace=rbac, verb="get",
               resource="secrets", name="one")["allowed"] is True
    for name in ("two", ""):
        assert sar(client, user="carol", groups=auditors, namespace=rbac, verb="get",
                   resource="secrets", name=name) == {"allowed": False}
    assert sar(client, user="carol", namespace=rbac, verb="get", resource="secrets",
               name="one") == {"allowed": False}


def test_wildcards(client: RawClient, rbac: str) -> None:
    wild = f"wild-{rbac}"
    for attributes in ({"verb": "patch", "group": "apps", "resource": "deployments",
                        "subresource": "status"},
                       {"verb": "update", "resource": "pods", "subresource": "status"},
                       {"verb": "watch", "group": "apps", "resource": "deployments"},
                       {"path": "/debug/pprof/heap", "verb": "get"}):
        assert sar(client, user=wild, **attributes)["allowed"] is True, attributes
    for attributes in ({"verb": "update", "resource": "pods"},
                       {"verb": "get", "resource": "pods", "subresource": "log"},
                       {"verb": "list", "group": "apps", "resource": "deployments"},
                       {"path": "/debugz", "verb": "get"}):
        assert sar(client, user=wild, **attributes) == {"allowed": False}, attributes


def test_system_masters_may_do_anything(client: RawClient) -> None:
    assert sar(client, user="root", groups=("system:masters",), verb="delete",
               resource="nodes") == {"allowed": True}


def test_a_binding_to_a_missing_role_says_so_when_it_denies(client: RawClient,
                                                            namespace: str) -> None:
    apply(client, "ClusterRoleBinding", binding(
        "ClusterRoleBinding", f"dangling-{namespace}", "ClusterRole", f"absent-{namespace}",
        {"kind": "User", "name": f"dan-{namespace}"}))
    assert sar(client, user=f"dan-{namespace}", path="/metrics", verb="get") == {
        "allowed": False,
        "reason": f'RBAC: clusterrole.rbac.authorization.k8s.io "absent-{namespace}" not found'}


def test_subject_access_reviews_refuse_what_kube_refuses(client: RawClient) -> None:
    for spec, field in (({"user": "x"}, "spec.resourceAttributes"),
                        ({"user": "x", "resourceAttributes": {"verb": "get"},
                          "nonResourceAttributes": {"verb": "get", "path": "/"}},
                         "spec.nonResourceAttributes"),
                        ({"nonResourceAttributes": {"verb": "get", "path": "/"}}, "spec.user")):
        status, body = client.post(SARS, {"spec": spec})
        assert status == 422, body
        assert body["details"]["causes"][0]["field"] == field
        assert body["details"]["kind"] == "SubjectAccessReview"


def test_local_reviews_take_the_urls_namespace(client: RawClient, rbac: str) -> None:
    path = f"/apis/authorization.k8s.io/v1/namespaces/{rbac}/localsubjectaccessreviews"
    status, body = client.post(path, {"spec": {"user": f"alice-{rbac}", "resourceAttributes": {
        "verb": "get", "resource": "pods"}}})
    assert status == 201 and body["status"]["allowed"] is True, body
    assert body["metadata"]["namespace"] == rbac
    status, body = client.post(path, {"spec": {"user": "x", "resourceAttributes": {
        "namespace": "other", "verb": "get", "resource": "pods"}}})
    assert status == 422, body


def test_self_reviews_are_the_callers(api: LocalAPIServer, client: RawClient,
                                      rbac: str) -> None:
    token = mint(client, rbac, "prometheus")
    body = {"spec": {"nonResourceAttributes": {"path": "/metrics", "verb": "get"}}}
    status, answer = client.post(SSARS, body, headers={"Authorization": f"Bearer {token}"})
    assert status == 201 and answer["status"]["allowed"] is True, answer
    body["spec"]["nonResourceAttributes"]["path"] = "/other"
    status, answer = client.post(SSARS, body, headers={"Authorization": f"Bearer {token}"})
    assert answer["status"] == {"allowed": False}
    # No token: the administrator, as every request here is.
    assert client.post(SSARS, body)[1]["status"] == {"allowed": True}


def test_the_typed_python_client(api: LocalAPIServer, client: RawClient, rbac: str) -> None:
    token = mint(client, rbac, "prometheus")
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(api.kubeconfig, client_configuration=configuration)
    with typed_client(configuration) as typed:
        review = k8s.AuthenticationV1Api(typed).create_token_review(
            k8s.V1TokenReview(spec=k8s.V1TokenReviewSpec(token=token)))
        assert review.status.authenticated is True
        user = review.status.user
        assert user.username == f"system:serviceaccount:{rbac}:prometheus"
        decision = k8s.AuthorizationV1Api(typed).create_subject_access_review(
            k8s.V1SubjectAccessReview(spec=k8s.V1SubjectAccessReviewSpec(
                user=user.username, groups=user.groups, uid=user.uid, extra=user.extra,
                non_resource_attributes=k8s.V1NonResourceAttributes(path="/metrics",
                                                                    verb="get"))))
        assert decision.status.allowed is True
        assert decision.status.reason.startswith("RBAC: allowed by ClusterRoleBinding")
        garbage = k8s.AuthenticationV1Api(typed).create_token_review(
            k8s.V1TokenReview(spec=k8s.V1TokenReviewSpec(token="garbage")))
        assert not garbage.status.authenticated


SSRRS = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"


def test_self_subject_rules_review_lists_what_the_caller_holds(client: RawClient,
                                                               rbac: str) -> None:
    token = mint(client, rbac, "prometheus")
    body = {"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
            "spec": {"namespace": rbac}}
    status, answer = client.post(SSRRS, body, headers={"Authorization": f"Bearer {token}"})
    assert status == 201, answer
    assert answer["status"]["nonResourceRules"] == [{"verbs": ["get"],
                                                     "nonResourceURLs": ["/metrics"]}]
    assert answer["status"]["resourceRules"] == [] and answer["status"]["incomplete"] is False
    # The administrator (no token) may do everything, as system:masters.
    everything = client.post(SSRRS, body)[1]["status"]
    assert everything["resourceRules"] == [{"verbs": ["*"], "apiGroups": ["*"],
                                            "resources": ["*"]}]
    assert client.post(SSRRS, {**body, "spec": {}})[0] == 400  # no namespace on request


def test_kubectl_auth_can_i(api: LocalAPIServer) -> None:
    """kubectl sends both reviews as protobuf."""
    kubectl = [str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", str(api.kubeconfig),
               "auth", "can-i"]
    done = subprocess.run([*kubectl, "create", "jobs.batch"], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "yes"
    listed = subprocess.run([*kubectl, "--list"], capture_output=True, text=True, timeout=60,
                            check=True)
    assert listed.stdout.split("\n")[1].split() == ["*.*", "[]", "[]", "[*]"]
