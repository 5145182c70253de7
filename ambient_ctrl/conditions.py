"""``metav1.Condition`` lists as pure functions, with apimachinery's ``meta.SetStatusCondition``
semantics.

A condition is a dict ``{type, status, observedGeneration, lastTransitionTime, reason,
message}``. The list is keyed by ``type``. :func:`set_condition` upserts one:

* ``lastTransitionTime`` is set to ``now`` when the condition is new or its ``status`` flips;
  otherwise it is kept, even when reason, message or observedGeneration change (they are
  always overwritten), so "since when has this been false" stays true;
* the rest of the list, its order and the input objects are untouched: a new list is
  returned, so cached objects can be passed in safely.

Values are validated as the API server validates them (``ValidateConditions``), so a bad
reason fails in the reconciler's tests rather than as a 422 on a status write.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

Condition = dict[str, Any]

STATUSES = ("True", "False", "Unknown")
_REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
_REASON_MAX = 1024
_MESSAGE_MAX = 32768
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def set_condition(conditions: Iterable[Mapping[str, Any]] | None, *, type: str, status: str,
                  reason: str, message: str, observed_generation: int,
                  now: str) -> list[Condition]:
    """A new list with the condition of ``type`` set (upserted, appended if new).

    ``now`` is the RFC 3339 timestamp used when ``lastTransitionTime`` moves (pass the
    clock's time through ``rfc3339``). Raises ValueError for an invalid type, a status
    other than True/False/Unknown, a reason that is not CamelCase (``^[A-Za-z]([A-Za-z0-9_,:]*
    [A-Za-z0-9_])?$``, at most 1024 characters), a message over 32768 characters or a
    negative observed generation.
    """
    _validate(type=type, status=status, reason=reason, message=message,
              observed_generation=observed_generation)
    result: list[Condition] = []
    found = False
    for existing in conditions or ():
        if existing.get("type") != type or found:
            result.append(dict(existing))
            continue
        found = True
        moved = existing.get("status") != status or not existing.get("lastTransitionTime")
        transition = now if moved else existing["lastTransitionTime"]
        result.append(_condition(type, status, reason, message, observed_generation, transition))
    if not found:
        result.append(_condition(type, status, reason, message, observed_generation, now))
    return result


def find_condition(conditions: Iterable[Mapping[str, Any]] | None,
                   type: str) -> Mapping[str, Any] | None:
    """The condition of ``type``, or None. It is the list's own entry: read-only."""
    for condition in conditions or ():
        if condition.get("type") == type:
            return condition
    return None


def is_true(conditions: Iterable[Mapping[str, Any]] | None, type: str) -> bool:
    """Whether the condition of ``type`` is present with status True."""
    condition = find_condition(conditions, type)
    return condition is not None and condition.get("status") == "True"


def is_false(conditions: Iterable[Mapping[str, Any]] | None, type: str) -> bool:
    """Whether the condition of ``type`` is present with status False (absent is neither)."""
    condition = find_condition(conditions, type)
    return condition is not None and condition.get("status") == "False"


def remove_condition(conditions: Iterable[Mapping[str, Any]] | None,
                     type: str) -> list[Condition]:
    """A new list without the condition of ``type`` (unchanged if absent)."""
    return [dict(c) for c in conditions or () if c.get("type") != type]


def _condition(type: str, status: str, reason: str, message: str, observed_generation: int,
               transition: str) -> Condition:
    return {"type": type, "status": status, "observedGeneration": observed_generation,
            "lastTransitionTime": transition, "reason": reason, "message": message}


def _validate(*, type: str, status: str, reason: str, message: str,
              observed_generation: int) -> None:
    _validate_type(type)
    if status not in STATUSES:
        raise ValueError(f"condition status must be one of {', '.join(STATUSES)}, "
                         f"not {status!r}")
    if len(reason) > _REASON_MAX or not _REASON.match(reason):
        raise ValueError(f"condition reason {reason!r} must be CamelCase: a letter, then "
                         "letters, digits, '_', ',' or ':', not ending in ',' or ':', "
                         f"at most {_REASON_MAX} characters")
    if len(message) > _MESSAGE_MAX:
        raise ValueError(f"condition message is longer than {_MESSAGE_MAX} characters")
    if observed_generation < 0:
        raise ValueError("condition observedGeneration must not be negative")


def _validate_type(type: str) -> None:
    """A qualified name, like labels' keys: optional ``dns.prefix/`` and a name of ≤ 63."""
    prefix, _, name = type.rpartition("/")
    if (not _NAME.match(name) or len(name) > 63
            or (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)))
            or (not prefix and "/" in type)):
        raise ValueError(f"condition type {type!r} must be a qualified name "
                         "(e.g. 'Ready' or 'example.com/Ready')")
