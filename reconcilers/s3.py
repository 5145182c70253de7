"""Where a session's state is kept between runs: the S3 settings of init-hydrate and
state-sync, resolved as upstream does (``shared/UPSTREAM-CONTRACT.md`` §4.14).

The project's Secret ``ambient-non-vertex-integrations`` chooses ``STORAGE_MODE``: ``shared``
(the default) uses the operator's ``S3_ENDPOINT``/``S3_BUCKET`` and, when those are the
operator's defaults, the credentials of ``minio-credentials`` in the backend's namespace;
``custom`` uses the project's own ``S3_ENDPOINT``, ``S3_BUCKET``, ``S3_ACCESS_KEY`` and
``S3_SECRET_KEY``. Incomplete settings are not an error: the run starts without persistence
and the session says so (``S3Available=False NotConfigured``).

One difference, invisible to the runner: a project's own credentials are referenced from its
Secret (``secretKeyRef``) instead of being copied into the Pod's spec, where anyone who may
read Pods would see them. The shared credentials live in the backend's namespace, which a Pod
cannot reference, so those are passed as values, as upstream passes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .children import secret_value
from .config import OperatorConfig
from .environment import S3Settings
from .resources import INTEGRATION_SECRETS


def resolve(integrations: Mapping[str, Any] | None, minio: Mapping[str, Any] | None,
            config: OperatorConfig) -> S3Settings:
    custom = secret_value(integrations, "STORAGE_MODE") == "custom"
    endpoint = secret_value(integrations, "S3_ENDPOINT") if custom else ""
    bucket = secret_value(integrations, "S3_BUCKET") if custom else ""
    access = secret_value(integrations, "S3_ACCESS_KEY") if custom else ""
    secret = secret_value(integrations, "S3_SECRET_KEY") if custom else ""
    own_credentials = bool(access and secret)
    endpoint = endpoint or config.s3_endpoint
    bucket = bucket or config.s3_bucket
    defaults = endpoint == config.s3_endpoint and bucket == config.s3_bucket
    if not own_credentials and defaults and minio is not None:
        access = access or secret_value(minio, "access-key")
        secret = secret or secret_value(minio, "secret-key")
    if not endpoint or not bucket:
        return _unavailable("incomplete S3 configuration - endpoint and bucket required")
    if not access or not secret:
        return _unavailable("incomplete S3 configuration - access key and secret key required")
    message = f"S3 storage configured: {endpoint}/{bucket}"
    if own_credentials:
        return S3Settings(endpoint=endpoint, bucket=bucket, available=True, message=message,
                          key_ref=(INTEGRATION_SECRETS, "S3_ACCESS_KEY", "S3_SECRET_KEY"))
    return S3Settings(endpoint=endpoint, bucket=bucket, access_key=access, secret_key=secret,
                      available=True, message=message)


def _unavailable(why: str) -> S3Settings:
    return S3Settings(available=False, message=(
        f"S3 storage not configured: {why}. Session state will not persist across pod "
        "restarts. Configure S3 in project settings."))
