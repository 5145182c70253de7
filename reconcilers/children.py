"""Children every backend renders the same way: owner reference, Service, token Secret, env.

Pure functions of the session and its runtime; the Pod and VM environments build on them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from .environment import Obj, RenderError, Runtime
from .resources import (
    AGENTIC_SESSIONS,
    AGUI_PORT_NAME,
    TOKEN_KEY,
    selector_labels,
    service_name,
    token_secret_name,
)

TOKEN_MOUNT_DIR = "/var/run/secrets/ambient-code/agui"
RESERVED_ENV = frozenset({
    "SESSION_NAME", "SESSION_NAMESPACE", "DISPLAY_NAME", "INITIAL_PROMPT", "REPOS_JSON",
    "LLM_MODEL", "LLM_TEMPERATURE", "LLM_MAX_TOKENS", "AGUI_PORT", "AGUI_TOKEN_FILE",
    "AGUI_TOKEN", "SESSION_TIMEOUT", "INACTIVITY_TIMEOUT",
})
"""Names the operator sets itself; a session or registry entry may not override them."""
ALLOWED_USER_ENV = frozenset({"RUNNER_TYPE"})
"""Reserved-looking names a session may set (``RUNNER_TYPE`` selects the runtime)."""
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


def meta(session: Mapping[str, Any]) -> tuple[str, str]:
    m = session["metadata"]
    return str(m["namespace"]), str(m["name"])


def owner_reference(session: Mapping[str, Any]) -> dict[str, Any]:
    """The controller reference every child carries: deleting the session deletes them."""
    m = session["metadata"]
    return {"apiVersion": AGENTIC_SESSIONS.api_version, "kind": AGENTIC_SESSIONS.kind,
            "name": m["name"], "uid": m["uid"], "controller": True, "blockOwnerDeletion": True}


def child_meta(session: Mapping[str, Any], name: str, *,
               labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    namespace, session_name = meta(session)
    return {"name": name, "namespace": namespace,
            "labels": {**selector_labels(session_name), **(labels or {})},
            "ownerReferences": [owner_reference(session)]}


def service(session: Mapping[str, Any], runtime: Runtime) -> Obj:
    """``session-<name>`` selecting the runner (Pod, or the VM's virt-launcher pod)."""
    _, session_name = meta(session)
    name = service_name(session_name)
    if len(name) > 63:
        raise RenderError("InvalidServiceName",
                          f'service name "{name}" is {len(name)} characters long, over the '
                          "limit of 63; shorten the session name")
    if not _DNS1035.fullmatch(name):
        raise RenderError("InvalidServiceName",
                          f'service name "{name}" is not a DNS-1035 label (lower-case letters, '
                          "digits and '-'); rename the session without dots")
    return {"apiVersion": "v1", "kind": "Service", "metadata": child_meta(session, name),
            "spec": {"type": "ClusterIP", "selector": selector_labels(session_name),
                     "ports": [{"name": AGUI_PORT_NAME, "port": runtime.port,
                                "targetPort": AGUI_PORT_NAME, "protocol": "TCP"}]}}


def token_secret(session: Mapping[str, Any], token: str) -> Obj:
    """The per-session AG-UI token, mounted as a file (never in env or in the VM object)."""
    _, session_name = meta(session)
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": child_meta(session, token_secret_name(session_name)),
            "type": "Opaque", "stringData": {TOKEN_KEY: token}}


def endpoint(session: Mapping[str, Any], runtime: Runtime) -> str:
    namespace, session_name = meta(session)
    return f"http://{service_name(session_name)}.{namespace}.svc:{runtime.port}"


def check_env_name(key: Any, origin: str) -> None:
    """Raise :class:`RenderError` (``ReservedEnvName``, ``InvalidEnvName``) when ``key`` may not
    be set by ``origin`` (the message says "from the <origin>"). Shared with the registry."""
    if key in RESERVED_ENV and key not in ALLOWED_USER_ENV:
        raise RenderError("ReservedEnvName",
                          f"environment variable {key} from the {origin} is reserved "
                          "by the operator")
    if not _ENV_NAME.fullmatch(str(key)):
        raise RenderError("InvalidEnvName",
                          f"environment variable name {key!r} from the {origin} is "
                          "not a valid C identifier-like name")


def session_env(session: Mapping[str, Any], runtime: Runtime) -> list[dict[str, str]]:
    """The runner's environment: registry env, then the session's, then the operator's own
    (reserved) names. Raises :class:`RenderError` when a name collides with a reserved one."""
    namespace, session_name = meta(session)
    spec = session.get("spec") or {}
    llm = spec.get("llmSettings") or {}
    user = dict(spec.get("environmentVariables") or {})
    for origin, values in (("registry entry " + runtime.id, runtime.env), ("spec", user)):
        for key in values:
            check_env_name(key, origin)
    own = {
        "SESSION_NAME": session_name, "SESSION_NAMESPACE": namespace,
        "DISPLAY_NAME": str(spec.get("displayName", "")),
        "INITIAL_PROMPT": str(spec.get("initialPrompt", "")),
        "REPOS_JSON": orjson.dumps(spec.get("repos") or []).decode(),
        "LLM_MODEL": str(llm.get("model", "")),
        "LLM_TEMPERATURE": "" if llm.get("temperature") is None else str(llm["temperature"]),
        "LLM_MAX_TOKENS": "" if llm.get("maxTokens") is None else str(llm["maxTokens"]),
        "AGUI_PORT": str(runtime.port),
        "AGUI_TOKEN_FILE": f"{TOKEN_MOUNT_DIR}/{TOKEN_KEY}",
    }
    merged: dict[str, str] = {**{k: str(v) for k, v in runtime.env.items()},
                              **{k: str(v) for k, v in user.items()}, **own}
    return [{"name": k, "value": v} for k, v in sorted(merged.items())]
