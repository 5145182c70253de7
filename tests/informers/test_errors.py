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
