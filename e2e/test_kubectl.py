"""kubectl 1.37 (the virtualenv's) against ``ambient-ctrl apiserver`` running as its own process.

Every test reads the resulting cluster state back (``kubectl get -o json`` or raw JSON over HTTP);
none of them looks at the server's log. With ``E2E_KUBECONFIG`` they run against that cluster.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ambient_ctrl.testing import eventually

from .conftest import Cleanup, Kubectl, Raw, unique

pytestmark = [pytest.mark.kubectl, pytest.mark.timeout(120)]

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com"
CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Ready, type: boolean, jsonPath: .status.ready}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string}
          status:
            type: object
            properties:
              ready: {type: boolean}
"""


def widget(namespace: str, name: str, size: int | str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: example.com/v1
        kind: Widget
        metadata: {{name: {name}, namespace: {namespace}}}
        spec: {{size: {size}, color: blue}}
        """)


def cm_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps/{name}"


def table(output: str) -> list[list[str]]:
    """``kubectl get`` table output as rows of cells (cells are separated by 2+ spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines()]


def test_version_and_api_resources(kubectl: Kubectl) -> None:
    version = json.loads(kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["major"] == "1"
    resources = table(kubectl("api-resources", "--namespaced=true").stdout)
    assert resources[0][:2] == ["NAME", "SHORTNAMES"]
    found = {(row[0], row[-1]) for row in resources[1:]}
    assert {("configmaps", "ConfigMap"), ("pods", "Pod"), ("services", "Service"),
            ("secrets", "Secret")} <= found
    assert not {row[0] for row in resources[1:]} & {"namespaces", "customresourcedefinitions"}


# generator commands: protobuf bodies -------------------------------------------------------------
def test_create_namespace_configmap_and_secret(kubectl: Kubectl, raw: Raw,
                                               cleanup: Cleanup) -> None:
    ns = unique("proto")
    cleanup.add(f"/api/v1/namespaces/{ns}")
    assert kubectl("create", "namespace", ns).stdout.strip() == f"namespace/{ns} created"
    kubectl("-n", ns, "create", "configmap", "settings", "--from-literal=color=blue",
            "--from-literal=size=3")
    kubectl("-n", ns, "create", "secret", "generic", "creds", "--from-literal=password=s3cret")

    namespace = raw.obj(f"/api/v1/namespaces/{ns}")
    assert namespace["status"]["phase"] == "Active"
    cm = kubectl.json("-n", ns, "get", "configmap", "settings")
    assert cm["data"] == {"color": "blue", "size": "3"}
    assert cm["metadata"]["uid"] and cm["metadata"]["resourceVersion"]
    secret = raw.obj(f"/api/v1/namespaces/{ns}/secrets/creds")
    assert secret["type"] == "Opaque"
    assert secret["data"] == {"password": "czNjcmV0"}  # base64 of "s3cret"


def test_create_deployment(kubectl: Kubectl, namespace: str) -> None:
    out = kubectl("-n", namespace, "create", "deployment", "api",
                  "--image=registry.example/api:v2", "--replicas=3", "--port=8080").stdout
    assert out.strip() == "deployment.apps/api created"
    kubectl("-n", namespace, "create", "deployment", "sleeper", "--image=busybox:1.36",
            "--replicas=0", "--", "sleep", "3600")

    api = kubectl.json("-n", namespace, "get", "deployment", "api")
    assert api["metadata"]["labels"] == {"app": "api"}
    assert api["metadata"]["uid"] and api["metadata"]["generation"] == 1
    # What kubectl sent, with kube-apiserver's defaults (apps/v1 and the pod template's).
    assert api["spec"] == {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "api"}},
        "template": {"metadata": {"labels": {"app": "api"}},
                     "spec": {"containers": [{"name": "api", "image": "registry.example/api:v2",
                                              "ports": [{"containerPort": 8080,
                                                         "protocol": "TCP"}],
                                              "resources": {},
                                              "imagePullPolicy": "IfNotPresent",
                                              "terminationMessagePath": "/dev/termination-log",
                                              "terminationMessagePolicy": "File"}],
                              "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                              "schedulerName": "default-scheduler", "securityContext": {},
                              "terminationGracePeriodSeconds": 30}},
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    }
    sleeper = kubectl.json("-n", namespace, "get", "deployment", "sleeper")["spec"]
    assert sleeper["replicas"] == 0  # a pointer: zero is sent and kept
    assert [(c["name"], c["command"]) for c in sleeper["template"]["spec"]["containers"]] == [
        ("busybox", ["sleep", "3600"])]


def test_create_role(kubectl: Kubectl, namespace: str) -> None:
    out = kubectl("-n", namespace, "create", "role", "pod-reader", "--verb=get,list,watch",
                  "--resource=pods,pods/status,deployments.apps", "--resource-name=web").stdout
    assert out.strip() == "role.rbac.authorization.k8s.io/pod-reader created"
    role = kubectl.json("-n", namespace, "get", "role", "pod-reader")
    assert role["metadata"]["namespace"] == namespace
    assert role["rules"] == [
        {"verbs": ["get", "list", "watch"], "apiGroups": [""],
         "resources": ["pods", "pods/status"], "resourceNames": ["web"]},
        {"verbs": ["get", "list", "watch"], "apiGroups": ["apps"], "resources": ["deployments"],
         "resourceNames": ["web"]},
    ]


def test_create_rolebinding(kubectl: Kubectl, namespace: str) -> None:
    out = kubectl("-n", namespace, "create", "rolebinding", "readers", "--role=pod-reader",
                  "--user=alice", "--group=devs", f"--serviceaccount={namespace}:robot").stdout
    assert out.strip() == "rolebinding.rbac.authorization.k8s.io/readers created"
    kubectl("-n", namespace, "create", "rolebinding", "viewers", "--clusterrole=view")

    readers = kubectl.json("-n", namespace, "get", "rolebinding", "readers")
    assert readers["subjects"] == [
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"},
        {"kind": "ServiceAccount", "name": "robot", "namespace": namespace},
    ]
    assert readers["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "pod-reader"}
    viewers = kubectl.json("-n", namespace, "get", "rolebinding", "viewers")
    assert "subjects" not in viewers
    assert viewers["roleRef"]["kind"] == "ClusterRole"


def test_create_clusterrole(kubectl: Kubectl, cleanup: Cleanup) -> None:
    reader, aggregated = unique("reader"), unique("aggregated")
    for name in (reader, aggregated):
        cleanup.add(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}")
    out = kubectl("create", "clusterrole", reader, "--verb=get",
                  "--resource=namespaces,roles.rbac.authorization.k8s.io",
                  "--non-resource-url=/healthz", "--non-resource-url=/logs/*").stdout
    assert out.strip() == f"clusterrole.rbac.authorization.k8s.io/{reader} created"
    kubectl("create", "clusterrole", aggregated,
            "--aggregation-rule=rbac.example.com/aggregate-to-monitoring=true,tier=ops")

    role = kubectl.json("get", "clusterrole", reader)
    assert "namespace" not in role["metadata"]
    assert role["rules"] == [
        {"verbs": ["get"], "apiGroups": [""], "resources": ["namespaces"]},
        {"verbs": ["get"], "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"]},
        {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/logs/*"]},
    ]
    role = kubectl.json("get", "clusterrole", aggregated)
    assert role["rules"] is None  # no omitempty: kubectl sent null too
    assert role["aggregationRule"] == {"clusterRoleSelectors": [
        {"matchLabels": {"rbac.example.com/aggregate-to-monitoring": "true", "tier": "ops"}}]}


@pytest.mark.local_only("binds cluster-admin to kube-system:default, which no real cluster "
                        "should grant even for a moment")
def test_create_clusterrolebinding(kubectl: Kubectl, cleanup: Cleanup) -> None:
    name = unique("root")
    cleanup.add(f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{name}")
    out = kubectl("create", "clusterrolebinding", name, "--clusterrole=cluster-admin",
                  "--user=root", "--group=system:masters",
                  "--serviceaccount=kube-system:default").stdout
    assert out.strip() == f"clusterrolebinding.rbac.authorization.k8s.io/{name} created"
    binding = kubectl.json("get", "clusterrolebinding", name)
    assert binding["subjects"] == [
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "root"},
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:masters"},
        {"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"},
    ]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": "cluster-admin"}


def test_auth_reconcile_creates_then_updates_with_protobuf(kubectl: Kubectl, namespace: str,
                                                          cleanup: Cleanup) -> None:
    role = unique("recon")
    cleanup.add(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}")

    def manifest(verbs: list[str], users: list[str]) -> str:
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": role},
             "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": verbs}]},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "recon", "namespace": namespace},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                         "name": role},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u}
                          for u in users]}]})

    kubectl("auth", "reconcile", "-f", "-", input=manifest(["get"], ["carol"]))  # POSTs
    kubectl("auth", "reconcile", "-f", "-", input=manifest(["list"], ["dave"]))  # PUTs
    rules = kubectl.json("get", "clusterrole", role)["rules"]
    assert [(r["resources"], r["verbs"]) for r in rules] == [(["pods"], ["get"]),
                                                             (["pods"], ["list"])]
    binding = kubectl.json("-n", namespace, "get", "rolebinding", "recon")
    assert [s["name"] for s in binding["subjects"]] == ["carol", "dave"]
    assert binding["metadata"]["generation"] == 2


# CRDs and custom resources ----------------------------------------------------------------------
def test_crd_and_custom_resource_from_yaml(kubectl: Kubectl, raw: Raw, namespace: str,
                                           tmp_path: Path, module_cleanup: Cleanup) -> None:
    (tmp_path / "crd.yaml").write_text(CRD)
    (tmp_path / "widget.yaml").write_text(widget(namespace, "w1", 3))
    module_cleanup.add(CRD_PATH)
    kubectl("apply", "-f", str(tmp_path / "crd.yaml"))
    kubectl("wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=20s")
    crd = raw.obj(CRD_PATH)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"

    out = kubectl("apply", "-f", str(tmp_path / "widget.yaml")).stdout
    assert out.strip() == "widget.example.com/w1 created"
    stored = raw.obj(f"/apis/example.com/v1/namespaces/{namespace}/widgets/w1")
    assert stored["spec"] == {"size": 3, "color": "blue"}
    (tmp_path / "widget.yaml").write_text(widget(namespace, "w1", 4))
    out = kubectl("apply", "-f", str(tmp_path / "widget.yaml")).stdout  # a merge patch
    assert out.strip() == "widget.example.com/w1 configured"
    stored = raw.obj(f"/apis/example.com/v1/namespaces/{namespace}/widgets/w1")
    assert (stored["spec"]["size"], stored["metadata"]["generation"]) == (4, 2)

    kubectl("-n", namespace, "patch", "widget", "w1", "--subresource=status", "--type=merge",
            "-p", '{"status": {"ready": true}}')
    rows = table(kubectl("-n", namespace, "get", "widgets").stdout)
    assert rows[0] == ["NAME", "SIZE", "READY"]
    assert rows[1] == ["w1", "4", "true"]

    listed = kubectl.json("-n", namespace, "get", "widgets")
    assert [(i["kind"], i["metadata"]["name"], i["spec"]["size"], i["status"]["ready"])
            for i in listed["items"]] == [("Widget", "w1", 4, True)]
    short = kubectl("-n", namespace, "get", "wg", "-o", "name").stdout  # short name: discovery
    assert short.split() == ["widget.example.com/w1"]


# watches -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("output", [
    ["--output-watch-events"],
    ["--output-watch-events", "-o",
     'jsonpath={.type} {.object.metadata.name} {.object.data.step}{"\\n"}'],
], ids=["table", "jsonpath"])
def test_get_watch_sees_changes_and_keeps_watching(kubectl: Kubectl, namespace: str,
                                                   output: list[str]) -> None:
    kubectl("-n", namespace, "create", "configmap", "before", "--from-literal=step=0")
    watch = kubectl.popen("-n", namespace, "get", "configmaps", "-w", *output)
    watch.wait_for_line(lambda line: line.split()[:2] == ["ADDED", "before"])

    kubectl("-n", namespace, "create", "configmap", "during", "--from-literal=step=1")
    watch.wait_for_line(lambda line: line.split()[:2] == ["ADDED", "during"])
    kubectl("-n", namespace, "patch", "configmap", "before", "--type=merge",
            "-p", '{"data": {"step": "2", "more": "x"}}')
    modified = watch.wait_for_line(lambda line: line.split()[:2] == ["MODIFIED", "before"])
    if "jsonpath" in " ".join(output):
        assert modified.split() == ["MODIFIED", "before", "2"]
    else:
        assert modified.split()[2] == "2"  # the DATA column: two keys now
    kubectl("-n", namespace, "delete", "configmap", "during")
    watch.wait_for_line(lambda line: line.split()[:2] == ["DELETED", "during"])
    assert watch.running(), f"kubectl get -w stopped watching: {watch.stderr}"


def test_delete_wait_blocks_until_the_finalizer_is_removed(kubectl: Kubectl, raw: Raw,
                                                           namespace: str) -> None:
    kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "held", "namespace": namespace,
                     "finalizers": ["example.com/hold"]},
        "data": {"a": "b"}}))
    deleting = kubectl.popen("-n", namespace, "delete", "configmap", "held", "--wait=true",
                             "--timeout=30s")

    def marked() -> bool:
        return bool(raw.obj(cm_path(namespace, "held"))["metadata"].get("deletionTimestamp"))

    eventually(marked, timeout=15, message="deletionTimestamp never set")
    deleting.wait_for_line(lambda line: "deleted" in line)  # kubectl now waits for it to go
    with pytest.raises(subprocess.TimeoutExpired):  # and keeps waiting while the finalizer stays
        deleting.wait(timeout=2)
    assert not raw.absent(cm_path(namespace, "held"))
    kubectl("-n", namespace, "patch", "configmap", "held", "--type=json",
            "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]')
    assert deleting.wait(timeout=30) == 0, deleting.stderr
    assert raw.absent(cm_path(namespace, "held"))


# edits -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "expected"), [
    (["patch", "--type=merge", "-p", '{"data": {"b": "2", "a": null}}'],
     {"data": {"b": "2"}}),
    (["patch", "--type=json", "-p",
      '[{"op": "test", "path": "/data/a", "value": "1"}, '
      '{"op": "replace", "path": "/data/a", "value": "9"}]'],
     {"data": {"a": "9"}}),
    (["patch", "-p", '{"metadata": {"labels": {"via": "strategic"}}}'],
     {"data": {"a": "1"}, "labels": {"via": "strategic"}}),
    (["label", "tier=web", "team=core"],
     {"data": {"a": "1"}, "labels": {"tier": "web", "team": "core"}}),
    (["annotate", "note=hello world"],
     {"data": {"a": "1"}, "annotations": {"note": "hello world"}}),
], ids=["merge-patch", "json-patch", "strategic-patch", "label", "annotate"])
def test_edit_commands(kubectl: Kubectl, raw: Raw, namespace: str, args: list[str],
                       expected: dict[str, dict[str, str]]) -> None:
    kubectl("-n", namespace, "create", "configmap", "target", "--from-literal=a=1")
    before = raw.obj(cm_path(namespace, "target"))
    kubectl("-n", namespace, args[0], "configmap", "target", *args[1:])
    after = raw.obj(cm_path(namespace, "target"))
    assert after.get("data") == expected["data"]
    assert after["metadata"].get("labels", {}) == expected.get("labels", {})
    assert after["metadata"].get("annotations", {}) == expected.get("annotations", {})
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])


def test_failed_json_patch_test_is_rejected(kubectl: Kubectl, raw: Raw, namespace: str) -> None:
    kubectl("-n", namespace, "create", "configmap", "guarded", "--from-literal=a=1")
    done = kubectl("-n", namespace, "patch", "configmap", "guarded", "--type=json", "-p",
                   '[{"op": "test", "path": "/data/a", "value": "2"}, '
                   '{"op": "remove", "path": "/data/a"}]', check=False)
    assert done.returncode != 0
    assert "is invalid" in done.stderr
    assert raw.obj(cm_path(namespace, "guarded"))["data"] == {"a": "1"}


def test_client_side_apply_three_way_merge(kubectl: Kubectl, raw: Raw, namespace: str,
                                           tmp_path: Path) -> None:
    manifest = tmp_path / "cm.yaml"

    def write(data: dict[str, str]) -> None:
        manifest.write_text(json.dumps({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "applied", "namespace": namespace}, "data": data}))

    def last_applied() -> dict[str, object]:
        annotations = raw.obj(cm_path(namespace, "applied"))["metadata"]["annotations"]
        return dict(json.loads(annotations["kubectl.kubernetes.io/last-applied-configuration"]))

    write({"a": "1", "b": "2"})
    assert kubectl("apply", "-f", str(manifest)).stdout.strip() == "configmap/applied created"
    assert last_applied()["data"] == {"a": "1", "b": "2"}
    kubectl("-n", namespace, "patch", "configmap", "applied", "--type=merge",
            "-p", '{"data": {"other": "kept"}}')  # someone else's field

    write({"a": "1", "c": "3"})  # b removed from the file, c added
    assert kubectl("apply", "-f", str(manifest)).stdout.strip() == "configmap/applied configured"
    obj = raw.obj(cm_path(namespace, "applied"))
    assert obj["data"] == {"a": "1", "c": "3", "other": "kept"}
    assert last_applied()["data"] == {"a": "1", "c": "3"}

    version = obj["metadata"]["resourceVersion"]
    assert kubectl("apply", "-f", str(manifest)).stdout.strip() == "configmap/applied unchanged"
    assert raw.obj(cm_path(namespace, "applied"))["metadata"]["resourceVersion"] == version


def test_server_side_apply_and_conflicts(kubectl: Kubectl, raw: Raw, namespace: str) -> None:
    def manifest(value: str) -> str:
        return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "ssa", "namespace": namespace},
                           "data": {"k": value}})

    out = kubectl("apply", "--server-side", "-f", "-", input=manifest("one")).stdout
    assert out.strip() == "configmap/ssa serverside-applied"
    obj = raw.obj(cm_path(namespace, "ssa"))
    assert obj["data"] == {"k": "one"}
    assert [(m["manager"], m["operation"]) for m in obj["metadata"]["managedFields"]] == [
        ("kubectl", "Apply")]

    conflict = kubectl("apply", "--server-side", "--field-manager=other", "-f", "-",
                       input=manifest("two"), check=False)
    assert conflict.returncode != 0
    assert "conflict" in conflict.stderr.lower()
    assert raw.obj(cm_path(namespace, "ssa"))["data"] == {"k": "one"}

    kubectl("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-f", "-",
            input=manifest("two"))
    obj = raw.obj(cm_path(namespace, "ssa"))
    assert obj["data"] == {"k": "two"}
    assert [m["manager"] for m in obj["metadata"]["managedFields"]] == ["other"]


def test_replace_and_server_dry_runs(kubectl: Kubectl, raw: Raw, namespace: str) -> None:
    kubectl("-n", namespace, "create", "configmap", "live", "--from-literal=a=1")
    current = kubectl.json("-n", namespace, "get", "configmap", "live")

    current["data"] = {"a": "2"}
    changed = json.dumps(current)
    diff = kubectl("diff", "-f", "-", input=changed, check=False)  # a server-side dry-run patch
    assert diff.returncode == 1, diff.stderr
    assert '-  a: "1"' in diff.stdout and '+  a: "2"' in diff.stdout
    assert kubectl("-n", namespace, "create", "configmap", "ghost", "--from-literal=a=1",
                   "--dry-run=server", "-o", "name").stdout.strip() == "configmap/ghost"
    assert raw.absent(cm_path(namespace, "ghost"))
    assert raw.obj(cm_path(namespace, "live"))["data"] == {"a": "1"}

    assert kubectl("replace", "-f", "-", input=changed).stdout.strip() == (
        "configmap/live replaced")
    assert raw.obj(cm_path(namespace, "live"))["data"] == {"a": "2"}
    assert kubectl("diff", "-f", "-", input=changed).returncode == 0
    stale = kubectl("replace", "-f", "-", input=changed, check=False)  # its resourceVersion
    assert stale.returncode != 0 and "the object has been modified" in stale.stderr


def test_list_pages_and_selectors(kubectl: Kubectl, namespace: str) -> None:
    for i in range(5):
        kubectl("-n", namespace, "create", "configmap", f"item-{i}", f"--from-literal=i={i}")
        kubectl("-n", namespace, "label", "configmap", f"item-{i}",
                f"parity={'odd' if i % 2 else 'even'}")
    names = kubectl("-n", namespace, "get", "configmaps", "--chunk-size=2", "-o", "name")
    assert names.stdout.split() == [f"configmap/item-{i}" for i in range(5)]
    odd = kubectl("-n", namespace, "get", "configmaps", "-l", "parity=odd", "-o", "name")
    assert odd.stdout.split() == ["configmap/item-1", "configmap/item-3"]
    one = kubectl("-n", namespace, "get", "configmaps", "--field-selector",
                  "metadata.name=item-4", "-o", "name")
    assert one.stdout.split() == ["configmap/item-4"]
    kubectl("-n", namespace, "delete", "configmaps", "-l", "parity=even")
    left = kubectl("-n", namespace, "get", "configmaps", "-o", "name")
    assert left.stdout.split() == ["configmap/item-1", "configmap/item-3"]


def test_delete(kubectl: Kubectl, raw: Raw, namespace: str) -> None:
    kubectl("-n", namespace, "create", "configmap", "doomed", "--from-literal=a=1")
    kubectl("-n", namespace, "create", "configmap", "spared", "--from-literal=a=1")
    out = kubectl("-n", namespace, "delete", "configmap", "doomed").stdout
    assert "deleted" in out
    assert raw.absent(cm_path(namespace, "doomed"))
    assert not raw.absent(cm_path(namespace, "spared"))
    missing = kubectl("-n", namespace, "delete", "configmap", "doomed", check=False)
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr


def test_delete_namespace_with_contents(kubectl: Kubectl, raw: Raw, cleanup: Cleanup) -> None:
    ns = unique("doomed")
    cleanup.add(f"/api/v1/namespaces/{ns}")  # should it not be deleted below
    kubectl("create", "namespace", ns)
    kubectl("-n", ns, "create", "configmap", "inside", "--from-literal=a=1")
    kubectl("-n", ns, "run", "pod-inside", "--image=busybox")
    out = kubectl("delete", "namespace", ns, "--timeout=30s").stdout  # waits until it is gone
    assert out.strip() == f'namespace "{ns}" deleted'
    assert raw.absent(f"/api/v1/namespaces/{ns}")
    assert raw.absent(cm_path(ns, "inside"))
    assert raw.absent(f"/api/v1/namespaces/{ns}/pods/pod-inside")


# errors ------------------------------------------------------------------------------------------
POD_WITHOUT_CONTAINERS = """\
apiVersion: v1
kind: Pod
metadata: {name: empty-pod}
spec: {containers: []}
"""


@pytest.mark.parametrize(("args", "manifest", "path", "expected"), [
    (["create", "configmap", "Bad_Name", "--from-literal=a=b"], None,
     "/api/v1/namespaces/{ns}/configmaps/Bad_Name",
     ['ConfigMap "Bad_Name" is invalid', "metadata.name"]),
    (["create", "-f", "-"], POD_WITHOUT_CONTAINERS, "/api/v1/namespaces/{ns}/pods/empty-pod",
     ['The Pod "empty-pod" is invalid', "spec.containers: Required value"]),
    (["apply", "-f", "-"], POD_WITHOUT_CONTAINERS, "/api/v1/namespaces/{ns}/pods/empty-pod",
     ['The Pod "empty-pod" is invalid', "spec.containers: Required value"]),
], ids=["configmap-bad-name", "create-pod-without-containers", "apply-pod-without-containers"])
def test_invalid_objects_are_rejected_with_the_status_message(
        kubectl: Kubectl, raw: Raw, namespace: str, args: list[str], manifest: str | None,
        path: str, expected: list[str]) -> None:
    done = kubectl("-n", namespace, *args, input=manifest, check=False)
    assert done.returncode != 0
    for text in expected:
        assert text in done.stderr
    assert "spec.containers: spec.containers" not in done.stderr  # each field named once
    assert raw.absent(path.format(ns=namespace))


def test_custom_resource_violating_its_schema_is_rejected(kubectl: Kubectl, raw: Raw,
                                                          namespace: str,
                                                          module_cleanup: Cleanup) -> None:
    module_cleanup.add(CRD_PATH)
    kubectl("apply", "-f", "-", input=CRD)
    kubectl("wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=20s")
    done = kubectl("create", "-f", "-", input=widget(namespace, "w-bad", '"big"'), check=False)
    assert done.returncode != 0
    assert 'The Widget "w-bad" is invalid' in done.stderr
    assert "spec.size in body must be of type integer" in done.stderr
    assert raw.absent(f"/apis/example.com/v1/namespaces/{namespace}/widgets/w-bad")


# generators that send JSON; built-in tables -------------------------------------------------------
def test_run_and_expose(kubectl: Kubectl, raw: Raw, namespace: str) -> None:
    kubectl("-n", namespace, "run", "web", "--image=nginx:1.27", "--port=80", "--labels=app=web")
    out = kubectl("-n", namespace, "expose", "pod", "web", "--port=8080", "--target-port=80",
                  "--name=web-svc").stdout
    assert out.strip() == "service/web-svc exposed"

    pod = raw.obj(f"/api/v1/namespaces/{namespace}/pods/web")
    assert pod["metadata"]["labels"] == {"app": "web"}
    [container] = pod["spec"]["containers"]
    assert (container["name"], container["image"]) == ("web", "nginx:1.27")
    assert container["ports"][0]["containerPort"] == 80
    # Nothing runs pods on the local server; a cluster's kubelet may have started it already.
    started = kubectl.server.external
    assert pod["status"]["phase"] in (("Pending", "Running") if started else ("Pending",))

    svc = raw.obj(f"/api/v1/namespaces/{namespace}/services/web-svc")
    assert svc["spec"]["selector"] == {"app": "web"}
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["clusterIP"] and svc["spec"]["clusterIP"] != "None"
    assert [(p["port"], p["targetPort"], p["protocol"]) for p in svc["spec"]["ports"]] == [
        (8080, 80, "TCP")]

    kubectl("-n", namespace, "set", "image", "pod/web", "web=nginx:1.28")  # strategic merge
    [container] = raw.obj(f"/api/v1/namespaces/{namespace}/pods/web")["spec"]["containers"]
    assert (container["image"], container["ports"][0]["containerPort"]) == ("nginx:1.28", 80)

    pods = table(kubectl("-n", namespace, "get", "pods").stdout)
    assert pods[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    if started:
        assert pods[1][0] == "web" and pods[1][2] in ("Pending", "ContainerCreating", "Running")
    else:
        assert pods[1][:4] == ["web", "0/1", "Pending", "0"]
    wide = table(kubectl("-n", namespace, "get", "pods", "-o", "wide").stdout)
    assert wide[0][:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]

    services = table(kubectl("-n", namespace, "get", "svc").stdout)
    assert services[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert services[1][:5] == ["web-svc", "ClusterIP", svc["spec"]["clusterIP"], "<none>",
                               "8080/TCP"]


# server fidelity: unknown fields, system namespaces, CRD deletion -------------------------------
def test_unknown_fields_fail_by_default_and_warn_on_request(kubectl: Kubectl, raw: Raw,
                                                             namespace: str) -> None:
    manifest = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "typo", "namespace": namespace},
                           "data": {"a": "1"}, "dta": {"b": "2"}})
    strict = kubectl("apply", "-f", "-", input=manifest, check=False)  # fieldValidation=Strict
    assert strict.returncode != 0
    assert 'strict decoding error: unknown field "dta"' in strict.stderr
    assert raw.absent(cm_path(namespace, "typo"))

    warned = kubectl("apply", "--validate=warn", "-f", "-", input=manifest)
    assert 'Warning: unknown field "dta"' in warned.stderr
    assert raw.obj(cm_path(namespace, "typo"))["data"] == {"a": "1"}


def test_system_namespaces_cannot_be_deleted(kubectl: Kubectl, raw: Raw) -> None:
    done = kubectl("delete", "namespace", "kube-public", "--wait=false", check=False)
    assert done.returncode != 0
    assert ('namespaces "kube-public" is forbidden: this namespace may not be deleted'
            in done.stderr)
    assert raw.obj("/api/v1/namespaces/kube-public")["status"]["phase"] == "Active"


GADGET_CRD_PATH = CRD_PATH.replace("widgets", "gadgets")
GADGET_CRD = CRD.replace("widgets.example.com", "gadgets.example.com").replace(
    "{plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}",
    "{plural: gadgets, singular: gadget, kind: Gadget}")


def test_crd_deletion_waits_for_its_custom_resources(kubectl: Kubectl, raw: Raw,
                                                     namespace: str, tmp_path: Path,
                                                     cleanup: Cleanup) -> None:
    crd_file = tmp_path / "crd.yaml"
    crd_file.write_text(GADGET_CRD)
    cleanup.add(GADGET_CRD_PATH)
    kubectl("apply", "-f", str(crd_file))
    kubectl("wait", "--for=condition=Established", "crd/gadgets.example.com", "--timeout=20s")
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "example.com/v1", "kind": "Gadget",
        "metadata": {"name": "held", "namespace": namespace,
                     "finalizers": ["example.com/hold"]}, "spec": {"size": 1}}))

    kubectl("delete", "-f", str(crd_file), "--wait=false")
    kubectl("wait", "--for=condition=Terminating", "crd/gadgets.example.com", "--timeout=20s")
    crd = raw.obj(GADGET_CRD_PATH)
    assert "customresourcecleanup.apiextensions.k8s.io" in crd["metadata"]["finalizers"]
    held = kubectl.json("-n", namespace, "get", "gadget", "held")
    assert held["metadata"]["deletionTimestamp"], "deleted, waiting for its finalizer"

    kubectl("-n", namespace, "patch", "gadget", "held", "--type=json",
            "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]')
    kubectl("wait", "--for=delete", "crd/gadgets.example.com", "--timeout=90s")

    kubectl("apply", "-f", str(crd_file))  # and again, without custom resources: at once
    kubectl("wait", "--for=condition=Established", "crd/gadgets.example.com", "--timeout=20s")
    out = kubectl("delete", "-f", str(crd_file), "--timeout=60s").stdout
    assert out.strip() == 'customresourcedefinition.apiextensions.k8s.io "gadgets.example.com" ' \
                          "deleted"
    assert raw.absent(GADGET_CRD_PATH)


# NetworkPolicies ---------------------------------------------------------------------------------
def network_policy(name: str, app: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: {name}}}
        spec:
          podSelector: {{matchLabels: {{app: {app}}}}}
          ingress:
          - from: [{{podSelector: {{matchLabels: {{role: frontend}}}}}}]
            ports: [{{port: 8080}}]
          egress:
          - to: [{{ipBlock: {{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}}}]
            ports: [{{port: 53, protocol: UDP}}]
        """)


def test_network_policy_apply_get_patch_delete(kubectl: Kubectl, raw: Raw, namespace: str,
                                               tmp_path: Path) -> None:
    manifest = tmp_path / "np.yaml"
    manifest.write_text(network_policy("allow-fe", "web"))
    out = kubectl("-n", namespace, "apply", "-f", str(manifest)).stdout
    assert out.strip() == "networkpolicy.networking.k8s.io/allow-fe created"
    policy = kubectl.json("-n", namespace, "get", "netpol", "allow-fe")
    assert policy["metadata"]["generation"] == 1
    assert policy["spec"] == {  # defaulted: protocol TCP, policyTypes from the rules
        "podSelector": {"matchLabels": {"app": "web"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}],
                     "ports": [{"port": 8080, "protocol": "TCP"}]}],
        "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                    "ports": [{"port": 53, "protocol": "UDP"}]}],
        "policyTypes": ["Ingress", "Egress"]}

    manifest.write_text(network_policy("allow-fe", "api"))  # a strategic merge patch
    out = kubectl("-n", namespace, "apply", "-f", str(manifest)).stdout
    assert out.strip() == "networkpolicy.networking.k8s.io/allow-fe configured"
    kubectl("-n", namespace, "create", "-f", "-", input=textwrap.dedent("""\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny-all}
        spec: {podSelector: {}}
        """))
    rows = table(kubectl("-n", namespace, "get", "netpol").stdout)
    assert [row[:2] for row in rows] == [["NAME", "POD-SELECTOR"], ["allow-fe", "app=api"],
                                         ["deny-all", "<none>"]]
    assert rows[0][2] == "AGE"
    kubectl("-n", namespace, "patch", "networkpolicy", "deny-all", "-p",
            '{"spec": {"policyTypes": ["Ingress", "Egress"]}}')
    patched = raw.obj(f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/"
                      "deny-all")
    assert patched["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert patched["metadata"]["generation"] == 2
    applied = raw.obj(f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/"
                      "allow-fe")
    assert applied["spec"]["podSelector"] == {"matchLabels": {"app": "api"}}

    out = kubectl("-n", namespace, "delete", "netpol", "allow-fe", "deny-all").stdout
    assert out.splitlines() == [
        f'networkpolicy.networking.k8s.io "{name}" deleted from {namespace} namespace'
        for name in ("allow-fe", "deny-all")]
    assert kubectl("-n", namespace, "get", "netpol", "-o", "name").stdout == ""


def test_invalid_network_policy_is_rejected(kubectl: Kubectl, raw: Raw, namespace: str) -> None:
    done = kubectl("-n", namespace, "apply", "-f", "-", check=False, input=textwrap.dedent("""\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: bad}
        spec:
          podSelector: {}
          policyTypes: [Ingress, Sideways]
          ingress: [{ports: [{port: 1, protocol: ICMP}]}]
        """))
    assert done.returncode != 0
    assert 'The NetworkPolicy "bad" is invalid' in done.stderr
    assert 'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP"' in done.stderr
    assert 'spec.policyTypes[1]: Unsupported value: "Sideways"' in done.stderr
    assert raw.absent(f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies/bad")


# TokenRequest: kubectl create token (a protobuf body) --------------------------------------------
def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload)
                                                                                 % 4)))
    return claims


def test_create_token(kubectl: Kubectl, raw: Raw, namespace: str) -> None:
    kubectl("-n", namespace, "create", "serviceaccount", "bot")
    account = raw.obj(f"/api/v1/namespaces/{namespace}/serviceaccounts/bot")
    first = kubectl("-n", namespace, "create", "token", "bot").stdout.strip()
    claims = jwt_claims(first)
    assert claims["sub"] == f"system:serviceaccount:{namespace}:bot"
    assert claims["kubernetes.io"]["namespace"] == namespace
    assert claims["kubernetes.io"]["serviceaccount"] == {"name": "bot",
                                                         "uid": account["metadata"]["uid"]}
    assert claims["exp"] - claims["iat"] == 3600 and claims["aud"]

    second = kubectl("-n", namespace, "create", "token", "bot", "--duration", "20m",
                     "--audience", "vault").stdout.strip()
    assert second != first
    claims = jwt_claims(second)
    assert claims["exp"] - claims["iat"] == 1200 and claims["aud"] == ["vault"]


@pytest.mark.local_only("the signing algorithm and issuer are this server's")
def test_create_token_is_signed_by_the_local_server(kubectl: Kubectl, namespace: str) -> None:
    kubectl("-n", namespace, "create", "serviceaccount", "bot")
    token = kubectl("-n", namespace, "create", "token", "bot").stdout.strip()
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "HS256" and header["kid"]
    assert jwt_claims(token)["iss"] == "https://kubernetes.default.svc.cluster.local"


@pytest.mark.parametrize(("args", "expected"), [
    (["create", "token", "ghost"],
     'error: failed to create token: serviceaccounts "ghost" not found'),
    (["create", "token", "bot", "--duration", "5m"],
     'error: failed to create token: TokenRequest.authentication.k8s.io "" is invalid: '
     "spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 "
     "minutes"),
], ids=["missing-service-account", "too-short"])
def test_create_token_errors(kubectl: Kubectl, namespace: str, args: list[str],
                             expected: str) -> None:
    kubectl("-n", namespace, "create", "serviceaccount", "bot")
    done = kubectl("-n", namespace, *args, check=False)
    assert done.returncode != 0
    assert done.stderr.strip() == expected
