"""Warning headers: parsed as apimachinery does, logged once per text, from real responses.

The transport is pointed at a stand-in HTTP server on 127.0.0.1 that answers with the Warning
headers a test sets (kube-apiserver's own only come from deprecated APIs and dropped fields),
and at the local API server, which warns of unknown fields under ``fieldValidation=Warn``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s_client

from ambient_ctrl.envtest import LocalAPIServer
from ambient_ctrl.testing import StandinHandler, http_standin
from informers.apiwarnings import WarningLogger, parse_warning_headers
from informers.errors import NotFound
from informers.resource import CONFIGMAPS
from informers.rest import ResourceClient, Transport, load_configuration

LOGGER = "informers.apiwarnings"


@pytest.mark.parametrize(("values", "expected"), [
    (['299 - "unknown field \\"x\\""'], [(299, "-", 'unknown field "x"')]),
    (['299 - "a", 299 - "b"'], [(299, "-", "a"), (299, "-", "b")]),
    (['299 - "a, with comma" "Mon, 07 Dec 2026 00:00:00 GMT", 199 agent "b"'],
     [(299, "-", "a, with comma"), (199, "agent", "b")]),
    (['299 - "one"', '299 - "two"'], [(299, "-", "one"), (299, "-", "two")]),
    (['299 - "kept", garbage'], [(299, "-", "kept")]),
    (['29 - "short code"'], []),
    (['299 - unquoted'], []),
    (['299 - "no closing quote'], []),
    ([""], []),
], ids=["escaped-quote", "two-in-one", "date-and-agent", "two-headers", "garbage-after",
        "bad-code", "unquoted", "unterminated", "empty"])
def test_parse(values: list[str], expected: list[tuple[int, str, str]]) -> None:
    assert list(parse_warning_headers(values)) == expected


def test_logger_logs_each_text_once_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    logger = WarningLogger()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for text in ("a", "b", "a", "a", "b", "c"):
            logger(299, "-", text)
        logger(199, "-", "not a 299")  # client-go's handlers take 299 only
        logger(299, "-", "")
    assert [r.getMessage() for r in caplog.records] == [
        "the API server warns: a", "the API server warns: b", "the API server warns: c"]
    assert {r.levelno for r in caplog.records} == {logging.WARNING}


def test_logger_memory_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    logger = WarningLogger(capacity=2)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for text in ("a", "b", "a", "c", "a", "b"):  # "b" was forgotten when "c" came
            logger(299, "-", text)
    assert [r.getMessage()[-1] for r in caplog.records] == ["a", "b", "c", "b"]
    with pytest.raises(ValueError):
        WarningLogger(capacity=0)


class _Handler(StandinHandler):
    warnings: list[str] = []
    status = 200

    def do_GET(self) -> None:
        body = b'{"kind": "ConfigMap", "metadata": {"name": "x"}}'
        if self.status >= 400:
            body = b'{"kind": "Status", "reason": "NotFound", "message": "gone", "code": 404}'
        self.reply(self.status, body, headers=[("Warning", value) for value in self.warnings])


@pytest.fixture()
def standin() -> Iterator[type[_Handler]]:
    handler = type("Handler", (_Handler,), {"warnings": [], "status": 200})
    with http_standin(handler) as url:
        handler.url = url  # type: ignore[attr-defined]
        yield handler


def standin_transport(url: str) -> Transport:
    configuration = k8s_client.Configuration()
    configuration.host = url
    return Transport(configuration)


def test_transport_logs_each_warning_once(standin: type[_Handler],
                                          caplog: pytest.LogCaptureFixture) -> None:
    transport = standin_transport(standin.url)  # type: ignore[attr-defined]
    configmaps = ResourceClient(transport, CONFIGMAPS)
    try:
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            standin.warnings = ['299 - "v1 ConfigMap is deprecated"']
            for _ in range(3):
                configmaps.get("x", "default")
            standin.warnings = ['299 - "v1 ConfigMap is deprecated", 299 - "second"',
                                '299 - "third"']
            configmaps.get("x", "default")
            standin.status, standin.warnings = 404, ['299 - "on an error answer too"']
            with pytest.raises(NotFound):
                configmaps.get("x", "default")
    finally:
        transport.close()
    assert [r.getMessage() for r in caplog.records] == [
        "the API server warns: v1 ConfigMap is deprecated", "the API server warns: second",
        "the API server warns: third", "the API server warns: on an error answer too"]


def test_a_handler_of_ones_own_sees_every_warning(standin: type[_Handler]) -> None:
    seen: list[tuple[int, str, str]] = []
    transport = standin_transport(standin.url)  # type: ignore[attr-defined]
    transport.warning_handler = lambda *w: seen.append(w)
    try:
        standin.warnings = ['299 - "x"', '199 agent "y"']
        ResourceClient(transport, CONFIGMAPS).get("x", "default")
        ResourceClient(transport, CONFIGMAPS).get("x", "default")
    finally:
        transport.close()
    assert seen == [(299, "-", "x"), (199, "agent", "y")] * 2


def test_local_api_server_unknown_field_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    with LocalAPIServer() as api:
        transport = Transport(load_configuration(api.kubeconfig))
        configmaps = ResourceClient(transport, CONFIGMAPS)
        try:
            with caplog.at_level(logging.WARNING, logger=LOGGER):
                for name in ("a", "b"):
                    configmaps.create({"metadata": {"name": name, "namespace": "default"},
                                       "bogus": 1})
        finally:
            transport.close()
    assert [r.getMessage() for r in caplog.records] == [
        'the API server warns: unknown field "bogus"']
