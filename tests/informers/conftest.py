"""Fixtures for informer tests: a local API server and a raw-JSON transport to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from envtest import LocalAPIServer, ServerOptions
from informers.rest import Transport, TransportOptions, load_configuration


def transport_for(server: LocalAPIServer, *, timeout: float = 10.0) -> Transport:
    return Transport(load_configuration(server.kubeconfig),
                     options=TransportOptions(pool_size=8, timeout=timeout))


@pytest.fixture()
def server() -> Iterator[LocalAPIServer]:
    with LocalAPIServer(options=ServerOptions(bookmark_interval=0.2)) as api:
        yield api


@pytest.fixture()
def transport(server: LocalAPIServer) -> Iterator[Transport]:
    t = transport_for(server)
    yield t
    t.close()
