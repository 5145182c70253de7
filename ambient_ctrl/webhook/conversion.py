"""ConversionReview v1: a CRD's objects converted to the version the API server asks for —
pure functions on the raw JSON it sends.

A **converter** is a function ``(obj, desired_api_version) -> obj`` for one kind; the
:class:`HubAndSpoke` helper builds one from functions to and from a hub version, as
controller-runtime's ``conversion.Hub``/``Convertible`` pairs do. One ``/convert`` endpoint
serves every kind: each object's group (from its ``apiVersion``) and ``kind`` pick its
converter.

As kube-apiserver demands, the answer carries every object converted, in order, with the
desired ``apiVersion``, the same ``kind`` and the same ``metadata.name``, ``namespace`` and
``uid``; the framework checks that before answering, so a converter's mistake fails the
conversion with a message naming the object rather than a vague error from the API server.
Any failure (no converter for the kind, a converter that raises, an object it broke) answers
``result: {status: Failure, message}`` for the whole review, as the API server cannot use
part of one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

API_VERSION = "apiextensions.k8s.io/v1"

Obj = dict[str, Any]
Converter = Callable[[Obj, str], Obj]
"""Converts one object to ``desired_api_version`` (``group/version``); returns the object."""


class ConversionError(Exception):
    """A conversion that cannot be done; its message goes back to the API server."""


class HubAndSpoke:
    """A converter through a hub version: ``to_hub[v]`` turns an object of version ``v``
    into the hub version, ``from_hub[v]`` the hub version into ``v``. Functions get and
    return whole objects; the apiVersion is set here."""

    def __init__(self, hub: str, *, to_hub: Mapping[str, Callable[[Obj], Obj]],
                 from_hub: Mapping[str, Callable[[Obj], Obj]]) -> None:
        self.hub = hub
        self._to_hub = dict(to_hub)
        self._from_hub = dict(from_hub)

    def __call__(self, obj: Obj, desired_api_version: str) -> Obj:
        group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
        desired = desired_api_version.rpartition("/")[2]
        if version == desired:
            return obj
        if version != self.hub:
            obj = self._step(self._to_hub, version, obj)
            obj["apiVersion"] = f"{group}/{self.hub}"
        if desired != self.hub:
            obj = self._step(self._from_hub, desired, obj)
        obj["apiVersion"] = desired_api_version
        return obj

    @staticmethod
    def _step(functions: Mapping[str, Callable[[Obj], Obj]], version: str, obj: Obj) -> Obj:
        function = functions.get(version)
        if function is None:
            raise ConversionError(f"no conversion for version {version!r}")
        return function(obj)


def review(body: object, converters: Mapping[tuple[str, str], Converter]) -> dict[str, Any]:
    """The ConversionReview answering ``body``; ``converters`` by ``(group, kind)``.

    Raises ``ValueError`` for a body that is no ConversionReview request (the server answers
    400, as controller-runtime does)."""
    request = body.get("request") if isinstance(body, dict) else None
    if not isinstance(body, dict) or body.get("apiVersion") != API_VERSION \
            or not isinstance(request, dict) or not request.get("uid"):
        raise ValueError(f"expected a ConversionReview of {API_VERSION} with a request and "
                         f"its uid")
    desired = request.get("desiredAPIVersion")
    objects = request.get("objects") or []
    result: dict[str, Any] = {"metadata": {}, "status": "Success"}
    converted: list[Obj] = []
    try:
        if not isinstance(desired, str) or "/" not in desired:
            raise ConversionError(f"desiredAPIVersion {desired!r} is not group/version")
        converted = [_convert(obj, desired, converters) for obj in objects]
    except Exception as error:
        if not isinstance(error, ConversionError):
            log.exception("conversion webhook converter failed",
                          extra={"uid": request["uid"], "desired": desired})
        result = {"metadata": {}, "status": "Failure", "message": str(error)}
        converted = []
    response: dict[str, Any] = {"uid": request["uid"], "result": result}
    if result["status"] == "Success":
        response["convertedObjects"] = converted
    return {"apiVersion": API_VERSION, "kind": "ConversionReview", "response": response}


def _convert(obj: object, desired: str,
             converters: Mapping[tuple[str, str], Converter]) -> Obj:
    if not isinstance(obj, dict):
        raise ConversionError("an object to convert is not a JSON object")
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    kind = str(obj.get("kind", ""))
    where = _describe(obj)
    if group != desired.rpartition("/")[0]:
        raise ConversionError(f"{where}: cannot convert group {group!r} to {desired!r}")
    converter = converters.get((group, kind))
    if converter is None:
        raise ConversionError(f"{where}: no converter for {kind}.{group}")
    before = _identity(obj)
    try:
        out = converter(obj, desired)
    except ConversionError as error:
        raise ConversionError(f"{where}: {error}") from error
    except Exception as error:
        log.exception("conversion webhook converter failed", extra={"object": where})
        raise ConversionError(f"{where}: converter failed: {type(error).__name__}: "
                              f"{error}") from error
    if not isinstance(out, dict):
        raise ConversionError(f"{where}: converter returned {type(out).__name__}")
    if out.get("apiVersion") != desired or out.get("kind") != kind:
        raise ConversionError(f"{where}: converted object is {out.get('apiVersion')!r} "
                              f"{out.get('kind')!r}, expected {desired!r} {kind!r}")
    if _identity(out) != before:
        raise ConversionError(f"{where}: the converter changed metadata.name, namespace or "
                              f"uid")
    return out


def _identity(obj: Obj) -> tuple[Any, Any, Any]:
    meta = obj.get("metadata") or {}
    return meta.get("name"), meta.get("namespace"), meta.get("uid")


def _describe(obj: Obj) -> str:
    name, namespace, _ = _identity(obj)
    return f"{obj.get('kind')} {namespace + '/' if namespace else ''}{name}"
