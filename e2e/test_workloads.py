"""The built-in kinds beyond the core ones, through kubectl 1.37 and the official Python client:
workloads (Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs) with kube's
defaults and their scale subresource, ``kubectl auth can-i``, what a cluster holds from the
start (a default ServiceAccount per namespace, ``default/kubernetes``), and the volume,
networking, policy, autoscaling and admission kinds.

Each test reads the state back through a client. With ``E2E_KUBECONFIG`` they run against a
real cluster too: where its controllers would change what is read (Jobs get pods, claims get
bound) the test reads only what the API server itself decides.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from ambient_ctrl.testing import eventually

from .cluster import api_client_for
from .conftest import Cleanup, Kubectl, Raw, Server, unique

pytestmark = [pytest.mark.kubectl, pytest.mark.timeout(120)]

TEMPLATE_SPEC_DEFAULTS = {"dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                          "schedulerName": "default-scheduler", "securityContext": {},
                          "terminationGracePeriodSeconds": 30}
CONTAINER_DEFAULTS = {"resources": {}, "terminationMessagePath": "/dev/termination-log",
                      "terminationMessagePolicy": "File"}


def table(output: str) -> list[list[str]]:
    """``kubectl get`` table output as rows of cells (cells are separated by 2+ spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines()]


@pytest.fixture()
def api(apiserver: Server) -> Iterator[client.ApiClient]:
    with api_client_for(apiserver.kubeconfig) as api_client:
        yield api_client


# Jobs and CronJobs: kubectl create sends protobuf ------------------------------------------------
def test_create_job_is_defaulted_with_a_generated_selector(kubectl: Kubectl,
                                                           namespace: str) -> None:
    kubectl("-n", namespace, "create", "job", "pi", "--image=busybox:1.36", "--", "true")
    job = kubectl.json("-n", namespace, "get", "job", "pi")
    uid = job["metadata"]["uid"]
    spec = job["spec"]
    assert {k: spec[k] for k in ("backoffLimit", "completionMode", "completions",
                                 "parallelism", "podReplacementPolicy", "suspend")} == {
        "backoffLimit": 6, "completionMode": "NonIndexed", "completions": 1, "parallelism": 1,
        "podReplacementPolicy": "TerminatingOrFailed", "suspend": False}
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    generated = {"batch.kubernetes.io/controller-uid": uid,
                 "batch.kubernetes.io/job-name": "pi", "controller-uid": uid, "job-name": "pi"}
    assert spec["template"]["metadata"]["labels"] == generated
    assert job["metadata"]["labels"] == generated
    assert spec["template"]["spec"] == {
        **TEMPLATE_SPEC_DEFAULTS, "restartPolicy": "Never",
        "containers": [{"name": "pi", "image": "busybox:1.36", "command": ["true"],
                        "imagePullPolicy": "IfNotPresent", **CONTAINER_DEFAULTS}]}

    rows = table(kubectl("-n", namespace, "get", "jobs", "-o", "wide").stdout)
    assert rows[0] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE", "CONTAINERS",
                       "IMAGES", "SELECTOR"]
    assert rows[1][0] == "pi" and rows[1][-3:] == [
        "pi", "busybox:1.36", f"batch.kubernetes.io/controller-uid={uid}"]


def test_create_cronjob_and_a_job_from_it(kubectl: Kubectl, namespace: str) -> None:
    kubectl("-n", namespace, "create", "cronjob", "nightly", "--image=busybox:1.36",
            "--schedule=0 3 * * *", "--", "date")
    cron = kubectl.json("-n", namespace, "get", "cronjob", "nightly")
    assert {k: cron["spec"][k] for k in ("concurrencyPolicy", "failedJobsHistoryLimit",
                                         "schedule", "successfulJobsHistoryLimit",
                                         "suspend")} == {
        "concurrencyPolicy": "Allow", "failedJobsHistoryLimit": 1, "schedule": "0 3 * * *",
        "successfulJobsHistoryLimit": 3, "suspend": False}
    job_spec = cron["spec"]["jobTemplate"]["spec"]
    assert job_spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert job_spec["backoffLimit"] == 6

    rows = table(kubectl("-n", namespace, "get", "cronjobs").stdout)
    assert rows == [["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE",
                     "AGE"], ["nightly", "0 3 * * *", "<none>", "False", "0", "<none>",
                              rows[1][-1]]]
    # kubectl builds the Job from the CronJob's template (a protobuf body, owned by it).
    kubectl("-n", namespace, "create", "job", "now", "--from=cronjob/nightly")
    job = kubectl.json("-n", namespace, "get", "job", "now")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["date"]


@pytest.mark.parametrize(("args", "expected"), [
    (["create", "cronjob", "bad", "--image=busybox", "--schedule=every day"],
     'spec.schedule: Invalid value: "every day": unparseable schedule'),
    (["create", "-f", "-"], 'spec.template.spec.restartPolicy: Unsupported value: "Always": '
                            'supported values: "OnFailure", "Never"'),
], ids=["schedule", "restart-policy"])
def test_invalid_jobs_are_rejected(kubectl: Kubectl, namespace: str, args: list[str],
                                   expected: str) -> None:
    job = json.dumps({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "bad"},
                      "spec": {"template": {"spec": {"containers": [
                          {"name": "c", "image": "busybox"}]}}}})
    done = kubectl("-n", namespace, *args, input=job, check=False)
    assert done.returncode != 0
    assert expected in done.stderr


# Deployments, StatefulSets, DaemonSets, ReplicaSets -------------------------------------------
WORKLOADS = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: postgres:16
        ports: [{containerPort: 5432}]
        readinessProbe: {tcpSocket: {port: 5432}}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      nodeSelector: {disk: ssd}
      containers: [{name: agent, image: "busybox:1.36"}]
      volumes: [{name: config, configMap: {name: agent}}, {name: scratch}]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: front}
spec:
  selector: {matchLabels: {app: front}}
  template:
    metadata: {labels: {app: front}}
    spec:
      containers: [{name: front, image: nginx}]
"""


def test_apply_workloads_gets_kube_defaults(kubectl: Kubectl, namespace: str) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", input=WORKLOADS)
    db = kubectl.json("-n", namespace, "get", "statefulset", "db")["spec"]
    assert {k: db[k] for k in ("podManagementPolicy", "replicas", "revisionHistoryLimit",
                               "updateStrategy", "persistentVolumeClaimRetentionPolicy")} == {
        "podManagementPolicy": "OrderedReady", "replicas": 1, "revisionHistoryLimit": 10,
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain",
                                                 "whenScaled": "Retain"}}
    [claim] = db["volumeClaimTemplates"]
    assert claim["apiVersion"] == "v1" and claim["kind"] == "PersistentVolumeClaim"
    assert claim["spec"]["volumeMode"] == "Filesystem"
    assert claim["status"] == {"phase": "Pending"}
    container = db["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"containerPort": 5432, "protocol": "TCP"}]
    assert container["readinessProbe"] == {"tcpSocket": {"port": 5432}, "timeoutSeconds": 1,
                                           "periodSeconds": 10, "successThreshold": 1,
                                           "failureThreshold": 3}
    assert container["imagePullPolicy"] == "IfNotPresent"

    agent = kubectl.json("-n", namespace, "get", "daemonset", "agent")["spec"]
    assert agent["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {
        "maxUnavailable": 1, "maxSurge": 0}}
    assert agent["revisionHistoryLimit"] == 10
    assert agent["template"]["spec"]["volumes"] == [
        {"name": "config", "configMap": {"name": "agent", "defaultMode": 420}},
        {"name": "scratch", "emptyDir": {}}]
    front = kubectl.json("-n", namespace, "get", "replicaset", "front")["spec"]
    assert front["replicas"] == 1
    assert front["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Always"

    # A second apply of the same manifest changes nothing: the defaults do not read as
    # changes. (kubectl may still say "configured", as against a cluster: the atomic
    # volumeClaimTemplates list and the source-less volume differ from the live, defaulted
    # ones, so they are sent again, and defaulted again to what is stored.)
    out = kubectl("-n", namespace, "apply", "-f", "-", input=WORKLOADS).stdout
    assert out.split()[4:] == ["replicaset.apps/front", "unchanged"]
    for kind, name in (("statefulset", "db"), ("daemonset", "agent")):
        assert kubectl.json("-n", namespace, "get", kind, name)["metadata"]["generation"] == 1

    rows = table(kubectl("-n", namespace, "get", "daemonsets").stdout)
    assert rows[0] == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE",
                       "NODE SELECTOR", "AGE"]
    assert rows[1][0] == "agent" and rows[1][6] == "disk=ssd"
    assert table(kubectl("-n", namespace, "get", "statefulsets").stdout)[0] == [
        "NAME", "READY", "AGE"]
    assert table(kubectl("-n", namespace, "get", "replicasets").stdout)[0] == [
        "NAME", "DESIRED", "CURRENT", "READY", "AGE"]


def test_create_deployment_is_defaulted_and_describable(kubectl: Kubectl,
                                                        namespace: str) -> None:
    kubectl("-n", namespace, "create", "deployment", "web", "--image=nginx:1.27")
    spec = kubectl.json("-n", namespace, "get", "deployment", "web")["spec"]
    assert {k: spec[k] for k in ("replicas", "revisionHistoryLimit", "progressDeadlineSeconds",
                                 "strategy")} == {
        "replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%",
                                                                "maxUnavailable": "25%"}}}
    described = kubectl("-n", namespace, "describe", "deployment", "web").stdout
    assert re.search(r"RollingUpdateStrategy:\s+25% max unavailable, 25% max surge", described)
    assert re.search(r"Replicas:\s+1 desired", described)
    rows = table(kubectl("-n", namespace, "get", "deployments", "-o", "wide").stdout)
    assert rows[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS",
                       "IMAGES", "SELECTOR"]
    assert rows[1][0] == "web" and rows[1][-3:] == ["nginx", "nginx:1.27", "app=web"]


def test_invalid_deployment_is_rejected(kubectl: Kubectl, raw: Raw, namespace: str) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad"},
                  "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {
                      "metadata": {"labels": {"app": "y"}},
                      "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    done = kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(deployment),
                   check=False)
    assert done.returncode != 0
    assert "spec.template.metadata.labels: Invalid value:" in done.stderr
    assert "`selector` does not match template `labels`" in done.stderr
    assert raw.absent(f"/apis/apps/v1/namespaces/{namespace}/deployments/bad")


@pytest.mark.parametrize("kind", ["deployment", "statefulset", "replicaset"])
def test_kubectl_scale(kubectl: Kubectl, raw: Raw, namespace: str, kind: str) -> None:
    if kind == "deployment":
        kubectl("-n", namespace, "create", "deployment", "app", "--image=nginx")
        name = "app"
    else:
        manifests = WORKLOADS.split("---")
        kubectl("-n", namespace, "apply", "-f", "-",
                input=manifests[0] if kind == "statefulset" else manifests[2])
        name = {"statefulset": "db", "replicaset": "front"}[kind]
    done = kubectl("-n", namespace, "scale", kind, name, "--replicas=4")
    assert "scaled" in done.stdout
    obj = kubectl.json("-n", namespace, "get", kind, name)
    assert obj["spec"]["replicas"] == 4
    assert obj["metadata"]["generation"] == 2
    # The precondition form: a stale --current-replicas is refused.
    stale = kubectl("-n", namespace, "scale", kind, name, "--current-replicas=1",
                    "--replicas=2", check=False)
    assert stale.returncode != 0
    scale = raw.obj(f"/apis/apps/v1/namespaces/{namespace}/{kind}s/{name}/scale")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 4}
    assert scale["status"]["selector"] == f"app={name}"


def test_python_client_scale_subresource(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, client.V1Deployment(
        metadata=client.V1ObjectMeta(name="api"),
        spec=client.V1DeploymentSpec(
            selector=client.V1LabelSelector(match_labels={"app": "api"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "api"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="api",
                                                                     image="nginx")])))))
    scale = apps.read_namespaced_deployment_scale("api", namespace)
    assert isinstance(scale, client.V1Scale)
    assert scale.spec.replicas == 1 and scale.status.selector == "app=api"
    scale.spec.replicas = 3
    replaced = apps.replace_namespaced_deployment_scale("api", namespace, scale)
    assert replaced.spec.replicas == 3
    patched = apps.patch_namespaced_deployment_scale("api", namespace,
                                                     {"spec": {"replicas": 5}})
    assert patched.spec.replicas == 5
    assert apps.read_namespaced_deployment("api", namespace).spec.replicas == 5
    with pytest.raises(ApiException) as negative:
        apps.patch_namespaced_deployment_scale("api", namespace, {"spec": {"replicas": -1}})
    assert negative.value.status == 422
    with pytest.raises(ApiException) as stale:
        scale.spec.replicas = 2  # scale still carries the first resourceVersion
        apps.replace_namespaced_deployment_scale("api", namespace, scale)
    assert stale.value.status == 409

    # What a diff of desired against live state compares: the defaults a cluster adds.
    live = apps.read_namespaced_deployment("api", namespace)
    assert live.spec.strategy.type == "RollingUpdate"
    assert live.spec.template.spec.containers[0].termination_message_path == (
        "/dev/termination-log")


def test_python_client_jobs(api: client.ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(api)
    created = batch.create_namespaced_job(namespace, client.V1Job(
        metadata=client.V1ObjectMeta(name="once"),
        spec=client.V1JobSpec(template=client.V1PodTemplateSpec(spec=client.V1PodSpec(
            restart_policy="OnFailure",
            containers=[client.V1Container(name="c", image="busybox")])))))
    assert created.spec.backoff_limit == 6 and created.spec.completions == 1
    assert created.spec.selector.match_labels == {
        "batch.kubernetes.io/controller-uid": created.metadata.uid}
    listed = batch.list_namespaced_job(namespace, label_selector="job-name=once")
    assert [j.metadata.name for j in listed.items] == ["once"]
    with pytest.raises(ApiException) as immutable:
        batch.patch_namespaced_job("once", namespace, {"spec": {"completions": 3}})
    assert immutable.value.status == 422
    batch.delete_namespaced_job("once", namespace, propagation_policy="Background")


# authorization -------------------------------------------------------------------------------
def test_auth_can_i(kubectl: Kubectl, namespace: str) -> None:
    """kubectl sends its SelfSubjectAccessReview as protobuf; the administrator may do all."""
    assert kubectl("auth", "can-i", "create", "deployments", "-n", namespace).stdout.strip() == (
        "yes")
    assert kubectl("auth", "can-i", "*", "*").stdout.strip() == "yes"
    assert kubectl("auth", "can-i", "get", "/healthz").stdout.strip() == "yes"


# what a cluster holds from the start ---------------------------------------------------------
def test_every_namespace_has_a_default_service_account(kubectl: Kubectl, cleanup: Cleanup,
                                                       ) -> None:
    ns = unique("sa")
    cleanup.add(f"/api/v1/namespaces/{ns}")
    kubectl("create", "namespace", ns)
    account = eventually(lambda: kubectl.json("-n", ns, "get", "serviceaccounts").get(
        "items"), message="no default ServiceAccount")
    assert [a["metadata"]["name"] for a in account] == ["default"]
    # The token subresource serves it (what a pod's projected token volume asks for).
    assert kubectl("-n", ns, "create", "token", "default").stdout.count(".") == 2


def test_the_kubernetes_service(api: client.ApiClient) -> None:
    service = client.CoreV1Api(api).read_namespaced_service("kubernetes", "default")
    assert service.spec.type == "ClusterIP"
    assert [(p.name, p.port, p.protocol) for p in service.spec.ports] == [("https", 443, "TCP")]
    assert service.metadata.labels == {"component": "apiserver", "provider": "kubernetes"}


# volumes, networking, policy, autoscaling, admission -----------------------------------------
CLUSTER_KINDS = textwrap.dedent("""\
    apiVersion: v1
    kind: PersistentVolumeClaim
    metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
    ---
    apiVersion: policy/v1
    kind: PodDisruptionBudget
    metadata: {name: web}
    spec: {maxUnavailable: 1, selector: {matchLabels: {app: web}}}
    ---
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    metadata: {name: web}
    spec:
      scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
      maxReplicas: 5
    ---
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata: {name: web}
    spec:
      rules:
      - host: web.example.com
        http:
          paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
    ---
    apiVersion: v1
    kind: Endpoints
    metadata: {name: web}
    subsets: [{addresses: [{ip: 10.244.0.7}], ports: [{port: 8080}]}]
    """)


def test_namespaced_cluster_kinds(kubectl: Kubectl, namespace: str) -> None:
    kubectl("-n", namespace, "apply", "-f", "-", input=CLUSTER_KINDS)
    claim = kubectl.json("-n", namespace, "get", "pvc", "data")
    assert claim["spec"]["volumeMode"] == "Filesystem"
    hpa = kubectl.json("-n", namespace, "get", "hpa", "web")["spec"]
    assert hpa["minReplicas"] == 1
    assert hpa["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    endpoints = kubectl.json("-n", namespace, "get", "endpoints", "web")
    assert endpoints["subsets"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    rows = table(kubectl("-n", namespace, "get", "pdb,hpa,ingress,endpoints").stdout)
    headers = [r for r in rows if r[0] == "NAME"]
    assert headers == [
        ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"],
        ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"],
        ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"],
        ["NAME", "ENDPOINTS", "AGE"]]
    pdb = next(r for r in rows if r[0].startswith("poddisruptionbudget"))
    assert pdb[:3] == ["poddisruptionbudget.policy/web", "N/A", "1"]
    assert next(r for r in rows if r[0] == "endpoints/web")[1] == "10.244.0.7:8080"
    # kubectl create ingress and create pdb send protobuf bodies.
    kubectl("-n", namespace, "create", "ingress", "api", "--rule=api.example.com/=api:80")
    ingress = kubectl.json("-n", namespace, "get", "ingress", "api")
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["pathType"] == "Exact"
    kubectl("-n", namespace, "create", "pdb", "api", "--selector=app=api", "--min-available=1")
    assert kubectl.json("-n", namespace, "get", "pdb", "api")["spec"]["minAvailable"] == 1


def test_cluster_scoped_kinds(kubectl: Kubectl, cleanup: Cleanup) -> None:
    name = unique("kinds")
    manifest = textwrap.dedent(f"""\
        apiVersion: storage.k8s.io/v1
        kind: StorageClass
        metadata: {{name: {name}}}
        provisioner: example.com/disk
        ---
        apiVersion: admissionregistration.k8s.io/v1
        kind: ValidatingWebhookConfiguration
        metadata: {{name: {name}}}
        webhooks:
        - name: check.example.com
          sideEffects: None
          admissionReviewVersions: [v1]
          clientConfig: {{service: {{name: checker, namespace: default}}}}
          rules: [{{apiGroups: [example.com], apiVersions: [v1], operations: [CREATE],
                   resources: [checks]}}]
        """)
    # The server calls webhooks: a rule that matched pods would fail every pod creation
    # while this configuration exists (its service is not there, failurePolicy Fail).
    cleanup.add(f"/apis/storage.k8s.io/v1/storageclasses/{name}")
    cleanup.add(f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{name}")
    kubectl("apply", "-f", "-", input=manifest)
    storage_class = kubectl.json("get", "storageclass", name)
    assert (storage_class["reclaimPolicy"], storage_class["volumeBindingMode"]) == (
        "Delete", "Immediate")
    [hook] = kubectl.json("get", "validatingwebhookconfiguration", name)["webhooks"]
    assert {k: hook[k] for k in ("failurePolicy", "matchPolicy", "namespaceSelector",
                                 "objectSelector", "timeoutSeconds")} == {
        "failurePolicy": "Fail", "matchPolicy": "Equivalent", "namespaceSelector": {},
        "objectSelector": {}, "timeoutSeconds": 10}
    assert hook["clientConfig"]["service"]["port"] == 443
    assert hook["rules"][0]["scope"] == "*"
    rows = table(kubectl("get", "storageclass", name).stdout)
    assert rows == [["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE",
                     "ALLOWVOLUMEEXPANSION", "AGE"],
                    [name, "example.com/disk", "Delete", "Immediate", "false", rows[1][-1]]]


def test_api_resources_lists_the_workload_kinds(kubectl: Kubectl) -> None:
    rows = table(kubectl("api-resources").stdout)
    found = {(row[0], row[-1]) for row in rows[1:]}
    assert {("jobs", "Job"), ("cronjobs", "CronJob"), ("statefulsets", "StatefulSet"),
            ("daemonsets", "DaemonSet"), ("replicasets", "ReplicaSet"), ("nodes", "Node"),
            ("persistentvolumeclaims", "PersistentVolumeClaim"),
            ("horizontalpodautoscalers", "HorizontalPodAutoscaler"),
            ("poddisruptionbudgets", "PodDisruptionBudget"), ("ingresses", "Ingress"),
            ("endpointslices", "EndpointSlice"), ("storageclasses", "StorageClass"),
            ("apiservices", "APIService"),
            ("validatingwebhookconfigurations", "ValidatingWebhookConfiguration")} <= found


