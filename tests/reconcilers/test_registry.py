"""The agent registry: validation of each entry, lookups, the default runtime and the cache."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest

from reconcilers.environment import RenderError, VMConfig
from reconcilers.registry import (
    DEFAULT,
    InvalidRuntime,
    Registry,
    RegistryCache,
    RegistryError,
    UnknownRuntime,
    parse_registry,
    runtime_id,
)
from reconcilers.resources import (
    DEFAULT_RUNTIME,
    REGISTRY_CONFIGMAP,
    REGISTRY_KEY,
    ExecutionKind,
)

Obj = dict[str, Any]
IMAGE = "quay.io/ambient_code/runner-x:1.2"


def entry(rid: str = "agent-x", **fields: Any) -> Obj:
    return {"id": rid, "container": {"image": IMAGE}, **fields}


def container(**fields: Any) -> Obj:
    return {"image": IMAGE, **fields}


def configmap(entries: Any, *, uid: str = "cm-uid-1", rv: str = "100", raw: str | None = None
              ) -> Obj:
    text = raw if raw is not None else orjson.dumps(entries).decode()
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": REGISTRY_CONFIGMAP, "namespace": "ambient-code", "uid": uid,
                         "resourceVersion": rv},
            "data": {REGISTRY_KEY: text}}


def only(registry: Registry, rid: str = "agent-x") -> Any:
    return registry.entries[rid]


# valid entries ---------------------------------------------------------------------------------
def test_minimal_entry_gets_the_defaults() -> None:
    runtime = only(parse_registry(orjson.dumps([entry()]).decode()))
    assert (runtime.id, runtime.image, runtime.port, runtime.display_name) == \
        ("agent-x", IMAGE, 8001, "")
    assert dict(runtime.env) == {} and dict(runtime.resources) == {}
    assert dict(runtime.sandbox) == {}
    assert runtime.execution_kind == ExecutionKind.POD and runtime.vm is None


def test_full_pod_entry() -> None:
    raw = entry(displayName="Agent X", sandbox={"readOnlyRootFilesystem": True, "fsGroup": 2000,
                                                "runAsUser": 1000770000, "future": "kept"},
                container=container(
                    port=9000, env={"LOG_LEVEL": "debug", "WORKERS": 4, "RATIO": 0.5},
                    resources={"requests": {"memory": "1024Mi", "cpu": 0.5},
                               "limits": {"memory": "1Gi", "cpu": "2"}}),
                executionKind="pod", vmConfig={"ignored": "for pods"}, unknownKey=[1])
    runtime = only(parse_registry(orjson.dumps([raw]).decode()))
    assert runtime.display_name == "Agent X" and runtime.port == 9000
    assert dict(runtime.env) == {"LOG_LEVEL": "debug", "WORKERS": "4", "RATIO": "0.5"}
    # Spellings are kept (the diff compares by value); numbers become strings.
    assert {k: dict(v) for k, v in runtime.resources.items()} == {
        "requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}}
    assert dict(runtime.sandbox) == raw["sandbox"]
    assert runtime.vm is None


def test_kubevirt_entry() -> None:
    raw = entry(executionKind="kubevirt-vm",
                vmConfig={"containerDiskImage": "quay.io/x/disk:1", "cpu": 4, "memory": "8Gi",
                          "cloudInitTemplate": "#cloud-config\n"})
    runtime = only(parse_registry(orjson.dumps([raw]).decode()))
    assert runtime.execution_kind == ExecutionKind.KUBEVIRT_VM
    assert runtime.vm == VMConfig(container_disk_image="quay.io/x/disk:1", cpu="4",
                                  memory="8Gi", cloud_init_template="#cloud-config\n")


def test_kubevirt_entry_vm_defaults() -> None:
    raw = entry(executionKind="kubevirt-vm", vmConfig={"containerDiskImage": "disk"})
    assert only(parse_registry(orjson.dumps([raw]).decode())).vm == VMConfig("disk")


def test_kubevirt_entry_needs_no_container_image() -> None:
    bare = {"id": "agent-x", "executionKind": "kubevirt-vm",
            "vmConfig": {"containerDiskImage": "disk"}}
    with_port = {**bare, "container": {"port": 8123, "env": {"A": "1"}}}
    registry = parse_registry(orjson.dumps([bare, {**with_port, "id": "vm-2"}]).decode())
    assert only(registry).image == "" and only(registry).port == 8001
    assert only(registry, "vm-2").port == 8123 and dict(only(registry, "vm-2").env) == {"A": "1"}


def test_runtime_values_are_read_only() -> None:
    runtime = only(parse_registry(orjson.dumps([entry(container=container(
        env={"A": "1"}, resources={"limits": {"cpu": "1"}}))]).decode()))
    with pytest.raises(TypeError):
        runtime.env["A"] = "2"  # type: ignore[index]
    with pytest.raises(TypeError):
        runtime.resources["limits"]["cpu"] = "3"


# invalid entries -------------------------------------------------------------------------------
INVALID = [
    ("no-container", {"id": "agent-x"}, "InvalidRuntime", "container: must be a JSON object"),
    ("container-not-object", entry(container="img"), "InvalidRuntime",
     'container: must be a JSON object, got "img"'),
    ("missing-image", entry(container={"port": 8001}), "InvalidRuntime",
     "container.image: must be a container image reference"),
    ("empty-image", entry(container={"image": ""}), "InvalidRuntime", "container.image"),
    ("image-with-space", entry(container={"image": "quay.io/a b"}), "InvalidRuntime",
     "container.image"),
    ("port-string", entry(container=container(port="8001")), "InvalidRuntime",
     'container.port: must be an integer from 1 to 65535, got "8001"'),
    ("port-zero", entry(container=container(port=0)), "InvalidRuntime", "container.port"),
    ("port-too-big", entry(container=container(port=65536)), "InvalidRuntime",
     "got 65536"),
    ("port-bool", entry(container=container(port=True)), "InvalidRuntime", "got true"),
    ("vm-image-with-space", {"id": "agent-x", "executionKind": "kubevirt-vm",
                             "container": {"image": "a b"},
                             "vmConfig": {"containerDiskImage": "d"}},
     "InvalidRuntime", "container.image"),
    ("display-name", entry(displayName=7), "InvalidRuntime", "displayName: must be a string"),
    ("unknown-kind", entry(executionKind="docker"), "InvalidRuntime",
     "executionKind: must be one of 'pod', 'kubevirt-vm', got \"docker\""),
    ("vm-without-config", entry(executionKind="kubevirt-vm"), "InvalidVMConfig",
     'vmConfig: required when executionKind is "kubevirt-vm"'),
    ("vm-config-not-object", entry(executionKind="kubevirt-vm", vmConfig=[]),
     "InvalidVMConfig", "vmConfig: must be a JSON object, got array"),
    ("vm-without-disk", entry(executionKind="kubevirt-vm", vmConfig={"cpu": 2}),
     "InvalidVMConfig", "vmConfig.containerDiskImage: required"),
    ("vm-memory-unparsable", entry(executionKind="kubevirt-vm", vmConfig={
        "containerDiskImage": "d", "memory": "lots"}), "InvalidVMConfig",
     'vmConfig.memory: "lots" is not a Kubernetes quantity'),
    ("vm-cpu-fraction", entry(executionKind="kubevirt-vm", vmConfig={
        "containerDiskImage": "d", "cpu": "1.5"}), "InvalidVMConfig",
     'vmConfig.cpu: "1.5" must be a positive whole number'),
    ("vm-cpu-zero", entry(executionKind="kubevirt-vm", vmConfig={
        "containerDiskImage": "d", "cpu": 0}), "InvalidVMConfig", "vmConfig.cpu"),
    ("vm-template-not-string", entry(executionKind="kubevirt-vm", vmConfig={
        "containerDiskImage": "d", "cloudInitTemplate": {"a": 1}}), "InvalidVMConfig",
     "vmConfig.cloudInitTemplate: must be a string"),
    ("quantity-unparsable", entry(container=container(resources={"limits": {"memory": "4GB"}})),
     "InvalidQuantity", 'container.resources.limits.memory: "4GB" is not a Kubernetes quantity'),
    ("quantity-inf", entry(container=container(resources={"limits": {"cpu": "inf"}})),
     "InvalidQuantity", 'container.resources.limits.cpu: "inf"'),
    ("quantity-space", entry(container=container(resources={"requests": {"memory": "1 Gi"}})),
     "InvalidQuantity", "container.resources.requests.memory"),
    ("quantity-negative", entry(container=container(resources={"requests": {"cpu": "-1"}})),
     "InvalidQuantity", 'container.resources.requests.cpu: "-1" must not be negative'),
    ("quantity-bool", entry(container=container(resources={"requests": {"cpu": True}})),
     "InvalidQuantity", "container.resources.requests.cpu: must be a quantity"),
    ("resources-typo", entry(container=container(resources={"request": {"cpu": "1"}})),
     "InvalidResources", "container.resources: unknown key 'request'"),
    ("resources-not-object", entry(container=container(resources=["cpu"])),
     "InvalidResources", "container.resources: must be an object"),
    ("request-above-limit", entry(container=container(
        resources={"requests": {"memory": "2Gi"}, "limits": {"memory": "1024Mi"}})),
     "InvalidResources", 'container.resources.requests.memory: "2Gi" exceeds limits.memory'),
    ("env-not-object", entry(container=container(env=["A=1"])), "InvalidRuntime",
     "container.env: must be a JSON object"),
    ("env-name-invalid", entry(container=container(env={"1BAD": "x"})), "InvalidEnvName",
     "'1BAD' from the container.env field"),
    ("env-name-reserved", entry(container=container(env={"SESSION_NAME": "x"})),
     "ReservedEnvName", "SESSION_NAME from the container.env field is reserved"),
    ("env-value-object", entry(container=container(env={"A": {"b": 1}})), "InvalidRuntime",
     "container.env.A: must be a string or a number, got object"),
    ("env-value-null", entry(container=container(env={"A": None})), "InvalidRuntime",
     "container.env.A"),
    ("sandbox-not-object", entry(sandbox="strict"), "InvalidRuntime",
     "sandbox: must be a JSON object"),
    ("sandbox-read-only-string", entry(sandbox={"readOnlyRootFilesystem": "yes"}),
     "InvalidRuntime", 'sandbox.readOnlyRootFilesystem: must be true or false, got "yes"'),
    ("sandbox-root-user", entry(sandbox={"runAsUser": 0}), "InvalidRuntime",
     "sandbox.runAsUser: must be an integer >= 1, got 0"),
    ("sandbox-fsgroup", entry(sandbox={"fsGroup": "1000"}), "InvalidRuntime",
     "sandbox.fsGroup"),
]


@pytest.mark.parametrize(("raw", "reason", "fragment"), [c[1:] for c in INVALID],
                         ids=[c[0] for c in INVALID])
def test_invalid_entry(raw: Obj, reason: str, fragment: str) -> None:
    good = entry("good")
    registry = parse_registry(orjson.dumps([good, raw]).decode())
    error = registry.entries["agent-x"]
    assert isinstance(error, RegistryError)
    assert error.reason == reason
    assert error.message.startswith('registry entry "agent-x" (index 1): ')
    assert fragment in error.message
    # One bad entry never invalidates another.
    assert registry.entries["good"].image == IMAGE  # type: ignore[union-attr]
    assert registry.error is None


DOCUMENTS = [
    ("not-json", "[{", "is not valid JSON"),
    ("object", '{"id": "agent-x"}', "must be a JSON array of runtime entries, got object"),
    ("string", '"x"', "must be a JSON array of runtime entries"),
    ("empty", "", "is not valid JSON"),
]


@pytest.mark.parametrize(("text", "fragment"), [d[1:] for d in DOCUMENTS],
                         ids=[d[0] for d in DOCUMENTS])
def test_invalid_document(text: str, fragment: str) -> None:
    registry = parse_registry(text)
    assert registry.error is not None and registry.error.reason == "InvalidRegistry"
    assert REGISTRY_KEY in registry.error.message and fragment in registry.error.message
    assert registry.errors() == [registry.error]


def test_entries_without_an_id_are_reported_not_keyed() -> None:
    registry = parse_registry(orjson.dumps([entry(), 3, {"container": {"image": "x"}},
                                            {"id": ""}]).decode())
    assert set(registry.entries) == {"agent-x"}
    assert [p.message for p in registry.problems] == [
        "registry entry at index 1: must be a JSON object, got 3",
        "registry entry at index 2: id: must be a non-empty string, got nothing",
        'registry entry at index 3: id: must be a non-empty string, got ""']
    assert {p.reason for p in registry.errors()} == {"InvalidRuntime"}


def test_duplicate_ids_use_neither() -> None:
    registry = parse_registry(orjson.dumps([entry(), entry("other"),
                                            entry(container=container(port=9))]).decode())
    assert registry.entries["agent-x"] == RegistryError(
        "DuplicateRuntime",
        'registry entries at index 0 and 2 both have id "agent-x"; neither is used')
    assert registry.entries["other"].image == IMAGE  # type: ignore[union-attr]


def test_empty_array_is_an_empty_registry() -> None:
    assert parse_registry("[]") == Registry()


# lookups ---------------------------------------------------------------------------------------
def test_lookup_without_registry_uses_the_default() -> None:
    cache = RegistryCache()
    assert cache.lookup(None, DEFAULT_RUNTIME) is DEFAULT
    assert DEFAULT.execution_kind == ExecutionKind.POD and DEFAULT.port == 8001
    assert DEFAULT.image.startswith("quay.io/ambient_code/")
    assert set(DEFAULT.resources) == {"requests", "limits"}


def test_lookup_unknown_without_registry() -> None:
    with pytest.raises(UnknownRuntime) as caught:
        RegistryCache().lookup(None, "gemini-cli")
    assert isinstance(caught.value, RenderError)
    assert caught.value.reason == "UnknownRuntime"
    assert caught.value.message == ('runtime "gemini-cli" is not defined in the agent '
                                    "registry (known: claude-agent-sdk)")


def test_lookup_unknown_quotes_a_long_id_shortened() -> None:
    with pytest.raises(UnknownRuntime) as caught:
        RegistryCache().lookup(None, "r" * 50_000)
    assert caught.value.message == (f'runtime "{"r" * 100}..." (50000 characters) is not '
                                    "defined in the agent registry (known: claude-agent-sdk)")


def test_lookup_unknown_lists_known_ids() -> None:
    cm = configmap([entry("b-agent"), entry("a-agent"), {"id": "broken"}])
    with pytest.raises(UnknownRuntime, match=r"known: a-agent, b-agent, broken, "
                                             r"claude-agent-sdk\)"):
        RegistryCache().lookup(cm, "nope")


def test_lookup_registry_without_the_default_id_falls_back() -> None:
    assert RegistryCache().lookup(configmap([entry()]), DEFAULT_RUNTIME) is DEFAULT


def test_registry_overrides_the_default() -> None:
    cm = configmap([entry(DEFAULT_RUNTIME, container=container(port=8100))])
    runtime = RegistryCache().lookup(cm, DEFAULT_RUNTIME)
    assert runtime.image == IMAGE and runtime.port == 8100


def test_lookup_of_an_invalid_entry() -> None:
    cm = configmap([entry(container=container(resources={"limits": {"cpu": "fast"}}))])
    with pytest.raises(InvalidRuntime) as caught:
        RegistryCache().lookup(cm, "agent-x")
    assert isinstance(caught.value, RenderError)
    assert caught.value.reason == "InvalidQuantity"
    assert caught.value.runtime_id == "agent-x"
    assert caught.value.message.startswith('registry entry "agent-x" (index 0): '
                                           "container.resources.limits.cpu")


@pytest.mark.parametrize("rid", [DEFAULT_RUNTIME, "agent-x"])
def test_a_broken_document_fails_every_lookup(rid: str) -> None:
    with pytest.raises(InvalidRuntime) as caught:
        RegistryCache().lookup(configmap(None, raw="not json"), rid)
    assert caught.value.reason == "InvalidRegistry"


def test_configmap_without_the_key() -> None:
    cm = configmap([])
    del cm["data"]
    with pytest.raises(InvalidRuntime) as caught:
        RegistryCache().lookup(cm, DEFAULT_RUNTIME)
    assert caught.value.reason == "InvalidRegistry"
    assert caught.value.message == (f"ConfigMap ambient-code/{REGISTRY_CONFIGMAP} has no key "
                                    f"{REGISTRY_KEY}")


# the cache -------------------------------------------------------------------------------------
def test_same_resource_version_is_parsed_once() -> None:
    cache = RegistryCache()
    first = cache.lookup(configmap([entry()]), "agent-x")
    # The informer hands out a new dict per event; the key is (uid, resourceVersion).
    again = cache.lookup(configmap([entry()]), "agent-x")
    cache.lookup(configmap([entry()]), DEFAULT_RUNTIME)
    assert cache.parses == 1 and again is first


def test_new_resource_version_is_parsed_again() -> None:
    cache = RegistryCache()
    cache.lookup(configmap([entry()], rv="100"), "agent-x")
    runtime = cache.lookup(configmap([entry(container=container(port=9100))], rv="101"),
                           "agent-x")
    assert cache.parses == 2 and runtime.port == 9100
    cache.lookup(configmap([entry()], uid="cm-uid-2", rv="101"), "agent-x")  # recreated
    assert cache.parses == 3


def test_invalid_versions_are_cached_too() -> None:
    cache = RegistryCache()
    for _ in range(3):
        with pytest.raises(InvalidRuntime):
            cache.lookup(configmap(None, raw="{"), "agent-x")
    assert cache.parses == 1


def test_objects_without_a_version_are_not_cached() -> None:
    cache = RegistryCache()
    cm = configmap([entry()], rv="")
    cache.lookup(cm, "agent-x")
    cache.lookup(cm, "agent-x")
    assert cache.parses == 2


def test_concurrent_lookups_parse_once() -> None:
    cache = RegistryCache()
    cm = configmap([entry(f"agent-{i}") for i in range(200)])
    barrier = threading.Barrier(8)
    seen: list[str] = []

    def work() -> None:
        barrier.wait()
        seen.append(cache.lookup(cm, "agent-7").id)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == ["agent-7"] * 8 and cache.parses == 1


def test_registry_of_no_configmap_is_none() -> None:
    assert RegistryCache().registry(None) is None


# runtime_id ------------------------------------------------------------------------------------
RUNTIME_IDS = [
    ("spec-runtime", {"runtime": "gemini", "environmentVariables": {"RUNNER_TYPE": "x"}},
     "gemini"),
    ("runner-type", {"environmentVariables": {"RUNNER_TYPE": "codex"}}, "codex"),
    ("empty-runtime", {"runtime": "", "environmentVariables": {"RUNNER_TYPE": "codex"}},
     "codex"),
    ("default", {"environmentVariables": {"OTHER": "1"}}, DEFAULT_RUNTIME),
    ("no-spec", None, DEFAULT_RUNTIME),
    ("env-not-map", {"environmentVariables": ["RUNNER_TYPE=x"]}, DEFAULT_RUNTIME),
]


@pytest.mark.parametrize(("spec", "expected"), [r[1:] for r in RUNTIME_IDS],
                         ids=[r[0] for r in RUNTIME_IDS])
def test_runtime_id(spec: Obj | None, expected: str) -> None:
    session: Obj = {"metadata": {"name": "s", "namespace": "n"}}
    if spec is not None:
        session["spec"] = spec
    assert runtime_id(session) == expected
