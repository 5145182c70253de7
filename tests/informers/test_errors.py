"""The API boundary's errors have one root: ``except KubeError`` catches any failed request."""

from __future__ import annotations

import inspect

import pytest

import informers
from informers import errors
from informers.reflector_state import ShortWatch


def _error_classes() -> list[type[BaseException]]:
    return [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
            if issubclass(cls, BaseException) and cls.__module__ == errors.__name__]


def test_every_error_of_the_module_has_the_one_root() -> None:
    classes = _error_classes()
    assert {errors.KubeError, errors.APIError, errors.TransportError} <= set(classes)
    assert all(issubclass(cls, errors.KubeError) for cls in classes)


def test_an_answer_and_no_answer_are_siblings_under_the_root() -> None:
    assert errors.KubeError.__bases__ == (Exception,)
    assert errors.APIError.__bases__ == (errors.KubeError,)
    assert errors.TransportError.__bases__ == (errors.KubeError,)
    assert not issubclass(errors.APIError, errors.TransportError)
    assert not issubclass(errors.TransportError, errors.APIError)
    assert issubclass(ShortWatch, errors.TransportError)  # the reflector's own cut stream


@pytest.mark.parametrize("code", [400, 403, 404, 405, 409, 410, 422, 429, 500, 503, 504])
def test_every_error_answer_is_caught_by_the_root(code: int) -> None:
    with pytest.raises(errors.KubeError) as caught:
        raise errors.error_from(code, b"", {})
    assert isinstance(caught.value, errors.APIError) and caught.value.code == code


def test_the_root_is_exported() -> None:
    assert informers.KubeError is errors.KubeError
    assert "KubeError" in informers.__all__


@pytest.mark.parametrize(("path", "namespace"), [
    ("/api/v1/namespaces/ns1/pods/p", "ns1"),
    ("/apis/apps/v1/namespaces/ns1/deployments/d/scale?dryRun=All", "ns1"),
    ("/api/v1/namespaces/namespaces/pods/p", "namespaces"),
    ("/api/v1/namespaces/ns1", ""),  # the namespace object itself: cluster-scoped
    ("/api/v1/pods", ""),
    ("/apis/example.com/v1/widgets/w", ""),
    ("", None),
])
def test_an_error_knows_the_namespace_of_its_request(path: str, namespace: str | None) -> None:
    error = errors.error_from(404, b'{"reason":"NotFound"}', {}, path=path)
    assert (error.path, error.namespace) == (path, namespace)


def test_the_transport_records_the_path_of_an_error_answer() -> None:
    from envtest import LocalAPIServer
    from informers.resource import CONFIGMAPS
    from informers.rest import ResourceClient, Transport, load_configuration

    with LocalAPIServer() as api:
        transport = Transport(load_configuration(api.kubeconfig))
        try:
            with pytest.raises(errors.NotFound) as missing:
                ResourceClient(transport, CONFIGMAPS).get("nope", "kube-system")
        finally:
            transport.close()
    assert missing.value.path == "/api/v1/namespaces/kube-system/configmaps/nope"
    assert missing.value.namespace == "kube-system"
