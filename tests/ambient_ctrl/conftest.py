"""Fixtures for framework tests: a local API server per module and framework clients on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ambient_ctrl.client import Client
from ambient_ctrl.envtest import LocalAPIServer
from informers.factory import InformerFactory
from informers.rest import Transport, load_configuration


@pytest.fixture(scope="module")
def api() -> Iterator[LocalAPIServer]:
    with LocalAPIServer() as server:
        yield server


def framework_client(api: LocalAPIServer) -> Iterator[Client]:
    """A Client (own transport and informers) on ``api``; closes them when resumed."""
    transport = Transport(load_configuration(api.kubeconfig))
    factory = InformerFactory(transport)
    yield Client(transport, factory, field_manager="test")
    factory.stop()
    transport.close()


@pytest.fixture()
def client(api: LocalAPIServer) -> Iterator[Client]:
    yield from framework_client(api)
