"""The agent registry (reconcilers.registry) in upstream's entry format (UPSTREAM-CONTRACT §6,
ADR-0008 §9): what each field becomes, what is ignored, per-entry errors with the reasons the
module lists, the runtime id a session asks for, and the cache."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from reconcilers.environment import RenderError, Runtime, Sandbox, VMConfig
from reconcilers.registry import (
    DEFAULT,
    InvalidRuntime,
    RegistryCache,
    RegistryError,
    UnknownRuntime,
    parse_registry,
    runtime_id,
)
from reconcilers.resources import ExecutionKind
from reconcilers.samples import CLAUDE_ENTRY, GEMINI_ENTRY, KUBEVIRT_ENTRY, UPSTREAM_REGISTRY

Obj = dict[str, Any]


def parse_one(entry: Any) -> Runtime | RegistryError:
    registry = parse_registry(json.dumps([entry]))
    assert registry.error is None
    if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]:
        return registry.entries[entry["id"]]
    [problem] = registry.problems
    return problem


def runtime(entry: Obj) -> Runtime:
    found = parse_one(entry)
    assert isinstance(found, Runtime), found
    return found


def error(entry: Obj) -> RegistryError:
    found = parse_one(entry)
    assert isinstance(found, RegistryError), found
    return found


def entry(**fields: Any) -> Obj:
    return {"id": "agent", **fields}


# upstream's entries ----------------------------------------------------------------------------
def test_upstreams_claude_entry_in_full() -> None:
    assert runtime(CLAUDE_ENTRY) == Runtime(
        id="claude-agent-sdk", image="quay.io/ambient_code/vteam_claude_runner:latest",
        display_name="Claude Code", port=8001,
        env={"RUNNER_TYPE": "claude-agent-sdk", "RUNNER_STATE_DIR": ".claude"},
        resources={"requests": {"cpu": "500m", "memory": "512Mi"},
                   "limits": {"cpu": "2", "memory": "8Gi"}},
        sandbox=Sandbox(found=True, state_dir=".claude",
                        state_sync_image="quay.io/ambient_code/vteam_state_sync:latest",
                        persistence="s3", workspace_size="10Gi", termination_grace_period=60,
                        clone_repos=True, hydrate_state=True),
        execution_kind=ExecutionKind.POD, vm=None)


def test_upstreams_gemini_entry_has_no_resources() -> None:
    gemini = runtime(GEMINI_ENTRY)
    assert (gemini.id, gemini.resources, gemini.sandbox.state_dir) == ("gemini-cli", {},
                                                                        ".gemini")


def test_the_adr_entry_parses_verbatim() -> None:
    vm = runtime(KUBEVIRT_ENTRY)
    assert vm.execution_kind == ExecutionKind.KUBEVIRT_VM
    assert vm.vm == VMConfig(container_disk_image="quay.io/ambient_code/fedora-runner:latest",
                             cpu=2, memory="4Gi", cloud_init_template="ambient-runner-cloud-init")
    assert vm.image == "quay.io/ambient_code/ambient_runner:latest"
    assert vm.sandbox == Sandbox(found=True, state_dir=".claude", persistence="s3",
                                 workspace_size="50Gi", clone_repos=True, hydrate_state=True)


def test_the_shipped_registry_parses_without_problems() -> None:
    registry = parse_registry(json.dumps(UPSTREAM_REGISTRY))
    assert registry.errors() == []
    assert sorted(registry.entries) == ["claude-agent-sdk", "claude-kubevirt", "gemini-cli"]


@pytest.mark.parametrize("key", ["auth", "featureGate", "provider", "description", "framework",
                                 "defaultModel", "models", "somethingNew"])
def test_backend_keys_and_unknown_keys_are_ignored(key: str) -> None:
    base = {k: v for k, v in CLAUDE_ENTRY.items() if k not in (
        "auth", "featureGate", "provider", "description", "framework")}
    value: Any = {"auth": {"requiredSecretKeys": ["X"], "secretKeyLogic": "all"},
                  "featureGate": "flag", "provider": 7, "description": ["not", "a", "string"],
                  "framework": None, "defaultModel": "m", "models": [{"value": "m"}],
                  "somethingNew": {"x": 1}}[key]
    assert runtime({**base, key: value}) == runtime(base)


def test_a_minimal_entry_gets_the_defaults() -> None:
    assert runtime({"id": "bare"}) == Runtime(id="bare", image="", port=8001, env={},
                                              resources={}, sandbox=Sandbox(found=True),
                                              execution_kind=ExecutionKind.POD)
    # an entry without sandbox is still an entry: workspace and sidecar, no init container
    sandbox = runtime({"id": "bare"}).sandbox
    assert (sandbox.needs_workspace, sandbox.needs_sidecar, sandbox.needs_init) == (
        True, True, False)


def test_no_entry_means_all_three_parts() -> None:
    assert DEFAULT.id == "claude-agent-sdk"
    assert (DEFAULT.sandbox.found, DEFAULT.sandbox.needs_workspace, DEFAULT.sandbox.needs_init,
            DEFAULT.sandbox.needs_sidecar) == (False, True, True, True)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"container": {"port": 0}}, 8001),
    ({"container": {"port": 9000}}, 9000),
    ({"container": {"image": ""}}, 8001),
])
def test_port_zero_means_8001(fields: Obj, expected: int) -> None:
    assert runtime(entry(**fields)).port == expected


def test_env_values_become_strings() -> None:
    assert runtime(entry(container={"env": {"A": 1, "B": 2.5, "C": "c"}})).env == {
        "A": "1", "B": "2.5", "C": "c"}


def test_only_cpu_and_memory_are_read_from_resources() -> None:
    found = runtime(entry(container={"resources": {
        "requests": {"cpu": 1, "memory": "1Gi", "nvidia.com/gpu": "1"},
        "limits": {"ephemeral-storage": "bad quantity"}}}))
    assert found.resources == {"requests": {"cpu": "1", "memory": "1Gi"}}


def test_execution_kind_empty_is_pod_and_vm_config_of_a_pod_is_ignored() -> None:
    found = runtime(entry(executionKind="", vmConfig={"containerDiskImage": ""}))
    assert (found.execution_kind, found.vm) == (ExecutionKind.POD, None)


def test_vm_config_defaults() -> None:
    found = runtime(entry(executionKind="kubevirt-vm", vmConfig={"containerDiskImage": "d:1"}))
    assert found.vm == VMConfig(container_disk_image="d:1", cpu=2, memory="4Gi",
                                cloud_init_template="")


# errors ------------------------------------------------------------------------------------------
BAD = [
    ("not-an-object-container", entry(container=[]), "InvalidRuntime", "container"),
    ("image-with-space", entry(container={"image": "a b"}), "InvalidRuntime", "container.image"),
    ("image-not-string", entry(container={"image": 5}), "InvalidRuntime", "container.image"),
    ("port-string", entry(container={"port": "8001"}), "InvalidRuntime", "container.port"),
    ("port-too-big", entry(container={"port": 70000}), "InvalidRuntime", "container.port"),
    ("port-negative", entry(container={"port": -1}), "InvalidRuntime", "container.port"),
    ("port-bool", entry(container={"port": True}), "InvalidRuntime", "container.port"),
    ("env-list", entry(container={"env": ["A=1"]}), "InvalidRuntime", "container.env"),
    ("env-object-value", entry(container={"env": {"A": {}}}), "InvalidRuntime",
     "container.env.A"),
    ("env-bool-value", entry(container={"env": {"A": True}}), "InvalidRuntime",
     "container.env.A"),
    ("env-name-with-equals", entry(container={"env": {"A=B": "1"}}), "InvalidRuntime",
     "container.env"),
    ("display-name", entry(displayName=3), "InvalidRuntime", "displayName"),
    ("kind", entry(executionKind="lambda"), "InvalidRuntime", "executionKind"),
    ("quantity", entry(container={"resources": {"requests": {"cpu": "lots"}}}),
     "InvalidQuantity", "container.resources.requests.cpu"),
    ("quantity-spelled-with-space", entry(container={"resources": {"limits": {
        "memory": "1 Gi"}}}), "InvalidQuantity", "container.resources.limits.memory"),
    ("quantity-negative", entry(container={"resources": {"limits": {"cpu": "-1"}}}),
     "InvalidQuantity", "must not be negative"),
    ("quantity-bool", entry(container={"resources": {"limits": {"cpu": True}}}),
     "InvalidQuantity", "container.resources.limits.cpu"),
    ("request-over-limit", entry(container={"resources": {"requests": {"memory": "2Gi"},
                                                          "limits": {"memory": "1Gi"}}}),
     "InvalidResources", "exceeds limits.memory"),
    ("resources-unknown-section", entry(container={"resources": {"claims": []}}),
     "InvalidResources", "claims"),
    ("resources-section-list", entry(container={"resources": {"requests": ["cpu"]}}),
     "InvalidResources", "container.resources.requests"),
    ("sandbox-list", entry(sandbox=[]), "InvalidRuntime", "sandbox"),
    ("persistence", entry(sandbox={"persistence": "gcs"}), "InvalidRuntime",
     "sandbox.persistence"),
    ("state-dir-absolute", entry(sandbox={"stateDir": "/root/.claude"}), "InvalidRuntime",
     "sandbox.stateDir"),
    ("state-dir-up", entry(sandbox={"stateDir": "a/../../etc"}), "InvalidRuntime",
     "sandbox.stateDir"),
    ("workspace-size", entry(sandbox={"workspaceSize": "big"}), "InvalidQuantity",
     "sandbox.workspaceSize"),
    ("grace-negative", entry(sandbox={"terminationGracePeriod": -1}), "InvalidRuntime",
     "sandbox.terminationGracePeriod"),
    ("grace-string", entry(sandbox={"terminationGracePeriod": "60"}), "InvalidRuntime",
     "sandbox.terminationGracePeriod"),
    ("seed-string", entry(sandbox={"seed": {"cloneRepos": "yes"}}), "InvalidRuntime",
     "sandbox.seed.cloneRepos"),
    ("seed-list", entry(sandbox={"seed": []}), "InvalidRuntime", "seed"),
    ("state-sync-image-number", entry(sandbox={"stateSyncImage": 1}), "InvalidRuntime",
     "sandbox.stateSyncImage"),
    ("vm-config-missing", entry(executionKind="kubevirt-vm"), "InvalidVMConfig", "vmConfig"),
    ("vm-config-list", entry(executionKind="kubevirt-vm", vmConfig=[]), "InvalidVMConfig",
     "vmConfig"),
    ("vm-disk-missing", entry(executionKind="kubevirt-vm", vmConfig={"cpu": 2}),
     "InvalidVMConfig", "vmConfig.containerDiskImage"),
    ("vm-disk-space", entry(executionKind="kubevirt-vm", vmConfig={
        "containerDiskImage": "a b"}), "InvalidVMConfig", "vmConfig.containerDiskImage"),
    *((f"vm-cpu-{cpu!r}", entry(executionKind="kubevirt-vm", vmConfig={
        "containerDiskImage": "d", "cpu": cpu}), "InvalidVMConfig", "vmConfig.cpu")
      for cpu in ("2", 0, 1025, 2.5, True)),
    *((f"vm-memory-{memory!r}", entry(executionKind="kubevirt-vm", vmConfig={
        "containerDiskImage": "d", "memory": memory}), "InvalidVMConfig", "vmConfig.memory")
      for memory in ("lots", "1.5", "0", "-4Gi", "100m", None)),
    ("vm-template-number", entry(executionKind="kubevirt-vm", vmConfig={
        "containerDiskImage": "d", "cloudInitTemplate": 3}), "InvalidVMConfig",
     "vmConfig.cloudInitTemplate"),
]


@pytest.mark.parametrize(("raw", "reason", "fragment"), [c[1:] for c in BAD],
                         ids=[c[0] for c in BAD])
def test_bad_entries_are_refused_naming_entry_and_field(raw: Obj, reason: str,
                                                        fragment: str) -> None:
    found = error(raw)
    assert found.reason == reason
    assert fragment in found.message
    assert 'registry entry "agent" (index 0)' in found.message


def test_a_bad_entry_never_hides_the_good_ones() -> None:
    registry = parse_registry(json.dumps([
        CLAUDE_ENTRY, entry(container={"port": "x"}), "not an object", {"id": ""},
        {"displayName": "no id"}, GEMINI_ENTRY]))
    assert isinstance(registry.entries["claude-agent-sdk"], Runtime)
    assert isinstance(registry.entries["gemini-cli"], Runtime)
    assert isinstance(registry.entries["agent"], RegistryError)
    assert [p.message.split(":")[0] for p in registry.problems] == [
        "registry entry at index 2", "registry entry at index 3", "registry entry at index 4"]
    assert len(registry.errors()) == 4


def test_duplicate_ids_make_neither_usable() -> None:
    registry = parse_registry(json.dumps([GEMINI_ENTRY, CLAUDE_ENTRY, GEMINI_ENTRY]))
    duplicate = registry.entries["gemini-cli"]
    assert isinstance(duplicate, RegistryError)
    assert duplicate.reason == "DuplicateRuntime"
    assert "index 0 and 2" in duplicate.message
    assert isinstance(registry.entries["claude-agent-sdk"], Runtime)


@pytest.mark.parametrize(("text", "fragment"), [
    ("{not json", "not valid JSON"), ('{"id": "x"}', "must be a JSON array"),
    ("null", "must be a JSON array"), ("", "not valid JSON"),
])
def test_an_unusable_document(text: str, fragment: str) -> None:
    registry = parse_registry(text)
    assert registry.error is not None
    assert registry.error.reason == "InvalidRegistry"
    assert fragment in registry.error.message


# runtime id --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "expected"), [
    ({}, "claude-agent-sdk"),
    ({"environmentVariables": {"RUNNER_TYPE": "gemini-cli"}}, "gemini-cli"),
    ({"runtime": "claude-kubevirt", "environmentVariables": {"RUNNER_TYPE": "gemini-cli"}},
     "claude-kubevirt"),
    ({"runtime": "", "environmentVariables": {"RUNNER_TYPE": "gemini-cli"}}, "gemini-cli"),
    ({"runtime": 5, "environmentVariables": {"RUNNER_TYPE": ""}}, "claude-agent-sdk"),
    ({"environmentVariables": {"RUNNER_TYPE": 7}}, "claude-agent-sdk"),
    ({"environmentVariables": "RUNNER_TYPE=x"}, "claude-agent-sdk"),
], ids=["default", "runner-type", "spec-runtime-first", "empty-runtime", "junk", "not-string",
        "env-not-map"])
def test_runtime_id_precedence(spec: Obj, expected: str) -> None:
    assert runtime_id({"spec": spec}) == expected
    assert runtime_id({}) == "claude-agent-sdk"


# the cache ---------------------------------------------------------------------------------------
def configmap(entries: Any, *, version: str = "1", uid: str = "cm-uid",
              key: str = "agent-registry.json") -> Obj:
    text = entries if isinstance(entries, str) else json.dumps(entries)
    return {"metadata": {"name": "ambient-agent-registry", "namespace": "ambient-code",
                         "uid": uid, "resourceVersion": version}, "data": {key: text}}


def test_each_version_is_parsed_once() -> None:
    cache = RegistryCache()
    v1 = configmap(UPSTREAM_REGISTRY)
    for _ in range(5):
        assert cache.lookup(v1, "gemini-cli").id == "gemini-cli"
        assert cache.lookup(copy.deepcopy(v1), "claude-agent-sdk").id == "claude-agent-sdk"
    assert cache.parses == 1
    v2 = configmap([GEMINI_ENTRY], version="2")
    assert cache.lookup(v2, "claude-agent-sdk") is DEFAULT  # no longer defined: built-in
    assert cache.parses == 2
    cache.lookup(configmap(UPSTREAM_REGISTRY, uid="recreated"), "gemini-cli")
    assert cache.parses == 3


def test_an_object_without_a_version_is_parsed_every_time() -> None:
    cache = RegistryCache()
    raw = configmap(UPSTREAM_REGISTRY, version="")
    cache.lookup(raw, "gemini-cli")
    cache.lookup(raw, "gemini-cli")
    assert cache.parses == 2


def test_without_a_registry_only_the_default_exists() -> None:
    cache = RegistryCache()
    assert cache.registry(None) is None
    assert cache.lookup(None, "claude-agent-sdk") is DEFAULT
    with pytest.raises(UnknownRuntime) as err:
        cache.lookup(None, "gemini-cli")
    assert err.value.reason == "UnknownRuntime"
    assert "known: claude-agent-sdk" in err.value.message


def test_the_registry_may_redefine_the_default() -> None:
    mine = {**CLAUDE_ENTRY, "container": {**CLAUDE_ENTRY["container"], "image": "mine:1"}}
    assert RegistryCache().lookup(configmap([mine]), "claude-agent-sdk").image == "mine:1"


def test_lookups_raise_render_errors_with_the_entrys_reason() -> None:
    cache = RegistryCache()
    bad = configmap([CLAUDE_ENTRY, entry(container={"port": "x"})])
    with pytest.raises(InvalidRuntime) as invalid:
        cache.lookup(bad, "agent")
    assert invalid.value.reason == "InvalidRuntime"
    assert isinstance(invalid.value, RenderError)
    with pytest.raises(UnknownRuntime) as unknown:
        cache.lookup(bad, "nope")
    assert "known: agent, claude-agent-sdk" in unknown.value.message


@pytest.mark.parametrize("broken", [configmap("{not json"), configmap([], key="other-key")])
def test_an_unusable_registry_fails_every_lookup_even_the_default(broken: Obj) -> None:
    with pytest.raises(InvalidRuntime) as err:
        RegistryCache().lookup(broken, "claude-agent-sdk")
    assert err.value.reason == "InvalidRegistry"


def test_a_huge_runtime_id_is_quoted_short() -> None:
    with pytest.raises(UnknownRuntime) as err:
        RegistryCache().lookup(None, "x" * 50_000)
    assert len(err.value.message) < 400
    assert "(50000 characters)" in err.value.message
