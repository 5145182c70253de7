"""The AgenticSession and ProjectSettings CRDs (config/crd/) against upstream's contract.

UPSTREAM-CONTRACT.md §1: the schema is upstream's field for field (names, types, formats,
defaults, enums, required lists, short names, the ProjectSettings CEL rule), with our additive
optional fields (``spec.runtime``; ``status.executionKind``, ``runtime``, ``endpoint``) and printer
columns. Proved with real clients — kubectl 1.37 and the ``kubernetes`` Python client — against a
:class:`LocalAPIServer` on 127.0.0.1 (a free port): installation, ``kubectl explain``, the exact
create body of upstream's backend, pruning and defaulting, enums and required fields, and the
``kubectl get`` columns.

The local server does not evaluate CEL rules (see envtest/schema/), so the
ProjectSettings name rule is only checked to be in the CRD as served, never for a refusal.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from envtest import LocalAPIServer

from .cluster import KUBECTL, ClosingApiClient

pytestmark = pytest.mark.timeout(180)

CRD_DIR = Path(__file__).resolve().parents[1] / "config" / "crd"
GROUP, VERSION = "vteam.ambient-code", "v1alpha1"
SESSIONS, SETTINGS = "agenticsessions", "projectsettings"
RULE = "self.metadata.name == 'projectsettings'"

_names = itertools.count()


# --------------------------------------------------------------------------------------------
# Upstream's schema facts (UPSTREAM-CONTRACT.md §1.2-1.4), one line per field
# --------------------------------------------------------------------------------------------

# path → the schema keywords that carry meaning (descriptions excluded); "[]" marks array items,
# "{}" map values.
UPSTREAM_SESSION: dict[str, dict[str, Any]] = {
    "": {"type": "object"},
    "spec": {"type": "object"},
    "spec.repos": {"type": "array"},
    "spec.repos[]": {"type": "object", "required": ["url"]},
    "spec.repos[].url": {"type": "string"},
    "spec.repos[].branch": {"type": "string", "default": "main"},
    "spec.repos[].autoPush": {"type": "boolean", "default": False},
    "spec.initialPrompt": {"type": "string"},
    "spec.displayName": {"type": "string"},
    "spec.userContext": {"type": "object"},
    "spec.userContext.userId": {"type": "string"},
    "spec.userContext.displayName": {"type": "string"},
    "spec.userContext.groups": {"type": "array"},
    "spec.userContext.groups[]": {"type": "string"},
    "spec.llmSettings": {"type": "object"},
    "spec.llmSettings.model": {"type": "string", "default": "claude-sonnet-4-6"},
    "spec.llmSettings.temperature": {"type": "number", "default": 0.7},
    "spec.llmSettings.maxTokens": {"type": "integer", "default": 4000},
    "spec.timeout": {"type": "integer", "default": 300},
    "spec.inactivityTimeout": {"type": "integer", "minimum": 0},
    "spec.stopOnRunFinished": {"type": "boolean"},
    "spec.environmentVariables": {"type": "object"},
    "spec.environmentVariables{}": {"type": "string"},
    "spec.mcpServers": {"type": "object"},
    "spec.mcpServers.custom": {"type": "object"},
    "spec.mcpServers.custom{}": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    "spec.mcpServers.disabled": {"type": "array"},
    "spec.mcpServers.disabled[]": {"type": "string"},
    "spec.activeWorkflow": {"type": "object"},
    "spec.activeWorkflow.gitUrl": {"type": "string"},
    "spec.activeWorkflow.branch": {"type": "string", "default": "main"},
    "spec.activeWorkflow.path": {"type": "string"},
    "status": {"type": "object"},
    "status.observedGeneration": {"type": "integer", "format": "int64"},
    "status.phase": {"type": "string", "default": "Pending", "enum": [
        "Pending", "Creating", "Running", "Stopping", "Stopped", "Completed", "Failed"]},
    "status.startTime": {"type": "string", "format": "date-time"},
    "status.completionTime": {"type": "string", "format": "date-time"},
    "status.reconciledRepos": {"type": "array"},
    "status.reconciledRepos[]": {"type": "object"},
    "status.reconciledRepos[].url": {"type": "string"},
    "status.reconciledRepos[].branch": {"type": "string"},
    "status.reconciledRepos[].branches": {"type": "array"},
    "status.reconciledRepos[].branches[]": {"type": "string"},
    "status.reconciledRepos[].currentActiveBranch": {"type": "string"},
    "status.reconciledRepos[].defaultBranch": {"type": "string"},
    "status.reconciledRepos[].name": {"type": "string"},
    "status.reconciledRepos[].status": {"type": "string", "enum": ["Cloning", "Ready", "Failed"]},
    "status.reconciledRepos[].clonedAt": {"type": "string", "format": "date-time"},
    "status.reconciledWorkflow": {"type": "object"},
    "status.reconciledWorkflow.gitUrl": {"type": "string"},
    "status.reconciledWorkflow.branch": {"type": "string"},
    "status.reconciledWorkflow.path": {"type": "string"},
    "status.reconciledWorkflow.status": {"type": "string",
                                         "enum": ["Cloning", "Active", "Failed"]},
    "status.reconciledWorkflow.appliedAt": {"type": "string", "format": "date-time"},
    "status.lastActivityTime": {"type": "string", "format": "date-time"},
    "status.stoppedReason": {"type": "string", "enum": ["user", "inactivity"]},
    "status.sdkSessionId": {"type": "string"},
    "status.sdkRestartCount": {"type": "integer"},
    "status.conditions": {"type": "array"},
    "status.conditions[]": {"type": "object", "required": ["type", "status"]},
    "status.conditions[].type": {"type": "string"},
    "status.conditions[].status": {"type": "string", "enum": ["True", "False", "Unknown"]},
    "status.conditions[].reason": {"type": "string"},
    "status.conditions[].message": {"type": "string"},
    "status.conditions[].lastTransitionTime": {"type": "string", "format": "date-time"},
    "status.conditions[].observedGeneration": {"type": "integer", "format": "int64"},
}

YEAR = 31536000
"""Our maximum of spec.timeout and spec.inactivityTimeout (issue 15: upstream has none, and
a schema-valid 1e10 s once stopped every timer of the operator)."""

OURS_SESSION: dict[str, dict[str, Any]] = {
    "spec.timeout": {**UPSTREAM_SESSION["spec.timeout"], "maximum": YEAR},
    "spec.inactivityTimeout": {**UPSTREAM_SESSION["spec.inactivityTimeout"], "maximum": YEAR},
    "spec.runtime": {"type": "string"},
    "status.executionKind": {"type": "string", "enum": ["pod", "kubevirt-vm"]},
    "status.runtime": {"type": "string"},
    "status.endpoint": {"type": "string"},
}

UPSTREAM_SETTINGS: dict[str, dict[str, Any]] = {
    "": {"type": "object"},  # and the CEL rule, checked on its own (its message is ours)
    "spec": {"type": "object", "required": ["groupAccess"]},
    "spec.groupAccess": {"type": "array"},
    "spec.groupAccess[]": {"type": "object", "required": ["groupName", "role"]},
    "spec.groupAccess[].groupName": {"type": "string"},
    "spec.groupAccess[].role": {"type": "string", "enum": ["admin", "edit", "view"]},
    "spec.runnerSecretsName": {"type": "string"},
    "spec.repositories": {"type": "array"},
    "spec.repositories[]": {"type": "object", "required": ["url"]},
    "spec.repositories[].url": {"type": "string"},
    "spec.repositories[].branch": {"type": "string"},
    "spec.repositories[].provider": {"type": "string", "enum": ["github", "gitlab"]},
    "spec.inactivityTimeoutSeconds": {"type": "integer", "minimum": 0, "default": 86400},
    "spec.mcpServers": {"type": "object"},
    "spec.mcpServers.custom": {"type": "object"},
    "spec.mcpServers.custom{}": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    "spec.mcpServers.disabled": {"type": "array"},
    "spec.mcpServers.disabled[]": {"type": "string"},
    "status": {"type": "object"},
    "status.groupBindingsCreated": {"type": "integer", "minimum": 0},
    "status.scheduledSessionRBACReady": {"type": "boolean"},
    "status.limitRangeReady": {"type": "boolean"},
}


def flatten(node: dict[str, Any], path: str = "") -> dict[str, dict[str, Any]]:
    """Every schema node by path, with its keywords but its children and description."""
    flat = {path: {k: v for k, v in node.items()
                   if k not in ("properties", "items", "additionalProperties", "description")}}
    for name, child in (node.get("properties") or {}).items():
        flat.update(flatten(child, f"{path}.{name}" if path else name))
    if isinstance(node.get("items"), dict):
        flat.update(flatten(node["items"], f"{path}[]"))
    if isinstance(node.get("additionalProperties"), dict):
        flat.update(flatten(node["additionalProperties"], f"{path}{{}}"))
    return flat


def load_crd(name: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRD_DIR / f"{name}.yaml").read_text())
    assert isinstance(crd, dict)
    return crd


def version_of(crd: dict[str, Any]) -> dict[str, Any]:
    versions = crd["spec"]["versions"]
    assert [(v["name"], v["served"], v["storage"]) for v in versions] == [(VERSION, True, True)]
    return dict(versions[0])


# --------------------------------------------------------------------------------------------
# Fixtures: one local API server for the module, kubectl and the Python client against it
# --------------------------------------------------------------------------------------------


class Kubectl:
    def __init__(self, kubeconfig: str, cache_dir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        self.env["KUBECACHEDIR"] = str(cache_dir)

    def __call__(self, *args: str, input: str | None = None) -> str:
        done = subprocess.run([str(KUBECTL), "--kubeconfig", self.kubeconfig, *args],
                              input=input, capture_output=True, text=True, env=self.env,
                              timeout=60, check=False)
        assert done.returncode == 0, (f"kubectl {' '.join(args)} exited {done.returncode}:\n"
                                      f"{done.stdout}\n{done.stderr}")
        return done.stdout


@pytest.fixture(scope="module")
def server() -> Iterator[LocalAPIServer]:
    with LocalAPIServer(host="127.0.0.1", port=0) as api:
        yield api


@pytest.fixture(scope="module")
def kubectl(server: LocalAPIServer, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(server.kubeconfig, tmp_path_factory.mktemp("kube-cache"))


@pytest.fixture(scope="module")
def api(server: LocalAPIServer) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    config.load_kube_config(config_file=server.kubeconfig, client_configuration=configuration)
    with ClosingApiClient(configuration) as api_client:
        yield api_client


@pytest.fixture(scope="module")
def crds(kubectl: Kubectl) -> None:
    """Both CRDs installed from config/crd with kubectl, as an operator install does."""
    kubectl("apply", "-f", str(CRD_DIR / "agenticsessions.yaml"),
            "-f", str(CRD_DIR / "projectsettings.yaml"))
    kubectl("wait", "--for=condition=Established", "--timeout=30s",
            f"crd/{SESSIONS}.{GROUP}", f"crd/{SETTINGS}.{GROUP}")


@pytest.fixture()
def namespace(api: client.ApiClient, crds: None) -> str:
    name = f"crd-contract-{next(_names)}"
    client.CoreV1Api(api).create_namespace({"metadata": {
        "name": name, "labels": {"ambient-code.io/managed": "true"}}})
    return name


@pytest.fixture()
def objects(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def session_body(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AgenticSession",
            "metadata": {"name": name}, "spec": spec}


def create_session(objects: client.CustomObjectsApi, namespace: str,
                   spec: dict[str, Any] | None = None) -> dict[str, Any]:
    name = f"session-{uuid.uuid4()}"
    created = objects.create_namespaced_custom_object(
        GROUP, VERSION, namespace, SESSIONS, session_body(name, spec or {}))
    return dict(created)


def refused(call: Any, *args: Any) -> dict[str, Any]:
    """The 422 Status a call answers with (fails the test on anything else)."""
    with pytest.raises(ApiException) as caught:
        call(*args)
    assert caught.value.status == 422, caught.value.body
    status: dict[str, Any] = json.loads(caught.value.body)
    return status


def causes(status: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["field"], c["reason"]) for c in status["details"]["causes"]}


def put_status(objects: client.CustomObjectsApi, namespace: str, obj: dict[str, Any],
               status: dict[str, Any]) -> dict[str, Any]:
    """Replace the whole status (PUT .../status), as upstream's operator writes it."""
    body = copy.deepcopy(obj)
    body["status"] = status
    updated = objects.replace_namespaced_custom_object_status(
        GROUP, VERSION, namespace, SESSIONS, obj["metadata"]["name"], body)
    return dict(updated)


# --------------------------------------------------------------------------------------------
# The files themselves
# --------------------------------------------------------------------------------------------


def test_session_schema_is_upstreams_plus_our_optional_fields() -> None:
    crd = load_crd(SESSIONS)
    assert crd["metadata"]["name"] == f"{SESSIONS}.{GROUP}"
    assert crd["spec"]["group"] == GROUP and crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"] == {"plural": SESSIONS, "singular": "agenticsession",
                                    "kind": "AgenticSession", "shortNames": ["as"]}
    version = version_of(crd)
    assert version["subresources"] == {"status": {}}
    assert flatten(version["schema"]["openAPIV3Schema"]) == UPSTREAM_SESSION | OURS_SESSION


def test_settings_schema_is_upstreams() -> None:
    crd = load_crd(SETTINGS)
    assert crd["metadata"]["name"] == f"{SETTINGS}.{GROUP}"
    assert crd["spec"]["group"] == GROUP and crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"] == {"plural": SETTINGS, "singular": "projectsetting",
                                    "kind": "ProjectSettings", "shortNames": ["ps"]}
    version = version_of(crd)
    assert version["subresources"] == {"status": {}}
    assert [(c["name"], c["type"], c["jsonPath"]) for c in version[
        "additionalPrinterColumns"]] == [("Age", "date", ".metadata.creationTimestamp")]
    flat = flatten(version["schema"]["openAPIV3Schema"])
    rules = flat[""].pop("x-kubernetes-validations")
    assert [rule["rule"] for rule in rules] == [RULE] and rules[0]["message"]
    assert flat == UPSTREAM_SETTINGS


@pytest.mark.parametrize("name", [SESSIONS, SETTINGS])
def test_every_field_has_a_description(name: str) -> None:
    schema = version_of(load_crd(name))["schema"]["openAPIV3Schema"]

    def undescribed(node: dict[str, Any], path: str) -> Iterator[str]:
        if not str(node.get("description", "")).strip():
            yield path or "<root>"
        for field, child in (node.get("properties") or {}).items():
            yield from undescribed(child, f"{path}.{field}" if path else field)
        items = node.get("items")
        if isinstance(items, dict) and items.get("type") == "object":
            yield from undescribed(items, f"{path}[]")

    assert list(undescribed(schema, "")) == []


def test_kustomization_lists_both_crds() -> None:
    kustomization = yaml.safe_load((CRD_DIR / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["agenticsessions.yaml", "projectsettings.yaml"]


# --------------------------------------------------------------------------------------------
# Installed and served
# --------------------------------------------------------------------------------------------


def test_both_crds_install_and_are_served(kubectl: Kubectl, api: client.ApiClient,
                                          crds: None) -> None:
    extensions = client.ApiextensionsV1Api(api)
    for name in (SESSIONS, SETTINGS):
        crd = extensions.read_custom_resource_definition(f"{name}.{GROUP}")
        conditions = {c.type: c.status for c in crd.status.conditions}
        assert conditions["Established"] == "True" and conditions["NamesAccepted"] == "True"
    resources = kubectl("api-resources", f"--api-group={GROUP}", "--no-headers")
    rows = {line.split()[0]: line.split() for line in resources.splitlines()}
    assert rows[SESSIONS] == [SESSIONS, "as", f"{GROUP}/{VERSION}", "true", "AgenticSession"]
    assert rows[SETTINGS] == [SETTINGS, "ps", f"{GROUP}/{VERSION}", "true", "ProjectSettings"]
    discovered = client.CustomObjectsApi(api).get_api_resources(GROUP, VERSION)
    names = sorted(r.name for r in discovered.resources)
    assert names == [SESSIONS, f"{SESSIONS}/status", SETTINGS, f"{SETTINGS}/status"]


def test_the_cel_rule_is_in_the_served_crd(api: client.ApiClient, crds: None) -> None:
    """Not evaluated by the local server (no CEL there); a real cluster refuses other names."""
    served = client.ApiextensionsV1Api(api).read_custom_resource_definition(f"{SETTINGS}.{GROUP}")
    schema = served.spec.versions[0].schema.open_apiv3_schema
    assert [rule.rule for rule in schema.x_kubernetes_validations] == [RULE]


# --------------------------------------------------------------------------------------------
# kubectl explain
# --------------------------------------------------------------------------------------------


def explained_fields(output: str) -> dict[str, str]:
    """FIELDS of a ``kubectl explain`` page: name → its description text."""
    fields: dict[str, str] = {}
    current = None
    for line in output.split("FIELDS:", 1)[1].splitlines():
        header = re.match(r"^  (\w+)\t<", line)
        if header:
            current = header[1]
            fields[current] = ""
        elif current and line.startswith("    "):
            fields[current] += line.strip() + " "
    return {name: text.strip() for name, text in fields.items()}


def test_explain_describes_every_repos_and_status_field(kubectl: Kubectl, crds: None) -> None:
    repos = kubectl("explain", "agenticsession.spec.repos")
    assert "Git repositories the runner clones" in repos
    fields = explained_fields(repos)
    assert set(fields) == {"url", "branch", "autoPush"}
    assert all(fields.values()), fields
    assert re.search(r"url\t<string> -required-", repos)
    assert "REPOS_JSON" in fields["autoPush"] and '"main"' in fields["branch"]

    status = explained_fields(kubectl("explain", "agenticsession.status"))
    expected = {re.sub(r"\[\]|\{\}", "", p).split(".")[1]
                for p in UPSTREAM_SESSION | OURS_SESSION if p.startswith("status.")}
    assert set(status) == expected
    assert all(status.values()), status
    assert "backend" in status["lastActivityTime"]
    assert "inactivity" in status["stoppedReason"] and "user" in status["stoppedReason"]

    conditions = explained_fields(kubectl("explain", "agenticsession.status.conditions"))
    assert set(conditions) == {"type", "status", "reason", "message", "lastTransitionTime",
                               "observedGeneration"}
    assert all(conditions.values()), conditions


def test_explain_spec_recursive_lists_every_spec_field(kubectl: Kubectl, crds: None) -> None:
    output = kubectl("explain", "agenticsession.spec", "--recursive")
    listed = set(re.findall(r"^ +(\w+)\t<", output.split("FIELDS:", 1)[1], re.MULTILINE))
    expected = {re.sub(r"\[\]|\{\}", "", p).split(".")[-1]
                for p in UPSTREAM_SESSION | OURS_SESSION if p.startswith("spec.")}
    assert listed == expected
    spec = explained_fields(kubectl("explain", "agenticsession.spec"))
    assert all(spec.values()), spec
    assert "env TIMEOUT" in spec["timeout"]
    assert "neither the operator nor the runner enforces it" in spec["timeout"]
    assert "86400" in spec["inactivityTimeout"]
    assert "inactivityTimeoutSeconds" in spec["inactivityTimeout"]
    assert "RUNNER_TYPE" in spec["runtime"]


def test_explain_describes_project_settings(kubectl: Kubectl, crds: None) -> None:
    spec = explained_fields(kubectl("explain", "projectsettings.spec"))
    assert set(spec) == {"groupAccess", "runnerSecretsName", "repositories",
                         "inactivityTimeoutSeconds", "mcpServers"}
    assert all(spec.values()), spec
    assert "86400" in spec["inactivityTimeoutSeconds"]
    status = explained_fields(kubectl("explain", "projectsettings.status"))
    assert set(status) == {"groupBindingsCreated", "scheduledSessionRBACReady",
                           "limitRangeReady"}
    assert all(status.values()), status


# --------------------------------------------------------------------------------------------
# What the API server stores
# --------------------------------------------------------------------------------------------


def backend_create_body(namespace: str) -> dict[str, Any]:
    """Exactly what upstream's backend CreateSession sends (be/s:941-975)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "AgenticSession",
        "metadata": {"name": f"session-{uuid.uuid4()}", "namespace": namespace},
        "spec": {
            "displayName": "Fix the flaky test",
            "project": namespace,
            "llmSettings": {"model": "claude-sonnet-4-6", "temperature": 0.7,
                            "maxTokens": 4000},
            "timeout": 300,
            "initialPrompt": "Find out why test_login flakes and fix it.",
            "environmentVariables": {"RUNNER_TYPE": "claude-agent-sdk",
                                     "RUNNER_STATE_DIR": ".claude"},
            "repos": [{"url": "https://github.com/org/repo.git"}],
            "userContext": {"userId": "user-1234", "displayName": "Ada Lovelace",
                            "groups": []},
        },
        "status": {"phase": "Pending"},
    }


def test_the_backends_create_body_is_stored_pruned_and_defaulted(
        objects: client.CustomObjectsApi, namespace: str) -> None:
    body = backend_create_body(namespace)
    created, code, headers = objects.create_namespaced_custom_object_with_http_info(
        GROUP, VERSION, namespace, SESSIONS, copy.deepcopy(body))
    assert code == 201
    assert 'unknown field \\"spec.project\\"' in headers.get("Warning", "")
    stored = objects.get_namespaced_custom_object(GROUP, VERSION, namespace, SESSIONS,
                                                  body["metadata"]["name"])
    expected_spec = {k: v for k, v in body["spec"].items() if k != "project"}
    expected_spec["repos"] = [{"url": "https://github.com/org/repo.git", "branch": "main",
                               "autoPush": False}]
    for obj in (created, stored):
        assert "status" not in obj  # the status subresource drops it on create
        assert obj["spec"] == expected_spec
        assert obj["metadata"]["generation"] == 1


def test_defaults_apply_inside_objects_that_exist(objects: client.CustomObjectsApi,
                                                  namespace: str) -> None:
    bare = create_session(objects, namespace)
    assert bare["spec"] == {"timeout": 300}  # no llmSettings object, so no defaults in it
    full = create_session(objects, namespace, {
        "llmSettings": {}, "activeWorkflow": {"gitUrl": "https://github.com/org/wf.git"},
        "repos": [{"url": "a", "branch": "dev", "autoPush": True}, {"url": "b"}]})
    assert full["spec"]["llmSettings"] == {"model": "claude-sonnet-4-6", "temperature": 0.7,
                                           "maxTokens": 4000}
    assert full["spec"]["activeWorkflow"] == {"gitUrl": "https://github.com/org/wf.git",
                                              "branch": "main"}
    assert full["spec"]["repos"] == [{"url": "a", "branch": "dev", "autoPush": True},
                                     {"url": "b", "branch": "main", "autoPush": False}]


def test_mcp_custom_servers_keep_arbitrary_fields_and_the_rest_is_pruned(
        objects: client.CustomObjectsApi, namespace: str) -> None:
    server = {"type": "stdio", "command": "npx", "args": ["-y", "@acme/mcp"],
              "env": {"TOKEN": "x"}, "nested": {"deeper": [{"any": 1}, None, True]}}
    created = create_session(objects, namespace, {
        "mcpServers": {"custom": {"acme": server}, "disabled": ["github"], "extra": 1},
        "repos": [{"url": "a", "input": {"url": "old-shape"}}],
        "runtime": "gemini-cli", "unknownTopLevel": "dropped"})
    assert created["spec"]["mcpServers"] == {"custom": {"acme": server},
                                             "disabled": ["github"]}
    assert created["spec"]["repos"] == [{"url": "a", "branch": "main", "autoPush": False}]
    assert created["spec"]["runtime"] == "gemini-cli"
    assert "unknownTopLevel" not in created["spec"]


def test_a_repo_without_url_is_refused(objects: client.CustomObjectsApi,
                                       namespace: str) -> None:
    status = refused(objects.create_namespaced_custom_object, GROUP, VERSION, namespace,
                     SESSIONS, session_body("no-url", {"repos": [{"url": "a"},
                                                                 {"branch": "dev"}]}))
    assert causes(status) == {("spec.repos[1].url", "FieldValueRequired")}


def test_inactivity_timeout_may_be_zero_but_not_negative(objects: client.CustomObjectsApi,
                                                         namespace: str) -> None:
    assert create_session(objects, namespace, {"inactivityTimeout": 0})[
        "spec"]["inactivityTimeout"] == 0
    status = refused(objects.create_namespaced_custom_object, GROUP, VERSION, namespace,
                     SESSIONS, session_body("negative", {"inactivityTimeout": -1}))
    assert causes(status) == {("spec.inactivityTimeout", "FieldValueInvalid")}


@pytest.mark.parametrize("field", ["timeout", "inactivityTimeout"])
def test_timeouts_are_at_most_a_year(objects: client.CustomObjectsApi, namespace: str,
                                     field: str) -> None:
    assert create_session(objects, namespace, {field: YEAR})["spec"][field] == YEAR
    status = refused(objects.create_namespaced_custom_object, GROUP, VERSION, namespace,
                     SESSIONS, session_body(f"huge-{field.lower()}", {field: 10**10}))
    assert causes(status) == {(f"spec.{field}", "FieldValueInvalid")}


def test_stopped_reason_is_user_or_inactivity_only(objects: client.CustomObjectsApi,
                                                   namespace: str) -> None:
    obj = create_session(objects, namespace)
    for reason in ("user", "inactivity"):
        obj = put_status(objects, namespace, obj, {"phase": "Stopped", "stoppedReason": reason})
        assert obj["status"]["stoppedReason"] == reason
    status = refused(put_status, objects, namespace, obj,
                     {"phase": "Stopped", "stoppedReason": "timeout"})
    assert causes(status) == {("status.stoppedReason", "FieldValueNotSupported")}


def test_phase_enum_and_default(objects: client.CustomObjectsApi, namespace: str) -> None:
    obj = create_session(objects, namespace)
    for phase in ("Pending", "Creating", "Running", "Stopping", "Stopped", "Completed",
                  "Failed"):
        obj = put_status(objects, namespace, obj, {"phase": phase})
        assert obj["status"]["phase"] == phase
    for phase in ("Paused", "running"):
        status = refused(put_status, objects, namespace, obj, {"phase": phase})
        assert causes(status) == {("status.phase", "FieldValueNotSupported")}
    # A status written without a phase (the backend's lastActivityTime) gets the default.
    obj = put_status(objects, namespace, obj, {"lastActivityTime": "2026-05-01T10:00:00Z"})
    assert obj["status"] == {"phase": "Pending", "lastActivityTime": "2026-05-01T10:00:00Z"}


def test_status_enums_and_required_condition_fields(objects: client.CustomObjectsApi,
                                                    namespace: str) -> None:
    obj = create_session(objects, namespace)
    # Upstream's conditions need only type and status; reason, message and times are optional.
    obj = put_status(objects, namespace, obj, {"conditions": [
        {"type": "Ready", "status": "Unknown"}], "executionKind": "kubevirt-vm",
        "runtime": "claude-agent-sdk", "endpoint": "http://session-x.ns.svc:8001/"})
    assert obj["status"]["conditions"] == [{"type": "Ready", "status": "Unknown"}]
    assert obj["status"]["executionKind"] == "kubevirt-vm"
    status = refused(put_status, objects, namespace, obj, {
        "conditions": [{"type": "Ready"}, {"status": "True"}, {"type": "X", "status": "Yes"}],
        "executionKind": "docker", "reconciledRepos": [{"url": "a", "status": "Done"}],
        "runStartTime": "2026-05-01T10:00:00Z"})  # not in the schema: pruned, not refused
    assert causes(status) == {
        ("status.conditions[0].status", "FieldValueRequired"),
        ("status.conditions[1].type", "FieldValueRequired"),
        ("status.conditions[2].status", "FieldValueNotSupported"),
        ("status.executionKind", "FieldValueNotSupported"),
        ("status.reconciledRepos[0].status", "FieldValueNotSupported"),
    }


# --------------------------------------------------------------------------------------------
# kubectl get columns
# --------------------------------------------------------------------------------------------


def table(output: str) -> list[dict[str, str]]:
    """``kubectl get`` output as rows of header → cell, cut at the headers' positions (kubectl
    aligns cells under them; a cell without a value is blank)."""
    lines = output.splitlines()
    headers = [(m.group(), m.start()) for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
    bounds = [start for _, start in headers[1:]] + [None]
    return [{name: line[start:end].strip() for (name, start), end in zip(headers, bounds,
                                                                          strict=True)}
            for line in lines[1:]]


ENDPOINT = "http://session-fix.ns.svc.cluster.local:8001"


def test_kubectl_get_prints_the_columns(kubectl: Kubectl, objects: client.CustomObjectsApi,
                                        namespace: str) -> None:
    fresh = create_session(objects, namespace, {"displayName": "just created"})
    running = create_session(objects, namespace, {"displayName": "fix the build"})
    put_status(objects, namespace, running, {
        "phase": "Running", "startTime": "2026-05-01T10:00:00Z", "executionKind": "pod",
        "runtime": "claude-agent-sdk", "endpoint": ENDPOINT, "conditions": [
            {"type": "PodCreated", "status": "True", "reason": "PodCreated"},
            {"type": "Ready", "status": "True", "reason": "Running",
             "message": "Session is running", "lastTransitionTime": "2026-05-01T10:00:05Z"}]})
    stopped = create_session(objects, namespace, {"displayName": "idle"})
    put_status(objects, namespace, stopped, {
        "phase": "Stopped", "stoppedReason": "inactivity", "executionKind": "kubevirt-vm",
        "conditions": [{"type": "Ready", "status": "False", "reason": "InactivityTimeout"}]})

    output = kubectl("get", "agenticsessions", "-n", namespace)
    assert output.splitlines()[0].split() == ["NAME", "PHASE", "BACKEND", "READY", "AGE"]
    rows = {row["NAME"]: row for row in table(output)}
    assert [rows[fresh["metadata"]["name"]][c] for c in ("PHASE", "BACKEND", "READY")] == [
        "", "", ""]
    assert [rows[running["metadata"]["name"]][c] for c in ("PHASE", "BACKEND", "READY")] == [
        "Running", "pod", "Running"]
    assert [rows[stopped["metadata"]["name"]][c] for c in ("PHASE", "BACKEND", "READY")] == [
        "Stopped", "kubevirt-vm", "InactivityTimeout"]

    wide = kubectl("get", "as", "-n", namespace, "-o", "wide")
    assert re.split(r"\s{2,}", wide.splitlines()[0].strip()) == [
        "NAME", "PHASE", "BACKEND", "READY", "RUNTIME", "DISPLAY NAME", "STOPPED", "STARTED",
        "ENDPOINT", "AGE"]
    rows = {row["NAME"]: row for row in table(wide)}
    row = rows[running["metadata"]["name"]]
    assert (row["RUNTIME"], row["DISPLAY NAME"], row["STOPPED"]) == (
        "claude-agent-sdk", "fix the build", "")
    assert re.fullmatch(r"\d+[smhdy]\w*", row["STARTED"]), row
    assert row["ENDPOINT"] == ENDPOINT
    row = rows[stopped["metadata"]["name"]]
    assert (row["RUNTIME"], row["DISPLAY NAME"], row["STOPPED"], row["STARTED"],
            row["ENDPOINT"]) == ("", "idle", "inactivity", "", "")


# --------------------------------------------------------------------------------------------
# ProjectSettings
# --------------------------------------------------------------------------------------------


def settings_body(spec: dict[str, Any], name: str = SETTINGS) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ProjectSettings",
            "metadata": {"name": name}, "spec": spec}


def test_project_settings_defaults_and_required_fields(
        kubectl: Kubectl, objects: client.CustomObjectsApi, namespace: str) -> None:
    server = {"url": "https://mcp.example.com/sse", "type": "sse", "headers": {"A": "b"}}
    created = objects.create_namespaced_custom_object(GROUP, VERSION, namespace, SETTINGS, {
        **settings_body({"groupAccess": [], "mcpServers": {"custom": {"docs": server}},
                         "unknown": 1}),
        "status": {"groupBindingsCreated": 3}})
    assert created["spec"] == {"groupAccess": [], "inactivityTimeoutSeconds": 86400,
                               "mcpServers": {"custom": {"docs": server}}}
    assert "status" not in created

    other = f"{namespace}-other"
    client.CoreV1Api(objects.api_client).create_namespace({"metadata": {"name": other}})
    status = refused(objects.create_namespaced_custom_object, GROUP, VERSION, other, SETTINGS,
                     settings_body({"inactivityTimeoutSeconds": -1,
                                    "repositories": [{"provider": "bitbucket"}]}))
    assert causes(status) == {
        ("spec.groupAccess", "FieldValueRequired"),
        ("spec.inactivityTimeoutSeconds", "FieldValueInvalid"),
        ("spec.repositories[0].url", "FieldValueRequired"),
        ("spec.repositories[0].provider", "FieldValueNotSupported"),
    }
    status = refused(objects.create_namespaced_custom_object, GROUP, VERSION, other, SETTINGS,
                     settings_body({"groupAccess": [{"groupName": "devs", "role": "owner"},
                                                    {"role": "view"}]}))
    assert causes(status) == {("spec.groupAccess[0].role", "FieldValueNotSupported"),
                              ("spec.groupAccess[1].groupName", "FieldValueRequired")}
    zero = objects.create_namespaced_custom_object(GROUP, VERSION, other, SETTINGS, settings_body(
        {"groupAccess": [{"groupName": "devs", "role": "edit"}],
         "inactivityTimeoutSeconds": 0}))
    assert zero["spec"]["inactivityTimeoutSeconds"] == 0

    output = kubectl("get", "ps", "-n", namespace)
    assert output.splitlines()[0].split() == ["NAME", "AGE"]
    assert output.splitlines()[1].split()[0] == SETTINGS
