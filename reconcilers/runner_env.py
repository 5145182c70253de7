"""The environment of a session's containers, as upstream's operator builds it.

Pure functions of the session, its runtime and :class:`~.environment.RunInputs`. The runner's
variables come in upstream's order (``shared/UPSTREAM-CONTRACT.md`` §4.4), then the registry
entry's ``container.env`` where no variable of that name exists yet, then the session's
``spec.environmentVariables``, which replace a variable of the same name — except one read from
a Secret (``AGUI_TOKEN``, ``LANGFUSE_*``, ...) or ``USE_VERTEX``/``CLAUDE_CODE_USE_VERTEX``,
which the platform owns. The init container and the state-sync sidecar (§4.3, §4.6) take the
registry's and the session's variables only where they do not collide with their own.

Upstream appends registry and session variables in Go's random map order; here they are sorted
by name, so a render is deterministic (a diff never sees a reordering). JSON values
(``REPOS_JSON``, ``CUSTOM_MCP_SERVERS``, ``PROJECT_MCP_SERVERS``) are encoded as Go's
``encoding/json`` does: sorted keys, no spaces, ``<``, ``>`` and ``&`` escaped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson

from .environment import RunInputs, Runtime, S3Settings
from .resources import (
    AGUI_TOKEN_KEY,
    FORCE_EXECUTE_PROMPT,
    K8S_TOKEN_KEY,
    LANGFUSE_SECRET,
    MLFLOW_SECRET,
    PARENT_SESSION_ID,
)

EnvVar = dict[str, Any]
WORKSPACE = "/workspace"
GOOGLE_CREDENTIALS_DIR = "/workspace/.google_workspace_mcp/credentials"
PROTECTED = frozenset({"USE_VERTEX", "CLAUDE_CODE_USE_VERTEX"})
"""Variables the session's environmentVariables may not replace (besides Secret-backed ones)."""
LANGFUSE_KEYS = ("LANGFUSE_ENABLED", "LANGFUSE_HOST", "LANGFUSE_PUBLIC_KEY",
                 "LANGFUSE_SECRET_KEY")
MLFLOW_KEYS = ("MLFLOW_TRACING_ENABLED", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_AUTH",
               "MLFLOW_EXPERIMENT_NAME", "MLFLOW_WORKSPACE", "OBSERVABILITY_BACKENDS")
SYNC_INTERVAL = "60"
MAX_SYNC_SIZE = "1073741824"


def plain(name: str, value: str) -> EnvVar:
    return {"name": name, "value": value}


def from_secret(name: str, secret: str, key: str, *, optional: bool = False) -> EnvVar:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


# the runner ------------------------------------------------------------------------------------
def runner_env(session: Mapping[str, Any], runtime: Runtime, inputs: RunInputs) -> list[EnvVar]:
    """The ``ambient-code-runner`` container's env, in upstream's order and override rules."""
    meta = session["metadata"]
    name, namespace = str(meta["name"]), str(meta["namespace"])
    spec = session.get("spec") or {}
    config = inputs.config
    env = [plain("DEBUG", "true"), plain("AGENTIC_SESSION_NAME", name),
           plain("AGENTIC_SESSION_NAMESPACE", namespace), plain("SESSION_ID", name),
           plain("PROJECT_NAME", namespace), plain("WORKSPACE_PATH", WORKSPACE),
           plain("ARTIFACTS_DIR", "artifacts"), plain("AGUI_PORT", str(runtime.port)),
           from_secret("AGUI_TOKEN", inputs.token_secret, AGUI_TOKEN_KEY),
           plain("GOOGLE_MCP_CREDENTIALS_DIR", GOOGLE_CREDENTIALS_DIR),
           plain("GOOGLE_OAUTH_CLIENT_ID", config.google_oauth_client_id),
           plain("GOOGLE_OAUTH_CLIENT_SECRET", config.google_oauth_client_secret)]
    if config.backend_public_url:
        env.append(plain("GOOGLE_OAUTH_REDIRECT_URI",
                         f"{config.backend_public_url}/oauth2callback"))
    if config.mcp_config_file:
        env.append(plain("MCP_CONFIG_FILE", config.mcp_config_file))
    mcp = spec.get("mcpServers")
    if isinstance(mcp, Mapping) and mcp:
        env.append(plain("CUSTOM_MCP_SERVERS", go_json(mcp)))
    if isinstance(inputs.project_mcp, Mapping) and inputs.project_mcp:
        env.append(plain("PROJECT_MCP_SERVERS", go_json(inputs.project_mcp)))
    user = spec.get("userContext") or {}
    for env_name, key in (("USER_ID", "userId"), ("USER_NAME", "displayName")):
        value = user.get(key) if isinstance(user, Mapping) else None
        if isinstance(value, str) and value.strip():
            env.append(plain(env_name, value.strip()))
    settings = spec.get("llmSettings")
    llm: Mapping[str, Any] = settings if isinstance(settings, Mapping) else {}
    env += [plain("INITIAL_PROMPT", _text(spec.get("initialPrompt"))),
            plain("LLM_MODEL", _text(llm.get("model"))),
            plain("LLM_TEMPERATURE", f"{_number(llm.get('temperature')):.2f}"),
            plain("LLM_MAX_TOKENS", str(_integer(llm.get("maxTokens")))),
            plain("USE_AGUI", "true"),
            plain("TIMEOUT", str(_integer(spec.get("timeout")))),
            plain("BACKEND_API_URL", config.backend_api_url)]
    if inputs.vertex_model_id:
        env.append(plain("LLM_MODEL_VERTEX_ID", inputs.vertex_model_id))
    if LANGFUSE_SECRET in inputs.copied:
        env += [from_secret(k, LANGFUSE_SECRET, k, optional=True) for k in LANGFUSE_KEYS]
    if MLFLOW_SECRET in inputs.copied:
        env += [from_secret(k, MLFLOW_SECRET, k, optional=True) for k in MLFLOW_KEYS]
    env += _vertex(inputs)
    parent = parent_session_id(session)
    if parent:
        env.append(plain("PARENT_SESSION_ID", parent))
    if inputs.is_resume:
        env.append(plain("IS_RESUME", "true"))
    env += _repos_and_workflow(spec)
    env = append_missing(env, sorted_env(runtime.env))
    return replace_or_append(env, user_env(session))


def _vertex(inputs: RunInputs) -> list[EnvVar]:
    if not inputs.config.vertex:
        return [plain("USE_VERTEX", "0"), plain("CLAUDE_CODE_USE_VERTEX", "0")]
    settings = inputs.config.vertex_settings
    return [plain("USE_VERTEX", "1"), plain("CLAUDE_CODE_USE_VERTEX", "1"),
            *(plain(k, settings.get(k, "")) for k in ("CLOUD_ML_REGION",
                                                      "ANTHROPIC_VERTEX_PROJECT_ID",
                                                      "GOOGLE_APPLICATION_CREDENTIALS")),
            plain("GCE_METADATA_HOST", "metadata.invalid"), plain("GCE_METADATA_TIMEOUT", "1")]


def _repos_and_workflow(spec: Mapping[str, Any]) -> list[EnvVar]:
    env = []
    repos = spec.get("repos")
    if isinstance(repos, list) and repos:
        env.append(plain("REPOS_JSON", go_json(repos)))
    env += workflow_env(spec)
    return env


def workflow_env(spec: Mapping[str, Any]) -> list[EnvVar]:
    workflow = spec.get("activeWorkflow")
    if not isinstance(workflow, Mapping):
        return []
    env = []
    for env_name, key in (("ACTIVE_WORKFLOW_GIT_URL", "gitUrl"),
                          ("ACTIVE_WORKFLOW_BRANCH", "branch"), ("ACTIVE_WORKFLOW_PATH", "path")):
        value = workflow.get(key)
        if isinstance(value, str) and value.strip():
            env.append(plain(env_name, value))
    return env


def parent_session_id(session: Mapping[str, Any]) -> str:
    """The annotation ``vteam.ambient-code/parent-session-id``, else the session's
    ``PARENT_SESSION_ID`` variable (both trimmed)."""
    annotations = (session.get("metadata") or {}).get("annotations") or {}
    parent = str(annotations.get(PARENT_SESSION_ID) or "").strip()
    if parent:
        return parent
    env = (session.get("spec") or {}).get("environmentVariables") or {}
    value = env.get("PARENT_SESSION_ID") if isinstance(env, Mapping) else None
    return value.strip() if isinstance(value, str) else ""


def is_resume(session: Mapping[str, Any]) -> bool:
    """IS_RESUME for a runner created from the session as read now: the session has started
    before (``status.startTime``), unless ``force-execute-prompt`` asks to run the prompt."""
    annotations = (session.get("metadata") or {}).get("annotations") or {}
    if annotations.get(FORCE_EXECUTE_PROMPT) == "true":
        return False
    return bool((session.get("status") or {}).get("startTime"))


# init-hydrate and state-sync ----------------------------------------------------------------
def init_env(session: Mapping[str, Any], inputs: RunInputs) -> list[EnvVar]:
    meta = session["metadata"]
    namespace = str(meta["namespace"])
    spec = session.get("spec") or {}
    env = [plain("SESSION_NAME", str(meta["name"])), plain("NAMESPACE", namespace),
           plain("S3_ENDPOINT", inputs.s3.endpoint), plain("S3_BUCKET", inputs.s3.bucket),
           *s3_credentials(inputs.s3),
           plain("BACKEND_API_URL", inputs.config.backend_api_url),
           plain("PROJECT_NAME", namespace), *_repos_and_workflow(spec),
           from_secret("BOT_TOKEN", inputs.token_secret, K8S_TOKEN_KEY)]
    return append_missing(env, user_env(session))


def sidecar_env(session: Mapping[str, Any], runtime: Runtime,
                inputs: RunInputs) -> list[EnvVar]:
    meta = session["metadata"]
    credentials = s3_credentials(inputs.s3)
    env = [plain("SESSION_NAME", str(meta["name"])), plain("NAMESPACE", str(meta["namespace"])),
           plain("S3_ENDPOINT", inputs.s3.endpoint), plain("S3_BUCKET", inputs.s3.bucket),
           plain("SYNC_INTERVAL", SYNC_INTERVAL), plain("MAX_SYNC_SIZE", MAX_SYNC_SIZE),
           *credentials]
    return append_missing(append_missing(env, sorted_env(runtime.env)), user_env(session))


def s3_credentials(s3: S3Settings) -> list[EnvVar]:
    """``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``: from the project's Secret when the
    credentials are its own (custom storage), else the shared values (§4.14)."""
    if s3.key_ref is not None:
        secret, access, secret_key = s3.key_ref
        return [from_secret("AWS_ACCESS_KEY_ID", secret, access),
                from_secret("AWS_SECRET_ACCESS_KEY", secret, secret_key)]
    return [plain("AWS_ACCESS_KEY_ID", s3.access_key),
            plain("AWS_SECRET_ACCESS_KEY", s3.secret_key)]


# merging -----------------------------------------------------------------------------------------
def user_env(session: Mapping[str, Any]) -> list[EnvVar]:
    """``spec.environmentVariables`` (string values only, as upstream reads them), by name."""
    env = (session.get("spec") or {}).get("environmentVariables")
    if not isinstance(env, Mapping):
        return []
    return [plain(str(k), v) for k, v in sorted(env.items()) if isinstance(v, str)]


def sorted_env(values: Mapping[str, str]) -> list[EnvVar]:
    return [plain(k, v) for k, v in sorted(values.items())]


def append_missing(base: Sequence[EnvVar], extra: Iterable[EnvVar]) -> list[EnvVar]:
    """``base`` then each of ``extra`` whose name ``base`` lacks."""
    present = {e["name"] for e in base}
    return [*base, *(e for e in extra if e["name"] not in present)]


def replace_or_append(base: Sequence[EnvVar], extra: Iterable[EnvVar]) -> list[EnvVar]:
    """``base`` with each of ``extra`` replacing the value of the first variable of its name
    (unless that one reads a Secret or is protected), or appended when there is none."""
    out = [dict(e) for e in base]
    for item in extra:
        existing = next((e for e in out if e["name"] == item["name"]), None)
        if existing is None:
            out.append(dict(item))
        elif "valueFrom" not in existing and existing["name"] not in PROTECTED:
            existing["value"] = item.get("value", "")
    return out


# values as Go formats them ----------------------------------------------------------------------
def go_json(value: Any) -> str:
    """JSON as Go's ``encoding/json`` writes a decoded object: keys sorted, compact, HTML
    characters escaped, integral floats without a fraction."""
    text = orjson.dumps(_go_numbers(value), option=orjson.OPT_SORT_KEYS).decode()
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


_INT64 = range(-(2**63), 2**63)


def _go_numbers(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        # Go decodes an integer beyond int64 as a float64.
        return value if value in _INT64 else _go_float(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, Mapping):
        return {str(k): _go_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_go_numbers(v) for v in value]
    return value


def _go_float(value: int | float) -> Any:
    """A float64 as Go writes it: an integral value below 1e21 as the digits of its shortest
    round-trip form, without fraction or exponent (``1e20`` → ``100000000000000000000``),
    other values as orjson writes them (the same text). Never raises: orjson refuses integers
    beyond 64 bits, so those are passed as pre-encoded digits."""
    try:
        number = float(value)
    except OverflowError:  # beyond any float64 (an API server refuses it): the digits as given
        return orjson.Fragment(str(value).encode())
    if not math.isfinite(number) or not number.is_integer() or abs(number) >= 1e21:
        return number
    digits = int(Decimal(repr(number)))
    return digits if digits in _INT64 else orjson.Fragment(str(digits).encode())


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number(value: Any) -> float:
    """A JSON number as a float (0 for anything else, or beyond what a float holds)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        number = float(value)
    except OverflowError:
        return 0.0
    return number if math.isfinite(number) else 0.0


def _integer(value: Any) -> int:
    """A JSON integer as Go's ``NestedInt64`` reads it (anything else: 0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
