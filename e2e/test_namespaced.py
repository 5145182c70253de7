"""config/namespaced: the operator with namespace-scoped grants only, held to them.

* Statically: the overlay is config/default but for the RBAC — its ClusterRole keeps only what
  is cluster-scoped (the Namespace watch), the rest of config/rbac/role.yaml's rules are the
  ClusterRole ``agenticsession-operator-namespaced``, which nothing binds cluster-wide, and the
  two together are exactly config/rbac/role.yaml's; the Deployment cannot start without the
  namespace list.
* Against the local API server (real processes): ``kubectl apply -k config/namespaced``, then
  the output of ``ambient-ctrl rbac --namespace agentic-sessions``, then config/samples and a
  second managed namespace that is not listed, with a session of its own. The operator runs
  with the overlay's Deployment arguments and environment behind :mod:`e2e.rbac_proxy`, which
  authorizes each of its requests as kube-apiserver would for its ServiceAccount (RBAC and
  escalation prevention, evaluated by the server's SubjectAccessReviews) and refuses the rest
  with 403. The scenario of e2e/test_config.py runs through it (both backends: create →
  Running → drift → token refresh → stop → restart → delete; the project's settings, trigger
  RBAC, LimitRange, a group's RoleBinding). Then: nothing was refused; no namespaced kind was
  listed or watched cluster-wide; nothing was asked of the unlisted namespace, whose session
  has no status and no children; every grant the account holds was used (by a request or by an
  escalation check), but those e2e/test_config.py lists as used by retries only.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3
import yaml

from ambient_ctrl.testing import eventually, free_port, start_apiserver_process, stop_process
from reconcilers import samples
from reconcilers.namespaced import CLUSTER_ROLE, NAMESPACES_CONFIGMAP

from .conftest import Kubectl, Raw, Server
from .rbac_proxy import RBAC_GROUP, Decision, RBACProxy, rule_atoms
from .test_config import (
    CONFIG,
    MONITORING_CRDS,
    RETRY_GRANTS,
    SESSIONS_NAMESPACE,
    LocalCluster,
    drive_project,
    drive_sessions,
    http_get,
    one,
    operator_argv,
    prometheus_token,
    render,
)

pytestmark = [pytest.mark.kubectl, pytest.mark.timeout(180)]

HOME = "ambient-code"
ACCOUNT = (HOME, "agenticsession-operator")
UNLISTED = "unlisted-project"
UNLISTED_SESSION = "left-alone"
CLUSTER_SCOPED = frozenset({"namespaces", "tokenreviews", "subjectaccessreviews"})
"""Cluster-scoped kinds the operator may ask about at the cluster scope: the Namespace watch,
and the reviews of secure /metrics."""
OPERATOR_ROLES = ("ClusterRole", "agenticsession-operator")
NAMESPACED_ROLE = ("ClusterRole", CLUSTER_ROLE)


def atoms(role: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    """(group, resource, verb, resourceName or "") of every permission a role grants."""
    return {(*a.grant, a.name) for a in rule_atoms(role.get("rules") or [])}


# --------------------------------------------------------------------------------------------
# the overlay, statically
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def overlay() -> list[dict[str, Any]]:
    return render("namespaced")


def test_the_grants_are_config_rbac_split_in_two(overlay: list[dict[str, Any]]) -> None:
    default = render("default")
    everything = atoms(one(default, "ClusterRole", "agenticsession-operator"))
    cluster = atoms(one(overlay, "ClusterRole", "agenticsession-operator"))
    per_namespace = atoms(one(overlay, "ClusterRole", CLUSTER_ROLE))
    assert cluster | per_namespace == everything, \
        "config/namespaced/*role.yaml and config/rbac/role.yaml part: " \
        f"{sorted(everything ^ (cluster | per_namespace))}"
    assert not cluster & per_namespace
    assert {resource for _, resource, _, _ in cluster} <= CLUSTER_SCOPED
    # Nothing binds the per-namespace rules cluster-wide; `ambient-ctrl rbac` binds them.
    assert not [b for b in overlay if b["kind"] == "ClusterRoleBinding"
                and b["roleRef"]["name"] == CLUSTER_ROLE]
    # The rest of config/default is there unchanged, but the Deployment's namespace list.
    key = lambda o: (o["kind"], o["metadata"].get("namespace", ""),  # noqa: E731
                     o["metadata"]["name"])
    ours = {key(o): o for o in overlay}
    for obj in default:
        if obj["kind"] not in ("ClusterRole", "Deployment") or \
                obj["metadata"]["name"] != "agenticsession-operator":
            assert ours.get(key(obj)) == obj, f"{key(obj)} differs from config/default's"
    deployment = one(overlay, "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    [listed] = [v for v in container["env"] if v["name"] == "AMBIENT_CTRL_NAMESPACE"]
    ref = listed["valueFrom"]["configMapKeyRef"]
    assert ref["name"] == NAMESPACES_CONFIGMAP and not ref.get("optional"), \
        "without the list the operator must not start (it would run cluster-wide, unallowed)"


# --------------------------------------------------------------------------------------------
# the operator held to them
# --------------------------------------------------------------------------------------------
@dataclass
class NamespacedRun:
    decisions: list[Decision]
    refused: list[tuple[str, str, str]]
    unlisted_session: dict[str, Any]
    unlisted_objects: list[str]
    bindings: list[dict[str, Any]]
    roles: dict[tuple[str, str, str], dict[str, Any]]
    """(kind, namespace, name) → the role, of every role bound to the operator's account."""


def proxy_kubeconfig(source: Path, url: str, target: Path) -> Path:
    config = yaml.safe_load(source.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = url
    target.write_text(yaml.safe_dump(config))
    target.chmod(0o600)
    return target


def bound_roles(raw: Raw) -> tuple[list[dict[str, Any]],
                                   dict[tuple[str, str, str], dict[str, Any]]]:
    """The bindings naming the operator's account, and the roles they bind."""
    api = f"/apis/{RBAC_GROUP}/v1"
    bindings = [b for kind in ("clusterrolebindings", "rolebindings")
                for b in raw.obj(f"{api}/{kind}")["items"]
                if any(s["kind"] == "ServiceAccount" and s["name"] == ACCOUNT[1]
                       and s.get("namespace") == ACCOUNT[0] for s in b.get("subjects") or ())]
    roles = {}
    for binding in bindings:
        ref, namespace = binding["roleRef"], binding["metadata"].get("namespace", "")
        path = (f"{api}/clusterroles/{ref['name']}" if ref["kind"] == "ClusterRole"
                else f"{api}/namespaces/{namespace}/roles/{ref['name']}")
        roles[(ref["kind"], namespace if ref["kind"] == "Role" else "", ref["name"])] = \
            raw.obj(path)
    return bindings, roles


def unlisted_project(kubectl: Kubectl) -> None:
    """A second managed namespace (a project the backend made) with its runner Secret and a
    session, not in the operator's list."""
    kubectl("create", "namespace", UNLISTED)
    kubectl("label", "namespace", UNLISTED, "ambient-code.io/managed=true")
    kubectl("create", "secret", "generic", "-n", UNLISTED, "ambient-runner-secrets",
            "--from-literal=ANTHROPIC_API_KEY=sk-test")
    session = samples.backend_session(UNLISTED, name=UNLISTED_SESSION)
    del session["spec"]["project"], session["status"]
    kubectl("apply", "-f", "-", input=orjson.dumps(session).decode())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A server with config/namespaced, the grants in agentic-sessions, config/samples and the
    unlisted project applied."""
    tmp = tmp_path_factory.mktemp("namespaced")
    admin_port = free_port()
    process, url, kubeconfig = start_apiserver_process(
        tmp / "kubeconfig", log=tmp / "apiserver.log", bookmark_interval=1, timeout=30,
        extra_args=["--simulate", "kubelet,kubevirt", "--admin-port", str(admin_port)])
    raw = Raw(kubeconfig)
    try:
        server = Server(url, kubeconfig, tmp / "kube-cache", tmp / "apiserver.log", process, raw)
        kubectl = Kubectl(server)
        kubectl("apply", "-f", "-", input=MONITORING_CRDS)
        kubectl("apply", "-k", str(CONFIG / "namespaced"))
        printed = subprocess.run([sys.executable, "-m", "ambient_ctrl.cli", "rbac",
                                  "--namespace", SESSIONS_NAMESPACE], capture_output=True,
                                 text=True, timeout=60, check=True).stdout
        kubectl("apply", "-k", str(CONFIG / "samples"))
        kubectl("apply", "-f", "-", input=printed)
        unlisted_project(kubectl)
        yield LocalCluster(server, kubectl, f"http://127.0.0.1:{admin_port}")
    finally:
        raw.close()
        code = stop_process(process, timeout=10)
        assert code == 0, f"the API server did not shut down cleanly ({code})"


@pytest.fixture(scope="module")
def proxy(cluster: LocalCluster) -> Iterator[RBACProxy]:
    with RBACProxy(cluster.server.url, ACCOUNT) as running:
        yield running


@pytest.fixture(scope="module")
def run(cluster: LocalCluster, proxy: RBACProxy, overlay: list[dict[str, Any]],
        tmp_path_factory: pytest.TempPathFactory) -> NamespacedRun:
    """The operator behind the proxy through the scenario; stopped before the answer."""
    tmp = tmp_path_factory.mktemp("operator")
    raw = cluster.server.raw
    metrics, probes = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    log = tmp / "operator.log"
    argv, env = operator_argv(one(overlay, "Deployment"),
                              proxy_kubeconfig(cluster.server.kubeconfig, proxy.url,
                                               tmp / "kubeconfig"), metrics, probes, raw)
    assert env["AMBIENT_CTRL_NAMESPACE"] == SESSIONS_NAMESPACE
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, env={**cluster.kubectl.env, **env},
                                   stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        eventually(lambda: http_get(f"http://{probes}/readyz")[0] == 200, timeout=30,
                   ignoring=(OSError,), message=f"the operator never became ready ({log})")
        drive_sessions(cluster, f"https://{metrics}/metrics", prometheus_token(cluster))
        drive_project(cluster)
        # By now the operator has had every chance to touch the unlisted project.
        session = raw.obj(f"/apis/vteam.ambient-code/v1alpha1/namespaces/{UNLISTED}"
                          f"/agenticsessions/{UNLISTED_SESSION}")
        touched = [f"{kind} {o['metadata']['name']}" for kind, path in (
            ("pod", "/api/v1/namespaces/{ns}/pods"),
            ("service", "/api/v1/namespaces/{ns}/services"),
            ("serviceaccount", "/api/v1/namespaces/{ns}/serviceaccounts"),
            ("role", f"/apis/{RBAC_GROUP}/v1/namespaces/{{ns}}/roles"),
            ("rolebinding", f"/apis/{RBAC_GROUP}/v1/namespaces/{{ns}}/rolebindings"),
            ("projectsettings",
             "/apis/vteam.ambient-code/v1alpha1/namespaces/{ns}/projectsettings"),
            ("event", "/api/v1/namespaces/{ns}/events"))
            for o in raw.obj(path.format(ns=UNLISTED))["items"]]
        # The namespace's default ServiceAccount is the control plane's, there from the start.
        touched.remove("serviceaccount default")
        touched += [f"secret {s['metadata']['name']}" for s in raw.obj(
            f"/api/v1/namespaces/{UNLISTED}/secrets")["items"]
            if s["metadata"]["name"] != "ambient-runner-secrets"]
    finally:
        code = stop_process(process, timeout=40)
    assert code == 0, f"the operator exited {code}; see {log}"
    bindings, roles = bound_roles(raw)
    return NamespacedRun(list(proxy.decisions), list(proxy.refused), session, touched,
                         bindings, roles)


@pytest.mark.local_only("runs the operator behind an authorizing proxy against the local "
                        "API server's SubjectAccessReviews")
def test_the_operator_needs_no_more_than_the_namespaced_grants(run: NamespacedRun) -> None:
    assert run.decisions, "the proxy saw no request"
    assert not run.refused, f"refused: {run.refused}"
    requests = [d for d in run.decisions if not d.escalation]
    # No namespaced kind read (or written) at the cluster scope.
    wide = sorted({d.attributes.grant for d in requests if not d.attributes.namespace
                   and d.attributes.resource not in CLUSTER_SCOPED})
    assert not wide, f"cluster-wide requests of namespaced kinds: {wide}"
    assert {d.attributes.grant for d in requests if not d.attributes.namespace} >= {
        ("", "namespaces", "list"), ("", "namespaces", "watch")}
    # Only the listed namespace and the operator's own were asked about.
    assert {d.attributes.namespace for d in run.decisions} - {""} == {SESSIONS_NAMESPACE, HOME}
    # Escalation prevention was exercised: the runner's and the trigger's Roles (permissions
    # held) and a group's RoleBinding (bind on ambient-project-edit, in that namespace).
    checks = {d.attributes.grant for d in run.decisions if d.escalation and d.allowed}
    assert (RBAC_GROUP, "clusterroles", "bind") in checks
    assert ("vteam.ambient-code", "agenticsessions", "update") in checks
    assert ("authorization.k8s.io", "selfsubjectaccessreviews", "create") in checks


@pytest.mark.local_only("runs the operator behind an authorizing proxy against the local "
                        "API server's SubjectAccessReviews")
def test_a_managed_namespace_not_listed_is_left_alone(run: NamespacedRun) -> None:
    assert not run.unlisted_session.get("status"), run.unlisted_session.get("status")
    assert not run.unlisted_objects, f"made in {UNLISTED}: {run.unlisted_objects}"


@pytest.mark.local_only("runs the operator behind an authorizing proxy against the local "
                        "API server's SubjectAccessReviews")
def test_every_grant_is_used(run: NamespacedRun) -> None:
    """Each role bound to the operator's account: every (group, resource, verb) it grants was
    allowed through it, for a request or an escalation check — but the retry-only grants
    e2e/test_config.py lists."""
    used: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
    for decision in run.decisions:
        if decision.allowed and decision.role is not None:
            used.setdefault(decision.role, set()).add(decision.attributes.grant)
    bound = {(kind, name) for kind, _, name in run.roles}
    assert {OPERATOR_ROLES, NAMESPACED_ROLE} <= bound
    # The per-namespace rules are bound in the listed namespace only, by `ambient-ctrl rbac`.
    assert [b["metadata"]["namespace"] for b in run.bindings
            if b["roleRef"]["name"] == CLUSTER_ROLE] == [SESSIONS_NAMESPACE]
    for (kind, namespace, name), role in run.roles.items():
        granted = {grant[:3] for grant in atoms(role)}
        unused = granted - used.get((kind, name), set())
        if (kind, name) == NAMESPACED_ROLE:
            unused -= set(RETRY_GRANTS)
        assert not unused, f"{kind} {namespace}/{name} grants, unused: {sorted(unused)}"


@pytest.mark.local_only("runs the operator behind an authorizing proxy against the local "
                        "API server's SubjectAccessReviews")
def test_the_proxy_refuses_what_kube_would(run: NamespacedRun, proxy: RBACProxy,
                                           cluster: LocalCluster) -> None:
    """The proxy is no pass-through: as the operator's account, what the namespaced grants do
    not cover is refused 403 — reads elsewhere, escalations — and what they cover is not."""
    assert run.decisions  # after the operator's run: its decisions are taken
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "reads-nodes"},
         "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]}))
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(10))
    ns = SESSIONS_NAMESPACE

    def send(method: str, path: str, body: dict[str, Any] | None = None) -> int:
        return http.request(method, proxy.url + path, body=None if body is None
                            else orjson.dumps(body), headers={
                                "Content-Type": "application/json"}).status

    rbac = f"/apis/{RBAC_GROUP}/v1/namespaces/{ns}"
    binding = {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "RoleBinding",
               "subjects": [{"kind": "Group", "name": "devs",
                             "apiGroup": RBAC_GROUP}]}
    assert send("GET", "/api/v1/pods") == 403  # cluster-wide
    assert send("GET", f"/api/v1/namespaces/{UNLISTED}/secrets") == 403  # unlisted
    assert send("GET", f"/api/v1/namespaces/{HOME}/secrets") == 403  # only some, by name
    assert send("GET", f"/api/v1/namespaces/{HOME}/secrets?fieldSelector=metadata.name%3D"
                       "minio-credentials") == 200
    assert send("GET", f"/api/v1/namespaces/{ns}/pods") == 200
    assert send("GET", "/api/v1/nodes") == 403
    # Escalation: a Role with a permission the account lacks; a binding of a ClusterRole it
    # neither holds nor may bind. Binding an ambient-project-* ClusterRole it may.
    assert send("POST", f"{rbac}/roles", {
        "apiVersion": f"{RBAC_GROUP}/v1", "kind": "Role", "metadata": {"name": "nodes"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["deletecollection"]}]
    }) == 403
    assert send("POST", f"{rbac}/rolebindings", {
        **binding, "metadata": {"name": "wide"},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "reads-nodes"}
    }) == 403
    assert send("POST", f"{rbac}/rolebindings", {
        **binding, "metadata": {"name": "viewers"},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole",
                    "name": "ambient-project-view"}}) == 201
    assert send("POST", f"/apis/{RBAC_GROUP}/v1/namespaces/{UNLISTED}/rolebindings", {
        **binding, "metadata": {"name": "viewers"},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole",
                    "name": "ambient-project-view"}}) == 403
    assert [message for _, _, message in proxy.refused if "not currently held" in message]
