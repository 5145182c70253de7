"""The agent registry: the runtimes sessions may use, read from a ConfigMap.

The ConfigMap ``ambient-agent-registry`` holds under ``agent-registry.json`` a JSON array of
entries in upstream's format (``shared/UPSTREAM-CONTRACT.md`` §6), extended by ADR-0008::

    {"id": "claude-agent-sdk", "displayName": "Claude Code",
     "container": {"image": "quay.io/...", "port": 8001, "env": {"RUNNER_TYPE": "..."},
                   "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                                 "limits": {"cpu": "2", "memory": "8Gi"}}},
     "sandbox": {"stateDir": ".claude", "stateSyncImage": "quay.io/...", "persistence": "s3",
                 "workspaceSize": "10Gi", "terminationGracePeriod": 60,
                 "seed": {"cloneRepos": true, "hydrateState": true}},
     "executionKind": "pod",                                   # or "kubevirt-vm"
     "vmConfig": {"containerDiskImage": "quay.io/...", "cpu": 2, "memory": "4Gi",
                  "cloudInitTemplate": "ambient-runner-cloud-init"}}

``description``, ``framework``, ``provider``, ``auth``, ``featureGate``, ``defaultModel`` and
``models`` belong to the backend and are accepted and ignored, as are keys nobody knows.
An empty ``container.image`` means the operator's ``AMBIENT_CODE_RUNNER_IMAGE``, a port of 0
means 8001, and only ``cpu`` and ``memory`` of ``container.resources`` are used (as upstream).

:func:`parse_registry` validates each entry on its own: a bad entry becomes a
:class:`RegistryError` for its id (which entry, which field, why) and never hides the others.
Where upstream falls back silently (an unparsable quantity becomes the default, an unknown id
the env defaults), this registry reports the mistake as the sessions' condition instead — a
deliberate difference: the session says why it is not what the registry meant.
:class:`RegistryCache` parses each resourceVersion of the ConfigMap once and answers lookups,
falling back to a built-in ``claude-agent-sdk`` runtime (no entry: workspace, init container
and sidecar all included, as upstream without a registry) when the registry does not define it.

Reasons (CamelCase, used as condition reasons on the sessions that name the entry):

- ``InvalidRegistry``: the document is unusable (no key, not JSON, not an array); every lookup
  fails with it, the default id included, because the registry may have meant to override it.
- ``InvalidRuntime``: an entry's shape (not an object, id, image, port, env, sandbox,
  executionKind).
- ``DuplicateRuntime``: two entries share an id; neither is used.
- ``InvalidQuantity`` / ``InvalidResources``: resources or ``workspaceSize`` that are not
  Kubernetes quantities, negative, or a request above its limit.
- ``InvalidVMConfig``: a ``kubevirt-vm`` entry without a usable ``vmConfig`` (no disk image,
  ``cpu`` not a positive integer, ``memory`` not a positive whole quantity).
- ``UnknownRuntime``: raised by lookups for an id the registry does not define.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import orjson
from kubernetes.utils.quantity import parse_quantity

from foundation.lru import LRU

from .environment import RenderError, Runtime, Sandbox, VMConfig
from .resources import DEFAULT_PORT, DEFAULT_RUNTIME, REGISTRY_KEY, ExecutionKind

DEFAULT = Runtime(id=DEFAULT_RUNTIME, display_name="Claude Code")
"""The built-in runtime used for ``claude-agent-sdk`` when the registry does not define it:
the operator's images, port 8001, upstream's resource defaults, every sandbox part."""
RESOURCE_NAMES = ("cpu", "memory")
PERSISTENCE = ("s3", "none", "")
DEFAULT_VM_CPU = 2
DEFAULT_VM_MEMORY = "4Gi"

# The Kubernetes quantity grammar (apimachinery's resource.Quantity): parse_quantity alone
# accepts spellings the API server rejects ("inf", "1 Gi", "1_000").
_QUANTITY = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?")
_RESOURCE_SECTIONS = ("limits", "requests")


@dataclass(frozen=True, slots=True)
class RegistryError:
    """Why an entry (or the whole registry) cannot be used: a CamelCase reason and a message
    naming the entry and the field."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Registry:
    """A parsed registry: per id, a valid :class:`Runtime` or the error that makes it unusable."""

    entries: Mapping[str, Runtime | RegistryError] = field(
        default_factory=lambda: MappingProxyType({}))
    error: RegistryError | None = None
    """The document itself is unusable: every lookup fails with this."""
    problems: tuple[RegistryError, ...] = ()
    """Entries no id can carry (not an object, no id): reported, never looked up."""

    def errors(self) -> list[RegistryError]:
        """Every problem (for logs and Events): the document's, entries without an id, then
        entries by id."""
        head = [self.error] if self.error else []
        return [*head, *self.problems,
                *(e for e in self.entries.values() if isinstance(e, RegistryError))]


_ID_SHOWN = 100
"""Characters of a session's runtime id a message quotes: the id is user input, and neither
``spec.runtime`` nor ``RUNNER_TYPE`` has a length limit in upstream's schema."""


def _quoted(runtime_id: str) -> str:
    if len(runtime_id) <= _ID_SHOWN:
        return f'"{runtime_id}"'
    return f'"{runtime_id[:_ID_SHOWN]}..." ({len(runtime_id)} characters)'


class UnknownRuntime(RenderError):
    """The session names a runtime the registry does not define (reason ``UnknownRuntime``)."""

    def __init__(self, runtime_id: str, known: list[str]) -> None:
        listing = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
        super().__init__("UnknownRuntime",
                         f"runtime {_quoted(runtime_id)} is not defined in the agent registry "
                         f"(known: {listing or 'none'})")
        self.runtime_id = runtime_id


class InvalidRuntime(RenderError):
    """The session names a registry entry that failed validation; ``reason`` is the entry's
    (``InvalidRuntime``, ``InvalidQuantity``, ``InvalidVMConfig``, ... see the module doc)."""

    def __init__(self, runtime_id: str, error: RegistryError) -> None:
        super().__init__(error.reason, error.message)
        self.runtime_id = runtime_id


def runtime_id(session: Mapping[str, Any]) -> str:
    """The registry id a session asks for: ``spec.runtime``, else the ``RUNNER_TYPE``
    environment variable (as the original operator reads it), else ``claude-agent-sdk``."""
    spec = session.get("spec") or {}
    chosen = spec.get("runtime")
    if isinstance(chosen, str) and chosen:
        return chosen
    env = spec.get("environmentVariables")
    chosen = env.get("RUNNER_TYPE") if isinstance(env, Mapping) else None
    return chosen if isinstance(chosen, str) and chosen else DEFAULT_RUNTIME


# parsing -------------------------------------------------------------------------------------
def parse_registry(text: str) -> Registry:
    """Validate a registry document; never raises for bad content."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return Registry(error=RegistryError(
            "InvalidRegistry", f"{REGISTRY_KEY} is not valid JSON: {exc}"))
    if not isinstance(document, list):
        return Registry(error=RegistryError(
            "InvalidRegistry",
            f"{REGISTRY_KEY} must be a JSON array of runtime entries, got {_kind(document)}"))
    entries: dict[str, Runtime | RegistryError] = {}
    first_index: dict[str, int] = {}
    problems: list[RegistryError] = []
    for index, raw in enumerate(document):
        rid = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(raw, dict) or not isinstance(rid, str) or not rid:
            what = ("must be a JSON object" if not isinstance(raw, dict) else
                    "id: must be a non-empty string")
            problems.append(RegistryError(
                "InvalidRuntime", f"registry entry at index {index}: {what}, got "
                f"{_kind(raw if not isinstance(raw, dict) else rid)}"))
        elif rid in first_index:
            # Which of the two was meant is a guess; using neither makes the mistake visible.
            entries[rid] = RegistryError(
                "DuplicateRuntime", f'registry entries at index {first_index[rid]} and {index} '
                f'both have id "{rid}"; neither is used')
        else:
            first_index[rid] = index
            entries[rid] = _entry(index, rid, raw)
    return Registry(entries=MappingProxyType(entries), problems=tuple(problems))


def _entry(index: int, rid: str, raw: Mapping[str, Any]) -> Runtime | RegistryError:
    try:
        return _runtime(rid, raw)
    except RenderError as exc:
        return RegistryError(exc.reason, f'registry entry "{rid}" (index {index}): {exc.message}')


def _runtime(rid: str, raw: Mapping[str, Any]) -> Runtime:
    display_name = raw.get("displayName", "")
    if not isinstance(display_name, str):
        raise RenderError("InvalidRuntime", f"displayName: must be a string, got "
                          f"{_kind(display_name)}")
    kind = _execution_kind(raw.get("executionKind") or ExecutionKind.POD.value)
    container = _object(raw, "container")
    image = container.get("image") or ""
    if not isinstance(image, str) or any(c.isspace() for c in image):
        raise RenderError("InvalidRuntime", "container.image: must be a container image "
                          f"reference without spaces, got {_kind(image)}")
    port = container.get("port") or DEFAULT_PORT
    return Runtime(
        id=rid, image=image, display_name=display_name,
        port=check_port(port, "container.port"),
        env=_env(container.get("env") or {}),
        resources=_frozen(resource_requirements(container.get("resources") or {},
                                                "container.resources")),
        sandbox=_sandbox(_object(raw, "sandbox")),
        execution_kind=kind,
        vm=_vm_config(raw.get("vmConfig")) if kind == ExecutionKind.KUBEVIRT_VM else None)


def _object(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RenderError("InvalidRuntime", f"{key}: must be a JSON object, got {_kind(value)}")
    return value


def _execution_kind(value: Any) -> ExecutionKind:
    allowed = [k.value for k in ExecutionKind]
    if value not in allowed:
        raise RenderError("InvalidRuntime", "executionKind: must be one of "
                          f"{', '.join(map(repr, allowed))}, got {_kind(value)}")
    return ExecutionKind(value)


def check_port(value: Any, where: str) -> int:
    """A TCP port number (1-65535); RenderError ``InvalidRuntime`` naming ``where`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise RenderError("InvalidRuntime", f"{where}: must be an integer from 1 to 65535, "
                          f"got {_kind(value)}")
    return value


def _env(value: Any) -> Mapping[str, str]:
    if not isinstance(value, dict):
        raise RenderError("InvalidRuntime", "container.env: must be a JSON object of "
                          f"NAME: value, got {_kind(value)}")
    out: dict[str, str] = {}
    for name, item in value.items():
        if not name or "=" in name:
            raise RenderError("InvalidRuntime", f"container.env: {name!r} is not an "
                              "environment variable name")
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise RenderError("InvalidRuntime", f"container.env.{name}: must be a string or "
                              f"a number, got {_kind(item)}")
        out[name] = str(item)
    return MappingProxyType(out)


def _sandbox(raw: Mapping[str, Any]) -> Sandbox:
    """``sandbox``, validated; what upstream would silently replace is refused here."""
    def text(key: str) -> str:
        value = raw.get(key) or ""
        if not isinstance(value, str):
            raise RenderError("InvalidRuntime", f"sandbox.{key}: must be a string, got "
                              f"{_kind(value)}")
        return value

    persistence = text("persistence")
    if persistence not in PERSISTENCE:
        raise RenderError("InvalidRuntime", 'sandbox.persistence: must be "s3" or "none", '
                          f"got {_kind(persistence)}")
    state_dir = text("stateDir")
    if state_dir.startswith("/") or ".." in state_dir.split("/"):
        raise RenderError("InvalidRuntime", "sandbox.stateDir: must be a relative path "
                          f"inside the workspace, got {_kind(state_dir)}")
    size = text("workspaceSize")
    if size:
        quantity(size, "sandbox.workspaceSize")
    grace = raw.get("terminationGracePeriod") or 0
    if isinstance(grace, bool) or not isinstance(grace, int) or grace < 0:
        raise RenderError("InvalidRuntime", "sandbox.terminationGracePeriod: must be a "
                          f"number of seconds >= 0, got {_kind(grace)}")
    seed = _object(raw, "seed") if raw else {}
    flags = {}
    for key in ("cloneRepos", "hydrateState"):
        flag = seed.get(key, False)
        if not isinstance(flag, bool):
            raise RenderError("InvalidRuntime", f"sandbox.seed.{key}: must be true or false, "
                              f"got {_kind(flag)}")
        flags[key] = flag
    return Sandbox(found=True, state_dir=state_dir, state_sync_image=text("stateSyncImage"),
                   persistence=persistence, workspace_size=size,
                   termination_grace_period=grace, clone_repos=flags["cloneRepos"],
                   hydrate_state=flags["hydrateState"])


def _vm_config(value: Any) -> VMConfig:
    if value is None:
        raise RenderError("InvalidVMConfig", 'vmConfig: required when executionKind is '
                          '"kubevirt-vm"')
    if not isinstance(value, dict):
        raise RenderError("InvalidVMConfig", f"vmConfig: must be a JSON object, got "
                          f"{_kind(value)}")
    image = value.get("containerDiskImage")
    if not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image):
        raise RenderError("InvalidVMConfig", "vmConfig.containerDiskImage: required (the VM's "
                          f"root disk image, without spaces), got {_kind(image)}")
    template = value.get("cloudInitTemplate") or ""
    if not isinstance(template, str):
        raise RenderError("InvalidVMConfig", "vmConfig.cloudInitTemplate: must be the name of "
                          f"a template, got {_kind(template)}")
    cpu = value.get("cpu", DEFAULT_VM_CPU)
    if isinstance(cpu, bool) or not isinstance(cpu, int) or not 0 < cpu <= 1024:
        raise RenderError("InvalidVMConfig", "vmConfig.cpu: must be a whole number of virtual "
                          f"CPUs from 1 to 1024, got {_kind(cpu)}")
    return VMConfig(container_disk_image=image, cloud_init_template=template, cpu=cpu,
                    memory=_whole(value.get("memory", DEFAULT_VM_MEMORY), "vmConfig.memory"))


def _whole(value: Any, where: str) -> str:
    """A positive whole quantity of bytes: what a VirtualMachine's domain accepts."""
    try:
        text, amount = quantity(value, where)
    except RenderError as exc:
        raise RenderError("InvalidVMConfig", exc.message) from None
    if not amount > 0 or amount != amount.to_integral_value():
        raise RenderError("InvalidVMConfig", f'{where}: "{text}" must be a positive whole '
                          "number of bytes (such as 4Gi)")
    return text


# quantities, resources and sandbox (shared with the Pod environment's render) --------------------
def quantity(value: Any, where: str) -> tuple[str, Decimal]:
    """A Kubernetes quantity as spelled (numbers become strings) and its value; RenderError
    ``InvalidQuantity`` naming ``where`` when the API server would reject it."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RenderError("InvalidQuantity", f"{where}: must be a quantity such as \"500m\" or "
                          f"\"1Gi\", got {_kind(value)}")
    text = str(value)
    if not _QUANTITY.fullmatch(text):
        raise RenderError("InvalidQuantity", f'{where}: "{text}" is not a Kubernetes quantity '
                          '(e.g. "500m", "2", "1Gi")')
    amount = Decimal(parse_quantity(text))
    if amount < 0:
        raise RenderError("InvalidQuantity", f'{where}: "{text}" must not be negative')
    return text, amount


def resource_requirements(value: Any, where: str) -> dict[str, dict[str, str]]:
    """Validated container ``resources`` (``requests``/``limits`` of quantities), as plain,
    sorted dicts; empty sections are dropped. RenderError naming the field otherwise."""
    if not isinstance(value, Mapping):
        raise RenderError("InvalidResources", f"{where}: must be an object with requests and "
                          f"limits, got {_kind(value)}")
    unknown = sorted(set(value) - set(_RESOURCE_SECTIONS))
    if unknown:
        raise RenderError("InvalidResources", f"{where}: unknown key {unknown[0]!r} (only "
                          "requests and limits)")
    out: dict[str, dict[str, str]] = {}
    amounts: dict[str, dict[str, Decimal]] = {}
    for section in _RESOURCE_SECTIONS:
        part = value.get(section) or {}
        if not isinstance(part, Mapping):
            raise RenderError("InvalidResources", f"{where}.{section}: must be an object of "
                              f"resource: quantity, got {_kind(part)}")
        # Only cpu and memory are read, as upstream's operator does; other names are ignored.
        parsed = {str(k): quantity(part[k], f"{where}.{section}.{k}")
                  for k in sorted(part) if k in RESOURCE_NAMES}
        if parsed:
            out[section] = {k: text for k, (text, _) in parsed.items()}
            amounts[section] = {k: amount for k, (_, amount) in parsed.items()}
    for name, requested in amounts.get("requests", {}).items():
        limit = amounts.get("limits", {}).get(name)
        if limit is not None and requested > limit:
            raise RenderError("InvalidResources", f"{where}.requests.{name}: "
                              f'"{out["requests"][name]}" exceeds limits.{name} '
                              f'"{out["limits"][name]}"')
    return out


def _frozen(resources: Mapping[str, Mapping[str, str]]) -> Mapping[str, Any]:
    return MappingProxyType({k: MappingProxyType(dict(v)) for k, v in resources.items()})


def _kind(value: Any) -> str:
    """How a bad value is shown in messages: short, and typed (``"8001"`` vs ``8001``)."""
    if value is None:
        return "nothing"
    text = orjson.dumps(value).decode() if isinstance(value, str | int | float | bool) else \
        type(value).__name__.replace("dict", "object").replace("list", "array")
    return text if len(text) <= 80 else text[:77] + "..."


# the cache -------------------------------------------------------------------------------------
class RegistryCache:
    """The parsed registry per ConfigMap (uid, resourceVersion): each version is parsed and
    validated once. Thread-safe; share one between reconcile workers."""

    def __init__(self, *, maxsize: int = 4) -> None:
        self._cache: LRU[tuple[str, str], Registry] = LRU(maxsize)
        self._lock = threading.Lock()
        self.parses = 0
        """Documents parsed so far (cache misses): for metrics and tests."""

    def registry(self, configmap: Mapping[str, Any] | None) -> Registry | None:
        """The parsed registry of ``configmap`` (None when there is no ConfigMap)."""
        if configmap is None:
            return None
        meta = configmap.get("metadata") or {}
        key = (str(meta.get("uid", "")), str(meta.get("resourceVersion", "")))
        with self._lock:  # parse under the lock: concurrent workers parse a version once
            cached = self._cache.get(key) if all(key) else None
            if cached is None:
                cached = self._parse(configmap)
                if all(key):  # an object never stored has no version to key it by
                    self._cache[key] = cached
            return cached

    def lookup(self, configmap: Mapping[str, Any] | None, runtime_id: str) -> Runtime:
        """The runtime ``runtime_id`` names; the built-in default for ``claude-agent-sdk`` when
        the registry does not define it. Raises :class:`UnknownRuntime` or
        :class:`InvalidRuntime` (both :class:`RenderError`)."""
        registry = self.registry(configmap)
        if registry is not None and registry.error is not None:
            raise InvalidRuntime(runtime_id, registry.error)
        found = registry.entries.get(runtime_id) if registry is not None else None
        if isinstance(found, RegistryError):
            raise InvalidRuntime(runtime_id, found)
        if found is not None:
            return found
        if runtime_id == DEFAULT_RUNTIME:
            return DEFAULT
        known = sorted({*(registry.entries if registry else ()), DEFAULT_RUNTIME})
        raise UnknownRuntime(runtime_id, known)

    def _parse(self, configmap: Mapping[str, Any]) -> Registry:
        self.parses += 1
        meta = configmap.get("metadata") or {}
        text = (configmap.get("data") or {}).get(REGISTRY_KEY)
        if not isinstance(text, str):
            return Registry(error=RegistryError(
                "InvalidRegistry", f"ConfigMap {meta.get('namespace')}/{meta.get('name')} has "
                f"no key {REGISTRY_KEY}"))
        return parse_registry(text)

