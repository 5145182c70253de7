"""The containers' environment (reconcilers.runner_env) against UPSTREAM-CONTRACT §4.3, §4.4,
§4.6 and §3.6: upstream's names, values, emission order and override rules, and JSON values
byte-for-byte as Go's encoding/json writes them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconcilers.config import OperatorConfig
from reconcilers.environment import RunInputs, Runtime, S3Settings
from reconcilers.runner_env import (
    go_json,
    init_env,
    parent_session_id,
    runner_env,
    sidecar_env,
)

TOKEN = "ambient-runner-token-session-1"
CONFIG = OperatorConfig(namespace="ambient-code", backend_namespace="ambient-code",
                        google_oauth_client_id="cid", google_oauth_client_secret="csecret")
INPUTS = RunInputs(config=CONFIG, token_secret=TOKEN)
RUNTIME = Runtime(id="claude-agent-sdk")
BACKEND = "http://backend-service.ambient-code.svc.cluster.local:8080/api"
LANGFUSE = "ambient-admin-langfuse-secret"
MLFLOW = "ambient-admin-mlflow-observability-secret"


def session(spec: Mapping[str, Any] | None = None, *,
            annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "session-1", "namespace": "team-a", "uid": "u1"}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"metadata": meta, "spec": dict(spec or {})}


def plain(name: str, value: str) -> dict[str, str]:
    return {"name": name, "value": value}


def ref(name: str, secret: str, key: str, optional: bool = False) -> dict[str, Any]:
    selector: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        selector["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": selector}}


def values(env: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in env:
        assert item["name"] not in out, f"{item['name']} twice"
        out[item["name"]] = item.get("value", item.get("valueFrom"))
    return out


def names(env: list[dict[str, Any]]) -> list[str]:
    return [e["name"] for e in env]


# the backend's session, the minimum ------------------------------------------------------------
BACKEND_SPEC = {"llmSettings": {"model": "claude-sonnet-4-6", "temperature": 0.7,
                                "maxTokens": 4000},
                "timeout": 300, "initialPrompt": "Fix the failing test"}
HEAD = [plain("DEBUG", "true"), plain("AGENTIC_SESSION_NAME", "session-1"),
        plain("AGENTIC_SESSION_NAMESPACE", "team-a"), plain("SESSION_ID", "session-1"),
        plain("PROJECT_NAME", "team-a"), plain("WORKSPACE_PATH", "/workspace"),
        plain("ARTIFACTS_DIR", "artifacts"), plain("AGUI_PORT", "8001"),
        ref("AGUI_TOKEN", TOKEN, "agui-token"),
        plain("GOOGLE_MCP_CREDENTIALS_DIR", "/workspace/.google_workspace_mcp/credentials"),
        plain("GOOGLE_OAUTH_CLIENT_ID", "cid"), plain("GOOGLE_OAUTH_CLIENT_SECRET", "csecret")]
CORE = [plain("INITIAL_PROMPT", "Fix the failing test"), plain("LLM_MODEL", "claude-sonnet-4-6"),
        plain("LLM_TEMPERATURE", "0.70"), plain("LLM_MAX_TOKENS", "4000"),
        plain("USE_AGUI", "true"), plain("TIMEOUT", "300"), plain("BACKEND_API_URL", BACKEND)]
NO_VERTEX = [plain("USE_VERTEX", "0"), plain("CLAUDE_CODE_USE_VERTEX", "0")]


def test_the_minimal_session_gets_exactly_upstreams_env_in_order() -> None:
    assert runner_env(session(BACKEND_SPEC), RUNTIME, INPUTS) == [*HEAD, *CORE, *NO_VERTEX]


def test_every_optional_variable_in_upstreams_order() -> None:
    spec = {**BACKEND_SPEC,
            "mcpServers": {"disabled": ["jira"], "custom": {"x": {"url": "http://m?a=1&b=<2>"}}},
            "userContext": {"userId": "  alice  ", "displayName": "Alice A.", "groups": []},
            "repos": [{"url": "https://github.com/org/api.git", "branch": "main",
                       "autoPush": False}],
            "activeWorkflow": {"gitUrl": "https://github.com/org/wf", "branch": "dev",
                               "path": "flows/a"}}
    config = replace(CONFIG, backend_public_url="https://ambient.example",
                     mcp_config_file="/config/mcp.json", vertex=True,
                     vertex_settings={"CLOUD_ML_REGION": "us-east5",
                                      "ANTHROPIC_VERTEX_PROJECT_ID": "proj",
                                      "GOOGLE_APPLICATION_CREDENTIALS": "/app/vertex/k.json"})
    inputs = replace(INPUTS, config=config, project_mcp={"custom": {"p": {"cmd": "x"}}},
                     vertex_model_id="claude-sonnet-4-6@20250514", is_resume=True,
                     copied=frozenset({LANGFUSE, MLFLOW}))
    env = runner_env(session(spec, annotations={
        "vteam.ambient-code/parent-session-id": " session-0 "}), RUNTIME, inputs)
    assert env == [
        *HEAD,
        plain("GOOGLE_OAUTH_REDIRECT_URI", "https://ambient.example/oauth2callback"),
        plain("MCP_CONFIG_FILE", "/config/mcp.json"),
        plain("CUSTOM_MCP_SERVERS", '{"custom":{"x":{"url":"http://m?a=1\\u0026b=\\u003c2\\u003e"'
                                    '}},"disabled":["jira"]}'),
        plain("PROJECT_MCP_SERVERS", '{"custom":{"p":{"cmd":"x"}}}'),
        plain("USER_ID", "alice"), plain("USER_NAME", "Alice A."),
        *CORE,
        plain("LLM_MODEL_VERTEX_ID", "claude-sonnet-4-6@20250514"),
        ref("LANGFUSE_ENABLED", LANGFUSE, "LANGFUSE_ENABLED", True),
        ref("LANGFUSE_HOST", LANGFUSE, "LANGFUSE_HOST", True),
        ref("LANGFUSE_PUBLIC_KEY", LANGFUSE, "LANGFUSE_PUBLIC_KEY", True),
        ref("LANGFUSE_SECRET_KEY", LANGFUSE, "LANGFUSE_SECRET_KEY", True),
        ref("MLFLOW_TRACING_ENABLED", MLFLOW, "MLFLOW_TRACING_ENABLED", True),
        ref("MLFLOW_TRACKING_URI", MLFLOW, "MLFLOW_TRACKING_URI", True),
        ref("MLFLOW_TRACKING_AUTH", MLFLOW, "MLFLOW_TRACKING_AUTH", True),
        ref("MLFLOW_EXPERIMENT_NAME", MLFLOW, "MLFLOW_EXPERIMENT_NAME", True),
        ref("MLFLOW_WORKSPACE", MLFLOW, "MLFLOW_WORKSPACE", True),
        ref("OBSERVABILITY_BACKENDS", MLFLOW, "OBSERVABILITY_BACKENDS", True),
        plain("USE_VERTEX", "1"), plain("CLAUDE_CODE_USE_VERTEX", "1"),
        plain("CLOUD_ML_REGION", "us-east5"), plain("ANTHROPIC_VERTEX_PROJECT_ID", "proj"),
        plain("GOOGLE_APPLICATION_CREDENTIALS", "/app/vertex/k.json"),
        plain("GCE_METADATA_HOST", "metadata.invalid"), plain("GCE_METADATA_TIMEOUT", "1"),
        plain("PARENT_SESSION_ID", "session-0"),
        plain("IS_RESUME", "true"),
        plain("REPOS_JSON",
              '[{"autoPush":false,"branch":"main","url":"https://github.com/org/api.git"}]'),
        plain("ACTIVE_WORKFLOW_GIT_URL", "https://github.com/org/wf"),
        plain("ACTIVE_WORKFLOW_BRANCH", "dev"), plain("ACTIVE_WORKFLOW_PATH", "flows/a"),
    ]


@pytest.mark.parametrize(("spec", "absent"), [
    ({"mcpServers": {}}, "CUSTOM_MCP_SERVERS"),
    ({"userContext": {"userId": "  ", "displayName": ""}}, "USER_ID"),
    ({"userContext": {"userId": "  ", "displayName": ""}}, "USER_NAME"),
    ({"repos": []}, "REPOS_JSON"),
    ({"activeWorkflow": {"gitUrl": " ", "branch": "", "path": None}}, "ACTIVE_WORKFLOW_GIT_URL"),
    ({"activeWorkflow": {"gitUrl": " ", "branch": "", "path": None}}, "ACTIVE_WORKFLOW_BRANCH"),
    ({"activeWorkflow": {"gitUrl": " ", "branch": "", "path": None}}, "ACTIVE_WORKFLOW_PATH"),
    ({"mainRepoName": "api", "mainRepoIndex": 0}, "MAIN_REPO_NAME"),  # not in the CRD
    ({}, "GOOGLE_OAUTH_REDIRECT_URI"), ({}, "MCP_CONFIG_FILE"), ({}, "PROJECT_MCP_SERVERS"),
    ({}, "LLM_MODEL_VERTEX_ID"), ({}, "LANGFUSE_ENABLED"), ({}, "MLFLOW_TRACKING_URI"),
    ({}, "PARENT_SESSION_ID"), ({}, "IS_RESUME"), ({}, "CLOUD_ML_REGION"),
])
def test_conditional_variables_are_absent_without_their_condition(spec: dict[str, Any],
                                                                   absent: str) -> None:
    assert absent not in names(runner_env(session(spec), RUNTIME, INPUTS))


def test_always_present_even_when_the_session_says_nothing() -> None:
    env = values(runner_env(session({}), RUNTIME, replace(INPUTS, config=OperatorConfig())))
    assert (env["INITIAL_PROMPT"], env["LLM_MODEL"], env["LLM_TEMPERATURE"],
            env["LLM_MAX_TOKENS"], env["TIMEOUT"]) == ("", "", "0.00", "0", "0")
    assert (env["GOOGLE_OAUTH_CLIENT_ID"], env["GOOGLE_OAUTH_CLIENT_SECRET"]) == ("", "")
    assert env["BACKEND_API_URL"] == \
        "http://backend-service.default.svc.cluster.local:8080/api"


def test_the_registry_port_is_agui_port() -> None:
    assert values(runner_env(session(), replace(RUNTIME, port=9000), INPUTS))["AGUI_PORT"] == \
        "9000"


@pytest.mark.parametrize(("temperature", "text"), [
    (0.7, "0.70"), (1, "1.00"), (0, "0.00"), (0.005, "0.01"), (0.004, "0.00"), (2.0, "2.00"),
    (1e300, f"{1e300:.2f}"), (10**400, "0.00"), (True, "0.00"), ("0.9", "0.00"), (None, "0.00"),
], ids=["float", "int", "zero", "round-half", "round-down", "two", "huge-float", "huge-int",
        "bool", "string", "none"])
def test_llm_temperature_is_two_decimals(temperature: Any, text: str) -> None:
    env = values(runner_env(session({"llmSettings": {"temperature": temperature}}), RUNTIME,
                            INPUTS))
    assert env["LLM_TEMPERATURE"] == text


@pytest.mark.parametrize(("value", "text"), [
    (4000, "4000"), (0, "0"), (-1, "-1"), (2**63 - 1, "9223372036854775807"),
    (10**30, "1" + "0" * 30), (4000.5, "0"), (True, "0"), ("4000", "0"),
])
def test_integers_are_written_as_given_and_anything_else_is_zero(value: Any, text: str) -> None:
    env = values(runner_env(session({"llmSettings": {"maxTokens": value}, "timeout": value}),
                            RUNTIME, INPUTS))
    assert (env["LLM_MAX_TOKENS"], env["TIMEOUT"]) == (text, text)


# override rules -----------------------------------------------------------------------------
def test_registry_env_is_appended_only_when_absent_sorted_by_name() -> None:
    runtime = replace(RUNTIME, env={"RUNNER_TYPE": "claude-agent-sdk", "DEBUG": "false",
                                    "LLM_MODEL": "other", "AGUI_TOKEN": "x",
                                    "RUNNER_STATE_DIR": ".claude", "A_FIRST": "1"})
    env = runner_env(session(BACKEND_SPEC), runtime, INPUTS)
    assert env == [*HEAD, *CORE, *NO_VERTEX, plain("A_FIRST", "1"),
                   plain("RUNNER_STATE_DIR", ".claude"), plain("RUNNER_TYPE", "claude-agent-sdk")]


def test_session_env_replaces_in_place_except_secrets_and_vertex_switches() -> None:
    runtime = replace(RUNTIME, env={"RUNNER_TYPE": "claude-agent-sdk"})
    user = {"DEBUG": "false", "TIMEOUT": "999", "AGUI_TOKEN": "stolen", "USE_VERTEX": "1",
            "CLAUDE_CODE_USE_VERTEX": "1", "LANGFUSE_HOST": "http://evil",
            "RUNNER_TYPE": "gemini-cli", "ZED": "z", "NEW_VAR": "v", "EMPTY": "",
            "NOT_A_STRING": 5}
    inputs = replace(INPUTS, copied=frozenset({LANGFUSE}))
    env = runner_env(session({**BACKEND_SPEC, "environmentVariables": user}), runtime, inputs)
    by_name = values(env)
    assert env[0] == plain("DEBUG", "false")  # replaced where it stands
    assert by_name["TIMEOUT"] == "999"
    assert by_name["AGUI_TOKEN"] == {"secretKeyRef": {"name": TOKEN, "key": "agui-token"}}
    assert by_name["LANGFUSE_HOST"]["secretKeyRef"]["name"] == LANGFUSE
    assert (by_name["USE_VERTEX"], by_name["CLAUDE_CODE_USE_VERTEX"]) == ("0", "0")
    assert by_name["RUNNER_TYPE"] == "gemini-cli"
    assert "NOT_A_STRING" not in by_name
    # new names are appended after the registry's, sorted (Go's map order is random)
    assert names(env)[-4:] == ["RUNNER_TYPE", "EMPTY", "NEW_VAR", "ZED"]
    assert by_name["EMPTY"] == ""


def test_parent_session_id_annotation_first_then_the_variable_which_overrides_last() -> None:
    annotation = {"vteam.ambient-code/parent-session-id": "from-annotation"}
    only_env = session({"environmentVariables": {"PARENT_SESSION_ID": " from-env "}})
    assert parent_session_id(session(annotations=annotation)) == "from-annotation"
    assert parent_session_id(only_env) == "from-env"
    assert parent_session_id(session(annotations={
        "vteam.ambient-code/parent-session-id": "  "})) == ""
    env = runner_env(only_env, RUNTIME, INPUTS)
    # placed after the Vertex switches (its own slot), then replaced by the variable as given
    assert names(env)[names(env).index("CLAUDE_CODE_USE_VERTEX") + 1] == "PARENT_SESSION_ID"
    assert values(env)["PARENT_SESSION_ID"] == " from-env "
    both = session({"environmentVariables": {"PARENT_SESSION_ID": "from-env"}},
                   annotations=annotation)
    assert values(runner_env(both, RUNTIME, INPUTS))["PARENT_SESSION_ID"] == "from-env"


def test_the_token_secret_name_is_the_inputs() -> None:
    env = values(runner_env(session(), RUNTIME, replace(INPUTS, token_secret="custom-name")))
    assert env["AGUI_TOKEN"] == {"secretKeyRef": {"name": "custom-name", "key": "agui-token"}}


# init-hydrate (§4.3) and state-sync (§4.6) ----------------------------------------------------
S3 = S3Settings(endpoint="http://minio.ambient-code.svc:9000", bucket="ambient-sessions",
                access_key="AKIA", secret_key="s3cr3t", available=True)
REPOS = [{"url": "https://github.com/org/api.git", "branch": "main", "autoPush": True}]
WORKFLOW = {"gitUrl": "https://github.com/org/wf", "branch": "", "path": "p"}


def test_init_hydrate_env_in_upstreams_order() -> None:
    spec = {"repos": REPOS, "activeWorkflow": WORKFLOW,
            "environmentVariables": {"SESSION_NAME": "x", "S3_BUCKET": "y", "RUNNER_TYPE": "c",
                                     "BOT_TOKEN": "z"}}
    env = init_env(session(spec), replace(INPUTS, s3=S3))
    assert env == [
        plain("SESSION_NAME", "session-1"), plain("NAMESPACE", "team-a"),
        plain("S3_ENDPOINT", "http://minio.ambient-code.svc:9000"),
        plain("S3_BUCKET", "ambient-sessions"), plain("AWS_ACCESS_KEY_ID", "AKIA"),
        plain("AWS_SECRET_ACCESS_KEY", "s3cr3t"), plain("BACKEND_API_URL", BACKEND),
        plain("PROJECT_NAME", "team-a"),
        plain("REPOS_JSON", '[{"autoPush":true,"branch":"main",'
                            '"url":"https://github.com/org/api.git"}]'),
        plain("ACTIVE_WORKFLOW_GIT_URL", "https://github.com/org/wf"),
        plain("ACTIVE_WORKFLOW_PATH", "p"),
        ref("BOT_TOKEN", TOKEN, "k8s-token"),
        plain("RUNNER_TYPE", "c"),  # the session's variables only where no name collides
    ]


def test_init_hydrate_gets_no_registry_env() -> None:
    """Upstream's init container takes the session's variables, not the registry's."""
    runtime_env = {"RUNNER_TYPE": "claude-agent-sdk"}
    assert "RUNNER_TYPE" not in names(init_env(session(), INPUTS))
    assert "RUNNER_TYPE" in names(sidecar_env(session(), replace(RUNTIME, env=runtime_env),
                                              INPUTS))


def test_state_sync_env_in_upstreams_order() -> None:
    runtime = replace(RUNTIME, env={"RUNNER_TYPE": "claude-agent-sdk", "SYNC_INTERVAL": "5"})
    spec = {"environmentVariables": {"MAX_SYNC_SIZE": "1", "RUNNER_TYPE": "other", "X": "y"}}
    env = sidecar_env(session(spec), runtime, replace(INPUTS, s3=S3))
    assert env == [
        plain("SESSION_NAME", "session-1"), plain("NAMESPACE", "team-a"),
        plain("S3_ENDPOINT", "http://minio.ambient-code.svc:9000"),
        plain("S3_BUCKET", "ambient-sessions"), plain("SYNC_INTERVAL", "60"),
        plain("MAX_SYNC_SIZE", "1073741824"), plain("AWS_ACCESS_KEY_ID", "AKIA"),
        plain("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
        plain("RUNNER_TYPE", "claude-agent-sdk"),  # registry first, then the session's
        plain("X", "y")]


def test_unconfigured_s3_gives_empty_values() -> None:
    env = values(init_env(session(), INPUTS))
    assert [env[k] for k in ("S3_ENDPOINT", "S3_BUCKET", "AWS_ACCESS_KEY_ID",
                             "AWS_SECRET_ACCESS_KEY")] == ["", "", "", ""]


def test_a_projects_own_s3_credentials_are_referenced_not_copied() -> None:
    s3 = S3Settings(endpoint="https://s3.example", bucket="b", available=True,
                    key_ref=("ambient-non-vertex-integrations", "S3_ACCESS_KEY", "S3_SECRET_KEY"))
    for env in (init_env(session(), replace(INPUTS, s3=s3)),
                sidecar_env(session(), RUNTIME, replace(INPUTS, s3=s3))):
        by_name = values(env)
        assert by_name["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {
            "name": "ambient-non-vertex-integrations", "key": "S3_ACCESS_KEY"}}
        assert by_name["AWS_SECRET_ACCESS_KEY"] == {"secretKeyRef": {
            "name": "ambient-non-vertex-integrations", "key": "S3_SECRET_KEY"}}


# Go's JSON ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "text"), [
    ({"b": 1, "a": {"d": [1, 2], "c": None}}, '{"a":{"c":null,"d":[1,2]},"b":1}'),
    ({"h": "<a href='x'>&</a>"}, '{"h":"\\u003ca href=\'x\'\\u003e\\u0026\\u003c/a\\u003e"}'),
    ({"s": "line\u2028sep\u2029"}, '{"s":"line\\u2028sep\\u2029"}'),
    ({"u": "héllo ✓", "q": 'say "hi"\\'}, '{"q":"say \\"hi\\"\\\\","u":"héllo ✓"}'),
    ([1.0, 300.0, -2.0, 2.5, 0.1], "[1,300,-2,2.5,0.1]"),
    ([1e20, 1e21, 1e-7, 0.00001], "[100000000000000000000,1e+21,1e-7,0.00001]"),
    ([2**63 - 1, -(2**63)], "[9223372036854775807,-9223372036854775808]"),
    # integers beyond int64 are float64 in Go: their shortest digits
    ([2**63, 2**64, 10**30], "[9223372036854776000,18446744073709552000,1e+30]"),
    ([1.2345678901234568e18], "[1234567890123456800]"),
    ([True, False, None, ""], '[true,false,null,""]'),
], ids=["sorted-compact", "html-escaped", "line-separators", "unicode-and-quotes",
        "integral-floats", "float-formats", "int64-bounds", "beyond-int64", "shortest-digits",
        "literals"])
def test_go_json(value: Any, text: str) -> None:
    assert go_json(value) == text


def test_go_json_never_raises_for_numbers_no_float_can_hold() -> None:
    text = go_json({"n": 10**400, "m": -(10**400)})
    assert json.loads(text) == {"m": -(10**400), "n": 10**400}


def _sorted_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert keys == sorted(keys, key=lambda k: k.encode()), keys  # Go sorts by bytes
    return dict(pairs)


@settings(max_examples=300, deadline=None, database=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text()
                    | st.floats(allow_nan=False, allow_infinity=False),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=4), max_leaves=12))
def test_go_json_is_compact_sorted_json_of_the_same_value(value: Any) -> None:
    text = go_json(value)
    assert not any(c in text for c in "<>&\u2028\u2029")
    decoded = json.loads(text, object_pairs_hook=_sorted_object)
    assert _close(decoded, value)
    assert go_json(decoded) == text  # stable through a round trip
    outside_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    assert not any(c.isspace() for c in outside_strings)  # compact


def _close(decoded: Any, value: Any) -> bool:
    """``decoded`` is ``value`` (numbers as Go holds them: big integers as float64)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return bool(decoded == value)
    if isinstance(value, int | float):
        return isinstance(decoded, int | float) and not isinstance(decoded, bool) and \
            float(decoded) == float(value)
    if isinstance(value, list):
        return len(decoded) == len(value) and all(map(_close, decoded, value))
    keys = {str(k) for k in value}
    return set(decoded) == keys and all(_close(decoded[str(k)], v) for k, v in value.items())


@pytest.mark.parametrize("value", [1e20, 2**64, 10**400, 1.5e308])
def test_huge_numbers_in_a_session_never_crash_the_render(value: Any) -> None:
    spec = {"mcpServers": {"custom": {"x": {"n": value}}}, "llmSettings": {
        "temperature": value, "maxTokens": value}, "timeout": value}
    env = values(runner_env(session(spec), RUNTIME, replace(INPUTS, project_mcp={"n": value})))
    custom = json.loads(env["CUSTOM_MCP_SERVERS"])["custom"]["x"]["n"]
    project = json.loads(env["PROJECT_MCP_SERVERS"])["n"]
    assert custom == project
    assert custom == value if value == 10**400 else float(custom) == float(value)
