"""The operator's configuration: upstream's environment variables, read once at start
(:class:`OperatorConfig`), and the settings its flags give (:class:`OperatorOptions`).

:func:`OperatorConfig.from_env` reads the names upstream's operator reads (``NAMESPACE``,
``BACKEND_NAMESPACE``, ``AMBIENT_CODE_RUNNER_IMAGE``, ``USE_VERTEX``, ...; see
``shared/UPSTREAM-CONTRACT.md`` §8.3), so a Deployment written for upstream's operator
configures this one unchanged. Values that cannot be used are reported by
:meth:`OperatorConfig.problems` (the command refuses to start on them) instead of being
silently replaced, except where upstream documents a fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from .resources import LANGFUSE_SECRET, MLFLOW_SECRET, VERTEX_SECRET
from .runner import Via

log = logging.getLogger(__name__)

DEFAULT_RUNNER_IMAGE = "quay.io/ambient_code/vteam_claude_runner:latest"
DEFAULT_STATE_SYNC_IMAGE = "quay.io/ambient_code/vteam_state_sync:latest"
DEFAULT_S3_ENDPOINT = "https://s3.amazonaws.com"
DEFAULT_S3_BUCKET = "ambient-sessions"
DEFAULT_INACTIVITY_TIMEOUT = 86400
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
VERTEX_SETTINGS = ("ANTHROPIC_VERTEX_PROJECT_ID", "CLOUD_ML_REGION",
                   "GOOGLE_APPLICATION_CREDENTIALS")


def truthy(value: str | None) -> bool:
    """``1``, ``true`` or ``yes`` (any case, spaces ignored), as upstream's ``isTruthy``."""
    return (value or "").strip().lower() in ("1", "true", "yes")


def enabled(value: str | None) -> bool:
    """Langfuse/MLflow switches: set, and neither ``0`` nor ``false``."""
    return bool(value) and value not in ("0", "false")


@dataclass(frozen=True, slots=True)
class OperatorConfig:
    """What the environment says about the platform the operator serves."""

    namespace: str = "default"
    """The operator's namespace (``NAMESPACE``)."""
    backend_namespace: str = "default"
    """Where the backend runs (``BACKEND_NAMESPACE``, default the operator's): the runner's
    ``BACKEND_API_URL``, the NetworkPolicy's allowed peers, the platform Secrets' source."""
    runner_image: str = DEFAULT_RUNNER_IMAGE
    state_sync_image: str = DEFAULT_STATE_SYNC_IMAGE
    image_pull_policy: str = "Always"
    s3_endpoint: str = DEFAULT_S3_ENDPOINT
    s3_bucket: str = DEFAULT_S3_BUCKET
    pod_fs_group: int | None = None
    backend_public_url: str = ""
    vertex: bool = False
    vertex_settings: Mapping[str, str] = field(default_factory=dict)
    """``CLOUD_ML_REGION``, ``ANTHROPIC_VERTEX_PROJECT_ID``, ``GOOGLE_APPLICATION_CREDENTIALS``."""
    langfuse: bool = False
    mlflow: bool = False
    google_oauth_client_id: str = ""
    google_oauth_client_secret: str = ""
    mcp_config_file: str = ""
    default_inactivity_timeout: int = DEFAULT_INACTIVITY_TIMEOUT
    bad_values: tuple[str, ...] = ()
    """Settings that were given but cannot be used (see :meth:`problems`)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> OperatorConfig:
        bad: list[str] = []
        namespace = environ.get("NAMESPACE") or "default"
        pull = environ.get("IMAGE_PULL_POLICY") or "Always"
        if pull not in PULL_POLICIES:
            bad.append(f"IMAGE_PULL_POLICY={pull!r} is not one of {', '.join(PULL_POLICIES)}")
        fs_group = _integer(environ, "POD_FSGROUP", bad, least=0)
        idle = _integer(environ, "DEFAULT_INACTIVITY_TIMEOUT", bad, least=0)
        vertex = truthy(environ.get("USE_VERTEX")) or truthy(environ.get("CLAUDE_CODE_USE_VERTEX"))
        if vertex:
            missing = [name for name in VERTEX_SETTINGS if not environ.get(name)]
            if missing:
                bad.append(f"USE_VERTEX is on but {', '.join(missing)} is not set")
        return cls(
            namespace=namespace,
            backend_namespace=environ.get("BACKEND_NAMESPACE") or namespace,
            runner_image=environ.get("AMBIENT_CODE_RUNNER_IMAGE") or DEFAULT_RUNNER_IMAGE,
            state_sync_image=environ.get("STATE_SYNC_IMAGE") or DEFAULT_STATE_SYNC_IMAGE,
            image_pull_policy=pull,
            s3_endpoint=environ.get("S3_ENDPOINT") or DEFAULT_S3_ENDPOINT,
            s3_bucket=environ.get("S3_BUCKET") or DEFAULT_S3_BUCKET,
            pod_fs_group=fs_group,
            backend_public_url=environ.get("BACKEND_PUBLIC_URL", ""),
            vertex=vertex,
            vertex_settings={k: environ.get(k, "") for k in VERTEX_SETTINGS},
            langfuse=enabled(environ.get("LANGFUSE_ENABLED")),
            mlflow=enabled(environ.get("MLFLOW_TRACING_ENABLED")),
            google_oauth_client_id=environ.get("GOOGLE_OAUTH_CLIENT_ID", ""),
            google_oauth_client_secret=environ.get("GOOGLE_OAUTH_CLIENT_SECRET", ""),
            mcp_config_file=(environ.get("MCP_CONFIG_FILE") or "").strip(),
            default_inactivity_timeout=DEFAULT_INACTIVITY_TIMEOUT if idle is None else idle,
            bad_values=tuple(bad))

    def problems(self) -> tuple[str, ...]:
        """Why this configuration cannot run (empty when it can)."""
        return self.bad_values

    @property
    def backend_api_url(self) -> str:
        return f"http://backend-service.{self.backend_namespace}.svc.cluster.local:8080/api"

    @property
    def platform_secrets(self) -> tuple[str, ...]:
        """Secrets copied from the backend's namespace into session namespaces."""
        return tuple(name for name, on in ((VERTEX_SECRET, self.vertex),
                                           (LANGFUSE_SECRET, self.langfuse),
                                           (MLFLOW_SECRET, self.mlflow)) if on)


def _integer(environ: Mapping[str, str], name: str, bad: list[str], *,
             least: int) -> int | None:
    text = environ.get(name)
    if not text:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        bad.append(f"{name}={text!r} is not an integer")
        return None
    if value < least:
        bad.append(f"{name}={value} must be >= {least}")
        return None
    return value


@dataclass(frozen=True, slots=True)
class OperatorOptions:
    """Settings from the operator's flags."""

    registry_namespace: str = "ambient-code"
    """Namespace of the ``ambient-agent-registry`` ConfigMap (and the models manifest and the
    cloud-init templates): the operator's own."""
    require_managed_label: bool = True
    """Reconcile only sessions in namespaces labelled ``ambient-code.io/managed=true``."""
    kubevirt_recheck: float = 30.0
    """Seconds between looks for KubeVirt while a VM session waits for it."""
    runner_address: Via = "dns"
    """How the runner is reached (see :mod:`.runner`)."""
    runner_retry: float = 5.0
    """Seconds before a runner that refused a live reconfiguration is asked again, doubled
    per failure up to five minutes (reset by a success)."""
