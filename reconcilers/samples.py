"""Sessions and registries as the ambient-code platform makes them, for the demo, the
benchmarks and the tests: what upstream's backend sends when it creates a session, and the
registry entries upstream ships (plus ADR-0008's VM entry, verbatim).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from .resources import AGENTIC_SESSIONS

CLAUDE_ENTRY: dict[str, Any] = {
    "id": "claude-agent-sdk", "displayName": "Claude Code",
    "description": "Anthropic Claude with full coding capabilities",
    "framework": "claude-agent-sdk", "provider": "anthropic",
    "container": {"image": "quay.io/ambient_code/vteam_claude_runner:latest", "port": 8001,
                  "env": {"RUNNER_TYPE": "claude-agent-sdk", "RUNNER_STATE_DIR": ".claude"},
                  "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                                "limits": {"cpu": "2", "memory": "8Gi"}}},
    "sandbox": {"stateDir": ".claude",
                "stateSyncImage": "quay.io/ambient_code/vteam_state_sync:latest",
                "persistence": "s3", "workspaceSize": "10Gi", "terminationGracePeriod": 60,
                "seed": {"cloneRepos": True, "hydrateState": True}},
    "auth": {"requiredSecretKeys": ["ANTHROPIC_API_KEY"], "secretKeyLogic": "any",
             "vertexSupported": True},
    "featureGate": ""}
"""Upstream's shipped ``claude-agent-sdk`` entry."""

GEMINI_ENTRY: dict[str, Any] = {
    "id": "gemini-cli", "displayName": "Gemini CLI",
    "description": "Google Gemini coding agent with built-in file, bash, and search tools",
    "framework": "gemini-cli", "provider": "google",
    "container": {"image": "quay.io/ambient_code/vteam_claude_runner:latest", "port": 8001,
                  "env": {"RUNNER_TYPE": "gemini-cli", "RUNNER_STATE_DIR": ".gemini"}},
    "sandbox": {"stateDir": ".gemini",
                "stateSyncImage": "quay.io/ambient_code/vteam_state_sync:latest",
                "persistence": "s3", "workspaceSize": "10Gi", "terminationGracePeriod": 60,
                "seed": {"cloneRepos": True, "hydrateState": True}},
    "auth": {"requiredSecretKeys": ["GEMINI_API_KEY", "GOOGLE_API_KEY"],
             "secretKeyLogic": "any", "vertexSupported": True},
    "featureGate": "runner.gemini-cli.enabled"}

KUBEVIRT_ENTRY: dict[str, Any] = {
    "id": "claude-kubevirt", "displayName": "Claude Code (VM)",
    "description": "Claude with full OS environment — nested containers, kind clusters, "
                   "KubeVirt e2e",
    "framework": "claude-agent-sdk", "provider": "anthropic",
    "executionKind": "kubevirt-vm",
    "container": {"image": "quay.io/ambient_code/ambient_runner:latest", "port": 8001,
                  "env": {"RUNNER_TYPE": "claude-agent-sdk", "RUNNER_STATE_DIR": ".claude"}},
    "sandbox": {"stateDir": ".claude", "persistence": "s3", "workspaceSize": "50Gi",
                "seed": {"cloneRepos": True, "hydrateState": True}},
    "vmConfig": {"containerDiskImage": "quay.io/ambient_code/fedora-runner:latest",
                 "memory": "4Gi", "cpu": 2, "cloudInitTemplate": "ambient-runner-cloud-init"},
    "auth": {"requiredSecretKeys": ["ANTHROPIC_API_KEY"], "secretKeyLogic": "any",
             "vertexSupported": True},
    "defaultModel": "claude-sonnet-4-5",
    "models": [{"value": "claude-sonnet-4-5", "label": "Claude Sonnet 4.5"}],
    "featureGate": "runner.kubevirt-vm.enabled"}
"""ADR-0008's example entry, verbatim: select it with ``spec.runtime: claude-kubevirt``
(its own ``container.env`` names the framework, not the entry, as ``RUNNER_TYPE``)."""

UPSTREAM_REGISTRY = [CLAUDE_ENTRY, GEMINI_ENTRY, KUBEVIRT_ENTRY]


def backend_session(namespace: str, *, runner_type: str = "claude-agent-sdk",
                    registry: list[Mapping[str, Any]] | None = None,
                    prompt: str = "Fix the failing test", display_name: str = "",
                    repos: list[dict[str, Any]] | None = None, user_id: str = "alice",
                    timeout: int = 300, extra_env: Mapping[str, str] | None = None,
                    labels: Mapping[str, str] | None = None,
                    annotations: Mapping[str, str] | None = None,
                    name: str | None = None, **spec: Any) -> dict[str, Any]:
    """An AgenticSession exactly as upstream's backend ``CreateSession`` builds it: name
    ``session-<uuid>``, ``spec.project`` (pruned by the CRD), llmSettings defaults, ``timeout``,
    the registry entry's ``container.env`` merged under the request's variables, the caller's
    ``userContext`` and ``status.phase: Pending`` (dropped by the status subresource)."""
    entries = registry if registry is not None else UPSTREAM_REGISTRY
    entry = next((e for e in entries if e.get("id") == runner_type), {})
    env = {**((entry.get("container") or {}).get("env") or {}), **(extra_env or {})}
    body_spec: dict[str, Any] = {
        "displayName": display_name, "project": namespace,
        "llmSettings": {"model": "claude-sonnet-4-6", "temperature": 0.7, "maxTokens": 4000},
        "timeout": timeout}
    if prompt.strip():
        body_spec["initialPrompt"] = prompt
    if env:
        body_spec["environmentVariables"] = env
    if repos:
        body_spec["repos"] = repos
    body_spec["userContext"] = {"userId": user_id, "displayName": user_id.title(),
                                "groups": []}
    body_spec.update(spec)
    metadata: dict[str, Any] = {"name": name or f"session-{uuid.uuid4()}",
                                "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": AGENTIC_SESSIONS.api_version, "kind": AGENTIC_SESSIONS.kind,
            "metadata": metadata, "spec": body_spec, "status": {"phase": "Pending"}}
