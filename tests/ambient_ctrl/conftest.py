"""Fixtures for framework tests: a local API server per module and framework clients on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ambient_ctrl.client import Client
from ambient_ctrl.testing import cached_client
from envtest import LocalAPIServer


@pytest.fixture(scope="module")
def api() -> Iterator[LocalAPIServer]:
    with LocalAPIServer() as server:
        yield server


def framework_client(api: LocalAPIServer) -> Iterator[Client]:
    """A Client (own transport and informers) on ``api``, detecting mutations of cached
    objects; closes them when resumed."""
    with cached_client(api.kubeconfig) as client:
        yield client


@pytest.fixture()
def client(api: LocalAPIServer) -> Iterator[Client]:
    yield from framework_client(api)
