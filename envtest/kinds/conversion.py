"""A CRD's ``spec.conversion``: its validation, and what its served versions need from it.

``strategy: None`` (the default) serves every version from the same stored object with only
``apiVersion`` rewritten; ``strategy: Webhook`` sends objects stored at another version to the
CRD's conversion webhook (:mod:`envtest.webhooks.conversion`). The checks are
kube-apiserver's ``validateCustomResourceConversion``, which runs on the internal type: its
field paths say ``spec.conversion.webhookClientConfig`` and
``spec.conversion.conversionReviewVersions`` where the v1 object holds
``spec.conversion.webhook.clientConfig`` and ``spec.conversion.webhook.conversionReviewVersions``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from envtest import errors
from envtest.errors import Cause
from envtest.kinds.objects import DNS1123_SUBDOMAIN
from envtest.kinds.registry import ACCEPTED_REVIEW_VERSIONS, WebhookConversion

_PATH = "spec.conversion"
_CLIENT = f"{_PATH}.webhookClientConfig"
_REVIEWS = f"{_PATH}.conversionReviewVersions"
_FORM = "; desired format: https://host[/path]"
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


def webhook_of(crd: Mapping[str, Any]) -> WebhookConversion | None:
    """The webhook a (valid) CRD converts through; None for strategy None."""
    conversion = crd["spec"].get("conversion") or {}
    if conversion.get("strategy") != "Webhook":
        return None
    webhook = conversion["webhook"]
    return WebhookConversion(dict(webhook["clientConfig"]),
                             tuple(webhook["conversionReviewVersions"]),
                             crd["metadata"]["name"])


@dataclass(slots=True)
class Converted:
    """What one request has had its CRD's webhook convert: stored bytes -> served bytes, and
    the stored objects it met that are not converted yet (``missing``, in order met).

    A read runs its (synchronous) verb under one; objects the verb serves that are not in
    it are recorded and served unconverted, the answer is thrown away, the missing ones are
    converted in one call and the verb runs again. A write runs once: a miss is a conflict
    (the object changed while the webhook was called)."""

    known: dict[bytes, bytes] = field(default_factory=dict)
    missing: dict[bytes, None] = field(default_factory=dict)
    strict: bool = False


_ACTIVE: ContextVar[Converted | None] = ContextVar("envtest_converted", default=None)


class converting:  # a context manager named as the function it replaces
    """Serve webhook-converted objects from ``memo`` within the block (a class rather than
    a generator: a converted watch enters one per event and watcher)."""

    __slots__ = ("_memo", "_token")

    def __init__(self, memo: Converted) -> None:
        self._memo = memo
        self._token: Token[Converted | None] | None = None

    def __enter__(self) -> Converted:
        self._token = _ACTIVE.set(self._memo)
        return self._memo

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _ACTIVE.reset(self._token)


active = _ACTIVE.get
"""The memo of the request being served, if it has one (the ContextVar's own ``get``: a
converted watch asks for every event)."""


class Unconverted(errors.APIError):
    """An object at another version served with no :class:`Converted` memo active: a path
    that must call the webhook first (a converted watch does, on catching it)."""


def served_by_webhook(raw: bytes, group_resource: str) -> bytes:
    """``raw`` (a stored object at another version) as the active request had it converted."""
    memo = _ACTIVE.get()
    if memo is None:
        raise Unconverted(500, "", f"{group_resource}: an object stored at another version "
                          "was served without its conversion webhook (a server bug)")
    found = memo.known.get(raw)
    if found is not None:
        return found
    if memo.strict:
        raise errors.APIError(409, "Conflict", f"Operation cannot be fulfilled on "
                              f"{group_resource}: {errors.STALE}")
    memo.missing[raw] = None
    return raw


def causes(conversion: Any) -> list[Cause]:
    """What is wrong with ``spec.conversion`` (absent: strategy None)."""
    if conversion is None:
        return []
    if not isinstance(conversion, dict):
        return [Cause(_PATH, "Invalid value: must be an object")]
    strategy = conversion.get("strategy", "None")
    webhook = conversion.get("webhook")
    webhook = webhook if isinstance(webhook, dict) else {}
    client, reviews = webhook.get("clientConfig"), webhook.get("conversionReviewVersions")
    if strategy not in ("None", "Webhook"):
        found = [Cause(f"{_PATH}.strategy", f'Unsupported value: "{strategy}": supported '
                       'values: "None", "Webhook"', "FieldValueNotSupported")]
    else:
        found = []
    if strategy != "Webhook":
        if client is not None:
            found.append(Cause(_CLIENT, "Forbidden: should not be set when strategy is not "
                               "set to Webhook", "FieldValueForbidden"))
        if reviews:
            found.append(Cause(_REVIEWS, "Forbidden: should not be set when strategy is not "
                               "set to Webhook", "FieldValueForbidden"))
        return found
    if not isinstance(client, dict):
        found.append(Cause(_CLIENT, "Required value: required when strategy is set to Webhook",
                           "FieldValueRequired"))
    else:
        found += _client_causes(client)
    return found + _review_causes(reviews)


def _client_causes(client: Mapping[str, Any]) -> list[Cause]:
    url, service = client.get("url"), client.get("service")
    if (url is None) == (service is None):
        return [Cause(_CLIENT, "Required value: exactly one of url or service is required",
                      "FieldValueRequired")]
    if url is not None:
        return _url_causes(str(url))
    if not isinstance(service, dict):
        return [Cause(f"{_CLIENT}.service", "Invalid value: must be an object")]
    return _service_causes(service)


def _url_causes(url: str) -> list[Cause]:
    """apiserver's ValidateWebhookURL with https forced."""
    where = f"{_CLIENT}.url"
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError as exc:
        return [Cause(where, f"Required value: url must be a valid URL: {exc}{_FORM}",
                      "FieldValueRequired")]
    found = []
    if parts.scheme != "https":
        found.append(Cause(where, f'Invalid value: "{parts.scheme}": \'https\' is the only '
                           f"allowed URL scheme{_FORM}"))
    if not host:
        found.append(Cause(where, f'Invalid value: "": host must be specified{_FORM}'))
    if "@" in parts.netloc:
        found.append(Cause(where, f'Invalid value: "{parts.netloc.rpartition("@")[0]}": user '
                           "information is not permitted in the URL"))
    if parts.fragment:
        found.append(Cause(where, f'Invalid value: "{parts.fragment}": fragments are not '
                           "permitted in the URL"))
    if parts.query:
        found.append(Cause(where, f'Invalid value: "{parts.query}": query parameters are not '
                           "permitted in the URL"))
    return found


def _service_causes(service: Mapping[str, Any]) -> list[Cause]:
    """apiserver's ValidateWebhookService. kube passes (name, namespace) to a function
    declared (namespace, name) (kubernetes#141353): a missing name is reported as the
    namespace and the other way round; so here."""
    where = f"{_CLIENT}.service"
    found = []
    if not service.get("namespace"):
        found.append(Cause(f"{where}.name", "Required value", "FieldValueRequired"))
    if not service.get("name"):
        found.append(Cause(f"{where}.namespace", "Required value", "FieldValueRequired"))
    port = service.get("port", 443)
    if type(port) is not int or not 1 <= port <= 65535:
        found.append(Cause(f"{where}.port", f"Invalid value: {port}: port is not valid: must "
                           "be between 1 and 65535, inclusive"))
    return found + _service_path_causes(service.get("path"))


def _service_path_causes(path: Any) -> list[Cause]:
    where = f"{_CLIENT}.service.path"
    if path is None or path in ("", "/"):
        return []
    path = str(path)
    if path == "//":
        return [Cause(where, 'Invalid value: "//": segment[0] may not be empty')]
    if not path.startswith("/"):
        return [Cause(where, f'Invalid value: "{path}": must start with a \'/\'')]
    found = []
    for i, step in enumerate(path[1:].removesuffix("/").split("/")):
        if not step:
            found.append(Cause(where, f'Invalid value: "{path}": segment[{i}] may not be '
                               "empty"))
        elif not DNS1123_SUBDOMAIN.fullmatch(step):
            found.append(Cause(where, f'Invalid value: "{path}": segment[{i}]: a lowercase '
                               "RFC 1123 subdomain must consist of lower case alphanumeric "
                               "characters, '-' or '.', and must start and end with an "
                               "alphanumeric character"))
    return found


def _review_causes(versions: Any) -> list[Cause]:
    if not isinstance(versions, list) or not versions:
        return [Cause(_REVIEWS, "Required value", "FieldValueRequired")]
    found, seen = [], set()
    for i, version in enumerate(versions):
        if str(version) in seen:
            found.append(Cause(f"{_REVIEWS}[{i}]",
                               f'Invalid value: "{version}": duplicate version'))
            continue
        seen.add(str(version))
        if not isinstance(version, str) or not _DNS1035.fullmatch(version):
            found.append(Cause(f"{_REVIEWS}[{i}]", f'Invalid value: "{version}": a DNS-1035 '
                               "label must consist of lower case alphanumeric characters or "
                               "'-', start with an alphabetic character, and end with an "
                               "alphanumeric character"))
    if not seen & set(ACCEPTED_REVIEW_VERSIONS):
        shown = ", ".join(f'"{v}"' for v in versions)
        found.append(Cause(_REVIEWS, f"Invalid value: []string{{{shown}}}: must include at "
                           "least one of v1, v1beta1"))
    return found
