"""The operator's configuration (reconcilers.config.OperatorConfig.from_env): upstream's
environment names and defaults (UPSTREAM-CONTRACT §8.3, §4.13), and problems for bad values."""

from __future__ import annotations

import pytest

from reconcilers.config import OperatorConfig, enabled, truthy

VERTEX_SETTINGS = {"ANTHROPIC_VERTEX_PROJECT_ID": "p", "CLOUD_ML_REGION": "us-east5",
                   "GOOGLE_APPLICATION_CREDENTIALS": "/app/vertex/ambient-code-key.json"}


def test_defaults() -> None:
    config = OperatorConfig.from_env({})
    assert (config.namespace, config.backend_namespace) == ("default", "default")
    assert config.runner_image == "quay.io/ambient_code/vteam_claude_runner:latest"
    assert config.state_sync_image == "quay.io/ambient_code/vteam_state_sync:latest"
    assert config.image_pull_policy == "Always"
    assert (config.s3_endpoint, config.s3_bucket) == ("https://s3.amazonaws.com",
                                                      "ambient-sessions")
    assert config.pod_fs_group is None
    assert (config.backend_public_url, config.mcp_config_file) == ("", "")
    assert (config.vertex, config.langfuse, config.mlflow) == (False, False, False)
    assert config.default_inactivity_timeout == 86400
    assert config.problems() == ()
    assert config.backend_api_url == \
        "http://backend-service.default.svc.cluster.local:8080/api"
    assert config.platform_secrets == ()


def test_upstreams_names() -> None:
    config = OperatorConfig.from_env({
        "NAMESPACE": "ambient-code", "AMBIENT_CODE_RUNNER_IMAGE": "r:1",
        "STATE_SYNC_IMAGE": "s:1", "IMAGE_PULL_POLICY": "IfNotPresent",
        "S3_ENDPOINT": "http://minio.ambient-code.svc:9000", "S3_BUCKET": "b",
        "POD_FSGROUP": "1000", "BACKEND_PUBLIC_URL": "https://ambient.example",
        "GOOGLE_OAUTH_CLIENT_ID": "cid", "GOOGLE_OAUTH_CLIENT_SECRET": "cs",
        "MCP_CONFIG_FILE": " /config/mcp.json ", "DEFAULT_INACTIVITY_TIMEOUT": "3600",
        "LANGFUSE_ENABLED": "true", "MLFLOW_TRACING_ENABLED": "1"})
    assert config == OperatorConfig(
        namespace="ambient-code", backend_namespace="ambient-code", runner_image="r:1",
        state_sync_image="s:1", image_pull_policy="IfNotPresent",
        s3_endpoint="http://minio.ambient-code.svc:9000", s3_bucket="b", pod_fs_group=1000,
        backend_public_url="https://ambient.example", vertex=False,
        vertex_settings={"ANTHROPIC_VERTEX_PROJECT_ID": "", "CLOUD_ML_REGION": "",
                         "GOOGLE_APPLICATION_CREDENTIALS": ""},
        langfuse=True, mlflow=True, google_oauth_client_id="cid",
        google_oauth_client_secret="cs", mcp_config_file="/config/mcp.json",
        default_inactivity_timeout=3600)
    assert config.backend_api_url == \
        "http://backend-service.ambient-code.svc.cluster.local:8080/api"
    assert config.platform_secrets == ("ambient-admin-langfuse-secret",
                                       "ambient-admin-mlflow-observability-secret")


def test_the_backend_namespace_defaults_to_the_operators() -> None:
    assert OperatorConfig.from_env({"NAMESPACE": "ops"}).backend_namespace == "ops"
    assert OperatorConfig.from_env({"NAMESPACE": "ops", "BACKEND_NAMESPACE": "be"}
                                   ).backend_namespace == "be"


@pytest.mark.parametrize(("environ", "fragment"), [
    ({"IMAGE_PULL_POLICY": "Sometimes"}, "IMAGE_PULL_POLICY='Sometimes'"),
    ({"IMAGE_PULL_POLICY": "always"}, "IMAGE_PULL_POLICY='always'"),
    ({"POD_FSGROUP": "root"}, "POD_FSGROUP='root' is not an integer"),
    ({"POD_FSGROUP": "-1"}, "POD_FSGROUP=-1 must be >= 0"),
    ({"DEFAULT_INACTIVITY_TIMEOUT": "1d"}, "DEFAULT_INACTIVITY_TIMEOUT='1d' is not an integer"),
    ({"DEFAULT_INACTIVITY_TIMEOUT": "-5"}, "DEFAULT_INACTIVITY_TIMEOUT=-5 must be >= 0"),
    ({"USE_VERTEX": "1"}, "USE_VERTEX is on but ANTHROPIC_VERTEX_PROJECT_ID, CLOUD_ML_REGION, "
                          "GOOGLE_APPLICATION_CREDENTIALS is not set"),
    ({"CLAUDE_CODE_USE_VERTEX": "yes", **VERTEX_SETTINGS, "CLOUD_ML_REGION": ""},
     "USE_VERTEX is on but CLOUD_ML_REGION is not set"),
])
def test_bad_values_are_problems(environ: dict[str, str], fragment: str) -> None:
    config = OperatorConfig.from_env(environ)
    assert [p for p in config.problems() if fragment in p], config.problems()


def test_a_bad_number_keeps_the_default() -> None:
    config = OperatorConfig.from_env({"POD_FSGROUP": "x", "DEFAULT_INACTIVITY_TIMEOUT": "y"})
    assert (config.pod_fs_group, config.default_inactivity_timeout) == (None, 86400)


@pytest.mark.parametrize(("text", "value"), [(" 1000 ", 1000), ("0", 0)])
def test_fs_group_values(text: str, value: int) -> None:
    assert OperatorConfig.from_env({"POD_FSGROUP": text}).pod_fs_group == value


def test_zero_inactivity_timeout_disables_by_default() -> None:
    assert OperatorConfig.from_env({"DEFAULT_INACTIVITY_TIMEOUT": "0"}
                                   ).default_inactivity_timeout == 0


@pytest.mark.parametrize(("value", "on"), [
    ("1", True), ("true", True), ("TRUE", True), (" yes ", True), ("Yes", True),
    ("0", False), ("false", False), ("no", False), ("", False), ("on", False), ("2", False),
    (None, False)])
def test_vertex_truthiness(value: str | None, on: bool) -> None:
    assert truthy(value) is on
    for name in ("USE_VERTEX", "CLAUDE_CODE_USE_VERTEX"):
        environ = {**VERTEX_SETTINGS, **({name: value} if value is not None else {})}
        config = OperatorConfig.from_env(environ)
        assert config.vertex is on
        assert ("ambient-vertex" in config.platform_secrets) is on
        assert config.problems() == ()


def test_vertex_settings_are_read_when_on() -> None:
    config = OperatorConfig.from_env({"USE_VERTEX": "true", **VERTEX_SETTINGS})
    assert dict(config.vertex_settings) == VERTEX_SETTINGS


@pytest.mark.parametrize(("value", "on"), [
    ("true", True), ("1", True), ("yes", True), ("anything", True), ("False", True),
    ("0", False), ("false", False), ("", False), (None, False)])
def test_langfuse_and_mlflow_switches(value: str | None, on: bool) -> None:
    """Upstream: set, and neither "0" nor "false" (case-sensitive)."""
    assert enabled(value) is on
    environ = {} if value is None else {"LANGFUSE_ENABLED": value,
                                        "MLFLOW_TRACING_ENABLED": value}
    config = OperatorConfig.from_env(environ)
    assert (config.langfuse, config.mlflow) == (on, on)
