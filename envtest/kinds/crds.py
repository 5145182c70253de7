"""CustomResourceDefinitions: validating them and turning them into served resource types.

Creating or updating a CRD makes its kind servable at once (the server sets NamesAccepted and
Established in the same write, where a real cluster does so a moment later).

Deleting one goes as in kube-apiserver: the CRD gets a deletionTimestamp, the
``customresourcecleanup.apiextensions.k8s.io`` finalizer and ``Terminating=True``; its custom
resources are deleted (those with finalizers stay until their finalizers go, and keep the CRD
Terminating, during which new ones cannot be created); once none is left the finalizer goes,
and with it the CRD and its kind. The apiextensions finalizer controller does this a moment
later; here it happens within the requests that make it possible.

Versions share one store. With conversion strategy ``None`` (the default) an object stored
at one version and read at another comes back with the apiVersion it was asked for and its
fields unchanged. With ``Webhook`` (:mod:`.conversion` validates ``spec.conversion``) objects
are stored at the storage version and an object at another version is served as the CRD's
conversion webhook made it: :func:`served_raw` and :func:`served` take it from the
:class:`~envtest.kinds.conversion.Converted` memo of the request (the verbs of
:mod:`envtest.verbs.conversion` fill it by calling the webhook, and convert the bodies of
writes to the storage version).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from envtest.errors import Cause
from envtest.kinds import conversion
from envtest.kinds.objects import DNS1123_LABEL, DNS1123_SUBDOMAIN
from envtest.kinds.registry import KindRegistry, ResourceType


def validate(crd: Mapping[str, Any], registry: KindRegistry) -> list[Cause]:
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [Cause("spec", "Required value", "FieldValueRequired")]
    causes = []
    group, names = spec.get("group"), spec.get("names")
    if not isinstance(group, str) or "." not in group or not DNS1123_SUBDOMAIN.fullmatch(group):
        causes.append(Cause("spec.group", f'Invalid value: "{group}": should be a domain with '
                            "at least one dot"))
    if not isinstance(names, dict):
        return [*causes, Cause("spec.names", "Required value", "FieldValueRequired")]
    plural, kind = names.get("plural"), names.get("kind")
    if not isinstance(plural, str) or not DNS1123_LABEL.fullmatch(plural):
        causes.append(Cause("spec.names.plural", f'Invalid value: "{plural}": a lowercase RFC '
                            "1123 label must consist of lower case alphanumeric characters or '-'"))
    if not isinstance(kind, str) or not kind:
        causes.append(Cause("spec.names.kind", "Required value", "FieldValueRequired"))
    expected = f"{plural}.{group}"
    if crd["metadata"].get("name") != expected:
        causes.append(Cause("metadata.name", f'Invalid value: "{crd["metadata"].get("name")}": '
                            'must be spec.names.plural+"."+spec.group'))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(Cause("spec.scope", f'Unsupported value: "{spec.get("scope")}": supported '
                            'values: "Cluster", "Namespaced"', "FieldValueNotSupported"))
    causes += _version_causes(spec.get("versions"))
    causes += conversion.causes(spec.get("conversion"))
    if any(t.builtin and t.group == group for t in registry):
        causes.append(Cause("spec.group", f'Invalid value: "{group}": is a built-in group'))
    return causes


def _version_causes(versions: Any) -> list[Cause]:
    if not isinstance(versions, list) or not versions:
        return [Cause("spec.versions", "Invalid value: must have exactly one version marked as "
                      "storage version")]
    causes = []
    storage = 0
    for i, version in enumerate(versions):
        if not isinstance(version, dict) or not isinstance(version.get("name"), str):
            causes.append(Cause(f"spec.versions[{i}].name", "Required value",
                                "FieldValueRequired"))
            continue
        storage += bool(version.get("storage"))
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:  # apiextensions.k8s.io/v1 dropped schemaless versions
            causes.append(Cause(f"spec.versions[{i}].schema.openAPIV3Schema",
                                "Required value: schemas are required", "FieldValueRequired"))
        elif not isinstance(schema, dict):
            causes.append(Cause(f"spec.versions[{i}].schema.openAPIV3Schema",
                                "Invalid value: must be an object"))
    if storage != 1:
        causes.append(Cause("spec.versions", "Invalid value: must have exactly one version "
                            "marked as storage version"))
    return causes


def immutable_causes(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[Cause]:
    """What an update of an established CRD may not change: the fields its storage and URLs
    derive from (ValidateCustomResourceDefinitionSpecUpdate)."""
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    new_names, old_names = new_spec.get("names") or {}, old_spec.get("names") or {}
    causes = []
    for field, now, before in (
            ("spec.scope", new_spec.get("scope"), old_spec.get("scope")),
            ("spec.names.kind", new_names.get("kind"), old_names.get("kind")),
            ("spec.group", new_spec.get("group"), old_spec.get("group")),
            ("spec.names.plural", new_names.get("plural"), old_names.get("plural"))):
        if now != before:
            shown = f'"{now}"' if isinstance(now, str) else orjson.dumps(now).decode()
            causes.append(Cause(field, f"Invalid value: {shown}: field is immutable"))
    return causes


def store_of(crd: Mapping[str, Any]) -> str:
    """The store its custom resources live in (``plural.group``, the CRD's own name)."""
    return f"{crd['spec']['names']['plural']}.{crd['spec']['group']}"


def resource_types(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The served versions of a (valid) CRD as resource types sharing one store."""
    spec = crd["spec"]
    names = spec["names"]
    group, plural = spec["group"], names["plural"]
    out = []
    several = len(spec["versions"]) > 1
    storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
    webhook = conversion.webhook_of(crd) if several else None
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        out.append(ResourceType(
            group=group, version=version["name"], plural=plural, kind=names["kind"],
            namespaced=spec["scope"] == "Namespaced",
            singular=names.get("singular") or names["kind"].lower(),
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=frozenset(k for k in ("status", "scale") if k in subresources),
            builtin=False,
            schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
            storage_key=f"{plural}.{group}",
            multiversion=several,
            storage_version=storage,
            webhook=webhook,
        ))
    return out


def served_raw(rtype: ResourceType, raw: bytes) -> bytes:
    """A stored custom resource as the version ``rtype`` serves: at another version, with
    the apiVersion asked for (strategy ``None``) or as the request had the webhook convert
    it (strategy ``Webhook``: :class:`.conversion.Converted`)."""
    if not rtype.multiversion:
        return raw
    obj = orjson.loads(raw)
    if obj.get("apiVersion") == rtype.api_version:
        return raw
    if rtype.webhook is not None:
        return conversion.served_by_webhook(raw, rtype.group_resource)
    obj["apiVersion"] = rtype.api_version
    return orjson.dumps(obj)


def served(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The same for a loaded object (changed in place, or a new one when converted)."""
    if not rtype.multiversion or obj.get("apiVersion") == rtype.api_version:
        return obj
    if rtype.webhook is not None:
        converted: dict[str, Any] = orjson.loads(conversion.served_by_webhook(
            orjson.dumps(obj), rtype.group_resource))
        return converted
    obj["apiVersion"] = rtype.api_version
    return obj


def established_status(crd: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The status the apiextensions controllers would write once names are accepted."""
    spec = crd["spec"]
    names = dict(spec["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", f"{names['kind']}List")
    old = crd.get("status") or {}
    stored = list(old.get("storedVersions") or [])
    for version in spec["versions"]:
        if version.get("storage") and version["name"] not in stored:
            stored.append(version["name"])
    previous = {c.get("type"): c for c in old.get("conditions") or () if isinstance(c, dict)}

    def condition(kind: str, reason: str, message: str) -> dict[str, Any]:
        since = previous.get(kind, {})
        return {"type": kind, "status": "True", "reason": reason, "message": message,
                "lastTransitionTime": since.get("lastTransitionTime", now)
                if since.get("status") == "True" else now}

    others = [c for kind, c in previous.items() if kind not in ("NamesAccepted", "Established")]
    return {
        "conditions": [condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                       condition("Established", "InitialNamesAccepted",
                                 "the initial names have been accepted"), *others],
        "acceptedNames": names,
        "storedVersions": stored,
    }


CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
"""The finalizer a CRD gets when deleted; it goes once no custom resource of it is left."""


def set_terminating(crd: dict[str, Any], now: str, *, done: bool) -> None:
    """Set the ``Terminating`` condition as the apiextensions finalizer controller does."""
    if done:
        wanted = {"type": "Terminating", "status": "False",
                  "reason": "InstanceDeletionCompleted", "message": "removed all instances"}
    else:
        wanted = {"type": "Terminating", "status": "True",
                  "reason": "InstanceDeletionInProgress",
                  "message": "CustomResource deletion is in progress"}
    status = crd.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or () if isinstance(c, dict)]
    old = next((c for c in conditions if c.get("type") == "Terminating"), {})
    since = old.get("lastTransitionTime") if old.get("status") == wanted["status"] else None
    wanted["lastTransitionTime"] = since or now
    status["conditions"] = [c for c in conditions if c.get("type") != "Terminating"] + [wanted]
