"""Where a session's state is kept (reconcilers.s3.resolve) against UPSTREAM-CONTRACT §4.14."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from reconcilers.config import OperatorConfig
from reconcilers.environment import S3Settings
from reconcilers.s3 import resolve

DEFAULTS = OperatorConfig()
MANIFEST = OperatorConfig(s3_endpoint="http://minio.ambient-code.svc:9000")
NOT_CONFIGURED = ("S3 storage not configured: incomplete S3 configuration - {}. Session state "
                  "will not persist across pod restarts. Configure S3 in project settings.")
CREDENTIALS_MISSING = NOT_CONFIGURED.format("access key and secret key required")


def secret(**data: str) -> dict[str, Any]:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


MINIO = {"data": {"access-key": base64.b64encode(b"minio").decode(),
                  "secret-key": base64.b64encode(b"minio123").decode()}}
CUSTOM = dict(STORAGE_MODE="custom", S3_ENDPOINT="https://s3.eu", S3_BUCKET="proj",
              S3_ACCESS_KEY="AK", S3_SECRET_KEY="SK")
OWN_KEYS = ("ambient-non-vertex-integrations", "S3_ACCESS_KEY", "S3_SECRET_KEY")


@pytest.mark.parametrize(("integrations", "minio", "config", "expected"), [
    # shared storage: the operator's endpoint and bucket, the shared MinIO credentials
    (None, MINIO, DEFAULTS, S3Settings(
        endpoint="https://s3.amazonaws.com", bucket="ambient-sessions", access_key="minio",
        secret_key="minio123", available=True,
        message="S3 storage configured: https://s3.amazonaws.com/ambient-sessions")),
    (None, MINIO, MANIFEST, S3Settings(
        endpoint="http://minio.ambient-code.svc:9000", bucket="ambient-sessions",
        access_key="minio", secret_key="minio123", available=True,
        message="S3 storage configured: http://minio.ambient-code.svc:9000/ambient-sessions")),
    (None, None, DEFAULTS, S3Settings(available=False, message=CREDENTIALS_MISSING)),
    # a project's S3_* keys count only in custom mode
    (secret(S3_ENDPOINT="https://x", S3_ACCESS_KEY="AK", S3_SECRET_KEY="SK"), MINIO, DEFAULTS,
     S3Settings(endpoint="https://s3.amazonaws.com", bucket="ambient-sessions",
                access_key="minio", secret_key="minio123", available=True,
                message="S3 storage configured: https://s3.amazonaws.com/ambient-sessions")),
    (secret(STORAGE_MODE="shared"), None, DEFAULTS,
     S3Settings(available=False, message=CREDENTIALS_MISSING)),
    # custom: the project's settings; its own keys referenced from its Secret, never copied
    (secret(**CUSTOM), MINIO, DEFAULTS, S3Settings(
        endpoint="https://s3.eu", bucket="proj", key_ref=OWN_KEYS, available=True,
        message="S3 storage configured: https://s3.eu/proj")),
    (secret(STORAGE_MODE="custom", S3_ACCESS_KEY="AK", S3_SECRET_KEY="SK"), None, DEFAULTS,
     S3Settings(endpoint="https://s3.amazonaws.com", bucket="ambient-sessions",
                key_ref=OWN_KEYS, available=True,
                message="S3 storage configured: https://s3.amazonaws.com/ambient-sessions")),
    # custom without keys on its own endpoint: MinIO's are not handed to another endpoint
    (secret(STORAGE_MODE="custom", S3_ENDPOINT="https://s3.eu", S3_BUCKET="proj"), MINIO,
     DEFAULTS, S3Settings(available=False, message=CREDENTIALS_MISSING)),
    # custom without keys on the default endpoint and bucket: MinIO's fill in
    (secret(STORAGE_MODE="custom"), MINIO, DEFAULTS, S3Settings(
        endpoint="https://s3.amazonaws.com", bucket="ambient-sessions", access_key="minio",
        secret_key="minio123", available=True,
        message="S3 storage configured: https://s3.amazonaws.com/ambient-sessions")),
    # half a pair: the missing half from MinIO, as upstream mixes them
    (secret(STORAGE_MODE="custom", S3_ACCESS_KEY="AK"), MINIO, DEFAULTS, S3Settings(
        endpoint="https://s3.amazonaws.com", bucket="ambient-sessions", access_key="AK",
        secret_key="minio123", available=True,
        message="S3 storage configured: https://s3.amazonaws.com/ambient-sessions")),
    (None, MINIO, OperatorConfig(s3_endpoint=""), S3Settings(
        available=False, message=NOT_CONFIGURED.format("endpoint and bucket required"))),
    (None, {"data": {"access-key": "!!", "secret-key": "!!"}}, DEFAULTS,
     S3Settings(available=False, message=CREDENTIALS_MISSING)),
], ids=["shared-minio", "shared-manifest-endpoint", "shared-no-minio", "shared-ignores-keys",
        "explicit-shared", "custom", "custom-default-endpoint", "custom-no-keys",
        "custom-no-keys-defaults", "custom-half-keys", "no-endpoint", "minio-not-base64"])
def test_resolve(integrations: dict[str, Any] | None, minio: dict[str, Any] | None,
                 config: OperatorConfig, expected: S3Settings) -> None:
    assert resolve(integrations, minio, config) == expected
